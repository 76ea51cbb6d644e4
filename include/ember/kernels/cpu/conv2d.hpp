// @file include/ember/kernels/cpu/conv2d.hpp
// @brief 2-D convolution (cross-correlation, PyTorch semantics) for the CPU backend.
//
//   conv2d_forward(s, x, w, b /*nullable*/, y)       y  = conv(x, w) + b
//   conv2d_backward_input(s, dy, w, dx)              dx = conv^T(dy, w)
//   conv2d_backward_weight(s, x, dy, dw, db /*nullable*/)  dw = sum dy (x) x,  db = sum dy
// All outputs are overwritten. Layouts: x (N,C,H,W), w (K,C,R,S), y (N,K,OH,OW).
//
// Paths (chosen per call from the shape; all overwrite their outputs):
//  * 3x3, stride 1, pad 1, H*W a multiple of 16 and <= 256, AVX-512 active: "dense" path (see its
//    section comment): the batch's unpadded pixels are the GEMM's wide dimension, taps are masked
//    AVX-512 loads (no padded copy, no wasted pad positions); the input gradient is the same
//    forward engine on dy with the flipped, transposed weights.
//  * stride 1, 0 <= pad < kernel: "implicit GEMM" on a planar padded copy of the input (all images
//    of a channel stacked in one plane, see the section comment below). Forward and input gradient
//    pack B tiles straight from shifted views of that plane and run an MR x 48 register-tiled
//    micro-kernel; the weight gradient is a 4 x 6 dot-product kernel over the same views. The whole
//    batch is one GEMM split over the thread pool, so small images (4x4, 8x8) stay efficient.
//  * stride >= 2 forward: the same engine on a phase-split input (stride^2 phase planes per
//    channel turn every tap into a pure shift).
//  * stride >= 2 input gradient with >= 32 input channels: one implicit GEMM per output phase
//    (the transposed convolution never multiplies by stuffed zeros).
//  * anything else (and the strided weight gradient): per-image im2col + gemm.hpp, images spread
//    over the thread pool.
// Micro-kernels exist for AVX-512, AVX2 and portable C++, chosen like gemm.hpp (active_isa()).
// Weight/bias gradients are reduced as partial sums over pieces fixed by the shape alone
// (reduction_pieces in parallel.hpp, never the thread count), added in piece order, so results
// are bitwise the same for any number of threads. Scratch memory is per-thread and reused between
// calls (detail::thread_scratch), so steady-state calls do not allocate.
#pragma once

// Loop-unroll hint for the host compiler; nvcc's front end does not know GCC's pragma, so a
// .cu file that includes this header gets no hint (and no warning).
#ifndef EMBER_CPU_UNROLL
#if defined(__CUDACC__) || !(defined(__GNUC__) || defined(__clang__))
#define EMBER_CPU_UNROLL(n)
#else
#define EMBER_CPU_PRAGMA(x) _Pragma(#x)
#define EMBER_CPU_UNROLL(n) EMBER_CPU_PRAGMA(GCC unroll n)
#endif
#endif
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

/// dw[i] += extra[p * wsz + i] for p = 0, 1, ..., count - 1 in that order (each element's sum
/// order is fixed, so the result does not depend on how the elements are spread over threads).
inline void add_partials(float* dw, const float* extra, int count, int64_t wsz) {
  if (count <= 0) return;
  parallel_for(wsz, int64_t(1) << 14, [&](int64_t b, int64_t e) {
    for (int p = 0; p < count; ++p) {
      const float* q = extra + p * wsz;
      for (int64_t i = b; i < e; ++i) dw[i] += q[i];
    }
  });
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
      // 16 interleaved lanes (vectorisable, fixed order), folded at the end.
      float lanes[16] = {};
      float tail = 0.f;
      const int64_t P16 = P / 16 * 16;
      for (int n = 0; n < N; ++n) {
        const float* d = dy + (static_cast<int64_t>(n) * K + k) * P;
        for (int64_t p = 0; p < P16; p += 16)
          for (int l = 0; l < 16; ++l) lanes[l] += d[p + l];
        for (int64_t p = P16; p < P; ++p) tail += d[p];
      }
      double acc = tail;
      for (int l = 0; l < 16; ++l) acc += lanes[l];
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


// ================================================================================================
// Stride-1 implicit GEMM on a "planar padded" layout.
//
// The input is copied once into planes xp[c] of length L, each holding all N images stacked
// vertically in blocks of Hb rows x Wb columns (row stride Wb). Image n's pixel (h, w) lives at
// (n*Hb + top + h)*Wb + left + w; everything else is zero. Because the right padding of a row is
// the left padding of the next one and the bottom padding of an image is the top padding of the
// next, an output pixel (n, oh, ow) sits at flat position j = (n*Hb + oh)*Wb + ow and its tap
// (c, r, q) reads xp[c*L + r*Wb + q + j]: row kd = (c, r, q) of the im2col matrix is the plane
// shifted by off[kd]. So Y (M x J) = A (M x Kd) * B with B[kd][j] = src[off[kd] + j] needs no
// im2col or B packing at all; the micro-kernels load B vectors straight from the planes. Positions
// whose (oh, ow) fall outside the output are computed and then dropped by the scatter.
// The weight gradient is the matching dot-product form dA[m][kd] = sum_j G[m][j] src[off[kd]+j]
// with G the output gradient in the same layout (zero at the dropped positions).
// ================================================================================================

/// Block geometry for one stride-1 convolution pass.
struct Planar {
  int N = 0, Hb = 0, Wb = 0;
  int64_t J = 0;  // N * Hb * Wb
  int64_t L = 0;  // plane stride (floats)
};

/// Short row copies: glibc memcpy calls dominate for 4..16-float rows, so copy inline.
using RowCopy = void (*)(float* dst, const float* src, int n);

inline void row_copy_generic(float* dst, const float* src, int n) { std::memcpy(dst, src, sizeof(float) * n); }

#if EMBER_CPU_X86
__attribute__((target("avx512f"))) inline void row_copy_avx512(float* dst, const float* src, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
  }
}
#endif

inline RowCopy row_copy_for(Isa isa) {
#if EMBER_CPU_X86
  if (isa == Isa::avx512) return &row_copy_avx512;
#endif
  (void)isa;
  return &row_copy_generic;
}

