// @file include/ember/core/device.hpp
// @brief Device tags (cpu, cuda) and the check that a CUDA backend is present.
#pragma once
#include <ostream>
#include <string>

#include "backend.hpp"
#include "error.hpp"

namespace ember {

enum class Device { cpu, cuda };

inline const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

inline std::ostream& operator<<(std::ostream& os, Device d) { return os << device_name(d); }

namespace cuda {

/// True when this program has a CUDA translation unit (the backend is registered) and at least
/// one GPU is visible.
inline bool is_available() {
  const ::ember::detail::CudaBackend* b = ::ember::detail::cuda_backend();
  return b != nullptr && b->device_count() > 0;
}

/// True when this program contains CUDA code at all (whether or not a GPU is present).
inline bool is_compiled() { return ::ember::detail::cuda_backend() != nullptr; }

}  // namespace cuda

namespace detail {

/// The CUDA backend, or an ember::Error naming the op when the program has no CUDA code.
inline const CudaBackend& cuda(const char* op) {
  const CudaBackend* b = cuda_backend();
  if (b == nullptr)
    throw Error(std::string(op) +
                ": a CUDA tensor was used but this program has no CUDA backend (include "
                "<ember/ember.hpp> from at least one .cu file compiled by nvcc)");
  return *b;
}

}  // namespace detail
}  // namespace ember
