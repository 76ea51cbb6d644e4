// @file tests/unit/test_ops_gradcheck.cpp
// @brief Finite-difference checks of every op's gradients through the public API and autograd,
//        plus the autograd semantics (reuse, accumulation, no_grad, explicit seeds, release).
//
// Method: for inputs X, a scalar loss L(X) = sum(op(X) * R) with a fixed random R of the output's
// shape (so every output carries a different weight). The analytic gradient comes from
// L.backward(); the numeric one is the central difference (L(x+h) - L(x-h)) / (2h) of each
// element (all of them, or a random subset of at most 60 for big tensors), with the op evaluated
// in float32 and only the final weighted sum taken in double. The divisor is the perturbation
// actually applied after float32 rounding. Every op's tolerance |analytic - numeric| <= atol +
// rtol |numeric| is stated at the top of its case. Ops that are linear (or quadratic) in the
// perturbed input have no truncation error, so their tolerances only cover float32 rounding;
// relu and max_pool2d use inputs spaced at least `gap` apart (and away from 0) with h < gap / 2,
// so no perturbation crosses a kink or changes a window's maximum.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <ember/ember.hpp>

#include "../support/catch.hpp"

namespace gradcheck_test {

using ember::Shape;
using ember::Tensor;

/// Deterministic uniform numbers (std::mt19937 bits, not the library's distributions).
struct Rng {
  std::mt19937 gen;
  explicit Rng(uint32_t seed) : gen(seed) {}
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(double(gen() >> 8) * (1.0 / 16777216.0));
  }
  size_t below(size_t n) { return static_cast<size_t>(gen() % n); }
};

std::vector<float> uniform_values(Rng& rng, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.uniform(lo, hi);
  return v;
}

/// n distinct values (k - floor(n/2) + 0.5) * gap in random order: any two differ by >= gap and
/// none is closer than gap/2 to zero.
std::vector<float> spaced_values(Rng& rng, int64_t n, float gap) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) v[size_t(k)] = (float(k - n / 2) + 0.5f) * gap;
  std::shuffle(v.begin(), v.end(), rng.gen);
  return v;
}

Tensor leaf(const std::vector<float>& v, const Shape& s) {
  Tensor t = ember::from_vector(v, s);
  t.set_requires_grad(true);
  return t;
}
Tensor rand_leaf(Rng& rng, const Shape& s, float lo = -1.0f, float hi = 1.0f) {
  return leaf(uniform_values(rng, ember::numel_of(s), lo, hi), s);
}
Tensor rand_const(Rng& rng, const Shape& s, float lo = -1.0f, float hi = 1.0f) {
  return ember::from_vector(uniform_values(rng, ember::numel_of(s), lo, hi), s);
}

/// "[2, 3]" -> flat index to a multi-index string "(0, 2)".
std::string multi_index(const Shape& s, int64_t flat) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  std::ostringstream os;
  os << '(';
  for (size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << ')';
  return os.str();
}

struct Tol {
  double atol, rtol;
};

/// Compares analytic[k] with numeric[k] for the flat indices idx[k] of a tensor of shape s;
/// the message names `what`, the shape and the worst element.
void check_close(const std::string& what, const Shape& s, const std::vector<int64_t>& idx,
                 const std::vector<double>& analytic, const std::vector<double>& numeric, Tol tol) {
  size_t bad = 0, worst = 0;
  double worst_ratio = -1.0;
  for (size_t k = 0; k < idx.size(); ++k) {
    const double err = std::fabs(analytic[k] - numeric[k]);
    const double allowed = tol.atol + tol.rtol * std::fabs(numeric[k]);
    const double ratio = std::isfinite(err) ? err / allowed : 1e300;
    if (ratio > 1.0) ++bad;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = k;
    }
  }
  std::ostringstream os;
  os.precision(8);
  os << what << " shape " << ember::to_string(s) << ": " << bad << "/" << idx.size()
     << " checked elements out of tolerance (atol " << tol.atol << ", rtol " << tol.rtol << ")";
  if (!idx.empty())
    os << "; worst element " << multi_index(s, idx[worst]) << " analytic " << analytic[worst]
       << " numeric " << numeric[worst] << " (" << worst_ratio << " x tolerance)";
  INFO(os.str());
  CHECK(bad == 0);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

/// Gradient check of L = sum(f(inputs) * R) for every input that requires grad. The inputs must
/// be fresh leaves (no .grad yet). `names` label the inputs in messages.
void gradcheck(const std::string& op, const Fn& f, const std::vector<Tensor>& inputs,
               const std::vector<std::string>& names, float h, Tol tol, uint32_t seed = 7) {
  Rng rng(seed);
  Tensor y = f(inputs);
  INFO(op << ": output shape " << ember::to_string(y.shape()));
  REQUIRE(y.requires_grad());
  const std::vector<float> r = uniform_values(rng, y.numel(), -1.0f, 1.0f);
  Tensor R = ember::from_vector(r, y.shape());
  Tensor L = ember::sum(ember::mul(y, R));
  REQUIRE(L.dim() == 0);
  L.backward();

  auto loss = [&] {
    ember::NoGradGuard ng;
    std::vector<float> v = f(inputs).to_vector();
    double s = 0.0;
    for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * double(r[i]);
    return s;
  };

  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    const std::string what = op + ": d/d" + names.at(i);
    INFO(what << " shape " << ember::to_string(x.shape()));
    Tensor g = x.grad();
    REQUIRE(g.defined());
    REQUIRE(g.shape() == x.shape());
    const std::vector<float> ga = g.to_vector();

    std::vector<int64_t> idx;
    const int64_t n = x.numel();
    if (n <= 60) {
      for (int64_t k = 0; k < n; ++k) idx.push_back(k);
    } else {
      std::vector<int64_t> all(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) all[size_t(k)] = k;
      std::shuffle(all.begin(), all.end(), rng.gen);
      idx.assign(all.begin(), all.begin() + 60);
      std::sort(idx.begin(), idx.end());
    }
    std::vector<double> analytic, numeric;
    float* p = x.data();
    for (int64_t k : idx) {
      const float v = p[k];
      const float vp = v + h, vm = v - h;
      p[k] = vp;
      const double lp = loss();
      p[k] = vm;
      const double lm = loss();
      p[k] = v;
      numeric.push_back((lp - lm) / (double(vp) - double(vm)));
      analytic.push_back(double(ga[size_t(k)]));
    }
    check_close(what, x.shape(), idx, analytic, numeric, tol);
  }
}