/// Copies x (N, C, h, w) into planes (C, N*Hb, Wb) with the image at (top, left) of its block and
/// zeros elsewhere, plus a zero tail up to L.
/// When `sums` is non-null it also receives sums[c] = the sum of channel c over all images
/// (16 interleaved lanes folded at the end: a fixed order, so deterministic).
inline void to_planar(int N, int C, int h, int w, int top, int left, const Planar& pl, const float* x,
                      float* xp, float* sums = nullptr) {
  const RowCopy copy = row_copy_for(active_isa());
  parallel_for(C, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      float* plane = xp + c * pl.L;
      float lanes[16] = {};
      for (int n = 0; n < N; ++n) {
        float* blk = plane + static_cast<int64_t>(n) * pl.Hb * pl.Wb;
        const float* src = x + (static_cast<int64_t>(n) * C + c) * h * w;
        std::memset(blk, 0, sizeof(float) * static_cast<size_t>(top) * pl.Wb);
        for (int i = 0; i < h; ++i) {
          float* row = blk + static_cast<int64_t>(top + i) * pl.Wb;
          for (int k = 0; k < left; ++k) row[k] = 0.f;
          copy(row + left, src + static_cast<int64_t>(i) * w, w);
          for (int k = left + w; k < pl.Wb; ++k) row[k] = 0.f;
          if (sums) {
            // The row's zero padding adds nothing; sum whole 16-float groups of the row.
            const float* rr = row + left;
            int k = 0;
            for (; k + 16 <= w; k += 16)
              for (int l = 0; l < 16; ++l) lanes[l] += rr[k + l];
            for (int l = 0; k + l < w; ++l) lanes[l] += rr[k + l];
          }
        }
        const int rest = pl.Hb - top - h;
        if (rest > 0)
          std::memset(blk + static_cast<int64_t>(top + h) * pl.Wb, 0,
                      sizeof(float) * static_cast<size_t>(rest) * pl.Wb);
      }
      std::memset(plane + pl.J, 0, sizeof(float) * static_cast<size_t>(pl.L - pl.J));
      if (sums) {
        double t = 0.0;
        for (int l = 0; l < 16; ++l) t += lanes[l];
        sums[c] = static_cast<float>(t);
      }
    }
  });
}

// ---- forward micro-kernels: C[i][0..NR) (+)= sum_k pa[k*as + i] * src[off[k] + 0..NR) ----------
using ImplicitKernel = void (*)(int kc, const float* pa, int as, const int* off, const float* src,
                                float* c, int64_t ldc, bool acc_in);

template <int MR, int NR>
inline void ik_generic(int kc, const float* pa, int as, const int* off, const float* src, float* c,
                       int64_t ldc, bool acc_in) {
  float acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = acc_in ? c[i * ldc + j] : 0.f;
  for (int k = 0; k < kc; ++k) {
    const float* b = src + off[k];
    const float* a = pa + k * as;
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = acc[i][j];
}

#if EMBER_CPU_X86
template <int MR>
__attribute__((target("avx2,fma"))) inline void ik_avx2(int kc, const float* pa, int as,
                                                        const int* off, const float* src, float* c,
                                                        int64_t ldc, bool acc_in) {
  __m256 acc[MR][3];
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = acc_in ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
    acc[i][1] = acc_in ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
    acc[i][2] = acc_in ? _mm256_loadu_ps(c + i * ldc + 16) : _mm256_setzero_ps();
  }
  for (int k = 0; k < kc; ++k) {
    const float* b = src + off[k];
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), b2 = _mm256_loadu_ps(b + 16);
EMBER_CPU_UNROLL(8)
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(pa + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
      acc[i][2] = _mm256_fmadd_ps(a, b2, acc[i][2]);
    }
    pa += as;
  }
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * ldc, acc[i][0]);
    _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
    _mm256_storeu_ps(c + i * ldc + 16, acc[i][2]);
  }
}

template <int MR>
__attribute__((target("avx512f"))) inline void ik_avx512(int kc, const float* pa, int as,
                                                          const int* off, const float* src,
                                                          float* c, int64_t ldc, bool acc_in) {
  __m512 acc[MR][3];
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = acc_in ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    acc[i][1] = acc_in ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
    acc[i][2] = acc_in ? _mm512_loadu_ps(c + i * ldc + 32) : _mm512_setzero_ps();
  }
  for (int k = 0; k < kc; ++k) {
    const float* b = src + off[k];
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32);
EMBER_CPU_UNROLL(8)
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(pa[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(a, b2, acc[i][2]);
    }
    pa += as;
  }
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc[i][0]);
    _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
    _mm512_storeu_ps(c + i * ldc + 32, acc[i][2]);
  }
}
#endif

// ---- B-tile packers: pb[k*NR + v] = src[off[k] + v] for v < NR ------------------------------
using ImplicitPack = void (*)(int kc, const int* off, const float* src, float* pb);

template <int NR>
inline void ip_generic(int kc, const int* off, const float* src, float* pb) {
  for (int k = 0; k < kc; ++k) {
    const float* from = src + off[k];
    float* to = pb + k * NR;
    for (int v = 0; v < NR; ++v) to[v] = from[v];
  }
}

#if EMBER_CPU_X86
__attribute__((target("avx2"))) inline void ip_avx2_24(int kc, const int* off, const float* src,
                                                       float* pb) {
  for (int k = 0; k < kc; ++k) {
    const float* from = src + off[k];
    float* to = pb + k * 24;
    _mm256_storeu_ps(to, _mm256_loadu_ps(from));
    _mm256_storeu_ps(to + 8, _mm256_loadu_ps(from + 8));
    _mm256_storeu_ps(to + 16, _mm256_loadu_ps(from + 16));
  }
}

__attribute__((target("avx512f"))) inline void ip_avx512_48(int kc, const int* off,
                                                             const float* src, float* pb) {
  for (int k = 0; k < kc; ++k) {
    const float* from = src + off[k];
    float* to = pb + k * 48;
    _mm512_storeu_ps(to, _mm512_loadu_ps(from));
    _mm512_storeu_ps(to + 16, _mm512_loadu_ps(from + 16));
    _mm512_storeu_ps(to + 32, _mm512_loadu_ps(from + 32));
  }
}
#endif

// ---- weight-gradient micro-kernels: out[i*TK + t] = sum_{j<len} a[i][j] * b[t][j] ------------
// len is a multiple of 16.
using DotKernel = void (*)(int64_t len, const float* const* a, const float* const* b, float* out);

template <int TM, int TK>
inline void dk_generic(int64_t len, const float* const* a, const float* const* b, float* out) {
  constexpr int V = 8;
  float acc[TM][TK][V] = {};
  for (int64_t j = 0; j < len; j += V)
    for (int i = 0; i < TM; ++i)
      for (int t = 0; t < TK; ++t)
        for (int v = 0; v < V; ++v) acc[i][t][v] += a[i][j + v] * b[t][j + v];
  for (int i = 0; i < TM; ++i)
    for (int t = 0; t < TK; ++t) {
      float s = 0.f;
      for (int v = 0; v < V; ++v) s += acc[i][t][v];
      out[i * TK + t] = s;
    }
}

