// @file tests/unit/test_softmax.cpp
// @brief Hand cases of the softmax family (values worked out by hand, independent of PyTorch and
//        of finite differences): softmax of equal values, stability at 1000, log_softmax's
//        identity, a cross_entropy computed by hand with every reduction, ignore_index and label
//        smoothing, the all-ignored mean (NaN), and the nn modules.
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <ember/ember.hpp>

#include "../support/catch.hpp"

namespace softmax_hand_test {

using ember::Shape;
using ember::Tensor;

void expect_values(const Tensor& got, const std::vector<double>& want, double tol) {
  const std::vector<float> g = got.to_vector();
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element " << i << ": got " << g[i] << ", want " << want[i]);
    CHECK(std::fabs(double(g[i]) - want[i]) <= tol * (1.0 + std::fabs(want[i])));
  }
}

}  // namespace softmax_hand_test

using namespace softmax_hand_test;

TEST_CASE("softmax: equal values give 1/C; huge values stay finite", "[softmax]") {
  expect_values(ember::softmax(ember::full({2, 4}, 3.5f), 1), std::vector<double>(8, 0.25), 1e-7);
  expect_values(ember::log_softmax(ember::full({2, 4}, -7.0f), -1),
                std::vector<double>(8, std::log(0.25)), 1e-7);
  // exp(1000) overflows float: only the max-subtracted form is finite.
  Tensor big = ember::from_vector({1000.0f, 1000.0f, 999.0f}, {3});
  const double e = std::exp(-1.0), s = 2.0 + e;
  expect_values(ember::softmax(big, 0), {1.0 / s, 1.0 / s, e / s}, 1e-6);
  expect_values(ember::log_softmax(big, 0), {-std::log(s), -std::log(s), -1.0 - std::log(s)},
                1e-6);
  expect_values(ember::log_softmax(ember::from_vector({-1000.0f, 0.0f}, {2}), 0),
                {-1000.0, 0.0}, 1e-7);
  // dim 0 of a (2, 2): columns; a 0-dim tensor is one class.
  expect_values(ember::softmax(ember::from_vector({0.0f, 1.0f, 0.0f, 1.0f}, {2, 2}), 0),
                {0.5, 0.5, 0.5, 0.5}, 1e-7);
  expect_values(ember::softmax(ember::scalar_tensor(2.0f), 0), {1.0}, 0.0);
  expect_values(ember::log_softmax(ember::scalar_tensor(2.0f), -1), {0.0}, 0.0);
}

TEST_CASE("softmax: gradients by hand", "[softmax]") {
  // softmax of equal values: y = 1/2, dx = y (g - sum g y) = 0.5 (g - (g0 + g1)/2).
  Tensor x = ember::from_vector({1.0f, 1.0f}, {2});
  x.set_requires_grad(true);
  Tensor y = ember::softmax(x, 0);
  y.backward(ember::from_vector({1.0f, 3.0f}, {2}));
  expect_values(x.grad(), {-0.5, 0.5}, 1e-7);
  // log_softmax: dx = g - exp(y) sum g = g - 0.5 * 4.
  Tensor x2 = ember::from_vector({1.0f, 1.0f}, {2});
  x2.set_requires_grad(true);
  ember::log_softmax(x2, 0).backward(ember::from_vector({1.0f, 3.0f}, {2}));
  expect_values(x2.grad(), {-1.0, 1.0}, 1e-7);
}

TEST_CASE("cross_entropy: a case by hand with every reduction, ignore_index, smoothing",
          "[cross_entropy]") {
  // Row 0 logits (0, 0, ln 2): softmax (1/4, 1/4, 1/2); row 1 (ln 3, 0, 0): (3/5, 1/5, 1/5).
  const float l2 = float(std::log(2.0)), l3 = float(std::log(3.0));
  Tensor x = ember::from_vector({0.0f, 0.0f, l2, l3, 0.0f, 0.0f}, {2, 3});
  Tensor t = ember::from_vector({2.0f, 1.0f}, {2});
  const double a = std::log(2.0), b = std::log(5.0);  // -log p[target] per row
  using ember::Reduction;
  expect_values(ember::cross_entropy(x, t, Reduction::none), {a, b}, 1e-6);
  expect_values(ember::cross_entropy(x, t, Reduction::sum), {a + b}, 1e-6);
  expect_values(ember::cross_entropy(x, t), {(a + b) / 2}, 1e-6);
  // ignore_index: row 1 ignored -> mean over 1 target.
  Tensor ti = ember::from_vector({2.0f, -100.0f}, {2});
  expect_values(ember::cross_entropy(x, ti), {a}, 1e-6);
  expect_values(ember::cross_entropy(x, ti, Reduction::none), {a, 0.0}, 1e-6);
  // label smoothing 0.3 with C = 3: (1 - 0.3) * nll + 0.3 / 3 * (-sum log p).
  const double s0 = std::log(4.0) * 2 + std::log(2.0), s1 = std::log(5.0 / 3) + 2 * std::log(5.0);
  const double r0 = 0.7 * a + 0.1 * s0, r1 = 0.7 * b + 0.1 * s1;
  auto o = ember::CrossEntropyOptions().label_smoothing(0.3);
  expect_values(ember::cross_entropy(x, t, o.reduction(Reduction::none)), {r0, r1}, 1e-6);
  expect_values(ember::cross_entropy(x, t, o.reduction(Reduction::mean)), {(r0 + r1) / 2}, 1e-6);
  // mean with ignored targets divides by the non-ignored count (PyTorch), smoothing included.
  expect_values(ember::cross_entropy(x, ti, o.reduction(Reduction::mean)), {r0}, 1e-6);
  // nll_loss on the log-probabilities directly.
  expect_values(ember::nll_loss(ember::log_softmax(x, 1), t), {(a + b) / 2}, 1e-6);
  // Gradient of the mean: (softmax - onehot) / N.
  Tensor xg = x.detach();
  xg.set_requires_grad(true);
  ember::cross_entropy(xg, t).backward();
  expect_values(xg.grad(), {0.125, 0.125, -0.25, 0.3, -0.4, 0.1}, 1e-6);
}

