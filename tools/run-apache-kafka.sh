#!/usr/bin/env bash
# Runs a single-node Apache Kafka (KRaft, broker and controller in one process) from
# the jars of tools/setup-kafka.sh, in the foreground, for side-by-side tests and
# benchmarks against Strata:
#
#   tools/run-apache-kafka.sh 19092 /tmp/apache-kafka >/tmp/apache-kafka.log 2>&1 &
#
# Clients connect to 127.0.0.1:PORT; the KRaft controller listens on CONTROLLER_PORT
# (default PORT+1). DATADIR holds server.properties and the log directory; it is
# formatted on first use only, so a restart keeps the data. Stop it with SIGTERM.
# Prints "listening on 127.0.0.1:PORT" once the broker accepts connections.
#
# With SSL_PORT and SSL_KEYSTORE (a PEM file with an unencrypted key and its certificate
# chain), an SSL listener on 127.0.0.1:SSL_PORT too.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 PORT DATADIR" >&2
    exit 2
fi
port="$1"
datadir="$2"
controller_port="${CONTROLLER_PORT:-$((port + 1))}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

"$here/setup-kafka.sh" >/dev/null

mkdir -p "$datadir/logs"
datadir="$(cd "$datadir" && pwd)"
config="$datadir/server.properties"
cat >"$config" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$datadir/logs
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
if [[ -n "${SSL_PORT:-}" ]]; then
    sed -i -e "s|^listeners=PLAINTEXT://127.0.0.1:$port,|listeners=PLAINTEXT://127.0.0.1:$port,SSL://127.0.0.1:$SSL_PORT,|" \
        -e "s|^advertised.listeners=.*|advertised.listeners=PLAINTEXT://127.0.0.1:$port,SSL://127.0.0.1:$SSL_PORT|" \
        -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL|" \
        "$config"
    printf 'ssl.keystore.type=PEM\nssl.keystore.location=%s\n' "$SSL_KEYSTORE" >>"$config"
fi

if [[ ! -f "$datadir/logs/meta.properties" ]]; then
    cluster_id="$("$here/kafka-class.sh" kafka.tools.StorageTool random-uuid)"
    "$here/kafka-class.sh" kafka.tools.StorageTool format --ignore-formatted \
        --cluster-id "$cluster_id" --config "$config" >/dev/null
fi

# Announce readiness from the side so the broker itself stays in the foreground.
(
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "listening on 127.0.0.1:$port"
            exit 0
        fi
        sleep 0.2
    done
) &

export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1g -Xms1g}"
exec "$here/kafka-class.sh" kafka.Kafka "$config"
