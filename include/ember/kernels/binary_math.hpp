// @file include/ember/kernels/binary_math.hpp
// @brief The broadcasting ops' per-element formulas and index arithmetic, written once for the
//        CPU kernels (cpu/broadcast.hpp, cpu/reduce_dims.hpp) and their CUDA twins, as PyTorch
//        computes them.
//
//   op        forward y          gradient of a             gradient of b (derivatives.yaml)
//   add       a + b              g                         g
//   sub       a - b              g                         -g
//   mul       a * b              g * b                     g * a
//   div       a / b              g / b                     -g * ((a / b) / b)
//   maximum   max(a, b), NaN     g (a > b), g / 2 (a == b) g (b > a), g / 2 (a == b)
//   minimum   min(a, b), NaN     g (a < b), g / 2 (a == b) g (b < a), g / 2 (a == b)
//   gt ge lt le eq ne: 1 or 0 (false for NaN except ne), no gradient
// Tensor-scalar ops (ScalarOp), x the tensor, s0/s1 the scalars:
//   div       x / s0             g / s0
//   rdiv      (1 / x) * s0       -(g * s0) * (r * r), r = 1 / x  (PyTorch: reciprocal, then mul)
//   pow       x ** s0            0 if s0 == 0, else g * (s0 * x ** (s0 - 1))
//   clamp     min(max(x,s0),s1)  g if s0 <= x <= s1, else 0 (NaN x: y = NaN, gradient 0)
// pow uses PyTorch's special cases: s0 = 0 gives 1, 1 gives x, 2 x*x, 3 x*x*x, 0.5 sqrt(x),
// -0.5 1/sqrt(x), -1 1/x, -2 1/(x*x); other exponents the C library's powf (CUDA's powf on the
// device: a few ulps apart).
// Products, sums and quotients go through rn_math.hpp (explicitly rounded on the device).
#pragma once
#include <math.h>

#include <cstdint>

#include "hd.hpp"
#include "params.hpp"
#include "rn_math.hpp"

