// @file tests/support/op_cases.hpp
// @brief The one table of op cases that the generic op tests iterate: finite-difference
//        gradients (tests/unit/test_ops_gradcheck.cpp), bitwise determinism across thread
//        counts (tests/unit/test_determinism.cpp), refusal of an undefined required input
//        (tests/unit/test_errors.cpp), and CPU vs CUDA with the device-mismatch refusal
//        (tests/cuda/test_cuda_ops.cu).
//
// An entry is {group, op, label, inputs, function, suites, tolerance, ...}: `inputs` lists each
// input's name, shape, how it is filled, whether it is differentiable (requires grad), whether
// it may be left undefined, whether the op writes it (running statistics) and, optionally, its
// own CPU-vs-CUDA tolerance; `fn` is a lambda over the ember::Tensor inputs (in that order)
// returning the output; `tol` is the output's tolerance (and every input's without its own).
// Each suite runs the entries whose `suites` name it, one Catch2 TEST_CASE per `group`, named and
// tagged after the op (so `[conv2d]` still selects conv2d's cases).
//
// How to add an op (as ggml's tests/test-backend-ops.cpp does it: one table, every backend and
// check iterates it):
//   0. A pointwise op y = f(x): one line in kPointwise (pointwise_cases, at the end of this file)
//      with the op, a double-precision reference of f and the gradcheck input range. That line
//      gives it finite-difference gradients, the reference check, CPU vs CUDA, determinism and
//      the generic error checks (group "pointwise"); nothing else in tests/ changes.
//   1. Otherwise, add its entries in gradcheck_cases / determinism_cases / cuda_cases below
//      (op_cases() collects them), at the shapes that matter (odd sizes, batch 1, every parameter
//      branch), one entry per shape/parameter set:
//        c.push_back(OpCase{"my_op", "my_op", "my_op(x [3, 5])", {in("x", {3, 5})},
//                           [](const Ins& t) { return ember::my_op(t[0]); }, kGradcheck | kCuda,
//                           {1e-3, 1e-3}});
//      Gradcheck entries are small (every element up to 60 is perturbed) and state the step `h`
//      and why the tolerance holds (linear ops: float32 rounding only); CUDA entries may be
//      large, with full_or_emulated(full, emulated) for the sizes the host SIMT runtime shrinks.
//   2. A new group needs a TEST_CASE in each suite's file that runs it, named and tagged after
//      the op: gradcheck_group("my_op") in test_ops_gradcheck.cpp, check_group("my_op") in
//      test_determinism.cpp and tests/cuda/test_cuda_ops.cu (and the group added to that file's
//      list; a coverage case fails on an entry whose group has no TEST_CASE). Entries in an
//      existing group need nothing more. The undefined-input check (test_errors.cpp) runs every
//      gradcheck entry, the device-mismatch check (test_cuda_ops.cu) every CUDA entry with
//      two or more inputs (not the large ones).
//   3. The op's own error messages (bad shapes, parameters) go to tests/unit/test_errors.cpp,
//      its kernels' unit tests to tests/unit/test_cpu_kernels_*.cpp and tests/cuda/, and a naive
//      reference, if the kernel tests need one, to tests/support/naive_reference.hpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <ember/ember.hpp>

namespace ember_test {

/// |got - want| <= atol + rtol |want| (each suite states what the atol is scaled by, if at all).
struct Tol {
  double atol, rtol;
};

/// How an input is filled. uniform: U(lo, hi) from a std::mt19937 (the gradcheck suite);
/// spaced: distinct values at least `lo` apart, none within lo/2 of 0 (kinks: relu, max_pool);
/// randn: ember::randn (CPU vs CUDA, determinism); zeros, ones: constants (running statistics).
enum class Init { uniform, spaced, randn, zeros, ones };

struct Input {
  std::string name;
  ember::Shape shape;
  bool present = true;     // false: passed as an undefined Tensor (no bias, no running stats)
  bool grad = true;        // differentiable: requires grad
  bool optional = false;   // the op accepts it undefined
  bool mutated = false;    // the op writes it (running statistics in training)
  Init init = Init::uniform;
  float lo = -1.0f, hi = 1.0f;  // uniform range; spaced: lo is the gap
  std::optional<Tol> tol;       // this tensor's own CPU-vs-CUDA tolerance (gradient or value)

  Input range(float a, float b) const { Input c = *this; c.lo = a; c.hi = b; return c; }
  Input spaced(float gap) const { Input c = *this; c.init = Init::spaced; c.lo = gap; return c; }
  Input filled(Init i) const { Input c = *this; c.init = i; return c; }
  Input constant() const { Input c = *this; c.grad = false; return c; }
  Input opt(bool is_present = true) const {
    Input c = *this;
    c.optional = true;
    c.present = is_present;
    return c;
  }
  Input writes() const { Input c = *this; c.mutated = true; return c; }
  Input tolerance(Tol t) const { Input c = *this; c.tol = t; return c; }
};

/// A differentiable input filled with U(-1, 1).
inline Input in(std::string name, ember::Shape shape) {
  Input i;
  i.name = std::move(name);
  i.shape = std::move(shape);
  return i;
}

using Ins = std::vector<ember::Tensor>;
using OpFn = std::function<ember::Tensor(const Ins&)>;

/// The suites an entry belongs to (a bit mask).
enum Suite : unsigned { kGradcheck = 1, kCuda = 2, kDeterminism = 4 };

struct OpCase {
  std::string group;  // the TEST_CASE that runs it (and that case's tag)
  std::string op;     // the op whose error message comes first (messages start with it)
  std::string label;  // the op with its parameters and shapes, for failure messages
  std::vector<Input> inputs;
  OpFn fn;
  unsigned suites;
  Tol tol;                  // output tolerance, and each input's unless it has its own
  float h = 1e-2f;          // gradcheck: the central-difference step
  uint32_t seed = 7;        // inputs' random seed
  uint32_t rseed = 7;       // gradcheck: seed of the random output weights R
  bool large = false;       // CUDA: a large shape (the [large] case)
  // Pointwise ops: y[i] = ref(x[i]) in double, an independent reference of the forward that the
  // gradcheck suite compares the CPU output with (|y - ref| <= 1e-6 + 1e-6 |ref|).
  std::function<double(double)> pointwise_ref = nullptr;

  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const Input& i : inputs) n.push_back(i.name);
    return n;
  }
};

