// @file tests/unit/test_diffusion.cpp
// @brief The diffusion models (models/time_unet.hpp, models/cond_unet.hpp) and DDPM
//        (diffusion/ddpm.hpp) against PyTorch (tests/fixtures/make_diffusion_fixtures.py),
//        hand-computed parameter counts, and closed-form properties of the samplers.
#include <ember/diffusion/ddpm.hpp>
#include <ember/models/cond_unet.hpp>
#include <ember/models/time_unet.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include "../support/fixture.hpp"
#include "../support/unet_step_check.hpp"

namespace diffusion_test {

using ember::Shape;
using ember::Tensor;
using ember_test::Fixture;
using ember_test::FixtureTensor;

inline void expect_close(const std::string& what, const Tensor& got, const FixtureTensor& exp,
                         double atol, double rtol) {
  REQUIRE(got.shape() == Shape(exp.shape.begin(), exp.shape.end()));
  auto r = ember_test::compare(what, got.to_vector(), exp, atol, rtol);
  INFO(r.message);
  CHECK(r.ok);
}

inline void expect_close_vec(const std::string& what, const std::vector<float>& got,
                             const FixtureTensor& exp, double atol, double rtol) {
  auto r = ember_test::compare(what, got, exp, atol, rtol);
  INFO(r.message);
  CHECK(r.ok);
}

template <class F>
void expect_throw_naming(F&& f, const std::string& part) {
  try {
    f();
    FAIL("no exception; expected one naming '" << part << "'");
  } catch (const std::invalid_argument& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(part) != std::string::npos);
  }
}

/// The small 03/04 U-Net of the fixture: down channels (8, 8, 8), GroupNorm groups 2 and 4.
inline ember::models::CondUNetOptions small_cond_options() {
  ember::models::CondUNetOptions o;
  o.down_channels = {8, 8, 8};
  o.small_groups = 2;
  o.big_groups = 4;
  return o;
}

TEST_CASE("diffusion: parameter counts of the course's models", "[diffusion]") {
  ember::manual_seed(0);
  ember::models::TimeUNet time_net;
  // The seed U-Net (234,977) + EmbedBlock(1, 64) (64 + 64 + 64 * 64 + 64 = 4,288)
  // + EmbedBlock(1, 32) (32 + 32 + 32 * 32 + 32 = 1,120).
  CHECK(time_net.num_parameters() == 240385);
  ember::models::CondUNet cond_net;
  CHECK(cond_net.num_parameters() == 2002561);
  CHECK(cond_net.named_parameters().size() == 100);
  // A few PyTorch state_dict names.
  std::vector<std::string> names;
  for (auto& kv : cond_net.named_parameters()) names.push_back(kv.first);
  for (const char* n : {"down0.conv1.model.0.weight", "down0.conv2.model.1.bias",
                        "down1.model.2.conv.model.0.weight", "dense_emb.4.weight",
                        "t_emb1.model.0.weight", "c_embed2.model.2.bias", "up0.1.model.1.weight",
                        "up1.model.0.weight", "up2.model.4.model.0.bias", "out.3.weight"}) {
    INFO(n);
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  }
  std::vector<std::string> tnames;
  for (auto& kv : time_net.named_parameters()) tnames.push_back(kv.first);
  CHECK(std::find(tnames.begin(), tnames.end(), "temb_1.model.2.weight") != tnames.end());
}

TEST_CASE("diffusion: full-size models have PyTorch's parameter names, order and shapes",
          "[diffusion]") {
  // tests/fixtures/data/diffusion_param_shapes.txt: "model name d0 d1 ..." per parameter, from
  // the PyTorch models' named_parameters() (make_diffusion_fixtures.py).
  std::ifstream in(std::string(EMBER_FIXTURE_DIR) + "/diffusion_param_shapes.txt");
  REQUIRE(in.good());
  std::map<std::string, std::vector<std::string>> want;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string model, rest, d;
    ls >> model >> rest;
    while (ls >> d) rest += " " + d;
    want[model].push_back(rest);
  }
  auto describe = [](const ember::nn::Module& m) {
    std::vector<std::string> out;
    for (auto& [name, p] : m.named_parameters()) {
      std::string s = name;
      for (int64_t d : p.shape()) s += " " + std::to_string(d);
      out.push_back(s);
    }
    return out;
  };
  ember::manual_seed(0);
  CHECK(describe(ember::models::TimeUNet()) == want["time_unet"]);
  CHECK(describe(ember::models::CondUNet()) == want["cond_unet"]);
  CHECK(want["cond_unet"].size() == 100);
}

