#!/usr/bin/env bash
# Coverage-guided fuzzing of every target for a fixed time each (`make fuzz`).
#
#   fuzz/run.sh [TARGET...]        all targets when none is named
#
#   FUZZ_SECONDS   time per target (default 60)
#   FUZZ_MERGE=1   afterwards, merge what was found into fuzz/corpus/<target> (minimised:
#                  only inputs that add coverage), for checking in
#
# libFuzzer on stable Rust: the crate is built with LLVM's SanitizerCoverage passes
# (what cargo-fuzz sets, without a sanitizer), into its own target directory under the
# cache. New inputs go to $CACHE/fuzz/work/<target>, crashes to $CACHE/fuzz/crashes/; a
# crash is reported at the end and the script fails. A crash input belongs in
# fuzz/regressions/<target>/ with the fix, so `make test` replays it forever after.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${STRATA_CACHE:-$HOME/.cache/strata}"
seconds="${FUZZ_SECONDS:-60}"
export CARGO_TARGET_DIR="$cache/target-fuzz"
triple="$(rustc -vV | sed -n 's/^host: //p')"
flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
)
# --target keeps the instrumentation off build scripts and proc macros.
RUSTFLAGS="${flags[*]}" cargo build --profile fuzz -p strata-fuzz --features libfuzzer \
    --bin strata-fuzz --target "$triple"
bin="$CARGO_TARGET_DIR/$triple/fuzz/strata-fuzz"

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(ls fuzz/corpus)
fi
mkdir -p "$cache/fuzz/tmp" "$cache/fuzz/crashes"
summary="$cache/fuzz/summary.txt"
: >"$summary"
failed=()
for t in "${targets[@]}"; do
    work="$cache/fuzz/work/$t"
    mkdir -p "$work" "fuzz/regressions/$t"
    log="$cache/fuzz/$t.log"
    echo "== $t: ${seconds}s"
    status=0
    # New inputs are written to the first directory (the cache); the checked-in corpus
    # and past crashes are read as seeds.
    STRATA_FUZZ_TARGET="$t" TMPDIR="$cache/fuzz/tmp" "$bin" \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$cache/fuzz/crashes/$t-" \
        "$work" "fuzz/corpus/$t" "fuzz/regressions/$t" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$( (grep -oE 'cov: [0-9]+' "$log" || true) | tail -1 | awk '{print $2}')
    printf '%-18s %8s s %12s runs %8s/s  cov %6s  %s\n' "$t" "$seconds" "${runs:-?}" "${rate:-?}" \
        "${cov:-?}" "$([ "$status" = 0 ] && echo ok || echo "CRASH (exit $status)")" | tee -a "$summary"
    if [ "$status" != 0 ]; then
        failed+=("$t")
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5 || true
    elif [ "${FUZZ_MERGE:-0}" = 1 ]; then
        STRATA_FUZZ_TARGET="$t" TMPDIR="$cache/fuzz/tmp" "$bin" -merge=1 \
            "fuzz/corpus/$t" "$work" >>"$log" 2>&1
    fi
done
rm -rf "$cache/fuzz/tmp"
echo
cat "$summary"
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes in: ${failed[*]} (inputs in $cache/fuzz/crashes, logs in $cache/fuzz/<target>.log)" >&2
    exit 1
fi
