// @file include/ember/kernels/cpu/elementwise.hpp
// @brief Elementwise CPU kernels: fill, copy, add, sub, mul, scale, add_scalar,
//        accumulate, broadcast_scalar. See include/ember/kernels/README.md for the contract.
//
// Every kernel splits [0, n) with parallel_for and processes each chunk in blocks of
// kVecBlock: the block's results are computed into a local array before they are stored, so the
// compiler may vectorise the block (SLP) without runtime alias checks. Outputs may alias inputs
// exactly (y == a, in-place); partially overlapping buffers are not supported.
#pragma once
#include <cstdint>
#include <cstring>

#include "parallel.hpp"

namespace ember::cpu {

namespace detail {

constexpr int64_t kElementwiseGrain = int64_t(1) << 15;  // elements per thread at least
constexpr int kVecBlock = 16;

/// y[i] = f(i) for i in [b, e), blockwise (see file comment).
template <class F>
inline void map_range(int64_t b, int64_t e, float* y, const F& f) {
  int64_t i = b;
  for (; i + kVecBlock <= e; i += kVecBlock) {
    float t[kVecBlock];
    for (int j = 0; j < kVecBlock; ++j) t[j] = f(i + j);
    for (int j = 0; j < kVecBlock; ++j) y[i + j] = t[j];
  }
  for (; i < e; ++i) y[i] = f(i);
}

/// Parallel y[i] = f(i) over [0, n).
template <class F>
inline void parallel_map(int64_t n, float* y, const F& f) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) { map_range(b, e, y, f); });
}

}  // namespace detail

/// y = value
inline void fill(int64_t n, float value, float* y) {
  detail::parallel_map(n, y, [=](int64_t) { return value; });
}

/// y = x (x and y must not partially overlap)
inline void copy(int64_t n, const float* x, float* y) {
  if (x == y) return;
  parallel_for(n, detail::kElementwiseGrain, [&](int64_t b, int64_t e) {
    std::memcpy(y + b, x + b, static_cast<size_t>(e - b) * sizeof(float));
  });
}

/// y = a + b
inline void add(int64_t n, const float* a, const float* b, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return a[i] + b[i]; });
}

/// y = a - b
inline void sub(int64_t n, const float* a, const float* b, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return a[i] - b[i]; });
}

/// y = a * b
inline void mul(int64_t n, const float* a, const float* b, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return a[i] * b[i]; });
}

/// y = alpha * x
inline void scale(int64_t n, float alpha, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return alpha * x[i]; });
}

/// y = x + s
inline void add_scalar(int64_t n, const float* x, float s, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return x[i] + s; });
}

/// y += x
inline void accumulate(int64_t n, const float* x, float* y) {
  detail::parallel_map(n, y, [=](int64_t i) { return y[i] + x[i]; });
}

/// y = alpha * s[0] (s is a one-element buffer)
inline void broadcast_scalar(int64_t n, const float* s, float alpha, float* y) {
  const float v = alpha * s[0];
  fill(n, v, y);
}

}  // namespace ember::cpu
