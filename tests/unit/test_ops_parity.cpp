// @file tests/unit/test_ops_parity.cpp
// @brief Every op fixture in tests/fixtures/data against ember's public API: forward through the
//        op, backward through autograd with the fixture's upstream gradient `gy`, and the
//        outputs, every gradient, updated running statistics and optimiser parameters compared
//        with what PyTorch computed.
//
// Tolerances are per op and per tensor, stated in each case as |got - want| <= atol + rtol |want|.
// Ops that only move data (relu, max_pool2d, cat, the views) must match bitwise (atol = rtol = 0);
// the others are allowed float32 rounding differences from a different summation order.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <ember/ember.hpp>

#include "../support/catch.hpp"
#include "../support/fixture.hpp"

namespace parity_test {

using ember::Shape;
using ember::Tensor;
using ember_test::Fixture;
using ember_test::FixtureTensor;

Tensor to_tensor(const FixtureTensor& t, bool requires_grad = false) {
  Tensor out = ember::from_vector(t.data, Shape(t.shape.begin(), t.shape.end()));
  if (requires_grad) out.set_requires_grad(true);
  return out;
}

Tensor fixture_input(const Fixture& f, const std::string& key, bool requires_grad = true) {
  return to_tensor(f.at(key), requires_grad);
}

/// Checks that `got` has the fixture tensor's shape and values; the message names the fixture,
/// the tensor, its shape and the worst element.
void expect_match(const std::string& what, const Tensor& got, const FixtureTensor& want,
                  double atol, double rtol) {
  INFO(what << ": expected shape " << ember::to_string(Shape(want.shape.begin(), want.shape.end()))
            << (got.defined() ? ", got shape " + ember::to_string(got.shape())
                              : std::string(", got an undefined tensor")));
  REQUIRE(got.defined());
  REQUIRE(got.shape() == Shape(want.shape.begin(), want.shape.end()));
  const ember_test::CompareResult r = ember_test::compare(
      what + " " + ember::to_string(got.shape()), got.to_vector(), want, atol, rtol);
  INFO(r.message);
  CHECK(r.ok);
}

struct ParityTol {
  double atol, rtol;
};

}  // namespace parity_test

using namespace parity_test;

TEST_CASE("parity: conv2d fixtures 0..4 (y, gx, gw, gb)", "[ops][parity][conv2d]") {
  // y: sums of C*R*S products -> atol 1e-5, rtol 1e-4. Gradients sum up to N*OH*OW (gw) or
  // K*R*S (gx) products -> atol 1e-4, rtol 1e-4 (conv2d_4's gw sums 1024 products of size ~1).
  const ParityTol ty{1e-5, 1e-4}, tg{1e-4, 1e-4};
  for (int i = 0; i < 5; ++i) {
    const std::string name = "conv2d_" + std::to_string(i);
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    Tensor x = fixture_input(f, "x"), w = fixture_input(f, "w");
    Tensor b = f.has("b") ? fixture_input(f, "b") : Tensor();
    const int stride = int(f.scalar("stride")), pad = int(f.scalar("pad"));
    Tensor y = ember::conv2d(x, w, b, stride, pad);
    expect_match(name + " y", y, f.at("y"), ty.atol, ty.rtol);
    y.backward(fixture_input(f, "gy", false));
    expect_match(name + " gx", x.grad(), f.at("gx"), tg.atol, tg.rtol);
    expect_match(name + " gw", w.grad(), f.at("gw"), tg.atol, tg.rtol);
    if (f.has("gb")) expect_match(name + " gb", b.grad(), f.at("gb"), tg.atol, tg.rtol);
  }
}

TEST_CASE("parity: conv_transpose2d fixtures 0..4 (y, gx, gw, gb)",
          "[ops][parity][conv_transpose2d]") {
  // Same accumulation depths as conv2d: y atol 1e-5 rtol 1e-4; gradients atol 1e-4 rtol 1e-4.
  const ParityTol ty{1e-5, 1e-4}, tg{1e-4, 1e-4};
  for (int i = 0; i < 5; ++i) {
    const std::string name = "conv_transpose2d_" + std::to_string(i);
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    Tensor x = fixture_input(f, "x"), w = fixture_input(f, "w");
    Tensor b = f.has("b") ? fixture_input(f, "b") : Tensor();
    const int stride = int(f.scalar("stride")), pad = int(f.scalar("pad")),
              out_pad = int(f.scalar("out_pad"));
    Tensor y = ember::conv_transpose2d(x, w, b, stride, pad, out_pad);
    expect_match(name + " y", y, f.at("y"), ty.atol, ty.rtol);
    y.backward(fixture_input(f, "gy", false));
    expect_match(name + " gx", x.grad(), f.at("gx"), tg.atol, tg.rtol);
    expect_match(name + " gw", w.grad(), f.at("gw"), tg.atol, tg.rtol);
    if (f.has("gb")) expect_match(name + " gb", b.grad(), f.at("gb"), tg.atol, tg.rtol);
  }
}

