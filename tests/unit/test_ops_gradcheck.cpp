// @file tests/unit/test_ops_gradcheck.cpp
// @brief Finite-difference checks of every op's gradients through the public API and autograd,
//        plus the autograd semantics (reuse, accumulation, no_grad, explicit seeds, release).
//
// Method: for inputs X, a scalar loss L(X) = sum(op(X) * R) with a fixed random R of the output's
// shape (so every output carries a different weight). The analytic gradient comes from
// L.backward(); the numeric one is the central difference (L(x+h) - L(x-h)) / (2h) of each
// element (all of them, or a random subset of at most 60 for big tensors), with the op evaluated
// in float32 and only the final weighted sum taken in double. The divisor is the perturbation
// actually applied after float32 rounding. Every op's tolerance |analytic - numeric| <= atol +
// rtol |numeric| is stated with its entry in the op table (tests/support/op_cases.hpp), which
// this file iterates, one TEST_CASE per group. Ops that are linear (or quadratic) in the
// perturbed input have no truncation error, so their tolerances only cover float32 rounding;
// relu and max_pool2d use inputs spaced at least `gap` apart (and away from 0) with h < gap / 2,
// so no perturbation crosses a kink or changes a window's maximum.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <ember/ember.hpp>

#include "../support/catch.hpp"
#include "../support/op_cases.hpp"
#include "../support/test_util.hpp"

namespace gradcheck_test {

using ember::Shape;
using ember::Tensor;

using ember_test::Rng;
using ember_test::uniform_values;

using ember_test::leaf;
Tensor rand_leaf(Rng& rng, const Shape& s, float lo = -1.0f, float hi = 1.0f) {
  return leaf(uniform_values(rng, ember::numel_of(s), lo, hi), s);
}
Tensor rand_const(Rng& rng, const Shape& s, float lo = -1.0f, float hi = 1.0f) {
  return ember::from_vector(uniform_values(rng, ember::numel_of(s), lo, hi), s);
}

/// "[2, 3]" -> flat index to a multi-index string "(0, 2)".
std::string multi_index(const Shape& s, int64_t flat) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  std::ostringstream os;
  os << '(';
  for (size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << ')';
  return os.str();
}

struct GradTol {
  double atol, rtol;
};

/// Compares analytic[k] with numeric[k] for the flat indices idx[k] of a tensor of shape s;
/// the message names `what`, the shape and the worst element.
void check_close(const std::string& what, const Shape& s, const std::vector<int64_t>& idx,
                 const std::vector<double>& analytic, const std::vector<double>& numeric, GradTol tol) {
  size_t bad = 0, worst = 0;
  double worst_ratio = -1.0;
  for (size_t k = 0; k < idx.size(); ++k) {
    const double err = std::fabs(analytic[k] - numeric[k]);
    const double allowed = tol.atol + tol.rtol * std::fabs(numeric[k]);
    const double ratio = std::isfinite(err) ? err / allowed : 1e300;
    if (ratio > 1.0) ++bad;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = k;
    }
  }
  std::ostringstream os;
  os.precision(8);
  os << what << " shape " << ember::to_string(s) << ": " << bad << "/" << idx.size()
     << " checked elements out of tolerance (atol " << tol.atol << ", rtol " << tol.rtol << ")";
  if (!idx.empty())
    os << "; worst element " << multi_index(s, idx[worst]) << " analytic " << analytic[worst]
       << " numeric " << numeric[worst] << " (" << worst_ratio << " x tolerance)";
  INFO(os.str());
  CHECK(bad == 0);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

/// Gradient check of L = sum(f(inputs) * R) for every input that requires grad. The inputs must
/// be fresh leaves (no .grad yet). `names` label the inputs in messages.
void gradcheck(const std::string& op, const Fn& f, const std::vector<Tensor>& inputs,
               const std::vector<std::string>& names, float h, GradTol tol, uint32_t seed = 7) {
  Rng rng(seed);
  Tensor y = f(inputs);
  INFO(op << ": output shape " << ember::to_string(y.shape()));
  REQUIRE(y.requires_grad());
  const std::vector<float> r = uniform_values(rng, y.numel(), -1.0f, 1.0f);
  Tensor R = ember::from_vector(r, y.shape());
  Tensor L = ember::sum(ember::mul(y, R));
  REQUIRE(L.dim() == 0);
  L.backward();

  auto loss = [&] {
    ember::NoGradGuard ng;
    std::vector<float> v = f(inputs).to_vector();
    double s = 0.0;
    for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * double(r[i]);
    return s;
  };

  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    const std::string what = op + ": d/d" + names.at(i);
    INFO(what << " shape " << ember::to_string(x.shape()));
    Tensor g = x.grad();
    REQUIRE(g.defined());
    REQUIRE(g.shape() == x.shape());
    const std::vector<float> ga = g.to_vector();

    std::vector<int64_t> idx;
    const int64_t n = x.numel();
    if (n <= 60) {
      for (int64_t k = 0; k < n; ++k) idx.push_back(k);
    } else {
      std::vector<int64_t> all(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) all[size_t(k)] = k;
      std::shuffle(all.begin(), all.end(), rng.gen);
      idx.assign(all.begin(), all.begin() + 60);
      std::sort(idx.begin(), idx.end());
    }
    std::vector<double> analytic, numeric;
    float* p = x.data();
    for (int64_t k : idx) {
      const float v = p[k];
      const float vp = v + h, vm = v - h;
      p[k] = vp;
      const double lp = loss();
      p[k] = vm;
      const double lm = loss();
      p[k] = v;
      numeric.push_back((lp - lm) / (double(vp) - double(vm)));
      analytic.push_back(double(ga[size_t(k)]));
    }
    check_close(what, x.shape(), idx, analytic, numeric, tol);
  }
}

