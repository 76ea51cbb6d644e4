// @file tests/unit/test_errors.cpp
// @brief Bad arguments throw std::invalid_argument whose message starts with the op's name and
//        lists the shapes involved; runtime failures (no CUDA backend) throw ember::Error.
//
// Compiled as plain C++ (no CUDA translation unit in the program), so a CUDA tensor cannot be
// made: the device check is that asking for one throws ember::Error mentioning CUDA.
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include <ember/ember.hpp>

#include "../support/catch.hpp"
#include "../support/op_cases.hpp"

namespace errors_test {

using ember::Shape;
using ember::Tensor;

/// Runs f and returns the std::invalid_argument message, or a marker naming what happened.
std::string invalid_argument_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<wrong exception type, what(): ") + e.what() + ">";
  } catch (...) {
    return "<non-std exception>";
  }
  return "<no exception>";
}

/// f must throw std::invalid_argument whose message starts with `op` and contains every part.
void expect_invalid(const std::string& what, const char* op,
                    std::initializer_list<std::string> parts, const std::function<void()>& f) {
  const std::string msg = invalid_argument_message(f);
  INFO(what << ": expected std::invalid_argument starting with \"" << op << "\", got \"" << msg
            << "\"");
  CHECK(msg.rfind(std::string(op), 0) == 0);
  for (const std::string& p : parts) {
    INFO("message should contain \"" << p << "\"");
    CHECK(msg.find(p) != std::string::npos);
  }
}

Tensor t(const Shape& s, bool requires_grad = false) {
  Tensor x = ember::ones(s);
  if (requires_grad) x.set_requires_grad(true);
  return x;
}

}  // namespace errors_test

using namespace errors_test;

TEST_CASE("errors: conv2d", "[errors][conv2d]") {
  expect_invalid("conv2d with a 3-D input", "conv2d", {"4-D", "[2, 3, 5]", "[4, 3, 3, 3]"}, [] {
    ember::conv2d(t({2, 3, 5}), t({4, 3, 3, 3}));
  });
  expect_invalid("conv2d with a 2-D weight", "conv2d", {"[2, 3, 5, 5]", "[4, 27]"}, [] {
    ember::conv2d(t({2, 3, 5, 5}), t({4, 27}));
  });
  expect_invalid("conv2d channel mismatch", "conv2d", {"channels", "[2, 3, 5, 5]", "[4, 2, 3, 3]"},
                 [] {
                   ember::conv2d(t({2, 3, 5, 5}), t({4, 2, 3, 3}));
                 });
  expect_invalid("conv2d bias of the wrong size", "conv2d",
                 {"bias", "[2, 3, 5, 5]", "[4, 3, 3, 3]", "[3]"}, [] {
                   ember::conv2d(t({2, 3, 5, 5}), t({4, 3, 3, 3}), t({3}));
                 });
  expect_invalid("conv2d 2-D bias", "conv2d", {"bias", "[4, 1]"}, [] {
    ember::conv2d(t({2, 3, 5, 5}), t({4, 3, 3, 3}), t({4, 1}));
  });
  expect_invalid("conv2d kernel bigger than the input", "conv2d",
                 {"kernel", "[1, 1, 2, 2]", "[1, 1, 3, 3]"}, [] {
                   ember::conv2d(t({1, 1, 2, 2}), t({1, 1, 3, 3}));
                 });
  expect_invalid("conv2d rectangular kernel wider than the padded input", "conv2d",
                 {"kernel", "[1, 1, 5, 2]", "[1, 1, 1, 5]"}, [] {
                   ember::conv2d(t({1, 1, 5, 2}), t({1, 1, 1, 5}), Tensor(), 1, 1);
                 });
  expect_invalid("conv2d stride 0", "conv2d", {"stride 0", "[2, 3, 5, 5]", "[4, 3, 3, 3]"}, [] {
    ember::conv2d(t({2, 3, 5, 5}), t({4, 3, 3, 3}), Tensor(), 0, 1);
  });
  expect_invalid("conv2d negative padding", "conv2d", {"padding -1", "[2, 3, 5, 5]"}, [] {
    ember::conv2d(t({2, 3, 5, 5}), t({4, 3, 3, 3}), Tensor(), 1, -1);
  });
  expect_invalid("conv2d undefined weight", "ember", {"undefined"}, [] {
    ember::conv2d(t({2, 3, 5, 5}), Tensor());
  });
}

