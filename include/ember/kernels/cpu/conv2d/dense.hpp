// @file include/ember/kernels/cpu/conv2d/dense.hpp
// @brief CPU conv2d engine "dense" (AVX-512 only): 3x3, stride 1, pad 1 on small images with the
//        batch's unpadded pixels as the GEMM's wide dimension and masked AVX-512 tap loads.
//
// conv2d.hpp chooses it before implicit_gemm.hpp when the active ISA is AVX-512, the kernel is
// 3x3 with stride 1 and pad 1, H*W is a multiple of 16 and at most 256 and the shape also passes
// implicit_ok (dense_ok; always false on non-x86 builds). Forward and input gradient (the same
// engine on dy with the flipped, transposed weights) write straight into NCHW; the weight
// gradient is a 3 x 9 dot-product kernel over channel-major chunk copies.
#pragma once
#include "common.hpp"
#include "implicit_gemm.hpp"

namespace ember::cpu::conv_detail {

// ================================================================================================
// Dense small-image path (AVX-512, 3x3 kernel, pad 1, stride 1, H*W a multiple of 16, <= 256).
//
// The planar layout of implicit_gemm.hpp pads every image to (H+1) x (W+1), which wastes 13-56%
// of the work for 16x16 .. 4x4 images. Here the GEMM's wide dimension is the batch's dense pixel index
// j = n*HW + p, taken 16 pixels (one vector, always inside one image) at a time. Tap (c, r, q) of
// pixel group g reads the 16 floats at src[n][c][p + (r-1)*W + (q-1)] under a lane mask that
// depends only on (r, q) and p/16 (zero where the tap falls outside the image); AVX-512 masked
// loads never touch masked-off lanes, so no copy of the input is needed. Forward / input gradient
// pack 48-pixel B tiles with those masked loads and write straight into the NCHW output; the
// weight gradient runs a 3 x 9 dot-product kernel over channel-major chunk copies
// (dense_weight_grad).
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
    for (int t = 0; t < 9; ++t) out[i * 9 + t] = simd::Avx512::hsum(acc[i][t]);
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

/// Forward through the dense engine (dense_ok(s) must hold).
inline void dense_conv_forward(const Conv2dShape& s, const float* x, const float* w,
                               const float* b, float* y) {
  const int Kd8 = s.C * 9;
  float* ap8 = detail::thread_scratch(6, static_cast<size_t>(round_up(s.K, 8)) * Kd8);
  pack_implicit_a(s.K, Kd8, 8, [&](int m, int kd) { return w[static_cast<int64_t>(m) * Kd8 + kd]; },
                  ap8);
  dense_forward(s.N, s.C, s.H, s.W, s.K, ap8, x, b, y);
}

/// Input gradient (+ bias) through the dense engine (dense_ok(s) must hold).
inline void dense_conv_backward_input(const Conv2dShape& s, const float* dy, const float* w,
                                      float* dx, const float* bias) {
  const int Kd8 = s.K * 9;
  float* ap8 = detail::thread_scratch(6, static_cast<size_t>(round_up(s.C, 8)) * Kd8);
  pack_implicit_a(s.C, Kd8, 8,
                  [&](int c, int kd) {
                    const int k = kd / 9, rq = kd % 9;
                    return w[(static_cast<int64_t>(k) * s.C + c) * 9 + (8 - rq)];
                  },
                  ap8);
  dense_forward(s.N, s.K, s.H, s.W, s.C, ap8, dy, bias, dx);
}

/// Weight (and bias) gradient through the dense engine (dense_ok(s) must hold).
inline void dense_conv_backward_weight(const Conv2dShape& s, const float* x, const float* dy,
                                       float* dw, float* db) {
  dense_weight_grad(s.N, s.C, s.H, s.W, s.K, x, dy, dw);
  if (db) channel_sums(s.N, s.K, static_cast<int64_t>(s.H) * s.W, dy, db);
}
#else
inline bool dense_ok(const Conv2dShape&) { return false; }
inline void dense_conv_forward(const Conv2dShape&, const float*, const float*, const float*,
                               float*) {}
inline void dense_conv_backward_input(const Conv2dShape&, const float*, const float*, float*,
                                      const float*) {}
inline void dense_conv_backward_weight(const Conv2dShape&, const float*, const float*, float*,
                                       float*) {}
#endif

}  // namespace ember::cpu::conv_detail
