// @file include/ember/kernels/cuda/dropout.cuh
// @brief Dropout's mask on CUDA, the bitwise twin of include/ember/kernels/cpu/dropout.hpp.
//
// Computes (n floats, device pointer mask, =):
//   dropout_mask(n, st, keep, scale, mask)  mask[i] = u[i] < keep ? scale : 0
// where u[i] is element i of rand_uniform(n, st): lane i%4 of philox4x32_10(st.offset + i/4,
// st.seed). Kernel variant: one grid-stride kernel over the ceil(n/4) counters, each thread
// generating one counter block (as random.cuh); the same integer generator and comparison as the
// CPU, so the masks are bitwise equal.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "../philox.hpp"
#include "common.cuh"

namespace ember::cuda {

namespace dropout_detail {

// A template (as every kernel here) so that the header can be included by several .cu files.
template <class T>
__global__ void __launch_bounds__(kThreads)
    dropout_mask_kernel(int64_t n, kernels::PhiloxState st, T keep, T scale, T* mask) {
  const int64_t ncounters = (n + 3) / 4;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < ncounters; c += stride) {
    T r[4];
    kernels::philox_uniform4(st.offset + static_cast<uint64_t>(c), st.seed, r);
    const int64_t base = 4 * c;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (base + j < n) mask[base + j] = r[j] < keep ? scale : T(0);
  }
}

}  // namespace dropout_detail

inline void dropout_mask(int64_t n, kernels::PhiloxState st, float keep, float scale, float* mask,
                         cudaStream_t stream) {
  if (n <= 0) return;
  launch("dropout", "dropout_mask_kernel", dropout_detail::dropout_mask_kernel<float>, grid_1d((n + 3) / 4),
         kThreads, 0, stream, n, st, keep, scale, mask);
}

}  // namespace ember::cuda
