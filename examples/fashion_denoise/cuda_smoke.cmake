# fashion-denoise-cuda against fashion-denoise, run by ctest as `cmake -P cuda_smoke.cmake` with
#   -DDENOISE=<fashion-denoise> -DDENOISE_CUDA=<fashion-denoise-cuda> -DWORK=<scratch directory>
# Both programs train the same tiny configuration (4 steps of batch 8, 32 test images scored) from
# the same seed; ember's Philox generator gives both devices the same initial weights, batches and
# noise, so their test MSE and last training loss must agree closely (float sums in different
# orders, nothing more). On a GPU build this runs on the GPU; in a build with
# EMBER_CUDA_EMULATION it runs the CUDA kernels on the host SIMT runtime. Needs FashionMNIST
# ($EMBER_DATA, else /usr/share/datasets/fashion-mnist).
cmake_minimum_required(VERSION 3.24)
foreach(var DENOISE DENOISE_CUDA WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "cuda_smoke.cmake: pass -D${var}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
set(args --epochs 1 --max-steps 4 --batch 8 --test-limit 32 --checkpoint-every 0 --seed 3)
set(results "")
foreach(side cpu cuda)
  if(side STREQUAL "cpu")
    set(exe "${DENOISE}")
  else()
    set(exe "${DENOISE_CUDA}")
  endif()
  execute_process(COMMAND "${exe}" --device ${side} ${args} --out "${WORK}/${side}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 900)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "fashion-denoise on ${side}: exit status ${rc}")
  endif()
  file(READ "${WORK}/${side}/summary.json" js)
  string(JSON mse GET "${js}" final test_mse)
  string(JSON loss GET "${js}" epochs 0 train_loss_last)
  string(JSON dev GET "${js}" device)
  message(STATUS "${side}: device ${dev}, test MSE ${mse}, last train loss ${loss}")
  list(APPEND results "${mse}" "${loss}")
endforeach()
list(GET results 0 mse_cpu)
list(GET results 1 loss_cpu)
list(GET results 2 mse_cuda)
list(GET results 3 loss_cuda)
# |cpu - cuda| <= 3e-4 |cpu| + 1e-7 (awk does the floating-point arithmetic).
foreach(pair "test MSE;${mse_cpu};${mse_cuda}" "last train loss;${loss_cpu};${loss_cuda}")
  list(GET pair 0 what)
  list(GET pair 1 a)
  list(GET pair 2 b)
  execute_process(COMMAND awk "BEGIN { d = ${a} - ${b}; if (d < 0) d = -d; a = ${a}; if (a < 0) a = -a;
                                       exit !(d <= 3e-4 * a + 1e-7) }"
                  RESULT_VARIABLE close)
  if(NOT close EQUAL 0)
    message(FATAL_ERROR "${what}: cpu ${a} vs cuda ${b} differ by more than 3e-4 relative")
  endif()
  message(STATUS "${what}: cpu ${a}, cuda ${b}: agree")
endforeach()
