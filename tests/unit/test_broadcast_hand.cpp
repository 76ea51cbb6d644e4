// @file tests/unit/test_broadcast_hand.cpp
// @brief Hand-computed cases of the broadcasting ops and the reductions over dims: values a
//        reader can check on paper (the generic checks are in the op table, the PyTorch ones in
//        test_ops_parity.cpp).
#include <cmath>
#include <limits>
#include <vector>

#include <ember/ember.hpp>

#include "../support/catch.hpp"

namespace {

using ember::Shape;
using ember::Tensor;

Tensor hand(std::vector<float> v, Shape s, bool grad = false) {
  Tensor t = ember::from_vector(v, s);
  if (grad) t.set_requires_grad(true);
  return t;
}

std::vector<float> values(const Tensor& t) { return t.to_vector(); }

}  // namespace

TEST_CASE("broadcast by hand: a column plus a row, and the gradients summed back",
          "[broadcast][hand]") {
  Tensor a = hand({1, 2}, {2, 1}, true);
  Tensor b = hand({10, 20, 30}, {3}, true);
  Tensor y = a + b;
  CHECK(y.shape() == Shape{2, 3});
  CHECK(values(y) == std::vector<float>{11, 21, 31, 12, 22, 32});
  ember::sum(y * hand({1, 2, 3, 4, 5, 6}, {2, 3})).backward();
  CHECK(values(a.grad()) == std::vector<float>{6, 15});     // rows of the weights
  CHECK(values(b.grad()) == std::vector<float>{5, 7, 9});   // columns of the weights
}

TEST_CASE("broadcast by hand: per-sample scale (N,1,1,1) * (N,C,H,W) and its gradient",
          "[broadcast][hand]") {
  Tensor s = hand({2, -1}, {2, 1, 1, 1}, true);
  Tensor x = hand({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 1, 2}, true);
  Tensor y = s * x;
  CHECK(values(y) == std::vector<float>{2, 4, 6, 8, -5, -6, -7, -8});
  ember::sum(y).backward();
  CHECK(values(s.grad()) == std::vector<float>{10, 26});  // sum of each sample's x
  CHECK(values(x.grad()) == std::vector<float>{2, 2, 2, 2, -1, -1, -1, -1});
}

TEST_CASE("broadcast by hand: div, maximum with a tie, where, expand", "[broadcast][hand]") {
  Tensor a = hand({1, 4, 9}, {3}, true);
  Tensor b = hand({2}, {1}, true);
  Tensor q = a / b;
  CHECK(values(q) == std::vector<float>{0.5f, 2, 4.5f});
  ember::sum(q).backward();
  CHECK(values(a.grad()) == std::vector<float>{0.5f, 0.5f, 0.5f});
  // d/db sum(a / b) = -sum(a) / b^2 = -14 / 4
  CHECK(values(b.grad())[0] == -3.5f);

  Tensor u = hand({1, 5, 3}, {3}, true), v = hand({3}, {1}, true);
  Tensor m = ember::maximum(u, v);
  CHECK(values(m) == std::vector<float>{3, 5, 3});
  ember::sum(m).backward();
  CHECK(values(u.grad()) == std::vector<float>{0, 1, 0.5f});  // the tie shares the gradient
  CHECK(values(v.grad())[0] == 1.5f);                        // 1 (first) + 0.5 (tie)

  Tensor w = ember::where(hand({1, 0, 2}, {3}), hand({1, 2, 3}, {3}), -1.0f);
  CHECK(values(w) == std::vector<float>{1, -1, 3});
  Tensor e = ember::expand(hand({7, 8}, {2, 1}), {-1, 3});
  CHECK(values(e) == std::vector<float>{7, 7, 7, 8, 8, 8});
}

TEST_CASE("broadcast by hand: scalar forms as PyTorch computes them", "[broadcast][hand]") {
  Tensor x = hand({3, -2, 0}, {3});
  CHECK(values(x / 2.0f) == std::vector<float>{1.5f, -1, 0});
  CHECK(values(6.0f / hand({3, -2, 4}, {3})) == std::vector<float>{2, -3, 1.5f});
  CHECK(values(1.0f - x) == std::vector<float>{-2, 3, 1});
  CHECK(values(ember::pow(x, 2.0f)) == std::vector<float>{9, 4, 0});
  CHECK(values(ember::clamp(x, -1.0f, 2.0f)) == std::vector<float>{2, -1, 0});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(values(ember::clamp(hand({nan}, {1}), 0.0f, 1.0f))[0]));
  CHECK(std::isnan(values(ember::maximum(hand({nan, 1}, {2}), hand({0}, {1})))[0]));
  CHECK(values(hand({1, 2, 3}, {3}) > 2.0f) == std::vector<float>{0, 0, 1});
  CHECK(values(ember::eq(hand({1, nan}, {2}), hand({1, nan}, {2}))) == std::vector<float>{1, 0});
  CHECK(values(ember::ne(hand({nan}, {1}), 0.0f)) == std::vector<float>{1});
}

TEST_CASE("reductions by hand: sum, mean, amax, var over dims, argmax", "[reduce_dims][hand]") {
  Tensor x = hand({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  CHECK(values(ember::sum(x, 0)) == std::vector<float>{5, 7, 9});
  CHECK(values(ember::sum(x, 1)) == std::vector<float>{6, 15});
  CHECK(ember::sum(x, 1, true).shape() == Shape{2, 1});
  CHECK(ember::sum(x, std::vector<int64_t>{}).shape() == Shape{});
  CHECK(values(ember::mean(x, -1)) == std::vector<float>{2, 5});
  CHECK(values(ember::amax(x, 0)) == std::vector<float>{4, 5, 6});
  CHECK(values(ember::var(x, 1)) == std::vector<float>{1, 1});             // (1 + 0 + 1) / 2
  CHECK(values(ember::var(x, 1, false)) == std::vector<float>{2.0f / 3, 2.0f / 3});
  CHECK(values(ember::argmax(hand({1, 7, 7, 2}, {2, 2}), 1)) == std::vector<float>{1, 0});
  CHECK(values(ember::argmax(hand({1, 7, 7, 2}, {2, 2}))) == std::vector<float>{1});
  Tensor t = hand({2, 5, 5}, {3}, true);
  ember::amax(t, 0).backward();
  CHECK(values(t.grad()) == std::vector<float>{0, 0.5f, 0.5f});  // two maxima share it
  ember::mean(x, 1).backward(hand({3, 6}, {2}));
  CHECK(values(x.grad()) == std::vector<float>{1, 1, 1, 2, 2, 2});
}
