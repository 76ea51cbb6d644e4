// @file include/ember/kernels/cuda/gelu.cuh
// @brief GELU forward/backward on CUDA, twins of include/ember/kernels/cpu/gelu.hpp.
//
// Computes (n elements, contiguous float32, device pointers; y / dx may alias x / dy exactly)
// gelu_forward, gelu_backward, gelu_tanh_forward, gelu_tanh_backward with the per-element math
// of include/ember/kernels/gelu_math.hpp, the same EMBER_HD functions the CPU kernels call: float
// arithmetic in the CPU's operation order, every product and sum through __fmul_rn / __fadd_rn
// (no FMA contraction), CUDA's erff / expf / tanhf (at most 2 ulp from the correctly rounded
// value), so results agree with the CPU to a few ulps; under the host emulation the same
// functions call the C library, as the CPU does, and agree with it bitwise.
// Kernel variant: the grid-stride map_kernel of elementwise.cuh (256 threads, int64 indices).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../gelu_math.hpp"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace gelu_detail {

using kernels::gelu_erf_bwd;
using kernels::gelu_erf_fwd;
using kernels::gelu_tanh_bwd;
using kernels::gelu_tanh_fwd;

struct GeluFwdOp {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = gelu_erf_fwd(x[i]); }
};
struct GeluBwdOp {
  const float* x;
  const float* dy;
  float* dx;
  __device__ void operator()(int64_t i) const { dx[i] = gelu_erf_bwd(x[i], dy[i]); }
};
struct GeluTanhFwdOp {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = gelu_tanh_fwd(x[i]); }
};
struct GeluTanhBwdOp {
  const float* x;
  const float* dy;
  float* dx;
  __device__ void operator()(int64_t i) const { dx[i] = gelu_tanh_bwd(x[i], dy[i]); }
};

}  // namespace gelu_detail

inline void gelu_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, gelu_detail::GeluFwdOp{x, y}, stream, "gelu_forward");
}

inline void gelu_backward(int64_t n, const float* x, const float* dy, float* dx,
                          cudaStream_t stream) {
  ew_detail::launch_map(n, gelu_detail::GeluBwdOp{x, dy, dx}, stream, "gelu_backward");
}

inline void gelu_tanh_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, gelu_detail::GeluTanhFwdOp{x, y}, stream, "gelu_tanh_forward");
}

inline void gelu_tanh_backward(int64_t n, const float* x, const float* dy, float* dx,
                               cudaStream_t stream) {
  ew_detail::launch_map(n, gelu_detail::GeluTanhBwdOp{x, dy, dx}, stream, "gelu_tanh_backward");
}

}  // namespace ember::cuda
