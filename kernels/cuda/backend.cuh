// @file kernels/cuda/backend.cuh
// @brief Builds the CudaBackend function table (include/ember/core/backend.hpp) from the kernels
//        in kernels/cuda and registers it in ember::detail::cuda_backend_slot().
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
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <string>

#include <ember/core/backend.hpp>

#include "allocator.cuh"
#include "batch_norm.cuh"
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
#include "relu.cuh"

namespace ember::cuda {

namespace backend_impl {

using namespace ember::kernels;

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

// ---- elementwise / reductions ----
inline void fill(int64_t n, float value, float* y) { cuda::fill(n, value, y, current_stream()); }
inline void copy(int64_t n, const float* x, float* y) { cuda::copy(n, x, y, current_stream()); }
inline void add(int64_t n, const float* a, const float* b, float* y) {
  cuda::add(n, a, b, y, current_stream());
}
inline void sub(int64_t n, const float* a, const float* b, float* y) {
  cuda::sub(n, a, b, y, current_stream());
}
inline void mul(int64_t n, const float* a, const float* b, float* y) {
  cuda::mul(n, a, b, y, current_stream());
}
inline void axpby(int64_t n, float alpha, const float* a, float beta, const float* b, float* y) {
  cuda::axpby(n, alpha, a, beta, b, y, current_stream());
}
inline void scale(int64_t n, float alpha, const float* x, float* y) {
  cuda::scale(n, alpha, x, y, current_stream());
}
inline void add_scalar(int64_t n, const float* x, float s, float* y) {
  cuda::add_scalar(n, x, s, y, current_stream());
}
inline void accumulate(int64_t n, const float* x, float* y) {
  cuda::accumulate(n, x, y, current_stream());
}
inline void broadcast_scalar(int64_t n, const float* s, float alpha, float* y) {
  cuda::broadcast_scalar(n, s, alpha, y, current_stream());
}
inline void sum(int64_t n, const float* x, float* out) { cuda::sum(n, x, out, current_stream()); }
inline void mse_loss_forward(int64_t n, const float* a, const float* b, float* out) {
  cuda::mse_loss_forward(n, a, b, out, current_stream());
}
inline void mse_loss_backward(int64_t n, const float* a, const float* b, const float* grad_out,
                              float* da, float* db) {
  cuda::mse_loss_backward(n, a, b, grad_out, da, db, current_stream());
}
inline void relu_forward(int64_t n, const float* x, float* y) {
  cuda::relu_forward(n, x, y, current_stream());
}
inline void relu_backward(int64_t n, const float* x, const float* dy, float* dx) {
  cuda::relu_backward(n, x, dy, dx, current_stream());
}
inline void gelu_forward(int64_t n, const float* x, float* y) {
  cuda::gelu_forward(n, x, y, current_stream());
}
inline void gelu_backward(int64_t n, const float* x, const float* dy, float* dx) {
  cuda::gelu_backward(n, x, dy, dx, current_stream());
}
inline void gelu_tanh_forward(int64_t n, const float* x, float* y) {
  cuda::gelu_tanh_forward(n, x, y, current_stream());
}
inline void gelu_tanh_backward(int64_t n, const float* x, const float* dy, float* dx) {
  cuda::gelu_tanh_backward(n, x, dy, dx, current_stream());
}
inline void concat_copy(int64_t outer, int64_t src_block, int64_t dst_block, int64_t dst_offset,
                        const float* src, float* dst) {
  cuda::concat_copy(outer, src_block, dst_block, dst_offset, src, dst, current_stream());
}
inline void slice_copy(int64_t outer, int64_t src_block, int64_t src_offset, int64_t dst_block,
                       const float* src, float* dst) {
  cuda::slice_copy(outer, src_block, src_offset, dst_block, src, dst, current_stream());
}
inline void rand_uniform(int64_t n, PhiloxState st, float* y) {
  cuda::rand_uniform(n, st, y, current_stream());
}
inline void rand_normal(int64_t n, PhiloxState st, float* y) {
  cuda::rand_normal(n, st, y, current_stream());
}

// ---- layers ----
inline void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                           float* y) {
  cuda::conv2d_forward(s, x, w, b, y, current_stream());
}
inline void conv2d_backward_input(const Conv2dShape& s, const float* dy, const float* w,
                                  float* dx) {
  cuda::conv2d_backward_input(s, dy, w, dx, current_stream());
}
inline void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy,
                                   float* dw, float* db) {
  cuda::conv2d_backward_weight(s, x, dy, dw, db, current_stream());
}
inline void conv_transpose2d_forward(const ConvTranspose2dShape& s, const float* x,
                                     const float* w, const float* b, float* y) {
  cuda::conv_transpose2d_forward(s, x, w, b, y, current_stream());
}
inline void conv_transpose2d_backward_input(const ConvTranspose2dShape& s, const float* dy,
                                            const float* w, float* dx) {
  cuda::conv_transpose2d_backward_input(s, dy, w, dx, current_stream());
}
inline void conv_transpose2d_backward_weight(const ConvTranspose2dShape& s, const float* x,
                                             const float* dy, float* dw, float* db) {
  cuda::conv_transpose2d_backward_weight(s, x, dy, dw, db, current_stream());
}
inline void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                                     const float* beta, float eps, float momentum, float* y,
                                     float* save_mean, float* save_invstd, float* running_mean,
                                     float* running_var) {
  cuda::batch_norm_forward_train(s, x, gamma, beta, eps, momentum, y, save_mean, save_invstd,
                                 running_mean, running_var, current_stream());
}
inline void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                                    const float* beta, const float* running_mean,
                                    const float* running_var, float eps, float* y) {
  cuda::batch_norm_forward_eval(s, x, gamma, beta, running_mean, running_var, eps, y,
                                current_stream());
}
inline void batch_norm_backward_train(const BatchNormShape& s, const float* x, const float* dy,
                                      const float* gamma, const float* save_mean,
                                      const float* save_invstd, float* dx, float* dgamma,
                                      float* dbeta) {
  cuda::batch_norm_backward_train(s, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta,
                                  current_stream());
}
inline void batch_norm_backward_eval(const BatchNormShape& s, const float* x, const float* dy,
                                     const float* gamma, const float* running_mean,
                                     const float* running_var, float eps, float* dx,
                                     float* dgamma, float* dbeta) {
  cuda::batch_norm_backward_eval(s, x, dy, gamma, running_mean, running_var, eps, dx, dgamma,
                                 dbeta, current_stream());
}
inline void group_norm_forward(const GroupNormShape& s, const float* x, const float* gamma,
                               const float* beta, float eps, float* y, float* save_mean,
                               float* save_rstd) {
  cuda::group_norm_forward(s, x, gamma, beta, eps, y, save_mean, save_rstd, current_stream());
}
inline void group_norm_backward(const GroupNormShape& s, const float* x, const float* dy,
                                const float* gamma, const float* save_mean,
                                const float* save_rstd, float* dx, float* dgamma, float* dbeta) {
  cuda::group_norm_backward(s, x, dy, gamma, save_mean, save_rstd, dx, dgamma, dbeta,
                            current_stream());
}
inline void max_pool2d_forward(const MaxPool2dShape& s, const float* x, float* y,
                               int32_t* argmax) {
  cuda::max_pool2d_forward(s, x, y, argmax, current_stream());
}
inline void max_pool2d_backward(const MaxPool2dShape& s, const float* dy, const int32_t* argmax,
                                float* dx) {
  cuda::max_pool2d_backward(s, dy, argmax, dx, current_stream());
}
inline void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b,
                           float* y) {
  cuda::linear_forward(s, x, w, b, y, current_stream());
}
inline void linear_backward_input(const LinearShape& s, const float* dy, const float* w,
                                  float* dx) {
  cuda::linear_backward_input(s, dy, w, dx, current_stream());
}
inline void linear_backward_weight(const LinearShape& s, const float* x, const float* dy,
                                   float* dw, float* db) {
  cuda::linear_backward_weight(s, x, dy, dw, db, current_stream());
}

