// @file include/ember/kernels/cuda/backend.cuh
// @brief Builds the CudaBackend function table (include/ember/core/backend.hpp) from the kernels
//        in include/ember/kernels/cuda and registers it in ember::detail::cuda_backend_slot().
//
// Every wrapper has the exact pointer type of its CudaBackend member and runs its kernel on
// ember::cuda::current_stream() (common.cuh). The table is one inline function-local static, so
// all translation units that include this header share the same table; each such unit also has
// a static registrar (anonymous namespace) that stores the table's address in the slot before
// main() -- idempotent, it always stores the same pointer. Registration touches no CUDA API, so
// a program built with CUDA runs fine on a machine without a GPU until CUDA is actually used.
//
// Memory: malloc/free go to the caching allocator (allocator.cuh). memcpy_h2d / memcpy_d2d are
// stream-ordered (cudaMemcpyAsync on the current stream); memcpy_h2d and memcpy_d2h synchronise
// the stream before returning, so the host buffer may be reused or freed at once.
// synchronize() waits for the whole device. device_count() returns 0 (never throws) when no GPU
// or driver is present.
#pragma once
#define EMBER_CUDA_BACKEND_HEADER 1  // this translation unit compiles every CUDA kernel
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <string>

#include <ember/core/backend.hpp>

#include "allocator.cuh"
#include "batch_norm.cuh"
#include "broadcast.cuh"
#include "common.cuh"
#include "concat.cuh"
#include "conv2d.cuh"
#include "conv_transpose2d.cuh"
#include "elementwise.cuh"
#include "gelu.cuh"
#include "group_norm.cuh"
#include "linear.cuh"
#include "max_pool2d.cuh"
#include "optim.cuh"
#include "random.cuh"
#include "reduce.cuh"
#include "reduce_dims.cuh"
#include "relu.cuh"
#include "silu.cuh"
#include "unary.cuh"
// softmax family
#include "softmax.cuh"
// layout and indexing (#12 item 5)
#include "layout.cuh"
// layers and training
#include "dropout.cuh"
#include "embedding.cuh"

namespace ember::cuda {

namespace backend_impl {

inline int device_count() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

inline const char* device_name() {
  static std::once_flag once;
  static std::string name;
  std::call_once(once, [] {
    if (device_count() == 0) {
      name = "no CUDA device";
      return;
    }
    int dev = 0;
    cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      name = "unknown CUDA device";
      return;
    }
    name = prop.name;
  });
  return name.c_str();
}

inline void* malloc(size_t bytes) { return allocator().allocate(bytes); }
inline void free(void* p) { allocator().deallocate(p); }

inline void memcpy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const cudaStream_t s = current_stream();
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), "memcpy_h2d");
  // Safe by construction: wait until the copy has read src, whatever memory src is (pageable or
  // page-locked), so the caller may free or reuse it as soon as this returns.
  EMBER_CUDA_CHECK(cudaStreamSynchronize(s), "memcpy_h2d");
}

inline void memcpy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const cudaStream_t s = current_stream();
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), "memcpy_d2h");
  EMBER_CUDA_CHECK(cudaStreamSynchronize(s), "memcpy_d2h");
}

inline void memcpy_d2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, current_stream()),
                   "memcpy_d2d");
}

inline void synchronize() { EMBER_CUDA_CHECK(cudaDeviceSynchronize(), "synchronize"); }
inline uint64_t raw_malloc_count() { return allocator().raw_malloc_count(); }
inline uint64_t bytes_in_use() { return allocator().bytes_in_use(); }
inline uint64_t peak_bytes_in_use() { return allocator().peak_bytes_in_use(); }
inline void reset_peak() { allocator().reset_peak(); }
inline void empty_cache() { allocator().empty_cache(); }

// ---- kernels: one wrapper per EMBER_BACKEND_KERNEL of core/backend_ops.def ----
#define EMBER_BACKEND_UNPAREN(...) __VA_ARGS__
#define EMBER_BACKEND_RUNTIME(name, ret, params)  // written by hand above
#define EMBER_BACKEND_KERNEL(name, params, args) \
  inline void name params { cuda::name(EMBER_BACKEND_UNPAREN args, current_stream()); }
#include <ember/core/backend_ops.def>
#undef EMBER_BACKEND_UNPAREN

}  // namespace backend_impl

/// The one CUDA backend table of the program, filled in the order of core/backend_ops.def (the
/// order of CudaBackend's members): an entry without its function is a compile error.
inline const ember::detail::CudaBackend& backend_table() {
  namespace b = backend_impl;
  static const ember::detail::CudaBackend table = {
#define EMBER_BACKEND_RUNTIME(name, ret, params) &b::name,
#define EMBER_BACKEND_KERNEL(name, params, args) &b::name,
#include <ember/core/backend_ops.def>
  };
  return table;
}

}  // namespace ember::cuda

namespace {
/// Registers the CUDA backend before main() (one registrar per translation unit; idempotent).
struct EmberCudaBackendRegistrar {
  EmberCudaBackendRegistrar() { ember::detail::cuda_backend_slot() = &ember::cuda::backend_table(); }
};
const EmberCudaBackendRegistrar ember_cuda_backend_registrar_instance{};
}  // namespace
