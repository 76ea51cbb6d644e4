// @file include/ember/kernels/cuda/random.cuh
// @brief Philox random fills on CUDA, bitwise twins of include/ember/kernels/cpu/random.hpp.
//
// Computes (n floats, device pointer y, =):
//   rand_uniform(n, st, y)  y[i] uniform in [0, 1)
//   rand_normal(n, st, y)   y[i] standard normal (Box-Muller in double,
//   include/ember/kernels/philox.hpp)
// Element i takes lane i%4 of philox4x32_10(counter = st.offset + i/4, key = st.seed).
// Kernel variant: one grid-stride kernel over the ceil(n/4) counters; each thread generates one
// counter block and stores its (up to) four floats. Same generator code as the CPU, so the fills
// are bitwise equal for uniforms; normals agree bitwise unless the device and host libm differ
// in the last bit of log/cos/sin (computed in double, then rounded to float).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "../philox.hpp"
#include "common.cuh"

namespace ember::cuda {

namespace random_detail {

template <bool kNormal>
__global__ void __launch_bounds__(kThreads)
    philox_fill_kernel(int64_t n, kernels::PhiloxState st, float* y) {
  const int64_t ncounters = (n + 3) / 4;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < ncounters; c += stride) {
    float r[4];
    if (kNormal)
      kernels::philox_normal4(st.offset + static_cast<uint64_t>(c), st.seed, r);
    else
      kernels::philox_uniform4(st.offset + static_cast<uint64_t>(c), st.seed, r);
    const int64_t base = 4 * c;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (base + j < n) y[base + j] = r[j];
  }
}

template <bool kNormal>
inline void philox_fill(int64_t n, kernels::PhiloxState st, float* y, cudaStream_t stream,
                        const char* op) {
  if (n <= 0) return;
  launch(op, "philox_fill_kernel", philox_fill_kernel<kNormal>, grid_1d((n + 3) / 4), kThreads, 0,
         stream, n, st, y);
}

}  // namespace random_detail

inline void rand_uniform(int64_t n, kernels::PhiloxState st, float* y, cudaStream_t stream) {
  random_detail::philox_fill<false>(n, st, y, stream, "rand_uniform");
}

inline void rand_normal(int64_t n, kernels::PhiloxState st, float* y, cudaStream_t stream) {
  random_detail::philox_fill<true>(n, st, y, stream, "rand_normal");
}

}  // namespace ember::cuda
