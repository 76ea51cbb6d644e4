// @file include/ember/kernels/cuda/reduce.cuh
// @brief Deterministic full reductions on CUDA, twins of include/ember/kernels/cpu/reduce.hpp.
//
// Computes (n elements, contiguous float32, device pointers):
//   sum               out[0] = sum(x)                      (=, 0 for n == 0)
//   mse_loss_forward  out[0] = mean((a - b)^2)             (=, NaN for n == 0, as PyTorch)
//   mse_loss_backward da = (a - b) * k, db = -da, k = float(2 g / n), g = grad_out[0] (device);
//                     da / db nullable                      (=)
// Kernel variants:
//   reduce_partial_kernel  G blocks x 256 threads; G = clamp(ceil(n / 4096), 1, 1024) depends
//                          only on n. Thread t of block b sums f(i) in double for
//                          i = b*256 + t + j*G*256 (j ascending), then a fixed shuffle tree gives
//                          partial[b] (scratch from the caching allocator).
//   reduce_final_kernel    one block of 256 threads folds the G partials in the same fixed way and
//                          writes out[0]. No atomics anywhere: bitwise reproducible.
//   mse_backward_kernel    grid-stride elementwise.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "allocator.cuh"
#include "common.cuh"

namespace ember::cuda {

namespace reduce_detail {

constexpr int kReduceThreads = 256;
constexpr int64_t kReducePerBlock = 4096;
constexpr int kMaxReduceBlocks = 1024;

inline int reduce_blocks(int64_t n) {
  int64_t g = ceil_div(n, kReducePerBlock);
  if (g < 1) g = 1;
  if (g > kMaxReduceBlocks) g = kMaxReduceBlocks;
  return static_cast<int>(g);
}

template <class F>
__global__ void __launch_bounds__(kReduceThreads)
    reduce_partial_kernel(int64_t n, F f, double* partial) {
  EMBER_SHARED(double, smem, [32]);
  const int64_t stride = int64_t(gridDim.x) * kReduceThreads;
  double acc = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * kReduceThreads + threadIdx.x; i < n; i += stride)
    acc += f(i);
  acc = block_reduce_sum(acc, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <class Fin>
__global__ void __launch_bounds__(kReduceThreads)
    reduce_final_kernel(int g, const double* partial, Fin fin) {
  EMBER_SHARED(double, smem, [32]);
  double acc = 0.0;
  for (int i = threadIdx.x; i < g; i += kReduceThreads) acc += partial[i];
  acc = block_reduce_sum(acc, smem);
  if (threadIdx.x == 0) fin(acc);
}

struct LoadX {
  const float* x;
  __device__ double operator()(int64_t i) const { return static_cast<double>(x[i]); }
};
struct SquaredDiff {
  const float *a, *b;
  __device__ double operator()(int64_t i) const {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    return d * d;
  }
};
struct StoreSum {
  float* out;
  __device__ void operator()(double s) const { out[0] = static_cast<float>(s); }
};
struct StoreMean {
  float* out;
  int64_t n;
  __device__ void operator()(double s) const {
    out[0] = static_cast<float>(s / static_cast<double>(n));
  }
};

template <class F, class Fin>
inline void full_reduce(int64_t n, const F& f, const Fin& fin, cudaStream_t stream,
                        const char* op) {
  if (n < 0) n = 0;
  const int g = reduce_blocks(n);
  Scratch<double> partial(g);
  launch(op, "reduce_partial_kernel", reduce_partial_kernel<F>, g, kReduceThreads, 0, stream, n, f,
         partial.get());
  launch(op, "reduce_final_kernel", reduce_final_kernel<Fin>, 1, kReduceThreads, 0, stream, g,
         partial.get(), fin);
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    mse_backward_kernel(int64_t n, const T* a, const T* b, const T* grad_out, T* da, T* db) {
  const T k = static_cast<T>(2.0 * static_cast<double>(grad_out[0]) / static_cast<double>(n));
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T g = __fmul_rn(__fsub_rn(a[i], b[i]), k);
    if (da) da[i] = g;
    if (db) db[i] = -g;
  }
}

}  // namespace reduce_detail

inline void sum(int64_t n, const float* x, float* out, cudaStream_t stream) {
  reduce_detail::full_reduce(n, reduce_detail::LoadX{x}, reduce_detail::StoreSum{out}, stream,
                             "sum");
}

inline void mse_loss_forward(int64_t n, const float* a, const float* b, float* out,
                             cudaStream_t stream) {
  reduce_detail::full_reduce(n, reduce_detail::SquaredDiff{a, b},
                             reduce_detail::StoreMean{out, n < 0 ? 0 : n}, stream,
                             "mse_loss_forward");
}

inline void mse_loss_backward(int64_t n, const float* a, const float* b, const float* grad_out,
                              float* da, float* db, cudaStream_t stream) {
  if (n <= 0 || (!da && !db)) return;
  launch("mse_loss_backward", "mse_backward_kernel", reduce_detail::mse_backward_kernel<float>,
         grid_1d(n), kThreads, 0, stream, n, a, b, grad_out, da, db);
}

}  // namespace ember::cuda
