// @file include/ember/nn/layers.hpp
// @brief Small modules: ReLU, Sigmoid, Tanh, SiLU, GELU, MaxPool2d, Linear, Flatten, Unflatten; MaxPool2dOptions and
//        LinearOptions as libtorch's.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "../core/arg.hpp"
#include "../ops/gelu.hpp"
#include "../ops/linear.hpp"
#include "../ops/max_pool2d.hpp"
#include "../ops/relu.hpp"
#include "../ops/silu.hpp"
#include "../ops/unary.hpp"
#include "init.hpp"
#include "module.hpp"

namespace ember::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string name() const override { return "ReLU"; }
};

/// 1 / (1 + exp(-x)), as torch.nn.Sigmoid.
class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
  std::string name() const override { return "Sigmoid"; }
};

/// tanh(x), as torch.nn.Tanh.
class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return ember::tanh(x); }
  std::string name() const override { return "Tanh"; }
};

/// x * sigmoid(x), as torch.nn.SiLU.
class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return silu(x); }
  std::string name() const override { return "SiLU"; }
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

/// torch::nn::MaxPool2dOptions(kernel_size): stride = kernel_size, padding 0. Square windows;
/// no dilation or ceil_mode.
struct MaxPool2dOptions {
  MaxPool2dOptions(int kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}
  EMBER_ARG(int, kernel_size);
  EMBER_ARG(int, stride);
  EMBER_ARG(int, padding) = 0;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options_) : options(options_) {
    const int k = options.kernel_size(), s = options.stride(), p = options.padding();
    check_arg(k >= 1, "MaxPool2d", "kernel_size must be >= 1, got ", k);
    check_arg(s >= 1, "MaxPool2d", "stride must be >= 1, got ", s);
    check_arg(p >= 0 && 2 * int64_t(p) <= k, "MaxPool2d",
              "padding must be between 0 and half the kernel_size ", k, ", got ", p);
  }
  /// The positional form; without a stride the stride is kernel_size (PyTorch's default).
  explicit MaxPool2d(int kernel_size, std::optional<int> stride = std::nullopt, int padding = 0)
      : MaxPool2d(
            MaxPool2dOptions(kernel_size).stride(stride.value_or(kernel_size)).padding(padding)) {}
  Tensor forward(const Tensor& x) override {
    return max_pool2d(x, options.kernel_size(), options.stride(), options.padding());
  }
  std::string name() const override { return "MaxPool2d"; }

  MaxPool2dOptions options;
};

/// torch::nn::LinearOptions(in_features, out_features): bias true.
struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  EMBER_ARG(int64_t, in_features);
  EMBER_ARG(int64_t, out_features);
  EMBER_ARG(bool, bias) = true;
};

class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options_) : options(options_) {
    check_arg(options.in_features() > 0 && options.out_features() > 0, "Linear",
              "features must be positive, got in ", options.in_features(), ", out ",
              options.out_features());
    weight = register_parameter("weight", empty({options.out_features(), options.in_features()}));
    if (options.bias()) bias = register_parameter("bias", empty({options.out_features()}));
    reset_parameters();
  }
  /// The positional form: Linear(in, out, bias).
  Linear(int in_features, int out_features, bool bias = true)
      : Linear(LinearOptions(in_features, out_features).bias(bias)) {}
  void reset_parameters(Generator& gen = default_generator()) {
    init::default_layer_init(weight, &bias, gen);
  }
  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }
  std::string name() const override { return "Linear"; }

  LinearOptions options;
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
