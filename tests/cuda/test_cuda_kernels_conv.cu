// @file tests/cuda/test_cuda_kernels_conv.cu
// @brief CUDA conv2d, conv_transpose2d and linear kernels vs their CPU twins, and the
//        bitwise determinism of the reductions and weight gradients.
//
// Every kernel runs on random inputs at small awkward shapes and at a few large ones; the
// result is compared with include/ember/kernels/cpu/*.hpp. GPU tests skip visibly without a device
// (EMBER_SKIP_IF_NO_GPU). Outputs are poisoned with NaN before each kernel runs, so an element
// the kernel forgot to write fails the comparison. Shared helpers and tolerances:
// tests/cuda/cuda_test_util.hpp.
//
// Build (from the repository root):
//   nvcc -std=c++17 -O2 -arch=sm_80 -gencode arch=compute_80,code=sm_80
//        -gencode arch=compute_90,code=sm_90 -Xcompiler -Wall,-Wextra,-Werror -I include -I .
//        tests/support/catch_main.cpp tests/cuda/test_cuda_kernels_conv.cu -o /tmp/t_cuda
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"

// The kernels called directly here; the backend table itself comes from ember::cuda
// (src/cuda_backend.cu, compiled once), which the test program links.
#include <ember/kernels/cuda/batch_norm.cuh>
#include <ember/kernels/cuda/conv2d.cuh>
#include <ember/kernels/cuda/conv_transpose2d.cuh>
#include <ember/kernels/cuda/linear.cuh>
#include <ember/kernels/cuda/reduce.cuh>

#include <ember/kernels/cpu/batch_norm.hpp>
#include <ember/kernels/cpu/conv2d.hpp>
#include <ember/kernels/cpu/conv_transpose2d.hpp>
#include <ember/kernels/cpu/linear.hpp>
#include <ember/kernels/cpu/reduce.hpp>

namespace test_cuda_kernels_conv_cases {

using namespace ember_cuda_test::tolerances;
using ember_cuda_test::bitwise_equal;
using ember_cuda_test::conv_shape;
using ember_cuda_test::DevBuf;
using ember_cuda_test::gpu_or_emu;
using ember_cuda_test::nan_vec;
using ember_cuda_test::random_int_vec;
using ember_cuda_test::random_vec;
using ember_cuda_test::stream;
namespace K = ember::kernels;
namespace ecu = ember::cuda;
namespace ecpu = ember::cpu;

// ---------------------------------------------------------------------------------------------
// conv2d
// ---------------------------------------------------------------------------------------------

namespace {

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

}  // namespace test_cuda_kernels_conv_cases
