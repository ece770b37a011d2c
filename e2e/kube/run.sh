#!/usr/bin/env bash
# The operator against a real kube-apiserver (with etcd, no kubelet and no
# kube-controller-manager): CRDs, the chart, reconciliation, scaling, validation,
# deletion, and Topic/ConsumerGroup against a real single-node Kafka.
#
#   bash e2e/kube/setup.sh   # once: builds etcd, kube-apiserver, kubectl, helm into the cache
#   bash e2e/kube/run.sh     # starts everything on 127.0.0.1, runs the tests, tears down
#
# Exits non-zero when any check fails. Set E2E_KEEP=1 to keep $WORK (logs, kubeconfig).
# The Topic/ConsumerGroup checks run against a single strata-broker (E2E_KAFKA=strata, the
# default), against Apache Kafka (E2E_KAFKA=apache), or not at all (E2E_KAFKA=skip).
# Kafka's own Java tools (tools/setup-kafka.sh, Java 17) check what the broker holds in
# either case.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STRATA_CACHE="${STRATA_CACHE:-/root/.cache/strata}"
BIN="$STRATA_CACHE/k8s/bin"
export PATH="$BIN:$PATH"

# Ports well away from the ones developers' brokers and coordinators use, and below the
# ephemeral range (32768+) so no outgoing connection can be holding one.
ETCD_PORT="${ETCD_PORT:-22379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-22380}"
APISERVER_PORT="${APISERVER_PORT:-26443}"
METRICS_PORT="${METRICS_PORT:-28080}"
KAFKA_PORT="${KAFKA_PORT:-29392}"
E2E_KAFKA="${E2E_KAFKA:-strata}"

for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$METRICS_PORT" "$KAFKA_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is already in use (a previous run still stopping?); pick free ports with" \
      "ETCD_PORT, ETCD_PEER_PORT, APISERVER_PORT, METRICS_PORT, KAFKA_PORT" >&2
    exit 1
  fi
done

mkdir -p "$STRATA_CACHE/e2e"
WORK="$(mktemp -d "$STRATA_CACHE/e2e/run.XXXXXX")"
ETCD_PID="" APISERVER_PID="" OPERATOR_PID="" KAFKA_PID=""

cleanup() {
  local rc=$?
  stop_pid "$OPERATOR_PID"
  stop_pid "$APISERVER_PID"
  stop_pid "$ETCD_PID"
  if [[ -n "$KAFKA_PID" ]]; then
    # Kafka runs in its own process group (setsid below): the wrapper scripts and the JVM
    # go together, and the port is free once the group is gone.
    kill -TERM -- "-$KAFKA_PID" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 -- "-$KAFKA_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$KAFKA_PID" 2>/dev/null || true
  fi
  if ((rc != 0)) || [[ -n "${E2E_KEEP:-}" ]]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT

# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=cluster.sh
source "$HERE/cluster.sh"

for tool in etcd kube-apiserver kubectl helm; do
  if [[ ! -x "$BIN/$tool" ]]; then
    echo "$BIN/$tool missing: run bash e2e/kube/setup.sh first" >&2
    exit 1
  fi
done

echo "== building strata-operator"
(cd "$REPO" && cargo build -p strata-operator --quiet)
OPERATOR_BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/strata-operator"

case "$E2E_KAFKA" in
  apache)
    echo "== starting Apache Kafka on 127.0.0.1:$KAFKA_PORT (the Topic/ConsumerGroup peer)"
    setsid "$REPO/tools/run-apache-kafka.sh" "$KAFKA_PORT" "$WORK/kafka" >"$WORK/kafka.log" 2>&1 &
    KAFKA_PID=$!
    ;;
  strata)
    echo "== starting strata-broker on 127.0.0.1:$KAFKA_PORT (the Topic/ConsumerGroup peer)"
    (cd "$REPO" && cargo build -p strata-broker --quiet)
    mkdir -p "$WORK/strata-broker"
    setsid "${CARGO_TARGET_DIR:-$REPO/target}/debug/strata-broker" \
      --override "listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT" --override "log.dirs=$WORK/strata-broker" \
      --override metrics.port=0 >"$WORK/kafka.log" 2>&1 &
    KAFKA_PID=$!
    ;;
  skip) ;;
  *) echo "E2E_KAFKA must be apache, strata or skip" >&2; exit 2 ;;
esac

echo "== starting etcd and kube-apiserver"
start_cluster "$BIN"
echo "   kube-apiserver $("$BIN/kube-apiserver" --version | awk '{print $2}') ready on 127.0.0.1:$APISERVER_PORT"

# start_operator KUBECONFIG ARGS...: runs the operator binary as the given identity.
start_operator() {
  local kubeconfig="$1"; shift
  KUBECONFIG="$kubeconfig" RUST_LOG="${RUST_LOG:-info,kube=warn}" \
    "$OPERATOR_BIN" "$@" >>"$WORK/operator.log" 2>&1 &
  OPERATOR_PID=$!
  local deadline=$((SECONDS + 60))
  until curl -sf "http://127.0.0.1:$METRICS_PORT/readyz" >/dev/null; do
    if ((SECONDS > deadline)) || ! kill -0 "$OPERATOR_PID" 2>/dev/null; then
      echo "operator did not become ready:" >&2
      tail -20 "$WORK/operator.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

source "$HERE/test_chart.sh"
source "$HERE/test_operator.sh"

summary
((FAILED == 0))