std::string conv_label(const char* op, const Shape& x, const Shape& w, bool bias, int stride,
                       int pad, int out_pad = -1) {
  std::ostringstream os;
  os << op << "(x " << ember::to_string(x) << ", w " << ember::to_string(w)
     << (bias ? ", bias" : ", no bias") << ", stride " << stride << ", pad " << pad;
  if (out_pad >= 0) os << ", output_padding " << out_pad;
  os << ")";
  return os.str();
}

}  // namespace gradcheck_test

using namespace gradcheck_test;

TEST_CASE("gradcheck: conv2d (input, weight, bias)", "[ops][gradcheck][conv2d]") {
  // Linear in each input: central differences are exact up to float32 rounding.
  const float h = 1e-2f;
  const Tol tol{2e-3, 2e-3};
  struct Cfg {
    int N, C, H, W, K, R, S, stride, pad;
    bool bias;
  };
  const Cfg cfgs[] = {
      {1, 1, 5, 7, 1, 3, 3, 1, 0, false},  // batch 1, C=1, odd sizes
      {2, 3, 5, 7, 4, 3, 3, 1, 1, true},   // fixture conv2d_0 geometry
      {3, 2, 7, 6, 5, 2, 3, 2, 1, true},   // rectangular 2x3 kernel, stride 2
      {2, 4, 9, 9, 3, 3, 3, 3, 2, true},   // stride 3, padding 2
      {2, 2, 5, 5, 3, 1, 1, 1, 0, false},  // 1x1 kernel
      {1, 3, 6, 5, 2, 5, 4, 2, 2, true},   // kernel 5x4 with padding 2
      {2, 1, 8, 7, 2, 3, 2, 3, 0, true},   // stride 3, padding 0, 3x2 kernel
  };
  uint32_t seed = 100;
  for (const Cfg& c : cfgs) {
    Rng rng(seed++);
    Shape xs{c.N, c.C, c.H, c.W}, ws{c.K, c.C, c.R, c.S};
    Tensor x = rand_leaf(rng, xs), w = rand_leaf(rng, ws);
    Tensor b = c.bias ? rand_leaf(rng, {c.K}) : Tensor();
    const int stride = c.stride, pad = c.pad;
    gradcheck(
        conv_label("conv2d", xs, ws, c.bias, stride, pad),
        [=](const std::vector<Tensor>& in) {
          return ember::conv2d(in[0], in[1], in[2], stride, pad);
        },
        {x, w, b}, {"input", "weight", "bias"}, h, tol, seed);
  }
}

TEST_CASE("gradcheck: conv2d with only some inputs requiring grad", "[ops][gradcheck][conv2d]") {
  const float h = 1e-2f;
  const Tol tol{2e-3, 2e-3};
  Rng rng(11);
  Shape xs{2, 3, 6, 5}, ws{2, 3, 3, 3};
  SECTION("input only: weight and bias get no gradient") {
    Tensor x = rand_leaf(rng, xs), w = rand_const(rng, ws), b = rand_const(rng, {2});
    gradcheck(
        "conv2d (input only)",
        [](const std::vector<Tensor>& in) { return ember::conv2d(in[0], in[1], in[2], 1, 1); },
        {x, w, b}, {"input", "weight", "bias"}, h, tol);
    CHECK(!w.grad().defined());
    CHECK(!b.grad().defined());
  }
  SECTION("bias only") {
    Tensor x = rand_const(rng, xs), w = rand_const(rng, ws), b = rand_leaf(rng, {2});
    gradcheck(
        "conv2d (bias only)",
        [](const std::vector<Tensor>& in) { return ember::conv2d(in[0], in[1], in[2], 2, 1); },
        {x, w, b}, {"input", "weight", "bias"}, h, tol);
    CHECK(!x.grad().defined());
    CHECK(!w.grad().defined());
  }
  SECTION("weight only") {
    Tensor x = rand_const(rng, xs), w = rand_leaf(rng, ws), b = rand_const(rng, {2});
    gradcheck(
        "conv2d (weight only)",
        [](const std::vector<Tensor>& in) { return ember::conv2d(in[0], in[1], in[2], 1, 0); },
        {x, w, b}, {"input", "weight", "bias"}, h, tol);
    CHECK(!x.grad().defined());
    CHECK(!b.grad().defined());
  }
}