TEST_CASE("parity: batch_norm2d train, train_n1, train_u, eval", "[ops][parity][batch_norm]") {
  // y, gx: atol 1e-5 rtol 1e-4; gw, gb (sums over N*H*W) atol 1e-4 rtol 1e-4;
  // running statistics after the forward: atol 1e-6 rtol 1e-5.
  const ParityTol ty{1e-5, 1e-4}, tgx{1e-5, 1e-4}, tgp{1e-4, 1e-4}, trs{1e-6, 1e-5};
  for (const char* suffix : {"train", "train_n1", "train_u", "eval"}) {
    const std::string name = std::string("batch_norm2d_") + suffix;
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    Tensor x = fixture_input(f, "x"), w = fixture_input(f, "w"), b = fixture_input(f, "b");
    Tensor rm = fixture_input(f, "running_mean", false), rv = fixture_input(f, "running_var", false);
    const bool training = f.scalar("training") != 0.0f;
    CHECK(training == (std::string(suffix) != "eval"));
    Tensor y =
        ember::batch_norm2d(x, w, b, rm, rv, training, f.scalar("momentum"), f.scalar("eps"));
    expect_match(name + " y", y, f.at("y"), ty.atol, ty.rtol);
    expect_match(name + " running_mean after", rm, f.at("running_mean_after"), trs.atol, trs.rtol);
    expect_match(name + " running_var after", rv, f.at("running_var_after"), trs.atol, trs.rtol);
    y.backward(fixture_input(f, "gy", false));
    expect_match(name + " gx", x.grad(), f.at("gx"), tgx.atol, tgx.rtol);
    expect_match(name + " gw", w.grad(), f.at("gw"), tgp.atol, tgp.rtol);
    expect_match(name + " gb", b.grad(), f.at("gb"), tgp.atol, tgp.rtol);
    CHECK(!rm.grad().defined());
    CHECK(!rv.grad().defined());
    // Backward must not touch the running statistics either.
    expect_match(name + " running_mean after backward", rm, f.at("running_mean_after"), trs.atol,
                 trs.rtol);
    expect_match(name + " running_var after backward", rv, f.at("running_var_after"), trs.atol,
                 trs.rtol);
  }
}

TEST_CASE("parity: relu (exact, gradient 0 at x == 0)", "[ops][parity][relu]") {
  // Pure selection: bitwise (atol 0, rtol 0).
  const Fixture f = Fixture::load("relu");
  Tensor x = fixture_input(f, "x");
  Tensor y = ember::relu(x);
  expect_match("relu y", y, f.at("y"), 0.0, 0.0);
  y.backward(fixture_input(f, "gy", false));
  expect_match("relu gx", x.grad(), f.at("gx"), 0.0, 0.0);
}

TEST_CASE("parity: gelu, exact (erf) and tanh forms (y, gx)", "[ops][parity][gelu]") {
  // Same float formulas as PyTorch's CPU kernels, but ember calls the C library's erff / expf /
  // tanhf while PyTorch's AVX2/AVX-512 kernels use a polynomial erf (|error| <= 1.5e-7) and
  // Sleef's tanhf: a few float ulps apart. Where 1 + erf(x) nearly cancels (x < -3) both lose
  // most relative precision on a tiny value, so the bounds are absolute there: y and the exact
  // form's gx atol 1e-6, rtol 1e-5 (largest difference seen ~5e-7). The tanh form's gx contains
  // 1 - tanh(inner)^2 times up to ~10 (|x| ~ 5): one ulp of tanh near -1 (6e-8) moves it by
  // ~1e-6, and at x = -5.07 Sleef rounds tanh to -1 (gx 0) where the correctly rounded value
  // gives -1.07e-6 (exact: -0.99e-6), so that gx gets atol 2e-6. The saturated tails
  // (x = +-12, +-40) and exact zeros are in both fixtures.
  struct Case {
    const char* name;
    double gx_atol;
  };
  for (const Case& c : {Case{"gelu", 1e-6}, Case{"gelu_tanh", 2e-6}}) {
    const std::string name = c.name;
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    const bool tanh_form = f.scalar("tanh") != 0.0f;
    CHECK(tanh_form == (name == "gelu_tanh"));
    Tensor x = fixture_input(f, "x");
    Tensor y = ember::gelu(x, tanh_form ? "tanh" : "none");
    expect_match(name + " y", y, f.at("y"), 1e-6, 1e-5);
    y.backward(fixture_input(f, "gy", false));
    expect_match(name + " gx", x.grad(), f.at("gx"), c.gx_atol, 1e-5);
  }
}

TEST_CASE("parity: group_norm (y, gx, gw, gb) incl. G = 1, G = C, no affine, 3-D input",
          "[ops][parity][group_norm]") {
  // PyTorch accumulates the statistics in float, ember in double; y and gx are normalised
  // values of size ~1: atol 1e-5, rtol 1e-4 (as batch_norm2d). gw, gb are sums over N*HW
  // products (up to 256 here): atol 1e-4, rtol 1e-4.
  const ParityTol ty{1e-5, 1e-4}, tgx{1e-5, 1e-4}, tgp{1e-4, 1e-4};
  for (const char* name : {"group_norm", "group_norm_g1", "group_norm_gc", "group_norm_noaffine",
                           "group_norm_n1_3d", "group_norm_unet"}) {
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    const bool affine = f.has("w");
    CHECK(affine == (std::string(name) != "group_norm_noaffine"));
    Tensor x = fixture_input(f, "x");
    Tensor w = affine ? fixture_input(f, "w") : Tensor(), b = affine ? fixture_input(f, "b") : Tensor();
    const int64_t groups = int64_t(f.scalar("num_groups"));
    Tensor y = ember::group_norm(x, groups, w, b, f.scalar("eps"));
    expect_match(std::string(name) + " y", y, f.at("y"), ty.atol, ty.rtol);
    y.backward(fixture_input(f, "gy", false));
    expect_match(std::string(name) + " gx", x.grad(), f.at("gx"), tgx.atol, tgx.rtol);
    if (affine) {
      expect_match(std::string(name) + " gw", w.grad(), f.at("gw"), tgp.atol, tgp.rtol);
      expect_match(std::string(name) + " gb", b.grad(), f.at("gb"), tgp.atol, tgp.rtol);
    }
  }
}

