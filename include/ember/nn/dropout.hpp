// @file include/ember/nn/dropout.hpp
// @brief Dropout (torch.nn.Dropout): ember::dropout in training mode, the identity in eval mode.
#pragma once
#include "../ops/dropout.hpp"
#include "module.hpp"

namespace ember::nn {

class Dropout : public Module {
 public:
  /// p in [0, 1] (else ember::Error). Masks come from default_generator() (seed it with
  /// ember::manual_seed), or from `gen`, which must outlive the module.
  explicit Dropout(double p = 0.5) : Dropout(p, default_generator()) {}
  Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
    check_arg(p >= 0 && p <= 1, "Dropout",
              "dropout probability has to be between 0 and 1, but got ", p);
  }
  Tensor forward(const Tensor& x) override { return dropout(x, p_, is_training(), *gen_); }
  double p() const { return p_; }
  std::string name() const override { return "Dropout"; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace ember::nn