TEST_CASE("gradcheck: conv_transpose2d (input, weight, bias)",
          "[ops][gradcheck][conv_transpose2d]") {
  // Linear in each input: float32 rounding only.
  const float h = 1e-2f;
  const Tol tol{2e-3, 2e-3};
  struct Cfg {
    int N, C, H, W, K, R, S, stride, pad, out_pad;
    bool bias;
  };
  const Cfg cfgs[] = {
      {2, 3, 4, 5, 2, 3, 3, 2, 1, 1, true},   // fixture conv_transpose2d_0 geometry
      {1, 2, 3, 3, 3, 3, 3, 1, 0, 0, false},  // batch 1, stride 1, no bias
      {2, 2, 4, 4, 3, 2, 3, 3, 1, 2, true},   // rectangular 2x3, stride 3, output_padding 2
      {1, 1, 5, 7, 1, 3, 3, 3, 2, 2, false},  // C=1, odd sizes, padding 2
      {1, 3, 3, 4, 2, 4, 4, 2, 2, 1, true},   // kernel 4, padding 2
      {2, 1, 4, 3, 2, 1, 1, 1, 0, 0, true},   // 1x1 kernel
      {1, 2, 3, 5, 2, 3, 2, 3, 0, 1, true},   // stride 3, padding 0, 3x2 kernel
  };
  uint32_t seed = 200;
  for (const Cfg& c : cfgs) {
    Rng rng(seed++);
    Shape xs{c.N, c.C, c.H, c.W}, ws{c.C, c.K, c.R, c.S};
    Tensor x = rand_leaf(rng, xs), w = rand_leaf(rng, ws);
    Tensor b = c.bias ? rand_leaf(rng, {c.K}) : Tensor();
    const int stride = c.stride, pad = c.pad, op = c.out_pad;
    gradcheck(
        conv_label("conv_transpose2d", xs, ws, c.bias, stride, pad, op),
        [=](const std::vector<Tensor>& in) {
          return ember::conv_transpose2d(in[0], in[1], in[2], stride, pad, op);
        },
        {x, w, b}, {"input", "weight", "bias"}, h, tol, seed);
  }
}

TEST_CASE("gradcheck: batch_norm2d training mode", "[ops][gradcheck][batch_norm]") {
  // Non-linear in x (batch mean and variance): h = 5e-3 keeps the truncation error O(h^2)
  // far below atol; float32 rounding of the normalised outputs dominates.
  const float h = 5e-3f;
  const Tol tol{3e-3, 2e-2};
  struct Cfg {
    Shape x;
    bool running;
  };
  const Cfg cfgs[] = {
      {{4, 3, 5, 5}, true},   // fixture geometry, running stats updated on every call
      {{1, 2, 2, 2}, false},  // batch 1: 4 values per channel
      {{2, 1, 3, 3}, true},   // C=1
      {{3, 4, 5, 7}, false},  // odd sizes
      {{5, 4}, true},         // (N, C) input
      {{2, 3}, false},        // 2 values per channel
  };
  uint32_t seed = 300;
  for (const Cfg& c : cfgs) {
    Rng rng(seed++);
    const int64_t C = c.x[1];
    Tensor x = rand_leaf(rng, c.x, -2.0f, 2.0f);
    Tensor w = rand_leaf(rng, {C}, 0.5f, 1.5f), b = rand_leaf(rng, {C});
    Tensor rm = c.running ? rand_const(rng, {C}) : Tensor();
    Tensor rv = c.running ? rand_const(rng, {C}, 0.5f, 1.5f) : Tensor();
    gradcheck(
        "batch_norm2d(training, x " + ember::to_string(c.x) +
            (c.running ? ", with running stats)" : ", no running stats)"),
        [=](const std::vector<Tensor>& in) {
          return ember::batch_norm2d(in[0], in[1], in[2], rm, rv, true, 0.1f, 1e-5f);
        },
        {x, w, b}, {"input", "weight", "bias"}, h, tol, seed);
  }
}

TEST_CASE("gradcheck: batch_norm2d eval mode", "[ops][gradcheck][batch_norm]") {
  // Linear in x, weight and bias (fixed statistics): float32 rounding only.
  const float h = 1e-2f;
  const Tol tol{2e-3, 2e-3};
  const Shape shapes[] = {{4, 3, 5, 5}, {1, 1, 5, 7}, {3, 2}};
  uint32_t seed = 400;
  for (const Shape& xs : shapes) {
    Rng rng(seed++);
    const int64_t C = xs[1];
    Tensor x = rand_leaf(rng, xs, -2.0f, 2.0f);
    Tensor w = rand_leaf(rng, {C}, 0.5f, 1.5f), b = rand_leaf(rng, {C});
    Tensor rm = rand_const(rng, {C}), rv = rand_const(rng, {C}, 0.5f, 1.5f);
    const std::vector<float> rm0 = rm.to_vector(), rv0 = rv.to_vector();
    gradcheck(
        "batch_norm2d(eval, x " + ember::to_string(xs) + ")",
        [=](const std::vector<Tensor>& in) {
          return ember::batch_norm2d(in[0], in[1], in[2], rm, rv, false, 0.1f, 1e-5f);
        },
        {x, w, b}, {"input", "weight", "bias"}, h, tol, seed);
    INFO("batch_norm2d eval must not touch the running statistics, x " << ember::to_string(xs));
    CHECK(rm.to_vector() == rm0);
    CHECK(rv.to_vector() == rv0);
    CHECK(!rm.grad().defined());
  }
}