TEST_CASE("parity: nn::GroupNorm and nn::GELU modules reproduce the functional fixtures",
          "[ops][parity][group_norm][gelu][nn]") {
  // Tolerances as the functional cases above.
  SECTION("GroupNorm(8, 32) with the fixture's weight and bias") {
    const Fixture f = Fixture::load("group_norm_unet");
    ember::nn::GroupNorm gn(int(f.scalar("num_groups")), 32, f.scalar("eps"));
    auto params = gn.named_parameters();
    REQUIRE(params.size() == 2);
    CHECK(params[0].first == "weight");
    CHECK(params[1].first == "bias");
    CHECK(gn.weight.to_vector() == std::vector<float>(32, 1.0f));  // PyTorch's init
    CHECK(gn.bias.to_vector() == std::vector<float>(32, 0.0f));
    std::copy(f.at("w").data.begin(), f.at("w").data.end(), gn.weight.data());
    std::copy(f.at("b").data.begin(), f.at("b").data.end(), gn.bias.data());
    Tensor x = fixture_input(f, "x");
    Tensor y = gn.forward(x);
    expect_match("nn::GroupNorm y", y, f.at("y"), 1e-5, 1e-4);
    y.backward(fixture_input(f, "gy", false));
    expect_match("nn::GroupNorm gx", x.grad(), f.at("gx"), 1e-5, 1e-4);
    expect_match("nn::GroupNorm weight.grad", gn.weight.grad(), f.at("gw"), 1e-4, 1e-4);
    expect_match("nn::GroupNorm bias.grad", gn.bias.grad(), f.at("gb"), 1e-4, 1e-4);
  }
  SECTION("GroupNorm(4, 8, affine = false) has no parameters") {
    const Fixture f = Fixture::load("group_norm_noaffine");
    ember::nn::GroupNorm gn(4, 8, 1e-5f, false);
    CHECK(gn.named_parameters().empty());
    Tensor x = fixture_input(f, "x");
    Tensor y = gn.forward(x);
    expect_match("nn::GroupNorm(affine=false) y", y, f.at("y"), 1e-5, 1e-4);
    y.backward(fixture_input(f, "gy", false));
    expect_match("nn::GroupNorm(affine=false) gx", x.grad(), f.at("gx"), 1e-5, 1e-4);
  }
  SECTION("GELU() and GELU(\"tanh\")") {
    for (const char* name : {"gelu", "gelu_tanh"}) {
      const Fixture f = Fixture::load(name);
      const bool tanh_form = f.scalar("tanh") != 0.0f;
      ember::nn::GELU act(tanh_form ? "tanh" : "none");
      CHECK(act.named_parameters().empty());
      Tensor x = fixture_input(f, "x");
      Tensor y = act.forward(x);
      expect_match(std::string("nn::GELU ") + name + " y", y, f.at("y"), 1e-6, 1e-5);
      y.backward(fixture_input(f, "gy", false));
      expect_match(std::string("nn::GELU ") + name + " gx", x.grad(), f.at("gx"),
                   tanh_form ? 2e-6 : 1e-6, 1e-5);
    }
  }
}

TEST_CASE("parity: max_pool2d incl. ties (first maximum wins)", "[ops][parity][max_pool2d]") {
  // y is a selection: bitwise. gx: each input receives the sum of the gy of the windows it wins
  // (up to 4 windows with k3s2p1); ember adds them in output order like PyTorch's CPU kernel, so
  // gx is bitwise too (atol 0, rtol 0). The ties fixtures check the first-maximum rule.
  struct Case {
    const char* name;
    double gx_rtol;
  };
  for (const Case& c : {Case{"max_pool2d_k2s2", 0.0}, Case{"max_pool2d_k2s2_odd", 0.0},
                        Case{"max_pool2d_k3s2p1", 0.0}, Case{"max_pool2d_ties", 0.0},
                        Case{"max_pool2d_ties_k3s2p1", 0.0}}) {
    const std::string name = c.name;
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    Tensor x = fixture_input(f, "x");
    Tensor y = ember::max_pool2d(x, int(f.scalar("kernel")), int(f.scalar("stride")),
                                 int(f.scalar("pad")));
    expect_match(name + " y", y, f.at("y"), 0.0, 0.0);
    y.backward(fixture_input(f, "gy", false));
    expect_match(name + " gx", x.grad(), f.at("gx"), 0.0, c.gx_rtol);
  }
}

TEST_CASE("parity: linear (y, gx, gw, gb)", "[ops][parity][linear]") {
  // Sums of 7 (y), 3 (gx) and 5 (gw, gb) products: atol 1e-5, rtol 1e-4.
  const ParityTol t{1e-5, 1e-4};
  const Fixture f = Fixture::load("linear");
  Tensor x = fixture_input(f, "x"), w = fixture_input(f, "w"), b = fixture_input(f, "b");
  Tensor y = ember::linear(x, w, b);
  expect_match("linear y", y, f.at("y"), t.atol, t.rtol);
  y.backward(fixture_input(f, "gy", false));
  expect_match("linear gx", x.grad(), f.at("gx"), t.atol, t.rtol);
  expect_match("linear gw", w.grad(), f.at("gw"), t.atol, t.rtol);
  expect_match("linear gb", b.grad(), f.at("gb"), t.atol, t.rtol);
}

