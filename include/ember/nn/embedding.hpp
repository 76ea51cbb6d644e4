// @file include/ember/nn/embedding.hpp
// @brief Embedding (torch.nn.Embedding): a lookup table of num_embeddings rows of embedding_dim.
#pragma once
#include <optional>

#include "../ops/embedding.hpp"
#include "module.hpp"

namespace ember::nn {

/// weight [num_embeddings, embedding_dim] initialised N(0, 1) as PyTorch (from `gen`, default
/// default_generator()), with the row padding_idx (negative counts from the end) zeroed and
/// given no gradient. forward(indices): float32 exact-integer indices of any shape ->
/// indices.shape + [embedding_dim] (see ember::embedding).
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim,
            std::optional<int64_t> padding_idx = std::nullopt,
            Generator& gen = default_generator())
      : num_(num_embeddings), dim_(embedding_dim) {
    check_arg(num_embeddings > 0 && embedding_dim > 0, "Embedding",
              "num_embeddings and embedding_dim must be > 0, got ", num_embeddings, " and ",
              embedding_dim);
    if (padding_idx) {
      check_arg(*padding_idx < num_embeddings && *padding_idx >= -num_embeddings, "Embedding",
                "padding_idx ", *padding_idx, " must be within num_embeddings ", num_embeddings);
      padding_idx_ = *padding_idx < 0 ? *padding_idx + num_embeddings : *padding_idx;
    }
    Tensor w = randn({num_embeddings, embedding_dim}, gen);
    if (padding_idx_) {
      float* row = w.data() + *padding_idx_ * embedding_dim;
      for (int64_t c = 0; c < embedding_dim; ++c) row[c] = 0.0f;
    }
    weight = register_parameter("weight", w);
  }
  Tensor forward(const Tensor& indices) override {
    return embedding(indices, weight, padding_idx_);
  }
  int64_t num_embeddings() const { return num_; }
  int64_t embedding_dim() const { return dim_; }
  std::optional<int64_t> padding_idx() const { return padding_idx_; }
  std::string name() const override { return "Embedding"; }

  Tensor weight;

 private:
  int64_t num_, dim_;
  std::optional<int64_t> padding_idx_;
};

}  // namespace ember::nn
