// @file include/ember/kernels/cuda/gelu.cuh
// @brief GELU forward/backward on CUDA, twins of include/ember/kernels/cpu/gelu.hpp.
//
// Computes (n elements, contiguous float32, device pointers; y / dx may alias x / dy exactly):
//   gelu_forward        y  = x * 0.5 * (1 + erf(x * kAlpha))                          (=)
//   gelu_backward       dx = dy * (0.5 (1 + erf(x kAlpha)) + x * kBeta exp(x x -0.5))   (=)
//   gelu_tanh_forward   y  = 0.5 x (1 + tanh(kBeta' (x + kKappa x^3)))                 (=)
//   gelu_tanh_backward  dx = its derivative times dy, PyTorch's operation order        (=)
// in float, with the CPU file's operation order and its constants
// (include/ember/kernels/gelu_constants.hpp:
// kAlpha, kBeta, kBeta', kKappa = kGeluAlpha, kGeluBetaErf, kGeluBetaTanh, kGeluKappa); every
// product and sum goes through __fmul_rn / __fadd_rn (no FMA contraction). erff / expf / tanhf
// are CUDA's (at most 2 ulp from the correctly rounded value), so results agree with the CPU to
// a few ulps. The per-element bodies are __host__ __device__ (gelu_detail::*_one) so the host
// emulation test can check them against the CPU bitwise (on the host they call the C library, as
// the CPU does).
// Kernel variant: the grid-stride map_kernel of elementwise.cuh (256 threads, int64 indices).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../gelu_constants.hpp"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace gelu_detail {

// The CPU file's constants (include/ember/kernels/gelu_constants.hpp).
using kernels::kGeluAlpha;
using kernels::kGeluBetaErf;
using kernels::kGeluBetaTanh;
using kernels::kGeluKappa;

EMBER_CUDA_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
EMBER_CUDA_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
EMBER_CUDA_HD float sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
EMBER_CUDA_HD float erf_f(float x) {
#if defined(__CUDA_ARCH__)
  return erff(x);
#else
  return std::erf(x);
#endif
}
EMBER_CUDA_HD float exp_f(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return std::exp(x);
#endif
}
EMBER_CUDA_HD float tanh_f(float x) {
#if defined(__CUDA_ARCH__)
  return tanhf(x);
#else
  return std::tanh(x);
#endif
}

/// y = x * 0.5 * (1 + erf(x * kGeluAlpha))
EMBER_CUDA_HD float erf_fwd_one(float x) {
  return mul(mul(x, 0.5f), add(1.0f, erf_f(mul(x, kGeluAlpha))));
}

/// dx = dy * (cdf + x * pdf)
EMBER_CUDA_HD float erf_bwd_one(float x, float dy) {
  const float cdf = mul(0.5f, add(1.0f, erf_f(mul(x, kGeluAlpha))));
  const float pdf = mul(kGeluBetaErf, exp_f(mul(mul(x, x), -0.5f)));
  return mul(dy, add(cdf, mul(x, pdf)));
}

/// y = 0.5 x (1 + tanh(kGeluBetaTanh (x + kGeluKappa x^3)))
EMBER_CUDA_HD float tanh_fwd_one(float x) {
  const float x_cube = mul(mul(x, x), x);
  const float inner = mul(kGeluBetaTanh, add(x, mul(kGeluKappa, x_cube)));
  return mul(mul(0.5f, x), add(1.0f, tanh_f(inner)));
}

/// dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) kGeluBetaTanh (1 + 3 kGeluKappa x^2)),
/// t = tanh(inner)
EMBER_CUDA_HD float tanh_bwd_one(float x, float dy) {
  const float x_sq = mul(x, x);
  const float x_cube = mul(x_sq, x);
  const float inner = mul(kGeluBetaTanh, add(x, mul(kGeluKappa, x_cube)));
  const float tanh_inner = tanh_f(inner);
  const float left = mul(0.5f, x);
  const float right = add(1.0f, tanh_inner);
  const float left_derivative = mul(0.5f, right);
  const float tanh_derivative = sub(1.0f, mul(tanh_inner, tanh_inner));
  const float inner_derivative = mul(kGeluBetaTanh, add(1.0f, mul(mul(3.0f, kGeluKappa), x_sq)));
  const float right_derivative = mul(mul(left, tanh_derivative), inner_derivative);
  return mul(dy, add(left_derivative, right_derivative));
}

struct GeluFwdOp {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = erf_fwd_one(x[i]); }
};
struct GeluBwdOp {
  const float* x;
  const float* dy;
  float* dx;
  __device__ void operator()(int64_t i) const { dx[i] = erf_bwd_one(x[i], dy[i]); }
};
struct GeluTanhFwdOp {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = tanh_fwd_one(x[i]); }
};
struct GeluTanhBwdOp {
  const float* x;
  const float* dy;
  float* dx;
  __device__ void operator()(int64_t i) const { dx[i] = tanh_bwd_one(x[i], dy[i]); }
};

}  // namespace gelu_detail

inline void gelu_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, gelu_detail::GeluFwdOp{x, y}, stream, "gelu_forward");
}

inline void gelu_backward(int64_t n, const float* x, const float* dy, float* dx,
                          cudaStream_t stream) {
  ew_detail::launch_map(n, gelu_detail::GeluBwdOp{x, dy, dx}, stream, "gelu_backward");
}

inline void gelu_tanh_forward(int64_t n, const float* x, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, gelu_detail::GeluTanhFwdOp{x, y}, stream, "gelu_tanh_forward");
}

inline void gelu_tanh_backward(int64_t n, const float* x, const float* dy, float* dx,
                               cudaStream_t stream) {
  ew_detail::launch_map(n, gelu_detail::GeluTanhBwdOp{x, dy, dx}, stream, "gelu_tanh_backward");
}

}  // namespace ember::cuda
