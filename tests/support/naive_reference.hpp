// @file tests/support/naive_reference.hpp
// @brief Naive double-precision references, one per op, straight from the definitions in
//        include/ember/kernels/params.hpp: conv2d, conv_transpose2d and linear (forward,
//        backward-input, backward-weight and bias gradient), batch norm (training and eval),
//        group norm and max pooling (forward and backward).
//
// Shared by the CPU kernel tests (tests/unit/test_cpu_conv_kernels.cpp,
// tests/unit/test_cpu_kernels_norm.cpp, tests/unit/test_cpu_kernels_pool.cpp), the fixture
// checks (tests/unit/test_fixture_loader.cpp) and bench-ops' correctness checks
// (benchmarks/bench_ops.cpp through benchmarks/bench_common.hpp). Independent of every kernel
// they judge: plain loops over every term, accumulated in double. Layouts as in include/ember/kernels/params.hpp: activations
// (N, C, H, W), conv weight (K, C, R, S), conv-transpose weight (C, K, R, S), linear weight
// (out, in). A bias pointer may be null (no bias).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include <ember/kernels/params.hpp>

namespace ember_test::naive {

using ember::kernels::BatchNormShape;
using ember::kernels::Conv2dShape;
using ember::kernels::ConvTranspose2dShape;
using ember::kernels::GroupNormShape;
using ember::kernels::LinearShape;
using ember::kernels::MaxPool2dShape;

/// Per element: the sum of its terms (val), the sum of their magnitudes (mag, the scale a float
/// result of the same sum may be judged against) and how many terms there were.
struct Sums {
  std::vector<double> val, mag;
  std::vector<int> terms;

  explicit Sums(size_t n = 0) : val(n, 0.0), mag(n, 0.0), terms(n, 0) {}
  size_t size() const { return val.size(); }
  void add(size_t i, double t) {
    val[i] += t;
    mag[i] += std::fabs(t);
    terms[i] += 1;
  }
  std::vector<float> to_float() const { return std::vector<float>(val.begin(), val.end()); }
};

// ---------------------------------------------------------------------------------------------
// the product terms of each op: f(yi, xi, wi) once for every x[xi] * w[wi] added into y[yi]

/// conv2d: y[n,k,oh,ow] += x[n,c,oh*stride-pad+r, ow*stride-pad+q] * w[k,c,r,q] (inside x only).
template <class F>
void conv2d_terms(const Conv2dShape& s, F&& f) {
  for (int n = 0; n < s.N; ++n)
    for (int k = 0; k < s.K; ++k)
      for (int oh = 0; oh < s.OH; ++oh)
        for (int ow = 0; ow < s.OW; ++ow) {
          const size_t yi = ((size_t(n) * s.K + k) * s.OH + oh) * s.OW + ow;
          for (int c = 0; c < s.C; ++c)
            for (int r = 0; r < s.R; ++r)
              for (int q = 0; q < s.S; ++q) {
                const int ih = oh * s.stride - s.pad + r, iw = ow * s.stride - s.pad + q;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                f(yi, ((size_t(n) * s.C + c) * s.H + ih) * s.W + iw,
                  ((size_t(k) * s.C + c) * s.R + r) * s.S + q);
              }
        }
}

/// conv_transpose2d: y[n,k,ih*stride-pad+r, iw*stride-pad+q] += x[n,c,ih,iw] * w[c,k,r,q]
/// (inside y only).
template <class F>
void conv_transpose2d_terms(const ConvTranspose2dShape& s, F&& f) {
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c)
      for (int ih = 0; ih < s.H; ++ih)
        for (int iw = 0; iw < s.W; ++iw) {
          const size_t xi = ((size_t(n) * s.C + c) * s.H + ih) * s.W + iw;
          for (int k = 0; k < s.K; ++k)
            for (int r = 0; r < s.R; ++r)
              for (int q = 0; q < s.S; ++q) {
                const int oh = ih * s.stride - s.pad + r, ow = iw * s.stride - s.pad + q;
                if (oh < 0 || oh >= s.OH || ow < 0 || ow >= s.OW) continue;
                f(((size_t(n) * s.K + k) * s.OH + oh) * s.OW + ow, xi,
                  ((size_t(c) * s.K + k) * s.R + r) * s.S + q);
              }
        }
}

