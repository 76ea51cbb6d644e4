// @file include/ember/kernels/cpu/layout.hpp
// @brief Layout kernels on the CPU: the general permute copy (transpose, permute,
//        pixel_shuffle, pixel_unshuffle) and one_hot's fill.
//
//   permute_copy(p, x, y)          y[o] = x[sum_d o_d * p.in_strides[d]], (o_0..o_{rank-1}) the
//                                  row-major multi-index of o in p.out_sizes (params.hpp)
//   one_hot_forward(n, c, idx, y)  y[i*c + k] = (idx[i] == k) ? 1 : 0, i < n, k < c
// Pure data movement: bitwise equal to the CUDA twins (kernels/cuda/layout.cuh). Parallelised
// over the flat output index; each range decomposes its first index once and then advances the
// multi-index like an odometer. x and y must not overlap.
#pragma once
#include <cstdint>

#include "../params.hpp"
#include "parallel.hpp"

namespace ember::cpu {

inline void permute_copy(const kernels::PermuteParams& p, const float* x, float* y) {
  if (p.n <= 0) return;
  const int r = p.rank;
  parallel_for(p.n, int64_t(1) << 14, [&](int64_t b, int64_t e) {
    int64_t idx[kernels::kMaxPermuteRank] = {};
    int64_t rem = b, src = 0;
    for (int d = r - 1; d >= 0; --d) {
      idx[d] = rem % p.out_sizes[d];
      rem /= p.out_sizes[d];
      src += idx[d] * p.in_strides[d];
    }
    if (r == 0) {  // a rank-0 tensor: one element
      for (int64_t o = b; o < e; ++o) y[o] = x[o];
      return;
    }
    const int last = r - 1;
    const int64_t inner = p.out_sizes[last], inner_stride = p.in_strides[last];
    int64_t o = b;
    while (o < e) {
      // The run along the last output dimension.
      const int64_t len = (inner - idx[last]) < (e - o) ? (inner - idx[last]) : (e - o);
      const float* s = x + src;
      float* dst = y + o;
      for (int64_t k = 0; k < len; ++k) dst[k] = s[k * inner_stride];
      o += len;
      src += len * inner_stride;
      idx[last] += len;
      // Carry into the outer dimensions.
      for (int d = last; d > 0 && idx[d] == p.out_sizes[d]; --d) {
        src -= idx[d] * p.in_strides[d];
        idx[d] = 0;
        ++idx[d - 1];
        src += p.in_strides[d - 1];
      }
    }
  });
}

inline void one_hot_forward(int64_t n, int64_t num_classes, const float* idx, float* y) {
  if (n <= 0 || num_classes <= 0) return;
  parallel_for(n * num_classes, int64_t(1) << 15, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const int64_t i = o / num_classes, k = o - i * num_classes;
      y[o] = static_cast<int64_t>(idx[i]) == k ? 1.0f : 0.0f;
    }
  });
}

}  // namespace ember::cpu