TEST_CASE("diffusion: bad configurations and inputs name the op", "[diffusion]") {
  ember::models::CondUNetOptions o = small_cond_options();
  o.big_groups = 3;
  expect_throw_naming([&] { ember::models::CondUNet net(o); }, "CondUNet");
  expect_throw_naming([] { ember::diffusion::DDPM d(1); }, "DDPM");
  ember::diffusion::DDPM ddpm(10);
  Tensor x = ember::zeros({2, 1, 4, 4});
  expect_throw_naming(
      [&] {
        ddpm.q_sample(x, ember::from_vector({0.0f, 10.0f}, Shape{2}), x);
      },
      "q_sample");
  expect_throw_naming(
      [&] {
        ddpm.q_sample(x, ember::from_vector({0.5f, 1.0f}, Shape{2}), x);
      },
      "q_sample");
  expect_throw_naming([&] { ddpm.step(x, 3, x, Tensor()); }, "DDPM::step");
  expect_throw_naming([&] { ddpm.ddim_step(x, 3, 3, x); }, "ddim_step");
  ember::manual_seed(1);
  ember::models::CondUNet net(small_cond_options());
  Tensor c = ember::zeros({2, 10});
  expect_throw_naming(
      [&] {
        net.forward(ember::zeros({2, 1, 12, 12}), ember::zeros({2}), c, ember::ones({2, 1}));
      },
      "CondUNet");
}

TEST_CASE("diffusion: schedule, q_sample, sampling steps, DDIM and guidance match PyTorch",
          "[diffusion][parity]") {
  using ember::diffusion::DDPM;
  using ember::diffusion::Sigma;
  for (const char* name :
       {"diffusion_schedule", "diffusion_schedule_t40", "diffusion_schedule_t1000"}) {
    INFO(name);
    Fixture fx = Fixture::load(name);
    const int T = int(fx.scalar("T"));
    DDPM base(T, fx.scalar("beta_start"), fx.scalar("beta_end"));
    // The schedule itself: bit for bit.
    expect_close_vec("betas", base.betas(), fx.at("betas"), 0, 0);
    expect_close_vec("alphas", base.alphas(), fx.at("alphas"), 0, 0);
    expect_close_vec("alpha_bar", base.alpha_bars(), fx.at("alpha_bar"), 0, 0);

    Tensor x_t = ember_test::tensor_from(fx.at("x_t"));
    Tensor eps = ember_test::tensor_from(fx.at("eps"));
    Tensor z = ember_test::tensor_from(fx.at("z"));
    Tensor x0 = ember_test::tensor_from(fx.at("x0"));
    // The same float32 operations in the same order as the script: bit for bit.
    const double atol = 0, rtol = 0;
    expect_close("q_sample", base.q_sample(x0, ember_test::tensor_from(fx.at("tq")), eps),
                 fx.at("q_sample"), atol, rtol);
    for (auto [kind, label] :
         {std::pair{Sigma::beta, "beta"}, std::pair{Sigma::beta_prev, "beta_prev"},
          std::pair{Sigma::posterior, "posterior"}}) {
      DDPM d(T, fx.scalar("beta_start"), fx.scalar("beta_end"), kind);
      for (int t : {T - 1, T / 2, 1, 0}) {
        const std::string key = std::string("step.") + label + "." + std::to_string(t);
        if (!fx.has(key)) continue;
        expect_close(key, d.step(x_t, t, eps, z), fx.at(key), atol, rtol);
      }
    }
    for (auto [t, tp] :
         {std::pair{T - 1, T - 1 - T / 10}, std::pair{T / 2, T / 2 - 7}, std::pair{3, -1}}) {
      for (float eta : {0.0f, 1.0f}) {
        const std::string key = "ddim." + std::to_string(t) + "." + std::to_string(tp) + "." +
                                (eta == 0.0f ? "0" : "1");
        expect_close(key, base.ddim_step(x_t, t, tp, eps, eta, z), fx.at(key), atol, rtol);
      }
    }
    for (auto [w, key] :
         {std::pair{0.0f, "cfg.0"}, std::pair{0.5f, "cfg.0.5"}, std::pair{2.0f, "cfg.2"}})
      expect_close(key, ember::diffusion::guidance(eps, z, w), fx.at(key), atol, rtol);
  }
}

