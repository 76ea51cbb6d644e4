// @file tests/cuda/test_cuda_ops.cu
// @brief Every op through the public API and autograd on CUDA against the same op on the CPU,
//        at the core tests' awkward shapes plus large ones; the seed U-Net's training step on
//        CUDA against the PyTorch fixture; determinism, no cudaMalloc in a steady loop, and
//        recovery from an out-of-memory request. Without a GPU every case reports a skip.
#include <ember/ember.hpp>
#include <ember/models/unet.hpp>

#include <functional>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include "../support/fixture.hpp"
#include "../support/unet_step_check.hpp"
#include "cuda_test_util.hpp"

using ember::Device;
using ember::Shape;
using ember::Tensor;

namespace {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string s;
  for (const Shape& sh : shapes) s += (s.empty() ? "" : ", ") + ember::to_string(sh);
  return s;
}

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

/// Runs f on CPU and CUDA copies of random inputs (all requiring grad), backpropagates the same
/// random upstream gradient, and compares the output and every input gradient. `atol` is scaled
/// by (1 + the largest expected magnitude) of each tensor.
void check_op(const std::string& op, const std::vector<Shape>& shapes, const OpFn& f,
              double atol, double rtol, uint64_t seed = 7) {
  INFO(op << " with inputs " << shapes_str(shapes));
  ember::Generator gen(seed);
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Shape& s : shapes) {
    Tensor t = ember::randn(s, gen);
    cpu_in.push_back(t.clone().set_requires_grad());
    gpu_in.push_back(t.to(Device::cuda).set_requires_grad());
  }
  Tensor yc = f(cpu_in), yg = f(gpu_in);
  REQUIRE(yg.device() == Device::cuda);
  Tensor gy = ember::randn(yc.shape(), gen);
  yc.backward(gy);
  yg.backward(gy.to(Device::cuda));
  expect_close(op + " output " + ember::to_string(yc.shape()), yg, yc, atol, rtol);
  for (size_t i = 0; i < shapes.size(); ++i)
    expect_close(op + " grad of input " + std::to_string(i) + " " + ember::to_string(shapes[i]),
                 gpu_in[i].grad(), cpu_in[i].grad(), atol, rtol);
}

}  // namespace

TEST_CASE("cuda ops: conv2d matches the CPU", "[cuda][ops][conv2d]") {
  EMBER_SKIP_IF_NO_GPU();
  struct Case { Shape x, w; int stride, pad; bool bias; };
  const int64_t B = ember_cuda_test::gpu_or_emu<int64_t>(128, 8);
  for (const Case& c : {Case{{2, 3, 5, 7}, {4, 3, 3, 3}, 1, 1, true},
                        Case{{1, 1, 4, 4}, {1, 1, 1, 1}, 1, 0, false},
                        Case{{3, 2, 7, 6}, {5, 2, 2, 3}, 2, 1, true},
                        Case{{2, 4, 9, 9}, {3, 4, 3, 3}, 3, 2, true},
                        // emulated (host SIMT runtime): batch 8 instead of 128
                        Case{{B, 16, 16, 16}, {32, 16, 3, 3}, 1, 1, true},
                        Case{{B, 64, 4, 4}, {64, 64, 3, 3}, 1, 1, true},
                        Case{{B, 16, 16, 16}, {1, 16, 3, 3}, 1, 1, true}}) {
    std::vector<Shape> shapes{c.x, c.w};
    if (c.bias) shapes.push_back({c.w[0]});
    check_op("conv2d stride " + std::to_string(c.stride) + " pad " + std::to_string(c.pad),
             shapes, [&](const std::vector<Tensor>& t) {
               return ember::conv2d(t[0], t[1], c.bias ? t[2] : Tensor(), c.stride, c.pad);
             }, 1e-5, 1e-4);
  }
}

TEST_CASE("cuda ops: conv2d large shapes", "[cuda][ops][conv2d][large]") {
  EMBER_SKIP_IF_NO_GPU();
  // emulated: batch 4 instead of 512
  check_op(
      "conv2d large",
      {{ember_cuda_test::gpu_or_emu<int64_t>(512, 4), 64, 16, 16}, {128, 64, 3, 3}, {128}},
      [](const std::vector<Tensor>& t) { return ember::conv2d(t[0], t[1], t[2], 1, 1); }, 1e-4,
      1e-3);
  check_op("conv2d 128x128 image", {{2, 3, 128, 128}, {8, 3, 3, 3}, {8}},
           [](const std::vector<Tensor>& t) { return ember::conv2d(t[0], t[1], t[2], 2, 1); },
           1e-4, 1e-3);
}

