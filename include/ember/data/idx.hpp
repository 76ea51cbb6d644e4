// @file include/ember/data/idx.hpp
// @brief Reading IDX image/label files (gzip-compressed or plain) and the FashionMNIST data set.
//
// The IDX format (LeCun's MNIST format) is a big-endian header followed by raw data:
//   images: u32 magic = 2051 (0x00000803: unsigned bytes, 3 dims), u32 count, u32 rows, u32 cols,
//           then count*rows*cols pixel bytes, row-major, one image after another;
//   labels: u32 magic = 2049 (0x00000801: unsigned bytes, 1 dim), u32 count, then count bytes.
// A file starting with the gzip magic bytes 1F 8B is decompressed with zlib (io/gzip.hpp: every
// member's CRC-32 and length are checked; this header therefore belongs to the optional CMake
// target ember::io, which links zlib); any other file is used as it
// is, so both forms are accepted whatever the file name says. A file named *.gz that is neither
// gzip nor starts like an IDX file (00 00 08 ..) is reported as "not a gzip file", with its
// first bytes, rather than as a bad IDX magic number.
//
// Every problem (missing file, corrupt gzip stream, wrong magic, truncated data, trailing bytes,
// image/label count mismatch) throws ember::data::DataError, whose message names the file, says
// what is wrong, and says how to get the data. The whole file is decompressed before the header
// is trusted, so a corrupt header cannot make us allocate a huge buffer.
//
// Independent of the tensor class: everything here is plain std::vector<uint8_t>.
#pragma once
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "../core/error.hpp"
#include "../io/atomic_file.hpp"
#include "../io/gzip.hpp"

namespace ember::data {

// Thrown for every data-loading problem. Derives from ember::Error (a std::runtime_error).
class DataError : public Error {
 public:
  explicit DataError(const std::string& msg) : Error(msg) {}
};

struct IdxImages {
  int64_t count = 0;
  int rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols bytes, image-major, row-major
};

struct IdxLabels {
  int64_t count = 0;
  std::vector<uint8_t> labels;  // count bytes
};

struct FashionMnist {
  IdxImages train_images, test_images;
  IdxLabels train_labels, test_labels;
};

// The hint appended to every DataError.
inline const char* data_help_text() {
  return "to get FashionMNIST, install Debian's dataset-fashion-mnist "
         "(apt-get install dataset-fashion-mnist) or pass --data DIR / set EMBER_DATA";
}

// Directory to load FashionMNIST from: `flag` if non-empty, else $EMBER_DATA if set and
// non-empty, else /usr/share/datasets/fashion-mnist.
inline std::string default_data_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("EMBER_DATA");
  if (env != nullptr && env[0] != '\0') return env;
  return "/usr/share/datasets/fashion-mnist";
}

