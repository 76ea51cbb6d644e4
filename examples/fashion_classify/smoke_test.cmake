# Smoke test of fashion-classify, run by ctest as `cmake -P smoke_test.cmake` with
#   -DCLASSIFY=<fashion-classify> -DCHECK=<fashion-classify-check> -DWORK=<scratch directory>
# It needs FashionMNIST ($EMBER_DATA, else /usr/share/datasets/fashion-mnist) and fails with a
# clear message when it is missing. All runs are 16x16 on the first 2,048 training images
# (batch 64, 32 steps an epoch) scored on the first 2,000 test images: seconds. Steps:
#   1. two epochs: exit 0; outputs valid (fashion-classify-check: JSON, CSV, PNGs, checkpoint,
#      model), the train loss fell and is below chance, test accuracy above 60% (chance: 10%);
#   2. the same run split in two (--stop-after 1, then --resume): the same state bitwise;
#   3. --eval of the checkpoint and of model.safetensors: the accuracy of the training run;
#   4. bad command lines exit 2 with the usage text; a missing data directory, a truncated
#      training file, a damaged checkpoint and a bad --out exit 1 with a message naming them.
# No timing is asserted.
cmake_minimum_required(VERSION 3.24)

foreach(var CLASSIFY CHECK WORK)
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

function(run name expect)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "[${name}] ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 200)
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

set(COMMON --data "${DATA}" --size 16 --limit 2048 --test-limit 2000 --batch 64 --epochs 2
           --log-every 16)

# ---- 1. train two epochs ----
run(train 0 "${CLASSIFY}" ${COMMON} --out "${WORK}/a")
expect_match(train "${train_OUT}" "16x16 CNN with 151498 parameters")
expect_match(train "${train_OUT}" "step 64/64")
expect_match(train "${train_OUT}" "epoch 2/2: train loss [0-9.]+ \\(acc [0-9.]+%\\), test loss [0-9.]+, test accuracy [0-9.]+%")
expect_match(train "${train_OUT}" "test accuracy ([0-9.]+)% \\(16x16, 2 epochs\\); PyTorch")
string(REGEX MATCH "test accuracy ([0-9.]+)% \\(16x16, 2 epochs\\)" _ "${train_OUT}")
set(ACC "${CMAKE_MATCH_1}")
run(check_train 0 "${CHECK}" outputs "${WORK}/a" --epochs 2 --min-accuracy 0.6)

# ---- 2. the same run in two parts ----
run(part1 0 "${CLASSIFY}" ${COMMON} --stop-after 1 --out "${WORK}/b")
expect_match(part1 "${part1_OUT}" "stopped after epoch 1 of 2 \\(--stop-after\\)")
run(part2 0 "${CLASSIFY}" --data "${DATA}" --test-limit 2000 --log-every 16
    --resume "${WORK}/b/checkpoint.bin" --out "${WORK}/b")
expect_match(part2 "${part2_OUT}" "resuming from .* after epoch 1 of 2")
run(same 0 "${CHECK}" same-run "${WORK}/a" "${WORK}/b")

# ---- 3. --eval ----
run(eval_ckpt 0 "${CLASSIFY}" --data "${DATA}" --test-limit 2000 --eval "${WORK}/a/checkpoint.bin"
    --out "${WORK}/eval1")
expect_match(eval_ckpt "${eval_ckpt_OUT}" "eval: test accuracy ${ACC}% .* on 2000 test images")
run(eval_model 0 "${CLASSIFY}" --data "${DATA}" --test-limit 2000
    --eval "${WORK}/a/model.safetensors" --out "${WORK}/eval2")
expect_match(eval_model "${eval_model_OUT}" "eval: test accuracy ${ACC}% .* on 2000 test images")
foreach(f eval.json confusion.png predictions.png)
  if(NOT EXISTS "${WORK}/eval2/${f}")
    message(FATAL_ERROR "[eval_model] ${WORK}/eval2/${f} was not written")
  endif()
endforeach()

# ---- 4. errors ----
run(bad_flag 2 "${CLASSIFY}" --no-such-flag)
expect_match(bad_flag "${bad_flag_ERR}" "not expected: --no-such-flag.*Usage: fashion-classify")
run(bad_size 2 "${CLASSIFY}" --size 20)
expect_match(bad_size "${bad_size_ERR}" "--size: must be 28 or 16, got '20'")
run(bad_batch 2 "${CLASSIFY}" --batch 0)
expect_match(bad_batch "${bad_batch_ERR}" "--batch: needs an integer in \\[1, 65536\\], got '0'")
run(bad_lr 2 "${CLASSIFY}" --lr -1)
run(bad_dropout 2 "${CLASSIFY}" --dropout 1.5)
run(swallowed 2 "${CLASSIFY}" --out --epochs 3)
expect_match(swallowed "${swallowed_ERR}" "--out: needs a directory, but the next argument is the flag '--epochs'")
run(resume_and_eval 2 "${CLASSIFY}" --resume a.bin --eval b.bin)
run(help 0 "${CLASSIFY}" --help)
expect_match(help "${help_OUT}" "--size 28\\|16")
expect_match(help "${help_OUT}" "exit status: 0 success")

run(no_data 1 "${CLASSIFY}" --data "${WORK}/no_such_dir" --out "${WORK}/bad_out")
expect_match(no_data "${no_data_ERR}" "no_such_dir")
file(MAKE_DIRECTORY "${WORK}/bad_data")
foreach(f train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
  foreach(ext .gz "")
    if(EXISTS "${DATA}/${f}${ext}")
      file(COPY "${DATA}/${f}${ext}" DESTINATION "${WORK}/bad_data")
    endif()
  endforeach()
endforeach()
run(truncate 0 "${CHECK}" truncate "${DATA}/${TRAIN_IMAGES}" "${WORK}/bad_data/${TRAIN_IMAGES}" 5000)
run(bad_data 1 "${CLASSIFY}" --data "${WORK}/bad_data" --out "${WORK}/bad_out")
expect_match(bad_data "${bad_data_ERR}" "bad_data/${TRAIN_IMAGES}")

file(WRITE "${WORK}/a_file" "x")
run(out_is_file 1 "${CLASSIFY}" --data "${DATA}" --out "${WORK}/a_file")
expect_match(out_is_file "${out_is_file_ERR}" "a_file' exists and is not a directory")

run(truncate_ckpt 0 "${CHECK}" truncate "${WORK}/a/checkpoint.bin" "${WORK}/broken.bin" 1000)
run(bad_ckpt 1 "${CLASSIFY}" --data "${DATA}" --eval "${WORK}/broken.bin" --out "${WORK}/bad_out")
expect_match(bad_ckpt "${bad_ckpt_ERR}" "broken.bin.*truncated")
run(missing_ckpt 1 "${CLASSIFY}" --data "${DATA}" --resume "${WORK}/none.bin" --out "${WORK}/bad_out")
expect_match(missing_ckpt "${missing_ckpt_ERR}" "none.bin")
run(resume_epochs 1 "${CLASSIFY}" --data "${DATA}" --resume "${WORK}/a/checkpoint.bin" --epochs 5
    --out "${WORK}/bad_out")
expect_match(resume_epochs "${resume_epochs_ERR}" "resume with the same --epochs")

message(STATUS "example_classify_smoke: all checks passed")