/// linear: y[i,j] += x[i,k] * w[j,k].
template <class F>
void linear_terms(const LinearShape& s, F&& f) {
  for (int i = 0; i < s.M; ++i)
    for (int j = 0; j < s.N; ++j)
      for (int k = 0; k < s.K; ++k)
        f(size_t(i) * s.N + j, size_t(i) * s.K + k, size_t(j) * s.K + k);
}

// ---------------------------------------------------------------------------------------------
// the ops: their tensor sizes and terms, for the passes below

/// An op as the passes see it: terms(f) as above, x and w sizes, and y as (N, channels, inner)
/// (the bias b and its gradient db have `channels` values).
template <class Terms>
struct Op {
  Terms terms;
  size_t nx, nw;
  int N, channels;
  size_t inner;
  size_t ny() const { return size_t(N) * size_t(channels) * inner; }
};

template <class Terms>
Op<Terms> make_op(Terms terms, size_t nx, size_t nw, int N, int channels, size_t inner) {
  return Op<Terms>{terms, nx, nw, N, channels, inner};
}

inline auto conv2d(const Conv2dShape& s) {
  return make_op([s](auto&& f) { conv2d_terms(s, f); }, size_t(s.N) * s.C * s.H * s.W,
                 size_t(s.K) * s.C * s.R * s.S, s.N, s.K, size_t(s.OH) * s.OW);
}
inline auto conv_transpose2d(const ConvTranspose2dShape& s) {
  return make_op([s](auto&& f) { conv_transpose2d_terms(s, f); }, size_t(s.N) * s.C * s.H * s.W,
                 size_t(s.C) * s.K * s.R * s.S, s.N, s.K, size_t(s.OH) * s.OW);
}
inline auto linear(const LinearShape& s) {
  return make_op([s](auto&& f) { linear_terms(s, f); }, size_t(s.M) * s.K, size_t(s.N) * s.K, s.M,
                 s.N, 1);
}

// ---------------------------------------------------------------------------------------------
// the passes, e.g. forward(conv2d(s), x, w, b) or passes(linear(s), x, w, b, dy)

namespace detail {

/// One walk over the terms, adding into each of y (x * w), dx (dy * w) and dw (dy * x) that is
/// given; y gets b[channel] (when b is given) before its terms.
template <class O>
void accumulate(const O& op, const float* x, const float* w, const float* b, const float* dy,
                Sums* y, Sums* dx, Sums* dw) {
  if (y && b)
    for (size_t i = 0; i < y->size(); ++i) y->add(i, b[(i / op.inner) % size_t(op.channels)]);
  op.terms([&](size_t yi, size_t xi, size_t wi) {
    if (y) y->add(yi, double(x[xi]) * w[wi]);
    if (dx) dx->add(xi, double(dy[yi]) * w[wi]);
    if (dw) dw->add(wi, double(dy[yi]) * x[xi]);
  });
}

}  // namespace detail

/// y = b[channel] (b may be null) + the sum of the terms x * w.
template <class O>
Sums forward(const O& op, const float* x, const float* w, const float* b) {
  Sums y(op.ny());
  detail::accumulate(op, x, w, b, nullptr, &y, nullptr, nullptr);
  return y;
}

/// dx = the sum of the terms dy * w.
template <class O>
Sums backward_input(const O& op, const float* dy, const float* w) {
  Sums dx(op.nx);
  detail::accumulate(op, nullptr, w, nullptr, dy, nullptr, &dx, nullptr);
  return dx;
}

/// dw = the sum of the terms dy * x.
template <class O>
Sums backward_weight(const O& op, const float* x, const float* dy) {
  Sums dw(op.nw);
  detail::accumulate(op, x, nullptr, nullptr, dy, nullptr, nullptr, &dw);
  return dw;
}

/// db = dy summed per channel.
template <class O>
Sums backward_bias(const O& op, const float* dy) {
  Sums db(static_cast<size_t>(op.channels));
  for (int c = 0; c < op.channels; ++c)
    for (int n = 0; n < op.N; ++n)
      for (size_t i = 0; i < op.inner; ++i)
        db.add(size_t(c), dy[(size_t(n) * op.channels + c) * op.inner + i]);
  return db;
}

/// Every pass of one op.
struct Passes {
  Sums y, dx, dw, db;
};

/// All four passes in one walk over the terms (b may be null).
template <class O>
Passes passes(const O& op, const float* x, const float* w, const float* b, const float* dy) {
  Passes p{Sums(op.ny()), Sums(op.nx), Sums(op.nw), backward_bias(op, dy)};
  detail::accumulate(op, x, w, b, dy, &p.y, &p.dx, &p.dw);
  return p;
}

