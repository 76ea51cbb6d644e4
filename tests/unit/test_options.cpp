// @file tests/unit/test_options.cpp
// @brief Layers and optimizers built from libtorch-style options objects: each equals its
//        positional form (parameters, hyper-parameters, forward output for the same seed), has
//        libtorch's defaults, and rejects bad options with an error naming the layer and value.
#include <ember/ember.hpp>

#include <cmath>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "../support/catch.hpp"

using namespace ember;

namespace {

/// The same tensor values and shape (exact: both forms run the same kernels on the same data).
void check_same(const Tensor& a, const Tensor& b) {
  REQUIRE(a.defined() == b.defined());
  if (!a.defined()) return;
  REQUIRE(a.shape() == b.shape());
  CHECK(a.to_vector() == b.to_vector());
}

/// Parameters and buffers of two modules: the same names, shapes and values.
void check_same_module(const nn::Module& a, const nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO("parameter " << pa[i].first);
    CHECK(pa[i].first == pb[i].first);
    check_same(pa[i].second, pb[i].second);
  }
  auto ba = a.named_buffers(), bb = b.named_buffers();
  REQUIRE(ba.size() == bb.size());
  for (size_t i = 0; i < ba.size(); ++i) {
    INFO("buffer " << ba[i].first);
    CHECK(ba[i].first == bb[i].first);
    check_same(ba[i].second, bb[i].second);
  }
}

/// f must throw std::invalid_argument (ember's error for bad arguments, docs/architecture.md)
/// whose message starts with `layer` and contains every one of `parts`.
void expect_bad(const char* layer, std::initializer_list<std::string> parts,
                const std::function<void()>& f) {
  std::string msg;
  try {
    f();
  } catch (const std::invalid_argument& e) {
    msg = e.what();
  }
  INFO("message: \"" << msg << "\"");
  REQUIRE(!msg.empty());
  CHECK(msg.rfind(std::string(layer) + ": ", 0) == 0);
  for (const std::string& p : parts) {
    INFO("should contain \"" << p << "\"");
    CHECK(msg.find(p) != std::string::npos);
  }
}

Tensor input(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, gen);
}

}  // namespace

TEST_CASE("options: Conv2d from Conv2dOptions equals the positional form", "[options][nn]") {
  const nn::Conv2dOptions d(3, 8, 3);  // libtorch's defaults
  CHECK(d.in_channels() == 3);
  CHECK(d.out_channels() == 8);
  CHECK(d.kernel_size() == 3);
  CHECK(d.stride() == 1);
  CHECK(d.padding() == 0);
  CHECK(d.bias() == true);

  for (bool bias : {true, false}) {
    INFO("bias " << bias);
    manual_seed(11);
    nn::Conv2d a(nn::Conv2dOptions(3, 8, 3).stride(2).padding(1).bias(bias));
    manual_seed(11);
    nn::Conv2d b(3, 8, 3, 2, 1, bias);
    CHECK(a.options.stride() == 2);
    CHECK(a.options.padding() == 1);
    CHECK(a.options.bias() == bias);
    CHECK(b.options.stride() == 2);
    CHECK(b.options.padding() == 1);
    CHECK(a.weight.shape() == Shape{8, 3, 3, 3});
    CHECK(a.bias.defined() == bias);
    check_same_module(a, b);
    const Tensor x = input({2, 3, 9, 9}, 1);
    const Tensor ya = a.forward(x);
    CHECK(ya.shape() == Shape{2, 8, 5, 5});  // (9 + 2*1 - 3) / 2 + 1 = 5
    check_same(ya, b.forward(x));
    check_same(ya, conv2d(x, a.weight, a.bias, 2, 1));  // the functional op with its options
  }
}

