// @file include/ember/models/time_unet.hpp
// @brief The course's 02 time-conditioned U-Net (240,385 parameters at the defaults): the seed
//        U-Net (models/unet.hpp) plus an embedding of t/T added before each up block.
//
// Same layers and names as the seed UNet (down0, down1, down2, to_vec, dense_emb, up0, up1, up2,
// out), plus temb_1 = EmbedBlock(1, d2) and temb_2 = EmbedBlock(1, d1) with ReLU:
//   u0 = up0(dense_emb(to_vec(down2)));  u1 = up1(u0 + temb_1(t/T), down2);
//   u2 = up2(u1 + temb_2(t/T), down1);   eps = out(u2).
// t holds N timesteps (float values, integers in [0, T) for DDPM); it is not differentiated.
#pragma once
#include <array>

#include "embeddings.hpp"
#include "unet.hpp"

namespace ember::models {

class TimeUNet : public nn::Module {
 public:
  /// T: the number of diffusion steps (t is divided by it); channels: (d0, d1, d2) of the down
  /// path (the course's (16, 32, 64)); img_size must be a positive multiple of 4.
  explicit TimeUNet(int T = 150, int img_size = 16, int img_channels = 1,
                    std::array<int, 3> channels = {16, 32, 64})
      : T_(T) {
    using nn::BatchNorm2d, nn::Conv2d, nn::Flatten, nn::Linear, nn::ReLU, nn::Sequential,
        nn::Unflatten;
    check_arg(T > 0, "TimeUNet", "T must be positive, got ", T);
    check_arg(img_size > 0 && img_size % 4 == 0, "TimeUNet",
              "img_size must be a positive multiple of 4, got ", img_size);
    const int d0 = channels[0], d1 = channels[1], d2 = channels[2], L = img_size / 4;
    check_arg(d0 > 0 && d1 > 0 && d2 > 0 && img_channels > 0, "TimeUNet",
              "channels must be positive, got (", d0, ", ", d1, ", ", d2, ") and img_channels ",
              img_channels);
    using List = std::initializer_list<std::shared_ptr<Module>>;
    down0 = register_module("down0", std::make_shared<Sequential>(List{
                                         detail::make<Conv2d>(img_channels, d0, 3, 1, 1),
                                         detail::make<BatchNorm2d>(d0), detail::make<ReLU>()}));
    down1 = register_module("down1", std::make_shared<DownBlock>(d0, d1));
    down2 = register_module("down2", std::make_shared<DownBlock>(d1, d2));
    to_vec = register_module("to_vec", std::make_shared<Sequential>(
                                           List{detail::make<Flatten>(), detail::make<ReLU>()}));
    dense_emb = register_module(
        "dense_emb", std::make_shared<Sequential>(
                         List{detail::make<Linear>(d2 * L * L, d1), detail::make<ReLU>(),
                              detail::make<Linear>(d1, d1), detail::make<ReLU>(),
                              detail::make<Linear>(d1, d2 * L * L), detail::make<ReLU>()}));
    temb_1 = register_module("temb_1", std::make_shared<EmbedBlock>(1, d2, EmbedActivation::relu));
    temb_2 = register_module("temb_2", std::make_shared<EmbedBlock>(1, d1, EmbedActivation::relu));
    up0 = register_module("up0", std::make_shared<Sequential>(
                                     List{std::make_shared<Unflatten>(1, Shape{d2, L, L}),
                                          detail::make<Conv2d>(d2, d2, 3, 1, 1),
                                          detail::make<BatchNorm2d>(d2), detail::make<ReLU>()}));
    up1 = register_module("up1", std::make_shared<UpBlock>(d2, d1));
    up2 = register_module("up2", std::make_shared<UpBlock>(d1, d0));
    out = register_module(
        "out", std::make_shared<Sequential>(
                   List{detail::make<Conv2d>(d0, d0, 3, 1, 1), detail::make<BatchNorm2d>(d0),
                        detail::make<ReLU>(), detail::make<Conv2d>(d0, img_channels, 3, 1, 1)}));
  }

  /// x: (N, C, H, W) noisy images; t: N timesteps. Returns the predicted noise, (N, C, H, W).
  Tensor forward(const Tensor& x, const Tensor& t) {
    check_arg(x.dim() == 4 && t.numel() == x.shape()[0], "TimeUNet",
              "expected x of shape (N, C, H, W) and N timesteps, got x ", to_string(x.shape()),
              " and t ", to_string(t.shape()));
    Tensor a = down0->forward(x);
    Tensor b = down1->forward(a);
    Tensor c = down2->forward(b);
    Tensor v = dense_emb->forward(to_vec->forward(c));
    Tensor tt = t.detach() / float(T_);
    Tensor u0 = up0->forward(v);
    Tensor u1 = up1->forward(u0 + temb_1->forward(tt), c);
    Tensor u2 = up2->forward(u1 + temb_2->forward(tt), b);
    return out->forward(u2);
  }
  using nn::Module::forward;
  std::string name() const override { return "TimeUNet"; }
  int T() const { return T_; }

  std::shared_ptr<nn::Sequential> down0, to_vec, dense_emb, up0, out;
  std::shared_ptr<DownBlock> down1, down2;
  std::shared_ptr<EmbedBlock> temb_1, temb_2;
  std::shared_ptr<UpBlock> up1, up2;

 private:
  int T_;
};

}  // namespace ember::models
