#!/usr/bin/env bash
# run_tests.sh: runs every cmocka unit test binary in BUILD/tests, then the
# pytest integration suite against BUILD/fastformerd, and ends with one
# summary line over both: "N passed, N failed, N skipped (why)".
#   tests/run_tests.sh [--unit-only] BUILD_DIR
# A test skips when what it needs is absent, e.g. third-party data the
# repository does not carry (found in data/ or $DATA_SRC). The reasons are
# counted from cmocka tests' "skip reason: ..." lines (tests/unit/
# third_party_data.h) and pytest's -rs summary. A binary that runs several
# cmocka groups (test_golden: one per kernel path) has its counts summed.
set -u
unit_only=0
if [ "${1:-}" = "--unit-only" ]; then unit_only=1; shift; fi
build=${1:-build}
cd "$(dirname "$0")/.." || exit 2

passed=0
failed=0
skipped=0
failed_names=()
reasons=$(mktemp) # one "count<TAB>reason" line per skip reason seen
trap 'rm -f "$reasons"' EXIT

for bin in "$build"/tests/test_*; do
    [ -x "$bin" ] || continue
    echo "== $bin"
    out=$(OPENBLAS_NUM_THREADS=1 "$bin" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{n += $1} END {print n + 0}')
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{n += $1} END {print n + 0}')
    s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | awk '{n += $1} END {print n + 0}')
    p=${p:-0}; f=${f:-0}; s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed before cmocka's summary
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    printf '%s\n' "$out" | sed -n 's/^skip reason: \(.*\)/1\t\1/p' >>"$reasons"
    [ "$f" -gt 0 ] && failed_names+=("$bin")
done

if [ "$unit_only" -eq 0 ] && ls tests/integration/test_*.py >/dev/null 2>&1; then
    echo "== pytest tests/integration"
    log=$(mktemp)
    FASTFORMERD="$PWD/$build/fastformerd" FASTFORMER_CLI="$PWD/$build/fastformer-cli" \
        OPENBLAS_NUM_THREADS=1 /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider tests/integration 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|(passed|failed|error)' "$log" | tail -1)
    p=$(printf '%s' "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(printf '%s' "$summary" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s += $1} END {print s + 0}')
    s=$(printf '%s' "$summary" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+')
    p=${p:-0}; f=${f:-0}; s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    # -rs lines: "SKIPPED [count] path:line: reason"
    sed -nE 's/^SKIPPED \[([0-9]+)\] [^ ]*: (.*)$/\1\t\2/p' "$log" >>"$reasons"
    [ "$f" -gt 0 ] && failed_names+=("pytest")
    rm -f "$log"
fi

# "(reason)" for one reason, "(3: reason; 1: other)" for several, most frequent first.
why=$(awk -F'\t' -v total="$skipped" '
    { n[$2] += $1; seen += $1 }
    END {
        if (total > seen) n["no reason given"] += total - seen
        k = 0
        for (r in n) k++
        for (r in n) printf "%d\t%s\n", n[r], (k > 1 ? n[r] ": " : "") r
    }' "$reasons" | sort -t"$(printf '\t')" -k1,1nr -k2 | cut -f2 | awk 'NR > 1 { printf "; " } { printf "%s", $0 }')

if [ "${#failed_names[@]}" -gt 0 ]; then echo "failing: ${failed_names[*]}"; fi
echo "$passed passed, $failed failed, $skipped skipped${why:+ ($why)}"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
