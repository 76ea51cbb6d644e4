// @file include/ember/kernels/cpu/broadcast.hpp
// @brief Broadcasting kernels on the CPU: the binary ops, where, expand, and the tensor-scalar
//        ops, with the formulas of binary_math.hpp.
//
//   binary_forward(op, s, a, b, y)          y[i] = op(a[off_a(i)], b[off_b(i)])
//   binary_backward(op, s, a, b, g, ga, gb) ga[i], gb[i]: the gradients of output element i
//                                           (output-shaped; either may be null)
//   where_forward(s, c, a, b, y)            y[i] = c[off_c(i)] != 0 ? a[off_a(i)] : b[off_b(i)]
//   where_backward(s, c, g, ga, gb)         ga[i] = c != 0 ? g[i] : 0, gb[i] = c != 0 ? 0 : g[i]
//   broadcast_copy(s, x, y)                 y[i] = x[off_x(i)]             (expand)
//   scalar_forward(op, n, x, s0, s1, y)     y[i] = op(x[i]; s0, s1)
//   scalar_backward(op, n, x, s0, s1, g, dx)
// The output and g are contiguous with s's sizes; operand k is read with s.stride[k] (for where:
// 0 = c, 1 = a, 2 = b). Rows (all dims but the last) are split over the thread pool; the inner
// loop is specialised for unit and zero strides, the broadcasts a (N, C, 1, 1) or (N, 1, 1, 1)
// operand of an (N, C, H, W) one merges into.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../binary_math.hpp"
#include "../params.hpp"
#include "elementwise.hpp"
#include "parallel.hpp"

namespace ember::cpu {

namespace bcast_detail {

/// Calls fn(y_offset, offsets of the operands, length, inner strides) for each row of the
/// output, the rows split over the thread pool.
template <int K, class F>
void for_rows(const kernels::BroadcastShape& s, const F& fn) {
  const int last = s.rank - 1;
  const int64_t len = s.size[last];
  const int64_t rows = s.numel / len;
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / len);
  parallel_for(rows, grain, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      int64_t off[K] = {};
      int64_t rem = r;
      for (int d = last - 1; d >= 0; --d) {
        const int64_t c = rem % s.size[d];
        rem /= s.size[d];
        for (int k = 0; k < K; ++k) off[k] += c * s.stride[k][d];
      }
      fn(r * len, off, len);
    }
  });
}

template <kernels::BinaryOp Op>
void forward(const kernels::BroadcastShape& s, const float* a, const float* b, float* y) {
  const int last = s.rank - 1;
  const int64_t sa = s.stride[0][last], sb = s.stride[1][last];
  for_rows<2>(s, [&](int64_t yo, const int64_t* off, int64_t len) {
    const float* pa = a + off[0];
    const float* pb = b + off[1];
    float* py = y + yo;
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < len; ++i) py[i] = kernels::binary_fwd<Op>(pa[i], pb[i]);
    } else if (sa == 1 && sb == 0) {
      const float vb = pb[0];
      for (int64_t i = 0; i < len; ++i) py[i] = kernels::binary_fwd<Op>(pa[i], vb);
    } else if (sa == 0 && sb == 1) {
      const float va = pa[0];
      for (int64_t i = 0; i < len; ++i) py[i] = kernels::binary_fwd<Op>(va, pb[i]);
    } else {
      for (int64_t i = 0; i < len; ++i) py[i] = kernels::binary_fwd<Op>(pa[i * sa], pb[i * sb]);
    }
  });
}

template <kernels::BinaryOp Op>
void backward(const kernels::BroadcastShape& s, const float* a, const float* b, const float* g,
              float* ga, float* gb) {
  const int last = s.rank - 1;
  const int64_t sa = s.stride[0][last], sb = s.stride[1][last];
  for_rows<2>(s, [&](int64_t yo, const int64_t* off, int64_t len) {
    const float* pa = a + off[0];
    const float* pb = b + off[1];
    for (int64_t i = 0; i < len; ++i) {
      float da, db;
      kernels::binary_bwd<Op>(pa[i * sa], pb[i * sb], g[yo + i], da, db);
      if (ga) ga[yo + i] = da;
      if (gb) gb[yo + i] = db;
    }
  });
}

