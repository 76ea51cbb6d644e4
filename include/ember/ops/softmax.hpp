// @file include/ember/ops/softmax.hpp
// @brief softmax(x, dim) and log_softmax(x, dim), as torch.softmax / torch.log_softmax.
//
// Contract: any rank (a 0-dim tensor is one class: softmax 1, log_softmax 0), dim in
// [-rank, rank) (negative counts from the end; 0 and -1 for a 0-dim tensor). Numerically
// stable: the maximum along dim is subtracted before exp. Output: x's shape and device.
// Gradients (from the output y): softmax dx = y * (g - sum_dim(g * y)); log_softmax
// dx = g - exp(y) * sum_dim(g). Deterministic: each (outer, inner) column is reduced by one
// thread in a fixed order, on the CPU and in CUDA.
#pragma once
#include <algorithm>

#include <ember/kernels/cpu/softmax.hpp>

#include "common.hpp"

namespace ember {

namespace detail {

/// x viewed as (outer, C, inner) around `dim`; throws naming `op` for a dim out of range.
inline kernels::SoftmaxShape softmax_shape(const char* op, const Tensor& x, int64_t dim) {
  const int64_t rank = x.dim();
  const int d = normalize_dim(dim, rank == 0 ? 1 : rank);
  check_arg(d >= 0, op, "dim ", dim, " out of range for input ", to_string(x.shape()),
            " (expected a dim in [", -std::max<int64_t>(rank, 1), ", ", std::max<int64_t>(rank, 1),
            "))");
  int64_t outer = 1, C = rank == 0 ? 1 : x.shape()[d], inner = 1;
  for (int i = 0; i < d; ++i) outer *= x.shape()[i];
  for (int64_t i = d + 1; i < rank; ++i) inner *= x.shape()[i];
  check_kernel_sizes(op, [&] { return "input " + to_string(x.shape()); },
                     {{"the element count", {outer, C, inner}}});
  return kernels::SoftmaxShape{int(outer), int(C), int(inner)};
}

inline Tensor softmax_impl(const char* op, const Tensor& x, int64_t dim, bool log) {
  check_arg(x.defined(), op, "input is undefined");
  check_tensors(op, {{"input", &x}});
  const kernels::SoftmaxShape s = softmax_shape(op, x, dim);
  Tensor y = empty_like(x);
  EMBER_DISPATCH(op, x, softmax_forward, s, log, x.data(), y.data());
  if (needs_graph({&x})) {
    Tensor yd = y.detach();
    record(op, y, {x}, [s, log, yd, op](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty_like(yd);
      EMBER_DISPATCH(op, g, softmax_backward, s, log, yd.data(), g.data(), gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace detail

/// exp(x - max) / sum(exp(x - max)) along dim, as torch.softmax(x, dim).
inline Tensor softmax(const Tensor& x, int64_t dim) {
  return detail::softmax_impl("softmax", x, dim, false);
}

/// (x - max) - log(sum(exp(x - max))) along dim, as torch.log_softmax(x, dim).
inline Tensor log_softmax(const Tensor& x, int64_t dim) {
  return detail::softmax_impl("log_softmax", x, dim, true);
}

}  // namespace ember
