// @file include/ember/ops/conv2d.hpp
// @brief conv2d(x, weight, bias, stride, padding): 2-D cross-correlation as torch.nn.functional.
//
// Contract: x (N, C, H, W); weight (K, C, R, S); bias (K) or undefined; stride >= 1, padding >= 0,
// the padded input at least as large as the kernel. Output (N, K, OH, OW) with
// OH = (H + 2 padding - R) / stride + 1. Backward gives dx, dweight, dbias as needed.
#pragma once
#include <ember/kernels/cpu/conv2d.hpp>

#include "common.hpp"

namespace ember {

inline Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                     int stride = 1, int padding = 0) {
  const char* op = "conv2d";
  auto all = {
      std::pair<const char*, const Tensor*>{"input", &x}, {"weight", &weight}, {"bias", &bias}};
  detail::check_tensors(op, all);
  check_arg(x.dim() == 4, op, "input must be 4-D (N, C, H, W): ", detail::describe(all));
  check_arg(weight.dim() == 4, op, "weight must be 4-D (K, C, R, S): ", detail::describe(all));
  check_arg(weight.size(1) == x.size(1), op, "input has ", x.size(1), " channels, weight expects ",
            weight.size(1), ": ", detail::describe(all));
  check_arg(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), op,
            "bias must be 1-D with ", weight.size(0), " elements: ", detail::describe(all));
  check_arg(stride >= 1 && padding >= 0, op, "stride ", stride, " must be >= 1 and padding ",
            padding, " >= 0: ", detail::describe(all));
  // Size arithmetic in int64 (no overflow: each size is <= 2^61 and padding < 2^31).
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t K = weight.size(0), R = weight.size(2), S = weight.size(3);
  const int64_t Hp = H + 2 * int64_t(padding), Wp = W + 2 * int64_t(padding);
  check_arg(Hp >= R && Wp >= S, op, "kernel larger than the padded input (padding ", padding,
            "): ", detail::describe(all));
  const int64_t OH = (Hp - R) / stride + 1, OW = (Wp - S) / stride + 1;
  auto context = [&] {
    return detail::describe(all) + ", stride " + std::to_string(stride) + ", padding " +
           std::to_string(padding);
  };
  detail::check_kernel_sizes(op, context,
                             {{"batch", {N}},
                              {"padded input height", {Hp}},
                              {"padded input width", {Wp}},
                              {"one input image", {C, H, W}},
                              {"one output image", {K, OH, OW}},
                              {"one image's im2col matrix", {C, R, S, OH, OW}},
                              {"weight", {K, C, R, S}}});
  kernels::Conv2dShape s{};
  s.N = int(N), s.C = int(C), s.H = int(H), s.W = int(W);
  s.K = int(K), s.R = int(R), s.S = int(S);
  s.stride = stride, s.pad = padding;
  s.OH = int(OH), s.OW = int(OW);

  Tensor y = Tensor::empty(Shape{N, K, OH, OW}, x.device(), op);
  EMBER_DISPATCH(op, x, conv2d_forward, s, x.data(), weight.data(),
                 bias.defined() ? bias.data() : nullptr, y.data());
  if (detail::needs_graph({&x, &weight, &bias}))
    detail::record_layer(
        op, y, x, weight, bias,
        [s](const Tensor& gy, const Tensor& w, const Tensor& gx) {
          EMBER_DISPATCH("conv2d backward", gy, conv2d_backward_input, s, gy.data(), w.data(),
                         gx.data());
        },
        [s](const Tensor& gy, const Tensor& xs, const Tensor& gw, float* gb) {
          EMBER_DISPATCH("conv2d backward", gy, conv2d_backward_weight, s, xs.data(), gy.data(),
                         gw.data(), gb);
        });
  return y;
}

}  // namespace ember
