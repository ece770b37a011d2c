#!/usr/bin/env bash
# The operator on a real single-node Kubernetes that runs pods (cluster.sh): the chart and
# its CRDs, the operator's own Deployment, a KafkaCluster whose coordinators and brokers
# start and form one cluster, Topic and ConsumerGroup against those brokers, scaling,
# validation, deletion, and a namespaced install.
#
#   bash e2e/kube/setup.sh   # once: builds and caches the cluster's components
#   bash e2e/kube/run.sh     # image, cluster up, every check, cluster down
#
# Exits non-zero when any check fails. Everything it starts is stopped on the way out,
# on failure and on Ctrl-C too. After a failure the component logs, every pod's log and
# the objects' state are kept in $STRATA_CACHE/e2e/failed-<time>; E2E_KEEP=1 keeps them
# after a pass as well.
#
# The image: tools/image/build.sh with the debug binaries `make test` builds anyway
# (E2E_PROFILE=release for the release build `make image` uses; it costs a release build).
# Kafka's own Java tools (tools/setup-kafka.sh, Java 17) check the brokers from the host.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
export STRATA_CACHE="${STRATA_CACHE:-/root/.cache/strata}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$STRATA_CACHE/target}"
BIN="$STRATA_CACHE/k8s/bin"
export PATH="$BIN:$PATH"
export E2E_PROFILE="${E2E_PROFILE:-debug}"
IMAGE=strata:e2e

# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=cluster.sh
source "$HERE/cluster.sh"

for tool in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns kubectl helm; do
  if [[ ! -x "$BIN/$tool" ]]; then
    echo "$BIN/$tool missing: run bash e2e/kube/setup.sh first" >&2
    exit 1
  fi
done

mkdir -p "$STRATA_CACHE/e2e"
# One run at a time on a machine: the cluster's state, ports and image archive are shared.
# A second run waits for the first instead of tearing its cluster down.
exec {E2E_LOCK}>"$STRATA_CACHE/e2e/lock"
if ! flock -n "$E2E_LOCK"; then
  echo "another e2e run holds $STRATA_CACHE/e2e/lock; waiting for it (at most 40 min)" >&2
  flock -w 2400 "$E2E_LOCK" || { echo "the other e2e run did not finish in 40 min" >&2; exit 1; }
fi
WORK="$(mktemp -d "$STRATA_CACHE/e2e/run.XXXXXX")"
export WORK REPO

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Every step of the way out runs, whatever the one before it returned.
  set +e
  # Background watchers and the producer of the checks, if a run stops among them. The
  # cluster's components are jobs of this shell too (node_start): they stay up until
  # cluster_down, so the evidence below can still be read from the API server.
  local components pid
  components=" $(cat "$NODE_DIR"/pids/* 2>/dev/null | tr '\n' ' ') "
  for pid in $(jobs -p); do
    [[ "$components" == *" $pid "* ]] || kill "$pid" 2>/dev/null
  done
  if ((rc != 0)) || [[ -n "${E2E_KEEP:-}" ]]; then
    keep_evidence
  fi
  phase "cluster down" cluster_down
  rm -rf "$WORK"
  timings
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# What a person needs to see why a run failed, gathered before the cluster goes.
keep_evidence() {
  local dir
  dir="$STRATA_CACHE/e2e/failed-$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$dir/pods"
  cp -r "$NODE_DIR/logs" "$dir/components" 2>/dev/null
  cp "$WORK"/*.log "$dir/" 2>/dev/null
  # Each request gives up after a while; what kubectl said instead goes into the files.
  local k=(kubectl --request-timeout=20s)
  "${k[@]}" get all,pvc,pv,kc,kt,kcg,events -A -o wide >"$dir/objects.txt" 2>&1
  "${k[@]}" describe pods -A >"$dir/pods.txt" 2>&1
  local ns pod
  while read -r ns pod; do
    "${k[@]}" -n "$ns" logs "$pod" --all-containers --prefix >"$dir/pods/$ns.$pod.log" 2>&1
    "${k[@]}" -n "$ns" logs "$pod" --all-containers --prefix --previous >>"$dir/pods/$ns.$pod.log" 2>/dev/null
  done < <("${k[@]}" get pods -A --no-headers -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name 2>/dev/null)
  echo "--- pods" >&2
  "${k[@]}" get pods -A -o wide >&2 2>&1
  echo "logs and the cluster's state kept in $dir" >&2
}

phase "image ($E2E_PROFILE build)" env PROFILE="$E2E_PROFILE" TAG=e2e bash "$REPO/tools/image/build.sh"
phase "cluster up" cluster_up
phase "image import" node_ctr images import "$STRATA_CACHE/image/strata-e2e.oci.tar"

TESTS_STARTED=$SECONDS
source "$HERE/test_image.sh"
source "$HERE/test_chart.sh"
source "$HERE/test_operator.sh"
source "$HERE/test_cluster.sh"
source "$HERE/test_topics.sh"
source "$HERE/test_lifecycle.sh"
mark "checks" "$TESTS_STARTED"

summary
((FAILED == 0))