#if EMBER_CPU_X86
__attribute__((target("avx2,fma"))) inline void dk_avx2_3x3(int64_t len, const float* const* a,
                                                            const float* const* b, float* out) {
  __m256 acc[3][3];
  for (int i = 0; i < 3; ++i)
    for (int t = 0; t < 3; ++t) acc[i][t] = _mm256_setzero_ps();
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *p0 = b[0], *p1 = b[1], *p2 = b[2];
  for (int64_t j = 0; j < len; j += 8) {
    const __m256 x0 = _mm256_loadu_ps(a0 + j), x1 = _mm256_loadu_ps(a1 + j), x2 = _mm256_loadu_ps(a2 + j);
    __m256 y = _mm256_loadu_ps(p0 + j);
    acc[0][0] = _mm256_fmadd_ps(x0, y, acc[0][0]);
    acc[1][0] = _mm256_fmadd_ps(x1, y, acc[1][0]);
    acc[2][0] = _mm256_fmadd_ps(x2, y, acc[2][0]);
    y = _mm256_loadu_ps(p1 + j);
    acc[0][1] = _mm256_fmadd_ps(x0, y, acc[0][1]);
    acc[1][1] = _mm256_fmadd_ps(x1, y, acc[1][1]);
    acc[2][1] = _mm256_fmadd_ps(x2, y, acc[2][1]);
    y = _mm256_loadu_ps(p2 + j);
    acc[0][2] = _mm256_fmadd_ps(x0, y, acc[0][2]);
    acc[1][2] = _mm256_fmadd_ps(x1, y, acc[1][2]);
    acc[2][2] = _mm256_fmadd_ps(x2, y, acc[2][2]);
  }
  for (int i = 0; i < 3; ++i)
    for (int t = 0; t < 3; ++t) {
      const __m128 lo = _mm256_castps256_ps128(acc[i][t]), hi = _mm256_extractf128_ps(acc[i][t], 1);
      __m128 s = _mm_add_ps(lo, hi);
      s = _mm_add_ps(s, _mm_movehl_ps(s, s));
      s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
      out[i * 3 + t] = _mm_cvtss_f32(s);
    }
}

// GCC 12's AVX-512 reduction/extract intrinsics use a self-initialised "undefined" vector that
// trips -Wuninitialized once inlined; the warning is spurious, so silence it for this helper.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) inline float hsum_avx512(__m512 v) {
  return _mm512_reduce_add_ps(v);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

__attribute__((target("avx512f"))) inline void dk_avx512_4x6(int64_t len, const float* const* a,
                                                             const float* const* b, float* out) {
  __m512 acc[4][6];
EMBER_CPU_UNROLL(4)
  for (int i = 0; i < 4; ++i)
EMBER_CPU_UNROLL(6)
    for (int t = 0; t < 6; ++t) acc[i][t] = _mm512_setzero_ps();
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  const float *p0 = b[0], *p1 = b[1], *p2 = b[2], *p3 = b[3], *p4 = b[4], *p5 = b[5];
  for (int64_t j = 0; j < len; j += 16) {
    const __m512 x0 = _mm512_loadu_ps(a0 + j), x1 = _mm512_loadu_ps(a1 + j);
    const __m512 x2 = _mm512_loadu_ps(a2 + j), x3 = _mm512_loadu_ps(a3 + j);
    const float* ps[6] = {p0, p1, p2, p3, p4, p5};
EMBER_CPU_UNROLL(6)
    for (int t = 0; t < 6; ++t) {
      const __m512 y = _mm512_loadu_ps(ps[t] + j);
      acc[0][t] = _mm512_fmadd_ps(x0, y, acc[0][t]);
      acc[1][t] = _mm512_fmadd_ps(x1, y, acc[1][t]);
      acc[2][t] = _mm512_fmadd_ps(x2, y, acc[2][t]);
      acc[3][t] = _mm512_fmadd_ps(x3, y, acc[3][t]);
    }
  }
EMBER_CPU_UNROLL(4)
  for (int i = 0; i < 4; ++i)
EMBER_CPU_UNROLL(6)
    for (int t = 0; t < 6; ++t) out[i * 6 + t] = hsum_avx512(acc[i][t]);
}
#endif

struct ImplicitConfig {
  int mr, nr;                 // forward register tile (rows x positions)
  ImplicitKernel kern[9];     // kern[m] handles m rows (1 <= m <= mr)
  int tm, tk;                 // weight-gradient tile
  DotKernel dot;
  ImplicitPack pack;          // B-tile packer for nr positions
};

inline ImplicitConfig implicit_config(Isa isa) {
#if EMBER_CPU_X86
  if (isa == Isa::avx512)
    return {8, 48,
            {nullptr, &ik_avx512<1>, &ik_avx512<2>, &ik_avx512<3>, &ik_avx512<4>, &ik_avx512<5>,
             &ik_avx512<6>, &ik_avx512<7>, &ik_avx512<8>},
            4, 6, &dk_avx512_4x6, &ip_avx512_48};
  if (isa == Isa::avx2)
    return {4, 24,
            {nullptr, &ik_avx2<1>, &ik_avx2<2>, &ik_avx2<3>, &ik_avx2<4>, nullptr, nullptr, nullptr,
             nullptr},
            3, 3, &dk_avx2_3x3, &ip_avx2_24};
#endif
  (void)isa;
  return {4, 16,
          {nullptr, &ik_generic<1, 16>, &ik_generic<2, 16>, &ik_generic<3, 16>, &ik_generic<4, 16>,
           nullptr, nullptr, nullptr, nullptr},
          2, 3, &dk_generic<2, 3>, &ip_generic<16>};
}

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/// Where computed position j = (n*Hb + i)*Wb + jj lands in the (N, M, OH, OW) output: row
/// st*i + r0, column st*jj + c0, dropped unless both fall inside the output.
struct OutMap {
  int M, OH, OW;
  int Hb, Wb;
  int64_t J;  // N*Hb*Wb: positions at or beyond are padding
  int st = 1, r0 = 0, c0 = 0;
};

/// y[n][m][row][col] = cbuf[m][j - j0] (+ bias[m]) for the valid positions j in [j0, j0 + jc).
inline void scatter_rows(const OutMap& om, int64_t j0, int64_t jc, const float* cbuf, int64_t ldc,
                         const float* bias, float* y) {
  const int64_t blk = static_cast<int64_t>(om.Hb) * om.Wb;
  const int64_t plane = static_cast<int64_t>(om.OH) * om.OW;
  const int64_t jend = std::min(j0 + jc, om.J);
  const int st = om.st;
  // Valid block columns: 0 <= st*jj + c0 < OW.
  const int jj_lo = om.c0 >= 0 ? 0 : (-om.c0 + st - 1) / st;
  const int jj_hi = std::min(om.Wb, om.OW - om.c0 <= 0 ? 0 : (om.OW - om.c0 + st - 1) / st);
  int64_t j = j0;
  while (j < jend) {
    const int64_t n = j / blk, rem = j % blk;
    const int i = static_cast<int>(rem / om.Wb), jj = static_cast<int>(rem % om.Wb);
    const int64_t seg = std::min<int64_t>(om.Wb - jj, jend - j);
    const int row = st * i + om.r0;
    const int lo = std::max(jj, jj_lo), hi = static_cast<int>(std::min<int64_t>(jj + seg, jj_hi));
    if (row >= 0 && row < om.OH && lo < hi) {
      const int64_t len = hi - lo;
      const float* src = cbuf + (j - j0) + (lo - jj);
      float* dst = y + n * om.M * plane + static_cast<int64_t>(row) * om.OW + st * lo + om.c0;
      for (int m = 0; m < om.M; ++m) {
        const float* sm = src + m * ldc;
        float* d = dst + m * plane;
        const float bm = bias ? bias[m] : 0.f;
        if (st == 1) {
          for (int64_t t = 0; t < len; ++t) d[t] = sm[t] + bm;
        } else {
          for (int64_t t = 0; t < len; ++t) d[t * st] = sm[t] + bm;
        }
      }
    }
    j += seg;
  }
}

