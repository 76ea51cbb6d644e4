// @file include/ember/io/png.hpp
// @brief Minimal 8-bit grayscale PNG writer/reader and an image-grid helper.
//
// write_png_gray writes a standard PNG: signature, IHDR (8-bit, colour type 0 = grayscale, no
// interlace), one IDAT holding the zlib-format compressed scanlines (each prefixed by filter
// type 0), and IEND. Compression, decompression and the chunk CRC-32s are zlib's (gzip.hpp):
// this header belongs to the optional CMake target ember::io, which links zlib. The file is
// written atomically (see atomic_file.hpp).
//
// read_png_gray reads 8-bit grayscale, non-interlaced PNGs as written by this library or by
// other encoders (all five scanline filters are supported; ancillary chunks are skipped). Any
// other PNG (colour, 16-bit, palette, interlaced), a bad signature, a bad CRC or truncated data
// throws io::PngError (an ember::Error) naming the file and the problem. Bad arguments to the
// writers (a non-positive size, null pixels, a GrayImage whose pixel count is not
// width x height) throw std::invalid_argument; a failed write throws ember::Error.
//
// make_grid tiles float images into one gray image for writing with write_png_gray.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "atomic_file.hpp"
#include "gzip.hpp"

namespace ember::io {

// Thrown for every unreadable PNG (an ember::Error): the message names the file and the problem.
class PngError : public Error {
 public:
  explicit PngError(const std::string& msg) : Error(msg) {}
};

namespace detail {

inline const uint8_t* png_signature() {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return sig;
}

inline void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(uint8_t(v >> 24));
  out.push_back(uint8_t(v >> 16));
  out.push_back(uint8_t(v >> 8));
  out.push_back(uint8_t(v));
}

inline uint32_t get_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// zlib's CRC-32 (the one PNG chunks carry) of n bytes.
inline uint32_t png_crc(const uint8_t* data, size_t n) {
  return uint32_t(::crc32_z(0L, data, z_size_t(n)));
}

inline void put_png_chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data,
                          size_t n) {
  put_be32(out, uint32_t(n));
  size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  if (n > 0) out.insert(out.end(), data, data + n);
  put_be32(out, png_crc(out.data() + type_at, 4 + n));
}

[[noreturn]] inline void png_fail(const std::string& path, const std::string& what) {
  throw PngError("ember::io: PNG '" + path + "': " + what);
}

inline int paeth(int a, int b, int c) {
  int p = a + b - c;
  int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  if (pb <= pc) return b;
  return c;
}

}  // namespace detail

// Encodes an 8-bit grayscale image (width*height bytes, row-major) as PNG bytes.
inline std::vector<uint8_t> encode_png_gray(const uint8_t* pixels, int width, int height) {
  if (width <= 0 || height <= 0)
    throw std::invalid_argument("ember::io: PNG size must be positive, got " +
                                std::to_string(width) + "x" + std::to_string(height));
  if (pixels == nullptr) throw std::invalid_argument("ember::io: PNG encode: null pixels");
  std::vector<uint8_t> raw;
  raw.reserve(size_t(height) * (size_t(width) + 1));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter type None
    const uint8_t* row = pixels + size_t(y) * size_t(width);
    raw.insert(raw.end(), row, row + width);
  }
  const std::vector<uint8_t> z = zlib_compress(raw.data(), raw.size());

  std::vector<uint8_t> out(detail::png_signature(), detail::png_signature() + 8);
  std::vector<uint8_t> ihdr;
  detail::put_be32(ihdr, uint32_t(width));
  detail::put_be32(ihdr, uint32_t(height));
  ihdr.push_back(8);  // bit depth
  ihdr.push_back(0);  // colour type: grayscale
  ihdr.push_back(0);  // compression: deflate
  ihdr.push_back(0);  // filter method 0
  ihdr.push_back(0);  // no interlace
  detail::put_png_chunk(out, "IHDR", ihdr.data(), ihdr.size());
  detail::put_png_chunk(out, "IDAT", z.data(), z.size());
  detail::put_png_chunk(out, "IEND", nullptr, 0);
  return out;
}

// Writes an 8-bit grayscale PNG atomically. Throws ember::Error when the file cannot be written.
inline void write_png_gray(const std::string& path, const uint8_t* pixels, int width, int height) {
  std::vector<uint8_t> png = encode_png_gray(pixels, width, height);
  write_file_atomic(path, png.data(), png.size());
}