/// A size: `full` on a GPU, `emulated` under the host SIMT runtime (EMBER_CUDA_EMULATION), which
/// runs every GPU thread as a CPU fiber, twice (tests/cuda/cuda_test_util.hpp, gpu_or_emu).
/// Shrunk sizes keep the code paths of the full ones (several blocks per reduction, channel
/// splits); CPU suites never use the entries that need it.
constexpr int64_t full_or_emulated(int64_t full, int64_t emulated) {
#if defined(EMBER_CUDA_EMULATION)
  (void)full;
  return emulated;
#else
  (void)emulated;
  return full;
#endif
}

// ---------------------------------------------------------------------------------------------
// input filling

/// Deterministic uniform numbers (std::mt19937 bits, not the library's distributions).
struct Rng {
  std::mt19937 gen;
  explicit Rng(uint32_t seed) : gen(seed) {}
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(double(gen() >> 8) * (1.0 / 16777216.0));
  }
  size_t below(size_t n) { return static_cast<size_t>(gen() % n); }
};

inline std::vector<float> uniform_values(Rng& rng, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.uniform(lo, hi);
  return v;
}

/// n distinct values (k - floor(n/2) + 0.5) * gap in random order: any two differ by >= gap and
/// none is closer than gap/2 to zero.
inline std::vector<float> spaced_values(Rng& rng, int64_t n, float gap) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) v[size_t(k)] = (float(k - n / 2) + 0.5f) * gap;
  std::shuffle(v.begin(), v.end(), rng.gen);
  return v;
}

/// The entry's inputs on the CPU, in order: uniform and spaced ones from Rng(c.seed), randn ones
/// from ember::Generator(c.seed); differentiable ones require grad; absent ones are undefined.
inline Ins make_inputs(const OpCase& c) {
  Rng rng(c.seed);
  ember::Generator gen(c.seed);
  Ins out;
  for (const Input& i : c.inputs) {
    if (!i.present) {
      out.emplace_back();
      continue;
    }
    ember::Tensor t;
    const int64_t n = ember::numel_of(i.shape);
    switch (i.init) {
      case Init::uniform: t = ember::from_vector(uniform_values(rng, n, i.lo, i.hi), i.shape); break;
      case Init::spaced: t = ember::from_vector(spaced_values(rng, n, i.lo), i.shape); break;
      case Init::randn: t = ember::randn(i.shape, gen); break;
      case Init::zeros: t = ember::zeros(i.shape); break;
      case Init::ones: t = ember::ones(i.shape); break;
    }
    if (i.grad) t.set_requires_grad(true);
    out.push_back(t);
  }
  return out;
}

/// "input [2, 3, 5, 7], weight [4, 3, 3, 3], bias (none)".
inline std::string describe_inputs(const OpCase& c) {
  std::string s;
  for (const Input& i : c.inputs)
    s += (s.empty() ? "" : ", ") + i.name + " " + (i.present ? ember::to_string(i.shape) : "(none)");
  return s;
}

// ---------------------------------------------------------------------------------------------
// the table

