// @file include/ember/kernels/softmax_math.hpp
// @brief The softmax family's formulas, written once for the CPU kernels (cpu/softmax.hpp) and
//        the CUDA kernels (cuda/softmax.cuh): one column of softmax / log_softmax forward and
//        backward, and one position of the negative log-likelihood and its gradient.
//
// Every sum runs over the class axis in ascending order, in float, explicitly rounded
// (rn_math.hpp), so the CPU and CUDA results differ only where the device's expf/logf differ
// from the C library's (an ulp or so).
#pragma once
#include <math.h>
#include <stdint.h>

#include "hd.hpp"
#include "params.hpp"
#include "rn_math.hpp"

namespace ember::kernels {

/// Column `col` (o = col / inner, i = col % inner) of softmax (log == false) or log_softmax:
/// m = max_c x (NaN propagates, as torch.max), s = sum_c exp(x - m);
/// softmax y = exp(x - m) / s, log_softmax y = (x - m) - log(s).
EMBER_HD void softmax_column(const SoftmaxShape& s, bool log, const float* x, float* y,
                             int64_t col) {
  const int64_t o = col / s.inner, i = col - o * s.inner;
  const int64_t base = o * int64_t(s.C) * s.inner + i, st = s.inner;
  float m = x[base];
  for (int c = 1; c < s.C; ++c) {
    const float v = x[base + c * st];
    if (v > m || v != v) m = v;
    if (m != m) break;
  }
  float sum = 0.0f;
  for (int c = 0; c < s.C; ++c) sum = rn_add(sum, expf(rn_sub(x[base + c * st], m)));
  if (log) {
    const float ls = logf(sum);
    for (int c = 0; c < s.C; ++c) y[base + c * st] = rn_sub(rn_sub(x[base + c * st], m), ls);
  } else {
    for (int c = 0; c < s.C; ++c) y[base + c * st] = rn_div(expf(rn_sub(x[base + c * st], m)), sum);
  }
}

/// Backward of one column from the forward's output y and its gradient g:
/// softmax dx = y * (g - sum_c g*y); log_softmax dx = g - exp(y) * sum_c g (PyTorch's formulas).
EMBER_HD void softmax_backward_column(const SoftmaxShape& s, bool log, const float* y,
                                      const float* g, float* dx, int64_t col) {
  const int64_t o = col / s.inner, i = col - o * s.inner;
  const int64_t base = o * int64_t(s.C) * s.inner + i, st = s.inner;
  float sum = 0.0f;
  if (log) {
    for (int c = 0; c < s.C; ++c) sum = rn_add(sum, g[base + c * st]);
    for (int c = 0; c < s.C; ++c) {
      const int64_t k = base + c * st;
      dx[k] = rn_sub(g[k], rn_mul(expf(y[k]), sum));
    }
  } else {
    for (int c = 0; c < s.C; ++c) sum = rn_add(sum, rn_mul(g[base + c * st], y[base + c * st]));
    for (int c = 0; c < s.C; ++c) {
      const int64_t k = base + c * st;
      dx[k] = rn_mul(y[k], rn_sub(g[k], sum));
    }
  }
}

/// The loss at position `pos` (n = pos / inner, i = pos % inner) of targets (N, inner):
/// 0 where the target is ignore_index, else one_minus_ls * -lp[t] (+ ls_over_C * -sum_c lp[c]
/// when smoothing), PyTorch's (1 - ls) * nll + (ls / C) * smooth_loss.
EMBER_HD float nll_position(const NllShape& s, const float* lp, const float* target, int64_t pos) {
  const int64_t t = static_cast<int64_t>(target[pos]);
  if (t == s.ignore_index) return 0.0f;
  const int64_t n = pos / s.inner, i = pos - n * s.inner;
  const int64_t base = n * int64_t(s.C) * s.inner + i, st = s.inner;
  const float nll = -lp[base + t * st];
  if (!s.smoothing) return nll;
  float smooth = 0.0f;
  for (int c = 0; c < s.C; ++c) smooth = rn_sub(smooth, lp[base + c * st]);
  return rn_add(rn_mul(s.one_minus_ls, nll), rn_mul(smooth, s.ls_over_C));
}

/// d loss / d lp at element k of log_probs (N, C, inner), g the gradient of the per-position
/// loss: 0 where the target is ignore_index, else -g * (one_minus_ls [c == t] + ls_over_C).
EMBER_HD float nll_grad_element(const NllShape& s, const float* target, const float* g,
                                int64_t k) {
  const int64_t ci = int64_t(s.C) * s.inner;
  const int64_t n = k / ci, r = k - n * ci, c = r / s.inner, i = r - c * s.inner;
  const int64_t pos = n * s.inner + i;
  const int64_t t = static_cast<int64_t>(target[pos]);
  if (t == s.ignore_index) return 0.0f;
  float coef = c == t ? (s.smoothing ? s.one_minus_ls : 1.0f) : 0.0f;
  if (s.smoothing) coef = rn_add(coef, s.ls_over_C);
  return -rn_mul(g[pos], coef);
}

/// Class-probability targets (N, C, inner), the same shape as log_probs: the smoothed target
/// t' = t * one_minus_ls + ls_over_C (t itself without smoothing), PyTorch's rule.
EMBER_HD float smoothed_target(const NllShape& s, float t) {
  return s.smoothing ? rn_add(rn_mul(t, s.one_minus_ls), s.ls_over_C) : t;
}

/// The per-position loss gradient for element k of (N, C, inner).
EMBER_HD float prob_grad_scale(const NllShape& s, const float* dloss, int64_t k) {
  const int64_t ci = int64_t(s.C) * s.inner;
  const int64_t n = k / ci, i = (k - n * ci) % s.inner;
  return dloss[n * s.inner + i];
}

/// The loss at position `pos` for probability targets: -sum_c t'_c * lp_c (classes ascending).
EMBER_HD float prob_position(const NllShape& s, const float* lp, const float* target, int64_t pos) {
  const int64_t n = pos / s.inner, i = pos - n * s.inner;
  const int64_t base = n * int64_t(s.C) * s.inner + i, st = s.inner;
  float acc = 0.0f;
  for (int c = 0; c < s.C; ++c) {
    const int64_t k = base + c * st;
    acc = rn_add(acc, rn_mul(lp[k], smoothed_target(s, target[k])));
  }
  return -acc;
}

}  // namespace ember::kernels
