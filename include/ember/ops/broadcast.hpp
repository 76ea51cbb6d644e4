// @file include/ember/ops/broadcast.hpp
// @brief Broadcasting: PyTorch's shape rule, the merged-shape descriptors the broadcast and
//        reduction kernels take, sum_to (a gradient summed back to an input's shape), and the
//        ops expand and where.
//
// Broadcasting (torch's rule, any rank): shapes are aligned at their last dims; each pair of sizes
// must be equal or one of them 1; the result takes the larger. The kernels never materialise a
// broadcast operand: they read it with stride 0 along its broadcast dims. Before a launch the
// shapes are merged (dims of size 1 in the output dropped, neighbouring dims that every operand
// reads contiguously joined), so an (N, C, 1, 1) + (N, C, H, W) add is a 2-dim problem.
#pragma once
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include <ember/kernels/cpu/broadcast.hpp>
#include <ember/kernels/cpu/reduce_dims.hpp>

#include "common.hpp"
#include "view.hpp"

namespace ember {

namespace detail {

/// The broadcast of two shapes, or ember::Error naming the op, both shapes and the first
/// dimension (counted in the result) where they differ.
inline Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b,
                              const char* a_name = "a", const char* b_name = "b") {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t sa = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t sb = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    check_arg(sa == sb || sa == 1 || sb == 1, op, "shapes do not broadcast: ", a_name, " ",
              to_string(a), ", ", b_name, " ", to_string(b), " (size ", sa, " vs ", sb,
              " at dimension ", i, " of the result)");
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

/// The merged sizes and strides with which `operands` (each broadcastable to `out`) are read
/// into a contiguous output of shape `out`. Throws if more than kMaxMergedRank dims remain.
inline kernels::BroadcastShape make_broadcast(const char* op, const Shape& out,
                                              const std::vector<Shape>& operands) {
  kernels::BroadcastShape s{};
  const size_t rank = out.size();
  const size_t k_n = operands.size();
  // Contiguous strides of each operand, aligned to `out`, 0 where it is broadcast.
  std::vector<std::array<int64_t, 3>> st(rank, {0, 0, 0});
  for (size_t k = 0; k < k_n; ++k) {
    const Shape& sh = operands[k];
    int64_t stride = 1;
    for (size_t i = sh.size(); i-- > 0;) {
      const size_t d = i + (rank - sh.size());
      st[d][k] = sh[i] == 1 ? 0 : stride;
      stride *= sh[i];
    }
  }
  int r = 0;
  for (size_t d = 0; d < rank; ++d) {
    if (out[d] == 1) continue;
    bool merge = r > 0;
    for (size_t k = 0; k < k_n && merge; ++k)
      merge = s.stride[k][r - 1] == st[d][k] * out[d];
    if (merge) {
      s.size[r - 1] *= out[d];
      for (size_t k = 0; k < k_n; ++k) s.stride[k][r - 1] = st[d][k];
      continue;
    }
    check_arg(r < kernels::kMaxMergedRank, op, "broadcasting ", to_string(out), " needs more than ",
              kernels::kMaxMergedRank, " dimensions after merging, which ember's kernels do not "
              "support");
    s.size[r] = out[d];
    for (size_t k = 0; k < k_n; ++k) s.stride[k][r] = st[d][k];
    ++r;
  }
  if (r == 0) {  // a one-element output
    s.size[0] = 1;
    r = 1;
  }
  s.rank = r;
  s.numel = numel_of(out);
  return s;
}

/// The merged descriptor of reducing the contiguous `in` over the dims flagged in `reduced`.
inline kernels::ReduceShape make_reduce(const char* op, const Shape& in,
                                        const std::vector<bool>& reduced) {
  kernels::ReduceShape s{};
  s.out_numel = 1;
  s.red_numel = 1;
  int last_kind = -1;  // 0 kept, 1 reduced
  int64_t stride = numel_of(in);
  for (size_t d = 0; d < in.size(); ++d) {
    stride /= in[d];
    if (in[d] == 1) continue;
    const int kind = reduced[d] ? 1 : 0;
    int& n = kind ? s.n_red : s.n_keep;
    int64_t* sizes = kind ? s.red_size : s.keep_size;
    int64_t* strides = kind ? s.red_stride : s.keep_stride;
    (kind ? s.red_numel : s.out_numel) *= in[d];
    if (kind == last_kind) {  // contiguous with the previous dim of the same kind: join them
      sizes[n - 1] *= in[d];
      strides[n - 1] = stride;
      continue;
    }
    check_arg(n < kernels::kMaxMergedRank, op, "reducing ", to_string(in),
              " needs more than ", kernels::kMaxMergedRank, " alternating kept and reduced "
              "dimensions, which ember's kernels do not support");
    sizes[n] = in[d];
    strides[n] = stride;
    ++n;
    last_kind = kind;
  }
  if (s.n_red == 0) {  // only dims of size 1 are reduced: one element per output
    s.n_red = 1;
    s.red_size[0] = 1;
    s.red_stride[0] = 1;
  }
  return s;
}

/// `g` summed over the dims in which `shape` was broadcast to g's shape (no autograd).
inline Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const Shape& gs = g.shape();
  const size_t lead = gs.size() - shape.size();
  std::vector<bool> reduced(gs.size(), false);
  bool any = false;
  for (size_t d = 0; d < gs.size(); ++d) {
    reduced[d] = d < lead || (shape[d - lead] == 1 && gs[d] != 1);
    any = any || (reduced[d] && gs[d] != 1);
  }
  if (!any) return make_view(g, shape, "sum_to");
  const kernels::ReduceShape rs = make_reduce("sum_to", gs, reduced);
  Tensor out = empty(shape, g.device());
  EMBER_DISPATCH("backward (sum to shape)", g, reduce_sum_dims, rs, g.data(), out.data());
  return out;
}

/// `x` (broadcastable to `shape`) copied out to `shape` (no autograd).
inline Tensor broadcast_to_copy(const char* op, const Tensor& x, const Shape& shape) {
  Tensor y = Tensor::empty(shape, x.device(), op);
  const kernels::BroadcastShape bs = make_broadcast(op, shape, {x.shape()});
  EMBER_DISPATCH(op, x, broadcast_copy, bs, x.data(), y.data());
  return y;
}

}  // namespace detail

