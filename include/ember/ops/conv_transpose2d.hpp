// @file include/ember/ops/conv_transpose2d.hpp
// @brief conv_transpose2d(x, weight, bias, stride, padding, output_padding), as PyTorch.
//
// Contract: x (N, C, H, W); weight (C, K, R, S) (PyTorch's layout: in_channels first); bias (K)
// or undefined; stride >= 1, padding >= 0, 0 <= output_padding < stride (PyTorch's rule, no
// dilation). Output (N, K, OH, OW), OH = (H - 1) stride - 2 padding + R + output_padding > 0.
#pragma once
#include <kernels/cpu/conv_transpose2d.hpp>

#include "common.hpp"

namespace ember {

inline Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                               int stride = 1, int padding = 0, int output_padding = 0) {
  const char* op = "conv_transpose2d";
  auto all = {
      std::pair<const char*, const Tensor*>{"input", &x}, {"weight", &weight}, {"bias", &bias}};
  detail::check_tensors(op, all);
  check_arg(x.dim() == 4, op, "input must be 4-D (N, C, H, W): ", detail::describe(all));
  check_arg(weight.dim() == 4, op,
            "weight must be 4-D (C_in, C_out, R, S): ", detail::describe(all));
  check_arg(weight.size(0) == x.size(1), op, "input has ", x.size(1), " channels, weight expects ",
            weight.size(0), ": ", detail::describe(all));
  check_arg(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(1)), op,
            "bias must be 1-D with ", weight.size(1), " elements: ", detail::describe(all));
  check_arg(stride >= 1 && padding >= 0, op, "stride ", stride, " must be >= 1 and padding ",
            padding, " >= 0: ", detail::describe(all));
  check_arg(output_padding >= 0 && output_padding < stride, op, "output_padding ", output_padding,
            " must be >= 0 and smaller than stride ", stride, ": ", detail::describe(all));
  kernels::ConvTranspose2dShape s{};
  s.N = int(x.size(0)), s.C = int(x.size(1)), s.H = int(x.size(2)), s.W = int(x.size(3));
  s.K = int(weight.size(1)), s.R = int(weight.size(2)), s.S = int(weight.size(3));
  s.stride = stride, s.pad = padding, s.out_pad = output_padding;
  s.OH = (s.H - 1) * stride - 2 * padding + s.R + output_padding;
  s.OW = (s.W - 1) * stride - 2 * padding + s.S + output_padding;
  check_arg(s.OH > 0 && s.OW > 0, op, "output size ", s.OH, "x", s.OW,
            " is not positive (padding too large): ", detail::describe(all));

  Tensor y = empty(Shape{s.N, s.K, s.OH, s.OW}, x.device());
  EMBER_DISPATCH(op, x, conv_transpose2d_forward, s, x.data(), weight.data(),
                 bias.defined() ? bias.data() : nullptr, y.data());
  if (detail::needs_graph({&x, &weight, &bias}))
    detail::record_layer(
        op, y, x, weight, bias,
        [s](const Tensor& gy, const Tensor& w, const Tensor& gx) {
          EMBER_DISPATCH("conv_transpose2d backward", gy, conv_transpose2d_backward_input, s,
                         gy.data(), w.data(), gx.data());
        },
        [s](const Tensor& gy, const Tensor& xs, const Tensor& gw, float* gb) {
          EMBER_DISPATCH("conv_transpose2d backward", gy, conv_transpose2d_backward_weight, s,
                         xs.data(), gy.data(), gw.data(), gb);
        });
  return y;
}

}  // namespace ember
