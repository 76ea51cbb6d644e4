// @file include/ember/kernels/cpu/conv2d/implicit_kernels.hpp
// @brief Micro-kernels of the implicit-GEMM conv engines (implicit_gemm.hpp, strided.hpp) and
//        their per-ISA choice (implicit_config).
//
// Portable C++ kernels here; the AVX2 and AVX-512 ones are one template per kernel over
// simd.hpp's vector traits (implicit_kernels_simd.inc). implicit_config(active_isa()) picks the
// set: AVX-512 forward 8 x 48 / dot 4 x 6, AVX2 4 x 24 / 3 x 3, generic 4 x 16 / 2 x 3.
#pragma once
#include "common.hpp"

namespace ember::cpu::conv_detail {

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
// The AVX2 and AVX-512 forward tiles, packers and dot-product tiles: one template each
// (implicit_kernels_simd.inc), instantiated per ISA.
namespace simd_avx2 {
#define EMBER_CPU_SIMD_TARGET EMBER_CPU_TARGET_AVX2
#include "implicit_kernels_simd.inc"
#undef EMBER_CPU_SIMD_TARGET
}  // namespace simd_avx2
namespace simd_avx512 {
#define EMBER_CPU_SIMD_TARGET EMBER_CPU_TARGET_AVX512
#include "implicit_kernels_simd.inc"
#undef EMBER_CPU_SIMD_TARGET
}  // namespace simd_avx512
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
            {nullptr, &simd_avx512::ik<simd::Avx512, 1>, &simd_avx512::ik<simd::Avx512, 2>,
             &simd_avx512::ik<simd::Avx512, 3>, &simd_avx512::ik<simd::Avx512, 4>,
             &simd_avx512::ik<simd::Avx512, 5>, &simd_avx512::ik<simd::Avx512, 6>,
             &simd_avx512::ik<simd::Avx512, 7>, &simd_avx512::ik<simd::Avx512, 8>},
            4, 6, &simd_avx512::dk<simd::Avx512, 4, 6>, &simd_avx512::ip<simd::Avx512>};
  if (isa == Isa::avx2)
    return {4, 24,
            {nullptr, &simd_avx2::ik<simd::Avx2, 1>, &simd_avx2::ik<simd::Avx2, 2>,
             &simd_avx2::ik<simd::Avx2, 3>, &simd_avx2::ik<simd::Avx2, 4>, nullptr, nullptr,
             nullptr, nullptr},
            3, 3, &simd_avx2::dk<simd::Avx2, 3, 3>, &simd_avx2::ip<simd::Avx2>};
#endif
  (void)isa;
  return {4, 16,
          {nullptr, &ik_generic<1, 16>, &ik_generic<2, 16>, &ik_generic<3, 16>, &ik_generic<4, 16>,
           nullptr, nullptr, nullptr, nullptr},
          2, 3, &dk_generic<2, 3>, &ip_generic<16>};
}

}  // namespace ember::cpu::conv_detail
