// @file tests/cuda/test_cuda_training.cu
// @brief Layers and training (#12 item 6) on CUDA: the AdamW kernel path, AdamW, dropout masks,
//        embedding's checks and clip_grad_norm_ against the CPU.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"

#include <ember/ember.hpp>
// The kernels called directly here; the backend table itself comes from ember::cuda
// (src/cuda_backend.cu, compiled once), which the test program links.
#include <ember/kernels/cuda/dropout.cuh>
#include <ember/kernels/cuda/optim.cuh>

#include <ember/kernels/cpu/dropout.hpp>
#include <ember/kernels/cpu/optim.hpp>

namespace test_cuda_training_cases {

using namespace ember_cuda_test::tolerances;
using ember_cuda_test::DevBuf;
using ember_cuda_test::gpu_or_emu;
using ember_cuda_test::random_vec;
using ember_cuda_test::stream;
using ember::Device;
using ember::Tensor;
namespace K = ember::kernels;

TEST_CASE("cuda adam_step with decoupled weight decay (AdamW) matches the CPU bitwise",
          "[cuda][optim][adamw]") {
  EMBER_SKIP_IF_NO_GPU();
  const int64_t n = gpu_or_emu<int64_t>(1000003, 20011);
  const auto p0 = random_vec(n, 901), g0 = random_vec(n, 902), g1 = random_vec(n, 903);
  for (double wd : {0.01, 0.3}) {
    INFO("adamw weight_decay " << wd);
    std::vector<float> rp = p0, rm(size_t(n), 0.0f), rv(size_t(n), 0.0f);
    DevBuf<float> dp(p0), dg0(g0), dg1(g1), dm(rm), dv(rv);
    for (int step = 1; step <= 3; ++step) {
      K::AdamParams p = K::make_adam_params(1e-3, 0.9, 0.999, 1e-8, 0.0, step);
      p.decoupled = true;
      p.decay = float(1.0 - 1e-3 * wd);
      const auto& g = step % 2 ? g0 : g1;
      ember::cuda::adam_step(n, p, dp.get(), (step % 2 ? dg0 : dg1).get(), dm.get(), dv.get(),
                             stream());
      ember::cpu::adam_step(n, p, rp.data(), g.data(), rm.data(), rv.data());
    }
    CHECK(dp.download() == rp);
    CHECK(dm.download() == rm);
    CHECK(dv.download() == rv);
  }
}

TEST_CASE("cuda dropout_mask equals the CPU mask bitwise", "[cuda][dropout]") {
  EMBER_SKIP_IF_NO_GPU();
  for (int64_t n : {int64_t(1), int64_t(7), gpu_or_emu<int64_t>(100003, 4099)}) {
    INFO("n " << n);
    const K::PhiloxState st{77, 5};
    std::vector<float> want(static_cast<size_t>(n));
    ember::cpu::dropout_mask(n, st, 0.7f, 1.0f / 0.7f, want.data());
    DevBuf<float> got(std::vector<float>(size_t(n), -1.0f));
    ember::cuda::dropout_mask(n, st, 0.7f, 1.0f / 0.7f, got.get(), stream());
    CHECK(got.download() == want);
  }
}

TEST_CASE("cuda: AdamW, nn::Dropout, embedding checks and clip_grad_norm_ on the device",
          "[cuda][training][adamw][clip_grad_norm][embedding]") {
  EMBER_SKIP_IF_NO_GPU();
  ember::Generator g(4);
  Tensor pc = ember::randn({37}, g), pg = pc.to(Device::cuda);
  pc.set_requires_grad(true);
  pg.set_requires_grad(true);
  ember::optim::AdamW oc({pc}, ember::optim::AdamWOptions(1e-2).weight_decay(0.2));
  ember::optim::AdamW og({pg}, ember::optim::AdamWOptions(1e-2).weight_decay(0.2));
  for (int k = 0; k < 3; ++k) {
    Tensor gr = ember::randn({37}, g);
    pc.set_grad(gr.clone());
    pg.set_grad(gr.to(Device::cuda));
    oc.step();
    og.step();
  }
  CHECK(pg.to_vector() == pc.to_vector());

  // clip_grad_norm_: same total and clipped gradients (sums within float rounding).
  Tensor a = ember::zeros({5, 9}), b = ember::zeros({3});
  Tensor ag = a.to(Device::cuda), bg = b.to(Device::cuda);
  for (Tensor* t : {&a, &b, &ag, &bg}) t->set_requires_grad(true);
  Tensor ga = ember::randn({5, 9}, g), gb = ember::randn({3}, g);
  a.set_grad(ga.clone());
  b.set_grad(gb.clone());
  ag.set_grad(ga.to(Device::cuda));
  bg.set_grad(gb.to(Device::cuda));
  for (double nt : {2.0, 1.0}) {
    INFO("norm_type " << nt);
    const float tc = ember::nn::utils::clip_grad_norm_({a, b}, 0.5, nt).item();
    Tensor tgt = ember::nn::utils::clip_grad_norm_({ag, bg}, 0.5, nt);
    CHECK(tgt.is_cuda());
    CHECK(std::fabs(tgt.item() - tc) <= 1e-5f * tc);
    const auto ca = a.grad().to_vector(), cg = ag.grad().to_vector();
    for (size_t i = 0; i < ca.size(); ++i) CHECK(std::fabs(ca[i] - cg[i]) <= 1e-6f);
  }

  // nn::Dropout on the device draws the CPU's mask.
  ember::Generator d1(8), d2(8);
  ember::nn::Dropout dc(0.3, d1), dg(0.3, d2);
  Tensor x = ember::randn({4, 33}, g);
  CHECK(dg.forward(x.to(Device::cuda)).to_vector() == dc.forward(x).to_vector());

  // embedding: indices on the device are checked too; mixed devices are refused.
  Tensor w = ember::randn({4, 3}, g).to(Device::cuda);
  bool threw = false;
  try {
    (void)ember::embedding(ember::from_vector({1, 4}, {2}, Device::cuda), w);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).rfind("embedding: index 4", 0) == 0;
  }
  CHECK(threw);
  threw = false;
  try {
    (void)ember::embedding(ember::from_vector({1}), w);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("different devices") != std::string::npos;
  }
  CHECK(threw);
  ember::nn::Embedding emb(6, 5);
  emb.to(Device::cuda);
  CHECK(emb.forward(ember::from_vector({0, 5}, {2}, Device::cuda)).shape() == ember::Shape{2, 5});
}

}  // namespace test_cuda_training_cases
