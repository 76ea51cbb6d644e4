// @file tests/cuda/test_cuda_ops.cu
// @brief Every op through the public API and autograd on CUDA against the same op on the CPU,
//        at the core tests' awkward shapes plus large ones (the op table's CUDA entries,
//        tests/support/op_cases.hpp), and the refusal of inputs on different devices; the seed U-Net's training step on
//        CUDA against the PyTorch fixture; determinism, no cudaMalloc in a steady loop, and
//        recovery from an out-of-memory request. Without a GPU every case reports a skip.
#include <ember/ember.hpp>
#include <ember/models/unet.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include "../support/fixture.hpp"
#include "../support/op_cases.hpp"
#include "../support/unet_step_check.hpp"
#include "cuda_test_util.hpp"

using ember::Device;
using ember::Shape;
using ember::Tensor;

namespace cuda_ops_test {

void expect_close(const std::string& what, const Tensor& got, const Tensor& want, double atol,
                  double rtol) {
  REQUIRE(got.shape() == want.shape());
  std::vector<float> g = got.to_vector(), w = want.to_vector();
  double max_abs = 0;
  for (float v : w) max_abs = std::max(max_abs, double(std::fabs(v)));
  auto r = ember_test::compare(what, g.data(), w.data(), g.size(), atol * (1.0 + max_abs), rtol);
  INFO(r.message);
  CHECK(r.ok);
}

/// One op-table entry (tests/support/op_cases.hpp) on CPU and CUDA copies of the same inputs:
/// backpropagates the same random upstream gradient, then compares the output, the gradient of
/// every differentiable input and the final value of every other one (running statistics), each
/// with its tolerance, whose atol is scaled by (1 + the largest CPU magnitude of that tensor).
void check_case(const ember_test::OpCase& c) {
  INFO(c.label << " with inputs " << ember_test::describe_inputs(c));
  const std::vector<Tensor> cpu_in = ember_test::make_inputs(c);
  std::vector<Tensor> gpu_in;
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    if (!cpu_in[i].defined()) {
      gpu_in.emplace_back();
      continue;
    }
    Tensor g = cpu_in[i].detach().to(Device::cuda);
    if (c.inputs[i].grad) g.set_requires_grad();
    gpu_in.push_back(g);
  }
  Tensor yc = c.fn(cpu_in), yg = c.fn(gpu_in);
  REQUIRE(yg.device() == Device::cuda);
  ember::Generator gen(c.seed + 1);
  Tensor gy = ember::randn(yc.shape(), gen);
  REQUIRE(yc.requires_grad() == yg.requires_grad());
  if (yc.requires_grad()) {  // ops without a gradient (argmax) compare the output alone
    yc.backward(gy);
    yg.backward(gy.to(Device::cuda));
  }
  expect_close(c.label + " output " + ember::to_string(yc.shape()), yg, yc, c.tol.atol, c.tol.rtol);
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    if (!cpu_in[i].defined()) continue;
    const ember_test::Input& in = c.inputs[i];
    const ember_test::Tol tol = in.tol ? *in.tol : c.tol;
    const std::string what = c.label + (in.grad ? " grad of " : " final value of ") + in.name +
                             " " + ember::to_string(in.shape);
    if (in.grad)
      expect_close(what, gpu_in[i].grad(), cpu_in[i].grad(), tol.atol, tol.rtol);
    else
      expect_close(what, gpu_in[i], cpu_in[i], tol.atol, tol.rtol);
  }
}

/// Every CUDA entry of the group (the group must have at least one).
void check_group(const std::string& group) {
  const auto cases = ember_test::op_cases(ember_test::kCuda, group);
  REQUIRE(!cases.empty());
  for (const ember_test::OpCase* c : cases) check_case(*c);
}

