// @file include/ember/nn/module_list.hpp
// @brief ModuleList (children named "0", "1", ... like torch.nn.ModuleList) and Identity.
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "module.hpp"

namespace ember::nn {

/// torch.nn.Identity: forward returns its input (the same tensor).
class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string name() const override { return "Identity"; }
};

/// torch.nn.ModuleList: holds modules as children "0", "1", ..., so their parameters are
/// registered as "0.weight", "1.bias", ... (named_parameters, state_dict, parameters(), train/
/// eval and to() reach them). It has no forward: iterate it in the owner's forward.
class ModuleList : public Module {
 public:
  using Ptr = std::shared_ptr<Module>;
  ModuleList() = default;
  ModuleList(std::initializer_list<Ptr> modules) {
    for (auto& m : modules) push_back(m);
  }
  void push_back(Ptr m) {
    check_arg(m != nullptr, "ModuleList", "null module at index ", size());
    register_module(std::to_string(size()), m);
    modules_.push_back(std::move(m));
  }
  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  /// The i-th module (throws ember::Error when i >= size()).
  const Ptr& operator[](size_t i) const {
    check_arg(i < modules_.size(), "ModuleList", "index ", i, " is out of range for size ",
              modules_.size());
    return modules_[i];
  }
  /// The i-th module as M (nullptr when it is not an M).
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    return std::dynamic_pointer_cast<M>((*this)[i]);
  }
  std::vector<Ptr>::const_iterator begin() const { return modules_.begin(); }
  std::vector<Ptr>::const_iterator end() const { return modules_.end(); }
  std::string name() const override { return "ModuleList"; }

 private:
  std::vector<Ptr> modules_;
};

}  // namespace ember::nn
