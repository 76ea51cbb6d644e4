// @file include/ember/kernels/rn_math.hpp
// @brief Float arithmetic shared by host and device formulas (gelu_math.hpp, unary_math.hpp):
//        explicitly rounded on the device (__fmul_rn, ...; nvcc cannot contract them into FMAs),
//        plain float operators on the host, so CPU and CUDA kernels compute the same thing.
#pragma once
#include <math.h>

#include "hd.hpp"

namespace ember::kernels {

EMBER_HD float rn_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
EMBER_HD float rn_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
EMBER_HD float rn_sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
EMBER_HD float rn_div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
/// Correctly rounded on both.
EMBER_HD float rn_sqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return sqrtf(a);
#endif
}

}  // namespace ember::kernels