// ---------------------------------------------------------------------------------------------
// normalisation and pooling: whole-tensor references

/// batch_norm's results: y; the statistics used (mean, invstd = 1 / sqrt(var + eps)); the
/// updated running statistics (training with running stats only); dx, dgamma, dbeta (when dy is
/// given).
struct BatchNorm {
  std::vector<double> y, mean, invstd, running_mean, running_var, dx, dgamma, dbeta;
};

/// Batch norm of x (N, C, HW) per channel over its N*HW values. Training (eval false): the batch
/// mean and biased variance normalise; running_mean/var (when rm and rv are given) become
/// (1 - momentum) * old + momentum * (mean, unbiased variance) (biased if N*HW == 1); dx =
/// gamma invstd / M (M dy - sum dy - xhat sum(dy xhat)). Eval: rm and rv normalise and dx = dy
/// gamma invstd. dgamma = sum(dy xhat), dbeta = sum(dy). dy may be null (forward only).
inline BatchNorm batch_norm(const BatchNormShape& s, const float* x, const float* dy,
                            const float* gamma, const float* beta, const float* rm,
                            const float* rv, double eps, double momentum, bool eval) {
  BatchNorm r;
  const size_t C = size_t(s.C), total = size_t(s.N) * C * size_t(s.HW);
  r.y.resize(total);
  r.mean.resize(C);
  r.invstd.resize(C);
  if (!eval && rm && rv) {
    r.running_mean.resize(C);
    r.running_var.resize(C);
  }
  if (dy) {
    r.dx.resize(total);
    r.dgamma.resize(C);
    r.dbeta.resize(C);
  }
  const double M = double(s.N) * s.HW;
  auto at = [&](int n, int c, int i) { return (size_t(n) * C + size_t(c)) * size_t(s.HW) + i; };
  for (int c = 0; c < s.C; ++c) {
    const size_t ci = size_t(c);
    double mean = 0, var = 0;
    if (eval) {
      mean = rm[ci];
      var = rv[ci];
    } else {
      for (int n = 0; n < s.N; ++n)
        for (int i = 0; i < s.HW; ++i) mean += x[at(n, c, i)];
      mean /= M;
      for (int n = 0; n < s.N; ++n)
        for (int i = 0; i < s.HW; ++i) var += (x[at(n, c, i)] - mean) * (x[at(n, c, i)] - mean);
      var /= M;
      if (rm && rv) {
        r.running_mean[ci] = (1 - momentum) * rm[ci] + momentum * mean;
        const double unbiased = M > 1 ? var * M / (M - 1) : var;
        r.running_var[ci] = (1 - momentum) * rv[ci] + momentum * unbiased;
      }
    }
    const double invstd = 1.0 / std::sqrt(var + eps);
    r.mean[ci] = mean;
    r.invstd[ci] = invstd;
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < s.N; ++n)
      for (int i = 0; i < s.HW; ++i) {
        const size_t k = at(n, c, i);
        const double xhat = (x[k] - mean) * invstd;
        r.y[k] = xhat * gamma[ci] + beta[ci];
        if (dy) {
          sdy += dy[k];
          sdyx += dy[k] * xhat;
        }
      }
    if (!dy) continue;
    r.dgamma[ci] = sdyx;
    r.dbeta[ci] = sdy;
    for (int n = 0; n < s.N; ++n)
      for (int i = 0; i < s.HW; ++i) {
        const size_t k = at(n, c, i);
        const double xhat = (x[k] - mean) * invstd;
        r.dx[k] = eval ? dy[k] * gamma[ci] * invstd
                       : gamma[ci] * invstd / M * (M * dy[k] - sdy - xhat * sdyx);
      }
  }
  return r;
}

/// group_norm's results: y, the per-(n, g) mean and rstd, and dx, dgamma, dbeta (when dy is
/// given).
struct GroupNorm {
  std::vector<double> y, mean, rstd, dx, dgamma, dbeta;
};

