// @file tests/unit/test_gzip.cpp
// @brief ember's gzip/zlib readers and writers (io/gzip.hpp, zlib behind ember's checks) and the
//        core CRC-32 of checkpoints (io/crc32.hpp).
//
// What is ember's own and tested here: the CRC-32 (known answers, and equal to zlib's), the rules
// around zlib's inflate (several gzip members, zero padding, trailing garbage, the max_output
// bound, the error kinds and clear messages for truncated and corrupt data) and that the writers
// produce streams other decoders read. Inputs come from independent encoders: fixtures written by
// Python's zlib/gzip modules, gzip members with hand-built headers and stored or fixed-Huffman
// blocks written here from RFC 1951/1952, and zlib's own deflate with every option.
#include <zlib.h>

#include <ember/io/crc32.hpp>
#include <ember/io/gzip.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include "../support/test_util.hpp"

#ifndef EMBER_FIXTURE_DIR
#define EMBER_FIXTURE_DIR "tests/fixtures/data"
#endif

namespace {

using Bytes = std::vector<uint8_t>;
using ember::io::DeflateError;
using Kind = ember::io::DeflateError::Kind;

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes read_fixture(const std::string& name) {
  const std::string path = std::string(EMBER_FIXTURE_DIR) + "/" + name;
  std::ifstream f(path, std::ios::binary);
  INFO(path);
  REQUIRE(f.good());
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The plaintext of the Python fixtures: keep in sync with tests/fixtures/make_gzip_fixtures.py.
Bytes fixture_text() {
  static const char* const words[10] = {"trouser", "pullover", "dress", "coat",    "sandal",
                                        "shirt",   "sneaker",  "bag",   "ankle boot", "t-shirt"};
  std::string s;
  char line[128];
  for (long long i = 0; i < 3000; ++i) {
    std::snprintf(line, sizeof(line), "%05lld %s %s %lld\n", i, words[(i * 7) % 10],
                  words[(i * i + 3) % 10], (i * 2654435761LL) % 1000003LL);
    s += line;
  }
  return bytes_of(s);
}

// An LSB-first bit writer for hand-made deflate data, written from RFC 1951. put_code sends a
// Huffman code most significant bit first.
struct Bits {
  Bytes out;
  uint32_t buf = 0;
  int cnt = 0;
  void put(uint32_t v, int n) {
    for (int i = 0; i < n; ++i) {
      buf |= ((v >> i) & 1u) << cnt;
      if (++cnt == 8) {
        out.push_back(uint8_t(buf));
        buf = 0;
        cnt = 0;
      }
    }
  }
  void put_code(uint32_t code, int n) {
    for (int i = n - 1; i >= 0; --i) put((code >> i) & 1u, 1);
  }
  // Fixed literal/length code of symbol s (RFC 1951 3.2.6).
  void fixed_lit(int s) {
    if (s < 144) put_code(0x30u + uint32_t(s), 8);
    else if (s < 256) put_code(0x190u + uint32_t(s - 144), 9);
    else if (s < 280) put_code(uint32_t(s - 256), 7);
    else put_code(0xC0u + uint32_t(s - 280), 8);
  }
  Bytes finish() {
    if (cnt > 0) put(0, 8 - cnt);
    return out;
  }
};

using ember_test::ref_crc32;

void put_le32(Bytes& v, uint32_t x) {
  for (int s = 0; s < 32; s += 8) v.push_back(uint8_t(x >> s));
}

// One gzip member (RFC 1952) built by hand: `header` (10+ bytes), raw deflate `body`, trailer.
// (std::copy rather than vector::insert: GCC 12's -Warray-bounds misfires on insert at -O3.)
Bytes member(const Bytes& header, const Bytes& body, const Bytes& data) {
  Bytes m = header;
  std::copy(body.begin(), body.end(), std::back_inserter(m));
  put_le32(m, ref_crc32(data));
  put_le32(m, uint32_t(data.size()));
  return m;
}

// Raw deflate data of one final stored block (at most 65535 bytes).
Bytes stored_block(const Bytes& data) {
  const size_t n = data.size();
  Bytes out = {1, uint8_t(n), uint8_t(n >> 8), uint8_t(~n), uint8_t(~n >> 8)};
  std::copy(data.begin(), data.end(), std::back_inserter(out));
  return out;
}

const Bytes kPlainHeader = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255};

// zlib's deflate with the given wrapper: windowBits w (zlib) or w + 16 (gzip).
Bytes zlib_deflate(const Bytes& in, int level, int window_bits, int strategy) {
  z_stream s{};
  REQUIRE(deflateInit2(&s, level, Z_DEFLATED, window_bits, 8, strategy) == Z_OK);
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

// Runs fn, requires a DeflateError (which is an ember::Error), returns its kind and message.
template <class Fn>
std::pair<Kind, std::string> deflate_error_of(Fn fn) {
  try {
    fn();
  } catch (const DeflateError& e) {
    const ember::Error& base = e;  // one error family
    return {e.kind(), base.what()};
  }
  FAIL("expected a DeflateError");
  return {Kind::kCorrupt, ""};
}

using ember_test::contains;

Bytes unzlib(const Bytes& b) { return ember::io::zlib_decompress(b.data(), b.size()); }
Bytes gunzip(const Bytes& b) { return ember::io::gunzip(b.data(), b.size()); }

Bytes concat(const Bytes& a, const Bytes& b) {
  Bytes r;
  r.reserve(a.size() + b.size());
  std::copy(a.begin(), a.end(), std::back_inserter(r));
  std::copy(b.begin(), b.end(), std::back_inserter(r));
  return r;
}

Bytes make_data(size_t n, int kind, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes d(n);
  for (size_t i = 0; i < n; ++i) {
    switch (kind) {
      case 0: d[i] = uint8_t(rng()); break;                        // incompressible
      case 1: d[i] = 'z'; break;                                   // one byte repeated
      case 2: d[i] = uint8_t("abcabcabd"[rng() % 9]); break;      // small alphabet
      case 3: d[i] = uint8_t((i * i) >> 7); break;                 // smooth ramp
      case 4: d[i] = (i / 997) % 2 ? uint8_t(rng()) : uint8_t(i % 251); break;  // mixed
      default: d[i] = uint8_t(i % 7 == 0 ? rng() % 4 : 0); break;  // image-like, mostly zero
    }
  }
  return d;
}

}  // namespace

TEST_CASE("the core crc32 matches the standard check values and zlib's crc32", "[io][crc32]") {
  const Bytes digits = bytes_of("123456789");
  CHECK(ember::io::crc32(digits.data(), digits.size()) == 0xCBF43926u);
  CHECK(ember::io::crc32(nullptr, 0) == 0u);
  // Continuing from a previous value equals one pass over the whole.
  const uint32_t part = ember::io::crc32(digits.data(), 4);
  CHECK(ember::io::crc32(digits.data() + 4, 5, part) == 0xCBF43926u);
  // A long input; value from Python's zlib.crc32.
  Bytes ramp;
  for (int k = 0; k < 1000; ++k)
    for (int b = 0; b < 256; ++b) ramp.push_back(uint8_t(b));
  CHECK(ember::io::crc32(ramp.data(), ramp.size()) == 0xFC70AF1Au);

  std::mt19937 rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    const Bytes d = make_data(rng() % 20000, trial % 6, rng());
    const size_t cut = d.empty() ? 0 : rng() % d.size();
    const uint32_t zc = uint32_t(::crc32(::crc32(0L, Z_NULL, 0), d.data(), uInt(d.size())));
    CHECK(ember::io::crc32(d.data(), d.size()) == zc);
    CHECK(ref_crc32(d) == zc);
    CHECK(ember::io::crc32(d.data() + cut, d.size() - cut, ember::io::crc32(d.data(), cut)) == zc);
  }
}

