// @file kernels/cpu/conv2d.hpp
// @brief 2-D convolution (cross-correlation, PyTorch semantics) for the CPU backend.
//
//   conv2d_forward(s, x, w, b /*nullable*/, y)       y  = conv(x, w) + b
//   conv2d_backward_input(s, dy, w, dx)              dx = conv^T(dy, w)
//   conv2d_backward_weight(s, x, dy, dw, db /*nullable*/)  dw = sum dy (x) x,  db = sum dy
// All outputs are overwritten. Layouts: x (N,C,H,W), w (K,C,R,S), y (N,K,OH,OW).
//
// Generic path: per-image im2col (C*R*S x OH*OW) + gemm, images spread over the thread pool.
// Weight/bias gradients are reduced as per-chunk partial sums added in chunk order, so results
// depend only on the shape and the thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../params.hpp"
#include "gemm.hpp"
#include "parallel.hpp"

namespace ember::cpu {

namespace conv_detail {

using ember::kernels::Conv2dShape;

/// col[(c*R + r)*S + s][oh*OW + ow] = x[c][oh*stride - pad + r][ow*stride - pad + s] (0 outside).
inline void im2col(const Conv2dShape& s, const float* x, float* col) {
  const int P = s.OH * s.OW;
  for (int c = 0; c < s.C; ++c) {
    const float* xc = x + static_cast<int64_t>(c) * s.H * s.W;
    for (int r = 0; r < s.R; ++r) {
      for (int q = 0; q < s.S; ++q) {
        float* row = col + static_cast<int64_t>((c * s.R + r) * s.S + q) * P;
        // Valid ow range: 0 <= ow*stride - pad + q < W.
        int ow_lo = 0;
        while (ow_lo < s.OW && ow_lo * s.stride - s.pad + q < 0) ++ow_lo;
        int ow_hi = s.OW;
        while (ow_hi > ow_lo && (ow_hi - 1) * s.stride - s.pad + q >= s.W) --ow_hi;
        for (int oh = 0; oh < s.OH; ++oh) {
          float* dst = row + oh * s.OW;
          const int ih = oh * s.stride - s.pad + r;
          if (ih < 0 || ih >= s.H) {
            std::memset(dst, 0, sizeof(float) * s.OW);
            continue;
          }
          const float* src = xc + static_cast<int64_t>(ih) * s.W - s.pad + q;
          for (int ow = 0; ow < ow_lo; ++ow) dst[ow] = 0.f;
          if (s.stride == 1) {
            for (int ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow];
          } else {
            for (int ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * s.stride];
          }
          for (int ow = ow_hi; ow < s.OW; ++ow) dst[ow] = 0.f;
        }
      }
    }
  }
}

/// x[c][ih][iw] += col[...] for every in-range tap (x must be zeroed by the caller).
inline void col2im(const Conv2dShape& s, const float* col, float* x) {
  const int P = s.OH * s.OW;
  for (int c = 0; c < s.C; ++c) {
    float* xc = x + static_cast<int64_t>(c) * s.H * s.W;
    for (int r = 0; r < s.R; ++r) {
      for (int q = 0; q < s.S; ++q) {
        const float* row = col + static_cast<int64_t>((c * s.R + r) * s.S + q) * P;
        int ow_lo = 0;
        while (ow_lo < s.OW && ow_lo * s.stride - s.pad + q < 0) ++ow_lo;
        int ow_hi = s.OW;
        while (ow_hi > ow_lo && (ow_hi - 1) * s.stride - s.pad + q >= s.W) --ow_hi;
        for (int oh = 0; oh < s.OH; ++oh) {
          const int ih = oh * s.stride - s.pad + r;
          if (ih < 0 || ih >= s.H) continue;
          const float* src = row + oh * s.OW;
          float* dst = xc + static_cast<int64_t>(ih) * s.W - s.pad + q;
          if (s.stride == 1) {
            for (int ow = ow_lo; ow < ow_hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int ow = ow_lo; ow < ow_hi; ++ow) dst[ow * s.stride] += src[ow];
          }
        }
      }
    }
  }
}

/// Adds b[k] to every element of channel k of an (N, K, P) tensor.
inline void add_channel_bias(int N, int K, int64_t P, const float* b, float* y) {
  if (!b) return;
  parallel_for(static_cast<int64_t>(N) * K, std::max<int64_t>(1, 16384 / std::max<int64_t>(P, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t nk = lo; nk < hi; ++nk) {
                   const float bk = b[nk % K];
                   float* yk = y + nk * P;
                   for (int64_t p = 0; p < P; ++p) yk[p] += bk;
                 }
               });
}

/// db[k] = sum over n, p of dy[n][k][p]; deterministic (fixed per-channel order).
inline void channel_sums(int N, int K, int64_t P, const float* dy, float* db) {
  parallel_for(K, 1, [&](int64_t kb, int64_t ke) {
    for (int64_t k = kb; k < ke; ++k) {
      double acc = 0.0;
      for (int n = 0; n < N; ++n) {
        const float* d = dy + (static_cast<int64_t>(n) * K + k) * P;
        float part = 0.f;
        for (int64_t p = 0; p < P; ++p) part += d[p];
        acc += part;
      }
      db[k] = static_cast<float>(acc);
    }
  });
}

inline void generic_forward(const Conv2dShape& s, const float* x, const float* w, float* y) {
  const int64_t P = static_cast<int64_t>(s.OH) * s.OW;
  const int CRS = s.C * s.R * s.S;
  const int64_t xs = static_cast<int64_t>(s.C) * s.H * s.W, ys = static_cast<int64_t>(s.K) * P;
  parallel_for(s.N, 1, [&](int64_t nb, int64_t ne) {
    float* col = detail::thread_scratch(2, static_cast<size_t>(CRS) * P);
    for (int64_t n = nb; n < ne; ++n) {
      im2col(s, x + n * xs, col);
      gemm(false, false, s.K, static_cast<int>(P), CRS, 1.f, w, CRS, col, static_cast<int>(P), 0.f,
           y + n * ys, static_cast<int>(P));
    }
  });
}

inline void generic_backward_input(const Conv2dShape& s, const float* dy, const float* w,
                                   float* dx) {
  const int64_t P = static_cast<int64_t>(s.OH) * s.OW;
  const int CRS = s.C * s.R * s.S;
  const int64_t xs = static_cast<int64_t>(s.C) * s.H * s.W, ys = static_cast<int64_t>(s.K) * P;
  parallel_for(s.N, 1, [&](int64_t nb, int64_t ne) {
    float* col = detail::thread_scratch(2, static_cast<size_t>(CRS) * P);
    for (int64_t n = nb; n < ne; ++n) {
      gemm(true, false, CRS, static_cast<int>(P), s.K, 1.f, w, CRS, dy + n * ys,
           static_cast<int>(P), 0.f, col, static_cast<int>(P));
      std::memset(dx + n * xs, 0, sizeof(float) * xs);
      col2im(s, col, dx + n * xs);
    }
  });
}

inline void generic_backward_weight(const Conv2dShape& s, const float* x, const float* dy,
                                    float* dw) {
  const int64_t P = static_cast<int64_t>(s.OH) * s.OW;
  const int CRS = s.C * s.R * s.S;
  const int64_t xs = static_cast<int64_t>(s.C) * s.H * s.W, ys = static_cast<int64_t>(s.K) * P;
  const int64_t wsz = static_cast<int64_t>(s.K) * CRS;
  const int chunks = std::max(1, std::min(num_threads(), s.N));
  // Chunk 0 accumulates straight into dw, the others into partial buffers added in order.
  float* partial = chunks > 1 ? detail::thread_scratch(3, static_cast<size_t>(wsz) * (chunks - 1))
                              : nullptr;
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    float* col = detail::thread_scratch(2, static_cast<size_t>(CRS) * P);
    for (int64_t ch = cb; ch < ce; ++ch) {
      float* acc = ch == 0 ? dw : partial + (ch - 1) * wsz;
      const int64_t n0 = s.N * ch / chunks, n1 = s.N * (ch + 1) / chunks;
      for (int64_t n = n0; n < n1; ++n) {
        im2col(s, x + n * xs, col);
        gemm(false, true, s.K, CRS, static_cast<int>(P), 1.f, dy + n * ys, static_cast<int>(P), col,
             static_cast<int>(P), n == n0 ? 0.f : 1.f, acc, CRS);
      }
      if (n1 == n0) std::fill(acc, acc + wsz, 0.f);
    }
  });
  for (int ch = 1; ch < chunks; ++ch) {
    const float* p = partial + (ch - 1) * wsz;
    for (int64_t i = 0; i < wsz; ++i) dw[i] += p[i];
  }
}

}  // namespace conv_detail