// Decodes an 8-bit grayscale non-interlaced PNG held in memory. `name` is used in errors.
inline std::vector<uint8_t> decode_png_gray(const uint8_t* data, size_t size, int* w, int* h,
                                            const std::string& name = "<memory>") {
  using detail::png_fail;
  if (size < 8 || !std::equal(data, data + 8, detail::png_signature()))
    png_fail(name, "not a PNG file (bad signature)");
  size_t pos = 8;
  bool have_ihdr = false, have_iend = false;
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> zdata;
  while (pos < size) {
    if (size - pos < 12) png_fail(name, "truncated chunk header at byte " + std::to_string(pos));
    uint32_t len = detail::get_be32(data + pos);
    const uint8_t* type = data + pos + 4;
    if (len > size - pos - 12)
      png_fail(name, "truncated: chunk '" + std::string(reinterpret_cast<const char*>(type), 4) +
                         "' declares " + std::to_string(len) + " bytes but the file ends first");
    const uint8_t* body = type + 4;
    uint32_t stored_crc = detail::get_be32(body + len);
    std::string t(reinterpret_cast<const char*>(type), 4);
    if (detail::png_crc(type, 4 + size_t(len)) != stored_crc)
      png_fail(name, "CRC mismatch in chunk '" + t + "'");
    if (!have_ihdr && t != "IHDR") png_fail(name, "first chunk is '" + t + "', expected IHDR");
    if (t == "IHDR") {
      if (have_ihdr) png_fail(name, "duplicate IHDR chunk");
      if (len != 13) png_fail(name, "IHDR has length " + std::to_string(len) + ", expected 13");
      width = detail::get_be32(body);
      height = detail::get_be32(body + 4);
      int depth = body[8], ctype = body[9], comp = body[10], filt = body[11], inter = body[12];
      if (width == 0 || height == 0 || width > (1u << 24) || height > (1u << 24))
        png_fail(name, "bad image size " + std::to_string(width) + "x" + std::to_string(height));
      if (depth != 8 || ctype != 0)
        png_fail(name, "unsupported format (bit depth " + std::to_string(depth) + ", colour type " +
                           std::to_string(ctype) + "); only 8-bit grayscale (type 0) is supported");
      if (comp != 0 || filt != 0) png_fail(name, "unknown compression/filter method");
      if (inter != 0) png_fail(name, "interlaced PNGs are not supported");
      have_ihdr = true;
    } else if (t == "IDAT") {
      zdata.insert(zdata.end(), body, body + len);
    } else if (t == "IEND") {
      have_iend = true;
      pos += 12 + size_t(len);
      break;
    } else if (type[0] & 0x20) {
      // ancillary chunk: skip
    } else if (t != "PLTE") {
      png_fail(name, "unknown critical chunk '" + t + "'");
    }
    pos += 12 + size_t(len);
  }
  if (!have_ihdr) png_fail(name, "no IHDR chunk");
  if (!have_iend) png_fail(name, "truncated: no IEND chunk");
  if (zdata.empty()) png_fail(name, "no image data (IDAT)");

  const size_t stride = size_t(width) + 1;
  const size_t raw_len = stride * size_t(height);
  std::vector<uint8_t> raw;
  try {
    raw = zlib_decompress(zdata.data(), zdata.size(), raw_len);
  } catch (const DeflateError& e) {
    if (e.kind() == DeflateError::Kind::kOutputLimit)
      png_fail(name, "image data is longer than the " + std::to_string(width) + "x" +
                         std::to_string(height) + " header declares");
    if (e.kind() == DeflateError::Kind::kTruncated)
      png_fail(name, std::string("truncated image data (") + e.what() + ")");
    png_fail(name, std::string("corrupt image data (") + e.what() + ")");
  }
  if (raw.size() != raw_len)
    png_fail(name, "truncated image data: expected " + std::to_string(raw_len) +
                       " decompressed bytes, got " + std::to_string(raw.size()));

  std::vector<uint8_t> px(size_t(width) * size_t(height));
  for (uint32_t y = 0; y < height; ++y) {
    const uint8_t* in = raw.data() + size_t(y) * stride;
    uint8_t* cur = px.data() + size_t(y) * width;
    const uint8_t* prev = y > 0 ? cur - width : nullptr;
    int f = in[0];
    ++in;
    for (uint32_t x = 0; x < width; ++x) {
      int a = x > 0 ? cur[x - 1] : 0;
      int b = prev ? prev[x] : 0;
      int c = (prev && x > 0) ? prev[x - 1] : 0;
      int v = in[x];
      switch (f) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) / 2; break;
        case 4: v += detail::paeth(a, b, c); break;
        default: png_fail(name, "bad scanline filter type " + std::to_string(f) + " in row " +
                                    std::to_string(y));
      }
      cur[x] = uint8_t(v & 0xFF);
    }
  }
  if (w) *w = int(width);
  if (h) *h = int(height);
  return px;
}