TEST_CASE("errors: conv_transpose2d", "[errors][conv_transpose2d]") {
  expect_invalid("conv_transpose2d output_padding == stride", "conv_transpose2d",
                 {"output_padding 2", "stride 2", "[2, 3, 4, 4]", "[3, 2, 3, 3]"}, [] {
                   ember::conv_transpose2d(t({2, 3, 4, 4}), t({3, 2, 3, 3}), Tensor(), 2, 1, 2);
                 });
  expect_invalid("conv_transpose2d output_padding > stride", "conv_transpose2d",
                 {"output_padding 3", "[2, 3, 4, 4]"}, [] {
                   ember::conv_transpose2d(t({2, 3, 4, 4}), t({3, 2, 3, 3}), Tensor(), 1, 0, 3);
                 });
  expect_invalid("conv_transpose2d channel mismatch (weight is (C_in, C_out, R, S))",
                 "conv_transpose2d", {"channels", "[2, 3, 4, 4]", "[2, 3, 3, 3]"}, [] {
                   ember::conv_transpose2d(t({2, 3, 4, 4}), t({2, 3, 3, 3}));
                 });
  expect_invalid("conv_transpose2d bias of the wrong size", "conv_transpose2d",
                 {"bias", "[3, 2, 3, 3]", "[3]"}, [] {
                   ember::conv_transpose2d(t({2, 3, 4, 4}), t({3, 2, 3, 3}), t({3}));
                 });
  expect_invalid("conv_transpose2d stride 0", "conv_transpose2d", {"stride 0", "[2, 3, 4, 4]"}, [] {
    ember::conv_transpose2d(t({2, 3, 4, 4}), t({3, 2, 3, 3}), Tensor(), 0);
  });
  expect_invalid("conv_transpose2d padding too large", "conv_transpose2d",
                 {"not positive", "[1, 1, 1, 1]", "[1, 1, 1, 1]"}, [] {
                   ember::conv_transpose2d(t({1, 1, 1, 1}), t({1, 1, 1, 1}), Tensor(), 1, 1);
                 });
}

TEST_CASE("errors: batch_norm2d", "[errors][batch_norm]") {
  expect_invalid("batch_norm2d weight with the wrong channel count", "batch_norm2d",
                 {"3 elements", "[4, 3, 5, 5]", "[2]"}, [] {
                   ember::batch_norm2d(t({4, 3, 5, 5}), t({2}), t({3}), Tensor(), Tensor(), true);
                 });
  expect_invalid("batch_norm2d running_var with the wrong channel count", "batch_norm2d",
                 {"[4, 3, 5, 5]", "[4]"}, [] {
                   ember::batch_norm2d(t({4, 3, 5, 5}), t({3}), t({3}), t({3}), t({4}), false);
                 });
  expect_invalid("batch_norm2d training with one value per channel", "batch_norm2d",
                 {"more than 1 value", "[1, 3, 1, 1]"}, [] {
                   ember::batch_norm2d(t({1, 3, 1, 1}), t({3}), t({3}), t({3}), t({3}), true);
                 });
  expect_invalid("batch_norm2d (N, C) training with N = 1", "batch_norm2d", {"[1, 4]"}, [] {
    ember::batch_norm2d(t({1, 4}), t({4}), t({4}), Tensor(), Tensor(), true);
  });
  expect_invalid("batch_norm2d 3-D input", "batch_norm2d", {"[4, 3, 5]"}, [] {
    ember::batch_norm2d(t({4, 3, 5}), t({3}), t({3}), Tensor(), Tensor(), true);
  });
  expect_invalid("batch_norm2d eval without running statistics", "batch_norm2d", {"running"}, [] {
    ember::batch_norm2d(t({4, 3, 5, 5}), t({3}), t({3}), Tensor(), Tensor(), false);
  });
  // Eval mode with a single value per channel is fine (as PyTorch).
  Tensor y = ember::batch_norm2d(t({1, 3, 1, 1}), t({3}), t({3}), ember::zeros({3}),
                                 ember::ones({3}), false);
  CHECK(y.shape() == Shape{1, 3, 1, 1});
}

TEST_CASE("errors: group_norm, gelu and their modules", "[errors][group_norm][gelu]") {
  expect_invalid("group_norm channels not divisible by num_groups", "group_norm",
                 {"divisible", "channels (6)", "num_groups (4)", "[2, 6, 4, 4]"}, [] {
                   ember::group_norm(t({2, 6, 4, 4}), 4, t({6}), t({6}));
                 });
  expect_invalid("group_norm weight with the wrong channel count", "group_norm",
                 {"6 elements", "[2, 6, 4, 4]", "weight [4]"}, [] {
                   ember::group_norm(t({2, 6, 4, 4}), 3, t({4}), t({6}));
                 });
  expect_invalid("group_norm 2-D bias", "group_norm", {"6 elements", "bias [6, 1]"}, [] {
    ember::group_norm(t({2, 6, 4, 4}), 3, t({6}), t({6, 1}));
  });
  expect_invalid("group_norm 1-D input", "group_norm", {"(N, C, *)", "[6]"},
                 [] { ember::group_norm(t({6}), 3); });
  expect_invalid("group_norm num_groups 0", "group_norm", {"num_groups", "0", "[2, 6, 4, 4]"}, [] {
    ember::group_norm(t({2, 6, 4, 4}), 0);
  });
  expect_invalid("group_norm more groups than channels", "group_norm",
                 {"divisible", "num_groups (12)", "[2, 6, 4, 4]"}, [] {
                   ember::group_norm(t({2, 6, 4, 4}), 12);
                 });
  expect_invalid("group_norm of an undefined tensor", "ember", {"undefined"},
                 [] { ember::group_norm(Tensor(), 1); });
  expect_invalid("gelu with an unknown approximation", "gelu",
                 {"approximate", "\"fast\"", "[2, 3]"}, [] {
                   ember::gelu(t({2, 3}), "fast");
                 });
  expect_invalid("nn::GroupNorm channels not divisible", "GroupNorm",
                 {"divisible", "num_channels (6)", "num_groups (4)"},
                 [] { ember::nn::GroupNorm(4, 6); });
  expect_invalid("nn::GroupNorm zero groups", "GroupNorm", {"positive"},
                 [] { ember::nn::GroupNorm(0, 6); });
  expect_invalid("nn::GELU with an unknown approximation", "GELU", {"approximate", "\"erf\""},
                 [] { ember::nn::GELU("erf"); });
  // affine=False and weight-only are fine (as PyTorch), and a (N, C) input works.
  CHECK(ember::group_norm(t({2, 6, 4, 4}), 3).shape() == Shape{2, 6, 4, 4});
  CHECK(ember::group_norm(t({2, 6, 4, 4}), 3, t({6})).shape() == Shape{2, 6, 4, 4});
  CHECK(ember::group_norm(t({4, 6}), 2, t({6}), t({6})).shape() == Shape{4, 6});
}

