// @file include/ember/optim/lr_scheduler.hpp
// @brief Learning-rate schedules, exactly torch.optim.lr_scheduler (1.13): StepLR,
//        CosineAnnealingLR, LinearLR and SequentialLR (e.g. linear warm-up then cosine).
//
// As in PyTorch: constructing a scheduler records the optimizer's lr as its "initial_lr" (the
// first scheduler only) and base lr, and takes the initial step (last_epoch 0), which may already
// change the optimizer's lr (LinearLR: base_lr * start_factor). Each step() advances last_epoch
// and sets the optimizer's lr from the recursive (chainable) form that PyTorch's step() uses,
// computed in double with PyTorch's operation order, so the values equal PyTorch's to the last
// bit or two. get_last_lr() is the lr the last step set.
//
// Usage:
//   optim::AdamW opt(model.parameters(), optim::AdamWOptions(1e-3));
//   optim::LinearLR warm(opt, 0.01, 1.0, 100);          // 100 warm-up steps
//   optim::CosineAnnealingLR cos(opt, 900);             // then cosine decay
//   optim::SequentialLR sched(opt, {&warm, &cos}, {100});
//   for (...) { ...; opt.step(); sched.step(); }
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "optimizer.hpp"

namespace ember::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  /// Advances one epoch/step and sets the optimizer's learning rate.
  virtual void step() {
    ++last_epoch_;
    ++step_count_;
    set(get_lr());
  }
  /// The learning rate set by the last step (PyTorch returns one per parameter group; ember's
  /// optimizers have one group).
  virtual double get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  double base_lr() const { return base_lr_; }
  Optimizer& optimizer() const { return *opt_; }

 protected:
  explicit LRScheduler(Optimizer& opt) : opt_(&opt) {
    if (!opt.has_initial_lr()) opt.set_initial_lr(opt.lr());
    base_lr_ = opt.initial_lr();
  }
  /// PyTorch's _initial_step(): the derived constructor calls it once its fields are set.
  void initial_step() {
    step_count_ = 0;
    step();
  }
  /// The recursive form (PyTorch's get_lr()), from the optimizer's current lr.
  virtual double get_lr() const = 0;
  /// The closed form at last_epoch_ (PyTorch's _get_closed_form_lr(); step(epoch) uses it).
  virtual double closed_form_lr() const = 0;
  /// step(epoch) (deprecated in PyTorch, used by SequentialLR at a milestone).
  void step_to(int64_t epoch) {
    ++step_count_;
    last_epoch_ = epoch;
    set(closed_form_lr());
  }
  double group_lr() const { return opt_->lr(); }
  void set(double lr) {
    opt_->set_lr(lr);
    last_lr_ = lr;
  }

  Optimizer* opt_;
  double base_lr_ = 0.0, last_lr_ = 0.0;
  int64_t last_epoch_ = -1, step_count_ = 0;

  friend class SequentialLR;
};

/// torch.optim.lr_scheduler.StepLR: lr = base_lr * gamma^(epoch // step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& opt, int64_t step_size, double gamma = 0.1)
      : LRScheduler(opt), step_size_(step_size), gamma_(gamma) {
    check_arg(step_size > 0, "StepLR", "step_size must be > 0, got ", step_size);
    initial_step();
  }

 protected:
  double get_lr() const override {
    if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return group_lr();
    return group_lr() * gamma_;
  }
  double closed_form_lr() const override {
    return base_lr_ * std::pow(gamma_, double(last_epoch_ / step_size_));
  }

 private:
  int64_t step_size_;
  double gamma_;
};

