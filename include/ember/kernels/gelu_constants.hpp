// @file include/ember/kernels/gelu_constants.hpp
// @brief GELU constants shared bit-for-bit by include/ember/kernels/cpu/gelu.hpp and
//        include/ember/kernels/cuda/gelu.cuh.
//
// The double expressions PyTorch writes (M_SQRT1_2, M_2_SQRTPI * M_SQRT1_2 * 0.5,
// M_SQRT2 * M_2_SQRTPI * 0.5), rounded to float once:
//   kGeluAlpha = float(1/sqrt 2), kGeluBetaErf = float(1/sqrt(2 pi)),
//   kGeluBetaTanh = float(sqrt(2/pi)), kGeluKappa = 0.044715f.
// Plain constexpr scalars, so CUDA device code can use them directly.
#pragma once

namespace ember::kernels {

constexpr double kGeluSqrt1_2 = 0.70710678118654752440;
constexpr double kGeluSqrt2 = 1.41421356237309504880;
constexpr double kGelu2SqrtPi = 1.12837916709551257390;
constexpr float kGeluAlpha = static_cast<float>(kGeluSqrt1_2);
constexpr float kGeluBetaErf = static_cast<float>(kGelu2SqrtPi * kGeluSqrt1_2 * 0.5);
constexpr float kGeluBetaTanh = static_cast<float>(kGeluSqrt2 * kGelu2SqrtPi * 0.5);
constexpr float kGeluKappa = 0.044715f;

}  // namespace ember::kernels
