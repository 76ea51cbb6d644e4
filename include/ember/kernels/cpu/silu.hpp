// @file include/ember/kernels/cpu/silu.hpp
// @brief SiLU (swish) forward/backward on CPU, as PyTorch's silu / silu_backward.
//
// Forward: y = x / (1 + exp(-x)). Backward: with s = 1 / (1 + exp(-x)),
// dx = dy * s * (1 + x * (1 - s)). Both in float, in PyTorch's order of operations; exp is the C
// library's expf (the CUDA twin's expf may differ by an ulp: CPU and CUDA agree to ~1e-6, not
// bitwise).
#pragma once
#include <cmath>
#include <cstdint>

#include "elementwise.hpp"

namespace ember::cpu {

inline void silu_forward(int64_t n, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) {
    const float v = x[i];
    return v / (1.0f + std::exp(-v));
  });
}

inline void silu_backward(int64_t n, const float* x, const float* dy, float* dx) {
  detail::parallel_map(n, dx, [=](int64_t i) {
    const float v = x[i];
    const float s = 1.0f / (1.0f + std::exp(-v));
    return dy[i] * s * (1.0f + v * (1.0f - s));
  });
}

}  // namespace ember::cpu