TEST_CASE("gradcheck: group_norm (input, weight, bias)", "[ops][gradcheck][group_norm]") {
  // Non-linear in x (group mean and variance), as batch_norm2d training: h = 5e-3 keeps the
  // truncation error O(h^2) far below atol; float32 rounding of the normalised outputs dominates.
  const float h = 5e-3f;
  const Tol tol{3e-3, 2e-2};
  struct Cfg {
    Shape x;
    int groups;
    bool affine;
  };
  const Cfg cfgs[] = {
      {{2, 6, 5, 7}, 3, true},   // fixture group_norm geometry
      {{1, 4, 3, 3}, 1, true},   // N = 1, G = 1 (layer norm over C, H, W)
      {{2, 5, 2, 3}, 5, true},   // G = C (instance norm), 6 values per group
      {{3, 4, 3, 5}, 2, false},  // affine off, odd HW = 15
      {{2, 6, 7}, 3, true},      // 3-D input (N, C, L)
      {{4, 6}, 2, true},         // 2-D input: 3 values per group
      {{1, 1, 1, 9}, 1, true},   // C = G = 1
  };
  uint32_t seed = 450;
  for (const Cfg& c : cfgs) {
    Rng rng(seed++);
    const int64_t C = c.x[1];
    Tensor x = rand_leaf(rng, c.x, -2.0f, 2.0f);
    Tensor w = c.affine ? rand_leaf(rng, {C}, 0.5f, 1.5f) : Tensor();
    Tensor b = c.affine ? rand_leaf(rng, {C}) : Tensor();
    const int64_t groups = c.groups;
    gradcheck(
        "group_norm(x " + ember::to_string(c.x) + ", groups " + std::to_string(groups) +
            (c.affine ? ", affine)" : ", no affine)"),
        [=](const std::vector<Tensor>& in) {
          return ember::group_norm(in[0], groups, in[1], in[2], 1e-5f);
        },
        {x, w, b}, {"input", "weight", "bias"}, h, tol, seed);
  }
  SECTION("weight and bias only; input only; weight without bias") {
    Rng rng(470);
    Shape xs{2, 6, 3, 4};
    Tensor xc = rand_const(rng, xs, -2.0f, 2.0f);
    Tensor w = rand_leaf(rng, {6}, 0.5f, 1.5f), b = rand_leaf(rng, {6});
    gradcheck(
        "group_norm (weight and bias only)",
        [](const std::vector<Tensor>& in) { return ember::group_norm(in[0], 2, in[1], in[2]); },
        {xc, w, b}, {"input", "weight", "bias"}, h, tol);
    CHECK(!xc.grad().defined());
    Tensor x = rand_leaf(rng, xs, -2.0f, 2.0f);
    Tensor wc = rand_const(rng, {6}, 0.5f, 1.5f), bc = rand_const(rng, {6});
    gradcheck(
        "group_norm (input only)",
        [](const std::vector<Tensor>& in) { return ember::group_norm(in[0], 3, in[1], in[2]); },
        {x, wc, bc}, {"input", "weight", "bias"}, h, tol);
    CHECK(!wc.grad().defined());
    CHECK(!bc.grad().defined());
    Tensor x2 = rand_leaf(rng, xs, -2.0f, 2.0f), w2 = rand_leaf(rng, {6}, 0.5f, 1.5f);
    gradcheck(
        "group_norm (weight, no bias)",
        [](const std::vector<Tensor>& in) { return ember::group_norm(in[0], 6, in[1]); }, {x2, w2},
        {"input", "weight"}, h, tol);
  }
}

TEST_CASE("gradcheck: gelu, exact and tanh forms", "[ops][gradcheck][gelu]") {
  // Smooth: with h = 5e-3 the truncation error h^2/6 * |third derivative| is below 1e-5; float32
  // rounding of y divided by 2h adds ~1e-5.
  const float h = 5e-3f;
  const Tol tol{1e-3, 1e-3};
  const Shape shapes[] = {{5, 7}, {2, 3, 4, 5}, {1}, {1, 1, 1, 9}};
  uint32_t seed = 480;
  for (const char* approximate : {"none", "tanh"}) {
    for (const Shape& s : shapes) {
      Rng rng(seed++);
      Tensor x = rand_leaf(rng, s, -4.0f, 4.0f);
      const std::string a = approximate;
      gradcheck(
          "gelu(x " + ember::to_string(s) + ", approximate " + a + ")",
          [a](const std::vector<Tensor>& in) { return ember::gelu(in[0], a); }, {x}, {"input"}, h,
          tol, seed);
    }
  }
}

TEST_CASE("gradcheck: relu", "[ops][gradcheck][relu]") {
  // Inputs spaced 0.01 apart, none within 0.005 of the kink: h = 1e-3 never crosses it.
  const float h = 1e-3f;
  const Tol tol{2e-3, 2e-3};
  const Shape shapes[] = {{5, 7}, {2, 3, 4, 5}, {1}, {1, 1, 1, 9}};
  uint32_t seed = 500;
  for (const Shape& s : shapes) {
    Rng rng(seed++);
    Tensor x = leaf(spaced_values(rng, ember::numel_of(s), 0.01f), s);
    gradcheck(
        "relu(x " + ember::to_string(s) + ")",
        [](const std::vector<Tensor>& in) { return ember::relu(in[0]); }, {x}, {"input"}, h, tol,
        seed);
  }
}

