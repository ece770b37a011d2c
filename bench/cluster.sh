#!/usr/bin/env bash
# Three-broker clusters, side by side on this machine in one run: Strata (strata-brokers on
# a strata-coordinator), Apache Kafka 3.9 in ZooKeeper mode (on Apache ZooKeeper) and
# Apache Kafka 4.3.1 in KRaft mode (three combined broker+controller nodes).
#
#   bench/cluster.sh [OUTPUT.md]
#
# Every cluster: brokers on 127.0.0.1..3, one metadata server (ZooKeeper or
# strata-coordinator) or the three KRaft voters, a topic of 3 partitions with
# replication factor 3 and min.insync.replicas=2, no fsync per message (each system's
# default: durability by replication). Load generator: Kafka 4.3.1's ProducerPerformance
# with acks=all. Failover: bench/failover.py produces to partition 0 with acks=all, the
# partition's leader (a broker that is not the controller) is SIGKILLed, and the gap until
# the next acknowledged write is measured, with each system's default timeouts.
# Each cluster is benchmarked alone, then stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$here/bench/lib.sh"
out="${1:-}"
work="$(mktemp -d /tmp/strata-cluster-bench.XXXXXX)"

PORT="${PORT:-39392}"
META_PORT="${META_PORT:-39381}"
RECORDS_1K="${RECORDS_1K:-200000}"
RECORDS_100="${RECORDS_100:-1000000}"
PRODUCER_PROPS="${PRODUCER_PROPS:-acks=all linger.ms=5 batch.size=131072 compression.type=none}"
KAFKA39=3.9.1

bash "$here/tools/setup-kafka.sh" >/dev/null
bash "$here/tools/setup-kafka.sh" "$KAFKA39" >/dev/null
zk_lib="$(bash "$here/tools/setup-zookeeper.sh")"
bash "$here/tools/setup-python.sh" >/dev/null
python="$cache/venv/bin/python"
[ -x "$bin/strata-broker" ] && [ -x "$bin/strata-coordinator" ] ||
    (cd "$here" && cargo build --release -p strata-broker -p strata-coordinator)
bootstrap="127.0.0.1:$PORT,127.0.0.2:$PORT,127.0.0.3:$PORT"

# Until Metadata from the cluster lists three brokers.
wait_brokers() {
    for _ in $(seq 1 300); do
        n=$(tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$bootstrap" 2>/dev/null |
            grep -c '(id: ' || true)
        [ "$n" -ge 3 ] && return 0
        sleep 1
    done
    echo "the cluster never showed three brokers" >&2
    return 1
}

start_strata() {
    mkdir -p "$work/strata"
    cat >"$work/strata/zoo.cfg" <<EOF
tickTime=2000
dataDir=$work/strata/zk
clientPort=$META_PORT
clientPortAddress=127.0.0.1
EOF
    mkdir -p "$work/strata/zk"
    "$bin/strata-coordinator" --config "$work/strata/zoo.cfg" >"$work/strata/zk.log" 2>&1 &
    pids+=($!)
    wait_port 127.0.0.1 $META_PORT
    for i in 1 2 3; do
        {
            echo "broker.id=$i"
            echo "listeners=PLAINTEXT://127.0.0.$i:$PORT"
            echo "log.dirs=$work/strata/data$i"
            echo "zookeeper.connect=127.0.0.1:$META_PORT/strata"
            echo "metrics.port=0"
            cluster_props
        } >"$work/strata/server$i.properties"
        "$bin/strata-broker" --config "$work/strata/server$i.properties" >"$work/strata/broker$i.log" 2>&1 &
        pids+=($!)
        echo "broker $i $!" >>"$work/strata/pids"
    done
}

start_kafka39() {
    mkdir -p "$work/kafka39/zk"
    cat >"$work/kafka39/zoo.cfg" <<EOF
tickTime=2000
dataDir=$work/kafka39/zk
clientPort=$META_PORT
clientPortAddress=127.0.0.1
EOF
    java -Xmx512m -Dzookeeper.admin.enableServer=false -cp "$zk_lib/*" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/kafka39/zoo.cfg" >"$work/kafka39/zk.log" 2>&1 &
    pids+=($!)
    wait_port 127.0.0.1 $META_PORT
    for i in 1 2 3; do
        {
            echo "broker.id=$i"
            echo "listeners=PLAINTEXT://127.0.0.$i:$PORT"
            echo "log.dirs=$work/kafka39/data$i"
            echo "zookeeper.connect=127.0.0.1:$META_PORT/kafka"
            cluster_props
        } >"$work/kafka39/server$i.properties"
        KAFKA_VERSION=$KAFKA39 KAFKA_HEAP_OPTS="-Xmx1g -Xms1g" \
            bash "$here/tools/kafka-class.sh" kafka.Kafka "$work/kafka39/server$i.properties" \
            >"$work/kafka39/broker$i.log" 2>&1 &
        pids+=($!)
        echo "broker $i $!" >>"$work/kafka39/pids"
    done
}

