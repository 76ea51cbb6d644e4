// @file include/ember/kernels/cuda/host/device_builtins.hpp
// @brief CUDA C++'s keywords, built-in functions and intrinsics for the host SIMT runtime.
//
// Execution-space keywords become plain C++ (__global__ and __device__ functions are ordinary
// inline functions); __syncthreads, the warp collectives and votes enter the scheduler
// (simt.hpp) and record their call site, so a fault names file and line. The rounding
// intrinsics compute in the named precision with round-to-nearest, which is what IEEE
// arithmetic on the host does (emulated builds use -ffp-contract=off, so no FMA contraction
// changes a result). Atomics need no locking: the threads of a launch are fibers of one host
// thread and switch only at barriers and collectives.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "simt.hpp"

#define __global__ inline
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __constant__

// ---- barriers and warp collectives ----

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::ember::simt::barrier(::ember::simt::Site{file, line});
}

inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(),
                       int line = __builtin_LINE()) {
  (void)::ember::simt::warp_collective(::ember::simt::WarpKind::sync, mask, 0, 0, 32,
                                       ::ember::simt::Site{file, line});
}

inline void __threadfence() {}
inline void __threadfence_block() {}

namespace ember::simt {
template <class T>
inline T shuffle(WarpKind kind, unsigned mask, T v, int param, int width, Site site) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8,
                "warp shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  const uint64_t r = warp_collective(kind, mask, bits, param, width, site);
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}
}  // namespace ember::simt

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32,
                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::ember::simt::shuffle(::ember::simt::WarpKind::shfl_idx, mask, v, src_lane, width,
                                ::ember::simt::Site{file, line});
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32,
                        const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::ember::simt::shuffle(::ember::simt::WarpKind::shfl_up, mask, v, int(delta), width,
                                ::ember::simt::Site{file, line});
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::ember::simt::shuffle(::ember::simt::WarpKind::shfl_down, mask, v, int(delta), width,
                                ::ember::simt::Site{file, line});
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                         const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::ember::simt::shuffle(::ember::simt::WarpKind::shfl_xor, mask, v, lane_mask, width,
                                ::ember::simt::Site{file, line});
}
inline unsigned __ballot_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  return static_cast<unsigned>(::ember::simt::warp_collective(
      ::ember::simt::WarpKind::ballot, mask, pred != 0, 0, 32, ::ember::simt::Site{file, line}));
}
inline int __any_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  return static_cast<int>(::ember::simt::warp_collective(
      ::ember::simt::WarpKind::any, mask, pred != 0, 0, 32, ::ember::simt::Site{file, line}));
}
inline int __all_sync(unsigned mask, int pred, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  return static_cast<int>(::ember::simt::warp_collective(
      ::ember::simt::WarpKind::all, mask, pred != 0, 0, 32, ::ember::simt::Site{file, line}));
}

// ---- rounding intrinsics (round to nearest even, no contraction) ----

inline float __fadd_rn(float a, float b) {
  return a + b;
}
inline float __fsub_rn(float a, float b) {
  return a - b;
}
inline float __fmul_rn(float a, float b) {
  return a * b;
}
inline float __fdiv_rn(float a, float b) {
  return a / b;
}
inline float __frcp_rn(float a) {
  return 1.0f / a;
}
inline float __fsqrt_rn(float a) {
  return std::sqrt(a);
}
inline float __fmaf_rn(float a, float b, float c) {
  return std::fma(a, b, c);
}
inline double __dadd_rn(double a, double b) {
  return a + b;
}
inline double __dsub_rn(double a, double b) {
  return a - b;
}
inline double __dmul_rn(double a, double b) {
  return a * b;
}
inline double __ddiv_rn(double a, double b) {
  return a / b;
}
inline double __dsqrt_rn(double a) {
  return std::sqrt(a);
}
inline double __fma_rn(double a, double b, double c) {
  return std::fma(a, b, c);
}
inline float __saturatef(float x) {
  return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x);
}
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}
inline double rsqrt(double x) {
  return 1.0 / std::sqrt(x);
}

// ---- bit casts and bit tricks ----

inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline unsigned __float_as_uint(float f) {
  unsigned i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline float __uint_as_float(unsigned i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline int __popc(unsigned x) {
  return __builtin_popcount(x);
}
inline int __popcll(unsigned long long x) {
  return __builtin_popcountll(x);
}
inline int __ffs(int x) {
  return __builtin_ffs(x);
}
inline int __clz(int x) {
  return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x));
}
template <class T>
inline T __ldg(const T* p) {
  return *p;
}

// ---- atomics (fibers of one host thread: a plain read-modify-write is atomic) ----

template <class T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  *p = v < old ? v : old;
  return old;
}
template <class T>
inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <class T>
inline T atomicCAS(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}
