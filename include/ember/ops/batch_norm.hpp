// @file include/ember/ops/batch_norm.hpp
// @brief batch_norm2d: per-channel normalisation of (N, C, H, W), as F.batch_norm.
//
// Contract: x (N, C, H, W) (or (N, C)); weight, bias (C), running_mean, running_var (C) or
// undefined. training: normalise with the batch mean and *biased* variance, and (when running
// stats are given) update them in place: r = (1 - momentum) r + momentum * stat, using the
// *unbiased* variance; needs more than one value per channel. eval: normalise with the running
// statistics. Backward gives dx, dweight, dbias; running stats get no gradient.
#pragma once
#include <ember/kernels/cpu/batch_norm.hpp>

#include "common.hpp"

namespace ember {

inline Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, bool training,
                           float momentum = 0.1f, float eps = 1e-5f) {
  const char* op = "batch_norm2d";
  auto all = {std::pair<const char*, const Tensor*>{"input", &x}, {"weight", &weight},
              {"bias", &bias}, {"running_mean", &running_mean}, {"running_var", &running_var}};
  detail::check_tensors(op, all);
  check_arg(x.dim() == 4 || x.dim() == 2, op, "input must be (N, C, H, W) or (N, C): ",
            detail::describe(all));
  check_arg(weight.defined() && bias.defined(), op, "weight and bias are required");
  const int64_t C = x.size(1);
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    check_arg(!t->defined() || (t->dim() == 1 && t->size(0) == C), op,
              "per-channel tensors must be 1-D with ", C, " elements: ", detail::describe(all));
  check_arg(running_mean.defined() == running_var.defined(), op,
            "give both running_mean and running_var or neither");
  check_arg(training || running_mean.defined(), op, "eval mode needs running statistics");
  detail::check_kernel_sizes(op, [&] { return detail::describe(all); },
                             {{"batch", {x.size(0)}},
                              {"channels", {C}},
                              {"positions per channel", {x.numel() / (x.size(0) * C)}}});
  kernels::BatchNormShape s{int(x.size(0)), int(C), int(x.numel() / (x.size(0) * C))};
  check_arg(!training || int64_t(s.N) * s.HW > 1, op,
            "expected more than 1 value per channel when training, got input ",
            to_string(x.shape()));

  Tensor y = empty_like(x);
  Tensor save_mean, save_invstd;
  if (training) {
    save_mean = empty(Shape{C}, x.device());
    save_invstd = empty(Shape{C}, x.device());
    EMBER_DISPATCH(op, x, batch_norm_forward_train, s, x.data(), weight.data(), bias.data(), eps,
                   momentum, y.data(), save_mean.data(), save_invstd.data(),
                   running_mean.defined() ? running_mean.data() : nullptr,
                   running_var.defined() ? running_var.data() : nullptr);
  } else {
    EMBER_DISPATCH(op, x, batch_norm_forward_eval, s, x.data(), weight.data(), bias.data(),
                   running_mean.data(), running_var.data(), eps, y.data());
  }
  if (detail::needs_graph({&x, &weight, &bias})) {
    Tensor sx = x.detach(), sw = weight.detach();
    // Eval mode's backward reads the running statistics as they were in the forward pass.
    Tensor rm = training ? Tensor() : running_mean.clone();
    Tensor rv = training ? Tensor() : running_var.clone();
    detail::record(op, y, {x, weight, bias},
                   [s, sx, sw, save_mean, save_invstd, rm, rv, training, eps](
                       const Tensor& gy, const std::vector<bool>&) {
                     Tensor gx = empty_like(sx), gw = empty_like(sw), gb = empty_like(sw);
                     if (training)
                       EMBER_DISPATCH("batch_norm2d backward", gy, batch_norm_backward_train, s,
                                      sx.data(), gy.data(), sw.data(), save_mean.data(),
                                      save_invstd.data(), gx.data(), gw.data(), gb.data());
                     else
                       EMBER_DISPATCH("batch_norm2d backward", gy, batch_norm_backward_eval, s,
                                      sx.data(), gy.data(), sw.data(), rm.data(), rv.data(), eps,
                                      gx.data(), gw.data(), gb.data());
                     return std::vector<Tensor>{gx, gw, gb};
                   });
  }
  return y;
}

}  // namespace ember
