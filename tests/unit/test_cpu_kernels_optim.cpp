// @file tests/unit/test_cpu_kernels_optim.cpp
// @brief Unit tests for the CPU optimiser kernels (sgd_step, adam_step).
//
// Small cases are worked out by hand in comments; larger awkward shapes are compared with naive
// double-precision references (tests/support/naive_reference.hpp). Failure messages name the
// op, the shape and the worst element (tests/support/kernel_check.hpp).
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include "../support/kernel_check.hpp"
#include <ember/kernels/cpu/optim.hpp>
#include <ember/kernels/params.hpp>

namespace cpu_kernels_optim_test {

using namespace ember;
using ember_test::random_vec;
using kernels::AdamParams;
using kernels::SgdParams;

// ------------------------------------------------------------------------------------------
// Optimisers
// ------------------------------------------------------------------------------------------

TEST_CASE("sgd_step hand cases", "[cpu][optim]") {
  // param 1, grad 0.5, lr 0.1, momentum 0.9:
  //   step 1: buf = 0.5, p = 1 - 0.05 = 0.95
  //   step 2: buf = 0.9*0.5 + 0.5 = 0.95, p = 0.95 - 0.095 = 0.855
  // nesterov: step 1: buf = 0.5, d = 0.5 + 0.9*0.5 = 0.95, p = 0.905
  //           step 2: buf = 0.95, d = 0.5 + 0.855 = 1.355, p = 0.905 - 0.1355 = 0.7695
  // plain (momentum 0, wd 0.1): d = 0.5 + 0.1 = 0.6, p = 0.94; then d = 0.5 + 0.094, p = 0.8806
  float p[1] = {1.0f}, g[1] = {0.5f}, buf[1] = {0.0f};
  SgdParams sp = kernels::make_sgd_params(0.1, 0.9, 0.0, 0.0, false, true);
  cpu::sgd_step(1, sp, p, g, buf);
  CHECK(std::fabs(p[0] - 0.95) < 1e-6);
  CHECK(std::fabs(buf[0] - 0.5) < 1e-7);
  sp.first_step = false;
  cpu::sgd_step(1, sp, p, g, buf);
  CHECK(std::fabs(p[0] - 0.855) < 1e-6);
  CHECK(std::fabs(buf[0] - 0.95) < 1e-6);

  p[0] = 1.0f;
  SgdParams np = kernels::make_sgd_params(0.1, 0.9, 0.0, 0.0, true, true);
  cpu::sgd_step(1, np, p, g, buf);
  CHECK(std::fabs(p[0] - 0.905) < 1e-6);
  np.first_step = false;
  cpu::sgd_step(1, np, p, g, buf);
  CHECK(std::fabs(p[0] - 0.7695) < 1e-6);

  p[0] = 1.0f;
  const SgdParams pp = kernels::make_sgd_params(0.1, 0.0, 0.0, 0.1, false, true);
  cpu::sgd_step(1, pp, p, g, nullptr);
  CHECK(std::fabs(p[0] - 0.94) < 1e-6);
  cpu::sgd_step(1, pp, p, g, nullptr);
  CHECK(std::fabs(p[0] - 0.8806) < 1e-6);

  // 1 - dampening is formed in double and rounded once, as PyTorch's alpha=1-dampening: for
  // dampening 0.9 that differs from forming it from float(0.9).
  const SgdParams dp = kernels::make_sgd_params(0.1, 0.9, 0.9, 0.0, false, false);
  CHECK(dp.one_minus_dampening == static_cast<float>(1.0 - 0.9));
  CHECK(dp.one_minus_dampening != static_cast<float>(1.0 - double(0.9f)));
}

TEST_CASE("adam_step hand case", "[cpu][optim]") {
  // param 1, grad 0.5, lr 0.1, betas (0.9, 0.999), eps 1e-8, step 1:
  //   m = 0.1*0.5 = 0.05, v = 0.001*0.25 = 0.00025, bc1 = 0.1, bc2 = 0.001
  //   denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.5 + 1e-8, step size lr/bc1 = 1
  //   param = 1 - 0.05/0.5 = 0.9 (Adam's first step moves by lr in the sign of the gradient).
  float p[1] = {1.0f}, g[1] = {0.5f}, m[1] = {0.0f}, v[1] = {0.0f};
  const AdamParams ap = kernels::make_adam_params(0.1, 0.9, 0.999, 1e-8, 0.0, 1);
  cpu::adam_step(1, ap, p, g, m, v);
  CHECK(std::fabs(m[0] - 0.05) < 1e-7);
  CHECK(std::fabs(v[0] - 0.00025) < 1e-10);
  CHECK(std::fabs(p[0] - 0.9) < 1e-5);
}

TEST_CASE("optimiser steps against the formulas over several steps", "[cpu][optim]") {
  const int64_t n = 40009;
  const std::string shape = "(40009)";
  std::vector<std::vector<float>> grads;
  for (uint32_t k = 0; k < 4; ++k) grads.push_back(random_vec(size_t(n), 100 + k));
  const std::vector<float> p0 = random_vec(size_t(n), 99);

  SECTION("sgd: momentum, dampening, nesterov, weight decay") {
    struct Cfg {  // double, as SGDOptions: make_sgd_params rounds each once
      double lr, momentum, dampening, wd;
      bool nesterov;
    };
    for (const Cfg& c : {Cfg{0.1, 0.0, 0.0, 0.0, false}, Cfg{0.05, 0.9, 0.0, 1e-2, false},
                         Cfg{0.05, 0.9, 0.3, 0.0, false}, Cfg{0.02, 0.8, 0.0, 1e-3, true},
                         Cfg{0.05, 0.9, 0.9, 0.0, false}}) {
      std::vector<float> p = p0, buf(size_t(n), 0.0f);
      std::vector<double> rp(p0.begin(), p0.end()), rb(size_t(n), 0.0);
      for (size_t step = 0; step < grads.size(); ++step) {
        const SgdParams sp =
            kernels::make_sgd_params(c.lr, c.momentum, c.dampening, c.wd, c.nesterov, step == 0);
        cpu::sgd_step(n, sp, p.data(), grads[step].data(), c.momentum != 0 ? buf.data() : nullptr);
        for (size_t i = 0; i < size_t(n); ++i) {
          double d = grads[step][i] + double(c.wd) * rp[i];
          if (c.momentum != 0) {
            rb[i] = step == 0 ? d : c.momentum * rb[i] + (1.0 - c.dampening) * d;
            d = c.nesterov ? d + c.momentum * rb[i] : rb[i];
          }
          rp[i] -= c.lr * d;
        }
        std::ostringstream op;
        op << "sgd_step lr=" << c.lr << " momentum=" << c.momentum << " dampening="
           << c.dampening << " wd=" << c.wd << " nesterov=" << c.nesterov << " step "
           << step + 1;
        EXPECT_CLOSE(op.str() + " param", shape, p, rp, 1e-6, 1e-5);
        if (c.momentum != 0) EXPECT_CLOSE(op.str() + " buf", shape, buf, rb, 1e-6, 1e-5);
      }
    }
  }
  SECTION("adam: with and without weight decay") {
    for (float wd : {0.0f, 0.01f}) {
      const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
      std::vector<float> p = p0, m(size_t(n), 0.0f), v(size_t(n), 0.0f);
      std::vector<double> rp(p0.begin(), p0.end()), rm(size_t(n), 0.0), rv(size_t(n), 0.0);
      for (size_t step = 0; step < grads.size(); ++step) {
        const int t = int(step) + 1;
        const double bc1 = 1.0 - std::pow(b1, t), bc2 = 1.0 - std::pow(b2, t);
        const AdamParams ap = kernels::make_adam_params(lr, b1, b2, eps, wd, t);
        cpu::adam_step(n, ap, p.data(), grads[step].data(), m.data(), v.data());
        for (size_t i = 0; i < size_t(n); ++i) {
          const double g = grads[step][i] + double(wd) * rp[i];
          rm[i] = b1 * rm[i] + (1 - b1) * g;
          rv[i] = b2 * rv[i] + (1 - b2) * g * g;
          const double denom = std::sqrt(rv[i]) / std::sqrt(bc2) + eps;
          rp[i] -= lr / bc1 * rm[i] / denom;
        }
        std::ostringstream op;
        op << "adam_step wd=" << wd << " step " << t;
        EXPECT_CLOSE(op.str() + " param", shape, p, rp, 1e-6, 1e-5);
        EXPECT_CLOSE(op.str() + " m", shape, m, rm, 1e-7, 1e-5);
        EXPECT_CLOSE(op.str() + " v", shape, v, rv, 1e-9, 1e-4);
      }
    }
  }
}

}  // namespace cpu_kernels_optim_test