/// The groups that have a TEST_CASE below.
const char* const kCudaGroups[] = {"conv2d",     "conv2d large", "conv_transpose2d",
                                   "batch_norm", "small",        "gelu group_norm",
                                   "pointwise",  "broadcast",    "reduce_dims",
                                   // softmax family
                                   "softmax",    "cross_entropy",
                                   "layout",  // layout and indexing (#12 item 5)
                                   // layers and training
                                   "dropout",    "embedding"};

}  // namespace cuda_ops_test

TEST_CASE("cuda ops: every CUDA entry of the op table has a test case", "[cuda][ops]") {
  using cuda_ops_test::kCudaGroups;
  for (const ember_test::OpCase* c : ember_test::op_cases(ember_test::kCuda)) {
    INFO(c->label << " is in group \"" << c->group << "\"");
    CHECK(std::find(std::begin(kCudaGroups), std::end(kCudaGroups), c->group) !=
          std::end(kCudaGroups));
  }
}

TEST_CASE("cuda ops: conv2d matches the CPU", "[cuda][ops][conv2d]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("conv2d");
}

TEST_CASE("cuda ops: conv2d large shapes", "[cuda][ops][conv2d][large]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("conv2d large");
}

TEST_CASE("cuda ops: conv_transpose2d matches the CPU", "[cuda][ops][conv_transpose2d]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("conv_transpose2d");
}

TEST_CASE("cuda ops: batch_norm2d train and eval match the CPU", "[cuda][ops][batch_norm]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("batch_norm");
}

TEST_CASE("cuda ops: relu, max_pool2d, linear, cat, views, elementwise, losses",
          "[cuda][ops][small]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("small");
}

TEST_CASE("cuda ops: pointwise ops match the CPU", "[cuda][ops][pointwise]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("pointwise");
}

TEST_CASE("cuda ops: broadcasting binary ops, where and expand match the CPU",
          "[cuda][ops][broadcast]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("broadcast");
}

TEST_CASE("cuda ops: sum, mean, amax, var and argmax over dims match the CPU",
          "[cuda][ops][reduce_dims]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("reduce_dims");
}

// layout and indexing (#12 item 5)
TEST_CASE("cuda ops: layout ops match the CPU", "[cuda][ops][layout]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("layout");
}

TEST_CASE("cuda ops: one_hot, arange and linspace on the GPU equal the CPU's",
          "[cuda][ops][layout]") {
  EMBER_SKIP_IF_NO_GPU();
  const Tensor idx = ember::from_vector({3, 0, 2, 2, 5, 1}, Shape{2, 3});
  const Tensor cpu = ember::one_hot(idx), gpu = ember::one_hot(idx.to(Device::cuda));
  CHECK(gpu.device() == Device::cuda);
  CHECK(gpu.shape() == Shape{2, 3, 6});
  CHECK(gpu.to_vector() == cpu.to_vector());
  CHECK(ember::one_hot(idx.to(Device::cuda), 9).to_vector() == ember::one_hot(idx, 9).to_vector());
  CHECK_THROWS(ember::one_hot(ember::from_vector({1.5f}).to(Device::cuda)));
  CHECK(ember::arange(-1.0, 2.0, 0.3, Device::cuda).to_vector() ==
        ember::arange(-1.0, 2.0, 0.3).to_vector());
  CHECK(ember::linspace(-1.0, 2.5, 37, Device::cuda).to_vector() ==
        ember::linspace(-1.0, 2.5, 37).to_vector());
}

TEST_CASE("cuda ops: gelu and group_norm match the CPU", "[cuda][ops][gelu][group_norm]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("gelu group_norm");
  using cuda_ops_test::expect_close;
  // nn::GroupNorm and nn::GELU move to the device with their parameters.
  ember::nn::GroupNorm gn(2, 4);
  ember::nn::GELU act;
  ember::Generator gen(3);
  Tensor x = ember::randn({2, 4, 3, 3}, gen);
  Tensor yc = act.forward(gn.forward(x));
  gn.to(Device::cuda);
  Tensor yg = act.forward(gn.forward(x.to(Device::cuda)));
  CHECK(yg.is_cuda());
  expect_close("nn::GELU(nn::GroupNorm) on cuda", yg, yc, 1e-5, 1e-4);
  // A weight left on the CPU is refused with the devices named.
  bool threw = false;
  try {
    (void)ember::group_norm(x.to(Device::cuda), 2, ember::ones({4}), ember::zeros({4}));
  } catch (const std::invalid_argument& e) {
    threw = true;
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("group_norm") == 0);
    CHECK(msg.find("different devices") != std::string::npos);
    CHECK(msg.find("input [2, 4, 3, 3] on cuda") != std::string::npos);
    CHECK(msg.find("weight [4] on cpu") != std::string::npos);
  }
  CHECK(threw);
}

