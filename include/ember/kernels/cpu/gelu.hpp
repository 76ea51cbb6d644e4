// @file include/ember/kernels/cpu/gelu.hpp
// @brief GELU forward/backward on CPU, exact (erf) and tanh forms, as PyTorch's CPU kernels.
//
// The per-element math is include/ember/kernels/gelu_math.hpp, shared with the CUDA kernels
// (cuda/gelu.cuh): float arithmetic in PyTorch's operation order, PyTorch's constants rounded to
// float, the C library's float erf / exp / tanh:
//   gelu_forward        y  = x * 0.5 * (1 + erf(x * kGeluAlpha))
//   gelu_backward       dx = dy * (cdf + x * pdf), cdf = 0.5 * (1 + erf(x * kGeluAlpha)),
//                       pdf = kGeluBetaErf * exp(x * x * -0.5)
//   gelu_tanh_forward   y  = 0.5 * x * (1 + tanh(kGeluBetaTanh * (x + kGeluKappa * x * x * x)))
//   gelu_tanh_backward  dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) kGeluBetaTanh
//                       (1 + 3 kGeluKappa x^2)), t = tanh(inner), in PyTorch's order
// Results agree with PyTorch's vectorised CPU kernels to a few float ulps, not bitwise (they use
// a polynomial erf). Outputs may alias inputs exactly.
#pragma once
#include <cmath>
#include <cstdint>

#include "../gelu_math.hpp"
#include "elementwise.hpp"

namespace ember::cpu {

/// y = x * Phi(x) (exact form, PyTorch's approximate='none')
inline void gelu_forward(int64_t n, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return kernels::gelu_erf_fwd(x[i]); });
}

/// dx = dy * (Phi(x) + x * phi(x))
inline void gelu_backward(int64_t n, const float* x, const float* dy, float* dx) {
  detail::parallel_map(n, dx, [=](int64_t i) { return kernels::gelu_erf_bwd(x[i], dy[i]); });
}

/// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (PyTorch's approximate='tanh')
inline void gelu_tanh_forward(int64_t n, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return kernels::gelu_tanh_fwd(x[i]); });
}

/// dx = dy * d/dx gelu_tanh(x)
inline void gelu_tanh_backward(int64_t n, const float* x, const float* dy, float* dx) {
  detail::parallel_map(n, dx, [=](int64_t i) { return kernels::gelu_tanh_bwd(x[i], dy[i]); });
}

}  // namespace ember::cpu
