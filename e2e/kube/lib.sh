# Helpers shared by the end-to-end checks: assertions that count, polling with a generous
# deadline (the checks wait for a state, never for an amount of time), phase timings, and
# Kafka's own tools reaching the cluster's brokers from the host.

PASSED=0
FAILED=0
FAILURES=()

pass() { PASSED=$((PASSED + 1)); echo "  ok   $1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "  FAIL $1" >&2; }

# check NAME COMMAND...: passes when the command succeeds.
check() {
  local name="$1"; shift
  if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name"; fi
}

# eventually NAME COMMAND...: passes once the command succeeds within $WAIT_SECONDS.
eventually() {
  local name="$1"; shift
  local deadline=$((SECONDS + ${WAIT_SECONDS:-90}))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then pass "$name"; return 0; fi
    sleep 1
  done
  fail "$name"
  echo "    last attempt: $*" >&2
  "$@" >&2 || true
  # Counted as a failure; later checks still run and the summary decides the exit code.
  return 0
}

# equals EXPECTED COMMAND...: the command's stdout is exactly EXPECTED.
equals() {
  local expected="$1"; shift
  local got
  got="$("$@" 2>/dev/null)" || return 1
  if [[ "$got" == "$expected" ]]; then return 0; fi
  echo "expected '$expected', got '$got'" >&2
  return 1
}

# contains NEEDLE COMMAND...: the command's stdout contains NEEDLE.
contains() {
  local needle="$1"; shift
  local got
  got="$("$@" 2>&1)" || true
  [[ "$got" == *"$needle"* ]] || { echo "'$needle' not in: $got" >&2; return 1; }
}

# fails_with NEEDLE COMMAND...: the command fails and says NEEDLE.
fails_with() {
  local needle="$1"; shift
  local got
  if got="$("$@" 2>&1)"; then echo "unexpectedly succeeded: $got" >&2; return 1; fi
  [[ "$got" == *"$needle"* ]] || { echo "'$needle' not in: $got" >&2; return 1; }
}

# can_i ARGS...: `kubectl auth can-i` printing yes/no whatever its exit code.
can_i() { kubectl auth can-i "$@" 2>/dev/null || true; }

absent() { ! kubectl get "$@" >/dev/null 2>&1; }

jsonpath() { kubectl get "$1" "$2" ${3:+-n "$3"} -o "jsonpath=$4"; }

# section TITLE: a heading with the seconds since the run started.
section() { echo "== $1 [${SECONDS}s]"; }

# Wall-clock time of each phase, printed at the end of the run.
TIMINGS=()

# phase NAME COMMAND...: runs the command and records how long it took.
phase() {
  local name="$1" started=$SECONDS; shift
  echo "== $name"
  "$@"
  TIMINGS+=("$name: $((SECONDS - started)) s")
}

# mark NAME STARTED: records the time since STARTED (a $SECONDS value) as NAME.
mark() { TIMINGS+=("$1: $((SECONDS - $2)) s"); }

timings() {
  ((${#TIMINGS[@]} > 0)) || return 0
  echo "timings:"
  printf '  %s\n' "${TIMINGS[@]}"
}

summary() {
  echo
  if ((FAILED > 0)); then
    printf 'failed: %s\n' "${FAILURES[@]}" >&2
  fi
  echo "e2e: $PASSED passed, $FAILED failed"
}

# The names brokers advertise (<pod>.<set>.<namespace>.svc) are cluster DNS names the
# host's resolver does not know. Kafka's tools run on the host with a JVM that resolves
# from a hosts file instead (jdk.net.hosts.file), written from the pods' and Services'
# current addresses before each run; the host reaches both through the pod network and
# kube-proxy.
write_hosts() {
  {
    kubectl get pods -A -o json | jq -r '.items[] | select(.status.podIP and .spec.subdomain)
      | "\(.status.podIP) \(.metadata.name).\(.spec.subdomain).\(.metadata.namespace).svc \(.metadata.name).\(.spec.subdomain).\(.metadata.namespace).svc.cluster.local"'
    kubectl get services -A -o json | jq -r '.items[] | select(.spec.clusterIP != "None")
      | "\(.spec.clusterIP) \(.metadata.name).\(.metadata.namespace).svc \(.metadata.name).\(.metadata.namespace).svc.cluster.local"'
  } >"$WORK/hosts.$BASHPID" && mv "$WORK/hosts.$BASHPID" "$WORK/hosts"
}

# kafka_tool CLASS ARGS...: a class of Apache Kafka's tools (tools/kafka-class.sh), with
# the cluster's names resolvable.
kafka_tool() {
  write_hosts
  KAFKA_OPTS="-Djdk.net.hosts.file=$WORK/hosts" "$REPO/tools/kafka-class.sh" "$@"
}
export -f write_hosts kafka_tool
