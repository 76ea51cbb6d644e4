// @file include/ember/kernels/cuda/batch_norm.cuh
// @brief Batch normalisation over (N, C, HW) on CUDA, twin of
//        include/ember/kernels/cpu/batch_norm.hpp.
//
// Layouts (contiguous float32, device): x, y, dy, dx (N, C, HW); per-channel vectors (C).
// gamma / beta nullable (1 / 0); dgamma / dbeta / dx nullable (not computed); running stats
// nullable. All outputs are overwritten (=). M = N*HW values per channel.
//   batch_norm_forward_train: mean = sum(x)/M, var = sum((x-mean)^2)/M (two passes, double);
//       save_mean = mean, save_invstd = 1/sqrt(var + eps); running r = (1-mom) r + mom stat with
//       the unbiased var * M/(M-1) (biased when M == 1); y = (x - m)*a + b with m = save_mean,
//       a = float(gamma*invstd), b = beta (the mean is subtracted first, as the CPU, so a
//       near-constant channel with a large mean loses no precision).
//   batch_norm_forward_eval: the same affine map with m = running_mean, a from running_var.
//   batch_norm_backward_train / _eval: sum_dy = sum(dy), dotp = sum((x - mean)*dy) (double);
//       dgamma = dotp*invstd, dbeta = sum_dy; dx = dy*w + x*u + v in double with w = gamma*invstd,
//       u = -w*k, v = -w*sum_dy/M + w*k*mean, k = dotp*invstd^2/M (train), dx = dy*float(w)
//       (eval). mean / invstd are the saved batch stats (train) or running stats (eval).
// Kernel variants (no atomics; bitwise reproducible):
//   channel statistics  chan::channel_reduce (channel_reduce.cuh): per-(channel, slice) partials
//                       in double to scratch, then a fixed-order per-channel fold whose fin
//                       functor computes the per-channel coefficients below.
//   bn_prep_kernel      per channel: mean / invstd in double from saved or running stats.
//   bn_affine_kernel    y = (x - m[c])*a[c] + b[c], flat grid-stride, c = (i / HW) % C (32-bit
//                       index math when the tensor has < 2^32 elements).
//   bn_dx_kernel        dx from the double coefficients (w, u, v) per channel.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "allocator.cuh"
#include "channel_reduce.cuh"
#include "common.cuh"

namespace ember::cuda {

namespace bn_detail {

// ---- elementwise passes ----

/// Channel of flat element i of an (N, C, HW) tensor (Index: uint32_t when it fits, else 64-bit).
template <class Index>
EMBER_HD int bn_channel(int64_t i, int C, int HW) {
  return static_cast<int>((static_cast<Index>(i) / static_cast<Index>(HW)) % static_cast<Index>(C));
}

/// y = (x - m)*a + b (rounded separately, as the CPU; no FMA contraction).
EMBER_HD float bn_affine_one(float x, float m, float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(__fsub_rn(x, m), a), b);
#else
  return (x - m) * a + b;
#endif
}

/// dx from the per-channel double coefficients {w, u, v}: u == v == 0 ? dy * float(w)
/// : float(dy*w + x*u + v) (double, rounded separately as the CPU).
EMBER_HD float bn_dx_one(float x, float dy, const double* wuv) {
  const double w = wuv[0], u = wuv[1], v = wuv[2];
#if defined(__CUDA_ARCH__)
  if (u == 0.0 && v == 0.0) return __fmul_rn(dy, static_cast<float>(w));
  const double t = __dadd_rn(__dmul_rn(static_cast<double>(dy), w),
                             __dmul_rn(static_cast<double>(x), u));
  return static_cast<float>(__dadd_rn(t, v));
#else
  if (u == 0.0 && v == 0.0) return dy * static_cast<float>(w);
  return static_cast<float>(static_cast<double>(dy) * w + static_cast<double>(x) * u + v);
#endif
}

template <class Index>
__global__ void __launch_bounds__(kThreads)
    bn_affine_kernel(int64_t total, int C, int HW, const float* x, const float* m, const float* a,
                     const float* b, float* y) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int c = bn_channel<Index>(i, C, HW);
    y[i] = bn_affine_one(x[i], m[c], a[c], b[c]);
  }
}

/// coef: per channel {w, u, v} (doubles).
template <class Index>
__global__ void __launch_bounds__(kThreads)
    bn_dx_kernel(int64_t total, int C, int HW, const float* x, const float* dy,
                 const double* coef, float* dx) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int c = bn_channel<Index>(i, C, HW);
    dx[i] = bn_dx_one(x[i], dy[i], coef + 3 * c);
  }
}

inline bool small_index(int64_t total) { return total <= int64_t(0xFFFFFFFFu); }

