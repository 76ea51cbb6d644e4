// @file include/ember/autograd.hpp
// @brief Define-by-run reverse-mode autograd: graph nodes, grad mode, no_grad, backward().
//
// When an op runs with grad mode on and any input requires grad, it records a Node on its output:
// the inputs (the graph's edges) and a closure that maps the output's gradient to one gradient per
// input. Closures capture only detached tensors, so the graph holds no reference cycles and is
// freed with its outputs. backward() visits nodes in reverse topological order, sums the
// gradients reaching each node (a tensor used twice gets both), accumulates into the .grad of
// leaves that require grad, and releases each node's closure and inputs unless retain_graph.
//
// Anomaly detection (as torch.autograd.set_detect_anomaly): while autograd::is_anomaly_enabled(),
// every op that records a node checks its output for NaN/Inf right after its forward (error:
// "<op> forward produced NaN in its output of shape [...]"), backward() checks the seed gradient,
// and every node's input gradients are checked as soon as its backward returns (error: "Function
// '<op>' backward returned NaN in its gradient for input i (shape [...])", <op> being the forward
// op). The first offending op is named in an ember::Error. Off by default; when off the cost is
// one relaxed atomic load and branch per recorded op and per backward node.
#pragma once
#include <atomic>
#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dispatch.hpp"
#include "tensor.hpp"

namespace ember {

struct Node {
  using BackwardFn =
      std::function<std::vector<Tensor>(const Tensor& grad_out, const std::vector<bool>& needs)>;
  std::string name;
  std::vector<Tensor> inputs;  // edges; undefined entries allowed (optional bias)
  std::vector<bool> needs;     // needs[i]: inputs[i] requires grad
  BackwardFn backward;
  void release() {
    inputs.clear();
    backward = nullptr;
  }
};

// ---- grad mode ----
namespace detail {
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

inline bool is_grad_enabled() { return detail::grad_mode_flag(); }

/// RAII guard that disables graph recording on this thread (like torch::NoGradGuard).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(detail::grad_mode_flag()) { detail::grad_mode_flag() = false; }
  ~NoGradGuard() { detail::grad_mode_flag() = prev_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};
using no_grad = NoGradGuard;

// ---- anomaly detection ----
namespace autograd {
namespace detail {
inline std::atomic<bool>& anomaly_flag() {
  static std::atomic<bool> enabled{false};
  return enabled;
}
}  // namespace detail

/// Turns anomaly detection on or off for the whole process (see the file comment).
inline void set_detect_anomaly(bool enabled) {
  detail::anomaly_flag().store(enabled, std::memory_order_relaxed);
}
inline bool is_anomaly_enabled() {
  return detail::anomaly_flag().load(std::memory_order_relaxed);
}

/// RAII: anomaly detection on (or `enabled`) for the guard's lifetime, then the previous setting.
class DetectAnomalyGuard {
 public:
  explicit DetectAnomalyGuard(bool enabled = true) : prev_(is_anomaly_enabled()) {
    set_detect_anomaly(enabled);
  }
  ~DetectAnomalyGuard() { set_detect_anomaly(prev_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_;
};
}  // namespace autograd

namespace detail {

/// How many NaN and infinite values `t` holds (copied to the host for a CUDA tensor).
struct NonFinite {
  int64_t nan = 0, inf = 0;
  bool any() const { return nan + inf > 0; }
  /// "NaN", "Inf" or "NaN and Inf", then the counts: "NaN (3 NaN, 0 Inf of 64 values)".
  std::string describe(int64_t numel) const {
    const char* kind = nan && inf ? "NaN and Inf" : (nan ? "NaN" : "Inf");
    return std::string(kind) + " (" + std::to_string(nan) + " NaN, " + std::to_string(inf) +
           " Inf of " + std::to_string(numel) + " values)";
  }
};

inline NonFinite count_non_finite(const Tensor& t) {
  NonFinite r;
  if (!t.defined()) return r;
  std::vector<float> host;  // a CUDA tensor's values are read on the host (a copy, no kernel)
  const float* p = t.data();
  if (t.is_cuda()) {
    host = t.to_vector();
    p = host.data();
  }
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(p[i])) ++r.nan;
    else if (std::isinf(p[i])) ++r.inf;
  }
  return r;
}

/// Anomaly mode: the forward output of `op` must be finite; names the inputs that were not.
inline void check_forward_output(const char* op, const Tensor& out,
                                 const std::vector<Tensor>& inputs) {
  const NonFinite bad = count_non_finite(out);
  if (!bad.any()) return;
  std::string ins;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    const NonFinite b = count_non_finite(inputs[i]);
    ins += (ins.empty() ? "" : ", ") + std::string("input ") + std::to_string(i) + " " +
           to_string(inputs[i].shape()) + (b.any() ? " holds " + b.describe(inputs[i].numel())
                                                  : std::string(" is finite"));
  }
  throw Error(std::string(op) + " forward produced " + bad.describe(out.numel()) +
              " in its output of shape " + to_string(out.shape()) + " (anomaly detection; " +
              ins + ")");
}

/// Whether an op with these inputs must record a node.
inline bool needs_graph(std::initializer_list<const Tensor*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

/// Attaches a node to `out` (call only when needs_graph was true).
inline void record(const char* name, Tensor& out, std::vector<Tensor> inputs,
                   Node::BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->needs.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    node->needs[i] = inputs[i].defined() && inputs[i].requires_grad();
  if (autograd::is_anomaly_enabled()) check_forward_output(name, out, inputs);
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl().grad_fn = std::move(node);
  out.impl().requires_grad = true;
}

inline void accumulate_into(const Tensor& src, const Tensor& dst) {
  EMBER_DISPATCH("backward", dst, accumulate, dst.numel(), src.data(), dst.data());
}

}  // namespace detail

inline void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  check_arg(requires_grad(), "backward",
            "the tensor does not require grad and has no grad_fn (shape ", to_string(shape()), ")");
  Tensor seed = grad;
  if (!seed.defined()) {
    check_arg(numel() == 1, "backward", "a gradient must be given for a non-scalar output of shape ",
              to_string(shape()));
    seed = full(shape(), 1.0f, device());
  }
  check_arg(seed.shape() == shape() && seed.device() == device(), "backward", "gradient of shape ",
            to_string(seed.shape()), " on ", device_name(seed.device()),
            " does not match the output's shape ", to_string(shape()), " on ",
            device_name(device()));
  NoGradGuard guard;
  const bool anomaly = autograd::is_anomaly_enabled();
  if (anomaly) {
    const detail::NonFinite bad = detail::count_non_finite(seed);
    if (bad.any())
      throw Error("backward: the gradient given to backward() holds " +
                  bad.describe(seed.numel()) + " (shape " + to_string(seed.shape()) +
                  "; anomaly detection)");
  }

