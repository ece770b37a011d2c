#!/usr/bin/env bash
# Runs a command against a fresh single-node strata-broker:
#
#   tests/with-broker.sh COMMAND [ARGS...]
#
# The broker (the debug build in $STRATA_BIN_DIR) gets a free port and a temporary data
# directory; the command sees its address as $STRATA_TEST_BOOTSTRAP and as the literal
# argument "{bootstrap}", and its metrics endpoint (host:port) as $STRATA_TEST_METRICS and
# "{metrics}". The broker is stopped afterwards; its log is shown on failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/wait.sh"
bin_dir="${STRATA_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/strata/target}/debug}"
work="$(mktemp -d /tmp/strata-with-broker.XXXXXX)"
free_port() {
    python3 -c 'import random,socket
while True:
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()'
}
port=$(free_port)
metrics_port=$(free_port)
while [ "$metrics_port" = "$port" ]; do metrics_port=$(free_port); done
"$bin_dir/strata-broker" --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$work/logs" \
    --override "metrics.port=$metrics_port" --override group.initial.rebalance.delay.ms=0 >"$work/broker.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# Up once both ports listen (the metrics port is bound after the Kafka one); a broker that
# exits while starting ends the wait at once.
started() { ! kill -0 "$pid" 2>/dev/null || { listening 127.0.0.1 "$port" && listening 127.0.0.1 "$metrics_port"; }; }
if ! eventually 60 started || ! kill -0 "$pid" 2>/dev/null; then
    echo "strata-broker did not start listening on 127.0.0.1:$port and 127.0.0.1:$metrics_port:" >&2
    cat "$work/broker.log" >&2
    exit 1
fi
export STRATA_TEST_BOOTSTRAP="127.0.0.1:$port"
export STRATA_TEST_METRICS="127.0.0.1:$metrics_port"
args=()
for a in "$@"; do
    a="${a//\{bootstrap\}/$STRATA_TEST_BOOTSTRAP}"
    args+=("${a//\{metrics\}/$STRATA_TEST_METRICS}")
done
if ! "${args[@]}"; then
    echo "--- broker log ---" >&2
    tail -50 "$work/broker.log" >&2
    exit 1
fi
