// @file tests/unit/test_unet_step.cpp
// @brief The seed U-Net on the CPU: the full training step against PyTorch (the check itself
//        is tests/support/unet_step_check.hpp, shared with the CUDA test), and eval mode.
#include <ember/models/unet.hpp>

#include <cmath>

#include "../support/catch.hpp"
#include "../support/fixture.hpp"
#include "../support/unet_step_check.hpp"


TEST_CASE("unet: full CPU training step matches PyTorch", "[unet][parity]") {
  ember_test::check_unet_step(ember::Device::cpu);
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
