// @file include/ember/nn/sequential.hpp
// @brief Sequential: children named "0", "1", ... applied in order.
#pragma once
#include <initializer_list>

#include "module.hpp"

namespace ember::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
    for (auto& m : modules) push_back(m);
  }
  void push_back(std::shared_ptr<Module> m) {
    check_arg(m != nullptr, "Sequential", "null module at index ", size());
    register_module(std::to_string(size()), std::move(m));
  }
  size_t size() const { return named_children().size(); }
  std::shared_ptr<Module> operator[](size_t i) const { return named_children().at(i).second; }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (auto& c : named_children()) h = c.second->forward(h);
    return h;
  }
  std::string name() const override { return "Sequential"; }
};

}  // namespace ember::nn