namespace op_cases_detail {

inline std::string conv_label(const char* op, const ember::Shape& x, const ember::Shape& w,
                              bool bias, int stride, int pad, int out_pad = -1) {
  std::ostringstream os;
  os << op << "(x " << ember::to_string(x) << ", w " << ember::to_string(w)
     << (bias ? ", bias" : ", no bias") << ", stride " << stride << ", pad " << pad;
  if (out_pad >= 0) os << ", output_padding " << out_pad;
  os << ")";
  return os.str();
}

/// Every input differentiable and filled with randn (the CPU vs CUDA and determinism cases).
inline std::vector<Input> randn_inputs(const std::vector<std::pair<std::string, ember::Shape>>& s) {
  std::vector<Input> v;
  for (const auto& [name, shape] : s) v.push_back(in(name, shape).filled(Init::randn));
  return v;
}

// The gradcheck cases. Tolerances |analytic - numeric| <= atol + rtol |numeric| (unscaled).
// Ops linear (or quadratic) in the perturbed input have no truncation error, so their
// tolerances only cover float32 rounding; relu and max_pool2d use inputs spaced at least 0.01
// apart (and away from 0) with h = 1e-3 < 0.01 / 2, so no perturbation crosses a kink or
// changes a window's maximum.
inline void gradcheck_cases(std::vector<OpCase>& c) {
  using ember::Shape;
  const unsigned G = kGradcheck;
  {  // conv2d: linear in each input (float32 rounding only)
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
    for (const Cfg& g : cfgs) {
      const Shape xs{g.N, g.C, g.H, g.W}, ws{g.K, g.C, g.R, g.S};
      const int stride = g.stride, pad = g.pad;
      OpCase e{"conv2d", "conv2d", conv_label("conv2d", xs, ws, g.bias, stride, pad),
               {in("input", xs), in("weight", ws), in("bias", {g.K}).opt(g.bias)},
               [=](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], stride, pad); }, G,
               {2e-3, 2e-3}};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
  }
  {  // conv2d with only some inputs requiring grad: the others must get no gradient
    const Shape xs{2, 3, 6, 5}, ws{2, 3, 3, 3};
    struct Cfg {
      const char* label;
      bool gx, gw, gb;
      int stride, pad;
    };
    for (const Cfg& g : {Cfg{"conv2d (input only)", true, false, false, 1, 1},
                         Cfg{"conv2d (bias only)", false, false, true, 2, 1},
                         Cfg{"conv2d (weight only)", false, true, false, 1, 0}}) {
      auto grad = [](Input i, bool on) { return on ? i : i.constant(); };
      const int stride = g.stride, pad = g.pad;
      OpCase e{"conv2d partial", "conv2d", g.label,
               {grad(in("input", xs), g.gx), grad(in("weight", ws), g.gw),
                grad(in("bias", {2}).opt(), g.gb)},
               [=](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], stride, pad); }, G,
               {2e-3, 2e-3}};
      e.seed = 11;
      c.push_back(e);
    }
  }
  {  // conv_transpose2d: linear in each input (float32 rounding only)
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
    for (const Cfg& g : cfgs) {
      const Shape xs{g.N, g.C, g.H, g.W}, ws{g.C, g.K, g.R, g.S};
      const int stride = g.stride, pad = g.pad, op = g.out_pad;
      OpCase e{"conv_transpose2d", "conv_transpose2d",
               conv_label("conv_transpose2d", xs, ws, g.bias, stride, pad, op),
               {in("input", xs), in("weight", ws), in("bias", {g.K}).opt(g.bias)},
               [=](const Ins& t) {
                 return ember::conv_transpose2d(t[0], t[1], t[2], stride, pad, op);
               },
               G, {2e-3, 2e-3}};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
  }
  {  // batch_norm2d training: non-linear in x (batch mean and variance): h = 5e-3 keeps the
     // truncation error O(h^2) far below atol; float32 rounding of the normalised outputs
     // dominates. The running statistics (when given) are updated on every call.
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
    for (const Cfg& g : cfgs) {
      const int64_t C = g.x[1];
      OpCase e{"batch_norm train", "batch_norm2d",
               "batch_norm2d(training, x " + ember::to_string(g.x) +
                   (g.running ? ", with running stats)" : ", no running stats)"),
               {in("input", g.x).range(-2.0f, 2.0f), in("weight", {C}).range(0.5f, 1.5f).opt(),
                in("bias", {C}).opt(), in("running_mean", {C}).constant().opt(g.running).writes(),
                in("running_var", {C}).range(0.5f, 1.5f).constant().opt(g.running).writes()},
               [](const Ins& t) {
                 return ember::batch_norm2d(t[0], t[1], t[2], t[3], t[4], true, 0.1f, 1e-5f);
               },
               G, {3e-3, 2e-2}, 5e-3f};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
  }
  {  // batch_norm2d eval: linear in x, weight and bias (fixed statistics): float32 rounding
     // only; the running statistics are read, never written.
    uint32_t seed = 400;
    for (const Shape& xs : {Shape{4, 3, 5, 5}, Shape{1, 1, 5, 7}, Shape{3, 2}}) {
      const int64_t C = xs[1];
      OpCase e{"batch_norm eval", "batch_norm2d", "batch_norm2d(eval, x " + ember::to_string(xs) + ")",
               {in("input", xs).range(-2.0f, 2.0f), in("weight", {C}).range(0.5f, 1.5f).opt(),
                in("bias", {C}).opt(), in("running_mean", {C}).constant(),
                in("running_var", {C}).range(0.5f, 1.5f).constant()},
               [](const Ins& t) {
                 return ember::batch_norm2d(t[0], t[1], t[2], t[3], t[4], false, 0.1f, 1e-5f);
               },
               G, {2e-3, 2e-3}};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
  }
  {  // group_norm: non-linear in x (group mean and variance), as batch_norm2d training
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
    for (const Cfg& g : cfgs) {
      const int64_t C = g.x[1], groups = g.groups;
      OpCase e{"group_norm", "group_norm",
               "group_norm(x " + ember::to_string(g.x) + ", groups " + std::to_string(groups) +
                   (g.affine ? ", affine)" : ", no affine)"),
               {in("input", g.x).range(-2.0f, 2.0f),
                in("weight", {C}).range(0.5f, 1.5f).opt(g.affine), in("bias", {C}).opt(g.affine)},
               [=](const Ins& t) { return ember::group_norm(t[0], groups, t[1], t[2], 1e-5f); }, G,
               {3e-3, 2e-2}, 5e-3f};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
    // Weight and bias only; input only; weight without bias.
    const Shape xs{2, 6, 3, 4};
    OpCase wb{"group_norm", "group_norm", "group_norm (weight and bias only)",
              {in("input", xs).range(-2.0f, 2.0f).constant(),
               in("weight", {6}).range(0.5f, 1.5f).opt(), in("bias", {6}).opt()},
              [](const Ins& t) { return ember::group_norm(t[0], 2, t[1], t[2]); }, G,
              {3e-3, 2e-2}, 5e-3f};
    wb.seed = 470;
    c.push_back(wb);
    OpCase xo{"group_norm", "group_norm", "group_norm (input only)",
              {in("input", xs).range(-2.0f, 2.0f),
               in("weight", {6}).range(0.5f, 1.5f).constant().opt(),
               in("bias", {6}).constant().opt()},
              [](const Ins& t) { return ember::group_norm(t[0], 3, t[1], t[2]); }, G,
              {3e-3, 2e-2}, 5e-3f};
    xo.seed = 471;
    c.push_back(xo);
    OpCase wo{"group_norm", "group_norm", "group_norm (weight, no bias)",
              {in("input", xs).range(-2.0f, 2.0f), in("weight", {6}).range(0.5f, 1.5f).opt()},
              [](const Ins& t) { return ember::group_norm(t[0], 6, t[1]); }, G, {3e-3, 2e-2},
              5e-3f};
    wo.seed = 472;
    c.push_back(wo);
  }
  {  // gelu: smooth. With h = 5e-3 the truncation error h^2/6 * |third derivative| is below
     // 1e-5; float32 rounding of y divided by 2h adds ~1e-5.
    uint32_t seed = 480;
    for (const char* approximate : {"none", "tanh"})
      for (const Shape& s : {Shape{5, 7}, Shape{2, 3, 4, 5}, Shape{1}, Shape{1, 1, 1, 9}}) {
        const std::string a = approximate;
        OpCase e{"gelu", "gelu", "gelu(x " + ember::to_string(s) + ", approximate " + a + ")",
                 {in("input", s).range(-4.0f, 4.0f)},
                 [a](const Ins& t) { return ember::gelu(t[0], a); }, G, {1e-3, 1e-3}, 5e-3f};
        e.seed = seed++;
        e.rseed = seed;
        c.push_back(e);
      }
  }
  {  // relu: inputs spaced 0.01 apart, none within 0.005 of the kink: h = 1e-3 never crosses it
    uint32_t seed = 500;
    for (const Shape& s : {Shape{5, 7}, Shape{2, 3, 4, 5}, Shape{1}, Shape{1, 1, 1, 9}}) {
      OpCase e{"relu", "relu", "relu(x " + ember::to_string(s) + ")",
               {in("input", s).spaced(0.01f)}, [](const Ins& t) { return ember::relu(t[0]); }, G,
               {2e-3, 2e-3}, 1e-3f};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
  }
  {  // max_pool2d: all inputs distinct and spaced 0.01 apart: h = 1e-3 never changes a maximum
    struct Cfg {
      Shape x;
      int kernel, stride, pad;
    };
    const Cfg cfgs[] = {
        {{2, 3, 8, 8}, 2, 0, 0},  // stride 0 here: no stride given, stride = kernel
        {{2, 2, 7, 9}, 2, 2, 0},  // odd sizes: floor mode drops the last row/col
        {{2, 3, 9, 8}, 3, 2, 1},  // overlapping windows with padding
        {{1, 1, 5, 7}, 3, 1, 1},  // stride 1: an input can win many windows
        {{1, 2, 7, 7}, 3, 3, 0},  // stride 3
        {{2, 1, 6, 5}, 2, 1, 1},  // padding 1 with kernel 2
        {{1, 1, 4, 4}, 4, 1, 2},  // padding 2 (= kernel / 2)
    };
    uint32_t seed = 600;
    for (const Cfg& g : cfgs) {
      const int k = g.kernel, st = g.stride, p = g.pad;
      std::ostringstream label;
      label << "max_pool2d(x " << ember::to_string(g.x) << ", kernel " << k << ", stride " << st
            << ", pad " << p << ")";
      OpCase e{"max_pool2d", "max_pool2d", label.str(), {in("input", g.x).spaced(0.01f)},
               [=](const Ins& t) {
                 return st > 0 ? ember::max_pool2d(t[0], k, st, p) : ember::max_pool2d(t[0], k);
               },
               G, {2e-3, 2e-3},
               1e-3f};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
  }
  {  // linear: linear in each input (float32 rounding only)
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
    for (const Cfg& g : cfgs) {
      const Shape ws{g.out, g.x.back()};
      OpCase e{"linear", "linear",
               "linear(x " + ember::to_string(g.x) + ", w " + ember::to_string(ws) +
                   (g.bias ? ", bias)" : ", no bias)"),
               {in("input", g.x), in("weight", ws), in("bias", {g.out}).opt(g.bias)},
               [](const Ins& t) { return ember::linear(t[0], t[1], t[2]); }, G, {2e-3, 2e-3}};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
  }
  {  // cat along dims 0..3 with 2 and 3 inputs: pure data movement, float32 rounding only
    uint32_t seed = 800;
    for (int dim = 0; dim < 4; ++dim)
      for (int n_in : {2, 3}) {
        const int64_t sizes[3] = {2, 1, 3};
        std::vector<Input> xs;
        for (int i = 0; i < n_in; ++i) {
          Shape s{2, 3, 4, 5};
          s[size_t(dim)] = sizes[i];
          xs.push_back(in("x" + std::to_string(i) + " " + ember::to_string(s), s));
        }
        OpCase e{"cat", "cat",
                 "cat(dim " + std::to_string(dim) + ", " + std::to_string(n_in) + " inputs)", xs,
                 [dim](const Ins& t) { return ember::cat(t, dim); }, G, {1e-3, 1e-3}};
        e.seed = seed++;
        e.rseed = seed;
        c.push_back(e);
      }
    OpCase neg{"cat", "cat", "cat(dim -1, rank 2)",
               {in("a", {3, 2}), in("b", {3, 4}).constant(), in("c", {3, 1})},
               [](const Ins& t) { return ember::cat(t, -1); }, G, {1e-3, 1e-3}};
    neg.seed = 850;
    c.push_back(neg);
  }
  {  // views: the gradient is R reshaped, exact up to float32 rounding
    const Shape xs{2, 3, 4, 5};
    auto view = [&](const char* op, const char* label, std::vector<Input> ins, OpFn f) {
      OpCase e{"view", op, label, std::move(ins), std::move(f), G, {1e-3, 1e-3}};
      e.seed = 900;
      c.push_back(e);
    };
    view("reshape", "reshape([2, 3, 4, 5] -> [6, -1])", {in("input", xs)},
         [](const Ins& t) { return ember::reshape(t[0], {6, -1}); });
    view("linear", "linear(flatten([2, 3, 4, 5], 1), w [3, 60])",
         {in("input", xs), in("weight", {3, 60})},
         [](const Ins& t) { return ember::linear(t[0].flatten(1), t[1]); });
    view("flatten", "flatten([2, 3, 4, 5], 1, 2)", {in("input", xs)},
         [](const Ins& t) { return ember::flatten(t[0], 1, 2); });
    view("unflatten", "reshape(unflatten([2, 3, 4, 5], 3, [-1, 1]), [120])", {in("input", xs)},
         [](const Ins& t) { return ember::reshape(ember::unflatten(t[0], 3, {-1, 1}), {120}); });
    view("flatten", "flatten(rank 0)", {in("input", Shape{}).range(0.7f, 0.7f)},
         [](const Ins& t) { return ember::flatten(t[0]); });
  }
  {  // elementwise: add/sub/scalar ops are linear, mul is bilinear: float32 rounding only
    uint32_t seed = 1000;
    for (const Shape& s : {Shape{5, 7}, Shape{2, 3, 4, 5}, Shape{1}}) {
      const std::string sh = ember::to_string(s);
      const Input a = in("a", s).range(-2.0f, 2.0f), b = in("b", s).range(-2.0f, 2.0f);
      auto add = [&](const char* op, const std::string& label, std::vector<Input> ins, OpFn f) {
        OpCase e{"elementwise", op, label + " " + sh, std::move(ins), std::move(f), G,
                 {1e-3, 1e-3}};
        e.seed = seed;
        e.rseed = seed + 1;
        c.push_back(e);
      };
      add("add", "add(a, b)", {a, b}, [](const Ins& t) { return t[0] + t[1]; });
      add("sub", "sub(a, b)", {a, b}, [](const Ins& t) { return t[0] - t[1]; });
      add("mul", "mul(a, b)", {a, b}, [](const Ins& t) { return t[0] * t[1]; });
      add("mul", "mul(a, -2.5)", {a}, [](const Ins& t) { return ember::mul(t[0], -2.5f); });
      add("add", "add(a, 3.25)", {a}, [](const Ins& t) { return ember::add(t[0], 3.25f); });
      add("mul", "(0.5 - a / 4) * 3", {a},
          [](const Ins& t) { return (-(t[0] / 4.0f) + 0.5f) * 3.0f; });
      ++seed;
    }
  }
  {  // sum and mean are linear, mse_loss quadratic: float32 rounding only
    uint32_t seed = 1100;
    for (const Shape& s : {Shape{5, 7}, Shape{2, 3, 4, 5}, Shape{1}}) {
      const std::string sh = ember::to_string(s);
      auto add = [&](const char* op, std::vector<Input> ins, OpFn f) {
        OpCase e{"reduce", op, std::string(op) + " " + sh, std::move(ins), std::move(f), G,
                 {1e-3, 1e-3}};
        e.seed = seed;
        e.rseed = seed + 1;
        c.push_back(e);
      };
      add("sum", {in("x", s)}, [](const Ins& t) { return ember::sum(t[0]); });
      add("mean", {in("x", s)}, [](const Ins& t) { return ember::mean(t[0]); });
      add("mse_loss", {in("input", s), in("target", s)},
          [](const Ins& t) { return ember::mse_loss(t[0], t[1]); });
      ++seed;
    }
  }
}

// The determinism cases: shapes at which each kernel really splits its work (several
// reduction pieces, several parallel chunks). Compared as bits, no tolerance.
inline void determinism_cases(std::vector<OpCase>& c) {
  const unsigned D = kDeterminism;
  auto add = [&](const char* group, const char* op, const char* label,
                 std::vector<std::pair<std::string, ember::Shape>> ins, OpFn f) {
    c.push_back(OpCase{group, op, label, randn_inputs(ins), std::move(f), D, {0.0, 0.0}});
  };
  // 3x3, pad 1 on 16x16 images: the dense AVX-512 path (implicit GEMM on the other paths).
  add("conv2d", "conv2d", "conv2d 3x3 8->16 @16x16, N=16",
      {{"x", {16, 8, 16, 16}}, {"weight", {16, 8, 3, 3}}, {"bias", {16}}},
      [](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], 1, 1); });
  // 12x12 images: the planar implicit GEMM (not a multiple of 16 pixels).
  add("conv2d", "conv2d", "conv2d 3x3 4->8 @12x12, N=32",
      {{"x", {32, 4, 12, 12}}, {"weight", {8, 4, 3, 3}}, {"bias", {8}}},
      [](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], 1, 1); });
  add("conv2d", "conv2d", "conv2d 5x5 pad 2 3->6 @10x10, N=24",
      {{"x", {24, 3, 10, 10}}, {"weight", {6, 3, 5, 5}}, {"bias", {6}}},
      [](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], 1, 2); });
  // Stride 2: the phase-split forward and the per-image im2col weight gradient.
  add("conv2d", "conv2d", "conv2d 3x3 stride 2 8->16 @16x16, N=12",
      {{"x", {12, 8, 16, 16}}, {"weight", {16, 8, 3, 3}}, {"bias", {16}}},
      [](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], 2, 1); });
  add("conv_transpose2d linear", "conv_transpose2d",
      "conv_transpose2d 3x3 s2 p1 op1 16->8 @8x8, N=12",
      {{"x", {12, 16, 8, 8}}, {"weight", {16, 8, 3, 3}}, {"bias", {8}}},
      [](const Ins& t) { return ember::conv_transpose2d(t[0], t[1], t[2], 2, 1, 1); });
  add("conv_transpose2d linear", "linear", "linear 256->128, M=96",
      {{"x", {96, 256}}, {"weight", {128, 256}}, {"bias", {128}}},
      [](const Ins& t) { return ember::linear(t[0], t[1], t[2]); });
  add("norm reduce", "batch_norm2d", "batch_norm2d (training) 8 channels @32x32, N=16",
      {{"x", {16, 8, 32, 32}}, {"weight", {8}}, {"bias", {8}}}, [](const Ins& t) {
        return ember::batch_norm2d(t[0], t[1], t[2], ember::Tensor(), ember::Tensor(), true);
      });
  add("norm reduce", "group_norm", "group_norm 4 groups of 4 channels @32x32, N=8",
      {{"x", {8, 16, 32, 32}}, {"weight", {16}}, {"bias", {16}}},
      [](const Ins& t) { return ember::group_norm(t[0], 4, t[1], t[2]); });
  add("norm reduce", "mean", "mean of 2^20 values", {{"x", {1 << 20}}},
      [](const Ins& t) { return ember::mean(t[0]); });
  add("norm reduce", "mse_loss", "mse_loss of 2^20 values",
      {{"input", {1024, 1024}}, {"target", {1024, 1024}}},
      [](const Ins& t) { return ember::mse_loss(t[0], t[1]); });
}

