#!/usr/bin/env bash
# Footprint: binary size, start-to-ready time, idle memory and memory at 10,000 client
# connections — strata-broker vs Apache Kafka 4.3.1 (KRaft, one node, 1 GiB heap) and
# strata-coordinator vs Apache ZooKeeper 3.9.3, same machine, same run.
#
#   bench/footprint.sh [OUTPUT.md]
#
# Ready means answering a client: a Metadata request (kcat -L) for a broker, `srvr` for a
# ZooKeeper server, polled every 20 ms from the moment the process is started. Idle RSS
# is read 5 s after ready. Then CONNECTIONS connections are opened (each sends one
# request and gets its answer: ApiVersions, or a ZooKeeper session's ConnectRequest) and
# held; RSS is read with all of them open. Every process runs on a fresh data directory.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
out="${1:-}"
work="$(mktemp -d /tmp/strata-footprint.XXXXXX)"

# Below the ephemeral range (32768+), see bench/restart.sh.
PORT="${PORT:-29892}"
CONNECTIONS="${CONNECTIONS:-10000}"

bash "$here/tools/setup-kcat.sh" >/dev/null
zk_lib="$(bash "$here/tools/setup-zookeeper.sh")"
(cd "$here" && cargo build -q --release -p strata-broker -p strata-coordinator)
kafka_libs="$(bash "$here/tools/setup-kafka.sh" | sed -n -e 's/.* jars in //p' -e 's/.* already in //p')"
python="$cache/venv/bin/python"
ulimit -n "$(ulimit -Hn)"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# stripped_size FILE: bytes of FILE without its debug information.
stripped_size() {
    strip -o "$work/stripped" "$1"
    stat -c %s "$work/stripped"
}

# ready START CHECK...: seconds from START until CHECK succeeds.
ready() {
    local start="$1"; shift
    for _ in $(seq 1 3000); do
        if "$@" >/dev/null 2>&1; then
            since "$start"
            return 0
        fi
        sleep 0.02
    done
    echo "never ready: $*" >&2
    return 1
}

broker_up() { kcat -L -b "127.0.0.1:$PORT" -m 1; }
zk_up() { echo srvr | timeout 1 "$python" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"srvr"); data = s.recv(4096)
sys.exit(0 if b"Mode" in data else 1)' "$PORT"; }

# hold KIND: opens CONNECTIONS connections that each did one exchange (from 40
# loopback addresses), prints how many got an answer, then holds them until killed.
hold() {
    exec "$python" - "$1" "$PORT" "$CONNECTIONS" <<'EOF'
import socket, struct, sys, time
kind, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if kind == "kafka":
    body = struct.pack(">hhih", 18, 0, 1, 4) + b"hold"  # ApiVersions v0
else:  # ConnectRequest: version, last zxid, timeout, session id, password
    body = struct.pack(">iqiqi", 0, 0, 40000, 0, 16) + bytes(16)
frame = struct.pack(">i", len(body)) + body
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                 source_address=(f"127.0.{1 + i % 2}.{2 + i % 20}", 0))
    s.sendall(frame)
    if s.recv(4096):
        held.append(s)
print(f"holding {len(held)}", flush=True)
time.sleep(3600)
EOF
}

results="$work/results"
: >"$results"

# measure NAME KIND START_COMMAND...
measure() {
    local name="$1" kind="$2"; shift 2
    echo "== $name" >&2
    local start pid t idle holder loaded
    start=$(now)
    "$@" >"$work/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    if [ "$kind" = kafka ]; then t=$(ready "$start" broker_up); else t=$(ready "$start" zk_up); fi
    sleep 5
    idle=$(rss_mib "$pid")
    hold "$kind" >"$work/hold.out" 2>"$work/hold.err" &
    holder=$!
    pids+=("$holder")
    for _ in $(seq 1 1200); do
        grep -q holding "$work/hold.out" 2>/dev/null && break
        kill -0 "$holder" 2>/dev/null || break
        sleep 0.1
    done
    local opened
    opened=$(sed -n 's/holding //p' "$work/hold.out")
    loaded=$(rss_mib "$pid")
    echo "  ready after ${t}s, idle ${idle} MiB, ${opened:-0} connections: ${loaded} MiB" >&2
    [ -n "$opened" ] || tail -3 "$work/hold.err" >&2
    echo "$name|$t|$idle|${opened:-0}|$loaded" >>"$results"
    stop_all
}

dir="$work/strata"; mkdir -p "$dir"
# Kafka has no max.connections by default; Strata's default is 10,000.
printf 'broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:%s\nlog.dirs=%s/logs\nmetrics.port=0\nmax.connections=%s\n' \
    "$PORT" "$dir" "$((CONNECTIONS + 100))" >"$dir/server.properties"
measure "strata-broker" kafka "$bin/strata-broker" --config "$dir/server.properties"
measure "Apache Kafka 4.3.1" kafka bash "$here/tools/run-apache-kafka.sh" "$PORT" "$work/kafka"
dir="$work/coordinator"; mkdir -p "$dir/data"
printf 'tickTime=2000\ndataDir=%s/data\nclientPort=%s\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n' \
    "$dir" "$PORT" >"$dir/zoo.cfg"
measure "strata-coordinator" zk "$bin/strata-coordinator" --config "$dir/zoo.cfg"
dir="$work/zookeeper"; mkdir -p "$dir/data"
sed "s|$work/coordinator|$dir|" "$work/coordinator/zoo.cfg" >"$dir/zoo.cfg"
measure "Apache ZooKeeper 3.9.3" zk java -Xmx1g -Dzookeeper.admin.enableServer=false -cp "$zk_lib/*" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg"

{
    echo "| process | ready after | idle RSS | connections held | RSS with them |"
    echo "|---|---|---|---|---|"
    while IFS='|' read -r name t idle n loaded; do
        echo "| $name | $t s | $idle MiB | $n | $loaded MiB |"
    done <"$results"
    echo
    echo "| binary | size | without debug information |"
    echo "|---|---|---|"
    for b in strata-broker strata-coordinator; do
        echo "| $b | $(mib "$(stat -c %s "$bin/$b")") MiB | $(mib "$(stripped_size "$bin/$b")") MiB |"
    done
    echo "| Apache Kafka 4.3.1 (jars in libs/, without a JVM) | $(mib "$(du -sb "$kafka_libs" | cut -f1)") MiB | |"
    echo "| Apache ZooKeeper 3.9.3 (jars, without a JVM) | $(mib "$(du -sb "$zk_lib" | cut -f1)") MiB | |"
} | tee "$work/table.md"
if [ -n "$out" ]; then
    cp "$work/table.md" "$out"
fi