/// Y = A * B (see the section comment) scattered through `om`. apack holds A as ceil(M/mr)
/// strips of Kd x mr (zero-padded rows). src must be readable up to off_max + round_up(J, nr).
inline void implicit_forward(const ImplicitConfig& cfg, int M, int Kd, const float* apack,
                             const int* off, const float* src, const OutMap& om, const float* bias,
                             float* y) {
  const int NR = cfg.nr, MR = cfg.mr;
  const int64_t JC = round_up(384, NR);
  const int KC = 128;
  const int64_t Jp = round_up(om.J, NR);
  const int64_t chunks = (Jp + JC - 1) / JC;
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    float* cbuf = detail::thread_scratch(7, static_cast<size_t>(round_up(M, MR)) * JC);
    // B tile packed contiguously (kc x NR): it stays in L1 while every A strip passes over it.
    float* pb = detail::thread_scratch(10, static_cast<size_t>(KC) * NR + KC);
    int* poff = reinterpret_cast<int*>(pb + static_cast<size_t>(KC) * NR);
    for (int k = 0; k < KC; ++k) poff[k] = k * NR;
    for (int64_t ch = cb; ch < ce; ++ch) {
      const int64_t j0 = ch * JC, jc = std::min(JC, Jp - j0);
      if (Kd == 0)
        for (int m = 0; m < M; ++m) std::fill(cbuf + m * JC, cbuf + m * JC + jc, 0.f);
      for (int64_t jt = 0; jt < jc; jt += NR) {
        for (int k0 = 0; k0 < Kd; k0 += KC) {
          const int kc = std::min(KC, Kd - k0);
          cfg.pack(kc, off + k0, src + j0 + jt, pb);
          for (int m0 = 0; m0 < M; m0 += MR) {
            const int mr = std::min(MR, M - m0);
            const float* pa = apack + static_cast<int64_t>(m0) * Kd + static_cast<int64_t>(k0) * MR;
            cfg.kern[mr](kc, pa, MR, poff, pb, cbuf + m0 * JC + jt, JC, k0 > 0);
          }
        }
      }
      scatter_rows(om, j0, jc, cbuf, JC, bias, y);
    }
  });
}

/// Packs A (M x Kd, element wget(m, kd)) into mr-row strips, Kd-major inside a strip.
template <class WGet>
inline void pack_implicit_a(int M, int Kd, int MR, WGet wget, float* dst) {
  for (int m0 = 0; m0 < M; m0 += MR) {
    float* d = dst + static_cast<int64_t>(m0) * Kd;
    for (int kd = 0; kd < Kd; ++kd)
      for (int i = 0; i < MR; ++i) d[kd * MR + i] = (m0 + i < M) ? wget(m0 + i, kd) : 0.f;
  }
}

/// dw[m][kd] = sum_j g[m*LG + j] * src[off[kd] + j] over j < Jp (multiple of 16). The j range is
/// cut into pieces of at least 1024 positions (reduction_pieces: fixed by Jp, not the thread
/// count); their partial sums are added in piece order, so any thread count gives the same bits.
inline void implicit_weight_grad(const ImplicitConfig& cfg, int M, int Kd, const float* g,
                                 int64_t LG, const int* off, const float* src, int64_t Jp,
                                 float* dw) {
  const int TM = cfg.tm, TK = cfg.tk;
  const int64_t units = Jp / 16;
  const int parts = static_cast<int>(reduction_pieces(units, 64));
  const int64_t wsz = static_cast<int64_t>(M) * Kd;
  float* partial = detail::thread_scratch(3, static_cast<size_t>(wsz) * parts);
  const int64_t JC = 1024;
  parallel_for(parts, 1, [&](int64_t pb, int64_t pe) {
    float* zero = detail::thread_scratch(8, JC);
    std::memset(zero, 0, sizeof(float) * JC);
    for (int64_t p = pb; p < pe; ++p) {
      float* acc = partial + p * wsz;
      std::fill(acc, acc + wsz, 0.f);
      const int64_t j0 = units * p / parts * 16, j1 = units * (p + 1) / parts * 16;
      for (int64_t jc0 = j0; jc0 < j1; jc0 += JC) {
        const int64_t len = std::min(JC, j1 - jc0);
        // The TK source rows stay in L1 while all gradient rows stream past them from L2.
        for (int k0 = 0; k0 < Kd; k0 += TK) {
          const float* bp[8];
          for (int t = 0; t < TK; ++t) bp[t] = k0 + t < Kd ? src + off[k0 + t] + jc0 : zero;
          for (int m0 = 0; m0 < M; m0 += TM) {
            const float* ap[8];
            for (int i = 0; i < TM; ++i) ap[i] = m0 + i < M ? g + (m0 + i) * LG + jc0 : zero;
            float out[64];
            cfg.dot(len, ap, bp, out);
            for (int i = 0; i < TM && m0 + i < M; ++i)
              for (int t = 0; t < TK && k0 + t < Kd; ++t)
                acc[static_cast<int64_t>(m0 + i) * Kd + k0 + t] += out[i * TK + t];
          }
        }
      }
    }
  });
  std::memcpy(dw, partial, sizeof(float) * wsz);
  add_partials(dw, partial + wsz, parts - 1, wsz);
}

/// Geometry of the planar layout for a stride-1 pass with input h x w, padding (ph, pw), kernel
/// R x S and output oh x ow; `extra` positions beyond J must stay readable.
inline Planar make_planar(int N, int h, int w, int ph, int pw, int R, int S, int oh, int ow,
                          int64_t extra) {
  Planar p;
  p.N = N;
  p.Hb = std::max(h + ph, oh);
  p.Wb = std::max(w + pw, ow);
  p.J = static_cast<int64_t>(N) * p.Hb * p.Wb;
  const int64_t max_off = static_cast<int64_t>(R - 1 + ph) * p.Wb + S + pw;
  p.L = round_up(p.J + extra + max_off + 16, 16);
  return p;
}

/// Strided variant: plane ((c*st + a)*st + b) holds the phase image P[i][j] = xpad[st*i + a][st*j + b]
/// of the zero-padded input (xpad = x shifted by pad), so tap (c, r, q) of output (oh, ow) reads
/// plane (c, r%st, q%st) at (oh + r/st, ow + q/st): again a pure shift.
inline void to_phase_planar(int N, int C, int H, int W, int pad, int st, const Planar& pl,
                            const float* x, float* xp) {
  parallel_for(static_cast<int64_t>(C) * st * st, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t pidx = pb; pidx < pe; ++pidx) {
      const int c = static_cast<int>(pidx / (st * st)), a = static_cast<int>(pidx / st % st),
                b = static_cast<int>(pidx % st);
      float* plane = xp + pidx * pl.L;
      for (int n = 0; n < N; ++n) {
        const float* src = x + (static_cast<int64_t>(n) * C + c) * H * W;
        for (int i = 0; i < pl.Hb; ++i) {
          float* row = plane + (static_cast<int64_t>(n) * pl.Hb + i) * pl.Wb;
          const int h = st * i + a - pad;
          if (h < 0 || h >= H) {
            for (int j = 0; j < pl.Wb; ++j) row[j] = 0.f;
            continue;
          }
          const float* srow = src + static_cast<int64_t>(h) * W;
          for (int j = 0; j < pl.Wb; ++j) {
            const int w = st * j + b - pad;
            row[j] = (w >= 0 && w < W) ? srow[w] : 0.f;
          }
        }
      }
      std::memset(plane + pl.J, 0, sizeof(float) * static_cast<size_t>(pl.L - pl.J));
    }
  });
}

