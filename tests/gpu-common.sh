# tests/gpu-common.sh — shared by tests/gpu-check.sh and tests/gpu-bench.sh (sourced, not run).
# Expects $out (the output folder) and $budget (seconds) to be set; enters the repository root.
set -u
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 1
export PATH="/usr/local/cuda/bin:$PATH"  # the toolkit's nvcc and compute-sanitizer first
have_data=1
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
  [ -s "data/$f" ] || have_data=0
done
[ $have_data -eq 1 ] && export EMBER_DATA="$PWD/data"
deadline=$((SECONDS + budget))
failures=()  # steps that failed, or did not run for lack of time
passed=()    # steps that ran and passed
absent=()    # optional steps left out for lack of an input (data, PyTorch with CUDA)
note() { echo "$*" | tee -a "$out/summary.txt"; }
run() {  # run NAME LIMIT CMD...: logs to OUTDIR/NAME.log; a failure or a skip for time is recorded
  local name=$1 limit=$2; shift 2
  local left=$((deadline - SECONDS - 5))
  if [ "$left" -lt 15 ]; then
    note "$name: not run (time budget spent)"
    failures+=("$name(not-run)")
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  note "$name: exit $rc ($((SECONDS - t0)) s)"
  if [ $rc -eq 0 ]; then passed+=("$name"); else failures+=("$name(rc=$rc)"); fi
  return $rc
}
# sanitize TOOL LIMIT FILTER: compute-sanitizer over the CUDA tests that FILTER selects. Always
# left out: [large] and the whole-U-Net loops (the tools are 10-100x slower), [emulation]
# (host-only) and [oom] (their deliberate failing cudaMalloc is an API error the tools count).
sanitize() {
  local tool=$1 limit=$2 filter=$3
  run "sanitizer-$tool" "$limit" env EMBER_CUDA_ALLOCATOR=exact \
    compute-sanitizer --tool "$tool" --error-exitcode 99 build-gpu/tests/ember_cuda_tests "$filter"
  local log="$out/sanitizer-$tool.log"
  [ -f "$log" ] || return
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1 | sed "s/^/  $tool: /" |
    tee -a "$out/summary.txt"
  if grep -qiE "unavailable|not supported|unable to|could not" "$log" &&
     ! grep -q "ERROR SUMMARY: 0 errors" "$log"; then
    note "sanitizer unavailable ($tool): see sanitizer-$tool.log (not a pass)"
  fi
}


# configure_and_build CONFIGURE_LIMIT BUILD_LIMIT: build-gpu for the local GPU (kept warm between
# the two scripts).
configure_and_build() {
  local arch=${EMBER_GPU_ARCH:-native}
  # The examples' CLI11 and nlohmann-json: the host's packages, else the carried deps/include.
  if [ ! -f /usr/include/CLI/CLI.hpp ] || [ ! -f /usr/include/nlohmann/json.hpp ]; then
    if [ -f deps/include/CLI/CLI.hpp ] && [ -f deps/include/nlohmann/json.hpp ]; then
      note "CLI11/nlohmann-json: not installed here; using the carried copy in deps/include"
    else
      note "CLI11/nlohmann-json: not in /usr/include and no deps/include carried" \
        "(scripts/copy-example-deps.sh); configure stops unless CMake finds them elsewhere"
    fi
  fi
  run configure "$1" cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
    -DEMBER_WERROR=OFF -DCMAKE_CXX_FLAGS="-Wall -Wextra" \
    -DCMAKE_CUDA_FLAGS="-Xcompiler=-Wall,-Wextra" -DCMAKE_CUDA_ARCHITECTURES="$arch"
  grep -iE "catch2|ember:" "$out/configure.log" | sed 's/^/  /' | tee -a "$out/summary.txt"
  run build "$2" cmake --build build-gpu -j "$(nproc)"
  note "  compiler warnings in build.log: $(grep -c 'warning' "$out/build.log" 2>/dev/null)"
}

# finish: the verdict names what actually ran: PASS only when nothing failed or was cut for time.
finish() {
  note "total: $SECONDS s"
  local verdict
  if [ ${#failures[@]} -eq 0 ]; then
    verdict="PASS: ${passed[*]}"
  else
    verdict="FAIL: ${failures[*]} (passed: ${passed[*]:-none})"
  fi
  [ ${#absent[@]} -eq 0 ] || verdict="$verdict; not run (missing input): ${absent[*]}"
  echo "$verdict" | tee "$out/verdict.txt"
  [ ${#failures[@]} -eq 0 ]
}
