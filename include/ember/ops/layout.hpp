// @file include/ember/ops/layout.hpp
// @brief Layout and indexing (#12 item 5): transpose, permute, contiguous, narrow, select,
//        split, chunk, stack, pixel_shuffle, pixel_unshuffle, as the torch functions of the
//        same names.
//
// Contract: ember tensors are always contiguous (no strides), so the ops that are views in
// PyTorch (transpose, permute, narrow, select, split, chunk) return COPIES here, holding the same
// values as PyTorch's views: writing into a result does not change the input. contiguous()
// returns the tensor itself. ember has no empty tensors, so a result that would have a size 0
// (narrow/split with length 0) is refused with a message saying so. Negative dims count from the
// end; negative start/index count from the end of the dim, as in PyTorch.
// Kernels: permute_copy (kernels/cpu/layout.hpp, kernels/cuda/layout.cuh) for transpose,
// permute and pixel_(un)shuffle; slice_copy / concat_copy (kernels/cpu/concat.hpp) for
// narrow/select and their backward. Backward: permute -> the inverse permute; narrow/select ->
// a zero-filled gradient of the input's shape with the slice's gradient written in; stack ->
// each input gets its slice (cat's backward); split/chunk -> per piece as narrow.
#pragma once
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include <ember/kernels/cpu/concat.hpp>
#include <ember/kernels/cpu/layout.hpp>

#include "common.hpp"
#include "concat.hpp"
#include "view.hpp"

namespace ember {

namespace detail {

/// "[0, 2, 1]" for error messages.
inline std::string dims_string(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

/// y = x.permute(perm) as a contiguous copy; perm is a normalised permutation of x's dims.
inline Tensor permute_impl(const Tensor& x, const std::vector<int>& perm, const char* op) {
  const int r = static_cast<int>(x.dim());
  kernels::PermuteParams p{};
  p.rank = r;
  p.n = x.numel();
  std::vector<int64_t> in_stride(size_t(r), 1);
  for (int d = r - 2; d >= 0; --d) in_stride[size_t(d)] = in_stride[size_t(d) + 1] * x.size(d + 1);
  Shape out_shape(static_cast<size_t>(r));
  for (int d = 0; d < r; ++d) {
    out_shape[size_t(d)] = x.size(perm[size_t(d)]);
    p.out_sizes[d] = out_shape[size_t(d)];
    p.in_strides[d] = in_stride[size_t(perm[size_t(d)])];
  }
  Tensor y = Tensor::empty(out_shape, x.device(), op);
  EMBER_DISPATCH(op, x, permute_copy, p, x.data(), y.data());
  if (needs_graph({&x})) {
    std::vector<int> inv(perm.size());
    for (size_t d = 0; d < perm.size(); ++d) inv[size_t(perm[d])] = static_cast<int>(d);
    record(op, y, {x}, [inv, op](const Tensor& gy, const std::vector<bool>&) {
      return std::vector<Tensor>{permute_impl(gy, inv, op)};
    });
  }
  return y;
}

/// The slice [start, start + length) of x along dim d (already checked), as a copy of `shape`
/// (x's shape with size `length` at d, or without d for select).
inline Tensor narrow_impl(const Tensor& x, int d, int64_t start, int64_t length,
                          const Shape& shape, const char* op) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  const int64_t src_block = x.size(d) * inner, dst_block = length * inner,
                offset = start * inner;
  Tensor y = Tensor::empty(shape, x.device(), op);
  EMBER_DISPATCH(op, x, slice_copy, outer, src_block, offset, dst_block, x.data(), y.data());
  if (needs_graph({&x})) {
    Shape in_shape = x.shape();
    const std::string what = std::string(op) + " backward";
    record(op, y, {x},
           [in_shape, outer, src_block, dst_block, offset, what](const Tensor& gy,
                                                                 const std::vector<bool>&) {
             Tensor g = zeros(in_shape, gy.device());
             EMBER_DISPATCH(what.c_str(), gy, concat_copy, outer, dst_block, src_block, offset,
                            gy.data(), g.data());
             return std::vector<Tensor>{g};
           });
  }
  return y;
}

/// dim normalised for an op on x, or a check_arg error naming the op, the dim and the shape.
inline int layout_dim(const char* op, const Tensor& x, int64_t dim) {
  const int d = normalize_dim(dim, x.dim());
  check_arg(d >= 0, op, "dim ", dim, " out of range for shape ", to_string(x.shape()),
            " (expected in [", -x.dim(), ", ", x.dim() - 1, "])");
  return d;
}

}  // namespace detail

/// x with its dims permuted: result dim i is x's dim dims[i] (torch.permute). A copy in ember
/// (a view in PyTorch), same values. dims must be a permutation of x's dims (negative entries
/// count from the end); rank <= 8. Backward: the inverse permute of the gradient.
inline Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  const char* op = "permute";
  detail::check_tensors(op, {{"x", &x}});
  const int64_t r = x.dim();
  check_arg(r <= kernels::kMaxPermuteRank, op, "supports at most ", kernels::kMaxPermuteRank,
            " dims, got shape ", to_string(x.shape()));
  check_arg(static_cast<int64_t>(dims.size()) == r, op, "dims ", detail::dims_string(dims),
            " do not match the ", r, " dims of shape ", to_string(x.shape()));
  std::vector<int> perm(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int d = normalize_dim(dims[i], r);
    check_arg(d >= 0 && !seen[size_t(d)], op, "dims ", detail::dims_string(dims),
              " are not a permutation of the dims of shape ", to_string(x.shape()));
    seen[size_t(d)] = true;
    perm[i] = d;
  }
  return detail::permute_impl(x, perm, op);
}

