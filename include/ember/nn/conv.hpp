// @file include/ember/nn/conv.hpp
// @brief Conv2d and ConvTranspose2d modules (PyTorch names, defaults and initialisation), built
//        from Conv2dOptions / ConvTranspose2dOptions as libtorch's or from the positional form.
#pragma once
#include <cstdint>
#include <string>

#include "../core/arg.hpp"
#include "../ops/conv2d.hpp"
#include "../ops/conv_transpose2d.hpp"
#include "init.hpp"
#include "module.hpp"

namespace ember::nn {

/// torch::nn::Conv2dOptions(in_channels, out_channels, kernel_size): stride 1, padding 0, bias
/// true. Square kernels only; no dilation, groups or padding modes.
struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, int kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  EMBER_ARG(int64_t, in_channels);
  EMBER_ARG(int64_t, out_channels);
  EMBER_ARG(int, kernel_size);
  EMBER_ARG(int, stride) = 1;
  EMBER_ARG(int, padding) = 0;
  EMBER_ARG(bool, bias) = true;
};

/// torch::nn::ConvTranspose2dOptions(in_channels, out_channels, kernel_size): stride 1, padding 0,
/// output_padding 0, bias true. Square kernels only; no dilation or groups.
struct ConvTranspose2dOptions {
  ConvTranspose2dOptions(int64_t in_channels, int64_t out_channels, int kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  EMBER_ARG(int64_t, in_channels);
  EMBER_ARG(int64_t, out_channels);
  EMBER_ARG(int, kernel_size);
  EMBER_ARG(int, stride) = 1;
  EMBER_ARG(int, padding) = 0;
  EMBER_ARG(int, output_padding) = 0;
  EMBER_ARG(bool, bias) = true;
};

namespace detail {
/// The checks Conv2d and ConvTranspose2d share; each error names the layer and the value.
template <class Options>
void check_conv_options(const char* layer, const Options& o) {
  check_arg(o.in_channels() > 0 && o.out_channels() > 0 && o.kernel_size() > 0, layer,
            "channels and kernel_size must be positive, got in ", o.in_channels(), ", out ",
            o.out_channels(), ", kernel ", o.kernel_size());
  check_arg(o.stride() >= 1, layer, "stride must be >= 1, got ", o.stride());
  check_arg(o.padding() >= 0, layer, "padding must be >= 0, got ", o.padding());
}
}  // namespace detail

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options_) : options(options_) {
    detail::check_conv_options("Conv2d", options);
    const int64_t k = options.kernel_size();
    weight =
        register_parameter("weight", empty({options.out_channels(), options.in_channels(), k, k}));
    if (options.bias()) bias = register_parameter("bias", empty({options.out_channels()}));
    reset_parameters();
  }
  /// The positional form: Conv2d(in, out, kernel, stride, padding, bias).
  Conv2d(int in_channels, int out_channels, int kernel_size, int stride = 1, int padding = 0,
         bool bias = true)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)
                   .stride(stride)
                   .padding(padding)
                   .bias(bias)) {}
  void reset_parameters(Generator& gen = default_generator()) {
    init::default_layer_init(weight, &bias, gen);
  }
  Tensor forward(const Tensor& x) override {
    return conv2d(x, weight, bias, options.stride(), options.padding());
  }
  std::string name() const override { return "Conv2d"; }

  Conv2dOptions options;  // as built (libtorch keeps them in the module the same way)
  Tensor weight, bias;
};

class ConvTranspose2d : public Module {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options_) : options(options_) {
    detail::check_conv_options("ConvTranspose2d", options);
    check_arg(options.output_padding() >= 0 && options.output_padding() < options.stride(),
              "ConvTranspose2d", "output_padding must be >= 0 and smaller than stride ",
              options.stride(), ", got ", options.output_padding());
    const int64_t k = options.kernel_size();
    weight =
        register_parameter("weight", empty({options.in_channels(), options.out_channels(), k, k}));
    if (options.bias()) bias = register_parameter("bias", empty({options.out_channels()}));
    reset_parameters();
  }
  /// The positional form: ConvTranspose2d(in, out, kernel, stride, padding, output_padding, bias).
  ConvTranspose2d(int in_channels, int out_channels, int kernel_size, int stride = 1,
                  int padding = 0, int output_padding = 0, bool bias = true)
      : ConvTranspose2d(ConvTranspose2dOptions(in_channels, out_channels, kernel_size)
                            .stride(stride)
                            .padding(padding)
                            .output_padding(output_padding)
                            .bias(bias)) {}
  void reset_parameters(Generator& gen = default_generator()) {
    init::default_layer_init(weight, &bias, gen);
  }
  Tensor forward(const Tensor& x) override {
    return conv_transpose2d(x, weight, bias, options.stride(), options.padding(),
                            options.output_padding());
  }
  std::string name() const override { return "ConvTranspose2d"; }

  ConvTranspose2dOptions options;
  Tensor weight, bias;
};

}  // namespace ember::nn
