// @file include/ember/optim/sgd.hpp
// @brief SGD with momentum, dampening, weight decay and Nesterov, exactly torch.optim.SGD.
#pragma once
#include <ember/kernels/cpu/optim.hpp>

#include "../core/arg.hpp"
#include "optimizer.hpp"

namespace ember::optim {

/// torch::optim::SGDOptions(lr): momentum 0, dampening 0, weight_decay 0, nesterov false; setters
/// chain: SGDOptions(0.1).momentum(0.9).nesterov(true). lr defaults to 0.01 (libtorch has no
/// default). Hyper-parameters in double, as PyTorch keeps them; the kernel gets each rounded to
/// float once (and 1 - dampening formed in double first), as PyTorch's scalar arguments are.
struct SGDOptions {
  SGDOptions(double lr = 1e-2) : lr_(lr) {}
  EMBER_ARG(double, lr);
  EMBER_ARG(double, momentum) = 0.0;
  EMBER_ARG(double, dampening) = 0.0;
  EMBER_ARG(double, weight_decay) = 0.0;
  EMBER_ARG(bool, nesterov) = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options)
      : Optimizer(std::move(params)), opt_(options) {
    check_arg(opt_.lr() >= 0, "SGD", "lr must be >= 0, got ", opt_.lr());
    check_arg(opt_.momentum() >= 0, "SGD", "momentum must be >= 0, got ", opt_.momentum());
    check_arg(opt_.weight_decay() >= 0, "SGD", "weight_decay must be >= 0, got ",
              opt_.weight_decay());
    check_arg(!opt_.nesterov() || (opt_.momentum() > 0 && opt_.dampening() == 0), "SGD",
              "nesterov needs momentum > 0 and dampening 0, got momentum ", opt_.momentum(),
              " and dampening ", opt_.dampening());
    buf_.resize(params_.size());
  }
  void step() override {
    NoGradGuard guard;
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor& p = params_[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      kernels::SgdParams sp = kernels::make_sgd_params(opt_.lr(), opt_.momentum(), opt_.dampening(),
                                                       opt_.weight_decay(), opt_.nesterov(), false);
      if (opt_.momentum() != 0.0 && !buf_[i].defined()) {
        buf_[i] = empty_like(p);
        sp.first_step = true;
      }
      EMBER_DISPATCH("SGD.step", p, sgd_step, p.numel(), sp, p.data(), g.data(),
                     buf_[i].defined() ? buf_[i].data() : nullptr);
    }
  }
  std::vector<std::pair<std::string, Tensor>> named_state() override {
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t i = 0; i < buf_.size(); ++i) {
      if (opt_.momentum() != 0.0 && !buf_[i].defined()) buf_[i] = zeros_like(params_[i]);
      if (buf_[i].defined()) out.emplace_back(std::to_string(i) + ".momentum_buffer", buf_[i]);
    }
    return out;
  }
  SGDOptions& options() { return opt_; }
  double lr() const override { return opt_.lr(); }
  void set_lr(double lr) override {
    check_arg(lr >= 0, "SGD", "lr must be >= 0, got ", lr);
    opt_.lr(lr);
  }

 private:
  SGDOptions opt_;
  std::vector<Tensor> buf_;
};

}  // namespace ember::optim
