// @file include/ember/io/safetensors.hpp
// @brief Reading and writing Hugging Face .safetensors files, so weights move between ember and
//        PyTorch (safetensors.torch.save_file / load_file) under PyTorch's state_dict names.
//
// Format (https://github.com/huggingface/safetensors):
//   u64 little-endian N: the length of the JSON header;
//   N bytes of UTF-8 JSON: an object mapping each tensor name to
//       {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//     and optionally "__metadata__" to an object of string -> string; the header may end with
//     spaces (writers pad it so the data starts 8-byte aligned);
//   the data: raw little-endian row-major values; offsets are relative to the data's start.
// The tensors' byte ranges must tile the data exactly: sorted by offset, each starts where the
// previous one ended, the first at 0 and the last at the end of the file (no gaps, no
// overlaps, no unclaimed bytes), and each range holds exactly prod(shape) * sizeof(dtype) bytes.
//
// ember tensors are float32. Reading converts F32, F64, F16, BF16, I64, I32, I16, I8, U8 and
// BOOL to float32 as PyTorch's .float() does (F64 and large integers round to nearest); the
// dtype each tensor had in the file is kept in SafeTensor::dtype. Writing stores F32 by default,
// or F64 / I64 per tensor (I64 only for integral values, e.g. BatchNorm's num_batches_tracked).
// A tensor with a zero-size dimension cannot be an ember tensor and is reported as an error.
//
// Module helpers use named_parameters() then named_buffers(), i.e. PyTorch's state_dict keys
// ("down1.model.0.weight", "down1.model.1.running_mean", ...). PyTorch's BatchNorm also stores
// "<prefix>.num_batches_tracked" (I64); ember's BatchNorm has no such counter (it only matters
// in PyTorch for momentum=None), so loading into a module skips that key where the module has
// "<prefix>.running_mean", and saving a module does not write it (load it in PyTorch with
// strict=False and check that only num_batches_tracked keys are missing).
//
// The JSON header is parsed by a small strict parser for exactly this format (ember's core links
// nothing): duplicate keys, unknown fields, non-integer or negative sizes, invalid UTF-8 and
// trailing non-space bytes are errors. Every problem throws ember::Error naming the file and what
// is wrong; a failed load into a module changes nothing. Files are written atomically
// (io::write_file_atomic).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../nn/module.hpp"
#include "atomic_file.hpp"