TEST_CASE("options: ConvTranspose2d from ConvTranspose2dOptions equals the positional form",
          "[options][nn]") {
  const nn::ConvTranspose2dOptions d(4, 2, 3);
  CHECK(d.stride() == 1);
  CHECK(d.padding() == 0);
  CHECK(d.output_padding() == 0);
  CHECK(d.bias() == true);

  manual_seed(12);
  nn::ConvTranspose2d a(nn::ConvTranspose2dOptions(4, 2, 3).stride(2).padding(1).output_padding(1));
  manual_seed(12);
  nn::ConvTranspose2d b(4, 2, 3, 2, 1, 1);
  CHECK(a.weight.shape() == Shape{4, 2, 3, 3});  // (in, out, k, k) as PyTorch
  CHECK(a.options.output_padding() == 1);
  check_same_module(a, b);
  const Tensor x = input({1, 4, 4, 4}, 2);
  const Tensor ya = a.forward(x);
  CHECK(ya.shape() == Shape{1, 2, 8, 8});  // (4 - 1)*2 - 2*1 + 3 + 1 = 8
  check_same(ya, b.forward(x));
  check_same(ya, conv_transpose2d(x, a.weight, a.bias, 2, 1, 1));
}

TEST_CASE("options: Linear from LinearOptions equals the positional form", "[options][nn]") {
  CHECK(nn::LinearOptions(5, 3).bias() == true);
  for (bool bias : {true, false}) {
    INFO("bias " << bias);
    manual_seed(13);
    nn::Linear a(nn::LinearOptions(5, 3).bias(bias));
    manual_seed(13);
    nn::Linear b(5, 3, bias);
    CHECK(a.weight.shape() == Shape{3, 5});
    CHECK(a.bias.defined() == bias);
    CHECK(a.options.in_features() == 5);
    CHECK(a.options.out_features() == 3);
    check_same_module(a, b);
    const Tensor x = input({4, 5}, 3);
    check_same(a.forward(x), b.forward(x));
  }
}

TEST_CASE("options: BatchNorm2d from BatchNorm2dOptions equals the positional form",
          "[options][nn]") {
  const nn::BatchNorm2dOptions d(4);
  CHECK(d.eps() == 1e-5);
  CHECK(d.momentum() == 0.1);

  nn::BatchNorm2d a(nn::BatchNorm2dOptions(2).eps(1e-3).momentum(0.25));
  nn::BatchNorm2d b(2, 1e-3f, 0.25f);
  CHECK(float(a.options.eps()) == 1e-3f);
  CHECK(float(b.options.eps()) == 1e-3f);
  CHECK(float(a.options.momentum()) == 0.25f);
  check_same_module(a, b);
  // One training step: channel c of x holds c*10 + {0, 1, 2, 3}, mean c*10 + 1.5, so the running
  // mean becomes 0.25 * (c*10 + 1.5) (by hand; momentum 0.25 reaches the op).
  const Tensor x = from_vector({0, 1, 2, 3, 10, 11, 12, 13}, {1, 2, 2, 2});
  check_same(a.forward(x), b.forward(x));
  const std::vector<float> rm = a.running_mean.to_vector();
  CHECK(rm[0] == Approx(0.25 * 1.5).epsilon(1e-6));
  CHECK(rm[1] == Approx(0.25 * 11.5).epsilon(1e-6));
  check_same_module(a, b);
  a.eval();
  b.eval();
  check_same(a.forward(x), b.forward(x));
}

TEST_CASE("options: GroupNorm from GroupNormOptions equals the positional form", "[options][nn]") {
  const nn::GroupNormOptions d(2, 6);
  CHECK(d.eps() == 1e-5);
  CHECK(d.affine() == true);

  for (bool affine : {true, false}) {
    INFO("affine " << affine);
    nn::GroupNorm a(nn::GroupNormOptions(3, 6).eps(1e-2).affine(affine));
    nn::GroupNorm b(3, 6, 1e-2f, affine);
    CHECK(a.weight.defined() == affine);
    CHECK(a.parameters().size() == (affine ? 2u : 0u));
    check_same_module(a, b);
    const Tensor x = input({2, 6, 3, 3}, 4);
    const Tensor ya = a.forward(x);
    check_same(ya, b.forward(x));
    check_same(ya, group_norm(x, 3, a.weight, a.bias, 1e-2f));
  }
}

