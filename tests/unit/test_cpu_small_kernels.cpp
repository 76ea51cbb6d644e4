// @file tests/unit/test_cpu_small_kernels.cpp
// @brief Unit tests for the simple CPU kernels: elementwise, reduce, relu, gelu, concat, random,
//        batch_norm, group_norm, max_pool2d, optim, and the shared Philox generator.
//
// Small cases are worked out by hand in comments; larger awkward shapes are compared with naive
// double-precision references written here. Failure messages name the op, the shape and the
// worst element.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include <ember/kernels/cpu/batch_norm.hpp>
#include <ember/kernels/cpu/concat.hpp>
#include <ember/kernels/cpu/elementwise.hpp>
#include <ember/kernels/cpu/gelu.hpp>
#include <ember/kernels/cpu/group_norm.hpp>
#include <ember/kernels/cpu/max_pool2d.hpp>
#include <ember/kernels/cpu/optim.hpp>
#include <ember/kernels/cpu/random.hpp>
#include <ember/kernels/cpu/reduce.hpp>
#include <ember/kernels/cpu/relu.hpp>
#include <ember/kernels/params.hpp>
#include <ember/kernels/philox.hpp>

using namespace ember;
using kernels::AdamParams;
using kernels::BatchNormShape;
using kernels::GroupNormShape;
using kernels::MaxPool2dShape;
using kernels::PhiloxState;
using kernels::SgdParams;

namespace {

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

// Checks got ~= want elementwise; INFO names the op, the shape and the worst element.
#define EXPECT_CLOSE(OP_, SHAPE_, GOT_, WANT_, ATOL_, RTOL_)                                   \
  do {                                                                                         \
    const Worst w_ = worst_element((GOT_), (WANT_), (ATOL_), (RTOL_));                         \
    INFO(OP_ << " shape " << SHAPE_ << ": sizes " << (GOT_).size() << "/" << (WANT_).size()    \
             << ", worst element " << w_.index << " got " << w_.got << " want " << w_.want     \
             << " (error " << w_.excess << " x tolerance)");                                   \
    CHECK(w_.ok);                                                                              \
  } while (0)

std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

std::string bn_shape_str(const BatchNormShape& s) {
  std::ostringstream o;
  o << "(N=" << s.N << ", C=" << s.C << ", HW=" << s.HW << ")";
  return o.str();
}

std::string pool_shape_str(const MaxPool2dShape& s) {
  std::ostringstream o;
  o << "(N=" << s.N << ", C=" << s.C << ", H=" << s.H << ", W=" << s.W << ", k=" << s.kernel
    << ", stride=" << s.stride << ", pad=" << s.pad << ", OH=" << s.OH << ", OW=" << s.OW << ")";
  return o.str();
}

MaxPool2dShape pool_shape(int N, int C, int H, int W, int k, int stride, int pad) {
  MaxPool2dShape s{N, C, H, W, k, stride, pad, 0, 0};
  s.OH = (H + 2 * pad - k) / stride + 1;
  s.OW = (W + 2 * pad - k) / stride + 1;
  return s;
}

}  // namespace

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
// Elementwise
// ------------------------------------------------------------------------------------------

TEST_CASE("elementwise kernels", "[cpu][elementwise]") {
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(17), int64_t(100003)}) {
    const size_t un = size_t(n);
    std::vector<float> a = random_vec(un, 1), b = random_vec(un, 2), y(un, -7.0f);
    std::vector<double> want(un);
    const std::string shape = "(" + std::to_string(n) + ")";
    const float alpha = 1.5f, s = 0.75f;

    cpu::fill(n, 3.5f, y.data());
    for (size_t i = 0; i < un; ++i) want[i] = 3.5;
    EXPECT_CLOSE("fill", shape, y, want, 0.0, 0.0);

    cpu::copy(n, a.data(), y.data());
    EXPECT_CLOSE("copy", shape, y, a, 0.0, 0.0);

    cpu::add(n, a.data(), b.data(), y.data());
    for (size_t i = 0; i < un; ++i) want[i] = double(a[i]) + double(b[i]);
    EXPECT_CLOSE("add", shape, y, want, 1e-6, 1e-6);

    cpu::sub(n, a.data(), b.data(), y.data());
    for (size_t i = 0; i < un; ++i) want[i] = double(a[i]) - double(b[i]);
    EXPECT_CLOSE("sub", shape, y, want, 1e-6, 1e-6);

    cpu::mul(n, a.data(), b.data(), y.data());
    for (size_t i = 0; i < un; ++i) want[i] = double(a[i]) * double(b[i]);
    EXPECT_CLOSE("mul", shape, y, want, 1e-6, 1e-6);

    cpu::scale(n, alpha, a.data(), y.data());
    for (size_t i = 0; i < un; ++i) want[i] = alpha * double(a[i]);
    EXPECT_CLOSE("scale", shape, y, want, 0.0, 1e-7);

    cpu::add_scalar(n, a.data(), s, y.data());
    for (size_t i = 0; i < un; ++i) want[i] = double(a[i]) + s;
    EXPECT_CLOSE("add_scalar", shape, y, want, 1e-6, 1e-6);

    // accumulate: y += x, applied twice onto y = b.
    y = b;
    cpu::accumulate(n, a.data(), y.data());
    cpu::accumulate(n, a.data(), y.data());
    for (size_t i = 0; i < un; ++i) want[i] = double(b[i]) + 2.0 * double(a[i]);
    EXPECT_CLOSE("accumulate", shape, y, want, 1e-6, 1e-6);

    const float s1[1] = {-2.0f};
    cpu::broadcast_scalar(n, s1, 0.5f, y.data());
    for (size_t i = 0; i < un; ++i) want[i] = -1.0;
    EXPECT_CLOSE("broadcast_scalar", shape, y, want, 0.0, 0.0);

    // In place: y aliases an input exactly.
    std::vector<float> c = a;
    cpu::add(n, c.data(), b.data(), c.data());
    for (size_t i = 0; i < un; ++i) want[i] = double(a[i]) + double(b[i]);
    EXPECT_CLOSE("add in place (y == a)", shape, c, want, 1e-6, 1e-6);
    c = b;
    cpu::sub(n, a.data(), c.data(), c.data());
    for (size_t i = 0; i < un; ++i) want[i] = double(a[i]) - double(b[i]);
    EXPECT_CLOSE("sub in place (y == b)", shape, c, want, 1e-6, 1e-6);
    c = a;
    cpu::scale(n, 2.0f, c.data(), c.data());
    for (size_t i = 0; i < un; ++i) want[i] = 2.0 * double(a[i]);
    EXPECT_CLOSE("scale in place", shape, c, want, 0.0, 0.0);
  }
}

// ------------------------------------------------------------------------------------------
// Reductions
// ------------------------------------------------------------------------------------------

