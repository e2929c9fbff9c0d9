#!/usr/bin/env bash
# Runs each libFuzzer target for a fixed time on a scratch copy of its seed
# corpus, then prints one summary line per target. Exits 1 if any target found
# a crash, a sanitizer report, a leak or a hang (its input is kept under
# BUILD/artifacts/, and the log under BUILD/logs/).
#   tests/fuzz/run.sh BUILD SECONDS TARGET...
# JSON inputs get tests/fuzz/json.dict; a target may have its own
# tests/fuzz/<target>.dict instead.
set -uo pipefail
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/corpus" "$build/artifacts" "$build/logs"
failed=()
summary=()
for t in "$@"; do
    corpus="$build/corpus/$t"
    rm -rf "$corpus"
    mkdir -p "$corpus"
    if [ -d "$here/corpus/$t" ]; then cp -R "$here/corpus/$t/." "$corpus/"; fi
    dict=()
    if [ -f "$here/$t.dict" ]; then
        dict=(-dict="$here/$t.dict")
    else
        case $t in
        api | config | safetensors) dict=(-dict="$here/json.dict") ;;
        esac
    fi
    log="$build/logs/$t.log"
    echo "fuzz: $t for ${seconds}s"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb bounds memory.
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
        "$build/fuzz_$t" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
        "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    units=$(find "$corpus" -type f | wc -l)
    line=$(printf '%-22s %10s execs %4ss  cov %6s  corpus %5s' "$t" "${execs:-?}" "$seconds" \
        "${cov:-?}" "$units")
    if [ $rc -ne 0 ]; then
        failed+=("$t")
        line="$line  FAILED (rc $rc, see $log)"
        grep -m3 -E 'Assertion|check failed|runtime error|fake_http:|ERROR: |SUMMARY' "$log" || true
    fi
    summary+=("$line")
done
echo
echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: all ${#summary[@]} targets ran clean"
