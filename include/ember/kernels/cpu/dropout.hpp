// @file include/ember/kernels/cpu/dropout.hpp
// @brief Dropout's mask on CPU from the Philox stream, bitwise equal to the CUDA one.
//
// dropout_mask(n, st, keep, scale, mask): mask[i] = u[i] < keep ? scale : 0, where u[i] is
// element i of rand_uniform(n, st) (lane i%4 of philox(st.offset + i/4, st.seed), uniform in
// [0, 1) with 24-bit resolution). keep = float(1 - p) and scale = 1.0f / float(1 - p), so the
// mask is PyTorch's CPU dropout noise: bernoulli_(1 - p) then div_(1 - p).
#pragma once
#include <cstdint>

#include "../params.hpp"
#include "../philox.hpp"
#include "random.hpp"

namespace ember::cpu {

inline void dropout_mask(int64_t n, kernels::PhiloxState st, float keep, float scale,
                         float* mask) {
  detail::philox_fill(n, st, mask, [keep, scale](uint64_t c, uint64_t s, float* r) {
    kernels::philox_uniform4(c, s, r);
    for (int j = 0; j < 4; ++j) r[j] = r[j] < keep ? scale : 0.0f;
  });
}

}  // namespace ember::cpu
