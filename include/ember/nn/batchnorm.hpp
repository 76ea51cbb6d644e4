// @file include/ember/nn/batchnorm.hpp
// @brief BatchNorm2d: affine weight (ones) and bias (zeros), running_mean/running_var buffers;
//        built from BatchNorm2dOptions as libtorch's or from the positional form.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "../core/arg.hpp"
#include "../ops/batch_norm.hpp"
#include "module.hpp"

namespace ember::nn {

/// torch::nn::BatchNorm2dOptions(num_features): eps 1e-5, momentum 0.1. Always affine with running
/// statistics (no affine / track_running_stats switches; momentum is a number, never None).
struct BatchNorm2dOptions {
  BatchNorm2dOptions(int64_t num_features) : num_features_(num_features) {}
  EMBER_ARG(int64_t, num_features);
  EMBER_ARG(double, eps) = 1e-5;
  EMBER_ARG(double, momentum) = 0.1;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& options_) : options(options_) {
    const int64_t c = options.num_features();
    check_arg(c > 0, "BatchNorm2d", "num_features must be positive, got ", c);
    check_arg(options.eps() >= 0 && std::isfinite(options.eps()), "BatchNorm2d",
              "eps must be finite and >= 0, got ", options.eps());
    check_arg(options.momentum() >= 0 && options.momentum() <= 1, "BatchNorm2d",
              "momentum must be in [0, 1], got ", options.momentum());
    weight = register_parameter("weight", ones({c}));
    bias = register_parameter("bias", zeros({c}));
    running_mean = register_buffer("running_mean", zeros({c}));
    running_var = register_buffer("running_var", ones({c}));
  }
  /// The positional form: BatchNorm2d(num_features, eps, momentum).
  explicit BatchNorm2d(int num_features, float eps = 1e-5f, float momentum = 0.1f)
      : BatchNorm2d(BatchNorm2dOptions(num_features).eps(eps).momentum(momentum)) {}
  Tensor forward(const Tensor& x) override {
    return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(),
                        float(options.momentum()), float(options.eps()));
  }
  std::string name() const override { return "BatchNorm2d"; }

  BatchNorm2dOptions options;
  Tensor weight, bias, running_mean, running_var;
};

}  // namespace ember::nn
