// @file include/ember/ops/elementwise.hpp
// @brief add, sub, mul, div, maximum, minimum (tensor-tensor, broadcasting), the tensor-scalar
//        forms (add, sub, mul, div, rsub, rdiv, pow, clamp), neg, reciprocal, and the operators.
//
// Contract: tensor-tensor ops broadcast as PyTorch (ops/broadcast.hpp) and need both tensors on
// one device; the result is a new tensor. Gradients: d(a+b) = (g, g); d(a-b) = (g, -g);
// d(a*b) = (g*b, g*a); d(a/b) = (g/b, -g*((a/b)/b)); each summed back to its input's shape.
// Scalar forms compute what PyTorch computes: x / s divides (it does not multiply by 1/s);
// s / x is reciprocal(x) * s and s - x is s + (-x), as torch.Tensor.__rtruediv__ / __rsub__.
#pragma once
#include <limits>
#include <optional>
#include <string>

#include "broadcast.hpp"
#include "common.hpp"

namespace ember {

namespace detail {

inline Tensor scale(const Tensor& x, float alpha) {
  Tensor y = empty_like(x);
  EMBER_DISPATCH("scale", x, scale, x.numel(), alpha, x.data(), y.data());
  return y;
}

/// a op b with broadcasting. Equal shapes of add/sub/mul take the contiguous kernels (the same
/// values: the formulas are the same); others one broadcast launch. Backward: the per-element
/// gradients (binary_math.hpp), each summed back to its input's shape.
inline Tensor binary(const char* op, kernels::BinaryOp kind, const Tensor& a, const Tensor& b) {
  check_tensors(op, {{"a", &a}, {"b", &b}});
  const Shape out = broadcast_shapes(op, a.shape(), b.shape());
  checked_numel(out, op);
  Tensor y = Tensor::empty(out, a.device(), op);
  const bool same = a.shape() == b.shape();
  const kernels::BroadcastShape bs = make_broadcast(op, out, {a.shape(), b.shape()});
  if (same && kind == kernels::BinaryOp::add)
    EMBER_DISPATCH(op, a, add, a.numel(), a.data(), b.data(), y.data());
  else if (same && kind == kernels::BinaryOp::sub)
    EMBER_DISPATCH(op, a, sub, a.numel(), a.data(), b.data(), y.data());
  else if (same && kind == kernels::BinaryOp::mul)
    EMBER_DISPATCH(op, a, mul, a.numel(), a.data(), b.data(), y.data());
  else
    EMBER_DISPATCH(op, a, binary_forward, kind, bs, a.data(), b.data(), y.data());
  const bool comparison = static_cast<int>(kind) >= static_cast<int>(kernels::BinaryOp::gt);
  if (!comparison && needs_graph({&a, &b})) {
    Tensor sa = a.detach(), sb = b.detach();
    const std::string what = std::string(op) + " backward";
    record(op, y, {a, b}, [sa, sb, bs, kind, what](const Tensor& g,
                                                   const std::vector<bool>& needs) {
      Tensor ga, gb;  // per output element
      if (kind == kernels::BinaryOp::add || kind == kernels::BinaryOp::sub) {
        ga = g;
        gb = g;
      } else if (kind == kernels::BinaryOp::mul && sa.shape() == sb.shape()) {
        for (int i = 0; i < 2; ++i) {
          if (!needs[i]) continue;
          Tensor& out_g = i == 0 ? ga : gb;
          out_g = empty_like(g);
          EMBER_DISPATCH(what.c_str(), g, mul, g.numel(), g.data(), (i == 0 ? sb : sa).data(),
                         out_g.data());
        }
      } else {
        if (needs[0]) ga = empty_like(g);
        if (needs[1]) gb = empty_like(g);
        EMBER_DISPATCH(what.c_str(), g, binary_backward, kind, bs, sa.data(), sb.data(),
                       g.data(), ga.defined() ? ga.data() : nullptr,
                       gb.defined() ? gb.data() : nullptr);
      }
      std::vector<Tensor> out(2);
      if (needs[0]) out[0] = sum_to(ga, sa.shape());
      if (needs[1]) {
        out[1] = sum_to(gb, sb.shape());
        if (kind == kernels::BinaryOp::sub) out[1] = scale(out[1], -1.0f);
      }
      return out;
    });
  }
  return y;
}

}  // namespace detail

/// a + b, broadcasting (torch.add).
inline Tensor add(const Tensor& a, const Tensor& b) {
  return detail::binary("add", kernels::BinaryOp::add, a, b);
}
/// a - b, broadcasting (torch.sub).
inline Tensor sub(const Tensor& a, const Tensor& b) {
  return detail::binary("sub", kernels::BinaryOp::sub, a, b);
}
/// a * b, broadcasting (torch.mul).
inline Tensor mul(const Tensor& a, const Tensor& b) {
  return detail::binary("mul", kernels::BinaryOp::mul, a, b);
}
/// a / b, broadcasting, true division (torch.div).
inline Tensor div(const Tensor& a, const Tensor& b) {
  return detail::binary("div", kernels::BinaryOp::div, a, b);
}
/// Elementwise max, broadcasting, NaN propagated (torch.maximum); ties split the gradient.
inline Tensor maximum(const Tensor& a, const Tensor& b) {
  return detail::binary("maximum", kernels::BinaryOp::maximum, a, b);
}
/// Elementwise min, broadcasting, NaN propagated (torch.minimum); ties split the gradient.
inline Tensor minimum(const Tensor& a, const Tensor& b) {
  return detail::binary("minimum", kernels::BinaryOp::minimum, a, b);
}

/// alpha * x
inline Tensor mul(const Tensor& x, float alpha) {
  detail::check_tensors("mul", {{"x", &x}});
  Tensor y = detail::scale(x, alpha);
  if (detail::needs_graph({&x}))
    detail::record("mul_scalar", y, {x}, [alpha](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{detail::scale(g, alpha)};
    });
  return y;
}

/// x + s
inline Tensor add(const Tensor& x, float s) {
  detail::check_tensors("add", {{"x", &x}});
  Tensor y = empty_like(x);
  EMBER_DISPATCH("add", x, add_scalar, x.numel(), x.data(), s, y.data());
  if (detail::needs_graph({&x}))
    detail::record("add_scalar", y, {x}, [](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g};
    });
  return y;
}

