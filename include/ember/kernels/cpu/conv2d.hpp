// @file include/ember/kernels/cpu/conv2d.hpp
// @brief 2-D convolution (cross-correlation, PyTorch semantics) for the CPU backend.
//
//   conv2d_forward(s, x, w, b /*nullable*/, y)       y  = conv(x, w) + b
//   conv2d_backward_input(s, dy, w, dx)              dx = conv^T(dy, w)
//   conv2d_backward_weight(s, x, dy, dw, db /*nullable*/)  dw = sum dy (x) x,  db = sum dy
// All outputs are overwritten. Layouts: x (N,C,H,W), w (K,C,R,S), y (N,K,OH,OW).
//
// Paths (chosen per call from the shape, here; all overwrite their outputs), one engine per file
// in include/ember/kernels/cpu/conv2d/:
//  * 3x3, stride 1, pad 1, H*W a multiple of 16 and <= 256, AVX-512 active: "dense" engine
//    (conv2d/dense.hpp): the batch's unpadded pixels are the GEMM's wide dimension, taps are masked
//    AVX-512 loads (no padded copy, no wasted pad positions); the input gradient is the same
//    forward engine on dy with the flipped, transposed weights.
//  * stride 1, 0 <= pad < kernel: "implicit GEMM" (conv2d/implicit_gemm.hpp) on a planar padded
//    copy of the input (all images of a channel stacked in one plane, see that file). Forward
//    and input gradient pack B tiles straight from shifted views of that plane and run an
//    MR x 48 register-tiled micro-kernel; the weight gradient is a 4 x 6 dot-product kernel over
//    the same views. The whole batch is one GEMM split over the thread pool, so small images
//    (4x4, 8x8) stay efficient.
//  * stride >= 2 forward: the same engine on a phase-split input (stride^2 phase planes per
//    channel turn every tap into a pure shift; conv2d/strided.hpp).
//  * stride >= 2 input gradient with >= 32 input channels: one implicit GEMM per output phase
//    (the transposed convolution never multiplies by stuffed zeros).
//  * anything else (and the strided weight gradient): per-image im2col + gemm.hpp, images spread
//    over the thread pool (conv2d/im2col.hpp).
// Micro-kernels exist for AVX-512, AVX2 (one template over simd.hpp's vector traits,
// conv2d/implicit_kernels_simd.inc) and portable C++, chosen like gemm.hpp (active_isa();
// conv2d/implicit_kernels.hpp). Shared helpers: conv2d/common.hpp.
// Weight/bias gradients are reduced as partial sums over pieces fixed by the shape alone
// (reduction_pieces in parallel.hpp, never the thread count), added in piece order, so results
// are bitwise the same for any number of threads. Scratch memory is per-thread and reused between
// calls (detail::thread_scratch), so steady-state calls do not allocate.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../params.hpp"
#include "conv2d/common.hpp"
#include "conv2d/dense.hpp"
#include "conv2d/im2col.hpp"
#include "conv2d/implicit_gemm.hpp"
#include "conv2d/strided.hpp"

namespace ember::cpu {

inline void conv2d_forward(ember::kernels::Conv2dShape s, const float* x, const float* w,
                           const float* b, float* y) {
  if (s.N <= 0 || s.K <= 0 || s.OH <= 0 || s.OW <= 0) return;
  if (conv_detail::implicit_ok(s)) {
    if (conv_detail::dense_ok(s))
      conv_detail::dense_conv_forward(s, x, w, b, y);
    else
      conv_detail::implicit_conv_forward(s, x, w, b, y);
    return;
  }
  if (conv_detail::strided_ok(s)) {
    conv_detail::strided_conv_forward(s, x, w, b, y);
    return;
  }
  conv_detail::generic_forward(s, x, w, y);
  conv_detail::add_channel_bias(s.N, s.K, static_cast<int64_t>(s.OH) * s.OW, b, y);
}

namespace conv_detail {
/// dx = conv^T(dy, w) (+ bias[c] when non-null: the transposed convolution's forward).
inline void backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                           const float* bias) {
  if (s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0) return;
  if (implicit_ok(s)) {
    if (dense_ok(s))
      dense_conv_backward_input(s, dy, w, dx, bias);
    else
      implicit_conv_backward_input(s, dy, w, dx, bias);
  } else if (strided_bwi_ok(s)) {
    strided_conv_backward_input(s, dy, w, dx, bias);
  } else {
    generic_backward_input(s, dy, w, dx);
    add_channel_bias(s.N, s.C, static_cast<int64_t>(s.H) * s.W, bias, dx);
  }
}
}  // namespace conv_detail

inline void conv2d_backward_input(ember::kernels::Conv2dShape s, const float* dy, const float* w,
                                  float* dx) {
  conv_detail::backward_input(s, dy, w, dx, nullptr);
}

inline void conv2d_backward_weight(ember::kernels::Conv2dShape s, const float* x, const float* dy,
                                   float* dw, float* db) {
  if (s.K <= 0) return;
  if (s.N <= 0) {
    std::fill(dw, dw + static_cast<int64_t>(s.K) * s.C * s.R * s.S, 0.f);
    if (db) std::fill(db, db + s.K, 0.f);
    return;
  }
  if (conv_detail::implicit_ok(s)) {
    if (conv_detail::dense_ok(s))
      conv_detail::dense_conv_backward_weight(s, x, dy, dw, db);
    else
      conv_detail::implicit_conv_backward_weight(s, x, dy, dw, db);  // db fused into the dy copy
    return;
  }
  // (for strided shapes the per-image gemm measured faster than the dot-product engine)
  conv_detail::generic_backward_weight(s, x, dy, dw);
  if (db) conv_detail::channel_sums(s.N, s.K, static_cast<int64_t>(s.OH) * s.OW, dy, db);
}

}  // namespace ember::cpu
