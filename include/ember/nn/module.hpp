// @file include/ember/nn/module.hpp
// @brief Module: the base of every layer, with named parameters, buffers, children, train/eval.
//
// Names follow PyTorch: a child registered as "down1" with a parameter "weight" appears as
// "down1.weight" in named_parameters(), so checkpoints and fixtures line up with PyTorch's
// state_dict keys.
#pragma once
#include <map>
#include <memory>
#include <set>
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

  /// PyTorch's state_dict(): each module's parameters, then its buffers, then its children's
  /// entries under "child.", in registration order ("0.weight", "bn.running_mean", ...). The
  /// tensors are detached handles sharing storage with the module's (as PyTorch's). BatchNorm's
  /// num_batches_tracked is not kept by ember, so it is not in the dict.
  std::vector<std::pair<std::string, Tensor>> state_dict() const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect_state(out, "");
    return out;
  }

  /// PyTorch's load_state_dict result: the keys the module has but `state` lacks, and the keys
  /// `state` has but the module lacks (both empty after a strict load).
  struct LoadResult {
    std::vector<std::string> missing_keys, unexpected_keys;
  };

  /// Copies `state`'s values in place into the parameters and buffers of the same names (onto
  /// each tensor's device; handles stay valid). Shapes must match (a mismatch throws naming the
  /// key and both shapes, strict or not, as PyTorch). strict: a missing or unexpected key
  /// throws, naming every such key; otherwise they are returned. Nothing is copied when it throws.
  LoadResult load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true) {
    LoadResult r;
    std::vector<std::pair<std::string, Tensor>> own = state_dict();
    std::set<std::string> own_keys;
    std::string mismatch;
    for (auto& [key, t] : own) {
      own_keys.insert(key);
      auto it = state.find(key);
      if (it == state.end()) {
        r.missing_keys.push_back(key);
        continue;
      }
      check_arg(it->second.defined(), "load_state_dict", "the tensor for '", key,
                "' is undefined");
      if (it->second.shape() != t.shape())
        mismatch += "\n  size mismatch for '" + key + "': copying a tensor of shape " +
                    to_string(it->second.shape()) + " from the state dict, the shape in the " +
                    "current model is " + to_string(t.shape());
    }
    for (auto& kv : state)
      if (!own_keys.count(kv.first)) r.unexpected_keys.push_back(kv.first);
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (auto& k : v) s += (s.empty() ? "\"" : ", \"") + k + "\"";
      return s;
    };
    std::string errors = mismatch;
    if (strict && !r.missing_keys.empty())
      errors += "\n  missing keys: " + join(r.missing_keys);
    if (strict && !r.unexpected_keys.empty())
      errors += "\n  unexpected keys: " + join(r.unexpected_keys);
    check_arg(errors.empty(), "load_state_dict", "error(s) in loading the state dict for ",
              name(), ":", errors);
    NoGradGuard guard;
    for (auto& [key, t] : own) {
      auto it = state.find(key);
      if (it != state.end()) ember::detail::copy_(it->second, t);
    }
    return r;
  }
  /// The same from a state_dict()-style list (a repeated key throws).
  LoadResult load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state,
                             bool strict = true) {
    std::map<std::string, Tensor> m;
    for (auto& kv : state)
      check_arg(m.emplace(kv.first, kv.second).second, "load_state_dict", "key '", kv.first,
                "' appears twice");
    return load_state_dict(m, strict);
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

  void collect_state(List& out, const std::string& prefix) const {
    for (auto& kv : params_) out.emplace_back(prefix + kv.first, kv.second.detach());
    for (auto& kv : buffers_) out.emplace_back(prefix + kv.first, kv.second.detach());
    for (auto& c : children_) c.second->collect_state(out, prefix + c.first + ".");
  }

  List params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace ember::nn
