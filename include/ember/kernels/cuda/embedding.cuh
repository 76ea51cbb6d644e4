// @file include/ember/kernels/cuda/embedding.cuh
// @brief Embedding lookup and its weight gradient on CUDA, twins of
//        include/ember/kernels/cpu/embedding.hpp.
//
// Computes (device pointers; idx holds exact integers in [0, num) as float32):
//   embedding_forward(n, dim, idx, w, y)   y[k, c] = w[idx[k], c]                        (=)
//   embedding_backward(n, num, dim, padding_idx, idx, dy, dw)
//       dw[r, c] = sum over k = 0..n-1 in order with idx[k] == r of dy[k, c]; 0 for the row
//       padding_idx (-1: none)                                                          (=)
// Kernel variants: the forward is a grid-stride map over n*dim outputs. The backward uses no
// atomics: thread (b, c) owns column c of the weight rows [b*R, (b+1)*R) (R = ceil(num / B),
// B row blocks chosen so that B*dim is about 64k threads), zeroes them, then scans all n indices
// in order and adds dy[k, c] into its rows: each sum is taken in index order, as on the CPU, so
// the gradients are bitwise equal (every add is __fadd_rn). Work n*dim*B; each thread reads every
// index (the reads of a warp's threads are to the same address).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace embedding_detail {

struct EmbeddingFwdOp {
  int64_t dim;
  const float* idx;
  const float* w;
  float* y;
  __device__ void operator()(int64_t i) const {
    const int64_t k = i / dim, c = i - k * dim;
    y[i] = w[static_cast<int64_t>(idx[k]) * dim + c];
  }
};

// A template (as every kernel here) so that the header can be included by several .cu files.
template <class T>
__global__ void __launch_bounds__(kThreads)
    embedding_backward_kernel(int64_t n, int64_t num, int64_t dim, int64_t rows_per_block,
                              int64_t blocks, int64_t padding_idx, const T* idx, const T* dy,
                              T* dw) {
  const int64_t total = blocks * dim;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t b = t / dim, c = t - b * dim;
    const int64_t r0 = b * rows_per_block;
    const int64_t r1 = r0 + rows_per_block < num ? r0 + rows_per_block : num;
    for (int64_t r = r0; r < r1; ++r) dw[r * dim + c] = T(0);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t r = static_cast<int64_t>(idx[k]);
      if (r < r0 || r >= r1 || r == padding_idx) continue;
      dw[r * dim + c] = __fadd_rn(dw[r * dim + c], dy[k * dim + c]);
    }
  }
}

}  // namespace embedding_detail

inline void embedding_forward(int64_t n, int64_t dim, const float* idx, const float* w, float* y,
                              cudaStream_t stream) {
  ew_detail::launch_map(n * dim, embedding_detail::EmbeddingFwdOp{dim, idx, w, y}, stream,
                        "embedding_forward");
}

inline void embedding_backward(int64_t n, int64_t num, int64_t dim, int64_t padding_idx,
                               const float* idx, const float* dy, float* dw, cudaStream_t stream) {
  if (num <= 0 || dim <= 0) return;
  int64_t blocks = (int64_t(1) << 16) / dim;
  if (blocks < 1) blocks = 1;
  if (blocks > num) blocks = num;
  const int64_t rows = ceil_div(num, blocks);
  blocks = ceil_div(num, rows);
  launch("embedding backward", "embedding_backward_kernel",
         embedding_detail::embedding_backward_kernel<float>, grid_1d(blocks * dim), kThreads, 0, stream,
         n, num, dim, rows, blocks, padding_idx, idx, dy, dw);
}

}  // namespace ember::cuda