TEST_CASE("sum and mse_loss", "[cpu][reduce]") {
  SECTION("hand cases") {
    const std::vector<float> x = {1, 2, 3, 4};
    float out[1] = {-1};
    cpu::sum(4, x.data(), out);
    CHECK(out[0] == 10.0f);
    cpu::sum(0, x.data(), out);
    CHECK(out[0] == 0.0f);
    // Accumulation in double: 1e8 + 1 - 1e8 is exactly 1 (float accumulation would give 0).
    const std::vector<float> c = {1e8f, 1.0f, -1e8f};
    cpu::sum(3, c.data(), out);
    CHECK(out[0] == 1.0f);

    // mse: a = [1,2,3], b = [0,0,1]: diffs 1,2,2 -> (1 + 4 + 4) / 3 = 3.
    const std::vector<float> a = {1, 2, 3}, b = {0, 0, 1};
    cpu::mse_loss_forward(3, a.data(), b.data(), out);
    CHECK(out[0] == 3.0f);
    // backward with g = 1.5: da = 2 (a-b) g / 3 = (a-b) -> [1, 2, 2]; db = -da.
    const float g[1] = {1.5f};
    std::vector<float> da(3), db(3);
    cpu::mse_loss_backward(3, a.data(), b.data(), g, da.data(), db.data());
    EXPECT_CLOSE("mse_loss_backward da", "(3)", da, (std::vector<double>{1, 2, 2}), 0.0, 1e-7);
    EXPECT_CLOSE("mse_loss_backward db", "(3)", db, (std::vector<double>{-1, -2, -2}), 0.0, 1e-7);
    std::vector<float> only(3, 9.0f);
    cpu::mse_loss_backward(3, a.data(), b.data(), g, nullptr, only.data());
    EXPECT_CLOSE("mse_loss_backward db only", "(3)", only, (std::vector<double>{-1, -2, -2}),
                 0.0, 1e-7);
    only.assign(3, 9.0f);
    cpu::mse_loss_backward(3, a.data(), b.data(), g, only.data(), nullptr);
    EXPECT_CLOSE("mse_loss_backward da only", "(3)", only, (std::vector<double>{1, 2, 2}), 0.0,
                 1e-7);
  }
  SECTION("large awkward sizes against a double reference, bitwise repeatable") {
    for (int64_t n : {int64_t(4095), int64_t(4097), int64_t(1000003)}) {
      const std::vector<float> a = random_vec(size_t(n), 11), b = random_vec(size_t(n), 12);
      double ref_sum = 0, ref_mse = 0;
      for (int64_t i = 0; i < n; ++i) {
        ref_sum += a[size_t(i)];
        const double d = double(a[size_t(i)]) - double(b[size_t(i)]);
        ref_mse += d * d;
      }
      ref_mse /= double(n);
      float s1[1], s2[1], m1[1], m2[1];
      cpu::sum(n, a.data(), s1);
      cpu::sum(n, a.data(), s2);
      cpu::mse_loss_forward(n, a.data(), b.data(), m1);
      cpu::mse_loss_forward(n, a.data(), b.data(), m2);
      const std::string shape = "(" + std::to_string(n) + ")";
      EXPECT_CLOSE("sum", shape, std::vector<float>{s1[0]}, std::vector<double>{ref_sum}, 1e-6,
                   1e-6);
      EXPECT_CLOSE("mse_loss_forward", shape, std::vector<float>{m1[0]},
                   std::vector<double>{ref_mse}, 0.0, 1e-6);
      INFO("sum/mse repeatability, shape " << shape);
      CHECK(s1[0] == s2[0]);
      CHECK(m1[0] == m2[0]);

      const float g[1] = {0.5f};
      std::vector<float> da(static_cast<size_t>(n)), db(static_cast<size_t>(n));
      std::vector<double> want(static_cast<size_t>(n)), wantb(static_cast<size_t>(n));
      cpu::mse_loss_backward(n, a.data(), b.data(), g, da.data(), db.data());
      for (size_t i = 0; i < size_t(n); ++i) {
        want[i] = 2.0 * (double(a[i]) - double(b[i])) * 0.5 / double(n);
        wantb[i] = -want[i];
      }
      EXPECT_CLOSE("mse_loss_backward da", shape, da, want, 1e-12, 1e-6);
      EXPECT_CLOSE("mse_loss_backward db", shape, db, wantb, 1e-12, 1e-6);
    }
  }
}

// ------------------------------------------------------------------------------------------
// ReLU
// ------------------------------------------------------------------------------------------

TEST_CASE("relu forward and backward", "[cpu][relu]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  SECTION("hand cases, PyTorch semantics") {
    const std::vector<float> x = {-1.0f, 0.0f, 2.5f, -0.0f, nan, 1e-30f};
    std::vector<float> y(x.size()), dx(x.size());
    cpu::relu_forward(int64_t(x.size()), x.data(), y.data());
    CHECK(y[0] == 0.0f);
    CHECK(y[1] == 0.0f);
    CHECK(y[2] == 2.5f);
    CHECK(y[3] == 0.0f);
    CHECK(std::isnan(y[4]));  // torch.relu propagates NaN
    CHECK(y[5] == 1e-30f);
    const std::vector<float> dy = {1, 2, 3, 4, 5, 6};
    cpu::relu_backward(int64_t(x.size()), x.data(), dy.data(), dx.data());
    // threshold_backward: dx = x <= 0 ? 0 : dy (NaN x passes dy through, as PyTorch).
    EXPECT_CLOSE("relu_backward", "(6)", dx, (std::vector<double>{0, 0, 3, 0, 5, 6}), 0.0, 0.0);
  }
  SECTION("large") {
    const int64_t n = 70001;
    const std::vector<float> x = random_vec(size_t(n), 3), dy = random_vec(size_t(n), 4);
    std::vector<float> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n));
    std::vector<double> wy(static_cast<size_t>(n)), wdx(static_cast<size_t>(n));
    for (size_t i = 0; i < size_t(n); ++i) {
      wy[i] = x[i] > 0 ? x[i] : 0.0;
      wdx[i] = x[i] > 0 ? dy[i] : 0.0;
    }
    cpu::relu_forward(n, x.data(), y.data());
    cpu::relu_backward(n, x.data(), dy.data(), dx.data());
    EXPECT_CLOSE("relu_forward", "(70001)", y, wy, 0.0, 0.0);
    EXPECT_CLOSE("relu_backward", "(70001)", dx, wdx, 0.0, 0.0);
    std::vector<float> inplace = x;
    cpu::relu_forward(n, inplace.data(), inplace.data());
    EXPECT_CLOSE("relu_forward in place", "(70001)", inplace, wy, 0.0, 0.0);
  }
}

// ------------------------------------------------------------------------------------------
// GELU
// ------------------------------------------------------------------------------------------

namespace {

double gelu_ref(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
double gelu_grad_ref(double x) {
  const double kPi = 3.14159265358979323846;
  return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) +
         x * std::exp(-0.5 * x * x) / std::sqrt(2 * kPi);
}
double gelu_tanh_ref(double x) {
  const double kPi = 3.14159265358979323846;
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * x * x * x)));
}
double gelu_tanh_grad_ref(double x) {
  const double kPi = 3.14159265358979323846, k = std::sqrt(2.0 / kPi);
  const double t = std::tanh(k * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
}

}  // namespace

