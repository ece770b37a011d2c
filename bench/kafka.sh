#!/usr/bin/env bash
# Produce/consume throughput and latency: Strata vs Apache Kafka, same machine, same run,
# same load generator (Kafka's own kafka-producer-perf-test / kafka-consumer-perf-test).
#
#   bench/kafka.sh [OUTPUT.md]
#
# Each broker is started the same way (one node, fresh data directory under /tmp, no
# fsync per message, default retention), benchmarked alone while the other is stopped,
# then stopped. Prints a markdown table (also written to OUTPUT.md when given).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${STRATA_CACHE:-$HOME/.cache/strata}"
target="${CARGO_TARGET_DIR:-$cache/target}"
broker_bin="$target/release/strata-broker"
out="${1:-}"
work="$(mktemp -d /tmp/strata-bench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

KAFKA_PORT="${KAFKA_PORT:-39192}"
STRATA_PORT="${STRATA_PORT:-39292}"
RECORDS_1K="${RECORDS_1K:-300000}"
RECORDS_100="${RECORDS_100:-2000000}"
PRODUCER_PROPS="${PRODUCER_PROPS:-acks=1 linger.ms=5 batch.size=131072 compression.type=none}"

bash "$here/tools/setup-kafka.sh" >/dev/null
[ -x "$broker_bin" ] || (cd "$here" && cargo build --release -p strata-broker)
kafka() { bash "$here/tools/kafka-class.sh" "$@"; }

wait_port() {
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listening on $1" >&2
    return 1
}

page_cache_bandwidth() {
    # Writes that stay in the page cache, as a broker's appends do: the ceiling for
    # produce throughput on this machine.
    local f="$work/pagecache.bin"
    local line
    line=$(dd if=/dev/zero of="$f" bs=1M count=2048 2>&1 | tail -1)
    rm -f "$f"
    echo "$line" | sed -E 's/.*, ([0-9.]+ [GM]B\/s)$/\1/'
}

# perf NAME BOOTSTRAP: runs the producer and consumer tests, prints table rows.
perf() {
    local name="$1" bootstrap="$2"
    for size in 1024 100; do
        local n topic
        if [ "$size" = 1024 ]; then n=$RECORDS_1K; else n=$RECORDS_100; fi
        topic="bench-$size"
        kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create \
            --topic "$topic" --partitions 3 --replication-factor 1 >/dev/null
        local p
        # shellcheck disable=SC2086
        p=$(kafka org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$n" \
            --record-size "$size" --throughput -1 \
            --producer-props bootstrap.servers="$bootstrap" $PRODUCER_PROPS 2>/dev/null | tail -1)
        # "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th, ..."
        local rps mbs p50 p99
        rps=$(echo "$p" | sed -E 's/.* sent, ([0-9.]+) records\/sec.*/\1/' | cut -d. -f1)
        mbs=$(echo "$p" | sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/')
        p50=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 50th.*/\1/')
        p99=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 99th.*/\1/')
        local c crps cmbs
        c=$(kafka org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$bootstrap" \
            --topic "$topic" --num-records "$n" --timeout 60000 2>/dev/null | tail -1)
        # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
        # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec: the fetch rates
        # exclude the group join, which the group benchmark below measures on its own.
        cmbs=$(echo "$c" | cut -d, -f9 | tr -d ' ')
        crps=$(echo "$c" | cut -d, -f10 | tr -d ' ' | cut -d. -f1)
        echo "$name|$size|$rps|$mbs|$p50|$p99|$crps|$cmbs"
    done
}

results="$work/results"
groups="$work/groups"
: >"$results"
: >"$groups"
python="$cache/venv/bin/python"
bash "$here/tools/setup-python.sh" >/dev/null
GROUP_RECORDS="${GROUP_RECORDS:-600000}"
group_bench() {
    echo "$1|$("$python" "$here/bench/groups.py" "$2" "$GROUP_RECORDS" | tail -1)" >>"$groups"
}

echo "== Apache Kafka" >&2
mkdir -p "$work/kafka"
bash "$here/tools/run-apache-kafka.sh" $KAFKA_PORT "$work/kafka" >"$work/kafka.log" 2>&1 &
pids+=($!)
wait_port $KAFKA_PORT
perf "Apache Kafka" 127.0.0.1:$KAFKA_PORT >>"$results"
group_bench "Apache Kafka" 127.0.0.1:$KAFKA_PORT
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

echo "== Strata" >&2
mkdir -p "$work/strata"
"$broker_bin" --override listeners=PLAINTEXT://127.0.0.1:$STRATA_PORT --override "log.dirs=$work/strata/logs" \
    --override metrics.port=0 --override group.initial.rebalance.delay.ms=0 >"$work/strata.log" 2>&1 &
pids+=($!)
wait_port $STRATA_PORT
perf "Strata" 127.0.0.1:$STRATA_PORT >>"$results"
group_bench "Strata" 127.0.0.1:$STRATA_PORT
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

bandwidth=$(page_cache_bandwidth)
kafka_version=$(sed -n 's/^KAFKA_VERSION="${KAFKA_VERSION:-\(.*\)}"$/\1/p' "$here/tools/setup-kafka.sh")

{
    echo "| broker | record | produce records/s | produce MB/s | p50 ms | p99 ms | consume (fetch) records/s | consume (fetch) MB/s |"
    echo "|---|---|---|---|---|---|---|---|"
    while IFS='|' read -r name size rps mbs p50 p99 crps cmbs; do
        echo "| $name | $size B | $rps | $mbs | $p50 | $p99 | $crps | $cmbs |"
    done <"$results"
    echo
    echo "Strata / Kafka:"
    echo
    echo "| record | produce | consume |"
    echo "|---|---|---|"
    for size in 1024 100; do
        k=$(grep "^Apache Kafka|$size|" "$results")
        s=$(grep "^Strata|$size|" "$results")
        awk -v k="$k" -v s="$s" -v size="$size" 'BEGIN {
            split(k, a, "|"); split(s, b, "|");
            printf "| %s B | %.2fx | %.2fx |\n", size, b[3] / a[3], b[7] / a[7] }'
    done
    echo
    echo "Consumer group: 3 members (confluent-kafka) on a 6-partition topic, $GROUP_RECORDS records of 100 B;"
    echo "rebalance = one member leaves until the other two own all partitions again."
    echo
    echo "| broker | group consume records/s | MB/s | rebalance ms |"
    echo "|---|---|---|---|"
    while IFS='|' read -r name line; do
        read -r rps mbs rebalance <<<"$line"
        echo "| $name | $rps | $mbs | $rebalance |"
    done <"$groups"
    echo
    echo "Page-cache write bandwidth in this run (dd, 2 GiB, no fsync): $bandwidth."
    echo "Apache Kafka $kafka_version (KRaft, single node, JVM defaults of tools/run-apache-kafka.sh);"
    echo "load generator: Kafka's ProducerPerformance/ConsumerPerformance, producer props: \`$PRODUCER_PROPS\`;"
    echo "$RECORDS_1K records of 1 KiB and $RECORDS_100 of 100 B, 3 partitions; $(nproc) cores."
} | tee "${out:-/dev/null}"
