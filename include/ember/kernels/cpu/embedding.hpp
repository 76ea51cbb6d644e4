// @file include/ember/kernels/cpu/embedding.hpp
// @brief Embedding lookup and its weight gradient on CPU (torch.nn.functional.embedding).
//
//   embedding_forward(n, dim, idx, w, y):  y[k, c] = w[idx[k], c]            (k < n, c < dim)
//   embedding_backward(n, num, dim, padding_idx, idx, dy, dw):
//       dw[r, c] = sum over k = 0, 1, ..., n-1 (in that order) with idx[k] == r of dy[k, c],
//       and 0 for the row padding_idx (-1: none).
// idx holds exact integers in [0, num) as float32 (checked by the op). The backward's sums are
// taken in index order, each column by one thread, so the result does not depend on the thread
// count and equals the CUDA kernel's bitwise (no atomics there either).
#pragma once
#include <cstdint>
#include <cstring>

#include "parallel.hpp"

namespace ember::cpu {

inline void embedding_forward(int64_t n, int64_t dim, const float* idx, const float* w, float* y) {
  parallel_for(n, 64, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      std::memcpy(y + k * dim, w + static_cast<int64_t>(idx[k]) * dim, size_t(dim) * sizeof(float));
  });
}

inline void embedding_backward(int64_t n, int64_t num, int64_t dim, int64_t padding_idx,
                               const float* idx, const float* dy, float* dw) {
  std::memset(dw, 0, size_t(num * dim) * sizeof(float));
  parallel_for(dim, 16, [&](int64_t cb, int64_t ce) {
    for (int64_t k = 0; k < n; ++k) {
      const int64_t r = static_cast<int64_t>(idx[k]);
      if (r == padding_idx) continue;
      float* row = dw + r * dim;
      const float* g = dy + k * dim;
      for (int64_t c = cb; c < ce; ++c) row[c] = row[c] + g[c];
    }
  });
}

}  // namespace ember::cpu
