// @file include/ember/kernels/cuda/elementwise.cuh
// @brief Elementwise CUDA kernels, twins of include/ember/kernels/cpu/elementwise.hpp (namespace
//        ember::cuda).
//
// Computes (n elements, contiguous float32, device pointers; outputs may alias inputs exactly):
//   fill             y = value                                  (=)
//   copy             y = x (cudaMemcpyAsync d2d)                 (=)
//   add / sub / mul  y = a + b / a - b / a * b                   (=)
//   scale            y = alpha*x                                 (=)
//   add_scalar       y = x + s                                   (=)
//   accumulate       y += x                                      (+=)
//   broadcast_scalar y = alpha * s[0], s a 1-element device buffer (=)
// Kernel variant: one templated grid-stride kernel (map_kernel) per functor, 256 threads, grid
// capped at 65536 blocks, int64 indices. Products and sums use the explicitly rounded intrinsics
// (__fmul_rn/__fadd_rn) so nvcc cannot contract them into FMAs: results are bitwise equal to the
// CPU kernels. n <= 0 launches nothing.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"

namespace ember::cuda {

namespace ew_detail {

template <class F>
__global__ void __launch_bounds__(kThreads) map_kernel(int64_t n, F f) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

template <class F>
inline void launch_map(int64_t n, const F& f, cudaStream_t stream, const char* op) {
  if (n <= 0) return;
  launch(op, "map_kernel", map_kernel<F>, grid_1d(n), kThreads, 0, stream, n, f);
}

struct FillOp {
  float v;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = v; }
};
struct AddOp {
  const float *a, *b;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = __fadd_rn(a[i], b[i]); }
};
struct SubOp {
  const float *a, *b;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = __fsub_rn(a[i], b[i]); }
};
struct MulOp {
  const float *a, *b;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = __fmul_rn(a[i], b[i]); }
};
struct ScaleOp {
  float alpha;
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = __fmul_rn(alpha, x[i]); }
};
struct AddScalarOp {
  const float* x;
  float s;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = __fadd_rn(x[i], s); }
};
struct AccumulateOp {
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = __fadd_rn(y[i], x[i]); }
};
struct BroadcastScalarOp {
  const float* s;
  float alpha;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = __fmul_rn(alpha, s[0]); }
};

}  // namespace ew_detail

inline void fill(int64_t n, float value, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, ew_detail::FillOp{value, y}, stream, "fill");
}

inline void copy(int64_t n, const float* x, float* y, cudaStream_t stream) {
  if (n <= 0 || x == y) return;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(y, x, static_cast<size_t>(n) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream),
                   "copy");
}

inline void add(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, ew_detail::AddOp{a, b, y}, stream, "add");
}

inline void sub(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, ew_detail::SubOp{a, b, y}, stream, "sub");
}

inline void mul(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, ew_detail::MulOp{a, b, y}, stream, "mul");
}

inline void scale(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, ew_detail::ScaleOp{alpha, x, y}, stream, "scale");
}

inline void add_scalar(int64_t n, const float* x, float s, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, ew_detail::AddScalarOp{x, s, y}, stream, "add_scalar");
}

inline void accumulate(int64_t n, const float* x, float* y, cudaStream_t stream) {
  ew_detail::launch_map(n, ew_detail::AccumulateOp{x, y}, stream, "accumulate");
}

inline void broadcast_scalar(int64_t n, const float* s, float alpha, float* y,
                             cudaStream_t stream) {
  ew_detail::launch_map(n, ew_detail::BroadcastScalarOp{s, alpha, y}, stream, "broadcast_scalar");
}

}  // namespace ember::cuda
