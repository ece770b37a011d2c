#!/usr/bin/env bash
# Many partitions: Strata vs Apache Kafka, same machine, same run, same load generator.
#
#   bench/partitions.sh [OUTPUT.md]
#
# 1. One broker, a topic of 10 and then of 10,000 partitions (PARTITIONS), each on a fresh
#    data directory: Kafka's ProducerPerformance writes RECORDS records of 100 B at
#    RATE records/s spread over every partition (RoundRobinPartitioner, acks=1, linger.ms=5),
#    so at 10,000 partitions each gets a few records a second. Reported: the producer's
#    p50/p99 latency, the broker's CPU seconds per million records and the producer's own
#    (the load generator: a cell where it needs more than a core is client-bound), the
#    99th percentile of Strata's own time per Produce request (its request-duration
#    histogram, as the bucket bound it falls under), the broker's resident memory and
#    open files after the run, and how long the topic took to create.
#    Apache Kafka is 4.3.1 in KRaft mode (tools/run-apache-kafka.sh, 1 GiB heap).
# 2. Three brokers replicating a topic of CLUSTER_PARTITIONS partitions (replication
#    factor 3) written the same way at CLUSTER_RATE: the CPU all brokers spend per record,
#    with the followers in incremental fetch sessions (KIP-227) and without them
#    (max.incremental.fetch.session.cache.slots=0 on the leaders, so every fetch names
#    every partition), next to Apache Kafka 3.9 in ZooKeeper mode.
#
# ROUNDS rounds (default 1), systems alternating; medians with min–max when more than one.
# CLUSTER_PARTITIONS=0 skips part 2.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
out="${1:-}"
work="$(mktemp -d /tmp/strata-partitions.XXXXXX)"

# Below the ephemeral range (32768+), see bench/restart.sh.
PORT="${PORT:-29492}"
META_PORT="${META_PORT:-29481}"
METRICS_PORT="${METRICS_PORT:-29483}"
ROUNDS="${ROUNDS:-1}"
PARTITIONS="${PARTITIONS:-10 10000}"
RECORDS="${RECORDS:-300000}"
RATE="${RATE:-20000}"
CLUSTER_PARTITIONS="${CLUSTER_PARTITIONS:-1000}"
CLUSTER_RECORDS="${CLUSTER_RECORDS:-300000}"
CLUSTER_RATE="${CLUSTER_RATE:-10000}"
KAFKA39=3.9.1
PRODUCER_PROPS="acks=1 linger.ms=5 partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner"

bash "$here/tools/setup-kafka.sh" >/dev/null
bash "$here/tools/setup-kafka.sh" "$KAFKA39" >/dev/null
zk_lib="$(bash "$here/tools/setup-zookeeper.sh")"
(cd "$here" && cargo build -q --release -p strata-broker -p strata-coordinator)
open_files() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# produce BOOTSTRAP TOPIC RECORDS RATE: ProducerPerformance's summary line; the
# producer's CPU seconds (user + system) go to $work/producer-cpu.
produce() {
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S" -o "$work/producer-time" \
        bash "$here/tools/kafka-class.sh" org.apache.kafka.tools.ProducerPerformance \
        --topic "$2" --num-records "$3" --record-size 100 --throughput "$4" \
        --producer-props bootstrap.servers="$1" $PRODUCER_PROPS 2>/dev/null | tail -1
    awk '{ printf "%.2f", $1 + $2 }' "$work/producer-time" >"$work/producer-cpu"
}

# produce_buckets METRICS_ADDRESS: Strata's Produce request-duration histogram, one
# "bound count" line per bucket.
produce_buckets() {
    curl -sf "http://$1/metrics" | sed -nE \
        's/^strata_broker_request_duration_seconds_bucket\{api="Produce",le="([^"]+)"\} ([0-9]+)$/\1 \2/p'
}

# produce_p99_bound BEFORE AFTER: the upper bound (ms) of the first bucket that holds 99 %
# of the Produce requests counted between two produce_buckets.
produce_p99_bound() {
    awk 'NR == FNR { before[$1] = $2; next }
        { bounds[n] = $1; counts[n++] = $2 - before[$1] }
        END {
            for (i = 0; i < n; i++) if (counts[i] >= 0.99 * counts[n - 1]) {
                if (bounds[i] == "+Inf") print "inf"; else printf "%g", bounds[i] * 1000; exit }
        }' "$1" "$2"
}

# create_topic BOOTSTRAP TOPIC PARTITIONS RF: more than 5,000 partitions are created in
# two steps (a topic of 5,000, then grown), because KRaft refuses a request of more than
# 10,000 metadata records; both systems go the same way.
create_topic() {
    local first=$(( $3 > 5000 ? 5000 : $3 ))
    tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --create --topic "$2" \
        --partitions "$first" --replication-factor "$4" >/dev/null
    if [ "$3" -gt "$first" ]; then
        tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --alter --topic "$2" \
            --partitions "$3" >/dev/null
    fi
}

results="$work/results"
: >"$results"