/// x with dims dim0 and dim1 swapped (torch.transpose). A copy in ember (a view in PyTorch),
/// same values. Backward: the same transpose of the gradient.
inline Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  const char* op = "transpose";
  detail::check_tensors(op, {{"x", &x}});
  if (x.dim() == 0) {  // PyTorch accepts dims 0 and -1 of a 0-dim tensor
    check_arg((dim0 == 0 || dim0 == -1) && (dim1 == 0 || dim1 == -1), op, "dims (", dim0, ", ",
              dim1, ") out of range for a 0-dim tensor (expected in [-1, 0])");
    return detail::permute_impl(x, {}, op);
  }
  const int a = normalize_dim(dim0, x.dim()), b = normalize_dim(dim1, x.dim());
  check_arg(a >= 0 && b >= 0, op, "dims (", dim0, ", ", dim1, ") out of range for shape ",
            to_string(x.shape()), " (expected in [", -x.dim(), ", ", x.dim() - 1, "])");
  check_arg(x.dim() <= kernels::kMaxPermuteRank, op, "supports at most ",
            kernels::kMaxPermuteRank, " dims, got shape ", to_string(x.shape()));
  std::vector<int> perm(size_t(x.dim()));
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[size_t(a)], perm[size_t(b)]);
  return detail::permute_impl(x, perm, op);
}

/// x itself: ember tensors are always contiguous (torch.Tensor.contiguous returns self when the
/// tensor already is).
inline Tensor contiguous(const Tensor& x) { return x; }

/// The slice [start, start + length) of x along dim (torch.narrow). A copy in ember (a view in
/// PyTorch), same values. start may be negative (counts from the end: start + size);
/// 0 <= start, 1 <= length, start + length <= size. Backward: zeros with the slice written in.
inline Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  const char* op = "narrow";
  detail::check_tensors(op, {{"x", &x}});
  check_arg(x.dim() > 0, op, "cannot be applied to a 0-dim tensor");
  const int d = detail::layout_dim(op, x, dim);
  const int64_t size = x.size(d);
  check_arg(start >= -size && start <= size, op, "start ", start, " out of range for dim ", d,
            " of size ", size, " (shape ", to_string(x.shape()), ")");
  const int64_t s = start < 0 ? start + size : start;
  check_arg(length >= 0, op, "length ", length, " must be non-negative (shape ",
            to_string(x.shape()), ")");
  check_arg(length <= size - s, op, "start (", start, ") + length (", length,
            ") exceeds dim ", d, " of size ", size, " (shape ", to_string(x.shape()), ")");
  check_arg(length > 0, op, "length 0 would give an empty tensor, which ember does not have "
            "(shape ", to_string(x.shape()), ", dim ", d, ")");
  Shape out = x.shape();
  out[size_t(d)] = length;
  return detail::narrow_impl(x, d, s, length, out, op);
}

