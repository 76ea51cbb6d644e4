// @file include/ember/kernels/cpu/reduce_dims.hpp
// @brief Reductions over some dimensions on the CPU (sum, amax, argmax, and amax's backward),
//        twins of cuda/reduce_dims.cuh.
//
//   reduce_sum_dims(s, x, y)            y[o] = sum of the elements reduced into o
//   reduce_max_dims(s, x, y, index)     y[o] = their max (NaN if any is NaN); index (nullable):
//                                      the position of the first max among them, as a float
//   amax_backward(s, x, y, g, dx)       dx = g[o] / count * (x == y[o]), count = #(x == y[o]),
//                                      as PyTorch's amax backward (ties share the gradient)
// x is contiguous; y, index and g are contiguous over the kept dims (s.out_numel elements); dx
// has x's shape. The sum is added in the fixed order of binary_math.hpp (16 lanes, then a
// pairwise combine): the reduced elements of one output are never split between threads, so the
// result does not depend on the thread count, and the CUDA kernels, which compute the same
// order, agree bitwise. Two loops vectorise that order: reducing the innermost dim (contiguous
// runs, 16 lanes at a time) and keeping it (64 outputs at a time, one row per reduced element).
#pragma once
#include <algorithm>
#include <cstdint>

#include "../binary_math.hpp"
#include "../params.hpp"
#include "parallel.hpp"

namespace ember::cpu {

namespace reduce_dims_detail {

constexpr int L = kernels::kSumLanes;

/// Adds a contiguous run p[0, len) whose first element has flat reduced index j0 into the lanes.
inline void add_run(float* acc, const float* p, int64_t len, int64_t j0) {
  int64_t t = 0;
  int lane = static_cast<int>(j0 % L);
  for (; t < len && lane != 0; ++t, lane = (lane + 1) % L) acc[lane] += p[t];
  for (; t + L <= len; t += L)
    for (int l = 0; l < L; ++l) acc[l] += p[t + l];
  for (; t < len; ++t, ++lane) acc[lane] += p[t];
}

/// Offset of the q-th run of the innermost reduced dim (row-major over the other reduced dims).
inline int64_t outer_red_offset(const kernels::ReduceShape& s, int64_t q) {
  int64_t off = 0;
  for (int d = s.n_red - 2; d >= 0; --d) {
    const int64_t c = q % s.red_size[d];
    q /= s.red_size[d];
    off += c * s.red_stride[d];
  }
  return off;
}

/// The innermost input dim is reduced: each output adds runs of red_size[n_red - 1] elements.
inline void sum_inner(const kernels::ReduceShape& s, const float* x, float* y) {
  const int64_t len = s.red_size[s.n_red - 1];
  const int64_t runs = s.red_numel / len;
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / s.red_numel);
  parallel_for(s.out_numel, grain, [&](int64_t ob, int64_t oe) {
    for (int64_t o = ob; o < oe; ++o) {
      float acc[L] = {};
      const float* base = x + kernels::reduce_base(s, o);
      for (int64_t q = 0; q < runs; ++q) add_run(acc, base + outer_red_offset(s, q), len, q * len);
      y[o] = kernels::combine_lanes(acc);
    }
  });
}

/// The innermost input dim is kept: 64 neighbouring outputs at a time, one row per reduced
/// element, lane j % 16 of each.
inline void sum_outer(const kernels::ReduceShape& s, const float* x, float* y) {
  constexpr int64_t B = 64;
  const int64_t k_len = s.keep_size[s.n_keep - 1];
  const int64_t runs = s.out_numel / k_len;
  const int64_t blocks_per_run = (k_len + B - 1) / B;
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / (s.red_numel * B));
  parallel_for(runs * blocks_per_run, grain, [&](int64_t tb, int64_t te) {
    alignas(64) float acc[L][B];
    for (int64_t task = tb; task < te; ++task) {
      const int64_t run = task / blocks_per_run, k0 = (task % blocks_per_run) * B;
      const int64_t w = std::min(B, k_len - k0);
      const int64_t o0 = run * k_len + k0;
      const float* base = x + kernels::reduce_base(s, o0);
      for (int l = 0; l < L; ++l)
        for (int64_t k = 0; k < B; ++k) acc[l][k] = 0.0f;
      kernels::ReduceCursor cur(s);
      for (int64_t j = 0; j < s.red_numel; ++j, cur.next()) {
        float* a = acc[j % L];
        const float* row = base + cur.off;
        for (int64_t k = 0; k < w; ++k) a[k] += row[k];
      }
      for (int h = L / 2; h >= 1; h /= 2)
        for (int t = 0; t < h; ++t)
          for (int64_t k = 0; k < w; ++k) acc[t][k] += acc[t + h][k];
      for (int64_t k = 0; k < w; ++k) y[o0 + k] = acc[0][k];
    }
  });
}

}  // namespace reduce_dims_detail

inline void reduce_sum_dims(const kernels::ReduceShape& s, const float* x, float* y) {
  if (s.red_stride[s.n_red - 1] == 1) {
    reduce_dims_detail::sum_inner(s, x, y);
  } else if (s.n_keep > 0 && s.keep_stride[s.n_keep - 1] == 1) {
    reduce_dims_detail::sum_outer(s, x, y);
  } else {
    parallel_for(s.out_numel, 1, [&](int64_t ob, int64_t oe) {
      for (int64_t o = ob; o < oe; ++o) y[o] = kernels::reduce_sum_one(s, x, o);
    });
  }
}

inline void reduce_max_dims(const kernels::ReduceShape& s, const float* x, float* y,
                            float* index) {
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / s.red_numel);
  parallel_for(s.out_numel, grain, [&](int64_t ob, int64_t oe) {
    for (int64_t o = ob; o < oe; ++o) {
      int64_t at = 0;
      y[o] = kernels::reduce_max_one(s, x, o, index ? &at : nullptr);
      if (index) index[o] = static_cast<float>(at);
    }
  });
}

inline void amax_backward(const kernels::ReduceShape& s, const float* x, const float* y,
                          const float* g, float* dx) {
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / s.red_numel);
  parallel_for(s.out_numel, grain, [&](int64_t ob, int64_t oe) {
    for (int64_t o = ob; o < oe; ++o) {
      const int64_t base = kernels::reduce_base(s, o);
      int64_t count = 0;
      kernels::ReduceCursor cur(s);
      for (int64_t j = 0; j < s.red_numel; ++j, cur.next()) count += x[base + cur.off] == y[o];
      const float share = g[o] / static_cast<float>(count);
      kernels::ReduceCursor w(s);
      for (int64_t j = 0; j < s.red_numel; ++j, w.next())
        dx[base + w.off] = x[base + w.off] == y[o] ? share : 0.0f * share;
    }
  });
}

}  // namespace ember::cpu
