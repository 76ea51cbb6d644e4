// @file include/ember/models/cond_unet.hpp
// @brief The course's 03/04 diffusion U-Net (2,002,561 parameters for 16x16 FashionMNIST with 10
//        classes): GroupNorm + GELU blocks, rearrange pooling, a residual first block, sinusoidal
//        time embedding and a masked class embedding, with PyTorch's module names.
//
//   d0 = down0(x)               ResidualConvBlock(C, c0), GroupNorm(small_groups)
//   d1 = down1(d0), d2 = down2(d1)   DownBlock: 2 GELUConvBlock + RearrangePoolBlock (big_groups)
//   lat = dense_emb(to_vec(d2))      to_vec: Flatten GELU; dense_emb: Linear ReLU x3
//   te = sinusoidaltime(t / T);  c = c * c_mask
//   u0 = up0(lat)                    Unflatten + GELUConvBlock
//   u1 = up1(c_embed1(c) * u0 + t_emb1(te), d2)
//   u2 = up2(c_embed2(c) * u1 + t_emb2(te), d1)
//   eps = out(cat(u2, d0))           Conv(2 c0, c0) GroupNorm(small_groups) ReLU Conv(c0, C)
// c is the one-hot class (N, n_classes); c_mask broadcasts against it ((N, 1) drops the whole
// class of a sample, (N, n_classes), one Bernoulli per entry, also works: only the hot entry
// matters).
#pragma once
#include <array>

#include "embeddings.hpp"
#include "unet.hpp"

namespace ember::models {

/// Conv2d(in, out, 3, 1, 1) GroupNorm(groups, out) GELU, registered as "model".
class GELUConvBlock : public nn::Module {
 public:
  GELUConvBlock(int in, int out, int groups) {
    model = register_module(
        "model", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<Module>>{
                     detail::make<nn::Conv2d>(in, out, 3, 1, 1),
                     detail::make<nn::GroupNorm>(groups, out), detail::make<nn::GELU>()}));
  }
  Tensor forward(const Tensor& x) override { return model->forward(x); }
  std::string name() const override { return "GELUConvBlock"; }
  std::shared_ptr<nn::Sequential> model;
};

/// pixel_unshuffle(x, 2) then GELUConvBlock(4 c, c): halves H and W; registered as "conv".
class RearrangePoolBlock : public nn::Module {
 public:
  RearrangePoolBlock(int channels, int groups) {
    conv = register_module("conv", std::make_shared<GELUConvBlock>(4 * channels, channels, groups));
  }
  Tensor forward(const Tensor& x) override { return conv->forward(pixel_unshuffle(x, 2)); }
  std::string name() const override { return "RearrangePoolBlock"; }
  std::shared_ptr<GELUConvBlock> conv;
};

/// GELUConvBlock(in, out) GELUConvBlock(out, out) RearrangePoolBlock(out), as "model".
class GELUDownBlock : public nn::Module {
 public:
  GELUDownBlock(int in, int out, int groups) {
    model = register_module(
        "model", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<Module>>{
                     std::make_shared<GELUConvBlock>(in, out, groups),
                     std::make_shared<GELUConvBlock>(out, out, groups),
                     std::make_shared<RearrangePoolBlock>(out, groups)}));
  }
  Tensor forward(const Tensor& x) override { return model->forward(x); }
  std::string name() const override { return "DownBlock"; }
  std::shared_ptr<nn::Sequential> model;
};

/// cat(x, skip) -> ConvTranspose2d(2 in, out, 2, 2) then 4 GELUConvBlock(out, out), as "model".
class GELUUpBlock : public nn::Module {
 public:
  GELUUpBlock(int in, int out, int groups) {
    model = register_module(
        "model", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<Module>>{
                     detail::make<nn::ConvTranspose2d>(2 * in, out, 2, 2),
                     std::make_shared<GELUConvBlock>(out, out, groups),
                     std::make_shared<GELUConvBlock>(out, out, groups),
                     std::make_shared<GELUConvBlock>(out, out, groups),
                     std::make_shared<GELUConvBlock>(out, out, groups)}));
  }
  using nn::Module::forward;
  Tensor forward(const Tensor& x, const Tensor& skip) { return model->forward(cat({x, skip}, 1)); }
  std::string name() const override { return "UpBlock"; }
  std::shared_ptr<nn::Sequential> model;
};