TEST_CASE("gradcheck: max_pool2d", "[ops][gradcheck][max_pool2d]") {
  // All inputs distinct and spaced 0.01 apart: h = 1e-3 never changes a window's maximum.
  const float h = 1e-3f;
  const Tol tol{2e-3, 2e-3};
  struct Cfg {
    Shape x;
    int kernel, stride, pad;
  };
  const Cfg cfgs[] = {
      {{2, 3, 8, 8}, 2, 0, 0},  // default stride = kernel
      {{2, 2, 7, 9}, 2, 2, 0},  // odd sizes: floor mode drops the last row/col
      {{2, 3, 9, 8}, 3, 2, 1},  // overlapping windows with padding
      {{1, 1, 5, 7}, 3, 1, 1},  // stride 1: an input can win many windows
      {{1, 2, 7, 7}, 3, 3, 0},  // stride 3
      {{2, 1, 6, 5}, 2, 1, 1},  // padding 1 with kernel 2
      {{1, 1, 4, 4}, 4, 1, 2},  // padding 2 (= kernel / 2)
  };
  uint32_t seed = 600;
  for (const Cfg& c : cfgs) {
    Rng rng(seed++);
    Tensor x = leaf(spaced_values(rng, ember::numel_of(c.x), 0.01f), c.x);
    const int k = c.kernel, st = c.stride, p = c.pad;
    std::ostringstream label;
    label << "max_pool2d(x " << ember::to_string(c.x) << ", kernel " << k << ", stride " << st
          << ", pad " << p << ")";
    gradcheck(
        label.str(),
        [=](const std::vector<Tensor>& in) { return ember::max_pool2d(in[0], k, st, p); }, {x},
        {"input"}, h, tol, seed);
  }
}

TEST_CASE("gradcheck: linear (input, weight, bias)", "[ops][gradcheck][linear]") {
  // Linear in each input: float32 rounding only.
  const float h = 1e-2f;
  const Tol tol{2e-3, 2e-3};
  struct Cfg {
    Shape x;
    int64_t out;
    bool bias;
  };
  const Cfg cfgs[] = {
      {{5, 7}, 3, true},     // fixture geometry
      {{1, 4}, 6, true},     // batch 1
      {{2, 3, 6}, 4, true},  // rank-3 input
      {{7}, 2, false},       // rank-1 input, no bias
      {{9, 1}, 1, false},    // one feature in, one out
  };
  uint32_t seed = 700;
  for (const Cfg& c : cfgs) {
    Rng rng(seed++);
    const int64_t in_f = c.x.back();
    Tensor x = rand_leaf(rng, c.x), w = rand_leaf(rng, {c.out, in_f});
    Tensor b = c.bias ? rand_leaf(rng, {c.out}) : Tensor();
    gradcheck(
        "linear(x " + ember::to_string(c.x) + ", w " + ember::to_string({c.out, in_f}) +
            (c.bias ? ", bias)" : ", no bias)"),
        [](const std::vector<Tensor>& in) { return ember::linear(in[0], in[1], in[2]); }, {x, w, b},
        {"input", "weight", "bias"}, h, tol, seed);
  }
}

TEST_CASE("gradcheck: cat along dims 0..3 with 2 and 3 inputs", "[ops][gradcheck][cat]") {
  // Pure data movement: float32 rounding only.
  const float h = 1e-2f;
  const Tol tol{1e-3, 1e-3};
  uint32_t seed = 800;
  for (int dim = 0; dim < 4; ++dim) {
    for (int n_in : {2, 3}) {
      Rng rng(seed++);
      const int64_t sizes[3] = {2, 1, 3};
      std::vector<Tensor> xs;
      std::vector<std::string> names;
      for (int i = 0; i < n_in; ++i) {
        Shape s{2, 3, 4, 5};
        s[size_t(dim)] = sizes[i];
        xs.push_back(rand_leaf(rng, s));
        names.push_back("x" + std::to_string(i) + " " + ember::to_string(s));
      }
      std::ostringstream label;
      label << "cat(dim " << dim << ", " << n_in << " inputs)";
      gradcheck(
          label.str(), [dim](const std::vector<Tensor>& in) { return ember::cat(in, dim); }, xs,
          names, h, tol, seed);
    }
  }
  SECTION("negative dim, rank 2, one input not requiring grad") {
    Rng rng(850);
    Tensor a = rand_leaf(rng, {3, 2}), b = rand_const(rng, {3, 4}), c = rand_leaf(rng, {3, 1});
    gradcheck(
        "cat(dim -1, rank 2)", [](const std::vector<Tensor>& in) { return ember::cat(in, -1); },
        {a, b, c}, {"a", "b", "c"}, h, tol);
    CHECK(!b.grad().defined());
  }
}

TEST_CASE("gradcheck: reshape, flatten, unflatten", "[ops][gradcheck][view]") {
  // Views: the gradient is R reshaped, exact up to float32 rounding.
  const float h = 1e-2f;
  const Tol tol{1e-3, 1e-3};
  Rng rng(900);
  Tensor x = rand_leaf(rng, {2, 3, 4, 5});
  SECTION("reshape with -1") {
    gradcheck(
        "reshape([2, 3, 4, 5] -> [6, -1])",
        [](const std::vector<Tensor>& in) {
          return ember::reshape(in[0], {6, -1});
        },
        {x}, {"input"}, h, tol);
  }
  SECTION("flatten(1) then a conv-free linear") {
    Tensor w = rand_leaf(rng, {3, 60});
    gradcheck(
        "linear(flatten([2, 3, 4, 5], 1), w [3, 60])",
        [](const std::vector<Tensor>& in) { return ember::linear(in[0].flatten(1), in[1]); },
        {x, w}, {"input", "weight"}, h, tol);
  }
  SECTION("flatten(1, 2)") {
    gradcheck(
        "flatten([2, 3, 4, 5], 1, 2)",
        [](const std::vector<Tensor>& in) { return ember::flatten(in[0], 1, 2); }, {x}, {"input"},
        h, tol);
  }
  SECTION("unflatten then reshape back (a chain of views)") {
    gradcheck(
        "reshape(unflatten([2, 3, 4, 5], 3, [-1, 1]), [120])",
        [](const std::vector<Tensor>& in) {
          return ember::reshape(ember::unflatten(in[0], 3, {-1, 1}), {120});
        },
        {x}, {"input"}, h, tol);
  }
  SECTION("rank-0 flatten") {
    Tensor s = leaf({0.7f}, Shape{});
    gradcheck(
        "flatten(rank 0)", [](const std::vector<Tensor>& in) { return ember::flatten(in[0]); }, {s},
        {"input"}, h, tol);
  }
}

