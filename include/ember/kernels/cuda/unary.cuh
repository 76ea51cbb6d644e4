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

template <class F>
void with_op(kernels::UnaryOp op, const F& f) {
  using U = kernels::UnaryOp;
  switch (op) {
    case U::exp: f.template operator()<U::exp>(); break;
    case U::log: f.template operator()<U::log>(); break;
    case U::sqrt: f.template operator()<U::sqrt>(); break;
    case U::rsqrt: f.template operator()<U::rsqrt>(); break;
    case U::sin: f.template operator()<U::sin>(); break;
    case U::cos: f.template operator()<U::cos>(); break;
    case U::tanh: f.template operator()<U::tanh>(); break;
    case U::sigmoid: f.template operator()<U::sigmoid>(); break;
    case U::abs: f.template operator()<U::abs>(); break;
    case U::square: f.template operator()<U::square>(); break;
  }
}

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
  unary_detail::with_op(op, unary_detail::Fwd{n, x, y, stream});
}

inline void unary_backward(kernels::UnaryOp op, int64_t n, const float* x, const float* y,
                           const float* dy, float* dx, cudaStream_t stream) {
  unary_detail::with_op(op, unary_detail::Bwd{n, x, y, dy, dx, stream});
}

}  // namespace ember::cuda
