// @file include/ember/kernels/cuda/conv_transpose2d.cuh
// @brief 2-D transposed convolution (PyTorch ConvTranspose2d semantics) on CUDA, twin of
//        include/ember/kernels/cpu/conv_transpose2d.hpp.
//
// Layouts (contiguous float32, device): x (N,C,H,W), w (C,K,R,S), b (K), y/dy (N,K,OH,OW) with
// OH = (H-1)*stride - 2*pad + R + out_pad (out_pad only adds rows/columns at the bottom/right).
//   conv_transpose2d_forward(s, x, w, b /*nullable*/, y)          y = conv^T(x, w) + b     (=)
//   conv_transpose2d_backward_input(s, dy, w, dx)                 dx = conv(dy, w)         (=)
//   conv_transpose2d_backward_weight(s, x, dy, dw, db /*null.*/)  dw, db = sum dy          (=)
// Kernel variants (the implicit-GEMM ops of conv2d.cuh; no atomics, bitwise reproducible):
//   forward         ConvTransFwdOp with in = x (Ci = C), out = y (Co = K), weight (C, K, R, S):
//                   st*st output phases, each a GEMM over only the taps that reach it.
//   backward_input  ConvFwdOp with in = dy (Ci = K), out = dx (Co = C), weight read as
//                   (C, K, R, S) = (Co, Ci, R, S): a plain strided convolution of dy.
//   backward_weight ConvWgradOp with G = x (Cg = C), T = dy (Ct = K):
//                   dw[c,k,r,s] = sum_{n,ih,iw} x[n,c,ih,iw] * dy[n,k,ih*st-pad+r,iw*st-pad+s],
//                   split-K with an ordered reduction; db = channel sums of dy (double).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "common.cuh"
#include "conv2d.cuh"

namespace ember::cuda {

// ---- the GEMM ops behind each public function (also used by the host emulation tests) ----

inline conv_detail::ConvTransFwdOp conv_transpose2d_forward_op(
    const kernels::ConvTranspose2dShape& s, const float* x, const float* w, const float* b,
    float* y) {
  return conv_detail::make_conv_trans_fwd(x, w, b, y, s.N, s.C, s.H, s.W, s.K, s.R, s.S,
                                          s.stride, s.pad, s.OH, s.OW);
}

/// dx[n,c,ih,iw] = sum_{k,r,s} dy[n,k,ih*st-pad+r,iw*st-pad+s] * w[c,k,r,s]: a convolution of dy
/// (Ci = K) into dx (Co = C) whose weight (C, K, R, S) is (Co, Ci, R, S).
inline conv_detail::ConvFwdOp conv_transpose2d_backward_input_op(
    const kernels::ConvTranspose2dShape& s, const float* dy, const float* w, float* dx) {
  return conv_detail::make_conv_fwd(dy, w, nullptr, dx, s.N, s.K, s.OH, s.OW, s.C, s.R, s.S,
                                    s.stride, s.pad, s.H, s.W);
}

/// dw[c,k,r,s] = sum_{n,ih,iw} x[n,c,ih,iw] * dy[n,k,ih*st-pad+r,iw*st-pad+s]
inline conv_detail::ConvWgradOp conv_transpose2d_backward_weight_op(
    const kernels::ConvTranspose2dShape& s, const float* x, const float* dy, float* dw) {
  return conv_detail::make_conv_wgrad(x, dy, dw, s.N, s.C, s.H, s.W, s.K, s.OH, s.OW, s.R, s.S,
                                      s.stride, s.pad);
}

inline void conv_transpose2d_forward(kernels::ConvTranspose2dShape s, const float* x,
                                     const float* w, const float* b, float* y,
                                     cudaStream_t stream) {
  if (s.N <= 0 || s.K <= 0 || s.OH <= 0 || s.OW <= 0) return;
  igemm::run(conv_transpose2d_forward_op(s, x, w, b, y), stream, "conv_transpose2d_forward");
}

inline void conv_transpose2d_backward_input(kernels::ConvTranspose2dShape s, const float* dy,
                                            const float* w, float* dx, cudaStream_t stream) {
  if (s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0) return;
  igemm::run(conv_transpose2d_backward_input_op(s, dy, w, dx), stream,
             "conv_transpose2d_backward_input");
}

inline void conv_transpose2d_backward_weight(kernels::ConvTranspose2dShape s, const float* x,
                                             const float* dy, float* dw, float* db,
                                             cudaStream_t stream) {
  if (s.C > 0)
    igemm::run_splitk(conv_transpose2d_backward_weight_op(s, x, dy, dw), stream,
                      "conv_transpose2d_backward_weight");
  if (db)
    conv_detail::channel_sums(s.N, s.K, int64_t(s.OH) * s.OW, dy, db, stream,
                              "conv_transpose2d_backward_weight");
}

}  // namespace ember::cuda