/// x[..., index, ...] along dim, dropping that dim (torch.select). A copy in ember (a view in
/// PyTorch), same values. index may be negative (counts from the end). Backward: zeros with the
/// slice written in.
inline Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  const char* op = "select";
  detail::check_tensors(op, {{"x", &x}});
  check_arg(x.dim() > 0, op, "cannot be applied to a 0-dim tensor");
  const int d = detail::layout_dim(op, x, dim);
  const int64_t size = x.size(d);
  check_arg(index >= -size && index < size, op, "index ", index, " out of range for dim ", d,
            " of size ", size, " (shape ", to_string(x.shape()), ")");
  Shape out = x.shape();
  out.erase(out.begin() + d);
  return detail::narrow_impl(x, d, index < 0 ? index + size : index, 1, out, op);
}

/// x cut along dim into pieces of the given sizes, which must sum to the dim's size
/// (torch.split with a list). Each piece is a copy in ember (views in PyTorch); sizes must be
/// positive (ember has no empty tensors).
inline std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes,
                                 int64_t dim = 0) {
  const char* op = "split";
  detail::check_tensors(op, {{"x", &x}});
  check_arg(x.dim() > 0, op, "cannot be applied to a 0-dim tensor");
  const int d = detail::layout_dim(op, x, dim);
  int64_t total = 0;
  for (int64_t s : sizes) {
    check_arg(s > 0, op, "split sizes ", detail::dims_string(sizes),
              " must be positive (ember has no empty tensors; shape ", to_string(x.shape()), ")");
    total = checked_size_add(total, s);
  }
  check_arg(total == x.size(d), op, "split sizes ", detail::dims_string(sizes), " sum to ",
            total, ", but dim ", d, " of shape ", to_string(x.shape()), " has size ", x.size(d));
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape[size_t(d)] = s;
    out.push_back(detail::narrow_impl(x, d, start, s, shape, op));
    start += s;
  }
  return out;
}

/// x cut along dim into pieces of split_size (the last one smaller if the size is not
/// divisible), as torch.split with an int: ceil(size / split_size) pieces. Copies in ember.
inline std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0) {
  const char* op = "split";
  detail::check_tensors(op, {{"x", &x}});
  check_arg(x.dim() > 0, op, "cannot be applied to a 0-dim tensor");
  const int d = detail::layout_dim(op, x, dim);
  check_arg(split_size > 0, op, "split_size ", split_size, " must be positive (shape ",
            to_string(x.shape()), ")");
  const int64_t size = x.size(d);
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < size; start += split_size)
    sizes.push_back(std::min(split_size, size - start));
  return split(x, sizes, dim);
}

/// x cut along dim into at most `chunks` pieces of ceil(size / chunks) each, the last one
/// smaller; possibly fewer than `chunks` pieces (torch.chunk: size 5, 4 chunks -> 2, 2, 1).
/// Copies in ember (views in PyTorch).
inline std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0) {
  const char* op = "chunk";
  detail::check_tensors(op, {{"x", &x}});
  check_arg(chunks > 0, op, "chunks ", chunks, " must be positive (shape ", to_string(x.shape()),
            ")");
  check_arg(x.dim() > 0, op, "cannot be applied to a 0-dim tensor");
  const int d = detail::layout_dim(op, x, dim);
  const int64_t size = x.size(d);
  return split(x, (size + chunks - 1) / chunks, d);
}

