// @file include/ember/kernels/cuda/optim.cuh
// @brief Fused SGD and Adam parameter updates on CUDA, twins of
//        include/ember/kernels/cpu/optim.hpp.
//
// Computes (n elements, device pointers, all updated in place (=)):
//   sgd_step(n, p, param, grad, buf /*nullable when momentum == 0*/):
//       d = grad + wd*param (wd != 0); if momentum != 0 and buf: buf = first_step ? d
//       : buf*momentum + (1-dampening)*d; d = nesterov ? d + momentum*buf : buf;
//       param = param - lr*d.
//   adam_step(n, p, param, grad, m, v):
//       g = grad + wd*param (wd != 0); m = m*beta1 + (1-beta1)*g; v = v*beta2 + ((1-beta2)*g)*g;
//       param = param - (lr/bc1)*m / (sqrt(v)/sqrt(bc2) + eps).
//       AdamW (p.decoupled): param = param*decay first (decay = float(1 - lr*wd), wd then 0).
// The scalar factors (1-dampening, 1-beta, lr/bc1, sqrt(bc2)) are formed in double on the host
// and rounded to float once, as the CPU kernels (and PyTorch) do. Kernel variant: one grid-stride
// kernel per optimizer; every product/sum uses the _rn intrinsics (no FMA contraction) and
// sqrtf/division are IEEE-rounded, so the update is bitwise equal to the CPU one.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../params.hpp"
#include "common.cuh"

namespace ember::cuda {

namespace optim_detail {

struct SgdArgs {
  float lr, mom, wd, one_minus_damp;
  bool use_mom, nesterov, first_step;
};

struct AdamArgs {
  float beta1, beta2, eps, wd, one_minus_b1, one_minus_b2, step_size, bc2_sqrt, decay;
  bool decoupled;
};

template <class T>
__global__ void __launch_bounds__(kThreads)
    sgd_kernel(int64_t n, SgdArgs a, T* param, const T* grad, T* buf) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    T d = grad[i];
    if (a.wd != 0.0f) d = __fadd_rn(d, __fmul_rn(a.wd, param[i]));
    if (a.use_mom) {
      const T bi = a.first_step ? d
                                : __fadd_rn(__fmul_rn(buf[i], a.mom), __fmul_rn(a.one_minus_damp, d));
      buf[i] = bi;
      d = a.nesterov ? __fadd_rn(d, __fmul_rn(a.mom, bi)) : bi;
    }
    param[i] = __fsub_rn(param[i], __fmul_rn(a.lr, d));
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    adam_kernel(int64_t n, AdamArgs a, T* param, const T* grad, T* m, T* v) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    T g = grad[i];
    if (a.wd != 0.0f) g = __fadd_rn(g, __fmul_rn(a.wd, param[i]));
    if (a.decoupled) param[i] = __fmul_rn(param[i], a.decay);  // AdamW
    const T mi = __fadd_rn(__fmul_rn(m[i], a.beta1), __fmul_rn(a.one_minus_b1, g));
    const T vi = __fadd_rn(__fmul_rn(v[i], a.beta2), __fmul_rn(__fmul_rn(a.one_minus_b2, g), g));
    m[i] = mi;
    v[i] = vi;
    const T denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), a.bc2_sqrt), a.eps);
    param[i] = __fsub_rn(param[i], __fdiv_rn(__fmul_rn(a.step_size, mi), denom));
  }
}

}  // namespace optim_detail

inline void sgd_step(int64_t n, kernels::SgdParams p, float* param, const float* grad, float* buf,
                     cudaStream_t stream) {
  if (n <= 0) return;
  optim_detail::SgdArgs a;
  a.lr = p.lr;
  a.mom = p.momentum;
  a.wd = p.weight_decay;
  a.one_minus_damp = p.one_minus_dampening;
  a.use_mom = p.momentum != 0.0f && buf != nullptr;
  a.nesterov = p.nesterov;
  a.first_step = p.first_step;
  launch("sgd_step", "sgd_kernel", optim_detail::sgd_kernel<float>, grid_1d(n), kThreads, 0, stream,
         n, a, param, grad, buf);
}

inline void adam_step(int64_t n, kernels::AdamParams p, float* param, const float* grad, float* m,
                      float* v, cudaStream_t stream) {
  if (n <= 0) return;
  optim_detail::AdamArgs a;
  a.beta1 = p.beta1;
  a.beta2 = p.beta2;
  a.eps = p.eps;
  a.wd = p.weight_decay;
  a.one_minus_b1 = p.one_minus_beta1;
  a.one_minus_b2 = p.one_minus_beta2;
  a.step_size = p.step_size;
  a.bc2_sqrt = p.bias_correction2_sqrt;
  a.decoupled = p.decoupled;
  a.decay = p.decay;
  launch("adam_step", "adam_kernel", optim_detail::adam_kernel<float>, grid_1d(n), kThreads, 0,
         stream, n, a, param, grad, m, v);
}

}  // namespace ember::cuda
