// @file tests/support/op_cases_training.hpp
// @brief Op-table entries of the layers-and-training family (#12 item 6): dropout and embedding,
//        in the groups "dropout" and "embedding" (included by op_cases.hpp, collected by
//        op_cases(); each group has a TEST_CASE in test_ops_gradcheck.cpp, test_determinism.cpp
//        and tests/cuda/test_cuda_ops.cu).
//
// dropout: the mask comes from a Generator made (and so reseeded) inside the lambda, so every
// call of the entry's function draws the same mask: the op is then linear in x (y = x * mask)
// and finite differences see a fixed function. CPU vs CUDA: the mask kernels share the Philox
// stream and the product is one rounded multiply, so the outputs and gradients are bitwise equal.
// embedding: the indices (exact integers, with repeats, so the weight gradient sums rows) are
// made inside the lambda on the weight's device; the op is linear in the weight. The CUDA and
// CPU backward sum each row's gradients in index order: bitwise equal.
#pragma once
#include <vector>

#include <ember/ember.hpp>

namespace ember_test {
namespace op_cases_training {

inline ember::Device device_of(const ember::Tensor& t) {
  return t.defined() ? t.device() : ember::Device::cpu;
}

/// n indices in [0, num) from a fixed LCG (repeats included), shaped `shape`.
inline ember::Tensor make_indices(const ember::Shape& shape, int64_t num, ember::Device device,
                                  uint32_t seed = 12345u) {
  std::vector<float> v(size_t(ember::numel_of(shape)));
  uint32_t s = seed;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = float((s >> 8) % uint32_t(num));
  }
  return ember::from_vector(v, shape, device);
}

inline OpCase dropout_case(unsigned suites, const ember::Shape& shape, double p, uint64_t seed,
                           Tol tol) {
  return OpCase{"dropout", "dropout",
                "dropout(x " + ember::to_string(shape) + ", p " + std::to_string(p) + ", seed " +
                    std::to_string(seed) + ")",
                {in("x", shape)},
                [p, seed](const Ins& t) {
                  ember::Generator g(seed);
                  return ember::dropout(t[0], p, true, g);
                },
                suites, tol};
}

inline OpCase embedding_case(unsigned suites, const ember::Shape& idx_shape, int64_t num,
                             int64_t dim, std::optional<int64_t> pad, Tol tol) {
  return OpCase{"embedding", "embedding",
                "embedding(indices " + ember::to_string(idx_shape) + ", weight [" +
                    std::to_string(num) + ", " + std::to_string(dim) + "]" +
                    (pad ? ", padding_idx " + std::to_string(*pad) : std::string()) + ")",
                {in("weight", {num, dim})},
                [idx_shape, num, pad](const Ins& t) {
                  return ember::embedding(make_indices(idx_shape, num, device_of(t[0])), t[0],
                                          pad);
                },
                suites, tol};
}

/// The family's entries (called by op_cases()).
inline void training_cases(std::vector<OpCase>& c) {
  // Gradcheck: both ops are linear in the perturbed input, so only float32 rounding of the
  // central differences remains (h = 1e-2, outputs of size ~1: ~1e-5 relative).
  const unsigned G = kGradcheck;
  c.push_back(dropout_case(G, {3, 5}, 0.3, 11, {1e-3, 1e-3}));
  c.push_back(dropout_case(G, {2, 3, 7}, 0.5, 12, {1e-3, 1e-3}));
  c.push_back(dropout_case(G, {4, 4}, 1.0, 13, {1e-3, 1e-3}));  // all zeros, zero gradient
  c.push_back(embedding_case(G, {2, 5}, 4, 3, std::nullopt, {1e-3, 1e-3}));
  c.push_back(embedding_case(G, {7}, 6, 2, std::nullopt, {1e-3, 1e-3}));
  c.push_back(embedding_case(G, {3, 2, 2}, 3, 4, std::nullopt, {1e-3, 1e-3}));
  // (padding_idx is not a gradcheck case: its row's gradient is zero by definition, not the
  // derivative; the fixture "embedding" and the hand cases test it.)

  // CPU vs CUDA: bitwise (see the top of this file). Odd sizes: tails of the 4-lane Philox
  // blocks; several row blocks in the embedding backward (num * dim > 64k on the GPU).
  const unsigned K = kCuda;
  c.push_back(dropout_case(K, {3, 7, full_or_emulated(1001, 41)}, 0.25, 21, {0.0, 0.0}));
  c.push_back(dropout_case(K, {5, 13}, 0.9, 22, {0.0, 0.0}));
  c.push_back(embedding_case(K, {4, full_or_emulated(257, 9)}, full_or_emulated(3001, 37),
                             full_or_emulated(129, 7), std::nullopt, {0.0, 0.0}));
  c.push_back(embedding_case(K, {6, 5}, 11, 3, 2, {0.0, 0.0}));

  // Determinism across thread counts and ISAs.
  const unsigned D = kDeterminism;
  c.push_back(dropout_case(D, {4, 8, 9, 9}, 0.4, 31, {0.0, 0.0}));
  c.push_back(embedding_case(D, {8, 40}, 100, 33, 5, {0.0, 0.0}));
}

}  // namespace op_cases_training
}  // namespace ember_test
