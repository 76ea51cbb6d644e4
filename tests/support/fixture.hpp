// @file tests/support/fixture.hpp
// @brief Loader for PyTorch parity fixtures ("EMBERFIX" v1) and a tolerance comparison helper.
//
// File format (little-endian), written by tests/fixtures/make_fixtures.py:
//   char[8] "EMBERFIX"; uint32 version (=1); uint32 count;
//   count x { uint32 name_len; char name[name_len] (UTF-8); uint32 rank;
//             int64 dims[rank]; float32 data[prod(dims)] (row-major) }
// Rank-0 tensors are scalars holding one value. Integer metadata is stored as float.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifndef EMBER_FIXTURE_DIR
#define EMBER_FIXTURE_DIR "tests/fixtures/data"
#endif

namespace ember_test {

struct FixtureTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t rank() const { return shape.size(); }
};

class Fixture {
 public:
  // Reads EMBER_FIXTURE_DIR "/" name ".bin".
  static Fixture load(const std::string& name) {
    return load_path(std::string(EMBER_FIXTURE_DIR) + "/" + name + ".bin");
  }

  // Reads an explicit path (any extension).
  static Fixture load_path(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("fixture '" + path + "': cannot open file (missing? regenerate with "
                                      "tests/fixtures/make_fixtures.py)");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw std::runtime_error("fixture '" + path + "': read error");
    Fixture f;
    f.path_ = path;
    f.parse(bytes);
    return f;
  }

  const FixtureTensor& at(const std::string& key) const {
    auto it = index_.find(key);
    if (it == index_.end()) {
      std::string msg = "fixture '" + path_ + "': no tensor named '" + key + "' (has:";
      for (const auto& n : order_) msg += " " + n;
      msg += ")";
      throw std::runtime_error(msg);
    }
    return tensors_[it->second];
  }

  bool has(const std::string& key) const { return index_.count(key) != 0; }

  // Value of a one-element tensor (rank 0, or any shape with exactly one element).
  float scalar(const std::string& key) const {
    const FixtureTensor& t = at(key);
    if (t.data.size() != 1) {
      throw std::runtime_error("fixture '" + path_ + "': tensor '" + key + "' is not a scalar (" +
                               std::to_string(t.data.size()) + " elements)");
    }
    return t.data[0];
  }

  // Tensor names in file order.
  std::vector<std::string> names() const { return order_; }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> order_;
  std::vector<FixtureTensor> tensors_;
  std::map<std::string, size_t> index_;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("fixture '" + path_ + "': " + what);
  }

  static uint32_t rd_u32(const unsigned char* p) {
    return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
  }
  static int64_t rd_i64(const unsigned char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | uint64_t(p[i]);
    int64_t r;
    std::memcpy(&r, &v, sizeof r);
    return r;
  }

  void parse(const std::vector<char>& bytes) {
    const unsigned char* base = reinterpret_cast<const unsigned char*>(bytes.data());
    const size_t size = bytes.size();
    size_t pos = 0;
    auto need = [&](size_t n, const std::string& what) {
      if (n > size - pos) {
        std::ostringstream os;
        os << "truncated file: need " << n << " bytes for " << what << " at offset " << pos << ", file has "
           << size << " bytes";
        fail(os.str());
      }
    };
    need(16, "header");
    if (std::memcmp(base, "EMBERFIX", 8) != 0) fail("bad magic (not an EMBERFIX file)");
    pos = 8;
    const uint32_t version = rd_u32(base + pos);
    pos += 4;
    if (version != 1) fail("unsupported version " + std::to_string(version) + " (expected 1)");
    const uint32_t count = rd_u32(base + pos);
    pos += 4;
    for (uint32_t i = 0; i < count; ++i) {
      const std::string idx = "tensor #" + std::to_string(i);
      need(4, idx + " name length");
      const uint32_t name_len = rd_u32(base + pos);
      pos += 4;
      need(name_len, idx + " name");
      std::string name(reinterpret_cast<const char*>(base + pos), name_len);
      pos += name_len;
      const std::string what = "tensor '" + name + "'";
      need(4, what + " rank");
      const uint32_t rank = rd_u32(base + pos);
      pos += 4;
      if (rank > 16) fail(what + ": implausible rank " + std::to_string(rank));
      need(size_t(rank) * 8, what + " dims");
      FixtureTensor t;
      uint64_t numel = 1;
      for (uint32_t d = 0; d < rank; ++d) {
        const int64_t dim = rd_i64(base + pos);
        pos += 8;
        if (dim < 0) fail(what + ": negative dimension " + std::to_string(dim));
        if (dim != 0 && numel > (uint64_t(1) << 40) / uint64_t(dim)) fail(what + ": dimensions too large");
        numel *= uint64_t(dim);
        t.shape.push_back(dim);
      }
      if (numel * 4 > uint64_t(size - pos)) {
        std::ostringstream os;
        os << "truncated file: " << what << " needs " << numel * 4 << " data bytes at offset " << pos
           << ", only " << (size - pos) << " left";
        fail(os.str());
      }
      t.data.resize(size_t(numel));
      for (size_t k = 0; k < size_t(numel); ++k) {
        const uint32_t u = rd_u32(base + pos + 4 * k);
        std::memcpy(&t.data[k], &u, 4);
      }
      pos += size_t(numel) * 4;
      if (index_.count(name)) fail("duplicate tensor name '" + name + "'");
      index_[name] = tensors_.size();
      order_.push_back(name);
      tensors_.push_back(std::move(t));
    }
    if (pos != size) fail(std::to_string(size - pos) + " trailing bytes after " + std::to_string(count) + " tensors");
  }
};

