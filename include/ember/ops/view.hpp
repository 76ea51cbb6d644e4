// @file include/ember/ops/view.hpp
// @brief reshape, flatten, unflatten: views that share storage with their input.
//
// Contract: the element count is unchanged (reshape accepts one -1 entry to infer a size); the
// result shares the input's storage; backward reshapes the gradient back (no copy).
#pragma once
#include "../tensor.hpp"

namespace ember {

namespace detail {

inline Tensor make_view(const Tensor& x, const Shape& shape, const char* op) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.storage();
  impl->offset = x.impl().offset;
  impl->shape = shape;
  Tensor out(impl);
  if (needs_graph({&x})) {
    Shape in_shape = x.shape();
    record(op, out, {x}, [in_shape, op](const Tensor& gy, const std::vector<bool>&) {
      return std::vector<Tensor>{make_view(gy, in_shape, op)};
    });
  }
  return out;
}

}  // namespace detail

/// A view of `x` with `shape` (one entry may be -1, inferred).
inline Tensor reshape(const Tensor& x, Shape shape) {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      check_arg(infer < 0, "reshape", "only one dimension may be -1, got ", to_string(shape));
      infer = static_cast<int>(i);
    } else {
      check_arg(shape[i] > 0, "reshape", "invalid size in ", to_string(shape), " for input ",
                to_string(x.shape()));
      known = checked_size_mul(known, shape[i]);
      if (known < 0)
        throw Error("reshape: shape " + to_string(shape) + " has too many elements (the product "
                    "of its sizes overflows int64) for input " + to_string(x.shape()));
    }
  }
  if (infer >= 0) {
    check_arg(x.numel() % known == 0, "reshape", "cannot view ", to_string(x.shape()), " as ",
              to_string(shape));
    shape[infer] = x.numel() / known;
  }
  check_arg(numel_of(shape) == x.numel(), "reshape", "cannot view ", to_string(x.shape()), " (",
            x.numel(), " elements) as ", to_string(shape));
  return detail::make_view(x, shape, "reshape");
}

/// Merges dimensions start_dim..end_dim into one (like torch.flatten).
inline Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1) {
  int64_t r = x.dim();
  if (r == 0) return detail::make_view(x, Shape{1}, "flatten");
  int s = normalize_dim(start_dim, r), e = normalize_dim(end_dim, r);
  check_arg(s >= 0 && e >= 0 && s <= e, "flatten", "invalid dims (", start_dim, ", ", end_dim,
            ") for shape ", to_string(x.shape()));
  Shape out(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int i = s; i <= e; ++i) merged *= x.shape()[i];
  out.push_back(merged);
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  return detail::make_view(x, out, "flatten");
}

/// Splits dimension `dim` into `sizes` (like torch.unflatten; one size may be -1).
inline Tensor unflatten(const Tensor& x, int64_t dim, Shape sizes) {
  int d = normalize_dim(dim, x.dim());
  check_arg(d >= 0, "unflatten", "dim ", dim, " out of range for shape ", to_string(x.shape()));
  check_arg(!sizes.empty(), "unflatten", "sizes must not be empty");
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == -1 && infer < 0) {
      infer = static_cast<int>(i);
    } else {
      check_arg(sizes[i] > 0, "unflatten", "invalid sizes ", to_string(sizes), " for shape ",
                to_string(x.shape()));
      known = checked_size_mul(known, sizes[i]);
      if (known < 0)
        throw Error("unflatten: sizes " + to_string(sizes) + " have too many elements (their "
                    "product overflows int64) for shape " + to_string(x.shape()));
    }
  }
  if (infer >= 0) {
    check_arg(x.shape()[d] % known == 0, "unflatten", "cannot split dim ", d, " of ",
              to_string(x.shape()), " into ", to_string(sizes));
    sizes[infer] = x.shape()[d] / known;
  }
  check_arg(numel_of(sizes) == x.shape()[d], "unflatten", "sizes ", to_string(sizes),
            " do not multiply to ", x.shape()[d], " (dim ", d, " of ", to_string(x.shape()), ")");
  Shape out(x.shape().begin(), x.shape().begin() + d);
  out.insert(out.end(), sizes.begin(), sizes.end());
  out.insert(out.end(), x.shape().begin() + d + 1, x.shape().end());
  return detail::make_view(x, out, "unflatten");
}

inline Tensor Tensor::reshape(const Shape& shape) const { return ember::reshape(*this, shape); }
inline Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  return ember::flatten(*this, start_dim, end_dim);
}
inline Tensor Tensor::unflatten(int64_t dim, const Shape& sizes) const {
  return ember::unflatten(*this, dim, sizes);
}

}  // namespace ember
