// @file include/ember/core/backend.hpp
// @brief The CUDA backend table: how ops reach CUDA kernels from any translation unit.
//
// ember is header-only, but CUDA kernels can only be compiled by nvcc. Every op therefore calls
// CUDA through this table of plain function pointers. The table lives in one program-wide slot
// (a function-local static of an inline function, so all translation units share it). A
// translation unit compiled by nvcc that includes <ember/ember.hpp> also includes
// include/ember/kernels/cuda/backend.cuh, whose static registrar fills the slot before main().
// Consequences:
//  * a program with no CUDA translation unit: cuda_backend() is null and any CUDA request throws
//    ember::Error("... built without CUDA ...");
//  * a program mixing .cpp and .cu files: the CUDA backend is available to all of them, the
//    .cpp files included, because they call through this same table.
// The entries are listed once, in core/backend_ops.def; all take device pointers and run on the
// backend's current stream.
#pragma once
#include <cstddef>
#include <cstdint>

#include <ember/kernels/params.hpp>

namespace ember::detail {

/// One function pointer per entry of core/backend_ops.def (the one list of backend entries).
struct CudaBackend {
#define EMBER_BACKEND_RUNTIME(name, ret, params) ret(*name) params;
#define EMBER_BACKEND_KERNEL(name, params, args) void(*name) params;
#include "backend_ops.def"
};

/// The program-wide slot; null until a CUDA translation unit registers the backend.
inline const CudaBackend*& cuda_backend_slot() {
  static const CudaBackend* slot = nullptr;
  return slot;
}

inline const CudaBackend* cuda_backend() { return cuda_backend_slot(); }

}  // namespace ember::detail
