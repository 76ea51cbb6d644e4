// @file include/ember/kernels/gelu_math.hpp
// @brief GELU's per-element math, written once for the CPU kernels (cpu/gelu.hpp) and the CUDA
//        kernels (cuda/gelu.cuh), with its constants.
//
// Everything is computed in float with the operation order of PyTorch's GeluKernel /
// GeluBackwardKernel (aten/src/ATen/native/cpu/Activation.cpp), the constants rounded to float
// from their double values (M_SQRT1_2, M_2_SQRTPI * M_SQRT1_2 * 0.5, M_SQRT2 * M_2_SQRTPI * 0.5):
//   kGeluAlpha = float(1/sqrt 2), kGeluBetaErf = float(1/sqrt(2 pi)),
//   kGeluBetaTanh = float(sqrt(2/pi)), kGeluKappa = 0.044715f.
//   gelu_erf_fwd(x)        x * 0.5 * (1 + erf(x * kGeluAlpha))
//   gelu_erf_bwd(x, dy)    dy * (cdf + x * pdf), cdf = 0.5 * (1 + erf(x * kGeluAlpha)),
//                          pdf = kGeluBetaErf * exp(x * x * -0.5)
//   gelu_tanh_fwd(x)       0.5 * x * (1 + tanh(kGeluBetaTanh * (x + kGeluKappa * x * x * x)))
//   gelu_tanh_bwd(x, dy)   dy * (0.5 (1 + t) + 0.5 x (1 - t^2) kGeluBetaTanh
//                          (1 + 3 kGeluKappa x^2)), t = tanh(inner), in PyTorch's order
// Every product, sum and difference goes through rn_mul / rn_add / rn_sub: on the device
// (__CUDA_ARCH__) __fmul_rn / __fadd_rn / __fsub_rn, so nvcc cannot contract them into FMAs; on
// the host plain float operators (the CPU kernels' arithmetic, unchanged). erf / exp / tanh are
// the C library's float functions on the host (std::erf(float), ...) and CUDA's erff / expf /
// tanhf (at most 2 ulp from the correctly rounded value) on the device, so the device agrees with
// the CPU to a few ulps and the host emulation of the CUDA kernels agrees with the CPU bitwise.
// PyTorch's AVX2 / AVX-512 builds use their own polynomial erf (Abramowitz-Stegun 7.1.26,
// |error| <= 1.5e-7), so results agree with PyTorch to a few float ulps, not bitwise.
#pragma once
#include <cmath>

#include "hd.hpp"
#include "rn_math.hpp"

namespace ember::kernels {

constexpr double kGeluSqrt1_2 = 0.70710678118654752440;
constexpr double kGeluSqrt2 = 1.41421356237309504880;
constexpr double kGelu2SqrtPi = 1.12837916709551257390;
constexpr float kGeluAlpha = static_cast<float>(kGeluSqrt1_2);
constexpr float kGeluBetaErf = static_cast<float>(kGelu2SqrtPi * kGeluSqrt1_2 * 0.5);
constexpr float kGeluBetaTanh = static_cast<float>(kGeluSqrt2 * kGelu2SqrtPi * 0.5);
constexpr float kGeluKappa = 0.044715f;

EMBER_HD float gelu_erf(float x) {
#if defined(__CUDA_ARCH__)
  return erff(x);
#else
  return std::erf(x);
#endif
}
EMBER_HD float gelu_exp(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return std::exp(x);
#endif
}
EMBER_HD float gelu_tanh(float x) {
#if defined(__CUDA_ARCH__)
  return tanhf(x);
#else
  return std::tanh(x);
#endif
}

/// y = x * 0.5 * (1 + erf(x * kGeluAlpha))
EMBER_HD float gelu_erf_fwd(float x) {
  return rn_mul(rn_mul(x, 0.5f), rn_add(1.0f, gelu_erf(rn_mul(x, kGeluAlpha))));
}

/// dx = dy * (cdf + x * pdf)
EMBER_HD float gelu_erf_bwd(float x, float dy) {
  const float cdf = rn_mul(0.5f, rn_add(1.0f, gelu_erf(rn_mul(x, kGeluAlpha))));
  const float pdf = rn_mul(kGeluBetaErf, gelu_exp(rn_mul(rn_mul(x, x), -0.5f)));
  return rn_mul(dy, rn_add(cdf, rn_mul(x, pdf)));
}

/// y = 0.5 x (1 + tanh(kGeluBetaTanh (x + kGeluKappa x^3)))
EMBER_HD float gelu_tanh_fwd(float x) {
  const float x_cube = rn_mul(rn_mul(x, x), x);
  const float inner = rn_mul(kGeluBetaTanh, rn_add(x, rn_mul(kGeluKappa, x_cube)));
  return rn_mul(rn_mul(0.5f, x), rn_add(1.0f, gelu_tanh(inner)));
}

/// dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) kGeluBetaTanh (1 + 3 kGeluKappa x^2)),
/// t = tanh(inner)
EMBER_HD float gelu_tanh_bwd(float x, float dy) {
  const float x_sq = rn_mul(x, x);
  const float x_cube = rn_mul(x_sq, x);
  const float inner = rn_mul(kGeluBetaTanh, rn_add(x, rn_mul(kGeluKappa, x_cube)));
  const float tanh_inner = gelu_tanh(inner);
  const float left = rn_mul(0.5f, x);
  const float right = rn_add(1.0f, tanh_inner);
  const float left_derivative = rn_mul(0.5f, right);
  const float tanh_derivative = rn_sub(1.0f, rn_mul(tanh_inner, tanh_inner));
  const float inner_derivative =
      rn_mul(kGeluBetaTanh, rn_add(1.0f, rn_mul(rn_mul(3.0f, kGeluKappa), x_sq)));
  const float right_derivative = rn_mul(rn_mul(left, tanh_derivative), inner_derivative);
  return rn_mul(dy, rn_add(left_derivative, right_derivative));
}

}  // namespace ember::kernels
