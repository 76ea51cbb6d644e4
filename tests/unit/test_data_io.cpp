// @file tests/unit/test_data_io.cpp
// @brief Tests for IDX loading, image transforms, PNG read/write, image grids and atomic files.
//
// Independent of the real FashionMNIST files: every IDX file used here is generated in a fresh
// temporary directory (one optional test reads the real t10k labels when they are installed).
// The .gz and zlib data the tests write are built by hand here (stored deflate blocks, with
// their own bitwise CRC-32/Adler-32), independent of zlib and of ember's gzip layer
// (io/gzip.hpp, which test_gzip.cpp checks on its own).
#include "../support/catch.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ember/data/idx.hpp>
#include <ember/data/transforms.hpp>
#include <ember/io/atomic_file.hpp>
#include <ember/io/gzip.hpp>
#include <ember/io/png.hpp>
#include "../support/test_util.hpp"

namespace {

using ember_test::TempDir;

void be32(std::vector<uint8_t>& v, uint32_t x) {
  v.push_back(uint8_t(x >> 24));
  v.push_back(uint8_t(x >> 16));
  v.push_back(uint8_t(x >> 8));
  v.push_back(uint8_t(x));
}

std::vector<uint8_t> idx_images_bytes(uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols,
                                      size_t data_bytes) {
  std::vector<uint8_t> v;
  be32(v, magic);
  be32(v, count);
  be32(v, rows);
  be32(v, cols);
  for (size_t i = 0; i < data_bytes; ++i) v.push_back(uint8_t(i * 7 + 3));
  return v;
}

std::vector<uint8_t> idx_labels_bytes(uint32_t magic, uint32_t count, size_t data_bytes) {
  std::vector<uint8_t> v;
  be32(v, magic);
  be32(v, count);
  for (size_t i = 0; i < data_bytes; ++i) v.push_back(uint8_t(i % 10));
  return v;
}

using ember_test::ref_crc32;
uint32_t ref_adler32(const std::vector<uint8_t>& v) {
  uint32_t a = 1, b = 0;
  for (uint8_t x : v) {
    a = (a + x) % 65521u;
    b = (b + a) % 65521u;
  }
  return (b << 16) | a;
}

// Raw deflate data made of stored blocks (RFC 1951 3.2.4): at most 65535 bytes each.
std::vector<uint8_t> stored_deflate(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> out;
  size_t at = 0;
  do {
    const size_t n = std::min<size_t>(bytes.size() - at, 65535);
    out.push_back(at + n == bytes.size() ? 1 : 0);  // BFINAL, BTYPE 00, padding
    out.push_back(uint8_t(n));
    out.push_back(uint8_t(n >> 8));
    out.push_back(uint8_t(~n));
    out.push_back(uint8_t(~n >> 8));
    out.insert(out.end(), bytes.begin() + std::ptrdiff_t(at), bytes.begin() + std::ptrdiff_t(at + n));
    at += n;
  } while (at < bytes.size());
  return out;
}

// A gzip file (RFC 1952) holding `bytes` in stored blocks.
std::vector<uint8_t> gzip_stored(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> gz = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255};
  const std::vector<uint8_t> body = stored_deflate(bytes);
  gz.insert(gz.end(), body.begin(), body.end());
  for (uint32_t x : {ref_crc32(bytes), uint32_t(bytes.size())})
    for (int s = 0; s < 32; s += 8) gz.push_back(uint8_t(x >> s));
  return gz;
}

void write_plain(const std::string& path, const std::vector<uint8_t>& bytes);

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_plain(path, gzip_stored(bytes));
}

void write_plain(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!bytes.empty()) REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  std::fclose(f);
}

using ember_test::contains;

// Runs fn, requires it to throw E, returns the message.
template <class E, class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return "";
}

}  // namespace

TEST_CASE("read_idx_images / read_idx_labels read valid gzip and plain files", "[data][idx]") {
  TempDir dir;
  const std::string gz_img = dir.file("imgs.gz"), plain_img = dir.file("imgs");
  const std::string gz_lab = dir.file("labs.gz");
  auto img_bytes = idx_images_bytes(2051, 3, 4, 5, 3 * 4 * 5);
  write_gz(gz_img, img_bytes);
  write_plain(plain_img, img_bytes);
  write_gz(gz_lab, idx_labels_bytes(2049, 3, 3));

  for (const std::string& p : {gz_img, plain_img}) {
    INFO(p);
    ember::data::IdxImages im = ember::data::read_idx_images(p);
    CHECK(im.count == 3);
    CHECK(im.rows == 4);
    CHECK(im.cols == 5);
    REQUIRE(im.pixels.size() == 60u);
    for (size_t i = 0; i < 60; ++i) CHECK(im.pixels[i] == img_bytes[16 + i]);
  }
  ember::data::IdxLabels lb = ember::data::read_idx_labels(gz_lab);
  CHECK(lb.count == 3);
  REQUIRE(lb.labels.size() == 3u);
  CHECK(lb.labels[0] == 0);
  CHECK(lb.labels[2] == 2);

  // Zero images is a valid (if useless) file.
  write_gz(dir.file("empty.gz"), idx_images_bytes(2051, 0, 28, 28, 0));
  CHECK(ember::data::read_idx_images(dir.file("empty.gz")).count == 0);
}

