// @file include/ember/optim/optimizer.hpp
// @brief Optimizer base: the parameter list, zero_grad, and named state for checkpoints.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "../ops/common.hpp"

namespace ember::optim {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
    for (size_t i = 0; i < params_.size(); ++i)
      check_arg(params_[i].defined() && params_[i].is_leaf(), "Optimizer", "parameter ", i,
                " is undefined or not a leaf tensor");
  }
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  /// Zeroes every parameter's gradient (keeping the buffers) or drops them with set_to_none.
  void zero_grad(bool set_to_none = false) {
    for (auto& p : params_) p.zero_grad(set_to_none);
  }
  const std::vector<Tensor>& params() const { return params_; }
  /// Every state tensor by a stable name ("0.exp_avg", ...), created lazily by step(); the
  /// scalar state (step counts) is kept in a one-element tensor so it round-trips the same way.
  virtual std::vector<std::pair<std::string, Tensor>> named_state() = 0;

  // ---- learning rate (layers and training): PyTorch's param_groups[0]["lr"] ----
  /// The current learning rate (ember optimizers have one parameter group).
  virtual double lr() const {
    throw Error("Optimizer: this optimizer has no learning rate");
  }
  /// Sets the learning rate used by the next step() (what LR schedulers do).
  virtual void set_lr(double lr) {
    (void)lr;
    throw Error("Optimizer: this optimizer has no learning rate");
  }
  /// param_groups[0]["initial_lr"]: set by the first LR scheduler attached (its base lr).
  bool has_initial_lr() const { return has_initial_lr_; }
  double initial_lr() const { return initial_lr_; }
  void set_initial_lr(double lr) {
    initial_lr_ = lr;
    has_initial_lr_ = true;
  }

 protected:
  std::vector<Tensor> params_;

 private:
  double initial_lr_ = 0.0;
  bool has_initial_lr_ = false;
};

}  // namespace ember::optim
