// @file tests/unit/test_cpu_kernels_norm.cpp
// @brief Unit tests for the CPU batch_norm (training and eval) and group_norm kernels.
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
#include "../support/naive_reference.hpp"
#include <ember/kernels/cpu/batch_norm.hpp>
#include <ember/kernels/cpu/group_norm.hpp>
#include <ember/kernels/params.hpp>

namespace cpu_kernels_norm_test {

using namespace ember;
using ember_test::random_vec;
namespace naive = ember_test::naive;
using kernels::BatchNormShape;
using kernels::GroupNormShape;

// ------------------------------------------------------------------------------------------
// Batch norm
// ------------------------------------------------------------------------------------------

TEST_CASE("batch_norm hand case (N=2, C=1, HW=2)", "[cpu][batch_norm]") {
  // x = [[1, 3], [5, 7]]: M = 4, mean = 4, deviations -3 -1 1 3, biased var = 20/4 = 5.
  // eps = 4 so var + eps = 9 and invstd = 1/3; xhat = [-1, -1/3, 1/3, 1].
  // gamma = 2, beta = 0.5: y = 2 xhat + 0.5 = [-1.5, -1/6, 7/6, 2.5].
  // running (momentum 0.1, rm = 0, rv = 1): rm = 0.1 * 4 = 0.4;
  //   unbiased var = 5 * 4/3 = 20/3, rv = 0.9 * 1 + 0.1 * 20/3 = 0.9 + 2/3 = 1.5666...
  // Backward with dy = [1, 0, 0, 0]: sum(dy) = 1, sum(dy xhat) = -1 -> dgamma = -1, dbeta = 1;
  //   dx = gamma invstd / M (M dy - 1 + xhat) = (1/6)(4 dy - 1 + xhat)
  //      = [(4-1-1)/6, (-1-1/3)/6, (-1+1/3)/6, 0] = [1/3, -2/9, -1/9, 0] (sums to 0).
  const BatchNormShape s{2, 1, 2};
  const std::vector<float> x = {1, 3, 5, 7}, dy = {1, 0, 0, 0};
  const float gamma[1] = {2.0f}, beta[1] = {0.5f};
  std::vector<float> y(4), dx(4);
  float mean[1], invstd[1], rm[1] = {0.0f}, rv[1] = {1.0f}, dgamma[1], dbeta[1];
  const std::string shape = ember_test::shape_str(s);

  cpu::batch_norm_forward_train(s, x.data(), gamma, beta, 4.0f, 0.1f, y.data(), mean, invstd,
                                rm, rv);
  EXPECT_CLOSE("batch_norm_forward_train y", shape, y,
               (std::vector<double>{-1.5, -1.0 / 6, 7.0 / 6, 2.5}), 1e-6, 1e-6);
  EXPECT_CLOSE("batch_norm_forward_train save_mean", shape, std::vector<float>{mean[0]},
               std::vector<double>{4.0}, 0.0, 0.0);
  EXPECT_CLOSE("batch_norm_forward_train save_invstd", shape, std::vector<float>{invstd[0]},
               std::vector<double>{1.0 / 3}, 0.0, 1e-7);
  EXPECT_CLOSE("batch_norm_forward_train running_mean", shape, std::vector<float>{rm[0]},
               std::vector<double>{0.4}, 0.0, 1e-6);
  EXPECT_CLOSE("batch_norm_forward_train running_var", shape, std::vector<float>{rv[0]},
               std::vector<double>{0.9 + 2.0 / 3}, 0.0, 1e-6);

  cpu::batch_norm_backward_train(s, x.data(), dy.data(), gamma, mean, invstd, dx.data(), dgamma,
                                 dbeta);
  EXPECT_CLOSE("batch_norm_backward_train dx", shape, dx,
               (std::vector<double>{1.0 / 3, -2.0 / 9, -1.0 / 9, 0.0}), 1e-6, 1e-6);
  EXPECT_CLOSE("batch_norm_backward_train dgamma", shape, std::vector<float>{dgamma[0]},
               std::vector<double>{-1.0}, 1e-6, 1e-6);
  EXPECT_CLOSE("batch_norm_backward_train dbeta", shape, std::vector<float>{dbeta[0]},
               std::vector<double>{1.0}, 0.0, 0.0);

  // Eval with running stats (mean 4, var 5), eps 4: same y; dx = dy * gamma / 3 = [2/3, 0, 0, 0];
  // dgamma = sum(dy * xhat) = -1, dbeta = 1.
  const float erm[1] = {4.0f}, erv[1] = {5.0f};
  cpu::batch_norm_forward_eval(s, x.data(), gamma, beta, erm, erv, 4.0f, y.data());
  EXPECT_CLOSE("batch_norm_forward_eval y", shape, y,
               (std::vector<double>{-1.5, -1.0 / 6, 7.0 / 6, 2.5}), 1e-6, 1e-6);
  cpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma, erm, erv, 4.0f, dx.data(), dgamma,
                                dbeta);
  EXPECT_CLOSE("batch_norm_backward_eval dx", shape, dx,
               (std::vector<double>{2.0 / 3, 0, 0, 0}), 1e-7, 1e-6);
  EXPECT_CLOSE("batch_norm_backward_eval dgamma", shape, std::vector<float>{dgamma[0]},
               std::vector<double>{-1.0}, 1e-6, 1e-6);
  EXPECT_CLOSE("batch_norm_backward_eval dbeta", shape, std::vector<float>{dbeta[0]},
               std::vector<double>{1.0}, 0.0, 0.0);