TEST_CASE("parity: cat along dims 0..3 with 2 and 3 inputs (exact)", "[ops][parity][cat]") {
  // Pure data movement: bitwise (atol 0, rtol 0).
  for (int dim = 0; dim < 4; ++dim) {
    for (int n : {2, 3}) {
      const std::string name = "cat_dim" + std::to_string(dim) + "_" + std::to_string(n);
      INFO("fixture " << name);
      const Fixture f = Fixture::load(name);
      REQUIRE(int(f.scalar("dim")) == dim);
      REQUIRE(int(f.scalar("n_inputs")) == n);
      std::vector<Tensor> xs;
      for (int i = 0; i < n; ++i) xs.push_back(fixture_input(f, "x" + std::to_string(i)));
      Tensor y = ember::cat(xs, dim);
      expect_match(name + " y", y, f.at("y"), 0.0, 0.0);
      y.backward(fixture_input(f, "gy", false));
      for (int i = 0; i < n; ++i)
        expect_match(name + " gx" + std::to_string(i), xs[size_t(i)].grad(),
                     f.at("gx" + std::to_string(i)), 0.0, 0.0);
      // The same through a negative dim.
      Tensor y2 = ember::cat(xs, dim - 4);
      expect_match(name + " y (dim " + std::to_string(dim - 4) + ")", y2, f.at("y"), 0.0, 0.0);
    }
  }
}

TEST_CASE("parity: mse_loss (y, gx, gtarget)", "[ops][parity][mse_loss]") {
  // Mean of 300 squares: atol 1e-6, rtol 1e-5; gradients 2 (x - t) gy / n: atol 1e-7, rtol 1e-5.
  const Fixture f = Fixture::load("mse_loss");
  Tensor x = fixture_input(f, "x"), t = fixture_input(f, "target");
  Tensor y = ember::mse_loss(x, t);
  expect_match("mse_loss y", y, f.at("y"), 1e-6, 1e-5);
  y.backward(fixture_input(f, "gy", false));
  expect_match("mse_loss gx", x.grad(), f.at("gx"), 1e-7, 1e-5);
  expect_match("mse_loss gtarget", t.grad(), f.at("gtarget"), 1e-7, 1e-5);
}

TEST_CASE("parity: sum and mean", "[ops][parity][reduce]") {
  // y: a 60-term float32 sum in another order: atol 1e-6, rtol 1e-5.
  // gx: sum broadcasts gy (bitwise); mean broadcasts gy/n (PyTorch divides, ember multiplies by
  // 1/n: one rounding apart, rtol 1e-6).
  SECTION("sum") {
    const Fixture f = Fixture::load("sum");
    Tensor x = fixture_input(f, "x");
    Tensor y = ember::sum(x);
    expect_match("sum y", y, f.at("y"), 1e-6, 1e-5);
    y.backward(fixture_input(f, "gy", false));
    expect_match("sum gx", x.grad(), f.at("gx"), 0.0, 0.0);
  }
  SECTION("mean") {
    const Fixture f = Fixture::load("mean");
    Tensor x = fixture_input(f, "x");
    Tensor y = ember::mean(x);
    expect_match("mean y", y, f.at("y"), 1e-6, 1e-5);
    y.backward(fixture_input(f, "gy", false));
    expect_match("mean gx", x.grad(), f.at("gx"), 0.0, 1e-6);
  }
}

TEST_CASE("parity: views keep values and pass gradients through (exact)", "[ops][parity][view]") {
  // reshape/flatten/unflatten of the relu fixture's x: values and gradients bitwise.
  const Fixture f = Fixture::load("relu");
  Tensor x = fixture_input(f, "x");  // (3, 4, 5, 6)
  Tensor v = ember::unflatten(ember::flatten(x.reshape({12, -1}), 0), 0, {3, 4, 30});
  REQUIRE(v.shape() == Shape{3, 4, 30});
  CHECK(v.storage() == x.storage());
  const std::vector<float> vx = v.to_vector();
  const ember_test::CompareResult r = ember_test::compare(
      "view values [3, 4, 30]", vx.data(), f.at("x").data.data(), vx.size(), 0.0, 0.0);
  INFO(r.message);
  CHECK(r.ok);
  Tensor y = ember::relu(v);
  y.backward(ember::from_vector(f.at("gy").data, Shape{3, 4, 30}));
  expect_match("relu through views gx", x.grad(), f.at("gx"), 0.0, 0.0);
}

namespace parity_test {

/// Runs the fixture's 5 Adam steps, checking the parameter after each; returns the optimiser.
struct AdamRun {
  Tensor m, v;
};
// The fixture stores hyper-parameters as float32; PyTorch used the decimal values (0.999, ...)
// as doubles. 7 significant digits recover those decimals exactly.
double decimal(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", double(v));
  return std::strtod(buf, nullptr);
}
AdamRun run_adam_fixture(const char* name, const Fixture& f) {
  Tensor p = fixture_input(f, "param0");
  ember::optim::AdamOptions o;
  o.lr(decimal(f.scalar("lr"))).betas({decimal(f.scalar("beta1")), decimal(f.scalar("beta2"))});
  o.eps(decimal(f.scalar("eps"))).weight_decay(decimal(f.scalar("weight_decay")));
  ember::optim::Adam opt({p}, o);
  const int steps = int(f.scalar("steps"));
  REQUIRE(steps == 5);
  for (int k = 1; k <= steps; ++k) {
    p.set_grad(fixture_input(f, "grad_" + std::to_string(k), false));
    opt.step();
    expect_match(std::string(name) + " param after step " + std::to_string(k), p,
                 f.at("param_" + std::to_string(k)), 1e-6, 1e-5);
  }
  CHECK(opt.step_count(0) == steps);
  AdamRun run;
  for (auto& [key, t] : opt.named_state()) {
    if (key == "0.exp_avg") run.m = t;
    if (key == "0.exp_avg_sq") run.v = t;
    if (key == "0.step") CHECK(t.item() == float(steps));
  }
  return run;
}

}  // namespace parity_test

