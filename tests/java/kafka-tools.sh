#!/usr/bin/env bash
# Runs Apache Kafka's own command line tools against the broker at BOOTSTRAP, the way
# the reference notes use them, and checks what they print:
#
#   kafka-topics --create --topic myTopic --partitions 3 --replication-factor 1
#   kafka-topics --list / --describe --topic myTopic
#   kafka-console-producer --topic myTopic            (lines piped in)
#   kafka-console-consumer --topic myTopic --partition P --offset earliest --max-messages N
#
# Usage: tests/java/kafka-tools.sh BOOTSTRAP   (e.g. 127.0.0.1:9092)
# TOPIC overrides the topic name (default myTopic; an existing one is deleted first).
# Needs the jars from tools/setup-kafka.sh (run here if missing). Exits non-zero with a
# message on the first mismatch.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BOOTSTRAP" >&2
    exit 2
fi
bootstrap="$1"
topic="${TOPIC:-myTopic}"
records=300
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/../../tools"
source "$here/../wait.sh"
"$tools/setup-kafka.sh" >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() {
    echo "kafka-tools: FAIL: $*" >&2
    exit 1
}

kafka() {
    "$tools/kafka-class.sh" "$@"
}

topics() {
    kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" "$@"
}

echo "kafka-tools: against $bootstrap, topic $topic"

# Start clean: a topic left by an earlier run is deleted and waited for.
if topics --list | grep -x "$topic" >/dev/null; then
    topics --delete --topic "$topic"
    for _ in $(seq 1 50); do
        topics --list | grep -x "$topic" >/dev/null || break
        sleep 0.2
    done
    ! topics --list | grep -x "$topic" >/dev/null || fail "old $topic is still listed after --delete"
fi

# kafka-topics --create
out="$(topics --create --topic "$topic" --partitions 3 --replication-factor 1)"
[[ "$out" == "Created topic $topic." ]] || fail "--create printed '$out', expected 'Created topic $topic.'"

# Brokers apply a new topic to their metadata caches asynchronously: a check that
# fails is retried (eventually, from tests/wait.sh) before it counts.

# kafka-topics --list
listed() {
    topics --list >"$work/list" && grep -qx "$topic" "$work/list"
}
eventually 60 listed || fail "--list does not show $topic: $(tr '\n' ' ' <"$work/list")"

# kafka-topics --describe
described() {
    topics --describe --topic "$topic" >"$work/describe" 2>&1 && [[ "$(wc -l <"$work/describe")" -eq 4 ]]
}
eventually 60 described || true
head -1 "$work/describe" | grep -qP "^Topic: $topic\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: " ||
    fail "--describe header line is '$(head -1 "$work/describe")'"
for p in 0 1 2; do
    grep -qP "^\tTopic: $topic\tPartition: $p\tLeader: \d+\tReplicas: \d+\tIsr: \d+" "$work/describe" ||
        fail "--describe has no line for partition $p: $(cat "$work/describe")"
done
[[ "$(wc -l <"$work/describe")" -eq 4 ]] || fail "--describe printed $(wc -l <"$work/describe") lines, expected 4"

# kafka-console-producer: keyed lines, so every partition gets some.
for i in $(seq 1 "$records"); do echo "key-$i:message-$i"; done >"$work/input"
kafka org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$bootstrap" --topic "$topic" \
    --reader-property parse.key=true --reader-property key.separator=: <"$work/input" ||
    fail "console producer exited with $?"

# How many records landed in each partition (kafka-get-offsets).
kafka org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$bootstrap" --topic "$topic" >"$work/offsets"
total=0
for p in 0 1 2; do
    count="$(grep -P "^$topic:$p:" "$work/offsets" | cut -d: -f3)"
    [[ -n "$count" ]] || fail "no end offset for partition $p: $(cat "$work/offsets")"
    total=$((total + count))
    echo "$count" >"$work/count-$p"
done
[[ "$total" -eq "$records" ]] || fail "partitions hold $total records, produced $records"
[[ "$(cat "$work/count-0")" -gt 0 ]] || fail "partition 0 got no records"

# kafka-console-consumer, one partition at a time from the earliest offset.
: >"$work/consumed"
for p in 0 1 2; do
    count="$(cat "$work/count-$p")"
    [[ "$count" -gt 0 ]] || continue
    kafka org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bootstrap" --topic "$topic" \
        --partition "$p" --offset earliest --max-messages "$count" --timeout-ms 30000 \
        --formatter-property print.key=true --formatter-property key.separator=: >"$work/partition-$p" 2>"$work/consumer-$p.err" ||
        fail "console consumer on partition $p failed: $(cat "$work/consumer-$p.err")"
    got="$(wc -l <"$work/partition-$p")"
    [[ "$got" -eq "$count" ]] || fail "partition $p: consumed $got records, expected $count"
    # Within a partition, records come back in the order they were produced.
    sed 's/.*message-//' "$work/partition-$p" | sort -n -c 2>/dev/null ||
        fail "partition $p is out of order: $(head -5 "$work/partition-$p" | tr '\n' ' ')"
    cat "$work/partition-$p" >>"$work/consumed"
done
sort "$work/input" >"$work/input.sorted"
sort "$work/consumed" >"$work/consumed.sorted"
cmp -s "$work/input.sorted" "$work/consumed.sorted" ||
    fail "consumed records differ from produced: $(diff "$work/input.sorted" "$work/consumed.sorted" | head -5 | tr '\n' ' ')"

echo "kafka-tools: OK ($records records over 3 partitions)"
