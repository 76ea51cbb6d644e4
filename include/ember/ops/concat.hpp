// @file include/ember/ops/concat.hpp
// @brief cat(tensors, dim): concatenation along one dimension, as torch.cat.
//
// Contract: at least one tensor; all of the same rank, on the same device, with equal sizes in
// every dimension but `dim` (negative dims count from the end). Backward slices the gradient.
#pragma once
#include <ember/kernels/cpu/concat.hpp>

#include "common.hpp"

namespace ember {

inline Tensor cat(const std::vector<Tensor>& xs, int64_t dim = 0) {
  const char* op = "cat";
  check_arg(!xs.empty(), op, "needs at least one tensor");
  auto shapes = [&] {
    std::string s;
    for (const Tensor& t : xs)
      s += (s.empty() ? "" : ", ") +
           (t.defined() ? to_string(t.shape()) + " on " + device_name(t.device())
                        : std::string("undefined"));
    return s;
  };
  // The shapes are listed only when a check fails (building the list is O(#tensors)).
  for (const Tensor& t : xs)
    if (!t.defined()) check_arg(false, op, "undefined tensor among ", shapes());
  const Tensor& first = xs[0];
  int d = normalize_dim(dim, first.dim());
  if (d < 0) check_arg(false, op, "dim ", dim, " out of range for tensors ", shapes());
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  for (const Tensor& t : xs) {
    if (t.numel() <= 0) check_arg(false, op, "empty tensor among ", shapes());
    if (t.device() != first.device())
      check_arg(false, op, "tensors are on different devices: ", shapes());
    if (t.dim() != first.dim()) check_arg(false, op, "tensors have different ranks: ", shapes());
    for (int64_t i = 0; i < t.dim(); ++i)
      if (i != d && t.size(i) != first.size(i))
        check_arg(false, op, "sizes differ outside dim ", d, ": ", shapes());
    out_shape[d] = checked_size_add(out_shape[d], t.size(d));
    if (out_shape[d] < 0)
      throw Error(std::string(op) + ": the concatenated size along dim " + std::to_string(d) +
                  " overflows (tensors " + shapes() + ")");
  }
  checked_numel(out_shape, op);  // before the block products below
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= out_shape[i];
  for (int64_t i = d + 1; i < first.dim(); ++i) inner *= out_shape[i];
  const int64_t dst_block = out_shape[d] * inner;

  Tensor y = Tensor::empty(out_shape, first.device(), op);
  int64_t offset = 0;
  std::vector<int64_t> blocks;
  for (const Tensor& t : xs) {
    int64_t block = t.size(d) * inner;
    EMBER_DISPATCH(op, y, concat_copy, outer, block, dst_block, offset, t.data(), y.data());
    blocks.push_back(block);
    offset += block;
  }
  bool any = false;
  for (const Tensor& t : xs) any = any || detail::needs_graph({&t});
  if (any) {
    std::vector<Shape> in_shapes;
    for (const Tensor& t : xs) in_shapes.push_back(t.shape());
    detail::record(op, y, xs,
                   [outer, dst_block, blocks, in_shapes](const Tensor& gy,
                                                         const std::vector<bool>& needs) {
                     std::vector<Tensor> g(blocks.size());
                     int64_t off = 0;
                     for (size_t i = 0; i < blocks.size(); ++i) {
                       if (needs[i]) {
                         g[i] = empty(in_shapes[i], gy.device());
                         EMBER_DISPATCH("cat backward", gy, slice_copy, outer, dst_block, off,
                                        blocks[i], gy.data(), g[i].data());
                       }
                       off += blocks[i];
                     }
                     return g;
                   });
  }
  return y;
}

}  // namespace ember
