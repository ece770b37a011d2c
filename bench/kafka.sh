#!/usr/bin/env bash
# Produce, consume and consumer-group throughput: Strata vs Apache Kafka, same machine, same
# run, same load generators.
#
#   bench/kafka.sh [OUTPUT.md]      # tables on stdout and in OUTPUT.md, the chart in OUTPUT.svg
#
# ROUNDS rounds (default 3); in each, both brokers are benchmarked one after the other,
# alone, each on a fresh data directory (no fsync per message, default retention), the
# order alternating between rounds so neither always runs on a warmer machine. Every cell
# is reported as the median of the rounds with min–max, next to the CPU seconds each side
# spent per million records (/proc/<pid>/stat of the broker; the load generator's own
# CPU from /usr/bin/time or, for the group cell, from its process). On two shared cores
# the CPU cost is the stable figure and throughput the noisy one; a cell where the load
# generator used more CPU than the broker and the two together kept the machine busy is
# marked client-bound: its throughput says more about the client than about the broker.
#
# Load generators: Kafka's own ProducerPerformance / ConsumerPerformance for produce and
# consume; broker/examples/group_bench.rs (librdkafka, three members in one group) for the
# group cell and the rebalance after a member leaves; broker/examples/txn_bench.rs
# (librdkafka) for transactional produce, committing every 100 and every 1,000 records,
# with the end-to-end latency of a read_committed reader.
#
# BASELINE_BROKER=path/to/strata-broker adds a third system, "Strata (baseline)", run the
# same way in every round: an older build, for a before/after comparison of a change.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
broker_bin="$bin/strata-broker"
group_bin="$bin/examples/group_bench"
txn_bin="$bin/examples/txn_bench"
out="${1:-}"
work="$(mktemp -d /tmp/strata-bench.XXXXXX)"

# Below the ephemeral range (32768+): a probe of a port nobody listens on yet can connect
# to itself from that port and keep the broker from binding it (see bench/restart.sh).
KAFKA_PORT="${KAFKA_PORT:-29192}"
STRATA_PORT="${STRATA_PORT:-29292}"
# Each system's SSL listener (same certificate, made here), for the TLS cells.
KAFKA_TLS_PORT="${KAFKA_TLS_PORT:-29195}"
STRATA_TLS_PORT="${STRATA_TLS_PORT:-29295}"
ROUNDS="${ROUNDS:-3}"
RECORDS_1K="${RECORDS_1K:-300000}"
RECORDS_100="${RECORDS_100:-2000000}"
GROUP_RECORDS="${GROUP_RECORDS:-5000000}"
TXN_RECORDS="${TXN_RECORDS:-30000}"
# Extra consumer properties for the group members, e.g. fetch.queue.backoff.ms=0.
GROUP_PROPS="${GROUP_PROPS:-}"
PRODUCER_PROPS="${PRODUCER_PROPS:-acks=1 linger.ms=5 batch.size=131072 compression.type=none}"

bash "$here/tools/setup-kafka.sh" >/dev/null
# A no-op when both are up to date.
(cd "$here" && cargo build -q --release -p strata-broker --bin strata-broker --example group_bench \
    --example txn_bench)

# One certificate for both brokers' SSL listeners (EC P-256, 127.0.0.1), and the client
# side of it: Kafka's tools trust the CA through a PEM trust store.
tls_dir="$work/tls"
mkdir -p "$tls_dir"
(
    cd "$tls_dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
        -out ca.pem -days 2 -subj "/CN=bench CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
        -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt \
        -days 2 -extfile server.ext 2>/dev/null
    cat server.key server.crt >server.pem
)
tls_client="$tls_dir/client.properties"
printf 'security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s\n' \
    "$tls_dir/ca.pem" >"$tls_client"

# cpu_seconds PID: user + system CPU seconds of a running process.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
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

# timed OUTPUT COMMAND...: runs COMMAND with its stdout in OUTPUT; prints
# "elapsed_s client_cpu_s" of the run (GNU time, children included).
timed() {
    local output="$1"; shift
    /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" >"$output" 2>/dev/null
    awk '{ print $1, $2 + $3 }' "$work/time"
}

minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

# row SYSTEM ROUND CELL RECORDS RATE MBS P50 P99 EXTRA ELAPSED BROKER_CPU CLIENT_CPU
row() { local IFS='|'; echo "$*" >>"$results"; }

