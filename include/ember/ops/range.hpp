// @file include/ember/ops/range.hpp
// @brief Factories arange and linspace, as torch.arange / torch.linspace (float32).
//
// Contract: the values are computed on the CPU exactly as PyTorch 1.13's CPU kernel computes
// them element by element, then copied to `device` (so both devices hold the same bits):
//   arange:   out[i] = float(fma(step, i, start)) in double (torch's double accumulator on the
//             CPU; its build contracts start + step * i into an FMA), i < ceil((end-start)/step)
//   linspace: step = (end - start) / (steps - 1) in float; out[i] = fmaf(step, i, start) for
//             i < steps / 2, else fmaf(-step, steps - 1 - i, end) (computed from both ends)
// PyTorch's vectorised CPU path (used for runs of 16+ elements on AVX2) forms some elements as
// base + k*step from a vector base instead, which can differ in the last bits (tests: up to
// 2.5 ulps of max(|start|, |end|) for linspace); for shorter outputs the values are bitwise
// PyTorch's (tests/fixtures: layout_* fixtures). ember has no empty tensors: a range with no
// element (arange(0), linspace(..., 0)) is refused.
#pragma once
#include <cmath>
#include <vector>

#include "common.hpp"

namespace ember {

/// [start, start + step, ...) up to end (exclusive), ceil((end - start) / step) values
/// (torch.arange). step must be nonzero and point from start towards end.
inline Tensor arange(double start, double end, double step = 1.0, Device device = Device::cpu) {
  const char* op = "arange";
  check_arg(step != 0.0, op, "step must be nonzero (start ", start, ", end ", end, ")");
  check_arg(std::isfinite(start) && std::isfinite(end), op, "unsupported range: start ", start,
            ", end ", end);
  check_arg((step > 0 && end >= start) || (step < 0 && end <= start), op,
            "upper bound and larger bound inconsistent with step sign (start ", start, ", end ",
            end, ", step ", step, ")");
  const double len = std::ceil((end - start) / step);
  check_arg(len >= 1, op, "the range [", start, ", ", end, ") with step ", step,
            " is empty, and ember has no empty tensors");
  check_arg(len < 9.0e15, op, "the range [", start, ", ", end, ") with step ", step,
            " has too many elements");
  const int64_t n = static_cast<int64_t>(len);
  Tensor t = Tensor::empty(Shape{n}, Device::cpu, op);
  float* y = t.data();
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::fma(step, double(i), start));
  return device == Device::cpu ? t : t.to(device);
}

/// [0, 1, ..., end) (torch.arange(end)).
inline Tensor arange(double end, Device device = Device::cpu) {
  return arange(0.0, end, 1.0, device);
}

/// `steps` values evenly spaced from start to end inclusive (torch.linspace), float32.
inline Tensor linspace(double start, double end, int64_t steps, Device device = Device::cpu) {
  const char* op = "linspace";
  check_arg(steps >= 0, op, "number of steps must be non-negative, got ", steps);
  check_arg(steps > 0, op, "steps 0 would give an empty tensor, which ember does not have");
  Tensor t = Tensor::empty(Shape{steps}, Device::cpu, op);
  float* y = t.data();
  const float s = static_cast<float>(start), e = static_cast<float>(end);
  if (steps == 1) {
    y[0] = s;
  } else {
    const float step = (e - s) / static_cast<float>(steps - 1);
    const int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; ++i)
      y[i] = i < half ? std::fma(step, static_cast<float>(i), s)
                      : std::fma(-step, static_cast<float>(steps - 1 - i), e);
  }
  return device == Device::cpu ? t : t.to(device);
}

}  // namespace ember