/// The tensors joined along a new dim inserted at `dim` (torch.stack): all must have the same
/// shape and device; dim in [-(rank + 1), rank]. Backward: each input gets its slice.
inline Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0) {
  const char* op = "stack";
  check_arg(!xs.empty(), op, "needs at least one tensor");
  auto shapes = [&] {
    std::string s;
    for (const Tensor& t : xs)
      s += (s.empty() ? "" : ", ") +
           (t.defined() ? to_string(t.shape()) + " on " + device_name(t.device())
                        : std::string("undefined"));
    return s;
  };
  for (const Tensor& t : xs)
    if (!t.defined()) check_arg(false, op, "undefined tensor among ", shapes());
  const Tensor& first = xs[0];
  const int d = normalize_dim(dim, first.dim() + 1);
  if (d < 0)
    check_arg(false, op, "dim ", dim, " out of range for tensors ", shapes(), " (expected in [",
              -(first.dim() + 1), ", ", first.dim(), "])");
  for (const Tensor& t : xs) {
    if (t.shape() != first.shape())
      check_arg(false, op, "expects tensors of equal shape, got ", shapes());
    if (t.device() != first.device())
      check_arg(false, op, "tensors are on different devices: ", shapes());
  }
  Shape s = first.shape();
  s.insert(s.begin() + d, 1);
  std::vector<Tensor> views;
  for (const Tensor& t : xs) views.push_back(reshape(t, s));
  return cat(views, d);
}

/// (*, C*r*r, H, W) -> (*, C, H*r, W*r) as torch.nn.functional.pixel_shuffle:
/// out[n, c, h*r + i, w*r + j] = in[n, c*r*r + i*r + j, h, w]. Backward: pixel_unshuffle.
inline Tensor pixel_shuffle(const Tensor& x, int64_t upscale_factor) {
  const char* op = "pixel_shuffle";
  detail::check_tensors(op, {{"x", &x}});
  const int64_t r = upscale_factor;
  check_arg(x.dim() >= 3, op, "expects at least 3 dims (*, C, H, W), got shape ",
            to_string(x.shape()));
  check_arg(r > 0, op, "upscale_factor ", r, " must be positive (shape ", to_string(x.shape()),
            ")");
  const int64_t k = x.dim();
  const int64_t C = x.size(k - 3), H = x.size(k - 2), W = x.size(k - 1);
  check_arg(C % (r * r) == 0, op, "the channels (", C, ", dim ", k - 3, " of shape ",
            to_string(x.shape()), ") are not divisible by upscale_factor^2 = ", r * r);
  const int64_t B = x.numel() / (C * H * W), oc = C / (r * r);
  Tensor v = reshape(x, Shape{B, oc, r, r, H, W});
  Tensor y = detail::permute_impl(v, {0, 1, 4, 2, 5, 3}, op);
  Shape out(x.shape().begin(), x.shape().end() - 3);
  out.insert(out.end(), {oc, H * r, W * r});
  return reshape(y, out);
}

/// (*, C, H*r, W*r) -> (*, C*r*r, H, W) as torch.nn.functional.pixel_unshuffle:
/// out[n, c*r*r + i*r + j, h, w] = in[n, c, h*r + i, w*r + j] (einops
/// "b c (h p1) (w p2) -> b (c p1 p2) h w"). Backward: pixel_shuffle.
inline Tensor pixel_unshuffle(const Tensor& x, int64_t downscale_factor) {
  const char* op = "pixel_unshuffle";
  detail::check_tensors(op, {{"x", &x}});
  const int64_t r = downscale_factor;
  check_arg(x.dim() >= 3, op, "expects at least 3 dims (*, C, H, W), got shape ",
            to_string(x.shape()));
  check_arg(r > 0, op, "downscale_factor ", r, " must be positive (shape ",
            to_string(x.shape()), ")");
  const int64_t k = x.dim();
  const int64_t C = x.size(k - 3), H = x.size(k - 2), W = x.size(k - 1);
  check_arg(H % r == 0 && W % r == 0, op, "height ", H, " and width ", W, " of shape ",
            to_string(x.shape()), " must be divisible by downscale_factor ", r);
  const int64_t B = x.numel() / (C * H * W), oh = H / r, ow = W / r;
  Tensor v = reshape(x, Shape{B, C, oh, r, ow, r});
  Tensor y = detail::permute_impl(v, {0, 1, 3, 5, 2, 4}, op);
  Shape out(x.shape().begin(), x.shape().end() - 3);
  out.insert(out.end(), {C * r * r, oh, ow});
  return reshape(y, out);
}

inline Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  return ember::transpose(*this, dim0, dim1);
}
inline Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  return ember::permute(*this, dims);
}

}  // namespace ember
