// @file include/ember/ops/cross_entropy.hpp
// @brief nll_loss(log_probs, targets, opts) and cross_entropy(logits, targets, opts), as
//        torch.nn.functional.nll_loss / cross_entropy (no class weights).
//
// Class-index convention: ember's tensors are float32 only, so targets are class indices
// stored as float32 exact integers (0.0f, 1.0f, ...), on the input's device. Each target must
// be an integer in [0, C) or equal to ignore_index; anything else (3.5, -1, C, NaN) throws
// ember::Error naming the op, the target's position and value and the shapes. The targets are
// read back to the host for this check (one device-to-host copy per call on CUDA).
//
// Shapes (PyTorch's): input (N, C) with targets (N); input (N, C, d1, ..., dk) with targets
// (N, d1, ..., dk); input (C) with a 0-dim target (shape []). The class axis is dim 1 (dim 0
// for a 1-D input).
//
// Reductions (ember::Reduction, ops/reduction.hpp): none gives the per-position losses
// (targets' shape; 0 where ignored); sum their sum; mean (the default) their sum divided by the
// number of targets that are not ignore_index -- NaN when every target is ignored, as PyTorch.
// cross_entropy's label_smoothing ls in [0, 1] gives PyTorch 1.13's
// (1 - ls) * nll + (ls / C) * smooth, smooth = -sum_c log_softmax (0 where ignored), reduced
// the same way (mean: divided by the non-ignored count).
//
// Gradients flow to the input (log_probs / logits) only: class-index targets are data, never
// differentiated, even if they require grad (PyTorch's integer targets cannot require grad).
// cross_entropy is log_softmax(logits, class dim) followed by the nll kernel.
//
// Class-probability targets (cross_entropy only): targets with exactly the input's shape are
// probabilities over the class dim (PyTorch's rule), not indices: loss per position
// -sum_c t'_c log_softmax(x)_c with t' = t (1 - ls) + ls / C; mean divides by the number of
// positions (numel / C); ignore_index must stay negative (PyTorch: "not supported"); the values
// are not checked (as PyTorch), and the loss is differentiable w.r.t. the targets too.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <ember/kernels/cpu/softmax.hpp>

#include "../core/arg.hpp"
#include "common.hpp"
#include "reduce.hpp"
#include "reduction.hpp"
#include "softmax.hpp"
#include "view.hpp"

namespace ember {

/// torch::nn::functional::NLLLossFuncOptions: reduction (mean), ignore_index (-100).
struct NLLLossOptions {
  EMBER_ARG(Reduction, reduction) = Reduction::mean;
  EMBER_ARG(int64_t, ignore_index) = -100;
};

/// torch::nn::functional::CrossEntropyFuncOptions: reduction (mean), ignore_index (-100),
/// label_smoothing (0.0, in [0, 1]).
struct CrossEntropyOptions {
  EMBER_ARG(Reduction, reduction) = Reduction::mean;
  EMBER_ARG(int64_t, ignore_index) = -100;
  EMBER_ARG(double, label_smoothing) = 0.0;
};

namespace detail {

/// The shared nll_loss / cross_entropy path on log-probabilities `lp`.
inline Tensor nll_impl(const char* op, const Tensor& lp, const Tensor& target, Reduction reduction,
                       int64_t ignore_index, double label_smoothing) {
  check_arg(lp.defined(), op, "input is undefined");
  check_arg(target.defined(), op, "target is undefined");
  check_tensors(op, {{"input", &lp}, {"target", &target}});
  auto shapes = [&] {
    return "input " + to_string(lp.shape()) + ", target " + to_string(target.shape());
  };
  const int64_t rank = lp.dim();
  check_arg(rank >= 1, op, "input must have at least 1 dimension (", shapes(), ")");
  Shape want;  // the targets' shape
  if (rank >= 2) {
    want.push_back(lp.shape()[0]);
    for (int64_t i = 2; i < rank; ++i) want.push_back(lp.shape()[i]);
  }
  check_arg(target.shape() == want, op, "target shape ", to_string(target.shape()),
            " does not match input shape ", to_string(lp.shape()), " (expected target ",
            to_string(want), ": class indices as float32 integers)");
  const int64_t N = rank >= 2 ? lp.shape()[0] : 1, C = lp.shape()[rank >= 2 ? 1 : 0];
  int64_t inner = 1;
  for (int64_t i = 2; i < rank; ++i) inner *= lp.shape()[i];
  check_kernel_sizes(op, shapes, {{"the element count", {N, C, inner}}});

  // The targets must be exact integers in [0, C) or ignore_index (checked on the host).
  const std::vector<float> t = target.to_vector();
  int64_t count = 0;
  for (size_t k = 0; k < t.size(); ++k) {
    const float v = t[k];
    check_arg(std::isfinite(v) && v == std::floor(v), op, "target ", v, " at index ", k,
              " is not an integer (targets are class indices stored as float32; ", shapes(), ")");
    const int64_t c = static_cast<int64_t>(v);
    if (c == ignore_index) continue;
    check_arg(c >= 0 && c < C, op, "target ", c, " at index ", k, " is out of bounds [0, ", C,
              ") and is not ignore_index ", ignore_index, " (", shapes(), ")");
    ++count;
  }

  kernels::NllShape s{int(N),
                      int(C),
                      int(inner),
                      ignore_index,
                      static_cast<float>(1.0 - label_smoothing),
                      static_cast<float>(label_smoothing / static_cast<double>(C)),
                      label_smoothing > 0.0};
  Tensor loss = empty(want, lp.device());
  EMBER_DISPATCH(op, lp, nll_loss_forward, s, lp.data(), target.data(), loss.data());
  if (needs_graph({&lp})) {
    Tensor td = target.detach();
    const Shape lp_shape = lp.shape();
    record(op, loss, {lp}, [s, td, lp_shape, op](const Tensor& g, const std::vector<bool>&) {
      Tensor glp = empty(lp_shape, g.device());
      EMBER_DISPATCH(op, g, nll_loss_backward, s, td.data(), g.data(), glp.data());
      return std::vector<Tensor>{glp};
    });
  }
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return reduce_all(op, loss, 1.0f);
    case Reduction::mean: break;
  }
  // mean: divided by the non-ignored count (0 -> 0 * inf = NaN, as PyTorch's 0 / 0).
  return reduce_all(op, loss, 1.0f / static_cast<float>(count));
}

/// cross_entropy with class-probability targets (the input's shape), PyTorch's rule: loss per
/// position -sum_c t'_c log_softmax(x)_c with t' = t (1 - ls) + ls / C; mean divides by the
/// number of positions (numel / C); differentiable w.r.t. the logits and the targets.
inline Tensor cross_entropy_prob(const char* op, const Tensor& logits, const Tensor& target,
                                 Reduction reduction, int64_t ignore_index,
                                 double label_smoothing) {
  check_arg(ignore_index < 0, op, "ignore_index is not supported for class-probability targets "
            "(target ", to_string(target.shape()), " has the input's shape), got ignore_index ",
            ignore_index);
  const int64_t rank = logits.dim();
  const int64_t N = rank >= 2 ? logits.shape()[0] : 1, C = logits.shape()[rank >= 2 ? 1 : 0];
  int64_t inner = 1;
  Shape want;
  if (rank >= 2) want.push_back(N);
  for (int64_t i = 2; i < rank; ++i) {
    inner *= logits.shape()[i];
    want.push_back(logits.shape()[i]);
  }
  const Tensor lp = log_softmax(logits, rank >= 2 ? 1 : 0);
  kernels::NllShape s{int(N),
                      int(C),
                      int(inner),
                      -100,
                      static_cast<float>(1.0 - label_smoothing),
                      static_cast<float>(label_smoothing / static_cast<double>(C)),
                      label_smoothing > 0.0};
  Tensor loss = empty(want, lp.device());
  EMBER_DISPATCH(op, lp, cross_entropy_prob_forward, s, lp.data(), target.data(), loss.data());
  if (needs_graph({&lp, &target})) {
    Tensor lpd = lp.detach(), td = target.detach();
    record(op, loss, {lp, target},
           [s, lpd, td, op](const Tensor& g, const std::vector<bool>& needs) {
             Tensor glp = needs[0] ? empty_like(lpd) : Tensor();
             Tensor gt = needs[1] ? empty_like(td) : Tensor();
             EMBER_DISPATCH(op, g, cross_entropy_prob_backward, s, lpd.data(), td.data(),
                            g.data(), glp.defined() ? glp.data() : nullptr,
                            gt.defined() ? gt.data() : nullptr);
             return std::vector<Tensor>{glp, gt};
           });
  }
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return reduce_all(op, loss, 1.0f);
    case Reduction::mean: break;
  }
  return reduce_all(op, loss, 1.0f / static_cast<float>(N * inner));
}

}  // namespace detail

