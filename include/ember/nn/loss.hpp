// @file include/ember/nn/loss.hpp
// @brief Classification modules: Softmax, LogSoftmax and CrossEntropyLoss, as torch.nn's.
#pragma once
#include <cstdint>
#include <string>

#include "../ops/cross_entropy.hpp"
#include "../ops/softmax.hpp"
#include "module.hpp"

namespace ember::nn {

/// softmax(x, dim), as torch.nn.Softmax(dim).
class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim) : dim_(dim) {}
  Tensor forward(const Tensor& x) override { return softmax(x, dim_); }
  std::string name() const override { return "Softmax"; }
  int64_t dim() const { return dim_; }

 private:
  int64_t dim_;
};

/// log_softmax(x, dim), as torch.nn.LogSoftmax(dim).
class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim) : dim_(dim) {}
  Tensor forward(const Tensor& x) override { return log_softmax(x, dim_); }
  std::string name() const override { return "LogSoftmax"; }
  int64_t dim() const { return dim_; }

 private:
  int64_t dim_;
};

/// cross_entropy(input, target, options), as torch.nn.CrossEntropyLoss (no class weights).
/// Targets are class indices stored as float32 integers (ops/cross_entropy.hpp). The
/// one-argument forward of Module throws: call forward(input, target) or (*this)(input, target).
class CrossEntropyLoss : public Module {
 public:
  explicit CrossEntropyLoss(const CrossEntropyOptions& options = {}) : options_(options) {
    const double ls = options_.label_smoothing();
    check_arg(ls >= 0.0 && ls <= 1.0, "CrossEntropyLoss", "label_smoothing must be in [0, 1], got ",
              ls);
  }
  using Module::forward;
  Tensor forward(const Tensor& input, const Tensor& target) {
    return cross_entropy(input, target, options_);
  }
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  Tensor forward(const Tensor&) override {
    throw Error("CrossEntropyLoss: forward needs (input, target)");
  }
  std::string name() const override { return "CrossEntropyLoss"; }
  const CrossEntropyOptions& options() const { return options_; }

 private:
  CrossEntropyOptions options_;
};

}  // namespace ember::nn