TEST_CASE("errors: max_pool2d, relu", "[errors][max_pool2d]") {
  expect_invalid("max_pool2d kernel bigger than the input", "max_pool2d",
                 {"kernel 3", "[1, 1, 2, 2]"}, [] {
                   ember::max_pool2d(t({1, 1, 2, 2}), 3);
                 });
  expect_invalid("max_pool2d padding above kernel / 2", "max_pool2d", {"padding 2", "[1, 1, 8, 8]"},
                 [] {
                   ember::max_pool2d(t({1, 1, 8, 8}), 3, 1, 2);
                 });
  expect_invalid("max_pool2d kernel 0", "max_pool2d", {"kernel 0", "[1, 1, 8, 8]"}, [] {
    ember::max_pool2d(t({1, 1, 8, 8}), 0, 1);
  });
  expect_invalid("max_pool2d stride 0 (no sentinel: omit the stride for stride = kernel)",
                 "max_pool2d", {"stride 0", "[1, 1, 8, 8]"},
                 [] { ember::max_pool2d(t({1, 1, 8, 8}), 2, 0); });
  expect_invalid("max_pool2d 3-D input", "max_pool2d", {"4-D", "[1, 8, 8]"}, [] {
    ember::max_pool2d(t({1, 8, 8}), 2);
  });
  expect_invalid("relu of an undefined tensor", "ember", {"undefined"},
                 [] { ember::relu(Tensor()); });
}

TEST_CASE("errors: linear", "[errors][linear]") {
  expect_invalid("linear feature mismatch", "linear", {"in_features", "[5, 7]", "[3, 6]"}, [] {
    ember::linear(t({5, 7}), t({3, 6}));
  });
  expect_invalid("linear 3-D weight", "linear", {"[5, 7]", "[3, 7, 1]"}, [] {
    ember::linear(t({5, 7}), t({3, 7, 1}));
  });
  expect_invalid("linear bias of the wrong size", "linear", {"bias", "[5, 7]", "[3, 7]", "[4]"},
                 [] {
                   ember::linear(t({5, 7}), t({3, 7}), t({4}));
                 });
}

TEST_CASE("errors: cat", "[errors][cat]") {
  expect_invalid("cat of an empty list", "cat", {"at least one"}, [] { ember::cat({}, 0); });
  expect_invalid("cat rank mismatch", "cat", {"rank", "[2, 3]", "[2, 3, 1]"}, [] {
    ember::cat({t({2, 3}), t({2, 3, 1})}, 0);
  });
  expect_invalid("cat size mismatch outside dim", "cat", {"[2, 3]", "[3, 4]"}, [] {
    ember::cat({t({2, 3}), t({3, 4})}, 0);
  });
  expect_invalid("cat size mismatch, 3 inputs along dim 1", "cat",
                 {"[2, 3, 4, 5]", "[2, 1, 4, 5]", "[2, 2, 3, 5]"}, [] {
                   ember::cat({t({2, 3, 4, 5}), t({2, 1, 4, 5}), t({2, 2, 3, 5})}, 1);
                 });
  expect_invalid("cat dim out of range", "cat", {"dim 2", "[2, 3]"}, [] {
    ember::cat({t({2, 3}), t({2, 3})}, 2);
  });
  expect_invalid("cat with an undefined tensor", "cat", {"undefined", "[2, 3]"}, [] {
    ember::cat({t({2, 3}), Tensor()}, 0);
  });
}

