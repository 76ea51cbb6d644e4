// @file include/ember/ops/gelu.hpp
// @brief gelu(x) = x * Phi(x), as F.gelu: the exact erf form (approximate = "none", the
//        default) or the tanh approximation (approximate = "tanh").
//
// Contract: any shape; the result has x's shape. Backward: dx = dy * (Phi(x) + x phi(x)) for
// "none", the derivative of the tanh form for "tanh". Computed in float as PyTorch's CPU
// kernels (include/ember/kernels/cpu/gelu.hpp).
#pragma once
#include <string>

#include <ember/kernels/cpu/gelu.hpp>

#include "common.hpp"

namespace ember {

inline Tensor gelu(const Tensor& x, const std::string& approximate = "none") {
  const char* op = "gelu";
  detail::check_tensors(op, {{"x", &x}});
  check_arg(approximate == "none" || approximate == "tanh", op,
            "approximate must be \"none\" or \"tanh\", got \"", approximate, "\" (x ",
            to_string(x.shape()), ")");
  const bool tanh_form = approximate == "tanh";
  Tensor y = empty_like(x);
  if (tanh_form)
    EMBER_DISPATCH(op, x, gelu_tanh_forward, x.numel(), x.data(), y.data());
  else
    EMBER_DISPATCH(op, x, gelu_forward, x.numel(), x.data(), y.data());
  if (detail::needs_graph({&x})) {
    Tensor sx = x.detach();
    detail::record(op, y, {x}, [sx, tanh_form](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty_like(g);
      if (tanh_form)
        EMBER_DISPATCH("gelu backward", g, gelu_tanh_backward, g.numel(), sx.data(), g.data(),
                       gx.data());
      else
        EMBER_DISPATCH("gelu backward", g, gelu_backward, g.numel(), sx.data(), g.data(),
                       gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace ember
