// @file tests/cuda/test_cuda_kernels.cu
// @brief CUDA kernels vs their CPU twins, determinism, allocator and backend-table tests.
//
// Every kernel runs on random inputs at small awkward shapes and at a few large ones; the
// result is compared with include/ember/kernels/cpu/*.hpp. GPU tests skip visibly without a device
// (EMBER_SKIP_IF_NO_GPU). Outputs are poisoned with NaN before each kernel runs, so an element
// the kernel forgot to write fails the comparison.
//
// Build (from the repository root):
//   nvcc -std=c++17 -O2 -arch=sm_80 -gencode arch=compute_80,code=sm_80
//        -gencode arch=compute_90,code=sm_90 -Xcompiler -Wall,-Wextra,-Werror -I include -I .
//        tests/support/catch_main.cpp tests/cuda/test_cuda_kernels.cu -o /tmp/t_cuda
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"

#include <ember/kernels/cuda/backend.cuh>

#include <ember/kernels/cpu/batch_norm.hpp>
#include <ember/kernels/cpu/concat.hpp>
#include <ember/kernels/cpu/conv2d.hpp>
#include <ember/kernels/cpu/conv_transpose2d.hpp>
#include <ember/kernels/cpu/elementwise.hpp>
#include <ember/kernels/cpu/gelu.hpp>
#include <ember/kernels/cpu/group_norm.hpp>
#include <ember/kernels/cpu/linear.hpp>
#include <ember/kernels/cpu/max_pool2d.hpp>
#include <ember/kernels/cpu/optim.hpp>
#include <ember/kernels/cpu/random.hpp>
#include <ember/kernels/cpu/reduce.hpp>
#include <ember/kernels/cpu/relu.hpp>

using ember_cuda_test::bitwise_equal;
using ember_cuda_test::DevBuf;
using ember_cuda_test::gpu_or_emu;
using ember_cuda_test::random_int_vec;
using ember_cuda_test::random_vec;
namespace K = ember::kernels;
namespace ecu = ember::cuda;
namespace ecpu = ember::cpu;

namespace {

cudaStream_t stream() { return ecu::current_stream(); }

std::vector<float> nan_vec(int64_t n) { return std::vector<float>(size_t(n), NAN); }

// Tolerances: (rtol, scale) -- see ember_cuda_test::compare.
constexpr double kExactR = 1e-6, kExactS = 1e-7;  // same formula, same order (bitwise expected)
constexpr double kSumR = 1e-6, kSumS = 1e-6;      // double accumulation on both sides
constexpr double kGemmR = 1e-4, kGemmS = 2e-5;    // float dot products, different order
constexpr double kBnR = 1e-4, kBnS = 1e-5;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Backend table and error plumbing (these need no GPU)
// ---------------------------------------------------------------------------------------------

TEST_CASE("cuda backend table is registered and complete", "[cuda][backend]") {
  const ember::detail::CudaBackend* b = ember::detail::cuda_backend();
  REQUIRE(b != nullptr);
  CHECK(b == &ecu::backend_table());
  // Every entry of the one list (core/backend_ops.def) is filled: the table is built from that
  // list, so this checks the generation itself, entry by entry.
  int entries = 0;
#define EMBER_BACKEND_RUNTIME(name, ret, params) \
  CHECK(b->name != nullptr);                     \
  ++entries;
#define EMBER_BACKEND_KERNEL(name, params, args) \
  CHECK(b->name != nullptr);                     \
  ++entries;
#include <ember/core/backend_ops.def>
  CHECK(entries * sizeof(void (*)()) == sizeof(ember::detail::CudaBackend));
  // device_count never throws; it is 0 exactly when the runtime sees no device.
  int n = -1;
  REQUIRE_NOTHROW(n = b->device_count());
  CHECK(n >= 0);
  CHECK((n > 0) == ember_cuda_test::has_cuda_device());
  CHECK(b->device_name() != nullptr);
}

TEST_CASE("EMBER_CUDA_CHECK throws ember::Error naming the op and file", "[cuda][error]") {
  bool thrown = false;
  try {
    EMBER_CUDA_CHECK(cudaErrorInvalidValue, "my_test_op");
  } catch (const ember::Error& e) {
    thrown = true;
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("my_test_op") != std::string::npos);
    CHECK(msg.find("test_cuda_kernels.cu") != std::string::npos);
    CHECK(msg.find(cudaGetErrorString(cudaErrorInvalidValue)) != std::string::npos);
  }
  CHECK(thrown);
  CHECK_NOTHROW([] { EMBER_CUDA_CHECK(cudaSuccess, "fine"); }());
}

// ---------------------------------------------------------------------------------------------
// Elementwise, relu, concat, random, reduce
// ---------------------------------------------------------------------------------------------

TEST_CASE("cuda elementwise kernels match the CPU", "[cuda][elementwise]") {
  EMBER_SKIP_IF_NO_GPU();
  // Emulated: 100003 instead of 1000003 (still hundreds of blocks).
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(4097), gpu_or_emu<int64_t>(1000003, 100003)}) {
    INFO("n = " << n);
    const auto a = random_vec(n, 11), b = random_vec(n, 12);
    DevBuf<float> da(a), db(b), dy(n), ds(std::vector<float>{1.75f});
    std::vector<float> ref(static_cast<size_t>(n));

    auto run = [&](const char* what, auto&& gpu, auto&& cpu) {
      INFO(what);
      dy.poison();
      gpu();
      ref.assign(size_t(n), NAN);
      cpu();
      EMBER_CHECK_CLOSE(dy.download(), ref, kExactR, kExactS);
    };
    run("fill", [&] { ecu::fill(n, -2.5f, dy.get(), stream()); },
        [&] { ecpu::fill(n, -2.5f, ref.data()); });
    run("copy", [&] { ecu::copy(n, da.get(), dy.get(), stream()); },
        [&] { ecpu::copy(n, a.data(), ref.data()); });
    run("add", [&] { ecu::add(n, da.get(), db.get(), dy.get(), stream()); },
        [&] { ecpu::add(n, a.data(), b.data(), ref.data()); });
    run("sub", [&] { ecu::sub(n, da.get(), db.get(), dy.get(), stream()); },
        [&] { ecpu::sub(n, a.data(), b.data(), ref.data()); });
    run("mul", [&] { ecu::mul(n, da.get(), db.get(), dy.get(), stream()); },
        [&] { ecpu::mul(n, a.data(), b.data(), ref.data()); });
    run("scale", [&] { ecu::scale(n, 3.1f, da.get(), dy.get(), stream()); },
        [&] { ecpu::scale(n, 3.1f, a.data(), ref.data()); });
    run("add_scalar", [&] { ecu::add_scalar(n, da.get(), 0.25f, dy.get(), stream()); },
        [&] { ecpu::add_scalar(n, a.data(), 0.25f, ref.data()); });
    run("accumulate",
        [&] {
          dy.upload(b);
          ecu::accumulate(n, da.get(), dy.get(), stream());
        },
        [&] {
          ref = b;
          ecpu::accumulate(n, a.data(), ref.data());
        });
    run("broadcast_scalar", [&] { ecu::broadcast_scalar(n, ds.get(), -2.0f, dy.get(), stream()); },
        [&] {
          const float s = 1.75f;
          ecpu::broadcast_scalar(n, &s, -2.0f, ref.data());
        });
    run("relu_forward", [&] { ecu::relu_forward(n, da.get(), dy.get(), stream()); },
        [&] { ecpu::relu_forward(n, a.data(), ref.data()); });
    run("relu_backward", [&] { ecu::relu_backward(n, da.get(), db.get(), dy.get(), stream()); },
        [&] { ecpu::relu_backward(n, a.data(), b.data(), ref.data()); });
    // In place (y aliases an input).
    run("add in place",
        [&] {
          dy.upload(a);
          ecu::add(n, dy.get(), db.get(), dy.get(), stream());
        },
        [&] { ecpu::add(n, a.data(), b.data(), ref.data()); });
  }
}