TEST_CASE("diffusion: sinusoidal time embedding matches PyTorch", "[diffusion][parity]") {
  Fixture fx = Fixture::load("diffusion_sinusoidal");
  Tensor t = ember_test::tensor_from(fx.at("t"));
  expect_close("emb8", ember::models::SinusoidalPositionEmbedBlock(8).forward(t), fx.at("emb8"),
               2e-6, 1e-5);
  expect_close("emb32", ember::models::SinusoidalPositionEmbedBlock(32).forward(t), fx.at("emb32"),
               2e-6, 1e-5);
}

TEST_CASE(
    "diffusion: 03/04 U-Net training step (q_sample, forward, loss, backward, Adam) "
    "matches PyTorch",
    "[diffusion][parity]") {
  Fixture fx = Fixture::load("diffusion_cond_unet_step");
  ember::models::CondUNetOptions o = small_cond_options();
  o.T = int(fx.scalar("T"));
  ember::models::CondUNet net(o);
  net.train();
  auto params = net.named_parameters();
  REQUIRE(params.size() == 100);
  for (auto& [name, p] : params) ember_test::load_into(p, fx.at("param." + name), name);

  ember::diffusion::DDPM ddpm(o.T);
  Tensor x0 = ember_test::tensor_from(fx.at("x0"));
  Tensor t = ember_test::tensor_from(fx.at("t"));
  Tensor eps = ember_test::tensor_from(fx.at("eps"));
  Tensor x_t = ddpm.q_sample(x0, t, eps);
  expect_close("x_t", x_t, fx.at("x_t"), 1e-6, 1e-6);
  Tensor c = ember::one_hot(ember_test::tensor_from(fx.at("labels")), 10);
  Tensor mask = ember_test::tensor_from(fx.at("c_mask"));

  ember::optim::Adam opt(net.parameters(), {/*lr=*/fx.scalar("lr")});
  opt.zero_grad();
  Tensor out = net.forward(x_t, t, c, mask);
  Tensor loss = ember::mse_loss(out, eps);
  ember_test::check_tensor("cond unet output", out, fx.at("out"), 1e-5, 1e-4);
  INFO("loss ember " << loss.item() << " vs PyTorch " << fx.scalar("loss"));
  CHECK(std::fabs(loss.item() - fx.scalar("loss")) <= 1e-5 * std::fabs(fx.scalar("loss")));

  loss.backward();
  // Each gradient within 1e-4 of the tensor's largest magnitude (+ 1e-3 relative), as the seed
  // U-Net's step; an all-zero gradient (a dead ReLU unit's row) to an absolute 1e-7.
  for (auto& [name, p] : params) {
    REQUIRE(p.grad().defined());
    const auto& exp = fx.at("grad." + name);
    double max_abs = 0;
    for (float v : exp.data) max_abs = std::max(max_abs, double(std::fabs(v)));
    if (max_abs < 1e-6)
      expect_close("grad of " + name + " (true value 0)", p.grad(), exp, 1e-7, 0.0);
    else
      ember_test::check_tensor("grad of " + name, p.grad(), exp, 1e-4, 1e-3);
  }
  opt.step();
  // Adam's first step is lr * g / (|g| + eps) ~ lr * sign(g): determined to 2% of lr where
  // |g| >= 1e-5; elsewhere only |step| <= lr (its sign follows rounding noise).
  const double lr = fx.scalar("lr");
  for (auto& [name, p] : params) {
    const auto& exp = fx.at("updated." + name);
    const auto& before = fx.at("param." + name);
    const auto& g = fx.at("grad." + name);
    std::vector<float> got = p.to_vector();
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const bool determined = std::fabs(g.data[i]) >= 1e-5;
      const double err = determined ? std::fabs(double(got[i]) - exp.data[i])
                                    : std::fabs(double(got[i]) - before.data[i]) - lr;
      if (err > (determined ? 2e-2 * lr : 1e-7)) ++bad;
    }
    INFO("updated " << name << ": " << bad << " of " << got.size() << " out of tolerance");
    CHECK(bad == 0);
  }
}

