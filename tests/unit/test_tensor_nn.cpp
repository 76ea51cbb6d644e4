// @file tests/unit/test_tensor_nn.cpp
// @brief Tensor basics (factories, views, generator, printing) and nn.Module behaviour
//        (names, train/eval, PyTorch default initialisation bounds).
#include <ember/ember.hpp>
#include <ember/models/unet.hpp>

#include <cmath>
#include <limits>
#include <sstream>

#include "../support/catch.hpp"

using namespace ember;

TEST_CASE("tensor: factories, item, to_vector", "[tensor]") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.numel() == 6);
  CHECK(z.dim() == 2);
  CHECK(z.size(-1) == 3);
  CHECK(z.device() == Device::cpu);
  for (float v : z.to_vector()) CHECK(v == 0.0f);
  for (float v : ones({4}).to_vector()) CHECK(v == 1.0f);
  for (float v : full({2, 2, 2, 2}, 2.5f).to_vector()) CHECK(v == 2.5f);
  Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(a.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(scalar_tensor(7.0f).item() == 7.0f);
  CHECK(scalar_tensor(7.0f).dim() == 0);
  Tensor r5 = zeros({1, 2, 3, 4, 5});  // rank 5 works too
  CHECK(r5.numel() == 120);
}

TEST_CASE("tensor: views share storage with their base", "[tensor]") {
  Tensor a = from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  Tensor b = a.reshape({4, 2});
  Tensor c = a.flatten();
  Tensor d = c.unflatten(0, {2, 2, 2});
  Tensor e = a.reshape({-1, 2, 2});
  CHECK(e.shape() == Shape{2, 2, 2});
  CHECK(d.shape() == Shape{2, 2, 2});
  CHECK(b.storage() == a.storage());
  CHECK(d.storage() == a.storage());
  a.data()[5] = 60.0f;
  CHECK(b.to_vector()[5] == 60.0f);
  CHECK(d.to_vector()[5] == 60.0f);
  Tensor x = zeros({2, 3, 4, 5});
  CHECK(x.flatten(1).shape() == Shape{2, 60});
  CHECK(x.flatten(1, 2).shape() == Shape{2, 12, 5});
  Tensor cl = a.clone();
  CHECK(cl.storage() != a.storage());
  CHECK(cl.to_vector() == a.to_vector());
}

TEST_CASE("clone and to are differentiable copies, as in PyTorch", "[tensor][autograd]") {
  Tensor a = ember::from_vector({1, -2, 3, 4}, {2, 2});
  a.set_requires_grad();
  Tensor c = a.clone();
  CHECK(c.storage() != a.storage());
  CHECK(c.requires_grad());
  CHECK_FALSE(c.is_leaf());
  // loss = sum(clone(a) * a): d/da = 2a, half of it through the clone.
  ember::sum(ember::mul(c, a)).backward();
  REQUIRE(a.grad().defined());
  CHECK(a.grad().to_vector() == std::vector<float>{2, -4, 6, 8});
  // to() on the tensor's own device is the tensor itself; under no_grad a clone has no history.
  CHECK(a.to(ember::Device::cpu).storage() == a.storage());
  {
    ember::NoGradGuard ng;
    Tensor d = a.clone();
    CHECK(d.is_leaf());
    CHECK_FALSE(d.requires_grad());
  }
}

TEST_CASE("generator: seeded, counter-based, offset-continuous", "[tensor][random]") {
  Generator g1(123), g2(123), g3(124);
  std::vector<float> a = randn({1000}, g1).to_vector();
  std::vector<float> b = randn({1000}, g2).to_vector();
  std::vector<float> c = randn({1000}, g3).to_vector();
  CHECK(a == b);
  CHECK(a != c);
  // Two fills of 8 continue where the first stopped: same as one fill of 16.
  Generator h1(5), h2(5);
  std::vector<float> one = rand({16}, h1).to_vector();
  std::vector<float> first = rand({8}, h2).to_vector(), second = rand({8}, h2).to_vector();
  first.insert(first.end(), second.begin(), second.end());
  CHECK(one == first);
  for (float u : one) {
    CHECK(u >= 0.0f);
    CHECK(u < 1.0f);
  }
  // The default generator is reseeded by manual_seed.
  manual_seed(9);
  std::vector<float> d1 = rand({10}).to_vector();
  manual_seed(9);
  CHECK(rand({10}).to_vector() == d1);
}

TEST_CASE("tensor: printing shows the shape and values", "[tensor]") {
  std::ostringstream os;
  os << from_vector({1, 2, 3, 4}, {2, 2});
  CHECK(os.str().find("shape=[2, 2]") != std::string::npos);
  CHECK(os.str().find("device=cpu") != std::string::npos);
  CHECK(os.str().find('4') != std::string::npos);
}

TEST_CASE("autograd: leaves accumulate, non-leaves do not keep .grad", "[autograd]") {
  Tensor w = from_vector({1, 2, 3}).set_requires_grad();
  Tensor x = from_vector({4, 5, 6});
  for (int i = 0; i < 2; ++i) sum(mul(w, x)).backward();
  CHECK(w.grad().to_vector() == std::vector<float>{8, 10, 12});
  CHECK_FALSE(x.grad().defined());
  w.zero_grad();
  CHECK(w.grad().to_vector() == std::vector<float>{0, 0, 0});
  Tensor h = mul(w, x);
  CHECK_FALSE(h.is_leaf());
  CHECK(h.requires_grad());
  {
    no_grad guard;
    Tensor k = mul(w, x);
    CHECK_FALSE(k.requires_grad());
    CHECK(is_grad_enabled() == false);
  }
  CHECK(is_grad_enabled());
}