/// Planar geometry + tap offsets of a strided (st >= 2) convolution's input.
inline Planar strided_planar(const Conv2dShape& s, int64_t extra) {
  Planar p;
  p.N = s.N;
  p.Hb = std::max((s.H + 2 * s.pad + s.stride - 1) / s.stride, s.OH);
  p.Wb = std::max((s.W + 2 * s.pad + s.stride - 1) / s.stride, s.OW);
  p.J = static_cast<int64_t>(s.N) * p.Hb * p.Wb;
  const int64_t max_off = static_cast<int64_t>((s.R - 1) / s.stride + 1) * p.Wb + s.S;
  p.L = round_up(p.J + extra + max_off + 16, 16);
  return p;
}

inline void strided_offsets(const Conv2dShape& s, const Planar& pl, int* off) {
  const int st = s.stride;
  for (int c = 0; c < s.C; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int q = 0; q < s.S; ++q)
        off[(c * s.R + r) * s.S + q] = static_cast<int>(((c * st + r % st) * st + q % st) * pl.L +
                                                        (r / st) * pl.Wb + q / st);
}

inline bool strided_ok(const Conv2dShape& s) {
  if (s.stride < 2 || s.pad < 0) return false;
  const Planar pl = strided_planar(s, 64);
  return static_cast<double>(pl.L) * s.C * s.stride * s.stride < 2.0e9 &&
         static_cast<double>(pl.L) * s.K < 2.0e9;
}

inline void strided_conv_forward(const Conv2dShape& s, const float* x, const float* w,
                                 const float* b, float* y) {
  const ImplicitConfig cfg = implicit_config(active_isa());
  const int Kd = s.C * s.R * s.S;
  const Planar pl = strided_planar(s, cfg.nr);
  float* xp = detail::thread_scratch(4, static_cast<size_t>(pl.L) * s.C * s.stride * s.stride);
  to_phase_planar(s.N, s.C, s.H, s.W, s.pad, s.stride, pl, x, xp);
  int* off = reinterpret_cast<int*>(detail::thread_scratch(5, Kd));
  strided_offsets(s, pl, off);
  float* apack = detail::thread_scratch(6, static_cast<size_t>(round_up(s.K, cfg.mr)) * Kd);
  pack_implicit_a(s.K, Kd, cfg.mr, [&](int m, int kd) { return w[static_cast<int64_t>(m) * Kd + kd]; },
                  apack);
  const OutMap om{s.K, s.OH, s.OW, pl.Hb, pl.Wb, pl.J};
  implicit_forward(cfg, s.K, Kd, apack, off, xp, om, b, y);
}

/// Strided input gradient, one output phase (a, b) at a time: rows ih with ih + pad = st*i + a
/// only see taps r = a + st*t, so each phase is a stride-1 correlation of dy with a sub-kernel,
/// again a pure shift of one planar copy of dy (padded by T-1 rows / U-1 columns on top / left).
inline void strided_conv_backward_input(const Conv2dShape& s, const float* dy, const float* w,
                                        float* dx, const float* bias) {
  const ImplicitConfig cfg = implicit_config(active_isa());
  const int st = s.stride;
  const int T = (s.R + st - 1) / st, U = (s.S + st - 1) / st;
  Planar pl;
  pl.N = s.N;
  pl.Hb = std::max(T - 1 + s.OH, (s.H - 1 + s.pad) / st + 1);
  pl.Wb = std::max(U - 1 + s.OW, (s.W - 1 + s.pad) / st + 1);
  pl.J = static_cast<int64_t>(s.N) * pl.Hb * pl.Wb;
  pl.L = round_up(pl.J + cfg.nr + static_cast<int64_t>(T + 1) * pl.Wb + U + 16, 16);
  float* gp = detail::thread_scratch(4, static_cast<size_t>(pl.L) * s.K);
  to_planar(s.N, s.K, s.OH, s.OW, T - 1, U - 1, pl, dy, gp);
  int* off = reinterpret_cast<int*>(detail::thread_scratch(5, static_cast<size_t>(s.K) * T * U));
  float* apack =
      detail::thread_scratch(6, static_cast<size_t>(round_up(s.C, cfg.mr)) * s.K * T * U);
  for (int a = 0; a < st; ++a) {
    const int Ta = a < s.R ? (s.R - a + st - 1) / st : 0;
    for (int b = 0; b < st; ++b) {
      const int Ub = b < s.S ? (s.S - b + st - 1) / st : 0;
      const int Kd = s.K * Ta * Ub;
      for (int k = 0; k < s.K; ++k)
        for (int t = 0; t < Ta; ++t)
          for (int u = 0; u < Ub; ++u)
            off[(k * Ta + t) * Ub + u] =
                static_cast<int>(k * pl.L + (T - 1 - t) * pl.Wb + (U - 1 - u));
      pack_implicit_a(s.C, Kd, cfg.mr,
                      [&](int c, int kd) {
                        const int k = kd / (Ta * Ub), tu = kd % (Ta * Ub);
                        const int r = a + st * (tu / Ub), q = b + st * (tu % Ub);
                        return w[((static_cast<int64_t>(k) * s.C + c) * s.R + r) * s.S + q];
                      },
                      apack);
      OutMap om{s.C, s.H, s.W, pl.Hb, pl.Wb, pl.J};
      om.st = st;
      om.r0 = a - s.pad;
      om.c0 = b - s.pad;
      implicit_forward(cfg, s.C, Kd, apack, off, gp, om, bias, dx);  // phases are disjoint
    }
  }
}

inline bool strided_bwi_ok(const Conv2dShape& s) {
  // With few input channels (the M of each phase GEMM) the phases are memory-bound and the
  // per-image im2col path measured faster (e.g. the U-Net's 64->16 up-convolution).
  if (s.stride < 2 || s.pad < 0 || s.pad >= s.stride * 4 || s.C < 32) return false;
  const double plane = (static_cast<double>(s.N) * (s.OH + s.H / s.stride + s.R + 2) + 4) *
                           (s.OW + s.W / s.stride + s.S + 2) + 256;
  return plane * std::max(s.C, s.K) < 2.0e9;
}

