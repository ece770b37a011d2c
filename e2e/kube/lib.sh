# Helpers shared by the API-server tests: assertions that count, and polling with a
# generous deadline (the tests wait for a state, never for an amount of time).

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

summary() {
  echo
  if ((FAILED > 0)); then
    printf 'failed: %s\n' "${FAILURES[@]}" >&2
  fi
  echo "e2e: $PASSED passed, $FAILED failed"
}
