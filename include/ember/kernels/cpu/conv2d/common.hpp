// @file include/ember/kernels/cpu/conv2d/common.hpp
// @brief Pieces every CPU conv2d engine shares: the shape alias, ordered partial-sum reduction,
//        per-channel bias and bias-gradient sums, round_up.
//
// Part of the CPU conv2d kernels; the engines and the path selection are described in
// include/ember/kernels/cpu/conv2d.hpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../params.hpp"
#include "../gemm.hpp"
#include "../parallel.hpp"
#include "../simd.hpp"

namespace ember::cpu::conv_detail {

using ember::kernels::Conv2dShape;

/// dw[i] += extra[p * wsz + i] for p = 0, 1, ..., count - 1 in that order (each element's sum
/// order is fixed, so the result does not depend on how the elements are spread over threads).
inline void add_partials(float* dw, const float* extra, int count, int64_t wsz) {
  if (count <= 0) return;
  parallel_for(wsz, int64_t(1) << 14, [&](int64_t b, int64_t e) {
    for (int p = 0; p < count; ++p) {
      const float* q = extra + p * wsz;
      for (int64_t i = b; i < e; ++i) dw[i] += q[i];
    }
  });
}

/// Adds b[k] to every element of channel k of an (N, K, P) tensor.
inline void add_channel_bias(int N, int K, int64_t P, const float* b, float* y) {
  if (!b) return;
  parallel_for(static_cast<int64_t>(N) * K, std::max<int64_t>(1, 16384 / std::max<int64_t>(P, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t nk = lo; nk < hi; ++nk) {
                   const float bk = b[nk % K];
                   float* yk = y + nk * P;
                   for (int64_t p = 0; p < P; ++p) yk[p] += bk;
                 }
               });
}

/// db[k] = sum over n, p of dy[n][k][p]; deterministic (fixed per-channel order).
inline void channel_sums(int N, int K, int64_t P, const float* dy, float* db) {
  parallel_for(K, 1, [&](int64_t kb, int64_t ke) {
    for (int64_t k = kb; k < ke; ++k) {
      // 16 interleaved lanes (vectorisable, fixed order), folded at the end.
      float lanes[16] = {};
      float tail = 0.f;
      const int64_t P16 = P / 16 * 16;
      for (int n = 0; n < N; ++n) {
        const float* d = dy + (static_cast<int64_t>(n) * K + k) * P;
        for (int64_t p = 0; p < P16; p += 16)
          for (int l = 0; l < 16; ++l) lanes[l] += d[p + l];
        for (int64_t p = P16; p < P; ++p) tail += d[p];
      }
      double acc = tail;
      for (int l = 0; l < 16; ++l) acc += lanes[l];
      db[k] = static_cast<float>(acc);
    }
  });
}

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

}  // namespace ember::cpu::conv_detail
