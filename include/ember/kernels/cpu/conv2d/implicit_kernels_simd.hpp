// @file include/ember/kernels/cpu/conv2d/implicit_kernels_simd.hpp
// @brief The implicit-GEMM conv engines' x86 micro-kernels, written once over a vector-traits
//        type: forward tile, B-tile packer, weight-gradient dot-product tile.
//
// A body header (see simd.hpp): no include guard; implicit_kernels.hpp includes it once per ISA
// with EMBER_CPU_SIMD_TARGET set to that ISA's target attribute, inside namespace simd_avx2 /
// simd_avx512, and instantiates it with simd::Avx2 (forward 4 x 24, dot 3 x 3) or simd::Avx512
// (forward 8 x 48, dot 4 x 6). Contracts: implicit_kernels.hpp.
#ifndef EMBER_CPU_SIMD_TARGET
#error "implicit_kernels_simd.hpp is included by implicit_kernels.hpp with EMBER_CPU_SIMD_TARGET"
#endif

/// Forward tile: c[i*ldc + 0..3W) (+)= sum_k pa[k*as + i] * src[off[k] + 0..3W), i < MR.
template <class T, int MR>
EMBER_CPU_SIMD_TARGET inline void ik(int kc, const float* pa, int as, const int* off,
                                     const float* src, float* c, int64_t ldc, bool acc_in) {
  using V = typename T::V;
  constexpr int W = T::W;
  V acc[MR][3];
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = acc_in ? T::load(c + i * ldc) : T::zero();
    acc[i][1] = acc_in ? T::load(c + i * ldc + W) : T::zero();
    acc[i][2] = acc_in ? T::load(c + i * ldc + 2 * W) : T::zero();
  }
  for (int k = 0; k < kc; ++k) {
    const float* b = src + off[k];
    const V b0 = T::load(b), b1 = T::load(b + W), b2 = T::load(b + 2 * W);
EMBER_CPU_UNROLL(8)
    for (int i = 0; i < MR; ++i) {
      const V a = T::bcast(pa + i);
      acc[i][0] = T::fmadd(a, b0, acc[i][0]);
      acc[i][1] = T::fmadd(a, b1, acc[i][1]);
      acc[i][2] = T::fmadd(a, b2, acc[i][2]);
    }
    pa += as;
  }
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) {
    T::store(c + i * ldc, acc[i][0]);
    T::store(c + i * ldc + W, acc[i][1]);
    T::store(c + i * ldc + 2 * W, acc[i][2]);
  }
}

/// B-tile packer for NR = 3W positions: pb[k*3W + v] = src[off[k] + v].
template <class T>
EMBER_CPU_SIMD_TARGET inline void ip(int kc, const int* off, const float* src, float* pb) {
  constexpr int W = T::W;
  for (int k = 0; k < kc; ++k) {
    const float* from = src + off[k];
    float* to = pb + k * 3 * W;
    T::store(to, T::load(from));
    T::store(to + W, T::load(from + W));
    T::store(to + 2 * W, T::load(from + 2 * W));
  }
}

/// Weight-gradient tile: out[i*TK + t] = sum_{j<len} a[i][j] * b[t][j] (len a multiple of W),
/// W lanes per (i, t) summed by T::hsum at the end.
template <class T, int TM, int TK>
EMBER_CPU_SIMD_TARGET inline void dk(int64_t len, const float* const* a, const float* const* b,
                                     float* out) {
  using V = typename T::V;
  constexpr int W = T::W;
  V acc[TM][TK];
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < TM; ++i)
EMBER_CPU_UNROLL(8)
    for (int t = 0; t < TK; ++t) acc[i][t] = T::zero();
  const float* ap[TM];
  const float* bp[TK];
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < TM; ++i) ap[i] = a[i];
EMBER_CPU_UNROLL(8)
  for (int t = 0; t < TK; ++t) bp[t] = b[t];
  for (int64_t j = 0; j < len; j += W) {
    V x[TM];
EMBER_CPU_UNROLL(8)
    for (int i = 0; i < TM; ++i) x[i] = T::load(ap[i] + j);
EMBER_CPU_UNROLL(8)
    for (int t = 0; t < TK; ++t) {
      const V y = T::load(bp[t] + j);
EMBER_CPU_UNROLL(8)
      for (int i = 0; i < TM; ++i) acc[i][t] = T::fmadd(x[i], y, acc[i][t]);
    }
  }
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < TM; ++i)
EMBER_CPU_UNROLL(8)
    for (int t = 0; t < TK; ++t) out[i * TK + t] = T::hsum(acc[i][t]);
}
