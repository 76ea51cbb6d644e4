// @file include/ember/kernels/cpu/group_norm.hpp
// @brief Group normalisation over (N, C, HW) with G groups on CPU, as F.group_norm.
//
// Layouts (contiguous float32): x, y, dy, dx (N, C, HW); gamma, beta, dgamma, dbeta (C);
// save_mean, save_rstd (N, G), row r = n*G + g. Cg = C/G channels per group, D = Cg*HW values
// per (n, g). gamma / beta may be null (1 / 0); dx / dgamma / dbeta may be null (not computed).
// All outputs are overwritten (=).
//
// Statistics: for every (n, c) row the HW values are summed in double (fixed-lane block_sum) in
// parallel over the N*C rows; a group's row sums are then added in channel order. The order
// depends only on the shape, so results are bitwise identical for any thread count.
//   forward   mean = sum(x)/D, var = sum((x - mean)^2)/D (two passes, biased), rstd =
//             1/sqrt(var + eps); save_mean = float(mean), save_rstd = float(rstd);
//             y = (x - save_mean) * a + b with a = float(rstd * gamma[c]), b = beta[c] (float).
//   backward  with mean = save_mean, rstd = save_rstd (as doubles): per (n, c) row
//             sdy = sum(dy), sdyx = sum(dy * (x - mean)) (double); per (n, g)
//             A = sum_c gamma_c sdy, B = sum_c gamma_c sdyx (channel order);
//             dx = dy * w + (x - mean) * u + v in double, w = rstd gamma_c, u = -rstd^3 B / D,
//             v = -rstd A / D; dgamma[c] = sum_n sdyx * rstd, dbeta[c] = sum_n sdy (n order).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../params.hpp"
#include "batch_norm.hpp"  // detail::bn_row_grain, detail::bn_row_sums
#include "parallel.hpp"

namespace ember::cpu {

namespace detail {

/// out[r] = sum of the group's row sums in channel order, r = n*G + g.
inline void gn_group_fold(const kernels::GroupNormShape& s, const std::vector<double>& rows,
                          std::vector<double>& out) {
  const int cg = s.C / s.G;
  out.assign(static_cast<size_t>(int64_t(s.N) * s.G), 0.0);
  for (int64_t r = 0; r < int64_t(s.N) * s.G; ++r) {
    double acc = 0.0;
    for (int k = 0; k < cg; ++k) acc += rows[r * cg + k];  // row q = n*C + g*cg + k = r*cg + k
    out[r] = acc;
  }
}

}  // namespace detail

/// Forward: y = (x - mean) * rstd * gamma + beta per (n, g); saves mean and rstd (N*G floats).
inline void group_norm_forward(const kernels::GroupNormShape& s, const float* x, const float* gamma,
                               const float* beta, float eps, float* y, float* save_mean,
                               float* save_rstd) {
  if (s.N <= 0 || s.C <= 0 || s.HW <= 0 || s.G <= 0) return;
  const int64_t HW = s.HW;
  const int cg = s.C / s.G;
  const double D = double(cg) * double(s.HW);
  const int64_t rows = int64_t(s.N) * s.C;
  std::vector<double> rs, mean, var;
  detail::bn_row_sums(rows, s.HW, rs, [&](int64_t q, int64_t i) { return double(x[q * HW + i]); });
  detail::gn_group_fold(s, rs, mean);
  for (double& m : mean) m /= D;
  detail::bn_row_sums(rows, s.HW, rs, [&](int64_t q, int64_t i) {
    const double d = double(x[q * HW + i]) - mean[q / cg];
    return d * d;
  });
  detail::gn_group_fold(s, rs, var);
  const int64_t groups = int64_t(s.N) * s.G;
  std::vector<double> rstd(static_cast<size_t>(groups));
  for (int64_t r = 0; r < groups; ++r) {
    rstd[r] = 1.0 / std::sqrt(var[r] / D + double(eps));
    save_mean[r] = static_cast<float>(mean[r]);
    save_rstd[r] = static_cast<float>(rstd[r]);
  }
  parallel_for(rows, detail::bn_row_grain(s.HW), [&](int64_t qb, int64_t qe) {
    for (int64_t q = qb; q < qe; ++q) {
      const int c = static_cast<int>(q % s.C);
      const int64_t r = q / cg;
      const float m = save_mean[r];
      const float a = static_cast<float>(rstd[r] * (gamma ? double(gamma[c]) : 1.0));
      const float b = beta ? beta[c] : 0.0f;
      const float* xr = x + q * HW;
      float* yr = y + q * HW;
      for (int64_t i = 0; i < HW; ++i) yr[i] = (xr[i] - m) * a + b;
    }
  });
}

/// Backward with the saved statistics (see the file comment); dx, dgamma, dbeta nullable.
inline void group_norm_backward(const kernels::GroupNormShape& s, const float* x, const float* dy,
                                const float* gamma, const float* save_mean, const float* save_rstd,
                                float* dx, float* dgamma, float* dbeta) {
  if (s.N <= 0 || s.C <= 0 || s.HW <= 0 || s.G <= 0) return;
  const int64_t HW = s.HW;
  const int cg = s.C / s.G;
  const double D = double(cg) * double(s.HW);
  const int64_t rows = int64_t(s.N) * s.C;
  std::vector<double> sdy, sdyx;
  if (dx || dbeta)
    detail::bn_row_sums(rows, s.HW, sdy,
                        [&](int64_t q, int64_t i) { return double(dy[q * HW + i]); });
  if (dx || dgamma)
    detail::bn_row_sums(rows, s.HW, sdyx, [&](int64_t q, int64_t i) {
      return double(dy[q * HW + i]) * (double(x[q * HW + i]) - double(save_mean[q / cg]));
    });
  for (int c = 0; c < s.C; ++c) {
    const int g = c / cg;
    double dg = 0.0, db = 0.0;
    for (int n = 0; n < s.N; ++n) {
      const int64_t q = int64_t(n) * s.C + c;
      if (dgamma) dg += sdyx[q] * double(save_rstd[int64_t(n) * s.G + g]);
      if (dbeta) db += sdy[q];
    }
    if (dgamma) dgamma[c] = static_cast<float>(dg);
    if (dbeta) dbeta[c] = static_cast<float>(db);
  }
  if (!dx) return;
  const int64_t groups = int64_t(s.N) * s.G;
  std::vector<double> u(static_cast<size_t>(groups)), v(static_cast<size_t>(groups));
  for (int64_t r = 0; r < groups; ++r) {
    double A = 0.0, B = 0.0;
    for (int k = 0; k < cg; ++k) {
      const int64_t q = r * cg + k;
      const double g = gamma ? double(gamma[q % s.C]) : 1.0;
      A += g * sdy[q];
      B += g * sdyx[q];
    }
    const double rstd = save_rstd[r];
    u[r] = -(rstd * rstd * rstd) * B / D;
    v[r] = -rstd * A / D;
  }
  parallel_for(rows, detail::bn_row_grain(s.HW), [&](int64_t qb, int64_t qe) {
    for (int64_t q = qb; q < qe; ++q) {
      const int64_t r = q / cg;
      const double m = save_mean[r];
      const double w = double(save_rstd[r]) * (gamma ? double(gamma[q % s.C]) : 1.0);
      const double ur = u[r], vr = v[r];
      const float* xr = x + q * HW;
      const float* dyr = dy + q * HW;
      float* dxr = dx + q * HW;
      for (int64_t i = 0; i < HW; ++i)
        dxr[i] = static_cast<float>(double(dyr[i]) * w + (double(xr[i]) - m) * ur + vr);
    }
  });
}

}  // namespace ember::cpu
