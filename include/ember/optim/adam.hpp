// @file include/ember/optim/adam.hpp
// @brief Adam with bias correction and L2 weight decay, exactly torch.optim.Adam (amsgrad off).
#pragma once
#include <cmath>

#include <kernels/cpu/optim.hpp>

#include "optimizer.hpp"

namespace ember::optim {

/// Hyper-parameters in double, as PyTorch keeps them, so the per-step scalars round like its.
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {})
      : Optimizer(std::move(params)), opt_(options) {
    check_arg(opt_.lr >= 0 && opt_.eps >= 0 && opt_.weight_decay >= 0, "Adam",
              "lr, eps and weight_decay must be >= 0");
    check_arg(opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1, "Adam",
              "betas must be in [0, 1), got ", opt_.beta1, ", ", opt_.beta2);
    m_.resize(params_.size());
    v_.resize(params_.size());
    steps_.assign(params_.size(), 0);
  }
  void step() override {
    NoGradGuard guard;
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor& p = params_[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      ensure_state(i);
      int64_t t = ++steps_[i];
      kernels::AdamParams ap = kernels::make_adam_params(opt_.lr, opt_.beta1, opt_.beta2, opt_.eps,
                                                         opt_.weight_decay, t);
      EMBER_DISPATCH("Adam.step", p, adam_step, p.numel(), ap, p.data(), g.data(), m_[i].data(),
                     v_[i].data());
    }
  }
  /// "i.exp_avg", "i.exp_avg_sq" and "i.step" (a one-element tensor) for each parameter i.
  std::vector<std::pair<std::string, Tensor>> named_state() override {
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t i = 0; i < params_.size(); ++i) {
      ensure_state(i);
      out.emplace_back(std::to_string(i) + ".exp_avg", m_[i]);
      out.emplace_back(std::to_string(i) + ".exp_avg_sq", v_[i]);
      out.emplace_back(std::to_string(i) + ".step", step_view(i));
    }
    return out;
  }
  /// Copies the step counts back from the "i.step" tensors returned by named_state.
  void state_loaded() override {
    for (size_t i = 0; i < params_.size(); ++i)
      if (step_tensors_.size() > i && step_tensors_[i].defined())
        steps_[i] = static_cast<int64_t>(step_tensors_[i].item());
  }
  AdamOptions& options() { return opt_; }
  int64_t step_count(size_t i) const { return steps_.at(i); }

 private:
  void ensure_state(size_t i) {
    if (!m_[i].defined()) {
      m_[i] = zeros_like(params_[i]);
      v_[i] = zeros_like(params_[i]);
    }
  }
  Tensor step_view(size_t i) {
    if (step_tensors_.size() < params_.size()) step_tensors_.resize(params_.size());
    step_tensors_[i] = full({1}, static_cast<float>(steps_[i]));
    return step_tensors_[i];
  }
  AdamOptions opt_;
  std::vector<Tensor> m_, v_, step_tensors_;
  std::vector<int64_t> steps_;
};

}  // namespace ember::optim
