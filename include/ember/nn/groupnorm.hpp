// @file include/ember/nn/groupnorm.hpp
// @brief GroupNorm: num_groups groups over num_channels, affine weight (ones) and bias (zeros)
//        when affine, as torch.nn.GroupNorm; no buffers (the same in train and eval mode).
#pragma once
#include "../ops/group_norm.hpp"
#include "module.hpp"

namespace ember::nn {

class GroupNorm : public Module {
 public:
  GroupNorm(int num_groups, int num_channels, float eps = 1e-5f, bool affine = true)
      : num_groups_(num_groups), eps_(eps) {
    check_arg(num_groups > 0 && num_channels > 0, "GroupNorm",
              "num_groups and num_channels must be positive, got ", num_groups, " and ",
              num_channels);
    check_arg(num_channels % num_groups == 0, "GroupNorm", "num_channels (", num_channels,
              ") must be divisible by num_groups (", num_groups, ")");
    if (affine) {
      weight = register_parameter("weight", ones({num_channels}));
      bias = register_parameter("bias", zeros({num_channels}));
    }
  }
  Tensor forward(const Tensor& x) override {
    return group_norm(x, num_groups_, weight, bias, eps_);
  }
  std::string name() const override { return "GroupNorm"; }

  Tensor weight, bias;  // undefined when affine is false

 private:
  int num_groups_;
  float eps_;
};

}  // namespace ember::nn