namespace detail {

[[noreturn]] inline void idx_fail(const std::string& path, const std::string& what) {
  throw DataError("ember::data: " + path + ": " + what + "; " + data_help_text());
}

inline uint32_t read_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Decompressed IDX data larger than this is treated as corrupt (FashionMNIST's largest file is
// 47 MB uncompressed), so a damaged .gz cannot make us allocate without bound.
constexpr uint64_t kMaxIdxBytes = uint64_t(1) << 32;

// Returns `raw` gunzipped when it starts with the gzip magic 1F 8B, else `raw` itself.
// Throws DataError naming `path` if it is not a valid gzip stream.
inline std::vector<uint8_t> gunzip_if_gz(std::vector<uint8_t> raw, const std::string& path) {
  if (raw.size() < 2 || raw[0] != 0x1F || raw[1] != 0x8B) {  // not gzip
    const bool gz_name = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
    const bool idx_like = raw.size() >= 3 && raw[0] == 0 && raw[1] == 0 && raw[2] == 0x08;
    if (gz_name && !idx_like) {
      std::string first;
      static const char* hex = "0123456789ABCDEF";
      for (size_t i = 0; i < std::min<size_t>(raw.size(), 4); ++i) {
        first += i ? " " : "";
        first += hex[raw[i] >> 4];
        first += hex[raw[i] & 15];
      }
      idx_fail(path, "not a gzip file: " +
                         (raw.empty() ? std::string("it is empty")
                                      : "its first bytes are " + first) +
                         ", expected 1F 8B (gzip) or an uncompressed IDX header (00 00 08 ..)");
    }
    return raw;  // plain IDX (whatever the name), checked by the caller
  }
  const size_t limit = size_t(std::min<uint64_t>(kMaxIdxBytes, std::numeric_limits<size_t>::max()));
  try {
    return io::gunzip(raw.data(), raw.size(), limit);
  } catch (const io::DeflateError& e) {
    idx_fail(path, std::string("corrupt or truncated gzip data: ") + e.what());
  }
}

// Reads the whole file into memory; gunzips it when it starts with the gzip magic 1F 8B.
// Throws DataError if the file is missing, unreadable, or not a valid gzip stream (a truncated
// .gz is reported as such).
inline std::vector<uint8_t> read_gz_all(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    idx_fail(path, std::string("cannot open file: ") + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) idx_fail(path, "is a directory, expected an IDX file");
  std::vector<uint8_t> raw;
  try {
    raw = io::read_file(path);
  } catch (const std::runtime_error& e) {
    idx_fail(path, e.what());
  }
  return gunzip_if_gz(std::move(raw), path);
}

inline std::string magic_hint(uint32_t magic) {
  if (magic == 2051) return " (this is an IDX image file; expected labels)";
  if (magic == 2049) return " (this is an IDX label file; expected images)";
  if ((magic & 0xFFFFFF00u) == 0x1F8B0800u) return " (looks like doubly gzip-compressed data)";
  return "";
}

// Counts above this are treated as a corrupt header (the largest real IDX sets are ~1e6).
constexpr int64_t kMaxIdxCount = int64_t(1) << 31;
constexpr int kMaxIdxSide = 1 << 15;

}  // namespace detail

namespace detail {

// Parses decompressed IDX image bytes; `path` names them in errors.
inline IdxImages idx_images_from(const std::vector<uint8_t>& raw, const std::string& path) {
  if (raw.size() < 4)
    idx_fail(path, "truncated: expected a 16-byte IDX image header, got " + std::to_string(raw.size()) +
                       " bytes");
  uint32_t magic = detail::read_be32(raw.data());
  if (magic != 2051)
    idx_fail(path, "bad magic number " + std::to_string(magic) + ", expected 2051 (IDX images)" +
                       detail::magic_hint(magic));
  if (raw.size() < 16)
    idx_fail(path, "truncated: expected a 16-byte IDX image header, got " + std::to_string(raw.size()) +
                       " bytes");
  int64_t count = detail::read_be32(raw.data() + 4);
  int64_t rows = detail::read_be32(raw.data() + 8);
  int64_t cols = detail::read_be32(raw.data() + 12);
  if (count > detail::kMaxIdxCount)
    idx_fail(path, "implausible image count " + std::to_string(count) + " in header");
  if (rows <= 0 || cols <= 0 || rows > detail::kMaxIdxSide || cols > detail::kMaxIdxSide)
    idx_fail(path, "implausible image size " + std::to_string(rows) + "x" + std::to_string(cols) +
                       " in header");
  const uint64_t expected = uint64_t(count) * uint64_t(rows) * uint64_t(cols);
  const uint64_t got = raw.size() - 16;
  if (got < expected)
    idx_fail(path, "truncated: expected " + std::to_string(expected) + " pixel bytes (" +
                       std::to_string(count) + " images of " + std::to_string(rows) + "x" +
                       std::to_string(cols) + "), got " + std::to_string(got));
  if (got > expected)
    idx_fail(path, "trailing garbage: " + std::to_string(got - expected) +
                       " bytes after the " + std::to_string(expected) + " pixel bytes the header declares");
  IdxImages out;
  out.count = count;
  out.rows = int(rows);
  out.cols = int(cols);
  out.pixels.assign(raw.begin() + 16, raw.end());
  return out;
}

// Parses decompressed IDX label bytes; `path` names them in errors.
inline IdxLabels idx_labels_from(const std::vector<uint8_t>& raw, const std::string& path) {
  if (raw.size() < 4)
    idx_fail(path, "truncated: expected a 8-byte IDX label header, got " + std::to_string(raw.size()) +
                       " bytes");
  uint32_t magic = detail::read_be32(raw.data());
  if (magic != 2049)
    idx_fail(path, "bad magic number " + std::to_string(magic) + ", expected 2049 (IDX labels)" +
                       detail::magic_hint(magic));
  if (raw.size() < 8)
    idx_fail(path, "truncated: expected a 8-byte IDX label header, got " + std::to_string(raw.size()) +
                       " bytes");
  int64_t count = detail::read_be32(raw.data() + 4);
  if (count > detail::kMaxIdxCount)
    idx_fail(path, "implausible label count " + std::to_string(count) + " in header");
  const uint64_t expected = uint64_t(count);
  const uint64_t got = raw.size() - 8;
  if (got < expected)
    idx_fail(path, "truncated: expected " + std::to_string(expected) + " label bytes, got " +
                       std::to_string(got));
  if (got > expected)
    idx_fail(path, "trailing garbage: " + std::to_string(got - expected) +
                       " bytes after the " + std::to_string(expected) + " label bytes the header declares");
  IdxLabels out;
  out.count = count;
  out.labels.assign(raw.begin() + 8, raw.end());
  return out;
}

}  // namespace detail

inline IdxImages read_idx_images(const std::string& path) {
  return detail::idx_images_from(detail::read_gz_all(path), path);
}

inline IdxLabels read_idx_labels(const std::string& path) {
  return detail::idx_labels_from(detail::read_gz_all(path), path);
}

// The same readers for IDX data held in memory (gzip-compressed or plain); `name` is used in
// errors in place of a file name.
inline IdxImages parse_idx_images(const uint8_t* data, size_t size,
                                  const std::string& name = "<memory>") {
  return detail::idx_images_from(detail::gunzip_if_gz(std::vector<uint8_t>(data, data + size), name),
                                 name);
}

inline IdxLabels parse_idx_labels(const uint8_t* data, size_t size,
                                  const std::string& name = "<memory>") {
  return detail::idx_labels_from(detail::gunzip_if_gz(std::vector<uint8_t>(data, data + size), name),
                                 name);
}

namespace detail {

inline bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

// "<dir>/<base>.gz" if it exists, else "<dir>/<base>" if that exists, else the .gz name (so the
// error message names the standard file).
inline std::string idx_file_in(const std::string& dir, const std::string& base) {
  std::string prefix = dir.empty() ? std::string() : (dir.back() == '/' ? dir : dir + "/");
  std::string gz = prefix + base + ".gz";
  if (file_exists(gz)) return gz;
  std::string plain = prefix + base;
  if (file_exists(plain)) return plain;
  return gz;
}

inline void check_pair(const IdxImages& im, const std::string& im_path, const IdxLabels& lb,
                       const std::string& lb_path) {
  if (im.count != lb.count)
    idx_fail(im_path, "has " + std::to_string(im.count) + " images but " + lb_path + " has " +
                          std::to_string(lb.count) + " labels");
}

}  // namespace detail

// Loads the four standard FashionMNIST files from `dir` (train-images-idx3-ubyte.gz,
// train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; the
// uncompressed names without .gz are accepted too). Checks that image and label counts agree
// and that train and test images have the same size. Labels are not range-checked here.
inline FashionMnist load_fashion_mnist(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    detail::idx_fail(dir, "data directory does not exist or is not a directory");
  const std::string tri = detail::idx_file_in(dir, "train-images-idx3-ubyte");
  const std::string trl = detail::idx_file_in(dir, "train-labels-idx1-ubyte");
  const std::string tei = detail::idx_file_in(dir, "t10k-images-idx3-ubyte");
  const std::string tel = detail::idx_file_in(dir, "t10k-labels-idx1-ubyte");
  FashionMnist d;
  d.train_images = read_idx_images(tri);
  d.train_labels = read_idx_labels(trl);
  d.test_images = read_idx_images(tei);
  d.test_labels = read_idx_labels(tel);
  detail::check_pair(d.train_images, tri, d.train_labels, trl);
  detail::check_pair(d.test_images, tei, d.test_labels, tel);
  if (d.train_images.rows != d.test_images.rows || d.train_images.cols != d.test_images.cols)
    detail::idx_fail(tei, "images are " + std::to_string(d.test_images.rows) + "x" +
                              std::to_string(d.test_images.cols) + " but " + tri + " images are " +
                              std::to_string(d.train_images.rows) + "x" +
                              std::to_string(d.train_images.cols));
  return d;
}

}  // namespace ember::data
