// @file include/ember/kernels/cuda/group_norm.cuh
// @brief Group normalisation over (N, C, HW) with G groups on CUDA, twin of
//        include/ember/kernels/cpu/group_norm.hpp.
//
// Layouts (contiguous float32, device): x, y, dy, dx (N, C, HW); gamma, beta, dgamma, dbeta (C);
// save_mean, save_rstd (N*G), row r = n*G + g. Cg = C/G, D = Cg*HW. gamma / beta nullable
// (1 / 0); dx / dgamma / dbeta nullable (not computed). All outputs are overwritten (=).
//   group_norm_forward: mean = sum(x)/D, var = sum((x - mean)^2)/D per (n, g) (two passes,
//       double); save_mean = float(mean), save_rstd = float(1/sqrt(var + eps));
//       y = (x - save_mean)*a + b, a = float(rstd*gamma[c]) per (n, c), b = beta[c].
//   group_norm_backward: per (n, c) sdy = sum(dy), sdyx = sum(dy*(x - mean)) (double, mean and
//       rstd from save_*); per (n, g) A = sum_c gamma_c sdy, B = sum_c gamma_c sdyx (channel
//       order), u = -rstd^3 B/D, v = -rstd A/D; dx = dy*w + (x - mean)*u + v in double with
//       w = rstd*gamma_c; dgamma[c] = sum_n sdyx*rstd, dbeta[c] = sum_n sdy (n order).
// Kernel variants (no atomics; bitwise reproducible):
//   statistics      chan::channel_reduce (channel_reduce.cuh) with the tensor viewed as
//                   (1, N*G, D): every (n, g) group is one contiguous "channel" of D values, cut
//                   into slices of >= 8192 values reduced by 256-thread blocks in double, then
//                   folded in slice order; batch_norm.cuh's SumX / SumSqDev functors, the fin
//                   functors store mean, then rstd.
//   gn_coef_kernel  a[n*C + c] = float(rstd[n, g] * gamma[c]), one thread per (n, c).
//   gn_affine_kernel  y = (x - m[r])*a[q] + b[c], flat grid-stride, q = i / HW, c = q % C,
//                   r = q / Cg (32-bit index math when the tensor has < 2^32 elements), with
//                   batch_norm.cuh's bn_affine_one.
//   row sums        chan::channel_reduce<2> over the (1, N*C, HW) view: sdy, sdyx per (n, c)
//                   into scratch.
//   gn_group_coef_kernel  one thread per (n, g): A, B over the group's channels in order -> u, v.
//   gn_param_grad_kernel  one thread per channel: dgamma, dbeta summed over n in order.
//   gn_dx_kernel    dx from the double coefficients, flat grid-stride.
// The per-element and per-thread bodies are __host__ __device__ (gn_detail::*_one, *_at) for the
// host emulation test.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "allocator.cuh"
#include "batch_norm.cuh"  // bn_detail::SumX, SumSqDev, bn_affine_one, small_index
#include "channel_reduce.cuh"
#include "common.cuh"