struct CompareResult {
  bool ok;
  std::string message;
};

// ok when |got - expected| <= atol + rtol * |expected| for every element.
// NaN matches NaN; infinities must match exactly. The message names `what`, n, the worst
// element (largest excess over its tolerance), its values, and the max absolute error.
inline CompareResult compare(const std::string& what, const float* got, const float* expected, size_t n, double atol,
                             double rtol) {
  size_t bad = 0, worst = 0;
  double worst_excess = -std::numeric_limits<double>::infinity();
  double max_abs = 0.0;
  size_t max_abs_idx = 0;
  for (size_t i = 0; i < n; ++i) {
    const double g = got[i], e = expected[i];
    double err, excess;
    if (std::isnan(g) || std::isnan(e)) {
      const bool same = std::isnan(g) && std::isnan(e);
      err = same ? 0.0 : std::numeric_limits<double>::infinity();
      excess = same ? -atol : std::numeric_limits<double>::infinity();
    } else if (std::isinf(g) || std::isinf(e)) {
      const bool same = g == e;
      err = same ? 0.0 : std::numeric_limits<double>::infinity();
      excess = same ? -atol : std::numeric_limits<double>::infinity();
    } else {
      err = std::fabs(g - e);
      excess = err - (atol + rtol * std::fabs(e));
    }
    if (excess > 0) ++bad;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
    if (err > max_abs) {
      max_abs = err;
      max_abs_idx = i;
    }
  }
  std::ostringstream os;
  os.precision(9);
  os << what << ": n=" << n << " atol=" << atol << " rtol=" << rtol;
  if (n == 0) {
    os << " (empty)";
    return {true, os.str()};
  }
  os << (bad ? " FAILED " : " ok ") << bad << "/" << n << " elements out of tolerance; worst index " << worst
     << " got " << got[worst] << " expected " << expected[worst] << "; max abs error " << max_abs << " at index "
     << max_abs_idx;
  return {bad == 0, os.str()};
}

inline CompareResult compare(const std::string& what, const std::vector<float>& got, const FixtureTensor& expected,
                             double atol, double rtol) {
  if (got.size() != expected.data.size()) {
    return {false, what + ": size mismatch, got " + std::to_string(got.size()) + " elements, expected " +
                       std::to_string(expected.data.size())};
  }
  return compare(what, got.data(), expected.data.data(), got.size(), atol, rtol);
}

}  // namespace ember_test
