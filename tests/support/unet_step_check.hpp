// @file tests/support/unet_step_check.hpp
// @brief The seed U-Net's full training step against PyTorch (fixture unet_step) on any device:
//        forward, MSE loss, backward, one Adam step, batch-norm running statistics.
#pragma once
#include <ember/models/unet.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "catch.hpp"
#include "fixture.hpp"

namespace ember_test {



inline ember::Tensor tensor_from(const ember_test::FixtureTensor& f) {
  return ember::from_vector(f.data, ember::Shape(f.shape.begin(), f.shape.end()));
}

inline void load_into(ember::Tensor& t, const ember_test::FixtureTensor& f, const std::string& name) {
  INFO("loading " << name);
  REQUIRE(t.shape() == ember::Shape(f.shape.begin(), f.shape.end()));
  std::copy(f.data.begin(), f.data.end(), t.data());
}

// Per-tensor tolerance scaled by the tensor's largest magnitude: PyTorch (oneDNN) and ember sum
// in different orders, and batch normalisation amplifies rounding differences in the gradients.
inline void check_tensor(const std::string& what, const ember::Tensor& got,
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

/// Loads the fixture's weights, runs forward, MSE, backward and one Adam step on `device`, and
/// compares every result with PyTorch. Used by the CPU test and the CUDA test alike.
inline void check_unet_step(ember::Device device) {
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
  net.to(device);  // in place: the handles in params/buffers follow
  for (auto& [name, p] : params) REQUIRE(p.device() == device);

  ember::Tensor x = tensor_from(fx.at("x")).to(device);
  ember::Tensor noise = tensor_from(fx.at("noise")).to(device);
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

}  // namespace ember_test
