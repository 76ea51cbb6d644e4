// @file include/ember/nn/layout.hpp
// @brief nn::PixelShuffle and nn::PixelUnshuffle, as torch.nn.PixelShuffle / PixelUnshuffle
//        (ops/layout.hpp: pixel_shuffle, pixel_unshuffle). No parameters.
#pragma once
#include <cstdint>
#include <string>

#include "../ops/layout.hpp"
#include "module.hpp"

namespace ember::nn {

/// (*, C*r*r, H, W) -> (*, C, H*r, W*r), as torch.nn.PixelShuffle(upscale_factor).
class PixelShuffle : public Module {
 public:
  explicit PixelShuffle(int64_t upscale_factor) : r_(upscale_factor) {}
  Tensor forward(const Tensor& x) override { return pixel_shuffle(x, r_); }
  std::string name() const override { return "PixelShuffle"; }
  int64_t upscale_factor() const { return r_; }

 private:
  int64_t r_;
};

/// (*, C, H*r, W*r) -> (*, C*r*r, H, W), as torch.nn.PixelUnshuffle(downscale_factor).
class PixelUnshuffle : public Module {
 public:
  explicit PixelUnshuffle(int64_t downscale_factor) : r_(downscale_factor) {}
  Tensor forward(const Tensor& x) override { return pixel_unshuffle(x, r_); }
  std::string name() const override { return "PixelUnshuffle"; }
  int64_t downscale_factor() const { return r_; }

 private:
  int64_t r_;
};

}  // namespace ember::nn