TEST_CASE("gelu forward and backward", "[cpu][gelu]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  SECTION("hand cases, PyTorch semantics") {
    // gelu(0) = 0 with slope 1/2; gelu(1) = Phi(1) = 0.841344746...; gelu(-1) = -(1 - Phi(1));
    // saturated tails: gelu(40) = 40 (slope 1), gelu(-40) = 0 (slope 0); NaN propagates;
    // gelu(inf) = inf, gelu(-inf) = -inf * 0 = NaN (as PyTorch's formula).
    const std::vector<float> x = {0.0f, 1.0f, -1.0f, 40.0f, -40.0f, nan, inf, -inf};
    const std::vector<float> dy = {2.0f, 1.0f, 1.0f, 3.0f, 3.0f, 1.0f, 1.0f, 1.0f};
    std::vector<float> y(x.size()), dx(x.size());
    cpu::gelu_forward(int64_t(x.size()), x.data(), y.data());
    EXPECT_CLOSE("gelu_forward", "(8)", y,
                 (std::vector<double>{0.0, 0.8413447460685429, -0.15865525393145707, 40.0, 0.0,
                                      double(nan), double(inf), double(nan)}),
                 1e-7, 1e-7);
    cpu::gelu_backward(int64_t(x.size()), x.data(), dy.data(), dx.data());
    // slope at 1: Phi(1) + phi(1) = 0.8413447 + 0.2419707 = 1.0833155; at -1: 1 - 1.0833155.
    EXPECT_CLOSE("gelu_backward", "(8)", dx,
                 (std::vector<double>{1.0, 1.0833154705876864, -0.08331547058768643, 3.0, 0.0,
                                      double(nan), double(nan), double(nan)}),
                 1e-7, 1e-7);
    // The tanh form: same limits; gelu_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) 1.044715)).
    cpu::gelu_tanh_forward(int64_t(x.size()), x.data(), y.data());
    EXPECT_CLOSE("gelu_tanh_forward", "(8)", y,
                 (std::vector<double>{0.0, gelu_tanh_ref(1.0), gelu_tanh_ref(-1.0), 40.0, 0.0,
                                      double(nan), double(inf), double(nan)}),
                 1e-7, 1e-7);
    cpu::gelu_tanh_backward(int64_t(x.size()), x.data(), dy.data(), dx.data());
    EXPECT_CLOSE("gelu_tanh_backward", "(8)", dx,
                 (std::vector<double>{1.0, gelu_tanh_grad_ref(1.0), gelu_tanh_grad_ref(-1.0), 3.0,
                                      0.0, double(nan), double(nan), double(nan)}),
                 1e-7, 1e-7);
  }
  SECTION("large, against double references") {
    // Float evaluation of PyTorch's formulas: the error is a few float ulps of the terms, which
    // near x ~ -6 (1 + erf ~ 0) is absolute rather than relative: atol 1e-6, rtol 1e-6.
    const int64_t n = 70001;
    const std::vector<float> x = random_vec(size_t(n), 5, -8.0f, 8.0f),
                             dy = random_vec(size_t(n), 6);
    const size_t un = static_cast<size_t>(n);
    std::vector<double> wy(un), wdx(un), wty(un), wtdx(un);
    for (size_t i = 0; i < un; ++i) {
      wy[i] = gelu_ref(x[i]);
      wdx[i] = dy[i] * gelu_grad_ref(x[i]);
      wty[i] = gelu_tanh_ref(x[i]);
      wtdx[i] = dy[i] * gelu_tanh_grad_ref(x[i]);
    }
    std::vector<float> y(un), dx(un);
    cpu::gelu_forward(n, x.data(), y.data());
    EXPECT_CLOSE("gelu_forward", "(70001)", y, wy, 1e-6, 1e-6);
    cpu::gelu_backward(n, x.data(), dy.data(), dx.data());
    EXPECT_CLOSE("gelu_backward", "(70001)", dx, wdx, 1e-6, 1e-6);
    std::vector<float> inplace = x;
    cpu::gelu_forward(n, inplace.data(), inplace.data());
    EXPECT_CLOSE("gelu_forward in place", "(70001)", inplace, y, 0.0, 0.0);
    cpu::gelu_tanh_forward(n, x.data(), y.data());
    EXPECT_CLOSE("gelu_tanh_forward", "(70001)", y, wty, 1e-6, 1e-6);
    // 1 - tanh^2 near |tanh| = 1 loses relative precision: one float ulp of tanh times
    // |0.5 x k (1 + 3 kappa x^2)| <= ~20 for |x| <= 8 gives atol 2e-6.
    cpu::gelu_tanh_backward(n, x.data(), dy.data(), dx.data());
    EXPECT_CLOSE("gelu_tanh_backward", "(70001)", dx, wtdx, 2e-6, 1e-6);
    std::vector<float> gin = dy;
    cpu::gelu_tanh_backward(n, x.data(), gin.data(), gin.data());
    EXPECT_CLOSE("gelu_tanh_backward in place", "(70001)", gin, dx, 0.0, 0.0);
  }
}

// ------------------------------------------------------------------------------------------
// Concat / slice
// ------------------------------------------------------------------------------------------

TEST_CASE("concat_copy and slice_copy", "[cpu][concat]") {
  SECTION("hand case: cat of (3,2) and (3,5) along dim 1, then split back") {
    // A = [[0,1],[2,3],[4,5]], B = [[10..14],[15..19],[20..24]] -> D (3,7).
    std::vector<float> A(6), B(15), D(21, -1.0f);
    for (int i = 0; i < 6; ++i) A[size_t(i)] = float(i);
    for (int i = 0; i < 15; ++i) B[size_t(i)] = float(10 + i);
    cpu::concat_copy(3, 2, 7, 0, A.data(), D.data());
    cpu::concat_copy(3, 5, 7, 2, B.data(), D.data());
    const std::vector<double> want = {0, 1, 10, 11, 12, 13, 14, 2, 3, 15, 16, 17, 18, 19,
                                      4, 5, 20, 21, 22, 23, 24};
    EXPECT_CLOSE("concat_copy", "(3,2)+(3,5)->(3,7)", D, want, 0.0, 0.0);
    std::vector<float> A2(6), B2(15), mid(9);
    cpu::slice_copy(3, 7, 0, 2, D.data(), A2.data());
    cpu::slice_copy(3, 7, 2, 5, D.data(), B2.data());
    cpu::slice_copy(3, 7, 3, 3, D.data(), mid.data());
    EXPECT_CLOSE("slice_copy", "(3,7)[:, 0:2]", A2, A, 0.0, 0.0);
    EXPECT_CLOSE("slice_copy", "(3,7)[:, 2:7]", B2, B, 0.0, 0.0);
    EXPECT_CLOSE("slice_copy", "(3,7)[:, 3:6]", mid,
                 (std::vector<double>{11, 12, 13, 16, 17, 18, 21, 22, 23}), 0.0, 0.0);
  }
  SECTION("large awkward shapes against a naive loop") {
    struct Shape {
      int64_t outer, src_block, dst_block, offset;
    };
    for (const Shape& s : {Shape{1, 100003, 150000, 777}, Shape{50001, 3, 7, 4},
                           Shape{333, 1000, 1001, 1}, Shape{0, 5, 6, 0}}) {
      const std::string shape = "outer=" + std::to_string(s.outer) +
                                " src_block=" + std::to_string(s.src_block) +
                                " dst_block=" + std::to_string(s.dst_block) +
                                " offset=" + std::to_string(s.offset);
      const std::vector<float> src = random_vec(size_t(s.outer * s.src_block), 5);
      std::vector<float> dst(size_t(s.outer * s.dst_block), -3.0f);
      std::vector<double> want(dst.size(), -3.0);
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.src_block; ++i)
          want[size_t(o * s.dst_block + s.offset + i)] = src[size_t(o * s.src_block + i)];
      cpu::concat_copy(s.outer, s.src_block, s.dst_block, s.offset, src.data(), dst.data());
      EXPECT_CLOSE("concat_copy", shape, dst, want, 0.0, 0.0);
      std::vector<float> back(src.size(), 0.0f);
      cpu::slice_copy(s.outer, s.dst_block, s.offset, s.src_block, dst.data(), back.data());
      EXPECT_CLOSE("slice_copy", shape, back, src, 0.0, 0.0);
    }
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

// ------------------------------------------------------------------------------------------
// Batch norm
// ------------------------------------------------------------------------------------------

namespace {

struct BnRef {
  std::vector<double> y, mean, invstd, rm, rv, dx, dgamma, dbeta;
};

/// Naive double reference for training forward + backward (and eval when `eval`).
BnRef bn_reference(const BatchNormShape& s, const std::vector<float>& x,
                   const std::vector<float>& dy, const std::vector<float>& gamma,
                   const std::vector<float>& beta, std::vector<float> rm, std::vector<float> rv,
                   double eps, double momentum, bool eval) {
  BnRef r;
  const size_t C = size_t(s.C);
  r.y.resize(x.size());
  r.dx.resize(x.size());
  r.mean.resize(C);
  r.invstd.resize(C);
  r.rm.resize(C);
  r.rv.resize(C);
  r.dgamma.resize(C);
  r.dbeta.resize(C);
  const double M = double(s.N) * s.HW;
  auto at = [&](int n, int c, int i) { return (size_t(n) * C + size_t(c)) * size_t(s.HW) + i; };
  for (int c = 0; c < s.C; ++c) {
    double mean = 0, var = 0;
    if (eval) {
      mean = rm[size_t(c)];
      var = rv[size_t(c)];
    } else {
      for (int n = 0; n < s.N; ++n)
        for (int i = 0; i < s.HW; ++i) mean += x[at(n, c, i)];
      mean /= M;
      for (int n = 0; n < s.N; ++n)
        for (int i = 0; i < s.HW; ++i) var += (x[at(n, c, i)] - mean) * (x[at(n, c, i)] - mean);
      var /= M;
      r.rm[size_t(c)] = (1 - momentum) * rm[size_t(c)] + momentum * mean;
      const double unbiased = M > 1 ? var * M / (M - 1) : var;  // contract: biased if M == 1
      r.rv[size_t(c)] = (1 - momentum) * rv[size_t(c)] + momentum * unbiased;
    }
    const double invstd = 1.0 / std::sqrt(var + eps);
    r.mean[size_t(c)] = mean;
    r.invstd[size_t(c)] = invstd;
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < s.N; ++n)
      for (int i = 0; i < s.HW; ++i) {
        const size_t k = at(n, c, i);
        const double xhat = (x[k] - mean) * invstd;
        r.y[k] = xhat * gamma[size_t(c)] + beta[size_t(c)];
        sdy += dy[k];
        sdyx += dy[k] * xhat;
      }
    r.dgamma[size_t(c)] = sdyx;
    r.dbeta[size_t(c)] = sdy;
    for (int n = 0; n < s.N; ++n)
      for (int i = 0; i < s.HW; ++i) {
        const size_t k = at(n, c, i);
        const double xhat = (x[k] - mean) * invstd;
        r.dx[k] = eval ? dy[k] * gamma[size_t(c)] * invstd
                       : gamma[size_t(c)] * invstd / M * (M * dy[k] - sdy - xhat * sdyx);
      }
  }
  return r;
}

}  // namespace