/// Runs one op-table entry (tests/support/op_cases.hpp): its inputs from Rng(c.seed), the
/// gradient check of every differentiable one, then two checks that hold for every op: an input
/// that does not require grad gets no gradient, and an input the op does not write (everything
/// but running statistics) holds the same bits afterwards.
void gradcheck_case(const ember_test::OpCase& c) {
  INFO(c.label << " with " << ember_test::describe_inputs(c));
  const std::vector<Tensor> inputs = ember_test::make_inputs(c);
  std::vector<std::vector<float>> before;
  for (const Tensor& t : inputs) before.push_back(t.defined() ? t.to_vector() : std::vector<float>{});
  gradcheck(c.label, c.fn, inputs, c.names(), c.h, GradTol{c.tol.atol, c.tol.rtol}, c.rseed);
  if (c.pointwise_ref) {  // the forward against the entry's double-precision reference
    ember::NoGradGuard ng;
    const std::vector<float> x = inputs[0].to_vector(), y = c.fn(inputs).to_vector();
    REQUIRE(y.size() == x.size());
    std::vector<int64_t> idx(x.size());
    std::vector<double> got(x.size()), want(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      idx[i] = int64_t(i);
      got[i] = y[i];
      want[i] = c.pointwise_ref(double(x[i]));
    }
    check_close(c.label + ": forward vs double reference", inputs[0].shape(), idx, got, want,
                GradTol{1e-6, 1e-6});
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    INFO(c.label << ": input " << c.inputs[i].name);
    if (!c.inputs[i].grad) CHECK(!inputs[i].grad().defined());
    if (!c.inputs[i].mutated) CHECK(inputs[i].to_vector() == before[i]);
  }
}

/// Every gradcheck entry of the group (the group must have at least one).
void gradcheck_group(const std::string& group) {
  const auto cases = ember_test::op_cases(ember_test::kGradcheck, group);
  REQUIRE(!cases.empty());
  for (const ember_test::OpCase* c : cases) gradcheck_case(*c);
}

/// The groups that have a TEST_CASE below.
const char* const kGradcheckGroups[] = {
    "conv2d", "conv2d partial", "conv_transpose2d", "batch_norm train", "batch_norm eval",
    "group_norm", "gelu", "relu", "max_pool2d", "linear", "cat", "view", "elementwise", "reduce",
    "pointwise", "broadcast", "reduce_dims",
    // softmax family
    "softmax", "cross_entropy",
    "layout",  // layout and indexing (#12 item 5)
    // layers and training
    "dropout", "embedding"};

}  // namespace gradcheck_test

using namespace gradcheck_test;

// ---------------------------------------------------------------------------------------------
// The ops: one TEST_CASE per group of tests/support/op_cases.hpp, where each entry states its
// shapes, step h and tolerance (and why the tolerance holds).
// ---------------------------------------------------------------------------------------------

