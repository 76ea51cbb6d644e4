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

 protected:
  std::vector<Tensor> params_;
};

}  // namespace ember::optim
