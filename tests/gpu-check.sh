#!/usr/bin/env bash
# tests/gpu-check.sh OUTDIR — the one prepared check for a GPU host (H100/H200, nvcc 13,
# Catch2 v3, CMake 4, g++ 13, no network). It builds ember with CUDA for the local GPU, runs the
# CUDA tests (and checks that they ran rather than skipped), the rest of the test suite (CPU tests,
# the mixed .cpp/.cu program, the example smoke test when data is present), compute-sanitizer
# (memcheck, racecheck, initcheck) over the CUDA tests, the example on CUDA, and the CUDA
# benchmarks beside cuDNN and PyTorch; it writes every log plus a one-line verdict
# (OUTDIR/verdict.txt, also the last line printed).
#
# Time: the whole script keeps to EMBER_GPU_CHECK_BUDGET seconds (default 470, under 8 minutes).
# Steps run in order of value; a step that no longer fits is recorded as "not run (time budget)"
# and makes the verdict FAIL, so a short run is never mistaken for a pass.
# FashionMNIST: put the four .gz files in ./data (git-ignored) and carry it; EMBER_DATA is set to it.
# Warnings: built without -Werror here (CI enforces -Werror with its own compiler); warnings of the
# host's compiler are counted in summary.txt and kept in build.log.
set -u
out=${1:?usage: tests/gpu-check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 1
export PATH="$PATH:/usr/local/cuda/bin"
[ -d data ] && export EMBER_DATA="$PWD/data"
budget=${EMBER_GPU_CHECK_BUDGET:-470}
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
# left out: [large] (the tools are 10-100x slower), [emulation] (host-only) and [oom] (their
# deliberate failing cudaMalloc is an API error the tools would count).
sanitize() {
  local tool=$1 limit=$2 filter=$3
  run "sanitizer-$tool" "$limit" compute-sanitizer --tool "$tool" --error-exitcode 99 \
    build-gpu/tests/ember_cuda_tests "$filter"
  local log="$out/sanitizer-$tool.log"
  [ -f "$log" ] || return
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1 | sed "s/^/  $tool: /" |
    tee -a "$out/summary.txt"
  if grep -qiE "unavailable|not supported|unable to|could not" "$log" &&
     ! grep -q "ERROR SUMMARY: 0 errors" "$log"; then
    note "sanitizer unavailable ($tool): see sanitizer-$tool.log (not a pass)"
  fi
}

: >"$out/summary.txt"
note "date: $(date -u +%FT%TZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || note "nvidia-smi failed"
note "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
note "nvcc: $(nvcc --version 2>/dev/null | tail -1)  cmake: $(cmake --version | head -1)"
note "c++: $(c++ --version 2>/dev/null | head -1)  budget: ${budget} s"

arch=${EMBER_GPU_ARCH:-native}
run configure 90 cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
  -DEMBER_WERROR=OFF -DCMAKE_CXX_FLAGS="-Wall -Wextra" \
  -DCMAKE_CUDA_FLAGS="-Xcompiler=-Wall,-Wextra" -DCMAKE_CUDA_ARCHITECTURES="$arch"
grep -iE "catch2|ember:" "$out/configure.log" | sed 's/^/  /' | tee -a "$out/summary.txt"
run build 240 cmake --build build-gpu -j "$(nproc)"
note "  compiler warnings in build.log: $(grep -c 'warning' "$out/build.log" 2>/dev/null)"

if [ ${#failures[@]} -eq 0 ]; then
  # 1. The CUDA tests themselves, run directly so their Catch2 totals (and any skip) are visible.
  run cuda-tests 120 build-gpu/tests/ember_cuda_tests
  tail -4 "$out/cuda-tests.log" | sed 's/^/  /' | tee -a "$out/summary.txt"
  if grep -qiE "skipped|no CUDA device" "$out/cuda-tests.log"; then
    note "cuda-tests: some CUDA tests reported themselves skipped (not a pass)"
    [ "${passed[${#passed[@]}-1]:-}" = cuda-tests ] && unset 'passed[${#passed[@]}-1]'
    failures+=("cuda-tests(skipped)")
  fi
  # 2. Everything else ctest knows (CPU unit tests, mixed program, consumers, example smoke, ...).
  run ctest 150 ctest --test-dir build-gpu --output-on-failure -j 8 -E "^cuda$"
  grep -E "tests passed|tests failed|\*\*\*Failed|Not Run" "$out/ctest.log" | sed 's/^/  /' |
    tee -a "$out/summary.txt"

  have_sanitizer=0
  if command -v compute-sanitizer >/dev/null 2>&1 && compute-sanitizer --version >/dev/null 2>&1
  then have_sanitizer=1
  else
    note "sanitizer unavailable: compute-sanitizer not found or does not start (not a pass)"
    failures+=("sanitizer-unavailable")
  fi
  sane="[cuda]~[large]~[emulation]~[oom]"
  [ $have_sanitizer -eq 1 ] && sanitize memcheck 120 "$sane"

  # 3. The benchmarks (every timed result is also checked against cuDNN/cuBLAS by the program).
  mkdir -p "$out/bench"
  if [ -x build-gpu/benchmarks/bench-ops-cuda ]; then
    run bench-ops-cuda 60 build-gpu/benchmarks/bench-ops-cuda --device cuda \
      --json "$out/bench/ember_ops_cuda.json"
    run bench-train-cuda 60 build-gpu/benchmarks/bench-train-cuda --device cuda \
      --json "$out/bench/ember_train_cuda.json"
    if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
      run torch-reference 120 python3 benchmarks/torch_reference.py --device cuda \
        --json "$out/bench/torch_cuda.json"
      run compare-table 30 python3 benchmarks/compare_table.py "$out/bench"
    else
      note "PyTorch with CUDA not available: no PyTorch columns"
      absent+=("torch-reference")
    fi
  else
    note "benchmarks not built (no bench-ops-cuda)"
    failures+=("bench(not-built)")
  fi

  # 4. The example on the GPU: a short training run, then scoring its checkpoint.
  if [ -x build-gpu/examples/fashion_denoise/fashion-denoise-cuda ] && [ -n "${EMBER_DATA:-}" ]; then
    run example-cuda 90 build-gpu/examples/fashion_denoise/fashion-denoise-cuda --device cuda \
      --epochs 1 --max-steps 300 --out "$out/fashion-denoise-cuda"
    run example-cuda-eval 45 build-gpu/examples/fashion_denoise/fashion-denoise-cuda \
      --device cuda --eval "$out/fashion-denoise-cuda/checkpoint.bin" --out "$out/fashion-denoise-cuda"
  else
    note "example on CUDA not run (no fashion-denoise-cuda or no ./data)"
    absent+=("example-cuda")
  fi

  # 5. The slower sanitizer tools last.
  if [ $have_sanitizer -eq 1 ]; then
    # racecheck checks shared memory, which the per-op tests exercise: the whole-U-Net steps
    # ([unet], [determinism]) add only time under it.
    sanitize racecheck 120 "$sane~[unet]~[determinism]"
    sanitize initcheck 90 "$sane"
  fi
fi

note "total: $SECONDS s"
# The verdict names what actually ran: PASS only when nothing failed or was cut for time.
if [ ${#failures[@]} -eq 0 ]; then
  verdict="PASS: ${passed[*]}"
else
  verdict="FAIL: ${failures[*]} (passed: ${passed[*]:-none})"
fi
[ ${#absent[@]} -eq 0 ] || verdict="$verdict; not run (missing input): ${absent[*]}"
echo "$verdict" | tee "$out/verdict.txt"
[ ${#failures[@]} -eq 0 ]
