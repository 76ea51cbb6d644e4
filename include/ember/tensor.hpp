// @file include/ember/tensor.hpp
// @brief Tensor: a float32 array of any rank on a device, with shared storage, views and autograd.
//
// A Tensor is a cheap handle to a TensorImpl; copying a Tensor shares it (like torch::Tensor).
// Storage is always contiguous row-major; views (reshape, flatten, unflatten) share the storage
// of their base. Every tensor carries a device tag; kernels are chosen by it in the ops.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <vector>

#include <ember/kernels/cpu/elementwise.hpp>
#include <ember/kernels/cpu/random.hpp>

#include "core/device.hpp"
#include "core/dispatch.hpp"
#include "core/error.hpp"
#include "core/generator.hpp"
#include "core/shape.hpp"
#include "core/storage.hpp"
#include "core/threads.hpp"

namespace ember {

class Tensor;
struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor (null for leaves)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories ----
  /// Uninitialised tensor of `shape` on `device`. `op` names the caller in error messages.
  /// Sizes must be positive (std::invalid_argument); a shape whose element count or byte size
  /// would overflow, or that needs more memory than the device has, throws ember::Error naming
  /// the op and the shape before anything is allocated (core/shape.hpp, core/storage.hpp).
  static Tensor empty(const Shape& shape, Device device = Device::cpu, const char* op = "empty") {
    for (int64_t d : shape)
      check_arg(d > 0, op, "sizes must be positive, got shape ", to_string(shape));
    const int64_t n = checked_numel(shape, op);
    auto impl = std::make_shared<TensorImpl>();
    try {
      impl->storage = std::make_shared<Storage>(n, device);
    } catch (const std::bad_alloc&) {
      throw Error(std::string(op) + ": cannot allocate a tensor of shape " + to_string(shape) +
                  " on " + device_name(device) + " (" + std::to_string(n) +
                  " floats): out of memory");
    } catch (const Error& e) {
      throw Error(std::string(op) + ": cannot allocate a tensor of shape " + to_string(shape) +
                  " on " + device_name(device) + " (" + std::to_string(n) + " floats): " +
                  e.what());
    }
    impl->shape = shape;
    return Tensor(impl);
  }

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  /// Size of dimension `dim` (negative counts from the end).
  int64_t size(int64_t dim) const {
    int d = normalize_dim(dim, this->dim());
    check_arg(d >= 0, "size", "dimension ", dim, " out of range for shape ", to_string(shape()));
    return shape()[d];
  }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t numel() const { return numel_of(shape()); }
  Device device() const { return impl().storage->device(); }
  bool is_cuda() const { return device() == Device::cuda; }

  /// Raw pointer to the first element (host memory for cpu, device memory for cuda).
  float* data() const { return impl().storage->data() + impl().offset; }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // ---- values ----
  /// The value of a one-element tensor (copies from the device if needed).
  float item() const {
    check_arg(numel() == 1, "item", "needs a tensor with one element, got shape ",
              to_string(shape()));
    return to_vector()[0];
  }
  /// All values, copied to a host vector in row-major order.
  std::vector<float> to_vector() const {
    std::vector<float> out(static_cast<size_t>(numel()));
    if (device() == Device::cpu)
      std::copy(data(), data() + numel(), out.begin());
    else
      detail::cuda("to_vector").memcpy_d2h(out.data(), data(), out.size() * sizeof(float));
    return out;
  }

  /// A copy on `device` (this tensor itself if it is already there). Differentiable, as in
  /// PyTorch: the gradient is copied back to this tensor's device (see ops/copy.hpp).
  Tensor to(Device device) const;
  /// A new tensor with the same values and its own storage; differentiable (identity gradient).
  Tensor clone() const;
  /// A tensor sharing this one's storage, cut from the autograd graph.
  Tensor detach() const {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = impl_->storage;
    impl->offset = impl_->offset;
    impl->shape = impl_->shape;
    return Tensor(impl);
  }
  /// Moves this tensor's data (and gradient) to `device` in place: every handle sees the move.
  /// Used by Module::to so that parameters keep their identity.
  void move_to_(Device device);

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool on = true) {
    check_arg(is_leaf() || on, "set_requires_grad", "only leaf tensors can stop requiring grad");
    impl().requires_grad = on;
    return *this;
  }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  /// The accumulated gradient (undefined until a backward pass reaches this leaf).
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  /// Sets .grad to zeros (keeping its storage) or, with set_to_none, drops it.
  void zero_grad(bool set_to_none = false);
  /// Reverse-mode pass from this tensor. Without `grad` it must hold a single element
  /// (gradient 1). The graph is released afterwards unless retain_graph.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  // ---- views ----
  Tensor reshape(const Shape& shape) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor unflatten(int64_t dim, const Shape& sizes) const;
  // layout (ops/layout.hpp): copies in ember, views in PyTorch (same values)
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  /// This tensor itself: ember tensors are always contiguous.
  Tensor contiguous() const { return *this; }

  TensorImpl& impl() const {
    if (!impl_) throw std::invalid_argument("ember: use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// ---- elementwise helpers used by factories (no autograd) ----
namespace detail {

inline void fill_(const Tensor& t, float value) {
  EMBER_DISPATCH("fill", t, fill, t.numel(), value, t.data());
}

/// Copies src's values into dst (same numel, any devices). Between devices this is a runtime
/// memcpy, not a kernel, so it is one of the device branches EMBER_DISPATCH does not own
/// (docs/architecture.md, "Backend dispatch").
inline void copy_(const Tensor& src, const Tensor& dst) {
  size_t bytes = static_cast<size_t>(src.numel()) * sizeof(float);
  if (!src.is_cuda() && !dst.is_cuda())
    cpu::copy(src.numel(), src.data(), dst.data());
  else if (src.is_cuda() && dst.is_cuda())
    cuda("copy").memcpy_d2d(dst.data(), src.data(), bytes);
  else if (src.is_cuda())
    cuda("copy").memcpy_d2h(dst.data(), src.data(), bytes);
  else
    cuda("copy").memcpy_h2d(dst.data(), src.data(), bytes);
}

}  // namespace detail

// ---- factories ----
inline Tensor empty(const Shape& shape, Device device = Device::cpu) {
  return Tensor::empty(shape, device);
}

namespace detail {
inline Tensor full_named(const char* op, const Shape& shape, float value, Device device) {
  Tensor t = Tensor::empty(shape, device, op);
  fill_(t, value);
  return t;
}
}  // namespace detail

inline Tensor full(const Shape& shape, float value, Device device = Device::cpu) {
  return detail::full_named("full", shape, value, device);
}
inline Tensor zeros(const Shape& shape, Device device = Device::cpu) {
  return detail::full_named("zeros", shape, 0.0f, device);
}
inline Tensor ones(const Shape& shape, Device device = Device::cpu) {
  return detail::full_named("ones", shape, 1.0f, device);
}
inline Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.device()); }
inline Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.device()); }