TEST_CASE("diffusion: 02 time U-Net forward, loss and gradients match PyTorch",
          "[diffusion][parity]") {
  Fixture fx = Fixture::load("diffusion_time_unet");
  ember::models::TimeUNet net(int(fx.scalar("T")), 16, 1, {4, 8, 8});
  net.train();
  auto params = net.named_parameters();
  for (auto& [name, p] : params) ember_test::load_into(p, fx.at("param." + name), name);
  Tensor out =
      net.forward(ember_test::tensor_from(fx.at("x")), ember_test::tensor_from(fx.at("t")));
  ember_test::check_tensor("time unet output", out, fx.at("out"), 1e-5, 1e-4);
  Tensor loss = ember::mse_loss(out, ember_test::tensor_from(fx.at("eps")));
  CHECK(std::fabs(loss.item() - fx.scalar("loss")) <= 1e-5 * std::fabs(fx.scalar("loss")));
  loss.backward();
  // As the seed U-Net: a conv bias feeding BatchNorm has a true gradient of 0 (rounding noise).
  for (auto& [name, p] : params) {
    const auto& exp = fx.at("grad." + name);
    double max_abs = 0;
    for (float v : exp.data) max_abs = std::max(max_abs, double(std::fabs(v)));
    if (max_abs < 1e-6)
      expect_close("grad of " + name + " (true value 0)", p.grad(), exp, 1e-6, 0.0);
    else
      ember_test::check_tensor("grad of " + name, p.grad(), exp, 1e-4, 1e-3);
  }
}

TEST_CASE("diffusion: guided() batches both branches and equals two separate forwards",
          "[diffusion]") {
  ember::manual_seed(5);
  ember::models::CondUNet net(small_cond_options());
  ember::Generator gen(11);
  Tensor x = ember::randn({3, 1, 16, 16}, gen);
  Tensor t = ember::from_vector({4.0f, 4.0f, 4.0f}, Shape{3});
  Tensor c = ember::one_hot(ember::from_vector({1.0f, 7.0f, 2.0f}, Shape{3}), 10);
  ember::NoGradGuard ng;
  for (float w : {0.0f, 1.5f}) {
    Tensor got = ember::diffusion::guided(net, c, w)(x, t);
    Tensor keep = net.forward(x, t, c, ember::ones({3, 1}));
    Tensor drop = net.forward(x, t, c, ember::zeros({3, 1}));
    Tensor want = keep * (1.0f + w) - drop * w;
    std::vector<float> g = got.to_vector(), e = want.to_vector();
    double max_abs = 0;
    for (float v : e) max_abs = std::max(max_abs, double(std::fabs(v)));
    auto r = ember_test::compare("guided w=" + std::to_string(w), g.data(), e.data(), g.size(),
                                 1e-5 * max_abs, 1e-5);
    INFO(r.message);
    CHECK(r.ok);
  }
  // A per-entry mask (N, n_classes) with the same per-sample values gives the same result.
  Tensor m1 = ember::from_vector({1.0f, 0.0f, 1.0f}, Shape{3, 1});
  Tensor m10 = ember::expand(m1, Shape{3, 10}) * ember::ones({3, 10});
  CHECK(net.forward(x, t, c, m1).to_vector() == net.forward(x, t, c, m10).to_vector());
  // The unconditional branch ignores the class entirely: a dropped class gives the same noise.
  Tensor c2 = ember::one_hot(ember::from_vector({5.0f, 5.0f, 5.0f}, Shape{3}), 10);
  CHECK(net.forward(x, t, c, ember::zeros({3, 1})).to_vector() ==
        net.forward(x, t, c2, ember::zeros({3, 1})).to_vector());
}

