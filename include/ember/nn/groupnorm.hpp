// @file include/ember/nn/groupnorm.hpp
// @brief GroupNorm: num_groups groups over num_channels, affine weight (ones) and bias (zeros)
//        when affine, as torch.nn.GroupNorm; no buffers (the same in train and eval mode). Built
//        from GroupNormOptions as libtorch's or from the positional form.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "../core/arg.hpp"
#include "../ops/group_norm.hpp"
#include "module.hpp"

namespace ember::nn {

/// torch::nn::GroupNormOptions(num_groups, num_channels): eps 1e-5, affine true.
struct GroupNormOptions {
  GroupNormOptions(int64_t num_groups, int64_t num_channels)
      : num_groups_(num_groups), num_channels_(num_channels) {}
  EMBER_ARG(int64_t, num_groups);
  EMBER_ARG(int64_t, num_channels);
  EMBER_ARG(double, eps) = 1e-5;
  EMBER_ARG(bool, affine) = true;
};

class GroupNorm : public Module {
 public:
  explicit GroupNorm(const GroupNormOptions& options_) : options(options_) {
    const int64_t g = options.num_groups(), c = options.num_channels();
    check_arg(g > 0 && c > 0, "GroupNorm", "num_groups and num_channels must be positive, got ", g,
              " and ", c);
    check_arg(c % g == 0, "GroupNorm", "num_channels (", c, ") must be divisible by num_groups (",
              g, ")");
    check_arg(options.eps() >= 0 && std::isfinite(options.eps()), "GroupNorm",
              "eps must be finite and >= 0, got ", options.eps());
    if (options.affine()) {
      weight = register_parameter("weight", ones({c}));
      bias = register_parameter("bias", zeros({c}));
    }
  }
  /// The positional form: GroupNorm(num_groups, num_channels, eps, affine).
  GroupNorm(int num_groups, int num_channels, float eps = 1e-5f, bool affine = true)
      : GroupNorm(GroupNormOptions(num_groups, num_channels).eps(eps).affine(affine)) {}
  Tensor forward(const Tensor& x) override {
    return group_norm(x, options.num_groups(), weight, bias, float(options.eps()));
  }
  std::string name() const override { return "GroupNorm"; }

  GroupNormOptions options;
  Tensor weight, bias;  // undefined when affine is false
};

}  // namespace ember::nn