TEST_CASE("batch_norm hand case (N=2, C=1, HW=2)", "[cpu][batch_norm]") {
  // x = [[1, 3], [5, 7]]: M = 4, mean = 4, deviations -3 -1 1 3, biased var = 20/4 = 5.
  // eps = 4 so var + eps = 9 and invstd = 1/3; xhat = [-1, -1/3, 1/3, 1].
  // gamma = 2, beta = 0.5: y = 2 xhat + 0.5 = [-1.5, -1/6, 7/6, 2.5].
  // running (momentum 0.1, rm = 0, rv = 1): rm = 0.1 * 4 = 0.4;
  //   unbiased var = 5 * 4/3 = 20/3, rv = 0.9 * 1 + 0.1 * 20/3 = 0.9 + 2/3 = 1.5666...
  // Backward with dy = [1, 0, 0, 0]: sum(dy) = 1, sum(dy xhat) = -1 -> dgamma = -1, dbeta = 1;
  //   dx = gamma invstd / M (M dy - 1 + xhat) = (1/6)(4 dy - 1 + xhat)
  //      = [(4-1-1)/6, (-1-1/3)/6, (-1+1/3)/6, 0] = [1/3, -2/9, -1/9, 0] (sums to 0).
  const BatchNormShape s{2, 1, 2};
  const std::vector<float> x = {1, 3, 5, 7}, dy = {1, 0, 0, 0};
  const float gamma[1] = {2.0f}, beta[1] = {0.5f};
  std::vector<float> y(4), dx(4);
  float mean[1], invstd[1], rm[1] = {0.0f}, rv[1] = {1.0f}, dgamma[1], dbeta[1];
  const std::string shape = bn_shape_str(s);

  cpu::batch_norm_forward_train(s, x.data(), gamma, beta, 4.0f, 0.1f, y.data(), mean, invstd,
                                rm, rv);
  EXPECT_CLOSE("batch_norm_forward_train y", shape, y,
               (std::vector<double>{-1.5, -1.0 / 6, 7.0 / 6, 2.5}), 1e-6, 1e-6);
  EXPECT_CLOSE("batch_norm_forward_train save_mean", shape, std::vector<float>{mean[0]},
               std::vector<double>{4.0}, 0.0, 0.0);
  EXPECT_CLOSE("batch_norm_forward_train save_invstd", shape, std::vector<float>{invstd[0]},
               std::vector<double>{1.0 / 3}, 0.0, 1e-7);
  EXPECT_CLOSE("batch_norm_forward_train running_mean", shape, std::vector<float>{rm[0]},
               std::vector<double>{0.4}, 0.0, 1e-6);
  EXPECT_CLOSE("batch_norm_forward_train running_var", shape, std::vector<float>{rv[0]},
               std::vector<double>{0.9 + 2.0 / 3}, 0.0, 1e-6);

  cpu::batch_norm_backward_train(s, x.data(), dy.data(), gamma, mean, invstd, dx.data(), dgamma,
                                 dbeta);
  EXPECT_CLOSE("batch_norm_backward_train dx", shape, dx,
               (std::vector<double>{1.0 / 3, -2.0 / 9, -1.0 / 9, 0.0}), 1e-6, 1e-6);
  EXPECT_CLOSE("batch_norm_backward_train dgamma", shape, std::vector<float>{dgamma[0]},
               std::vector<double>{-1.0}, 1e-6, 1e-6);
  EXPECT_CLOSE("batch_norm_backward_train dbeta", shape, std::vector<float>{dbeta[0]},
               std::vector<double>{1.0}, 0.0, 0.0);

  // Eval with running stats (mean 4, var 5), eps 4: same y; dx = dy * gamma / 3 = [2/3, 0, 0, 0];
  // dgamma = sum(dy * xhat) = -1, dbeta = 1.
  const float erm[1] = {4.0f}, erv[1] = {5.0f};
  cpu::batch_norm_forward_eval(s, x.data(), gamma, beta, erm, erv, 4.0f, y.data());
  EXPECT_CLOSE("batch_norm_forward_eval y", shape, y,
               (std::vector<double>{-1.5, -1.0 / 6, 7.0 / 6, 2.5}), 1e-6, 1e-6);
  cpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma, erm, erv, 4.0f, dx.data(), dgamma,
                                dbeta);
  EXPECT_CLOSE("batch_norm_backward_eval dx", shape, dx,
               (std::vector<double>{2.0 / 3, 0, 0, 0}), 1e-7, 1e-6);
  EXPECT_CLOSE("batch_norm_backward_eval dgamma", shape, std::vector<float>{dgamma[0]},
               std::vector<double>{-1.0}, 1e-6, 1e-6);
  EXPECT_CLOSE("batch_norm_backward_eval dbeta", shape, std::vector<float>{dbeta[0]},
               std::vector<double>{1.0}, 0.0, 0.0);

  // Running stats are nullable.
  cpu::batch_norm_forward_train(s, x.data(), gamma, beta, 4.0f, 0.1f, y.data(), mean, invstd,
                                nullptr, nullptr);
  EXPECT_CLOSE("batch_norm_forward_train (no running stats) y", shape, y,
               (std::vector<double>{-1.5, -1.0 / 6, 7.0 / 6, 2.5}), 1e-6, 1e-6);
}

