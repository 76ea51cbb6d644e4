// @file tests/cuda/test_cuda_kernels_norm_pool.cu
// @brief CUDA batch_norm, group_norm and max_pool2d kernels vs their CPU twins.
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
//        tests/support/catch_main.cpp tests/cuda/test_cuda_kernels_norm_pool.cu -o /tmp/t_cuda
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"

// The kernels called directly here; the backend table itself comes from ember::cuda
// (src/cuda_backend.cu, compiled once), which the test program links.
#include <ember/kernels/cuda/batch_norm.cuh>
#include <ember/kernels/cuda/gelu.cuh>
#include <ember/kernels/cuda/group_norm.cuh>
#include <ember/kernels/cuda/max_pool2d.cuh>

#include <ember/kernels/cpu/batch_norm.hpp>
#include <ember/kernels/cpu/gelu.hpp>
#include <ember/kernels/cpu/group_norm.hpp>
#include <ember/kernels/cpu/max_pool2d.hpp>

namespace test_cuda_kernels_norm_pool_cases {

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

}  // namespace test_cuda_kernels_norm_pool_cases