inline Tensor neg(const Tensor& x) { return mul(x, -1.0f); }

/// Comparisons, broadcasting (torch.gt, ge, lt, le, eq, ne): 1.0 where true, 0.0 elsewhere (a
/// float mask: ember's tensors are float32; PyTorch returns bool). Not differentiable. The
/// float forms compare with a scalar (x > 0.5f).
inline Tensor gt(const Tensor& a, const Tensor& b) {
  return detail::binary("gt", kernels::BinaryOp::gt, a, b);
}
inline Tensor ge(const Tensor& a, const Tensor& b) {
  return detail::binary("ge", kernels::BinaryOp::ge, a, b);
}
inline Tensor lt(const Tensor& a, const Tensor& b) {
  return detail::binary("lt", kernels::BinaryOp::lt, a, b);
}
inline Tensor le(const Tensor& a, const Tensor& b) {
  return detail::binary("le", kernels::BinaryOp::le, a, b);
}
inline Tensor eq(const Tensor& a, const Tensor& b) {
  return detail::binary("eq", kernels::BinaryOp::eq, a, b);
}
inline Tensor ne(const Tensor& a, const Tensor& b) {
  return detail::binary("ne", kernels::BinaryOp::ne, a, b);
}
namespace detail {
inline Tensor scalar_like(const Tensor& x, float s) {
  return full(Shape{}, s, x.defined() ? x.device() : Device::cpu);
}
}  // namespace detail
inline Tensor gt(const Tensor& x, float s) { return gt(x, detail::scalar_like(x, s)); }
inline Tensor ge(const Tensor& x, float s) { return ge(x, detail::scalar_like(x, s)); }
inline Tensor lt(const Tensor& x, float s) { return lt(x, detail::scalar_like(x, s)); }
inline Tensor le(const Tensor& x, float s) { return le(x, detail::scalar_like(x, s)); }
inline Tensor eq(const Tensor& x, float s) { return eq(x, detail::scalar_like(x, s)); }
inline Tensor ne(const Tensor& x, float s) { return ne(x, detail::scalar_like(x, s)); }
inline Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
inline Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
inline Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
inline Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
inline Tensor operator>(const Tensor& x, float s) { return gt(x, s); }
inline Tensor operator>=(const Tensor& x, float s) { return ge(x, s); }
inline Tensor operator<(const Tensor& x, float s) { return lt(x, s); }
inline Tensor operator<=(const Tensor& x, float s) { return le(x, s); }