TEST_CASE("read_idx_* read Huffman-coded and multi-member gzip files", "[data][idx]") {
  TempDir dir;
  // Written by ember's writer (zlib's deflate, Huffman-coded), and as two concatenated members
  // split inside the pixel data.
  auto img = idx_images_bytes(2051, 50, 28, 28, 50 * 28 * 28);
  for (size_t i = 16; i < img.size(); ++i) img[i] = uint8_t(((i - 16) % 28) < 14 ? 0 : i % 9);
  const std::string p = dir.file("ours.gz");
  write_plain(p, ember::io::gzip_compress(img.data(), img.size()));
  CHECK(ember::io::read_file(p).size() < img.size() / 4);
  ember::data::IdxImages im = ember::data::read_idx_images(p);
  CHECK(im.count == 50);
  CHECK(im.pixels == std::vector<uint8_t>(img.begin() + 16, img.end()));

  std::vector<uint8_t> two = gzip_stored(std::vector<uint8_t>(img.begin(), img.begin() + 1000));
  const std::vector<uint8_t> rest = gzip_stored(std::vector<uint8_t>(img.begin() + 1000, img.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  const std::string q = dir.file("two_members.gz");
  write_plain(q, two);
  CHECK(ember::data::read_idx_images(q).pixels == im.pixels);
}

TEST_CASE("the installed FashionMNIST t10k labels gunzip to 10000 labels", "[data][idx][fashion]") {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    WARN("FashionMNIST is not installed (" << path << "): test skipped");
    return;
  }
  const std::vector<uint8_t> gz = ember::io::read_file(path);
  const std::vector<uint8_t> raw = ember::io::gunzip(gz.data(), gz.size());
  REQUIRE(raw.size() == 8u + 10000u);
  CHECK(raw[0] == 0);
  CHECK(raw[1] == 0);
  CHECK(raw[2] == 8);
  CHECK(raw[3] == 1);  // magic 2049
  ember::data::IdxLabels lb = ember::data::read_idx_labels(path);
  CHECK(lb.count == 10000);
  REQUIRE(lb.labels.size() == 10000u);
  std::vector<int> per_class(10, 0);
  for (uint8_t l : lb.labels) {
    REQUIRE(l < 10);
    ++per_class[l];
  }
  for (int c = 0; c < 10; ++c) CHECK(per_class[size_t(c)] == 1000);  // balanced test set
}

TEST_CASE("IDX errors name the file, the problem and how to get the data", "[data][idx]") {
  TempDir dir;
  using ember::data::DataError;
  auto check_common = [](const std::string& msg, const std::string& path) {
    INFO(msg);
    CHECK(contains(msg, path));
    CHECK(contains(msg, "apt-get install dataset-fashion-mnist"));
    CHECK(contains(msg, "--data DIR"));
    CHECK(contains(msg, "EMBER_DATA"));
  };

  SECTION("missing file") {
    const std::string p = dir.file("nope.gz");
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    check_common(msg, p);
    CHECK(contains(msg, "cannot open"));
    CHECK(contains(msg, "No such file"));
    msg = error_of<DataError>([&] { ember::data::read_idx_labels(p); });
    check_common(msg, p);
  }
  SECTION("wrong magic") {
    const std::string p = dir.file("labels_as_images.gz");
    write_gz(p, idx_labels_bytes(2049, 4, 4));
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    check_common(msg, p);
    CHECK(contains(msg, "magic"));
    CHECK(contains(msg, "2049"));
    CHECK(contains(msg, "2051"));
    const std::string q = dir.file("images_as_labels.gz");
    write_gz(q, idx_images_bytes(2051, 1, 2, 2, 4));
    msg = error_of<DataError>([&] { ember::data::read_idx_labels(q); });
    check_common(msg, q);
    CHECK(contains(msg, "magic"));
  }
  SECTION("a .gz file that is not gzip") {
    // Random bytes: "not a gzip file" with the first bytes, not a bad IDX magic number.
    const std::string p = dir.file("random.gz");
    write_plain(p, {0x3A, 0x9C, 0x07, 0xE1, 0x55, 0x10, 0x00, 0x42, 0x99});
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    check_common(msg, p);
    CHECK(contains(msg, "not a gzip file: its first bytes are 3A 9C 07 E1"));
    CHECK(!contains(msg, "magic number"));
    msg = error_of<DataError>([&] { ember::data::read_idx_labels(p); });
    CHECK(contains(msg, "not a gzip file"));
    write_plain(p, {});
    msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    CHECK(contains(msg, "not a gzip file: it is empty"));
    // An uncompressed IDX file that kept a .gz name is still read.
    const std::string q = dir.file("really_plain.gz");
    write_plain(q, idx_images_bytes(2051, 1, 2, 2, 4));
    CHECK(ember::data::read_idx_images(q).count == 1);
    // Without the .gz name, random bytes are judged as IDX: a bad magic number.
    const std::string r = dir.file("random_plain");
    write_plain(r, {0x3A, 0x9C, 0x07, 0xE1, 0x55, 0x10, 0x00, 0x42, 0x99});
    msg = error_of<DataError>([&] { ember::data::read_idx_images(r); });
    CHECK(contains(msg, "bad magic number"));
  }
  SECTION("truncated data") {
    const std::string p = dir.file("trunc.gz");
    write_gz(p, idx_images_bytes(2051, 10, 28, 28, 1234));
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    check_common(msg, p);
    CHECK(contains(msg, "truncated: expected 7840 pixel bytes"));
    CHECK(contains(msg, "got 1234"));
    const std::string q = dir.file("trunc_labels.gz");
    write_gz(q, idx_labels_bytes(2049, 10, 9));
    msg = error_of<DataError>([&] { ember::data::read_idx_labels(q); });
    check_common(msg, q);
    CHECK(contains(msg, "truncated: expected 10 label bytes, got 9"));
  }
  SECTION("truncated header") {
    const std::string p = dir.file("short.gz");
    write_gz(p, {0, 0, 8, 3, 0, 0});
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    check_common(msg, p);
    CHECK(contains(msg, "truncated"));
    CHECK(contains(msg, "header"));
  }
  SECTION("truncated gzip stream") {
    const std::string full = dir.file("full.gz");
    write_gz(full, idx_images_bytes(2051, 20, 28, 28, 20 * 28 * 28));
    std::vector<uint8_t> bytes = ember::io::read_file(full);
    REQUIRE(bytes.size() > 40);
    bytes.resize(bytes.size() / 2);
    const std::string p = dir.file("cut.gz");
    write_plain(p, bytes);
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    check_common(msg, p);
    CHECK((contains(msg, "truncated") || contains(msg, "corrupt")));
  }
  SECTION("corrupt gzip data: bad CRC-32, bad block type") {
    std::vector<uint8_t> gz = gzip_stored(idx_labels_bytes(2049, 5, 5));
    gz[gz.size() - 8] ^= 0x10;  // the CRC-32 in the trailer
    const std::string p = dir.file("badcrc.gz");
    write_plain(p, gz);
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_labels(p); });
    check_common(msg, p);
    CHECK(contains(msg, "corrupt or truncated gzip data"));
    CHECK(contains(msg, "CRC-32 mismatch"));
    gz = gzip_stored(idx_labels_bytes(2049, 5, 5));
    gz[10] = 0x07;  // BFINAL 1, BTYPE 3
    const std::string q = dir.file("badblock");  // detected by content, not by name
    write_plain(q, gz);
    msg = error_of<DataError>([&] { ember::data::read_idx_labels(q); });
    check_common(msg, q);
    CHECK(contains(msg, "invalid block type"));
  }
  SECTION("trailing bytes") {
    const std::string p = dir.file("trail.gz");
    write_gz(p, idx_images_bytes(2051, 2, 3, 3, 18 + 5));
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    check_common(msg, p);
    CHECK(contains(msg, "trailing"));
    CHECK(contains(msg, "5 bytes"));
    const std::string q = dir.file("trail_labels.gz");
    write_gz(q, idx_labels_bytes(2049, 2, 3));
    msg = error_of<DataError>([&] { ember::data::read_idx_labels(q); });
    check_common(msg, q);
    CHECK(contains(msg, "trailing"));
  }
  SECTION("implausible sizes") {
    const std::string p = dir.file("zero_rows.gz");
    write_gz(p, idx_images_bytes(2051, 1, 0, 5, 0));
    std::string msg = error_of<DataError>([&] { ember::data::read_idx_images(p); });
    check_common(msg, p);
    CHECK(contains(msg, "image size"));
    const std::string q = dir.file("huge.gz");
    write_gz(q, idx_images_bytes(2051, 0xFFFFFFFFu, 28, 28, 10));
    msg = error_of<DataError>([&] { ember::data::read_idx_images(q); });
    check_common(msg, q);
    CHECK(contains(msg, "count"));
  }
  SECTION("DataError is an ember::Error and a std::runtime_error") {
    CHECK_THROWS_AS(ember::data::read_idx_labels(dir.file("missing")), ember::Error);
    CHECK_THROWS_AS(ember::data::read_idx_labels(dir.file("missing")), std::runtime_error);
  }
}

