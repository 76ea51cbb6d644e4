// @file examples/common/draw.hpp
// @brief Drawing for the examples' PNGs: text in a 6x10 bitmap font, rectangles, lines, and a
//        line plot with axes, ticks, labels and a legend (loss.png). 8-bit gray only.
//
// Everything draws into an ember::io::GrayImage (write it with io::write_png_gray). Coordinates
// are pixels, x to the right and y down; anything outside the image is clipped.
#pragma once
#include <ember/io/png.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bitmap_font_data.hpp"

namespace ember_examples {

using ember::io::GrayImage;

inline GrayImage blank_image(int width, int height, uint8_t gray) {
  if (width <= 0 || height <= 0)
    throw std::invalid_argument("blank_image: size must be positive, got " + std::to_string(width) +
                                "x" + std::to_string(height));
  GrayImage g;
  g.width = width;
  g.height = height;
  g.pixels.assign(size_t(width) * size_t(height), gray);
  return g;
}

inline void put_pixel(GrayImage& img, int x, int y, uint8_t v) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  img.pixels[size_t(y) * size_t(img.width) + size_t(x)] = v;
}

inline void fill_rect(GrayImage& img, int x0, int y0, int w, int h, uint8_t v) {
  for (int y = std::max(0, y0); y < std::min(img.height, y0 + h); ++y)
    for (int x = std::max(0, x0); x < std::min(img.width, x0 + w); ++x)
      img.pixels[size_t(y) * size_t(img.width) + size_t(x)] = v;
}

/// Copies `src` into `dst` with its top-left corner at (x0, y0).
inline void blit(GrayImage& dst, const GrayImage& src, int x0, int y0) {
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x)
      put_pixel(dst, x0 + x, y0 + y, src.pixels[size_t(y) * size_t(src.width) + size_t(x)]);
}

constexpr int kGlyphW = 6, kGlyphH = 10;

/// Width in pixels of `text` drawn at `scale` (characters outside ASCII 32..126 draw as '?').
inline int text_width(const std::string& text, int scale) {
  return int(text.size()) * kGlyphW * scale;
}
inline int text_height(int scale) {
  return kGlyphH * scale;
}

/// Draws `text` with its top-left corner at (x, y), each font pixel a scale x scale square.
inline void draw_text(GrayImage& img, int x, int y, const std::string& text, int scale,
                      uint8_t ink) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned c = static_cast<unsigned char>(text[i]);
    if (c < 32 || c > 126) c = '?';
    const uint8_t* rows = font_data::kGlyphs6x10[c - 32];
    const int gx = x + int(i) * kGlyphW * scale;
    for (int r = 0; r < kGlyphH; ++r)
      for (int col = 0; col < kGlyphW; ++col)
        if (rows[r] & (0x20 >> col))
          fill_rect(img, gx + col * scale, y + r * scale, scale, scale, ink);
  }
}

/// Draws `text` centred on (cx, cy).
inline void draw_text_centered(GrayImage& img, int cx, int cy, const std::string& text, int scale,
                               uint8_t ink) {
  draw_text(img, cx - text_width(text, scale) / 2, cy - text_height(scale) / 2, text, scale, ink);
}

/// Draws `text` rotated 90 degrees counter-clockwise (reading upwards), centred on (cx, cy).
inline void draw_text_vertical(GrayImage& img, int cx, int cy, const std::string& text, int scale,
                               uint8_t ink) {
  const int w = text_width(text, scale), h = text_height(scale);
  GrayImage tmp = blank_image(std::max(w, 1), h, 0);
  draw_text(tmp, 0, 0, text, scale, 255);
  const int x0 = cx - h / 2, y0 = cy + w / 2;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (tmp.pixels[size_t(y) * size_t(tmp.width) + size_t(x)])
        put_pixel(img, x0 + y, y0 - x, ink);
}

/// A line `thickness` pixels wide from (x0, y0) to (x1, y1) (Bresenham, square pen).
inline void draw_line(GrayImage& img, int x0, int y0, int x1, int y1, uint8_t ink,
                      int thickness = 1) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  const int lo = -(thickness - 1) / 2;
  for (;;) {
    fill_rect(img, x0 + lo, y0 + lo, thickness, thickness, ink);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

inline void draw_rect_outline(GrayImage& img, int x0, int y0, int w, int h, uint8_t ink) {
  fill_rect(img, x0, y0, w, 1, ink);
  fill_rect(img, x0, y0 + h - 1, w, 1, ink);
  fill_rect(img, x0, y0, 1, h, ink);
  fill_rect(img, x0 + w - 1, y0, 1, h, ink);
}

/// Tick positions for an axis over [lo, hi]: multiples of 1, 2 or 5 x 10^k, about `target` of them.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  std::vector<double> t;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return t;
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

/// Shortest "%g"-style label for a tick value.
inline std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), x increasing
  enum Style { kLine, kThinLine, kSquares } style = kLine;
  uint8_t ink = 0;
};

