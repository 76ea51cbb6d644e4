#!/usr/bin/env bash
# @file examples/fashion_denoise/interrupt_test.sh
# @brief ctest example_interrupt: fashion-denoise survives SIGKILL and Ctrl-C mid-epoch and
#        resumes to the same result, bitwise; it stops at the first non-finite loss or gradient
#        and keeps the last good checkpoint.
#
# usage: interrupt_test.sh FASHION_DENOISE FASHION_DENOISE_CHECK WORK_DIR
# Needs FashionMNIST ($EMBER_DATA, else /usr/share/datasets/fashion-mnist). Steps (all on the CPU,
# batch 32, 60 steps, a checkpoint every 15 steps):
#   1. an uninterrupted reference run;
#   2. the same run SIGKILLed a random 0.2-0.8 s after its first checkpoint appeared, then
#      --resume'd: its checkpoint (every tensor), loss.csv and summary losses/MSEs equal the
#      reference's bitwise, and no temp file is left;
#   3. the same with SIGINT: exit 130, a checkpoint written at the step it stopped, the resume
#      command printed; resumed, it equals the reference bitwise; SIGTERM: exit 143 and a
#      checkpoint at the step it stopped;
#   4. EMBER_EXAMPLE_INJECT_NAN=loss@20 and grad@20 (test hook): exit 1, the message names step
#      20 and the last good checkpoint (step 15), which loads and still holds step 15.
set -u
DENOISE=$1
CHECK=$2
WORK=$3
DATA=${EMBER_DATA:-/usr/share/datasets/fashion-mnist}
RANDOM=20261201  # seeded: the kill delays are the same in every run of this test

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
if [ ! -e "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -e "$DATA/train-images-idx3-ubyte" ]; then
  fail "FashionMNIST is not installed: no $DATA/train-images-idx3-ubyte.gz. Install Debian's" \
    "dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or set EMBER_DATA."
fi
rm -rf "$WORK"
mkdir -p "$WORK"
ARGS=(--device cpu --data "$DATA" --epochs 1 --batch 32 --max-steps 60 --checkpoint-every 15
  --log-every 10)

# ---- 1. reference ----
"$DENOISE" "${ARGS[@]}" --out "$WORK/ref" >"$WORK/ref.log" 2>&1 || {
  cat "$WORK/ref.log"
  fail "reference run failed"
}
"$CHECK" outputs "$WORK/ref" --step 60 || fail "reference outputs"

# Starts a run in the background into $1, waits for its first checkpoint, waits a random
# 0.2-0.8 s more, sends signal $2 and checks the exit status is $3.
interrupt() {
  local out=$1 sig=$2 want=$3
  "$DENOISE" "${ARGS[@]}" --out "$out" >"$out.log" 2>&1 &
  local pid=$! waited=0
  while [ ! -e "$out/checkpoint.bin" ]; do
    sleep 0.05
    waited=$((waited + 1))
    kill -0 "$pid" 2>/dev/null || { cat "$out.log"; fail "the run ended before its first checkpoint"; }
    [ "$waited" -lt 2400 ] || { kill -9 "$pid"; fail "no checkpoint after 120 s"; }
  done
  sleep "0.$((2 + RANDOM % 7))"
  kill -0 "$pid" 2>/dev/null || { cat "$out.log"; fail "the run finished before it could be interrupted"; }
  kill -s "$sig" "$pid"
  wait "$pid"
  local rc=$?
  cat "$out.log"
  [ "$rc" -eq "$want" ] || fail "after SIG$sig the exit status is $rc, expected $want"
}

# Resumes the run in $1 and checks it ends equal to the reference.
resume_and_compare() {
  local out=$1
  "$DENOISE" --device cpu --data "$DATA" --resume "$out/checkpoint.bin" --epochs 1 --max-steps 60 \
    --checkpoint-every 15 --log-every 10 --out "$out" >"$out.resume.log" 2>&1 || {
    cat "$out.resume.log"
    fail "resume of $out failed"
  }
  cat "$out.resume.log"
  grep -Eq "resuming from .* at step [1-9][0-9]* " "$out.resume.log" || fail "$out: no 'resuming from ... at step N'"
  "$CHECK" outputs "$out" --step 60 || fail "$out: outputs after resume"
  "$CHECK" same-run "$WORK/ref" "$out" || fail "$out: the resumed run differs from the reference"
  if ls "$out" | grep -q '\.tmp\.'; then
    ls -l "$out"
    fail "$out: temp files left after the resumed run"
  fi
}

# ---- 2. SIGKILL mid-epoch, resume ----
interrupt "$WORK/kill" KILL 137
step=$("$CHECK" checkpoint "$WORK/kill/checkpoint.bin" | sed -n 's/.*(step \([0-9]*\),.*/\1/p')
echo "killed; the checkpoint on disk is at step $step"
[ -n "$step" ] && [ "$step" -ge 15 ] && [ "$step" -lt 60 ] || fail "checkpoint after the kill: step '$step'"
resume_and_compare "$WORK/kill"

# ---- 3. SIGINT mid-epoch: a checkpoint at the step it stopped, resume ----
interrupt "$WORK/int" INT 130
grep -Eq "stopped by SIGINT at step [0-9]+ of 60" "$WORK/int.log" || fail "no 'stopped by SIGINT at step N' line"
grep -q "continue with: fashion-denoise --resume $WORK/int/checkpoint.bin" "$WORK/int.log" ||
  fail "no resume command printed"
istep=$(sed -n 's/.*stopped by SIGINT at step \([0-9]*\) .*/\1/p' "$WORK/int.log")
"$CHECK" checkpoint "$WORK/int/checkpoint.bin" --step "$istep" || fail "the SIGINT checkpoint is not at step $istep"
resume_and_compare "$WORK/int"

# ---- 3b. SIGTERM: exit 143, a checkpoint at the step it stopped ----
interrupt "$WORK/term" TERM 143
grep -Eq "stopped by SIGTERM at step [0-9]+ of 60" "$WORK/term.log" || fail "no 'stopped by SIGTERM at step N' line"
tstep=$(sed -n 's/.*stopped by SIGTERM at step \([0-9]*\) .*/\1/p' "$WORK/term.log")
"$CHECK" checkpoint "$WORK/term/checkpoint.bin" --step "$tstep" || fail "the SIGTERM checkpoint is not at step $tstep"

# ---- 4. non-finite loss / gradient (test hook) ----
for kind in loss grad; do
  out="$WORK/nan_$kind"
  EMBER_EXAMPLE_INJECT_NAN="$kind@20" "$DENOISE" "${ARGS[@]}" --out "$out" >"$out.log" 2>&1
  rc=$?
  cat "$out.log"
  [ "$rc" -eq 1 ] || fail "with a NaN injected into the $kind the exit status is $rc, expected 1"
  if [ "$kind" = loss ]; then want="non-finite loss \(nan\) at step 20"; else want="non-finite gradient at step 20"; fi
  grep -Eq "$want" "$out.log" || fail "no '$want' message"
  grep -q "last good checkpoint is $out/checkpoint.bin (step 15)" "$out.log" || fail "the last good checkpoint is not named"
  "$CHECK" checkpoint "$out/checkpoint.bin" --step 15 || fail "the last good checkpoint does not load at step 15"
done
echo "example_interrupt: all checks passed"