TEST_CASE("errors: elementwise and losses", "[errors][elementwise]") {
  expect_invalid("add shape mismatch", "add", {"[2, 3]", "[3, 2]"}, [] {
    ember::add(t({2, 3}), t({3, 2}));
  });
  expect_invalid("add: shapes that do not broadcast", "add", {"[2, 3]", "[2]", "dimension 1"},
                 [] { (void)(t({2, 3}) + t({2})); });
  expect_invalid("sub shape mismatch", "sub", {"[2, 3]", "[2, 3, 1]"}, [] {
    (void)(t({2, 3}) - t({2, 3, 1}));
  });
  expect_invalid("mul shape mismatch", "mul", {"[4]", "[5]"}, [] { ember::mul(t({4}), t({5})); });
  expect_invalid("mse_loss shape mismatch", "mse_loss", {"[4, 3]", "[4, 1]"}, [] {
    ember::mse_loss(t({4, 3}), t({4, 1}));
  });
}

TEST_CASE("errors: broadcasting ops and reductions over dims", "[errors][broadcast]") {
  expect_invalid("div: shapes that do not broadcast", "div", {"[4, 3, 1, 1]", "[2, 3, 5, 5]"},
                 [] { (void)(t({4, 3, 1, 1}) / t({2, 3, 5, 5})); });
  expect_invalid("maximum: shapes that do not broadcast", "maximum", {"[3]", "[4]"},
                 [] { ember::maximum(t({3}), t({4})); });
  expect_invalid("minimum: shapes that do not broadcast", "minimum", {"[2, 3]", "[3, 2]"},
                 [] { ember::minimum(t({2, 3}), t({3, 2})); });
  expect_invalid("where: condition does not broadcast", "where", {"condition", "[5]", "[2, 3]"},
                 [] { ember::where(t({5}), t({2, 3}), t({2, 3})); });
  expect_invalid("where: a and b do not broadcast", "where", {"[2]", "[3]"},
                 [] { ember::where(t({1}), t({2}), t({3})); });
  expect_invalid("expand of a non-singleton dim", "expand", {"[2, 3]", "[2, 4]"},
                 [] { ember::expand(t({2, 3}), {2, 4}); });
  expect_invalid("expand to fewer dims", "expand", {"[2, 3]", "[3]"},
                 [] { ember::expand(t({2, 3}), {3}); });
  expect_invalid("expand with a negative size", "expand", {"[-2, 3]"},
                 [] { ember::expand(t({1, 3}), {-2, 3}); });
  expect_invalid("expand with -1 for a new dim", "expand", {"-1", "[-1, 3]"},
                 [] { ember::expand(t({3}), {-1, 3}); });
  expect_invalid("sum: dim out of range", "sum", {"dimension 2", "[2, 3]"},
                 [] { ember::sum(t({2, 3}), 2); });
  expect_invalid("mean: dim out of range", "mean", {"dimension -3", "[2, 3]"},
                 [] { ember::mean(t({2, 3}), -3); });
  expect_invalid("amax: a dim twice", "amax", {"more than once", "[2, 3]"},
                 [] { ember::amax(t({2, 3}), {1, -1}); });
  expect_invalid("var: dim out of range", "var", {"dimension 5", "[4]"},
                 [] { ember::var(t({4}), 5); });
  expect_invalid("argmax: dim out of range", "argmax", {"dimension 1", "[4]"},
                 [] { ember::argmax(t({4}), 1); });
  expect_invalid("clamp without bounds", "clamp", {"[2]"},
                 [] { ember::clamp(t({2}), std::nullopt, std::nullopt); });
}

TEST_CASE("errors: views", "[errors][view]") {
  expect_invalid("reshape to a wrong element count", "reshape", {"[2, 3]", "[4, 2]"}, [] {
    ember::reshape(t({2, 3}), {4, 2});
  });
  expect_invalid("reshape with -1 that does not divide", "reshape", {"[2, 3]", "[4, -1]"}, [] {
    ember::reshape(t({2, 3}), {4, -1});
  });
  expect_invalid("reshape with two -1", "reshape", {"[-1, -1]"}, [] {
    t({2, 3}).reshape({-1, -1});
  });
  expect_invalid("reshape with a 0 size", "reshape", {"[0, 6]", "[2, 3]"}, [] {
    t({2, 3}).reshape({0, 6});
  });
  expect_invalid("flatten with start > end", "flatten", {"[2, 3, 4]"}, [] {
    t({2, 3, 4}).flatten(2, 1);
  });
  expect_invalid("unflatten sizes that do not multiply", "unflatten", {"[2, 2]", "[2, 6]"}, [] {
    t({2, 6}).unflatten(1, {2, 2});
  });
  expect_invalid("unflatten dim out of range", "unflatten", {"dim 2", "[2, 6]"}, [] {
    t({2, 6}).unflatten(2, {2, 3});
  });
}

