# Smoke test of fashion-denoise, run by ctest as `cmake -P smoke_test.cmake` with
#   -DDENOISE=<fashion-denoise> -DCHECK=<fashion-denoise-check> -DWORK=<scratch directory>
# It needs FashionMNIST ($EMBER_DATA, else /usr/share/datasets/fashion-mnist) and fails with a
# clear message when it is missing. Steps:
#   1. a short CPU training run (300 steps of batch 32): exit 0, outputs valid, test MSE far below
#      the noisy input's (checked by fashion-denoise-check from summary.json);
#   2. --eval of its checkpoint: exit 0, prints the test MSE, draws the PNGs;
#   3. --resume for 20 more steps: exit 0, outputs valid at step 320;
#   4. bad command lines exit 2 with the usage text (also a flag whose value is missing before
#      the next flag); a bad --out exits 1 before the data is loaded; a truncated training file,
#      a missing data directory and a damaged checkpoint exit 1 with a message naming the file.
# Interrupted runs and non-finite losses: interrupt_test.sh (ctest example_interrupt).
# No timing is asserted.
cmake_minimum_required(VERSION 3.24)

foreach(var DENOISE CHECK WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "smoke_test.cmake: pass -D${var}=...")
  endif()
endforeach()

if(DEFINED ENV{EMBER_DATA} AND NOT "$ENV{EMBER_DATA}" STREQUAL "")
  set(DATA "$ENV{EMBER_DATA}")
else()
  set(DATA "/usr/share/datasets/fashion-mnist")
endif()
set(TRAIN_IMAGES "")
foreach(candidate train-images-idx3-ubyte.gz train-images-idx3-ubyte)
  if(EXISTS "${DATA}/${candidate}" AND TRAIN_IMAGES STREQUAL "")
    set(TRAIN_IMAGES "${candidate}")
  endif()
endforeach()
if(TRAIN_IMAGES STREQUAL "")
  message(FATAL_ERROR "FashionMNIST is not installed: no ${DATA}/train-images-idx3-ubyte.gz. "
                      "Install Debian's dataset-fashion-mnist (apt-get install "
                      "dataset-fashion-mnist) or set EMBER_DATA to a directory holding the four "
                      "FashionMNIST .gz files.")
endif()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(OUT "${WORK}/out")

# run(<name> <expected exit code> args...): runs a command, echoes its output, checks the code.
# Leaves the output in ${name}_OUT / ${name}_ERR.
function(run name expect)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "[${name}] ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 600)
  message("${out}${err}")
  if(NOT "${rc}" STREQUAL "${expect}")
    message(FATAL_ERROR "[${name}] exit status ${rc}, expected ${expect}")
  endif()
  set(${name}_OUT "${out}" PARENT_SCOPE)
  set(${name}_ERR "${err}" PARENT_SCOPE)
endfunction()

function(expect_match name text regex)
  if(NOT "${text}" MATCHES "${regex}")
    message(FATAL_ERROR "[${name}] output does not match '${regex}'")
  endif()
endfunction()

# ---- 1. train ----
run(train 0 "${DENOISE}" --device cpu --data "${DATA}" --epochs 1 --batch 32 --max-steps 300
    --log-every 100 --out "${OUT}")
expect_match(train "${train_OUT}" "U-Net with 234977 parameters")
expect_match(train "${train_OUT}" "step 300/300")
expect_match(train "${train_OUT}" "epoch 1: train loss [0-9.]+, test MSE [0-9.]+ \\(noisy input [0-9.]+\\)")
run(check_train 0 "${CHECK}" outputs "${OUT}" --step 300 --max-mse-ratio 0.5)

# ---- 2. eval ----
run(eval 0 "${DENOISE}" --device cpu --data "${DATA}" --eval "${OUT}/checkpoint.bin"
    --out "${WORK}/eval")
expect_match(eval "${eval_OUT}" "eval: test MSE [0-9.]+ \\(noisy input [0-9.]+\\)")
foreach(png denoise_grid.png from_noise.png)
  if(NOT EXISTS "${WORK}/eval/${png}")
    message(FATAL_ERROR "[eval] ${WORK}/eval/${png} was not written")
  endif()
endforeach()

# ---- 3. resume for 20 more steps ----
run(resume 0 "${DENOISE}" --device cpu --data "${DATA}" --resume "${OUT}/checkpoint.bin"
    --epochs 1 --max-steps 320 --log-every 10 --out "${OUT}")
expect_match(resume "${resume_OUT}" "resuming from .* at step 300")
expect_match(resume "${resume_OUT}" "step 320/320")
run(check_resume 0 "${CHECK}" outputs "${OUT}" --step 320 --max-mse-ratio 0.5)

