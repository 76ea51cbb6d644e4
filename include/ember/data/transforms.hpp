// @file include/ember/data/transforms.hpp
// @brief Image transforms on plain float buffers: antialiased bilinear resize, horizontal flip,
//        and uint8 -> float scaling.
//
// resize_bilinear_antialias reproduces PyTorch's
//   F.interpolate(x, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False)
// (the same separable triangle filter as PIL's BILINEAR resize). Per axis, with
// scale = in / out:
//   support = scale >= 1 ? scale : 1          (the triangle's half-width, in input pixels)
//   for output index i: center = scale * (i + 0.5)
//     first = max(trunc(center - support + 0.5), 0), last = min(trunc(center + support + 0.5), in)
//     w_j = tri((j - center + 0.5) / max(scale, 1)) for j in [first, last), tri(x) = max(0, 1-|x|)
//     weights normalised to sum 1.
// When downscaling the filter widens with the factor (that is the antialiasing); when upscaling
// it is plain bilinear except that taps falling outside the image are dropped and the remaining
// weights renormalised (so borders differ from antialias=False). Like PyTorch, the width axis is
// resampled first into a float buffer, then the height axis. Weights follow PyTorch's float
// arithmetic; sums are accumulated in double, so results agree with PyTorch 1.13 to ~1e-7.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ember::data {

namespace detail {

// Interpolation taps for one axis: output i reads in[first[i] .. first[i]+size[i]) with
// weights w[i*max_taps + k].
struct AaTaps {
  std::vector<int64_t> first, size;
  std::vector<float> w;
  int64_t max_taps = 0;
};

// The weights are computed with the same float/double mix of operations as PyTorch's CPU
// kernel for float32 input, so they agree with it to the last bit or so (the float rounding of
// `center` alone is ~1e-6 at 20+ pixels, which double-precision weights would not reproduce).
inline AaTaps aa_bilinear_taps(int in, int out) {
  const float scale = float(in) / float(out);
  const float support = float(scale >= 1.0f ? 1.0 * double(scale) : 1.0);  // interp_size/2 = 1
  const float invscale = float(scale >= 1.0f ? 1.0 / double(scale) : 1.0);
  AaTaps t;
  t.max_taps = int64_t(std::ceil(double(support))) * 2 + 1;
  t.first.resize(size_t(out));
  t.size.resize(size_t(out));
  t.w.assign(size_t(out) * size_t(t.max_taps), 0.0f);
  for (int i = 0; i < out; ++i) {
    const float center = float(double(scale) * (i + 0.5));
    // Truncation toward zero, as in the reference implementation (then clamped at 0).
    const int64_t lo = std::max<int64_t>(int64_t(double(center - support) + 0.5), 0);
    const int64_t hi = std::min<int64_t>(int64_t(double(center + support) + 0.5), in);
    const int64_t n = std::min(std::max<int64_t>(hi - lo, 0), t.max_taps);
    float total = 0.0f;
    float* w = &t.w[size_t(i) * size_t(t.max_taps)];
    for (int64_t j = 0; j < n; ++j) {
      float x = float((double(float(j + lo) - center) + 0.5) * double(invscale));
      if (x < 0.0f) x = -x;
      const float v = x < 1.0f ? 1.0f - x : 0.0f;
      w[j] = v;
      total += v;
    }
    if (total != 0.0f)
      for (int64_t j = 0; j < n; ++j) w[j] /= total;
    t.first[size_t(i)] = lo;
    t.size[size_t(i)] = n;
  }
  return t;
}

}  // namespace detail