inline void launch_affine(const kernels::BatchNormShape& s, const float* x, const float* m,
                          const float* a, const float* b, float* y, cudaStream_t stream,
                          const char* name) {
  const int64_t total = int64_t(s.N) * s.C * s.HW;
  if (total <= 0) return;
  if (small_index(total))
    launch(name, "bn_affine_kernel", bn_affine_kernel<uint32_t>, grid_1d(total), kThreads, 0,
           stream, total, s.C, s.HW, x, m, a, b, y);
  else
    launch(name, "bn_affine_kernel", bn_affine_kernel<uint64_t>, grid_1d(total), kThreads, 0,
           stream, total, s.C, s.HW, x, m, a, b, y);
}

// ---- channel reduction functors ----

struct SumX {
  const float* x;
  EMBER_HD void operator()(int, int64_t off, double* acc) const {
    acc[0] += static_cast<double>(x[off]);
  }
};
struct StoreMean {
  double* mean;  // scratch (C)
  double M;
  EMBER_HD void operator()(int c, const double* t) const { mean[c] = M > 0 ? t[0] / M : 0.0; }
};
struct SumSqDev {
  const float* x;
  const double* mean;
  EMBER_HD void operator()(int c, int64_t off, double* acc) const {
    const double d = static_cast<double>(x[off]) - mean[c];
    acc[0] += d * d;
  }
};
/// Finishes the training forward for channel c from var_sum = t[0].
struct FinishForwardTrain {
  const double* mean;
  const float* gamma;
  const float* beta;
  float eps, momentum;
  double M;
  float* save_mean;
  float* save_invstd;
  float* running_mean;
  float* running_var;
  float* a;  // scratch (C)
  float* b;  // scratch (C)
  EMBER_HD void operator()(int c, const double* t) const {
    const double mu = mean[c];
    const double var = M > 0 ? t[0] / M : 0.0;
    const double invstd = 1.0 / ::sqrt(var + static_cast<double>(eps));
    save_mean[c] = static_cast<float>(mu);
    save_invstd[c] = static_cast<float>(invstd);
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double bt = beta ? static_cast<double>(beta[c]) : 0.0;
    const double ac = invstd * g;
    a[c] = static_cast<float>(ac);
    b[c] = static_cast<float>(bt);  // y = (x - save_mean) * a + b, as the CPU
    const double mom = static_cast<double>(momentum);
    if (running_mean)
      running_mean[c] =
          static_cast<float>((1.0 - mom) * static_cast<double>(running_mean[c]) + mom * mu);
    if (running_var) {
      const double unbiased = M > 1 ? var * M / (M - 1.0) : var;
      running_var[c] =
          static_cast<float>((1.0 - mom) * static_cast<double>(running_var[c]) + mom * unbiased);
    }
  }
};

/// Backward sums: t[0] = sum(dy), t[1] = sum((x - mean) * dy).
struct BackwardSums {
  const float* x;
  const float* dy;
  const double* stats;  // per channel {mean, invstd}
  EMBER_HD void operator()(int c, int64_t off, double* acc) const {
    const double g = static_cast<double>(dy[off]);
    acc[0] += g;
    acc[1] += (static_cast<double>(x[off]) - stats[2 * c]) * g;
  }
};
struct FinishBackward {
  const double* stats;  // per channel {mean, invstd}
  const float* gamma;
  double M;
  bool train;
  float* dgamma;
  float* dbeta;
  double* coef;  // scratch (3C): {w, u, v}
  EMBER_HD void operator()(int c, const double* t) const {
    const double sum_dy = t[0], dotp = t[1];
    const double mean = stats[2 * c], invstd = stats[2 * c + 1];
    if (dgamma) dgamma[c] = static_cast<float>(dotp * invstd);
    if (dbeta) dbeta[c] = static_cast<float>(sum_dy);
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double w = g * invstd;
    double u = 0.0, v = 0.0;
    if (train && M > 0) {
      const double k = dotp * invstd * invstd / M;
      u = -w * k;
      v = -w * (sum_dy / M) + w * k * mean;
    }
    coef[3 * c] = w;
    coef[3 * c + 1] = u;
    coef[3 * c + 2] = v;
  }
};

/// stats[c] = {mean, invstd}: train -> saved stats; eval -> running stats and eps.
template <class T>
__global__ void __launch_bounds__(kThreads)
    bn_prep_kernel(int C, bool train, const T* mean, const T* var_or_invstd, T eps,
                   double* stats) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
    stats[2 * c] = static_cast<double>(mean[c]);
    stats[2 * c + 1] =
        train ? static_cast<double>(var_or_invstd[c])
              : 1.0 / ::sqrt(static_cast<double>(var_or_invstd[c]) + static_cast<double>(eps));
  }
}

