// @file include/ember/ops/reduce.hpp
// @brief sum and mean of all elements (rank-0 results).
//
// Contract: any non-empty tensor; the result has shape [] and is computed in a deterministic
// order. Backward broadcasts the scalar gradient (times 1/n for mean) to the input's shape.
#pragma once
#include <ember/kernels/cpu/reduce.hpp>

#include "common.hpp"

namespace ember {

namespace detail {

inline Tensor reduce_all(const char* op, const Tensor& x, float factor) {
  check_tensors(op, {{"x", &x}});
  Tensor y = empty(Shape{}, x.device());
  EMBER_DISPATCH(op, x, sum, x.numel(), x.data(), y.data());
  if (factor != 1.0f) EMBER_DISPATCH(op, x, scale, 1, factor, y.data(), y.data());
  if (needs_graph({&x})) {
    Shape in_shape = x.shape();
    record(op, y, {x}, [in_shape, factor, op](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty(in_shape, g.device());
      EMBER_DISPATCH(op, g, broadcast_scalar, gx.numel(), g.data(), factor, gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace detail

/// Sum of all elements.
inline Tensor sum(const Tensor& x) { return detail::reduce_all("sum", x, 1.0f); }

/// Mean of all elements.
inline Tensor mean(const Tensor& x) {
  return detail::reduce_all("mean", x, x.defined() ? 1.0f / static_cast<float>(x.numel()) : 1.0f);
}

}  // namespace ember
