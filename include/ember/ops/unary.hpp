// @file include/ember/ops/unary.hpp
// @brief Unary math: exp, log, sqrt, rsqrt, sin, cos, tanh, sigmoid, abs, square, as the torch
//        functions of the same names (one kernel family: kernels/cpu/unary.hpp, cuda/unary.cuh).
//
// Contract: any shape; the result has x's shape. Values outside an op's domain give what
// PyTorch gives (log(-1) = NaN, log(0) = -inf, sqrt(-1) = NaN, rsqrt(0) = inf). Backward, from
// x and the output y (kernels/unary_math.hpp): exp dy*y, log dy/x, sqrt dy/(2y), rsqrt
// -0.5*dy*y^3, sin dy*cos(x), cos -dy*sin(x), tanh dy*(1-y^2), sigmoid dy*(1-y)*y,
// abs dy*sign(x) (0 at x == 0), square dy*2x.
#pragma once
#include <ember/kernels/cpu/unary.hpp>

#include "common.hpp"

namespace ember {

namespace detail {

inline Tensor unary(const char* op, kernels::UnaryOp kind, const Tensor& x) {
  check_tensors(op, {{"x", &x}});
  Tensor y = empty_like(x);
  EMBER_DISPATCH(op, x, unary_forward, kind, x.numel(), x.data(), y.data());
  if (needs_graph({&x})) {
    Tensor sx = x.detach(), sy = y.detach();
    const std::string what = std::string(op) + " backward";
    record(op, y, {x}, [sx, sy, kind, what](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty_like(g);
      EMBER_DISPATCH(what.c_str(), g, unary_backward, kind, g.numel(), sx.data(), sy.data(),
                     g.data(), gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace detail

inline Tensor exp(const Tensor& x) { return detail::unary("exp", kernels::UnaryOp::exp, x); }
inline Tensor log(const Tensor& x) { return detail::unary("log", kernels::UnaryOp::log, x); }
inline Tensor sqrt(const Tensor& x) { return detail::unary("sqrt", kernels::UnaryOp::sqrt, x); }
inline Tensor rsqrt(const Tensor& x) { return detail::unary("rsqrt", kernels::UnaryOp::rsqrt, x); }
inline Tensor sin(const Tensor& x) { return detail::unary("sin", kernels::UnaryOp::sin, x); }
inline Tensor cos(const Tensor& x) { return detail::unary("cos", kernels::UnaryOp::cos, x); }
inline Tensor tanh(const Tensor& x) { return detail::unary("tanh", kernels::UnaryOp::tanh, x); }
inline Tensor sigmoid(const Tensor& x) {
  return detail::unary("sigmoid", kernels::UnaryOp::sigmoid, x);
}
inline Tensor abs(const Tensor& x) { return detail::unary("abs", kernels::UnaryOp::abs, x); }
inline Tensor square(const Tensor& x) {
  return detail::unary("square", kernels::UnaryOp::square, x);
}

}  // namespace ember
