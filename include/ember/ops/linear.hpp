// @file include/ember/ops/linear.hpp
// @brief linear(x, weight, bias) = x weight^T + bias, as torch.nn.functional.linear.
//
// Contract: x (*, in) with at least one dimension; weight (out, in); bias (out) or undefined.
// Output (*, out). Backward gives dx = dy weight, dweight = dy^T x, dbias = sum of dy rows.
#pragma once
#include <ember/kernels/cpu/linear.hpp>

#include "common.hpp"

namespace ember {

inline Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor()) {
  const char* op = "linear";
  auto all = {
      std::pair<const char*, const Tensor*>{"input", &x}, {"weight", &weight}, {"bias", &bias}};
  detail::check_tensors(op, all);
  check_arg(x.dim() >= 1, op, "input must have at least one dimension: ", detail::describe(all));
  check_arg(weight.dim() == 2, op, "weight must be 2-D (out, in): ", detail::describe(all));
  check_arg(x.size(-1) == weight.size(1), op, "input's last dimension ", x.size(-1),
            " does not match weight's in_features ", weight.size(1), ": ", detail::describe(all));
  check_arg(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), op,
            "bias must be 1-D with ", weight.size(0), " elements: ", detail::describe(all));
  const int64_t M = x.numel() / x.size(-1), K = weight.size(1), N = weight.size(0);
  detail::check_kernel_sizes(op, [&] { return detail::describe(all); },
                             {{"input rows x in_features", {M, K}},
                              {"weight", {N, K}},
                              {"output rows x out_features", {M, N}}});
  kernels::LinearShape s{int(M), int(K), int(N)};
  Shape out_shape = x.shape();
  out_shape.back() = s.N;
  Tensor y = Tensor::empty(out_shape, x.device(), op);
  EMBER_DISPATCH(op, x, linear_forward, s, x.data(), weight.data(),
                 bias.defined() ? bias.data() : nullptr, y.data());
  if (detail::needs_graph({&x, &weight, &bias}))
    detail::record_layer(
        op, y, x, weight, bias,
        [s](const Tensor& gy, const Tensor& w, const Tensor& gx) {
          EMBER_DISPATCH("linear backward", gy, linear_backward_input, s, gy.data(), w.data(),
                         gx.data());
        },
        [s](const Tensor& gy, const Tensor& xs, const Tensor& gw, float* gb) {
          EMBER_DISPATCH("linear backward", gy, linear_backward_weight, s, xs.data(), gy.data(),
                         gw.data(), gb);
        });
  return y;
}

}  // namespace ember
