// @file include/ember/ops/max_pool2d.hpp
// @brief max_pool2d(x, kernel, stride, padding), as F.max_pool2d (no dilation, floor mode).
//
// Contract: x (N, C, H, W); kernel >= 1; stride >= 1 (0 means stride = kernel, PyTorch's
// default); 0 <= padding <= kernel / 2; padded positions never win. The gradient of each output
// goes to the first maximum of its window in row-major order, as PyTorch. The argmax indices are
// kept in a tensor's storage as int32 (ember tensors are float32; the index buffer is internal).
#pragma once
#include <kernels/cpu/max_pool2d.hpp>

#include "common.hpp"

namespace ember {

inline Tensor max_pool2d(const Tensor& x, int kernel, int stride = 0, int padding = 0) {
  const char* op = "max_pool2d";
  detail::check_tensors(op, {{"input", &x}});
  check_arg(x.dim() == 4, op, "input must be 4-D (N, C, H, W), got ", to_string(x.shape()));
  if (stride == 0) stride = kernel;
  check_arg(kernel >= 1 && stride >= 1, op, "kernel ", kernel, " and stride ", stride,
            " must be >= 1, input ", to_string(x.shape()));
  check_arg(padding >= 0 && 2 * padding <= kernel, op, "padding ", padding,
            " must be between 0 and half the kernel ", kernel, ", input ",
            to_string(x.shape()));
  kernels::MaxPool2dShape s{};
  s.N = int(x.size(0)), s.C = int(x.size(1)), s.H = int(x.size(2)), s.W = int(x.size(3));
  s.kernel = kernel, s.stride = stride, s.pad = padding;
  check_arg(s.H + 2 * padding >= kernel && s.W + 2 * padding >= kernel, op, "kernel ", kernel,
            " larger than the padded input ", to_string(x.shape()));
  s.OH = (s.H + 2 * padding - kernel) / stride + 1;
  s.OW = (s.W + 2 * padding - kernel) / stride + 1;
  Tensor y = empty(Shape{s.N, s.C, s.OH, s.OW}, x.device());
  Tensor argmax = empty(y.shape(), x.device());  // holds int32 indices
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