TEST_CASE("gradcheck: elementwise add, sub, mul and scalar forms",
          "[ops][gradcheck][elementwise]") {
  // add/sub/scalar ops are linear, mul is bilinear: central differences are exact up to
  // float32 rounding.
  const float h = 1e-2f;
  const Tol tol{1e-3, 1e-3};
  const Shape shapes[] = {{5, 7}, {2, 3, 4, 5}, {1}};
  uint32_t seed = 1000;
  for (const Shape& s : shapes) {
    Rng rng(seed++);
    const std::string sh = ember::to_string(s);
    Tensor a = rand_leaf(rng, s, -2.0f, 2.0f), b = rand_leaf(rng, s, -2.0f, 2.0f);
    const std::vector<std::string> ab{"a", "b"};
    gradcheck(
        "add(a, b) " + sh, [](const std::vector<Tensor>& in) { return in[0] + in[1]; }, {a, b}, ab,
        h, tol, seed);
    a.zero_grad(true), b.zero_grad(true);
    gradcheck(
        "sub(a, b) " + sh, [](const std::vector<Tensor>& in) { return in[0] - in[1]; }, {a, b}, ab,
        h, tol, seed);
    a.zero_grad(true), b.zero_grad(true);
    gradcheck(
        "mul(a, b) " + sh, [](const std::vector<Tensor>& in) { return in[0] * in[1]; }, {a, b}, ab,
        h, tol, seed);
    a.zero_grad(true), b.zero_grad(true);
    gradcheck(
        "mul(a, -2.5) " + sh,
        [](const std::vector<Tensor>& in) { return ember::mul(in[0], -2.5f); }, {a}, {"a"}, h, tol,
        seed);
    a.zero_grad(true);
    gradcheck(
        "add(a, 3.25) " + sh,
        [](const std::vector<Tensor>& in) { return ember::add(in[0], 3.25f); }, {a}, {"a"}, h, tol,
        seed);
    a.zero_grad(true);
    gradcheck(
        "(0.5 - a / 4) * 3 " + sh,
        [](const std::vector<Tensor>& in) { return (-(in[0] / 4.0f) + 0.5f) * 3.0f; }, {a}, {"a"},
        h, tol, seed);
  }
}

TEST_CASE("gradcheck: sum, mean, mse_loss", "[ops][gradcheck][reduce]") {
  // sum/mean are linear, mse_loss quadratic: float32 rounding only.
  const float h = 1e-2f;
  const Tol tol{1e-3, 1e-3};
  const Shape shapes[] = {{5, 7}, {2, 3, 4, 5}, {1}};
  uint32_t seed = 1100;
  for (const Shape& s : shapes) {
    Rng rng(seed++);
    const std::string sh = ember::to_string(s);
    Tensor a = rand_leaf(rng, s), t = rand_leaf(rng, s);
    gradcheck(
        "sum " + sh, [](const std::vector<Tensor>& in) { return ember::sum(in[0]); }, {a}, {"x"}, h,
        tol, seed);
    a.zero_grad(true);
    gradcheck(
        "mean " + sh, [](const std::vector<Tensor>& in) { return ember::mean(in[0]); }, {a}, {"x"},
        h, tol, seed);
    a.zero_grad(true);
    gradcheck(
        "mse_loss " + sh,
        [](const std::vector<Tensor>& in) { return ember::mse_loss(in[0], in[1]); }, {a, t},
        {"input", "target"}, h, tol, seed);
  }
}

// ---------------------------------------------------------------------------------------------
// Autograd semantics
// ---------------------------------------------------------------------------------------------