TEST_CASE("errors: factories and values", "[errors][tensor]") {
  // Factories go through Tensor::empty, whose message names the factory and the requested shape.
  expect_invalid("zeros with a zero-size dimension", "zeros", {"positive", "[2, 0]"}, [] {
    ember::zeros({2, 0});
  });
  expect_invalid("zeros with a negative dimension", "zeros", {"positive", "[-1]"},
                 [] { ember::zeros({-1}); });
  expect_invalid("ones with a negative dimension", "ones", {"[3, -2]"}, [] {
    ember::ones({3, -2});
  });
  expect_invalid("full with a zero-size dimension", "full", {"[0]"},
                 [] { ember::full({0}, 1.0f); });
  expect_invalid("from_vector count mismatch", "from_vector", {"5 values", "[2, 3]"}, [] {
    ember::from_vector({1, 2, 3, 4, 5}, {2, 3});
  });
  expect_invalid("from_vector of nothing", "from_vector", {"[0]"},
                 [] { ember::from_vector(std::vector<float>{}); });
  expect_invalid("item() on a multi-element tensor", "item", {"[2, 3]"}, [] {
    (void)t({2, 3}).item();
  });
  expect_invalid("size() out of range", "size", {"dimension 3", "[2, 3]"}, [] {
    (void)t({2, 3}).size(3);
  });
  expect_invalid("set_requires_grad(false) on a non-leaf", "set_requires_grad", {"leaf"}, [] {
    Tensor x = t({2}, true);
    Tensor y = x * 2.0f;
    y.set_requires_grad(false);
  });
  // Rank 0 and one-element tensors are fine.
  CHECK(ember::scalar_tensor(3.0f).item() == 3.0f);
  CHECK(t({1, 1, 1}).item() == 1.0f);
}

TEST_CASE("errors: backward", "[errors][autograd]") {
  expect_invalid("backward of a non-scalar without a gradient", "backward",
                 {"non-scalar", "[2, 3]"}, [] {
                   Tensor x = t({2, 3}, true);
                   (x * 2.0f).backward();
                 });
  expect_invalid("backward of a tensor that does not require grad", "backward", {"[2, 3]"}, [] {
    t({2, 3}).backward(ember::ones({2, 3}));
  });
  expect_invalid("backward with a gradient of the wrong shape", "backward", {"[3, 2]", "[2, 3]"},
                 [] {
                   Tensor x = t({2, 3}, true);
                   (x * 2.0f).backward(ember::ones({3, 2}));
                 });
  // A second backward through a released graph is a runtime error, not a bad argument.
  Tensor x = t({2, 3}, true);
  Tensor L = ember::sum(x * x);
  L.backward();
  REQUIRE_THROWS_AS(L.backward(), ember::Error);
}

TEST_CASE("errors: optimiser options", "[errors][optim]") {
  expect_invalid("Adam beta2 = 1", "Adam", {"betas"}, [] {
    ember::optim::AdamOptions o;
    o.betas({0.9, 1.0});
    ember::optim::Adam opt({t({2}, true)}, o);
  });
  expect_invalid("Adam negative lr", "Adam", {"lr"}, [] {
    ember::optim::AdamOptions o;
    o.lr(-1.0);
    ember::optim::Adam opt({t({2}, true)}, o);
  });
  expect_invalid("SGD nesterov without momentum", "SGD", {"nesterov"}, [] {
    ember::optim::SGDOptions o;
    o.nesterov(true);
    ember::optim::SGD opt({t({2}, true)}, o);
  });
  expect_invalid("optimiser over a non-leaf", "Optimizer", {"parameter 0"}, [] {
    Tensor x = t({2}, true);
    ember::optim::SGD opt({x * 2.0f}, {});
  });
}

