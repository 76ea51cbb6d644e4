// @file include/ember/models/unet.hpp
// @brief The seed's 16x16 U-Net denoiser (234,977 parameters), with PyTorch's module names.
//
// down0: Conv(1,16) BN ReLU -> down1, down2: [Conv BN ReLU Conv BN ReLU MaxPool2] -> to_vec:
// Flatten ReLU -> dense_emb: Linear(1024,32) ReLU Linear(32,32) ReLU Linear(32,1024) ReLU ->
// up0: Unflatten Conv BN ReLU -> up1, up2: cat(x, skip) ConvT(s2,p1,op1) BN ReLU Conv BN ReLU ->
// out: Conv BN ReLU Conv(16,1). Parameter names equal PyTorch's named_parameters() of
// the seed's PyTorch model (benchmarks/torch_reference.py: "down1.model.0.weight", ...), so weights
// can be exchanged (io/safetensors.hpp).
#pragma once
#include "../ember.hpp"

namespace ember::models {

namespace detail {
template <class M, class... Args>
std::shared_ptr<nn::Module> make(Args... args) {
  return std::make_shared<M>(args...);
}
}  // namespace detail

/// Conv BN ReLU Conv BN ReLU MaxPool(2), registered as "model" like the seed's DownBlock.
class DownBlock : public nn::Module {
 public:
  DownBlock(int in, int out) {
    using nn::BatchNorm2d, nn::Conv2d, nn::MaxPool2d, nn::ReLU, nn::Sequential;
    model = register_module(
        "model", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
                     detail::make<Conv2d>(in, out, 3, 1, 1), detail::make<BatchNorm2d>(out),
                     detail::make<ReLU>(), detail::make<Conv2d>(out, out, 3, 1, 1),
                     detail::make<BatchNorm2d>(out), detail::make<ReLU>(),
                     detail::make<MaxPool2d>(2)}));
  }
  Tensor forward(const Tensor& x) override { return model->forward(x); }
  std::string name() const override { return "DownBlock"; }
  std::shared_ptr<nn::Sequential> model;
};

/// cat(x, skip) -> ConvTranspose(2 in, out, 3, s2, p1, op1) BN ReLU Conv BN ReLU.
class UpBlock : public nn::Module {
 public:
  UpBlock(int in, int out) {
    using nn::BatchNorm2d, nn::Conv2d, nn::ConvTranspose2d, nn::ReLU, nn::Sequential;
    model = register_module(
        "model", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
                     detail::make<ConvTranspose2d>(2 * in, out, 3, 2, 1, 1),
                     detail::make<BatchNorm2d>(out), detail::make<ReLU>(),
                     detail::make<Conv2d>(out, out, 3, 1, 1), detail::make<BatchNorm2d>(out),
                     detail::make<ReLU>()}));
  }
  using nn::Module::forward;  // the single-input overload stays visible (and throws)
  Tensor forward(const Tensor& x, const Tensor& skip) { return model->forward(cat({x, skip}, 1)); }
  std::string name() const override { return "UpBlock"; }
  std::shared_ptr<nn::Sequential> model;
};

class UNet : public nn::Module {
 public:
  /// img_size must be divisible by 4 (two poolings); channels of the image (1 for FashionMNIST).
  explicit UNet(int img_size = 16, int img_channels = 1) {
    using nn::BatchNorm2d, nn::Conv2d, nn::Flatten, nn::Linear, nn::ReLU, nn::Sequential,
        nn::Unflatten;
    check_arg(img_size > 0 && img_size % 4 == 0, "UNet", "img_size must be a positive multiple "
              "of 4, got ", img_size);
    const int d0 = 16, d1 = 32, d2 = 64, L = img_size / 4;
    using List = std::initializer_list<std::shared_ptr<Module>>;
    down0 = register_module("down0", std::make_shared<Sequential>(List{
        detail::make<Conv2d>(img_channels, d0, 3, 1, 1), detail::make<BatchNorm2d>(d0),
        detail::make<ReLU>()}));
    down1 = register_module("down1", std::make_shared<DownBlock>(d0, d1));
    down2 = register_module("down2", std::make_shared<DownBlock>(d1, d2));
    to_vec = register_module("to_vec", std::make_shared<Sequential>(List{
        detail::make<Flatten>(), detail::make<ReLU>()}));
    dense_emb = register_module("dense_emb", std::make_shared<Sequential>(List{
        detail::make<Linear>(d2 * L * L, d1), detail::make<ReLU>(), detail::make<Linear>(d1, d1),
        detail::make<ReLU>(), detail::make<Linear>(d1, d2 * L * L), detail::make<ReLU>()}));
    up0 = register_module("up0", std::make_shared<Sequential>(List{
        std::make_shared<Unflatten>(1, Shape{d2, L, L}), detail::make<Conv2d>(d2, d2, 3, 1, 1),
        detail::make<BatchNorm2d>(d2), detail::make<ReLU>()}));
    up1 = register_module("up1", std::make_shared<UpBlock>(d2, d1));
    up2 = register_module("up2", std::make_shared<UpBlock>(d1, d0));
    out = register_module("out", std::make_shared<Sequential>(List{
        detail::make<Conv2d>(d0, d0, 3, 1, 1), detail::make<BatchNorm2d>(d0),
        detail::make<ReLU>(), detail::make<Conv2d>(d0, img_channels, 3, 1, 1)}));
  }

  Tensor forward(const Tensor& x) override {
    Tensor a = down0->forward(x);
    Tensor b = down1->forward(a);
    Tensor c = down2->forward(b);
    Tensor v = dense_emb->forward(to_vec->forward(c));
    Tensor u0 = up0->forward(v);
    Tensor u1 = up1->forward(u0, c);
    Tensor u2 = up2->forward(u1, b);
    return out->forward(u2);
  }
  std::string name() const override { return "UNet"; }

  std::shared_ptr<nn::Sequential> down0, to_vec, dense_emb, up0, out;
  std::shared_ptr<DownBlock> down1, down2;
  std::shared_ptr<UpBlock> up1, up2;
};

}  // namespace ember::models