// softmax family
TEST_CASE("cuda ops: softmax and log_softmax match the CPU", "[cuda][ops][softmax]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("softmax");
}

TEST_CASE("cuda ops: nll_loss and cross_entropy match the CPU", "[cuda][ops][cross_entropy]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("cross_entropy");
  // Targets on the CPU with logits on CUDA are refused with both devices named.
  ember::Generator gen(5);
  Tensor x = ember::randn({4, 3}, gen).to(Device::cuda);
  Tensor t = ember::from_vector({0, 1, 2, 1}, {4});
  bool threw = false;
  try {
    (void)ember::cross_entropy(x, t);
  } catch (const std::invalid_argument& e) {
    threw = true;
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.rfind("cross_entropy", 0) == 0);
    CHECK(msg.find("different devices") != std::string::npos);
  }
  CHECK(threw);
  // A bad target on the device is found by the host check.
  Tensor bad = ember::from_vector({0, 1, 3, 1}, {4}).to(Device::cuda);
  CHECK_THROWS_AS(ember::cross_entropy(x, bad), std::invalid_argument);
}

// layers and training (#12 item 6)
TEST_CASE("cuda ops: dropout matches the CPU bitwise", "[cuda][ops][dropout]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("dropout");
}

TEST_CASE("cuda ops: embedding matches the CPU bitwise", "[cuda][ops][embedding]") {
  EMBER_SKIP_IF_NO_GPU();
  cuda_ops_test::check_group("embedding");
}

TEST_CASE("cuda ops: every op of the op table refuses inputs on different devices",
          "[cuda][ops][error]") {
  EMBER_SKIP_IF_NO_GPU();
  // For each CUDA entry with two or more inputs: one input on CUDA, the others on the CPU, must
  // give std::invalid_argument starting with the op's name and saying "different devices".
  size_t checked = 0;
  for (const ember_test::OpCase* c : ember_test::op_cases(ember_test::kCuda)) {
    if (c->large) continue;
    size_t present = 0;
    for (const ember_test::Input& in : c->inputs) present += in.present ? 1 : 0;
    if (present < 2) continue;
    for (size_t i = 0; i < c->inputs.size(); ++i) {
      if (!c->inputs[i].present) continue;
      std::vector<Tensor> ins = ember_test::make_inputs(*c);
      ins[i] = ins[i].detach().to(Device::cuda);
      std::string msg = "<no exception>";
      try {
        (void)c->fn(ins);
      } catch (const std::invalid_argument& e) {
        msg = e.what();
      } catch (const std::exception& e) {
        msg = std::string("<wrong exception type, what(): ") + e.what() + ">";
      }
      INFO(c->label << " with " << c->inputs[i].name << " on cuda, the rest on the cpu: got \""
                    << msg << "\"");
      CHECK(msg.rfind(c->op, 0) == 0);
      CHECK(msg.find("different devices") != std::string::npos);
      ++checked;
    }
  }
  CHECK(checked > 20);
}

TEST_CASE("cuda: the seed U-Net's training step matches the PyTorch fixture", "[cuda][unet]") {
  EMBER_SKIP_IF_NO_GPU();
  ember_test::check_unet_step(Device::cuda);
}

