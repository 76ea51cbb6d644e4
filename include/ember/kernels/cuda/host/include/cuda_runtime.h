// @file include/ember/kernels/cuda/host/include/cuda_runtime.h
// @brief <cuda_runtime.h> of the host SIMT runtime. Builds with EMBER_CUDA_EMULATION put this
//        directory first on the include path, so include/ember/kernels/cuda and the CUDA tests,
//        examples and
//        benchmarks compile unchanged as C++ and run on the CPU (see ../simt.hpp).
#pragma once
#if !defined(EMBER_CUDA_EMULATION)
#error "include/ember/kernels/cuda/host/include is for builds with EMBER_CUDA_EMULATION only"
#endif
#include "../device_builtins.hpp"
#include "../runtime_api.hpp"