// The CPU vs CUDA cases: the core tests' awkward shapes plus large ones. Every input is
// differentiable and randn unless stated; the output and every input gradient are compared
// with atol scaled by (1 + the largest CPU magnitude of that tensor).
inline void cuda_cases(std::vector<OpCase>& c) {
  using ember::Shape;
  const unsigned K = kCuda;
  // emulated (host SIMT runtime): batch 8 instead of 128
  const int64_t B = full_or_emulated(128, 8);
  {  // conv2d
    struct Cfg {
      Shape x, w;
      int stride, pad;
      bool bias;
    };
    for (const Cfg& g : {Cfg{{2, 3, 5, 7}, {4, 3, 3, 3}, 1, 1, true},
                         Cfg{{1, 1, 4, 4}, {1, 1, 1, 1}, 1, 0, false},
                         Cfg{{3, 2, 7, 6}, {5, 2, 2, 3}, 2, 1, true},
                         Cfg{{2, 4, 9, 9}, {3, 4, 3, 3}, 3, 2, true},
                         Cfg{{B, 16, 16, 16}, {32, 16, 3, 3}, 1, 1, true},
                         Cfg{{B, 64, 4, 4}, {64, 64, 3, 3}, 1, 1, true},
                         Cfg{{B, 16, 16, 16}, {1, 16, 3, 3}, 1, 1, true}}) {
      const int stride = g.stride, pad = g.pad;
      std::vector<Input> ins = randn_inputs({{"input", g.x}, {"weight", g.w}});
      ins.push_back(in("bias", {g.w[0]}).filled(Init::randn).opt(g.bias));
      c.push_back(OpCase{"conv2d", "conv2d", conv_label("conv2d", g.x, g.w, g.bias, stride, pad),
                         ins,
                         [=](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], stride, pad); },
                         K, {1e-5, 1e-4}});
    }
    // large: emulated batch 4 instead of 512
    OpCase big{"conv2d large", "conv2d", "conv2d large",
               randn_inputs({{"input", {full_or_emulated(512, 4), 64, 16, 16}},
                             {"weight", {128, 64, 3, 3}},
                             {"bias", {128}}}),
               [](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], 1, 1); }, K,
               {1e-4, 1e-3}};
    big.large = true;
    c.push_back(big);
    OpCase image{"conv2d large", "conv2d", "conv2d 128x128 image",
                 randn_inputs({{"input", {2, 3, 128, 128}}, {"weight", {8, 3, 3, 3}}, {"bias", {8}}}),
                 [](const Ins& t) { return ember::conv2d(t[0], t[1], t[2], 2, 1); }, K,
                 {1e-4, 1e-3}};
    image.large = true;
    c.push_back(image);
  }
  {  // conv_transpose2d
    struct Cfg {
      Shape x, w;
      int stride, pad, out_pad;
      bool bias;
    };
    for (const Cfg& g : {Cfg{{2, 3, 4, 5}, {3, 2, 3, 3}, 2, 1, 1, true},
                         Cfg{{1, 2, 3, 3}, {2, 3, 3, 3}, 1, 0, 0, false},
                         Cfg{{2, 2, 4, 4}, {2, 3, 2, 3}, 3, 1, 2, true},
                         Cfg{{B, 128, 4, 4}, {128, 32, 3, 3}, 2, 1, 1, true},
                         Cfg{{B, 64, 8, 8}, {64, 16, 3, 3}, 2, 1, 1, true}}) {
      const int stride = g.stride, pad = g.pad, op = g.out_pad;
      std::vector<Input> ins = randn_inputs({{"input", g.x}, {"weight", g.w}});
      ins.push_back(in("bias", {g.w[1]}).filled(Init::randn).opt(g.bias));
      c.push_back(OpCase{
          "conv_transpose2d", "conv_transpose2d",
          conv_label("conv_transpose2d", g.x, g.w, g.bias, stride, pad, op), ins,
          [=](const Ins& t) { return ember::conv_transpose2d(t[0], t[1], t[2], stride, pad, op); },
          K, {1e-5, 1e-4}});
    }
  }
  // batch_norm2d train and eval; the running statistics (zeros and ones on both devices) are
  // compared after the call. Emulated: batch 8 / 512 instead of 128 / 4096 (the last still
  // splits each channel).
  for (const Shape& x : {Shape{4, 3, 5, 5}, Shape{1, 2, 2, 2}, Shape{B, 32, 16, 16},
                         Shape{full_or_emulated(4096, 512), 16, 8, 8}})
    for (bool training : {true, false}) {
      const int64_t C = x[1];
      std::vector<Input> ins = randn_inputs({{"input", x}, {"weight", {C}}, {"bias", {C}}});
      for (Input& i : ins) i = i.name == "input" ? i : i.opt();
      Input rm = in("running_mean", {C}).filled(Init::zeros).constant().tolerance({1e-6, 1e-5});
      Input rv = in("running_var", {C}).filled(Init::ones).constant().tolerance({1e-6, 1e-5});
      ins.push_back(training ? rm.opt().writes() : rm);
      ins.push_back(training ? rv.opt().writes() : rv);
      c.push_back(OpCase{"batch_norm", "batch_norm2d",
                         std::string("batch_norm2d ") + (training ? "train" : "eval") + " x " +
                             ember::to_string(x),
                         ins,
                         [training](const Ins& t) {
                           return ember::batch_norm2d(t[0], t[1], t[2], t[3], t[4], training);
                         },
                         K, {1e-5, 1e-4}});
    }
  // relu, max_pool2d, linear, cat, views, elementwise, losses.
  // Emulated: batch 8 instead of 128, 512 linear rows instead of 4096.
  for (const Shape& s : {Shape{3, 5, 7}, Shape{B, 32, 16, 16}})
    c.push_back(OpCase{"small", "relu", "relu x " + ember::to_string(s), randn_inputs({{"x", s}}),
                       [](const Ins& t) { return ember::relu(t[0]); }, K, {0, 0}});
  {
    struct Pool {
      Shape x;
      int k, stride, pad;
    };
    for (const Pool& p : {Pool{{2, 3, 7, 9}, 2, 2, 0}, Pool{{2, 3, 7, 9}, 3, 2, 1},
                          Pool{{B, 32, 16, 16}, 2, 2, 0}, Pool{{1, 1, 1, 1}, 1, 1, 0}}) {
      const int k = p.k, st = p.stride, pad = p.pad;
      c.push_back(OpCase{"small", "max_pool2d",
                         "max_pool2d k" + std::to_string(k) + " x " + ember::to_string(p.x),
                         randn_inputs({{"x", p.x}}),
                         [=](const Ins& t) { return ember::max_pool2d(t[0], k, st, pad); }, K,
                         {0, 0}});
    }
  }
  for (const auto& s : {std::vector<Shape>{{5, 7}, {3, 7}, {3}},
                        std::vector<Shape>{{128, 1024}, {32, 1024}, {32}},
                        std::vector<Shape>{{full_or_emulated(4096, 512), 32}, {1024, 32}, {1024}}})
    c.push_back(OpCase{"small", "linear", "linear",
                       randn_inputs({{"input", s[0]}, {"weight", s[1]}, {"bias", s[2]}}),
                       [](const Ins& t) { return ember::linear(t[0], t[1], t[2]); }, K,
                       {1e-5, 1e-4}});
  for (int dim = 0; dim < 4; ++dim) {
    Shape a{2, 3, 4, 5}, b = a;
    b[size_t(dim)] = 3;
    c.push_back(OpCase{"small", "cat", "cat dim " + std::to_string(dim),
                       randn_inputs({{"a", a}, {"b", b}, {"c", a}}),
                       [dim](const Ins& t) { return ember::cat(t, dim); }, K, {0, 0}});
  }
  c.push_back(OpCase{"small", "relu", "flatten/unflatten", randn_inputs({{"x", {4, 64, 4, 4}}}),
                     [](const Ins& t) { return ember::relu(t[0].flatten(1)).unflatten(1, {64, 4, 4}); },
                     K, {0, 0}});
  c.push_back(OpCase{"small", "add", "add/sub/mul/scalars",
                     randn_inputs({{"a", {3, 33}}, {"b", {3, 33}}}),
                     [](const Ins& t) { return (t[0] + t[1]) * t[0] - t[1] * 0.5f + 2.0f; }, K,
                     {1e-6, 1e-6}});
  c.push_back(OpCase{"small", "mse_loss", "mse_loss",
                     randn_inputs({{"input", {128, 1, 16, 16}}, {"target", {128, 1, 16, 16}}}),
                     [](const Ins& t) { return ember::mse_loss(t[0], t[1]); }, K, {1e-6, 1e-5}});
  c.push_back(OpCase{"small", "sum", "sum and mean", randn_inputs({{"x", {1000, 37}}}),
                     [](const Ins& t) { return ember::sum(t[0]) + ember::mean(t[0]); }, K,
                     {1e-6, 1e-5}});
  // gelu: CUDA's erff/expf/tanhf vs the C library's, a few ulps (see test_cuda_kernels_*.cu).
  for (const Shape& s : {Shape{3, 5, 7}, Shape{B, 32, 16, 16}})
    for (const char* approximate : {"none", "tanh"}) {
      const std::string a = approximate;
      c.push_back(OpCase{"gelu group_norm", "gelu",
                         "gelu approximate " + a + " x " + ember::to_string(s),
                         randn_inputs({{"x", s}}),
                         [a](const Ins& t) { return ember::gelu(t[0], a); }, K, {1e-6, 1e-5}});
    }
  // group_norm: double statistics on both devices, summed in different orders; as batch_norm2d.
  {
    struct Cfg {
      Shape x;
      int64_t groups;
      bool affine;
    };
    for (const Cfg& g : {Cfg{{4, 6, 5, 5}, 3, true}, Cfg{{1, 1, 1, 1}, 1, true},
                         Cfg{{2, 8, 7}, 4, true}, Cfg{{3, 4, 3, 5}, 2, false},
                         Cfg{{2, 5, 4, 4}, 5, true},
                         Cfg{{B, 64, 16, 16}, 8, true},  // emulated: batch 8
                         Cfg{{1, 32, 128, 128}, 1, true}}) {
      const int64_t groups = g.groups;
      std::vector<Input> ins = randn_inputs({{"input", g.x}});
      ins.push_back(in("weight", {g.x[1]}).filled(Init::randn).opt(g.affine));
      ins.push_back(in("bias", {g.x[1]}).filled(Init::randn).opt(g.affine));
      c.push_back(OpCase{"gelu group_norm", "group_norm",
                         "group_norm groups " + std::to_string(groups) +
                             (g.affine ? "" : " no affine") + " x " + ember::to_string(g.x),
                         ins,
                         [groups](const Ins& t) { return ember::group_norm(t[0], groups, t[1], t[2]); },
                         K, {1e-5, 1e-4}});
    }
  }
}