TEST_CASE("parity: Adam and Adam with weight decay, 5 steps", "[optim][parity][adam]") {
  // Parameters after every step: atol 1e-6, rtol 1e-5 (one float32 update of size ~lr per step).
  // exp_avg after step 5: atol 1e-7, rtol 1e-5. (exp_avg_sq: see the next case.)
  for (const char* name : {"adam", "adam_wd"}) {
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    AdamRun run = run_adam_fixture(name, f);
    expect_match(std::string(name) + " exp_avg after step 5", run.m, f.at("exp_avg"), 1e-7, 1e-5);
  }
}

// exp_avg_sq is v * beta2 + (1 - beta2) g^2 with 1 - beta2 formed in double, as PyTorch does
// from its Python-double betas (0.001f, not 1 - 0.999f): optim/adam.hpp keeps the betas in
// double and kernels::make_adam_params rounds each scalar once. A float-beta version of this
// was 1.3e-5 relative (about 100 ulps) off here.
TEST_CASE("parity: Adam exp_avg_sq state after 5 steps", "[optim][parity][adam]") {
  // exp_avg_sq after step 5: atol 1e-9, rtol 1e-5 (values ~1e-2; float32 rounding is ~1e-7).
  for (const char* name : {"adam", "adam_wd"}) {
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    AdamRun run = run_adam_fixture(name, f);
    expect_match(std::string(name) + " exp_avg_sq after step 5", run.v, f.at("exp_avg_sq"), 1e-9,
                 1e-5);
  }
}

TEST_CASE("parity: SGD with momentum and Nesterov, 3 steps", "[optim][parity][sgd]") {
  // Parameters after every step and the momentum buffer after step 3: atol 1e-6, rtol 1e-5.
  for (const char* name : {"sgd_momentum", "sgd_nesterov"}) {
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    Tensor p = fixture_input(f, "param0");
    ember::optim::SGDOptions o;
    o.lr(f.scalar("lr")).momentum(f.scalar("momentum")).dampening(f.scalar("dampening"));
    o.weight_decay(f.scalar("weight_decay")).nesterov(f.scalar("nesterov") != 0.0f);
    CHECK(o.nesterov() == (std::string(name) == "sgd_nesterov"));
    ember::optim::SGD opt({p}, o);
    const int steps = int(f.scalar("steps"));
    REQUIRE(steps == 3);
    for (int k = 1; k <= steps; ++k) {
      p.set_grad(fixture_input(f, "grad_" + std::to_string(k), false));
      opt.step();
      expect_match(std::string(name) + " param after step " + std::to_string(k), p,
                   f.at("param_" + std::to_string(k)), 1e-6, 1e-5);
    }
    Tensor buf;
    for (auto& [key, t] : opt.named_state())
      if (key == "0.momentum_buffer") buf = t;
    expect_match(std::string(name) + " momentum_buffer after step 3", buf, f.at("momentum_buffer"),
                 1e-6, 1e-5);
  }
}

TEST_CASE("parity: conv2d_0 gradients through a reshape/mul/sum chain", "[ops][parity][chain]") {
  // Autograd must hand conv2d exactly the upstream gradient it would get alone: sum(reshape(y * 1)
  // * reshape(gy)) seeds dy = gy bitwise, so gx/gw/gb must equal the fixture's. Tolerances as
  // conv2d.
  const Fixture f = Fixture::load("conv2d_0");
  Tensor x = fixture_input(f, "x"), w = fixture_input(f, "w"), b = fixture_input(f, "b");
  Tensor y = ember::conv2d(x, w, b, 1, 1);
  Tensor gy = fixture_input(f, "gy", false);
  ember::sum(ember::mul(ember::reshape(y * 1.0f, {-1}), ember::reshape(gy, {-1}))).backward();
  expect_match("conv2d_0 via mul/sum/reshape gx", x.grad(), f.at("gx"), 1e-4, 1e-4);
  expect_match("conv2d_0 via mul/sum/reshape gw", w.grad(), f.at("gw"), 1e-4, 1e-4);
  expect_match("conv2d_0 via mul/sum/reshape gb", b.grad(), f.at("gb"), 1e-4, 1e-4);
}

// softmax family
TEST_CASE("parity: softmax and log_softmax (y, gx) at rank 1..4, every kind of dim, huge logits",
          "[ops][parity][softmax]") {
  // Same float formulas as PyTorch's CPU kernels (max subtracted, sum of exp, divide / subtract
  // the log), but PyTorch sums with vectorised partial sums and Sleef's expf while ember sums in
  // column order with the C library's expf: a few ulps apart. y and gx are O(1) (gy ~ N(0, 1)):
  // atol 1e-6, rtol 1e-5. softmax_6 / log_softmax_6 reduce over 1000 classes.
  for (int i = 0; i < 7; ++i) {
    for (const char* kind : {"softmax_", "log_softmax_"}) {
      const std::string name = kind + std::to_string(i);
      INFO("fixture " << name);
      const Fixture f = Fixture::load(name);
      const bool log = f.scalar("log") != 0.0f;
      CHECK(log == (name.rfind("log_", 0) == 0));
      const int64_t dim = int64_t(f.scalar("dim"));
      Tensor x = fixture_input(f, "x");
      Tensor y = log ? ember::log_softmax(x, dim) : ember::softmax(x, dim);
      expect_match(name + " y", y, f.at("y"), 1e-6, 1e-5);
      y.backward(fixture_input(f, "gy", false));
      expect_match(name + " gx", x.grad(), f.at("gx"), 1e-6, 1e-5);
    }
  }
}