TEST_CASE("load_fashion_mnist reads the four standard files and checks counts", "[data][idx]") {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images_bytes(2051, 6, 4, 4, 96));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels_bytes(2049, 6, 6));
  // The uncompressed name is accepted too.
  write_plain(dir.file("t10k-images-idx3-ubyte"), idx_images_bytes(2051, 2, 4, 4, 32));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels_bytes(2049, 2, 2));

  ember::data::FashionMnist d = ember::data::load_fashion_mnist(dir.path);
  CHECK(d.train_images.count == 6);
  CHECK(d.train_labels.count == 6);
  CHECK(d.test_images.count == 2);
  CHECK(d.test_labels.count == 2);
  CHECK(d.test_images.rows == 4);

  SECTION("count mismatch") {
    write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels_bytes(2049, 3, 3));
    std::string msg =
        error_of<ember::data::DataError>([&] { ember::data::load_fashion_mnist(dir.path); });
    INFO(msg);
    CHECK(contains(msg, "t10k-images-idx3-ubyte"));
    CHECK(contains(msg, "t10k-labels-idx1-ubyte.gz"));
    CHECK(contains(msg, "2 images"));
    CHECK(contains(msg, "3 labels"));
  }
  SECTION("missing file names the standard name") {
    std::remove(dir.file("train-labels-idx1-ubyte.gz").c_str());
    std::string msg =
        error_of<ember::data::DataError>([&] { ember::data::load_fashion_mnist(dir.path); });
    INFO(msg);
    CHECK(contains(msg, dir.file("train-labels-idx1-ubyte.gz")));
    CHECK(contains(msg, "apt-get install dataset-fashion-mnist"));
  }
  SECTION("missing directory") {
    const std::string missing = dir.file("no_such_dir");
    std::string msg =
        error_of<ember::data::DataError>([&] { ember::data::load_fashion_mnist(missing); });
    INFO(msg);
    CHECK(contains(msg, missing));
    CHECK(contains(msg, "EMBER_DATA"));
  }
}