TEST_CASE("gunzip and zlib_decompress read Python-made fixtures; bounds and truncation", "[io][gzip]") {
  const Bytes text = fixture_text();
  REQUIRE(text.size() == 80075u);
  const Bytes z = read_fixture("deflate_text.zz");
  CHECK(unzlib(z) == text);
  // Three members: every optional header field (FEXTRA, FNAME, FCOMMENT, FHCRC), a plain one,
  // and an empty one.
  const Bytes gz = read_fixture("deflate_text_members.gz");
  CHECK(gz[3] == 0x1F);
  CHECK(gunzip(gz) == text);

  SECTION("output limit") {
    CHECK(ember::io::gunzip(gz.data(), gz.size(), text.size()) == text);
    CHECK(ember::io::zlib_decompress(z.data(), z.size(), text.size()) == text);
    auto [kind, msg] = deflate_error_of([&] { ember::io::gunzip(gz.data(), gz.size(), text.size() - 1); });
    CHECK(kind == Kind::kOutputLimit);
    CHECK(contains(msg, "exceeds the limit"));
    kind = deflate_error_of([&] { ember::io::zlib_decompress(z.data(), z.size(), 1000); }).first;
    CHECK(kind == Kind::kOutputLimit);
    kind = deflate_error_of([&] { ember::io::zlib_decompress(z.data(), z.size(), 0); }).first;
    CHECK(kind == Kind::kOutputLimit);
  }
  SECTION("every truncation is an error of kind kTruncated") {
    // The last member is an empty one of 20 bytes: cutting it off whole leaves a valid file.
    const size_t last_member = gz.size() - 20;
    for (size_t n = 0; n < gz.size(); n += (n < 64 || gz.size() - n < 64) ? 1 : 97) {
      INFO("gzip cut to " << n << " bytes");
      if (n == last_member) {
        CHECK(ember::io::gunzip(gz.data(), n) == text);
        continue;
      }
      auto [kind, msg] = deflate_error_of([&] { ember::io::gunzip(gz.data(), n); });
      INFO(msg);
      CHECK(kind == Kind::kTruncated);
      CHECK(contains(msg, "truncated"));
    }
    for (size_t n = 0; n < z.size(); n += (n < 64 || z.size() - n < 64) ? 1 : 97) {
      INFO("zlib cut to " << n << " bytes");
      CHECK(deflate_error_of([&] { ember::io::zlib_decompress(z.data(), n); }).first ==
            Kind::kTruncated);
    }
  }
  SECTION("random bit flips never crash and never return wrong data") {
    std::mt19937 rng(7);
    int rejected = 0;
    for (int trial = 0; trial < 300; ++trial) {
      Bytes bad = trial % 2 ? gz : z;
      const size_t at = rng() % bad.size();
      bad[at] ^= uint8_t(1u << (rng() % 8));
      try {
        const Bytes out = trial % 2 ? gunzip(bad) : unzlib(bad);
        INFO("flip at byte " << at << " was accepted");
        CHECK(out == text);  // only header bytes nobody checks (MTIME, XFL, OS) may flip
      } catch (const DeflateError&) {
        ++rejected;
      }
    }
    CHECK(rejected > 250);
  }
}

