// @file examples/fashion_denoise/main.cu
// @brief fashion-denoise-cuda: the same program as main.cpp, compiled by nvcc so that the CUDA
//        backend is registered (see include/ember/core/backend.hpp).
#include "main.cpp"