// ================================================================================================
// Dense small-image path (AVX-512, 3x3 kernel, pad 1, stride 1, H*W a multiple of 16, <= 256).
//
// The planar layout above pads every image to (H+1) x (W+1), which wastes 13-56% of the work for
// 16x16 .. 4x4 images. Here the GEMM's wide dimension is the batch's dense pixel index
// j = n*HW + p, taken 16 pixels (one vector, always inside one image) at a time. Tap (c, r, q) of
// pixel group g reads the 16 floats at src[n][c][p + (r-1)*W + (q-1)] under a lane mask that
// depends only on (r, q) and p/16 (zero where the tap falls outside the image); AVX-512 masked
// loads never touch masked-off lanes, so no copy of the input is needed. Forward / input gradient
// pack 48-pixel B tiles with those masked loads and write straight into the NCHW output; the
// weight gradient reads both operands in place with a 4 x 6 dot-product kernel.
// ================================================================================================
#if EMBER_CPU_X86
inline bool dense_ok(const Conv2dShape& s) {
  const int HW = s.H * s.W;
  return active_isa() == Isa::avx512 && s.stride == 1 && s.pad == 1 && s.R == 3 && s.S == 3 &&
         s.OH == s.H && s.OW == s.W && HW % 16 == 0 && HW <= 256 && s.C >= 1 && s.K >= 1 &&
         static_cast<double>(std::max(s.C, s.K)) * HW < 1.0e9;
}

/// mk[rq*G + g]: lanes l of pixel group g (p = 16g + l) whose tap (r, q) lies inside the image.
inline void dense_masks(int H, int W, uint16_t* mk) {
  const int G = H * W / 16;
  for (int rq = 0; rq < 9; ++rq)
    for (int g = 0; g < G; ++g) {
      unsigned m = 0;
      for (int l = 0; l < 16; ++l) {
        const int p = 16 * g + l, h = p / W + rq / 3 - 1, w = p % W + rq % 3 - 1;
        if (h >= 0 && h < H && w >= 0 && w < W) m |= 1u << l;
      }
      mk[rq * G + g] = static_cast<uint16_t>(m);
    }
}

/// c[v][i*ldc + 0..16) (+)= sum_k pa[k*8 + i] * pb[k*48 + 16v + 0..16) for v < nv, i < MR;
/// a fresh tile starts from bias[i] (or 0).
template <int MR>
__attribute__((target("avx512f"))) inline void dense_kern(int kc, const float* pa, const float* pb,
                                                           float* const* c, int64_t ldc, bool acc_in,
                                                           const float* bias, int nv) {
  __m512 acc[MR][3];
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) {
    const __m512 init = bias ? _mm512_set1_ps(bias[i]) : _mm512_setzero_ps();
    acc[i][0] = acc_in ? _mm512_loadu_ps(c[0] + i * ldc) : init;
    acc[i][1] = acc_in && nv > 1 ? _mm512_loadu_ps(c[1] + i * ldc) : init;
    acc[i][2] = acc_in && nv > 2 ? _mm512_loadu_ps(c[2] + i * ldc) : init;
  }
  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(pb), b1 = _mm512_load_ps(pb + 16), b2 = _mm512_load_ps(pb + 32);
EMBER_CPU_UNROLL(8)
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(pa[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(a, b2, acc[i][2]);
    }
    pa += 8;
    pb += 48;
  }
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c[0] + i * ldc, acc[i][0]);
    if (nv > 1) _mm512_storeu_ps(c[1] + i * ldc, acc[i][1]);
    if (nv > 2) _mm512_storeu_ps(c[2] + i * ldc, acc[i][2]);
  }
}

/// pb[k*48 + 16v + l] = mask(v, tap k0+k) lane l ? base[v][toff[k0+k] + l] : 0.
__attribute__((target("avx512f"))) inline void dense_pack(int kc, int k0, const int* toff,
                                                           const float* const* base,
                                                           const uint16_t* tm /*[3][9]*/,
                                                           float* pb) {
  int rq = k0 % 9;
  const float *b0 = base[0], *b1 = base[1], *b2 = base[2];
  for (int k = 0; k < kc; ++k) {
    const int o = toff[k0 + k];
    _mm512_store_ps(pb, _mm512_maskz_loadu_ps(static_cast<__mmask16>(tm[rq]), b0 + o));
    _mm512_store_ps(pb + 16, _mm512_maskz_loadu_ps(static_cast<__mmask16>(tm[9 + rq]), b1 + o));
    _mm512_store_ps(pb + 32, _mm512_maskz_loadu_ps(static_cast<__mmask16>(tm[18 + rq]), b2 + o));
    pb += 48;
    if (++rq == 9) rq = 0;
  }
}

/// y (N, M, H, W) = conv3x3_pad1(src (N, Cin, H, W), A) (+ bias); apack as pack_implicit_a(MR 8).
inline void dense_forward(int N, int Cin, int H, int W, int M, const float* apack, const float* src,
                          const float* bias, float* y) {
  using Kern = void (*)(int, const float*, const float*, float* const*, int64_t, bool, const float*,
                        int);
  const Kern kern[9] = {nullptr,        &dense_kern<1>, &dense_kern<2>,
                        &dense_kern<3>, &dense_kern<4>, &dense_kern<5>,
                        &dense_kern<6>, &dense_kern<7>, &dense_kern<8>};
  const int HW = H * W, G = HW / 16, Kd = Cin * 9, KC = 128;
  uint16_t mk[9 * 16];
  dense_masks(H, W, mk);
  int* toff = reinterpret_cast<int*>(detail::thread_scratch(5, Kd));
  for (int kd = 0; kd < Kd; ++kd)
    toff[kd] = (kd / 9) * HW + (kd % 9 / 3 - 1) * W + (kd % 3 - 1);
  const int64_t groups = static_cast<int64_t>(N) * G, tiles = (groups + 2) / 3;
  const int64_t is = static_cast<int64_t>(Cin) * HW, os = static_cast<int64_t>(M) * HW;
  parallel_for(tiles, 1, [&](int64_t tb, int64_t te) {
    float* pb = detail::thread_scratch(10, static_cast<size_t>(KC) * 48);
    for (int64_t t = tb; t < te; ++t) {
      const float* base[3] = {src, src, src};
      float* cp[3] = {y, y, y};
      uint16_t tm[27];
      const int nv = static_cast<int>(std::min<int64_t>(3, groups - 3 * t));
      for (int v = 0; v < 3; ++v) {
        if (v < nv) {
          const int64_t gi = 3 * t + v, n = gi / G;
          const int gp = static_cast<int>(gi % G);
          base[v] = src + n * is + 16 * gp;
          cp[v] = y + n * os + 16 * gp;
          for (int rq = 0; rq < 9; ++rq) tm[v * 9 + rq] = mk[rq * G + gp];
        } else {
          cp[v] = cp[0];
          for (int rq = 0; rq < 9; ++rq) tm[v * 9 + rq] = 0;
        }
      }
      for (int k0 = 0; k0 < Kd; k0 += KC) {
        const int kc = std::min(KC, Kd - k0);
        dense_pack(kc, k0, toff, base, tm, pb);
        for (int m0 = 0; m0 < M; m0 += 8) {
          const int mr = std::min(8, M - m0);
          float* const c[3] = {cp[0] + m0 * HW, cp[1] + m0 * HW, cp[2] + m0 * HW};
          kern[mr](kc, apack + static_cast<int64_t>(m0) * Kd + static_cast<int64_t>(k0) * 8, pb, c,
                   HW, k0 > 0, bias && k0 == 0 ? bias + m0 : nullptr, nv);
        }
      }
    }
  });
}