TEST_CASE("cuda relu handles NaN, zeros and signed zeros like the CPU", "[cuda][relu]") {
  EMBER_SKIP_IF_NO_GPU();
  const std::vector<float> x = {NAN, -0.0f, 0.0f, -1.0f, 2.0f, -INFINITY, INFINITY};
  const std::vector<float> g = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f};
  const int64_t n = int64_t(x.size());
  DevBuf<float> dx(x), dg(g), out(n);
  std::vector<float> ref(x.size());
  ecu::relu_forward(n, dx.get(), out.get(), stream());
  ecpu::relu_forward(n, x.data(), ref.data());
  CHECK(bitwise_equal(out.download(), ref));
  ecu::relu_backward(n, dx.get(), dg.get(), out.get(), stream());
  ecpu::relu_backward(n, x.data(), g.data(), ref.data());
  CHECK(bitwise_equal(out.download(), ref));
}

TEST_CASE("cuda gelu (exact and tanh) matches the CPU", "[cuda][gelu]") {
  EMBER_SKIP_IF_NO_GPU();
  // Same float formulas and constants; CUDA's erff/expf/tanhf are within 2 ulps of the C
  // library's, and 1 + erf(x) / 1 - tanh^2 near saturation turn that into an absolute error of
  // a few 1e-7 at most: rtol 1e-5 with an absolute tolerance of about 1e-6. The comparison's
  // atol is tol_scale * max|ref|: forward outputs reach 40 (the +-40 specials), so the forward
  // scale is 2e-8 (atol 8e-7); backward outputs stay near |dy| <= 1, so its scale is 1e-6.
  constexpr double kGeluR = 1e-5, kGeluFwdS = 2e-8, kGeluBwdS = 1e-6;
  // Emulated: 2^17 instead of 2^22.
  for (const int64_t n : {int64_t(1), int64_t(1000), int64_t(70001),
                          gpu_or_emu<int64_t>(int64_t(1) << 22, int64_t(1) << 17)}) {
    INFO("gelu n " << n);
    std::vector<float> x = random_vec(n, 130 + uint32_t(n % 97), -8.0f, 8.0f);
    const std::vector<float> specials = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 40.0f, -40.0f};
    for (size_t i = 0; i < specials.size() && i < x.size(); ++i) x[i] = specials[i];
    const auto dy = random_vec(n, 131);
    DevBuf<float> dx_(x), ddy(dy), out(n);
    std::vector<float> ref = nan_vec(n);
    for (bool tanh_form : {false, true}) {
      INFO((tanh_form ? "tanh form" : "exact form"));
      out.poison();
      if (tanh_form) {
        ecu::gelu_tanh_forward(n, dx_.get(), out.get(), stream());
        ecpu::gelu_tanh_forward(n, x.data(), ref.data());
      } else {
        ecu::gelu_forward(n, dx_.get(), out.get(), stream());
        ecpu::gelu_forward(n, x.data(), ref.data());
      }
      EMBER_CHECK_CLOSE(out.download(), ref, kGeluR, kGeluFwdS);
      out.poison();
      if (tanh_form) {
        ecu::gelu_tanh_backward(n, dx_.get(), ddy.get(), out.get(), stream());
        ecpu::gelu_tanh_backward(n, x.data(), dy.data(), ref.data());
      } else {
        ecu::gelu_backward(n, dx_.get(), ddy.get(), out.get(), stream());
        ecpu::gelu_backward(n, x.data(), dy.data(), ref.data());
      }
      EMBER_CHECK_CLOSE(out.download(), ref, kGeluR, kGeluBwdS);
    }
    // In place (y aliases x) gives the same values as out of place.
    ecu::gelu_forward(n, dx_.get(), out.get(), stream());
    ecu::gelu_forward(n, dx_.get(), dx_.get(), stream());
    CHECK(bitwise_equal(dx_.download(), out.download()));
  }
}

TEST_CASE("cuda concat_copy and slice_copy match the CPU", "[cuda][concat]") {
  EMBER_SKIP_IF_NO_GPU();
  struct Case {
    int64_t outer, src_block, dst_block, offset;
  };
  // Emulated: 16 (not 128) rows of 4096 and 10000 (not 100000) rows of 3.
  for (const Case c : {Case{1, 1, 1, 0}, Case{3, 5, 12, 4}, Case{7, 3, 10, 7},
                       Case{gpu_or_emu(128, 16), 4096, 8192, 4096},
                       Case{gpu_or_emu(100000, 10000), 3, 7, 1}}) {
    INFO("outer " << c.outer << " src_block " << c.src_block << " dst_block " << c.dst_block);
    // concat: src (outer, src_block) into dst (outer, dst_block) at offset.
    const auto src = random_vec(c.outer * c.src_block, 21);
    const auto base = random_vec(c.outer * c.dst_block, 22);
    DevBuf<float> ds(src), dd(base);
    std::vector<float> ref = base;
    ecu::concat_copy(c.outer, c.src_block, c.dst_block, c.offset, ds.get(), dd.get(), stream());
    ecpu::concat_copy(c.outer, c.src_block, c.dst_block, c.offset, src.data(), ref.data());
    CHECK(bitwise_equal(dd.download(), ref));
    // slice: dst (outer, src_block) from src (outer, dst_block) at offset.
    DevBuf<float> out(c.outer * c.src_block);
    out.poison();
    std::vector<float> ref2 = nan_vec(c.outer * c.src_block);
    ecu::slice_copy(c.outer, c.dst_block, c.offset, c.src_block, dd.get(), out.get(), stream());
    ecpu::slice_copy(c.outer, c.dst_block, c.offset, c.src_block, ref.data(), ref2.data());
    CHECK(bitwise_equal(out.download(), ref2));
  }
}

TEST_CASE("cuda Philox fills match the CPU", "[cuda][random]") {
  EMBER_SKIP_IF_NO_GPU();
  // Emulated: 100001 instead of 1000001.
  for (int64_t n :
       {int64_t(1), int64_t(3), int64_t(4), int64_t(5), gpu_or_emu<int64_t>(1000001, 100001)}) {
    for (uint64_t off : {uint64_t(0), uint64_t(7), (uint64_t(1) << 33) + 5}) {
      INFO("n " << n << " offset " << off);
      const K::PhiloxState st{0x123456789abcdefULL, off};
      DevBuf<float> d(n);
      std::vector<float> ref(static_cast<size_t>(n));
      d.poison();
      ecu::rand_uniform(n, st, d.get(), stream());
      ecpu::rand_uniform(n, st, ref.data());
      CHECK(bitwise_equal(d.download(), ref));
      d.poison();
      ecu::rand_normal(n, st, d.get(), stream());
      ecpu::rand_normal(n, st, ref.data());
      EMBER_CHECK_CLOSE(d.download(), ref, 1e-6, 1e-6);
    }
  }
}

TEST_CASE("cuda sum and mse loss match the CPU", "[cuda][reduce]") {
  EMBER_SKIP_IF_NO_GPU();
  // Emulated: 65553 and 300007 (several reduction blocks) instead of 2^20 + 17 and 5000003.
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(5), int64_t(4096), int64_t(4097),
                    gpu_or_emu<int64_t>(int64_t(1 << 20) + 17, 65553),
                    gpu_or_emu<int64_t>(5000003, 300007)}) {
    INFO("n = " << n);
    const auto a = random_vec(n, 31, -1.0f, 2.0f), b = random_vec(n, 32);
    DevBuf<float> da(a), db(b), out(1), g(std::vector<float>{0.75f});
    std::vector<float> ref(1);
    out.poison();
    ecu::sum(n, da.get(), out.get(), stream());
    ecpu::sum(n, a.data(), ref.data());
    EMBER_CHECK_CLOSE(out.download(), ref, kSumR, kSumS);
    out.poison();
    ecu::mse_loss_forward(n, da.get(), db.get(), out.get(), stream());
    ecpu::mse_loss_forward(n, a.data(), b.data(), ref.data());
    EMBER_CHECK_CLOSE(out.download(), ref, kSumR, kSumS);  // NaN for n == 0 on both
    if (n == 0) continue;
    DevBuf<float> ga(n), gb(n);
    std::vector<float> ra(static_cast<size_t>(n)), rb(static_cast<size_t>(n));
    ga.poison();
    gb.poison();
    ecu::mse_loss_backward(n, da.get(), db.get(), g.get(), ga.get(), gb.get(), stream());
    const float gh = 0.75f;
    ecpu::mse_loss_backward(n, a.data(), b.data(), &gh, ra.data(), rb.data());
    EMBER_CHECK_CLOSE(ga.download(), ra, kExactR, kExactS);
    EMBER_CHECK_CLOSE(gb.download(), rb, kExactR, kExactS);
    // Only db.
    gb.poison();
    ecu::mse_loss_backward(n, da.get(), db.get(), g.get(), nullptr, gb.get(), stream());
    EMBER_CHECK_CLOSE(gb.download(), rb, kExactR, kExactS);
  }
}