TEST_CASE("options: MaxPool2d stride defaults to kernel_size, no sentinel", "[options][nn]") {
  CHECK(nn::MaxPool2dOptions(3).stride() == 3);  // libtorch: stride = kernel_size
  CHECK(nn::MaxPool2dOptions(3).padding() == 0);
  CHECK(nn::MaxPool2d(2).options.stride() == 2);
  CHECK(nn::MaxPool2d(2, 1).options.stride() == 1);

  const Tensor x = input({1, 2, 7, 7}, 5);
  nn::MaxPool2d a(nn::MaxPool2dOptions(2).stride(2));
  nn::MaxPool2d b(2);
  const Tensor ya = a.forward(x);
  CHECK(ya.shape() == Shape{1, 2, 3, 3});  // floor((7 - 2) / 2) + 1
  check_same(ya, b.forward(x));
  check_same(ya, max_pool2d(x, 2, 2, 0));

  nn::MaxPool2d c(nn::MaxPool2dOptions(3).stride(1).padding(1));
  nn::MaxPool2d e(3, 1, 1);
  const Tensor yc = c.forward(x);
  CHECK(yc.shape() == Shape{1, 2, 7, 7});
  check_same(yc, e.forward(x));
  // By hand: a 1x1x2x2 input, kernel 2 stride 1 padding 1 -> 3x3, each window's max.
  const Tensor s = from_vector({1, 4, 3, 2}, {1, 1, 2, 2});
  CHECK(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(1).padding(1)).forward(s).to_vector() ==
        std::vector<float>{1, 4, 4, 3, 4, 4, 3, 3, 2});

  // A stride of 0 is an error now (as torch.nn.MaxPool2d), not "the default".
  expect_bad("MaxPool2d", {"stride", "0"}, [] { nn::MaxPool2d(2, 0); });
}

TEST_CASE("options: SGDOptions and AdamOptions chain as libtorch's", "[options][optim]") {
  const optim::SGDOptions s =
      optim::SGDOptions(0.1).momentum(0.9).dampening(0.0).weight_decay(1e-4).nesterov(true);
  CHECK(s.lr() == 0.1);
  CHECK(s.momentum() == 0.9);
  CHECK(s.weight_decay() == 1e-4);
  CHECK(s.nesterov() == true);
  const optim::SGDOptions sd(0.5);
  CHECK(sd.momentum() == 0.0);
  CHECK(sd.dampening() == 0.0);
  CHECK(sd.weight_decay() == 0.0);
  CHECK(sd.nesterov() == false);

  const optim::AdamOptions a =
      optim::AdamOptions(1e-3).betas({0.8, 0.99}).eps(1e-6).weight_decay(0.01);
  CHECK(a.lr() == 1e-3);
  CHECK(std::get<0>(a.betas()) == 0.8);
  CHECK(std::get<1>(a.betas()) == 0.99);
  CHECK(a.eps() == 1e-6);
  CHECK(a.weight_decay() == 0.01);
  const optim::AdamOptions ad;  // libtorch's defaults
  CHECK(ad.lr() == 1e-3);
  CHECK(std::get<0>(ad.betas()) == 0.9);
  CHECK(std::get<1>(ad.betas()) == 0.999);
  CHECK(ad.eps() == 1e-8);
  CHECK(ad.weight_decay() == 0.0);

  // SGD with momentum 0.9, lr 0.1, gradient 0.5 twice (by hand): buf = 0.5 then 0.95;
  // p = 1 - 0.05 = 0.95, then 0.95 - 0.095 = 0.855.
  Tensor p = from_vector({1.0f});
  p.set_requires_grad(true);
  optim::SGD sgd({p}, optim::SGDOptions(0.1).momentum(0.9));
  CHECK(sgd.options().momentum() == 0.9);
  for (int k = 0; k < 2; ++k) {
    p.set_grad(from_vector({0.5f}));
    sgd.step();
  }
  CHECK(p.item() == Approx(0.855).epsilon(1e-6));

  // Adam's first step moves each parameter by lr * g / (|g| + eps) ~ lr (bias-corrected), for
  // the chained options and for the brace form {lr} alike.
  Tensor q = from_vector({1.0f, -2.0f}), r = from_vector({1.0f, -2.0f});
  q.set_requires_grad(true);
  r.set_requires_grad(true);
  optim::Adam adam_chained({q}, optim::AdamOptions(0.01).betas({0.9, 0.999}));
  optim::Adam adam_brace({r}, {0.01});
  for (Tensor* t : {&q, &r}) t->set_grad(from_vector({0.3f, -4.0f}));
  adam_chained.step();
  adam_brace.step();
  const std::vector<float> qv = q.to_vector();
  CHECK(qv[0] == Approx(0.99).epsilon(1e-5));
  CHECK(qv[1] == Approx(-1.99).epsilon(1e-5));
  CHECK(qv == r.to_vector());
  adam_chained.options().lr(0.5);  // a setter on the live optimizer, as libtorch's
  CHECK(adam_chained.options().lr() == 0.5);
}