start_kraft() {
    mkdir -p "$work/kraft"
    local voters="1@127.0.0.1:$META_PORT,2@127.0.0.2:$META_PORT,3@127.0.0.3:$META_PORT"
    local cluster_id
    cluster_id="$(tool kafka.tools.StorageTool random-uuid)"
    for i in 1 2 3; do
        {
            echo "process.roles=broker,controller"
            echo "node.id=$i"
            echo "controller.quorum.voters=$voters"
            echo "listeners=PLAINTEXT://127.0.0.$i:$PORT,CONTROLLER://127.0.0.$i:$META_PORT"
            echo "advertised.listeners=PLAINTEXT://127.0.0.$i:$PORT"
            echo "controller.listener.names=CONTROLLER"
            echo "inter.broker.listener.name=PLAINTEXT"
            echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
            echo "log.dirs=$work/kraft/data$i"
            echo "share.coordinator.state.topic.replication.factor=3"
            echo "share.coordinator.state.topic.min.isr=2"
            cluster_props
        } >"$work/kraft/server$i.properties"
        tool kafka.tools.StorageTool format --ignore-formatted --cluster-id "$cluster_id" \
            --config "$work/kraft/server$i.properties" >/dev/null
    done
    for i in 1 2 3; do
        KAFKA_HEAP_OPTS="-Xmx1g -Xms1g" bash "$here/tools/kafka-class.sh" kafka.Kafka \
            "$work/kraft/server$i.properties" >"$work/kraft/broker$i.log" 2>&1 &
        pids+=($!)
        echo "broker $i $!" >>"$work/kraft/pids"
    done
}

results="$work/results"
failovers="$work/failovers"
: >"$results"
: >"$failovers"

# bench NAME DIR: the produce runs and the failover on the running cluster in DIR.
bench() {
    local name="$1" dir="$2"
    for i in 1 2 3; do wait_port "127.0.0.$i" $PORT; done
    wait_brokers
    for size in 1024 100; do
        local n topic p
        if [ "$size" = 1024 ]; then n=$RECORDS_1K; else n=$RECORDS_100; fi
        topic="bench-$size"
        tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create \
            --topic "$topic" --partitions 3 --replication-factor 3 >/dev/null
        # CPU of the whole system under test: its processes' user+system ticks.
        local before after
        before=$(ticks "${pids[@]}")
        # shellcheck disable=SC2086
        p=$(tool org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$n" \
            --record-size "$size" --throughput -1 \
            --producer-props bootstrap.servers="$bootstrap" $PRODUCER_PROPS 2>/dev/null | tail -1)
        after=$(ticks "${pids[@]}")
        local rps mbs p50 p99 cpu_us
        rps=$(echo "$p" | sed -E 's/.* sent, ([0-9.]+) records\/sec.*/\1/' | cut -d. -f1)
        mbs=$(echo "$p" | sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/')
        p50=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 50th.*/\1/')
        p99=$(echo "$p" | sed -E 's/.* ([0-9]+) ms 99th.*/\1/')
        # microseconds of CPU per record, all brokers and the metadata servers together
        cpu_us=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$n" \
            'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
        echo "$name|$size|$rps|$mbs|$p50|$p99|$cpu_us" >>"$results"
    done
    # The failover topic is led by a broker that is not the controller; Metadata names
    # ZooKeeper mode's controller, KRaft's active controller comes from the quorum.
    local ms controller=()
    if [ "$dir" = "$work/kraft" ]; then
        controller=("$(tool org.apache.kafka.tools.MetadataQuorumCommand \
            --bootstrap-server "$bootstrap" describe --status | awk '$1 == "LeaderId:" { print $2 }')")
    fi
    ms=$("$python" "$here/bench/failover.py" "$bootstrap" failover "$dir/pids" "${controller[@]}" | tail -1)
    echo "$name|$ms" >>"$failovers"
}

echo "== Strata" >&2
start_strata
bench "Strata" "$work/strata"
stop_all

echo "== Apache Kafka $KAFKA39 (ZooKeeper)" >&2
start_kafka39
bench "Apache Kafka $KAFKA39 (ZooKeeper)" "$work/kafka39"
stop_all

echo "== Apache Kafka 4.3.1 (KRaft)" >&2
start_kraft
bench "Apache Kafka 4.3.1 (KRaft)" "$work/kraft"
stop_all

{
    echo "| cluster | record | produce records/s | MB/s | p50 ms | p99 ms | CPU µs/record |"
    echo "|---|---|---|---|---|---|---|"
    while IFS='|' read -r name size rps mbs p50 p99 cpu; do
        echo "| $name | $size B | $rps | $mbs | $p50 | $p99 | $cpu |"
    done <"$results"
    echo
    echo "| cluster | leader failover (SIGKILL → next acknowledged write) |"
    echo "|---|---|"
    while IFS='|' read -r name ms; do
        echo "| $name | $ms |"
    done <"$failovers"
    echo
    echo "3 brokers on 127.0.0.1-3, RF 3, min.insync.replicas 2; producer props: \`$PRODUCER_PROPS\`;"
    echo "$RECORDS_1K records of 1 KiB and $RECORDS_100 of 100 B, 3 partitions; $(nproc) cores."
    echo "CPU per record counts every process of the system under test (brokers and metadata servers)."
} | tee "${out:-/dev/null}"