namespace ember::kernels {

template <BinaryOp Op>
EMBER_HD float binary_fwd(float a, float b) {
  if constexpr (Op == BinaryOp::add) return rn_add(a, b);
  if constexpr (Op == BinaryOp::sub) return rn_sub(a, b);
  if constexpr (Op == BinaryOp::mul) return rn_mul(a, b);
  if constexpr (Op == BinaryOp::div) return rn_div(a, b);
  if constexpr (Op == BinaryOp::maximum) return (a != a || b != b) ? a + b : (a > b ? a : b);
  if constexpr (Op == BinaryOp::minimum) return (a != a || b != b) ? a + b : (a < b ? a : b);
  if constexpr (Op == BinaryOp::gt) return a > b ? 1.0f : 0.0f;
  if constexpr (Op == BinaryOp::ge) return a >= b ? 1.0f : 0.0f;
  if constexpr (Op == BinaryOp::lt) return a < b ? 1.0f : 0.0f;
  if constexpr (Op == BinaryOp::le) return a <= b ? 1.0f : 0.0f;
  if constexpr (Op == BinaryOp::eq) return a == b ? 1.0f : 0.0f;
  if constexpr (Op == BinaryOp::ne) return a != b ? 1.0f : 0.0f;
  return a;
}

/// The gradients of a and b of one output element with gradient g.
template <BinaryOp Op>
EMBER_HD void binary_bwd(float a, float b, float g, float& ga, float& gb) {
  ga = 0.0f;  // comparisons (never called for them: they record no backward)
  gb = 0.0f;
  if constexpr (Op == BinaryOp::add) {
    ga = g;
    gb = g;
  }
  if constexpr (Op == BinaryOp::sub) {
    ga = g;
    gb = -g;
  }
  if constexpr (Op == BinaryOp::mul) {
    ga = rn_mul(g, b);
    gb = rn_mul(g, a);
  }
  if constexpr (Op == BinaryOp::div) {
    ga = rn_div(g, b);
    gb = rn_mul(-g, rn_div(rn_div(a, b), b));
  }
  if constexpr (Op == BinaryOp::maximum || Op == BinaryOp::minimum) {
    // PyTorch: where(a == b, g / 2, g).masked_fill_(a < b, 0) for a (a > b for b), maximum;
    // the comparisons swap for minimum.
    const float shared = a == b ? rn_div(g, 2.0f) : g;
    const bool a_loses = Op == BinaryOp::maximum ? a < b : a > b;
    const bool b_loses = Op == BinaryOp::maximum ? a > b : a < b;
    ga = a_loses ? 0.0f : shared;
    gb = b_loses ? 0.0f : shared;
  }
}

template <class F>
void with_binary_op(BinaryOp op, const F& f) {
  switch (op) {
    case BinaryOp::add: f.template operator()<BinaryOp::add>(); break;
    case BinaryOp::sub: f.template operator()<BinaryOp::sub>(); break;
    case BinaryOp::mul: f.template operator()<BinaryOp::mul>(); break;
    case BinaryOp::div: f.template operator()<BinaryOp::div>(); break;
    case BinaryOp::maximum: f.template operator()<BinaryOp::maximum>(); break;
    case BinaryOp::minimum: f.template operator()<BinaryOp::minimum>(); break;
    case BinaryOp::gt: f.template operator()<BinaryOp::gt>(); break;
    case BinaryOp::ge: f.template operator()<BinaryOp::ge>(); break;
    case BinaryOp::lt: f.template operator()<BinaryOp::lt>(); break;
    case BinaryOp::le: f.template operator()<BinaryOp::le>(); break;
    case BinaryOp::eq: f.template operator()<BinaryOp::eq>(); break;
    case BinaryOp::ne: f.template operator()<BinaryOp::ne>(); break;
  }
}

// ---- tensor-scalar ops ----

/// x ** e with PyTorch's special cases (pow_tensor_scalar).
EMBER_HD float pow_scalar(float x, float e) {
  if (e == 0.0f) return 1.0f;
  if (e == 1.0f) return x;
  if (e == 2.0f) return rn_mul(x, x);
  if (e == 3.0f) return rn_mul(rn_mul(x, x), x);
  if (e == 0.5f) return rn_sqrt(x);
  if (e == -0.5f) return rn_div(1.0f, rn_sqrt(x));
  if (e == -1.0f) return rn_div(1.0f, x);
  if (e == -2.0f) return rn_div(1.0f, rn_mul(x, x));
  return powf(x, e);
}

template <ScalarOp Op>
EMBER_HD float scalar_fwd(float x, float s0, float s1) {
  if constexpr (Op == ScalarOp::div) return rn_div(x, s0);
  if constexpr (Op == ScalarOp::rdiv) return rn_mul(rn_div(1.0f, x), s0);
  if constexpr (Op == ScalarOp::pow) return pow_scalar(x, s0);
  if constexpr (Op == ScalarOp::clamp) {
    if (x != x) return x;
    const float lo = x > s0 ? x : s0;  // std::max(x, s0)
    return s1 < lo ? s1 : lo;          // std::min(lo, s1)
  }
  (void)s1;
  return x;
}

template <ScalarOp Op>
EMBER_HD float scalar_bwd(float x, float s0, float s1, float g) {
  if constexpr (Op == ScalarOp::div) return rn_div(g, s0);
  if constexpr (Op == ScalarOp::rdiv) {
    const float r = rn_div(1.0f, x);
    return rn_mul(-rn_mul(g, s0), rn_mul(r, r));
  }
  if constexpr (Op == ScalarOp::pow) {
    if (s0 == 0.0f) return 0.0f;
    return rn_mul(g, rn_mul(s0, pow_scalar(x, rn_sub(s0, 1.0f))));
  }
  if constexpr (Op == ScalarOp::clamp) return (x >= s0 && x <= s1) ? g : 0.0f;
  (void)s1;
  return g;
}

template <class F>
void with_scalar_op(ScalarOp op, const F& f) {
  switch (op) {
    case ScalarOp::div: f.template operator()<ScalarOp::div>(); break;
    case ScalarOp::rdiv: f.template operator()<ScalarOp::rdiv>(); break;
    case ScalarOp::pow: f.template operator()<ScalarOp::pow>(); break;
    case ScalarOp::clamp: f.template operator()<ScalarOp::clamp>(); break;
  }
}

// ---- index arithmetic ----

/// Offset of output element i in operand k.
EMBER_HD int64_t broadcast_offset(const BroadcastShape& s, int k, int64_t i) {
  int64_t off = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int64_t c = i % s.size[d];
    i /= s.size[d];
    off += c * s.stride[k][d];
  }
  return off;
}

