// @file include/ember/kernels/cpu/random.hpp
// @brief Philox-based random fills on CPU, bitwise equal to the CUDA ones.
//
// Element i of a fill takes lane i%4 of philox(counter = st.offset + i/4, key = st.seed)
// (include/ember/kernels/philox.hpp). Work is split over counters, so the output does not depend on
// the
// thread count, and a fill started at offset k equals elements 4k.. of a fill started at 0.
#pragma once
#include <cstdint>

#include "../params.hpp"
#include "../philox.hpp"
#include "parallel.hpp"

namespace ember::cpu {

namespace detail {

template <class Gen>
inline void philox_fill(int64_t n, kernels::PhiloxState st, float* y, const Gen& gen) {
  if (n <= 0) return;
  const int64_t ncounters = (n + 3) / 4;
  parallel_for(ncounters, 2048, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      float r[4];
      gen(st.offset + static_cast<uint64_t>(c), st.seed, r);
      const int64_t base = 4 * c;
      if (base + 4 <= n) {
        y[base] = r[0];
        y[base + 1] = r[1];
        y[base + 2] = r[2];
        y[base + 3] = r[3];
      } else {
        for (int64_t j = 0; base + j < n; ++j) y[base + j] = r[j];
      }
    }
  });
}

}  // namespace detail

/// y[i] uniform in [0, 1)
inline void rand_uniform(int64_t n, kernels::PhiloxState st, float* y) {
  detail::philox_fill(n, st, y, [](uint64_t c, uint64_t s, float* r) {
    kernels::philox_uniform4(c, s, r);
  });
}

/// y[i] standard normal (Box-Muller)
inline void rand_normal(int64_t n, kernels::PhiloxState st, float* y) {
  detail::philox_fill(n, st, y, [](uint64_t c, uint64_t s, float* r) {
    kernels::philox_normal4(c, s, r);
  });
}

}  // namespace ember::cpu