TEST_CASE("gradcheck: every gradcheck entry of the op table has a test case", "[ops][gradcheck]") {
  for (const ember_test::OpCase* c : ember_test::op_cases(ember_test::kGradcheck)) {
    INFO(c->label << " is in group \"" << c->group << "\"");
    CHECK(std::find(std::begin(kGradcheckGroups), std::end(kGradcheckGroups), c->group) !=
          std::end(kGradcheckGroups));
  }
}

TEST_CASE("gradcheck: conv2d (input, weight, bias)", "[ops][gradcheck][conv2d]") {
  gradcheck_group("conv2d");
}

TEST_CASE("gradcheck: conv2d with only some inputs requiring grad", "[ops][gradcheck][conv2d]") {
  gradcheck_group("conv2d partial");
}

TEST_CASE("gradcheck: conv_transpose2d (input, weight, bias)",
          "[ops][gradcheck][conv_transpose2d]") {
  gradcheck_group("conv_transpose2d");
}

TEST_CASE("gradcheck: batch_norm2d training mode", "[ops][gradcheck][batch_norm]") {
  gradcheck_group("batch_norm train");
}

TEST_CASE("gradcheck: batch_norm2d eval mode", "[ops][gradcheck][batch_norm]") {
  gradcheck_group("batch_norm eval");
}

TEST_CASE("gradcheck: group_norm (input, weight, bias)", "[ops][gradcheck][group_norm]") {
  gradcheck_group("group_norm");
}

TEST_CASE("gradcheck: gelu, exact and tanh forms", "[ops][gradcheck][gelu]") {
  gradcheck_group("gelu");
}

TEST_CASE("gradcheck: relu", "[ops][gradcheck][relu]") { gradcheck_group("relu"); }

TEST_CASE("gradcheck: broadcasting add, sub, mul, div, maximum, minimum, where, expand",
          "[ops][gradcheck][broadcast]") {
  gradcheck_group("broadcast");
}

TEST_CASE("gradcheck: sum, mean, amax, var over dims", "[ops][gradcheck][reduce_dims]") {
  gradcheck_group("reduce_dims");
}

TEST_CASE("gradcheck: pointwise ops, and their forward against a double reference",
          "[ops][gradcheck][pointwise]") {
  gradcheck_group("pointwise");
}

TEST_CASE("gradcheck: max_pool2d", "[ops][gradcheck][max_pool2d]") {
  gradcheck_group("max_pool2d");
}

TEST_CASE("gradcheck: linear (input, weight, bias)", "[ops][gradcheck][linear]") {
  gradcheck_group("linear");
}

TEST_CASE("gradcheck: cat along dims 0..3 with 2 and 3 inputs", "[ops][gradcheck][cat]") {
  gradcheck_group("cat");
}

TEST_CASE("gradcheck: reshape, flatten, unflatten", "[ops][gradcheck][view]") {
  gradcheck_group("view");
}

TEST_CASE("gradcheck: elementwise add, sub, mul and scalar forms",
          "[ops][gradcheck][elementwise]") {
  gradcheck_group("elementwise");
}

TEST_CASE("gradcheck: sum, mean, mse_loss", "[ops][gradcheck][reduce]") {
  gradcheck_group("reduce");
}

// softmax family
TEST_CASE("gradcheck: softmax and log_softmax at rank 1..4 along every kind of dim",
          "[ops][gradcheck][softmax]") {
  gradcheck_group("softmax");
}

TEST_CASE("gradcheck: nll_loss and cross_entropy (reductions, ignore_index, label_smoothing)",
          "[ops][gradcheck][cross_entropy]") {
  gradcheck_group("cross_entropy");
}

// layout and indexing (#12 item 5)
TEST_CASE("gradcheck: transpose, permute, narrow, select, split, chunk, stack, pixel_shuffle, "
          "pixel_unshuffle",
          "[ops][gradcheck][layout]") {
  gradcheck_group("layout");
}

// ---------------------------------------------------------------------------------------------
// Autograd semantics
// ---------------------------------------------------------------------------------------------

// layers and training (#12 item 6)
TEST_CASE("gradcheck: dropout (fixed generator)", "[ops][gradcheck][dropout]") {
  gradcheck_group("dropout");
}