TEST_CASE("cuda ops: conv_transpose2d matches the CPU", "[cuda][ops][conv_transpose2d]") {
  EMBER_SKIP_IF_NO_GPU();
  struct Case { Shape x, w; int stride, pad, out_pad; bool bias; };
  const int64_t B = ember_cuda_test::gpu_or_emu<int64_t>(128, 8);  // emulated: batch 8
  for (const Case& c : {Case{{2, 3, 4, 5}, {3, 2, 3, 3}, 2, 1, 1, true},
                        Case{{1, 2, 3, 3}, {2, 3, 3, 3}, 1, 0, 0, false},
                        Case{{2, 2, 4, 4}, {2, 3, 2, 3}, 3, 1, 2, true},
                        Case{{B, 128, 4, 4}, {128, 32, 3, 3}, 2, 1, 1, true},
                        Case{{B, 64, 8, 8}, {64, 16, 3, 3}, 2, 1, 1, true}}) {
    std::vector<Shape> shapes{c.x, c.w};
    if (c.bias) shapes.push_back({c.w[1]});
    check_op("conv_transpose2d stride " + std::to_string(c.stride) + " pad " +
                 std::to_string(c.pad) + " output_padding " + std::to_string(c.out_pad),
             shapes, [&](const std::vector<Tensor>& t) {
               return ember::conv_transpose2d(t[0], t[1], c.bias ? t[2] : Tensor(), c.stride,
                                              c.pad, c.out_pad);
             }, 1e-5, 1e-4);
  }
}

TEST_CASE("cuda ops: batch_norm2d train and eval match the CPU", "[cuda][ops][batch_norm]") {
  EMBER_SKIP_IF_NO_GPU();
  // emulated: batch 8 / 512 instead of 128 / 4096 (the last still splits each channel)
  for (const Shape& x : {Shape{4, 3, 5, 5}, Shape{1, 2, 2, 2},
                         Shape{ember_cuda_test::gpu_or_emu<int64_t>(128, 8), 32, 16, 16},
                         Shape{ember_cuda_test::gpu_or_emu<int64_t>(4096, 512), 16, 8, 8}}) {
    for (bool training : {true, false}) {
      const int64_t C = x[1];
      // Running statistics: the same starting values on both devices; compared after the call.
      Tensor rm_c = ember::zeros({C}), rv_c = ember::ones({C});
      Tensor rm_g = rm_c.to(Device::cuda), rv_g = rv_c.to(Device::cuda);
      check_op(std::string("batch_norm2d ") + (training ? "train" : "eval"), {x, {C}, {C}},
               [&](const std::vector<Tensor>& t) {
                 bool gpu = t[0].is_cuda();
                 return ember::batch_norm2d(t[0], t[1], t[2], gpu ? rm_g : rm_c,
                                            gpu ? rv_g : rv_c, training);
               }, 1e-5, 1e-4);
      expect_close("running_mean", rm_g, rm_c, 1e-6, 1e-5);
      expect_close("running_var", rv_g, rv_c, 1e-6, 1e-5);
    }
  }
}