namespace ember::cuda {

namespace gn_detail {

// ---- index helpers and per-element bodies (shared with the host emulation) ----

/// (n, c) row q = n*C + c of flat element i of an (N, C, HW) tensor, in Index (uint32_t when the
/// tensor has < 2^32 elements, else uint64_t); q / Cg and q % C are then taken in Index too.
template <class Index>
EMBER_HD Index gn_row(int64_t i, int HW) {
  return static_cast<Index>(i) / static_cast<Index>(HW);
}

/// dx = float(dy*w + (x - m)*u + v) in double, rounded separately as the CPU.
EMBER_HD float gn_dx_one(float x, float dy, double m, double w, double u, double v) {
#if defined(__CUDA_ARCH__)
  const double t = __dadd_rn(__dmul_rn(static_cast<double>(dy), w),
                             __dmul_rn(__dsub_rn(static_cast<double>(x), m), u));
  return static_cast<float>(__dadd_rn(t, v));
#else
  return static_cast<float>(static_cast<double>(dy) * w + (static_cast<double>(x) - m) * u + v);
#endif
}

/// a[q] for row q = n*C + c: float(rstd[q / Cg] * gamma[c]).
EMBER_HD float gn_coef_one(int64_t q, int C, int cg, const double* rstd, const float* gamma) {
  const double g = gamma ? static_cast<double>(gamma[q % C]) : 1.0;
  return static_cast<float>(rstd[q / cg] * g);
}

/// Group r = n*G + g: coef[2r] = u = -rstd^3 B / D, coef[2r + 1] = v = -rstd A / D, with
/// A = sum_k gamma sdy, B = sum_k gamma sdyx over the group's channels k in order.
EMBER_HD void gn_group_coef_one(int64_t r, int C, int cg, double D, const double* sums,
                                     const float* gamma, const float* save_rstd, double* coef) {
  double A = 0.0, B = 0.0;
  for (int k = 0; k < cg; ++k) {
    const int64_t q = r * cg + k;
    const double g = gamma ? static_cast<double>(gamma[q % C]) : 1.0;
    A += g * sums[2 * q];
    B += g * sums[2 * q + 1];
  }
  const double rstd = static_cast<double>(save_rstd[r]);
  coef[2 * r] = -(rstd * rstd * rstd) * B / D;
  coef[2 * r + 1] = -rstd * A / D;
}

/// Channel c: dgamma = sum_n sdyx * rstd, dbeta = sum_n sdy (n ascending; either nullable).
EMBER_HD void gn_param_grad_one(int c, int N, int C, int G, int cg, const double* sums,
                                     const float* save_rstd, float* dgamma, float* dbeta) {
  double dg = 0.0, db = 0.0;
  for (int n = 0; n < N; ++n) {
    const int64_t q = int64_t(n) * C + c;
    if (dgamma) dg += sums[2 * q + 1] * static_cast<double>(save_rstd[int64_t(n) * G + c / cg]);
    if (dbeta) db += sums[2 * q];
  }
  if (dgamma) dgamma[c] = static_cast<float>(dg);
  if (dbeta) dbeta[c] = static_cast<float>(db);
}

/// Element i of the forward's affine pass: y[i] = (x[i] - m[r])*a[q] + b[c] with q = i / HW,
/// c = q % C, r = q / Cg; b nullable (0).
template <class Index>
EMBER_HD float gn_affine_at(int64_t i, int C, int HW, int cg, const float* x, const float* m,
                                 const float* a, const float* b) {
  const Index q = gn_row<Index>(i, HW);
  return bn_detail::bn_affine_one(x[i], m[q / static_cast<Index>(cg)], a[q],
                                  b ? b[q % static_cast<Index>(C)] : 0.0f);
}

/// Element i of dx: w = rstd[r]*gamma[c] (double), {u, v} = coef[2r..2r+1].
template <class Index>
EMBER_HD float gn_dx_at(int64_t i, int C, int HW, int cg, const float* x, const float* dy,
                             const float* gamma, const float* save_mean, const float* save_rstd,
                             const double* coef) {
  const Index q = gn_row<Index>(i, HW);
  const int64_t r = static_cast<int64_t>(q / static_cast<Index>(cg));  // 2r may pass 2^32
  const double w = static_cast<double>(save_rstd[r]) *
                   (gamma ? static_cast<double>(gamma[q % static_cast<Index>(C)]) : 1.0);
  return gn_dx_one(x[i], dy[i], static_cast<double>(save_mean[r]), w, coef[2 * r], coef[2 * r + 1]);
}

// ---- channel_reduce functors ----

// Over the (1, N*G, D) view: bn_detail::SumX (acc += x), then StoreMean; bn_detail::SumSqDev
// (acc += (x - mean[r])^2), then FinishStats.
struct StoreMean {
  double* mean;  // scratch (N*G)
  double D;
  EMBER_HD void operator()(int r, const double* t) const { mean[r] = t[0] / D; }
};
struct FinishStats {
  const double* mean;
  float eps;
  double D;
  float* save_mean;
  float* save_rstd;
  double* rstd;  // scratch (N*G)
  EMBER_HD void operator()(int r, const double* t) const {
    const double rs = 1.0 / ::sqrt(t[0] / D + static_cast<double>(eps));
    save_mean[r] = static_cast<float>(mean[r]);
    save_rstd[r] = static_cast<float>(rs);
    rstd[r] = rs;
  }
};

/// Over the (1, N*C, HW) view, row q = n*C + c: acc[0] += dy, acc[1] += dy*(x - mean[q / Cg]).
struct RowSums {
  const float* x;
  const float* dy;
  const float* save_mean;
  int cg;
  EMBER_HD void operator()(int q, int64_t off, double* acc) const {
    const double g = static_cast<double>(dy[off]);
    acc[0] += g;
    acc[1] += g * (static_cast<double>(x[off]) - static_cast<double>(save_mean[q / cg]));
  }
};
struct StoreRowSums {
  double* sums;  // scratch (2*N*C): {sdy, sdyx} per row
  EMBER_HD void operator()(int q, const double* t) const {
    sums[2 * int64_t(q)] = t[0];
    sums[2 * int64_t(q) + 1] = t[1];
  }
};

// ---- kernels ----

// The non-Index kernels are templates on the element type (always float) only so that this
// header can be included by several translation units (as bn_prep_kernel).
template <class T>
__global__ void __launch_bounds__(kThreads)
    gn_coef_kernel(int64_t rows, int C, int cg, const double* rstd, const T* gamma, T* a) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; q < rows; q += stride)
    a[q] = gn_coef_one(q, C, cg, rstd, gamma);
}

