// @file include/ember/kernels/cpu/batch_norm.hpp
// @brief Batch normalisation over (N, C, HW) on CPU, as PyTorch's BatchNorm (CPU path).
//
// Statistics: for every (channel c, sample n) the HW-row sums are taken in double (fixed-lane
// block_sum) in parallel over the N*C rows; a channel's row sums are then added in n order. The
// order depends only on the shape, so results are bitwise identical for any thread count.
// Forward uses the two-pass formula (mean, then sum of squared deviations).
// gamma / beta may be null (treated as 1 / 0); dgamma / dbeta may be null (not computed).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../params.hpp"
#include "parallel.hpp"
#include "reduce.hpp"

namespace ember::cpu {

namespace detail {

/// Row grain for parallel loops over (n, c) rows of length HW: aim for >= 32K elements a chunk.
inline int64_t bn_row_grain(int HW) {
  return std::max<int64_t>(1, (int64_t(1) << 15) / std::max(1, HW));
}

/// out[r] = sum_{i < HW} f(r, i) in double (fixed-lane block_sum) for every row r < rows, in
/// parallel over the rows; deterministic. Also group_norm.hpp's per-(n, c) row sums.
template <class F>
inline void bn_row_sums(int64_t rows, int HW, std::vector<double>& out, const F& f) {
  out.assign(static_cast<size_t>(rows), 0.0);
  parallel_for(rows, bn_row_grain(HW), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) out[r] = block_sum(0, HW, [&](int64_t i) { return f(r, i); });
  });
}

/// out[c] = sum_{n, hw} f(row = n*C + c, hw) in double: bn_row_sums, then each channel's row
/// sums added in n order; deterministic.
template <class F>
inline void bn_channel_sums(const kernels::BatchNormShape& s, std::vector<double>& out,
                            const F& f) {
  std::vector<double> row_sum;
  bn_row_sums(int64_t(s.N) * s.C, s.HW, row_sum, f);
  out.assign(static_cast<size_t>(s.C), 0.0);
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) out[c] += row_sum[int64_t(n) * s.C + c];
}

/// y[row, i] = (x[row, i] - m[c]) * a[c] + b[c] over all (n, c) rows. Subtracting the mean
/// first (rather than folding it into b as x*a + (b - m*a)) avoids cancellation when |m|*a is
/// large, e.g. a near-constant channel.
inline void bn_affine_rows(const kernels::BatchNormShape& s, const float* x, const float* m,
                           const float* a, const float* b, float* y) {
  const int64_t rows = int64_t(s.N) * s.C;
  const int64_t HW = s.HW;
  parallel_for(rows, bn_row_grain(s.HW), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const int c = static_cast<int>(r % s.C);
      const float mc = m[c], ac = a[c], bc = b[c];
      const float* xr = x + r * HW;
      float* yr = y + r * HW;
      for (int64_t i = 0; i < HW; ++i) yr[i] = (xr[i] - mc) * ac + bc;
    }
  });
}

/// Shared backward: dx = (dy - mean_dy_term - (x - mean) * k) * (gamma * invstd) for training,
/// dx = dy * gamma * invstd for eval; dgamma = sum(dy * (x - mean)) * invstd; dbeta = sum(dy).
inline void bn_backward(const kernels::BatchNormShape& s, const float* x, const float* dy,
                        const float* gamma, const double* mean, const double* invstd,
                        bool train, float* dx, float* dgamma, float* dbeta) {
  const int64_t HW = s.HW;
  const double M = double(s.N) * double(s.HW);
  std::vector<double> sum_dy, dotp;
  bn_channel_sums(s, sum_dy, [&](int64_t r, int64_t i) { return double(dy[r * HW + i]); });
  bn_channel_sums(s, dotp, [&](int64_t r, int64_t i) {
    const int c = static_cast<int>(r % s.C);
    return (double(x[r * HW + i]) - mean[c]) * double(dy[r * HW + i]);
  });
  for (int c = 0; c < s.C; ++c) {
    if (dgamma) dgamma[c] = static_cast<float>(dotp[c] * invstd[c]);
    if (dbeta) dbeta[c] = static_cast<float>(sum_dy[c]);
  }
  if (!dx) return;
  // Per channel: dx = dy * w + x * u + v, with coefficients in double and the elementwise part
  // evaluated in double too (cheap next to the memory traffic, and avoids cancellation).
  std::vector<double> w(s.C), u(s.C), v(s.C);
  for (int c = 0; c < s.C; ++c) {
    const double g = gamma ? double(gamma[c]) : 1.0;
    w[c] = g * invstd[c];
    if (train && M > 0) {
      const double k = dotp[c] * invstd[c] * invstd[c] / M;  // coefficient of (x - mean)
      u[c] = -w[c] * k;
      v[c] = -w[c] * (sum_dy[c] / M) + w[c] * k * mean[c];
    } else {
      u[c] = 0.0;
      v[c] = 0.0;
    }
  }
  const int64_t rows = int64_t(s.N) * s.C;
  parallel_for(rows, bn_row_grain(s.HW), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const int c = static_cast<int>(r % s.C);
      const double wc = w[c], uc = u[c], vc = v[c];
      const float* xr = x + r * HW;
      const float* dyr = dy + r * HW;
      float* dxr = dx + r * HW;
      if (uc == 0.0 && vc == 0.0) {
        const float wf = static_cast<float>(wc);
        for (int64_t i = 0; i < HW; ++i) dxr[i] = dyr[i] * wf;
      } else {
        for (int64_t i = 0; i < HW; ++i)
          dxr[i] = static_cast<float>(double(dyr[i]) * wc + double(xr[i]) * uc + vc);
      }
    }
  });
}

}  // namespace detail

