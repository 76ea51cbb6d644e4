// @file include/ember/kernels/cpu/optim.hpp
// @brief Fused SGD and Adam parameter updates on CPU (PyTorch single-tensor formulas).
//
// The float operations and their order follow torch.optim's single-tensor (foreach=False)
// implementations:
//   SGD:  d = grad + wd*param (wd != 0); if momentum != 0: buf = first_step ? d
//         : buf*momentum + (1-dampening)*d; d = nesterov ? d + momentum*buf : buf;
//         param = param - lr*d.
//   Adam: g = grad + wd*param (wd != 0); m = m*beta1 + (1-beta1)*g  (PyTorch 1.13 form; 2.x uses
//         lerp, which can differ in the last bit); v = v*beta2 + ((1-beta2)*g)*g;
//         denom = sqrt(v)/sqrt(bc2) + eps; param = param - (lr/bc1)*m/denom.
//   AdamW (p.decoupled): param = param*float(1 - lr*wd) first, then Adam with wd 0
//         (torch.optim.AdamW's _single_tensor_adamw).
// The scalar factors lr/bc1 and sqrt(bc2) are formed in double and rounded to float once, as
// PyTorch does with its Python-float scalars.
#pragma once
#include <cmath>
#include <cstdint>

#include "../params.hpp"
#include "parallel.hpp"

namespace ember::cpu {

inline void sgd_step(int64_t n, kernels::SgdParams p, float* param, const float* grad,
                     float* buf) {
  const float lr = p.lr, mom = p.momentum, wd = p.weight_decay;
  const float one_minus_damp = p.one_minus_dampening;
  const bool use_mom = mom != 0.0f && buf != nullptr;
  parallel_for(n, int64_t(1) << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float d = grad[i];
      if (wd != 0.0f) d = d + wd * param[i];
      if (use_mom) {
        const float bi = p.first_step ? d : buf[i] * mom + one_minus_damp * d;
        buf[i] = bi;
        d = p.nesterov ? d + mom * bi : bi;
      }
      param[i] = param[i] - lr * d;
    }
  });
}

inline void adam_step(int64_t n, kernels::AdamParams p, float* param, const float* grad, float* m,
                      float* v) {
  const float beta1 = p.beta1, beta2 = p.beta2, eps = p.eps, wd = p.weight_decay;
  const float one_minus_b1 = p.one_minus_beta1, one_minus_b2 = p.one_minus_beta2;
  const float step_size = p.step_size, bc2_sqrt = p.bias_correction2_sqrt;
  const bool decoupled = p.decoupled;
  const float decay = p.decay;
  // Memory-bound (five streams); a plain loop, vectorisable where sqrt may be (-fno-math-errno).
  parallel_for(n, int64_t(1) << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float g = grad[i];
      if (wd != 0.0f) g = g + wd * param[i];
      if (decoupled) param[i] = param[i] * decay;  // AdamW
      const float mi = m[i] * beta1 + one_minus_b1 * g;
      const float vi = v[i] * beta2 + (one_minus_b2 * g) * g;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) / bc2_sqrt + eps;
      param[i] = param[i] - (step_size * mi) / denom;
    }
  });
}

}  // namespace ember::cpu
