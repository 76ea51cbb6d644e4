#!/usr/bin/env bash
# Runs ember's benchmarks and the PyTorch reference back to back on this machine and prints one
# comparison table (benchmarks/compare_table.py). All JSON lines go to --out.
#
#   benchmarks/compare.sh [--device cpu|cuda] [--batch 32,128,1024] [--op-batch 128] [--iters N]
#                         [--threads N] [--out DIR] [--build DIR] [--skip-ops] [--skip-train]
#                         [--tf32] [--tiny]
#
# cpu:  bench-ops, bench-train (ember; EMBER_NUM_THREADS=--threads) and torch_reference.py with
#       --threads (default: the number of cores), eager.
# cuda: bench-ops-cuda (ember beside cuDNN / cuBLAS, with correctness checks), bench-train-cuda,
#       torch_reference.py --device cuda (eager and CUDA-graph train step, per-op times).
# The programs are taken from --build (default: build-bench in the repository root) and built
# there first when missing; results go to --out (default $BUILD/bench-results/DEVICE-DATE).
# PyTorch: /usr/bin/python3 when it has torch, else python3. Under heavy load PyTorch's OpenMP
# threads spin at barriers and slow down badly; OMP_WAIT_POLICY=PASSIVE in the environment helps.
# Exit status: 0 when every program ran and every correctness check passed, 1 otherwise.
set -uo pipefail

DEVICE=cpu BATCH="" OPBATCH="" ITERS="" THREADS="" OUT="" BUILD="" SKIP_OPS=0 SKIP_TRAIN=0
TF32=0 TINY=0
usage() { sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --op-batch) OPBATCH="$2"; shift 2 ;;
    --iters) ITERS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --skip-ops) SKIP_OPS=1; shift ;;
    --skip-train) SKIP_TRAIN=1; shift ;;
    --tf32) TF32=1; shift ;;
    --tiny) TINY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cpu|cuda) ;; *) echo "compare.sh: --device must be cpu or cuda" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build-bench}"
OUT="${OUT:-$BUILD/bench-results/$DEVICE-$(date +%Y%m%d-%H%M%S)}"
THREADS="${THREADS:-$(nproc)}"
mkdir -p "$OUT"

if [ "$DEVICE" = cuda ]; then OPS_PROG=bench-ops-cuda TRAIN_PROG=bench-train-cuda
else OPS_PROG=bench-ops TRAIN_PROG=bench-train; fi
find_prog() { for p in "$BUILD/benchmarks/$1" "$BUILD/$1"; do [ -x "$p" ] && { echo "$p"; return; }; done; }
if [ -z "$(find_prog $OPS_PROG)" ] || [ -z "$(find_prog $TRAIN_PROG)" ]; then
  echo "== building $OPS_PROG and $TRAIN_PROG in $BUILD"
  CUDA_FLAG=""; [ "$DEVICE" = cuda ] && CUDA_FLAG="-DEMBER_CUDA=ON"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release $CUDA_FLAG >"$OUT/build.log" 2>&1 &&
    cmake --build "$BUILD" -j"$(nproc)" --target "$OPS_PROG" "$TRAIN_PROG" >>"$OUT/build.log" 2>&1 ||
    { echo "compare.sh: build failed, see $OUT/build.log" >&2; tail -20 "$OUT/build.log" >&2; exit 1; }
fi
OPS_BIN="$(find_prog $OPS_PROG)" TRAIN_BIN="$(find_prog $TRAIN_PROG)"

PY=python3
if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then PY=/usr/bin/python3; fi
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
  echo "compare.sh: no python3 with torch found; PyTorch columns will be empty" >&2; PY=""
fi

COMMON=(--device "$DEVICE")
[ -n "$ITERS" ] && COMMON+=(--iters "$ITERS")
[ "$TINY" = 1 ] && COMMON+=(--tiny)
EMBER_EXTRA=() TORCH_EXTRA=(--threads "$THREADS")
[ "$TF32" = 1 ] && { EMBER_EXTRA+=(--tf32); TORCH_EXTRA+=(--tf32); }
OPS_BATCH=(); [ -n "$OPBATCH" ] && OPS_BATCH=(--batch "$OPBATCH")
TORCH_OPS_BATCH=(); [ -n "$OPBATCH" ] && TORCH_OPS_BATCH=(--op-batch "$OPBATCH")
TRAIN_BATCH=(); [ -n "$BATCH" ] && TRAIN_BATCH=(--batch "$BATCH")
export EMBER_NUM_THREADS="$THREADS"

echo "== results in $OUT (device $DEVICE, $THREADS threads, load: $(cut -d' ' -f1-3 /proc/loadavg))"
if awk -v n="$(nproc)" '{ exit !($1 > n) }' /proc/loadavg; then
  echo "   WARNING: load average exceeds the $(nproc) cores: timings are unreliable, PyTorch's"
  echo "   OpenMP threads especially (spin-waiting barriers; OMP_WAIT_POLICY=PASSIVE softens it)."
fi
rc=0
run() {  # name, log file, command...
  local name="$1" log="$2"; shift 2
  echo "== $name: $*"
  local t0=$SECONDS
  "$@" >"$log" 2>&1
  local r=$?
  echo "   exit $r after $((SECONDS - t0)) s (log: $log)"
  if [ $r -ne 0 ]; then rc=1; tail -5 "$log" | sed 's/^/   | /'; fi
}
if [ "$SKIP_OPS" = 0 ]; then
  run "ember ops" "$OUT/ember_ops.log" "$OPS_BIN" "${COMMON[@]}" "${OPS_BATCH[@]}" "${EMBER_EXTRA[@]}" \
      --json "$OUT/ember_ops.json"
  [ -n "$PY" ] && run "PyTorch ops" "$OUT/torch_ops.log" "$PY" "$ROOT/benchmarks/torch_reference.py" \
      "${COMMON[@]}" "${TORCH_OPS_BATCH[@]}" "${TORCH_EXTRA[@]}" --skip-train --json "$OUT/torch_ops.json"
fi
if [ "$SKIP_TRAIN" = 0 ]; then
  run "ember train" "$OUT/ember_train.log" "$TRAIN_BIN" "${COMMON[@]}" "${TRAIN_BATCH[@]}" \
      --json "$OUT/ember_train.json"
  [ -n "$PY" ] && run "PyTorch train" "$OUT/torch_train.log" "$PY" "$ROOT/benchmarks/torch_reference.py" \
      "${COMMON[@]}" "${TRAIN_BATCH[@]}" "${TORCH_EXTRA[@]}" --skip-ops --json "$OUT/torch_train.json"
fi
echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$ROOT/benchmarks/compare_table.py" "$OUT" --device "$DEVICE" | tee "$OUT/table.txt"
python3 "$ROOT/benchmarks/compare_table.py" "$OUT" --device "$DEVICE" --markdown >"$OUT/table.md"
if grep -qh '"check": *"FAIL"' "$OUT"/*.json 2>/dev/null; then rc=1; fi
exit $rc
