#!/usr/bin/env bash
# Apache ZooKeeper's own zkCli (org.apache.zookeeper.ZooKeeperMain, from Maven Central via
# tools/setup-zookeeper.sh) runs the reference notes' commands against a standalone
# strata-coordinator. Exits non-zero on the first mismatch.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
source "$REPO/tests/wait.sh"
CACHE="${STRATA_CACHE:-/root/.cache/strata}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
ZK_LIB="$(bash "$REPO/tools/setup-zookeeper.sh")"
cargo build -q -p strata-coordinator
BIN="${STRATA_COORDINATOR_BIN:-$CARGO_TARGET_DIR/debug/strata-coordinator}"

RUN="$(mktemp -d "$CACHE/zkcli.XXXXXX")"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$RUN/zoo.cfg" <<CFG
tickTime=500
dataDir=$RUN/data
clientPort=$PORT
clientPortAddress=127.0.0.1
metricsProvider.httpPort=0
4lw.commands.whitelist=ruok
# zkCli asks for 30 s sessions; the default cap at this tickTime (20 ticks) is 10 s.
maxSessionTimeout=60000
CFG
"$BIN" --config "$RUN/zoo.cfg" > "$RUN/server.log" 2>&1 &
SERVER=$!
trap 'kill -9 $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$RUN"' EXIT
eventually 60 listening 127.0.0.1 "$PORT" || {
  echo "zkCli: strata-coordinator did not start listening on 127.0.0.1:$PORT:" >&2
  cat "$RUN/server.log" >&2
  exit 1
}

# zkCli prints some results on stderr, so both streams are checked.
zkcli() {
  java -cp "$ZK_LIB/*" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    org.apache.zookeeper.ZooKeeperMain -server "127.0.0.1:$PORT" "$@" 2>&1
}

expect() { # expect DESCRIPTION EXPECTED ACTUAL
  if ! grep -qF -- "$2" <<<"$3"; then
    echo "zkCli: $1: expected '$2' in:" >&2
    echo "$3" >&2
    exit 1
  fi
  echo "ok - $1"
}

expect "create" "Created /my-node" "$(zkcli create /my-node "some data")"
expect "get" "some data" "$(zkcli get /my-node)"
expect "ls /" "[my-node, zookeeper]" "$(zkcli ls /)"
expect "set + get -s" "dataVersion = 1" "$(zkcli set /my-node "new data"; zkcli get -s /my-node)"
expect "create -s" "Created /my-node/seq-0000000000" "$(zkcli create -s /my-node/seq- "")"
expect "stat" "numChildren = 1" "$(zkcli stat /my-node)"
expect "getAcl" "'world,'anyone" "$(zkcli getAcl /my-node)"
expect "delete non-empty refused" "Node not empty: /my-node" "$(zkcli delete /my-node || true)"
zkcli delete /my-node/seq-0000000000 >/dev/null
zkcli delete /my-node >/dev/null
# zkCli's command mode exits without closing its session, so /eph stays until that
# session times out: created right before the listing that shows it, so that the
# listing does not race the session's expiry.
expect "create -e" "Created /eph" "$(zkcli create -e /eph "")"
expect "deleted" "[eph, zookeeper]" "$(zkcli ls /)"
echo "zkCli against strata-coordinator: all commands behaved"
