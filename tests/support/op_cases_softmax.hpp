// @file tests/support/op_cases_softmax.hpp
// @brief The softmax family's entries of the op table (tests/support/op_cases.hpp, which
//        includes this file and calls softmax_cases): softmax and log_softmax (group "softmax"),
//        nll_loss and cross_entropy (group "cross_entropy"), for the gradcheck, CPU-vs-CUDA and
//        determinism suites.
//
// Class-index targets are not inputs of the table (they are data, not differentiable, and
// must be exact integers): each entry's function builds them from fixed values on the device
// of the op's input.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ember/ember.hpp>

namespace ember_test {
namespace op_cases_detail {

/// Targets `values` of shape `shape` on the device of `like` (the CPU when `like` is undefined,
/// so the generic undefined-input check gets the op's own refusal).
inline ember::Tensor class_targets(const std::vector<float>& values, const ember::Shape& shape,
                                   const ember::Tensor& like) {
  ember::Tensor t = ember::from_vector(values, shape);
  return like.defined() && like.is_cuda() ? t.to(ember::Device::cuda) : t;
}

/// n class indices in [0, C), a fixed pseudo-random pattern, with every `ignore_every`-th one
/// (if > 0) replaced by `ignore`.
inline std::vector<float> class_indices(int64_t n, int64_t C, int ignore_every = 0,
                                        float ignore = -100.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    v[size_t(i)] = static_cast<float>((i * 7 + 3) % C);
    if (ignore_every > 0 && i % ignore_every == ignore_every - 1) v[size_t(i)] = ignore;
  }
  return v;
}

inline void softmax_cases(std::vector<OpCase>& c) {
  using ember::Shape;
  using ember::Reduction;
  // ---- softmax / log_softmax: gradcheck at rank 1..4, first, middle and last dim, negative
  // dims. Smooth: with h = 5e-3 the central difference's truncation error is O(h^2) ~ 1e-5
  // relative and the float32 rounding of L (|L| ~ 1) over 2h about 1e-5: tolerance 1e-3.
  struct SmCfg {
    Shape s;
    int64_t dim;
  };
  const SmCfg sm[] = {{{7}, 0},           {{7}, -1},        {{3, 5}, -1},        {{3, 5}, 0},
                      {{2, 4, 3}, 0},     {{2, 4, 3}, 1},   {{2, 4, 3}, 2},      {{2, 3, 2, 3}, 1},
                      {{2, 3, 2, 3}, -1}, {{2, 3, 2, 3}, 0}, {{1, 1, 3}, 1}};
  uint32_t seed = 12000;
  for (const SmCfg& g : sm) {
    const int64_t dim = g.dim;
    const std::string sh = ember::to_string(g.s) + ", dim " + std::to_string(dim) + ")";
    OpCase a{"softmax", "softmax", "softmax(x " + sh, {in("x", g.s).range(-3.0f, 3.0f)},
             [dim](const Ins& t) { return ember::softmax(t[0], dim); }, kGradcheck, {1e-3, 1e-3},
             5e-3f};
    a.seed = seed++;
    a.rseed = seed;
    c.push_back(a);
    OpCase b{"softmax", "log_softmax", "log_softmax(x " + sh, {in("x", g.s).range(-3.0f, 3.0f)},
             [dim](const Ins& t) { return ember::log_softmax(t[0], dim); }, kGradcheck,
             {1e-3, 1e-3}, 5e-3f};
    b.seed = seed++;
    b.rseed = seed;
    c.push_back(b);
  }

  // ---- nll_loss / cross_entropy gradcheck: every reduction, ignore_index (default and a valid
  // class), label smoothing, (C) with a 0-dim target, (N, C) and (N, C, d1, d2). nll_loss is
  // linear in its input (float32 rounding only); cross_entropy smooth as above.
  struct CeCfg {
    Shape x, t;
    Reduction r;
    int64_t ignore;
    int ignore_every;
    double ls;
    bool nll;
  };
  const CeCfg ce[] = {
      {{4, 5}, {4}, Reduction::mean, -100, 0, 0.0, false},
      {{4, 5}, {4}, Reduction::sum, -100, 3, 0.0, false},
      {{4, 5}, {4}, Reduction::none, -100, 3, 0.0, false},
      {{6, 5}, {6}, Reduction::mean, 2, 0, 0.0, false},  // ignore_index = a valid class
      {{4, 5}, {4}, Reduction::mean, -100, 2, 0.1, false},
      {{4, 5}, {4}, Reduction::none, -100, 3, 0.25, false},
      {{4, 5}, {4}, Reduction::sum, -100, 0, 1.0, false},
      {{5}, {}, Reduction::mean, -100, 0, 0.0, false},
      {{5}, {}, Reduction::none, -100, 0, 0.2, false},
      {{2, 3, 2, 3}, {2, 2, 3}, Reduction::mean, -100, 4, 0.0, false},
      {{2, 3, 2, 3}, {2, 2, 3}, Reduction::none, -100, 5, 0.3, false},
      {{2, 4, 3}, {2, 3}, Reduction::sum, -100, 4, 0.1, false},
      {{4, 5}, {4}, Reduction::mean, -100, 3, 0.0, true},
      {{4, 5}, {4}, Reduction::none, -100, 0, 0.0, true},
      {{2, 3, 4}, {2, 4}, Reduction::sum, 1, 0, 0.0, true},
      {{5}, {}, Reduction::sum, -100, 0, 0.0, true},
  };
  for (const CeCfg& g : ce) {
    const int64_t C = g.x.size() >= 2 ? g.x[1] : g.x[0];
    const std::vector<float> tv =
        class_indices(ember::numel_of(g.t), C, g.ignore_every, static_cast<float>(g.ignore));
    const Shape ts = g.t;
    const Reduction r = g.r;
    const int64_t ig = g.ignore;
    const double ls = g.ls;
    const std::string label = std::string(g.nll ? "nll_loss" : "cross_entropy") + "(input " +
                              ember::to_string(g.x) + ", target " + ember::to_string(g.t) +
                              ", reduction " + ember::reduction_name(r) + ", ignore_index " +
                              std::to_string(ig) + (g.nll ? "" : ", label_smoothing " +
                                                                     std::to_string(ls)) +
                              ")";
    OpFn f;
    if (g.nll)
      f = [=](const Ins& t) {
        return ember::nll_loss(t[0], class_targets(tv, ts, t[0]),
                               ember::NLLLossOptions().reduction(r).ignore_index(ig));
      };
    else
      f = [=](const Ins& t) {
        return ember::cross_entropy(
            t[0], class_targets(tv, ts, t[0]),
            ember::CrossEntropyOptions().reduction(r).ignore_index(ig).label_smoothing(ls));
      };
    OpCase e{"cross_entropy", g.nll ? "nll_loss" : "cross_entropy", label,
             {in("input", g.x).range(-3.0f, 3.0f)}, f, kGradcheck, {1e-3, 1e-3}, 5e-3f};
    e.seed = seed++;
    e.rseed = seed;
    c.push_back(e);
  }

  // ---- cross_entropy with class-probability targets (the input's shape): differentiable in
  // both; smooth in the logits, linear in the targets.
  struct ProbCfg {
    Shape x;
    Reduction r;
    double ls;
  };
  const ProbCfg pc[] = {{{4, 5}, Reduction::mean, 0.0},
                        {{4, 5}, Reduction::sum, 0.2},
                        {{2, 3, 2, 3}, Reduction::none, 0.1},
                        {{2, 3, 4}, Reduction::mean, 0.3},
                        {{5}, Reduction::mean, 0.0}};
  for (const ProbCfg& g : pc) {
    const Reduction r = g.r;
    const double ls = g.ls;
    OpCase e{"cross_entropy", "cross_entropy",
             "cross_entropy(input " + ember::to_string(g.x) + ", probability target, " +
                 ember::reduction_name(r) + ", label_smoothing " + std::to_string(ls) + ")",
             {in("input", g.x).range(-3.0f, 3.0f), in("target", g.x).range(0.0f, 1.0f)},
             [=](const Ins& t) {
               return ember::cross_entropy(t[0], t[1], r, -100, ls);
             },
             kGradcheck, {1e-3, 1e-3}, 5e-3f};
    e.seed = seed++;
    e.rseed = seed;
    c.push_back(e);
  }

  // ---- CPU vs CUDA: the device's expf/logf may differ from the C library's by an ulp or so.
  const int64_t B = full_or_emulated(256, 8);
  for (const SmCfg& g : {SmCfg{{3, 5, 7}, 0}, SmCfg{{3, 5, 7}, 1}, SmCfg{{3, 5, 7}, -1},
                         SmCfg{{11}, 0}, SmCfg{{B, 100}, 1}, SmCfg{{B, 10, 5, 5}, 1}}) {
    const int64_t dim = g.dim;
    const std::string sh = ember::to_string(g.s) + ", dim " + std::to_string(dim);
    c.push_back(OpCase{"softmax", "softmax", "softmax x " + sh,
                       {in("x", g.s).filled(Init::randn)},
                       [dim](const Ins& t) { return ember::softmax(t[0], dim); }, kCuda,
                       {1e-6, 1e-5}});
    c.push_back(OpCase{"softmax", "log_softmax", "log_softmax x " + sh,
                       {in("x", g.s).filled(Init::randn)},
                       [dim](const Ins& t) { return ember::log_softmax(t[0], dim); }, kCuda,
                       {1e-6, 1e-5}});
  }
  for (const CeCfg& g : {CeCfg{{B, 10}, {B}, Reduction::mean, -100, 3, 0.0, false},
                         CeCfg{{B, 10}, {B}, Reduction::sum, -100, 0, 0.1, false},
                         CeCfg{{B, 10}, {B}, Reduction::none, 4, 0, 0.2, false},
                         CeCfg{{3, 4, 5, 5}, {3, 5, 5}, Reduction::mean, -100, 7, 0.1, false},
                         CeCfg{{7}, {}, Reduction::mean, -100, 0, 0.0, false},
                         CeCfg{{B, 10}, {B}, Reduction::mean, -100, 5, 0.0, true},
                         CeCfg{{3, 4, 5}, {3, 5}, Reduction::none, -100, 4, 0.0, true}}) {
    const int64_t C = g.x.size() >= 2 ? g.x[1] : g.x[0];
    const std::vector<float> tv =
        class_indices(ember::numel_of(g.t), C, g.ignore_every, static_cast<float>(g.ignore));
    const Shape ts = g.t;
    const Reduction r = g.r;
    const int64_t ig = g.ignore;
    const double ls = g.ls;
    const std::string label = std::string(g.nll ? "nll_loss" : "cross_entropy") + " x " +
                              ember::to_string(g.x) + " " + ember::reduction_name(r) +
                              ", ignore_index " + std::to_string(ig) + ", label_smoothing " +
                              std::to_string(ls);
    OpFn f;
    if (g.nll)
      f = [=](const Ins& t) {
        return ember::nll_loss(t[0], class_targets(tv, ts, t[0]), r, ig);
      };
    else
      f = [=](const Ins& t) {
        return ember::cross_entropy(t[0], class_targets(tv, ts, t[0]), r, ig, ls);
      };
    c.push_back(OpCase{"cross_entropy", g.nll ? "nll_loss" : "cross_entropy", label,
                       {in("input", g.x).filled(Init::randn)}, f, kCuda, {1e-6, 1e-5}});
  }

  for (const ProbCfg& g : {ProbCfg{{B, 10}, Reduction::mean, 0.1},
                           ProbCfg{{3, 4, 5, 5}, Reduction::none, 0.0}}) {
    const Reduction r = g.r;
    const double ls = g.ls;
    c.push_back(OpCase{"cross_entropy", "cross_entropy",
                       "cross_entropy x " + ember::to_string(g.x) + " probability target " +
                           ember::reduction_name(r) + ", label_smoothing " + std::to_string(ls),
                       {in("input", g.x).filled(Init::randn), in("target", g.x).range(0.0f, 1.0f)},
                       [=](const Ins& t) { return ember::cross_entropy(t[0], t[1], r, -100, ls); },
                       kCuda, {1e-6, 1e-5}});
  }

  // ---- determinism: enough columns for several parallel chunks, bitwise equal.
  c.push_back(OpCase{"softmax", "softmax", "softmax x [64, 1000], dim 1",
                     {in("x", {64, 1000}).filled(Init::randn)},
                     [](const Ins& t) { return ember::softmax(t[0], 1); }, kDeterminism,
                     {0.0, 0.0}});
  c.push_back(OpCase{"softmax", "log_softmax", "log_softmax x [16, 33, 64], dim 1",
                     {in("x", {16, 33, 64}).filled(Init::randn)},
                     [](const Ins& t) { return ember::log_softmax(t[0], 1); }, kDeterminism,
                     {0.0, 0.0}});
  {
    const std::vector<float> tv = class_indices(4096, 100, 9);
    c.push_back(OpCase{"cross_entropy", "cross_entropy",
                       "cross_entropy x [4096, 100], mean, label_smoothing 0.1",
                       {in("input", {4096, 100}).filled(Init::randn)},
                       [tv](const Ins& t) {
                         return ember::cross_entropy(
                             t[0], class_targets(tv, {4096}, t[0]),
                             ember::CrossEntropyOptions().label_smoothing(0.1));
                       },
                       kDeterminism, {0.0, 0.0}});
  }
}

}  // namespace op_cases_detail
}  // namespace ember_test
