// @file tests/unit/test_cpu_kernels_random.cpp
// @brief Unit tests for the shared Philox generator and the CPU rand_uniform/rand_normal fills.
//
// Small cases are worked out by hand in comments; larger awkward shapes are compared with naive
// double-precision references (tests/support/naive_reference.hpp). Failure messages name the
// op, the shape and the worst element (tests/support/kernel_check.hpp).
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include "../support/kernel_check.hpp"
#include <ember/kernels/philox.hpp>
#include <ember/kernels/cpu/random.hpp>
#include <ember/kernels/params.hpp>

namespace cpu_kernels_random_test {

using namespace ember;
using ember_test::random_vec;
using kernels::PhiloxState;

// ------------------------------------------------------------------------------------------
// Philox
// ------------------------------------------------------------------------------------------

TEST_CASE("philox4x32_10 matches Random123 and the independent Python reference", "[philox]") {
  SECTION("Random123 known-answer vector: counter 0, key 0") {
    // kat_vectors: philox4x32 10 0 0 0 0 / 0 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
    // ember's layout maps counter=0, seed=0 onto exactly that all-zero counter and key.
    const kernels::Philox4 r = kernels::philox4x32_10(0, 0);
    CHECK(r.v[0] == 0x6627E8D5u);
    CHECK(r.v[1] == 0xE169C58Du);
    CHECK(r.v[2] == 0xBC57AC4Cu);
    CHECK(r.v[3] == 0x9B00DBD8u);
  }
  SECTION("tests/fixtures/philox_reference.py vectors") {
    // python3 tests/fixtures/philox_reference.py: first 8 words = philox(c) ++ philox(c + 1).
    struct Case {
      uint64_t counter, seed;
      uint32_t words[8];
    };
    const Case cases[] = {
        {0, 0,
         {0x6627E8D5u, 0xE169C58Du, 0xBC57AC4Cu, 0x9B00DBD8u, 0xF8E4CCA4u, 0x5CB200DBu,
          0xB1A574EBu, 0x097EFF67u}},
        {1, 0x12345678ABCDull,
         {0xEB9665FAu, 0x85F66B74u, 0xAF2255BEu, 0x1CEEFA81u, 0xEF1BEE8Fu, 0xDD2DF531u,
          0x17D3A9CBu, 0xD20D7EC4u}},
        {0xFFFFFFFFull, 5,  // the second block's counter carries into the high word
         {0xAED1AD48u, 0x4BBA1C38u, 0x081BD859u, 0x5AF97426u, 0xEEA55779u, 0x47E2E861u,
          0x2216FE65u, 0x4DA34991u}},
    };
    for (const Case& c : cases) {
      for (int k = 0; k < 8; ++k) {
        const kernels::Philox4 r = kernels::philox4x32_10(c.counter + uint64_t(k / 4), c.seed);
        INFO("philox4x32_10 counter=" << c.counter << " seed=" << c.seed << " word " << k);
        CHECK(r.v[k % 4] == c.words[k]);
      }
    }
  }
  SECTION("uniform and normal transforms") {
    // uniform = (bits >> 8) * 2^-24: 0x6627E8D5 >> 8 = 0x6627E8 = 6694888 -> 6694888 / 16777216.
    float u[4];
    kernels::philox_uniform4(0, 0, u);
    CHECK(u[0] == 6694888.0f / 16777216.0f);
    CHECK(kernels::philox_uniform(0xFFFFFFFFu) < 1.0f);
    CHECK(kernels::philox_uniform(0u) == 0.0f);
    float z[4];
    kernels::philox_normal4(0, 0, z);
    const double r = std::sqrt(-2.0 * std::log(1.0 - double(u[0])));
    const double t = 6.283185307179586 * double(u[1]);
    CHECK(std::fabs(z[0] - r * std::cos(t)) < 1e-6);
    CHECK(std::fabs(z[1] - r * std::sin(t)) < 1e-6);
  }
}

// ------------------------------------------------------------------------------------------
// Random
// ------------------------------------------------------------------------------------------

TEST_CASE("rand_uniform and rand_normal", "[cpu][random]") {
  using Fill = void (*)(int64_t, PhiloxState, float*);
  using Ref = void (*)(uint64_t, uint64_t, float*);
  struct Kind {
    const char* name;
    Fill fill;
    Ref ref;
  };
  const Kind kinds[] = {{"rand_uniform", cpu::rand_uniform, kernels::philox_uniform4},
                        {"rand_normal", cpu::rand_normal, kernels::philox_normal4}};
  for (const Kind& k : kinds) {
    SECTION(std::string(k.name) + ": element i is lane i%4 of counter offset + i/4") {
      for (int64_t n : {int64_t(1), int64_t(7), int64_t(8), int64_t(100003)}) {
        const PhiloxState st{0xDEADBEEFCAFEull, 12345};
        std::vector<float> y(static_cast<size_t>(n)), again(static_cast<size_t>(n));
        std::vector<double> want(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          float r[4];
          k.ref(st.offset + uint64_t(i / 4), st.seed, r);
          want[size_t(i)] = r[i % 4];
        }
        k.fill(n, st, y.data());
        k.fill(n, st, again.data());
        const std::string shape = "(" + std::to_string(n) + ")";
        EXPECT_CLOSE(k.name, shape, y, want, 0.0, 0.0);
        EXPECT_CLOSE(std::string(k.name) + " repeat", shape, again, y, 0.0, 0.0);
      }
    }
    SECTION(std::string(k.name) + ": a fill at offset j is the tail of a fill at 0") {
      const uint64_t seed = 42;
      const int64_t n = 50001, j = 1234;
      std::vector<float> full(size_t(n + 4 * j)), tail(static_cast<size_t>(n));
      k.fill(n + 4 * j, PhiloxState{seed, 0}, full.data());
      k.fill(n, PhiloxState{seed, uint64_t(j)}, tail.data());
      const std::vector<float> expect(full.begin() + 4 * j, full.end());
      EXPECT_CLOSE(std::string(k.name) + " counter property", "(50001) offset 1234", tail,
                   expect, 0.0, 0.0);
      // A different seed gives a different stream.
      std::vector<float> other(static_cast<size_t>(n));
      k.fill(n, PhiloxState{seed + 1, uint64_t(j)}, other.data());
      int64_t same = 0;
      for (size_t i = 0; i < other.size(); ++i) same += other[i] == tail[i];
      INFO(k.name << ": elements equal across seeds: " << same);
      CHECK(same < 100);
    }
  }
  SECTION("moments of 1e6 samples") {
    const int64_t n = 1000000;
    std::vector<float> u(static_cast<size_t>(n)), z(static_cast<size_t>(n));
    cpu::rand_uniform(n, PhiloxState{7, 0}, u.data());
    cpu::rand_normal(n, PhiloxState{7, 1000}, z.data());
    double su = 0, suu = 0, sz = 0, szz = 0;
    float umin = 1, umax = 0;
    bool finite = true;
    for (int64_t i = 0; i < n; ++i) {
      const double a = u[size_t(i)], b = z[size_t(i)];
      su += a;
      suu += a * a;
      sz += b;
      szz += b * b;
      umin = std::min(umin, u[size_t(i)]);
      umax = std::max(umax, u[size_t(i)]);
      finite = finite && std::isfinite(z[size_t(i)]);
    }
    const double mu = su / n, vu = suu / n - mu * mu, mz = sz / n, vz = szz / n - mz * mz;
    INFO("rand_uniform (1e6): mean " << mu << " var " << vu << " min " << umin << " max "
                                     << umax);
    INFO("rand_normal (1e6): mean " << mz << " var " << vz);
    // Standard errors: uniform mean 2.9e-4, var 7.5e-5; normal mean 1e-3, var 1.4e-3.
    CHECK(std::fabs(mu - 0.5) < 0.002);
    CHECK(std::fabs(vu - 1.0 / 12.0) < 0.0008);
    CHECK(umin >= 0.0f);
    CHECK(umax < 1.0f);
    CHECK(std::fabs(mz) < 0.006);
    CHECK(std::fabs(vz - 1.0) < 0.008);
    CHECK(finite);
  }
}

}  // namespace cpu_kernels_random_test