  // Running stats are nullable.
  cpu::batch_norm_forward_train(s, x.data(), gamma, beta, 4.0f, 0.1f, y.data(), mean, invstd,
                                nullptr, nullptr);
  EXPECT_CLOSE("batch_norm_forward_train (no running stats) y", shape, y,
               (std::vector<double>{-1.5, -1.0 / 6, 7.0 / 6, 2.5}), 1e-6, 1e-6);
}

TEST_CASE("batch_norm against a double reference on awkward shapes", "[cpu][batch_norm]") {
  for (const BatchNormShape& s :
       {BatchNormShape{3, 5, 37}, BatchNormShape{1, 7, 1}, BatchNormShape{4, 3, 10007},
        BatchNormShape{64, 2, 3}}) {
    const size_t total = size_t(s.N) * size_t(s.C) * size_t(s.HW);
    // An offset mean makes the variance computation sensitive to cancellation.
    const std::vector<float> x = random_vec(total, 21, 9.0f, 13.0f);
    const std::vector<float> dy = random_vec(total, 22);
    const std::vector<float> gamma = random_vec(size_t(s.C), 23, 0.5f, 1.5f);
    const std::vector<float> beta = random_vec(size_t(s.C), 24);
    const std::vector<float> rm0 = random_vec(size_t(s.C), 25);
    const std::vector<float> rv0 = random_vec(size_t(s.C), 26, 0.5f, 2.0f);
    const float eps = 1e-5f, momentum = 0.1f;
    const std::string shape = ember_test::shape_str(s);

    const naive::BatchNorm r = naive::batch_norm(s, x.data(), dy.data(), gamma.data(), beta.data(),
                                                 rm0.data(), rv0.data(), eps, momentum, false);
    std::vector<float> y(total), dx(total), mean(size_t(s.C)), invstd(size_t(s.C)), rm = rm0,
        rv = rv0, dgamma(size_t(s.C)), dbeta(size_t(s.C));
    cpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), eps, momentum,
                                  y.data(), mean.data(), invstd.data(), rm.data(), rv.data());
    EXPECT_CLOSE("batch_norm_forward_train y", shape, y, r.y, 1e-5, 1e-5);
    EXPECT_CLOSE("batch_norm_forward_train save_mean", shape, mean, r.mean, 0.0, 1e-7);
    EXPECT_CLOSE("batch_norm_forward_train save_invstd", shape, invstd, r.invstd, 0.0, 1e-6);
    EXPECT_CLOSE("batch_norm_forward_train running_mean", shape, rm, r.running_mean, 1e-7, 1e-6);
    EXPECT_CLOSE("batch_norm_forward_train running_var", shape, rv, r.running_var, 1e-7, 1e-6);

    cpu::batch_norm_backward_train(s, x.data(), dy.data(), gamma.data(), mean.data(),
                                   invstd.data(), dx.data(), dgamma.data(), dbeta.data());
    EXPECT_CLOSE("batch_norm_backward_train dx", shape, dx, r.dx, 1e-5, 1e-4);
    EXPECT_CLOSE("batch_norm_backward_train dgamma", shape, dgamma, r.dgamma, 1e-4, 1e-4);
    EXPECT_CLOSE("batch_norm_backward_train dbeta", shape, dbeta, r.dbeta, 1e-5, 1e-6);

    // Bitwise repeatable.
    std::vector<float> dx2(total), y2(total);
    cpu::batch_norm_backward_train(s, x.data(), dy.data(), gamma.data(), mean.data(),
                                   invstd.data(), dx2.data(), nullptr, nullptr);
    EXPECT_CLOSE("batch_norm_backward_train repeat dx", shape, dx2, dx, 0.0, 0.0);

    const naive::BatchNorm e = naive::batch_norm(s, x.data(), dy.data(), gamma.data(), beta.data(),
                                                 rm0.data(), rv0.data(), eps, momentum, true);
    cpu::batch_norm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm0.data(), rv0.data(),
                                 eps, y2.data());
    EXPECT_CLOSE("batch_norm_forward_eval y", shape, y2, e.y, 1e-5, 1e-5);
    cpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma.data(), rm0.data(), rv0.data(),
                                  eps, dx.data(), dgamma.data(), dbeta.data());
    EXPECT_CLOSE("batch_norm_backward_eval dx", shape, dx, e.dx, 1e-6, 1e-5);
    EXPECT_CLOSE("batch_norm_backward_eval dgamma", shape, dgamma, e.dgamma, 1e-4, 1e-4);
    EXPECT_CLOSE("batch_norm_backward_eval dbeta", shape, dbeta, e.dbeta, 1e-5, 1e-6);
  }
}