// ---------------------------------------------------------------------------------------------
// conv2d
// ---------------------------------------------------------------------------------------------

namespace {

K::Conv2dShape conv_shape(int N, int C, int H, int W, int Kc, int R, int S, int stride, int pad) {
  K::Conv2dShape s{N, C, H, W, Kc, R, S, stride, pad, 0, 0};
  s.OH = (H + 2 * pad - R) / stride + 1;
  s.OW = (W + 2 * pad - S) / stride + 1;
  return s;
}

/// The GPU kernels of a convolution op (conv2d or conv_transpose2d) and their CPU twins.
template <class Shape>
struct ConvKernels {
  void (*gpu_forward)(Shape, const float*, const float*, const float*, float*, cudaStream_t);
  void (*gpu_backward_input)(Shape, const float*, const float*, float*, cudaStream_t);
  void (*gpu_backward_weight)(Shape, const float*, const float*, float*, float*, cudaStream_t);
  void (*cpu_forward)(Shape, const float*, const float*, const float*, float*);
  void (*cpu_backward_input)(Shape, const float*, const float*, float*);
  void (*cpu_backward_weight)(Shape, const float*, const float*, float*, float*);
};

/// Forward, backward-input and backward-weight (dw; db with a bias) of one convolution op on the
/// GPU against its CPU twin; `what` names the op and its shape.
template <class Shape>
void check_conv_kernels(const ConvKernels<Shape>& kern, const Shape& s, bool with_bias,
                        uint32_t seed, const std::string& what) {
  INFO(what);
  // The weight holds K*C*R*S values in either layout, (K, C, R, S) or (C, K, R, S).
  const int64_t nx = int64_t(s.N) * s.C * s.H * s.W, nw = int64_t(s.K) * s.C * s.R * s.S;
  const int64_t ny = int64_t(s.N) * s.K * s.OH * s.OW;
  const auto x = random_vec(nx, seed), w = random_vec(nw, seed + 1), b = random_vec(s.K, seed + 2);
  const auto dy = random_vec(ny, seed + 3);
  DevBuf<float> dx_(x), dw_(w), db_(b), ddy(dy), y(ny), gx(nx), gw(nw), gb(s.K);
  std::vector<float> ry = nan_vec(ny), rgx = nan_vec(nx), rgw = nan_vec(nw), rgb = nan_vec(s.K);

  y.poison();
  kern.gpu_forward(s, dx_.get(), dw_.get(), with_bias ? db_.get() : nullptr, y.get(), stream());
  kern.cpu_forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr, ry.data());
  {
    INFO("forward");
    EMBER_CHECK_CLOSE(y.download(), ry, kGemmR, kGemmS);
  }
  gx.poison();
  kern.gpu_backward_input(s, ddy.get(), dw_.get(), gx.get(), stream());
  kern.cpu_backward_input(s, dy.data(), w.data(), rgx.data());
  {
    INFO("backward_input");
    EMBER_CHECK_CLOSE(gx.download(), rgx, kGemmR, kGemmS);
  }
  gw.poison();
  gb.poison();
  kern.gpu_backward_weight(s, dx_.get(), ddy.get(), gw.get(), with_bias ? gb.get() : nullptr,
                           stream());
  kern.cpu_backward_weight(s, x.data(), dy.data(), rgw.data(), with_bias ? rgb.data() : nullptr);
  {
    INFO("backward_weight dw");
    EMBER_CHECK_CLOSE(gw.download(), rgw, kGemmR, kGemmS);
  }
  if (with_bias) {
    INFO("backward_weight db");
    EMBER_CHECK_CLOSE(gb.download(), rgb, kGemmR, kGemmS);
  }
}

void check_conv2d(const K::Conv2dShape& s, bool with_bias, uint32_t seed) {
  std::ostringstream what;
  what << "conv2d N " << s.N << " C " << s.C << " H " << s.H << " W " << s.W << " K " << s.K
       << " R " << s.R << " S " << s.S << " stride " << s.stride << " pad " << s.pad << " -> "
       << s.OH << "x" << s.OW << (with_bias ? " bias" : "");
  const ConvKernels<K::Conv2dShape> kern{ecu::conv2d_forward,         ecu::conv2d_backward_input,
                                         ecu::conv2d_backward_weight, ecpu::conv2d_forward,
                                         ecpu::conv2d_backward_input, ecpu::conv2d_backward_weight};
  check_conv_kernels(kern, s, with_bias, seed, what.str());
}

}  // namespace

TEST_CASE("cuda conv2d matches the CPU at small awkward shapes", "[cuda][conv2d]") {
  EMBER_SKIP_IF_NO_GPU();
  uint32_t seed = 100;
  check_conv2d(conv_shape(1, 1, 1, 1, 1, 1, 1, 1, 0), true, seed++);
  check_conv2d(conv_shape(2, 3, 5, 7, 4, 3, 2, 2, 1), true, seed++);
  check_conv2d(conv_shape(3, 5, 9, 9, 17, 3, 3, 1, 1), false, seed++);
  check_conv2d(conv_shape(2, 4, 6, 5, 33, 5, 3, 3, 2), true, seed++);
  check_conv2d(conv_shape(1, 1, 4, 4, 1, 4, 4, 1, 0), true, seed++);
  check_conv2d(conv_shape(2, 2, 3, 3, 3, 3, 3, 1, 2), true, seed++);    // windows of pure padding
  check_conv2d(conv_shape(3, 7, 11, 13, 65, 1, 1, 2, 0), true, seed++); // 1x1 stride 2, M > 64
  check_conv2d(conv_shape(2, 16, 7, 7, 16, 3, 3, 2, 1), true, seed++);  // M = 16 tile edge
  check_conv2d(conv_shape(2, 17, 5, 6, 32, 3, 3, 1, 1), true, seed++);  // M = 32 tile edge
  check_conv2d(conv_shape(1, 3, 128, 128, 8, 3, 3, 1, 1), true, seed++); // large spatial
}

TEST_CASE("cuda conv2d matches the CPU at U-Net and large shapes", "[cuda][conv2d][large]") {
  EMBER_SKIP_IF_NO_GPU();
  uint32_t seed = 200;
  // Emulated: batch 8 instead of 128 (16 instead of 256): the same channel counts, so the same
  // tile shapes; the weight gradients still split K.
  const int B = gpu_or_emu(128, 8);
  check_conv2d(conv_shape(B, 1, 16, 16, 16, 3, 3, 1, 1), true, seed++);
  check_conv2d(conv_shape(B, 16, 16, 16, 16, 3, 3, 1, 1), true, seed++);
  check_conv2d(conv_shape(B, 64, 8, 8, 64, 3, 3, 1, 1), true, seed++);
  check_conv2d(conv_shape(B, 128, 4, 4, 128, 3, 3, 1, 1), true, seed++);
  check_conv2d(conv_shape(B, 16, 16, 16, 1, 1, 1, 1, 0), true, seed++);
  check_conv2d(conv_shape(2 * B, 64, 16, 16, 64, 3, 3, 1, 1), true, seed++);
}

