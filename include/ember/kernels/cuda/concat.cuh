// @file include/ember/kernels/cuda/concat.cuh
// @brief Strided block copies used by cat/split/narrow, twins of
//        include/ember/kernels/cpu/concat.hpp.
//
// Computes (device pointers, all outputs =):
//   concat_copy(outer, src_block, dst_block, dst_offset, src, dst):
//       dst[o*dst_block + dst_offset + i] = src[o*src_block + i],   o < outer, i < src_block
//   slice_copy(outer, src_block, src_offset, dst_block, src, dst):
//       dst[o*dst_block + i] = src[o*src_block + src_offset + i],   o < outer, i < dst_block
// Kernel variant: one grid-stride kernel over the flattened (o, i) space of outer*block elements
// (int64; consecutive threads -> consecutive i, so reads and writes are coalesced). The index is
// split with 32-bit division when the block length and the total fit in 32 bits, else 64-bit.
// src and dst must not overlap.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"

namespace ember::cuda {

namespace concat_detail {

/// dst[o*dst_stride + i] = src[o*src_stride + i] for o < outer, i < block.
template <class Index>
__global__ void __launch_bounds__(kThreads)
    strided_rows_kernel(int64_t total, int64_t block, const float* src, int64_t src_stride,
                        float* dst, int64_t dst_stride) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const Index o = static_cast<Index>(e) / static_cast<Index>(block);
    const Index i = static_cast<Index>(e) - o * static_cast<Index>(block);
    dst[int64_t(o) * dst_stride + int64_t(i)] = src[int64_t(o) * src_stride + int64_t(i)];
  }
}

inline void strided_rows_copy(int64_t outer, int64_t block, const float* src, int64_t src_stride,
                              float* dst, int64_t dst_stride, cudaStream_t stream,
                              const char* op) {
  if (outer <= 0 || block <= 0) return;
  const int64_t total = outer * block;
  if (total <= int64_t(0xFFFFFFFFu)) {
    launch(op, "strided_rows_kernel", strided_rows_kernel<uint32_t>, grid_1d(total), kThreads, 0,
           stream, total, block, src, src_stride, dst, dst_stride);
  } else {
    launch(op, "strided_rows_kernel", strided_rows_kernel<int64_t>, grid_1d(total), kThreads, 0,
           stream, total, block, src, src_stride, dst, dst_stride);
  }
}

}  // namespace concat_detail

inline void concat_copy(int64_t outer, int64_t src_block, int64_t dst_block, int64_t dst_offset,
                        const float* src, float* dst, cudaStream_t stream) {
  concat_detail::strided_rows_copy(outer, src_block, src, src_block, dst + dst_offset, dst_block,
                                   stream, "concat_copy");
}

inline void slice_copy(int64_t outer, int64_t src_block, int64_t src_offset, int64_t dst_block,
                       const float* src, float* dst, cudaStream_t stream) {
  concat_detail::strided_rows_copy(outer, dst_block, src + src_offset, src_block, dst, dst_block,
                                   stream, "slice_copy");
}

}  // namespace ember::cuda
