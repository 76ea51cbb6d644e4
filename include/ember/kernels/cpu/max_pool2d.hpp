// @file include/ember/kernels/cpu/max_pool2d.hpp
// @brief 2-D max pooling (no dilation) on CPU, matching PyTorch's CPU kernel.
//
// Forward: each window is clipped to the input (padded positions are -inf, so they never win
// unless the whole window is padding); the window is scanned in row-major order and an element
// replaces the running maximum when it is strictly greater or NaN. So argmax is the FIRST
// maximum (ties keep the earlier element) and the LAST NaN in the window, exactly as PyTorch.
// The argmax starts at the first in-bounds window position, so an all -inf window still points
// inside the plane. argmax stores ih*W + iw within the (n, c) plane.
// Backward: dx is zeroed and every dy is added at its argmax; the scatter is serial within a
// plane (in output order, deterministic) and parallel over the N*C planes.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../params.hpp"
#include "parallel.hpp"

namespace ember::cpu {

inline void max_pool2d_forward(const kernels::MaxPool2dShape& s, const float* x, float* y,
                               int32_t* argmax) {
  const int64_t planes = int64_t(s.N) * s.C;
  const int64_t rows = planes * s.OH;  // one task item = one output row of one plane
  const int64_t HWin = int64_t(s.H) * s.W;
  const int64_t grain =
      std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, int64_t(s.OW) * s.kernel));
  if (s.kernel == 2 && s.stride == 2 && s.pad == 0) {
    // The U-Net's pooling: a branchless 2x2 window (random data makes the compare branch of the
    // general loop mispredict half the time). Same rule: strictly greater or NaN wins, in
    // row-major window order, starting from the window's first element.
    parallel_for(rows, grain, [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) {
        const int64_t p = r / s.OH;
        const int oh = static_cast<int>(r - p * s.OH);
        const float* r0 = x + p * HWin + int64_t(2 * oh) * s.W;
        const float* r1 = r0 + s.W;
        float* yr = y + r * s.OW;
        int32_t* ar = argmax + r * s.OW;
        const int32_t base = 2 * oh * s.W;
        for (int ow = 0; ow < s.OW; ++ow) {
          const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
          float m = a;
          int32_t i = base + 2 * ow;
          bool t = (b > m) | (b != b);
          m = t ? b : m;
          i = t ? base + 2 * ow + 1 : i;
          t = (c > m) | (c != c);
          m = t ? c : m;
          i = t ? base + s.W + 2 * ow : i;
          t = (d > m) | (d != d);
          m = t ? d : m;
          i = t ? base + s.W + 2 * ow + 1 : i;
          yr[ow] = m;
          ar[ow] = i;
        }
      }
    });
    return;
  }
  parallel_for(rows, grain, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const int64_t p = r / s.OH;
      const int oh = static_cast<int>(r - p * s.OH);
      const float* xp = x + p * HWin;
      float* yr = y + r * s.OW;
      int32_t* ar = argmax + r * s.OW;
      int h0 = oh * s.stride - s.pad;
      const int h1 = std::min(h0 + s.kernel, s.H);
      h0 = std::max(h0, 0);
      for (int ow = 0; ow < s.OW; ++ow) {
        int w0 = ow * s.stride - s.pad;
        const int w1 = std::min(w0 + s.kernel, s.W);
        w0 = std::max(w0, 0);
        int32_t best = h0 * s.W + w0;
        float m = -std::numeric_limits<float>::infinity();
        for (int ih = h0; ih < h1; ++ih) {
          const float* xrow = xp + int64_t(ih) * s.W;
          for (int iw = w0; iw < w1; ++iw) {
            const float v = xrow[iw];
            if (v > m || v != v) {
              m = v;
              best = ih * s.W + iw;
            }
          }
        }
        yr[ow] = m;
        ar[ow] = best;
      }
    }
  });
}

inline void max_pool2d_backward(const kernels::MaxPool2dShape& s, const float* dy,
                                const int32_t* argmax, float* dx) {
  const int64_t planes = int64_t(s.N) * s.C;
  const int64_t HWin = int64_t(s.H) * s.W;
  const int64_t HWout = int64_t(s.OH) * s.OW;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, HWin + HWout));
  parallel_for(planes, grain, [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p) {
      float* dxp = dx + p * HWin;
      std::memset(dxp, 0, static_cast<size_t>(HWin) * sizeof(float));
      const float* dyp = dy + p * HWout;
      const int32_t* ap = argmax + p * HWout;
      for (int64_t o = 0; o < HWout; ++o) {
        const int32_t idx = ap[o];
        if (idx >= 0 && idx < HWin) dxp[idx] += dyp[o];  // guard against corrupt indices
      }
    }
  });
}

}  // namespace ember::cpu