// ---------------------------------------------------------------------------------------------
// conv_transpose2d
// ---------------------------------------------------------------------------------------------

namespace {

K::ConvTranspose2dShape convt_shape(int N, int C, int H, int W, int Kc, int R, int S, int stride,
                                    int pad, int out_pad) {
  K::ConvTranspose2dShape s{N, C, H, W, Kc, R, S, stride, pad, out_pad, 0, 0};
  s.OH = (H - 1) * stride - 2 * pad + R + out_pad;
  s.OW = (W - 1) * stride - 2 * pad + S + out_pad;
  return s;
}

void check_conv_transpose2d(const K::ConvTranspose2dShape& s, bool with_bias, uint32_t seed) {
  std::ostringstream what;
  what << "conv_transpose2d N " << s.N << " C " << s.C << " H " << s.H << " W " << s.W << " K "
       << s.K << " R " << s.R << " S " << s.S << " stride " << s.stride << " pad " << s.pad
       << " out_pad " << s.out_pad << " -> " << s.OH << "x" << s.OW;
  const ConvKernels<K::ConvTranspose2dShape> kern{
      ecu::conv_transpose2d_forward,         ecu::conv_transpose2d_backward_input,
      ecu::conv_transpose2d_backward_weight, ecpu::conv_transpose2d_forward,
      ecpu::conv_transpose2d_backward_input, ecpu::conv_transpose2d_backward_weight};
  check_conv_kernels(kern, s, with_bias, seed, what.str());
}

}  // namespace

TEST_CASE("cuda conv_transpose2d matches the CPU at small awkward shapes",
          "[cuda][conv_transpose2d]") {
  EMBER_SKIP_IF_NO_GPU();
  uint32_t seed = 300;
  check_conv_transpose2d(convt_shape(1, 1, 1, 1, 1, 1, 1, 1, 0, 0), true, seed++);
  check_conv_transpose2d(convt_shape(2, 3, 5, 4, 2, 3, 3, 2, 1, 1), true, seed++);
  check_conv_transpose2d(convt_shape(2, 4, 3, 3, 5, 2, 2, 3, 0, 2), true, seed++);  // R < stride
  check_conv_transpose2d(convt_shape(3, 2, 4, 5, 3, 3, 3, 2, 0, 0), false, seed++);
  check_conv_transpose2d(convt_shape(2, 5, 4, 4, 7, 4, 4, 2, 1, 0), true, seed++);
  check_conv_transpose2d(convt_shape(1, 3, 2, 3, 2, 5, 3, 3, 2, 1), true, seed++);
  check_conv_transpose2d(convt_shape(4, 33, 7, 5, 17, 3, 3, 1, 1, 0), true, seed++);
  check_conv_transpose2d(convt_shape(2, 3, 1, 1, 40, 3, 3, 2, 1, 1), true, seed++);  // 1x1 input
}

TEST_CASE("cuda conv_transpose2d matches the CPU at U-Net shapes",
          "[cuda][conv_transpose2d][large]") {
  EMBER_SKIP_IF_NO_GPU();
  uint32_t seed = 400;
  const int B = gpu_or_emu(128, 8);  // emulated: batch 8, the same channels and tiles
  check_conv_transpose2d(convt_shape(B, 128, 4, 4, 64, 3, 3, 2, 1, 1), true, seed++);
  check_conv_transpose2d(convt_shape(B, 64, 8, 8, 32, 3, 3, 2, 1, 1), true, seed++);
  check_conv_transpose2d(convt_shape(B, 32, 8, 8, 16, 3, 3, 2, 1, 1), true, seed++);
}

// ---------------------------------------------------------------------------------------------
// batch_norm
// ---------------------------------------------------------------------------------------------

namespace {

void check_batch_norm(const K::BatchNormShape& s, uint32_t seed) {
  INFO("batch_norm N " << s.N << " C " << s.C << " HW " << s.HW);
  const int64_t n = int64_t(s.N) * s.C * s.HW;
  auto x = random_vec(n, seed, -1.0f, 3.0f);
  const auto dy = random_vec(n, seed + 1);
  const auto gamma = random_vec(s.C, seed + 2, 0.5f, 1.5f), beta = random_vec(s.C, seed + 3);
  const auto rm0 = random_vec(s.C, seed + 4), rv0 = random_vec(s.C, seed + 5, 0.5f, 2.0f);
  const float eps = 1e-5f, momentum = 0.1f;

  DevBuf<float> dx_(x), ddy(dy), dg(gamma), dbt(beta), drm(rm0), drv(rv0);
  DevBuf<float> y(n), sm(s.C), si(s.C), gx(n), gg(s.C), gbt(s.C);
  std::vector<float> ry = nan_vec(n), rsm = nan_vec(s.C), rsi = nan_vec(s.C);
  std::vector<float> rrm = rm0, rrv = rv0;

  {
    INFO("forward_train then backward_train");
    y.poison();
    sm.poison();
    si.poison();
    ecu::batch_norm_forward_train(s, dx_.get(), dg.get(), dbt.get(), eps, momentum, y.get(),
                                  sm.get(), si.get(), drm.get(), drv.get(), stream());
    ecpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), eps, momentum,
                                   ry.data(), rsm.data(), rsi.data(), rrm.data(), rrv.data());
    EMBER_CHECK_CLOSE(sm.download(), rsm, kBnR, kBnS);
    EMBER_CHECK_CLOSE(si.download(), rsi, kBnR, kBnS);
    EMBER_CHECK_CLOSE(drm.download(), rrm, kBnR, kBnS);
    EMBER_CHECK_CLOSE(drv.download(), rrv, kBnR, kBnS);
    EMBER_CHECK_CLOSE(y.download(), ry, kBnR, kBnS);

    // Backward from the CPU's saved statistics so both sides use identical inputs.
    sm.upload(rsm);
    si.upload(rsi);
    std::vector<float> rgx = nan_vec(n), rgg = nan_vec(s.C), rgb = nan_vec(s.C);
    gx.poison();
    gg.poison();
    gbt.poison();
    ecu::batch_norm_backward_train(s, dx_.get(), ddy.get(), dg.get(), sm.get(), si.get(),
                                   gx.get(), gg.get(), gbt.get(), stream());
    ecpu::batch_norm_backward_train(s, x.data(), dy.data(), gamma.data(), rsm.data(), rsi.data(),
                                    rgx.data(), rgg.data(), rgb.data());
    EMBER_CHECK_CLOSE(gx.download(), rgx, kBnR, kBnS);
    EMBER_CHECK_CLOSE(gg.download(), rgg, kBnR, kBnS);
    EMBER_CHECK_CLOSE(gbt.download(), rgb, kBnR, kBnS);

    // Null gamma / beta / running stats and null gradient outputs.
    y.poison();
    ecu::batch_norm_forward_train(s, dx_.get(), nullptr, nullptr, eps, momentum, y.get(),
                                  sm.get(), si.get(), nullptr, nullptr, stream());
    ecpu::batch_norm_forward_train(s, x.data(), nullptr, nullptr, eps, momentum, ry.data(),
                                   rsm.data(), rsi.data(), nullptr, nullptr);
    EMBER_CHECK_CLOSE(y.download(), ry, kBnR, kBnS);
    sm.upload(rsm);
    si.upload(rsi);
    gg.poison();
    ecu::batch_norm_backward_train(s, dx_.get(), ddy.get(), nullptr, sm.get(), si.get(), nullptr,
                                   gg.get(), nullptr, stream());
    ecpu::batch_norm_backward_train(s, x.data(), dy.data(), nullptr, rsm.data(), rsi.data(),
                                    nullptr, rgg.data(), nullptr);
    EMBER_CHECK_CLOSE(gg.download(), rgg, kBnR, kBnS);
  }

  {
    INFO("forward_eval and backward_eval");
    drm.upload(rm0);
    drv.upload(rv0);
    y.poison();
    ecu::batch_norm_forward_eval(s, dx_.get(), dg.get(), dbt.get(), drm.get(), drv.get(), eps,
                                 y.get(), stream());
    ecpu::batch_norm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm0.data(), rv0.data(),
                                  eps, ry.data());
    EMBER_CHECK_CLOSE(y.download(), ry, kBnR, kBnS);
    std::vector<float> rgx = nan_vec(n), rgg = nan_vec(s.C), rgb = nan_vec(s.C);
    gx.poison();
    gg.poison();
    gbt.poison();
    ecu::batch_norm_backward_eval(s, dx_.get(), ddy.get(), dg.get(), drm.get(), drv.get(), eps,
                                  gx.get(), gg.get(), gbt.get(), stream());
    ecpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma.data(), rm0.data(), rv0.data(),
                                   eps, rgx.data(), rgg.data(), rgb.data());
    EMBER_CHECK_CLOSE(gx.download(), rgx, kBnR, kBnS);
    EMBER_CHECK_CLOSE(gg.download(), rgg, kBnR, kBnS);
    EMBER_CHECK_CLOSE(gbt.download(), rgb, kBnR, kBnS);
  }
}

}  // namespace