/// x1 = conv1(x); x1 + conv2(x1) (GELUConvBlocks).
class ResidualConvBlock : public nn::Module {
 public:
  ResidualConvBlock(int in, int out, int groups) {
    conv1 = register_module("conv1", std::make_shared<GELUConvBlock>(in, out, groups));
    conv2 = register_module("conv2", std::make_shared<GELUConvBlock>(out, out, groups));
  }
  Tensor forward(const Tensor& x) override {
    Tensor x1 = conv1->forward(x);
    return x1 + conv2->forward(x1);
  }
  std::string name() const override { return "ResidualConvBlock"; }
  std::shared_ptr<GELUConvBlock> conv1, conv2;
};

struct CondUNetOptions {
  int T = 150;  ///< diffusion steps (t is divided by T)
  int img_channels = 1;
  int img_size = 16;  ///< a positive multiple of 4
  std::array<int, 3> down_channels{64, 64, 128};
  int t_embed_dim = 8;   ///< sinusoidal embedding size (even, >= 4)
  int n_classes = 10;    ///< size of the one-hot class vector
  int small_groups = 8;  ///< GroupNorm groups of down0 and out
  int big_groups = 32;   ///< GroupNorm groups of down1, down2, up0..up2
};

class CondUNet : public nn::Module {
 public:
  explicit CondUNet(const CondUNetOptions& o = {}) : options(o) {
    using nn::Conv2d, nn::Flatten, nn::GELU, nn::GroupNorm, nn::Linear, nn::ReLU, nn::Sequential,
        nn::Unflatten;
    const char* op = "CondUNet";
    const int c0 = o.down_channels[0], c1 = o.down_channels[1], c2 = o.down_channels[2];
    check_arg(o.T > 0, op, "T must be positive, got ", o.T);
    check_arg(o.img_size > 0 && o.img_size % 4 == 0, op,
              "img_size must be a positive multiple of 4, got ", o.img_size);
    check_arg(c0 > 0 && c1 > 0 && c2 > 0 && o.img_channels > 0 && o.n_classes > 0, op,
              "channels and n_classes must be positive, got down_channels (", c0, ", ", c1, ", ",
              c2, "), img_channels ", o.img_channels, ", n_classes ", o.n_classes);
    check_arg(o.small_groups > 0 && c0 % o.small_groups == 0, op, "small_groups ", o.small_groups,
              " must divide down_channels[0] = ", c0);
    check_arg(o.big_groups > 0 && c0 % o.big_groups == 0 && c1 % o.big_groups == 0 &&
                  c2 % o.big_groups == 0,
              op, "big_groups ", o.big_groups, " must divide every down channel (", c0, ", ", c1,
              ", ", c2, ")");
    const int L = o.img_size / 4, n = c2 * L * L;
    const int sg = o.small_groups, bg = o.big_groups;
    using List = std::initializer_list<std::shared_ptr<Module>>;
    down0 = register_module("down0", std::make_shared<ResidualConvBlock>(o.img_channels, c0, sg));
    down1 = register_module("down1", std::make_shared<GELUDownBlock>(c0, c1, bg));
    down2 = register_module("down2", std::make_shared<GELUDownBlock>(c1, c2, bg));
    to_vec = register_module("to_vec", std::make_shared<Sequential>(
                                           List{detail::make<Flatten>(), detail::make<GELU>()}));
    dense_emb = register_module(
        "dense_emb",
        std::make_shared<Sequential>(List{detail::make<Linear>(n, c1), detail::make<ReLU>(),
                                          detail::make<Linear>(c1, c1), detail::make<ReLU>(),
                                          detail::make<Linear>(c1, n), detail::make<ReLU>()}));
    sinusoidaltime = register_module("sinusoidaltime",
                                     std::make_shared<SinusoidalPositionEmbedBlock>(o.t_embed_dim));
    t_emb1 = register_module("t_emb1", std::make_shared<EmbedBlock>(o.t_embed_dim, c2));
    t_emb2 = register_module("t_emb2", std::make_shared<EmbedBlock>(o.t_embed_dim, c1));
    c_embed1 = register_module("c_embed1", std::make_shared<EmbedBlock>(o.n_classes, c2));
    c_embed2 = register_module("c_embed2", std::make_shared<EmbedBlock>(o.n_classes, c1));
    up0 = register_module(
        "up0", std::make_shared<Sequential>(List{std::make_shared<Unflatten>(1, Shape{c2, L, L}),
                                                 std::make_shared<GELUConvBlock>(c2, c2, bg)}));
    up1 = register_module("up1", std::make_shared<GELUUpBlock>(c2, c1, bg));
    up2 = register_module("up2", std::make_shared<GELUUpBlock>(c1, c0, bg));
    out = register_module(
        "out", std::make_shared<Sequential>(
                   List{detail::make<Conv2d>(2 * c0, c0, 3, 1, 1), detail::make<GroupNorm>(sg, c0),
                        detail::make<ReLU>(), detail::make<Conv2d>(c0, o.img_channels, 3, 1, 1)}));
  }