TEST_CASE("default_data_dir: flag, then $EMBER_DATA, then the Debian path", "[data]") {
  const char* old = std::getenv("EMBER_DATA");
  std::string saved = old ? old : "";
  ::unsetenv("EMBER_DATA");
  CHECK(ember::data::default_data_dir("") == "/usr/share/datasets/fashion-mnist");
  CHECK(ember::data::default_data_dir("/x/y") == "/x/y");
  ::setenv("EMBER_DATA", "/from/env", 1);
  CHECK(ember::data::default_data_dir("") == "/from/env");
  CHECK(ember::data::default_data_dir("/x/y") == "/x/y");
  if (old) ::setenv("EMBER_DATA", saved.c_str(), 1);
  else ::unsetenv("EMBER_DATA");
}

// Reference values: PyTorch 1.13.0 (CPU),
//   F.interpolate(x, size=..., mode="bilinear", antialias=True, align_corners=False)
// printed with "%.8e". The float32 input x is 1x1x6x6 with
//   x[r][c] = (r*6 + c)*0.25 + (r%2)*0.5 - (c%3)*0.3
static std::vector<float> resize_input_6x6() {
  std::vector<float> x(36);
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 6; ++c)
      x[size_t(r * 6 + c)] = float((r * 6 + c) * 0.25 + (r % 2) * 0.5 - (c % 3) * 0.3);
  return x;
}

static void check_close(const std::vector<float>& got, const std::vector<float>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("index " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::fabs(double(got[i]) - double(want[i])) <= tol);
  }
}

