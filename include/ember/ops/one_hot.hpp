// @file include/ember/ops/one_hot.hpp
// @brief one_hot(indices, num_classes = -1), as torch.nn.functional.one_hot.
//
// Contract: ember's integer data are float32 tensors holding exact integers, so `indices` is a
// float32 tensor whose every value is an integer in [0, num_classes); the result has shape
// indices.shape + [num_classes] and holds 0 and 1 (float32; PyTorch's is int64).
// num_classes = -1 infers max(indices) + 1. A negative, non-integer (or non-finite) index, or
// one >= num_classes, throws std::invalid_argument naming the op, the value and the shape. The
// indices are read on the host for these checks (CUDA: one device-to-host copy, as PyTorch's
// own checks synchronise). Not differentiable (the result never requires grad).
// Kernel: one_hot_forward (kernels/cpu/layout.hpp, kernels/cuda/layout.cuh).
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include <ember/kernels/cpu/layout.hpp>

#include "common.hpp"

namespace ember {

inline Tensor one_hot(const Tensor& indices, int64_t num_classes = -1) {
  const char* op = "one_hot";
  detail::check_tensors(op, {{"indices", &indices}});
  check_arg(num_classes >= -1, op, "num_classes ", num_classes,
            " must be -1 (inferred) or positive (indices shape ", to_string(indices.shape()),
            ")");
  const std::vector<float> v = indices.detach().to_vector();
  float max_v = 0.0f;
  for (size_t i = 0; i < v.size(); ++i) {
    const float f = v[i];
    check_arg(std::isfinite(f) && f == std::floor(f), op,
              "indices must hold exact integers, got ", f, " at flat position ", i,
              " (indices shape ", to_string(indices.shape()), ")");
    check_arg(f >= 0.0f, op, "class values must be non-negative, got ", f, " at flat position ",
              i, " (indices shape ", to_string(indices.shape()), ")");
    max_v = std::max(max_v, f);
  }
  if (num_classes == -1) {
    check_arg(max_v < 2.0e9f, op, "the largest index ", max_v, " is too large");
    num_classes = static_cast<int64_t>(max_v) + 1;
  }
  check_arg(num_classes > 0 && static_cast<double>(max_v) < static_cast<double>(num_classes), op,
            "class values must be smaller than num_classes ", num_classes, ", got ", max_v,
            " (indices shape ", to_string(indices.shape()), ")");
  Shape out = indices.shape();
  out.push_back(num_classes);
  Tensor y = Tensor::empty(out, indices.device(), op);
  EMBER_DISPATCH(op, indices, one_hot_forward, indices.numel(), num_classes, indices.data(),
                 y.data());
  return y;
}

}  // namespace ember