// ------------------------------------------------------------------------------------------
// Group norm
// ------------------------------------------------------------------------------------------

TEST_CASE("group_norm hand case (N=1, C=2, HW=2, G=1)", "[cpu][group_norm]") {
  // x = [[1, 3], [5, 7]] in one group: D = 4, mean = 4, deviations -3 -1 1 3, biased var = 5.
  // eps = 4 so var + eps = 9 and rstd = 1/3; xhat = [-1, -1/3, 1/3, 1].
  // gamma = [2, 1], beta = [0.5, -1]: y = [-2 + 0.5, -2/3 + 0.5, 1/3 - 1, 1 - 1]
  //                                      = [-1.5, -1/6, -2/3, 0].
  // Backward with dy = [1, 0, 0, 0]: g = dy*gamma = [2, 0, 0, 0]; sum g = 2, sum g xhat = -2.
  //   dx = rstd/D (D g - sum g - xhat sum(g xhat)) = (1/12)(4g - 2 + 2 xhat)
  //      = [(8-2-2)/12, (-2-2/3)/12, (-2+2/3)/12, 0] = [1/3, -2/9, -1/9, 0] (sums to 0);
  //   dgamma = [sum over channel 0 of dy xhat, 0] = [-1, 0]; dbeta = [1, 0].
  const GroupNormShape s{1, 2, 2, 1};
  const std::vector<float> x = {1, 3, 5, 7}, dy = {1, 0, 0, 0};
  const float gamma[2] = {2.0f, 1.0f}, beta[2] = {0.5f, -1.0f};
  std::vector<float> y(4), dx(4), dgamma(2), dbeta(2);
  float mean[1], rstd[1];
  const std::string shape = ember_test::shape_str(s);

  cpu::group_norm_forward(s, x.data(), gamma, beta, 4.0f, y.data(), mean, rstd);
  EXPECT_CLOSE("group_norm_forward y", shape, y,
               (std::vector<double>{-1.5, -1.0 / 6, -2.0 / 3, 0.0}), 1e-6, 1e-6);
  EXPECT_CLOSE("group_norm_forward save_mean", shape, std::vector<float>{mean[0]},
               std::vector<double>{4.0}, 0.0, 0.0);
  EXPECT_CLOSE("group_norm_forward save_rstd", shape, std::vector<float>{rstd[0]},
               std::vector<double>{1.0 / 3}, 0.0, 1e-7);
  cpu::group_norm_backward(s, x.data(), dy.data(), gamma, mean, rstd, dx.data(), dgamma.data(),
                           dbeta.data());
  EXPECT_CLOSE("group_norm_backward dx", shape, dx,
               (std::vector<double>{1.0 / 3, -2.0 / 9, -1.0 / 9, 0.0}), 1e-6, 1e-6);
  EXPECT_CLOSE("group_norm_backward dgamma", shape, dgamma, (std::vector<double>{-1.0, 0.0}), 1e-6,
               1e-6);
  EXPECT_CLOSE("group_norm_backward dbeta", shape, dbeta, (std::vector<double>{1.0, 0.0}), 0.0,
               0.0);

  // G = C = 2: each channel is its own group. Channel 0 [1, 3]: mean 2, var 1; channel 1
  // [5, 7]: mean 6, var 1; eps = 3 so rstd = 1/2 and xhat = [-1/2, 1/2, -1/2, 1/2];
  // y = [2 (-1/2) + 0.5, 2 (1/2) + 0.5, -1/2 - 1, 1/2 - 1] = [-0.5, 1.5, -1.5, -0.5].
  const GroupNormShape s2{1, 2, 2, 2};
  float mean2[2], rstd2[2];
  cpu::group_norm_forward(s2, x.data(), gamma, beta, 3.0f, y.data(), mean2, rstd2);
  EXPECT_CLOSE("group_norm_forward (G = C) y", ember_test::shape_str(s2), y,
               (std::vector<double>{-0.5, 1.5, -1.5, -0.5}), 1e-6, 1e-6);
  EXPECT_CLOSE("group_norm_forward (G = C) save_mean", ember_test::shape_str(s2),
               (std::vector<float>{mean2[0], mean2[1]}), (std::vector<double>{2.0, 6.0}), 0.0, 0.0);
  EXPECT_CLOSE("group_norm_forward (G = C) save_rstd", ember_test::shape_str(s2),
               (std::vector<float>{rstd2[0], rstd2[1]}), (std::vector<double>{0.5, 0.5}), 0.0, 0.0);
}