/// Training forward: normalise with the batch mean and biased variance; save_mean / save_invstd
/// (per channel) get mean and 1/sqrt(var + eps); running stats (nullable) are updated with the
/// unbiased variance var * M / (M - 1), M = N*HW (the biased one when M == 1).
inline void batch_norm_forward_train(const kernels::BatchNormShape& s, const float* x,
                                     const float* gamma, const float* beta, float eps,
                                     float momentum, float* y, float* save_mean,
                                     float* save_invstd, float* running_mean,
                                     float* running_var) {
  const int64_t HW = s.HW;
  const double M = double(s.N) * double(s.HW);
  std::vector<double> mean, var;
  detail::bn_channel_sums(s, mean, [&](int64_t r, int64_t i) { return double(x[r * HW + i]); });
  for (int c = 0; c < s.C; ++c) mean[c] = M > 0 ? mean[c] / M : 0.0;
  detail::bn_channel_sums(s, var, [&](int64_t r, int64_t i) {
    const double d = double(x[r * HW + i]) - mean[static_cast<int>(r % s.C)];
    return d * d;
  });
  std::vector<float> a(s.C), b(s.C);
  for (int c = 0; c < s.C; ++c) {
    var[c] = M > 0 ? var[c] / M : 0.0;
    const double invstd = 1.0 / std::sqrt(var[c] + double(eps));
    save_mean[c] = static_cast<float>(mean[c]);
    save_invstd[c] = static_cast<float>(invstd);
    const double g = gamma ? double(gamma[c]) : 1.0;
    const double bt = beta ? double(beta[c]) : 0.0;
    a[c] = static_cast<float>(invstd * g);
    b[c] = static_cast<float>(bt);
    const double mom = double(momentum);
    if (running_mean)
      running_mean[c] = static_cast<float>((1.0 - mom) * double(running_mean[c]) + mom * mean[c]);
    if (running_var) {
      const double unbiased = M > 1 ? var[c] * M / (M - 1.0) : var[c];
      running_var[c] = static_cast<float>((1.0 - mom) * double(running_var[c]) + mom * unbiased);
    }
  }
  detail::bn_affine_rows(s, x, save_mean, a.data(), b.data(), y);
}

/// Eval forward: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
inline void batch_norm_forward_eval(const kernels::BatchNormShape& s, const float* x,
                                    const float* gamma, const float* beta,
                                    const float* running_mean, const float* running_var,
                                    float eps, float* y) {
  std::vector<float> a(s.C), b(s.C);
  for (int c = 0; c < s.C; ++c) {
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    const double g = gamma ? double(gamma[c]) : 1.0;
    const double bt = beta ? double(beta[c]) : 0.0;
    a[c] = static_cast<float>(invstd * g);
    b[c] = static_cast<float>(bt);
  }
  detail::bn_affine_rows(s, x, running_mean, a.data(), b.data(), y);
}

/// Training backward with the saved batch statistics:
/// dx = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)); dgamma = sum(dy*xhat);
/// dbeta = sum(dy). dx, dgamma, dbeta nullable.
inline void batch_norm_backward_train(const kernels::BatchNormShape& s, const float* x,
                                      const float* dy, const float* gamma,
                                      const float* save_mean, const float* save_invstd,
                                      float* dx, float* dgamma, float* dbeta) {
  std::vector<double> mean(s.C), invstd(s.C);
  for (int c = 0; c < s.C; ++c) {
    mean[c] = save_mean[c];
    invstd[c] = save_invstd[c];
  }
  detail::bn_backward(s, x, dy, gamma, mean.data(), invstd.data(), true, dx, dgamma, dbeta);
}

/// Eval backward with the running statistics: dx = dy * gamma / sqrt(running_var + eps);
/// dgamma = sum(dy * xhat) with xhat from the running stats; dbeta = sum(dy).
inline void batch_norm_backward_eval(const kernels::BatchNormShape& s, const float* x,
                                     const float* dy, const float* gamma,
                                     const float* running_mean, const float* running_var,
                                     float eps, float* dx, float* dgamma, float* dbeta) {
  std::vector<double> mean(s.C), invstd(s.C);
  for (int c = 0; c < s.C; ++c) {
    mean[c] = running_mean[c];
    invstd[c] = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
  }
  detail::bn_backward(s, x, dy, gamma, mean.data(), invstd.data(), false, dx, dgamma, dbeta);
}

}  // namespace ember::cpu
