// @file tests/unit/test_unet_step.cpp
// @brief The seed U-Net's full CPU training step against PyTorch (fixture unet_step):
//        forward, MSE loss, backward, one Adam step, batch-norm running statistics.
#include <ember/models/unet.hpp>

#include <cmath>

#include "../support/catch.hpp"
#include "../support/fixture.hpp"

using ember_test::compare;
using ember_test::Fixture;

namespace {

ember::Tensor tensor_from(const ember_test::FixtureTensor& f) {
  return ember::from_vector(f.data, ember::Shape(f.shape.begin(), f.shape.end()));
}

void load_into(ember::Tensor& t, const ember_test::FixtureTensor& f, const std::string& name) {
  INFO("loading " << name);
  REQUIRE(t.shape() == ember::Shape(f.shape.begin(), f.shape.end()));
  std::copy(f.data.begin(), f.data.end(), t.data());
}

// Per-tensor tolerance scaled by the tensor's largest magnitude: PyTorch (oneDNN) and ember sum
// in different orders, and batch normalisation amplifies rounding differences in the gradients.
void check_tensor(const std::string& what, const ember::Tensor& got,
                  const ember_test::FixtureTensor& expected, double rel_to_max, double rtol) {
  double max_abs = 0;
  for (float v : expected.data) max_abs = std::max(max_abs, double(std::fabs(v)));
  REQUIRE(got.numel() == static_cast<int64_t>(expected.data.size()));
  std::vector<float> g = got.to_vector();
  auto r = compare(what, g.data(), expected.data.data(), g.size(), rel_to_max * max_abs + 1e-9,
                   rtol);
  INFO(r.message);
  CHECK(r.ok);
}

}  // namespace

TEST_CASE("unet: full CPU training step matches PyTorch", "[unet][parity]") {
  Fixture fx = Fixture::load("unet_step");
  ember::models::UNet net;
  net.train();
  CHECK(net.num_parameters() == 234977);

  auto params = net.named_parameters();
  auto buffers = net.named_buffers();
  REQUIRE(params.size() == 52);
  REQUIRE(buffers.size() == 22);
  for (auto& [name, p] : params) load_into(p, fx.at("param." + name), name);
  for (auto& [name, b] : buffers) load_into(b, fx.at("buffer." + name), name);

  ember::Tensor x = tensor_from(fx.at("x"));
  ember::Tensor noise = tensor_from(fx.at("noise"));
  ember::Tensor noisy = x * 0.5f + noise * 0.5f;
  {
    auto r = compare("noisy", noisy.to_vector().data(), fx.at("noisy").data.data(),
                     size_t(noisy.numel()), 1e-7, 1e-6);
    INFO(r.message);
    CHECK(r.ok);
  }

  ember::optim::Adam opt(net.parameters(), {/*lr=*/fx.scalar("lr")});
  opt.zero_grad();
  ember::Tensor out = net.forward(noisy);
  ember::Tensor loss = ember::mse_loss(out, x);

  // Forward: output within 1e-4 of its largest magnitude, loss to 1e-5 relative.
  check_tensor("unet output", out, fx.at("out"), 1e-5, 1e-4);
  const double expected_loss = fx.scalar("loss");
  INFO("loss ember " << loss.item() << " vs PyTorch " << expected_loss);
  CHECK(std::fabs(loss.item() - expected_loss) <= 1e-5 * std::fabs(expected_loss));

  loss.backward();
  // Gradients: each within 1e-4 of the tensor's largest gradient magnitude (+ 1e-3 relative).
  // Exception: the bias of a convolution that feeds a BatchNorm has a true gradient of exactly
  // zero (the normalisation removes any per-channel shift); both libraries return rounding noise
  // of order 1e-8 there, so those are checked against an absolute 1e-6 instead.
  for (auto& [name, p] : params) {
    REQUIRE(p.grad().defined());
    const auto& exp = fx.at("grad." + name);
    double max_abs = 0;
    for (float v : exp.data) max_abs = std::max(max_abs, double(std::fabs(v)));
    if (max_abs < 1e-6) {
      std::vector<float> got = p.grad().to_vector();
      auto r = compare("grad of " + name + " (true value 0)", got.data(), exp.data.data(),
                       got.size(), 1e-6, 0.0);
      INFO(r.message);
      CHECK(r.ok);
    } else {
      check_tensor("grad of " + name, p.grad(), exp, 1e-4, 1e-3);
    }
  }
  // Running statistics after the training-mode forward pass.
  for (auto& [name, b] : buffers)
    check_tensor("buffer " + name + " after forward", b, fx.at("buffer_after." + name), 1e-6,
                 1e-5);

  opt.step();
  // Adam's first step moves each value by lr * g / (|g| + eps): lr * sign(g) wherever
  // |g| >> eps = 1e-8. Where |g| >= 1e-5 the step is determined to 1e-3 relative, so we require
  // 2% of lr. Where |g| < 1e-5 (the zero-gradient biases above, and a few tiny weights) the
  // step's size and sign follow rounding noise in g, so we only require |step| <= lr.
  const double lr = fx.scalar("lr");
  for (auto& [name, p] : params) {
    const auto& exp = fx.at("updated." + name);
    const auto& before = fx.at("param." + name);
    const auto& g = fx.at("grad." + name);
    std::vector<float> got = p.to_vector();
    size_t bad = 0, worst = 0;
    double worst_err = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      bool determined = std::fabs(g.data[i]) >= 1e-5;
      double err = determined ? std::fabs(double(got[i]) - exp.data[i])
                              : std::fabs(double(got[i]) - before.data[i]) - lr;
      double tol = determined ? 2e-2 * lr : 1e-7;
      if (err > tol) {
        ++bad;
        if (err > worst_err) worst_err = err, worst = i;
      }
    }
    INFO("updated " << name << ": " << bad << " of " << got.size()
                    << " values out of tolerance; worst index " << worst << " got " << got[worst]
                    << " expected " << exp.data[worst] << " (grad " << g.data[worst] << ")");
    CHECK(bad == 0);
  }
}

TEST_CASE("unet: eval mode uses running statistics and records nothing under no_grad",
          "[unet]") {
  ember::manual_seed(3);
  ember::models::UNet net;
  ember::Tensor x = ember::randn({2, 1, 16, 16});
  net.eval();
  std::vector<float> before;
  for (auto& b : net.buffers()) {
    auto v = b.to_vector();
    before.insert(before.end(), v.begin(), v.end());
  }
  ember::Tensor y1, y2;
  {
    ember::NoGradGuard guard;
    y1 = net.forward(x);
    y2 = net.forward(x);
  }
  CHECK_FALSE(y1.requires_grad());
  CHECK(y1.to_vector() == y2.to_vector());  // eval mode is deterministic, no batch statistics
  std::vector<float> after;
  for (auto& b : net.buffers()) {
    auto v = b.to_vector();
    after.insert(after.end(), v.begin(), v.end());
  }
  CHECK(before == after);  // running statistics untouched in eval mode
  CHECK(y1.shape() == ember::Shape{2, 1, 16, 16});
}