/// Pointwise ops y = f(x), one line each in kPointwise below: every suite's entries for them are
/// made here (group "pointwise"), so a new pointwise op adds one line to this file and no test
/// case anywhere. `lo`, `hi`: the input range (inside the op's domain, away from overflow);
/// `kink`: the op has a kink at 0 (abs): gradcheck inputs are spaced 0.01 apart and none within
/// 0.005 of 0, with step h = 1e-3, as for relu.
struct PointwiseOp {
  const char* name;
  OpFn fn;
  std::function<double(double)> ref;
  float lo, hi;
  bool kink = false;
};

inline void pointwise_cases(std::vector<OpCase>& c) {
  const std::vector<PointwiseOp> kPointwise = {
      {"silu", [](const Ins& t) { return ember::silu(t[0]); },
       [](double x) { return x / (1.0 + std::exp(-x)); }, -6.0f, 6.0f},
      {"exp", [](const Ins& t) { return ember::exp(t[0]); },
       [](double x) { return std::exp(x); }, -4.0f, 4.0f},
      {"log", [](const Ins& t) { return ember::log(t[0]); },
       [](double x) { return std::log(x); }, 0.2f, 5.0f},
      {"sqrt", [](const Ins& t) { return ember::sqrt(t[0]); },
       [](double x) { return std::sqrt(x); }, 0.2f, 5.0f},
      {"rsqrt", [](const Ins& t) { return ember::rsqrt(t[0]); },
       [](double x) { return 1.0 / std::sqrt(x); }, 0.2f, 5.0f},
      {"sin", [](const Ins& t) { return ember::sin(t[0]); },
       [](double x) { return std::sin(x); }, -4.0f, 4.0f},
      {"cos", [](const Ins& t) { return ember::cos(t[0]); },
       [](double x) { return std::cos(x); }, -4.0f, 4.0f},
      {"tanh", [](const Ins& t) { return ember::tanh(t[0]); },
       [](double x) { return std::tanh(x); }, -3.0f, 3.0f},
      {"sigmoid", [](const Ins& t) { return ember::sigmoid(t[0]); },
       [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -6.0f, 6.0f},
      {"abs", [](const Ins& t) { return ember::abs(t[0]); },
       [](double x) { return std::fabs(x); }, -2.0f, 2.0f, true},
      {"square", [](const Ins& t) { return ember::square(t[0]); },
       [](double x) { return x * x; }, -3.0f, 3.0f},
      // tensor-scalar ops (ScalarOp kernels)
      {"div", [](const Ins& t) { return t[0] / 3.0f; }, [](double x) { return x / 3.0; },
       -3.0f, 3.0f},
      {"rdiv", [](const Ins& t) { return 3.0f / t[0]; }, [](double x) { return 3.0 / x; },
       0.3f, 3.0f},
      {"reciprocal", [](const Ins& t) { return ember::reciprocal(t[0]); },
       [](double x) { return 1.0 / x; }, -3.0f, -0.3f},
      {"pow", [](const Ins& t) { return ember::pow(t[0], 2.5f); },
       [](double x) { return std::pow(x, 2.5); }, 0.2f, 3.0f},
      {"pow", [](const Ins& t) { return ember::pow(t[0], 3.0f); },
       [](double x) { return x * x * x; }, -2.0f, 2.0f},
      {"pow", [](const Ins& t) { return ember::pow(t[0], -0.5f); },
       [](double x) { return 1.0 / std::sqrt(x); }, 0.2f, 3.0f},
      {"pow", [](const Ins& t) { return ember::pow(t[0], -2.0f); },
       [](double x) { return 1.0 / (x * x); }, 0.3f, 3.0f},
      {"clamp", [](const Ins& t) { return ember::clamp(t[0], -0.5f, 0.75f); },
       [](double x) { return std::min(std::max(x, -0.5), 0.75); }, -2.0f, 2.0f, true},
      {"sub", [](const Ins& t) { return 1.5f - t[0]; }, [](double x) { return 1.5 - x; },
       -3.0f, 3.0f},
  };
  uint32_t seed = 9000;
  for (const PointwiseOp& op : kPointwise) {
    const std::string name = op.name;
    // Finite differences (h = 5e-3, smooth ops: the error is O(h^2) ~ 1e-5 relative) and the
    // double reference, at odd sizes and a single element.
    for (const ember::Shape& s : {ember::Shape{5, 7}, ember::Shape{2, 3, 4, 5}, ember::Shape{1}}) {
      const Input x = op.kink ? in("input", s).spaced(0.01f) : in("input", s).range(op.lo, op.hi);
      OpCase e{"pointwise", name, name + "(x " + ember::to_string(s) + ")", {x}, op.fn,
               kGradcheck, {1e-3, 1e-3}, op.kink ? 1e-3f : 5e-3f};
      e.seed = seed++;
      e.rseed = seed;
      e.pointwise_ref = op.ref;
      c.push_back(e);
    }
    // CPU vs CUDA (the device's expf/tanhf may differ from the C library's by an ulp) and
    // bitwise determinism across thread counts and ISAs.
    const int64_t B = full_or_emulated(128, 8);
    for (const ember::Shape& s : {ember::Shape{3, 5, 7}, ember::Shape{B, 32, 16, 16}})
      c.push_back(OpCase{"pointwise", name, name + " x " + ember::to_string(s),
                         {in("x", s).range(op.lo, op.hi)}, op.fn, kCuda, {1e-6, 1e-5}});
    c.push_back(OpCase{"pointwise", name, name + " x [4, 8, 9, 9]",
                       {in("x", {4, 8, 9, 9}).range(op.lo, op.hi)}, op.fn, kDeterminism,
                       {0.0, 0.0}});
  }
}

}  // namespace op_cases_detail

}  // namespace ember_test

