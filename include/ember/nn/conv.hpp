// @file include/ember/nn/conv.hpp
// @brief Conv2d and ConvTranspose2d modules (PyTorch names, defaults and initialisation).
#pragma once
#include "../ops/conv2d.hpp"
#include "../ops/conv_transpose2d.hpp"
#include "init.hpp"
#include "module.hpp"

namespace ember::nn {

class Conv2d : public Module {
 public:
  Conv2d(int in_channels, int out_channels, int kernel_size, int stride = 1, int padding = 0,
         bool bias = true)
      : stride_(stride), padding_(padding) {
    check_arg(in_channels > 0 && out_channels > 0 && kernel_size > 0, "Conv2d",
              "channels and kernel_size must be positive, got in ", in_channels, ", out ",
              out_channels, ", kernel ", kernel_size);
    weight = register_parameter("weight", empty({out_channels, in_channels, kernel_size,
                                                 kernel_size}));
    if (bias) this->bias = register_parameter("bias", empty({out_channels}));
    reset_parameters();
  }
  void reset_parameters(Generator& gen = default_generator()) {
    init::default_layer_init(weight, &bias, gen);
  }
  Tensor forward(const Tensor& x) override { return conv2d(x, weight, bias, stride_, padding_); }
  std::string name() const override { return "Conv2d"; }

  Tensor weight, bias;

 private:
  int stride_, padding_;
};

class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int in_channels, int out_channels, int kernel_size, int stride = 1,
                  int padding = 0, int output_padding = 0, bool bias = true)
      : stride_(stride), padding_(padding), output_padding_(output_padding) {
    check_arg(in_channels > 0 && out_channels > 0 && kernel_size > 0, "ConvTranspose2d",
              "channels and kernel_size must be positive, got in ", in_channels, ", out ",
              out_channels, ", kernel ", kernel_size);
    weight = register_parameter("weight", empty({in_channels, out_channels, kernel_size,
                                                 kernel_size}));
    if (bias) this->bias = register_parameter("bias", empty({out_channels}));
    reset_parameters();
  }
  void reset_parameters(Generator& gen = default_generator()) {
    init::default_layer_init(weight, &bias, gen);
  }
  Tensor forward(const Tensor& x) override {
    return conv_transpose2d(x, weight, bias, stride_, padding_, output_padding_);
  }
  std::string name() const override { return "ConvTranspose2d"; }

  Tensor weight, bias;

 private:
  int stride_, padding_, output_padding_;
};

}  // namespace ember::nn