/// Negative log-likelihood of log-probabilities (N, C, ...) at class-index targets (N, ...)
/// (float32 integers), as torch.nn.functional.nll_loss without class weights.
inline Tensor nll_loss(const Tensor& log_probs, const Tensor& targets,
                       const NLLLossOptions& opts = {}) {
  return detail::nll_impl("nll_loss", log_probs, targets, opts.reduction(), opts.ignore_index(),
                          0.0);
}

/// Positional form: nll_loss(log_probs, targets, reduction, ignore_index).
inline Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, Reduction reduction,
                       int64_t ignore_index = -100) {
  return nll_loss(log_probs, targets, NLLLossOptions().reduction(reduction).ignore_index(ignore_index));
}

/// log_softmax over the class dim followed by nll_loss, with label smoothing, as
/// torch.nn.functional.cross_entropy with class-index targets and no class weights.
inline Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                            const CrossEntropyOptions& opts = {}) {
  const char* op = "cross_entropy";
  const double ls = opts.label_smoothing();
  check_arg(ls >= 0.0 && ls <= 1.0, op, "label_smoothing must be in [0, 1], got ", ls);
  check_arg(logits.defined(), op, "input is undefined");
  check_arg(targets.defined(), op, "target is undefined");
  detail::check_tensors(op, {{"input", &logits}, {"target", &targets}});
  check_arg(logits.dim() >= 1, op, "input must have at least 1 dimension (input ",
            to_string(logits.shape()), ", target ", to_string(targets.shape()), ")");
  if (targets.shape() == logits.shape())  // class probabilities (PyTorch's rule)
    return detail::cross_entropy_prob(op, logits, targets, opts.reduction(), opts.ignore_index(),
                                      ls);
  const Tensor lp = log_softmax(logits, logits.dim() >= 2 ? 1 : 0);
  return detail::nll_impl(op, lp, targets, opts.reduction(), opts.ignore_index(), ls);
}

/// Positional form: cross_entropy(logits, targets, reduction, ignore_index, label_smoothing).
inline Tensor cross_entropy(const Tensor& logits, const Tensor& targets, Reduction reduction,
                            int64_t ignore_index = -100, double label_smoothing = 0.0) {
  return cross_entropy(logits, targets,
                       CrossEntropyOptions()
                           .reduction(reduction)
                           .ignore_index(ignore_index)
                           .label_smoothing(label_smoothing));
}

}  // namespace ember