TEST_CASE("cuda ops: relu, max_pool2d, linear, cat, views, elementwise, losses",
          "[cuda][ops][small]") {
  EMBER_SKIP_IF_NO_GPU();
  // Emulated (host SIMT runtime): batch 8 instead of 128, 512 linear rows instead of 4096.
  for (const Shape& s :
       {Shape{3, 5, 7}, Shape{ember_cuda_test::gpu_or_emu<int64_t>(128, 8), 32, 16, 16}})
    check_op("relu", {s}, [](const std::vector<Tensor>& t) { return ember::relu(t[0]); }, 0, 0);
  struct Pool { Shape x; int k, stride, pad; };
  for (const Pool& p : {Pool{{2, 3, 7, 9}, 2, 2, 0}, Pool{{2, 3, 7, 9}, 3, 2, 1},
                        Pool{{ember_cuda_test::gpu_or_emu<int64_t>(128, 8), 32, 16, 16}, 2, 2, 0},
                        Pool{{1, 1, 1, 1}, 1, 1, 0}})
    check_op("max_pool2d k" + std::to_string(p.k), {p.x}, [&](const std::vector<Tensor>& t) {
      return ember::max_pool2d(t[0], p.k, p.stride, p.pad);
    }, 0, 0);
  for (const auto& s :
       {std::vector<Shape>{{5, 7}, {3, 7}, {3}}, std::vector<Shape>{{128, 1024}, {32, 1024}, {32}},
        std::vector<Shape>{
            {ember_cuda_test::gpu_or_emu<int64_t>(4096, 512), 32}, {1024, 32}, {1024}}})
    check_op("linear", s, [](const std::vector<Tensor>& t) {
      return ember::linear(t[0], t[1], t[2]);
    }, 1e-5, 1e-4);
  for (int dim = 0; dim < 4; ++dim) {
    Shape a{2, 3, 4, 5}, b = a;
    b[dim] = 3;
    check_op("cat dim " + std::to_string(dim), {a, b, a}, [&](const std::vector<Tensor>& t) {
      return ember::cat(t, dim);
    }, 0, 0);
  }
  check_op("flatten/unflatten", {{4, 64, 4, 4}}, [](const std::vector<Tensor>& t) {
    return ember::relu(t[0].flatten(1)).unflatten(1, {64, 4, 4});
  }, 0, 0);
  check_op("add/sub/mul/scalars", {{3, 33}, {3, 33}}, [](const std::vector<Tensor>& t) {
    return (t[0] + t[1]) * t[0] - t[1] * 0.5f + 2.0f;
  }, 1e-6, 1e-6);
  check_op("mse_loss", {{128, 1, 16, 16}, {128, 1, 16, 16}}, [](const std::vector<Tensor>& t) {
    return ember::mse_loss(t[0], t[1]);
  }, 1e-6, 1e-5);
  check_op("sum and mean", {{1000, 37}}, [](const std::vector<Tensor>& t) {
    return ember::sum(t[0]) + ember::mean(t[0]);
  }, 1e-6, 1e-5);
}

TEST_CASE("cuda ops: gelu and group_norm match the CPU", "[cuda][ops][gelu][group_norm]") {
  EMBER_SKIP_IF_NO_GPU();
  // gelu: CUDA's erff/expf/tanhf vs the C library's, a few ulps (see test_cuda_kernels.cu).
  for (const Shape& s :
       {Shape{3, 5, 7}, Shape{ember_cuda_test::gpu_or_emu<int64_t>(128, 8), 32, 16, 16}})
    for (const char* approximate : {"none", "tanh"})
      check_op(
          std::string("gelu approximate ") + approximate, {s},
          [&](const std::vector<Tensor>& t) { return ember::gelu(t[0], approximate); }, 1e-6, 1e-5);
  // group_norm: double statistics on both devices, summed in different orders; as batch_norm2d.
  struct Case {
    Shape x;
    int64_t groups;
    bool affine;
  };
  for (const Case& c :
       {Case{{4, 6, 5, 5}, 3, true}, Case{{1, 1, 1, 1}, 1, true}, Case{{2, 8, 7}, 4, true},
        Case{{3, 4, 3, 5}, 2, false}, Case{{2, 5, 4, 4}, 5, true},
        Case{{ember_cuda_test::gpu_or_emu<int64_t>(128, 8), 64, 16, 16},
             8,
             true},  // emulated: batch 8
        Case{{1, 32, 128, 128}, 1, true}}) {
    std::vector<Shape> shapes{c.x};
    if (c.affine) shapes.insert(shapes.end(), {Shape{c.x[1]}, Shape{c.x[1]}});
    check_op(
        "group_norm groups " + std::to_string(c.groups) + (c.affine ? "" : " no affine"), shapes,
        [&](const std::vector<Tensor>& t) {
          return c.affine ? ember::group_norm(t[0], c.groups, t[1], t[2])
                          : ember::group_norm(t[0], c.groups);
        },
        1e-5, 1e-4);
  }
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
