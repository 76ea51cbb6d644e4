// @file include/ember/kernels/cuda/linear.cuh
// @brief Fully connected layer kernels on CUDA, twins of include/ember/kernels/cpu/linear.hpp.
//
// Layouts (contiguous float32, device): x (M,K), w (N,K), b (N), y / dy (M,N).
//   linear_forward(s, x, w, b /*nullable*/, y)       y  = x w^T + b          (=)
//   linear_backward_input(s, dy, w, dx)              dx = dy w               (=)
//   linear_backward_weight(s, x, dy, dw, db /*null*/) dw = dy^T x, db = column sums of dy (=)
// Kernel variants (implicit_gemm.cuh; no atomics, bitwise reproducible):
//   LinearFwdOp    GEMM M = M, N = N, k = K; A = x (k contiguous), B = w^T (k contiguous).
//   LinearBwdInOp  GEMM M = M, N = K, k = N; A = dy (k contiguous), B = w (n contiguous).
//   LinearWgradOp  GEMM M = N, N = K, k = M (batch); A = dy^T, B = x (both m/n contiguous);
//                  split-K over the batch into scratch slices summed in slice order.
//   db             chan::channel_reduce over (M, N, 1): per-column sums in double.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "allocator.cuh"
#include "channel_reduce.cuh"
#include "common.cuh"
#include "implicit_gemm.cuh"

namespace ember::cuda {

namespace linear_detail {

struct KOnly {
  int64_t k;
};
struct Base {
  int64_t base;
};

/// y[m, n] = sum_k x[m, k] * w[n, k] + b[n]
struct LinearFwdOp {
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  int64_t K;
  int64_t M, Ngemm, kb, ke;
  static constexpr bool kAKFast = true, kBKFast = true;
  using KInfo = KOnly;
  using RowCtx = Base;
  using ColCtx = Base;
  using Sub = LinearFwdOp;
  igemm::GemmGrid grid() const { return {M, Ngemm, 1}; }
  EMBER_HD Sub sub(int) const { return *this; }
  EMBER_HD KInfo kinfo(int64_t k) const { return KInfo{k}; }
  EMBER_HD RowCtx row(int64_t m) const { return RowCtx{m * K}; }
  EMBER_HD ColCtx col(int64_t n) const { return ColCtx{n * K}; }
  EMBER_HD float a(const RowCtx& r, const KInfo& ki) const { return x[r.base + ki.k]; }
  EMBER_HD float b(const ColCtx& c, const KInfo& ki) const { return w[c.base + ki.k]; }
  EMBER_HD void store(int64_t m, int64_t n, float v) const {
    y[m * Ngemm + n] = bias ? v + bias[n] : v;
  }
};

/// dx[m, n] = sum_k dy[m, k] * w[k, n]   (k over the N output features, n over K inputs)
struct LinearBwdInOp {
  const float* dy;
  const float* w;
  float* dx;
  int64_t Nout;  // row length of dy
  int64_t M, Ngemm, kb, ke;  // Ngemm = K (row length of w and dx)
  static constexpr bool kAKFast = true, kBKFast = false;
  using KInfo = KOnly;
  using RowCtx = Base;
  using ColCtx = Base;
  using Sub = LinearBwdInOp;
  igemm::GemmGrid grid() const { return {M, Ngemm, 1}; }
  EMBER_HD Sub sub(int) const { return *this; }
  EMBER_HD KInfo kinfo(int64_t k) const { return KInfo{k}; }
  EMBER_HD RowCtx row(int64_t m) const { return RowCtx{m * Nout}; }
  EMBER_HD ColCtx col(int64_t n) const { return ColCtx{n}; }
  EMBER_HD float a(const RowCtx& r, const KInfo& ki) const { return dy[r.base + ki.k]; }
  EMBER_HD float b(const ColCtx& c, const KInfo& ki) const { return w[ki.k * Ngemm + c.base]; }
  EMBER_HD void store(int64_t m, int64_t n, float v) const { dx[m * Ngemm + n] = v; }
};

/// dw[j, n] = sum_i dy[i, j] * x[i, n]   (i over the batch; split-K slices in blockIdx.z)
struct LinearWgradOp {
  const float* x;
  const float* dy;
  float* out;      // dw
  float* partial;  // scratch for splits > 1 (set by igemm::run_splitk), else null
  int64_t Mb, Nout, Kin, chunk;
  int splits;

