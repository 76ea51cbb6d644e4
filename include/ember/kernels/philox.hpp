// @file include/ember/kernels/philox.hpp
// @brief Philox-4x32-10 counter-based generator shared bit-for-bit by CPU and CUDA kernels.
//
// Element i of a fill started at PhiloxState{seed, offset} takes lane i%4 of
// philox(counter = offset + i/4, key = seed). Uniform floats are (bits >> 8) * 2^-24 in [0, 1).
// Normals use Box-Muller on lanes (0,1) and (2,3): z0 = r cos(2 pi u1), z1 = r sin(2 pi u1),
// r = sqrt(-2 log(u0')), with u0' = 1 - u0 in (0, 1] so the log is finite.
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.hpp"

namespace ember::kernels {

struct Philox4 {
  uint32_t v[4];
};

EMBER_HD uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

/// Philox-4x32 with 10 rounds (Salmon et al., SC'11), the same constants as cuRAND and PyTorch.
EMBER_HD Philox4 philox4x32_10(uint64_t counter, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

EMBER_HD float philox_uniform(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

/// Four uniforms in [0,1) for counter block `counter`.
EMBER_HD void philox_uniform4(uint64_t counter, uint64_t seed, float out[4]) {
  Philox4 r = philox4x32_10(counter, seed);
  for (int i = 0; i < 4; ++i) out[i] = philox_uniform(r.v[i]);
}

/// Four standard normals for counter block `counter` (Box-Muller, computed in double so the
/// CPU and CUDA results agree to the last bit or two).
EMBER_HD void philox_normal4(uint64_t counter, uint64_t seed, float out[4]) {
  float u[4];
  philox_uniform4(counter, seed, u);
  const double two_pi = 6.283185307179586476925286766559;
  for (int i = 0; i < 4; i += 2) {
    double r = ::sqrt(-2.0 * ::log(1.0 - static_cast<double>(u[i])));
    double t = two_pi * static_cast<double>(u[i + 1]);
    out[i] = static_cast<float>(r * ::cos(t));
    out[i + 1] = static_cast<float>(r * ::sin(t));
  }
}

}  // namespace ember::kernels
