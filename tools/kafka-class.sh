#!/usr/bin/env bash
# Runs a class from the Apache Kafka jars that tools/setup-kafka.sh installed, the way
# Kafka's bin/kafka-run-class.sh does:
#
#   tools/kafka-class.sh org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:19092 --list
#
# Useful classes: org.apache.kafka.tools.TopicCommand (kafka-topics),
# org.apache.kafka.tools.ConsoleProducer, org.apache.kafka.tools.consumer.ConsoleConsumer,
# org.apache.kafka.tools.ProducerPerformance, org.apache.kafka.tools.ConsumerPerformance,
# kafka.tools.StorageTool (kafka-storage), kafka.Kafka (the broker).
#
# KAFKA_VERSION picks another installed version (`KAFKA_VERSION=3.9.1`); KAFKA_LIBS
# overrides the jar directory; KAFKA_HEAP_OPTS and KAFKA_OPTS are passed to the JVM as in
# Kafka's scripts; KAFKA_LOG4J_OPTS replaces the logging configuration, as there.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 CLASS [ARGS...]" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pinned_version="$(sed -n 's/^KAFKA_VERSION="${KAFKA_VERSION:-\(.*\)}"$/\1/p' "$here/setup-kafka.sh")"
KAFKA_VERSION="${KAFKA_VERSION:-$pinned_version}"
KAFKA_HOME="${STRATA_CACHE:-/root/.cache/strata}/kafka/$KAFKA_VERSION"
KAFKA_LIBS="${KAFKA_LIBS:-$KAFKA_HOME/libs}"

if [[ ! -f "$KAFKA_LIBS/.complete" && ! -f "$KAFKA_LIBS/kafka-clients-$KAFKA_VERSION.jar" ]]; then
    echo "Apache Kafka jars not found in $KAFKA_LIBS; run tools/setup-kafka.sh first" >&2
    exit 1
fi

# Small default heap: the tools need little, and the machine is shared.
heap="${KAFKA_HEAP_OPTS:--Xmx512m}"
# Kafka 3.x logs through reload4j (log4j 1.x), Kafka 4 through log4j2.
if [[ "$KAFKA_VERSION" == 3.* ]]; then
    default_log_config="-Dlog4j.configuration=file:$KAFKA_HOME/config/log4j.properties"
else
    default_log_config="-Dlog4j2.configurationFile=$KAFKA_HOME/config/log4j2.properties"
fi
log_config="${KAFKA_LOG4J_OPTS:-$default_log_config}"

# shellcheck disable=SC2086 # heap, log_config and KAFKA_OPTS hold several JVM flags
exec java $heap -XX:+UseG1GC -Djava.awt.headless=true $log_config ${KAFKA_OPTS:-} \
    -cp "$KAFKA_LIBS/*" "$@"