/// Group norm of x (N, C, HW): statistics per (n, g) over C/G * HW values, biased variance;
/// dx = rstd/D (D g - sum g - xhat sum(g xhat)) with g = dy * gamma. gamma and beta may be null
/// (1 and 0), dy too (forward only).
inline GroupNorm group_norm(const GroupNormShape& s, const float* x, const float* dy,
                            const float* gamma, const float* beta, double eps) {
  GroupNorm r;
  const size_t total = size_t(s.N) * size_t(s.C) * size_t(s.HW);
  const int cg = s.C / s.G;
  const size_t D = size_t(cg) * size_t(s.HW);
  r.y.assign(total, 0.0);
  r.dx.assign(dy ? total : 0, 0.0);
  r.dgamma.assign(dy ? size_t(s.C) : 0, 0.0);
  r.dbeta.assign(dy ? size_t(s.C) : 0, 0.0);
  for (int n = 0; n < s.N; ++n)
    for (int g = 0; g < s.G; ++g) {
      const size_t base = (size_t(n) * size_t(s.C) + size_t(g) * size_t(cg)) * size_t(s.HW);
      double m = 0.0, v = 0.0;
      for (size_t i = 0; i < D; ++i) m += x[base + i];
      m /= double(D);
      for (size_t i = 0; i < D; ++i) v += (x[base + i] - m) * (x[base + i] - m);
      v /= double(D);
      const double rs = 1.0 / std::sqrt(v + eps);
      r.mean.push_back(m);
      r.rstd.push_back(rs);
      double sum_g = 0.0, sum_gx = 0.0;
      for (size_t i = 0; i < D; ++i) {
        const int c = g * cg + int(i / size_t(s.HW));
        const double gm = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
        const double xhat = (x[base + i] - m) * rs;
        r.y[base + i] = xhat * gm + bt;
        if (!dy) continue;
        sum_g += dy[base + i] * gm;
        sum_gx += dy[base + i] * gm * xhat;
        r.dgamma[size_t(c)] += dy[base + i] * xhat;
        r.dbeta[size_t(c)] += dy[base + i];
      }
      if (!dy) continue;
      for (size_t i = 0; i < D; ++i) {
        const int c = g * cg + int(i / size_t(s.HW));
        const double gm = gamma ? gamma[c] : 1.0;
        const double xhat = (x[base + i] - m) * rs;
        r.dx[base + i] = rs / double(D) * (double(D) * dy[base + i] * gm - sum_g - xhat * sum_gx);
      }
    }
  return r;
}

/// A MaxPool2dShape with OH and OW from PyTorch's floor rule.
inline MaxPool2dShape pool_shape(int N, int C, int H, int W, int kernel, int stride, int pad) {
  MaxPool2dShape s{N, C, H, W, kernel, stride, pad, 0, 0};
  s.OH = (H + 2 * pad - kernel) / stride + 1;
  s.OW = (W + 2 * pad - kernel) / stride + 1;
  return s;
}

/// max_pool2d's results: y, the argmax of each window (ih * W + iw within its plane) and dx
/// (when dy is given).
struct MaxPool2d {
  std::vector<double> y;
  std::vector<int32_t> arg;
  std::vector<double> dx;
};

/// Max pooling as PyTorch: padding never wins; in row-major window order a strictly greater
/// value or a NaN replaces the maximum (ties keep the first, the last NaN wins); dx gets each
/// window's dy at its argmax (accumulated where windows overlap). dy may be null.
inline MaxPool2d max_pool2d(const MaxPool2dShape& s, const float* x, const float* dy) {
  MaxPool2d r;
  const size_t planes = size_t(s.N) * size_t(s.C), in_plane = size_t(s.H) * size_t(s.W),
               out_plane = size_t(s.OH) * size_t(s.OW);
  r.y.assign(planes * out_plane, 0.0);
  r.arg.assign(r.y.size(), -1);
  r.dx.assign(dy ? planes * in_plane : 0, 0.0);
  for (size_t p = 0; p < planes; ++p)
    for (int oh = 0; oh < s.OH; ++oh)
      for (int ow = 0; ow < s.OW; ++ow) {
        double best = -std::numeric_limits<double>::infinity();
        int32_t bi = -1;
        for (int kh = 0; kh < s.kernel; ++kh)
          for (int kw = 0; kw < s.kernel; ++kw) {
            const int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
            if (ih < 0 || iw < 0 || ih >= s.H || iw >= s.W) continue;
            const double v = x[p * in_plane + size_t(ih * s.W + iw)];
            if (bi < 0 || v > best || std::isnan(v)) {
              best = v;
              bi = ih * s.W + iw;
            }
          }
        const size_t o = p * out_plane + size_t(oh * s.OW + ow);
        r.y[o] = best;
        r.arg[o] = bi;
        if (dy) r.dx[p * in_plane + size_t(bi)] += dy[o];
      }
  return r;
}

}  // namespace ember_test::naive
