// @file include/ember/nn/utils.hpp
// @brief nn::utils::clip_grad_norm_: torch.nn.utils.clip_grad_norm_ (PyTorch 1.13).
#pragma once
#include <cmath>
#include <limits>
#include <vector>

#include "../ops/elementwise.hpp"
#include "../ops/reduce.hpp"
#include "../ops/unary.hpp"
#include "module.hpp"

namespace ember::nn::utils {

/// Scales the gradients of `parameters` in place so that their total norm (the norm of the
/// vector of every gradient's norm) is at most max_norm, and returns that total norm (before
/// clipping) as a rank-0 tensor on the first gradient's device, as PyTorch:
///   clip_coef = max_norm / (total + 1e-6), clamped to at most 1; every gradient *= clip_coef.
/// Parameters without a gradient are skipped (no gradients: returns 0 and changes nothing).
/// norm_type: 2 (default), 1, or infinity (std::numeric_limits<double>::infinity()); others
/// throw. Each gradient's norm is reduced on its own device with ember's deterministic sum
/// (sum(square(g)), sum(abs(g)); the max for infinity on the host), and the per-gradient norms are
/// combined on the host in double, so the result is deterministic and the same on CPU and CUDA
/// up to the devices' sums (equal bitwise where the sums are). error_if_nonfinite: throw
/// ember::Error when the total norm is NaN or infinite instead of scaling by NaN.
inline Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm,
                              double norm_type = 2.0, bool error_if_nonfinite = false) {
  const char* op = "clip_grad_norm_";
  const bool inf = std::isinf(norm_type) && norm_type > 0;
  check_arg(norm_type == 2.0 || norm_type == 1.0 || inf, op,
            "norm_type must be 2, 1 or infinity, got ", norm_type);
  NoGradGuard guard;
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return scalar_tensor(0.0f);
  double acc = 0.0;
  for (const Tensor& g : grads) {
    float n;
    if (inf) {
      n = 0.0f;
      for (float v : g.to_vector()) {
        const float a = std::fabs(v);
        if (a > n || std::isnan(a)) n = a;
        if (std::isnan(n)) break;
      }
      acc = std::isnan(acc) || std::isnan(n) ? std::nan("") : std::max(acc, double(n));
    } else if (norm_type == 2.0) {
      n = std::sqrt(sum(square(g)).item());
      acc += double(n) * double(n);
    } else {
      n = sum(abs(g)).item();
      acc += double(n);
    }
  }
  const float total = float(norm_type == 2.0 ? std::sqrt(acc) : acc);
  check_arg(!error_if_nonfinite || std::isfinite(total), op, "the total norm of order ",
            norm_type, " for the gradients is non-finite (", total,
            "), so it cannot be clipped; pass error_if_nonfinite = false to scale them anyway");
  float coef = float(max_norm) / (total + 1e-6f);
  if (coef > 1.0f) coef = 1.0f;  // torch.clamp(max=1.0); NaN stays NaN
  if (coef != 1.0f)
    for (Tensor& g : grads)
      EMBER_DISPATCH(op, g, scale, g.numel(), coef, g.data(), g.data());
  return scalar_tensor(total, grads[0].device());
}

}  // namespace ember::nn::utils
