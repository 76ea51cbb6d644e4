// @file include/ember/kernels/cpu/gemm.hpp
// @brief Cache-blocked, register-tiled single-precision GEMM for the CPU backend.
//
//   gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
//   C (M x N, row-major, leading dimension ldc) = alpha * op(A) * op(B) + beta * C
//   op(A) is M x K (A is K x M when trans_a), op(B) is K x N (B is N x K when trans_b).
//   beta == 0 ignores C's old contents entirely (NaN/Inf included).
//
// Structure (Goto/BLIS style): B is packed into KC x NR strips, A into MC x KC blocks of MR-row
// strips, and an MR x NR register-tiled micro-kernel does the arithmetic. Large products are split
// over the thread pool (ember::cpu::parallel_for) along M or N; each piece is a pure function of
// the shape and thread count, so results are deterministic.
//
// Instruction sets. The header never requires -mavx2/-mavx512f: the x86 micro-kernels are compiled
// with __attribute__((target(...))) and picked at runtime with __builtin_cpu_supports (the AVX2
// and AVX-512 tiles are one template, gemm_ukernel.inc, over simd.hpp's vector traits). Paths:
//   Isa::avx512  16-wide AVX-512F kernels (8 x 32 tile)
//   Isa::avx2    8-wide AVX2+FMA kernels (6 x 16 tile)
//   Isa::generic portable C++ (auto-vectorised by the compiler), used on non-x86 CPUs
// The path is chosen once from the hardware and the environment variable
// EMBER_CPU_ISA=generic|avx2|avx512 (read once, on first use; a request the CPU cannot run is
// lowered to the best supported path). Tests can switch paths at any time with
// set_isa_for_testing(Isa) and undo that with reset_isa_for_testing(); active_isa() reports the
// path in use. All paths agree to float rounding; the generic path also backs non-x86 builds.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "parallel.hpp"
#include "simd.hpp"

namespace ember::cpu {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

namespace detail {

/// Best path the running CPU supports.
inline Isa hardware_isa() {
  static const Isa isa = [] {
#if EMBER_CPU_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
    return Isa::generic;
  }();
  return isa;
}

inline Isa clamp_isa(Isa want) {
  return static_cast<int>(want) <= static_cast<int>(hardware_isa()) ? want : hardware_isa();
}

/// Hardware path, lowered by EMBER_CPU_ISA when set (read once).
inline Isa env_isa() {
  static const Isa isa = [] {
    Isa v = hardware_isa();
    if (const char* e = std::getenv("EMBER_CPU_ISA")) {
      if (std::strcmp(e, "generic") == 0) v = Isa::generic;
      else if (std::strcmp(e, "avx2") == 0) v = Isa::avx2;
      else if (std::strcmp(e, "avx512") == 0) v = Isa::avx512;
    }
    return clamp_isa(v);
  }();
  return isa;
}

inline std::atomic<int>& isa_override() {
  static std::atomic<int> v{-1};
  return v;
}

}  // namespace detail

/// The instruction-set path the CPU kernels use right now.
inline Isa active_isa() {
  int o = detail::isa_override().load(std::memory_order_relaxed);
  return o >= 0 ? detail::clamp_isa(static_cast<Isa>(o)) : detail::env_isa();
}
/// Forces a path (lowered to what the CPU supports) until reset_isa_for_testing().
inline void set_isa_for_testing(Isa isa) { detail::isa_override().store(static_cast<int>(isa)); }
inline void reset_isa_for_testing() { detail::isa_override().store(-1); }

namespace detail {

// ------------------------------------------------------------------------------------------------
// Scratch memory: 64-byte aligned buffers owned by each thread, grown on demand and reused, so the
// steady state allocates nothing. Slots 0-1 belong to gemm; callers (conv, ...) use slots >= 2.
// ------------------------------------------------------------------------------------------------
struct ScratchBuffer {
  float* ptr = nullptr;
  size_t cap = 0;  // floats
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(ptr); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(ptr);
      size_t want = std::max<size_t>(n + n / 4, 1024);
      size_t bytes = (want * sizeof(float) + 63) / 64 * 64;
      ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!ptr) {
        cap = 0;
        throw std::bad_alloc();
      }
      cap = bytes / sizeof(float);
    }
    return ptr;
  }
};

constexpr int kScratchSlots = 12;

inline float* thread_scratch(int slot, size_t n) {
  thread_local ScratchBuffer bufs[kScratchSlots];
  return bufs[slot].get(n);
}

