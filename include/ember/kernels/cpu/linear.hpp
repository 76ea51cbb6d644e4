// @file include/ember/kernels/cpu/linear.hpp
// @brief Fully connected layer kernels (CPU) on top of gemm.hpp.
//
//   linear_forward(s, x, w, b /*nullable*/, y)       y (M,N) = x (M,K) w^T + b     (w is (N,K))
//   linear_backward_input(s, dy, w, dx)              dx (M,K) = dy (M,N) w
//   linear_backward_weight(s, x, dy, dw, db /*nullable*/)  dw (N,K) = dy^T x, db = column sums
// All outputs are overwritten; db is summed in a fixed order (deterministic).
#pragma once
#include <algorithm>
#include <cstdint>

#include "../params.hpp"
#include "gemm.hpp"
#include "parallel.hpp"

namespace ember::cpu {

inline void linear_forward(ember::kernels::LinearShape s, const float* x, const float* w,
                           const float* b, float* y) {
  if (s.M <= 0 || s.N <= 0) return;
  gemm(false, true, s.M, s.N, s.K, 1.f, x, s.K, w, s.K, 0.f, y, s.N);
  if (b) {
    for (int i = 0; i < s.M; ++i) {
      float* yi = y + static_cast<int64_t>(i) * s.N;
      for (int j = 0; j < s.N; ++j) yi[j] += b[j];
    }
  }
}

inline void linear_backward_input(ember::kernels::LinearShape s, const float* dy, const float* w,
                                  float* dx) {
  if (s.M <= 0 || s.K <= 0) return;
  gemm(false, false, s.M, s.K, s.N, 1.f, dy, s.N, w, s.K, 0.f, dx, s.K);
}

inline void linear_backward_weight(ember::kernels::LinearShape s, const float* x, const float* dy,
                                   float* dw, float* db) {
  if (s.N <= 0) return;
  if (s.K > 0) gemm(true, false, s.N, s.K, s.M, 1.f, dy, s.N, x, s.K, 0.f, dw, s.K);
  if (db) {
    // Row-by-row accumulation: fixed order, vectorises across columns.
    std::fill(db, db + s.N, 0.f);
    for (int i = 0; i < s.M; ++i) {
      const float* d = dy + static_cast<int64_t>(i) * s.N;
      for (int j = 0; j < s.N; ++j) db[j] += d[j];
    }
  }
}

}  // namespace ember::cpu
