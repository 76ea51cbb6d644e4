// @file include/ember/kernels/cpu/unary.hpp
// @brief The unary math ops (exp, log, sqrt, rsqrt, sin, cos, tanh, sigmoid, abs, square) on the
//        CPU, forward and backward, with the formulas of unary_math.hpp.
//
//   unary_forward(op, n, x, y)            y[i]  = f(x[i])
//   unary_backward(op, n, x, y, dy, dx)   dx[i] = f'(x[i]) dy[i], from x and the forward's y
// Contiguous float32; y / dx may alias x / dy exactly. One switch per call picks a loop
// specialised for the op (parallel_map over the thread pool).
#pragma once
#include <cstdint>

#include "../params.hpp"
#include "../unary_math.hpp"
#include "elementwise.hpp"

namespace ember::cpu {

namespace unary_detail {

template <kernels::UnaryOp Op>
void forward(int64_t n, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return kernels::unary_fwd<Op>(x[i]); });
}

template <kernels::UnaryOp Op>
void backward(int64_t n, const float* x, const float* y, const float* dy, float* dx) {
  detail::parallel_map(n, dx,
                       [=](int64_t i) { return kernels::unary_bwd<Op>(x[i], y[i], dy[i]); });
}


struct Fwd {
  int64_t n;
  const float* x;
  float* y;
  template <kernels::UnaryOp Op>
  void operator()() const { forward<Op>(n, x, y); }
};
struct Bwd {
  int64_t n;
  const float *x, *y, *dy;
  float* dx;
  template <kernels::UnaryOp Op>
  void operator()() const { backward<Op>(n, x, y, dy, dx); }
};

}  // namespace unary_detail

inline void unary_forward(kernels::UnaryOp op, int64_t n, const float* x, float* y) {
  kernels::with_unary_op(op, unary_detail::Fwd{n, x, y});
}

inline void unary_backward(kernels::UnaryOp op, int64_t n, const float* x, const float* y,
                           const float* dy, float* dx) {
  kernels::with_unary_op(op, unary_detail::Bwd{n, x, y, dy, dx});
}

}  // namespace ember::cpu