// ------------------------------------------------------------------------------------------------
// Micro-kernels. Contract: given packed panels pa (kc x MR, k-major) and pb (kc x NR, k-major),
//   c[i*ldc + j] = alpha * sum_k pa[k*MR+i] * pb[k*NR+j] + (beta == 0 ? 0 : beta * c[i*ldc + j])
// for the full MR x NR tile.
// ------------------------------------------------------------------------------------------------
using MicroKernel = void (*)(int kc, const float* pa, const float* pb, float* c, int64_t ldc,
                             float alpha, float beta);

template <int MR, int NR>
inline void ukernel_generic(int kc, const float* pa, const float* pb, float* c, int64_t ldc,
                            float alpha, float beta) {
  float acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = 0.f;
  for (int k = 0; k < kc; ++k) {
    const float* a = pa + k * MR;
    const float* b = pb + k * NR;
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
  }
  if (beta == 0.f) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) c[i * ldc + j] = alpha * acc[i][j];
  } else {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];
  }
}

#if EMBER_CPU_X86
// The AVX2 (6 x 16) and AVX-512 (8 x 32) tiles: one template (gemm_ukernel.inc) per ISA.
namespace simd_avx2 {
#define EMBER_CPU_SIMD_TARGET EMBER_CPU_TARGET_AVX2
#include "gemm_ukernel.inc"
#undef EMBER_CPU_SIMD_TARGET
}  // namespace simd_avx2
namespace simd_avx512 {
#define EMBER_CPU_SIMD_TARGET EMBER_CPU_TARGET_AVX512
#include "gemm_ukernel.inc"
#undef EMBER_CPU_SIMD_TARGET
}  // namespace simd_avx512
#endif  // EMBER_CPU_X86

struct GemmConfig {
  int mr, nr;  // register tile
  int mc, kc, nc;  // cache blocks (mc % mr == 0, nc % nr == 0)
  MicroKernel kernel;
};

inline GemmConfig gemm_config(Isa isa) {
#if EMBER_CPU_X86
  if (isa == Isa::avx512) return {8, 32, 128, 256, 2048, &simd_avx512::ukernel<simd::Avx512, 8>};
  if (isa == Isa::avx2) return {6, 16, 120, 256, 2048, &simd_avx2::ukernel<simd::Avx2, 6>};
#endif
  (void)isa;
  return {4, 16, 128, 256, 2048, &ukernel_generic<4, 16>};
}

/// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of op(A) into MR-row strips (k-major within a
/// strip), zero-padding the last strip to MR rows.
inline void pack_a(bool trans, const float* A, int64_t lda, int i0, int mc, int k0, int kc, int mr,
                   float* dst) {
  for (int is = 0; is < mc; is += mr) {
    const int rows = std::min(mr, mc - is);
    float* d = dst + static_cast<int64_t>(is) * kc;
    if (!trans) {
      for (int ii = 0; ii < rows; ++ii) {
        const float* a = A + static_cast<int64_t>(i0 + is + ii) * lda + k0;
        for (int k = 0; k < kc; ++k) d[k * mr + ii] = a[k];
      }
    } else {
      for (int k = 0; k < kc; ++k) {
        const float* a = A + static_cast<int64_t>(k0 + k) * lda + i0 + is;
        for (int ii = 0; ii < rows; ++ii) d[k * mr + ii] = a[ii];
      }
    }
    if (rows < mr)
      for (int k = 0; k < kc; ++k)
        for (int ii = rows; ii < mr; ++ii) d[k * mr + ii] = 0.f;
  }
}

/// Packs rows [k0, k0+kc) x cols [j0, j0+nc) of op(B) into NR-column strips (k-major within a
/// strip), zero-padding the last strip to NR columns.
inline void pack_b(bool trans, const float* B, int64_t ldb, int k0, int kc, int j0, int nc, int nr,
                   float* dst) {
  for (int js = 0; js < nc; js += nr) {
    const int cols = std::min(nr, nc - js);
    float* d = dst + static_cast<int64_t>(js) * kc;
    if (!trans) {
      for (int k = 0; k < kc; ++k) {
        const float* b = B + static_cast<int64_t>(k0 + k) * ldb + j0 + js;
        float* dk = d + k * nr;
        for (int jj = 0; jj < cols; ++jj) dk[jj] = b[jj];
        for (int jj = cols; jj < nr; ++jj) dk[jj] = 0.f;
      }
    } else {
      for (int jj = 0; jj < cols; ++jj) {
        const float* b = B + static_cast<int64_t>(j0 + js + jj) * ldb + k0;
        for (int k = 0; k < kc; ++k) d[k * nr + jj] = b[k];
      }
      if (cols < nr)
        for (int k = 0; k < kc; ++k)
          for (int jj = cols; jj < nr; ++jj) d[k * nr + jj] = 0.f;
    }
  }
}

