// @file include/ember/ops/conv_transpose2d.hpp
// @brief conv_transpose2d(x, weight, bias, stride, padding, output_padding), as PyTorch.
//
// Contract: x (N, C, H, W); weight (C, K, R, S) (PyTorch's layout: in_channels first); bias (K)
// or undefined; stride >= 1, padding >= 0, 0 <= output_padding < stride (PyTorch's rule, no
// dilation). Output (N, K, OH, OW), OH = (H - 1) stride - 2 padding + R + output_padding > 0.
#pragma once
#include <ember/kernels/cpu/conv_transpose2d.hpp>

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
  // Size arithmetic in int64 with checked products: (H - 1) * stride may exceed int64 for an
  // absurd H, which is then reported instead of overflowing.
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t K = weight.size(1), R = weight.size(2), S = weight.size(3);
  auto context = [&] {
    return detail::describe(all) + ", stride " + std::to_string(stride) + ", padding " +
           std::to_string(padding) + ", output_padding " + std::to_string(output_padding);
  };
  const int64_t sh = checked_size_mul(H - 1, stride), sw = checked_size_mul(W - 1, stride);
  const int64_t eh = sh < 0 ? -1 : checked_size_add(sh, R + output_padding);
  const int64_t ew = sw < 0 ? -1 : checked_size_add(sw, S + output_padding);
  if (eh < 0 || ew < 0)
    throw Error(std::string(op) + ": the output size overflows (" + context() + ")");
  const int64_t OH = eh - 2 * int64_t(padding), OW = ew - 2 * int64_t(padding);
  check_arg(OH > 0 && OW > 0, op, "output size ", OH, "x", OW,
            " is not positive (padding too large): ", detail::describe(all));
  // The kernels run it as the input gradient of a convolution of the output (see
  // include/ember/kernels/cpu/conv_transpose2d.hpp): the same 32-bit limits apply to that
  // convolution.
  detail::check_kernel_sizes(op, context,
                             {{"batch", {N}},
                              {"padded output height", {eh}},
                              {"padded output width", {ew}},
                              {"one input image", {C, H, W}},
                              {"one output image", {K, OH, OW}},
                              {"one image's im2col matrix", {K, R, S, H, W}},
                              {"weight", {C, K, R, S}}});
  kernels::ConvTranspose2dShape s{};
  s.N = int(N), s.C = int(C), s.H = int(H), s.W = int(W);
  s.K = int(K), s.R = int(R), s.S = int(S);
  s.stride = stride, s.pad = padding, s.out_pad = output_padding;
  s.OH = int(OH), s.OW = int(OW);

  Tensor y = Tensor::empty(Shape{N, K, OH, OW}, x.device(), op);
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
