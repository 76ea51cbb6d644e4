// @file include/ember/ops/common.hpp
// @brief What every op shares: device/shape checks and the one-line backend dispatch.
#pragma once
#include <climits>
#include <initializer_list>
#include <string>
#include <utility>

#include "../core/dispatch.hpp"  // EMBER_DISPATCH, the one-line backend dispatch
#include "../tensor.hpp"

namespace ember::detail {

/// "x [2, 3, 4, 4] on cpu, weight [8, 3, 3, 3] on cuda" for error messages.
inline std::string describe(std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  std::string s;
  for (auto& [name, t] : ts) {
    if (!t || !t->defined()) continue;
    if (!s.empty()) s += ", ";
    s += std::string(name) + " " + to_string(t->shape()) + " on " + device_name(t->device());
  }
  return s;
}

/// Every defined tensor must be on the same device and hold at least one element.
inline void check_tensors(const char* op,
                          std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  const Tensor* first = nullptr;
  for (auto& [name, t] : ts) {
    if (!t || !t->defined()) continue;
    check_arg(t->numel() > 0, op, name, " has no elements (", describe(ts), ")");
    if (first == nullptr)
      first = t;
    else
      check_arg(t->device() == first->device(), op, "tensors are on different devices (",
                describe(ts), ")");
  }
}

/// The kernels (CPU and CUDA) take sizes as 32-bit ints: each named product of sizes must be at
/// most INT_MAX, or ember::Error("<op>: <name> ... exceeds 2^31 - 1 ... (<context()>)") is thrown
/// before anything is allocated. Products are formed with checked_size_mul (no overflow); the
/// message is only built on failure.
template <class Context>  // Context: a callable returning the shapes as a string
void check_kernel_sizes(
    const char* op, const Context& context,
    std::initializer_list<std::pair<const char*, std::initializer_list<int64_t>>> products) {
  for (const auto& [name, factors] : products) {
    int64_t p = 1;
    for (int64_t f : factors) p = p < 0 ? p : checked_size_mul(p, f);
    if (p >= 0 && p <= INT_MAX) continue;
    std::string expr;
    for (int64_t f : factors) expr += (expr.empty() ? "" : "*") + std::to_string(f);
    throw Error(std::string(op) + ": " + name + " (" + expr +
                ") exceeds 2^31 - 1, the largest size ember's kernels index (" + context() + ")");
  }
}

/// Records the backward of a layer y = f(x, weight) + bias (conv2d, conv_transpose2d, linear):
/// its gradients come from two kernels, input_grad(gy, weight, dx) and
/// weight_grad(gy, x, dweight, dbias /*nullable*/), each run only when needed. The closure keeps
/// detached x and weight, so the graph holds no reference cycle. Call when needs_graph is true.
template <class InputGrad, class WeightGrad>
void record_layer(const char* op, Tensor& y, const Tensor& x, const Tensor& weight,
                  const Tensor& bias, InputGrad input_grad, WeightGrad weight_grad) {
  Tensor sx = x.detach(), sw = weight.detach();
  const bool has_bias = bias.defined();
  const int64_t bias_size = has_bias ? bias.numel() : 0;
  record(op, y, {x, weight, bias},
         [sx, sw, has_bias, bias_size, input_grad, weight_grad](const Tensor& gy,
                                                                const std::vector<bool>& needs) {
           std::vector<Tensor> g(3);
           if (needs[0]) {
             g[0] = empty_like(sx);
             input_grad(gy, sw, g[0]);
           }
           if (needs[1] || (has_bias && needs[2])) {
             g[1] = empty_like(sw);
             if (has_bias) g[2] = empty(Shape{bias_size}, gy.device());
             weight_grad(gy, sx, g[1], has_bias ? g[2].data() : nullptr);
           }
           return g;
         });
}

}  // namespace ember::detail
