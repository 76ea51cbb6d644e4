#!/usr/bin/env bash
# tests/gpu-check.sh OUTDIR — the one prepared correctness check for a GPU host (H100/H200,
# nvcc 13, Catch2 v3, CMake 4, g++ 13, no network). In one call of at most ~9 minutes it builds
# ember with CUDA for the local GPU, runs the CUDA tests (and checks that they ran rather than
# skipped), the rest of the test suite (CPU tests, the mixed .cpp/.cu program, consumers, the
# example smoke test when FashionMNIST is carried) and compute-sanitizer memcheck over the CUDA
# tests, and writes every log plus a one-line verdict (OUTDIR/verdict.txt, also the last line).
# Speed and the slower sanitizers (benchmarks beside cuDNN/PyTorch, the example on CUDA,
# racecheck, initcheck) are tests/gpu-bench.sh, a second call on the warm build.
#
# Time: the step limits add up to the budget (EMBER_GPU_CHECK_BUDGET, default 540 s), so a
# healthy run is never cut short; a step that no longer fits is recorded as "not run (time
# budget)" and makes the verdict FAIL, so a short run is never mistaken for a pass.
# FashionMNIST: put the four .gz files in ./data (git-ignored) and carry it; EMBER_DATA is set to
# it only when all four are there, and the example tests are left out (and named) otherwise.
# zlib (ember::io) is on the host. The examples' header-only CLI11 and nlohmann-json may not be:
# run scripts/copy-example-deps.sh on the machine that starts the run and carry deps/ too (CMake
# uses deps/include when find_package finds neither; summary.txt says which was used).
# Sanitizers run with the allocator in exact mode (EMBER_CUDA_ALLOCATOR=exact): no rounding and
# no reuse, so every out-of-bounds access and use after free is visible to them.
# Warnings: built without -Werror here (CI enforces -Werror with its own compiler); warnings of the
# host's compiler are counted in summary.txt and kept in build.log.
set -u
out=${1:?usage: tests/gpu-check.sh OUTDIR}
budget=${EMBER_GPU_CHECK_BUDGET:-540}
# shellcheck source=tests/gpu-common.sh
. "$(dirname "$0")/gpu-common.sh"

: >"$out/summary.txt"
note "date: $(date -u +%FT%TZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || note "nvidia-smi failed"
note "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
note "nvcc: $(nvcc --version 2>/dev/null | tail -1)  cmake: $(cmake --version | head -1)"
note "c++: $(c++ --version 2>/dev/null | head -1)  budget: ${budget} s"
configure_and_build 45 210

if [ ${#failures[@]} -eq 0 ]; then
  # 1. The CUDA tests themselves, run directly so their Catch2 totals (and any skip) are visible.
  run cuda-tests 75 build-gpu/tests/ember_cuda_tests
  tail -4 "$out/cuda-tests.log" | sed 's/^/  /' | tee -a "$out/summary.txt"
  if grep -qiE "skipped|no CUDA device" "$out/cuda-tests.log"; then
    note "cuda-tests: some CUDA tests reported themselves skipped (not a pass)"
    [ "${passed[${#passed[@]}-1]:-}" = cuda-tests ] && unset 'passed[${#passed[@]}-1]'
    failures+=("cuda-tests(skipped)")
  fi
  # 2. Everything else ctest knows (CPU unit tests, mixed program, consumers, example smoke, ...);
  #    the example's tests need FashionMNIST.
  exclude="^cuda$"
  if [ $have_data -eq 0 ]; then
    exclude="$exclude|^example_"
    note "no FashionMNIST in ./data (four .gz files): example tests left out"
    absent+=("example-tests")
  fi
  run ctest 120 ctest --test-dir build-gpu --output-on-failure -j 8 -E "$exclude"
  grep -E "tests passed|tests failed|\*\*\*Failed|Not Run" "$out/ctest.log" | sed 's/^/  /' |
    tee -a "$out/summary.txt"

  # 3. compute-sanitizer memcheck over every CUDA test but the whole-U-Net loops.
  if command -v compute-sanitizer >/dev/null 2>&1 && compute-sanitizer --version >/dev/null 2>&1
  then
    sanitize memcheck 90 "[cuda]~[large]~[emulation]~[oom]~[unet]~[determinism]"
  else
    note "sanitizer unavailable: compute-sanitizer not found or does not start (not a pass)"
    failures+=("sanitizer-unavailable")
  fi
fi

finish
