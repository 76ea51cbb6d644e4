// @file include/ember/nn/module.hpp
// @brief Module: the base of every layer, with named parameters, buffers, children, train/eval.
//
// Names follow PyTorch: a child registered as "down1" with a parameter "weight" appears as
// "down1.weight" in named_parameters(), so checkpoints and fixtures line up with PyTorch's
// state_dict keys.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../ops/common.hpp"

namespace ember::nn {

class Module {
 public:
  virtual ~Module() = default;

  /// The single-input forward used by Sequential; modules with other signatures add overloads.
  virtual Tensor forward(const Tensor& x) {
    (void)x;
    throw std::logic_error(name() + ": this module has no single-input forward");
  }
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// A short type name for messages ("Conv2d").
  virtual std::string name() const { return "Module"; }

  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect(out, "", recurse, &Module::params_);
    return out;
  }
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect(out, "", recurse, &Module::buffers_);
    return out;
  }
  std::vector<Tensor> parameters(bool recurse = true) const {
    std::vector<Tensor> out;
    for (auto& kv : named_parameters(recurse)) out.push_back(kv.second);
    return out;
  }
  std::vector<Tensor> buffers(bool recurse = true) const {
    std::vector<Tensor> out;
    for (auto& kv : named_buffers(recurse)) out.push_back(kv.second);
    return out;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }
  /// Total number of parameter values.
  int64_t num_parameters() const {
    int64_t n = 0;
    for (auto& p : parameters()) n += p.numel();
    return n;
  }

  /// Training mode (the default) or evaluation mode, for this module and all children.
  virtual void train(bool on = true) {
    training_ = on;
    for (auto& c : children_) c.second->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Sets every parameter's gradient to zero (or drops it with set_to_none).
  void zero_grad(bool set_to_none = false) {
    for (auto& p : parameters()) p.zero_grad(set_to_none);
  }

  /// Moves every parameter and buffer to `device` in place (handles stay valid).
  void to(Device device) {
    for (auto& p : parameters()) p.move_to_(device);
    for (auto& b : buffers()) b.move_to_(device);
  }

 protected:
  Tensor register_parameter(const std::string& name, Tensor t) {
    t.set_requires_grad(true);
    params_.emplace_back(name, t);
    return t;
  }
  Tensor register_buffer(const std::string& name, Tensor t) {
    buffers_.emplace_back(name, t);
    return t;
  }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  using List = std::vector<std::pair<std::string, Tensor>>;
  void collect(List& out, const std::string& prefix, bool recurse, List Module::*which) const {
    for (auto& kv : this->*which) out.emplace_back(prefix + kv.first, kv.second);
    if (!recurse) return;
    for (auto& c : children_) c.second->collect(out, prefix + c.first + ".", true, which);
  }

  List params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace ember::nn