TEST_CASE("parity: cross_entropy and nll_loss (y, gx): reductions, ignore_index, label_smoothing",
          "[ops][parity][cross_entropy]") {
  // PyTorch 1.13's formulas: mean divides by the number of non-ignored targets, label
  // smoothing adds (ls / C) * smooth_loss reduced the same way. ember forms (1 - ls) * nll +
  // (ls / C) * smooth per position before the reduction, PyTorch after: a few float ulps on
  // losses of size ~1-30 (sums over 8-30 positions): atol 1e-5, rtol 1e-5; gx atol 1e-6.
  const ember::Reduction reductions[] = {ember::Reduction::none, ember::Reduction::mean,
                                         ember::Reduction::sum};
  for (const char* name :
       {"cross_entropy_mean", "cross_entropy_sum_ignore", "cross_entropy_none_ignore",
        "cross_entropy_mean_ignore", "cross_entropy_ignore_class", "cross_entropy_ls_mean_ignore",
        "cross_entropy_ls_sum", "cross_entropy_ls_none", "cross_entropy_ls_one",
        "cross_entropy_spatial", "cross_entropy_spatial_none", "cross_entropy_1d",
        "nll_loss_mean_ignore", "nll_loss_none", "nll_loss_sum"}) {
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    const ember::Reduction r = reductions[int(f.scalar("reduction"))];
    const int64_t ignore = int64_t(f.scalar("ignore_index"));
    const double ls = double(f.scalar("label_smoothing"));
    Tensor x = fixture_input(f, "x");
    Tensor t = fixture_input(f, "target", false);
    Tensor y = f.scalar("nll") != 0.0f
                   ? ember::nll_loss(x, t, ember::NLLLossOptions().reduction(r).ignore_index(ignore))
                   : ember::cross_entropy(x, t,
                                          ember::CrossEntropyOptions()
                                              .reduction(r)
                                              .ignore_index(ignore)
                                              .label_smoothing(ls));
    expect_match(std::string(name) + " y", y, f.at("y"), 1e-5, 1e-5);
    y.backward(fixture_input(f, "gy", false));
    expect_match(std::string(name) + " gx", x.grad(), f.at("gx"), 1e-6, 1e-5);
  }
}

TEST_CASE("parity: cross_entropy with class-probability targets (y, gx, gtarget)",
          "[ops][parity][cross_entropy]") {
  // Targets with the input's shape are probabilities (PyTorch's rule), differentiable too.
  // Same tolerances as the class-index cases; gtarget = -g log_softmax (1 - ls) is O(1-10).
  const ember::Reduction reductions[] = {ember::Reduction::none, ember::Reduction::mean,
                                         ember::Reduction::sum};
  for (const char* name : {"cross_entropy_prob_mean", "cross_entropy_prob_sum_ls",
                           "cross_entropy_prob_none_spatial", "cross_entropy_prob_1d"}) {
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    Tensor x = fixture_input(f, "x");
    Tensor t = fixture_input(f, "target");
    Tensor y = ember::cross_entropy(x, t,
                                    ember::CrossEntropyOptions()
                                        .reduction(reductions[int(f.scalar("reduction"))])
                                        .label_smoothing(double(f.scalar("label_smoothing"))));
    expect_match(std::string(name) + " y", y, f.at("y"), 1e-5, 1e-5);
    y.backward(fixture_input(f, "gy", false));
    expect_match(std::string(name) + " gx", x.grad(), f.at("gx"), 1e-6, 1e-5);
    expect_match(std::string(name) + " gtarget", t.grad(), f.at("gtarget"), 1e-5, 1e-5);
  }
}

// ---- broadcasting binary ops, tensor-scalar ops, reductions over dims ----

