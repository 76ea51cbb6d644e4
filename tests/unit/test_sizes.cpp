// @file tests/unit/test_sizes.cpp
// @brief Absurd shapes never overflow: factories, views, cat, convolution / pooling / linear
//        output sizes whose element count or byte size overflows int64, exceeds the machine's
//        memory or the kernels' 32-bit indices throw ember::Error naming the op and the shape,
//        before anything is allocated (each call returns within milliseconds).
//
// Sizes that are merely not positive stay std::invalid_argument (tests/unit/test_errors.cpp).
// Under ASan/UBSan this file also checks that no signed overflow happens on the way.
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include <ember/ember.hpp>

#include "../support/catch.hpp"

namespace sizes_test {

using ember::Shape;
using ember::Tensor;

constexpr int64_t kBig = int64_t(1) << 40;

/// f must throw ember::Error whose message starts with `op` and contains every part, within
/// `max_ms` milliseconds (nothing big is allocated or filled on the way).
void expect_size_error(const std::string& what, const char* op,
                       std::initializer_list<std::string> parts, const std::function<void()>& f,
                       double max_ms = 200.0) {
  std::string msg = "<no exception>";
  const auto t0 = std::chrono::steady_clock::now();
  try {
    f();
  } catch (const ember::Error& e) {
    msg = e.what();
  } catch (const std::exception& e) {
    msg = std::string("<wrong exception type, what(): ") + e.what() + ">";
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  INFO(what << ": expected ember::Error starting with \"" << op << "\", got \"" << msg << "\"");
  CHECK(msg.rfind(std::string(op) + ":", 0) == 0);
  for (const std::string& p : parts) {
    INFO("message should contain \"" << p << "\"");
    CHECK(msg.find(p) != std::string::npos);
  }
  INFO("took " << ms << " ms");
  CHECK(ms < max_ms);
}

Tensor ones_of(const Shape& s) { return ember::ones(s); }

}  // namespace sizes_test

using namespace sizes_test;

TEST_CASE("sizes: checked size arithmetic", "[sizes]") {
  CHECK(ember::checked_size_mul(3, 4) == 12);
  CHECK(ember::checked_size_mul(0, INT64_MAX) == 0);
  CHECK(ember::checked_size_mul(kBig, kBig) == -1);
  CHECK(ember::checked_size_mul(ember::kMaxNumel, 1) == ember::kMaxNumel);
  CHECK(ember::checked_size_mul(ember::kMaxNumel, 2) == -1);
  CHECK(ember::checked_size_mul(-1, 2) == -1);
  CHECK(ember::checked_size_add(ember::kMaxNumel, 0) == ember::kMaxNumel);
  CHECK(ember::checked_size_add(ember::kMaxNumel, 1) == -1);
  CHECK(ember::checked_numel({2, 3, 4}, "x") == 24);
  CHECK(ember::checked_numel({}, "x") == 1);
  CHECK_THROWS_AS(ember::checked_numel({kBig, kBig}, "x"), ember::Error);
  CHECK_THROWS_AS(ember::checked_numel({INT64_MAX, 2}, "x"), ember::Error);
  CHECK_THROWS_AS(ember::checked_numel({int64_t(1) << 61}, "x"), ember::Error);  // 2^63 bytes
  CHECK(ember::checked_numel({(int64_t(1) << 61) - 1}, "x") == ember::kMaxNumel);
}

TEST_CASE("sizes: factories refuse overflowing and impossible shapes before allocating",
          "[sizes][tensor]") {
  // The element count overflows int64.
  expect_size_error("empty {2^40, 2^40}", "empty", {"[1099511627776, 1099511627776]", "overflow"},
                    [] { ember::empty({kBig, kBig}); });
  expect_size_error("zeros {INT64_MAX, 2}", "zeros", {"[9223372036854775807, 2]"},
                    [] { ember::zeros({INT64_MAX, 2}); });
  expect_size_error("ones {2^31, 2^31, 2^31}", "ones", {"[2147483648, 2147483648, 2147483648]"},
                    [] { ember::ones({int64_t(1) << 31, int64_t(1) << 31, int64_t(1) << 31}); });
  expect_size_error("full {INT64_MAX}", "full", {"[9223372036854775807]"},
                    [] { ember::full({INT64_MAX}, 1.0f); });
  // The element count fits but the byte size would not (4 * 2^61 = 2^63).
  expect_size_error("zeros {2^61}", "zeros", {"[2305843009213693952]"},
                    [] { ember::zeros({int64_t(1) << 61}); });
  ember::Generator gen(0);
  expect_size_error("randn {2^40, 2^40}", "randn", {"[1099511627776, 1099511627776]"},
                    [&] { ember::randn({kBig, kBig}, gen); });
  expect_size_error("rand {2^40, 2^40}", "rand", {"[1099511627776, 1099511627776]"},
                    [&] { ember::rand({kBig, kBig}, gen); });
  CHECK(gen.offset() == 0);  // no random numbers were reserved
  // Representable, but far more than any machine's memory (4 TiB): refused up front, not by
  // the system allocator (or worse, by overcommit and a later page fault).
  expect_size_error("zeros {2^20, 2^20} (4 TiB)", "zeros",
                    {"[1048576, 1048576]", "out of memory", "RAM + swap"},
                    [] { ember::zeros({int64_t(1) << 20, int64_t(1) << 20}); });
  expect_size_error("empty {2^40} (4 TiB)", "empty", {"[1099511627776]", "out of memory"},
                    [] { ember::empty({kBig}); });
  // Sizes that are not positive are bad arguments, as before (named after the factory).
  CHECK_THROWS_AS(ember::zeros({-1, kBig}), std::invalid_argument);
  CHECK_THROWS_AS(ember::empty({INT64_MIN}), std::invalid_argument);
  // A direct Storage request beyond the limit is refused too.
  CHECK_THROWS_AS(ember::Storage(-5, ember::Device::cpu), ember::Error);
  CHECK_THROWS_AS(ember::Storage(INT64_MAX, ember::Device::cpu), ember::Error);
  // The allocator still works afterwards.
  CHECK(ember::zeros({4, 4}).to_vector()[15] == 0.0f);
}

TEST_CASE("sizes: reshape and unflatten with overflowing sizes", "[sizes][view]") {
  Tensor x = ones_of({2, 3});
  expect_size_error("reshape to {2^40, 2^40}", "reshape",
                    {"[1099511627776, 1099511627776]", "[2, 3]", "overflow"},
                    [&] { x.reshape({kBig, kBig}); });
  expect_size_error("reshape to {INT64_MAX, INT64_MAX, -1}", "reshape",
                    {"[9223372036854775807, 9223372036854775807, -1]"},
                    [&] { x.reshape({INT64_MAX, INT64_MAX, -1}); });
  expect_size_error("unflatten into {2^40, 2^40, -1}", "unflatten",
                    {"[1099511627776, 1099511627776, -1]", "[2, 3]"},
                    [&] { x.unflatten(1, {kBig, kBig, -1}); });
  // A product that wraps to the right count must not be accepted: 2^32 * 2^32 * 6 wraps to 0.
  CHECK_THROWS(x.reshape({int64_t(1) << 32, int64_t(1) << 32, 6}));
}

TEST_CASE("sizes: convolution, pooling, linear and cat output sizes", "[sizes][conv2d]") {
  Tensor x = ones_of({1, 1, 4, 4});
  Tensor w = ones_of({1, 1, 3, 3});
  // padding near INT_MAX: H + 2 padding overflows int; the output plane is absurd.
  expect_size_error("conv2d with padding INT_MAX", "conv2d",
                    {"exceeds 2^31 - 1", "input [1, 1, 4, 4]", "weight [1, 1, 3, 3]",
                     "padding 2147483647"},
                    [&] { ember::conv2d(x, w, Tensor(), 1, INT_MAX); });
  expect_size_error("conv2d with padding 2^20 (output plane 2^42)", "conv2d",
                    {"one output image", "input [1, 1, 4, 4]"},
                    [&] { ember::conv2d(x, w, Tensor(), 1, 1 << 20); });
  // stride near INT_MAX: (H - 1) * stride would overflow int.
  expect_size_error("conv_transpose2d with stride INT_MAX", "conv_transpose2d",
                    {"exceeds 2^31 - 1", "input [1, 1, 4, 4]", "stride 2147483647"},
                    [&] { ember::conv_transpose2d(x, w, Tensor(), INT_MAX, 0, 0); });
  expect_size_error("conv_transpose2d with stride 2^20 (output 2^42)", "conv_transpose2d",
                    {"one output image"},
                    [&] { ember::conv_transpose2d(x, w, Tensor(), 1 << 20, 0, 0); });
  expect_size_error("max_pool2d with kernel INT_MAX and padding 2^30 - 1", "max_pool2d",
                    {"padded input height", "exceeds 2^31 - 1", "[1, 1, 4, 4]"},
                    [&] { ember::max_pool2d(x, INT_MAX, 1, (1 << 30) - 1); });
  // 2 * padding must not overflow int in the padding check either.
  CHECK_THROWS_AS(ember::max_pool2d(x, 3, 1, INT_MAX), std::invalid_argument);
  // linear: rows x out_features = 2^16 * 2^16 = 2^32 does not fit the kernels' 32-bit indices.
  Tensor rows = ones_of({int64_t(1) << 16, 1});
  Tensor wide = ones_of({int64_t(1) << 16, 1});
  expect_size_error("linear with a 2^32-element output", "linear",
                    {"output rows x out_features", "input [65536, 1]", "weight [65536, 1]"},
                    [&] { ember::linear(rows, wide); });
}

TEST_CASE("sizes: cat of many views whose total exceeds the machine's memory", "[sizes][cat]") {
  // 65536 handles to one 2^24-element tensor (64 MiB, never filled): the result would hold 2^40
  // floats (4 TiB). The checks must stay cheap for a long list, and nothing is allocated.
  Tensor big = ember::empty({int64_t(1) << 24});
  std::vector<Tensor> many(size_t(1) << 16, big);
  expect_size_error("cat of 65536 x [16777216]", "cat", {"[1099511627776]", "out of memory"},
                    [&] { ember::cat(many, 0); }, 1000.0);
}
