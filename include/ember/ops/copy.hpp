// @file include/ember/ops/copy.hpp
// @brief Tensor::to(device) and Tensor::clone(): copies that autograd sees through, as PyTorch's.
//
// to(device) returns the tensor itself when it is already on `device`; otherwise a new tensor on
// `device` whose gradient is copied back to the source device. clone() is a copy on the same
// device with the identity gradient. Under no_grad, or for inputs that do not require grad, both
// are plain copies with no history (a leaf that does not require grad).
#pragma once
#include "common.hpp"

namespace ember {

inline Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = Tensor::empty(shape(), device);
  detail::copy_(*this, out);
  if (detail::needs_graph({this})) {
    const Device from = this->device();
    detail::record("to", out, {*this}, [from](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

inline Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), device());
  detail::copy_(*this, out);
  if (detail::needs_graph({this}))
    detail::record("clone", out, {*this},
                   [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
  return out;
}

}  // namespace ember
