// @file include/ember/core/backend.hpp
// @brief The CUDA backend table: how ops reach CUDA kernels from any translation unit.
//
// ember is header-only, but CUDA kernels can only be compiled by nvcc. Every op therefore calls
// CUDA through this table of plain function pointers. The table lives in one program-wide slot
// (a function-local static of an inline function, so all translation units share it). A
// translation unit compiled by nvcc that includes <ember/ember.hpp> also includes
// kernels/cuda/backend.cuh, whose static registrar fills the slot before main(). Consequences:
//  * a program with no CUDA translation unit: cuda_backend() is null and any CUDA request throws
//    ember::Error("... built without CUDA ...");
//  * a program mixing .cpp and .cu files: the CUDA backend is available to all of them, the
//    .cpp files included, because they call through this same table.
// All pointers below take device pointers and run on the backend's current stream.
#pragma once
#include <cstddef>
#include <cstdint>

#include <kernels/params.hpp>

namespace ember::detail {

using namespace ember::kernels;

struct CudaBackend {
  // ---- device and memory (caching allocator) ----
  int (*device_count)();
  const char* (*device_name)();
  void* (*malloc)(size_t bytes);  // throws ember::Error on out-of-memory
  void (*free)(void* p);
  void (*memcpy_h2d)(void* dst, const void* src, size_t bytes);
  void (*memcpy_d2h)(void* dst, const void* src, size_t bytes);  // waits for the stream
  void (*memcpy_d2d)(void* dst, const void* src, size_t bytes);
  void (*synchronize)();
  uint64_t (*raw_malloc_count)();   // cudaMalloc calls made by the caching allocator so far
  uint64_t (*bytes_in_use)();
  uint64_t (*peak_bytes_in_use)();
  void (*reset_peak)();
  void (*empty_cache)();            // cudaFree every cached block

  // ---- elementwise / reductions (n elements) ----
  void (*fill)(int64_t n, float value, float* y);
  void (*copy)(int64_t n, const float* x, float* y);
  void (*add)(int64_t n, const float* a, const float* b, float* y);
  void (*sub)(int64_t n, const float* a, const float* b, float* y);
  void (*mul)(int64_t n, const float* a, const float* b, float* y);
  void (*axpby)(int64_t n, float alpha, const float* a, float beta, const float* b, float* y);
  void (*scale)(int64_t n, float alpha, const float* x, float* y);
  void (*add_scalar)(int64_t n, const float* x, float s, float* y);
  void (*accumulate)(int64_t n, const float* x, float* y);  // y += x
  void (*broadcast_scalar)(int64_t n, const float* s, float alpha, float* y);  // y = alpha*s[0]
  void (*sum)(int64_t n, const float* x, float* out);  // out[0] = sum(x), deterministic
  void (*mse_loss_forward)(int64_t n, const float* a, const float* b, float* out);
  void (*mse_loss_backward)(int64_t n, const float* a, const float* b, const float* grad_out,
                            float* da, float* db);
  void (*relu_forward)(int64_t n, const float* x, float* y);
  void (*relu_backward)(int64_t n, const float* x, const float* dy, float* dx);
  void (*gelu_forward)(int64_t n, const float* x, float* y);
  void (*gelu_backward)(int64_t n, const float* x, const float* dy, float* dx);
  void (*gelu_tanh_forward)(int64_t n, const float* x, float* y);
  void (*gelu_tanh_backward)(int64_t n, const float* x, const float* dy, float* dx);
  void (*concat_copy)(int64_t outer, int64_t src_block, int64_t dst_block, int64_t dst_offset,
                      const float* src, float* dst);
  void (*slice_copy)(int64_t outer, int64_t src_block, int64_t src_offset, int64_t dst_block,
                     const float* src, float* dst);
  void (*rand_uniform)(int64_t n, PhiloxState st, float* y);
  void (*rand_normal)(int64_t n, PhiloxState st, float* y);

  // ---- layers ----
  void (*conv2d_forward)(const Conv2dShape&, const float* x, const float* w, const float* b,
                         float* y);
  void (*conv2d_backward_input)(const Conv2dShape&, const float* dy, const float* w, float* dx);
  void (*conv2d_backward_weight)(const Conv2dShape&, const float* x, const float* dy, float* dw,
                                 float* db);
  void (*conv_transpose2d_forward)(const ConvTranspose2dShape&, const float* x, const float* w,
                                   const float* b, float* y);
  void (*conv_transpose2d_backward_input)(const ConvTranspose2dShape&, const float* dy,
                                          const float* w, float* dx);
  void (*conv_transpose2d_backward_weight)(const ConvTranspose2dShape&, const float* x,
                                           const float* dy, float* dw, float* db);
  void (*batch_norm_forward_train)(const BatchNormShape&, const float* x, const float* gamma,
                                   const float* beta, float eps, float momentum, float* y,
                                   float* save_mean, float* save_invstd, float* running_mean,
                                   float* running_var);
  void (*batch_norm_forward_eval)(const BatchNormShape&, const float* x, const float* gamma,
                                  const float* beta, const float* running_mean,
                                  const float* running_var, float eps, float* y);
  void (*batch_norm_backward_train)(const BatchNormShape&, const float* x, const float* dy,
                                    const float* gamma, const float* save_mean,
                                    const float* save_invstd, float* dx, float* dgamma,
                                    float* dbeta);
  void (*batch_norm_backward_eval)(const BatchNormShape&, const float* x, const float* dy,
                                   const float* gamma, const float* running_mean,
                                   const float* running_var, float eps, float* dx,
                                   float* dgamma, float* dbeta);
  void (*group_norm_forward)(const GroupNormShape&, const float* x, const float* gamma,
                             const float* beta, float eps, float* y, float* save_mean,
                             float* save_rstd);
  void (*group_norm_backward)(const GroupNormShape&, const float* x, const float* dy,
                              const float* gamma, const float* save_mean, const float* save_rstd,
                              float* dx, float* dgamma, float* dbeta);
  void (*max_pool2d_forward)(const MaxPool2dShape&, const float* x, float* y, int32_t* argmax);
  void (*max_pool2d_backward)(const MaxPool2dShape&, const float* dy, const int32_t* argmax,
                              float* dx);
  void (*linear_forward)(const LinearShape&, const float* x, const float* w, const float* b,
                         float* y);
  void (*linear_backward_input)(const LinearShape&, const float* dy, const float* w, float* dx);
  void (*linear_backward_weight)(const LinearShape&, const float* x, const float* dy, float* dw,
                                 float* db);

  // ---- optimizers ----
  void (*sgd_step)(int64_t n, SgdParams p, float* param, const float* grad, float* buf);
  void (*adam_step)(int64_t n, AdamParams p, float* param, const float* grad, float* m, float* v);
};

/// The program-wide slot; null until a CUDA translation unit registers the backend.
inline const CudaBackend*& cuda_backend_slot() {
  static const CudaBackend* slot = nullptr;
  return slot;
}

inline const CudaBackend* cuda_backend() { return cuda_backend_slot(); }

}  // namespace ember::detail