  /// x: (N, C, H, W) noisy images; t: N timesteps (float integers in [0, T)); c: one-hot classes
  /// (N, n_classes); c_mask: broadcastable to c (1 keeps the class, 0 drops it). Returns the
  /// predicted noise (N, C, H, W).
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& c, const Tensor& c_mask) {
    const char* op = "CondUNet";
    check_arg(x.dim() == 4 && x.shape()[1] == options.img_channels &&
                  x.shape()[2] == options.img_size && x.shape()[3] == options.img_size,
              op, "expected x of shape (N, ", options.img_channels, ", ", options.img_size, ", ",
              options.img_size, "), got ", to_string(x.shape()));
    const int64_t N = x.shape()[0];
    check_arg(t.numel() == N, op, "expected ", N, " timesteps, got t of shape ",
              to_string(t.shape()));
    check_arg(c.dim() == 2 && c.shape()[0] == N && c.shape()[1] == options.n_classes, op,
              "expected c of shape (", N, ", ", options.n_classes, "), got ", to_string(c.shape()));
    Tensor d0 = down0->forward(x);
    Tensor d1 = down1->forward(d0);
    Tensor d2 = down2->forward(d1);
    Tensor lat = dense_emb->forward(to_vec->forward(d2));
    Tensor te = sinusoidaltime->forward(t.detach() / float(options.T));
    Tensor cm = c * c_mask;
    Tensor u0 = up0->forward(lat);
    Tensor u1 = up1->forward(c_embed1->forward(cm) * u0 + t_emb1->forward(te), d2);
    Tensor u2 = up2->forward(c_embed2->forward(cm) * u1 + t_emb2->forward(te), d1);
    return out->forward(cat({u2, d0}, 1));
  }
  using nn::Module::forward;
  std::string name() const override { return "CondUNet"; }

  CondUNetOptions options;
  std::shared_ptr<ResidualConvBlock> down0;
  std::shared_ptr<GELUDownBlock> down1, down2;
  std::shared_ptr<nn::Sequential> to_vec, dense_emb, up0, out;
  std::shared_ptr<SinusoidalPositionEmbedBlock> sinusoidaltime;
  std::shared_ptr<EmbedBlock> t_emb1, t_emb2, c_embed1, c_embed2;
  std::shared_ptr<GELUUpBlock> up1, up2;
};

}  // namespace ember::models
