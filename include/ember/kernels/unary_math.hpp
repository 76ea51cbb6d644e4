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
// Products, sums and quotients go through rn_math.hpp (rn_mul, rn_add, rn_sub, rn_div): explicitly
// rounded on the device (nvcc cannot contract them into FMAs), plain float operators on the host.
// sqrt is correctly rounded on both. exp, log, sin, cos, tanh are the C library's on the host and
// CUDA's (at most 1-2 ulp from the correctly rounded value) on the device: CPU and CUDA agree to
// a few ulps, and the host emulation of the CUDA kernels agrees with the CPU bitwise.
#pragma once
#include <math.h>

#include "hd.hpp"
#include "params.hpp"
#include "rn_math.hpp"

namespace ember::kernels {

template <UnaryOp Op>
EMBER_HD float unary_fwd(float x) {
  if constexpr (Op == UnaryOp::exp) return expf(x);
  if constexpr (Op == UnaryOp::log) return logf(x);
  if constexpr (Op == UnaryOp::sqrt) return rn_sqrt(x);
  if constexpr (Op == UnaryOp::rsqrt) return rn_div(1.0f, rn_sqrt(x));
  if constexpr (Op == UnaryOp::sin) return sinf(x);
  if constexpr (Op == UnaryOp::cos) return cosf(x);
  if constexpr (Op == UnaryOp::tanh) return tanhf(x);
  if constexpr (Op == UnaryOp::sigmoid) return rn_div(1.0f, rn_add(1.0f, expf(-x)));
  if constexpr (Op == UnaryOp::abs) return fabsf(x);
  if constexpr (Op == UnaryOp::square) return rn_mul(x, x);
  return x;
}

/// x: the op's input, y: its output, dy: the gradient of y.
template <UnaryOp Op>
EMBER_HD float unary_bwd(float x, float y, float dy) {
  if constexpr (Op == UnaryOp::exp) return rn_mul(dy, y);
  if constexpr (Op == UnaryOp::log) return rn_div(dy, x);
  if constexpr (Op == UnaryOp::sqrt) return rn_div(dy, rn_mul(2.0f, y));
  if constexpr (Op == UnaryOp::rsqrt) return rn_mul(rn_mul(-0.5f, dy), rn_mul(rn_mul(y, y), y));
  if constexpr (Op == UnaryOp::sin) return rn_mul(dy, cosf(x));
  if constexpr (Op == UnaryOp::cos) return rn_mul(dy, -sinf(x));
  if constexpr (Op == UnaryOp::tanh) return rn_mul(dy, rn_sub(1.0f, rn_mul(y, y)));
  if constexpr (Op == UnaryOp::sigmoid) return rn_mul(rn_mul(dy, rn_sub(1.0f, y)), y);
  if constexpr (Op == UnaryOp::abs) return rn_mul(dy, x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f));
  if constexpr (Op == UnaryOp::square) return rn_mul(dy, rn_mul(2.0f, x));
  return dy;
}

/// Calls f.template operator()<op>() for the run-time op: the CPU and CUDA kernels each run one
/// loop specialised for the op.
template <class F>
void with_unary_op(UnaryOp op, const F& f) {
  switch (op) {
    case UnaryOp::exp: f.template operator()<UnaryOp::exp>(); break;
    case UnaryOp::log: f.template operator()<UnaryOp::log>(); break;
    case UnaryOp::sqrt: f.template operator()<UnaryOp::sqrt>(); break;
    case UnaryOp::rsqrt: f.template operator()<UnaryOp::rsqrt>(); break;
    case UnaryOp::sin: f.template operator()<UnaryOp::sin>(); break;
    case UnaryOp::cos: f.template operator()<UnaryOp::cos>(); break;
    case UnaryOp::tanh: f.template operator()<UnaryOp::tanh>(); break;
    case UnaryOp::sigmoid: f.template operator()<UnaryOp::sigmoid>(); break;
    case UnaryOp::abs: f.template operator()<UnaryOp::abs>(); break;
    case UnaryOp::square: f.template operator()<UnaryOp::square>(); break;
  }
}

}  // namespace ember::kernels