// Reads an 8-bit grayscale non-interlaced PNG file. Sets *w, *h (if non-null).
inline std::vector<uint8_t> read_png_gray(const std::string& path, int* w, int* h) {
  std::vector<uint8_t> bytes = read_file(path);
  return decode_png_gray(bytes.data(), bytes.size(), w, h, path);
}

// A gray 8-bit image: width*height bytes, row-major.
struct GrayImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

inline void write_png_gray(const std::string& path, const GrayImage& img) {
  if (img.pixels.size() != size_t(std::max(img.width, 0)) * size_t(std::max(img.height, 0)))
    throw std::invalid_argument("ember::io: GrayImage for '" + path + "' has " +
                                std::to_string(img.pixels.size()) +
                                " pixels, expected width*height");
  write_png_gray(path, img.pixels.data(), img.width, img.height);
}

// Maps a float in [lo, hi] to 0..255 (clamped, rounded; NaN -> 0).
inline uint8_t float_to_gray(float v, float lo, float hi) {
  if (!(v == v)) return 0;
  double t = (double(v) - lo) / (double(hi) - lo);
  if (!(t > 0.0)) return 0;
  if (t >= 1.0) return 255;
  return uint8_t(std::lround(t * 255.0));
}

// Tiles images (each img_h x img_w floats, row-major) into a grid with `cols` columns (fewer if
// there are fewer images) and as many rows as needed, in reading order. Each image is mapped
// from [lo, hi] to 0..255 and scaled up `scale` times by nearest neighbour. `pad` pixels of
// `pad_value` gray separate the tiles and surround the grid; unused cells in the last row are
// filled with `pad_value` too. Size: width = c*(img_w*scale) + (c+1)*pad with c = min(cols, n),
// height likewise with the number of rows. Throws std::invalid_argument on bad arguments
// (no images, a null image, non-positive sizes/cols/scale, negative pad, hi <= lo).
inline GrayImage make_grid(const std::vector<const float*>& images, int img_h, int img_w, int cols,
                           int scale, int pad, float lo, float hi, uint8_t pad_value = 128) {
  if (images.empty()) throw std::invalid_argument("ember::io::make_grid: no images");
  if (img_h <= 0 || img_w <= 0 || cols <= 0 || scale <= 0 || pad < 0 || !(hi > lo))
    throw std::invalid_argument(
        "ember::io::make_grid: bad arguments (img " + std::to_string(img_h) + "x" +
        std::to_string(img_w) + ", cols " + std::to_string(cols) + ", scale " +
        std::to_string(scale) + ", pad " + std::to_string(pad) + ", range [" + std::to_string(lo) +
        ", " + std::to_string(hi) + "])");
  for (const float* p : images)
    if (p == nullptr) throw std::invalid_argument("ember::io::make_grid: null image pointer");
  const int n = int(images.size());
  const int c = std::min(cols, n);
  const int r = (n + c - 1) / c;
  const int tw = img_w * scale, th = img_h * scale;
  GrayImage g;
  g.width = c * tw + (c + 1) * pad;
  g.height = r * th + (r + 1) * pad;
  g.pixels.assign(size_t(g.width) * size_t(g.height), pad_value);
  for (int i = 0; i < n; ++i) {
    const int x0 = pad + (i % c) * (tw + pad);
    const int y0 = pad + (i / c) * (th + pad);
    const float* img = images[size_t(i)];
    for (int y = 0; y < th; ++y) {
      const float* srow = img + size_t(y / scale) * size_t(img_w);
      uint8_t* drow = g.pixels.data() + size_t(y0 + y) * size_t(g.width) + size_t(x0);
      for (int x = 0; x < tw; ++x) drow[x] = float_to_gray(srow[x / scale], lo, hi);
    }
  }
  return g;
}

}  // namespace ember::io
