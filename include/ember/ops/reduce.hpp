// @file include/ember/ops/reduce.hpp
// @brief Reductions: sum and mean of all elements, and sum, mean, amax, var, argmax over
//        dimensions (torch.sum(x, dim, keepdim) and friends).
//
// Contract: any non-empty tensor. `dims` may be negative and must be distinct; an empty list
// reduces every dim (as PyTorch's sum(x, dim=[])). keepdim keeps the reduced dims with size 1.
// Results are computed in a fixed order (kernels/binary_math.hpp): the same bits for any thread
// count, and on the CPU and CUDA. Backward: sum broadcasts the gradient back, mean also divides
// it by the count, amax shares it among the maxima (as PyTorch), var through its formula
// sum((x - mean)^2) / (n - 1) (or / n without Bessel's correction); argmax has no gradient.
// argmax returns indices as a float tensor of exact integers (ember's tensors are float32).
#pragma once
#include <optional>
#include <vector>

#include <ember/kernels/cpu/reduce.hpp>
#include <ember/kernels/cpu/reduce_dims.hpp>

#include "broadcast.hpp"
#include "common.hpp"
#include "elementwise.hpp"
#include "unary.hpp"

namespace ember {

namespace detail {

inline Tensor reduce_all(const char* op, const Tensor& x, float factor) {
  check_tensors(op, {{"x", &x}});
  Tensor y = empty(Shape{}, x.device());
  EMBER_DISPATCH(op, x, sum, x.numel(), x.data(), y.data());
  if (factor != 1.0f) EMBER_DISPATCH(op, x, scale, 1, factor, y.data(), y.data());
  if (needs_graph({&x})) {
    Shape in_shape = x.shape();
    record(op, y, {x}, [in_shape, factor, op](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty(in_shape, g.device());
      EMBER_DISPATCH(op, g, broadcast_scalar, gx.numel(), g.data(), factor, gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace detail

/// Sum of all elements.
inline Tensor sum(const Tensor& x) { return detail::reduce_all("sum", x, 1.0f); }

/// Mean of all elements.
inline Tensor mean(const Tensor& x) {
  return detail::reduce_all("mean", x, x.defined() ? 1.0f / static_cast<float>(x.numel()) : 1.0f);
}

namespace detail {

/// Which dims of x a reduction over `dims` reduces, its output shape (with and without
/// keepdim) and its merged descriptor.
struct DimReduction {
  std::vector<bool> reduced;
  Shape kept_shape;  // keepdim = true
  Shape out_shape;   // as requested
  int64_t count = 1; // elements reduced into each output
  kernels::ReduceShape rs{};
};

inline DimReduction dim_reduction(const char* op, const Tensor& x,
                                  const std::vector<int64_t>& dims, bool keepdim) {
  check_tensors(op, {{"x", &x}});
  DimReduction r;
  const int64_t rank = x.dim();
  r.reduced.assign(static_cast<size_t>(rank), dims.empty());
  for (int64_t d : dims) {
    const int nd = normalize_dim(d, rank);
    check_arg(nd >= 0, op, "dimension ", d, " out of range for x ", to_string(x.shape()),
              " (rank ", rank, ")");
    check_arg(!r.reduced[nd], op, "dimension ", d, " appears more than once in the dims of x ",
              to_string(x.shape()));
    r.reduced[nd] = true;
  }
  for (int64_t d = 0; d < rank; ++d) {
    if (r.reduced[d]) r.count *= x.shape()[d];
    r.kept_shape.push_back(r.reduced[d] ? 1 : x.shape()[d]);
    if (!r.reduced[d] || keepdim) r.out_shape.push_back(r.reduced[d] ? 1 : x.shape()[d]);
  }
  r.rs = make_reduce(op, x.shape(), r.reduced);
  return r;
}

inline Tensor sum_dims(const char* op, const Tensor& x, const std::vector<int64_t>& dims,
                       bool keepdim, bool mean) {
  const DimReduction r = dim_reduction(op, x, dims, keepdim);
  Tensor y = Tensor::empty(r.out_shape, x.device(), op);
  EMBER_DISPATCH(op, x, reduce_sum_dims, r.rs, x.data(), y.data());
  const float count = static_cast<float>(r.count);
  if (mean)  // PyTorch: sum, then divide by the count
    EMBER_DISPATCH(op, x, scalar_forward, kernels::ScalarOp::div, y.numel(), y.data(), count,
                   0.0f, y.data());
  if (needs_graph({&x})) {
    const Shape in_shape = x.shape(), kept = r.kept_shape;
    record(op, y, {x}, [in_shape, kept, mean, count, op](const Tensor& g,
                                                        const std::vector<bool>&) {
      const kernels::BroadcastShape bs = make_broadcast(op, in_shape, {kept});
      Tensor gx = empty(in_shape, g.device());
      EMBER_DISPATCH(op, g, broadcast_copy, bs, g.data(), gx.data());
      if (mean)
        EMBER_DISPATCH(op, g, scalar_forward, kernels::ScalarOp::div, gx.numel(), gx.data(),
                       count, 0.0f, gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace detail

/// Sum over `dims` (torch.sum(x, dims, keepdim)).
inline Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false) {
  return detail::sum_dims("sum", x, dims, keepdim, false);
}
inline Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false) {
  return sum(x, std::vector<int64_t>{dim}, keepdim);
}

/// Mean over `dims` (torch.mean(x, dims, keepdim)): the sum divided by the count.
inline Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false) {
  return detail::sum_dims("mean", x, dims, keepdim, true);
}
inline Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false) {
  return mean(x, std::vector<int64_t>{dim}, keepdim);
}

/// Max over `dims` (torch.amax; all dims when empty): NaN if any element is NaN; the gradient
/// is shared equally among the elements equal to the max.
inline Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false) {
  const detail::DimReduction r = detail::dim_reduction("amax", x, dims, keepdim);
  Tensor y = Tensor::empty(r.out_shape, x.device(), "amax");
  EMBER_DISPATCH("amax", x, reduce_max_dims, r.rs, x.data(), y.data(), nullptr);
  if (detail::needs_graph({&x})) {
    Tensor sx = x.detach(), sy = y.detach();
    const kernels::ReduceShape rs = r.rs;
    detail::record("amax", y, {x}, [sx, sy, rs](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty_like(sx);
      EMBER_DISPATCH("amax backward", g, amax_backward, rs, sx.data(), sy.data(), g.data(),
                     gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}
inline Tensor amax(const Tensor& x, int64_t dim, bool keepdim = false) {
  return amax(x, std::vector<int64_t>{dim}, keepdim);
}

/// Index of the first maximum along `dim` (torch.argmax; over the flattened tensor without a
/// dim, giving shape [] or, with keepdim, all ones). NaN counts as the maximum. Returned as a
/// float tensor of exact integers; not differentiable.
inline Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt,
                     bool keepdim = false) {
  detail::check_tensors("argmax", {{"x", &x}});
  const std::vector<int64_t> dims = dim ? std::vector<int64_t>{*dim} : std::vector<int64_t>{};
  const detail::DimReduction r = detail::dim_reduction("argmax", x, dims, keepdim);
  Tensor values = Tensor::empty(r.out_shape, x.device(), "argmax");
  Tensor index = Tensor::empty(r.out_shape, x.device(), "argmax");
  EMBER_DISPATCH("argmax", x, reduce_max_dims, r.rs, x.data(), values.data(), index.data());
  return index;
}

/// Variance over `dims` (torch.var(x, dims, unbiased, keepdim)): sum((x - mean)^2) / (n - 1),
/// or / n when unbiased is false; n - 1 = 0 gives NaN (or inf), as PyTorch.
inline Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased = true,
                  bool keepdim = false) {
  const detail::DimReduction r = detail::dim_reduction("var", x, dims, keepdim);
  const Tensor m = mean(x, dims, /*keepdim=*/true);
  Tensor s = sum(square(x - m), dims, keepdim);
  return div(s, static_cast<float>(unbiased ? r.count - 1 : r.count));
}
inline Tensor var(const Tensor& x, int64_t dim, bool unbiased = true, bool keepdim = false) {
  return var(x, std::vector<int64_t>{dim}, unbiased, keepdim);
}
/// Variance of all elements, unbiased (torch.var(x)).
inline Tensor var(const Tensor& x) { return var(x, std::vector<int64_t>{}, true, false); }

}  // namespace ember
