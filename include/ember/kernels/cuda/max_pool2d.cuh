// @file include/ember/kernels/cuda/max_pool2d.cuh
// @brief 2-D max pooling (no dilation) on CUDA, twin of include/ember/kernels/cpu/max_pool2d.hpp.
//
// Layouts (contiguous, device): x / dx (N,C,H,W) float32, y / dy / argmax (N,C,OH,OW) with
// argmax int32 = ih*W + iw inside the (n, c) plane.
//   max_pool2d_forward(s, x, y, argmax)    (=) window clipped to the input (padding = -inf),
//       scanned row-major; a value replaces the running max when strictly greater or NaN, so
//       argmax is the FIRST maximum (and the last NaN), as PyTorch; it starts at the first
//       in-bounds window position.
//   max_pool2d_backward(s, dy, argmax, dx) (=) dx[i] = sum of dy over the windows whose argmax
//       is i, i.e. zero then every dy added at its argmax.
// Kernel variants:
//   maxpool_fwd_kernel  one thread per output element (flat grid-stride, int64 indices).
//   maxpool_bwd_kernel  gather, one thread per input element: it visits the windows that
//                       contain it (oh, ow ascending, the CPU's scatter order) and adds dy where
//                       argmax points at it. No atomics; bitwise equal to the CPU result.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "../params.hpp"
#include "common.cuh"

namespace ember::cuda {

namespace pool_detail {

EMBER_HD int imin(int a, int b) { return a < b ? a : b; }
EMBER_HD int imax(int a, int b) { return a > b ? a : b; }

/// Output element idx (flat over N, C, OH, OW): its max and argmax.
template <class T>
EMBER_HD void maxpool_fwd_one(const kernels::MaxPool2dShape& s, const T* x, int64_t idx,
                                   T* y, int32_t* argmax) {
  const int64_t OHW = int64_t(s.OH) * s.OW;
  const int64_t plane = idx / OHW;
  const int o = static_cast<int>(idx - plane * OHW);
  const int oh = o / s.OW, ow = o - oh * s.OW;
  int h0 = oh * s.stride - s.pad;
  const int h1 = imin(h0 + s.kernel, s.H);
  h0 = imax(h0, 0);
  int w0 = ow * s.stride - s.pad;
  const int w1 = imin(w0 + s.kernel, s.W);
  w0 = imax(w0, 0);
  const T* xp = x + plane * (int64_t(s.H) * s.W);
  int32_t best = h0 * s.W + w0;
  T m = -INFINITY;
  for (int ih = h0; ih < h1; ++ih) {
    const T* xrow = xp + int64_t(ih) * s.W;
    for (int iw = w0; iw < w1; ++iw) {
      const T v = xrow[iw];
      if (v > m || v != v) {
        m = v;
        best = ih * s.W + iw;
      }
    }
  }
  y[idx] = m;
  argmax[idx] = best;
}

/// Input element idx (flat over N, C, H, W): the sum of dy over the windows whose argmax is it,
/// visited in (oh, ow) ascending order.
template <class T>
EMBER_HD T maxpool_bwd_one(const kernels::MaxPool2dShape& s, const T* dy,
                                const int32_t* argmax, int64_t idx) {
  const int64_t HWin = int64_t(s.H) * s.W;
  const int64_t plane = idx / HWin;
  const int q = static_cast<int>(idx - plane * HWin);  // ih*W + iw
  const int ih = q / s.W, iw = q - ih * s.W;
  // Windows containing ih: oh*stride - pad <= ih <= oh*stride - pad + kernel - 1.
  const int th = ih + s.pad, tw = iw + s.pad;
  const int oh0 = th < s.kernel ? 0 : (th - s.kernel) / s.stride + 1;
  const int oh1 = imin(th / s.stride, s.OH - 1);
  const int ow0 = tw < s.kernel ? 0 : (tw - s.kernel) / s.stride + 1;
  const int ow1 = imin(tw / s.stride, s.OW - 1);
  const int64_t pbase = plane * (int64_t(s.OH) * s.OW);
  T acc = T(0);
  for (int oh = oh0; oh <= oh1; ++oh) {
    for (int ow = ow0; ow <= ow1; ++ow) {
      const int64_t o = pbase + int64_t(oh) * s.OW + ow;
      if (argmax[o] == q) acc += dy[o];
    }
  }
  return acc;
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    maxpool_fwd_kernel(kernels::MaxPool2dShape s, const T* x, T* y, int32_t* argmax) {
  const int64_t total = int64_t(s.N) * s.C * s.OH * s.OW;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride)
    maxpool_fwd_one(s, x, idx, y, argmax);
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    maxpool_bwd_kernel(kernels::MaxPool2dShape s, const T* dy, const int32_t* argmax, T* dx) {
  const int64_t total = int64_t(s.N) * s.C * s.H * s.W;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride)
    dx[idx] = maxpool_bwd_one(s, dy, argmax, idx);
}

}  // namespace pool_detail

inline void max_pool2d_forward(kernels::MaxPool2dShape s, const float* x, float* y,
                               int32_t* argmax, cudaStream_t stream) {
  const int64_t total = int64_t(s.N) * s.C * s.OH * s.OW;
  if (total <= 0 || s.N <= 0 || s.C <= 0 || s.OH <= 0 || s.OW <= 0) return;
  launch("max_pool2d_forward", "maxpool_fwd_kernel", pool_detail::maxpool_fwd_kernel<float>,
         grid_1d(total), kThreads, 0, stream, s, x, y, argmax);
}

inline void max_pool2d_backward(kernels::MaxPool2dShape s, const float* dy, const int32_t* argmax,
                                float* dx, cudaStream_t stream) {
  const int64_t total = int64_t(s.N) * s.C * s.H * s.W;
  if (total <= 0 || s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0) return;
  if (s.stride <= 0) throw ember::Error("max_pool2d_backward: stride must be > 0");
  launch("max_pool2d_backward", "maxpool_bwd_kernel", pool_detail::maxpool_bwd_kernel<float>,
         grid_1d(total), kThreads, 0, stream, s, dy, argmax, dx);
}

}  // namespace ember::cuda