TEST_CASE("gzip members built by hand: stored and fixed-Huffman blocks, several members", "[io][gzip]") {
  const Bytes hello = bytes_of("hello, hello, hello gzip");
  const Bytes a = member(kPlainHeader, stored_block(hello), hello);
  CHECK(gunzip(a) == hello);
  // A fixed-Huffman block: "abc" then a back-reference of length 6, distance 3.
  Bits f;
  f.put(1, 1);
  f.put(1, 2);
  for (char ch : {'a', 'b', 'c'}) f.fixed_lit(ch);
  f.fixed_lit(260);  // length 6
  f.put_code(2, 5);  // distance 3
  f.fixed_lit(256);
  const Bytes abc = bytes_of("abcabcabc");
  const Bytes b = member(kPlainHeader, f.finish(), abc);
  CHECK(gunzip(b) == abc);
  // Concatenated members decode to the concatenation; zero padding after them is ignored.
  Bytes two = concat(a, b);
  CHECK(gunzip(two) == concat(hello, abc));
  two.resize(two.size() + 7, 0x00);
  CHECK(gunzip(two) == concat(hello, abc));
  // An empty stored block member.
  CHECK(gunzip(member(kPlainHeader, stored_block({}), {})).empty());
}

TEST_CASE("ember's writers: zlib and gzip streams any decoder reads back", "[io][gzip]") {
  for (size_t n : {size_t(0), size_t(1), size_t(3), size_t(100), size_t(65536), size_t(200000)}) {
    for (int kind = 0; kind < 6; ++kind) {
      const Bytes d = make_data(n, kind, uint32_t(n * 31 + size_t(kind)));
      for (int level : {-1, 0, 1, 9}) {
        INFO("n = " << n << ", kind " << kind << ", level " << level);
        const Bytes z = ember::io::zlib_compress(d.data(), d.size(), level);
        CHECK(unzlib(z) == d);
        uLongf len = uLongf(n + 1);
        Bytes out(n + 1);
        CHECK(uncompress(out.data(), &len, z.data(), uLong(z.size())) == Z_OK);  // zlib itself
        CHECK(len == uLongf(n));
        out.resize(len);
        CHECK(out == d);
        const Bytes g = ember::io::gzip_compress(d.data(), d.size(), level);
        REQUIRE(g.size() >= 18);
        CHECK(g[0] == 0x1F);
        CHECK(g[1] == 0x8B);
        // The trailer: CRC-32 and length, as RFC 1952 computes them.
        const size_t t = g.size() - 8;
        CHECK((uint32_t(g[t]) | uint32_t(g[t + 1]) << 8 | uint32_t(g[t + 2]) << 16 |
               uint32_t(g[t + 3]) << 24) == ref_crc32(d));
        CHECK((uint32_t(g[t + 4]) | uint32_t(g[t + 5]) << 8 | uint32_t(g[t + 6]) << 16 |
               uint32_t(g[t + 7]) << 24) == uint32_t(n));
        CHECK(gunzip(g) == d);
        if (kind == 1 && n >= 65536 && level != 0) CHECK(g.size() * 100 < n);  // long runs
      }
    }
  }
  // zlib's deflate with every strategy and window size, as zlib and gzip streams.
  const Bytes d = make_data(70000, 4, 5);
  for (int strategy : {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED})
    for (int wbits : {9, 12, 15}) {
      INFO("strategy " << strategy << ", window bits " << wbits);
      CHECK(unzlib(zlib_deflate(d, 9, wbits, strategy)) == d);
      CHECK(gunzip(zlib_deflate(d, 9, wbits + 16, strategy)) == d);
    }
  CHECK_THROWS_AS(ember::io::gzip_compress(d.data(), d.size(), 10), std::invalid_argument);
  CHECK_THROWS_AS(ember::io::zlib_compress(d.data(), d.size(), -2), std::invalid_argument);
}

