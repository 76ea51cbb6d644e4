// @file tests/unit/test_deflate_zlib.cpp
// @brief Cross-check of ember's DEFLATE codec against zlib, the reference implementation.
//
// Built only when CMake finds zlib (tests/CMakeLists.txt: find_package(ZLIB), optional; CI
// installs it and checks these [zlib] tests exist). The library itself never uses zlib: it is a
// test-only oracle here.
//   - zlib compresses data of many sizes and kinds at levels 0, 1, 6, 9 and with several
//     strategies and window sizes, as raw deflate, zlib and gzip (with and without optional
//     header fields); ember must decode every stream to the input;
//   - zlib must decode ember's zlib_compress / gzip_compress output to the input;
//   - ember's crc32/adler32 must equal zlib's on random data and split points.
#include <zlib.h>

#include <ember/io/deflate.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../support/catch.hpp"

namespace {

using Bytes = std::vector<uint8_t>;

Bytes sample(size_t n, int kind, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes d(n);
  for (size_t i = 0; i < n; ++i) {
    switch (kind) {
      case 0: d[i] = uint8_t(rng()); break;                                  // incompressible
      case 1: d[i] = 0; break;                                               // all zero
      case 2: d[i] = uint8_t("ACGT"[rng() % 4]); break;                      // 2 bits/byte
      case 3: d[i] = uint8_t((i % 28) < 4 || (i / 28) % 28 < 4 ? 0 : (i * 13) % 255); break;
      case 4: d[i] = uint8_t(rng() % 16 == 0 ? rng() : 'a' + (i % 26)); break;  // text with noise
      default: d[i] = uint8_t(i < n / 2 ? rng() : i % 3); break;            // two halves
    }
  }
  return d;
}

// zlib deflate with the given wrapper: windowBits -w (raw), w (zlib) or w + 16 (gzip).
Bytes zlib_deflate(const Bytes& in, int level, int window_bits, int strategy,
                   gz_header* header = nullptr) {
  z_stream s{};
  REQUIRE(deflateInit2(&s, level, Z_DEFLATED, window_bits, 8, strategy) == Z_OK);
  if (header != nullptr) REQUIRE(deflateSetHeader(&s, header) == Z_OK);
  Bytes out(deflateBound(&s, uLong(in.size())) + 64);
  s.next_in = const_cast<Bytef*>(in.data());
  s.avail_in = uInt(in.size());
  s.next_out = out.data();
  s.avail_out = uInt(out.size());
  const int rc = deflate(&s, Z_FINISH);
  out.resize(out.size() - s.avail_out);
  deflateEnd(&s);
  REQUIRE(rc == Z_STREAM_END);
  return out;
}

// zlib inflate (window_bits 15: zlib, 31: gzip); requires the whole stream and nothing after.
Bytes zlib_inflate(const Bytes& in, size_t expected, int window_bits) {
  z_stream s{};
  REQUIRE(inflateInit2(&s, window_bits) == Z_OK);
  Bytes out(expected + 1);
  s.next_in = const_cast<Bytef*>(in.data());
  s.avail_in = uInt(in.size());
  s.next_out = out.data();
  s.avail_out = uInt(out.size());
  const int rc = inflate(&s, Z_FINISH);
  CHECK(rc == Z_STREAM_END);
  CHECK(s.avail_in == 0u);
  out.resize(out.size() - s.avail_out);
  inflateEnd(&s);
  return out;
}

}  // namespace

