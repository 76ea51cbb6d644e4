// @file include/ember/ops/dropout.hpp
// @brief dropout(x, p, training, gen): torch.nn.functional.dropout with ember's Philox generator.
//
// In training, each element is kept with probability 1 - p and scaled by 1 / (1 - p), else zeroed:
// y = x * mask, mask[i] = u[i] < float(1 - p) ? 1.0f / float(1 - p) : 0, u the next n uniforms of
// `gen` (the numbers rand(x.shape(), gen) would give), so the mask depends only on the
// generator's seed and offset and is bitwise the same on the CPU and CUDA. As PyTorch: p = 0 or
// !training returns x itself (the generator is not advanced); p = 1 gives x * 0 (all zeros; NaN
// stays NaN); p outside [0, 1] throws. The backward multiplies the gradient by the same mask
// (y = x * mask through ember::mul, which saves the mask). Kernels: kernels/cpu/dropout.hpp,
// kernels/cuda/dropout.cuh.
#pragma once
#include <ember/kernels/cpu/dropout.hpp>

#include "common.hpp"
#include "elementwise.hpp"

namespace ember {

/// The mask dropout(x, p, true, gen) multiplies by (0 or 1 / (1 - p)), drawn from `gen`.
inline Tensor dropout_mask(const Shape& shape, double p, Generator& gen,
                           Device device = Device::cpu) {
  check_arg(p >= 0 && p <= 1, "dropout",
            "dropout probability has to be between 0 and 1, but got ", p);
  Tensor mask = Tensor::empty(shape, device, "dropout");
  const float keep = float(1.0 - p);
  const float scale = p == 1.0 ? 0.0f : 1.0f / keep;
  kernels::PhiloxState st = gen.reserve(mask.numel());
  EMBER_DISPATCH("dropout", mask, dropout_mask, mask.numel(), st, keep, scale, mask.data());
  return mask;
}

inline Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_arg(p >= 0 && p <= 1, "dropout",
            "dropout probability has to be between 0 and 1, but got ", p);
  check_arg(x.defined(), "dropout", "x is undefined");
  if (p == 0 || !training || x.numel() == 0) return x;
  if (p == 1) return mul(x, 0.0f);
  return mul(x, dropout_mask(x.shape(), p, gen, x.device()));
}

/// dropout with the default generator (default_generator(), seeded by manual_seed).
inline Tensor dropout(const Tensor& x, double p = 0.5, bool training = true) {
  return dropout(x, p, training, default_generator());
}

}  // namespace ember
