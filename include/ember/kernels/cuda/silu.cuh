// @file include/ember/kernels/cuda/silu.cuh
// @brief SiLU forward/backward on CUDA, twins of include/ember/kernels/cpu/silu.hpp.
//
// Computes (n elements, contiguous float32, device pointers; y / dx may alias x / dy exactly):
//   silu_forward   y  = x / (1 + exp(-x))
//   silu_backward  dx = dy * s * (1 + x * (1 - s)),  s = 1 / (1 + exp(-x))
// Kernel variant: the grid-stride map_kernel of elementwise.cuh (256 threads, int64 indices).
// Products and sums are explicitly rounded (no FMA contraction), so the only difference from the
// CPU kernel is expf's last ulp.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace silu_detail {
struct SiluFwdOp {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const {
    const float v = x[i];
    y[i] = __fdiv_rn(v, __fadd_rn(1.0f, expf(-v)));
  }
};
struct SiluBwdOp {
  const float* x;
  const float* dy;
  float* dx;
  __device__ void operator()(int64_t i) const {
    const float v = x[i];
    const float s = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-v)));
    const float t = __fadd_rn(1.0f, __fmul_rn(v, __fsub_rn(1.0f, s)));
    dx[i] = __fmul_rn(__fmul_rn(dy[i], s), t);
  }
};
}  // namespace silu_detail

inline void silu_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, silu_detail::SiluFwdOp{x, y}, stream, "silu_forward");
}

inline void silu_backward(int64_t n, const float* x, const float* dy, float* dx,
                          cudaStream_t stream) {
  ew_detail::launch_map(n, silu_detail::SiluBwdOp{x, dy, dx}, stream, "silu_backward");
}

}  // namespace ember::cuda