# cells NAME PID BOOTSTRAP ROUND SIZE [TLS]: the produce and consume cells of one record
# size; with TLS, through the broker's SSL listener at BOOTSTRAP (cells named "... TLS").
cells() {
    local name="$1" pid="$2" bootstrap="$3" round="$4" size="$5" tls="${6:-}"
    local n topic suffix="" client_config=()
    if [ "$size" = 1024 ]; then n=$RECORDS_1K; else n=$RECORDS_100; fi
    topic="bench-$size"
    if [ -n "$tls" ]; then
        suffix=" TLS"; topic="bench-$size-tls"
    fi
    tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create \
        --topic "$topic" --partitions 3 --replication-factor 1 ${tls:+--command-config "$tls_client"} >/dev/null
    local before after t p rps mbs p50 p99
    before=$(cpu_seconds "$pid")
    [ -n "$tls" ] && client_config=(--producer.config "$tls_client")
    # shellcheck disable=SC2086
    t=$(timed "$work/produce.out" bash "$here/tools/kafka-class.sh" \
        org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$n" \
        --record-size "$size" --throughput -1 "${client_config[@]}" \
        --producer-props bootstrap.servers="$bootstrap" $PRODUCER_PROPS)
    after=$(cpu_seconds "$pid")
    # "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th, ..."
    p=$(tail -1 "$work/produce.out")
    rps=$(echo "$p" | sed -E 's/.* sent, ([0-9.]+) records\/sec.*/\1/' | cut -d. -f1)
    mbs=$(echo "$p" | sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/')
    p50=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 50th.*/\1/')
    p99=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 99th.*/\1/')
    read -r elapsed client <<<"$t"
    row "$name" "$round" "produce $size B$suffix" "$n" "$rps" "$mbs" "$p50" "$p99" "" "$elapsed" \
        "$(minus "$after" "$before")" "$client"

    before=$(cpu_seconds "$pid")
    [ -n "$tls" ] && client_config=(--consumer.config "$tls_client")
    t=$(timed "$work/consume.out" bash "$here/tools/kafka-class.sh" \
        org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$bootstrap" \
        --topic "$topic" --num-records "$n" --timeout 60000 "${client_config[@]}")
    after=$(cpu_seconds "$pid")
    # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec: the fetch rates
    # exclude the group join (the group cell measures consumption in a steady group).
    local c cmbs crps
    c=$(tail -1 "$work/consume.out")
    cmbs=$(echo "$c" | cut -d, -f9 | tr -d ' ')
    crps=$(echo "$c" | cut -d, -f10 | tr -d ' ' | cut -d. -f1)
    read -r elapsed client <<<"$t"
    row "$name" "$round" "consume $size B$suffix" "$n" "$crps" "$cmbs" "" "" "" "$elapsed" \
        "$(minus "$after" "$before")" "$client"
}

# perf NAME PID BOOTSTRAP ROUND [TLS_BOOTSTRAP]: the produce and consume cells for both
# record sizes, and for 1 KiB over TLS when the broker has an SSL listener.
perf() {
    local name="$1" pid="$2" bootstrap="$3" round="$4" tls_bootstrap="${5:-}"
    cells "$name" "$pid" "$bootstrap" "$round" 1024
    if [ -n "$tls_bootstrap" ]; then cells "$name" "$pid" "$tls_bootstrap" "$round" 1024 tls; fi
    cells "$name" "$pid" "$bootstrap" "$round" 100
}

# group NAME PID BOOTSTRAP ROUND: the group cell (its CPU figures come from group_bench).
group() {
    local name="$1" pid="$2" bootstrap="$3" round="$4" line rps mbs rebalance bcpu ccpu
    # shellcheck disable=SC2086 # GROUP_PROPS holds several key=value words
    line=$("$group_bin" "$bootstrap" "$GROUP_RECORDS" "$pid" $GROUP_PROPS | tail -1)
    read -r rps mbs rebalance bcpu ccpu <<<"$line"
    row "$name" "$round" "group 100 B" "$GROUP_RECORDS" "$rps" "$mbs" "" "" "$rebalance" \
        "$(awk -v n="$GROUP_RECORDS" -v r="$rps" 'BEGIN { printf "%.3f", n / r }')" "$bcpu" "$ccpu"
}

# txn NAME PID BOOTSTRAP ROUND: transactional produce of 100 B records, committing every
# 100 and every 1,000; the latency columns are a read_committed reader's end to end.
txn() {
    local name="$1" pid="$2" bootstrap="$3" round="$4" per line rps mbs p50 p99 bcpu ccpu
    for per in 100 1000; do
        line=$("$txn_bin" "$bootstrap" "$TXN_RECORDS" "$per" "$pid" | tail -1)
        read -r rps mbs p50 p99 bcpu ccpu <<<"$line"
        row "$name" "$round" "txn produce 100 B, $per/txn" "$TXN_RECORDS" "$rps" "$mbs" "$p50" "$p99" "" \
            "$(awk -v n="$TXN_RECORDS" -v r="$rps" 'BEGIN { printf "%.3f", n / r }')" "$bcpu" "$ccpu"
    done
}

run_kafka() {
    local round="$1" dir="$work/kafka-$1"
    echo "== round $round: Apache Kafka" >&2
    mkdir -p "$dir"
    SSL_PORT="$KAFKA_TLS_PORT" SSL_KEYSTORE="$tls_dir/server.pem" \
        bash "$here/tools/run-apache-kafka.sh" "$KAFKA_PORT" "$dir" >"$dir.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_port 127.0.0.1 "$KAFKA_PORT"
    perf "Apache Kafka" "$pid" "127.0.0.1:$KAFKA_PORT" "$round" "127.0.0.1:$KAFKA_TLS_PORT"
    group "Apache Kafka" "$pid" "127.0.0.1:$KAFKA_PORT" "$round"
    txn "Apache Kafka" "$pid" "127.0.0.1:$KAFKA_PORT" "$round"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

# run_strata ROUND [BINARY NAME]: the Strata cells, by default with this tree's build (a
# baseline build runs without the TLS and transaction cells).
run_strata() {
    local round="$1" bin="${2:-$broker_bin}" name="${3:-Strata}" dir="$work/strata-$1"
    local tls=() tls_bootstrap=""
    if [ -z "${2:-}" ]; then
        tls=(--override "listeners=PLAINTEXT://127.0.0.1:$STRATA_PORT,SSL://127.0.0.1:$STRATA_TLS_PORT"
            --override ssl.keystore.type=PEM --override "ssl.keystore.location=$tls_dir/server.pem")
        tls_bootstrap="127.0.0.1:$STRATA_TLS_PORT"
    fi
    echo "== round $round: $name" >&2
    rm -rf "$dir"; mkdir -p "$dir"
    "$bin" --override "listeners=PLAINTEXT://127.0.0.1:$STRATA_PORT" "${tls[@]}" \
        --override "log.dirs=$dir/logs" --override metrics.port=0 \
        --override group.initial.rebalance.delay.ms=0 >"$dir.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_port 127.0.0.1 "$STRATA_PORT"
    perf "$name" "$pid" "127.0.0.1:$STRATA_PORT" "$round" "$tls_bootstrap"
    group "$name" "$pid" "127.0.0.1:$STRATA_PORT" "$round"
    # Older builds have no transactions.
    if [ -z "${2:-}" ]; then txn "$name" "$pid" "127.0.0.1:$STRATA_PORT" "$round"; fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

run_baseline() {
    [[ -n "${BASELINE_BROKER:-}" ]] && run_strata "$1" "$BASELINE_BROKER" "Strata (baseline)"
    return 0
}

results="$work/results"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then run_kafka "$round"; run_strata "$round"; run_baseline "$round"
    else run_baseline "$round"; run_strata "$round"; run_kafka "$round"; fi
done

bandwidth=$(page_cache_bandwidth)
kafka_version=$(sed -n 's/^KAFKA_VERSION="${KAFKA_VERSION:-\(.*\)}"$/\1/p' "$here/tools/setup-kafka.sh")
{
    # The chart goes next to OUTPUT.md (OUTPUT.svg) when there is one.
    python3 "$here/bench/table.py" "$results" "$(nproc)" ${out:+"${out%.md}.svg"}
    echo
    echo "Page-cache write bandwidth in this run (dd, 2 GiB, no fsync): $bandwidth."
    echo "Apache Kafka $kafka_version (KRaft, single node, tools/run-apache-kafka.sh, 1 GiB heap);"
    echo "Strata release build; neither fsyncs per message (both leave it to the OS, Kafka's default)."
    echo "Produce/consume: Kafka's ProducerPerformance/ConsumerPerformance, producer props"
    echo "\`$PRODUCER_PROPS\`, 3 partitions, $RECORDS_1K records of 1 KiB and $RECORDS_100 of 100 B;"
    echo "consume = ConsumerPerformance's fetch rate (after its group join). TLS cells: the same"
    echo "tools with security.protocol=SSL against each broker's SSL listener (one EC P-256"
    echo "certificate for both, TLS 1.3); Strata's fetched records pass through the TLS session"
    echo "instead of sendfile."
    echo "Group: broker/examples/group_bench (librdkafka), 3 members, 6 partitions, $GROUP_RECORDS records"
    echo "of 100 B consumed by the steady group${GROUP_PROPS:+ (member properties: $GROUP_PROPS)}; rebalance = a member leaves until the other two own"
    echo "all partitions again."
    echo "Transactions: broker/examples/txn_bench (librdkafka), $TXN_RECORDS records of 100 B to 3 partitions,"
    echo "a commit every 100 / 1,000 records; p50/p99 = creation to receipt by a read_committed reader."
    echo "$ROUNDS rounds, order alternating; $(nproc) cores."
} | tee "${out:-/dev/null}"
