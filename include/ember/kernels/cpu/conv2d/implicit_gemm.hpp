// @file include/ember/kernels/cpu/conv2d/implicit_gemm.hpp
// @brief CPU conv2d engine "implicit GEMM": stride 1, 0 <= pad < kernel, on a planar padded copy
//        of the input; also the GEMM driver the strided and dense engines reuse.
//
// conv2d.hpp chooses it for every stride-1 shape with 0 <= pad <= R-1, S-1 whose planar buffers
// stay below 2^31 floats (implicit_ok), unless the AVX-512 dense engine (dense.hpp) takes it.
// Forward and input gradient pack B tiles straight from shifted views of the planar copy and run
// an MR x NR register-tiled micro-kernel (implicit_kernels.hpp); the weight gradient is a TM x TK
// dot-product kernel over the same views. The whole batch is one GEMM split over the thread
// pool, so small images (4x4, 8x8) stay efficient.
#pragma once
#include "common.hpp"
#include "implicit_kernels.hpp"

namespace ember::cpu::conv_detail {

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
inline bool implicit_ok(const Conv2dShape& s) {
  if (s.stride != 1 || s.pad < 0 || s.pad > s.R - 1 || s.pad > s.S - 1) return false;
  // Tap offsets are 32-bit: keep every planar buffer well below 2^31 floats.
  const double plane = (static_cast<double>(s.N) * (s.H + s.R + 1) + s.R + 2) * (s.W + s.S + 1) + 256;
  return plane * std::max(s.C, s.K) < 2.0e9;
}
/// Stride-1 forward: y = conv(x, w) + b.
inline void implicit_conv_forward(const Conv2dShape& s, const float* x, const float* w,
                                  const float* b, float* y) {
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

}  // namespace ember::cpu::conv_detail