/// out[i*9 + t] = sum over 16-pixel groups jg < ng of a[i][16jg..] * tap t (r = t/3, q = t%3):
/// x[q*xls + 16jg + (r-1)*W] masked with mk[t*G + (jg mod G)], where row q of x holds the input
/// already shifted by q-1 columns (zero where that leaves the image), so no load splits a line
/// because of the column shift.
__attribute__((target("avx512f"))) inline void dense_dot_3x9(int64_t ng, int G, int W,
                                                              const float* const* a, const float* x,
                                                              int64_t xls, const uint16_t* mk,
                                                              float* out) {
  __m512 acc[3][9];
EMBER_CPU_UNROLL(3)
  for (int i = 0; i < 3; ++i)
EMBER_CPU_UNROLL(9)
    for (int t = 0; t < 9; ++t) acc[i][t] = _mm512_setzero_ps();
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2];
  const float* xr = x - W;
  int g = 0;
  for (int64_t jg = 0; jg < ng; ++jg) {
    const int64_t o = 16 * jg;
    const __m512 v0 = _mm512_loadu_ps(a0 + o), v1 = _mm512_loadu_ps(a1 + o),
                 v2 = _mm512_loadu_ps(a2 + o);
    const uint16_t* mg = mk + g;
EMBER_CPU_UNROLL(9)
    for (int t = 0; t < 9; ++t) {
      __mmask16 m;
      std::memcpy(&m, mg + t * G, sizeof(m));
      const __m512 yv = _mm512_maskz_loadu_ps(m, xr + o + (t / 3) * W + (t % 3) * xls);
      acc[0][t] = _mm512_fmadd_ps(v0, yv, acc[0][t]);
      acc[1][t] = _mm512_fmadd_ps(v1, yv, acc[1][t]);
      acc[2][t] = _mm512_fmadd_ps(v2, yv, acc[2][t]);
    }
    if (++g == G) g = 0;
  }
EMBER_CPU_UNROLL(3)
  for (int i = 0; i < 3; ++i)
EMBER_CPU_UNROLL(9)
    for (int t = 0; t < 9; ++t) out[i * 9 + t] = hsum_avx512(acc[i][t]);
}

/// dst[q*ls + p] = src[p + q - 1] where column w + q - 1 lies inside the image, else 0 (q < 3).
__attribute__((target("avx512f"))) inline void dense_shift_copy(int G, const uint16_t* mk,
                                                                 const float* src, float* dst,
                                                                 int64_t ls) {
  for (int g = 0; g < G; ++g) {
    const float* s0 = src + 16 * g;
    _mm512_storeu_ps(dst + 16 * g,
                     _mm512_maskz_loadu_ps(static_cast<__mmask16>(mk[3 * G + g]), s0 - 1));
    _mm512_storeu_ps(dst + ls + 16 * g, _mm512_loadu_ps(s0));
    _mm512_storeu_ps(dst + 2 * ls + 16 * g,
                     _mm512_maskz_loadu_ps(static_cast<__mmask16>(mk[5 * G + g]), s0 + 1));
  }
}

/// dw (K, C, 3, 3) = sum over images and pixels of dy[n][k][p] * tap (c, r, q) of x at p.
/// The batch is cut into contiguous image ranges (reduction_pieces: at least one chunk of NB
/// images each, and at least 2 ranges; fixed by the shape, not the thread count), copied chunk
/// by chunk into channel-major rows (no image-strided access); partial sums are added in range
/// order.
inline void dense_weight_grad(int N, int C, int H, int W, int K, const float* x, const float* dy,
                              float* dw) {
  const int HW = H * W, G = HW / 16, Kd = C * 9;
  uint16_t mk[9 * 16];
  dense_masks(H, W, mk);
  const int64_t wsz = static_cast<int64_t>(K) * Kd;
  const int NB = std::max(1, 1024 / HW);  // images per chunk: 1024 pixels (measured best)
  // At least two pieces when there are two images, so that small batches of small images
  // (e.g. 32 images of 4x4, one chunk) still keep two threads busy.
  const int parts = static_cast<int>(
      std::max<int64_t>(reduction_pieces(N, NB), std::min<int64_t>(N, 2)));
  float* partial = detail::thread_scratch(3, static_cast<size_t>(wsz) * parts);
  const int64_t LS = static_cast<int64_t>(NB) * HW + 32;  // row stride of the chunk copy
  const int64_t xs = static_cast<int64_t>(C) * HW, ys = static_cast<int64_t>(K) * HW;
  parallel_for(parts, 1, [&](int64_t pb, int64_t pe) {
    // [guard 32][C rows of LS][K rows of LS]: taps read up to W+1 floats outside a row, masked.
    float* buf = detail::thread_scratch(11, static_cast<size_t>(LS) * (3 * C + K) + 64);
    float* xc = buf + 32;
    float* gc = xc + static_cast<int64_t>(3 * C) * LS;
    std::memset(buf, 0, sizeof(float) * 32);
    std::memset(gc + static_cast<int64_t>(K) * LS, 0, sizeof(float) * 32);
    for (int64_t part = pb; part < pe; ++part) {
      float* acc = part == 0 ? dw : partial + part * wsz;
      std::fill(acc, acc + wsz, 0.f);
      const int64_t n0 = N * part / parts, n1 = N * (part + 1) / parts;
      for (int64_t nc = n0; nc < n1; nc += NB) {
        const int nimg = static_cast<int>(std::min<int64_t>(NB, n1 - nc));
        for (int i = 0; i < nimg; ++i) {
          for (int c = 0; c < C; ++c)
            dense_shift_copy(G, mk, x + (nc + i) * xs + c * HW,
                             xc + 3 * c * LS + static_cast<int64_t>(i) * HW, LS);
          for (int k = 0; k < K; ++k)
            std::memcpy(gc + k * LS + static_cast<int64_t>(i) * HW, dy + (nc + i) * ys + k * HW,
                        sizeof(float) * HW);
        }
        const int64_t ng = static_cast<int64_t>(nimg) * G;
        // Three gradient rows stay in L1 while the input rows stream past (9 taps per row).
        for (int k0 = 0; k0 < K; k0 += 3) {
          const float* ap[3];
          for (int i = 0; i < 3; ++i) ap[i] = gc + static_cast<int64_t>(std::min(k0 + i, K - 1)) * LS;
          for (int c = 0; c < C; ++c) {
            float out[27];
            dense_dot_3x9(ng, G, W, ap, xc + static_cast<int64_t>(3 * c) * LS, LS, mk, out);
            for (int i = 0; i < 3 && k0 + i < K; ++i)
              for (int t = 0; t < 9; ++t)
                acc[static_cast<int64_t>(k0 + i) * Kd + c * 9 + t] += out[i * 9 + t];
          }
        }
      }
    }
  });
  add_partials(dw, partial + wsz, parts - 1, wsz);
}
#else
inline bool dense_ok(const Conv2dShape&) { return false; }
#endif

inline bool implicit_ok(const Conv2dShape& s) {
  if (s.stride != 1 || s.pad < 0 || s.pad > s.R - 1 || s.pad > s.S - 1) return false;
  // Tap offsets are 32-bit: keep every planar buffer well below 2^31 floats.
  const double plane = (static_cast<double>(s.N) * (s.H + s.R + 1) + s.R + 2) * (s.W + s.S + 1) + 256;
  return plane * std::max(s.C, s.K) < 2.0e9;
}