  auto accumulate_leaf = [](const Tensor& leaf, const Tensor& g) {
    check_arg(g.shape() == leaf.shape(), "backward", "gradient of shape ", to_string(g.shape()),
              " for a leaf of shape ", to_string(leaf.shape()));
    if (!leaf.impl().grad) leaf.impl().grad = zeros(leaf.shape(), leaf.device()).impl_ptr();
    detail::accumulate_into(g, Tensor(leaf.impl().grad));
  };

  if (is_leaf()) {
    accumulate_leaf(*this, seed);
    return;
  }

  // Topological order by iterative depth-first search (post-order), then reversed.
  // `order` owns the nodes: releasing a node drops its inputs, which may hold the last
  // reference to a node that is still to be processed.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_map<Node*, int> state;  // 1 = on stack, 2 = done
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{grad_fn(), 0}};
  state[grad_fn().get()] = 1;
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.grad_fn()) {
        std::shared_ptr<Node> child = in.grad_fn();
        if (state[child.get()] == 0) {
          state[child.get()] = 1;
          stack.push_back({child, 0});
        }
      }
    } else {
      state[node.get()] = 2;
      order.push_back(node);
      stack.pop_back();
    }
  }
  std::reverse(order.begin(), order.end());

  std::unordered_map<Node*, Tensor> grads;
  grads[grad_fn().get()] = seed;
  for (const std::shared_ptr<Node>& node : order) {
    auto it = grads.find(node.get());
    if (it == grads.end()) continue;
    Tensor g = it->second;
    grads.erase(it);
    if (!node->backward)
      throw Error("backward: the graph through '" + node->name +
                  "' was already released; pass retain_graph=true to backward twice");
    std::vector<Tensor> in_grads = node->backward(g, node->needs);
    if (anomaly) {
      for (size_t i = 0; i < in_grads.size() && i < node->needs.size(); ++i) {
        if (!node->needs[i] || !in_grads[i].defined()) continue;
        const detail::NonFinite bad = detail::count_non_finite(in_grads[i]);
        if (bad.any()) {
          const detail::NonFinite gin = detail::count_non_finite(g);
          throw Error("Function '" + node->name + "' backward returned " +
                      bad.describe(in_grads[i].numel()) + " in its gradient for input " +
                      std::to_string(i) + " (shape " + to_string(in_grads[i].shape()) +
                      "), given " +
                      (gin.any() ? "an output gradient holding " + gin.describe(g.numel())
                                 : std::string("a finite output gradient")) +
                      " of shape " + to_string(g.shape()) + " (anomaly detection)");
        }
      }
    }
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      if (!node->needs[i] || i >= in_grads.size() || !in_grads[i].defined()) continue;
      const Tensor& in = node->inputs[i];
      if (in.grad_fn()) {
        Node* child = in.grad_fn().get();
        auto cg = grads.find(child);
        if (cg == grads.end()) {
          grads.emplace(child, in_grads[i]);
        } else {
          // Sum of gradients from several uses; never modify a tensor another node may hold.
          Tensor sum = cg->second.clone();
          detail::accumulate_into(in_grads[i], sum);
          cg->second = sum;
        }
      } else {
        accumulate_leaf(in, in_grads[i]);
      }
    }
    if (!retain_graph) node->release();
  }
}

}  // namespace ember

// Tensor's members that need autograd (to, clone, reshape, flatten, unflatten). Included here,
// after everything above is defined, rather than from tensor.hpp: then tensor.hpp and this file
// are each complete whichever is included first.
#include "ops/copy.hpp"
#include "ops/view.hpp"
