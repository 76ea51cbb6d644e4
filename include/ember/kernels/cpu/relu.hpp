// @file include/ember/kernels/cpu/relu.hpp
// @brief ReLU forward/backward on CPU, as PyTorch (clamp_min / threshold_backward).
//
// Forward: y = x < 0 ? 0 : x, so NaN propagates and -0 stays -0 (as torch.relu).
// Backward: dx = x <= 0 ? 0 : dy, i.e. dy where x > 0 (and, as PyTorch, where x is NaN).
#pragma once
#include <cstdint>

#include "elementwise.hpp"

namespace ember::cpu {

inline void relu_forward(int64_t n, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return x[i] < 0.0f ? 0.0f : x[i]; });
}

inline void relu_backward(int64_t n, const float* x, const float* dy, float* dx) {
  // dy is loaded unconditionally so the select vectorises (a conditional load would not).
  detail::parallel_map(n, dx, [=](int64_t i) {
    const float d = dy[i];
    return x[i] <= 0.0f ? 0.0f : d;
  });
}

}  // namespace ember::cpu
