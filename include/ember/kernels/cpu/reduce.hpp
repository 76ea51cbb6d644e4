// @file include/ember/kernels/cpu/reduce.hpp
// @brief Deterministic full reductions: sum, mse_loss_forward, mse_loss_backward.
//
// Determinism: [0, n) is cut into fixed blocks of kReduceBlock elements (independent of the
// thread count). Each block is summed in double with kLanes interleaved accumulators combined in
// a fixed order; the block sums are then added in block order on the calling thread. The
// result is therefore bitwise identical for any EMBER_NUM_THREADS.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel.hpp"

namespace ember::cpu {

namespace detail {

constexpr int64_t kReduceBlock = 4096;
constexpr int kReduceLanes = 8;

/// sum_{i in [b, e)} f(i) in double, fixed order: lane j accumulates i = b + j (mod kLanes),
/// lanes are combined pairwise, then the tail is added.
template <class F>
inline double block_sum(int64_t b, int64_t e, const F& f) {
  double acc[kReduceLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = b;
  for (; i + kReduceLanes <= e; i += kReduceLanes)
    for (int j = 0; j < kReduceLanes; ++j) acc[j] += f(i + j);
  for (int w = kReduceLanes / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  double s = acc[0];
  for (; i < e; ++i) s += f(i);
  return s;
}

/// Deterministic sum of f(i) over [0, n) in double (fixed block partition).
template <class F>
inline double deterministic_sum(int64_t n, const F& f) {
  if (n <= 0) return 0.0;
  const int64_t nblocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (nblocks == 1) return block_sum(0, n, f);
  std::vector<double> partial(static_cast<size_t>(nblocks));
  parallel_for(nblocks, 4, [&](int64_t bb, int64_t be) {
    for (int64_t k = bb; k < be; ++k)
      partial[k] = block_sum(k * kReduceBlock, std::min(n, (k + 1) * kReduceBlock), f);
  });
  double s = 0.0;
  for (int64_t k = 0; k < nblocks; ++k) s += partial[k];
  return s;
}

}  // namespace detail

/// out[0] = sum(x) (0 for n == 0)
inline void sum(int64_t n, const float* x, float* out) {
  out[0] = static_cast<float>(
      detail::deterministic_sum(n, [=](int64_t i) { return static_cast<double>(x[i]); }));
}

/// out[0] = mean((a - b)^2) (NaN for n == 0, as PyTorch)
inline void mse_loss_forward(int64_t n, const float* a, const float* b, float* out) {
  const double s = detail::deterministic_sum(n, [=](int64_t i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    return d * d;
  });
  out[0] = static_cast<float>(s / static_cast<double>(n));
}

/// da = 2 (a - b) g / n, db = -da, with g = grad_out[0]; da and db nullable.
/// As PyTorch: da[i] = (a[i] - b[i]) * (2 g / n), the factor rounded to float once.
inline void mse_loss_backward(int64_t n, const float* a, const float* b, const float* grad_out,
                              float* da, float* db) {
  if (n <= 0 || (!da && !db)) return;
  const float k =
      static_cast<float>(2.0 * static_cast<double>(grad_out[0]) / static_cast<double>(n));
  parallel_for(n, int64_t(1) << 15, [&](int64_t lo, int64_t hi) {
    if (da && db) {
      for (int64_t i = lo; i < hi; ++i) {
        const float g = (a[i] - b[i]) * k;
        da[i] = g;
        db[i] = -g;
      }
    } else if (da) {
      for (int64_t i = lo; i < hi; ++i) da[i] = (a[i] - b[i]) * k;
    } else {
      for (int64_t i = lo; i < hi; ++i) db[i] = -((a[i] - b[i]) * k);
    }
  });
}

}  // namespace ember::cpu
