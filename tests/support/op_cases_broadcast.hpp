// @file tests/support/op_cases_broadcast.hpp
// @brief Op-table entries (tests/support/op_cases.hpp) of the broadcasting ops (group
//        "broadcast": add, sub, mul, div, maximum, minimum, where, expand) and the reductions
//        over dims (group "reduce_dims": sum, mean, amax, var over dims; argmax in the CUDA and
//        determinism suites only, it has no gradient).
#pragma once
#include <string>
#include <tuple>
#include <utility>
#include <vector>

// Included by op_cases.hpp after its types; not a standalone header.

namespace ember_test::op_cases_detail {

/// The broadcast shape pairs every binary op is checked on: the (N,C,1,1)+(N,C,H,W),
/// (1,)+(N,C,H,W), (C,1,1)*(N,C,H,W), both orders, rank-changing and two-sided broadcasts.
inline std::vector<std::pair<ember::Shape, ember::Shape>> broadcast_pairs(int64_t n) {
  return {{{n, 3, 1, 1}, {n, 3, 4, 5}}, {{n, 3, 4, 5}, {n, 3, 1, 1}}, {{1}, {n, 3, 4, 5}},
          {{3, 1, 1}, {n, 3, 4, 5}},    {{n, 1, 1, 1}, {n, 3, 4, 5}}, {{n, 3, 4, 5}, {5}},
          {{4, 1}, {3, 1, 5}},          {{2, 3}, {2, 3}},             {{}, {3, 2}}};
}

inline void broadcast_cases(std::vector<OpCase>& c) {
  using ember::Shape;
  struct Bin {
    const char* name;
    OpFn fn;
    float b_lo, b_hi;  // b's range (away from 0 for div)
  };
  const std::vector<Bin> ops = {
      {"add", [](const Ins& t) { return t[0] + t[1]; }, -2.0f, 2.0f},
      {"sub", [](const Ins& t) { return t[0] - t[1]; }, -2.0f, 2.0f},
      {"mul", [](const Ins& t) { return t[0] * t[1]; }, -2.0f, 2.0f},
      {"div", [](const Ins& t) { return t[0] / t[1]; }, 0.5f, 2.0f},
      {"maximum", [](const Ins& t) { return ember::maximum(t[0], t[1]); }, -2.0f, 2.0f},
      {"minimum", [](const Ins& t) { return ember::minimum(t[0], t[1]); }, -2.0f, 2.0f},
  };
  uint32_t seed = 12000;
  // Finite differences. add/sub/mul are (bi)linear: rounding only. div: h = 5e-3, truncation
  // O(h^2 / b^3) < 2e-4 relative for b >= 0.5. maximum/minimum: h = 1e-3; the seeds put no pair
  // within 1e-3 of a tie (a perturbation crossing one would fail the check).
  for (const auto& [sa, sb] : broadcast_pairs(2)) {
    const std::string shapes = "(a " + ember::to_string(sa) + ", b " + ember::to_string(sb) + ")";
    for (const Bin& op : ops) {
      const bool kink = std::string(op.name) == "maximum" || std::string(op.name) == "minimum";
      OpCase e{"broadcast", op.name, std::string(op.name) + shapes,
               {in("a", sa).range(-2.0f, 2.0f), in("b", sb).range(op.b_lo, op.b_hi)}, op.fn,
               kGradcheck, {1e-3, 1e-3}, kink ? 1e-3f : 5e-3f};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    }
  }
  // where: linear in a and b; the condition (0 or 1, broadcast) is not differentiable.
  for (const auto& [sc, sa, sb] :
       std::vector<std::tuple<Shape, Shape, Shape>>{{{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},
                                                    {{2, 1, 4}, {3, 1}, {2, 3, 4}},
                                                    {{4}, {2, 3, 4}, {}}}) {
    OpCase e{"broadcast", "where",
             "where(cond " + ember::to_string(sc) + ", a " + ember::to_string(sa) + ", b " +
                 ember::to_string(sb) + ")",
             {in("condition", sc).constant(), in("a", sa), in("b", sb)},
             [](const Ins& t) {
               // condition: x where x > 0, else 0 (true on about half the elements)
               return ember::where(ember::clamp_min(t[0], 0.0f), t[1], t[2]);
             },
             kGradcheck | kCuda, {1e-3, 1e-3}};
    e.seed = seed++;
    e.rseed = seed;
    c.push_back(e);
  }
  // expand: a copy; its gradient sums over the broadcast dims (linear).
  for (const auto& [sx, to] : std::vector<std::pair<Shape, Shape>>{
           {{3, 1}, {2, 3, 4}}, {{1, 4, 1}, {-1, 4, 5}}, {{}, {2, 2}}, {{2, 3}, {2, 3}}}) {
    OpCase e{"broadcast", "expand",
             "expand(x " + ember::to_string(sx) + ", " + ember::to_string(to) + ")",
             {in("x", sx)}, [to = to](const Ins& t) { return ember::expand(t[0], to); },
             kGradcheck | kCuda, {1e-3, 1e-3}};
    e.seed = seed++;
    e.rseed = seed;
    c.push_back(e);
  }
  // CPU vs CUDA: the same formulas, explicitly rounded: equal up to the last bit in practice;
  // the tolerance allows an ulp. Batch 8 under the host SIMT runtime.
  const int64_t n = full_or_emulated(64, 4);
  for (const auto& [sa, sb] : broadcast_pairs(n)) {
    for (const Bin& op : ops) {
      c.push_back(OpCase{"broadcast", op.name,
                         std::string(op.name) + "(a " + ember::to_string(sa) + ", b " +
                             ember::to_string(sb) + ")",
                         {in("a", sa).range(-2.0f, 2.0f), in("b", sb).range(op.b_lo, op.b_hi)},
                         op.fn, kCuda, {1e-6, 1e-6}});
    }
  }
  // Comparisons (no gradient): the 0/1 masks must be equal.
  for (const auto& [sa, sb] : std::vector<std::pair<Shape, Shape>>{{{n, 3, 4, 5}, {n, 3, 1, 1}},
                                                                   {{3, 1}, {4}}}) {
    const std::string shapes = "(a " + ember::to_string(sa) + ", b " + ember::to_string(sb) + ")";
    c.push_back(OpCase{"broadcast", "gt", "gt" + shapes,
                       {in("a", sa).constant(), in("b", sb).constant()},
                       [](const Ins& t) { return ember::gt(t[0], t[1]); }, kCuda, {0.0, 0.0}});
    c.push_back(OpCase{"broadcast", "le", "le" + shapes,
                       {in("a", sa).constant(), in("b", sb).constant()},
                       [](const Ins& t) { return ember::le(t[0], t[1]); }, kCuda, {0.0, 0.0}});
  }
  // Determinism across thread counts and ISAs: the time-embedding add and the schedule scale of
  // the diffusion U-Net at batch 32.
  c.push_back(OpCase{"broadcast", "add", "add(x [32, 64, 16, 16], emb [32, 64, 1, 1])",
                     randn_inputs({{"x", {32, 64, 16, 16}}, {"emb", {32, 64, 1, 1}}}),
                     [](const Ins& t) { return t[0] + t[1]; }, kDeterminism, {0.0, 0.0}});
  c.push_back(OpCase{"broadcast", "mul", "mul(x [32, 1, 16, 16], s [32, 1, 1, 1])",
                     randn_inputs({{"x", {32, 1, 16, 16}}, {"s", {32, 1, 1, 1}}}),
                     [](const Ins& t) { return t[0] * t[1]; }, kDeterminism, {0.0, 0.0}});
}

inline void reduce_dims_cases(std::vector<OpCase>& c) {
  using ember::Shape;
  using Dims = std::vector<int64_t>;
  struct R {
    Shape shape;
    Dims dims;
    bool keepdim;
  };
  const std::vector<R> cases = {
      {{2, 3, 4, 5}, {1}, false},     {{2, 3, 4, 5}, {-1}, true},  {{2, 3, 4, 5}, {0, 2}, false},
      {{2, 3, 4, 5}, {0, 2, 3}, true}, {{2, 3, 4, 5}, {}, false},  {{7, 19}, {0}, false},
      {{3, 40}, {1}, true},           {{5}, {0}, false},           {{2, 1, 3}, {1}, false}};
  auto dims_str = [](const Dims& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
  };
  uint32_t seed = 13000;
  for (const R& r : cases) {
    const std::string args = "(x " + ember::to_string(r.shape) + ", dims " + dims_str(r.dims) +
                             (r.keepdim ? ", keepdim)" : ")");
    const Dims dims = r.dims;
    const bool keep = r.keepdim;
    auto add = [&](const char* op, Input x, OpFn f, float h, unsigned suites) {
      OpCase e{"reduce_dims", op, std::string(op) + args, {std::move(x)}, std::move(f), suites,
               {1e-3, 1e-3}, h};
      e.seed = seed++;
      e.rseed = seed;
      c.push_back(e);
    };
    const unsigned GK = kGradcheck | kCuda;
    // sum and mean are linear; var is quadratic (rounding only at h = 1e-2); amax has a kink
    // where two elements tie: spaced inputs (>= 0.01 apart) with h = 1e-3 cross none.
    add("sum", in("x", r.shape), [=](const Ins& t) { return ember::sum(t[0], dims, keep); },
        1e-2f, GK);
    add("mean", in("x", r.shape), [=](const Ins& t) { return ember::mean(t[0], dims, keep); },
        1e-2f, GK);
    add("amax", in("x", r.shape).spaced(0.01f),
        [=](const Ins& t) { return ember::amax(t[0], dims, keep); }, 1e-3f, GK);
    if (r.shape != Shape{2, 1, 3})  // one element per output: n - 1 = 0 gives NaN (as PyTorch)
      add("var", in("x", r.shape),
          [=](const Ins& t) { return ember::var(t[0], dims, true, keep); }, 1e-2f, GK);
    add("var", in("x", r.shape),
        [=](const Ins& t) { return ember::var(t[0], dims, false, keep); }, 1e-2f, GK);
  }
  // argmax: no gradient; CPU vs CUDA compares the indices exactly.
  for (const auto& [shape, dim] : std::vector<std::pair<Shape, int64_t>>{
           {{2, 3, 4, 5}, 1}, {{2, 3, 4, 5}, -1}, {{7, 19}, 0}, {{33}, 0}}) {
    c.push_back(OpCase{"reduce_dims", "argmax",
                       "argmax(x " + ember::to_string(shape) + ", dim " + std::to_string(dim) +
                           ")",
                       {in("x", shape).constant().spaced(0.01f)},
                       [dim = dim](const Ins& t) { return ember::argmax(t[0], dim); }, kCuda,
                       {0.0, 0.0}});
  }
  c.push_back(OpCase{"reduce_dims", "argmax", "argmax(x [4, 6]) (flattened)",
                     {in("x", {4, 6}).constant().spaced(0.01f)},
                     [](const Ins& t) { return ember::argmax(t[0]); }, kCuda, {0.0, 0.0}});
  // CPU vs CUDA at larger sizes: both add in the fixed 16-lane order (bitwise equal expected);
  // the tolerance allows an ulp.
  const int64_t n = full_or_emulated(64, 4);
  for (const auto& [shape, dims] : std::vector<std::pair<Shape, Dims>>{
           {{n, 32, 16, 16}, {2, 3}}, {{n, 32, 16, 16}, {0, 2, 3}}, {{n, 32, 16, 16}, {0}},
           {{n, 32, 16, 16}, {1}}}) {
    c.push_back(OpCase{"reduce_dims", "sum",
                       "sum(x " + ember::to_string(shape) + ", dims " + dims_str(dims) + ")",
                       {in("x", shape).filled(Init::randn)},
                       [dims = dims](const Ins& t) { return ember::sum(t[0], dims); }, kCuda,
                       {1e-6, 1e-6}});
    c.push_back(OpCase{"reduce_dims", "amax",
                       "amax(x " + ember::to_string(shape) + ", dims " + dims_str(dims) + ")",
                       {in("x", shape).filled(Init::randn)},
                       [dims = dims](const Ins& t) { return ember::amax(t[0], dims); }, kCuda,
                       {1e-6, 1e-6}});
  }
  // Determinism across thread counts and ISAs.
  for (const auto& [shape, dims] : std::vector<std::pair<Shape, Dims>>{
           {{32, 64, 16, 16}, {2, 3}}, {{32, 64, 16, 16}, {0, 2, 3}}, {{1 << 20}, {0}}})
    c.push_back(OpCase{"reduce_dims", "sum",
                       "sum(x " + ember::to_string(shape) + ", dims " + dims_str(dims) + ")",
                       randn_inputs({{"x", shape}}),
                       [dims = dims](const Ins& t) { return ember::sum(t[0], dims); },
                       kDeterminism, {0.0, 0.0}});
}

}  // namespace ember_test::op_cases_detail