TEST_CASE("batch_norm against a double reference on awkward shapes", "[cpu][batch_norm]") {
  for (const BatchNormShape& s :
       {BatchNormShape{3, 5, 37}, BatchNormShape{1, 7, 1}, BatchNormShape{4, 3, 10007},
        BatchNormShape{64, 2, 3}}) {
    const size_t total = size_t(s.N) * size_t(s.C) * size_t(s.HW);
    // An offset mean makes the variance computation sensitive to cancellation.
    const std::vector<float> x = random_vec(total, 21, 9.0f, 13.0f);
    const std::vector<float> dy = random_vec(total, 22);
    const std::vector<float> gamma = random_vec(size_t(s.C), 23, 0.5f, 1.5f);
    const std::vector<float> beta = random_vec(size_t(s.C), 24);
    const std::vector<float> rm0 = random_vec(size_t(s.C), 25);
    const std::vector<float> rv0 = random_vec(size_t(s.C), 26, 0.5f, 2.0f);
    const float eps = 1e-5f, momentum = 0.1f;
    const std::string shape = bn_shape_str(s);

    const BnRef r = bn_reference(s, x, dy, gamma, beta, rm0, rv0, eps, momentum, false);
    std::vector<float> y(total), dx(total), mean(size_t(s.C)), invstd(size_t(s.C)), rm = rm0,
        rv = rv0, dgamma(size_t(s.C)), dbeta(size_t(s.C));
    cpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), eps, momentum,
                                  y.data(), mean.data(), invstd.data(), rm.data(), rv.data());
    EXPECT_CLOSE("batch_norm_forward_train y", shape, y, r.y, 1e-5, 1e-5);
    EXPECT_CLOSE("batch_norm_forward_train save_mean", shape, mean, r.mean, 0.0, 1e-7);
    EXPECT_CLOSE("batch_norm_forward_train save_invstd", shape, invstd, r.invstd, 0.0, 1e-6);
    EXPECT_CLOSE("batch_norm_forward_train running_mean", shape, rm, r.rm, 1e-7, 1e-6);
    EXPECT_CLOSE("batch_norm_forward_train running_var", shape, rv, r.rv, 1e-7, 1e-6);

    cpu::batch_norm_backward_train(s, x.data(), dy.data(), gamma.data(), mean.data(),
                                   invstd.data(), dx.data(), dgamma.data(), dbeta.data());
    EXPECT_CLOSE("batch_norm_backward_train dx", shape, dx, r.dx, 1e-5, 1e-4);
    EXPECT_CLOSE("batch_norm_backward_train dgamma", shape, dgamma, r.dgamma, 1e-4, 1e-4);
    EXPECT_CLOSE("batch_norm_backward_train dbeta", shape, dbeta, r.dbeta, 1e-5, 1e-6);

    // Bitwise repeatable.
    std::vector<float> dx2(total), y2(total);
    cpu::batch_norm_backward_train(s, x.data(), dy.data(), gamma.data(), mean.data(),
                                   invstd.data(), dx2.data(), nullptr, nullptr);
    EXPECT_CLOSE("batch_norm_backward_train repeat dx", shape, dx2, dx, 0.0, 0.0);

    const BnRef e = bn_reference(s, x, dy, gamma, beta, rm0, rv0, eps, momentum, true);
    cpu::batch_norm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm0.data(), rv0.data(),
                                 eps, y2.data());
    EXPECT_CLOSE("batch_norm_forward_eval y", shape, y2, e.y, 1e-5, 1e-5);
    cpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma.data(), rm0.data(), rv0.data(),
                                  eps, dx.data(), dgamma.data(), dbeta.data());
    EXPECT_CLOSE("batch_norm_backward_eval dx", shape, dx, e.dx, 1e-6, 1e-5);
    EXPECT_CLOSE("batch_norm_backward_eval dgamma", shape, dgamma, e.dgamma, 1e-4, 1e-4);
    EXPECT_CLOSE("batch_norm_backward_eval dbeta", shape, dbeta, e.dbeta, 1e-5, 1e-6);
  }
}

// ------------------------------------------------------------------------------------------
// Group norm
// ------------------------------------------------------------------------------------------

namespace {

std::string gn_shape_str(const GroupNormShape& s) {
  std::ostringstream o;
  o << "(N=" << s.N << ", C=" << s.C << ", HW=" << s.HW << ", G=" << s.G << ")";
  return o.str();
}

struct GnRef {
  std::vector<double> y, mean, rstd, dx, dgamma, dbeta;
};

/// Straightforward double-precision group norm: statistics per (n, g) over C/G * HW values,
/// biased variance; dx = rstd/D (D g - sum g - xhat sum(g xhat)) with g = dy * gamma.
GnRef gn_reference(const GroupNormShape& s, const std::vector<float>& x,
                   const std::vector<float>& dy, const float* gamma, const float* beta, float eps) {
  GnRef r;
  const size_t total = size_t(s.N) * size_t(s.C) * size_t(s.HW);
  const int cg = s.C / s.G;
  const size_t D = size_t(cg) * size_t(s.HW);
  r.y.assign(total, 0.0);
  r.dx.assign(total, 0.0);
  r.dgamma.assign(size_t(s.C), 0.0);
  r.dbeta.assign(size_t(s.C), 0.0);
  for (int n = 0; n < s.N; ++n)
    for (int g = 0; g < s.G; ++g) {
      const size_t base = (size_t(n) * size_t(s.C) + size_t(g) * size_t(cg)) * size_t(s.HW);
      double m = 0.0, v = 0.0;
      for (size_t i = 0; i < D; ++i) m += x[base + i];
      m /= double(D);
      for (size_t i = 0; i < D; ++i) v += (x[base + i] - m) * (x[base + i] - m);
      v /= double(D);
      const double rs = 1.0 / std::sqrt(v + double(eps));
      r.mean.push_back(m);
      r.rstd.push_back(rs);
      double sum_g = 0.0, sum_gx = 0.0;
      for (size_t i = 0; i < D; ++i) {
        const int c = g * cg + int(i / size_t(s.HW));
        const double gm = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
        const double xhat = (x[base + i] - m) * rs;
        r.y[base + i] = xhat * gm + bt;
        sum_g += dy[base + i] * gm;
        sum_gx += dy[base + i] * gm * xhat;
        r.dgamma[size_t(c)] += dy[base + i] * xhat;
        r.dbeta[size_t(c)] += dy[base + i];
      }
      for (size_t i = 0; i < D; ++i) {
        const int c = g * cg + int(i / size_t(s.HW));
        const double gm = gamma ? gamma[c] : 1.0;
        const double xhat = (x[base + i] - m) * rs;
        r.dx[base + i] = rs / double(D) * (double(D) * dy[base + i] * gm - sum_g - xhat * sum_gx);
      }
    }
  return r;
}

}  // namespace