TEST_CASE("resize_bilinear_antialias matches PyTorch antialias=True", "[data][transforms]") {
  const std::vector<float> x = resize_input_6x6();
  SECTION("6x6 -> 4x4 (downscale)") {
    const std::vector<float> want = {
        7.31250048e-01f, 7.61111200e-01f, 1.38888896e+00f, 1.41875005e+00f,
        2.87013912e+00f, 2.90000033e+00f, 3.52777767e+00f, 3.55763936e+00f,
        5.09236145e+00f, 5.12222195e+00f, 5.74999905e+00f, 5.77986097e+00f,
        7.23125029e+00f, 7.26111126e+00f, 7.88888836e+00f, 7.91875029e+00f};
    check_close(ember::data::resize_bilinear_antialias(x.data(), 1, 6, 6, 4, 4), want, 1e-5);
  }
  SECTION("6x6 -> 3x5 (different factors per axis)") {
    const std::vector<float> want = {
        1.27499998e+00f, 1.21785712e+00f, 1.61071432e+00f, 2.00357151e+00f, 1.94642866e+00f,
        3.98928547e+00f, 3.93214273e+00f, 4.32499981e+00f, 4.71785688e+00f, 4.66071415e+00f,
        6.70357132e+00f, 6.64642811e+00f, 7.03928566e+00f, 7.43214273e+00f, 7.37499952e+00f};
    check_close(ember::data::resize_bilinear_antialias(x.data(), 1, 6, 6, 3, 5), want, 1e-5);
  }
  SECTION("6x6 -> 9x4 (upscale rows, downscale columns)") {
    const std::vector<float> want = {
        -1.87500026e-02f, 1.11110974e-02f, 6.38888896e-01f, 6.68749988e-01f,
        9.81250048e-01f,  1.01111114e+00f, 1.63888884e+00f, 1.66875005e+00f,
        2.14791679e+00f,  2.17777801e+00f, 2.80555558e+00f, 2.83541703e+00f,
        2.81458354e+00f,  2.84444475e+00f, 3.47222209e+00f, 3.50208378e+00f,
        3.98125029e+00f,  4.01111126e+00f, 4.63888836e+00f, 4.66875029e+00f,
        5.14791679e+00f,  5.17777824e+00f, 5.80555534e+00f, 5.83541679e+00f,
        5.81458378e+00f,  5.84444475e+00f, 6.47222185e+00f, 6.50208378e+00f,
        6.98125029e+00f,  7.01111126e+00f, 7.63888836e+00f, 7.66874981e+00f,
        7.98125029e+00f,  8.01111126e+00f, 8.63888836e+00f, 8.66874981e+00f};
    check_close(ember::data::resize_bilinear_antialias(x.data(), 1, 6, 6, 9, 4), want, 1e-5);
  }
  SECTION("6x6 -> 2x2 and 1x1") {
    check_close(ember::data::resize_bilinear_antialias(x.data(), 1, 6, 6, 2, 2),
                {2.17500019e+00f, 2.72500014e+00f, 5.92500019e+00f, 6.47500038e+00f}, 1e-5);
    check_close(ember::data::resize_bilinear_antialias(x.data(), 1, 6, 6, 1, 1),
                {4.32499981e+00f}, 1e-5);
  }
  SECTION("planes are independent; identity size is a copy") {
    std::vector<float> two(x);
    for (float v : x) two.push_back(-2.0f * v);
    std::vector<float> y = ember::data::resize_bilinear_antialias(two.data(), 2, 6, 6, 4, 4);
    std::vector<float> y0 = ember::data::resize_bilinear_antialias(x.data(), 1, 6, 6, 4, 4);
    REQUIRE(y.size() == 32u);
    for (size_t i = 0; i < 16; ++i) {
      CHECK(y[i] == y0[i]);
      CHECK(std::fabs(y[16 + i] + 2.0f * y0[i]) <= 1e-5);
    }
    check_close(ember::data::resize_bilinear_antialias(x.data(), 1, 6, 6, 6, 6), x, 1e-6);
  }
  SECTION("constant input stays constant") {
    std::vector<float> c(28 * 28, 0.75f);
    std::vector<float> y = ember::data::resize_bilinear_antialias(c.data(), 1, 28, 28, 16, 16);
    for (float v : y) CHECK(std::fabs(v - 0.75f) <= 1e-6);
  }
  SECTION("bad sizes throw") {
    CHECK_THROWS_AS(ember::data::resize_bilinear_antialias(x.data(), 1, 6, 6, 0, 4),
                    std::invalid_argument);
    CHECK_THROWS_AS(ember::data::resize_bilinear_antialias(x, 2, 6, 6, 3, 3), std::invalid_argument);
  }
}

