// @file include/ember/kernels/cpu/gemm_ukernel.hpp
// @brief gemm.hpp's x86 register-tiled micro-kernel, written once over a vector-traits type.
//
// A body header (see simd.hpp): no include guard; gemm.hpp includes it once per ISA with
// EMBER_CPU_SIMD_TARGET set to that ISA's target attribute, inside namespace simd_avx2 /
// simd_avx512. The tile is MR x 2W (AVX2: 6 x 16, 12 ymm accumulators; AVX-512: 8 x 32, 16 zmm
// accumulators, A broadcast straight from memory). Contract (gemm.hpp's MicroKernel):
//   c[i*ldc + j] = alpha * sum_k pa[k*MR+i] * pb[k*NR+j] + (beta == 0 ? 0 : beta * c[i*ldc + j])
#ifndef EMBER_CPU_SIMD_TARGET
#error "gemm_ukernel.hpp is included by gemm.hpp with EMBER_CPU_SIMD_TARGET defined"
#endif

template <class T, int MR>
EMBER_CPU_SIMD_TARGET inline void ukernel(int kc, const float* pa, const float* pb, float* c,
                                          int64_t ldc, float alpha, float beta) {
  using V = typename T::V;
  constexpr int W = T::W;
  V acc[MR][2];
EMBER_CPU_UNROLL(8)
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = T::zero();
  for (int k = 0; k < kc; ++k) {
    const V b0 = T::load(pb), b1 = T::load(pb + W);
EMBER_CPU_UNROLL(8)
    for (int i = 0; i < MR; ++i) {
      const V a = T::bcast(pa + i);
      acc[i][0] = T::fmadd(a, b0, acc[i][0]);
      acc[i][1] = T::fmadd(a, b1, acc[i][1]);
    }
    pa += MR;
    pb += 2 * W;
  }
  const V va = T::set1(alpha);
  if (beta == 0.f) {
EMBER_CPU_UNROLL(8)
    for (int i = 0; i < MR; ++i) {
      T::store(c + i * ldc, T::mul(va, acc[i][0]));
      T::store(c + i * ldc + W, T::mul(va, acc[i][1]));
    }
  } else {
    const V vb = T::set1(beta);
EMBER_CPU_UNROLL(8)
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      T::store(ci, T::fmadd(va, acc[i][0], T::mul(vb, T::load(ci))));
      T::store(ci + W, T::fmadd(va, acc[i][1], T::mul(vb, T::load(ci + W))));
    }
  }
}
