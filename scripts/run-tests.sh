#!/usr/bin/env bash
# Installs the dependencies, builds ember's tests (and, where nvcc exists, compiles every CUDA
# source), and runs the whole test suite with ctest. Usage: scripts/run-tests.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${1:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DEMBER_WERROR=ON
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
