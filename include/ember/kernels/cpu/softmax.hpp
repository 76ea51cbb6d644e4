// @file include/ember/kernels/cpu/softmax.hpp
// @brief CPU kernels of the softmax family: softmax / log_softmax forward and backward over
//        the middle axis of (outer, C, inner), and the per-position negative log-likelihood
//        (nll_loss, cross_entropy) with its gradient. Formulas: kernels/softmax_math.hpp.
//
// Determinism: each column (o, i) / position is computed by one thread with a fixed summation
// order over the classes; the work is split over columns only, so results are bitwise
// independent of the thread count.
#pragma once
#include <cstdint>

#include "../params.hpp"
#include "../softmax_math.hpp"
#include "parallel.hpp"

namespace ember::cpu {

namespace softmax_detail {
/// Columns per parallel chunk: about 2^14 elements of work each.
inline int64_t column_grain(int C) { return C >= (1 << 14) ? 1 : (int64_t(1) << 14) / C; }
}  // namespace softmax_detail

/// y = softmax(x) (log == false) or log_softmax(x) over the C axis of (outer, C, inner).
inline void softmax_forward(const kernels::SoftmaxShape& s, bool log, const float* x, float* y) {
  const int64_t cols = int64_t(s.outer) * s.inner;
  parallel_for(cols, softmax_detail::column_grain(s.C), [&](int64_t b, int64_t e) {
    for (int64_t col = b; col < e; ++col) kernels::softmax_column(s, log, x, y, col);
  });
}

/// dx from the forward's output y and its gradient dy (see softmax_math.hpp).
inline void softmax_backward(const kernels::SoftmaxShape& s, bool log, const float* y,
                             const float* dy, float* dx) {
  const int64_t cols = int64_t(s.outer) * s.inner;
  parallel_for(cols, softmax_detail::column_grain(s.C), [&](int64_t b, int64_t e) {
    for (int64_t col = b; col < e; ++col) kernels::softmax_backward_column(s, log, y, dy, dx, col);
  });
}

/// loss (N, inner) = the per-position negative log-likelihood of log_probs (N, C, inner).
inline void nll_loss_forward(const kernels::NllShape& s, const float* log_probs,
                             const float* target, float* loss) {
  const int64_t n = int64_t(s.N) * s.inner;
  parallel_for(n, softmax_detail::column_grain(s.smoothing ? s.C : 1), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) loss[p] = kernels::nll_position(s, log_probs, target, p);
  });
}

/// dlog_probs (N, C, inner) from the per-position loss gradient dloss (N, inner).
inline void nll_loss_backward(const kernels::NllShape& s, const float* target, const float* dloss,
                              float* dlog_probs) {
  const int64_t n = int64_t(s.N) * s.C * s.inner;
  parallel_for(n, int64_t(1) << 14, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) dlog_probs[k] = kernels::nll_grad_element(s, target, dloss, k);
  });
}

/// loss (N, inner) = -sum_c t'_c log_probs_c for class-probability targets (N, C, inner).
inline void cross_entropy_prob_forward(const kernels::NllShape& s, const float* log_probs,
                                       const float* target, float* loss) {
  const int64_t n = int64_t(s.N) * s.inner;
  parallel_for(n, softmax_detail::column_grain(s.C), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) loss[p] = kernels::prob_position(s, log_probs, target, p);
  });
}

/// dlog_probs = -g t' and dtarget = -g log_probs (1 - ls) per element (each nullable), g the
/// per-position loss gradient dloss (N, inner).
inline void cross_entropy_prob_backward(const kernels::NllShape& s, const float* log_probs,
                                        const float* target, const float* dloss,
                                        float* dlog_probs, float* dtarget) {
  const int64_t n = int64_t(s.N) * s.C * s.inner;
  parallel_for(n, int64_t(1) << 14, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const float g = kernels::prob_grad_scale(s, dloss, k);
      if (dlog_probs) dlog_probs[k] = -kernels::rn_mul(g, kernels::smoothed_target(s, target[k]));
      if (dtarget)
        dtarget[k] = -kernels::rn_mul(kernels::rn_mul(g, log_probs[k]),
                                      s.smoothing ? s.one_minus_ls : 1.0f);
    }
  });
}

}  // namespace ember::cpu
