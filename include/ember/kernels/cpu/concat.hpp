// @file include/ember/kernels/cpu/concat.hpp
// @brief Strided block copies used by cat/split/narrow on CPU.
//
// concat_copy: dst[o*dst_block + dst_offset + i] = src[o*src_block + i], i < src_block
// slice_copy:  dst[o*dst_block + i] = src[o*src_block + src_offset + i], i < dst_block
// Both are parallelised over the flattened (outer, block) index space, so one huge row and many
// tiny rows are split equally well.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "parallel.hpp"

namespace ember::cpu {

namespace detail {

/// For every o < outer: dst[o*dst_stride + i] = src[o*src_stride + i], i < block.
inline void strided_rows_copy(int64_t outer, int64_t block, const float* src, int64_t src_stride,
                              float* dst, int64_t dst_stride) {
  if (outer <= 0 || block <= 0) return;
  parallel_for(outer * block, int64_t(1) << 15, [&](int64_t b, int64_t e) {
    int64_t o = b / block, i = b - o * block;
    while (b < e) {
      const int64_t len = std::min(block - i, e - b);
      std::memcpy(dst + o * dst_stride + i, src + o * src_stride + i,
                  static_cast<size_t>(len) * sizeof(float));
      b += len;
      ++o;
      i = 0;
    }
  });
}

}  // namespace detail

inline void concat_copy(int64_t outer, int64_t src_block, int64_t dst_block, int64_t dst_offset,
                        const float* src, float* dst) {
  detail::strided_rows_copy(outer, src_block, src, src_block, dst + dst_offset, dst_block);
}

inline void slice_copy(int64_t outer, int64_t src_block, int64_t src_offset, int64_t dst_block,
                       const float* src, float* dst) {
  detail::strided_rows_copy(outer, dst_block, src + src_offset, src_block, dst, dst_block);
}

}  // namespace ember::cpu
