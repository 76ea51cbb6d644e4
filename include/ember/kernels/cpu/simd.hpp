// @file include/ember/kernels/cpu/simd.hpp
// @brief x86 vector traits (Avx2, Avx512) for the CPU micro-kernels written once per ISA family,
//        the EMBER_CPU_X86 switch and the EMBER_CPU_UNROLL loop hint.
//
// A micro-kernel that exists for AVX2 and AVX-512 is ONE template over a traits type T
// (T::V the register type, T::W its float lanes, T::zero/load/store/bcast/set1/fmadd/mul/hsum).
// The target attribute of a function cannot depend on a template parameter, and GCC and clang
// refuse to inline a function that needs AVX-512 (an intrinsic, or a traits member) into one
// compiled without it. So the template's text lives in a body file (.inc) without include guard
// (e.g. gemm_ukernel.inc) whose every function is declared with EMBER_CPU_SIMD_TARGET; the
// including header defines that macro as __attribute__((target("avx2,fma"))) or
// __attribute__((target("avx512f"))) and includes the body once per ISA, in the namespaces
// simd_avx2 / simd_avx512, and instantiates it with Avx2 / Avx512 only. The traits members carry
// the same target attribute and are always_inline, so every instantiation compiles to straight
// vector code (no calls) with exactly the instructions the former hand-written twins used; the
// runtime dispatch (active_isa() in gemm.hpp) is unchanged.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EMBER_CPU_X86 1
#include <immintrin.h>
#else
#define EMBER_CPU_X86 0
#endif

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

#if EMBER_CPU_X86
#define EMBER_CPU_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define EMBER_CPU_TARGET_AVX512 __attribute__((target("avx512f")))

namespace ember::cpu::simd {

/// 8 floats per register (AVX2 + FMA).
struct Avx2 {
  using V = __m256;
  static constexpr int W = 8;
#define EMBER_CPU_AVX2_FN __attribute__((target("avx2,fma"), always_inline)) static inline
  EMBER_CPU_AVX2_FN V zero() { return _mm256_setzero_ps(); }
  EMBER_CPU_AVX2_FN V load(const float* p) { return _mm256_loadu_ps(p); }
  EMBER_CPU_AVX2_FN void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  EMBER_CPU_AVX2_FN V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  EMBER_CPU_AVX2_FN V set1(float v) { return _mm256_set1_ps(v); }
  EMBER_CPU_AVX2_FN V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  EMBER_CPU_AVX2_FN V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  /// (v0+v4, v1+v5, v2+v6, v3+v7) -> (.0+.2, .1+.3) -> .0+.1
  EMBER_CPU_AVX2_FN float hsum(V v) {
    const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
#undef EMBER_CPU_AVX2_FN
};

// GCC 12's AVX-512 reduction/extract intrinsics use a self-initialised "undefined" vector that
// trips -Wuninitialized once inlined; the warning is spurious, so silence it for hsum.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/// 16 floats per register (AVX-512F).
struct Avx512 {
  using V = __m512;
  static constexpr int W = 16;
#define EMBER_CPU_AVX512_FN __attribute__((target("avx512f"), always_inline)) static inline
  EMBER_CPU_AVX512_FN V zero() { return _mm512_setzero_ps(); }
  EMBER_CPU_AVX512_FN V load(const float* p) { return _mm512_loadu_ps(p); }
  EMBER_CPU_AVX512_FN void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  EMBER_CPU_AVX512_FN V bcast(const float* p) { return _mm512_set1_ps(*p); }
  EMBER_CPU_AVX512_FN V set1(float v) { return _mm512_set1_ps(v); }
  EMBER_CPU_AVX512_FN V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  EMBER_CPU_AVX512_FN V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  EMBER_CPU_AVX512_FN float hsum(V v) { return _mm512_reduce_add_ps(v); }
#undef EMBER_CPU_AVX512_FN
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace ember::cpu::simd
#endif  // EMBER_CPU_X86