/// A tensor holding `values` (row-major) with `shape`; the counts must agree.
inline Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                          Device device = Device::cpu) {
  Tensor t = Tensor::empty(shape, Device::cpu, "from_vector");
  check_arg(static_cast<int64_t>(values.size()) == t.numel(), "from_vector", "got ",
            values.size(), " values for shape ", to_string(shape));
  std::copy(values.begin(), values.end(), t.data());
  return device == Device::cpu ? t : t.to(device);
}
/// A 1-D tensor holding `values`.
inline Tensor from_vector(const std::vector<float>& values, Device device = Device::cpu) {
  return from_vector(values, Shape{static_cast<int64_t>(values.size())}, device);
}
/// A rank-0 tensor holding one value.
inline Tensor scalar_tensor(float value, Device device = Device::cpu) {
  return full(Shape{}, value, device);
}

/// Uniform numbers in [0, 1) from `gen` (the same stream on every device).
inline Tensor rand(const Shape& shape, Generator& gen, Device device = Device::cpu) {
  Tensor t = Tensor::empty(shape, device, "rand");
  kernels::PhiloxState st = gen.reserve(t.numel());
  EMBER_DISPATCH("rand", t, rand_uniform, t.numel(), st, t.data());
  return t;
}
/// Standard normal numbers from `gen` (the same stream on every device).
inline Tensor randn(const Shape& shape, Generator& gen, Device device = Device::cpu) {
  Tensor t = Tensor::empty(shape, device, "randn");
  kernels::PhiloxState st = gen.reserve(t.numel());
  EMBER_DISPATCH("randn", t, rand_normal, t.numel(), st, t.data());
  return t;
}
inline Tensor rand(const Shape& shape, Device device = Device::cpu) {
  return rand(shape, default_generator(), device);
}
inline Tensor randn(const Shape& shape, Device device = Device::cpu) {
  return randn(shape, default_generator(), device);
}

// ---- member definitions that need the factories ----
inline void Tensor::move_to_(Device device) {
  if (device == this->device()) return;
  Tensor moved = Tensor::empty(shape(), device);
  detail::copy_(*this, moved);
  impl().storage = moved.impl().storage;
  impl().offset = 0;
  if (impl().grad) Tensor(impl().grad).move_to_(device);
}

inline void Tensor::zero_grad(bool set_to_none) {
  if (!impl().grad) return;
  if (set_to_none)
    impl().grad.reset();
  else
    detail::fill_(Tensor(impl().grad), 0.0f);
}

/// Prints "tensor(shape=[2, 3], device=cpu)" followed by up to `max_values` values.
inline std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  os << "tensor(shape=" << to_string(t.shape()) << ", device=" << t.device();
  if (t.requires_grad()) os << ", requires_grad";
  os << ")\n[";
  std::vector<float> v = t.to_vector();
  const size_t max_values = 64;
  int64_t row = t.dim() > 0 ? t.size(-1) : 1;
  for (size_t i = 0; i < v.size() && i < max_values; ++i) {
    if (i > 0) os << ((i % row == 0) ? "\n " : " ");
    os << std::setw(9) << std::setprecision(4) << v[i];
  }
  if (v.size() > max_values) os << " ... (" << v.size() << " values)";
  return os << "]";
}

}  // namespace ember

// The members declared above and defined with autograd (backward, to, clone, reshape, ...).
// autograd.hpp includes ops/copy.hpp and ops/view.hpp at its end, so that it, too, is complete
// when included first (tests/CMakeLists.txt compiles every public header on its own).
#include "autograd.hpp"
