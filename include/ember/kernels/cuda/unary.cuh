// @file include/ember/kernels/cuda/unary.cuh
// @brief The unary math ops on CUDA, twins of include/ember/kernels/cpu/unary.hpp, with the
//        formulas of unary_math.hpp (explicitly rounded arithmetic; CUDA's expf/logf/sinf/cosf/
//        tanhf, a few ulps from the C library's).
//
//   unary_forward(op, n, x, y)            y[i]  = f(x[i])
//   unary_backward(op, n, x, y, dy, dx)   dx[i] = f'(x[i]) dy[i]
// Kernel variant: the grid-stride map_kernel of elementwise.cuh (256 threads, int64 indices),
// one instantiation per op.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "../unary_math.hpp"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace unary_detail {
template <kernels::UnaryOp Op>
struct FwdOp {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = kernels::unary_fwd<Op>(x[i]); }
};
template <kernels::UnaryOp Op>
struct BwdOp {
  const float *x, *y, *dy;
  float* dx;
  __device__ void operator()(int64_t i) const {
    dx[i] = kernels::unary_bwd<Op>(x[i], y[i], dy[i]);
  }
};


struct Fwd {
  int64_t n;
  const float* x;
  float* y;
  cudaStream_t stream;
  template <kernels::UnaryOp Op>
  void operator()() const {
    ew_detail::launch_map(n, FwdOp<Op>{x, y}, stream, "unary_forward");
  }
};
struct Bwd {
  int64_t n;
  const float *x, *y, *dy;
  float* dx;
  cudaStream_t stream;
  template <kernels::UnaryOp Op>
  void operator()() const {
    ew_detail::launch_map(n, BwdOp<Op>{x, y, dy, dx}, stream, "unary_backward");
  }
};
}  // namespace unary_detail

inline void unary_forward(kernels::UnaryOp op, int64_t n, const float* x, float* y,
                          cudaStream_t stream) {
  kernels::with_unary_op(op, unary_detail::Fwd{n, x, y, stream});
}

inline void unary_backward(kernels::UnaryOp op, int64_t n, const float* x, const float* y,
                           const float* dy, float* dx, cudaStream_t stream) {
  kernels::with_unary_op(op, unary_detail::Bwd{n, x, y, dy, dx, stream});
}

}  // namespace ember::cuda