  igemm::GemmGrid grid() const { return {Nout, Kin, splits}; }

  struct Sub {
    const float* x;
    const float* dy;
    float* dst;
    int64_t M, Ngemm, kb, ke;  // M = Nout, Ngemm = Kin
    static constexpr bool kAKFast = false, kBKFast = false;
    using KInfo = KOnly;
    using RowCtx = Base;
    using ColCtx = Base;
    EMBER_HD KInfo kinfo(int64_t k) const { return KInfo{k}; }
    EMBER_HD RowCtx row(int64_t m) const { return RowCtx{m}; }
    EMBER_HD ColCtx col(int64_t n) const { return ColCtx{n}; }
    EMBER_HD float a(const RowCtx& r, const KInfo& ki) const { return dy[ki.k * M + r.base]; }
    EMBER_HD float b(const ColCtx& c, const KInfo& ki) const {
      return x[ki.k * Ngemm + c.base];
    }
    EMBER_HD void store(int64_t m, int64_t n, float v) const { dst[m * Ngemm + n] = v; }
  };

  EMBER_HD Sub sub(int z) const {
    Sub sp;
    sp.x = x;
    sp.dy = dy;
    sp.M = Nout;
    sp.Ngemm = Kin;
    sp.kb = int64_t(z) * chunk;
    sp.ke = sp.kb + chunk < Mb ? sp.kb + chunk : Mb;
    sp.dst = partial ? partial + int64_t(z) * Nout * Kin : out;
    return sp;
  }
};

struct ColSumF {
  const float* y;
  EMBER_HD void operator()(int, int64_t off, double* acc) const {
    acc[0] += static_cast<double>(y[off]);
  }
};
struct StoreColSum {
  float* out;
  EMBER_HD void operator()(int c, const double* t) const { out[c] = static_cast<float>(t[0]); }
};

}  // namespace linear_detail

// ---- the GEMM ops behind each public function (also used by the host emulation tests) ----

inline linear_detail::LinearFwdOp linear_forward_op(const kernels::LinearShape& s, const float* x,
                                                    const float* w, const float* b, float* y) {
  const int64_t K = s.K > 0 ? s.K : 0;
  return linear_detail::LinearFwdOp{x, w, b, y, K, s.M, s.N, 0, K};
}

inline linear_detail::LinearBwdInOp linear_backward_input_op(const kernels::LinearShape& s,
                                                             const float* dy, const float* w,
                                                             float* dx) {
  const int64_t Nout = s.N > 0 ? s.N : 0;
  return linear_detail::LinearBwdInOp{dy, w, dx, Nout, s.M, s.K, 0, Nout};
}

inline linear_detail::LinearWgradOp linear_backward_weight_op(const kernels::LinearShape& s,
                                                              const float* x, const float* dy,
                                                              float* dw) {
  const int64_t Mb = s.M > 0 ? s.M : 0;
  const igemm::SplitPlan plan = igemm::splitk_plan(s.N, s.K, Mb);
  return linear_detail::LinearWgradOp{x, dy, dw, nullptr, Mb, s.N, s.K, plan.chunk, plan.splits};
}

inline void linear_forward(kernels::LinearShape s, const float* x, const float* w, const float* b,
                           float* y, cudaStream_t stream) {
  if (s.M <= 0 || s.N <= 0) return;
  igemm::run(linear_forward_op(s, x, w, b, y), stream, "linear_forward");
}

inline void linear_backward_input(kernels::LinearShape s, const float* dy, const float* w,
                                  float* dx, cudaStream_t stream) {
  if (s.M <= 0 || s.K <= 0) return;
  igemm::run(linear_backward_input_op(s, dy, w, dx), stream, "linear_backward_input");
}

inline void linear_backward_weight(kernels::LinearShape s, const float* x, const float* dy,
                                   float* dw, float* db, cudaStream_t stream) {
  if (s.N <= 0) return;
  const char* name = "linear_backward_weight";
  if (s.K > 0) igemm::run_splitk(linear_backward_weight_op(s, x, dy, dw), stream, name);
  if (db)
    chan::channel_reduce<1>(s.M > 0 ? s.M : 0, s.N, 1, linear_detail::ColSumF{dy},
                            linear_detail::StoreColSum{db}, stream, name);
}

}  // namespace ember::cuda
