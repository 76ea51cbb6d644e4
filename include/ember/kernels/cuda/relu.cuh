// @file include/ember/kernels/cuda/relu.cuh
// @brief ReLU forward/backward on CUDA, twins of include/ember/kernels/cpu/relu.hpp.
//
// Computes (n elements, contiguous float32, device pointers; y / dx may alias x / dy exactly):
//   relu_forward   y  = x < 0 ? 0 : x      (=; NaN propagates, -0 stays -0, as torch.relu)
//   relu_backward  dx = x <= 0 ? 0 : dy    (=; dy passes where x > 0 or x is NaN, as PyTorch)
// Kernel variant: the grid-stride map_kernel of elementwise.cuh (256 threads, int64 indices).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace relu_detail {
struct ReluFwdOp {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;
  }
};
struct ReluBwdOp {
  const float* x;
  const float* dy;
  float* dx;
  __device__ void operator()(int64_t i) const { dx[i] = x[i] <= 0.0f ? 0.0f : dy[i]; }
};
}  // namespace relu_detail

inline void relu_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, relu_detail::ReluFwdOp{x, y}, stream, "relu_forward");
}

inline void relu_backward(int64_t n, const float* x, const float* dy, float* dx,
                          cudaStream_t stream) {
  ew_detail::launch_map(n, relu_detail::ReluBwdOp{x, dy, dx}, stream, "relu_backward");
}

}  // namespace ember::cuda
