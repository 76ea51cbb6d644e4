// @file include/ember/ops/embedding.hpp
// @brief embedding(indices, weight, padding_idx): torch.nn.functional.embedding.
//
// indices: any shape, float32 holding exact integers in [0, num_embeddings) (ember's convention
// for integer data); weight [num_embeddings, embedding_dim]. Output: indices.shape + [dim], row
// indices[k] of weight for each k. A non-integer, non-finite or out-of-range index throws
// ember::Error naming "embedding", the index, its position and the shapes (the indices are
// copied to the host for this check when they are on CUDA). padding_idx (negative counts from
// the end, as PyTorch): that row gets no gradient. The backward to weight sums the rows'
// gradients in index order with no atomics (kernels/cpu/embedding.hpp, kernels/cuda/embedding.cuh),
// so it is deterministic and bitwise equal on the CPU and CUDA. indices get no gradient.
#pragma once
#include <cmath>
#include <optional>

#include <ember/kernels/cpu/embedding.hpp>

#include "common.hpp"

namespace ember {

inline Tensor embedding(const Tensor& indices, const Tensor& weight,
                        std::optional<int64_t> padding_idx = std::nullopt) {
  const char* op = "embedding";
  check_arg(indices.defined(), op, "indices is undefined");
  check_arg(weight.defined(), op, "weight is undefined");
  auto shapes = [&] {
    return "indices " + to_string(indices.shape()) + ", weight " + to_string(weight.shape());
  };
  check_arg(weight.dim() == 2, op, "weight must be 2-D [num_embeddings, embedding_dim] (",
            shapes(), ")");
  check_arg(indices.device() == weight.device(), op, "tensors are on different devices (",
            detail::describe({{"indices", &indices}, {"weight", &weight}}), ")");
  const int64_t num = weight.shape()[0], dim = weight.shape()[1];
  check_arg(num > 0 && dim > 0, op, "weight has no elements (", shapes(), ")");
  int64_t pad = -1;
  if (padding_idx) {
    check_arg(*padding_idx < num && *padding_idx >= -num, op, "padding_idx ", *padding_idx,
              " must be within num_embeddings ", num);
    pad = *padding_idx < 0 ? *padding_idx + num : *padding_idx;
  }
  const int64_t n = indices.numel();
  {
    std::vector<float> iv = indices.to_vector();
    for (int64_t k = 0; k < n; ++k) {
      const float v = iv[size_t(k)];
      check_arg(std::isfinite(v) && v == std::floor(v), op,
                "indices must hold integers (float32 tensors of exact integers), got ", v,
                " at position ", k, " (", shapes(), ")");
      check_arg(v >= 0 && v < float(num), op, "index ", int64_t(v), " at position ", k,
                " is out of range for num_embeddings ", num, " (", shapes(), ")");
    }
  }
  Shape out_shape = indices.shape();
  out_shape.push_back(dim);
  detail::check_kernel_sizes(op, shapes, {{"output size", {n, dim}}, {"weight size", {num, dim}}});
  Tensor y = Tensor::empty(out_shape, weight.device(), op);
  if (n > 0) EMBER_DISPATCH(op, weight, embedding_forward, n, dim, indices.data(), weight.data(),
                            y.data());
  if (detail::needs_graph({&weight})) {
    Tensor si = indices.detach();
    detail::record(op, y, {weight},
                   [si, n, num, dim, pad](const Tensor& g, const std::vector<bool>&) {
                     Tensor gw = empty(Shape{num, dim}, g.device());
                     EMBER_DISPATCH("embedding backward", g, embedding_backward, n, num, dim, pad,
                                    si.data(), g.data(), gw.data());
                     return std::vector<Tensor>{gw};
                   });
  }
  return y;
}

}  // namespace ember
