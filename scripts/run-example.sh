#!/usr/bin/env bash
# Installs the dependencies (incl. Debian's dataset-fashion-mnist), builds the fashion-denoise
# example and trains the seed U-Net denoiser for 2 epochs on the CPU (or the GPU of a CUDA
# build with --device cuda). Extra arguments go to the program, e.g. --epochs 5 --out DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target fashion-denoise
exec ./build/examples/fashion_denoise/fashion-denoise "$@"