TEST_CASE("cuda batch_norm matches the CPU", "[cuda][batch_norm]") {
  EMBER_SKIP_IF_NO_GPU();
  uint32_t seed = 500;
  for (const K::BatchNormShape s :
       {K::BatchNormShape{1, 1, 1}, K::BatchNormShape{2, 3, 5}, K::BatchNormShape{3, 7, 1},
        K::BatchNormShape{5, 2, 1000}, K::BatchNormShape{gpu_or_emu(128, 8), 64, 256},
        // emulated: 512 x 64 per channel still splits each channel's reduction in four
        K::BatchNormShape{gpu_or_emu(4096, 512), 16, 64},
        K::BatchNormShape{gpu_or_emu(1000, 100), 3, 97}}) {
    check_batch_norm(s, seed);
    seed += 10;
  }
}

// ---------------------------------------------------------------------------------------------
// group_norm
// ---------------------------------------------------------------------------------------------

namespace {

void check_group_norm(const K::GroupNormShape& s, uint32_t seed) {
  INFO("group_norm N " << s.N << " C " << s.C << " HW " << s.HW << " G " << s.G);
  const int64_t n = int64_t(s.N) * s.C * s.HW, groups = int64_t(s.N) * s.G;
  const auto x = random_vec(n, seed, -1.0f, 3.0f), dy = random_vec(n, seed + 1);
  const auto gamma = random_vec(s.C, seed + 2, 0.5f, 1.5f), beta = random_vec(s.C, seed + 3);
  const float eps = 1e-5f;
  DevBuf<float> dx_(x), ddy(dy), dg(gamma), dbt(beta);
  DevBuf<float> y(n), sm(groups), sr(groups), gx(n), gg(s.C), gbt(s.C);
  std::vector<float> ry = nan_vec(n), rsm = nan_vec(groups), rsr = nan_vec(groups);

  for (bool affine : {true, false}) {
    INFO((affine ? "affine" : "no affine (null gamma / beta)"));
    const float* g_dev = affine ? dg.get() : nullptr;
    const float* g_host = affine ? gamma.data() : nullptr;
    y.poison();
    sm.poison();
    sr.poison();
    ecu::group_norm_forward(s, dx_.get(), g_dev, affine ? dbt.get() : nullptr, eps, y.get(),
                            sm.get(), sr.get(), stream());
    ecpu::group_norm_forward(s, x.data(), g_host, affine ? beta.data() : nullptr, eps, ry.data(),
                             rsm.data(), rsr.data());
    EMBER_CHECK_CLOSE(sm.download(), rsm, kBnR, kBnS);
    EMBER_CHECK_CLOSE(sr.download(), rsr, kBnR, kBnS);
    EMBER_CHECK_CLOSE(y.download(), ry, kBnR, kBnS);

    // Backward from the CPU's saved statistics so both sides use identical inputs.
    sm.upload(rsm);
    sr.upload(rsr);
    std::vector<float> rgx = nan_vec(n), rgg = nan_vec(s.C), rgb = nan_vec(s.C);
    gx.poison();
    gg.poison();
    gbt.poison();
    ecu::group_norm_backward(s, dx_.get(), ddy.get(), g_dev, sm.get(), sr.get(), gx.get(), gg.get(),
                             gbt.get(), stream());
    ecpu::group_norm_backward(s, x.data(), dy.data(), g_host, rsm.data(), rsr.data(), rgx.data(),
                              rgg.data(), rgb.data());
    EMBER_CHECK_CLOSE(gx.download(), rgx, kBnR, kBnS);
    EMBER_CHECK_CLOSE(gg.download(), rgg, kBnR, kBnS);
    EMBER_CHECK_CLOSE(gbt.download(), rgb, kBnR, kBnS);

    // Null gradient outputs: each one alone is written and equals the full call's.
    const std::vector<float> full_gx = gx.download(), full_gg = gg.download(),
                             full_gb = gbt.download();
    gx.poison();
    ecu::group_norm_backward(s, dx_.get(), ddy.get(), g_dev, sm.get(), sr.get(), gx.get(), nullptr,
                             nullptr, stream());
    CHECK(bitwise_equal(gx.download(), full_gx));
    gg.poison();
    ecu::group_norm_backward(s, dx_.get(), ddy.get(), g_dev, sm.get(), sr.get(), nullptr, gg.get(),
                             nullptr, stream());
    CHECK(bitwise_equal(gg.download(), full_gg));
    gbt.poison();
    ecu::group_norm_backward(s, dx_.get(), ddy.get(), g_dev, sm.get(), sr.get(), nullptr, nullptr,
                             gbt.get(), stream());
    CHECK(bitwise_equal(gbt.download(), full_gb));
  }
}

}  // namespace

TEST_CASE("cuda group_norm matches the CPU", "[cuda][group_norm]") {
  EMBER_SKIP_IF_NO_GPU();
  uint32_t seed = 1500;
  for (const K::GroupNormShape s :
       {K::GroupNormShape{1, 1, 1, 1}, K::GroupNormShape{2, 6, 5, 3}, K::GroupNormShape{3, 4, 1, 2},
        K::GroupNormShape{2, 5, 7, 5}, K::GroupNormShape{1, 64, 50, 1},
        // emulated: batch 2 / 32 instead of 128 / 4096
        K::GroupNormShape{gpu_or_emu(128, 2), 64, 256, 8},
        K::GroupNormShape{gpu_or_emu(128, 2), 64, 256, 64},
        K::GroupNormShape{2, 3, 100003, 1}, K::GroupNormShape{gpu_or_emu(4096, 32), 16, 1, 4},
        K::GroupNormShape{8, 32, 64, 32}}) {
    check_group_norm(s, seed);
    seed += 10;
  }
}

TEST_CASE("cuda group_norm and gelu are bitwise deterministic", "[cuda][determinism]") {
  EMBER_SKIP_IF_NO_GPU();
  const K::GroupNormShape s{gpu_or_emu(128, 8), 64, 256, 8};  // emulated: batch 8
  const int64_t n = int64_t(s.N) * s.C * s.HW, groups = int64_t(s.N) * s.G;
  DevBuf<float> x(random_vec(n, 1601, -1.0f, 3.0f)), dy(random_vec(n, 1602));
  DevBuf<float> gamma(random_vec(s.C, 1603, 0.5f, 1.5f)), beta(random_vec(s.C, 1604));
  DevBuf<float> y(n), sm(groups), sr(groups), gx(n), gg(s.C), gb(s.C), gy(n), ggx(n);
  auto run_all = [&] {
    ecu::group_norm_forward(s, x.get(), gamma.get(), beta.get(), 1e-5f, y.get(), sm.get(), sr.get(),
                            stream());
    ecu::group_norm_backward(s, x.get(), dy.get(), gamma.get(), sm.get(), sr.get(), gx.get(),
                             gg.get(), gb.get(), stream());
    ecu::gelu_forward(n, y.get(), gy.get(), stream());
    ecu::gelu_backward(n, y.get(), dy.get(), ggx.get(), stream());
    std::vector<std::vector<float>> out;
    for (DevBuf<float>* b : {&y, &sm, &sr, &gx, &gg, &gb, &gy, &ggx}) out.push_back(b->download());
    return out;
  };
  const auto first = run_all();
  const auto second = run_all();
  REQUIRE(first.size() == second.size());
  for (size_t i = 0; i < first.size(); ++i) {
    INFO("output " << i);
    CHECK(bitwise_equal(first[i], second[i]));
  }
}