TEST_CASE("autograd: a tensor used twice gets the sum of both gradients", "[autograd]") {
  const float h = 1e-2f;
  const Tol tol{2e-3, 2e-3};
  Rng rng(1200);
  SECTION("y = x * x + x: dL/dx = (2x + 1) R") {
    Tensor x = rand_leaf(rng, {3, 4});
    gradcheck(
        "x * x + x", [](const std::vector<Tensor>& in) { return in[0] * in[0] + in[0]; }, {x},
        {"x"}, h, tol);
    // Exact analytic check with R = 1.
    x.zero_grad(true);
    ember::sum(x * x + x).backward();
    std::vector<float> xv = x.to_vector(), gv = x.grad().to_vector();
    std::vector<int64_t> idx;
    std::vector<double> got, want;
    for (size_t i = 0; i < xv.size(); ++i) {
      idx.push_back(int64_t(i));
      got.push_back(gv[i]);
      want.push_back(2.0 * xv[i] + 1.0);
    }
    check_close("sum(x * x + x): dx vs 2x + 1", x.shape(), idx, got, want, {1e-6, 1e-6});
  }
  SECTION("skip connection: cat(x, conv2d(x)) along channels") {
    Tensor x = rand_leaf(rng, {2, 2, 5, 4}), w = rand_leaf(rng, {3, 2, 3, 3}),
           b = rand_leaf(rng, {3});
    gradcheck(
        "cat(x, conv2d(x, w, b, 1, 1), 1)",
        [](const std::vector<Tensor>& in) {
          return ember::cat({in[0], ember::conv2d(in[0], in[1], in[2], 1, 1)}, 1);
        },
        {x, w, b}, {"x", "weight", "bias"}, h, tol);
  }
  SECTION("a non-leaf used twice: h = conv2d(x); y = cat(h, relu(h) * h)") {
    // relu's kink: with random inputs no h is within 1e-2 of zero with overwhelming
    // probability, but a second-order term needs a looser tolerance than the linear cases.
    Tensor x = rand_leaf(rng, {1, 2, 4, 4}), w = rand_leaf(rng, {2, 2, 3, 3});
    const Fn f = [](const std::vector<Tensor>& in) {
      Tensor hh = ember::conv2d(in[0], in[1], Tensor(), 1, 1);
      return ember::cat({hh, ember::relu(hh) * hh}, 0);
    };
    {  // keep away from relu's kink: resample until |h| > 0.05 everywhere
      ember::NoGradGuard ng;
      for (int attempt = 0; attempt < 100; ++attempt) {
        std::vector<float> hv = ember::conv2d(x, w, Tensor(), 1, 1).to_vector();
        bool ok = std::all_of(hv.begin(), hv.end(), [](float v) { return std::fabs(v) > 0.05f; });
        if (ok) break;
        std::vector<float> nx = uniform_values(rng, x.numel());
        std::copy(nx.begin(), nx.end(), x.data());
      }
    }
    gradcheck("cat(h, relu(h) * h) with h = conv2d(x, w)", f, {x, w}, {"x", "weight"}, 1e-3f,
              {3e-3, 5e-3});
  }
}

TEST_CASE("autograd: gradients accumulate across backward calls until zero_grad", "[autograd]") {
  Rng rng(1300);
  Tensor x = rand_leaf(rng, {2, 3, 5, 5}), w = rand_leaf(rng, {4, 3, 3, 3}),
         b = rand_leaf(rng, {4});
  auto loss = [&] { return ember::mean(ember::relu(ember::conv2d(x, w, b, 2, 1))); };
  loss().backward();
  const std::vector<float> gx1 = x.grad().to_vector(), gw1 = w.grad().to_vector(),
                           gb1 = b.grad().to_vector();
  loss().backward();
  auto expect_scaled = [](const char* what, const Tensor& t, const std::vector<float>& base,
                          float factor) {
    std::vector<float> v = t.grad().to_vector();
    REQUIRE(v.size() == base.size());
    std::vector<int64_t> idx;
    std::vector<double> got, want;
    for (size_t i = 0; i < v.size(); ++i) {
      idx.push_back(int64_t(i));
      got.push_back(v[i]);
      want.push_back(double(factor) * base[i]);
    }
    check_close(what, t.shape(), idx, got, want, {0.0, 0.0});
  };
  // g + g is exact in float32.
  expect_scaled("conv2d dx after two backward calls = 2 x first", x, gx1, 2.0f);
  expect_scaled("conv2d dw after two backward calls = 2 x first", w, gw1, 2.0f);
  expect_scaled("conv2d db after two backward calls = 2 x first", b, gb1, 2.0f);

  SECTION("zero_grad keeps zeroed buffers, then a backward gives the first gradient again") {
    const float* buffer = x.grad().data();
    x.zero_grad(), w.zero_grad(), b.zero_grad();
    expect_scaled("conv2d dx after zero_grad", x, gx1, 0.0f);
    CHECK(x.grad().data() == buffer);
    loss().backward();
    expect_scaled("conv2d dx after zero_grad + backward", x, gx1, 1.0f);
    expect_scaled("conv2d dw after zero_grad + backward", w, gw1, 1.0f);
    expect_scaled("conv2d db after zero_grad + backward", b, gb1, 1.0f);
  }
  SECTION("zero_grad(set_to_none) drops the gradients") {
    x.zero_grad(true), w.zero_grad(true), b.zero_grad(true);
    CHECK(!x.grad().defined());
    CHECK(!w.grad().defined());
    CHECK(!b.grad().defined());
    loss().backward();
    expect_scaled("conv2d dx after set_to_none + backward", x, gx1, 1.0f);
  }
  SECTION("retain_graph lets the same graph run backward twice") {
    x.zero_grad(true), w.zero_grad(true), b.zero_grad(true);
    Tensor L = loss();
    L.backward(Tensor(), true);
    L.backward();
    expect_scaled("conv2d dw after retain_graph + backward", w, gw1, 2.0f);
  }
}