TEST_CASE("gradcheck: embedding (w.r.t. weight)", "[ops][gradcheck][embedding]") {
  gradcheck_group("embedding");
}

TEST_CASE("autograd: a tensor used twice gets the sum of both gradients", "[autograd]") {
  const float h = 1e-2f;
  const GradTol tol{2e-3, 2e-3};
  Rng rng(1200);
  SECTION("y = x * x + x: dL/dx = (2x + 1) R") {
    Tensor x = rand_leaf(rng, {3, 4});
    gradcheck(
        "x * x + x", [](const std::vector<Tensor>& in) { return in[0] * in[0] + in[0]; }, {x},
        {"x"}, h, tol);
    // Exact analytic check with R = 1.
    x.zero_grad(true);
    ember::sum(x * x + x).backward();
    std::vector<float> xv = x.to_vector(), gv = x.grad().to_vector();
    std::vector<int64_t> idx;
    std::vector<double> got, want;
    for (size_t i = 0; i < xv.size(); ++i) {
      idx.push_back(int64_t(i));
      got.push_back(gv[i]);
      want.push_back(2.0 * xv[i] + 1.0);
    }
    check_close("sum(x * x + x): dx vs 2x + 1", x.shape(), idx, got, want, {1e-6, 1e-6});
  }
  SECTION("skip connection: cat(x, conv2d(x)) along channels") {
    Tensor x = rand_leaf(rng, {2, 2, 5, 4}), w = rand_leaf(rng, {3, 2, 3, 3}),
           b = rand_leaf(rng, {3});
    gradcheck(
        "cat(x, conv2d(x, w, b, 1, 1), 1)",
        [](const std::vector<Tensor>& in) {
          return ember::cat({in[0], ember::conv2d(in[0], in[1], in[2], 1, 1)}, 1);
        },
        {x, w, b}, {"x", "weight", "bias"}, h, tol);
  }
  SECTION("a non-leaf used twice: h = conv2d(x); y = cat(h, relu(h) * h)") {
    // relu's kink: with random inputs no h is within 1e-2 of zero with overwhelming
    // probability, but a second-order term needs a looser tolerance than the linear cases.
    Tensor x = rand_leaf(rng, {1, 2, 4, 4}), w = rand_leaf(rng, {2, 2, 3, 3});
    const Fn f = [](const std::vector<Tensor>& in) {
      Tensor hh = ember::conv2d(in[0], in[1], Tensor(), 1, 1);
      return ember::cat({hh, ember::relu(hh) * hh}, 0);
    };
    {  // keep away from relu's kink: resample until |h| > 0.05 everywhere
      ember::NoGradGuard ng;
      for (int attempt = 0; attempt < 100; ++attempt) {
        std::vector<float> hv = ember::conv2d(x, w, Tensor(), 1, 1).to_vector();
        bool ok = std::all_of(hv.begin(), hv.end(), [](float v) { return std::fabs(v) > 0.05f; });
        if (ok) break;
        std::vector<float> nx = uniform_values(rng, x.numel());
        std::copy(nx.begin(), nx.end(), x.data());
      }
    }
    gradcheck("cat(h, relu(h) * h) with h = conv2d(x, w)", f, {x, w}, {"x", "weight"}, 1e-3f,
              {3e-3, 5e-3});
  }
}

