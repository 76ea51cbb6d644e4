#!/usr/bin/env bash
# Installs the dependencies (incl. Debian's dataset-fashion-mnist), builds the fashion-denoise
# example and trains the seed U-Net denoiser (2 epochs by default). Extra arguments go to the
# program, e.g. --epochs 5 --out DIR; --help lists them.
#
# Which program: --device auto (the default) uses the GPU when one is visible (nvidia-smi or
# /dev/nvidia0) and nvcc is on PATH to build the CUDA program fashion-denoise-cuda (several
# minutes the first time), else the CPU program fashion-denoise. --device cuda insists on the
# CUDA program and stops with a clear message when nvcc is missing; --device cpu builds only the
# CPU program.
set -euo pipefail
cd "$(dirname "$0")/.."

device=auto
help=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --device) device=${args[i + 1]:-} ;;
    --device=*) device=${args[i]#--device=} ;;
    --help | -h) help=1 ;;
  esac
done

have_nvcc() { command -v nvcc >/dev/null 2>&1; }
have_gpu() {
  { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; } ||
    [ -e /dev/nvidia0 ]
}

program=fashion-denoise
if [ "$help" = 0 ]; then
  case "$device" in
    cuda)
      if ! have_nvcc; then
        echo "run-example.sh: --device cuda runs fashion-denoise-cuda, which nvcc builds, but no" \
          "nvcc is on PATH. Install the CUDA toolkit (e.g. Debian's nvidia-cuda-toolkit) and put" \
          "nvcc on PATH, or use --device cpu." >&2
        exit 2
      fi
      program=fashion-denoise-cuda
      ;;
    auto)
      if have_gpu && have_nvcc; then
        program=fashion-denoise-cuda
      elif have_gpu; then
        echo "run-example.sh: a GPU is visible but nvcc is not on PATH: running on the CPU" >&2
      else
        echo "run-example.sh: no GPU visible (nvidia-smi): running on the CPU" >&2
      fi
      ;;
  esac
fi

bash scripts/install-deps.sh
# EMBER_CUDA=AUTO (the default) keeps the build directory usable by scripts/run-tests.sh too.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=AUTO >/dev/null
if [ "$program" = fashion-denoise-cuda ]; then
  if ! cmake --build build --target help | grep -q fashion-denoise-cuda; then
    echo "run-example.sh: CMake did not find a working CUDA compiler, so fashion-denoise-cuda" \
      "cannot be built (see build/CMakeFiles/CMakeOutput.log); use --device cpu" >&2
    exit 1
  fi
  echo "run-example.sh: building fashion-denoise-cuda with nvcc (several minutes the first time)"
fi
cmake --build build -j "$(nproc)" --target "$program"
exec "./build/examples/fashion_denoise/$program" "$@"
