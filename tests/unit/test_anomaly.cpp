// @file tests/unit/test_anomaly.cpp
// @brief Anomaly detection (autograd::set_detect_anomaly / DetectAnomalyGuard): with it on, the
//        first op whose forward output or backward gradient holds NaN/Inf is named in an
//        ember::Error; with it off (the default) nothing is checked and nothing throws.
//
// Non-finite values are forced with hand-picked inputs: a NaN entry fed to an op, products that
// overflow float only in the backward pass, a NaN seed gradient, and a NaN planted in one
// weight of the seed U-Net.
#include <cmath>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>

#include <ember/ember.hpp>
#include <ember/models/unet.hpp>

#include "../support/catch.hpp"
#include "../support/test_util.hpp"

namespace anomaly_test {

using ember::Shape;
using ember::Tensor;

using ember_test::kNaN;

/// f must throw ember::Error whose message starts with `start` and contains every part.
void expect_anomaly(const std::string& what, const std::string& start,
                    std::initializer_list<std::string> parts, const std::function<void()>& f) {
  std::string msg = "<no exception>";
  try {
    f();
  } catch (const ember::Error& e) {
    msg = e.what();
  } catch (const std::exception& e) {
    msg = std::string("<wrong exception type, what(): ") + e.what() + ">";
  }
  INFO(what << ": expected ember::Error starting with \"" << start << "\", got \"" << msg << "\"");
  CHECK(msg.rfind(start, 0) == 0);
  for (const std::string& p : parts) {
    INFO("message should contain \"" << p << "\"");
    CHECK(msg.find(p) != std::string::npos);
  }
}

using ember_test::leaf;

}  // namespace anomaly_test

using namespace anomaly_test;

TEST_CASE("anomaly: off by default, the guard turns it on and restores it", "[anomaly]") {
  CHECK_FALSE(ember::autograd::is_anomaly_enabled());
  {
    ember::autograd::DetectAnomalyGuard on;
    CHECK(ember::autograd::is_anomaly_enabled());
    {
      ember::autograd::DetectAnomalyGuard off(false);
      CHECK_FALSE(ember::autograd::is_anomaly_enabled());
    }
    CHECK(ember::autograd::is_anomaly_enabled());
  }
  CHECK_FALSE(ember::autograd::is_anomaly_enabled());
  ember::autograd::set_detect_anomaly(true);
  CHECK(ember::autograd::is_anomaly_enabled());
  ember::autograd::set_detect_anomaly(false);
  CHECK_FALSE(ember::autograd::is_anomaly_enabled());
}

TEST_CASE("anomaly: a NaN fed to conv2d is reported at conv2d's forward", "[anomaly][conv2d]") {
  std::vector<float> xv(16, 0.5f);
  xv[5] = kNaN;
  auto run = [&] {
    Tensor x = leaf(xv, {1, 1, 4, 4});
    Tensor w = leaf(std::vector<float>(9, 0.1f), {1, 1, 3, 3});
    Tensor y = ember::relu(ember::conv2d(x, w, Tensor(), 1, 1));
    ember::sum(y).backward();
    return x;
  };
  // Off: the NaN flows through silently, as in PyTorch.
  CHECK_NOTHROW(run());
  ember::autograd::DetectAnomalyGuard on;
  expect_anomaly("conv2d on an input with a NaN", "conv2d forward produced NaN",
                 {"in its output of shape [1, 1, 4, 4]", "input 0 [1, 1, 4, 4] holds NaN (1 NaN",
                  "input 1 [1, 1, 3, 3] is finite"},
                 run);
}

TEST_CASE("anomaly: an Inf made by a forward multiplication names that op", "[anomaly]") {
  ember::autograd::DetectAnomalyGuard on;
  expect_anomaly("x * 1e30 with x = 1e30", "mul_scalar forward produced Inf",
                 {"(0 NaN, 2 Inf of 2 values)", "shape [2]", "input 0 [2] is finite"}, [] {
                   Tensor x = leaf({1e30f, 1e30f}, {2});
                   (void)(x * 1e30f);
                 });
}

TEST_CASE("anomaly: a gradient that overflows only in backward names the op whose backward "
          "made it",
          "[anomaly]") {
  // y = x * w = 1 (finite); z = y * 1e30 (finite); dz/dy = 1e30, so mul's backward gives
  // dy/dx * 1e30 = w * 1e30 = 1e60 = Inf for x (input 0) and x * 1e30 = 1 for w.
  auto run = [] {
    Tensor x = leaf({1e-30f}, {1});
    Tensor w = leaf({1e30f}, {1});
    Tensor z = ember::mul(x, w) * 1e30f;
    ember::sum(z).backward();
    return x;
  };
  Tensor x = run();  // off: no error, an infinite gradient
  CHECK(std::isinf(x.grad().to_vector()[0]));
  ember::autograd::DetectAnomalyGuard on;
  expect_anomaly("mul backward overflow", "Function 'mul' backward returned Inf",
                 {"gradient for input 0 (shape [1])", "given a finite output gradient"}, run);
}

TEST_CASE("anomaly: a NaN seed gradient is refused by backward", "[anomaly]") {
  ember::autograd::DetectAnomalyGuard on;
  expect_anomaly("backward seeded with NaN", "backward: the gradient given to backward() holds NaN",
                 {"shape [2]"}, [] {
                   Tensor x = leaf({1.f, 2.f}, {2});
                   Tensor y = x * 2.0f;
                   y.backward(ember::from_vector({1.f, kNaN}, {2}));
                 });
}

TEST_CASE("anomaly: a NaN planted in one U-Net weight is reported at the first op using it",
          "[anomaly][unet]") {
  ember::manual_seed(0);
  ember::models::UNet net;
  net.train();
  ember::Generator gen(1);
  Tensor x = ember::randn({2, 1, 16, 16}, gen);
  Tensor target = ember::randn({2, 1, 16, 16}, gen);
  // Without a NaN, anomaly mode changes nothing: the whole step runs and the loss is finite.
  {
    ember::autograd::DetectAnomalyGuard on;
    Tensor loss = ember::mse_loss(net.forward(x), target);
    loss.backward();
    CHECK(std::isfinite(loss.item()));
  }
  // One NaN in the weight of up0's convolution (16 layers into the forward pass).
  Tensor w;
  for (auto& [name, p] : net.named_parameters())
    if (name == "up0.1.weight") w = p;
  REQUIRE(w.defined());
  REQUIRE(w.shape() == Shape{64, 64, 3, 3});
  w.data()[100] = kNaN;
  ember::autograd::DetectAnomalyGuard on;
  expect_anomaly("U-Net with a NaN in up0.1.weight", "conv2d forward produced NaN",
                 {"input 1 [64, 64, 3, 3] holds NaN (1 NaN", "input 0 [2, 64, 4, 4] is finite"},
                 [&] { (void)ember::mse_loss(net.forward(x), target); });
}
