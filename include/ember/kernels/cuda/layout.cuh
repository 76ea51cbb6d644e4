// @file include/ember/kernels/cuda/layout.cuh
// @brief Layout kernels on CUDA, twins of include/ember/kernels/cpu/layout.hpp.
//
// Computes (device pointers, all outputs =):
//   permute_copy(p, x, y)          y[o] = x[sum_d o_d * p.in_strides[d]], (o_0..o_{rank-1}) the
//                                  row-major multi-index of o in p.out_sizes (params.hpp)
//   one_hot_forward(n, c, idx, y)  y[i*c + k] = (idx[i] == k) ? 1 : 0, i < n, k < c
// Kernel variant: the grid-stride map_kernel of elementwise.cuh (256 threads, int64 indices),
// one thread per output element; consecutive threads write consecutive outputs (coalesced
// writes; reads are gathered). Pure data movement: bitwise equal to the CPU. x and y must not
// overlap.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace layout_detail {

struct PermuteOp {
  kernels::PermuteParams p;
  const float* x;
  float* y;
  __device__ void operator()(int64_t o) const {
    int64_t rem = o, src = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t q = rem / p.out_sizes[d];
      src += (rem - q * p.out_sizes[d]) * p.in_strides[d];
      rem = q;
    }
    y[o] = x[src];
  }
};

struct OneHotOp {
  int64_t num_classes;
  const float* idx;
  float* y;
  __device__ void operator()(int64_t o) const {
    const int64_t i = o / num_classes, k = o - i * num_classes;
    y[o] = static_cast<int64_t>(idx[i]) == k ? 1.0f : 0.0f;
  }
};

}  // namespace layout_detail

inline void permute_copy(const kernels::PermuteParams& p, const float* x, float* y,
                         cudaStream_t stream) {
  ew_detail::launch_map(p.n, layout_detail::PermuteOp{p, x, y}, stream, "permute_copy");
}

inline void one_hot_forward(int64_t n, int64_t num_classes, const float* idx, float* y,
                            cudaStream_t stream) {
  if (n <= 0 || num_classes <= 0) return;
  ew_detail::launch_map(n * num_classes, layout_detail::OneHotOp{num_classes, idx, y}, stream,
                        "one_hot_forward");
}

}  // namespace ember::cuda