/// C = beta * C over an M x N block (beta == 0 writes zeros).
inline void scale_c(int M, int N, float beta, float* C, int64_t ldc) {
  for (int i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.f)
      for (int j = 0; j < N; ++j) c[j] = 0.f;
    else if (beta != 1.f)
      for (int j = 0; j < N; ++j) c[j] *= beta;
  }
}

/// Single-threaded blocked GEMM on the calling thread.
inline void gemm_serial(const GemmConfig& cfg, bool ta, bool tb, int M, int N, int K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                        float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const int MR = cfg.mr, NR = cfg.nr;
  const int KC = cfg.kc;
  const int MC = cfg.mc;
  const int NC = cfg.nc;
  const int kc_max = std::min(K, KC);
  float* pa = thread_scratch(0, static_cast<size_t>(std::min(M + MR, MC)) * kc_max);
  float* pb = thread_scratch(1, static_cast<size_t>(std::min(N + NR, NC)) * kc_max);
  alignas(64) float tile[16 * 64];
  for (int jc = 0; jc < N; jc += NC) {
    const int nc = std::min(NC, N - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      const float beta_k = pc == 0 ? beta : 1.f;
      pack_b(tb, B, ldb, pc, kc, jc, nc, NR, pb);
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = std::min(MC, M - ic);
        pack_a(ta, A, lda, ic, mc, pc, kc, MR, pa);
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = std::min(NR, nc - jr);
          const float* b = pb + static_cast<int64_t>(jr) * kc;
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = std::min(MR, mc - ir);
            const float* a = pa + static_cast<int64_t>(ir) * kc;
            float* c = C + (ic + ir) * ldc + jc + jr;
            if (mr == MR && nr == NR) {
              cfg.kernel(kc, a, b, c, ldc, alpha, beta_k);
            } else {
              cfg.kernel(kc, a, b, tile, NR, 1.f, 0.f);
              for (int i = 0; i < mr; ++i)
                for (int j = 0; j < nr; ++j) {
                  const float v = alpha * tile[i * NR + j];
                  c[i * ldc + j] = beta_k == 0.f ? v : v + beta_k * c[i * ldc + j];
                }
            }
          }
        }
      }
    }
  }
}

}  // namespace detail

/// C = alpha * op(A) * op(B) + beta * C (row-major; see the file comment). Multithreaded for
/// large products; runs serially when called from inside a parallel_for worker.
inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  const detail::GemmConfig cfg = detail::gemm_config(active_isa());
  const double work = static_cast<double>(M) * N * std::max(K, 1);
  const int threads = ThreadPool::in_worker() ? 1 : num_threads();
  if (threads <= 1 || work < 2.0e5) {
    detail::gemm_serial(cfg, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Split the larger output dimension into register-tile-aligned pieces, one per thread.
  const bool split_n = (N / cfg.nr) >= (M / cfg.mr);
  const int unit = split_n ? cfg.nr : cfg.mr;
  const int extent = split_n ? N : M;
  const int units = (extent + unit - 1) / unit;
  const int pieces = std::min(threads, units);
  parallel_for(pieces, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p) {
      const int u0 = static_cast<int>(units * p / pieces), u1 = static_cast<int>(units * (p + 1) / pieces);
      const int b = u0 * unit, e = std::min(extent, u1 * unit);
      if (b >= e) continue;
      if (split_n) {
        const float* Bp = trans_b ? B + static_cast<int64_t>(b) * ldb : B + b;
        detail::gemm_serial(cfg, trans_a, trans_b, M, e - b, K, alpha, A, lda, Bp, ldb, beta, C + b,
                            ldc);
      } else {
        const float* Ap = trans_a ? A + b : A + static_cast<int64_t>(b) * lda;
        detail::gemm_serial(cfg, trans_a, trans_b, e - b, N, K, alpha, Ap, lda, B, ldb, beta,
                            C + static_cast<int64_t>(b) * ldc, ldc);
      }
    }
  });
}

}  // namespace ember::cpu