TEST_CASE("autograd: gradients accumulate across backward calls until zero_grad", "[autograd]") {
  Rng rng(1300);
  Tensor x = rand_leaf(rng, {2, 3, 5, 5}), w = rand_leaf(rng, {4, 3, 3, 3}),
         b = rand_leaf(rng, {4});
  auto loss = [&] { return ember::mean(ember::relu(ember::conv2d(x, w, b, 2, 1))); };
  loss().backward();
  const std::vector<float> gx1 = x.grad().to_vector(), gw1 = w.grad().to_vector(),
                           gb1 = b.grad().to_vector();
  loss().backward();
  auto expect_scaled = [](const char* what, const Tensor& t, const std::vector<float>& base,
                          float factor) {
    std::vector<float> v = t.grad().to_vector();
    REQUIRE(v.size() == base.size());
    std::vector<int64_t> idx;
    std::vector<double> got, want;
    for (size_t i = 0; i < v.size(); ++i) {
      idx.push_back(int64_t(i));
      got.push_back(v[i]);
      want.push_back(double(factor) * base[i]);
    }
    check_close(what, t.shape(), idx, got, want, {0.0, 0.0});
  };
  // g + g is exact in float32.
  expect_scaled("conv2d dx after two backward calls = 2 x first", x, gx1, 2.0f);
  expect_scaled("conv2d dw after two backward calls = 2 x first", w, gw1, 2.0f);
  expect_scaled("conv2d db after two backward calls = 2 x first", b, gb1, 2.0f);

  SECTION("zero_grad keeps zeroed buffers, then a backward gives the first gradient again") {
    const float* buffer = x.grad().data();
    x.zero_grad(), w.zero_grad(), b.zero_grad();
    expect_scaled("conv2d dx after zero_grad", x, gx1, 0.0f);
    CHECK(x.grad().data() == buffer);
    loss().backward();
    expect_scaled("conv2d dx after zero_grad + backward", x, gx1, 1.0f);
    expect_scaled("conv2d dw after zero_grad + backward", w, gw1, 1.0f);
    expect_scaled("conv2d db after zero_grad + backward", b, gb1, 1.0f);
  }
  SECTION("zero_grad(set_to_none) drops the gradients") {
    x.zero_grad(true), w.zero_grad(true), b.zero_grad(true);
    CHECK(!x.grad().defined());
    CHECK(!w.grad().defined());
    CHECK(!b.grad().defined());
    loss().backward();
    expect_scaled("conv2d dx after set_to_none + backward", x, gx1, 1.0f);
  }
  SECTION("retain_graph lets the same graph run backward twice") {
    x.zero_grad(true), w.zero_grad(true), b.zero_grad(true);
    Tensor L = loss();
    L.backward(Tensor(), true);
    L.backward();
    expect_scaled("conv2d dw after retain_graph + backward", w, gw1, 2.0f);
  }
}

TEST_CASE("autograd: no_grad records nothing", "[autograd]") {
  Rng rng(1400);
  Tensor x = rand_leaf(rng, {1, 2, 5, 5}), w = rand_leaf(rng, {3, 2, 3, 3});
  {
    ember::NoGradGuard ng;
    CHECK(!ember::is_grad_enabled());
    Tensor y = ember::relu(ember::conv2d(x, w, Tensor(), 1, 1));
    Tensor z = ember::sum(ember::cat({y, y}, 1) * 2.0f).reshape({1});
    CHECK(!y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(!z.requires_grad());
    CHECK(z.is_leaf());
    {
      ember::no_grad nested;
      CHECK(!ember::is_grad_enabled());
    }
    CHECK(!ember::is_grad_enabled());
    REQUIRE_THROWS_AS(z.backward(), std::invalid_argument);
  }
  CHECK(ember::is_grad_enabled());
  Tensor y = ember::conv2d(x, w);
  CHECK(y.requires_grad());
  CHECK(y.grad_fn() != nullptr);
  CHECK(!x.grad().defined());
  // Inputs that do not require grad record nothing either.
  Tensor c = ember::conv2d(x.detach(), w.detach());
  CHECK(!c.requires_grad());
  CHECK(c.grad_fn() == nullptr);
}

TEST_CASE("autograd: backward with an explicit upstream gradient", "[autograd]") {
  Rng rng(1500);
  Shape xs{2, 3, 5, 4}, ws{2, 3, 2, 3};
  std::vector<float> xv = uniform_values(rng, ember::numel_of(xs)),
                     wv = uniform_values(rng, ember::numel_of(ws)), bv = uniform_values(rng, 2);
  Tensor x1 = leaf(xv, xs), w1 = leaf(wv, ws), b1 = leaf(bv, {2});
  Tensor y1 = ember::conv2d(x1, w1, b1, 1, 1);
  Tensor G = rand_const(rng, y1.shape());
  REQUIRE_THROWS_AS(y1.backward(), std::invalid_argument);  // non-scalar needs a gradient
  y1.backward(G);

  Tensor x2 = leaf(xv, xs), w2 = leaf(wv, ws), b2 = leaf(bv, {2});
  ember::sum(ember::conv2d(x2, w2, b2, 1, 1) * G).backward();
  // sum's backward seeds 1, and 1 * G == G exactly, so both runs see the same dy.
  for (auto [name, a, b] :
       {std::tuple<const char*, Tensor, Tensor>{"dx", x1, x2}, {"dw", w1, w2}, {"db", b1, b2}}) {
    std::vector<float> ga = a.grad().to_vector(), gb = b.grad().to_vector();
    REQUIRE(ga.size() == gb.size());
    std::vector<int64_t> idx;
    std::vector<double> got, want;
    for (size_t i = 0; i < ga.size(); ++i) {
      idx.push_back(int64_t(i));
      got.push_back(ga[i]);
      want.push_back(gb[i]);
    }
    check_close(std::string("conv2d ") + name + ": y.backward(G) vs sum(y * G).backward()",
                a.shape(), idx, got, want, {0.0, 0.0});
  }
  SECTION("the gradient's shape must match") {
    Tensor y = ember::conv2d(x1, w1, b1, 1, 1);
    REQUIRE_THROWS_AS(y.backward(ember::zeros({2, 2, 5})), std::invalid_argument);
  }
  SECTION("backward on a leaf accumulates the seed directly") {
    Tensor l = leaf({1.0f, 2.0f}, {2});
    l.backward(ember::from_vector({0.5f, -1.0f}, {2}));
    CHECK(l.grad().to_vector() == std::vector<float>{0.5f, -1.0f});
  }
}

TEST_CASE("autograd: a second backward through a released graph throws", "[autograd]") {
  Rng rng(1600);
  Tensor x = rand_leaf(rng, {2, 3}), w = rand_leaf(rng, {4, 3});
  Tensor L = ember::mse_loss(ember::linear(x, w), ember::zeros({2, 4}));
  L.backward();
  try {
    L.backward();
    INFO("second backward on a released graph did not throw");
    CHECK(false);
  } catch (const ember::Error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("retain_graph") != std::string::npos);
  }
  // A fresh forward works again.
  ember::mse_loss(ember::linear(x, w), ember::zeros({2, 4})).backward();
  REQUIRE(w.grad().defined());
}

