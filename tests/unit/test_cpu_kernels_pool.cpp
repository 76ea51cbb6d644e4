// @file tests/unit/test_cpu_kernels_pool.cpp
// @brief Unit tests for the CPU max_pool2d kernels (forward with argmax, backward).
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
#include "../support/naive_reference.hpp"
#include <ember/kernels/cpu/max_pool2d.hpp>
#include <ember/kernels/params.hpp>

namespace cpu_kernels_pool_test {

using namespace ember;
using ember_test::random_vec;
namespace naive = ember_test::naive;
using kernels::MaxPool2dShape;

// ------------------------------------------------------------------------------------------
// Max pool
// ------------------------------------------------------------------------------------------

TEST_CASE("max_pool2d hand cases", "[cpu][max_pool2d]") {
  SECTION("ties pick the first maximum in row-major window order") {
    // x (1,1,4,4), kernel 2, stride 2, pad 0:
    //   [ 1  5 | 5  0 ]   window (0,0): {1,5,5,2} -> 5 at index 1 (not 4)
    //   [ 5  2 | 7  7 ]   window (0,1): {5,0,7,7} -> 7 at index 6
    //   [-1 -1 | 3  9 ]   window (1,0): all -1   -> -1 at index 8
    //   [-1 -1 | 9  3 ]   window (1,1): {3,9,9,3} -> 9 at index 11
    const MaxPool2dShape s = naive::pool_shape(1, 1, 4, 4, 2, 2, 0);
    const std::vector<float> x = {1, 5, 5, 0, 5, 2, 7, 7, -1, -1, 3, 9, -1, -1, 9, 3};
    std::vector<float> y(4);
    std::vector<int32_t> arg(4);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    EXPECT_CLOSE("max_pool2d_forward y", ember_test::shape_str(s), y,
                 (std::vector<double>{5, 7, -1, 9}), 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_forward argmax", ember_test::shape_str(s), arg,
                 (std::vector<double>{1, 6, 8, 11}), 0.0, 0.0);
    const std::vector<float> dy = {1, 2, 3, 4};
    std::vector<float> dx(16, 99.0f);
    cpu::max_pool2d_backward(s, dy.data(), arg.data(), dx.data());
    EXPECT_CLOSE("max_pool2d_backward dx", ember_test::shape_str(s), dx,
                 (std::vector<double>{0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 4, 0, 0, 0, 0}), 0.0, 0.0);
  }
  SECTION("padding is -inf, overlapping windows accumulate") {
    // x (1,1,3,3) all negative, kernel 3, stride 1, pad 1 -> 3x3 output; padding must not win.
    //   [-5 -4 -9]
    //   [-8 -1 -7]      every window contains the centre (-1, index 4) except none: all
    //   [-6 -3 -2]      windows cover the centre, so y = -1 everywhere, argmax 4.
    const MaxPool2dShape s = naive::pool_shape(1, 1, 3, 3, 3, 1, 1);
    const std::vector<float> x = {-5, -4, -9, -8, -1, -7, -6, -3, -2};
    std::vector<float> y(9), dx(9);
    std::vector<int32_t> arg(9);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    EXPECT_CLOSE("max_pool2d_forward y (padded)", ember_test::shape_str(s), y,
                 std::vector<double>(9, -1.0), 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_forward argmax (padded)", ember_test::shape_str(s), arg,
                 std::vector<double>(9, 4.0), 0.0, 0.0);
    const std::vector<float> dy = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    cpu::max_pool2d_backward(s, dy.data(), arg.data(), dx.data());
    EXPECT_CLOSE("max_pool2d_backward dx (overlap)", ember_test::shape_str(s), dx,
                 (std::vector<double>{0, 0, 0, 0, 45, 0, 0, 0, 0}), 0.0, 0.0);

    // kernel 2, stride 2, pad 1 on 3x3: windows are corners clipped to 1, 2 or 4 elements.
    // x = [[-5,-4,-9],[-8,-1,-7],[-6,-3,-2]]: (0,0)={-5}->-5@0, (0,1)={-4,-9}->-4@1,
    // (1,0)={-8,-6}->-6@6, (1,1)={-1,-7,-3,-2}->-1@4.
    const MaxPool2dShape s2 = naive::pool_shape(1, 1, 3, 3, 2, 2, 1);
    std::vector<float> y2(4);
    std::vector<int32_t> arg2(4);
    cpu::max_pool2d_forward(s2, x.data(), y2.data(), arg2.data());
    EXPECT_CLOSE("max_pool2d_forward y (clipped)", ember_test::shape_str(s2), y2,
                 (std::vector<double>{-5, -4, -6, -1}), 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_forward argmax (clipped)", ember_test::shape_str(s2), arg2,
                 (std::vector<double>{0, 1, 6, 4}), 0.0, 0.0);
  }
  SECTION("NaN wins, as PyTorch (the last NaN in the window)") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const MaxPool2dShape s = naive::pool_shape(1, 1, 2, 2, 2, 1, 0);
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
    const MaxPool2dShape s = naive::pool_shape(1, 1, 2, 2, 2, 1, 1);  // 3x3 output
    const std::vector<float> x = {-inf, -inf, -inf, -inf};
    std::vector<float> y(9);
    std::vector<int32_t> arg(9);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    // Window (oh, ow) starts at (max(oh-1, 0), max(ow-1, 0)).
    EXPECT_CLOSE("max_pool2d_forward argmax (-inf)", ember_test::shape_str(s), arg,
                 (std::vector<double>{0, 0, 1, 0, 0, 1, 2, 2, 3}), 0.0, 0.0);
    CHECK(y[4] == -inf);
  }
}

TEST_CASE("max_pool2d against a naive reference", "[cpu][max_pool2d]") {
  for (const MaxPool2dShape& s :
       {naive::pool_shape(2, 3, 13, 11, 3, 2, 1), naive::pool_shape(1, 2, 9, 9, 3, 1, 1),
        naive::pool_shape(3, 1, 8, 10, 2, 2, 0), naive::pool_shape(2, 2, 7, 5, 4, 3, 2),
        naive::pool_shape(40, 16, 33, 31, 3, 2, 1)}) {
    const size_t nin = size_t(s.N) * size_t(s.C) * size_t(s.H) * size_t(s.W);
    const size_t nout = size_t(s.N) * size_t(s.C) * size_t(s.OH) * size_t(s.OW);
    // Small integers give many ties.
    std::vector<float> x(nin);
    std::mt19937 gen(31);
    for (auto& v : x) v = float(int(gen() % 5) - 2);
    const std::vector<float> dy = random_vec(nout, 32);
    const naive::MaxPool2d r = naive::max_pool2d(s, x.data(), dy.data());
    std::vector<float> y(nout), dx(nin, 5.0f);
    std::vector<int32_t> arg(nout);
    cpu::max_pool2d_forward(s, x.data(), y.data(), arg.data());
    cpu::max_pool2d_backward(s, dy.data(), arg.data(), dx.data());
    const std::string shape = ember_test::shape_str(s);
    EXPECT_CLOSE("max_pool2d_forward y", shape, y, r.y, 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_forward argmax", shape, arg, r.arg, 0.0, 0.0);
    EXPECT_CLOSE("max_pool2d_backward dx", shape, dx, r.dx, 1e-6, 1e-6);
  }
}

}  // namespace cpu_kernels_pool_test