namespace {
/// Runs `steps` training steps of the U-Net on CUDA from a fixed seed; returns the parameters.
std::vector<float> train_unet_cuda(int steps, uint64_t* mallocs_in_steady_state = nullptr) {
  ember::manual_seed(11);
  ember::models::UNet net;
  net.to(Device::cuda);
  ember::optim::Adam opt(net.parameters(), {1e-3});
  ember::Generator gen(5);
  // emulated: batch 2 instead of 128
  Tensor x = ember::rand({ember_cuda_test::gpu_or_emu<int64_t>(128, 2), 1, 16, 16}, gen,
                         Device::cuda) * 2.0f - 1.0f;
  const ember::detail::CudaBackend& be = ember::detail::cuda("test");
  uint64_t before = 0;
  for (int i = 0; i < steps; ++i) {
    if (i == 2) before = be.raw_malloc_count();  // after two warm-up steps
    Tensor noisy = x * 0.5f + ember::randn(x.shape(), gen, Device::cuda) * 0.5f;
    opt.zero_grad();
    Tensor loss = ember::mse_loss(net.forward(noisy), x);
    loss.backward();
    opt.step();
  }
  be.synchronize();
  if (mallocs_in_steady_state) *mallocs_in_steady_state = be.raw_malloc_count() - before;
  std::vector<float> all;
  for (auto& p : net.parameters()) {
    std::vector<float> v = p.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}
}  // namespace

TEST_CASE("cuda: training is deterministic and makes no cudaMalloc in steady state",
          "[cuda][determinism][allocator]") {
  EMBER_SKIP_IF_NO_GPU();
  ember::cuda::CachingScope caching;  // the cache is what is tested (the suite may run exact)
  uint64_t mallocs = 99;
  // Emulated: 3 steps (two warm-up, one measured) instead of 6.
  const int steps = ember_cuda_test::gpu_or_emu(6, 3);
  std::vector<float> a = train_unet_cuda(steps, &mallocs);
  std::vector<float> b = train_unet_cuda(steps);
  CHECK(a == b);  // bitwise
  INFO("cudaMalloc calls during steps 3.." << steps << ": " << mallocs);
  CHECK(mallocs == 0);
}

TEST_CASE("cuda: an absurd allocation throws a clear error and the library stays usable",
          "[cuda][allocator][error][oom]") {  // ~[oom] under compute-sanitizer
  EMBER_SKIP_IF_NO_GPU();
  bool threw = false;
  try {
    Tensor huge = ember::empty({int64_t(1) << 40}, Device::cuda);  // 4 TiB
  } catch (const ember::Error& e) {
    threw = true;
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("out of memory") != std::string::npos);
  }
  CHECK(threw);
  Tensor ok = ember::ones({1024}, Device::cuda);
  CHECK(ember::sum(ok).item() == 1024.0f);
}

TEST_CASE("cuda: tensors move between devices and mismatches are refused", "[cuda][ops]") {
  EMBER_SKIP_IF_NO_GPU();
  Tensor a = ember::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor g = a.to(Device::cuda);
  CHECK(g.is_cuda());
  CHECK(g.to(Device::cpu).to_vector() == a.to_vector());
  // to() is differentiable across devices: the gradient comes back to the CPU leaf.
  Tensor w = ember::from_vector({1, -2, 3, 4}, {2, 2});
  w.set_requires_grad();
  Tensor wg = w.to(Device::cuda);
  CHECK_FALSE(wg.is_leaf());
  ember::sum(ember::mul(wg, wg)).backward();
  REQUIRE(w.grad().defined());
  CHECK_FALSE(w.grad().is_cuda());
  CHECK(w.grad().to_vector() == std::vector<float>{2, -4, 6, 8});
  bool threw = false;
  try {
    (void)ember::add(a, g);
  } catch (const std::invalid_argument& e) {
    threw = true;
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("add") == 0);
    CHECK(msg.find("different devices") != std::string::npos);
    CHECK(msg.find("[2, 2] on cuda") != std::string::npos);
  }
  CHECK(threw);
}