TEST_CASE("group_norm against a double reference on awkward shapes", "[cpu][group_norm]") {
  for (const GroupNormShape& s :
       {GroupNormShape{3, 6, 37, 3}, GroupNormShape{1, 1, 1, 1}, GroupNormShape{2, 12, 1, 4},
        GroupNormShape{4, 8, 10007, 2}, GroupNormShape{64, 4, 3, 4}, GroupNormShape{1, 64, 50, 1},
        GroupNormShape{5, 9, 7, 3}}) {
    const size_t total = size_t(s.N) * size_t(s.C) * size_t(s.HW);
    const size_t groups = size_t(s.N) * size_t(s.G);
    // An offset mean makes the variance computation sensitive to cancellation.
    const std::vector<float> x = random_vec(total, 31, 9.0f, 13.0f);
    const std::vector<float> dy = random_vec(total, 32);
    const std::vector<float> gamma = random_vec(size_t(s.C), 33, 0.5f, 1.5f);
    const std::vector<float> beta = random_vec(size_t(s.C), 34);
    const float eps = 1e-5f;
    const std::string shape = ember_test::shape_str(s);

    const naive::GroupNorm r = naive::group_norm(s, x.data(), dy.data(), gamma.data(), beta.data(), eps);
    std::vector<float> y(total), dx(total), mean(groups), rstd(groups), dgamma(size_t(s.C)),
        dbeta(size_t(s.C));
    cpu::group_norm_forward(s, x.data(), gamma.data(), beta.data(), eps, y.data(), mean.data(),
                            rstd.data());
    EXPECT_CLOSE("group_norm_forward y", shape, y, r.y, 1e-5, 1e-5);
    EXPECT_CLOSE("group_norm_forward save_mean", shape, mean, r.mean, 0.0, 1e-7);
    EXPECT_CLOSE("group_norm_forward save_rstd", shape, rstd, r.rstd, 0.0, 1e-6);

    cpu::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), rstd.data(),
                             dx.data(), dgamma.data(), dbeta.data());
    EXPECT_CLOSE("group_norm_backward dx", shape, dx, r.dx, 1e-5, 1e-4);
    EXPECT_CLOSE("group_norm_backward dgamma", shape, dgamma, r.dgamma, 1e-4, 1e-4);
    EXPECT_CLOSE("group_norm_backward dbeta", shape, dbeta, r.dbeta, 1e-5, 1e-6);

    // Bitwise repeatable, and each nullable output alone equals the full call's.
    std::vector<float> y2(total), m2(groups), r2(groups), dx2(total), dg2(size_t(s.C)),
        db2(size_t(s.C));
    cpu::group_norm_forward(s, x.data(), gamma.data(), beta.data(), eps, y2.data(), m2.data(),
                            r2.data());
    EXPECT_CLOSE("group_norm_forward repeat y", shape, y2, y, 0.0, 0.0);
    EXPECT_CLOSE("group_norm_forward repeat save_rstd", shape, r2, rstd, 0.0, 0.0);
    cpu::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), rstd.data(),
                             dx2.data(), nullptr, nullptr);
    EXPECT_CLOSE("group_norm_backward dx only", shape, dx2, dx, 0.0, 0.0);
    cpu::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), rstd.data(),
                             nullptr, dg2.data(), nullptr);
    EXPECT_CLOSE("group_norm_backward dgamma only", shape, dg2, dgamma, 0.0, 0.0);
    cpu::group_norm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), rstd.data(),
                             nullptr, nullptr, db2.data());
    EXPECT_CLOSE("group_norm_backward dbeta only", shape, db2, dbeta, 0.0, 0.0);

    // Null gamma / beta (affine off) against the reference with gamma = 1, beta = 0, and
    // bitwise equal to passing ones and zeros.
    const naive::GroupNorm r0 = naive::group_norm(s, x.data(), dy.data(), nullptr, nullptr, eps);
    const std::vector<float> ones(size_t(s.C), 1.0f), zeros(size_t(s.C), 0.0f);
    cpu::group_norm_forward(s, x.data(), nullptr, nullptr, eps, y.data(), mean.data(), rstd.data());
    EXPECT_CLOSE("group_norm_forward (no affine) y", shape, y, r0.y, 1e-5, 1e-5);
    cpu::group_norm_forward(s, x.data(), ones.data(), zeros.data(), eps, y2.data(), m2.data(),
                            r2.data());
    EXPECT_CLOSE("group_norm_forward (ones, zeros) y", shape, y2, y, 0.0, 0.0);
    cpu::group_norm_backward(s, x.data(), dy.data(), nullptr, mean.data(), rstd.data(), dx.data(),
                             dgamma.data(), dbeta.data());
    EXPECT_CLOSE("group_norm_backward (no affine) dx", shape, dx, r0.dx, 1e-5, 1e-4);
    EXPECT_CLOSE("group_norm_backward (no affine) dgamma", shape, dgamma, r0.dgamma, 1e-4, 1e-4);
  }
}

}  // namespace cpu_kernels_norm_test