TEST_CASE("group_norm hand case (N=1, C=2, HW=2, G=1)", "[cpu][group_norm]") {
  // x = [[1, 3], [5, 7]] in one group: D = 4, mean = 4, deviations -3 -1 1 3, biased var = 5.
  // eps = 4 so var + eps = 9 and rstd = 1/3; xhat = [-1, -1/3, 1/3, 1].
  // gamma = [2, 1], beta = [0.5, -1]: y = [-2 + 0.5, -2/3 + 0.5, 1/3 - 1, 1 - 1]
  //                                      = [-1.5, -1/6, -2/3, 0].
  // Backward with dy = [1, 0, 0, 0]: g = dy*gamma = [2, 0, 0, 0]; sum g = 2, sum g xhat = -2.
  //   dx = rstd/D (D g - sum g - xhat sum(g xhat)) = (1/12)(4g - 2 + 2 xhat)
  //      = [(8-2-2)/12, (-2-2/3)/12, (-2+2/3)/12, 0] = [1/3, -2/9, -1/9, 0] (sums to 0);
  //   dgamma = [sum over channel 0 of dy xhat, 0] = [-1, 0]; dbeta = [1, 0].
  const GroupNormShape s{1, 2, 2, 1};
  const std::vector<float> x = {1, 3, 5, 7}, dy = {1, 0, 0, 0};
  const float gamma[2] = {2.0f, 1.0f}, beta[2] = {0.5f, -1.0f};
  std::vector<float> y(4), dx(4), dgamma(2), dbeta(2);
  float mean[1], rstd[1];
  const std::string shape = gn_shape_str(s);

  cpu::group_norm_forward(s, x.data(), gamma, beta, 4.0f, y.data(), mean, rstd);
  EXPECT_CLOSE("group_norm_forward y", shape, y,
               (std::vector<double>{-1.5, -1.0 / 6, -2.0 / 3, 0.0}), 1e-6, 1e-6);
  EXPECT_CLOSE("group_norm_forward save_mean", shape, std::vector<float>{mean[0]},
               std::vector<double>{4.0}, 0.0, 0.0);
  EXPECT_CLOSE("group_norm_forward save_rstd", shape, std::vector<float>{rstd[0]},
               std::vector<double>{1.0 / 3}, 0.0, 1e-7);
  cpu::group_norm_backward(s, x.data(), dy.data(), gamma, mean, rstd, dx.data(), dgamma.data(),
                           dbeta.data());
  EXPECT_CLOSE("group_norm_backward dx", shape, dx,
               (std::vector<double>{1.0 / 3, -2.0 / 9, -1.0 / 9, 0.0}), 1e-6, 1e-6);
  EXPECT_CLOSE("group_norm_backward dgamma", shape, dgamma, (std::vector<double>{-1.0, 0.0}), 1e-6,
               1e-6);
  EXPECT_CLOSE("group_norm_backward dbeta", shape, dbeta, (std::vector<double>{1.0, 0.0}), 0.0,
               0.0);

  // G = C = 2: each channel is its own group. Channel 0 [1, 3]: mean 2, var 1; channel 1
  // [5, 7]: mean 6, var 1; eps = 3 so rstd = 1/2 and xhat = [-1/2, 1/2, -1/2, 1/2];
  // y = [2 (-1/2) + 0.5, 2 (1/2) + 0.5, -1/2 - 1, 1/2 - 1] = [-0.5, 1.5, -1.5, -0.5].
  const GroupNormShape s2{1, 2, 2, 2};
  float mean2[2], rstd2[2];
  cpu::group_norm_forward(s2, x.data(), gamma, beta, 3.0f, y.data(), mean2, rstd2);
  EXPECT_CLOSE("group_norm_forward (G = C) y", gn_shape_str(s2), y,
               (std::vector<double>{-0.5, 1.5, -1.5, -0.5}), 1e-6, 1e-6);
  EXPECT_CLOSE("group_norm_forward (G = C) save_mean", gn_shape_str(s2),
               (std::vector<float>{mean2[0], mean2[1]}), (std::vector<double>{2.0, 6.0}), 0.0, 0.0);
  EXPECT_CLOSE("group_norm_forward (G = C) save_rstd", gn_shape_str(s2),
               (std::vector<float>{rstd2[0], rstd2[1]}), (std::vector<double>{0.5, 0.5}), 0.0, 0.0);
}

TEST_CASE("group_norm against a double reference on awkward shapes", "[cpu][group_norm]") {
  for (const GroupNormShape& s :
       {GroupNormShape{3, 6, 37, 3}, GroupNormShape{1, 1, 1, 1}, GroupNormShape{2, 12, 1, 4},
        GroupNormShape{4, 8, 10007, 2}, GroupNormShape{64, 4, 3, 4}, GroupNormShape{1, 64, 50, 1},
        GroupNormShape{5, 9, 7, 3}}) {
    const size_t total = size_t(s.N) * size_t(s.C) * size_t(s.HW);
    const size_t groups = size_t(s.N) * size_t(s.G);
    // An offset mean makes the variance computation sensitive to cancellation.
    const std::vector<float> x = random_vec(total, 31, 9.0f, 13.0f);
    const std::vector<float> dy = random_vec(total, 32);
    const std::vector<float> gamma = random_vec(size_t(s.C), 33, 0.5f, 1.5f);
    const std::vector<float> beta = random_vec(size_t(s.C), 34);
    const float eps = 1e-5f;
    const std::string shape = gn_shape_str(s);

    const GnRef r = gn_reference(s, x, dy, gamma.data(), beta.data(), eps);
    std::vector<float> y(total), dx(total), mean(groups), rstd(groups), dgamma(size_t(s.C)),
        dbeta(size_t(s.C));
    cpu::group_norm_forward(s, x.data(), gamma.data(), beta.data(), eps, y.data(), mean.data(),
                            rstd.data());
    EXPECT_CLOSE("group_norm_forward y", shape, y, r.y, 1e-5, 1e-5);
    EXPECT_CLOSE("group_norm_forward save_mean", shape, mean, r.mean, 0.0, 1e-7);
    EXPECT_CLOSE("group_norm_forward save_rstd", shape, rstd, r.rstd, 0.0, 1e-6);

    cpu::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), rstd.data(),
                             dx.data(), dgamma.data(), dbeta.data());
    EXPECT_CLOSE("group_norm_backward dx", shape, dx, r.dx, 1e-5, 1e-4);
    EXPECT_CLOSE("group_norm_backward dgamma", shape, dgamma, r.dgamma, 1e-4, 1e-4);
    EXPECT_CLOSE("group_norm_backward dbeta", shape, dbeta, r.dbeta, 1e-5, 1e-6);

    // Bitwise repeatable, and each nullable output alone equals the full call's.
    std::vector<float> y2(total), m2(groups), r2(groups), dx2(total), dg2(size_t(s.C)),
        db2(size_t(s.C));
    cpu::group_norm_forward(s, x.data(), gamma.data(), beta.data(), eps, y2.data(), m2.data(),
                            r2.data());
    EXPECT_CLOSE("group_norm_forward repeat y", shape, y2, y, 0.0, 0.0);
    EXPECT_CLOSE("group_norm_forward repeat save_rstd", shape, r2, rstd, 0.0, 0.0);
    cpu::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), rstd.data(),
                             dx2.data(), nullptr, nullptr);
    EXPECT_CLOSE("group_norm_backward dx only", shape, dx2, dx, 0.0, 0.0);
    cpu::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), rstd.data(),
                             nullptr, dg2.data(), nullptr);
    EXPECT_CLOSE("group_norm_backward dgamma only", shape, dg2, dgamma, 0.0, 0.0);
    cpu::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), rstd.data(),
                             nullptr, nullptr, db2.data());
    EXPECT_CLOSE("group_norm_backward dbeta only", shape, db2, dbeta, 0.0, 0.0);

    // Null gamma / beta (affine off) against the reference with gamma = 1, beta = 0, and
    // bitwise equal to passing ones and zeros.
    const GnRef r0 = gn_reference(s, x, dy, nullptr, nullptr, eps);
    const std::vector<float> ones(size_t(s.C), 1.0f), zeros(size_t(s.C), 0.0f);
    cpu::group_norm_forward(s, x.data(), nullptr, nullptr, eps, y.data(), mean.data(), rstd.data());
    EXPECT_CLOSE("group_norm_forward (no affine) y", shape, y, r0.y, 1e-5, 1e-5);
    cpu::group_norm_forward(s, x.data(), ones.data(), zeros.data(), eps, y2.data(), m2.data(),
                            r2.data());
    EXPECT_CLOSE("group_norm_forward (ones, zeros) y", shape, y2, y, 0.0, 0.0);
    cpu::group_norm_backward(s, x.data(), dy.data(), nullptr, mean.data(), rstd.data(), dx.data(),
                             dgamma.data(), dbeta.data());
    EXPECT_CLOSE("group_norm_backward (no affine) dx", shape, dx, r0.dx, 1e-5, 1e-4);
    EXPECT_CLOSE("group_norm_backward (no affine) dgamma", shape, dgamma, r0.dgamma, 1e-4, 1e-4);
  }
}

// ------------------------------------------------------------------------------------------
// Max pool
// ------------------------------------------------------------------------------------------