TEST_CASE("ember decodes what zlib encodes", "[io][deflate][zlib]") {
  const size_t sizes[] = {0, 1, 2, 3, 4, 7, 100, 258, 259, 1000, 32767, 32768, 32769,
                          65535, 65536, 70000, 300000};
  const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
  int streams = 0;
  for (size_t n : sizes) {
    for (int kind = 0; kind < 6; ++kind) {
      const Bytes d = sample(n, kind, uint32_t(n * 7 + size_t(kind)));
      for (int level : {0, 1, 6, 9}) {
        INFO("n = " << n << ", kind " << kind << ", level " << level);
        const Bytes raw = zlib_deflate(d, level, -15, Z_DEFAULT_STRATEGY);
        size_t used = 0;
        CHECK(ember::io::inflate_raw(raw.data(), raw.size(), ember::io::kNoOutputLimit, &used) == d);
        CHECK(used == raw.size());
        const Bytes z = zlib_deflate(d, level, 15, Z_DEFAULT_STRATEGY);
        CHECK(ember::io::zlib_decompress(z.data(), z.size()) == d);
        const Bytes g = zlib_deflate(d, level, 15 + 16, Z_DEFAULT_STRATEGY);
        CHECK(ember::io::gunzip(g.data(), g.size()) == d);
        streams += 3;
      }
      if (n > 100000) continue;
      for (int strategy : strategies) {
        for (int wbits : {9, 12, 15}) {
          INFO("n = " << n << ", kind " << kind << ", strategy " << strategy << ", wbits " << wbits);
          const Bytes z = zlib_deflate(d, 9, wbits, strategy);
          CHECK(ember::io::zlib_decompress(z.data(), z.size()) == d);
          ++streams;
        }
      }
    }
  }
  CHECK(streams > 1000);
}

TEST_CASE("ember reads gzip headers with every optional field as zlib writes them", "[io][deflate][zlib]") {
  const Bytes d = sample(50000, 4, 3);
  std::string name = "fashion.idx", comment = "written by zlib " + std::string(zlibVersion());
  Bytes extra = {'E', 'm', 3, 0, 1, 2, 3};
  for (int hcrc : {0, 1}) {
    gz_header h{};
    h.text = 1;
    h.time = 1700000000;
    h.os = 3;
    h.extra = extra.data();
    h.extra_len = uInt(extra.size());
    h.name = reinterpret_cast<Bytef*>(&name[0]);
    h.comment = reinterpret_cast<Bytef*>(&comment[0]);
    h.hcrc = hcrc;
    Bytes g = zlib_deflate(d, 6, 31, Z_DEFAULT_STRATEGY, &h);
    CHECK(g[3] == (hcrc ? 0x1F : 0x1D));
    CHECK(ember::io::gunzip(g.data(), g.size()) == d);
    // Two members.
    const Bytes second = zlib_deflate(Bytes(d.begin(), d.begin() + 999), 1, 31, Z_DEFAULT_STRATEGY);
    g.insert(g.end(), second.begin(), second.end());
    Bytes both = d;
    both.insert(both.end(), d.begin(), d.begin() + 999);
    CHECK(ember::io::gunzip(g.data(), g.size()) == both);
  }
}

TEST_CASE("zlib decodes what ember encodes", "[io][deflate][zlib]") {
  for (size_t n : {size_t(0), size_t(1), size_t(5), size_t(1000), size_t(65535), size_t(65536),
                   size_t(131073), size_t(400000)}) {
    for (int kind = 0; kind < 6; ++kind) {
      INFO("n = " << n << ", kind " << kind);
      const Bytes d = sample(n, kind, uint32_t(n + size_t(kind) * 1000));
      const Bytes z = ember::io::zlib_compress(d.data(), d.size());
      CHECK(zlib_inflate(z, n, 15) == d);
      uLongf len = uLongf(n + 1);
      Bytes out(n + 1);
      CHECK(uncompress(out.data(), &len, z.data(), uLong(z.size())) == Z_OK);
      CHECK(len == uLongf(n));
      const Bytes g = ember::io::gzip_compress(d.data(), d.size());
      CHECK(zlib_inflate(g, n, 31) == d);
    }
  }
}

TEST_CASE("crc32 and adler32 equal zlib's", "[io][deflate][zlib]") {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    const Bytes d = sample(rng() % 20000, trial % 6, rng());
    const size_t cut = d.empty() ? 0 : rng() % d.size();
    const uint32_t zc = uint32_t(::crc32(::crc32(0L, Z_NULL, 0), d.data(), uInt(d.size())));
    const uint32_t za = uint32_t(::adler32(::adler32(0L, Z_NULL, 0), d.data(), uInt(d.size())));
    CHECK(ember::io::crc32(d.data(), d.size()) == zc);
    CHECK(ember::io::adler32(d.data(), d.size()) == za);
    CHECK(ember::io::crc32(d.data() + cut, d.size() - cut, ember::io::crc32(d.data(), cut)) == zc);
    CHECK(ember::io::adler32(d.data() + cut, d.size() - cut, ember::io::adler32(d.data(), cut)) == za);
  }
}
