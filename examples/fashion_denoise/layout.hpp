// @file examples/fashion_denoise/layout.hpp
// @brief What fashion-denoise writes, shared by the program and its output checker.
#pragma once

namespace fashion_denoise {

constexpr int kImageSize = 16;      // the U-Net works on 16x16 images (FashionMNIST resized)
constexpr int kGridImages = 8;      // test images (and pure-noise inputs) drawn per row
constexpr int kGridScale = 8;       // each 16x16 image drawn as 128x128
constexpr int kGridPad = 4;         // gray pixels between and around tiles
constexpr int kDenoiseRows = 3;     // original / noisy / denoised
constexpr int kFromNoiseRows = 2;   // pure noise / model output
constexpr int kLabelWidth = 156;    // white column left of the tiles with each row's label
constexpr int kTitleHeight = 64;    // white band above the tiles with a two-line title
constexpr const char* kArch = "unet16";

// The tiles alone, then the whole picture with its label column and title band.
constexpr int tiles_width() { return kGridImages * kImageSize * kGridScale + (kGridImages + 1) * kGridPad; }
constexpr int tiles_height(int rows) { return rows * kImageSize * kGridScale + (rows + 1) * kGridPad; }
constexpr int grid_width() { return kLabelWidth + tiles_width(); }
constexpr int grid_height(int rows) { return kTitleHeight + tiles_height(rows); }
constexpr int kLossPlotWidth = 900, kLossPlotHeight = 540;

constexpr const char* kDenoiseGrid = "denoise_grid.png";
constexpr const char* kFromNoise = "from_noise.png";
constexpr const char* kLossCsv = "loss.csv";
constexpr const char* kLossPng = "loss.png";
constexpr const char* kSummary = "summary.json";
constexpr const char* kCheckpoint = "checkpoint.bin";

}  // namespace fashion_denoise