/// a[c] = gamma*invstd, b[c] = beta from running stats (eval forward: y = (x - mean)*a + b).
template <class T>
__global__ void __launch_bounds__(kThreads)
    bn_eval_coef_kernel(int C, const T* gamma, const T* beta, const T* running_var, T eps, T* a,
                        T* b) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
    const double invstd =
        1.0 / ::sqrt(static_cast<double>(running_var[c]) + static_cast<double>(eps));
    const double g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double bt = beta ? static_cast<double>(beta[c]) : 0.0;
    const double ac = invstd * g;
    a[c] = static_cast<float>(ac);
    b[c] = static_cast<float>(bt);
  }
}

inline void backward(const kernels::BatchNormShape& s, const float* x, const float* dy,
                     const float* gamma, const float* mean, const float* var_or_invstd, float eps,
                     bool train, float* dx, float* dgamma, float* dbeta, cudaStream_t stream,
                     const char* name) {
  if (s.C <= 0) return;
  Scratch<double> stats(2 * int64_t(s.C));
  Scratch<double> coef(3 * int64_t(s.C));
  launch(name, "bn_prep_kernel", bn_prep_kernel<float>, grid_1d(s.C), kThreads, 0, stream, s.C,
         train, mean, var_or_invstd, eps, stats.get());
  const double M = double(s.N > 0 ? s.N : 0) * double(s.HW > 0 ? s.HW : 0);
  chan::channel_reduce<2>(s.N, s.C, s.HW, BackwardSums{x, dy, stats.get()},
                          FinishBackward{stats.get(), gamma, M, train, dgamma, dbeta, coef.get()},
                          stream, name);
  const int64_t total = int64_t(s.N) * s.C * s.HW;
  if (!dx || total <= 0) return;
  if (small_index(total))
    launch(name, "bn_dx_kernel", bn_dx_kernel<uint32_t>, grid_1d(total), kThreads, 0, stream, total,
           s.C, s.HW, x, dy, coef.get(), dx);
  else
    launch(name, "bn_dx_kernel", bn_dx_kernel<uint64_t>, grid_1d(total), kThreads, 0, stream, total,
           s.C, s.HW, x, dy, coef.get(), dx);
}

}  // namespace bn_detail

inline void batch_norm_forward_train(kernels::BatchNormShape s, const float* x, const float* gamma,
                                     const float* beta, float eps, float momentum, float* y,
                                     float* save_mean, float* save_invstd, float* running_mean,
                                     float* running_var, cudaStream_t stream) {
  if (s.C <= 0) return;
  const char* name = "batch_norm_forward_train";
  const double M = double(s.N > 0 ? s.N : 0) * double(s.HW > 0 ? s.HW : 0);
  Scratch<double> mean(s.C);
  Scratch<float> a(s.C), b(s.C);
  chan::channel_reduce<1>(s.N, s.C, s.HW, bn_detail::SumX{x}, bn_detail::StoreMean{mean.get(), M},
                          stream, name);
  chan::channel_reduce<1>(
      s.N, s.C, s.HW, bn_detail::SumSqDev{x, mean.get()},
      bn_detail::FinishForwardTrain{mean.get(), gamma, beta, eps, momentum, M, save_mean,
                                    save_invstd, running_mean, running_var, a.get(), b.get()},
      stream, name);
  bn_detail::launch_affine(s, x, save_mean, a.get(), b.get(), y, stream, name);
}

inline void batch_norm_forward_eval(kernels::BatchNormShape s, const float* x, const float* gamma,
                                    const float* beta, const float* running_mean,
                                    const float* running_var, float eps, float* y,
                                    cudaStream_t stream) {
  if (s.C <= 0) return;
  const char* name = "batch_norm_forward_eval";
  Scratch<float> a(s.C), b(s.C);
  launch(name, "bn_eval_coef_kernel", bn_detail::bn_eval_coef_kernel<float>, grid_1d(s.C), kThreads,
         0, stream, s.C, gamma, beta, running_var, eps, a.get(), b.get());
  bn_detail::launch_affine(s, x, running_mean, a.get(), b.get(), y, stream, name);
}

inline void batch_norm_backward_train(kernels::BatchNormShape s, const float* x, const float* dy,
                                      const float* gamma, const float* save_mean,
                                      const float* save_invstd, float* dx, float* dgamma,
                                      float* dbeta, cudaStream_t stream) {
  bn_detail::backward(s, x, dy, gamma, save_mean, save_invstd, 0.0f, true, dx, dgamma, dbeta,
                      stream, "batch_norm_backward_train");
}

inline void batch_norm_backward_eval(kernels::BatchNormShape s, const float* x, const float* dy,
                                     const float* gamma, const float* running_mean,
                                     const float* running_var, float eps, float* dx,
                                     float* dgamma, float* dbeta, cudaStream_t stream) {
  bn_detail::backward(s, x, dy, gamma, running_mean, running_var, eps, false, dx, dgamma, dbeta,
                      stream, "batch_norm_backward_eval");
}

}  // namespace ember::cuda