/// `x` broadcast to `sizes`, as torch.Tensor.expand: -1 keeps a size; new dims may be added in
/// front; only dims of size 1 grow. ember's tensors have no strides, so the result is a copy
/// with the values of PyTorch's view; its gradient is summed back to x's shape.
inline Tensor expand(const Tensor& x, const Shape& sizes) {
  detail::check_tensors("expand", {{"x", &x}});
  check_arg(sizes.size() >= x.shape().size(), "expand", "the number of sizes (",
            sizes.size(), ") must be at least the tensor's rank: x ", to_string(x.shape()),
            ", sizes ", to_string(sizes));
  const size_t lead = sizes.size() - x.shape().size();
  Shape out(sizes.size());
  for (size_t d = 0; d < sizes.size(); ++d) {
    const int64_t have = d < lead ? -2 : x.shape()[d - lead];
    int64_t want = sizes[d];
    if (want == -1) {
      check_arg(have != -2, "expand", "-1 is not allowed for a new leading dimension: x ",
                to_string(x.shape()), ", sizes ", to_string(sizes));
      want = have;
    }
    check_arg(want > 0, "expand", "sizes must be positive (or -1), got ", to_string(sizes));
    check_arg(have == -2 || have == want || have == 1, "expand", "x ", to_string(x.shape()),
              " cannot be expanded to ", to_string(sizes), " (size ", have, " vs ", want,
              " at dimension ", d, ")");
    out[d] = want;
  }
  checked_numel(out, "expand");
  Tensor y = detail::broadcast_to_copy("expand", x, out);
  if (detail::needs_graph({&x})) {
    Shape in_shape = x.shape();
    detail::record("expand", y, {x}, [in_shape](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{detail::sum_to(g, in_shape)};
    });
  }
  return y;
}

/// `x` expanded to `other`'s shape (torch.Tensor.expand_as).
inline Tensor expand_as(const Tensor& x, const Tensor& other) { return expand(x, other.shape()); }

/// torch.where(condition, a, b): a where condition is nonzero, b elsewhere, all three broadcast
/// together. ember's tensors are float32, so `condition` is a float tensor read as true where
/// it is nonzero (NaN counts as true, as bool(NaN) in PyTorch). Differentiable in a and b.
inline Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  detail::check_tensors("where", {{"condition", &condition}, {"a", &a}, {"b", &b}});
  const Shape ab = detail::broadcast_shapes("where", a.shape(), b.shape());
  const Shape out = detail::broadcast_shapes("where", condition.shape(), ab, "condition", "a/b");
  checked_numel(out, "where");
  const kernels::BroadcastShape bs =
      detail::make_broadcast("where", out, {condition.shape(), a.shape(), b.shape()});
  Tensor y = Tensor::empty(out, a.device(), "where");
  EMBER_DISPATCH("where", a, where_forward, bs, condition.data(), a.data(), b.data(), y.data());
  if (detail::needs_graph({&a, &b})) {
    Tensor c = condition.detach();
    Shape a_shape = a.shape(), b_shape = b.shape();
    const kernels::BroadcastShape cs = detail::make_broadcast("where", out, {condition.shape()});
    detail::record("where", y, {c, a, b},
                   [c, cs, a_shape, b_shape](const Tensor& g, const std::vector<bool>& needs) {
                     Tensor ga = needs[1] ? empty_like(g) : Tensor();
                     Tensor gb = needs[2] ? empty_like(g) : Tensor();
                     EMBER_DISPATCH("where backward", g, where_backward, cs, c.data(), g.data(),
                                    ga.defined() ? ga.data() : nullptr,
                                    gb.defined() ? gb.data() : nullptr);
                     return std::vector<Tensor>{
                         Tensor(), ga.defined() ? detail::sum_to(ga, a_shape) : Tensor(),
                         gb.defined() ? detail::sum_to(gb, b_shape) : Tensor()};
                   });
  }
  return y;
}

/// torch.where(condition, a, scalar) and torch.where(condition, scalar, b).
inline Tensor where(const Tensor& condition, const Tensor& a, float b) {
  detail::check_tensors("where", {{"condition", &condition}, {"a", &a}});
  return where(condition, a, full(Shape{}, b, a.device()));
}
inline Tensor where(const Tensor& condition, float a, const Tensor& b) {
  detail::check_tensors("where", {{"condition", &condition}, {"b", &b}});
  return where(condition, full(Shape{}, a, b.device()), b);
}

}  // namespace ember