TEST_CASE("autograd: no_grad records nothing", "[autograd]") {
  Rng rng(1400);
  Tensor x = rand_leaf(rng, {1, 2, 5, 5}), w = rand_leaf(rng, {3, 2, 3, 3});
  {
    ember::NoGradGuard ng;
    CHECK(!ember::is_grad_enabled());
    Tensor y = ember::relu(ember::conv2d(x, w, Tensor(), 1, 1));
    Tensor z = ember::sum(ember::cat({y, y}, 1) * 2.0f).reshape({1});
    CHECK(!y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(!z.requires_grad());
    CHECK(z.is_leaf());
    {
      ember::no_grad nested;
      CHECK(!ember::is_grad_enabled());
    }
    CHECK(!ember::is_grad_enabled());
    REQUIRE_THROWS_AS(z.backward(), std::invalid_argument);
  }
  CHECK(ember::is_grad_enabled());
  Tensor y = ember::conv2d(x, w);
  CHECK(y.requires_grad());
  CHECK(y.grad_fn() != nullptr);
  CHECK(!x.grad().defined());
  // Inputs that do not require grad record nothing either.
  Tensor c = ember::conv2d(x.detach(), w.detach());
  CHECK(!c.requires_grad());
  CHECK(c.grad_fn() == nullptr);
}

TEST_CASE("autograd: backward with an explicit upstream gradient", "[autograd]") {
  Rng rng(1500);
  Shape xs{2, 3, 5, 4}, ws{2, 3, 2, 3};
  std::vector<float> xv = uniform_values(rng, ember::numel_of(xs)),
                     wv = uniform_values(rng, ember::numel_of(ws)), bv = uniform_values(rng, 2);
  Tensor x1 = leaf(xv, xs), w1 = leaf(wv, ws), b1 = leaf(bv, {2});
  Tensor y1 = ember::conv2d(x1, w1, b1, 1, 1);
  Tensor G = rand_const(rng, y1.shape());
  REQUIRE_THROWS_AS(y1.backward(), std::invalid_argument);  // non-scalar needs a gradient
  y1.backward(G);

  Tensor x2 = leaf(xv, xs), w2 = leaf(wv, ws), b2 = leaf(bv, {2});
  ember::sum(ember::conv2d(x2, w2, b2, 1, 1) * G).backward();
  // sum's backward seeds 1, and 1 * G == G exactly, so both runs see the same dy.
  for (auto [name, a, b] :
       {std::tuple<const char*, Tensor, Tensor>{"dx", x1, x2}, {"dw", w1, w2}, {"db", b1, b2}}) {
    std::vector<float> ga = a.grad().to_vector(), gb = b.grad().to_vector();
    REQUIRE(ga.size() == gb.size());
    std::vector<int64_t> idx;
    std::vector<double> got, want;
    for (size_t i = 0; i < ga.size(); ++i) {
      idx.push_back(int64_t(i));
      got.push_back(ga[i]);
      want.push_back(gb[i]);
    }
    check_close(std::string("conv2d ") + name + ": y.backward(G) vs sum(y * G).backward()",
                a.shape(), idx, got, want, {0.0, 0.0});
  }
  SECTION("the gradient's shape must match") {
    Tensor y = ember::conv2d(x1, w1, b1, 1, 1);
    REQUIRE_THROWS_AS(y.backward(ember::zeros({2, 2, 5})), std::invalid_argument);
  }
  SECTION("backward on a leaf accumulates the seed directly") {
    Tensor l = leaf({1.0f, 2.0f}, {2});
    l.backward(ember::from_vector({0.5f, -1.0f}, {2}));
    CHECK(l.grad().to_vector() == std::vector<float>{0.5f, -1.0f});
  }
}

TEST_CASE("autograd: a second backward through a released graph throws", "[autograd]") {
  Rng rng(1600);
  Tensor x = rand_leaf(rng, {2, 3}), w = rand_leaf(rng, {4, 3});
  Tensor L = ember::mse_loss(ember::linear(x, w), ember::zeros({2, 4}));
  L.backward();
  try {
    L.backward();
    INFO("second backward on a released graph did not throw");
    CHECK(false);
  } catch (const ember::Error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("retain_graph") != std::string::npos);
  }
  // A fresh forward works again.
  ember::mse_loss(ember::linear(x, w), ember::zeros({2, 4})).backward();
  REQUIRE(w.grad().defined());
}

TEST_CASE("autograd: leaf gradients have the leaves' shapes; non-leaves keep none", "[autograd]") {
  Rng rng(1700);
  Tensor x = rand_leaf(rng, {2, 1, 6, 6});
  Tensor w1 = rand_leaf(rng, {4, 1, 3, 3}), b1 = rand_leaf(rng, {4});
  Tensor g = rand_leaf(rng, {4}, 0.5f, 1.5f), be = rand_leaf(rng, {4});
  Tensor wt = rand_leaf(rng, {4, 2, 2, 2});
  Tensor wl = rand_leaf(rng, {5, 2 * 6 * 6}), bl = rand_leaf(rng, {5});
  Tensor h1 = ember::relu(
      ember::batch_norm2d(ember::conv2d(x, w1, b1, 1, 1), g, be, Tensor(), Tensor(), true));
  Tensor p = ember::max_pool2d(h1, 2);                        // (2, 4, 3, 3)
  Tensor u = ember::conv_transpose2d(p, wt, Tensor(), 2, 0);  // (2, 2, 6, 6)
  Tensor out = ember::linear(ember::flatten(u, 1), wl, bl);   // (2, 5)
  Tensor L = ember::mse_loss(out, ember::zeros({2, 5}));
  CHECK(L.shape() == Shape{});
  L.backward();
  for (auto [name, t] : {std::pair<const char*, Tensor>{"x", x},
                         {"conv weight", w1},
                         {"conv bias", b1},
                         {"bn weight", g},
                         {"bn bias", be},
                         {"convT weight", wt},
                         {"linear weight", wl},
                         {"linear bias", bl}}) {
    INFO(name << " shape " << ember::to_string(t.shape()));
    REQUIRE(t.grad().defined());
    CHECK(t.grad().shape() == t.shape());
    CHECK(!t.grad().requires_grad());
    std::vector<float> v = t.grad().to_vector();
    CHECK(std::all_of(v.begin(), v.end(), [](float f) { return std::isfinite(f); }));
  }
  for (auto [name, t] : {std::pair<const char*, Tensor>{"relu output", h1},
                         {"pool output", p},
                         {"convT output", u},
                         {"linear output", out}}) {
    INFO(name);
    CHECK(!t.is_leaf());
    CHECK(!t.grad().defined());
  }
}