/// A line plot: title, x and y axis labels, ticks with values, a frame, and a legend in the
/// top-right corner naming each series. Non-finite points are skipped. Throws
/// std::invalid_argument when no series holds a finite point.
inline GrayImage line_plot(const std::vector<PlotSeries>& series, const std::string& title,
                           const std::string& xlabel, const std::string& ylabel, int width = 900,
                           int height = 540) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const PlotSeries& s : series)
    for (auto [x, y] : s.points)
      if (std::isfinite(x) && std::isfinite(y)) {
        xmin = std::min(xmin, x);
        xmax = std::max(xmax, x);
        ymin = std::min(ymin, y);
        ymax = std::max(ymax, y);
      }
  if (!(xmin <= xmax)) throw std::invalid_argument("line_plot: no finite points to draw");
  if (xmax == xmin) xmax = xmin + 1;
  ymin = std::min(0.0, ymin);  // losses: show the distance to zero
  if (ymax == ymin) ymax = ymin + 1;
  ymax += (ymax - ymin) * 0.05;

  GrayImage img = blank_image(width, height, 255);
  const int left = 100, right = 24, top = 56, bottom = 76;
  const int pw = width - left - right, ph = height - top - bottom;
  auto px = [&](double x) {
    return left + int(std::lround((x - xmin) / (xmax - xmin) * (pw - 1)));
  };
  auto py = [&](double y) {
    return top + ph - 1 - int(std::lround((y - ymin) / (ymax - ymin) * (ph - 1)));
  };

  draw_text_centered(img, width / 2, 26, title, 2, 0);
  for (double t : nice_ticks(ymin, ymax)) {
    const int y = py(t);
    fill_rect(img, left, y, pw, 1, 225);  // grid line
    fill_rect(img, left - 6, y, 6, 1, 0);
    const std::string l = tick_label(t);
    draw_text(img, left - 10 - text_width(l, 1), y - kGlyphH / 2, l, 1, 0);
  }
  for (double t : nice_ticks(xmin, xmax)) {
    const int x = px(t);
    fill_rect(img, x, top, 1, ph, 225);
    fill_rect(img, x, top + ph, 1, 6, 0);
    draw_text_centered(img, x, top + ph + 16, tick_label(t), 1, 0);
  }
  draw_rect_outline(img, left, top, pw, ph, 0);
  draw_text_centered(img, left + pw / 2, height - 24, xlabel, 2, 0);
  draw_text_vertical(img, 26, top + ph / 2, ylabel, 2, 0);

  for (const PlotSeries& s : series) {
    bool have_prev = false;
    int prev_x = 0, prev_y = 0;
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        have_prev = false;
        continue;
      }
      const int cx = px(x), cy = py(y);
      if (s.style == PlotSeries::kSquares) {
        fill_rect(img, cx - 6, cy - 6, 13, 13, 255);
        fill_rect(img, cx - 5, cy - 5, 11, 11, s.ink);
      } else {
        if (have_prev)
          draw_line(img, prev_x, prev_y, cx, cy, s.ink, s.style == PlotSeries::kLine ? 3 : 1);
        else
          put_pixel(img, cx, cy, s.ink);
      }
      have_prev = true;
      prev_x = cx;
      prev_y = cy;
    }
  }

  // legend, top right inside the frame
  int widest = 0;
  for (const PlotSeries& s : series) widest = std::max(widest, text_width(s.label, 1));
  const int lw = widest + 60, lh = int(series.size()) * 18 + 10;
  const int lx = left + pw - lw - 10, ly = top + 10;
  fill_rect(img, lx, ly, lw, lh, 255);
  draw_rect_outline(img, lx, ly, lw, lh, 0);
  for (size_t i = 0; i < series.size(); ++i) {
    const PlotSeries& s = series[i];
    const int y = ly + 14 + int(i) * 18;
    if (s.style == PlotSeries::kSquares)
      fill_rect(img, lx + 20, y - 5, 11, 11, s.ink);
    else
      draw_line(img, lx + 8, y, lx + 42, y, s.ink, s.style == PlotSeries::kLine ? 3 : 1);
    draw_text(img, lx + 50, y - kGlyphH / 2, s.label, 1, 0);
  }
  return img;
}

/// Trailing moving average of `v` over `window` values (fewer at the start).
inline std::vector<double> moving_average(const std::vector<double>& v, size_t window) {
  std::vector<double> out(v.size());
  double sum = 0;
  window = std::max<size_t>(window, 1);
  for (size_t i = 0; i < v.size(); ++i) {
    sum += v[i];
    if (i >= window) sum -= v[i - window];
    out[i] = sum / double(std::min(i + 1, window));
  }
  return out;
}

}  // namespace ember_examples