namespace {

/// Naive PyTorch-style reference: strictly greater or NaN replaces the maximum.
void pool_reference(const MaxPool2dShape& s, const std::vector<float>& x,
                    const std::vector<float>& dy, std::vector<double>& y,
                    std::vector<int32_t>& arg, std::vector<double>& dx) {
  const size_t planes = size_t(s.N) * size_t(s.C);
  y.assign(planes * size_t(s.OH * s.OW), 0.0);
  arg.assign(y.size(), -1);
  dx.assign(x.size(), 0.0);
  for (size_t p = 0; p < planes; ++p)
    for (int oh = 0; oh < s.OH; ++oh)
      for (int ow = 0; ow < s.OW; ++ow) {
        double best = -std::numeric_limits<double>::infinity();
        int32_t bi = -1;
        for (int r = 0; r < s.kernel; ++r)
          for (int c = 0; c < s.kernel; ++c) {
            const int ih = oh * s.stride - s.pad + r, iw = ow * s.stride - s.pad + c;
            if (ih < 0 || iw < 0 || ih >= s.H || iw >= s.W) continue;
            const double v = x[p * size_t(s.H * s.W) + size_t(ih * s.W + iw)];
            if (bi < 0 || v > best || std::isnan(v)) {
              best = v;
              bi = ih * s.W + iw;
            }
          }
        const size_t o = p * size_t(s.OH * s.OW) + size_t(oh * s.OW + ow);
        y[o] = best;
        arg[o] = bi;
        dx[p * size_t(s.H * s.W) + size_t(bi)] += dy[o];
      }
}

}  // namespace

TEST_CASE("max_pool2d hand cases", "[cpu][max_pool2d]") {
  SECTION("ties pick the first maximum in row-major window order") {
    // x (1,1,4,4), kernel 2, stride 2, pad 0:
    //   [ 1  5 | 5  0 ]   window (0,0): {1,5,5,2} -> 5 at index 1 (not 4)
    //   [ 5  2 | 7  7 ]   window (0,1): {5,0,7,7} -> 7 at index 6
    //   [-1 -1 | 3  9 ]   window (1,0): all -1   -> -1 at index 8
    //   [-1 -1 | 9  3 ]   window (1,1): {3,9,9,3} -> 9 at index 11
    const MaxPool2dShape s = pool_shape(1, 1, 4, 4, 2, 2, 0);
    const std::vector<float> x = {1, 5, 5, 0, 5, 2, 7, 7, -1, -1, 3, 9, -1, -1, 9, 3};
    std::vector<float> y(4);
    std::vector<int32_t> arg(4);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    EXPECT_CLOSE("max_pool2d_forward y", pool_shape_str(s), y,
                 (std::vector<double>{5, 7, -1, 9}), 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_forward argmax", pool_shape_str(s), arg,
                 (std::vector<double>{1, 6, 8, 11}), 0.0, 0.0);
    const std::vector<float> dy = {1, 2, 3, 4};
    std::vector<float> dx(16, 99.0f);
    cpu::max_pool2d_backward(s, dy.data(), arg.data(), dx.data());
    EXPECT_CLOSE("max_pool2d_backward dx", pool_shape_str(s), dx,
                 (std::vector<double>{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 4, 0, 0, 0, 0}), 0.0, 0.0);
  }
  SECTION("padding is -inf, overlapping windows accumulate") {
    // x (1,1,3,3) all negative, kernel 3, stride 1, pad 1 -> 3x3 output; padding must not win.
    //   [-5 -4 -9]
    //   [-8 -1 -7]      every window contains the centre (-1, index 4) except none: all
    //   [-6 -3 -2]      windows cover the centre, so y = -1 everywhere, argmax 4.
    const MaxPool2dShape s = pool_shape(1, 1, 3, 3, 3, 1, 1);
    const std::vector<float> x = {-5, -4, -9, -8, -1, -7, -6, -3, -2};
    std::vector<float> y(9), dx(9);
    std::vector<int32_t> arg(9);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    EXPECT_CLOSE("max_pool2d_forward y (padded)", pool_shape_str(s), y,
                 std::vector<double>(9, -1.0), 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_forward argmax (padded)", pool_shape_str(s), arg,
                 std::vector<double>(9, 4.0), 0.0, 0.0);
    const std::vector<float> dy = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    cpu::max_pool2d_backward(s, dy.data(), arg.data(), dx.data());
    EXPECT_CLOSE("max_pool2d_backward dx (overlap)", pool_shape_str(s), dx,
                 (std::vector<double>{0, 0, 0, 0, 45, 0, 0, 0, 0}), 0.0, 0.0);

    // kernel 2, stride 2, pad 1 on 3x3: windows are corners clipped to 1, 2 or 4 elements.
    // x = [[-5,-4,-9],[-8,-1,-7],[-6,-3,-2]]: (0,0)={-5}->-5@0, (0,1)={-4,-9}->-4@1,
    // (1,0)={-8,-6}->-6@6, (1,1)={-1,-7,-3,-2}->-1@4.
    const MaxPool2dShape s2 = pool_shape(1, 1, 3, 3, 2, 2, 1);
    std::vector<float> y2(4);
    std::vector<int32_t> arg2(4);
    cpu::max_pool2d_forward(s2, x.data(), y2.data(), arg2.data());
    EXPECT_CLOSE("max_pool2d_forward y (clipped)", pool_shape_str(s2), y2,
                 (std::vector<double>{-5, -4, -6, -1}), 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_forward argmax (clipped)", pool_shape_str(s2), arg2,
                 (std::vector<double>{0, 1, 6, 4}), 0.0, 0.0);
  }
  SECTION("NaN wins, as PyTorch (the last NaN in the window)") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const MaxPool2dShape s = pool_shape(1, 1, 2, 2, 2, 1, 0);
    const std::vector<float> x = {1, nan, 3, nan};
    std::vector<float> y(1);
    std::vector<int32_t> arg(1);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    CHECK(std::isnan(y[0]));
    CHECK(arg[0] == 3);
    const std::vector<float> x2 = {1, nan, 3, 2};
    cpu::max_pool2d_forward(s, x2.data(), y.data(), arg.data());
    CHECK(std::isnan(y[0]));
    CHECK(arg[0] == 1);
  }
  SECTION("-inf inputs keep the first in-bounds position") {
    const float inf = std::numeric_limits<float>::infinity();
    const MaxPool2dShape s = pool_shape(1, 1, 2, 2, 2, 1, 1);  // 3x3 output
    const std::vector<float> x = {-inf, -inf, -inf, -inf};
    std::vector<float> y(9);
    std::vector<int32_t> arg(9);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    // Window (oh, ow) starts at (max(oh-1, 0), max(ow-1, 0)).
    EXPECT_CLOSE("max_pool2d_forward argmax (-inf)", pool_shape_str(s), arg,
                 (std::vector<double>{0, 0, 1, 0, 0, 1, 2, 2, 3}), 0.0, 0.0);
    CHECK(y[4] == -inf);
  }
}

TEST_CASE("max_pool2d against a naive reference", "[cpu][max_pool2d]") {
  for (const MaxPool2dShape& s :
       {pool_shape(2, 3, 13, 11, 3, 2, 1), pool_shape(1, 2, 9, 9, 3, 1, 1),
        pool_shape(3, 1, 8, 10, 2, 2, 0), pool_shape(2, 2, 7, 5, 4, 3, 2),
        pool_shape(40, 16, 33, 31, 3, 2, 1)}) {
    const size_t nin = size_t(s.N) * size_t(s.C) * size_t(s.H) * size_t(s.W);
    const size_t nout = size_t(s.N) * size_t(s.C) * size_t(s.OH) * size_t(s.OW);
    // Small integers give many ties.
    std::vector<float> x(nin);
    std::mt19937 gen(31);
    for (auto& v : x) v = float(int(gen() % 5) - 2);
    const std::vector<float> dy = random_vec(nout, 32);
    std::vector<double> ry, rdx;
    std::vector<int32_t> rarg;
    pool_reference(s, x, dy, ry, rarg, rdx);
    std::vector<float> y(nout), dx(nin, 5.0f);
    std::vector<int32_t> arg(nout);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    cpu::max_pool2d_backward(s, dy.data(), arg.data(), dx.data());
    const std::string shape = pool_shape_str(s);
    EXPECT_CLOSE("max_pool2d_forward y", shape, y, ry, 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_forward argmax", shape, arg, rarg, 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_backward dx", shape, dx, rdx, 1e-6, 1e-6);
  }
}