namespace ember::io {

/// One tensor of a safetensors file: its name, the dtype it has (or will have) in the file and
/// its values (float32, as every ember tensor).
struct SafeTensor {
  std::string name;
  std::string dtype = "F32";  // in the file: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL
  Tensor tensor;
};

/// A whole file: tensors in the order of their data in the file, and the "__metadata__" strings.
struct SafetensorsFile {
  std::vector<SafeTensor> tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor called `name`, or nullptr.
  const SafeTensor* find(const std::string& name) const {
    for (const SafeTensor& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  /// (name, tensor) pairs in file order.
  std::vector<std::pair<std::string, Tensor>> named_tensors() const {
    std::vector<std::pair<std::string, Tensor>> out;
    for (const SafeTensor& t : tensors) out.emplace_back(t.name, t.tensor);
    return out;
  }
};

namespace detail {

[[noreturn]] inline void st_fail(const std::string& file, const std::string& what) {
  throw Error("ember::io: safetensors '" + file + "': " + what);
}

// The largest JSON header accepted (the reference implementation's limit too).
constexpr uint64_t kSafetensorsMaxHeader = 100000000;

struct StDtype {
  const char* name;
  size_t size;
};

inline const StDtype* st_dtype(const std::string& name) {
  static const StDtype table[] = {{"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                  {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  for (const StDtype& d : table)
    if (name == d.name) return &d;
  return nullptr;
}

// ---- a strict JSON parser (RFC 8259) for the header ----

struct Json {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  std::string text;  // kString: the decoded string; kNumber: the number as written
  bool boolean = false;
  std::vector<Json> items;                           // kArray
  std::vector<std::pair<std::string, Json>> members;  // kObject, in file order
};

inline const char* json_kind_name(Json::Kind k) {
  switch (k) {
    case Json::Kind::kNull: return "null";
    case Json::Kind::kBool: return "a boolean";
    case Json::Kind::kNumber: return "a number";
    case Json::Kind::kString: return "a string";
    case Json::Kind::kArray: return "an array";
    case Json::Kind::kObject: return "an object";
  }
  return "?";
}

/// Length of the valid UTF-8 sequence starting at p (at most n bytes), or 0 if invalid.
inline size_t utf8_sequence(const uint8_t* p, size_t n) {
  const uint8_t c = p[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1Fu;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0Fu;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07u;
  } else {
    return 0;
  }
  if (len > n) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

class JsonReader {
 public:
  JsonReader(const uint8_t* p, size_t n, const std::string& file) : p_(p), n_(n), file_(file) {}

  /// Parses the whole header: one value followed only by JSON whitespace.
  Json document() {
    Json v = value(0);
    skip_space();
    if (pos_ != n_) fail("unexpected bytes after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const std::string& what) const {
    st_fail(file_, "malformed JSON header at header byte " + std::to_string(pos_) + ": " + what);
  }
  void skip_space() {
    while (pos_ < n_ && (p_[pos_] == ' ' || p_[pos_] == '\t' || p_[pos_] == '\n' || p_[pos_] == '\r'))
      ++pos_;
  }
  bool literal(const char* word) {
    size_t len = std::strlen(word);
    if (n_ - pos_ < len || std::memcmp(p_ + pos_, word, len) != 0) return false;
    pos_ += len;
    return true;
  }
  Json value(int depth) {
    if (depth > kMaxDepth) fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    skip_space();
    if (pos_ >= n_) fail("unexpected end of the header");
    Json v;
    const uint8_t c = p_[pos_];
    if (c == '{') {
      v.kind = Json::Kind::kObject;
      ++pos_;
      std::set<std::string> keys;
      skip_space();
      if (pos_ < n_ && p_[pos_] == '}') {
        ++pos_;
        return v;
      }
      for (;;) {
        skip_space();
        if (pos_ >= n_ || p_[pos_] != '"') fail("expected a string key");
        std::string key = string();
        if (!keys.insert(key).second) fail("duplicate key \"" + key + "\"");
        skip_space();
        if (pos_ >= n_ || p_[pos_] != ':') fail("expected ':' after a key");
        ++pos_;
        v.members.emplace_back(std::move(key), value(depth + 1));
        skip_space();
        if (pos_ < n_ && p_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < n_ && p_[pos_] == '}') {
          ++pos_;
          return v;
        }
        fail("expected ',' or '}' in an object");
      }
    }
    if (c == '[') {
      v.kind = Json::Kind::kArray;
      ++pos_;
      skip_space();
      if (pos_ < n_ && p_[pos_] == ']') {
        ++pos_;
        return v;
      }
      for (;;) {
        v.items.push_back(value(depth + 1));
        skip_space();
        if (pos_ < n_ && p_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < n_ && p_[pos_] == ']') {
          ++pos_;
          return v;
        }
        fail("expected ',' or ']' in an array");
      }
    }
    if (c == '"') {
      v.kind = Json::Kind::kString;
      v.text = string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Kind::kNumber;
      v.text = number();
      return v;
    }
    if (literal("true") || literal("false")) {
      v.kind = Json::Kind::kBool;
      v.boolean = p_[pos_ - 1] == 'e' && p_[pos_ - 2] == 'u';
      return v;
    }
    if (literal("null")) return v;
    fail("unexpected character");
  }
  std::string number() {
    const size_t start = pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < n_ && p_[pos_] >= '0' && p_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (p_[pos_] == '-') ++pos_;
    if (pos_ < n_ && p_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      fail("bad number");
    }
    if (pos_ < n_ && p_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail("bad number");
    }
    if (pos_ < n_ && (p_[pos_] == 'e' || p_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < n_ && (p_[pos_] == '+' || p_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("bad number");
    }
    return std::string(reinterpret_cast<const char*>(p_ + start), pos_ - start);
  }
  uint32_t hex4() {
    if (n_ - pos_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const uint8_t h = p_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= uint32_t(h - '0');
      else if (h >= 'a' && h <= 'f') v |= uint32_t(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= uint32_t(h - 'A' + 10);
      else fail("bad hex digit in a \\u escape");
    }
    return v;
  }
  std::string string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= n_) fail("unterminated string");
      const uint8_t c = p_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("unescaped control character in a string");
      if (c == '\\') {
        if (++pos_ >= n_) fail("unterminated string");
        const uint8_t e = p_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            uint32_t cp = hex4();
            if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate in a \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (n_ - pos_ < 2 || p_[pos_] != '\\' || p_[pos_ + 1] != 'u')
                fail("high surrogate without a low surrogate in a \\u escape");
              pos_ += 2;
              uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) fail("bad low surrogate in a \\u escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(out, cp);
            break;
          }
          default: fail("bad escape in a string");
        }
        continue;
      }
      const size_t len = utf8_sequence(p_ + pos_, n_ - pos_);
      if (len == 0) fail("invalid UTF-8 in a string");
      out.append(reinterpret_cast<const char*>(p_ + pos_), len);
      pos_ += len;
    }
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& file_;
};

/// A non-negative JSON integer (digits only) as u64, or fails.
inline uint64_t st_uint(const Json& v, const std::string& file, const std::string& what) {
  if (v.kind != Json::Kind::kNumber)
    st_fail(file, what + " must be a non-negative integer, got " + json_kind_name(v.kind));
  const std::string& s = v.text;
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    st_fail(file, what + " must be a non-negative integer, got " + s);
  uint64_t x = 0;
  for (char c : s) {
    const uint64_t d = uint64_t(c - '0');
    if (x > (std::numeric_limits<uint64_t>::max() - d) / 10)
      st_fail(file, what + " is too large: " + s);
    x = x * 10 + d;
  }
  return x;
}

inline uint64_t get_le(const uint8_t* p, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

inline float half_to_float(uint16_t h) {
  const uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  float v;
  if (exp == 0) {
    v = std::ldexp(float(mant), -24);
  } else if (exp == 31) {
    v = mant != 0 ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(float(mant | 0x400u), int(exp) - 25);
  }
  return (h & 0x8000u) ? -v : v;
}

/// double -> float rounding to nearest, overflowing to +-inf as IEEE (and PyTorch) do.
inline float double_to_float(double d) {
  const double kMax = double(std::numeric_limits<float>::max());
  if (std::isnan(d)) return std::numeric_limits<float>::quiet_NaN();
  if (std::fabs(d) > kMax) {
    // Values at or above the midpoint between FLT_MAX and 2^128 round to infinity.
    const float big = std::fabs(d) >= std::ldexp(2.0 - std::ldexp(1.0, -24), 127)
                          ? std::numeric_limits<float>::infinity()
                          : std::numeric_limits<float>::max();
    return d < 0 ? -big : big;
  }
  return static_cast<float>(d);
}

/// Converts `n` stored values of `dtype` at `src` into floats. Fails on invalid BOOL bytes.
inline void st_decode(const std::string& dtype, const uint8_t* src, size_t n, float* dst,
                      const std::string& file, const std::string& name) {
  if (dtype == "F32") {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t u = uint32_t(get_le(src + 4 * i, 4));
      std::memcpy(dst + i, &u, 4);
    }
  } else if (dtype == "F64") {
    for (size_t i = 0; i < n; ++i) {
      const uint64_t u = get_le(src + 8 * i, 8);
      double d;
      std::memcpy(&d, &u, 8);
      dst[i] = double_to_float(d);
    }
  } else if (dtype == "F16") {
    for (size_t i = 0; i < n; ++i) dst[i] = half_to_float(uint16_t(get_le(src + 2 * i, 2)));
  } else if (dtype == "BF16") {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t u = uint32_t(get_le(src + 2 * i, 2)) << 16;
      std::memcpy(dst + i, &u, 4);
    }
  } else if (dtype == "I64") {
    for (size_t i = 0; i < n; ++i) dst[i] = float(int64_t(get_le(src + 8 * i, 8)));
  } else if (dtype == "I32") {
    for (size_t i = 0; i < n; ++i) dst[i] = float(int32_t(uint32_t(get_le(src + 4 * i, 4))));
  } else if (dtype == "I16") {
    for (size_t i = 0; i < n; ++i) dst[i] = float(int16_t(uint16_t(get_le(src + 2 * i, 2))));
  } else if (dtype == "I8") {
    for (size_t i = 0; i < n; ++i) dst[i] = float(int8_t(src[i]));
  } else if (dtype == "U8") {
    for (size_t i = 0; i < n; ++i) dst[i] = float(src[i]);
  } else if (dtype == "BOOL") {
    for (size_t i = 0; i < n; ++i) {
      if (src[i] > 1)
        st_fail(file, "tensor '" + name + "' (BOOL) holds the byte " + std::to_string(src[i]) +
                          " at element " + std::to_string(i) + "; booleans must be 0 or 1");
      dst[i] = float(src[i]);
    }
  } else {
    st_fail(file, "tensor '" + name + "': no decoder for dtype " + dtype);
  }
}

inline void json_escape(std::string& out, const std::string& s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  out += '"';
}

inline bool valid_utf8(const std::string& s) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_sequence(p + i, s.size() - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

/// Appends `values` encoded as `dtype` (F32, F64 or I64).
inline void st_encode(std::vector<uint8_t>& out, const std::vector<float>& values,
                      const std::string& dtype, const std::string& file, const std::string& name) {
  auto put = [&](uint64_t u, size_t bytes) {
    for (size_t b = 0; b < bytes; ++b) out.push_back(uint8_t(u >> (8 * b)));
  };
  for (size_t i = 0; i < values.size(); ++i) {
    const float v = values[i];
    if (dtype == "F32") {
      uint32_t u;
      std::memcpy(&u, &v, 4);
      put(u, 4);
    } else if (dtype == "F64") {
      const double d = double(v);
      uint64_t u;
      std::memcpy(&u, &d, 8);
      put(u, 8);
    } else {  // I64
      if (!std::isfinite(v) || v != std::trunc(v) || std::fabs(v) >= 9.2233720368547758e18f)
        st_fail(file, "tensor '" + name + "' cannot be written as I64: element " +
                          std::to_string(i) + " is " + std::to_string(v) + ", not an integer");
      put(uint64_t(int64_t(v)), 8);
    }
  }
}

}  // namespace detail

/// Encodes tensors (in the given order) and metadata as safetensors bytes. `file` is used in
/// error messages. Throws ember::Error for duplicate or invalid names, undefined tensors and
/// dtypes other than F32, F64 and I64.
inline std::vector<uint8_t> encode_safetensors(const std::vector<SafeTensor>& tensors,
                                               const std::map<std::string, std::string>& metadata = {},
                                               const std::string& file = "<memory>") {
  using detail::json_escape;
  using detail::st_encode;
  using detail::st_fail;
  using detail::valid_utf8;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (auto& [k, v] : metadata) {
      if (!valid_utf8(k) || !valid_utf8(v))
        st_fail(file, "metadata entry '" + k + "' is not valid UTF-8");
      if (!first) header += ',';
      first = false;
      json_escape(header, k);
      header += ':';
      json_escape(header, v);
    }
    header += "}";
  }
  std::vector<uint8_t> data;
  std::set<std::string> seen;
  for (const SafeTensor& t : tensors) {
    if (t.name == "__metadata__") st_fail(file, "a tensor cannot be called \"__metadata__\"");
    if (!valid_utf8(t.name)) st_fail(file, "tensor name '" + t.name + "' is not valid UTF-8");
    if (!seen.insert(t.name).second) st_fail(file, "duplicate tensor name '" + t.name + "'");
    if (!t.tensor.defined()) st_fail(file, "tensor '" + t.name + "' is undefined");
    if (t.dtype != "F32" && t.dtype != "F64" && t.dtype != "I64")
      st_fail(file, "tensor '" + t.name + "': cannot write dtype '" + t.dtype +
                        "' (ember writes F32, F64 and I64)");
    const size_t begin = data.size();
    st_encode(data, t.tensor.to_vector(), t.dtype, file, t.name);
    if (header.size() > 1) header += ',';
    json_escape(header, t.name);
    header += ":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t d = 0; d < t.tensor.shape().size(); ++d)
      header += (d ? "," : "") + std::to_string(t.tensor.shape()[d]);
    header += "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) +
              "]}";
  }
  header += '}';
  while (header.size() % 8 != 0) header += ' ';  // the data starts 8-byte aligned
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(uint64_t(header.size()) >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// Decodes safetensors bytes (see the file comment for every check). `file` names the source in
/// error messages. Throws ember::Error.
inline SafetensorsFile decode_safetensors(const uint8_t* bytes, size_t size,
                                          const std::string& file = "<memory>") {
  using detail::Json;
  using detail::JsonReader;
  using detail::StDtype;
  using detail::get_le;
  using detail::json_kind_name;
  using detail::kSafetensorsMaxHeader;
  using detail::st_decode;
  using detail::st_dtype;
  using detail::st_fail;
  using detail::st_uint;
  if (size < 8)
    st_fail(file, "truncated: " + std::to_string(size) +
                      " bytes, too short for the 8-byte header length");
  const uint64_t n = get_le(bytes, 8);
  if (n > size - 8)
    st_fail(file, "header length " + std::to_string(n) + " is beyond the end of the file (" +
                      std::to_string(size - 8) + " bytes follow the length field)");
  if (n > kSafetensorsMaxHeader)
    st_fail(file, "header length " + std::to_string(n) + " exceeds the limit of " +
                      std::to_string(kSafetensorsMaxHeader) + " bytes");
  if (n < 2 || bytes[8] != '{')
    st_fail(file, "the header (" + std::to_string(n) + " bytes) does not start with a JSON object");
  const uint8_t* data = bytes + 8 + n;
  const uint64_t data_size = size - 8 - n;

  Json root = JsonReader(bytes + 8, size_t(n), file).document();
  if (root.kind != Json::Kind::kObject) st_fail(file, "the JSON header is not an object");

  struct Entry {
    std::string name, dtype;
    Shape shape;
    uint64_t begin = 0, end = 0;
  };
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (auto& [key, v] : root.members) {
    if (key == "__metadata__") {
      if (v.kind != Json::Kind::kObject)
        st_fail(file, std::string("\"__metadata__\" must be an object of strings, got ") +
                          json_kind_name(v.kind));
      for (auto& [mk, mv] : v.members) {
        if (mv.kind != Json::Kind::kString)
          st_fail(file, "metadata \"" + mk + "\" must be a string, got " + json_kind_name(mv.kind));
        out.metadata[mk] = mv.text;
      }
      continue;
    }
    const std::string what = "tensor '" + key + "'";
    if (v.kind != Json::Kind::kObject)
      st_fail(file, what + " must be described by an object, got " + json_kind_name(v.kind));
    Entry e;
    e.name = key;
    bool have_dtype = false, have_shape = false, have_offsets = false;
    for (auto& [field, fv] : v.members) {
      if (field == "dtype") {
        if (fv.kind != Json::Kind::kString)
          st_fail(file, what + ": dtype must be a string, got " + json_kind_name(fv.kind));
        e.dtype = fv.text;
        have_dtype = true;
      } else if (field == "shape") {
        if (fv.kind != Json::Kind::kArray)
          st_fail(file, what + ": shape must be an array, got " + json_kind_name(fv.kind));
        for (const Json& d : fv.items) {
          const uint64_t s = st_uint(d, file, what + ": a shape entry");
          if (s > uint64_t(std::numeric_limits<int64_t>::max()))
            st_fail(file, what + ": shape entry " + d.text + " is too large");
          e.shape.push_back(int64_t(s));
        }
        have_shape = true;
      } else if (field == "data_offsets") {
        if (fv.kind != Json::Kind::kArray || fv.items.size() != 2)
          st_fail(file, what + ": data_offsets must be an array [begin, end]");
        e.begin = st_uint(fv.items[0], file, what + ": data_offsets begin");
        e.end = st_uint(fv.items[1], file, what + ": data_offsets end");
        have_offsets = true;
      } else {
        st_fail(file, what + ": unknown field \"" + field + "\"");
      }
    }
    if (!have_dtype || !have_shape || !have_offsets)
      st_fail(file, what + " lacks " + (!have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets"));
    const StDtype* dt = st_dtype(e.dtype);
    if (dt == nullptr)
      st_fail(file, what + " has unknown or unsupported dtype \"" + e.dtype +
                        "\" (ember reads F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    if (e.end < e.begin)
      st_fail(file, what + ": data_offsets [" + std::to_string(e.begin) + ", " +
                        std::to_string(e.end) + "] end before they begin");
    if (e.end > data_size)
      st_fail(file, what + ": data_offsets [" + std::to_string(e.begin) + ", " +
                        std::to_string(e.end) + "] reach beyond the " + std::to_string(data_size) +
                        " data bytes of the file (truncated?)");
    uint64_t numel = 1;
    bool overflow = false;
    for (int64_t d : e.shape) {
      if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / uint64_t(d)) overflow = true;
      numel *= uint64_t(d);
    }
    if (overflow || numel > std::numeric_limits<uint64_t>::max() / dt->size ||
        numel * dt->size != e.end - e.begin)
      st_fail(file, what + " has shape " + to_string(e.shape) + " of " + e.dtype + " (" +
                        (overflow ? std::string("an impossible number of") : std::to_string(numel)) +
                        " elements of " + std::to_string(dt->size) + " bytes) but data_offsets [" +
                        std::to_string(e.begin) + ", " + std::to_string(e.end) + "] span " +
                        std::to_string(e.end - e.begin) + " bytes");
    entries.push_back(std::move(e));
  }

  // The byte ranges must tile the data: no gaps, no overlaps, nothing left over.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
  });
  uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < expected)
      st_fail(file, "tensor '" + e.name + "' (bytes " + std::to_string(e.begin) + ".." +
                        std::to_string(e.end) + ") overlaps tensor '" + prev->name + "' (bytes " +
                        std::to_string(prev->begin) + ".." + std::to_string(prev->end) + ")");
    if (e.begin > expected)
      st_fail(file, "data bytes " + std::to_string(expected) + ".." + std::to_string(e.begin) +
                        " belong to no tensor (a gap before tensor '" + e.name + "')");
    expected = e.end;
    prev = &e;
  }
  if (expected != data_size)
    st_fail(file, "data bytes " + std::to_string(expected) + ".." + std::to_string(data_size) +
                      " at the end of the file belong to no tensor");

  for (const Entry& e : entries) {
    for (int64_t d : e.shape)
      if (d == 0)
        st_fail(file, "tensor '" + e.name + "' has shape " + to_string(e.shape) +
                          " with a zero-size dimension; ember tensors cannot be empty");
    SafeTensor t;
    t.name = e.name;
    t.dtype = e.dtype;
    t.tensor = Tensor::empty(e.shape, Device::cpu);
    st_decode(e.dtype, data + e.begin, size_t(t.tensor.numel()), t.tensor.data(), file, e.name);
    out.tensors.push_back(std::move(t));
  }
  return out;
}

/// Reads a .safetensors file. Throws ember::Error naming the file and the problem.
inline SafetensorsFile load_safetensors(const std::string& path) {
  std::vector<uint8_t> bytes;
  try {
    bytes = read_file(path);
  } catch (const std::exception& e) {
    detail::st_fail(path, std::string("cannot read: ") + e.what());
  }
  return decode_safetensors(bytes.data(), bytes.size(), path);
}

/// Writes tensors (each with its dtype: F32, F64 or I64) and metadata to `path` atomically.
inline void save_safetensors(const std::string& path, const std::vector<SafeTensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  const std::vector<uint8_t> bytes = encode_safetensors(tensors, metadata, path);
  try {
    write_file_atomic(path, bytes);
  } catch (const std::exception& e) {
    detail::st_fail(path, std::string("cannot write: ") + e.what());
  }
}

/// Writes (name, tensor) pairs as F32 to `path` atomically.
inline void save_safetensors(const std::string& path,
                             const std::vector<std::pair<std::string, Tensor>>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  std::vector<SafeTensor> list;
  for (auto& [name, t] : tensors) list.push_back(SafeTensor{name, "F32", t});
  save_safetensors(path, list, metadata);
}

/// Writes `module`'s named_parameters() then named_buffers() as F32 (PyTorch's state_dict names).
inline void save_safetensors(const std::string& path, const nn::Module& module,
                             const std::map<std::string, std::string>& metadata = {}) {
  std::vector<std::pair<std::string, Tensor>> all = module.named_parameters();
  for (auto& kv : module.named_buffers()) all.push_back(kv);
  save_safetensors(path, all, metadata);
}

/// Copies a decoded file into `module`'s parameters and buffers (in place, on their devices).
/// Every parameter and buffer must be present with the same shape, and the file may hold no
/// other tensors except PyTorch BatchNorm's "<prefix>.num_batches_tracked" next to a module's
/// "<prefix>.running_mean". Checks everything before changing anything. `file` names the source.
inline void load_safetensors(const SafetensorsFile& st, nn::Module& module,
                             const std::string& file = "<memory>") {
  using detail::st_fail;
  std::vector<std::pair<std::string, Tensor>> targets = module.named_parameters();
  for (auto& kv : module.named_buffers()) targets.push_back(kv);
  std::map<std::string, const SafeTensor*> stored;
  for (const SafeTensor& t : st.tensors) stored[t.name] = &t;
  std::set<std::string> wanted;
  for (auto& [name, t] : targets) {
    wanted.insert(name);
    auto it = stored.find(name);
    if (it == stored.end())
      st_fail(file, "tensor '" + name + "' of shape " + to_string(t.shape()) +
                        " is missing from the file");
    if (it->second->tensor.shape() != t.shape())
      st_fail(file, "tensor '" + name + "' has shape " + to_string(it->second->tensor.shape()) +
                        " in the file but " + to_string(t.shape()) + " in the module");
  }
  const std::string kCounter = ".num_batches_tracked";
  for (const SafeTensor& t : st.tensors) {
    if (wanted.count(t.name)) continue;
    const size_t k = t.name.size();
    if (k > kCounter.size() && t.name.compare(k - kCounter.size(), kCounter.size(), kCounter) == 0 &&
        wanted.count(t.name.substr(0, k - kCounter.size()) + ".running_mean"))
      continue;  // PyTorch's BatchNorm step counter: ember's BatchNorm has none
    st_fail(file, "tensor '" + t.name + "' of shape " + to_string(t.tensor.shape()) +
                      " in the file is not in the module");
  }
  NoGradGuard guard;
  for (auto& [name, t] : targets) ember::detail::copy_(stored.at(name)->tensor, t);
}

/// Reads `path` into `module` (see above); the file's metadata goes to *metadata when given.
inline void load_safetensors(const std::string& path, nn::Module& module,
                             std::map<std::string, std::string>* metadata = nullptr) {
  SafetensorsFile st = load_safetensors(path);
  load_safetensors(st, module, path);
  if (metadata != nullptr) *metadata = std::move(st.metadata);
}

}  // namespace ember::io
