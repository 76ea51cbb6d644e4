// @file include/ember/core/dispatch.hpp
// @brief EMBER_DISPATCH: the one place a kernel is chosen by a tensor's device.
//
// The tensor layer (tensor.hpp, autograd.hpp) and every op (ops/*.hpp) pick their kernel with
// this macro; a hand-written `is_cuda()` branch is only for moving bytes between host and device
// (docs/architecture.md, "Backend dispatch"). The includer provides the CPU kernel
// (ember/kernels/cpu/*.hpp) that FN names.
#pragma once
#include "device.hpp"

/// Calls the CPU kernel ember::cpu::FN(args...) or the CUDA backend's FN(args...) according to
/// the device of tensor T. `OP` names the caller in the error thrown when a CUDA tensor reaches a
/// program without a CUDA backend.
#define EMBER_DISPATCH(OP, T, FN, ...)           \
  do {                                           \
    if ((T).is_cuda())                           \
      ::ember::detail::cuda(OP).FN(__VA_ARGS__); \
    else                                         \
      ::ember::cpu::FN(__VA_ARGS__);             \
  } while (0)