TEST_CASE("diffusion: samplers invert the forward process for an exact noise predictor",
          "[diffusion]") {
  // For data that is a single image x*, the exact predictor is
  // eps(x_t, t) = (x_t - sqrt(abar_t) x*) / sqrt(1 - abar_t). Deterministic DDIM then returns x*
  // for any number of steps, and ancestral sampling's last step (t = 0) returns x* whatever
  // the noise before it.
  ember::diffusion::DDPM ddpm(150);
  ember::Generator g0(3);
  Tensor target = ember::rand({2, 1, 4, 4}, g0) * 2.0f - 1.0f;
  const auto& ab = ddpm.alpha_bars();
  ember::diffusion::EpsFn oracle = [&](const Tensor& x, const Tensor& t) {
    const int ti = int(t.to_vector()[0]);
    return (x - target * std::sqrt(ab[ti])) / std::sqrt(1.0f - ab[ti]);
  };
  std::vector<float> want = target.to_vector();
  auto close_to_target = [&](const Tensor& got, double tol, const std::string& what) {
    std::vector<float> g = got.to_vector();
    auto r = ember_test::compare(what, g.data(), want.data(), g.size(), tol, 0.0);
    INFO(r.message);
    CHECK(r.ok);
  };
  for (int steps : {150, 10, 1}) {
    ember::Generator gen(7);
    close_to_target(ddpm.sample_ddim(oracle, Shape{2, 1, 4, 4}, steps, gen), 1e-4,
                    "ddim " + std::to_string(steps) + " steps");
  }
  ember::Generator gen(9);
  close_to_target(ddpm.sample(oracle, Shape{2, 1, 4, 4}, gen), 1e-4, "ancestral");
  CHECK(ddpm.ddim_timesteps(3) == std::vector<int>{100, 50, 0});
}

TEST_CASE("diffusion: sampling, loss and masks are reproducible from a seeded generator",
          "[diffusion]") {
  ember::diffusion::DDPM ddpm(20);
  // The ancestral loop is x ~ N(0,1), then for t = T-1..0: eps, z ~ N(0,1) (t > 0), step.
  ember::diffusion::EpsFn halve = [](const Tensor& x, const Tensor&) { return x * 0.5f; };
  ember::Generator a(42), b(42);
  Tensor s1 = ddpm.sample(halve, Shape{2, 1, 4, 4}, a);
  Tensor x = ember::randn({2, 1, 4, 4}, b);
  for (int t = 19; t >= 0; --t)
    x = ddpm.step(x, t, x * 0.5f, t > 0 ? ember::randn({2, 1, 4, 4}, b) : Tensor());
  CHECK(s1.to_vector() == x.to_vector());
  ember::Generator a2(42);
  CHECK(ddpm.sample(halve, Shape{2, 1, 4, 4}, a2).to_vector() == s1.to_vector());

  // loss(): t ~ U{0..T-1}, then noise, then mse(model(q_sample), noise).
  ember::Generator l1(8), l2(8);
  Tensor x0 = ember::full({4, 1, 4, 4}, 0.25f);
  Tensor loss = ddpm.loss(halve, x0, l1);
  Tensor t = ddpm.sample_timesteps(4, l2);
  Tensor noise = ember::randn({4, 1, 4, 4}, l2);
  Tensor manual = ember::mse_loss(ddpm.q_sample(x0, t, noise) * 0.5f, noise);
  CHECK(loss.item() == manual.item());
  for (float v : t.to_vector()) CHECK((v >= 0 && v < 20 && v == std::floor(v)));

  // The context mask: (n, 1) of 0/1 with the requested keep fraction.
  ember::Generator m(1);
  std::vector<float> mask = ember::diffusion::context_mask(20000, 0.9f, m).to_vector();
  double kept = 0;
  for (float v : mask) {
    CHECK((v == 0.0f || v == 1.0f));
    kept += v;
  }
  CHECK(std::fabs(kept / 20000 - 0.9) < 0.01);  // binomial sd 0.0021
}

}  // namespace diffusion_test