TEST_CASE("hflip and uint8 -> float scaling", "[data][transforms]") {
  std::vector<float> p = {1, 2, 3, 4, 5, 6};  // 2x3
  ember::data::hflip(p.data(), 2, 3);
  CHECK(p == std::vector<float>{3, 2, 1, 6, 5, 4});
  std::vector<float> q = {1, 2, 3, 4, 5, 6, 7, 8};  // two 2x2 planes
  ember::data::hflip(q.data(), int64_t(2), 2, 2);
  CHECK(q == std::vector<float>{2, 1, 4, 3, 6, 5, 8, 7});

  const uint8_t bytes[3] = {0, 51, 255};
  std::vector<float> u = ember::data::to_unit_float(bytes, 3);
  CHECK(u[0] == 0.0f);
  CHECK(std::fabs(u[1] - 0.2f) <= 1e-7);
  CHECK(u[2] == 1.0f);
  std::vector<float> s = ember::data::to_signed_unit_float(bytes, 3);
  CHECK(s[0] == -1.0f);
  CHECK(std::fabs(s[1] + 0.6f) <= 1e-6);
  CHECK(s[2] == 1.0f);
  ember::data::unit_to_signed(u.data(), u.size());
  for (size_t i = 0; i < 3; ++i) CHECK(std::fabs(u[i] - s[i]) <= 1e-6);
  ember::data::signed_to_unit(u.data(), u.size());
  CHECK(std::fabs(u[1] - 0.2f) <= 1e-6);
}

TEST_CASE("atomic file write replaces the target and leaves no temp files", "[io]") {
  TempDir dir;
  const std::string p = dir.file("out.bin");
  ember::io::write_file_atomic(p, std::string("first version, longer"));
  CHECK(ember::io::read_file(p) == std::vector<uint8_t>{'f', 'i', 'r', 's', 't', ' ', 'v', 'e', 'r', 's',
                                                         'i', 'o', 'n', ',', ' ', 'l', 'o', 'n', 'g', 'e', 'r'});
  const std::vector<uint8_t> second = {1, 2, 3};
  ember::io::write_file_atomic(p, second);
  CHECK(ember::io::read_file(p) == second);
  ember::io::write_file_atomic(p, nullptr, 0);
  CHECK(ember::io::read_file(p).empty());
  std::vector<std::string> names = dir.list();
  REQUIRE(names.size() == 1u);
  CHECK(names[0] == "out.bin");

  SECTION("failure names the path and strerror, no temp file left") {
    const std::string bad = dir.file("no_such_dir/out.bin");
    std::string msg = error_of<ember::Error>([&] { ember::io::write_file_atomic(bad, second); });
    INFO(msg);
    CHECK(contains(msg, bad));
    CHECK(contains(msg, "No such file or directory"));
    // Rename over a directory fails after the temp file was written: it must be cleaned up.
    const std::string sub = dir.file("a_dir");
    REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
    ::mkdir((sub + "/x").c_str(), 0755);
    msg = error_of<std::runtime_error>([&] { ember::io::write_file_atomic(sub, second); });
    INFO(msg);
    CHECK(contains(msg, sub));
    for (const std::string& n : dir.list()) CHECK(!contains(n, ".tmp."));
    ::rmdir((sub + "/x").c_str());
    ::rmdir(sub.c_str());
  }
  SECTION("read_file errors") {
    const std::string missing = dir.file("missing.bin");
    std::string msg = error_of<ember::Error>([&] { ember::io::read_file(missing); });
    CHECK(contains(msg, missing));
    CHECK(contains(msg, "No such file or directory"));
    msg = error_of<std::runtime_error>([&] { ember::io::read_file(dir.path); });
    CHECK(contains(msg, dir.path));
  }
}

namespace {

// Builds a PNG whose rows use filter types 0..4 in turn (a real encoder might), to check the
// decoder's unfiltering independently of our own (filter 0 only) encoder. `header_h` (when > 0)
// is the height written to IHDR; `zlib_edit` may alter the zlib stream before it is stored.
std::vector<uint8_t> png_with_filters(const std::vector<uint8_t>& px, int w, int h, int header_h = 0,
                                      void (*zlib_edit)(std::vector<uint8_t>&) = nullptr) {
  std::vector<uint8_t> raw;
  auto at = [&](int x, int y) -> int { return (x < 0 || y < 0) ? 0 : px[size_t(y * w + x)]; };
  for (int y = 0; y < h; ++y) {
    int f = y % 5;
    raw.push_back(uint8_t(f));
    for (int x = 0; x < w; ++x) {
      int a = at(x - 1, y), b = at(x, y - 1), c = at(x - 1, y - 1), v = at(x, y), pred = 0;
      if (f == 1) pred = a;
      if (f == 2) pred = b;
      if (f == 3) pred = (a + b) / 2;
      if (f == 4) {
        int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
        pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
      }
      raw.push_back(uint8_t((v - pred) & 0xFF));
    }
  }
  // A zlib stream (RFC 1950) of stored blocks, built here rather than by the encoder under test.
  std::vector<uint8_t> z = {0x78, 0x01};
  const std::vector<uint8_t> body = stored_deflate(raw);
  z.insert(z.end(), body.begin(), body.end());
  be32(z, ref_adler32(raw));
  if (zlib_edit != nullptr) zlib_edit(z);
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  be32(ihdr, uint32_t(w));
  be32(ihdr, uint32_t(header_h > 0 ? header_h : h));
  for (uint8_t b : {8, 0, 0, 0, 0}) ihdr.push_back(b);
  ember::io::detail::put_png_chunk(out, "IHDR", ihdr.data(), ihdr.size());
  const uint8_t text[] = {'C', 'o', 'm', 'm', 'e', 'n', 't', 0, 'h', 'i'};
  ember::io::detail::put_png_chunk(out, "tEXt", text, sizeof(text));
  // Split the data over two IDAT chunks.
  size_t half = z.size() / 2;
  ember::io::detail::put_png_chunk(out, "IDAT", z.data(), half);
  ember::io::detail::put_png_chunk(out, "IDAT", z.data() + half, z.size() - half);
  ember::io::detail::put_png_chunk(out, "IEND", nullptr, 0);
  return out;
}

}  // namespace