struct Fwd {
  const kernels::BroadcastShape& s;
  const float *a, *b;
  float* y;
  template <kernels::BinaryOp Op>
  void operator()() const { forward<Op>(s, a, b, y); }
};
struct Bwd {
  const kernels::BroadcastShape& s;
  const float *a, *b, *g;
  float *ga, *gb;
  template <kernels::BinaryOp Op>
  void operator()() const { backward<Op>(s, a, b, g, ga, gb); }
};

struct ScalarFwd {
  int64_t n;
  const float* x;
  float s0, s1;
  float* y;
  template <kernels::ScalarOp Op>
  void operator()() const {
    const float *px = x;
    const float a = s0, b = s1;
    detail::parallel_map(n, y, [=](int64_t i) { return kernels::scalar_fwd<Op>(px[i], a, b); });
  }
};
struct ScalarBwd {
  int64_t n;
  const float* x;
  float s0, s1;
  const float* g;
  float* dx;
  template <kernels::ScalarOp Op>
  void operator()() const {
    const float *px = x, *pg = g;
    const float a = s0, b = s1;
    detail::parallel_map(n, dx,
                         [=](int64_t i) { return kernels::scalar_bwd<Op>(px[i], a, b, pg[i]); });
  }
};

}  // namespace bcast_detail

inline void binary_forward(kernels::BinaryOp op, const kernels::BroadcastShape& s,
                           const float* a, const float* b, float* y) {
  kernels::with_binary_op(op, bcast_detail::Fwd{s, a, b, y});
}

inline void binary_backward(kernels::BinaryOp op, const kernels::BroadcastShape& s,
                            const float* a, const float* b, const float* g, float* ga, float* gb) {
  kernels::with_binary_op(op, bcast_detail::Bwd{s, a, b, g, ga, gb});
}

inline void where_forward(const kernels::BroadcastShape& s, const float* c, const float* a,
                          const float* b, float* y) {
  const int last = s.rank - 1;
  const int64_t sc = s.stride[0][last], sa = s.stride[1][last], sb = s.stride[2][last];
  bcast_detail::for_rows<3>(s, [&](int64_t yo, const int64_t* off, int64_t len) {
    const float *pc = c + off[0], *pa = a + off[1], *pb = b + off[2];
    for (int64_t i = 0; i < len; ++i) y[yo + i] = pc[i * sc] != 0.0f ? pa[i * sa] : pb[i * sb];
  });
}

inline void where_backward(const kernels::BroadcastShape& s, const float* c, const float* g,
                           float* ga, float* gb) {
  const int last = s.rank - 1;
  const int64_t sc = s.stride[0][last];
  bcast_detail::for_rows<1>(s, [&](int64_t yo, const int64_t* off, int64_t len) {
    const float* pc = c + off[0];
    for (int64_t i = 0; i < len; ++i) {
      const bool take_a = pc[i * sc] != 0.0f;
      if (ga) ga[yo + i] = take_a ? g[yo + i] : 0.0f;
      if (gb) gb[yo + i] = take_a ? 0.0f : g[yo + i];
    }
  });
}

inline void broadcast_copy(const kernels::BroadcastShape& s, const float* x, float* y) {
  const int64_t sx = s.stride[0][s.rank - 1];
  bcast_detail::for_rows<1>(s, [&](int64_t yo, const int64_t* off, int64_t len) {
    const float* px = x + off[0];
    if (sx == 0)
      std::fill(y + yo, y + yo + len, px[0]);
    else
      for (int64_t i = 0; i < len; ++i) y[yo + i] = px[i * sx];
  });
}

inline void scalar_forward(kernels::ScalarOp op, int64_t n, const float* x, float s0, float s1,
                           float* y) {
  kernels::with_scalar_op(op, bcast_detail::ScalarFwd{n, x, s0, s1, y});
}

inline void scalar_backward(kernels::ScalarOp op, int64_t n, const float* x, float s0, float s1,
                            const float* g, float* dx) {
  kernels::with_scalar_op(op, bcast_detail::ScalarBwd{n, x, s0, s1, g, dx});
}

}  // namespace ember::cpu
