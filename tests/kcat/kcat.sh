#!/usr/bin/env bash
# kcat (Debian's, built on an older librdkafka) against a broker: produce and consume in
# every codec, keys included, and check that compression really reached the log.
# librdkafka before 2.11.1 silently turns compression off when a broker advertises
# Produce from a version above 0 (KAFKA-18659); Strata advertises v0, so the stored log
# of highly compressible records must be much smaller than the records themselves.
#
#   tests/kcat/kcat.sh BOOTSTRAP METRICS_HOST:PORT
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../wait.sh"
bootstrap="$1"
metrics="$2"
fail() { echo "kcat: FAIL: $*" >&2; exit 1; }
# log_size TOPIC: the bytes on disk of TOPIC's log as /metrics reports them; fails while
# the endpoint does not answer or does not list the topic yet.
log_size() {
    curl -sf "http://$metrics/metrics" | awk -v t="$1" '
        $1 ~ "^strata_broker_log_size_bytes\\{topic=\""t"\"" { s += $2; n++ }
        END { if (!n) exit 1; print s }'
}
command -v kcat >/dev/null || fail "kcat is not installed (tools/setup-kcat.sh)"
echo "kcat: $(kcat -V | grep -o 'librdkafka [0-9.]*')"
payload=$(printf 'a%.0s' $(seq 1 1000))
for codec in none gzip snappy lz4 zstd; do
    topic="kcat-$codec"
    for i in $(seq 1 500); do echo "key-$((i % 7)):$codec-$i-$payload"; done \
        | kcat -P -b "$bootstrap" -t "$topic" -z "$codec" -K: -X topic.metadata.refresh.interval.ms=100
    got=$(kcat -C -b "$bootstrap" -t "$topic" -e -q -f '%k:%s\n' | wc -l)
    [ "$got" = 500 ] || fail "$codec: read back $got of 500 records"
    first=$(kcat -C -b "$bootstrap" -t "$topic" -e -q -c 1 -f '%k %o\n')
    [ "$first" = "key-1 0" ] || fail "$codec: first record is '$first'"
    size=$(eventually 60 log_size "$topic") || fail "$codec: /metrics does not report the log of $topic"
    if [ "$codec" = none ]; then
        [ "$size" -gt 500000 ] || fail "uncompressed log is only $size bytes"
    else
        [ "$size" -lt 100000 ] || fail "$codec: log holds $size bytes for 500 KB of compressible records: compression was not applied"
    fi
    echo "kcat: $codec OK ($size bytes on disk for 500 records of ~1 KB)"
done