/// Input offset of the first element reduced into output o.
EMBER_HD int64_t reduce_base(const ReduceShape& s, int64_t o) {
  int64_t off = 0;
  for (int d = s.n_keep - 1; d >= 0; --d) {
    const int64_t c = o % s.keep_size[d];
    o /= s.keep_size[d];
    off += c * s.keep_stride[d];
  }
  return off;
}

/// Walks the reduced elements of one output in row-major order of the reduced dims.
struct ReduceCursor {
  const ReduceShape* s;
  int64_t coord[kMaxMergedRank];
  int64_t off;
  EMBER_HD explicit ReduceCursor(const ReduceShape& shape) : s(&shape), off(0) {
    for (int d = 0; d < kMaxMergedRank; ++d) coord[d] = 0;
  }
  EMBER_HD void next() {
    for (int d = s->n_red - 1; d >= 0; --d) {
      off += s->red_stride[d];
      if (++coord[d] < s->red_size[d]) return;
      off -= coord[d] * s->red_stride[d];
      coord[d] = 0;
    }
  }
};

/// The sum's fixed order: 16 lanes, element j added to lane j % 16 in increasing j, then the
/// lanes combined pairwise (lane t += lane t + s for s = 8, 4, 2, 1). The CPU kernels (which
/// vectorise it) and the CUDA kernels (one thread per output) compute this same order, so they
/// agree bitwise and the result does not depend on the thread count.
constexpr int kSumLanes = 16;

EMBER_HD float combine_lanes(float* acc) {
  for (int s = kSumLanes / 2; s >= 1; s /= 2)
    for (int t = 0; t < s; ++t) acc[t] = rn_add(acc[t], acc[t + s]);
  return acc[0];
}

/// sum over the reduced elements of output o, in the fixed order above.
EMBER_HD float reduce_sum_one(const ReduceShape& s, const float* x, int64_t o) {
  float acc[kSumLanes];
  for (int t = 0; t < kSumLanes; ++t) acc[t] = 0.0f;
  const float* base = x + reduce_base(s, o);
  ReduceCursor cur(s);
  for (int64_t j = 0; j < s.red_numel; j += kSumLanes) {
    const int64_t left = s.red_numel - j;
    for (int t = 0; t < kSumLanes; ++t) {
      if (t < left) {
        acc[t] = rn_add(acc[t], base[cur.off]);
        cur.next();
      }
    }
  }
  return combine_lanes(acc);
}

/// max over the reduced elements of output o (NaN if any is NaN, as torch.amax); with `index`,
/// also the position j of the first maximum (the first NaN if any), as torch.argmax.
EMBER_HD float reduce_max_one(const ReduceShape& s, const float* x, int64_t o, int64_t* index) {
  const float* base = x + reduce_base(s, o);
  ReduceCursor cur(s);
  float best = base[0];
  int64_t at = 0;
  for (int64_t j = 1; j < s.red_numel && best == best; ++j) {
    cur.next();
    const float v = base[cur.off];
    if (v != v || v > best) {
      best = v;
      at = j;
    }
  }
  if (index) *index = at;
  return best;
}

}  // namespace ember::kernels