# single SYSTEM PID BOOTSTRAP ROUND PARTITIONS: one cell of part 1 on a running broker.
single() {
    local name="$1" pid="$2" bootstrap="$3" round="$4" n="$5" start before after p
    start=$(now)
    create_topic "$bootstrap" "p$n" "$n" 1
    local created
    created=$(since "$start")
    # Every partition written once, unmeasured: a broker still creating its logs after
    # the topic is created (KRaft's do that asynchronously) is not what is measured.
    produce "$bootstrap" "p$n" "$((2 * n))" -1 >/dev/null
    local metrics="${6:-}" server_p99=-
    [ -n "$metrics" ] && produce_buckets "$metrics" >"$work/buckets-before"
    before=$(ticks "$pid")
    p=$(produce "$bootstrap" "p$n" "$RECORDS" "$RATE")
    after=$(ticks "$pid")
    if [ -n "$metrics" ]; then
        produce_buckets "$metrics" >"$work/buckets-after"
        server_p99=$(produce_p99_bound "$work/buckets-before" "$work/buckets-after")
    fi
    local p50 p99 cpu client_cpu
    p50=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 50th.*/\1/')
    p99=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 99th.*/\1/')
    cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$RECORDS" \
        'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    client_cpu=$(awk -v c="$(cat "$work/producer-cpu")" -v n="$RECORDS" 'BEGIN { printf "%.2f", c * 1e6 / n }')
    echo "single|$name|$n|$round|$p50|$p99|$cpu|$(rss_mib "$pid")|$(open_files "$pid")|$created|$client_cpu|$server_p99" >>"$results"
    local server=""
    [ "$server_p99" != - ] && server=", the broker's Produce p99 ≤ $server_p99 ms"
    echo "  $name, $n partitions: $p (producer CPU $(cat "$work/producer-cpu") s$server)" >&2
}

strata_single() {
    local round="$1" n="$2" dir="$work/strata-single"
    rm -rf "$dir"; mkdir -p "$dir"
    printf 'broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:%s\nlog.dirs=%s/logs\nmetrics.port=%s\nauto.create.topics.enable=false\n' \
        "$PORT" "$dir" "$METRICS_PORT" >"$dir/server.properties"
    "$bin/strata-broker" --config "$dir/server.properties" >"$dir/broker.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_port 127.0.0.1 "$PORT"
    single "Strata" "$pid" "127.0.0.1:$PORT" "$round" "$n" "127.0.0.1:$METRICS_PORT"
    stop_all
}

kafka_single() {
    local round="$1" n="$2" dir="$work/kafka-single"
    rm -rf "$dir"; mkdir -p "$dir"
    bash "$here/tools/run-apache-kafka.sh" "$PORT" "$dir" >"$dir.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_port 127.0.0.1 "$PORT"
    single "Apache Kafka 4.3.1" "$pid" "127.0.0.1:$PORT" "$round" "$n"
    stop_all
}

cluster_bootstrap="127.0.0.1:$PORT,127.0.0.2:$PORT,127.0.0.3:$PORT"
# Until no partition of TOPIC is under-replicated.
wait_in_sync() {
    for _ in $(seq 1 600); do
        local under
        under=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$cluster_bootstrap" \
            --describe --topic "$1" --under-replicated-partitions 2>/dev/null | grep -c Partition: || true)
        [ "$under" = 0 ] && return 0
        sleep 1
    done
    echo "$1 never got fully in sync" >&2
    return 1
}

# cluster SYSTEM ROUND PIDS...: part 2 on a running cluster.
cluster() {
    local name="$1" round="$2"; shift 2
    for i in 1 2 3; do wait_port "127.0.0.$i" "$PORT"; done
    local ok=0
    for _ in $(seq 1 120); do
        if create_topic "$cluster_bootstrap" many "$CLUSTER_PARTITIONS" 3 2>/dev/null; then ok=1; break; fi
        sleep 1
    done
    [ "$ok" = 1 ] || { echo "$name: topic not created" >&2; return 1; }
    wait_in_sync many
    produce "$cluster_bootstrap" many "$((2 * CLUSTER_PARTITIONS))" -1 >/dev/null
    local before after p
    before=$(ticks "$@")
    p=$(produce "$cluster_bootstrap" many "$CLUSTER_RECORDS" "$CLUSTER_RATE")
    after=$(ticks "$@")
    local p99 cpu rss=0 pid
    p99=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 99th.*/\1/')
    cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$CLUSTER_RECORDS" \
        'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    for pid in "$@"; do rss=$((rss + $(rss_mib "$pid"))); done
    echo "cluster|$name|$CLUSTER_PARTITIONS|$round|$p99|$cpu|$rss" >>"$results"
    echo "  $name: $p" >&2
}