/// torch.optim.lr_scheduler.CosineAnnealingLR: eta_min + (base_lr - eta_min) *
/// (1 + cos(pi * epoch / T_max)) / 2, through PyTorch's recursive form (so past T_max it rises
/// again, as PyTorch's does).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& opt, int64_t T_max, double eta_min = 0.0)
      : LRScheduler(opt), T_max_(T_max), eta_min_(eta_min) {
    check_arg(T_max > 0, "CosineAnnealingLR", "T_max must be > 0, got ", T_max);
    initial_step();
  }

 protected:
  double get_lr() const override {
    const double pi = 3.141592653589793;  // math.pi
    const double T = double(T_max_), e = double(last_epoch_);
    if (last_epoch_ == 0) return group_lr();
    if (step_count_ == 1 && last_epoch_ > 0)
      return eta_min_ + (base_lr_ - eta_min_) * (1 + std::cos(e * pi / T)) / 2;
    int64_t m = (last_epoch_ - 1 - T_max_) % (2 * T_max_);  // Python's %: the sign of the divisor
    if (m < 0) m += 2 * T_max_;
    if (m == 0) return group_lr() + (base_lr_ - eta_min_) * (1 - std::cos(pi / T)) / 2;
    return (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) *
               (group_lr() - eta_min_) +
           eta_min_;
  }
  double closed_form_lr() const override {
    const double pi = 3.141592653589793;
    return eta_min_ +
           (base_lr_ - eta_min_) * (1 + std::cos(pi * double(last_epoch_) / double(T_max_))) / 2;
  }

 private:
  int64_t T_max_;
  double eta_min_;
};

/// torch.optim.lr_scheduler.LinearLR: the factor goes linearly from start_factor (epoch 0) to
/// end_factor (epoch total_iters) and stays there; a linear warm-up with start_factor < 1.
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& opt, double start_factor = 1.0 / 3, double end_factor = 1.0,
           int64_t total_iters = 5)
      : LRScheduler(opt),
        start_factor_(start_factor),
        end_factor_(end_factor),
        total_iters_(total_iters) {
    check_arg(start_factor >= 0 && start_factor <= 1, "LinearLR",
              "start_factor must be in [0, 1], got ", start_factor);
    check_arg(end_factor >= 0 && end_factor <= 1, "LinearLR", "end_factor must be in [0, 1], got ",
              end_factor);
    check_arg(total_iters > 0, "LinearLR", "total_iters must be > 0, got ", total_iters);
    initial_step();
  }

 protected:
  double get_lr() const override {
    if (last_epoch_ == 0) return group_lr() * start_factor_;
    if (last_epoch_ > total_iters_) return group_lr();
    return group_lr() *
           (1. + (end_factor_ - start_factor_) /
                     (double(total_iters_) * start_factor_ +
                      double(last_epoch_ - 1) * (end_factor_ - start_factor_)));
  }
  double closed_form_lr() const override {
    return base_lr_ * (start_factor_ + (end_factor_ - start_factor_) *
                                           double(std::min(total_iters_, last_epoch_)) /
                                           double(total_iters_));
  }

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

/// torch.optim.lr_scheduler.SequentialLR: schedulers[i] runs from milestones[i-1] (restarted at
/// its epoch 0 there, in its closed form) until milestones[i]. The schedulers must outlive it and
/// drive the same optimizer; step only this one.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& opt, std::vector<LRScheduler*> schedulers,
               std::vector<int64_t> milestones)
      : LRScheduler(opt), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
    check_arg(!schedulers_.empty(), "SequentialLR", "needs at least one scheduler");
    for (size_t i = 0; i < schedulers_.size(); ++i)
      check_arg(schedulers_[i] != nullptr && schedulers_[i]->opt_ == &opt, "SequentialLR",
                "scheduler ", i, " is null or drives a different optimizer");
    check_arg(milestones_.size() + 1 == schedulers_.size(), "SequentialLR",
              "needs one milestone fewer than schedulers, got ", schedulers_.size(),
              " schedulers and ", milestones_.size(), " milestones");
    last_epoch_ = 0;
    opt.set_lr(opt.initial_lr());
    for (LRScheduler* s : schedulers_) s->last_epoch_ -= 1;
    schedulers_[0]->initial_step();
    last_lr_ = schedulers_[0]->get_last_lr();
  }
  void step() override {
    ++last_epoch_;
    const size_t idx = size_t(std::upper_bound(milestones_.begin(), milestones_.end(),
                                               last_epoch_) -
                              milestones_.begin());
    LRScheduler* s = schedulers_[idx];
    if (idx > 0 && milestones_[idx - 1] == last_epoch_)
      s->step_to(0);
    else
      s->step();
    last_lr_ = s->get_last_lr();
  }

 protected:
  double get_lr() const override { return last_lr_; }
  double closed_form_lr() const override { return last_lr_; }

 private:
  std::vector<LRScheduler*> schedulers_;
  std::vector<int64_t> milestones_;
};

}  // namespace ember::optim
