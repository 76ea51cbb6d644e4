// @file tests/support/kernel_check.hpp
// @brief Helpers shared by the CPU kernel tests (tests/unit/test_cpu_kernels_*.cpp): the worst
//        element of a comparison, EXPECT_CLOSE (names the op, the shape and the worst element),
//        seeded random vectors and shape strings.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <ember/kernels/params.hpp>

#include "catch.hpp"

namespace ember_test {

/// The element of `got` furthest from `want` relative to atol + rtol*|want|.
struct Worst {
  int64_t index = -1;
  double got = 0, want = 0, excess = 0;  // excess = |got-want| / (atol + rtol |want|)
  bool ok = true;
};

template <class G, class W>
Worst worst_element(const std::vector<G>& got, const std::vector<W>& want, double atol,
                    double rtol) {
  Worst w;
  if (got.size() != want.size()) {
    w.ok = false;
    return w;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = double(got[i]), r = double(want[i]);
    double e;
    if (std::isnan(r) || std::isnan(g))
      e = (std::isnan(r) && std::isnan(g)) ? 0.0 : std::numeric_limits<double>::infinity();
    else if (g == r)
      e = 0.0;  // covers equal infinities
    else
      e = std::fabs(g - r) / (atol + rtol * std::fabs(r));
    if (w.index < 0 || e > w.excess) {
      w.index = int64_t(i);
      w.got = g;
      w.want = r;
      w.excess = e;
    }
  }
  w.ok = w.excess <= 1.0;
  return w;
}

/// n floats uniform in [lo, hi) from a seeded mt19937.
inline std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

inline std::string shape_str(const ember::kernels::BatchNormShape& s) {
  std::ostringstream o;
  o << "(N=" << s.N << ", C=" << s.C << ", HW=" << s.HW << ")";
  return o.str();
}

inline std::string shape_str(const ember::kernels::GroupNormShape& s) {
  std::ostringstream o;
  o << "(N=" << s.N << ", C=" << s.C << ", HW=" << s.HW << ", G=" << s.G << ")";
  return o.str();
}

inline std::string shape_str(const ember::kernels::MaxPool2dShape& s) {
  std::ostringstream o;
  o << "(N=" << s.N << ", C=" << s.C << ", H=" << s.H << ", W=" << s.W << ", k=" << s.kernel
    << ", stride=" << s.stride << ", pad=" << s.pad << ", OH=" << s.OH << ", OW=" << s.OW << ")";
  return o.str();
}

}  // namespace ember_test

/// Checks got ~= want elementwise; INFO names the op, the shape and the worst element.
#define EXPECT_CLOSE(OP_, SHAPE_, GOT_, WANT_, ATOL_, RTOL_)                                   \
  do {                                                                                         \
    const ::ember_test::Worst w_ = ::ember_test::worst_element((GOT_), (WANT_), (ATOL_), (RTOL_)); \
    INFO(OP_ << " shape " << SHAPE_ << ": sizes " << (GOT_).size() << "/" << (WANT_).size()    \
             << ", worst element " << w_.index << " got " << w_.got << " want " << w_.want     \
             << " (error " << w_.excess << " x tolerance)");                                   \
    CHECK(w_.ok);                                                                              \
  } while (0)
