// @file tests/unit/test_cpu_kernels_elementwise.cpp
// @brief Unit tests for the CPU elementwise, reduce, relu, gelu and concat kernels.
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
#include <ember/kernels/cpu/concat.hpp>
#include <ember/kernels/cpu/elementwise.hpp>
#include <ember/kernels/cpu/gelu.hpp>
#include <ember/kernels/cpu/reduce.hpp>
#include <ember/kernels/cpu/relu.hpp>
#include <ember/kernels/params.hpp>

namespace cpu_kernels_elementwise_test {

using namespace ember;
using ember_test::random_vec;

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

}  // namespace cpu_kernels_elementwise_test