TEST_CASE("corrupt gzip and zlib input throws DeflateError saying what is wrong", "[io][gzip]") {
  const Bytes text = bytes_of("the quick brown fox jumps over the lazy dog; the quick brown fox");
  const Bytes g = member(kPlainHeader, stored_block(text), text);
  const Bytes z = ember::io::zlib_compress(text.data(), text.size());
  REQUIRE(gunzip(g) == text);
  auto corrupt = [](auto fn, const std::string& what) {
    auto [kind, msg] = deflate_error_of(fn);
    INFO(msg);
    CHECK(kind == Kind::kCorrupt);
    CHECK(contains(msg, what));
  };
  auto truncated = [](auto fn) {
    auto [kind, msg] = deflate_error_of(fn);
    INFO(msg);
    CHECK(kind == Kind::kTruncated);
    CHECK(contains(msg, "truncated"));
  };

  SECTION("gzip headers and trailers") {
    Bytes b = g;
    b[0] = 0x1E;
    corrupt([&] { gunzip(b); }, "not gzip data");
    b = g;
    b[2] = 7;
    corrupt([&] { gunzip(b); }, "compression method");
    b = g;
    b[3] = 0x20;
    corrupt([&] { gunzip(b); }, "flags");
    b = g;
    b[b.size() - 8] ^= 0x01;
    corrupt([&] { gunzip(b); }, "CRC-32 mismatch");
    b = g;
    b[b.size() - 4] ^= 0x01;
    corrupt([&] { gunzip(b); }, "ISIZE mismatch");
    b = g;  // zero padding after the last member is ignored, as gzip and Python do
    b.resize(b.size() + 7, 0x00);
    CHECK(gunzip(b) == text);
    b.push_back(0x01);  // but not other bytes
    corrupt([&] { gunzip(b); }, "trailing garbage: 8 bytes after the gzip data");
    b = g;
    b.push_back(0x02);
    corrupt([&] { gunzip(b); }, "trailing garbage");
    b = g;
    b.push_back(0x1F);  // the first byte of a member that never comes
    truncated([&] { gunzip(b); });
    truncated([&] { gunzip(Bytes()); });
    truncated([&] { gunzip(Bytes{0x1F}); });
    // FNAME without a terminating zero; FEXTRA claiming more bytes than the file has.
    Bytes noname = {0x1F, 0x8B, 8, 0x08, 0, 0, 0, 0, 0, 255, 'n', 'a'};
    truncated([&] { gunzip(noname); });
    Bytes extra = {0x1F, 0x8B, 8, 0x04, 0, 0, 0, 0, 0, 255, 0xFF, 0xFF, 1, 2, 3};
    truncated([&] { gunzip(extra); });
    // FHCRC: the low 16 bits of the header's CRC-32; right is accepted, wrong is refused.
    Bytes h = {0x1F, 0x8B, 8, 0x02, 0, 0, 0, 0, 0, 255};
    const uint32_t hc = ref_crc32(h);
    h.push_back(uint8_t(hc));
    h.push_back(uint8_t(hc >> 8));
    Bytes good = member(h, stored_block(text), text);
    CHECK(gunzip(good) == text);
    good[10] ^= 0x40;
    corrupt([&] { gunzip(good); }, "header crc mismatch");
    // Block type 3 does not exist.
    corrupt([&] { gunzip(member(kPlainHeader, {0x07, 0x00}, {})); }, "invalid block type");
    // A stored block whose length and complement disagree.
    Bytes s = stored_block(text);
    s[3] ^= 0x01;
    corrupt([&] { gunzip(member(kPlainHeader, s, text)); }, "stored block lengths");
  }
  SECTION("a back-reference may not reach into the previous gzip member") {
    // Member 2's deflate data starts with a back-reference of distance 1.
    Bits d;
    d.put(1, 1);
    d.put(1, 2);
    d.fixed_lit(257);
    d.put_code(0, 5);
    d.fixed_lit(256);
    const Bytes two = concat(g, member(kPlainHeader, d.finish(), bytes_of("xxx")));
    auto [kind, msg] = deflate_error_of([&] { gunzip(two); });
    INFO(msg);
    CHECK(kind == Kind::kCorrupt);
    CHECK(contains(msg, "gzip member 2"));
    CHECK(contains(msg, "too far back"));
  }
  SECTION("zlib headers and trailers") {
    Bytes b = z;
    b[0] = 0x79;  // method 9
    b[1] = 0x18;  // with the check bits that make 0x7918 a multiple of 31
    corrupt([&] { unzlib(b); }, "compression method");
    b = z;
    b[1] ^= 0x01;
    corrupt([&] { unzlib(b); }, "header check");
    b = {0x78, 0xBB, 0, 0, 0, 1, 0x03, 0x00};  // FDICT set (check bits valid), a dictionary id
    corrupt([&] { unzlib(b); }, "dictionary");
    b = z;
    b.back() ^= 0x80;
    corrupt([&] { unzlib(b); }, "Adler-32 mismatch");
    b = z;
    b.push_back(0);
    corrupt([&] { unzlib(b); }, "trailing garbage: 1 bytes after the zlib stream");
    b.assign(z.begin(), z.end() - 2);
    truncated([&] { unzlib(b); });
    truncated([&] { unzlib(Bytes()); });
    // A gzip stream is not a zlib stream, nor the other way round.
    corrupt([&] { unzlib(g); }, "header check");
    corrupt([&] { gunzip(z); }, "not gzip data");
  }
}
