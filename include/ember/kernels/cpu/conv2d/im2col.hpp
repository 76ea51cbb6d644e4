// @file include/ember/kernels/cpu/conv2d/im2col.hpp
// @brief CPU conv2d engine "im2col": per-image im2col / col2im + gemm.hpp, images spread over the
//        thread pool.
//
// The fallback that handles every shape. conv2d.hpp chooses it for what no other engine takes:
// a forward with negative padding or padding >= the kernel size (stride 1) or a strided forward
// whose phase planes would be too large, a strided input gradient with fewer than 32 input
// channels (measured faster than the phase engine there), and every strided weight gradient
// (measured faster than the dot-product engine). The weight gradient is reduced over image
// ranges fixed by the shape (reduction_pieces), added in piece order: bitwise the same for any
// thread count.
#pragma once
#include "common.hpp"

namespace ember::cpu::conv_detail {

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
  // Image ranges fixed by the shape (not the thread count): one piece per image up to
  // kReductionPieces. Chunk 0 accumulates straight into dw, the others into partial buffers added
  // in order.
  const int chunks = static_cast<int>(reduction_pieces(s.N, 1));
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
  add_partials(dw, partial, chunks - 1, wsz);
}

}  // namespace ember::cpu::conv_detail
