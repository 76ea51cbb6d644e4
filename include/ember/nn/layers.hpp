// @file include/ember/nn/layers.hpp
// @brief Small modules: ReLU, GELU, MaxPool2d, Linear, Flatten, Unflatten.
#pragma once
#include <string>
#include <utility>

#include "../ops/gelu.hpp"
#include "../ops/linear.hpp"
#include "../ops/max_pool2d.hpp"
#include "../ops/relu.hpp"
#include "init.hpp"
#include "module.hpp"

namespace ember::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string name() const override { return "ReLU"; }
};

/// approximate: "none" (exact erf form, the default) or "tanh", as torch.nn.GELU.
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none") : approximate_(std::move(approximate)) {
    check_arg(approximate_ == "none" || approximate_ == "tanh", "GELU",
              "approximate must be \"none\" or \"tanh\", got \"", approximate_, "\"");
  }
  Tensor forward(const Tensor& x) override { return gelu(x, approximate_); }
  std::string name() const override { return "GELU"; }

 private:
  std::string approximate_;
};

class MaxPool2d : public Module {
 public:
  /// stride 0 means stride = kernel_size (PyTorch's default).
  explicit MaxPool2d(int kernel_size, int stride = 0, int padding = 0)
      : kernel_(kernel_size), stride_(stride), padding_(padding) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, kernel_, stride_, padding_); }
  std::string name() const override { return "MaxPool2d"; }

 private:
  int kernel_, stride_, padding_;
};

class Linear : public Module {
 public:
  Linear(int in_features, int out_features, bool bias = true) {
    check_arg(in_features > 0 && out_features > 0, "Linear",
              "features must be positive, got in ", in_features, ", out ", out_features);
    weight = register_parameter("weight", empty({out_features, in_features}));
    if (bias) this->bias = register_parameter("bias", empty({out_features}));
    reset_parameters();
  }
  void reset_parameters(Generator& gen = default_generator()) {
    init::default_layer_init(weight, &bias, gen);
  }
  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }
  std::string name() const override { return "Linear"; }

  Tensor weight, bias;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
  Tensor forward(const Tensor& x) override { return flatten(x, start_, end_); }
  std::string name() const override { return "Flatten"; }

 private:
  int64_t start_, end_;
};

class Unflatten : public Module {
 public:
  Unflatten(int64_t dim, Shape sizes) : dim_(dim), sizes_(std::move(sizes)) {}
  Tensor forward(const Tensor& x) override { return unflatten(x, dim_, sizes_); }
  std::string name() const override { return "Unflatten"; }

 private:
  int64_t dim_;
  Shape sizes_;
};

}  // namespace ember::nn