TEST_CASE("options: bad options name the layer and the value", "[options][errors]") {
  expect_bad("Conv2d", {"stride", "0"}, [] { nn::Conv2d(nn::Conv2dOptions(1, 8, 3).stride(0)); });
  expect_bad("Conv2d", {"padding", "-1"},
             [] { nn::Conv2d(nn::Conv2dOptions(1, 8, 3).padding(-1)); });
  expect_bad("Conv2d", {"kernel", "0"}, [] { nn::Conv2d(nn::Conv2dOptions(1, 8, 0)); });
  expect_bad("Conv2d", {"in", "-2"}, [] { nn::Conv2d(-2, 8, 3); });
  expect_bad("ConvTranspose2d", {"output_padding", "2"}, [] {
    nn::ConvTranspose2d(nn::ConvTranspose2dOptions(1, 2, 3).stride(2).output_padding(2));
  });
  expect_bad("ConvTranspose2d", {"stride", "-3"},
             [] { nn::ConvTranspose2d(nn::ConvTranspose2dOptions(1, 2, 3).stride(-3)); });
  expect_bad("Linear", {"features", "0"}, [] { nn::Linear(nn::LinearOptions(0, 3)); });
  expect_bad("BatchNorm2d", {"num_features", "0"},
             [] { nn::BatchNorm2d(nn::BatchNorm2dOptions(0)); });
  expect_bad("BatchNorm2d", {"momentum", "1.5"},
             [] { nn::BatchNorm2d(nn::BatchNorm2dOptions(4).momentum(1.5)); });
  expect_bad("BatchNorm2d", {"eps", "-1"},
             [] { nn::BatchNorm2d(nn::BatchNorm2dOptions(4).eps(-1)); });
  expect_bad("GroupNorm", {"6", "4", "divisible"},
             [] { nn::GroupNorm(nn::GroupNormOptions(4, 6)); });
  expect_bad("GroupNorm", {"eps", "nan"},
             [] { nn::GroupNorm(nn::GroupNormOptions(2, 6).eps(std::nan(""))); });
  expect_bad("MaxPool2d", {"kernel_size", "0"}, [] { nn::MaxPool2d(nn::MaxPool2dOptions(0)); });
  expect_bad("MaxPool2d", {"padding", "2"},
             [] { nn::MaxPool2d(nn::MaxPool2dOptions(2).padding(2)); });
  expect_bad("MaxPool2d", {"stride", "-1"},
             [] { nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(-1)); });

  Tensor p = zeros({2});
  p.set_requires_grad(true);
  expect_bad("SGD", {"lr", "-0.5"}, [&] { optim::SGD({p}, optim::SGDOptions(-0.5)); });
  expect_bad("SGD", {"momentum", "-0.1"},
             [&] { optim::SGD({p}, optim::SGDOptions(0.1).momentum(-0.1)); });
  expect_bad("SGD", {"nesterov", "momentum 0"},
             [&] { optim::SGD({p}, optim::SGDOptions(0.1).nesterov(true)); });
  expect_bad("Adam", {"betas", "0.9, 1"}, [&] {
    optim::Adam({p}, optim::AdamOptions().betas({0.9, 1.0}));
  });
  expect_bad("Adam", {"eps", "-1"}, [&] { optim::Adam({p}, optim::AdamOptions().eps(-1)); });
  expect_bad("Adam", {"weight_decay", "-2"},
             [&] { optim::Adam({p}, optim::AdamOptions().weight_decay(-2)); });
}