// Resizes `planes` independent in_h x in_w planes (row-major, contiguous, plane after plane; e.g.
// an N x C x H x W batch has planes = N*C) to out_h x out_w. Returns planes*out_h*out_w floats.
// Throws std::invalid_argument on non-positive sizes or a null source with planes > 0.
inline std::vector<float> resize_bilinear_antialias(const float* src, int64_t planes, int in_h,
                                                    int in_w, int out_h, int out_w) {
  if (planes < 0 || in_h <= 0 || in_w <= 0 || out_h <= 0 || out_w <= 0)
    throw std::invalid_argument(
        "ember::data::resize_bilinear_antialias: sizes must be positive (planes=" +
        std::to_string(planes) + ", in " + std::to_string(in_h) + "x" + std::to_string(in_w) +
        ", out " + std::to_string(out_h) + "x" + std::to_string(out_w) + ")");
  if (planes > 0 && src == nullptr)
    throw std::invalid_argument("ember::data::resize_bilinear_antialias: null source");
  const detail::AaTaps th = detail::aa_bilinear_taps(in_h, out_h);
  const detail::AaTaps tw = detail::aa_bilinear_taps(in_w, out_w);
  std::vector<float> out(size_t(planes) * size_t(out_h) * size_t(out_w));
  std::vector<float> tmp(size_t(in_h) * size_t(out_w));  // horizontal pass result (float, as in PyTorch)
  for (int64_t p = 0; p < planes; ++p) {
    const float* s = src + size_t(p) * size_t(in_h) * size_t(in_w);
    // Horizontal pass: in_h x in_w -> in_h x out_w.
    for (int y = 0; y < in_h; ++y) {
      const float* row = s + size_t(y) * size_t(in_w);
      for (int x = 0; x < out_w; ++x) {
        const float* w = &tw.w[size_t(x) * size_t(tw.max_taps)];
        const int64_t lo = tw.first[size_t(x)], n = tw.size[size_t(x)];
        double acc = 0.0;
        for (int64_t k = 0; k < n; ++k) acc += double(w[k]) * double(row[lo + k]);
        tmp[size_t(y) * size_t(out_w) + size_t(x)] = float(acc);
      }
    }
    // Vertical pass: in_h x out_w -> out_h x out_w.
    float* d = out.data() + size_t(p) * size_t(out_h) * size_t(out_w);
    for (int y = 0; y < out_h; ++y) {
      const float* w = &th.w[size_t(y) * size_t(th.max_taps)];
      const int64_t lo = th.first[size_t(y)], n = th.size[size_t(y)];
      for (int x = 0; x < out_w; ++x) {
        double acc = 0.0;
        for (int64_t k = 0; k < n; ++k) acc += double(w[k]) * double(tmp[size_t(lo + k) * size_t(out_w) + size_t(x)]);
        d[size_t(y) * size_t(out_w) + size_t(x)] = float(acc);
      }
    }
  }
  return out;
}

inline std::vector<float> resize_bilinear_antialias(const std::vector<float>& src, int64_t planes,
                                                    int in_h, int in_w, int out_h, int out_w) {
  if (src.size() != size_t(std::max<int64_t>(planes, 0)) * size_t(std::max(in_h, 0)) *
                        size_t(std::max(in_w, 0)))
    throw std::invalid_argument(
        "ember::data::resize_bilinear_antialias: source has " + std::to_string(src.size()) +
        " floats, expected planes*in_h*in_w");
  return resize_bilinear_antialias(src.data(), planes, in_h, in_w, out_h, out_w);
}

// Mirrors one h x w row-major plane left-right, in place.
inline void hflip(float* plane, int h, int w) {
  for (int y = 0; y < h; ++y) {
    float* row = plane + size_t(y) * size_t(w);
    std::reverse(row, row + w);
  }
}

// Mirrors `planes` consecutive h x w planes left-right, in place.
inline void hflip(float* data, int64_t planes, int h, int w) {
  for (int64_t p = 0; p < planes; ++p) hflip(data + size_t(p) * size_t(h) * size_t(w), h, w);
}

// Bytes 0..255 -> floats in [0, 1] (v / 255).
inline std::vector<float> to_unit_float(const uint8_t* src, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = float(src[i]) / 255.0f;
  return out;
}

// Bytes 0..255 -> floats in [-1, 1] (v / 255 * 2 - 1; 0 -> -1, 255 -> 1).
inline std::vector<float> to_signed_unit_float(const uint8_t* src, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = float(src[i]) / 255.0f * 2.0f - 1.0f;
  return out;
}

// In place: [0, 1] -> [-1, 1] (x * 2 - 1).
inline void unit_to_signed(float* data, size_t n) {
  for (size_t i = 0; i < n; ++i) data[i] = data[i] * 2.0f - 1.0f;
}

// In place: [-1, 1] -> [0, 1] ((x + 1) / 2).
inline void signed_to_unit(float* data, size_t n) {
  for (size_t i = 0; i < n; ++i) data[i] = (data[i] + 1.0f) * 0.5f;
}

}  // namespace ember::data
