// @file include/ember/nn/init.hpp
// @brief PyTorch's default initialisers: uniform_, kaiming_uniform_ and fan-in computation.
#pragma once
#include <cmath>

#include "../ops/elementwise.hpp"

namespace ember::nn::init {

/// fan_in as torch.nn.init._calculate_fan_in_and_fan_out: size(1) * (product of dims 2..).
inline int64_t fan_in(const Tensor& w) {
  check_arg(w.dim() >= 2, "fan_in", "needs at least 2 dimensions, got ", to_string(w.shape()));
  int64_t f = w.size(1);
  for (int64_t i = 2; i < w.dim(); ++i) f *= w.size(i);
  return f;
}

/// Fills t in place with U(lo, hi) drawn from gen.
inline void uniform_(Tensor& t, float lo, float hi, Generator& gen = default_generator()) {
  NoGradGuard guard;
  Tensor u = rand(t.shape(), gen, t.device());
  Tensor v = detail::scale(u, hi - lo);
  EMBER_DISPATCH("uniform_", t, add_scalar, t.numel(), v.data(), lo, t.data());
}

/// kaiming_uniform_(w, a) with fan_in mode and leaky_relu gain: bound = sqrt(6 / ((1 + a^2) fan_in)).
inline void kaiming_uniform_(Tensor& w, double a, Generator& gen = default_generator()) {
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  float bound = static_cast<float>(gain * std::sqrt(3.0 / static_cast<double>(fan_in(w))));
  uniform_(w, -bound, bound, gen);
}

/// PyTorch's default for Conv/Linear layers: kaiming_uniform(a = sqrt 5) weight and
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias.
inline void default_layer_init(Tensor& weight, Tensor* bias, Generator& gen = default_generator()) {
  kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (bias && bias->defined()) {
    float b = 1.0f / std::sqrt(static_cast<float>(fan_in(weight)));
    uniform_(*bias, -b, b, gen);
  }
}

}  // namespace ember::nn::init
