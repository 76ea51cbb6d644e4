// @file include/ember/ops/max_pool2d.hpp
// @brief max_pool2d(x, kernel, stride, padding), as F.max_pool2d (no dilation, floor mode).
//
// Contract: x (N, C, H, W); kernel >= 1; stride >= 1, or no stride: stride = kernel (PyTorch's
// stride=None); 0 <= padding <= kernel / 2; padded positions never win. The gradient of each output
// goes to the first maximum of its window in row-major order, as PyTorch. The argmax indices are
// kept in a tensor's storage as int32 (ember tensors are float32; the index buffer is internal).
#pragma once
#include <optional>

#include <ember/kernels/cpu/max_pool2d.hpp>

#include "common.hpp"

namespace ember {

inline Tensor max_pool2d(const Tensor& x, int kernel, std::optional<int> stride_opt = std::nullopt,
                         int padding = 0) {
  const char* op = "max_pool2d";
  detail::check_tensors(op, {{"input", &x}});
  check_arg(x.dim() == 4, op, "input must be 4-D (N, C, H, W), got ", to_string(x.shape()));
  const int stride = stride_opt.value_or(kernel);
  check_arg(kernel >= 1 && stride >= 1, op, "kernel ", kernel, " and stride ", stride,
            " must be >= 1, input ", to_string(x.shape()));
  check_arg(padding >= 0 && 2 * int64_t(padding) <= kernel, op, "padding ", padding,
            " must be between 0 and half the kernel ", kernel, ", input ",
            to_string(x.shape()));
  // Size arithmetic in int64 (no overflow), then the kernels' 32-bit limits.
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Hp = H + 2 * int64_t(padding), Wp = W + 2 * int64_t(padding);
  check_arg(Hp >= kernel && Wp >= kernel, op, "kernel ", kernel,
            " larger than the padded input ", to_string(x.shape()));
  const int64_t OH = (Hp - kernel) / stride + 1, OW = (Wp - kernel) / stride + 1;
  auto context = [&] {
    return "input " + to_string(x.shape()) + ", kernel " + std::to_string(kernel) + ", stride " +
           std::to_string(stride);
  };
  detail::check_kernel_sizes(op, context,
                             {{"batch", {N}},
                              {"channels", {C}},
                              {"padded input height", {Hp}},
                              {"padded input width", {Wp}},
                              {"one input plane", {H, W}}});
  kernels::MaxPool2dShape s{};
  s.N = int(N), s.C = int(C), s.H = int(H), s.W = int(W);
  s.kernel = kernel, s.stride = stride, s.pad = padding;
  s.OH = int(OH), s.OW = int(OW);
  Tensor y = Tensor::empty(Shape{N, C, OH, OW}, x.device(), op);
  Tensor argmax = Tensor::empty(y.shape(), x.device(), op);  // holds int32 indices
  auto* idx = reinterpret_cast<int32_t*>(argmax.data());
  EMBER_DISPATCH(op, x, max_pool2d_forward, s, x.data(), y.data(), idx);
  if (detail::needs_graph({&x})) {
    Shape in_shape = x.shape();
    detail::record(op, y, {x}, [s, argmax, in_shape](const Tensor& gy, const std::vector<bool>&) {
      Tensor gx = empty(in_shape, gy.device());
      EMBER_DISPATCH("max_pool2d backward", gy, max_pool2d_backward, s, gy.data(),
                     reinterpret_cast<const int32_t*>(argmax.data()), gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace ember