TEST_CASE("autograd: leaf gradients have the leaves' shapes; non-leaves keep none", "[autograd]") {
  Rng rng(1700);
  Tensor x = rand_leaf(rng, {2, 1, 6, 6});
  Tensor w1 = rand_leaf(rng, {4, 1, 3, 3}), b1 = rand_leaf(rng, {4});
  Tensor g = rand_leaf(rng, {4}, 0.5f, 1.5f), be = rand_leaf(rng, {4});
  Tensor wt = rand_leaf(rng, {4, 2, 2, 2});
  Tensor wl = rand_leaf(rng, {5, 2 * 6 * 6}), bl = rand_leaf(rng, {5});
  Tensor h1 = ember::relu(
      ember::batch_norm2d(ember::conv2d(x, w1, b1, 1, 1), g, be, Tensor(), Tensor(), true));
  Tensor p = ember::max_pool2d(h1, 2);                        // (2, 4, 3, 3)
  Tensor u = ember::conv_transpose2d(p, wt, Tensor(), 2, 0);  // (2, 2, 6, 6)
  Tensor out = ember::linear(ember::flatten(u, 1), wl, bl);   // (2, 5)
  Tensor L = ember::mse_loss(out, ember::zeros({2, 5}));
  CHECK(L.shape() == Shape{});
  L.backward();
  for (auto [name, t] : {std::pair<const char*, Tensor>{"x", x},
                         {"conv weight", w1},
                         {"conv bias", b1},
                         {"bn weight", g},
                         {"bn bias", be},
                         {"convT weight", wt},
                         {"linear weight", wl},
                         {"linear bias", bl}}) {
    INFO(name << " shape " << ember::to_string(t.shape()));
    REQUIRE(t.grad().defined());
    CHECK(t.grad().shape() == t.shape());
    CHECK(!t.grad().requires_grad());
    std::vector<float> v = t.grad().to_vector();
    CHECK(std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); }));
  }
  for (auto [name, t] : {std::pair<const char*, Tensor>{"relu output", h1},
                         {"pool output", p},
                         {"convT output", u},
                         {"linear output", out}}) {
    INFO(name);
    CHECK(!t.is_leaf());
    CHECK(!t.grad().defined());
  }
}
