// @file include/ember/optim/adam.hpp
// @brief Adam with bias correction and L2 weight decay, exactly torch.optim.Adam (amsgrad off),
//        and AdamW (decoupled weight decay), exactly torch.optim.AdamW.
#pragma once
#include <cmath>
#include <tuple>

#include <ember/kernels/cpu/optim.hpp>

#include "../core/arg.hpp"
#include "optimizer.hpp"

namespace ember::optim {

/// torch::optim::AdamOptions(lr = 1e-3): betas (0.9, 0.999), eps 1e-8, weight_decay 0; setters
/// chain: AdamOptions(1e-3).betas({0.9, 0.999}).eps(1e-8). No amsgrad. Hyper-parameters in
/// double, as PyTorch keeps them, so the per-step scalars round like its.
struct AdamOptions {
  using Betas = std::tuple<double, double>;
  AdamOptions(double lr = 1e-3) : lr_(lr) {}
  EMBER_ARG(double, lr);
  EMBER_ARG(Betas, betas) = Betas(0.9, 0.999);
  EMBER_ARG(double, eps) = 1e-8;
  EMBER_ARG(double, weight_decay) = 0.0;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {})
      : Adam(std::move(params), options, false) {}
  void step() override {
    NoGradGuard guard;
    const char* op = decoupled_ ? "AdamW.step" : "Adam.step";
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor& p = params_[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      ensure_state(i);
      float& count = step_[i].data()[0];  // a float32 CPU scalar, as PyTorch keeps state["step"]
      count += 1.0f;
      const auto [beta1, beta2] = opt_.betas();
      kernels::AdamParams ap = kernels::make_adam_params(
          opt_.lr(), beta1, beta2, opt_.eps(), decoupled_ ? 0.0 : opt_.weight_decay(),
          int64_t(count));
      if (decoupled_) {  // AdamW: param.mul_(1 - lr * weight_decay), the factor in double
        ap.decoupled = true;
        ap.decay = float(1.0 - opt_.lr() * opt_.weight_decay());
      }
      EMBER_DISPATCH(op, p, adam_step, p.numel(), ap, p.data(), g.data(), m_[i].data(),
                     v_[i].data());
    }
  }
  /// "i.exp_avg", "i.exp_avg_sq" and "i.step" (a one-element CPU tensor) for each parameter i.
  /// They are the optimizer's own state: overwriting them (a checkpoint load) restores it.
  std::vector<std::pair<std::string, Tensor>> named_state() override {
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t i = 0; i < params_.size(); ++i) {
      ensure_state(i);
      out.emplace_back(std::to_string(i) + ".exp_avg", m_[i]);
      out.emplace_back(std::to_string(i) + ".exp_avg_sq", v_[i]);
      out.emplace_back(std::to_string(i) + ".step", step_[i]);
    }
    return out;
  }
  AdamOptions& options() { return opt_; }
  double lr() const override { return opt_.lr(); }
  void set_lr(double lr) override {
    check_arg(lr >= 0, name_, "lr must be >= 0, got ", lr);
    opt_.lr(lr);
  }
  /// How many steps parameter i has taken (0 before its first).
  int64_t step_count(size_t i) const {
    const Tensor& s = step_.at(i);
    return s.defined() ? static_cast<int64_t>(s.data()[0]) : 0;
  }

 protected:
  /// decoupled: AdamW's weight decay (param *= 1 - lr*wd before the Adam step, no L2 term).
  Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled)
      : Optimizer(std::move(params)), opt_(options), decoupled_(decoupled),
        name_(decoupled ? "AdamW" : "Adam") {
    const auto [beta1, beta2] = opt_.betas();
    check_arg(opt_.lr() >= 0, name_, "lr must be >= 0, got ", opt_.lr());
    check_arg(opt_.eps() >= 0, name_, "eps must be >= 0, got ", opt_.eps());
    check_arg(opt_.weight_decay() >= 0, name_, "weight_decay must be >= 0, got ",
              opt_.weight_decay());
    check_arg(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, name_,
              "betas must be in [0, 1), got ", beta1, ", ", beta2);
    m_.resize(params_.size());
    v_.resize(params_.size());
    step_.resize(params_.size());
  }

 private:
  void ensure_state(size_t i) {
    if (!m_[i].defined()) {
      m_[i] = zeros_like(params_[i]);
      v_[i] = zeros_like(params_[i]);
      step_[i] = zeros({1});
    }
  }
  AdamOptions opt_;
  bool decoupled_;
  const char* name_;
  std::vector<Tensor> m_, v_, step_;
};

/// torch.optim.AdamW's options: as AdamOptions but weight_decay defaults to 0.01.
struct AdamWOptions {
  using Betas = std::tuple<double, double>;
  AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  EMBER_ARG(double, lr);
  EMBER_ARG(Betas, betas) = Betas(0.9, 0.999);
  EMBER_ARG(double, eps) = 1e-8;
  EMBER_ARG(double, weight_decay) = 1e-2;
};

/// AdamW (Loshchilov & Hutter), exactly torch.optim.AdamW (amsgrad off): each step first
/// multiplies the parameter by 1 - lr*weight_decay, then takes Adam's step without an L2 term.
/// The same fused kernel as Adam (AdamParams::decoupled), on the CPU and CUDA.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = {})
      : Adam(std::move(params),
             AdamOptions(options.lr())
                 .betas(options.betas())
                 .eps(options.eps())
                 .weight_decay(options.weight_decay()),
             true) {}
};

}  // namespace ember::optim
