#!/usr/bin/env bash
# tests/gpu-check.sh OUTDIR — the one prepared check for a GPU host (H100/H200, nvcc 13,
# Catch2 v3, CMake 4, no network). It builds ember with CUDA for the local GPU, runs the whole
# test suite (CPU and CUDA tests, the mixed .cpp/.cu program, the example smoke when data is
# present), runs compute-sanitizer (memcheck, racecheck, initcheck) over the CUDA tests, runs
# the CUDA benchmarks beside cuDNN and PyTorch, and writes every log plus a one-line verdict
# (OUTDIR/verdict.txt). FashionMNIST: put the four .gz files in ./data (git-ignored) and carry
# it; EMBER_DATA is set to it. Budget: about 8 minutes on an H100.
set -u
out=${1:?usage: tests/gpu-check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
[ -d data ] && export EMBER_DATA="$PWD/data"
failures=()
note() { echo "$*" | tee -a "$out/summary.txt"; }
run() {  # run NAME TIMEOUT CMD... : logs to OUTDIR/NAME.log, records a failure on non-zero exit
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  note "$name: exit $rc ($((SECONDS - t0)) s)"
  [ $rc -eq 0 ] || failures+=("$name(rc=$rc)")
  return $rc
}

: >"$out/summary.txt"
note "date: $(date -u +%FT%TZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || note "nvidia-smi failed"
note "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
note "nvcc: $(nvcc --version 2>/dev/null | tail -1)  cmake: $(cmake --version | head -1)"

arch=${EMBER_GPU_ARCH:-native}
run configure 120 cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
  -DEMBER_WERROR=ON -DCMAKE_CUDA_ARCHITECTURES="$arch"
run build 300 cmake --build build-gpu -j "$(nproc)"
if [ ${#failures[@]} -eq 0 ]; then
  run ctest 240 ctest --test-dir build-gpu --output-on-failure -j 4
  # The CUDA tests must have run, not skipped: Catch2 prints skips; record them.
  grep -E "SKIPPED|skipped" "$out/ctest.log" >"$out/skips.txt" 2>/dev/null && \
    note "WARNING: some tests reported skips (see skips.txt)"

  if command -v compute-sanitizer >/dev/null 2>&1 &&
     compute-sanitizer --version >/dev/null 2>&1; then
    for tool in memcheck racecheck initcheck; do
      # [cuda]~[large]: every CUDA test case except the large shapes (the sanitizer is ~100x slower).
      run "sanitizer-$tool" 240 compute-sanitizer --tool "$tool" --error-exitcode 99 \
        build-gpu/tests/ember_cuda_tests "[cuda]~[large]~[emulation]"
      if grep -qE "unavailable|not supported|Unable to" "$out/sanitizer-$tool.log" &&
         ! grep -q "ERROR SUMMARY: 0 errors" "$out/sanitizer-$tool.log"; then
        note "sanitizer unavailable ($tool): see sanitizer-$tool.log"
      fi
    done
  else
    note "sanitizer unavailable: compute-sanitizer not found or does not start"
    failures+=("sanitizer-unavailable")
  fi

  # The example on the GPU: a short training run, then scoring its checkpoint.
  if [ -x build-gpu/examples/fashion_denoise/fashion-denoise-cuda ] && [ -n "${EMBER_DATA:-}" ]; then
    run example-cuda 120 build-gpu/examples/fashion_denoise/fashion-denoise-cuda --device cuda \
      --epochs 1 --max-steps 300 --out "$out/fashion-denoise-cuda"
    run example-cuda-eval 60 build-gpu/examples/fashion_denoise/fashion-denoise-cuda \
      --device cuda --eval "$out/fashion-denoise-cuda/checkpoint.bin" --out "$out/fashion-denoise-cuda"
  else
    note "example on CUDA not run (no fashion-denoise-cuda or no ./data)"
  fi

  mkdir -p "$out/bench"
  if [ -x build-gpu/benchmarks/bench-ops-cuda ]; then
    run bench-ops-cuda 120 build-gpu/benchmarks/bench-ops-cuda --device cuda \
      --json "$out/bench/ember_ops_cuda.json"
    run bench-train-cuda 120 build-gpu/benchmarks/bench-train-cuda --device cuda \
      --json "$out/bench/ember_train_cuda.json"
    if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
      run torch-reference 180 python3 benchmarks/torch_reference.py --device cuda \
        --json "$out/bench/torch_cuda.json"
      run compare-table 30 python3 benchmarks/compare_table.py "$out/bench"
    else
      note "PyTorch with CUDA not available: no PyTorch columns"
    fi
  else
    note "benchmarks not built (no bench-ops-cuda)"
  fi
fi

if [ ${#failures[@]} -eq 0 ]; then
  verdict="PASS: build, ctest (CPU+CUDA), compute-sanitizer memcheck/racecheck/initcheck, benchmarks"
else
  verdict="FAIL: ${failures[*]}"
fi
echo "$verdict" | tee "$out/verdict.txt"
[ ${#failures[@]} -eq 0 ]
