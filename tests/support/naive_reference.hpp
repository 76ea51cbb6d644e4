// @file tests/support/naive_reference.hpp
// @brief Naive double-precision references for conv2d, conv_transpose2d and linear (forward,
//        backward-input, backward-weight and bias gradient), straight from the definitions in
//        include/ember/kernels/params.hpp.
//
// Shared by the CPU kernel tests (tests/unit/test_cpu_conv_kernels.cpp), the fixture checks
// (tests/unit/test_fixture_loader.cpp) and bench-ops' correctness checks
// (benchmarks/bench_ops.cpp). Independent of every kernel they judge: plain loops over every
// product term, accumulated in double. Layouts as in include/ember/kernels/params.hpp: activations
// (N, C, H, W), conv weight (K, C, R, S), conv-transpose weight (C, K, R, S), linear weight
// (out, in). A bias pointer may be null (no bias).
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

#include <ember/kernels/params.hpp>

namespace ember_test::naive {

using ember::kernels::Conv2dShape;
using ember::kernels::ConvTranspose2dShape;
using ember::kernels::LinearShape;

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

}  // namespace ember_test::naive
