// @file src/cuda_backend.cu
// @brief The compiled CUDA backend, target ember::cuda: every kernel of include/ember/kernels/cuda
//        compiled once, and the backend table registered before main().
//
// Header-only ember registers the CUDA backend from every translation unit that nvcc compiles
// with <ember/ember.hpp> (kernels/cuda/backend.cuh), so each such unit compiles all kernels again.
// Linking ember::cuda instead (an OBJECT library: its object file is linked into the program
// itself, so the static registrar below always runs) gives
//  * a program of plain .cpp files the CUDA backend, without nvcc touching any of its files;
//  * a user's .cu files a fast compile: ember::cuda defines EMBER_CUDA_PRECOMPILED for them,
//    so <ember/ember.hpp> leaves the kernels out (they are here, compiled once).
// docs/architecture.md ("Header-only or compiled CUDA") has the compile times.
#include <ember/kernels/cuda/backend.cuh>

namespace ember::cuda {

/// True in a program that links ember::cuda (the registrar of this file ran before main()).
bool linked_backend_registered() { return ember::detail::cuda_backend() == &backend_table(); }

}  // namespace ember::cuda
