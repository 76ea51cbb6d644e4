// @file include/ember/ops/group_norm.hpp
// @brief group_norm: normalisation over groups of channels of (N, C, *), as F.group_norm.
//
// Contract: x (N, C, *) with at least 2 dimensions (the trailing ones are flattened to HW);
// num_groups > 0 divides C; weight, bias (C) or undefined (affine off: 1 and 0), each
// independently. Per sample n and group g the statistics are the mean and *biased* variance of
// the group's C/num_groups * HW values; y = (x - mean) / sqrt(var + eps) * weight + bias. No
// running statistics. The forward saves mean and 1/sqrt(var + eps) per (n, g) for the backward,
// which gives dx, dweight, dbias (each only when needed).
#pragma once
#include <climits>

#include <ember/kernels/cpu/group_norm.hpp>

#include "common.hpp"

namespace ember {

inline Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(),
                         const Tensor& bias = Tensor(), float eps = 1e-5f) {
  const char* op = "group_norm";
  auto all = {
      std::pair<const char*, const Tensor*>{"input", &x}, {"weight", &weight}, {"bias", &bias}};
  detail::check_tensors(op, all);
  check_arg(x.dim() >= 2, op,
            "input must be (N, C, *) with at least 2 dimensions: ", detail::describe(all));
  const int64_t N = x.size(0), C = x.size(1);
  check_arg(num_groups > 0, op, "num_groups must be positive, got ", num_groups, " (",
            detail::describe(all), ")");
  check_arg(C % num_groups == 0, op, "expected the number of channels (", C,
            ") to be divisible by num_groups (", num_groups, "): ", detail::describe(all));
  for (const Tensor* t : {&weight, &bias})
    check_arg(!t->defined() || (t->dim() == 1 && t->size(0) == C), op,
              "weight and bias must be 1-D with ", C,
              " elements (one per channel): ", detail::describe(all));
  const int64_t HW = x.numel() / (N * C);
  check_arg(C * HW <= INT_MAX && N * C <= INT_MAX, op,
            "input too large: at most 2^31 - 1 values per sample and N*C < 2^31, got ",
            detail::describe(all));
  const kernels::GroupNormShape s{int(N), int(C), int(HW), int(num_groups)};

  Tensor y = empty_like(x);
  Tensor save_mean = empty(Shape{N, num_groups}, x.device());
  Tensor save_rstd = empty(Shape{N, num_groups}, x.device());
  const float* gamma = weight.defined() ? weight.data() : nullptr;
  const float* beta = bias.defined() ? bias.data() : nullptr;
  EMBER_DISPATCH(op, x, group_norm_forward, s, x.data(), gamma, beta, eps, y.data(),
                 save_mean.data(), save_rstd.data());
  if (detail::needs_graph({&x, &weight, &bias})) {
    Tensor sx = x.detach(), sw = weight.defined() ? weight.detach() : Tensor();
    detail::record(
        op, y, {x, weight, bias},
        [s, sx, sw, save_mean, save_rstd](const Tensor& gy, const std::vector<bool>& needs) {
          std::vector<Tensor> g(3);
          if (needs[0]) g[0] = empty_like(sx);
          if (needs[1]) g[1] = empty(Shape{s.C}, gy.device());
          if (needs[2]) g[2] = empty(Shape{s.C}, gy.device());
          auto ptr = [](const Tensor& t) { return t.defined() ? t.data() : nullptr; };
          EMBER_DISPATCH("group_norm backward", gy, group_norm_backward, s, sx.data(), gy.data(),
                         ptr(sw), save_mean.data(), save_rstd.data(), ptr(g[0]), ptr(g[1]),
                         ptr(g[2]));
          return g;
        });
  }
  return y;
}

}  // namespace ember
