// @file include/ember/ops/elementwise.hpp
// @brief add, sub, mul (tensor-tensor, same shape), scalar multiply/add, neg, and operators.
//
// Contract: tensor-tensor ops need equal shapes and devices (no broadcasting); the result is a
// new tensor. Gradients: d(a+b) = (g, g); d(a-b) = (g, -g); d(a*b) = (g*b, g*a); d(s*a) = s*g.
#pragma once
#include "common.hpp"

namespace ember {

namespace detail {

inline void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  check_tensors(op, {{"a", &a}, {"b", &b}});
  check_arg(a.shape() == b.shape(), op, "shapes differ: a ", to_string(a.shape()), ", b ",
            to_string(b.shape()));
}

inline Tensor scale(const Tensor& x, float alpha) {
  Tensor y = empty_like(x);
  EMBER_DISPATCH("scale", x, scale, x.numel(), alpha, x.data(), y.data());
  return y;
}

}  // namespace detail

inline Tensor add(const Tensor& a, const Tensor& b) {
  detail::check_same_shape("add", a, b);
  Tensor y = empty_like(a);
  EMBER_DISPATCH("add", a, add, a.numel(), a.data(), b.data(), y.data());
  if (detail::needs_graph({&a, &b}))
    detail::record("add", y, {a, b}, [](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g, g};
    });
  return y;
}

inline Tensor sub(const Tensor& a, const Tensor& b) {
  detail::check_same_shape("sub", a, b);
  Tensor y = empty_like(a);
  EMBER_DISPATCH("sub", a, sub, a.numel(), a.data(), b.data(), y.data());
  if (detail::needs_graph({&a, &b}))
    detail::record("sub", y, {a, b}, [](const Tensor& g, const std::vector<bool>& needs) {
      return std::vector<Tensor>{g, needs[1] ? detail::scale(g, -1.0f) : Tensor()};
    });
  return y;
}

inline Tensor mul(const Tensor& a, const Tensor& b) {
  detail::check_same_shape("mul", a, b);
  Tensor y = empty_like(a);
  EMBER_DISPATCH("mul", a, mul, a.numel(), a.data(), b.data(), y.data());
  if (detail::needs_graph({&a, &b})) {
    Tensor sa = a.detach(), sb = b.detach();
    detail::record("mul", y, {a, b}, [sa, sb](const Tensor& g, const std::vector<bool>& needs) {
      std::vector<Tensor> out(2);
      for (int i = 0; i < 2; ++i) {
        if (!needs[i]) continue;
        const Tensor& other = i == 0 ? sb : sa;
        out[i] = empty_like(g);
        EMBER_DISPATCH("mul backward", g, mul, g.numel(), g.data(), other.data(), out[i].data());
      }
      return out;
    });
  }
  return y;
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

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator*(const Tensor& x, float s) { return mul(x, s); }
inline Tensor operator*(float s, const Tensor& x) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, float s) { return mul(x, 1.0f / s); }
inline Tensor operator+(const Tensor& x, float s) { return add(x, s); }
inline Tensor operator+(float s, const Tensor& x) { return add(x, s); }
inline Tensor operator-(const Tensor& x, float s) { return add(x, -s); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace ember
