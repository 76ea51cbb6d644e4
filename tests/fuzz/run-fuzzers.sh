#!/usr/bin/env bash
# Builds ember's libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined) and runs each
# for a bounded time on its seed corpus (tests/fuzz/corpus/<reader>) plus every past finding
# (tests/fuzz/regressions/<reader>). Fails if any harness finds a crash, a sanitizer report, an
# exception other than ember::Error, a broken invariant, a timeout or memory over the limit.
#
#   tests/fuzz/run-fuzzers.sh [SECONDS_PER_HARNESS (default 30)] [BUILD_DIR (default build-fuzz)]
#   FUZZERS="png deflate" tests/fuzz/run-fuzzers.sh 60      # a subset
#
# New inputs found while fuzzing go to BUILD_DIR/corpus-work/<reader> (not to the committed
# corpus); a crashing input is written to BUILD_DIR/artifacts/<reader>/ and named in the output.
# Keep each one under tests/fuzz/regressions/<reader>/ once fixed: the unit tests replay them.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-30}"
build="${2:-build-fuzz}"
readers=(${FUZZERS:-idx deflate png checkpoint safetensors})
cxx="${FUZZ_CXX:-clang++}"
command -v "$cxx" >/dev/null || { echo "run-fuzzers.sh: $cxx not found (apt-get install clang)"; exit 1; }

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE= -DEMBER_BUILD_FUZZERS=ON \
  -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCHMARKS=OFF \
  -DEMBER_CUDA=OFF >/dev/null
if [ -z "${FUZZERS:-}" ]; then
  # Every harness: "all" is exactly the five fuzz targets here, built side by side (a list of
  # --target goals would be built one after another).
  cmake --build "$build" -j "$(nproc)"
else
  targets=()
  for r in "${readers[@]}"; do targets+=(--target "fuzz_$r"); done
  cmake --build "$build" -j "$(nproc)" "${targets[@]}"
fi

export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
failed=()
# The harnesses run side by side, as many at once as there are cores; each has its own time.
jobs_max=$(nproc)
run_one() {  # run_one READER: runs one harness, leaves its exit status in BUILD/fuzz-READER.rc
  local r=$1 work="$build/corpus-work/$1" art="$build/artifacts/$1" log="$build/fuzz-$1.log"
  mkdir -p "$work" "$art" "tests/fuzz/regressions/$r"
  local rc=0
  "$build/tests/fuzz/fuzz_$r" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 \
    -print_final_stats=1 -artifact_prefix="$art/" "$work" "tests/fuzz/corpus/$r" \
    "tests/fuzz/regressions/$r" >"$log" 2>&1 || rc=$?
  echo "$rc" >"$build/fuzz-$r.rc"
}
running=0
for r in "${readers[@]}"; do
  run_one "$r" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs_max" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
printf '\n%-12s %8s %14s %10s %s\n' reader seconds executions exec/s result
summary=""
for r in "${readers[@]}"; do
  log="$build/fuzz-$r.log"
  art="$build/artifacts/$r"
  rc=$(cat "$build/fuzz-$r.rc" 2>/dev/null || echo 99)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  result="ok"
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc; log $log; artifacts in $art)"
    failed+=("$r")
    grep -E "ERROR|runtime error|uncaught|invariant|Test unit written" "$log" | head -20 || true
  fi
  line=$(printf '%-12s %8s %14s %10s %s' "$r" "$secs" "${execs:-?}" "${rate:-?}" "$result")
  echo "$line"
  summary+="$line"$'\n'
done
echo
echo "fuzz summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores):"
printf '%s' "$summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "run-fuzzers.sh: findings in: ${failed[*]}"
  exit 1
fi
echo "run-fuzzers.sh: no findings"