# ---- 4. errors ----
# (The command line is CLI11's: its messages, then the usage text.)
run(bad_flag 2 "${DENOISE}" --no-such-flag)
expect_match(bad_flag "${bad_flag_ERR}" "not expected: --no-such-flag.*Usage: fashion-denoise")
run(bad_value 2 "${DENOISE}" --batch 0)
expect_match(bad_value "${bad_value_ERR}" "--batch: needs an integer in \\[1, 65536\\], got '0'")
run(hex_value 2 "${DENOISE}" --epochs 0x10)
run(negative_seed 2 "${DENOISE}" --seed -1)
expect_match(negative_seed "${negative_seed_ERR}" "--seed: needs a non-negative integer")
run(bad_device 2 "${DENOISE}" --device tpu)
expect_match(bad_device "${bad_device_ERR}" "--device: must be cpu, cuda or auto, got 'tpu'")
run(missing_value 2 "${DENOISE}" --epochs)
run(swallowed_value 2 "${DENOISE}" --out --epochs 3)
expect_match(swallowed_value "${swallowed_value_ERR}" "--out: needs a directory, but the next argument is the flag '--epochs'")
run(resume_and_eval 2 "${DENOISE}" --resume a.bin --eval b.bin)
run(help 0 "${DENOISE}" --help)
expect_match(help "${help_OUT}" "--resume CKPT")
expect_match(help "${help_OUT}" "exit status: 0 success")

file(MAKE_DIRECTORY "${WORK}/bad_data")
foreach(f train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
  foreach(ext .gz "")
    if(EXISTS "${DATA}/${f}${ext}")
      file(COPY "${DATA}/${f}${ext}" DESTINATION "${WORK}/bad_data")
    endif()
  endforeach()
endforeach()
run(truncate 0 "${CHECK}" truncate "${DATA}/${TRAIN_IMAGES}" "${WORK}/bad_data/${TRAIN_IMAGES}" 5000)
run(bad_data 1 "${DENOISE}" --device cpu --data "${WORK}/bad_data" --out "${WORK}/bad_out")
expect_match(bad_data "${bad_data_ERR}" "bad_data/${TRAIN_IMAGES}")
expect_match(bad_data "${bad_data_ERR}" "dataset-fashion-mnist")

# A bad --out is found before the data is loaded ("data:" is the load's report line).
file(WRITE "${WORK}/a_file" "x")
run(out_is_file 1 "${DENOISE}" --device cpu --data "${DATA}" --out "${WORK}/a_file")
expect_match(out_is_file "${out_is_file_ERR}" "a_file' exists and is not a directory")
if("${out_is_file_OUT}" MATCHES "data: ")
  message(FATAL_ERROR "[out_is_file] the data was loaded before --out was checked")
endif()
run(out_uncreatable 1 "${DENOISE}" --device cpu --data "${DATA}" --out "/proc/ember-no-such-dir")
expect_match(out_uncreatable "${out_uncreatable_ERR}" "cannot create output directory '/proc/ember-no-such-dir'")
execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT uid STREQUAL "0")  # root may write into a read-only directory
  file(MAKE_DIRECTORY "${WORK}/read_only")
  file(CHMOD "${WORK}/read_only" DIRECTORY_PERMISSIONS OWNER_READ OWNER_EXECUTE)
  run(out_read_only 1 "${DENOISE}" --device cpu --data "${DATA}" --out "${WORK}/read_only")
  expect_match(out_read_only "${out_read_only_ERR}" "cannot write to the output directory")
  file(CHMOD "${WORK}/read_only" DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
endif()

run(no_data 1 "${DENOISE}" --device cpu --data "${WORK}/no_such_dir" --out "${WORK}/bad_out")
expect_match(no_data "${no_data_ERR}" "no_such_dir")

run(truncate_ckpt 0 "${CHECK}" truncate "${OUT}/checkpoint.bin" "${WORK}/broken.bin" 1000)
run(bad_ckpt 1 "${DENOISE}" --device cpu --data "${DATA}" --eval "${WORK}/broken.bin"
    --out "${WORK}/bad_out")
expect_match(bad_ckpt "${bad_ckpt_ERR}" "broken.bin.*truncated")
run(missing_ckpt 1 "${DENOISE}" --device cpu --data "${DATA}" --resume "${WORK}/none.bin"
    --out "${WORK}/bad_out")
expect_match(missing_ckpt "${missing_ckpt_ERR}" "none.bin")

message(STATUS "example_smoke: all checks passed")
