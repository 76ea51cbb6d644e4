// @file include/ember/kernels/cpu/conv_transpose2d.hpp
// @brief 2-D transposed convolution (PyTorch ConvTranspose2d semantics) for the CPU backend.
//
//   conv_transpose2d_forward(s, x, w, b /*nullable*/, y)         y  = conv^T(x, w) + b
//   conv_transpose2d_backward_input(s, dy, w, dx)                dx = conv(dy, w)
//   conv_transpose2d_backward_weight(s, x, dy, dw, db /*nullable*/)
// Layouts: x (N,C,H,W), w (C,K,R,S), y (N,K,OH,OW); outputs overwritten. output_padding only adds
// rows/columns at the bottom/right of y.
//
// A transposed convolution is the input-gradient of the convolution whose input is y and whose
// output is x, with the same weight read as (K_conv = C, C_conv = K, R, S). So every function maps
// onto conv2d.hpp (no zero-stuffed input is ever built).
#pragma once
#include <algorithm>
#include <cstdint>

#include "../params.hpp"
#include "conv2d.hpp"
#include "parallel.hpp"

namespace ember::cpu {

namespace conv_detail {
/// The convolution whose input-gradient is the transposed convolution `t`.
inline ember::kernels::Conv2dShape as_conv(const ember::kernels::ConvTranspose2dShape& t) {
  ember::kernels::Conv2dShape c;
  c.N = t.N;
  c.C = t.K;
  c.H = t.OH;
  c.W = t.OW;
  c.K = t.C;
  c.R = t.R;
  c.S = t.S;
  c.stride = t.stride;
  c.pad = t.pad;
  c.OH = t.H;
  c.OW = t.W;
  return c;
}
}  // namespace conv_detail

inline void conv_transpose2d_forward(ember::kernels::ConvTranspose2dShape s, const float* x,
                                     const float* w, const float* b, float* y) {
  if (s.N <= 0 || s.K <= 0 || s.OH <= 0 || s.OW <= 0) return;
  conv_detail::backward_input(conv_detail::as_conv(s), x, w, y, b);  // bias fused where possible
}

inline void conv_transpose2d_backward_input(ember::kernels::ConvTranspose2dShape s,
                                            const float* dy, const float* w, float* dx) {
  conv2d_forward(conv_detail::as_conv(s), dy, w, nullptr, dx);
}

inline void conv_transpose2d_backward_weight(ember::kernels::ConvTranspose2dShape s,
                                             const float* x, const float* dy, float* dw,
                                             float* db) {
  conv2d_backward_weight(conv_detail::as_conv(s), dy, x, dw, nullptr);
  if (db) {
    if (s.N <= 0)
      std::fill(db, db + s.K, 0.f);
    else
      conv_detail::channel_sums(s.N, s.K, static_cast<int64_t>(s.OH) * s.OW, dy, db);
  }
}

}  // namespace ember::cpu
