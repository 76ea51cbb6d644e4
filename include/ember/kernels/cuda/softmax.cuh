// @file include/ember/kernels/cuda/softmax.cuh
// @brief The softmax family on CUDA, twins of include/ember/kernels/cpu/softmax.hpp, with the
//        formulas of kernels/softmax_math.hpp (explicitly rounded arithmetic; CUDA's expf/logf,
//        an ulp or so from the C library's).
//
//   softmax_forward(s, log, x, y)                 softmax / log_softmax over C of (outer, C, inner)
//   softmax_backward(s, log, y, dy, dx)           its gradient from the output y
//   nll_loss_forward(s, log_probs, target, loss)  per-position loss (N, inner)
//   nll_loss_backward(s, target, dloss, dlp)      dlog_probs (N, C, inner)
//   cross_entropy_prob_forward / _backward        class-probability targets (N, C, inner)
// Kernel variant: the grid-stride map_kernel of elementwise.cuh (256 threads, int64 indices):
// one thread per column (o, i) for softmax (it loops over the C classes in ascending order:
// deterministic, no atomics; consecutive threads read consecutive i, coalesced when inner > 1),
// one thread per position for the loss, one per element for its gradient.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "../softmax_math.hpp"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace softmax_detail {
struct FwdOp {
  kernels::SoftmaxShape s;
  bool log;
  const float* x;
  float* y;
  __device__ void operator()(int64_t col) const { kernels::softmax_column(s, log, x, y, col); }
};
struct BwdOp {
  kernels::SoftmaxShape s;
  bool log;
  const float *y, *dy;
  float* dx;
  __device__ void operator()(int64_t col) const {
    kernels::softmax_backward_column(s, log, y, dy, dx, col);
  }
};
struct NllFwdOp {
  kernels::NllShape s;
  const float *lp, *target;
  float* loss;
  __device__ void operator()(int64_t p) const { loss[p] = kernels::nll_position(s, lp, target, p); }
};
struct NllBwdOp {
  kernels::NllShape s;
  const float *target, *dloss;
  float* dlp;
  __device__ void operator()(int64_t k) const {
    dlp[k] = kernels::nll_grad_element(s, target, dloss, k);
  }
};
struct ProbFwdOp {
  kernels::NllShape s;
  const float *lp, *target;
  float* loss;
  __device__ void operator()(int64_t p) const { loss[p] = kernels::prob_position(s, lp, target, p); }
};
struct ProbBwdOp {
  kernels::NllShape s;
  const float *lp, *target, *dloss;
  float *dlp, *dtarget;
  __device__ void operator()(int64_t k) const {
    const float g = kernels::prob_grad_scale(s, dloss, k);
    if (dlp) dlp[k] = -kernels::rn_mul(g, kernels::smoothed_target(s, target[k]));
    if (dtarget)
      dtarget[k] =
          -kernels::rn_mul(kernels::rn_mul(g, lp[k]), s.smoothing ? s.one_minus_ls : 1.0f);
  }
};
}  // namespace softmax_detail

inline void softmax_forward(const kernels::SoftmaxShape& s, bool log, const float* x, float* y,
                            cudaStream_t stream) {
  ew_detail::launch_map(int64_t(s.outer) * s.inner, softmax_detail::FwdOp{s, log, x, y}, stream,
                        log ? "log_softmax" : "softmax");
}

inline void softmax_backward(const kernels::SoftmaxShape& s, bool log, const float* y,
                             const float* dy, float* dx, cudaStream_t stream) {
  ew_detail::launch_map(int64_t(s.outer) * s.inner, softmax_detail::BwdOp{s, log, y, dy, dx},
                        stream, log ? "log_softmax backward" : "softmax backward");
}

inline void nll_loss_forward(const kernels::NllShape& s, const float* log_probs,
                             const float* target, float* loss, cudaStream_t stream) {
  ew_detail::launch_map(int64_t(s.N) * s.inner, softmax_detail::NllFwdOp{s, log_probs, target, loss},
                        stream, "nll_loss");
}

inline void nll_loss_backward(const kernels::NllShape& s, const float* target, const float* dloss,
                              float* dlog_probs, cudaStream_t stream) {
  ew_detail::launch_map(int64_t(s.N) * s.C * s.inner,
                        softmax_detail::NllBwdOp{s, target, dloss, dlog_probs}, stream,
                        "nll_loss backward");
}

inline void cross_entropy_prob_forward(const kernels::NllShape& s, const float* log_probs,
                                       const float* target, float* loss, cudaStream_t stream) {
  ew_detail::launch_map(int64_t(s.N) * s.inner,
                        softmax_detail::ProbFwdOp{s, log_probs, target, loss}, stream,
                        "cross_entropy");
}

inline void cross_entropy_prob_backward(const kernels::NllShape& s, const float* log_probs,
                                        const float* target, const float* dloss,
                                        float* dlog_probs, float* dtarget, cudaStream_t stream) {
  if (!dlog_probs && !dtarget) return;
  ew_detail::launch_map(int64_t(s.N) * s.C * s.inner,
                        softmax_detail::ProbBwdOp{s, log_probs, target, dloss, dlog_probs, dtarget},
                        stream, "cross_entropy backward");
}

}  // namespace ember::cuda
