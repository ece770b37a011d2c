#!/usr/bin/env bash
# Restart after kill -9: how long a broker with a large log takes to serve again, Strata vs
# Apache Kafka, same machine, same data volume, same run.
#
#   bench/restart.sh [OUTPUT.md]
#
# Each broker (one node; Kafka 4.3.1 in KRaft mode, tools/run-apache-kafka.sh, 1 GiB heap)
# gets a topic of PARTITIONS partitions with segment.bytes=SEGMENT_BYTES, is filled with
# GIB GiB of 1 KiB records by Kafka's ProducerPerformance (acks=1), runs on for SETTLE
# seconds (each system's periodic checkpoints happen as they would), and is killed with
# SIGKILL. It is then started again on the same data; measured: the time from the start
# until the broker accepts connections, and until a new record is acknowledged by the
# restarted broker (kcat retrying from the start, as a real client would), with what
# the broker logged about recovery. The data is deleted between systems.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
out="${1:-}"
work="$(mktemp -d /tmp/strata-restart.XXXXXX)"

# Below the ephemeral range (32768+): a client polling a port nobody listens on yet can
# otherwise connect to itself from that very port and keep the broker from binding it.
PORT="${PORT:-29792}"
GIB="${GIB:-10}"
PARTITIONS="${PARTITIONS:-10}"
SEGMENT_BYTES="${SEGMENT_BYTES:-10485760}"
SETTLE="${SETTLE:-15}"
SYSTEMS="${SYSTEMS:-strata kafka}"

bash "$here/tools/setup-kafka.sh" >/dev/null
bash "$here/tools/setup-kcat.sh" >/dev/null
(cd "$here" && cargo build -q --release -p strata-broker)

# until_listening START: seconds from START until PORT accepts a connection.
until_listening() {
    for _ in $(seq 1 36000); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            since "$1"
            return 0
        fi
        sleep 0.01
    done
    echo "nothing listening on $PORT" >&2
    return 1
}

# until_acknowledged START: seconds from START until a new record is acknowledged (kcat,
# librdkafka, retrying until it is, so the client's own start costs milliseconds).
until_acknowledged() {
    local start="$1"
    for _ in $(seq 1 6000); do
        if echo restarted | kcat -P -b "127.0.0.1:$PORT" -t big -p 0 -X message.timeout.ms=60000 \
            -X request.required.acks=1 2>/dev/null; then
            since "$start"
            return 0
        fi
        sleep 0.05
    done
    echo "no record acknowledged after the restart" >&2
    return 1
}

results="$work/results"
: >"$results"

# fill: the topic, then GIB GiB of 1 KiB records.
fill() {
    tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" --create --topic big \
        --partitions "$PARTITIONS" --replication-factor 1 --config segment.bytes="$SEGMENT_BYTES" >/dev/null
    tool org.apache.kafka.tools.ProducerPerformance --topic big --num-records "$((GIB * 1024 * 1024))" \
        --record-size 1024 --throughput -1 --producer-props bootstrap.servers="127.0.0.1:$PORT" \
        acks=1 linger.ms=5 batch.size=131072 2>/dev/null | tail -1 >&2
    sleep "$SETTLE"
}

# measure NAME DATADIR START_COMMAND...: fill, kill -9, restart, time it.
measure() {
    local name="$1" data="$2"; shift 2
    echo "== $name" >&2
    "$@" >"$work/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    until_listening "$(now)" >/dev/null
    fill
    local bytes segments
    bytes=$(du -sb "$data" | cut -f1)
    segments=$(find "$data" -name '*.log' | wc -l)
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    # The old process's sockets are gone before the new one starts.
    while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done
    local start listening acked
    start=$(now)
    "$@" >>"$work/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    listening=$(until_listening "$start")
    acked=$(until_acknowledged "$start")
    echo "  $name: listening after ${listening}s, first record acknowledged after ${acked}s" >&2
    echo "$name|$bytes|$segments|$listening|$acked" >>"$results"
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    grep -iE "recover|loaded|started|serving" "$work/$name.log" | tail -8 >&2 || true
    rm -rf "$data"
}

for system in $SYSTEMS; do
    case "$system" in
    strata)
        dir="$work/strata"
        mkdir -p "$dir"
        printf 'broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:%s\nlog.dirs=%s/logs\nmetrics.port=0\n' \
            "$PORT" "$dir" >"$dir/server.properties"
        measure Strata "$dir/logs" "$bin/strata-broker" --config "$dir/server.properties"
        ;;
    kafka)
        dir="$work/kafka"
        mkdir -p "$dir"
        measure "Apache Kafka 4.3.1" "$dir/logs" bash "$here/tools/run-apache-kafka.sh" "$PORT" "$dir"
        ;;
    esac
done

{
    echo "| system | log on disk | segments | accepting connections after | first record acknowledged after |"
    echo "|---|---|---|---|---|"
    while IFS='|' read -r name bytes segments listening acked; do
        printf '| %s | %s GiB | %s | %s s | %s s |\n' "$name" \
            "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1073741824 }')" "$segments" "$listening" "$acked"
    done <"$results"
} | tee "$work/table.md"
if [ -n "$out" ]; then
    cp "$work/table.md" "$out"
fi