TEST_CASE("errors: every op of the op table refuses an undefined required input",
          "[errors][ops]") {
  // The generic check of tests/support/op_cases.hpp's entries: each input the op needs (not
  // marked optional), left undefined, gives std::invalid_argument naming the op or the undefined
  // tensor, never a crash. (Zero-element tensors, the other generic refusal in
  // ops/common.hpp check_tensors, cannot be made: every factory refuses a 0 size, see
  // "errors: factories and values".)
  size_t checked = 0;
  for (const ember_test::OpCase* c : ember_test::op_cases(ember_test::kGradcheck)) {
    for (size_t i = 0; i < c->inputs.size(); ++i) {
      if (!c->inputs[i].present || c->inputs[i].optional) continue;
      std::vector<Tensor> ins = ember_test::make_inputs(*c);
      ins[i] = Tensor();
      const std::string msg = invalid_argument_message([&] { (void)c->fn(ins); });
      INFO(c->label << " with " << c->inputs[i].name << " undefined: got \"" << msg << "\"");
      CHECK((msg.rfind(c->op, 0) == 0 || msg.find("undefined") != std::string::npos));
      CHECK(msg.rfind("<", 0) != 0);
      ++checked;
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("errors: CUDA requested in a CPU-only program", "[errors][device]") {
  if (ember::cuda::is_compiled()) {
    // This program has a CUDA backend: the CPU-only refusal is not testable here.
    return;
  }
  CHECK(!ember::cuda::is_available());
  auto expect_cuda_error = [](const char* what, const std::function<void()>& f) {
    std::string msg = "<no exception>";
    try {
      f();
    } catch (const ember::Error& e) {
      msg = e.what();
    } catch (const std::exception& e) {
      msg = std::string("<wrong exception type, what(): ") + e.what() + ">";
    }
    INFO(what << ": expected ember::Error mentioning CUDA, got \"" << msg << "\"");
    CHECK(msg.find("CUDA") != std::string::npos);
    CHECK(msg.rfind("<", 0) != 0);
  };
  expect_cuda_error("Tensor::to(cuda)", [] { (void)t({2, 3}).to(ember::Device::cuda); });
  expect_cuda_error("zeros on cuda", [] { (void)ember::zeros({2, 3}, ember::Device::cuda); });
  expect_cuda_error("from_vector on cuda", [] {
    (void)ember::from_vector({1.0f, 2.0f}, ember::Device::cuda);
  });
  expect_cuda_error("move_to_(cuda)", [] {
    Tensor x = t({2});
    x.move_to_(ember::Device::cuda);
  });
  // Nothing half-done: the tensor is still usable on the CPU afterwards.
  Tensor x = t({2});
  try {
    x.move_to_(ember::Device::cuda);
  } catch (const ember::Error&) {
  }
  CHECK(x.device() == ember::Device::cpu);
  CHECK(x.to_vector() == std::vector<float>{1.0f, 1.0f});
}

// softmax family
TEST_CASE("errors: softmax, log_softmax, nll_loss, cross_entropy", "[errors][softmax][cross_entropy]") {
  expect_invalid("softmax dim out of range", "softmax", {"dim 2", "[2, 3]"},
                 [] { (void)ember::softmax(t({2, 3}), 2); });
  expect_invalid("log_softmax dim out of range", "log_softmax", {"dim -3", "[2, 3]"},
                 [] { (void)ember::log_softmax(t({2, 3}), -3); });
  expect_invalid("softmax of an undefined tensor", "softmax", {"undefined"},
                 [] { (void)ember::softmax(Tensor(), 0); });
  const Tensor x = t({4, 3});
  expect_invalid("cross_entropy target shape", "cross_entropy",
                 {"target shape [3]", "input shape [4, 3]", "expected target [4]"},
                 [&] { (void)ember::cross_entropy(x, ember::zeros({3})); });
  expect_invalid("cross_entropy target rank", "cross_entropy", {"[4, 1]", "[4, 3]"},
                 [&] { (void)ember::cross_entropy(x, ember::zeros({4, 1})); });
  expect_invalid("nll_loss 1-D input needs a 0-dim target", "nll_loss", {"[1]", "[3]"},
                 [] { (void)ember::nll_loss(t({3}), ember::zeros({1})); });
  expect_invalid("cross_entropy target out of range", "cross_entropy",
                 {"target 3", "index 2", "out of bounds [0, 3)", "ignore_index -100", "[4, 3]"},
                 [&] { (void)ember::cross_entropy(x, ember::from_vector({0, 1, 3, 2}, {4})); });
  expect_invalid("nll_loss negative target", "nll_loss", {"target -1", "out of bounds"},
                 [&] { (void)ember::nll_loss(x, ember::from_vector({0, -1, 1, 2}, {4})); });
  expect_invalid("cross_entropy non-integer target", "cross_entropy",
                 {"target 1.5", "index 1", "not an integer", "float32", "[4, 3]"},
                 [&] { (void)ember::cross_entropy(x, ember::from_vector({0, 1.5f, 1, 2}, {4})); });
  expect_invalid("cross_entropy NaN target", "cross_entropy", {"not an integer"}, [&] {
    (void)ember::cross_entropy(x, ember::from_vector({0, 1, std::nanf(""), 2}, {4}));
  });
  // -100 is fine by default but out of range once ignore_index is another value.
  expect_invalid("cross_entropy -100 with another ignore_index", "cross_entropy",
                 {"target -100", "ignore_index 1"}, [&] {
                   (void)ember::cross_entropy(x, ember::from_vector({0, -100, 1, 2}, {4}),
                                              ember::CrossEntropyOptions().ignore_index(1));
                 });
  expect_invalid("label_smoothing above 1", "cross_entropy", {"label_smoothing", "1.5"}, [&] {
    (void)ember::cross_entropy(x, ember::zeros({4}),
                               ember::CrossEntropyOptions().label_smoothing(1.5));
  });
  expect_invalid("label_smoothing below 0", "cross_entropy", {"label_smoothing", "-0.1"}, [&] {
    (void)ember::cross_entropy(x, ember::zeros({4}), ember::Reduction::mean, -100, -0.1);
  });
  expect_invalid("CrossEntropyLoss label_smoothing", "CrossEntropyLoss", {"label_smoothing"}, [] {
    ember::nn::CrossEntropyLoss l(ember::CrossEntropyOptions().label_smoothing(2.0));
  });
  expect_invalid("cross_entropy undefined target", "cross_entropy", {"target is undefined"},
                 [&] { (void)ember::cross_entropy(x, Tensor()); });
  expect_invalid("cross_entropy probability targets with ignore_index", "cross_entropy",
                 {"ignore_index is not supported", "class-probability", "[4, 3]", "got ignore_index 1"},
                 [&] {
                   (void)ember::cross_entropy(x, t({4, 3}),
                                              ember::CrossEntropyOptions().ignore_index(1));
                 });
}

// ---- layout and indexing (#12 item 5) ----
TEST_CASE("errors: layout and indexing ops name the op and the shapes", "[errors][layout]") {
  const Tensor x = t({2, 3, 4});
  expect_invalid("transpose dim out of range", "transpose", {"(0, 3)", "[2, 3, 4]"},
                 [&] { ember::transpose(x, 0, 3); });
  expect_invalid("permute not a permutation", "permute", {"[0, 0, 1]", "not a permutation",
                 "[2, 3, 4]"}, [&] { ember::permute(x, {0, 0, 1}); });
  expect_invalid("permute wrong length", "permute", {"[1, 0]", "[2, 3, 4]"},
                 [&] { ember::permute(x, {1, 0}); });
  expect_invalid("permute out of range", "permute", {"[0, 1, 3]"},
                 [&] { ember::permute(x, {0, 1, 3}); });
  expect_invalid("permute rank 9", "permute", {"at most 8"},
                 [&] { ember::permute(t({1, 1, 1, 1, 1, 1, 1, 1, 1}), {0, 1, 2, 3, 4, 5, 6, 7, 8}); });
  expect_invalid("narrow dim out of range", "narrow", {"dim 3", "[2, 3, 4]"},
                 [&] { ember::narrow(x, 3, 0, 1); });
  expect_invalid("narrow past the end", "narrow", {"exceeds", "size 4", "[2, 3, 4]"},
                 [&] { ember::narrow(x, 2, 2, 3); });
  expect_invalid("narrow start out of range", "narrow", {"start -5", "[2, 3, 4]"},
                 [&] { ember::narrow(x, 2, -5, 1); });
  expect_invalid("narrow negative length", "narrow", {"length -1", "[2, 3, 4]"},
                 [&] { ember::narrow(x, 2, 0, -1); });
  expect_invalid("narrow length 0", "narrow", {"empty", "[2, 3, 4]"},
                 [&] { ember::narrow(x, 2, 1, 0); });
  expect_invalid("narrow of a 0-dim tensor", "narrow", {"0-dim"},
                 [&] { ember::narrow(t({}), 0, 0, 1); });
  expect_invalid("select index out of range", "select", {"index 3", "size 3", "[2, 3, 4]"},
                 [&] { ember::select(x, 1, 3); });
  expect_invalid("select index -4", "select", {"index -4", "[2, 3, 4]"},
                 [&] { ember::select(x, 1, -4); });
  expect_invalid("chunk 0 chunks", "chunk", {"chunks 0", "[2, 3, 4]"},
                 [&] { ember::chunk(x, 0, 1); });
  expect_invalid("chunk dim out of range", "chunk", {"dim -4", "[2, 3, 4]"},
                 [&] { ember::chunk(x, 2, -4); });
  expect_invalid("split size 0", "split", {"split_size 0", "[2, 3, 4]"},
                 [&] { ember::split(x, 0, 1); });
  expect_invalid("split sizes not summing", "split", {"[1, 1]", "sum to 2", "[2, 3, 4]"},
                 [&] { ember::split(x, std::vector<int64_t>{1, 1}, 1); });
  expect_invalid("split negative size", "split", {"[4, -1]", "positive"},
                 [&] { ember::split(x, std::vector<int64_t>{4, -1}, 1); });
  expect_invalid("stack of nothing", "stack", {"at least one"},
                 [&] { ember::stack({}, 0); });
  expect_invalid("stack of differing shapes", "stack", {"equal shape", "[2, 3, 4]", "[2, 3, 5]"},
                 [&] { ember::stack({x, t({2, 3, 5})}, 0); });
  expect_invalid("stack dim out of range", "stack", {"dim 4", "[2, 3, 4]"},
                 [&] { ember::stack({x, x}, 4); });
  expect_invalid("pixel_shuffle channels", "pixel_shuffle", {"not divisible", "[1, 6, 2, 2]", "4"},
                 [&] { ember::pixel_shuffle(t({1, 6, 2, 2}), 2); });
  expect_invalid("pixel_shuffle rank 2", "pixel_shuffle", {"at least 3 dims", "[4, 4]"},
                 [&] { ember::pixel_shuffle(t({4, 4}), 2); });
  expect_invalid("pixel_shuffle factor 0", "pixel_shuffle", {"upscale_factor 0"},
                 [&] { ember::pixel_shuffle(t({1, 4, 2, 2}), 0); });
  expect_invalid("pixel_unshuffle height/width", "pixel_unshuffle",
                 {"divisible", "[1, 1, 4, 5]", "downscale_factor 2"},
                 [&] { ember::pixel_unshuffle(t({1, 1, 4, 5}), 2); });
  expect_invalid("arange step 0", "arange", {"step must be nonzero"},
                 [] { ember::arange(0.0, 1.0, 0.0); });
  expect_invalid("arange wrong sign", "arange", {"inconsistent with step sign"},
                 [] { ember::arange(0.0, 1.0, -0.5); });
  expect_invalid("arange empty", "arange", {"empty"}, [] { ember::arange(0.0); });
  expect_invalid("linspace negative steps", "linspace", {"non-negative", "-1"},
                 [] { ember::linspace(0.0, 1.0, -1); });
  expect_invalid("linspace 0 steps", "linspace", {"empty"}, [] { ember::linspace(0.0, 1.0, 0); });
  const Tensor idx = ember::from_vector({0, 2, 1}, Shape{3});
  expect_invalid("one_hot index too large", "one_hot", {"smaller than num_classes 2", "[3]"},
                 [&] { ember::one_hot(idx, 2); });
  expect_invalid("one_hot negative index", "one_hot", {"non-negative", "-1", "[2]"},
                 [] { ember::one_hot(ember::from_vector({1, -1}, Shape{2})); });
  expect_invalid("one_hot non-integer index", "one_hot", {"exact integers", "0.5", "[2]"},
                 [] { ember::one_hot(ember::from_vector({1, 0.5f}, Shape{2})); });
  expect_invalid("one_hot num_classes -2", "one_hot", {"num_classes -2"},
                 [&] { ember::one_hot(idx, -2); });
}

// ---- layers and training (#12 item 6) ----
TEST_CASE("errors: dropout, embedding, schedulers, clip_grad_norm_, optimizers",
          "[errors][dropout][embedding][lr_scheduler][clip_grad_norm][adamw]") {
  ember::Generator g(1);
  expect_invalid("dropout p > 1", "dropout", {"between 0 and 1", "1.5"},
                 [&] { ember::dropout(t({2, 3}), 1.5, true, g); });
  expect_invalid("dropout p < 0", "dropout", {"between 0 and 1", "-0.1"},
                 [&] { ember::dropout(t({2, 3}), -0.1, false, g); });
  expect_invalid("nn::Dropout p > 1", "Dropout", {"between 0 and 1"},
                 [] { ember::nn::Dropout(2.0); });
  expect_invalid("embedding out of range", "embedding",
                 {"index 5", "position 1", "num_embeddings 5", "indices [3]", "weight [5, 2]"},
                 [] { ember::embedding(ember::from_vector({0, 5, 1}), t({5, 2})); });
  expect_invalid("embedding negative index", "embedding", {"index -1", "position 0"},
                 [] { ember::embedding(ember::from_vector({-1}), t({5, 2})); });
  expect_invalid("embedding non-integer index", "embedding",
                 {"integers", "1.5", "position 2", "indices [2, 2]"},
                 [] { ember::embedding(ember::from_vector({0, 1, 1.5f, 2}, {2, 2}), t({5, 2})); });
  expect_invalid("embedding NaN index", "embedding", {"integers", "position 0"}, [] {
    ember::embedding(ember::from_vector({std::nanf("")}), t({5, 2}));
  });
  expect_invalid("embedding 1-D weight", "embedding", {"2-D", "weight [5]"},
                 [] { ember::embedding(ember::from_vector({0}), t({5})); });
  expect_invalid("embedding padding_idx out of range", "embedding", {"padding_idx 5"},
                 [] { ember::embedding(ember::from_vector({0}), t({5, 2}), 5); });
  expect_invalid("nn::Embedding zero size", "Embedding", {"> 0"},
                 [] { ember::nn::Embedding(0, 3); });

  Tensor p = t({2}, true);
  ember::optim::SGD sgd({p}, ember::optim::SGDOptions(0.1));
  expect_invalid("StepLR step_size 0", "StepLR", {"step_size", "0"},
                 [&] { ember::optim::StepLR(sgd, 0); });
  expect_invalid("CosineAnnealingLR T_max 0", "CosineAnnealingLR", {"T_max"},
                 [&] { ember::optim::CosineAnnealingLR(sgd, 0); });
  expect_invalid("LinearLR start_factor > 1", "LinearLR", {"start_factor", "1.5"},
                 [&] { ember::optim::LinearLR(sgd, 1.5); });
  expect_invalid("SequentialLR milestone count", "SequentialLR", {"milestone", "2 schedulers"}, [&] {
    ember::optim::StepLR a(sgd, 3), b(sgd, 4);
    ember::optim::SequentialLR(sgd, {&a, &b}, {});
  });
  expect_invalid("AdamW negative weight_decay", "AdamW", {"weight_decay", "-1"}, [&] {
    ember::optim::AdamW({p}, ember::optim::AdamWOptions().weight_decay(-1));
  });
  expect_invalid("set_lr negative", "SGD", {"lr", "-1"}, [&] { sgd.set_lr(-1); });
  expect_invalid("clip_grad_norm_ norm_type 3", "clip_grad_norm_", {"norm_type", "3"},
                 [&] { ember::nn::utils::clip_grad_norm_({p}, 1.0, 3.0); });
  p.set_grad(ember::from_vector({std::nanf(""), 1.0f}));
  expect_invalid("clip_grad_norm_ non-finite", "clip_grad_norm_", {"non-finite"},
                 [&] { ember::nn::utils::clip_grad_norm_({p}, 1.0, 2.0, true); });
}
