#!/usr/bin/env bash
# Runs the client and CLI tests and Kafka's own tools against a real Apache Kafka:
# starts a throwaway single-node broker (tools/run-apache-kafka.sh) on PORT (default
# 19092), runs
#   STRATA_TEST_BOOTSTRAP=127.0.0.1:PORT cargo test -p strata-client -p strata
#   tests/java/kafka-tools.sh 127.0.0.1:PORT
# and stops the broker. This checks the tests themselves against the reference
# implementation; run the same two commands with a Strata broker's address to test it.
set -euo pipefail

port="${1:-19092}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/strata/target-client}"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "against-apache-kafka: something already listens on 127.0.0.1:$port" >&2
    exit 1
fi

"$root/tools/setup-kafka.sh"
datadir="$(mktemp -d /tmp/apache-kafka.XXXXXX)"
log="$datadir/broker.log"
"$root/tools/run-apache-kafka.sh" "$port" "$datadir" >"$log" 2>&1 &
broker=$!
cleanup() {
    kill "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
    rm -rf "$datadir"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
    grep -q "^listening on" "$log" && break
    if ! kill -0 "$broker" 2>/dev/null; then
        echo "against-apache-kafka: Apache Kafka exited early:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.2
done
grep -q "^listening on" "$log" || { echo "against-apache-kafka: broker did not start" >&2; cat "$log" >&2; exit 1; }
echo "Apache Kafka is up on 127.0.0.1:$port"

(cd "$root" && STRATA_TEST_BOOTSTRAP="127.0.0.1:$port" cargo test -p strata-client -p strata)
"$here/kafka-tools.sh" "127.0.0.1:$port"