TEST_CASE("parity: broadcasting add, sub, mul, div, maximum, minimum (y, ga, gb)",
          "[ops][parity][broadcast]") {
  // One float32 operation per element: y bitwise except div (PyTorch's vectorised division is
  // correctly rounded too: bitwise). Gradients are the per-element gradient summed over the
  // broadcast dims in another order: atol 1e-6, rtol 1e-5. Inputs are multiples of 1/4, so
  // maximum/minimum meet ties (PyTorch splits the gradient in half).
  const Fixture f = Fixture::load("broadcast_binary");
  const char* ops[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
  for (const char* op : ops) {
    for (int i = 0; i < 8; ++i) {
      const std::string k = std::string(op) + "_" + std::to_string(i) + "_";
      Tensor a = fixture_input(f, k + "a"), b = fixture_input(f, k + "b");
      const std::string o = op;
      Tensor y = o == "add"   ? a + b
                 : o == "sub" ? a - b
                 : o == "mul" ? a * b
                 : o == "div" ? a / b
                 : o == "maximum" ? ember::maximum(a, b)
                                  : ember::minimum(a, b);
      expect_match(k + "y", y, f.at(k + "y"), 0.0, 0.0);
      y.backward(fixture_input(f, k + "gy", false));
      expect_match(k + "ga", a.grad(), f.at(k + "ga"), 1e-6, 1e-5);
      expect_match(k + "gb", b.grad(), f.at(k + "gb"), 1e-6, 1e-5);
    }
  }
}

TEST_CASE("parity: where and expand (exact values, summed gradients)",
          "[ops][parity][broadcast]") {
  const Fixture f = Fixture::load("where_expand");
  Tensor c = fixture_input(f, "c", false), a = fixture_input(f, "a"), b = fixture_input(f, "b");
  Tensor y = ember::where(c, a, b);
  expect_match("where y", y, f.at("y"), 0.0, 0.0);
  y.backward(fixture_input(f, "gy", false));
  expect_match("where ga", a.grad(), f.at("ga"), 1e-6, 1e-5);
  expect_match("where gb", b.grad(), f.at("gb"), 0.0, 0.0);
  Tensor x = fixture_input(f, "x");
  Tensor e = ember::expand(x, {2, 3, 4});
  expect_match("expand", e, f.at("e"), 0.0, 0.0);
  e.backward(fixture_input(f, "ge", false));
  expect_match("expand gx", x.grad(), f.at("gx"), 1e-6, 1e-5);
}

TEST_CASE("parity: div, rdiv, reciprocal, rsub, clamp, pow on edge values and gradients",
          "[ops][parity][pointwise]") {
  // Edge values (signed zeros, 1e-20, 1e20, +-inf, NaN) must give PyTorch's results bitwise:
  // x / 3 divides, 3 / x is reciprocal(x) * 3, pow's special exponents take PyTorch's special
  // cases. General exponents (2.5, -1.5, 1/3) call powf: within 1 ulp (rtol 2e-7).
  const Fixture f = Fixture::load("scalar_ops");
  struct Spec {
    std::string name;
    std::function<Tensor(const Tensor&)> fn;
    double rtol;
  };
  std::vector<Spec> specs = {
      {"div3", [](const Tensor& t) { return t / 3.0f; }, 0.0},
      {"div0", [](const Tensor& t) { return t / 0.0f; }, 0.0},
      {"rdiv3", [](const Tensor& t) { return 3.0f / t; }, 0.0},
      {"reciprocal", [](const Tensor& t) { return ember::reciprocal(t); }, 0.0},
      {"rsub", [](const Tensor& t) { return 1.5f - t; }, 0.0},
      {"clamp", [](const Tensor& t) { return ember::clamp(t, -0.5f, 0.75f); }, 0.0},
      {"clamp_min", [](const Tensor& t) { return ember::clamp_min(t, 0.0f); }, 0.0},
      {"clamp_max", [](const Tensor& t) { return ember::clamp_max(t, -1.0f); }, 0.0}};
  for (const char* e : {"0", "1", "2", "3", "0.5", "-0.5", "-1", "-2", "2.5", "-1.5", "0.333333"}) {
    const float ev = std::string(e) == "0.333333" ? 1.0f / 3.0f : std::stof(e);
    const bool special = std::string(e) != "2.5" && std::string(e) != "-1.5" &&
                         std::string(e) != "0.333333";
    specs.push_back({std::string("pow_") + e, [ev](const Tensor& t) { return ember::pow(t, ev); },
                     special ? 0.0 : 2.4e-7});
  }
  const Tensor edge = fixture_input(f, "edge", false);
  for (const Spec& s : specs) {
    const std::string& n = s.name;
    expect_match(n + " on edge values", s.fn(edge), f.at(n + "_edge"), 0.0, s.rtol);
    Tensor x = fixture_input(f, n + "_x");
    Tensor y = s.fn(x);
    expect_match(n + " y", y, f.at(n + "_y"), 0.0, s.rtol);
    y.backward(fixture_input(f, n + "_gy", false));
    // Gradients: a product or quotient of two or three rounded terms: rtol 1e-6.
    expect_match(n + " gx", x.grad(), f.at(n + "_gx"), 1e-7, 1e-6);
  }
}

TEST_CASE("parity: sum, mean, amax, var over dims, and argmax (incl. ties and NaN)",
          "[ops][parity][reduce_dims]") {
  // sum/mean/var: float32 sums of up to 120 terms in another order: atol 1e-5, rtol 1e-5 (var's
  // two-pass formula against PyTorch's Welford). amax and argmax: exact; amax's gradient is
  // shared among ties as PyTorch (gy / count): rtol 1e-6.
  const Fixture f = Fixture::load("reduce_dims");
  struct R {
    std::vector<int64_t> dims;
    bool keep;
  };
  const std::vector<R> rs = {{{1}, false},    {{-1}, true}, {{0, 2}, false}, {{0, 2, 3}, true},
                             {{0}, false},    {{1}, true},  {{}, false}};
  for (size_t i = 0; i < rs.size(); ++i) {
    const R& r = rs[i];
    for (const char* name : {"sum", "mean", "amax", "var", "var_biased"}) {
      const std::string k = std::string(name) + "_" + std::to_string(i) + "_";
      Tensor x = fixture_input(f, k + "x");
      const std::string nm = name;
      Tensor y = nm == "sum"    ? ember::sum(x, r.dims, r.keep)
                 : nm == "mean" ? ember::mean(x, r.dims, r.keep)
                 : nm == "amax" ? ember::amax(x, r.dims, r.keep)
                                : ember::var(x, r.dims, nm == "var", r.keep);
      const bool exact = nm == "amax";
      expect_match(k + "y", y, f.at(k + "y"), exact ? 0.0 : 1e-5, exact ? 0.0 : 1e-5);
      y.backward(fixture_input(f, k + "gy", false));
      expect_match(k + "gx", x.grad(), f.at(k + "gx"), 1e-6, 1e-5);
    }
    if (r.dims.size() == 1) {
      Tensor x = fixture_input(f, "sum_" + std::to_string(i) + "_x", false);
      expect_match("argmax_" + std::to_string(i), ember::argmax(x, r.dims[0], r.keep),
                   f.at("argmax_" + std::to_string(i)), 0.0, 0.0);
    }
  }
  Tensor nx = fixture_input(f, "nan_x", false);
  expect_match("argmax with NaN", ember::argmax(nx, 1), f.at("nan_argmax"), 0.0, 0.0);
  expect_match("amax with NaN", ember::amax(nx, 1), f.at("nan_amax"), 0.0, 0.0);
  Tensor last = fixture_input(f, "sum_6_x", false);
  expect_match("argmax flattened", ember::argmax(last), f.at("flat_argmax"), 0.0, 0.0);
}

TEST_CASE("parity: comparisons gt, ge, lt, le, eq, ne (broadcast, ties, NaN; exact)",
          "[ops][parity][broadcast]") {
  const Fixture f = Fixture::load("compare");
  Tensor a = fixture_input(f, "a", false), b = fixture_input(f, "b", false);
  expect_match("gt", ember::gt(a, b), f.at("gt"), 0.0, 0.0);
  expect_match("ge", a >= b, f.at("ge"), 0.0, 0.0);
  expect_match("lt", a < b, f.at("lt"), 0.0, 0.0);
  expect_match("le", ember::le(a, b), f.at("le"), 0.0, 0.0);
  expect_match("eq", ember::eq(a, b), f.at("eq"), 0.0, 0.0);
  expect_match("ne", ember::ne(a, b), f.at("ne"), 0.0, 0.0);
  expect_match("gt scalar", a > 0.5f, f.at("gt_s"), 0.0, 0.0);
  expect_match("ge scalar", ember::ge(a, 0.5f), f.at("ge_s"), 0.0, 0.0);
  expect_match("lt scalar", ember::lt(a, 0.5f), f.at("lt_s"), 0.0, 0.0);
  expect_match("le scalar", a <= 0.5f, f.at("le_s"), 0.0, 0.0);
  expect_match("eq scalar", ember::eq(a, 0.5f), f.at("eq_s"), 0.0, 0.0);
  expect_match("ne scalar", ember::ne(a, 0.5f), f.at("ne_s"), 0.0, 0.0);
  Tensor g = fixture_input(f, "a", true);
  CHECK_FALSE(ember::gt(g, 0.0f).requires_grad());  // comparisons have no gradient
}

// ---- layout and indexing (#12 item 5) ----
TEST_CASE("parity: pixel_shuffle, pixel_unshuffle and permute fixtures (y, gx), bitwise",
          "[ops][parity][layout]") {
  // Pure data movement: values and gradients are PyTorch's bit for bit.
  for (const char* op : {"pixel_shuffle", "pixel_unshuffle", "permute"}) {
    const int count = std::string(op) == "permute" ? 2 : 3;
    for (int i = 0; i < count; ++i) {
      const std::string name = std::string("layout_") + op + "_" + std::to_string(i);
      INFO("fixture " << name);
      const Fixture f = Fixture::load(name);
      Tensor x = fixture_input(f, "x");
      Tensor y;
      if (std::string(op) == "permute") {
        std::vector<int64_t> dims;
        for (float d : f.at("dims").data) dims.push_back(int64_t(d));
        y = ember::permute(x, dims);
      } else {
        const int64_t r = int64_t(f.scalar("r"));
        y = std::string(op) == "pixel_shuffle" ? ember::pixel_shuffle(x, r)
                                               : ember::pixel_unshuffle(x, r);
      }
      expect_match(name + " y", y, f.at("y"), 0, 0);
      y.backward(fixture_input(f, "gy", false));
      expect_match(name + " gx", x.grad(), f.at("gx"), 0, 0);
    }
  }
}

TEST_CASE("parity: linspace and arange fixtures", "[ops][parity][layout]") {
  // The same (start, end, steps) as layout_cases() in tests/fixtures/make_fixtures.py (the
  // fixture stores them as float32; arange needs the doubles). Runs shorter than 16 elements
  // are PyTorch's scalar path: bitwise. Longer linspace runs went through PyTorch's vectorised
  // path (base + k*step from a vector base), which differs in the last bits: within 4 ulps of
  // max(|start|, |end|) (atol below).
  struct Lin {
    double a, b;
    int64_t n;
  };
  const Lin lin[] = {{0.0, 1.0, 5},     {-3.7, 2.2, 7},     {-10.0, 10.3, 10},
                     {-10.0, 10.3, 15}, {1.0, -1.0, 14},    {0.1, 0.9, 1},
                     {5.0, 5.0, 4},     {-10.0, 10.3, 100}, {0.1, 0.9, 257}};
  for (size_t i = 0; i < std::size(lin); ++i) {
    const std::string name = "layout_linspace_" + std::to_string(i);
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    REQUIRE(f.scalar("start") == float(lin[i].a));
    REQUIRE(f.scalar("steps") == float(lin[i].n));
    const double scale = std::max(std::fabs(lin[i].a), std::fabs(lin[i].b));
    const double atol = lin[i].n < 16 ? 0.0 : 4.0 * scale * 0x1p-23;
    expect_match(name + " y", ember::linspace(lin[i].a, lin[i].b, lin[i].n), f.at("y"), atol, 0);
  }
  struct Ar {
    double a, b, step;
  };
  const Ar ar[] = {{0.0, 1.0, 0.1},   {-3.0, 1.5, 0.3},  {1.0, -2.0, -0.7}, {0.5, 5.0, 0.37},
                   {-1.1, 2.0, 0.29}, {0.7, 2.1, 0.1},   {0.0, 5.0, 1.0}};
  for (size_t i = 0; i < std::size(ar); ++i) {
    const std::string name = "layout_arange_" + std::to_string(i);
    INFO("fixture " << name);
    const Fixture f = Fixture::load(name);
    REQUIRE(f.scalar("step") == float(ar[i].step));
    const Tensor y = ember::arange(ar[i].a, ar[i].b, ar[i].step);
    REQUIRE(y.numel() < 16);  // PyTorch's scalar path: bitwise
    expect_match(name + " y", y, f.at("y"), 0, 0);
  }
}