/// Stride-1 forward: y = conv(x, w) + b.
inline void implicit_conv_forward(const Conv2dShape& s, const float* x, const float* w,
                                  const float* b, float* y) {
#if EMBER_CPU_X86
  if (dense_ok(s)) {
    const int Kd8 = s.C * 9;
    float* ap8 = detail::thread_scratch(6, static_cast<size_t>(round_up(s.K, 8)) * Kd8);
    pack_implicit_a(s.K, Kd8, 8, [&](int m, int kd) { return w[static_cast<int64_t>(m) * Kd8 + kd]; },
                    ap8);
    dense_forward(s.N, s.C, s.H, s.W, s.K, ap8, x, b, y);
    return;
  }
#endif
  const ImplicitConfig cfg = implicit_config(active_isa());
  const int Kd = s.C * s.R * s.S;
  const Planar pl = make_planar(s.N, s.H, s.W, s.pad, s.pad, s.R, s.S, s.OH, s.OW, cfg.nr);
  float* xp = detail::thread_scratch(4, static_cast<size_t>(pl.L) * s.C);
  to_planar(s.N, s.C, s.H, s.W, s.pad, s.pad, pl, x, xp);
  int* off = reinterpret_cast<int*>(detail::thread_scratch(5, Kd));
  for (int c = 0; c < s.C; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int q = 0; q < s.S; ++q)
        off[(c * s.R + r) * s.S + q] = static_cast<int>(c * pl.L + r * pl.Wb + q);
  float* apack = detail::thread_scratch(6, static_cast<size_t>(round_up(s.K, cfg.mr)) * Kd);
  pack_implicit_a(s.K, Kd, cfg.mr, [&](int m, int kd) { return w[static_cast<int64_t>(m) * Kd + kd]; },
                  apack);
  const OutMap om{s.K, s.OH, s.OW, pl.Hb, pl.Wb, pl.J};
  implicit_forward(cfg, s.K, Kd, apack, off, xp, om, b, y);
}

/// Stride-1 input gradient: dx = full correlation of dy with the flipped, transposed weight.
inline void implicit_conv_backward_input(const Conv2dShape& s, const float* dy, const float* w,
                                         float* dx, const float* bias) {
#if EMBER_CPU_X86
  if (dense_ok(s)) {
    const int Kd8 = s.K * 9;
    float* ap8 = detail::thread_scratch(6, static_cast<size_t>(round_up(s.C, 8)) * Kd8);
    pack_implicit_a(s.C, Kd8, 8,
                    [&](int c, int kd) {
                      const int k = kd / 9, rq = kd % 9;
                      return w[(static_cast<int64_t>(k) * s.C + c) * 9 + (8 - rq)];
                    },
                    ap8);
    dense_forward(s.N, s.K, s.H, s.W, s.C, ap8, dy, bias, dx);
    return;
  }
#endif
  const ImplicitConfig cfg = implicit_config(active_isa());
  const int ph = s.R - 1 - s.pad, pw = s.S - 1 - s.pad;
  const int Kd = s.K * s.R * s.S;
  const int RS = s.R * s.S;
  const Planar pl = make_planar(s.N, s.OH, s.OW, ph, pw, s.R, s.S, s.H, s.W, cfg.nr);
  float* gp = detail::thread_scratch(4, static_cast<size_t>(pl.L) * s.K);
  to_planar(s.N, s.K, s.OH, s.OW, ph, pw, pl, dy, gp);
  int* off = reinterpret_cast<int*>(detail::thread_scratch(5, Kd));
  for (int k = 0; k < s.K; ++k)
    for (int r = 0; r < s.R; ++r)
      for (int q = 0; q < s.S; ++q)
        off[(k * s.R + r) * s.S + q] = static_cast<int>(k * pl.L + r * pl.Wb + q);
  float* apack = detail::thread_scratch(6, static_cast<size_t>(round_up(s.C, cfg.mr)) * Kd);
  pack_implicit_a(s.C, Kd, cfg.mr,
                  [&](int c, int kd) {
                    const int k = kd / RS, rq = kd % RS;
                    const int r = rq / s.S, q = rq % s.S;
                    return w[((static_cast<int64_t>(k) * s.C + c) * s.R + (s.R - 1 - r)) * s.S +
                             (s.S - 1 - q)];
                  },
                  apack);
  const OutMap om{s.C, s.H, s.W, pl.Hb, pl.Wb, pl.J};
  implicit_forward(cfg, s.C, Kd, apack, off, gp, om, bias, dx);
}

/// Stride-1 weight gradient (and bias gradient when db is non-null).
inline void implicit_conv_backward_weight(const Conv2dShape& s, const float* x, const float* dy,
                                          float* dw, float* db) {
#if EMBER_CPU_X86
  if (dense_ok(s)) {
    dense_weight_grad(s.N, s.C, s.H, s.W, s.K, x, dy, dw);
    if (db) channel_sums(s.N, s.K, static_cast<int64_t>(s.H) * s.W, dy, db);
    return;
  }
#endif
  const ImplicitConfig cfg = implicit_config(active_isa());
  const int Kd = s.C * s.R * s.S;
  const Planar pl = make_planar(s.N, s.H, s.W, s.pad, s.pad, s.R, s.S, s.OH, s.OW, 16);
  const int64_t Jp = round_up(pl.J, 16);
  float* xp = detail::thread_scratch(4, static_cast<size_t>(pl.L) * s.C);
  to_planar(s.N, s.C, s.H, s.W, s.pad, s.pad, pl, x, xp);
  // dy in the same block geometry, image at the block's top-left, zero at dropped positions.
  float* gp = detail::thread_scratch(9, static_cast<size_t>(pl.L) * s.K);
  to_planar(s.N, s.K, s.OH, s.OW, 0, 0, pl, dy, gp, db);
  int* off = reinterpret_cast<int*>(detail::thread_scratch(5, Kd));
  for (int c = 0; c < s.C; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int q = 0; q < s.S; ++q)
        off[(c * s.R + r) * s.S + q] = static_cast<int>(c * pl.L + r * pl.Wb + q);
  implicit_weight_grad(cfg, s.K, Kd, gp, pl.L, off, xp, Jp, dw);
}

}  // namespace conv_detail

inline void conv2d_forward(ember::kernels::Conv2dShape s, const float* x, const float* w,
                           const float* b, float* y) {
  if (s.N <= 0 || s.K <= 0 || s.OH <= 0 || s.OW <= 0) return;
  if (conv_detail::implicit_ok(s)) {
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
    conv_detail::implicit_conv_backward_weight(s, x, dy, dw, db);  // db fused into the dy copy
    return;
  }
  // (for strided shapes the per-image gemm measured faster than the dot-product engine)
  conv_detail::generic_backward_weight(s, x, dy, dw);
  if (db) conv_detail::channel_sums(s.N, s.K, static_cast<int64_t>(s.OH) * s.OW, dy, db);
}

}  // namespace ember::cpu
