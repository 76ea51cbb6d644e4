// @file include/ember/kernels/cpu/gelu.hpp
// @brief GELU forward/backward on CPU, exact (erf) and tanh forms, as PyTorch's CPU kernels.
//
// Everything is computed in float with the operation order of PyTorch's GeluKernel /
// GeluBackwardKernel (aten/src/ATen/native/cpu/Activation.cpp), the constants rounded to float
// from their double values (include/ember/kernels/gelu_constants.hpp: kGeluAlpha = float(1/sqrt 2),
// kGeluBetaErf = float(1/sqrt(2 pi)), kGeluBetaTanh = float(sqrt(2/pi)), kGeluKappa = 0.044715f):
//   gelu_forward        y  = x * 0.5 * (1 + erf(x * kGeluAlpha))
//   gelu_backward       dx = dy * (cdf + x * pdf), cdf = 0.5 * (1 + erf(x * kGeluAlpha)),
//                       pdf = kGeluBetaErf * exp(x * x * -0.5)
//   gelu_tanh_forward   y  = 0.5 * x * (1 + tanh(kGeluBetaTanh * (x + kGeluKappa * x * x * x)))
//   gelu_tanh_backward  dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) kGeluBetaTanh
//                       (1 + 3 kGeluKappa x^2)), t = tanh(inner), in PyTorch's order
// erf / exp / tanh are the C library's float functions (std::erf(float), ...). PyTorch's AVX2 /
// AVX-512 builds use their own polynomial erf (Abramowitz-Stegun 7.1.26, |error| <= 1.5e-7), so
// results agree with PyTorch to a few float ulps, not bitwise. Outputs may alias inputs exactly.
#pragma once
#include <cmath>
#include <cstdint>

#include "../gelu_constants.hpp"
#include "elementwise.hpp"

namespace ember::cpu {

namespace detail {
using kernels::kGeluAlpha;
using kernels::kGeluBetaErf;
using kernels::kGeluBetaTanh;
using kernels::kGeluKappa;

inline float gelu_erf_fwd(float x) {
  return x * 0.5f * (1.0f + std::erf(x * kGeluAlpha));
}

inline float gelu_erf_bwd(float x, float dy) {
  const float cdf = 0.5f * (1.0f + std::erf(x * kGeluAlpha));
  const float pdf = kGeluBetaErf * std::exp(x * x * -0.5f);
  return dy * (cdf + x * pdf);
}

inline float gelu_tanh_fwd(float x) {
  const float x_cube = x * x * x;
  const float inner = kGeluBetaTanh * (x + kGeluKappa * x_cube);
  return 0.5f * x * (1.0f + std::tanh(inner));
}

inline float gelu_tanh_bwd(float x, float dy) {
  const float x_sq = x * x;
  const float x_cube = x_sq * x;
  const float inner = kGeluBetaTanh * (x + kGeluKappa * x_cube);
  const float tanh_inner = std::tanh(inner);
  const float left = 0.5f * x;
  const float right = 1.0f + tanh_inner;
  const float left_derivative = 0.5f * right;
  const float tanh_derivative = 1.0f - tanh_inner * tanh_inner;
  const float inner_derivative = kGeluBetaTanh * (1.0f + 3.0f * kGeluKappa * x_sq);
  const float right_derivative = left * tanh_derivative * inner_derivative;
  return dy * (left_derivative + right_derivative);
}
}  // namespace detail

/// y = x * Phi(x) (exact form, PyTorch's approximate='none')
inline void gelu_forward(int64_t n, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return detail::gelu_erf_fwd(x[i]); });
}

/// dx = dy * (Phi(x) + x * phi(x))
inline void gelu_backward(int64_t n, const float* x, const float* dy, float* dx) {
  detail::parallel_map(n, dx, [=](int64_t i) { return detail::gelu_erf_bwd(x[i], dy[i]); });
}

/// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (PyTorch's approximate='tanh')
inline void gelu_tanh_forward(int64_t n, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return detail::gelu_tanh_fwd(x[i]); });
}

/// dx = dy * d/dx gelu_tanh(x)
inline void gelu_tanh_backward(int64_t n, const float* x, const float* dy, float* dx) {
  detail::parallel_map(n, dx, [=](int64_t i) { return detail::gelu_tanh_bwd(x[i], dy[i]); });
}

}  // namespace ember::cpu
