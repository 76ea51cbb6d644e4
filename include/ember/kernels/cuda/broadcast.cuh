// @file include/ember/kernels/cuda/broadcast.cuh
// @brief Broadcasting kernels on CUDA, twins of include/ember/kernels/cpu/broadcast.hpp (the
//        binary ops, where, expand, the tensor-scalar ops) with the formulas of binary_math.hpp.
//
// Kernel variant: the grid-stride map_kernel of elementwise.cuh, one thread per output element,
// which finds its operands' offsets from the merged sizes and strides (at most 8 dims: a
// (N, C, 1, 1) + (N, C, H, W) broadcast is 2). One launch per op: nothing is materialised.
// Arithmetic is explicitly rounded (rn_math.hpp), so results equal the CPU's bitwise except
// pow with a general exponent (CUDA's powf).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../binary_math.hpp"
#include "../params.hpp"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {

namespace bcast_detail {

template <kernels::BinaryOp Op>
struct FwdOp {
  kernels::BroadcastShape s;
  const float *a, *b;
  float* y;
  __device__ void operator()(int64_t i) const {
    y[i] = kernels::binary_fwd<Op>(a[kernels::broadcast_offset(s, 0, i)],
                                   b[kernels::broadcast_offset(s, 1, i)]);
  }
};
template <kernels::BinaryOp Op>
struct BwdOp {
  kernels::BroadcastShape s;
  const float *a, *b, *g;
  float *ga, *gb;
  __device__ void operator()(int64_t i) const {
    float da, db;
    kernels::binary_bwd<Op>(a[kernels::broadcast_offset(s, 0, i)],
                            b[kernels::broadcast_offset(s, 1, i)], g[i], da, db);
    if (ga) ga[i] = da;
    if (gb) gb[i] = db;
  }
};
struct Fwd {
  const kernels::BroadcastShape& s;
  const float *a, *b;
  float* y;
  cudaStream_t stream;
  template <kernels::BinaryOp Op>
  void operator()() const {
    ew_detail::launch_map(s.numel, FwdOp<Op>{s, a, b, y}, stream, "binary_forward");
  }
};
struct Bwd {
  const kernels::BroadcastShape& s;
  const float *a, *b, *g;
  float *ga, *gb;
  cudaStream_t stream;
  template <kernels::BinaryOp Op>
  void operator()() const {
    ew_detail::launch_map(s.numel, BwdOp<Op>{s, a, b, g, ga, gb}, stream, "binary_backward");
  }
};

struct WhereFwdOp {
  kernels::BroadcastShape s;
  const float *c, *a, *b;
  float* y;
  __device__ void operator()(int64_t i) const {
    y[i] = c[kernels::broadcast_offset(s, 0, i)] != 0.0f ? a[kernels::broadcast_offset(s, 1, i)]
                                                          : b[kernels::broadcast_offset(s, 2, i)];
  }
};
struct WhereBwdOp {
  kernels::BroadcastShape s;
  const float *c, *g;
  float *ga, *gb;
  __device__ void operator()(int64_t i) const {
    const bool take_a = c[kernels::broadcast_offset(s, 0, i)] != 0.0f;
    if (ga) ga[i] = take_a ? g[i] : 0.0f;
    if (gb) gb[i] = take_a ? 0.0f : g[i];
  }
};
struct CopyOp {
  kernels::BroadcastShape s;
  const float* x;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = x[kernels::broadcast_offset(s, 0, i)]; }
};

template <kernels::ScalarOp Op>
struct ScalarFwdOp {
  const float* x;
  float s0, s1;
  float* y;
  __device__ void operator()(int64_t i) const { y[i] = kernels::scalar_fwd<Op>(x[i], s0, s1); }
};
template <kernels::ScalarOp Op>
struct ScalarBwdOp {
  const float* x;
  float s0, s1;
  const float* g;
  float* dx;
  __device__ void operator()(int64_t i) const {
    dx[i] = kernels::scalar_bwd<Op>(x[i], s0, s1, g[i]);
  }
};
struct ScalarFwd {
  int64_t n;
  const float* x;
  float s0, s1;
  float* y;
  cudaStream_t stream;
  template <kernels::ScalarOp Op>
  void operator()() const {
    ew_detail::launch_map(n, ScalarFwdOp<Op>{x, s0, s1, y}, stream, "scalar_forward");
  }
};
struct ScalarBwd {
  int64_t n;
  const float* x;
  float s0, s1;
  const float* g;
  float* dx;
  cudaStream_t stream;
  template <kernels::ScalarOp Op>
  void operator()() const {
    ew_detail::launch_map(n, ScalarBwdOp<Op>{x, s0, s1, g, dx}, stream, "scalar_backward");
  }
};

}  // namespace bcast_detail

inline void binary_forward(kernels::BinaryOp op, const kernels::BroadcastShape& s,
                           const float* a, const float* b, float* y, cudaStream_t stream) {
  kernels::with_binary_op(op, bcast_detail::Fwd{s, a, b, y, stream});
}

inline void binary_backward(kernels::BinaryOp op, const kernels::BroadcastShape& s,
                            const float* a, const float* b, const float* g, float* ga, float* gb,
                            cudaStream_t stream) {
  kernels::with_binary_op(op, bcast_detail::Bwd{s, a, b, g, ga, gb, stream});
}

inline void where_forward(const kernels::BroadcastShape& s, const float* c, const float* a,
                          const float* b, float* y, cudaStream_t stream) {
  ew_detail::launch_map(s.numel, bcast_detail::WhereFwdOp{s, c, a, b, y}, stream,
                        "where_forward");
}

inline void where_backward(const kernels::BroadcastShape& s, const float* c, const float* g,
                           float* ga, float* gb, cudaStream_t stream) {
  ew_detail::launch_map(s.numel, bcast_detail::WhereBwdOp{s, c, g, ga, gb}, stream,
                        "where_backward");
}

inline void broadcast_copy(const kernels::BroadcastShape& s, const float* x, float* y,
                           cudaStream_t stream) {
  ew_detail::launch_map(s.numel, bcast_detail::CopyOp{s, x, y}, stream, "broadcast_copy");
}

inline void scalar_forward(kernels::ScalarOp op, int64_t n, const float* x, float s0, float s1,
                           float* y, cudaStream_t stream) {
  kernels::with_scalar_op(op, bcast_detail::ScalarFwd{n, x, s0, s1, y, stream});
}

inline void scalar_backward(kernels::ScalarOp op, int64_t n, const float* x, float s0, float s1,
                            const float* g, float* dx, cudaStream_t stream) {
  kernels::with_scalar_op(op, bcast_detail::ScalarBwd{n, x, s0, s1, g, dx, stream});
}

}  // namespace ember::cuda