template <class Index>
__global__ void __launch_bounds__(kThreads)
    gn_affine_kernel(int64_t total, int C, int HW, int cg, const float* x, const float* m,
                     const float* a, const float* b, float* y) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride)
    y[i] = gn_affine_at<Index>(i, C, HW, cg, x, m, a, b);
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    gn_group_coef_kernel(int64_t groups, int C, int cg, double D, const double* sums,
                         const T* gamma, const T* save_rstd, double* coef) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < groups; r += stride)
    gn_group_coef_one(r, C, cg, D, sums, gamma, save_rstd, coef);
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    gn_param_grad_kernel(int N, int C, int G, int cg, const double* sums, const T* save_rstd,
                         T* dgamma, T* dbeta) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x)
    gn_param_grad_one(c, N, C, G, cg, sums, save_rstd, dgamma, dbeta);
}

template <class Index>
__global__ void __launch_bounds__(kThreads)
    gn_dx_kernel(int64_t total, int C, int HW, int cg, const float* x, const float* dy,
                 const float* gamma, const float* save_mean, const float* save_rstd,
                 const double* coef, float* dx) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride)
    dx[i] = gn_dx_at<Index>(i, C, HW, cg, x, dy, gamma, save_mean, save_rstd, coef);
}

inline bool empty_shape(const kernels::GroupNormShape& s) {
  return s.N <= 0 || s.C <= 0 || s.HW <= 0 || s.G <= 0;
}

}  // namespace gn_detail

inline void group_norm_forward(kernels::GroupNormShape s, const float* x, const float* gamma,
                               const float* beta, float eps, float* y, float* save_mean,
                               float* save_rstd, cudaStream_t stream) {
  if (gn_detail::empty_shape(s)) return;
  const char* name = "group_norm_forward";
  const int cg = s.C / s.G;
  const int D = cg * s.HW;  // the op guarantees C*HW < 2^31
  const int64_t groups = int64_t(s.N) * s.G, rows = int64_t(s.N) * s.C;
  const int64_t total = rows * s.HW;
  Scratch<double> mean(groups), rstd(groups);
  Scratch<float> a(rows);
  chan::channel_reduce<1>(1, static_cast<int>(groups), D, bn_detail::SumX{x},
                          gn_detail::StoreMean{mean.get(), double(D)}, stream, name);
  chan::channel_reduce<1>(
      1, static_cast<int>(groups), D, bn_detail::SumSqDev{x, mean.get()},
      gn_detail::FinishStats{mean.get(), eps, double(D), save_mean, save_rstd, rstd.get()}, stream,
      name);
  launch(name, "gn_coef_kernel", gn_detail::gn_coef_kernel<float>, grid_1d(rows), kThreads, 0,
         stream, rows, s.C, cg, rstd.get(), gamma, a.get());
  if (bn_detail::small_index(total))
    launch(name, "gn_affine_kernel", gn_detail::gn_affine_kernel<uint32_t>, grid_1d(total),
           kThreads, 0, stream, total, s.C, s.HW, cg, x, save_mean, a.get(), beta, y);
  else
    launch(name, "gn_affine_kernel", gn_detail::gn_affine_kernel<uint64_t>, grid_1d(total),
           kThreads, 0, stream, total, s.C, s.HW, cg, x, save_mean, a.get(), beta, y);
}

inline void group_norm_backward(kernels::GroupNormShape s, const float* x, const float* dy,
                                const float* gamma, const float* save_mean, const float* save_rstd,
                                float* dx, float* dgamma, float* dbeta, cudaStream_t stream) {
  if (gn_detail::empty_shape(s) || (!dx && !dgamma && !dbeta)) return;
  const char* name = "group_norm_backward";
  const int cg = s.C / s.G;
  const double D = double(cg) * double(s.HW);
  const int64_t groups = int64_t(s.N) * s.G, rows = int64_t(s.N) * s.C;
  const int64_t total = rows * s.HW;
  Scratch<double> sums(2 * rows);
  chan::channel_reduce<2>(1, static_cast<int>(rows), s.HW, gn_detail::RowSums{x, dy, save_mean, cg},
                          gn_detail::StoreRowSums{sums.get()}, stream, name);
  if (dgamma || dbeta) {
    launch(name, "gn_param_grad_kernel", gn_detail::gn_param_grad_kernel<float>, grid_1d(s.C),
           kThreads, 0, stream, s.N, s.C, s.G, cg, sums.get(), save_rstd, dgamma, dbeta);
  }
  if (!dx) return;
  Scratch<double> coef(2 * groups);
  launch(name, "gn_group_coef_kernel", gn_detail::gn_group_coef_kernel<float>, grid_1d(groups),
         kThreads, 0, stream, groups, s.C, cg, D, sums.get(), gamma, save_rstd, coef.get());
  if (bn_detail::small_index(total))
    launch(name, "gn_dx_kernel", gn_detail::gn_dx_kernel<uint32_t>, grid_1d(total), kThreads, 0,
           stream, total, s.C, s.HW, cg, x, dy, gamma, save_mean, save_rstd, coef.get(), dx);
  else
    launch(name, "gn_dx_kernel", gn_detail::gn_dx_kernel<uint64_t>, grid_1d(total), kThreads, 0,
           stream, total, s.C, s.HW, cg, x, dy, gamma, save_mean, save_rstd, coef.get(), dx);
}

}  // namespace ember::cuda