TEST_CASE("PNG write/read round trip", "[io][png]") {
  TempDir dir;
  const int w = 13, h = 7;
  std::vector<uint8_t> px(size_t(w * h));
  for (int i = 0; i < w * h; ++i) px[size_t(i)] = uint8_t((i * 37 + i / w * 11) & 0xFF);
  const std::string p = dir.file("img.png");
  ember::io::write_png_gray(p, px.data(), w, h);

  std::vector<uint8_t> bytes = ember::io::read_file(p);
  REQUIRE(bytes.size() > 8 + 25 + 12 + 12);
  const uint8_t sig[8] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A};
  CHECK(std::memcmp(bytes.data(), sig, 8) == 0);
  CHECK(std::memcmp(bytes.data() + 12, "IHDR", 4) == 0);
  CHECK(std::memcmp(bytes.data() + bytes.size() - 8, "IEND", 4) == 0);
  for (const std::string& n : dir.list()) CHECK(!contains(n, ".tmp."));

  int rw = 0, rh = 0;
  std::vector<uint8_t> back = ember::io::read_png_gray(p, &rw, &rh);
  CHECK(rw == w);
  CHECK(rh == h);
  CHECK(back == px);

  SECTION("PngError is an ember::Error; bad writer arguments are std::invalid_argument") {
    CHECK_THROWS_AS(ember::io::read_png_gray(dir.file("none.png"), &rw, &rh), ember::Error);
    const uint8_t junk[3] = {1, 2, 3};
    CHECK_THROWS_AS(ember::io::decode_png_gray(junk, 3, &rw, &rh), ember::io::PngError);
    CHECK_THROWS_AS(ember::io::encode_png_gray(px.data(), 0, h), std::invalid_argument);
    CHECK_THROWS_AS(ember::io::encode_png_gray(nullptr, w, h), std::invalid_argument);
    ember::io::GrayImage odd{2, 2, {1, 2, 3}};
    CHECK_THROWS_AS(ember::io::write_png_gray(dir.file("odd.png"), odd), std::invalid_argument);
    // A write that fails (no such directory) is an ember::Error naming the file.
    const std::string nowhere = dir.file("no_such_dir/img.png");
    std::string msg = error_of<ember::Error>([&] { ember::io::write_png_gray(nowhere, px.data(), w, h); });
    CHECK(contains(msg, nowhere));
  }
  SECTION("decoder handles all filter types, ancillary chunks and split IDAT") {
    std::vector<uint8_t> f = png_with_filters(px, w, h);
    int fw = 0, fh = 0;
    CHECK(ember::io::decode_png_gray(f.data(), f.size(), &fw, &fh) == px);
    CHECK(fw == w);
    CHECK(fh == h);
  }
  SECTION("corrupt data gives clear errors") {
    const std::string q = dir.file("bad.png");
    std::vector<uint8_t> bad = bytes;
    bad[bad.size() - 20] ^= 0x55;  // inside IDAT: CRC mismatch
    write_plain(q, bad);
    std::string msg = error_of<ember::io::PngError>([&] { ember::io::read_png_gray(q, &rw, &rh); });
    CHECK(contains(msg, q));
    CHECK(contains(msg, "CRC"));

    write_plain(q, std::vector<uint8_t>(bytes.begin(), bytes.begin() + 40));
    msg = error_of<ember::io::PngError>([&] { ember::io::read_png_gray(q, &rw, &rh); });
    CHECK(contains(msg, "truncated"));

    write_plain(q, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
    msg = error_of<ember::io::PngError>([&] { ember::io::read_png_gray(q, &rw, &rh); });
    CHECK(contains(msg, "not a PNG"));

    // An RGB header: unsupported.
    std::vector<uint8_t> rgb = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    std::vector<uint8_t> ihdr;
    be32(ihdr, 2);
    be32(ihdr, 2);
    for (uint8_t b : {8, 2, 0, 0, 0}) ihdr.push_back(b);
    ember::io::detail::put_png_chunk(rgb, "IHDR", ihdr.data(), ihdr.size());
    ember::io::detail::put_png_chunk(rgb, "IEND", nullptr, 0);
    msg = error_of<ember::io::PngError>([&] { ember::io::decode_png_gray(rgb.data(), rgb.size(), &rw, &rh); });
    CHECK(contains(msg, "colour type 2"));

    // A file that cannot be read is an I/O error (ember::Error), not a PngError.
    msg = error_of<ember::Error>([&] { ember::io::read_png_gray(dir.file("none.png"), &rw, &rh); });
    CHECK(contains(msg, "none.png"));

    // Image data that does not match IHDR, or is not a valid zlib stream (chunk CRCs valid).
    std::vector<uint8_t> f = png_with_filters(px, w, h, h - 1);
    msg = error_of<ember::io::PngError>([&] { ember::io::decode_png_gray(f.data(), f.size(), &rw, &rh); });
    CHECK(contains(msg, "longer than"));
    f = png_with_filters(px, w, h, h + 1);
    msg = error_of<ember::io::PngError>([&] { ember::io::decode_png_gray(f.data(), f.size(), &rw, &rh); });
    CHECK(contains(msg, "truncated image data: expected"));
    f = png_with_filters(px, w, h, 0, [](std::vector<uint8_t>& z) { z.resize(z.size() - 30); });
    msg = error_of<ember::io::PngError>([&] { ember::io::decode_png_gray(f.data(), f.size(), &rw, &rh); });
    CHECK(contains(msg, "truncated image data"));
    f = png_with_filters(px, w, h, 0, [](std::vector<uint8_t>& z) { z[z.size() - 1] ^= 1; });
    msg = error_of<ember::io::PngError>([&] { ember::io::decode_png_gray(f.data(), f.size(), &rw, &rh); });
    CHECK(contains(msg, "corrupt image data"));
    CHECK(contains(msg, "Adler-32"));
  }
}

