// @file kernels/cuda/common.cuh
// @brief Shared CUDA plumbing: error checking, the current stream, launch helpers and
//        deterministic block reductions used by every kernel file in kernels/cuda/.
//
// Errors: EMBER_CUDA_CHECK(call, "op") throws ember::Error("CUDA error in <op> at <file>:<line>:
// <cudaGetErrorString>") when `call` does not return cudaSuccess, after clearing the (non-sticky)
// last error so the runtime stays usable. EMBER_CUDA_LAUNCH_CHECK("op") checks a kernel launch
// (cudaGetLastError); every launch in kernels/cuda is followed by one.
//
// Stream: every op runs on ember::cuda::current_stream(), ONE process-wide stream shared by all
// threads. The default is the legacy default stream (cudaStreamLegacy): it is ordered with every
// other blocking stream and with plain cudaMemcpy, so code outside ember that touches the same
// buffers can never race with ember's kernels. set_current_stream(s) switches to another stream
// (e.g. a non-blocking stream for CUDA-graph capture); it first synchronises the previous stream,
// because the caching allocator (allocator.cuh) reuses freed blocks in stream order on the single
// current stream. Ops never synchronise the device; only copies to the host wait (memcpy_d2h).
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <string>

#include <ember/core/error.hpp>

/// Host+device inline function (shared by kernels and the host-side emulation tests).
#define EMBER_CUDA_HD __host__ __device__ __forceinline__

/// `#pragma unroll` for loops in EMBER_CUDA_HD code (the host compiler does not know it).
#if defined(__CUDA_ARCH__)
#define EMBER_UNROLL _Pragma("unroll")
#else
#define EMBER_UNROLL
#endif

namespace ember::cuda {

/// Throws ember::Error describing `err`; clears the last (non-sticky) error first.
[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* op, const char* file,
                                          int line) {
  (void)cudaGetLastError();
  throw ember::Error(std::string("CUDA error in ") + op + " at " + file + ":" +
                     std::to_string(line) + ": " + cudaGetErrorString(err) + " (" +
                     cudaGetErrorName(err) + ")");
}

}  // namespace ember::cuda

/// Turns any CUDA error returned by `call` into ember::Error naming `op`, file:line and the
/// CUDA error string.
#define EMBER_CUDA_CHECK(call, op)                                             \
  do {                                                                         \
    const cudaError_t ember_cuda_err_ = (call);                                \
    if (ember_cuda_err_ != cudaSuccess)                                        \
      ::ember::cuda::throw_cuda_error(ember_cuda_err_, (op), __FILE__, __LINE__); \
  } while (0)

/// Checks the most recent kernel launch (configuration errors, missing kernel image, ...).
#define EMBER_CUDA_LAUNCH_CHECK(op) EMBER_CUDA_CHECK(cudaGetLastError(), (op))

namespace ember::cuda {

namespace detail {
inline std::atomic<cudaStream_t>& stream_slot() {
  static std::atomic<cudaStream_t> s{cudaStreamLegacy};
  return s;
}
}  // namespace detail

/// The stream every ember CUDA op runs on (process-wide; default cudaStreamLegacy).
inline cudaStream_t current_stream() { return detail::stream_slot().load(); }

/// Makes `s` the current stream. Synchronises the previous stream first, so blocks that the
/// caching allocator freed in its order are idle before work on `s` can reuse them.
inline void set_current_stream(cudaStream_t s) {
  cudaStream_t old = detail::stream_slot().load();
  if (old == s) return;
  EMBER_CUDA_CHECK(cudaStreamSynchronize(old), "set_current_stream");
  detail::stream_slot().store(s);
}

// ---------------------------------------------------------------------------------------------
// Launch helpers
// ---------------------------------------------------------------------------------------------

constexpr int kThreads = 256;          // block size of the 1-D (elementwise) kernels
constexpr int64_t kMaxGrid = 1 << 16;  // 1-D grids are grid-stride loops capped at this size

inline int grid_1d(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > kMaxGrid) blocks = kMaxGrid;
  return static_cast<int>(blocks);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// Deterministic block reduction: fixed shuffle tree inside each warp, then warp 0 folds the
// warp results in warp order. The order depends only on blockDim.x (a multiple of 32, <= 1024).
// Every thread of the block must call it; the result is valid in thread 0 only.
// ---------------------------------------------------------------------------------------------

template <class T>
__device__ __forceinline__ T warp_reduce_sum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

template <class T>
__device__ __forceinline__ T block_reduce_sum(T v, T* smem /* >= 32 elements */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nwarps = (blockDim.x + 31) >> 5;
  v = warp_reduce_sum(v);
  __syncthreads();  // smem may still be read by a previous call
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  T r = T(0);
  if (warp == 0) {
    r = lane < nwarps ? smem[lane] : T(0);
    r = warp_reduce_sum(r);
  }
  return r;
}

}  // namespace ember::cuda
