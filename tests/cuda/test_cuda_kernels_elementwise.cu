// @file tests/cuda/test_cuda_kernels_elementwise.cu
// @brief CUDA elementwise, relu, gelu, concat, random, reduce and optimiser kernels vs
//        their CPU twins.
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
//        tests/support/catch_main.cpp tests/cuda/test_cuda_kernels_elementwise.cu -o /tmp/t_cuda
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"

// The kernels called directly here; the backend table itself comes from ember::cuda
// (src/cuda_backend.cu, compiled once), which the test program links.
#include <ember/kernels/cuda/concat.cuh>
#include <ember/kernels/cuda/elementwise.cuh>
#include <ember/kernels/cuda/gelu.cuh>
#include <ember/kernels/cuda/optim.cuh>
#include <ember/kernels/cuda/random.cuh>
#include <ember/kernels/cuda/reduce.cuh>
#include <ember/kernels/cuda/relu.cuh>

#include <ember/kernels/cpu/concat.hpp>
#include <ember/kernels/cpu/elementwise.hpp>
#include <ember/kernels/cpu/gelu.hpp>
#include <ember/kernels/cpu/optim.hpp>
#include <ember/kernels/cpu/random.hpp>
#include <ember/kernels/cpu/reduce.hpp>
#include <ember/kernels/cpu/relu.hpp>

namespace test_cuda_kernels_elementwise_cases {

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

}  // namespace test_cuda_kernels_elementwise_cases