// ---------------------------------------------------------------------------------------------
// max_pool2d
// ---------------------------------------------------------------------------------------------

namespace {

void check_max_pool(int N, int C, int H, int W, int k, int stride, int pad, uint32_t seed) {
  K::MaxPool2dShape s{N, C, H, W, k, stride, pad, 0, 0};
  s.OH = (H + 2 * pad - k) / stride + 1;
  s.OW = (W + 2 * pad - k) / stride + 1;
  INFO("max_pool2d N " << N << " C " << C << " H " << H << " W " << W << " k " << k << " stride "
                       << stride << " pad " << pad << " -> " << s.OH << "x" << s.OW);
  const int64_t nx = int64_t(N) * C * H * W, ny = int64_t(N) * C * s.OH * s.OW;
  const auto x = random_int_vec(nx, seed, -3, 3);  // many ties
  const auto dy = random_vec(ny, seed + 1);
  DevBuf<float> dx_(x), ddy(dy), y(ny), gx(nx);
  DevBuf<int32_t> am(ny);
  std::vector<float> ry = nan_vec(ny), rgx = nan_vec(nx);
  std::vector<int32_t> ram(size_t(ny), -7);
  y.poison();
  am.poison();
  ecu::max_pool2d_forward(s, dx_.get(), y.get(), am.get(), stream());
  ecpu::max_pool2d_forward(s, x.data(), ry.data(), ram.data());
  CHECK(bitwise_equal(y.download(), ry));
  CHECK(am.download() == ram);
  gx.poison();
  am.upload(ram);
  ecu::max_pool2d_backward(s, ddy.get(), am.get(), gx.get(), stream());
  ecpu::max_pool2d_backward(s, dy.data(), ram.data(), rgx.data());
  CHECK(bitwise_equal(gx.download(), rgx));
}

}  // namespace

TEST_CASE("cuda max_pool2d matches the CPU", "[cuda][max_pool2d]") {
  EMBER_SKIP_IF_NO_GPU();
  uint32_t seed = 600;
  check_max_pool(1, 1, 1, 1, 1, 1, 0, seed++);
  check_max_pool(2, 3, 7, 5, 3, 2, 1, seed++);
  check_max_pool(2, 2, 9, 9, 3, 1, 1, seed++);
  check_max_pool(3, 4, 8, 6, 2, 2, 1, seed++);
  check_max_pool(2, 3, 5, 5, 4, 3, 2, seed++);
  check_max_pool(2, 3, 11, 4, 2, 3, 0, seed++);  // stride > kernel: uncovered inputs
  check_max_pool(gpu_or_emu(128, 8), 16, 16, 16, 2, 2, 0, seed++);  // emulated: batch 8
  check_max_pool(gpu_or_emu(128, 8), 64, 8, 8, 2, 2, 0, seed++);
}

TEST_CASE("cuda max_pool2d propagates NaN like the CPU", "[cuda][max_pool2d]") {
  EMBER_SKIP_IF_NO_GPU();
  K::MaxPool2dShape s{1, 1, 2, 4, 2, 2, 0, 1, 2};
  const std::vector<float> x = {1.f, NAN, 3.f, 2.f, NAN, 0.f, -1.f, 5.f};
  DevBuf<float> dx_(x), y(2);
  DevBuf<int32_t> am(2);
  std::vector<float> ry(2);
  std::vector<int32_t> ram(2);
  ecu::max_pool2d_forward(s, dx_.get(), y.get(), am.get(), stream());
  ecpu::max_pool2d_forward(s, x.data(), ry.data(), ram.data());
  CHECK(bitwise_equal(y.download(), ry));
  CHECK(am.download() == ram);
}

// ---------------------------------------------------------------------------------------------
// linear
// ---------------------------------------------------------------------------------------------

namespace {

void check_linear(int M, int Kin, int Nout, uint32_t seed) {
  const K::LinearShape s{M, Kin, Nout};
  INFO("linear M " << M << " K " << Kin << " N " << Nout);
  const int64_t nx = int64_t(M) * Kin, nw = int64_t(Nout) * Kin, ny = int64_t(M) * Nout;
  const auto x = random_vec(nx, seed), w = random_vec(nw, seed + 1), b = random_vec(Nout, seed + 2);
  const auto dy = random_vec(ny, seed + 3);
  DevBuf<float> dx_(x), dw_(w), db_(b), ddy(dy), y(ny), gx(nx), gw(nw), gb(Nout);
  std::vector<float> ry = nan_vec(ny), rgx = nan_vec(nx), rgw = nan_vec(nw), rgb = nan_vec(Nout);
  y.poison();
  ecu::linear_forward(s, dx_.get(), dw_.get(), db_.get(), y.get(), stream());
  ecpu::linear_forward(s, x.data(), w.data(), b.data(), ry.data());
  EMBER_CHECK_CLOSE(y.download(), ry, kGemmR, kGemmS);
  y.poison();
  ecu::linear_forward(s, dx_.get(), dw_.get(), nullptr, y.get(), stream());
  ecpu::linear_forward(s, x.data(), w.data(), nullptr, ry.data());
  EMBER_CHECK_CLOSE(y.download(), ry, kGemmR, kGemmS);
  gx.poison();
  ecu::linear_backward_input(s, ddy.get(), dw_.get(), gx.get(), stream());
  ecpu::linear_backward_input(s, dy.data(), w.data(), rgx.data());
  EMBER_CHECK_CLOSE(gx.download(), rgx, kGemmR, kGemmS);
  gw.poison();
  gb.poison();
  ecu::linear_backward_weight(s, dx_.get(), ddy.get(), gw.get(), gb.get(), stream());
  ecpu::linear_backward_weight(s, x.data(), dy.data(), rgw.data(), rgb.data());
  EMBER_CHECK_CLOSE(gw.download(), rgw, kGemmR, kGemmS);
  EMBER_CHECK_CLOSE(gb.download(), rgb, kGemmR, kGemmS);
}

}  // namespace

TEST_CASE("cuda linear matches the CPU", "[cuda][linear]") {
  EMBER_SKIP_IF_NO_GPU();
  uint32_t seed = 700;
  check_linear(1, 1, 1, seed++);
  check_linear(7, 13, 5, seed++);
  check_linear(33, 65, 129, seed++);
  check_linear(3, 1000, 2, seed++);
  check_linear(128, 256, 10, seed++);
  check_linear(gpu_or_emu(5000, 1000), 17, 3, seed++);  // emulated: 1000 / 512 rows
  check_linear(gpu_or_emu(4096, 512), 64, 33, seed++);
}

// ---------------------------------------------------------------------------------------------
// optimizers
// ---------------------------------------------------------------------------------------------