TEST_CASE("cross_entropy: one-hot probability targets equal class-index targets",
          "[cross_entropy]") {
  const float l2 = float(std::log(2.0)), l3 = float(std::log(3.0));
  Tensor x = ember::from_vector({0.0f, 0.0f, l2, l3, 0.0f, 0.0f}, {2, 3});
  Tensor onehot = ember::from_vector({0, 0, 1, 0, 1, 0}, {2, 3});
  Tensor idx = ember::from_vector({2.0f, 1.0f}, {2});
  for (ember::Reduction r : {ember::Reduction::none, ember::Reduction::mean, ember::Reduction::sum})
    for (double ls : {0.0, 0.3}) {
      INFO(ember::reduction_name(r) << ", label_smoothing " << ls);
      const std::vector<float> a = ember::cross_entropy(x, onehot, r, -100, ls).to_vector();
      const std::vector<float> b = ember::cross_entropy(x, idx, r, -100, ls).to_vector();
      REQUIRE(a.size() == b.size());
      for (size_t i = 0; i < a.size(); ++i) CHECK(std::fabs(a[i] - b[i]) < 1e-6f);
    }
  // Uniform targets over C classes: loss = -mean_c log p_c; row 0 = (2 ln 4 + ln 2) / 3.
  Tensor u = ember::full({1, 3}, 1.0f / 3.0f);
  Tensor x0 = ember::from_vector({0.0f, 0.0f, l2}, {1, 3});
  CHECK(std::fabs(ember::cross_entropy(x0, u).item() -
                  float((2 * std::log(4.0) + std::log(2.0)) / 3)) < 1e-6f);
}

TEST_CASE("cross_entropy: every target ignored gives NaN for mean, 0 for sum", "[cross_entropy]") {
  Tensor x = ember::from_vector({0.5f, -0.5f, 1.0f, 2.0f}, {2, 2});
  x.set_requires_grad(true);
  Tensor t = ember::from_vector({-100.0f, -100.0f}, {2});
  Tensor m = ember::cross_entropy(x, t);
  CHECK(std::isnan(m.item()));
  CHECK(ember::cross_entropy(x, t, ember::Reduction::sum).item() == 0.0f);
  // PyTorch's gradient is 0 at ignored targets.
  m.backward();
  for (float g : x.grad().to_vector()) CHECK(g == 0.0f);
  // A 1-D input takes a 0-dim target; reduction none gives a 0-dim loss.
  Tensor y = ember::cross_entropy(ember::from_vector({0.0f, 0.0f}, {2}),
                                  ember::scalar_tensor(1.0f), ember::Reduction::none);
  CHECK(y.dim() == 0);
  CHECK(std::fabs(y.item() - float(std::log(2.0))) < 1e-6f);
}

TEST_CASE("nn::Softmax, nn::LogSoftmax, nn::CrossEntropyLoss", "[softmax][cross_entropy][nn]") {
  ember::nn::Softmax sm(1);
  ember::nn::LogSoftmax lsm(-1);
  Tensor x = ember::from_vector({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}, {2, 3});
  CHECK(sm.name() == "Softmax");
  CHECK(lsm.name() == "LogSoftmax");
  CHECK(sm(x).to_vector() == ember::softmax(x, 1).to_vector());
  CHECK(lsm(x).to_vector() == ember::log_softmax(x, -1).to_vector());
  ember::nn::CrossEntropyLoss loss(
      ember::CrossEntropyOptions().ignore_index(0).label_smoothing(0.05));
  Tensor t = ember::from_vector({0.0f, 2.0f}, {2});
  CHECK(loss(x, t).item() ==
        ember::cross_entropy(x, t, ember::CrossEntropyOptions().ignore_index(0).label_smoothing(
                                       0.05)).item());
  CHECK(loss.name() == "CrossEntropyLoss");
  CHECK_THROWS(loss.forward(x));
  // Softmax works as the last layer of a Sequential.
  ember::nn::Sequential seq{std::make_shared<ember::nn::LogSoftmax>(1)};
  CHECK(seq.forward(x).to_vector() == ember::log_softmax(x, 1).to_vector());
}