inline void conv2d_forward(ember::kernels::Conv2dShape s, const float* x, const float* w,
                           const float* b, float* y) {
  if (s.N <= 0 || s.K <= 0 || s.OH <= 0 || s.OW <= 0) return;
  conv_detail::generic_forward(s, x, w, y);
  conv_detail::add_channel_bias(s.N, s.K, static_cast<int64_t>(s.OH) * s.OW, b, y);
}

inline void conv2d_backward_input(ember::kernels::Conv2dShape s, const float* dy, const float* w,
                                  float* dx) {
  if (s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0) return;
  conv_detail::generic_backward_input(s, dy, w, dx);
}

inline void conv2d_backward_weight(ember::kernels::Conv2dShape s, const float* x, const float* dy,
                                   float* dw, float* db) {
  if (s.K <= 0) return;
  if (s.N <= 0) {
    std::fill(dw, dw + static_cast<int64_t>(s.K) * s.C * s.R * s.S, 0.f);
    if (db) std::fill(db, db + s.K, 0.f);
    return;
  }
  conv_detail::generic_backward_weight(s, x, dy, dw);
  if (db) conv_detail::channel_sums(s.N, s.K, static_cast<int64_t>(s.OH) * s.OW, dy, db);
}

}  // namespace ember::cpu
