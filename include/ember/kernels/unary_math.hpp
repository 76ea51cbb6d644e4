// @file include/ember/kernels/unary_math.hpp
// @brief The unary math ops' per-element formulas, written once for the CPU kernels
//        (cpu/unary.hpp) and the CUDA kernels (cuda/unary.cuh), as PyTorch computes them.
//
//   op       forward y            backward dx (PyTorch's derivatives.yaml)
//   exp      exp(x)               dy * y
//   log      log(x)               dy / x
//   sqrt     sqrt(x)              dy / (2 * y)
//   rsqrt    1 / sqrt(x)          -0.5 * dy * y^3        (computed as (-0.5 * dy) * (y * y * y))
//   sin      sin(x)               dy * cos(x)
//   cos      cos(x)               dy * -sin(x)
//   tanh     tanh(x)              dy * (1 - y * y)
//   sigmoid  1 / (1 + exp(-x))    dy * (1 - y) * y
//   abs      |x|                  dy * sign(x)           (sign(0) = 0, as torch.sign)
//   square   x * x                dy * (2 * x)
// Products, sums and quotients go through u_mul / u_add / u_sub / u_div: explicitly rounded on the
// device (__fmul_rn, ...; nvcc cannot contract them into FMAs), plain float operators on the host.
// sqrt is correctly rounded on both. exp, log, sin, cos, tanh are the C library's on the host and
// CUDA's (at most 1-2 ulp from the correctly rounded value) on the device: CPU and CUDA agree to
// a few ulps, and the host emulation of the CUDA kernels agrees with the CPU bitwise.
#pragma once
#include <math.h>

#include "hd.hpp"
#include "params.hpp"

namespace ember::kernels {

EMBER_HD float u_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
EMBER_HD float u_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
EMBER_HD float u_sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
EMBER_HD float u_div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
EMBER_HD float u_sqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return sqrtf(a);
#endif
}

template <UnaryOp Op>
EMBER_HD float unary_fwd(float x) {
  if constexpr (Op == UnaryOp::exp) return expf(x);
  if constexpr (Op == UnaryOp::log) return logf(x);
  if constexpr (Op == UnaryOp::sqrt) return u_sqrt(x);
  if constexpr (Op == UnaryOp::rsqrt) return u_div(1.0f, u_sqrt(x));
  if constexpr (Op == UnaryOp::sin) return sinf(x);
  if constexpr (Op == UnaryOp::cos) return cosf(x);
  if constexpr (Op == UnaryOp::tanh) return tanhf(x);
  if constexpr (Op == UnaryOp::sigmoid) return u_div(1.0f, u_add(1.0f, expf(-x)));
  if constexpr (Op == UnaryOp::abs) return fabsf(x);
  if constexpr (Op == UnaryOp::square) return u_mul(x, x);
  return x;
}

/// x: the op's input, y: its output, dy: the gradient of y.
template <UnaryOp Op>
EMBER_HD float unary_bwd(float x, float y, float dy) {
  if constexpr (Op == UnaryOp::exp) return u_mul(dy, y);
  if constexpr (Op == UnaryOp::log) return u_div(dy, x);
  if constexpr (Op == UnaryOp::sqrt) return u_div(dy, u_mul(2.0f, y));
  if constexpr (Op == UnaryOp::rsqrt) return u_mul(u_mul(-0.5f, dy), u_mul(u_mul(y, y), y));
  if constexpr (Op == UnaryOp::sin) return u_mul(dy, cosf(x));
  if constexpr (Op == UnaryOp::cos) return u_mul(dy, -sinf(x));
  if constexpr (Op == UnaryOp::tanh) return u_mul(dy, u_sub(1.0f, u_mul(y, y)));
  if constexpr (Op == UnaryOp::sigmoid) return u_mul(u_mul(dy, u_sub(1.0f, y)), y);
  if constexpr (Op == UnaryOp::abs) return u_mul(dy, x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f));
  if constexpr (Op == UnaryOp::square) return u_mul(dy, u_mul(2.0f, x));
  return dy;
}

}  // namespace ember::kernels