# zk_cluster ROUND NAME KIND [PROPERTY]: a coordinator and three brokers of KIND (strata:
# strata-coordinator and strata-brokers, with PROPERTY added to each broker's config;
# kafka39: Apache ZooKeeper and Kafka 3.9 brokers), then part 2 on them.
zk_cluster() {
    local round="$1" name="$2" kind="$3" extra="${4:-}" dir="$work/cluster"
    rm -rf "$dir"; mkdir -p "$dir/zk"
    printf 'tickTime=2000\ndataDir=%s/zk\nclientPort=%s\nclientPortAddress=127.0.0.1\n' "$dir" "$META_PORT" >"$dir/zoo.cfg"
    if [ "$kind" = strata ]; then
        "$bin/strata-coordinator" --config "$dir/zoo.cfg" >"$dir/zk.log" 2>&1 &
    else
        java -Xmx512m -Dzookeeper.admin.enableServer=false -cp "$zk_lib/*" \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/zk.log" 2>&1 &
    fi
    pids+=($!)
    wait_port 127.0.0.1 "$META_PORT"
    local brokers=()
    for i in 1 2 3; do
        {
            echo "broker.id=$i"
            echo "listeners=PLAINTEXT://127.0.0.$i:$PORT"
            echo "log.dirs=$dir/data$i"
            echo "zookeeper.connect=127.0.0.1:$META_PORT/$kind"
            [ "$kind" = strata ] && echo "metrics.port=0"
            [ -n "$extra" ] && echo "$extra"
            cluster_props
        } >"$dir/server$i.properties"
        if [ "$kind" = strata ]; then
            "$bin/strata-broker" --config "$dir/server$i.properties" >"$dir/broker$i.log" 2>&1 &
        else
            KAFKA_VERSION=$KAFKA39 KAFKA_HEAP_OPTS="-Xmx1g -Xms1g" \
                bash "$here/tools/kafka-class.sh" kafka.Kafka "$dir/server$i.properties" >"$dir/broker$i.log" 2>&1 &
        fi
        pids+=($!)
        brokers+=($!)
    done
    cluster "$name" "$round" "${brokers[@]}"
    stop_all
}

sessions() { zk_cluster "$1" "Strata, fetch sessions" strata; }
full_fetches() {
    zk_cluster "$1" "Strata, full fetches" strata max.incremental.fetch.session.cache.slots=0
}
kafka39() { zk_cluster "$1" "Apache Kafka $KAFKA39 (ZooKeeper)" kafka39; }

for round in $(seq 1 "$ROUNDS"); do
    for n in $PARTITIONS; do
        echo "== round $round: one broker, $n partitions" >&2
        if [ $((round % 2)) = 1 ]; then
            strata_single "$round" "$n"; kafka_single "$round" "$n"
        else
            kafka_single "$round" "$n"; strata_single "$round" "$n"
        fi
    done
    [ "$CLUSTER_PARTITIONS" = 0 ] && continue
    echo "== round $round: three brokers, $CLUSTER_PARTITIONS partitions" >&2
    if [ $((round % 2)) = 1 ]; then
        sessions "$round"; full_fetches "$round"; kafka39 "$round"
    else
        kafka39 "$round"; full_fetches "$round"; sessions "$round"
    fi
done

python3 - "$results" >"$work/table.md" <<'EOF'
import statistics
import sys
from collections import defaultdict

rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1]) if line.strip()]


def cell(values, digits=0):
    values = [float(v) for v in values]
    fmt = f"{{:,.{digits}f}}"
    m = fmt.format(statistics.median(values))
    if len(values) > 1 and min(values) != max(values):
        m += f" ({fmt.format(min(values))}–{fmt.format(max(values))})"
    return m


single = defaultdict(list)
cluster = defaultdict(list)
for r in rows:
    (single if r[0] == "single" else cluster)[(r[1], int(r[2]))].append(r[3:])
print("One broker, 100 B records spread over every partition:\n")
print("| system | partitions | p50 ms | p99 ms | broker's Produce p99 ms | CPU s / M records | producer CPU s / M records "
      "| RSS MiB | open files | topic created in s |")
print("|---|---|---|---|---|---|---|---|---|---|")


def bound(values):
    # Histogram bucket bounds: the largest of the rounds, as "≤ x".
    values = [v for v in values if v != "-"]
    if not values:
        return "—"
    return "≤ " + max(values, key=lambda v: float("inf") if v == "inf" else float(v))


for (name, n), runs in sorted(single.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    cols = list(zip(*runs))
    print(f"| {name} | {n:,} | {cell(cols[1])} | {cell(cols[2])} | {bound(cols[8])} | {cell(cols[3], 2)} "
          f"| {cell(cols[7], 2)} | {cell(cols[4])} | {cell(cols[5])} | {cell(cols[6], 1)} |")
if not cluster:
    sys.exit(0)
print("\nThree brokers, replication factor 3, 100 B records spread over every partition:\n")
print("| system | partitions | p99 ms | CPU s / M records (all brokers) | RSS MiB (all brokers) |")
print("|---|---|---|---|---|")
for (name, n), runs in cluster.items():
    cols = list(zip(*runs))
    print(f"| {name} | {n:,} | {cell(cols[1])} | {cell(cols[2], 2)} | {cell(cols[3])} |")
EOF
cat "$work/table.md"
if [ -n "$out" ]; then
    cp "$work/table.md" "$out"
fi
