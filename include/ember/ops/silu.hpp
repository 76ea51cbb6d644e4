// @file include/ember/ops/silu.hpp
// @brief silu(x) = x * sigmoid(x) (also called swish), as torch.nn.functional.silu.
//
// Contract: any shape; the result has x's shape. Backward: dx = dy * s * (1 + x * (1 - s)) with
// s = sigmoid(x), as PyTorch's silu_backward. Kernels: include/ember/kernels/cpu/silu.hpp and
// include/ember/kernels/cuda/silu.cuh. This op is the worked example of docs/adding-an-op.md.
#pragma once
#include <ember/kernels/cpu/silu.hpp>

#include "common.hpp"

namespace ember {

inline Tensor silu(const Tensor& x) {
  detail::check_tensors("silu", {{"x", &x}});
  Tensor y = empty_like(x);
  EMBER_DISPATCH("silu", x, silu_forward, x.numel(), x.data(), y.data());
  if (detail::needs_graph({&x})) {
    Tensor sx = x.detach();
    detail::record("silu", y, {x}, [sx](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty_like(g);
      EMBER_DISPATCH("silu backward", g, silu_backward, g.numel(), sx.data(), g.data(),
                     gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace ember
