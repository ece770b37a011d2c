# Shared by the benchmark scripts (sourced, after they set `here` to the repository): the
# build directory, the processes a benchmark started (killed at exit, with its `work`
# directory), waiting for a port, timing.

cache="${STRATA_CACHE:-$HOME/.cache/strata}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
bin="$CARGO_TARGET_DIR/release"

pids=()

# The data is thrown away: no controlled shutdowns to wait for.
stop_all() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

cleanup() {
    stop_all
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() { # HOST PORT
    for _ in $(seq 1 1200); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listening on $1:$2" >&2
    return 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