#include "op_cases_broadcast.hpp"

// ---- softmax family: softmax_cases (softmax, log_softmax, nll_loss, cross_entropy) ----
#include "op_cases_softmax.hpp"
// layout and indexing (#12 item 5)
#include "op_cases_layout.hpp"
// layers and training (#12 item 6): groups "dropout" and "embedding"
#include "op_cases_training.hpp"

namespace ember_test {

/// Every op case, built once.
inline const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> c;
    op_cases_detail::gradcheck_cases(c);
    op_cases_detail::determinism_cases(c);
    op_cases_detail::cuda_cases(c);
    op_cases_detail::pointwise_cases(c);
    op_cases_detail::broadcast_cases(c);
    op_cases_detail::reduce_dims_cases(c);
    op_cases_detail::softmax_cases(c);  // softmax family
    op_cases_detail::layout_cases(c);  // layout and indexing (#12 item 5)
    op_cases_training::training_cases(c);  // layers and training
    return c;
  }();
  return cases;
}

/// The entries of one suite and group (group empty: all of the suite).
inline std::vector<const OpCase*> op_cases(unsigned suite, const std::string& group = "") {
  std::vector<const OpCase*> out;
  for (const OpCase& c : op_cases())
    if ((c.suites & suite) && (group.empty() || c.group == group)) out.push_back(&c);
  return out;
}

}  // namespace ember_test