TEST_CASE("nn: PyTorch names, train/eval, default initialisation", "[nn]") {
  manual_seed(0);
  models::UNet net;
  auto names = net.named_parameters();
  CHECK(names.front().first == "down0.0.weight");
  CHECK(names[4].first == "down1.model.0.weight");
  CHECK(names.back().first == "out.3.bias");
  auto buffers = net.named_buffers();
  CHECK(buffers.front().first == "down0.1.running_mean");
  CHECK(buffers[1].first == "down0.1.running_var");
  CHECK(net.num_parameters() == 234977);
  CHECK(net.is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.up1->model->is_training());  // children follow
  net.train();
  CHECK(net.up1->model->is_training());

  // kaiming_uniform(a = sqrt 5): |w| <= 1/sqrt(fan_in); bias likewise; values fill the range.
  nn::Conv2d conv(16, 32, 3);
  const double bound = 1.0 / std::sqrt(16.0 * 9.0);
  double max_w = 0, max_b = 0;
  for (float v : conv.weight.to_vector()) max_w = std::max(max_w, double(std::fabs(v)));
  for (float v : conv.bias.to_vector()) max_b = std::max(max_b, double(std::fabs(v)));
  CHECK(max_w <= bound);
  CHECK(max_w > 0.95 * bound);
  CHECK(max_b <= bound);
  // ConvTranspose2d's fan_in is weight.size(1) * R * S = out_channels * 9 (PyTorch's rule).
  nn::ConvTranspose2d convt(128, 32, 3, 2, 1, 1);
  CHECK(convt.weight.shape() == Shape{128, 32, 3, 3});
  const double tbound = 1.0 / std::sqrt(32.0 * 9.0);
  double max_t = 0;
  for (float v : convt.weight.to_vector()) max_t = std::max(max_t, double(std::fabs(v)));
  CHECK(max_t <= tbound);
  CHECK(max_t > 0.95 * tbound);
  nn::BatchNorm2d bn(4);
  CHECK(bn.weight.to_vector() == std::vector<float>(4, 1.0f));
  CHECK(bn.bias.to_vector() == std::vector<float>(4, 0.0f));
  CHECK(bn.running_var.to_vector() == std::vector<float>(4, 1.0f));
  CHECK_FALSE(bn.running_mean.requires_grad());
  CHECK(bn.weight.requires_grad());
}

TEST_CASE("optim: zero_grad keeps buffers, set_to_none drops them", "[optim]") {
  Tensor p = from_vector({1, 2}).set_requires_grad();
  optim::SGD opt({p}, {/*lr=*/0.5f});
  sum(mul(p, p)).backward();
  opt.step();  // p -= 0.5 * 2p = 0
  CHECK(p.to_vector() == std::vector<float>{0, 0});
  const float* before = p.grad().data();
  opt.zero_grad();
  CHECK(p.grad().data() == before);
  opt.zero_grad(true);
  CHECK_FALSE(p.grad().defined());
}

// Domain edges of the unary ops, against values printed by PyTorch 1.13 (torch.abs, rsqrt, log,
// their backward with a gradient of ones); the interior is checked against double references
// through the op table (tests/support/op_cases.hpp, group "pointwise").
TEST_CASE("unary ops: domain edges as PyTorch; Sigmoid, Tanh, SiLU modules", "[pointwise][nn]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  ember::Tensor x = ember::from_vector({nan, 0.0f, -0.0f, 2.0f}, ember::Shape{4});
  x.set_requires_grad(true);
  ember::abs(x).backward(ember::ones({4}));
  CHECK(x.grad().to_vector() == std::vector<float>{0.0f, 0.0f, 0.0f, 1.0f});  // torch: 0 0 0 1

  ember::Tensor z = ember::from_vector({0.0f}, ember::Shape{1});
  z.set_requires_grad(true);
  ember::Tensor r = ember::rsqrt(z);
  CHECK(r.item() == inf);
  r.backward(ember::ones({1}));
  CHECK(z.grad().item() == -inf);

  ember::Tensor w = ember::from_vector({0.0f, -1.0f}, ember::Shape{2});
  w.set_requires_grad(true);
  ember::Tensor l = ember::log(w);
  CHECK(l.to_vector()[0] == -inf);
  CHECK(std::isnan(l.to_vector()[1]));
  l.backward(ember::ones({2}));
  CHECK(w.grad().to_vector()[0] == inf);
  CHECK(w.grad().to_vector()[1] == -1.0f);

  ember::Tensor v = ember::from_vector({-2.0f, 0.5f, 3.0f}, ember::Shape{3});
  CHECK(ember::nn::Sigmoid().forward(v).to_vector() == ember::sigmoid(v).to_vector());
  CHECK(ember::nn::Tanh().forward(v).to_vector() == ember::tanh(v).to_vector());
  CHECK(ember::nn::SiLU().forward(v).to_vector() == ember::silu(v).to_vector());
  CHECK(ember::nn::Sigmoid().name() == "Sigmoid");
}
