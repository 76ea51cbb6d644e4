// @file include/ember/ops/relu.hpp
// @brief relu(x) = max(x, 0); the gradient passes where x > 0 (0 at x == 0, as PyTorch).
#pragma once
#include <ember/kernels/cpu/relu.hpp>

#include "common.hpp"

namespace ember {

inline Tensor relu(const Tensor& x) {
  detail::check_tensors("relu", {{"x", &x}});
  Tensor y = empty_like(x);
  EMBER_DISPATCH("relu", x, relu_forward, x.numel(), x.data(), y.data());
  if (detail::needs_graph({&x})) {
    Tensor sx = x.detach();
    detail::record("relu", y, {x}, [sx](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty_like(g);
      EMBER_DISPATCH("relu backward", g, relu_backward, g.numel(), sx.data(), g.data(), gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace ember
