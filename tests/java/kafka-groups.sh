#!/usr/bin/env bash
# Kafka's own Java tools against a broker, in their consumer-group forms (as the
# reference notes use them): the console consumer with its default group, and
# kafka-consumer-groups --list / --describe / --reset-offsets.
#
#   tests/java/kafka-groups.sh BOOTSTRAP
set -euo pipefail
bootstrap="$1"
here="$(cd "$(dirname "$0")/../.." && pwd)"
kafka() { bash "$here/tools/kafka-class.sh" "$@"; }
fail() { echo "kafka-groups: FAIL: $*" >&2; exit 1; }
topic="java-groups-$$"
group="java-cg-$$"

kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create --topic "$topic" \
    --partitions 3 --replication-factor 1 >/dev/null
seq 1 30 | sed 's/^/line-/' | kafka org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$bootstrap" \
    --topic "$topic" --property parse.key=false >/dev/null

# The default form: a generated console-consumer-NNNN group, subscribe, from the beginning.
out=$(timeout 120 bash -c "$(declare -f kafka); here='$here'; kafka org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server '$bootstrap' --topic '$topic' --from-beginning --max-messages 30" 2>/dev/null)
[ "$(echo "$out" | sort | uniq | wc -l)" = 30 ] || fail "console consumer (default group) read: $out"

# A named group commits its offsets when it closes.
out=$(timeout 120 bash -c "$(declare -f kafka); here='$here'; kafka org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server '$bootstrap' --topic '$topic' --group '$group' --from-beginning --max-messages 30" 2>/dev/null)
[ "$(echo "$out" | wc -l)" = 30 ] || fail "console consumer --group read $(echo "$out" | wc -l) lines"

groups() { kafka org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$bootstrap" "$@" 2>/dev/null; }

groups --list | grep -x "$group" >/dev/null || fail "--list does not show $group"
groups --list | grep "^console-consumer-" >/dev/null || fail "--list does not show the console consumer's default group"

describe=$(groups --describe --group "$group")
echo "$describe"
current=$(echo "$describe" | awk -v t="$topic" '$2 == t { s += $4 } END { print s }')
lag=$(echo "$describe" | awk -v t="$topic" '$2 == t { s += $6 } END { print s }')
[ "$current" = 30 ] && [ "$lag" = 0 ] || fail "--describe: current offsets sum $current, lag $lag (want 30, 0)"

dry=$(groups --reset-offsets --group "$group" --topic "$topic" --to-earliest --dry-run)
echo "$dry"
[ "$(echo "$dry" | awk -v t="$topic" '$2 == t { s += $4 } END { print s }')" = 0 ] || fail "--dry-run did not plan offset 0"
[ "$(groups --describe --group "$group" | awk -v t="$topic" '$2 == t { s += $6 } END { print s }')" = 0 ] \
    || fail "--dry-run changed the offsets"

groups --reset-offsets --group "$group" --topic "$topic" --to-earliest --execute >/dev/null
[ "$(groups --describe --group "$group" | awk -v t="$topic" '$2 == t { s += $6 } END { print s }')" = 30 ] \
    || fail "--execute did not reset the offsets to earliest"

out=$(timeout 120 bash -c "$(declare -f kafka); here='$here'; kafka org.apache.kafka.tools.consumer.ConsoleConsumer \
    --bootstrap-server '$bootstrap' --topic '$topic' --group '$group' --max-messages 30" 2>/dev/null)
[ "$(echo "$out" | wc -l)" = 30 ] || fail "after the reset the group did not re-read all 30 records"

groups --reset-offsets --group "$group" --topic "$topic" --shift-by -5 --execute >/dev/null
# Each partition moves back 5, or to its start when it holds fewer records.
after=$(groups --describe --group "$group")
want=$(echo "$after" | awk -v t="$topic" '$2 == t { s += ($5 < 5 ? $5 : 5) } END { print s }')
[ "$(echo "$after" | awk -v t="$topic" '$2 == t { s += $6 } END { print s }')" = "$want" ] \
    || fail "--shift-by -5 left lag other than $want: $after"

groups --delete --group "$group" >/dev/null
groups --list | grep -x "$group" >/dev/null && fail "--delete left the group"
echo "kafka-groups: OK (console consumer default group, --list, --describe, --reset-offsets, --delete)"