TEST_CASE("cuda sgd_step and adam_step match the CPU", "[cuda][optim]") {
  EMBER_SKIP_IF_NO_GPU();
  const int64_t n = gpu_or_emu<int64_t>(1000003, 100003);  // emulated: 100003
  const auto p0 = random_vec(n, 801), g0 = random_vec(n, 802), g1 = random_vec(n, 803);

  struct SgdCase {
    K::SgdParams p;
    bool with_buf;
  };
  const SgdCase cases[] = {
      {K::make_sgd_params(0.1, 0.0, 0.0, 0.0, false, false), false},
      {K::make_sgd_params(0.05, 0.9, 0.0, 1e-4, false, true), true},
      {K::make_sgd_params(0.05, 0.9, 0.1, 0.0, true, true), true},
      {K::make_sgd_params(0.01, 0.5, 0.0, 0.01, true, true), true},
  };
  for (const SgdCase& c : cases) {
    INFO("sgd momentum " << c.p.momentum << " 1-dampening " << c.p.one_minus_dampening
                         << " nesterov " << c.p.nesterov);
    std::vector<float> rp = p0, rb(size_t(n), 0.0f);
    DevBuf<float> dp(p0), dg0(g0), dg1(g1), dbuf(rb);
    K::SgdParams p = c.p;
    // Two steps: the first initialises the momentum buffer.
    for (int step = 0; step < 2; ++step) {
      p.first_step = step == 0;
      const auto& g = step == 0 ? g0 : g1;
      ecu::sgd_step(n, p, dp.get(), (step == 0 ? dg0 : dg1).get(),
                    c.with_buf ? dbuf.get() : nullptr, stream());
      ecpu::sgd_step(n, p, rp.data(), g.data(), c.with_buf ? rb.data() : nullptr);
    }
    EMBER_CHECK_CLOSE(dp.download(), rp, kExactR, kExactS);
    if (c.with_buf) EMBER_CHECK_CLOSE(dbuf.download(), rb, kExactR, kExactS);
  }

  for (float wd : {0.0f, 0.01f}) {
    INFO("adam weight_decay " << wd);
    std::vector<float> rp = p0, rm(size_t(n), 0.0f), rv(size_t(n), 0.0f);
    DevBuf<float> dp(p0), dg0(g0), dg1(g1), dm(rm), dv(rv);
    for (int step = 1; step <= 3; ++step) {
      const K::AdamParams p = K::make_adam_params(1e-3, 0.9, 0.999, 1e-8, wd, step);
      const auto& g = step % 2 ? g0 : g1;
      ecu::adam_step(n, p, dp.get(), (step % 2 ? dg0 : dg1).get(), dm.get(), dv.get(), stream());
      ecpu::adam_step(n, p, rp.data(), g.data(), rm.data(), rv.data());
    }
    EMBER_CHECK_CLOSE(dp.download(), rp, kExactR, kExactS);
    EMBER_CHECK_CLOSE(dm.download(), rm, kExactR, kExactS);
    EMBER_CHECK_CLOSE(dv.download(), rv, kExactR, kExactS);
  }
}

// ---------------------------------------------------------------------------------------------
// Determinism: the same inputs give bitwise the same outputs
// ---------------------------------------------------------------------------------------------

TEST_CASE("cuda reductions and gradients are bitwise deterministic", "[cuda][determinism]") {
  EMBER_SKIP_IF_NO_GPU();
  // Emulated: batch 8 convolutions (split-K still on), 512-row linear, 128 x 64 batch norm.
  const K::Conv2dShape cs = conv_shape(gpu_or_emu(64, 8), 32, 16, 16, 32, 3, 3, 1, 1);
  const K::ConvTranspose2dShape ts = convt_shape(gpu_or_emu(64, 8), 32, 8, 8, 16, 3, 3, 2, 1, 1);
  const K::LinearShape ls{gpu_or_emu(4096, 512), 64, 33};
  const K::BatchNormShape bs{gpu_or_emu(512, 128), 16, 64};
  const int64_t ncx = int64_t(cs.N) * cs.C * cs.H * cs.W,
                ncy = int64_t(cs.N) * cs.K * cs.OH * cs.OW;
  const int64_t ntx = int64_t(ts.N) * ts.C * ts.H * ts.W,
                nty = int64_t(ts.N) * ts.K * ts.OH * ts.OW;
  const int64_t nb = int64_t(bs.N) * bs.C * bs.HW;
  DevBuf<float> cx(random_vec(ncx, 901)), cdy(random_vec(ncy, 902));
  DevBuf<float> tx(random_vec(ntx, 903)), tdy(random_vec(nty, 904));
  DevBuf<float> lx(random_vec(int64_t(ls.M) * ls.K, 905)),
      ldy(random_vec(int64_t(ls.M) * ls.N, 906));
  DevBuf<float> bx(random_vec(nb, 907)), bdy(random_vec(nb, 908));
  DevBuf<float> cdw(int64_t(cs.K) * cs.C * 9), cdb(cs.K), tdw(int64_t(ts.C) * ts.K * 9), tdb(ts.K);
  DevBuf<float> ldw(int64_t(ls.N) * ls.K), ldb(ls.N), sum1(1);
  DevBuf<float> by(nb), bm(bs.C), bi(bs.C), bgx(nb), bgg(bs.C), bgb(bs.C);

  auto run_all = [&] {
    std::vector<std::vector<float>> out;
    ecu::conv2d_backward_weight(cs, cx.get(), cdy.get(), cdw.get(), cdb.get(), stream());
    ecu::conv_transpose2d_backward_weight(ts, tx.get(), tdy.get(), tdw.get(), tdb.get(), stream());
    ecu::linear_backward_weight(ls, lx.get(), ldy.get(), ldw.get(), ldb.get(), stream());
    ecu::sum(nb, bx.get(), sum1.get(), stream());
    ecu::batch_norm_forward_train(bs, bx.get(), nullptr, nullptr, 1e-5f, 0.1f, by.get(), bm.get(),
                                  bi.get(), nullptr, nullptr, stream());
    ecu::batch_norm_backward_train(bs, bx.get(), bdy.get(), nullptr, bm.get(), bi.get(), bgx.get(),
                                   bgg.get(), bgb.get(), stream());
    for (DevBuf<float>* b : {&cdw, &cdb, &tdw, &tdb, &ldw, &ldb, &sum1, &by, &bm, &bi, &bgx, &bgg,
                             &bgb})
      out.push_back(b->download());
    return out;
  };
  const auto first = run_all();
  const auto second = run_all();
  REQUIRE(first.size() == second.size());
  for (size_t i = 0; i < first.size(); ++i) {
    INFO("output " << i);
    CHECK(bitwise_equal(first[i], second[i]));
  }
}

// ---------------------------------------------------------------------------------------------
// Caching allocator
// ---------------------------------------------------------------------------------------------

TEST_CASE("cuda caching allocator makes no cudaMalloc in steady state", "[cuda][allocator]") {
  EMBER_SKIP_IF_NO_GPU();
  ecu::CachingScope caching;  // the cache is what is tested (the suite may run in exact mode)
  ecu::CachingAllocator& A = ecu::allocator();
  // emulated: batch 8 instead of 32
  const K::Conv2dShape cs = conv_shape(gpu_or_emu(32, 8), 16, 16, 16, 16, 3, 3, 1, 1);
  const K::BatchNormShape bs{gpu_or_emu(32, 8), 16, 256};
  const int64_t nx = int64_t(cs.N) * cs.C * cs.H * cs.W;
  const auto hx = random_vec(nx, 1001);
  const auto hw = random_vec(int64_t(cs.K) * cs.C * 9, 1002);
  auto step = [&] {
    DevBuf<float> x(hx), w(hw), y(nx), dw(int64_t(cs.K) * cs.C * 9), db(cs.K), s(1);
    DevBuf<float> by(nx), bm(16), bi(16);
    ecu::conv2d_forward(cs, x.get(), w.get(), nullptr, y.get(), stream());
    ecu::conv2d_backward_weight(cs, x.get(), y.get(), dw.get(), db.get(), stream());
    ecu::batch_norm_forward_train(bs, y.get(), nullptr, nullptr, 1e-5f, 0.1f, by.get(), bm.get(),
                                  bi.get(), nullptr, nullptr, stream());
    ecu::sum(nx, by.get(), s.get(), stream());
    (void)s.download();
  };
  step();
  step();
  const uint64_t mallocs = A.raw_malloc_count();
  const uint64_t in_use = A.bytes_in_use();
  A.reset_peak();
  for (int i = 0; i < 5; ++i) step();
  CHECK(A.raw_malloc_count() == mallocs);
  CHECK(A.bytes_in_use() == in_use);
  CHECK(A.peak_bytes_in_use() > in_use);
  // The backend table reports the same counters.
  const ember::detail::CudaBackend* b = ember::detail::cuda_backend();
  REQUIRE(b != nullptr);
  CHECK(b->raw_malloc_count() == A.raw_malloc_count());
  CHECK(b->bytes_in_use() == A.bytes_in_use());
  // empty_cache releases cached blocks; the next step allocates again and still works.
  A.empty_cache();
  CHECK(A.bytes_cached() == 0);
  step();
  CHECK(A.raw_malloc_count() > mallocs);
}