// ------------------------------------------------------------------------------------------
// Optimisers
// ------------------------------------------------------------------------------------------

TEST_CASE("sgd_step hand cases", "[cpu][optim]") {
  // param 1, grad 0.5, lr 0.1, momentum 0.9:
  //   step 1: buf = 0.5, p = 1 - 0.05 = 0.95
  //   step 2: buf = 0.9*0.5 + 0.5 = 0.95, p = 0.95 - 0.095 = 0.855
  // nesterov: step 1: buf = 0.5, d = 0.5 + 0.9*0.5 = 0.95, p = 0.905
  //           step 2: buf = 0.95, d = 0.5 + 0.855 = 1.355, p = 0.905 - 0.1355 = 0.7695
  // plain (momentum 0, wd 0.1): d = 0.5 + 0.1 = 0.6, p = 0.94; then d = 0.5 + 0.094, p = 0.8806
  float p[1] = {1.0f}, g[1] = {0.5f}, buf[1] = {0.0f};
  SgdParams sp = kernels::make_sgd_params(0.1, 0.9, 0.0, 0.0, false, true);
  cpu::sgd_step(1, sp, p, g, buf);
  CHECK(std::fabs(p[0] - 0.95) < 1e-6);
  CHECK(std::fabs(buf[0] - 0.5) < 1e-7);
  sp.first_step = false;
  cpu::sgd_step(1, sp, p, g, buf);
  CHECK(std::fabs(p[0] - 0.855) < 1e-6);
  CHECK(std::fabs(buf[0] - 0.95) < 1e-6);

  p[0] = 1.0f;
  SgdParams np = kernels::make_sgd_params(0.1, 0.9, 0.0, 0.0, true, true);
  cpu::sgd_step(1, np, p, g, buf);
  CHECK(std::fabs(p[0] - 0.905) < 1e-6);
  np.first_step = false;
  cpu::sgd_step(1, np, p, g, buf);
  CHECK(std::fabs(p[0] - 0.7695) < 1e-6);

  p[0] = 1.0f;
  const SgdParams pp = kernels::make_sgd_params(0.1, 0.0, 0.0, 0.1, false, true);
  cpu::sgd_step(1, pp, p, g, nullptr);
  CHECK(std::fabs(p[0] - 0.94) < 1e-6);
  cpu::sgd_step(1, pp, p, g, nullptr);
  CHECK(std::fabs(p[0] - 0.8806) < 1e-6);

  // 1 - dampening is formed in double and rounded once, as PyTorch's alpha=1-dampening: for
  // dampening 0.9 that differs from forming it from float(0.9).
  const SgdParams dp = kernels::make_sgd_params(0.1, 0.9, 0.9, 0.0, false, false);
  CHECK(dp.one_minus_dampening == static_cast<float>(1.0 - 0.9));
  CHECK(dp.one_minus_dampening != static_cast<float>(1.0 - double(0.9f)));
}

TEST_CASE("adam_step hand case", "[cpu][optim]") {
  // param 1, grad 0.5, lr 0.1, betas (0.9, 0.999), eps 1e-8, step 1:
  //   m = 0.1*0.5 = 0.05, v = 0.001*0.25 = 0.00025, bc1 = 0.1, bc2 = 0.001
  //   denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.5 + 1e-8, step size lr/bc1 = 1
  //   param = 1 - 0.05/0.5 = 0.9 (Adam's first step moves by lr in the sign of the gradient).
  float p[1] = {1.0f}, g[1] = {0.5f}, m[1] = {0.0f}, v[1] = {0.0f};
  const AdamParams ap = kernels::make_adam_params(0.1, 0.9, 0.999, 1e-8, 0.0, 1);
  cpu::adam_step(1, ap, p, g, m, v);
  CHECK(std::fabs(m[0] - 0.05) < 1e-7);
  CHECK(std::fabs(v[0] - 0.00025) < 1e-10);
  CHECK(std::fabs(p[0] - 0.9) < 1e-5);
}

TEST_CASE("optimiser steps against the formulas over several steps", "[cpu][optim]") {
  const int64_t n = 40009;
  const std::string shape = "(40009)";
  std::vector<std::vector<float>> grads;
  for (uint32_t k = 0; k < 4; ++k) grads.push_back(random_vec(size_t(n), 100 + k));
  const std::vector<float> p0 = random_vec(size_t(n), 99);

  SECTION("sgd: momentum, dampening, nesterov, weight decay") {
    struct Cfg {  // double, as SGDOptions: make_sgd_params rounds each once
      double lr, momentum, dampening, wd;
      bool nesterov;
    };
    for (const Cfg& c : {Cfg{0.1, 0.0, 0.0, 0.0, false}, Cfg{0.05, 0.9, 0.0, 1e-2, false},
                         Cfg{0.05, 0.9, 0.3, 0.0, false}, Cfg{0.02, 0.8, 0.0, 1e-3, true},
                         Cfg{0.05, 0.9, 0.9, 0.0, false}}) {
      std::vector<float> p = p0, buf(size_t(n), 0.0f);
      std::vector<double> rp(p0.begin(), p0.end()), rb(size_t(n), 0.0);
      for (size_t step = 0; step < grads.size(); ++step) {
        const SgdParams sp =
            kernels::make_sgd_params(c.lr, c.momentum, c.dampening, c.wd, c.nesterov, step == 0);
        cpu::sgd_step(n, sp, p.data(), grads[step].data(), c.momentum != 0 ? buf.data() : nullptr);
        for (size_t i = 0; i < size_t(n); ++i) {
          double d = grads[step][i] + double(c.wd) * rp[i];
          if (c.momentum != 0) {
            rb[i] = step == 0 ? d : c.momentum * rb[i] + (1.0 - c.dampening) * d;
            d = c.nesterov ? d + c.momentum * rb[i] : rb[i];
          }
          rp[i] -= c.lr * d;
        }
        std::ostringstream op;
        op << "sgd_step lr=" << c.lr << " momentum=" << c.momentum << " dampening="
           << c.dampening << " wd=" << c.wd << " nesterov=" << c.nesterov << " step "
           << step + 1;
        EXPECT_CLOSE(op.str() + " param", shape, p, rp, 1e-6, 1e-5);
        if (c.momentum != 0) EXPECT_CLOSE(op.str() + " buf", shape, buf, rb, 1e-6, 1e-5);
      }
    }
  }
  SECTION("adam: with and without weight decay") {
    for (float wd : {0.0f, 0.01f}) {
      const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
      std::vector<float> p = p0, m(size_t(n), 0.0f), v(size_t(n), 0.0f);
      std::vector<double> rp(p0.begin(), p0.end()), rm(size_t(n), 0.0), rv(size_t(n), 0.0);
      for (size_t step = 0; step < grads.size(); ++step) {
        const int t = int(step) + 1;
        const double bc1 = 1.0 - std::pow(b1, t), bc2 = 1.0 - std::pow(b2, t);
        const AdamParams ap = kernels::make_adam_params(lr, b1, b2, eps, wd, t);
        cpu::adam_step(n, ap, p.data(), grads[step].data(), m.data(), v.data());
        for (size_t i = 0; i < size_t(n); ++i) {
          const double g = grads[step][i] + double(wd) * rp[i];
          rm[i] = b1 * rm[i] + (1 - b1) * g;
          rv[i] = b2 * rv[i] + (1 - b2) * g * g;
          const double denom = std::sqrt(rv[i]) / std::sqrt(bc2) + eps;
          rp[i] -= lr / bc1 * rm[i] / denom;
        }
        std::ostringstream op;
        op << "adam_step wd=" << wd << " step " << t;
        EXPECT_CLOSE(op.str() + " param", shape, p, rp, 1e-6, 1e-5);
        EXPECT_CLOSE(op.str() + " m", shape, m, rm, 1e-7, 1e-5);
        EXPECT_CLOSE(op.str() + " v", shape, v, rv, 1e-9, 1e-4);
      }
    }
  }
}
