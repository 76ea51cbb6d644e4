// @file include/ember/kernels/cuda/common.cuh
// @brief Shared CUDA plumbing: error checking, the current stream, the one kernel-launch helper,
//        shared-memory declarations and deterministic block reductions used by every kernel
//        file in include/ember/kernels/cuda/.
//
// Errors: EMBER_CUDA_CHECK(call, "op") throws ember::Error("CUDA error in <op> at <file>:<line>:
// <cudaGetErrorString>") when `call` does not return cudaSuccess, after clearing the (non-sticky)
// last error so the runtime stays usable.
//
// Launches: every kernel is launched by ember::cuda::launch(op, "kernel", kernel, grid, block,
// smem, stream, args...), which is `kernel<<<grid, block, smem, stream>>>(args...)` under nvcc
// and the host SIMT runtime (include/ember/kernels/cuda/host/) in builds with EMBER_CUDA_EMULATION.
// It checks
// the launch (cudaGetLastError) and, with EMBER_CUDA_SYNC_LAUNCHES=1 in the environment,
// synchronises after it, so a fault inside a kernel is reported under the kernel's own name
// instead of at the next device-to-host copy (a debugging switch: it serialises host and GPU).
//
// Shared memory: kernels declare it with EMBER_SHARED(type, name, [dims]) and
// EMBER_DYNAMIC_SHARED(type, name): `__shared__ type name[dims]` / `extern __shared__ type
// name[]` under nvcc, a per-block, exactly sized, poisoned buffer under the host runtime.
//
// Stream: every op runs on ember::cuda::current_stream(), ONE process-wide stream shared by all
// threads. The default is the legacy default stream (cudaStreamLegacy): it is ordered with every
// other blocking stream and with plain cudaMemcpy, so code outside ember that touches the same
// buffers can never race with ember's kernels. set_current_stream(s) switches to another stream;
// it first synchronises the previous stream, because the caching allocator (allocator.cuh)
// reuses freed blocks in stream order on the single current stream. Ops never synchronise the
// device; copies to the host wait (memcpy_d2h), and so do copies from the host (memcpy_h2d), so
// the caller may free its buffer at once. CUDA-graph capture is NOT supported: the allocator
// hands a freed block to the next request at once, which a captured graph would still use, and
// copies synchronise.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include <ember/core/error.hpp>
#include <ember/kernels/hd.hpp>

#if defined(EMBER_CUDA_EMULATION)
/// `__shared__ T name dims;` -- the host runtime's per-block instance (see host/simt.hpp).
#define EMBER_SHARED(T, name, dims)                                                  \
  static thread_local char ember_shared_key_##name;                                  \
  T(&name) dims = *static_cast<T(*) dims>(::ember::simt::shared_var(               \
      &ember_shared_key_##name, sizeof(T dims), alignof(T)))
/// `extern __shared__ T name[];` -- the launch's dynamic shared memory.
#define EMBER_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::ember::simt::dynamic_shared())
#else
#define EMBER_SHARED(T, name, dims) __shared__ T name dims
#define EMBER_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

/// `#pragma unroll` for loops in EMBER_HD code (the host compiler does not know it).
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
  std::string detail;
#if defined(EMBER_CUDA_EMULATION)
  detail = ::ember::simt::take_fault_detail();  // what the host runtime found, naming the kernel
  if (!detail.empty()) detail = " -- " + detail;
#endif
  throw ember::Error(std::string("CUDA error in ") + op + " at " + file + ":" +
                     std::to_string(line) + ": " + cudaGetErrorString(err) + " (" +
                     cudaGetErrorName(err) + ")" + detail);
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

/// True when EMBER_CUDA_SYNC_LAUNCHES=1: every launch is followed by a synchronisation and a
/// check that names the kernel (read once).
inline std::atomic<bool>& sync_launches_flag() {
  static std::atomic<bool> on{[] {
    const char* e = std::getenv("EMBER_CUDA_SYNC_LAUNCHES");
    return e != nullptr && std::strcmp(e, "0") != 0 && *e != '\0';
  }()};
  return on;
}
inline bool sync_launches() { return sync_launches_flag().load(std::memory_order_relaxed); }
/// Turns the per-launch synchronisation on or off in code (the environment sets the default).
inline void set_sync_launches(bool on) { sync_launches_flag().store(on); }

/// Launches kernel<<<grid, block, smem, stream>>>(args...) and checks the launch; `op` is the
/// ember operation and `kernel_name` the kernel, both named by any error.
template <class... P, class... A>
inline void launch(const char* op, const char* kernel_name, void (*kernel)(P...), dim3 grid,
                   dim3 block, size_t smem, cudaStream_t stream, A&&... args) {
#if defined(EMBER_CUDA_EMULATION)
  (void)::ember::simt::launch_kernel(kernel_name, kernel, grid, block, smem, stream,
                                     std::forward<A>(args)...);
#else
  kernel<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
#endif
  // The message naming op and kernel is built only on failure: no allocation per launch.
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && sync_launches()) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess)
    throw_cuda_error(err, (std::string(op) + " (kernel " + kernel_name + ")").c_str(), __FILE__,
                     __LINE__);
}

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
