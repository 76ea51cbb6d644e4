#!/usr/bin/env bash
# tests/gpu-bench.sh OUTDIR — the second GPU call, after tests/gpu-check.sh on the same warm
# machine (it reuses build-gpu/, building it if absent): the CUDA benchmarks beside cuDNN/cuBLAS
# (each timed result is also checked against them by the program) and PyTorch, the example on
# CUDA (a short training run and scoring its checkpoint, when FashionMNIST is carried in ./data),
# and compute-sanitizer racecheck and initcheck. Budget: EMBER_GPU_BENCH_BUDGET (default 540 s);
# the step limits add up to it. Writes OUTDIR/verdict.txt like gpu-check.sh.
set -u
out=${1:?usage: tests/gpu-bench.sh OUTDIR}
budget=${EMBER_GPU_BENCH_BUDGET:-540}
# shellcheck source=tests/gpu-common.sh
. "$(dirname "$0")/gpu-common.sh"

: >"$out/summary.txt"
note "date: $(date -u +%FT%TZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
note "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
if [ ! -x build-gpu/benchmarks/bench-ops-cuda ]; then configure_and_build 45 210; fi

if [ ${#failures[@]} -eq 0 ]; then
  mkdir -p "$out/bench"
  run bench-ops-cuda 60 build-gpu/benchmarks/bench-ops-cuda --device cuda \
    --json "$out/bench/ember_ops_cuda.json"
  run bench-train-cuda 60 build-gpu/benchmarks/bench-train-cuda --device cuda \
    --json "$out/bench/ember_train_cuda.json"
  if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    run torch-reference 90 python3 benchmarks/torch_reference.py --device cuda \
      --json "$out/bench/torch_cuda.json"
    run compare-table 15 python3 benchmarks/compare_table.py "$out/bench"
  else
    note "PyTorch with CUDA not available: no PyTorch columns"
    absent+=("torch-reference")
  fi
  if [ -n "${EMBER_DATA:-}" ]; then
    run example-cuda 60 build-gpu/examples/fashion_denoise/fashion-denoise-cuda --device cuda \
      --epochs 1 --max-steps 300 --out "$out/fashion-denoise-cuda"
    run example-cuda-eval 30 build-gpu/examples/fashion_denoise/fashion-denoise-cuda \
      --device cuda --eval "$out/fashion-denoise-cuda/checkpoint.bin" --out "$out/fashion-denoise-cuda"
  else
    note "example on CUDA not run (no FashionMNIST in ./data)"
    absent+=("example-cuda")
  fi
  if command -v compute-sanitizer >/dev/null 2>&1; then
    # racecheck checks shared memory, which the per-op tests exercise.
    sanitize racecheck 120 "[cuda]~[large]~[emulation]~[oom]~[unet]~[determinism]"
    sanitize initcheck 90 "[cuda]~[large]~[emulation]~[oom]~[unet]~[determinism]"
  else
    failures+=("sanitizer-unavailable")
  fi
fi
finish
