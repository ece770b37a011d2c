#!/usr/bin/env bash
# Strata's coordinator vs Apache ZooKeeper: two three-server ensembles on 127.0.0.1-3 on
# this machine, one after the other, driven by the same Rust load generator (zk-bench):
# create / setData / getData with 1 KiB values at several client counts, plus leader
# failover time (SIGKILL the leader, time until a write succeeds again).
#
# Output: a markdown table on stdout (and in $OUT, default bench/results/zookeeper.md;
# docs/benchmarks.md records the figures of a run).
# Knobs: BENCH_SECONDS (default 10), BENCH_CLIENTS (default 1,16,64), SNAP_COUNT (both
# servers' snapCount, default 100000).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${STRATA_CACHE:-/root/.cache/strata}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CLIENTS="${BENCH_CLIENTS:-1,16,64}"
SNAP_COUNT="${SNAP_COUNT:-100000}"
OUT="${OUT:-$REPO/bench/results/zookeeper.md}"
mkdir -p "$(dirname "$OUT")"
CLIENT_PORT=23181
QUORUM_PORT=23888
ELECTION_PORT=23889

cargo build --release -q -p strata-coordinator --bins
STRATA="$CARGO_TARGET_DIR/release/strata-coordinator"
BENCH="$CARGO_TARGET_DIR/release/zk-bench"
ZK_LIB="$(bash "$REPO/tools/setup-zookeeper.sh")"

RUN="$(mktemp -d "$CACHE/bench-zk.XXXXXX")"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT

servers() { echo "127.0.0.1:$CLIENT_PORT,127.0.0.2:$CLIENT_PORT,127.0.0.3:$CLIENT_PORT"; }

four() { # four HOST WORD
  python3 - "$1" "$CLIENT_PORT" "$2" <<'PY'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    s.sendall(sys.argv[3].encode()); out = b""
    while True:
        b = s.recv(4096)
        if not b: break
        out += b
    print(out.decode())
except OSError:
    pass
PY
}

mode() { four "127.0.0.$1" srvr | sed -n 's/^Mode: //p'; }

wait_all_serving() {
  for _ in $(seq 1 600); do
    local ok=0
    for i in 1 2 3; do [ -n "$(mode $i)" ] && ok=$((ok+1)); done
    [ "$ok" = 3 ] && return 0
    sleep 0.1
  done
  echo "ensemble did not come up" >&2; exit 1
}

write_cfg() { # write_cfg NAME I
  local dir="$RUN/$1/$2"
  mkdir -p "$dir/data"
  echo "$2" > "$dir/data/myid"
  cat > "$dir/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$CLIENT_PORT
clientPortAddress=127.0.0.$2
maxClientCnxns=0
4lw.commands.whitelist=srvr,ruok,mntr
admin.enableServer=false
metricsProvider.httpPort=0
snapCount=$SNAP_COUNT
server.1=127.0.0.1:$QUORUM_PORT:$ELECTION_PORT
server.2=127.0.0.2:$QUORUM_PORT:$ELECTION_PORT
server.3=127.0.0.3:$QUORUM_PORT:$ELECTION_PORT
CFG
}

start_strata() {
  for i in 1 2 3; do
    write_cfg strata "$i"
    RUST_LOG=warn "$STRATA" --config "$RUN/strata/$i/zoo.cfg" > "$RUN/strata/$i/log" 2>&1 &
    PIDS+=($!); eval "PID_$i=$!"
  done
}

start_zookeeper() {
  for i in 1 2 3; do
    write_cfg zookeeper "$i"
    # Apache ZooKeeper rejects keys it does not know only in strict mode; metricsProvider
    # without a class name is ignored.
    sed -i '/^metricsProvider.httpPort/d' "$RUN/zookeeper/$i/zoo.cfg"
    java -Xmx1g -Dzookeeper.admin.enableServer=false -cp "$ZK_LIB/*" \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$RUN/zookeeper/$i/zoo.cfg" \
      > "$RUN/zookeeper/$i/log" 2>&1 &
    PIDS+=($!); eval "PID_$i=$!"
  done
}

run_workloads() { # run_workloads LABEL
  for op in create set get; do
    "$BENCH" load --servers "$(servers)" --op "$op" --clients "$CLIENTS" \
      --seconds "$SECONDS_PER_RUN" --label "$1"
  done
}

failover() { # failover LABEL -> prints ms
  local leader=""
  for i in 1 2 3; do [ "$(mode $i)" = leader ] && leader=$i; done
  [ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
  local survivors=""
  for i in 1 2 3; do
    [ "$i" = "$leader" ] || survivors="${survivors:+$survivors,}127.0.0.$i:$CLIENT_PORT"
  done
  local pid_var="PID_$leader"
  local since
  since=$(date +%s%3N)
  kill -9 "${!pid_var}"
  "$BENCH" probe --servers "$survivors" --since-ms "$since"
}

stop_all() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
  sleep 1
}

{
  echo "| system | op | clients | ops/s | p50 ms | p99 ms |"
  echo "|---|---|---|---|---|---|"
} > "$RUN/table.md"

start_strata; wait_all_serving
run_workloads strata >> "$RUN/table.md"
STRATA_FAILOVER=$(failover strata)
stop_all

start_zookeeper; wait_all_serving
run_workloads zookeeper >> "$RUN/table.md"
ZK_FAILOVER=$(failover zookeeper)
stop_all

{
  cat "$RUN/table.md"
  echo
  echo "| system | leader failover (SIGKILL → next write acknowledged) |"
  echo "|---|---|"
  echo "| strata | ${STRATA_FAILOVER} ms |"
  echo "| zookeeper | ${ZK_FAILOVER} ms |"
  echo
  echo "Apache ZooKeeper $(basename "$(dirname "$ZK_LIB")"), tickTime=2000, snapCount=$SNAP_COUNT, three servers on 127.0.0.1-3, same disk; ${SECONDS_PER_RUN}s per cell; 1 KiB values."
} | tee "$OUT"