namespace detail {
inline Tensor scalar_op(const char* op, kernels::ScalarOp kind, const Tensor& x, float s0,
                        float s1 = 0.0f) {
  check_tensors(op, {{"x", &x}});
  Tensor y = empty_like(x);
  EMBER_DISPATCH(op, x, scalar_forward, kind, x.numel(), x.data(), s0, s1, y.data());
  if (needs_graph({&x})) {
    Tensor sx = x.detach();
    const std::string what = std::string(op) + " backward";
    record(op, y, {x}, [sx, kind, s0, s1, what](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = empty_like(g);
      EMBER_DISPATCH(what.c_str(), g, scalar_backward, kind, g.numel(), sx.data(), s0, s1,
                     g.data(), gx.data());
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}
}  // namespace detail

/// x / s, true division (torch.div(x, s)): not x * (1 / s).
inline Tensor div(const Tensor& x, float s) {
  return detail::scalar_op("div", kernels::ScalarOp::div, x, s);
}
/// x - s.
inline Tensor sub(const Tensor& x, float s) { return add(x, -s); }
/// 1 / x (torch.reciprocal).
inline Tensor reciprocal(const Tensor& x) {
  return detail::scalar_op("reciprocal", kernels::ScalarOp::rdiv, x, 1.0f);
}
/// x ** exponent (torch.pow(x, exponent)), with PyTorch's special cases for 0, 1, 2, 3, 0.5,
/// -0.5, -1, -2; gradient exponent * x ** (exponent - 1) (0 for exponent 0).
inline Tensor pow(const Tensor& x, float exponent) {
  return detail::scalar_op("pow", kernels::ScalarOp::pow, x, exponent);
}
/// min(max(x, lo), hi) (torch.clamp): a missing bound is not applied; NaN stays NaN; the
/// gradient passes where lo <= x <= hi. Without either bound it throws, as PyTorch.
inline Tensor clamp(const Tensor& x, std::optional<float> lo, std::optional<float> hi) {
  check_arg(lo.has_value() || hi.has_value(), "clamp", "at least one of min and max must be "
            "given (x ", x.defined() ? to_string(x.shape()) : std::string("undefined"), ")");
  const float inf = std::numeric_limits<float>::infinity();
  return detail::scalar_op("clamp", kernels::ScalarOp::clamp, x, lo ? *lo : -inf,
                           hi ? *hi : inf);
}
/// torch.clamp_min / clamp(min=lo) and torch.clamp_max / clamp(max=hi).
inline Tensor clamp_min(const Tensor& x, float lo) { return clamp(x, lo, std::nullopt); }
inline Tensor clamp_max(const Tensor& x, float hi) { return clamp(x, std::nullopt, hi); }

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator*(const Tensor& x, float s) { return mul(x, s); }
inline Tensor operator*(float s, const Tensor& x) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, float s) { return div(x, s); }
/// s / x: reciprocal(x) * s, as PyTorch's __rtruediv__.
inline Tensor operator/(float s, const Tensor& x) {
  return detail::scalar_op("rdiv", kernels::ScalarOp::rdiv, x, s);
}
inline Tensor operator+(const Tensor& x, float s) { return add(x, s); }
inline Tensor operator+(float s, const Tensor& x) { return add(x, s); }
inline Tensor operator-(const Tensor& x, float s) { return add(x, -s); }
/// s - x: s + (-x) (bitwise s - x), as PyTorch's __rsub__.
inline Tensor operator-(float s, const Tensor& x) { return add(neg(x), s); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace ember
