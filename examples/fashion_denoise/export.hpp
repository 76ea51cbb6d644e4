// @file examples/fashion_denoise/export.hpp
// @brief fashion-denoise --export-safetensors PATH: the trained U-Net as a .safetensors file
//        with PyTorch's state_dict names, plus the exact test inputs it was scored on.
//
// PATH holds every parameter and BatchNorm running statistic (F32), with metadata "format": "pt",
// "arch", and ember's test MSE / noisy-input MSE ("ember_test_mse", "ember_noisy_mse", printed
// with 9 significant digits). testset_path(PATH) ("<PATH without .safetensors>.testset.safetensors")
// holds "x" (the preprocessed test images, [N, 1, 16, 16] in [-1, 1]) and "noise" (the fixed
// N(0, 1) noise of the evaluation, drawn by ember's Philox generator), so that
// PyTorch can score the same model on bit-identical inputs:
//   /usr/bin/python3 benchmarks/torch_reference.py --eval-safetensors PATH
// (noisy = 0.5 x + 0.5 noise, MSE of model(noisy) against x over all test pixels, eval mode).
#pragma once
#include <cstdio>
#include <map>
#include <string>

#include <ember/io/safetensors.hpp>

#include "layout.hpp"

namespace fashion_denoise {

inline std::string testset_path(const std::string& path) {
  const std::string ext = ".safetensors";
  const bool has_ext = path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  return (has_ext ? path.substr(0, path.size() - ext.size()) : path) + ".testset.safetensors";
}

inline std::string format_g9(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

/// Writes the model to `path` and the test inputs to testset_path(path); prints both names.
inline void export_safetensors(const std::string& path, const ember::nn::Module& model,
                               const ember::Tensor& test_x, const ember::Tensor& test_noise,
                               double test_mse, double noisy_mse) {
  ember::io::save_safetensors(path, model,
                              {{"format", "pt"},
                               {"arch", kArch},
                               {"ember_test_mse", format_g9(test_mse)},
                               {"ember_noisy_mse", format_g9(noisy_mse)}});
  const std::string ts = testset_path(path);
  ember::io::save_safetensors(ts, {{"x", test_x}, {"noise", test_noise}},
                              {{"about", "fashion-denoise test inputs: noisy = 0.5 x + 0.5 noise"}});
  std::printf("exported the model to %s (PyTorch state_dict names) and its test inputs to %s\n",
              path.c_str(), ts.c_str());
}

}  // namespace fashion_denoise
