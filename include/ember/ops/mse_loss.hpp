// @file include/ember/ops/mse_loss.hpp
// @brief mse_loss(input, target): mean of (input - target)^2, PyTorch's reduction='mean'.
//
// Contract: equal shapes and devices. Result shape []. Gradients: 2 (input - target) g / n for
// input and its negative for target (either may require grad).
#pragma once
#include <ember/kernels/cpu/reduce.hpp>

#include "common.hpp"

namespace ember {

inline Tensor mse_loss(const Tensor& input, const Tensor& target) {
  detail::check_tensors("mse_loss", {{"input", &input}, {"target", &target}});
  check_arg(input.shape() == target.shape(), "mse_loss", "shapes differ: input ",
            to_string(input.shape()), ", target ", to_string(target.shape()));
  Tensor y = empty(Shape{}, input.device());
  EMBER_DISPATCH("mse_loss", input, mse_loss_forward, input.numel(), input.data(), target.data(),
                 y.data());
  if (detail::needs_graph({&input, &target})) {
    Tensor a = input.detach(), b = target.detach();
    detail::record("mse_loss", y, {input, target},
                   [a, b](const Tensor& g, const std::vector<bool>& needs) {
                     Tensor ga = needs[0] ? empty_like(a) : Tensor();
                     Tensor gb = needs[1] ? empty_like(b) : Tensor();
                     EMBER_DISPATCH("mse_loss backward", a, mse_loss_backward, a.numel(),
                                    a.data(), b.data(), g.data(), ga.defined() ? ga.data() : nullptr,
                                    gb.defined() ? gb.data() : nullptr);
                     return std::vector<Tensor>{ga, gb};
                   });
  }
  return y;
}

}  // namespace ember