// ---- optimizers ----
inline void sgd_step(int64_t n, SgdParams p, float* param, const float* grad, float* buf) {
  cuda::sgd_step(n, p, param, grad, buf, current_stream());
}
inline void adam_step(int64_t n, AdamParams p, float* param, const float* grad, float* m,
                      float* v) {
  cuda::adam_step(n, p, param, grad, m, v, current_stream());
}

}  // namespace backend_impl

/// The one CUDA backend table of the program.
inline const ember::detail::CudaBackend& backend_table() {
  namespace b = backend_impl;
  static const ember::detail::CudaBackend table = [] {
    ember::detail::CudaBackend t{};
    t.device_count = &b::device_count;
    t.device_name = &b::device_name;
    t.malloc = &b::malloc;
    t.free = &b::free;
    t.memcpy_h2d = &b::memcpy_h2d;
    t.memcpy_d2h = &b::memcpy_d2h;
    t.memcpy_d2d = &b::memcpy_d2d;
    t.synchronize = &b::synchronize;
    t.raw_malloc_count = &b::raw_malloc_count;
    t.bytes_in_use = &b::bytes_in_use;
    t.peak_bytes_in_use = &b::peak_bytes_in_use;
    t.reset_peak = &b::reset_peak;
    t.empty_cache = &b::empty_cache;
    t.fill = &b::fill;
    t.copy = &b::copy;
    t.add = &b::add;
    t.sub = &b::sub;
    t.mul = &b::mul;
    t.axpby = &b::axpby;
    t.scale = &b::scale;
    t.add_scalar = &b::add_scalar;
    t.accumulate = &b::accumulate;
    t.broadcast_scalar = &b::broadcast_scalar;
    t.sum = &b::sum;
    t.mse_loss_forward = &b::mse_loss_forward;
    t.mse_loss_backward = &b::mse_loss_backward;
    t.relu_forward = &b::relu_forward;
    t.relu_backward = &b::relu_backward;
    t.gelu_forward = &b::gelu_forward;
    t.gelu_backward = &b::gelu_backward;
    t.gelu_tanh_forward = &b::gelu_tanh_forward;
    t.gelu_tanh_backward = &b::gelu_tanh_backward;
    t.concat_copy = &b::concat_copy;
    t.slice_copy = &b::slice_copy;
    t.rand_uniform = &b::rand_uniform;
    t.rand_normal = &b::rand_normal;
    t.conv2d_forward = &b::conv2d_forward;
    t.conv2d_backward_input = &b::conv2d_backward_input;
    t.conv2d_backward_weight = &b::conv2d_backward_weight;
    t.conv_transpose2d_forward = &b::conv_transpose2d_forward;
    t.conv_transpose2d_backward_input = &b::conv_transpose2d_backward_input;
    t.conv_transpose2d_backward_weight = &b::conv_transpose2d_backward_weight;
    t.batch_norm_forward_train = &b::batch_norm_forward_train;
    t.batch_norm_forward_eval = &b::batch_norm_forward_eval;
    t.batch_norm_backward_train = &b::batch_norm_backward_train;
    t.batch_norm_backward_eval = &b::batch_norm_backward_eval;
    t.group_norm_forward = &b::group_norm_forward;
    t.group_norm_backward = &b::group_norm_backward;
    t.max_pool2d_forward = &b::max_pool2d_forward;
    t.max_pool2d_backward = &b::max_pool2d_backward;
    t.linear_forward = &b::linear_forward;
    t.linear_backward_input = &b::linear_backward_input;
    t.linear_backward_weight = &b::linear_backward_weight;
    t.sgd_step = &b::sgd_step;
    t.adam_step = &b::adam_step;
    return t;
  }();
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