TEST_CASE("make_grid tiles, scales and maps images", "[io][png]") {
  // Three 2x2 images in [-1, 1], 2 columns, 2x scale, 1 pixel of padding.
  const float a[4] = {-1.0f, 1.0f, 0.0f, 2.0f};  // 2.0 clamps to 255
  const float b[4] = {1.0f, 1.0f, 1.0f, 1.0f};
  const float c[4] = {-1.0f, -1.0f, -1.0f, -5.0f};
  ember::io::GrayImage g = ember::io::make_grid({a, b, c}, 2, 2, 2, 2, 1, -1.0f, 1.0f);
  CHECK(g.width == 2 * 4 + 3);
  CHECK(g.height == 2 * 4 + 3);
  REQUIRE(g.pixels.size() == size_t(g.width * g.height));
  auto px = [&](int x, int y) { return int(g.pixels[size_t(y * g.width + x)]); };
  CHECK(px(0, 0) == 128);  // border padding
  CHECK(px(1, 1) == 0);    // a[0] = -1, scaled 2x
  CHECK(px(2, 2) == 0);
  CHECK(px(3, 1) == 255);  // a[1] = 1
  CHECK(px(1, 3) == 128);  // a[2] = 0 -> round(127.5) = 128
  CHECK(px(4, 4) == 255);  // a[3] = 2, clamped
  CHECK(px(5, 1) == 128);  // padding between tiles
  CHECK(px(6, 1) == 255);  // b
  CHECK(px(1, 6) == 0);    // c (second row)
  CHECK(px(4, 9) == 0);    // c[3] = -5, clamped
  CHECK(px(7, 7) == 128);  // empty cell
  CHECK(px(10, 10) == 128);

  // Single column, no padding, one image.
  ember::io::GrayImage one = ember::io::make_grid({b}, 2, 2, 4, 3, 0, 0.0f, 1.0f);
  CHECK(one.width == 6);
  CHECK(one.height == 6);
  for (uint8_t v : one.pixels) CHECK(v == 255);

  TempDir dir;
  ember::io::write_png_gray(dir.file("grid.png"), g);
  int w = 0, h = 0;
  CHECK(ember::io::read_png_gray(dir.file("grid.png"), &w, &h) == g.pixels);

  CHECK_THROWS_AS(ember::io::make_grid({}, 2, 2, 2, 1, 0, 0.0f, 1.0f), std::invalid_argument);
  CHECK_THROWS_AS(ember::io::make_grid({a}, 2, 2, 2, 1, 0, 1.0f, 1.0f), std::invalid_argument);
}
