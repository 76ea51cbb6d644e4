// @file include/ember/kernels/cuda/reduce_dims.cuh
// @brief Reductions over some dimensions on CUDA (sum, amax, argmax, amax's backward), twins of
//        include/ember/kernels/cpu/reduce_dims.hpp.
//
// Kernel variant: one thread per output (grid-stride map_kernel of elementwise.cuh), which walks
// its reduced elements in row-major order; the sum in the fixed 16-lane order of
// binary_math.hpp, so results equal the CPU's bitwise. No atomics: each output, and in
// amax_backward each input element, is written by one thread. Reading is coalesced when the
// innermost dim is kept (neighbouring threads read neighbouring elements); a reduction of a long
// innermost dim into few outputs has little parallelism (a block per output would help there).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../binary_math.hpp"
#include "../params.hpp"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace reduce_dims_detail {
struct SumOp {
  kernels::ReduceShape s;
  const float* x;
  float* y;
  __device__ void operator()(int64_t o) const { y[o] = kernels::reduce_sum_one(s, x, o); }
};
struct MaxOp {
  kernels::ReduceShape s;
  const float* x;
  float *y, *index;
  __device__ void operator()(int64_t o) const {
    int64_t at = 0;
    y[o] = kernels::reduce_max_one(s, x, o, index ? &at : nullptr);
    if (index) index[o] = static_cast<float>(at);
  }
};
struct AmaxBwdOp {
  kernels::ReduceShape s;
  const float *x, *y, *g;
  float* dx;
  __device__ void operator()(int64_t o) const {
    const int64_t base = kernels::reduce_base(s, o);
    const float m = y[o];
    int64_t count = 0;
    kernels::ReduceCursor cur(s);
    for (int64_t j = 0; j < s.red_numel; ++j, cur.next()) count += x[base + cur.off] == m;
    const float share = __fdiv_rn(g[o], static_cast<float>(count));
    kernels::ReduceCursor w(s);
    for (int64_t j = 0; j < s.red_numel; ++j, w.next())
      dx[base + w.off] = x[base + w.off] == m ? share : __fmul_rn(0.0f, share);
  }
};
}  // namespace reduce_dims_detail

inline void reduce_sum_dims(const kernels::ReduceShape& s, const float* x, float* y,
                            cudaStream_t stream) {
  ew_detail::launch_map(s.out_numel, reduce_dims_detail::SumOp{s, x, y}, stream,
                        "reduce_sum_dims");
}

inline void reduce_max_dims(const kernels::ReduceShape& s, const float* x, float* y, float* index,
                            cudaStream_t stream) {
  ew_detail::launch_map(s.out_numel, reduce_dims_detail::MaxOp{s, x, y, index}, stream,
                        "reduce_max_dims");
}

inline void amax_backward(const kernels::ReduceShape& s, const float* x, const float* y,
                          const float* g, float* dx, cudaStream_t stream) {
  ew_detail::launch_map(s.out_numel, reduce_dims_detail::AmaxBwdOp{s, x, y, g, dx}, stream,
                        "amax_backward");
}

}  // namespace ember::cuda
