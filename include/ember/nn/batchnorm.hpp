// @file include/ember/nn/batchnorm.hpp
// @brief BatchNorm2d: affine weight (ones) and bias (zeros), running_mean/running_var buffers.
#pragma once
#include "../ops/batch_norm.hpp"
#include "module.hpp"

namespace ember::nn {

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int num_features, float eps = 1e-5f, float momentum = 0.1f)
      : eps_(eps), momentum_(momentum) {
    check_arg(num_features > 0, "BatchNorm2d", "num_features must be positive, got ",
              num_features);
    weight = register_parameter("weight", ones({num_features}));
    bias = register_parameter("bias", zeros({num_features}));
    running_mean = register_buffer("running_mean", zeros({num_features}));
    running_var = register_buffer("running_var", ones({num_features}));
  }
  Tensor forward(const Tensor& x) override {
    return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum_,
                        eps_);
  }
  std::string name() const override { return "BatchNorm2d"; }

  Tensor weight, bias, running_mean, running_var;

 private:
  float eps_, momentum_;
};

}  // namespace ember::nn