TEST_CASE("cuda allocator exact mode: one cudaMalloc per request, released at once",
          "[cuda][allocator]") {
  EMBER_SKIP_IF_NO_GPU();
  ecu::CachingScope exact(false);
  ecu::CachingAllocator& A = ecu::allocator();
  CHECK_FALSE(A.caching());
  CHECK(A.bytes_cached() == 0);
  const uint64_t m0 = A.raw_malloc_count(), in0 = A.bytes_in_use();
  void* p = A.allocate(1000);
  CHECK(A.raw_malloc_count() == m0 + 1);
  CHECK(A.bytes_in_use() == in0 + 1000);  // exactly what was asked, not a 1024-byte class
  A.deallocate(p);
  CHECK(A.bytes_in_use() == in0);
  CHECK(A.bytes_cached() == 0);
  void* q = A.allocate(1000);
  CHECK(A.raw_malloc_count() == m0 + 2);  // the first block was released, not cached
  A.deallocate(q);
  {
    ecu::CachingScope caching(true);  // and back: a freed block is cached and reused
    void* r = A.allocate(1000);
    A.deallocate(r);
    const uint64_t m1 = A.raw_malloc_count();
    void* t = A.allocate(900);  // same 1024-byte class
    CHECK(A.raw_malloc_count() == m1);
    CHECK(t == r);
    A.deallocate(t);
  }
  CHECK(A.bytes_cached() == 0);  // leaving the scope released the cache
}

TEST_CASE("cuda memcpy_h2d: the host buffer may be reused or freed as soon as it returns",
          "[cuda][backend]") {
  EMBER_SKIP_IF_NO_GPU();
  const ember::detail::CudaBackend* b = ember::detail::cuda_backend();
  REQUIRE(b != nullptr);
  const int64_t n = 1 << 16;
  const std::vector<float> want = random_vec(n, 1301);
  float* d = static_cast<float*>(b->malloc(sizeof(float) * n));
  float* pinned = nullptr;
  EMBER_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&pinned), sizeof(float) * n), "test");
  for (bool page_locked : {false, true}) {
    INFO((page_locked ? "page-locked source" : "pageable source"));
    auto* heap = new std::vector<float>(want);
    float* src = page_locked ? pinned : heap->data();
    if (page_locked) std::copy(want.begin(), want.end(), pinned);
    b->memcpy_h2d(d, src, sizeof(float) * n);
    std::fill(src, src + n, -7.0f);  // overwritten at once ...
    delete heap;                     // ... and (pageable) freed
    std::vector<float> got(static_cast<size_t>(n));
    b->memcpy_d2h(got.data(), d, sizeof(float) * n);
    CHECK(bitwise_equal(got, want));
  }
  EMBER_CUDA_CHECK(cudaFreeHost(pinned), "test");
  b->free(d);
}

TEST_CASE("cuda: EMBER_CUDA_SYNC_LAUNCHES synchronises after every launch", "[cuda][error]") {
  EMBER_SKIP_IF_NO_GPU();
  const bool before = ecu::sync_launches();
  ecu::set_sync_launches(true);
  CHECK(ecu::sync_launches());
  const int64_t n = 4099;
  DevBuf<float> y(n);
  ecu::fill(n, 1.5f, y.get(), stream());
  const std::vector<float> h = y.download();
  CHECK(h.front() == 1.5f);
  CHECK(h.back() == 1.5f);
  ecu::set_sync_launches(before);
}

// Tagged [oom]: the failing cudaMalloc is reported by compute-sanitizer as an API error, so the
// sanitizer runs must exclude it (~[oom]).
TEST_CASE("cuda allocator throws on an absurd size and stays usable", "[cuda][allocator][oom]") {
  EMBER_SKIP_IF_NO_GPU();
  ecu::CachingAllocator& A = ecu::allocator();
  const size_t absurd = size_t(1) << 50;  // 1 PiB
  bool thrown = false;
  try {
    void* p = A.allocate(absurd);
    A.deallocate(p);
  } catch (const ember::Error& e) {
    thrown = true;
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("CUDA out of memory: tried to allocate " + std::to_string(absurd) + " bytes") !=
          std::string::npos);
  }
  CHECK(thrown);
  CHECK_THROWS_AS(A.allocate(SIZE_MAX), ember::Error);  // rounding overflow path
  CHECK(cudaGetLastError() == cudaSuccess);
  // A normal allocation and kernel afterwards succeed.
  DevBuf<float> ok(1 << 20);
  ecu::fill(ok.size(), 3.0f, ok.get(), stream());
  const auto h = ok.download();
  CHECK(h.front() == 3.0f);
  CHECK(h.back() == 3.0f);
}

// ---------------------------------------------------------------------------------------------
// The backend table end to end, and a non-default current stream
// ---------------------------------------------------------------------------------------------

TEST_CASE("cuda backend table runs ops end to end", "[cuda][backend]") {
  EMBER_SKIP_IF_NO_GPU();
  const ember::detail::CudaBackend* b = ember::detail::cuda_backend();
  REQUIRE(b != nullptr);
  CHECK(b->device_count() > 0);
  CHECK(std::string(b->device_name()).size() > 0);
  const int64_t n = 1000;
  const auto h = random_vec(n, 1101);
  float* a = static_cast<float*>(b->malloc(sizeof(float) * n));
  float* c = static_cast<float*>(b->malloc(sizeof(float) * n));
  b->memcpy_h2d(a, h.data(), sizeof(float) * n);
  b->memcpy_d2d(c, a, sizeof(float) * n);
  b->scale(n, 2.0f, c, c);
  b->add(n, a, c, c);  // 3a
  std::vector<float> out(static_cast<size_t>(n));
  b->memcpy_d2h(out.data(), c, sizeof(float) * n);
  std::vector<float> ref(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ref[size_t(i)] = h[size_t(i)] + 2.0f * h[size_t(i)];
  EMBER_CHECK_CLOSE(out, ref, kExactR, kExactS);
  b->synchronize();
  b->free(a);
  b->free(c);
}

TEST_CASE("cuda ops run on a non-default current stream", "[cuda][stream]") {
  EMBER_SKIP_IF_NO_GPU();
  cudaStream_t s = nullptr;
  EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "test stream");
  ecu::set_current_stream(s);
  CHECK(ecu::current_stream() == s);
  {
    const K::Conv2dShape cs = conv_shape(8, 4, 9, 9, 6, 3, 3, 1, 1);
    const int64_t nx = int64_t(cs.N) * cs.C * cs.H * cs.W, nw = int64_t(cs.K) * cs.C * 9;
    const int64_t ny = int64_t(cs.N) * cs.K * cs.OH * cs.OW;
    const auto x = random_vec(nx, 1201), w = random_vec(nw, 1202);
    DevBuf<float> dx_(x), dw_(w), y(ny);
    ecu::conv2d_forward(cs, dx_.get(), dw_.get(), nullptr, y.get(), ecu::current_stream());
    std::vector<float> ref(static_cast<size_t>(ny));
    ecpu::conv2d_forward(cs, x.data(), w.data(), nullptr, ref.data());
    EMBER_CHECK_CLOSE(y.download(), ref, kGemmR, kGemmS);
  }
  ecu::set_current_stream(cudaStreamLegacy);
  CHECK(ecu::current_stream() == cudaStreamLegacy);
  EMBER_CUDA_CHECK(cudaStreamDestroy(s), "test stream");
}
