// @file include/ember/models/embeddings.hpp
// @brief The diffusion U-Nets' embedding blocks (course notebooks 02-04), with PyTorch's names.
//
// EmbedBlock(input_dim, emb_dim): x.view(-1, input_dim) -> Linear(input_dim, emb_dim) -> act ->
// Linear(emb_dim, emb_dim) -> Unflatten(1, (emb_dim, 1, 1)), registered as "model" (parameters
// "model.0.weight", "model.2.weight", ...). The 02 U-Net uses ReLU, the 03/04 U-Net GELU.
// SinusoidalPositionEmbedBlock(dim): t (N values) -> [sin(t w_k), cos(t w_k)] (N, dim) with
// w_k = exp(-k ln(10000) / (dim/2 - 1)), k = 0 .. dim/2 - 1 (no parameters).
#pragma once
#include <cmath>

#include "../ember.hpp"

namespace ember::models {

/// Which activation EmbedBlock puts between its two Linear layers.
enum class EmbedActivation { relu, gelu };

class EmbedBlock : public nn::Module {
 public:
  EmbedBlock(int input_dim, int emb_dim, EmbedActivation act = EmbedActivation::gelu)
      : input_dim_(input_dim) {
    check_arg(input_dim > 0 && emb_dim > 0, "EmbedBlock",
              "input_dim and emb_dim must be positive, got ", input_dim, " and ", emb_dim);
    std::shared_ptr<nn::Module> a;
    if (act == EmbedActivation::relu)
      a = std::make_shared<nn::ReLU>();
    else
      a = std::make_shared<nn::GELU>();
    model = register_module(
        "model", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<Module>>{
                     std::make_shared<nn::Linear>(input_dim, emb_dim), a,
                     std::make_shared<nn::Linear>(emb_dim, emb_dim),
                     std::make_shared<nn::Unflatten>(1, Shape{emb_dim, 1, 1})}));
  }
  /// (N, input_dim) or anything with a multiple of input_dim values -> (N, emb_dim, 1, 1).
  Tensor forward(const Tensor& x) override {
    check_arg(x.numel() % input_dim_ == 0, "EmbedBlock", "input of shape ", to_string(x.shape()),
              " cannot be viewed as (-1, ", input_dim_, ")");
    return model->forward(reshape(x, Shape{-1, input_dim_}));
  }
  std::string name() const override { return "EmbedBlock"; }
  std::shared_ptr<nn::Sequential> model;

 private:
  int64_t input_dim_;
};

class SinusoidalPositionEmbedBlock : public nn::Module {
 public:
  explicit SinusoidalPositionEmbedBlock(int dim) : dim_(dim) {
    check_arg(dim >= 4 && dim % 2 == 0, "SinusoidalPositionEmbedBlock",
              "dim must be even and at least 4, got ", dim);
  }
  /// t: N values (any shape) -> (N, dim); not differentiable in t.
  Tensor forward(const Tensor& t) override {
    const int64_t half = dim_ / 2;
    const double e = std::log(10000.0) / double(half - 1);
    Tensor w = exp(arange(double(half), t.device()) * float(-e));  // (half)
    Tensor a = reshape(t.detach(), Shape{-1, 1}) * reshape(w, Shape{1, half});
    return cat({sin(a), cos(a)}, 1);
  }
  std::string name() const override { return "SinusoidalPositionEmbedBlock"; }
  int dim() const { return dim_; }

 private:
  int dim_;
};

}  // namespace ember::models
