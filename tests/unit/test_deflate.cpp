// @file tests/unit/test_deflate.cpp
// @brief ember's own DEFLATE codec (io/deflate.hpp) without zlib: checksum check values, streams
//        built by hand from RFC 1951, fixtures written by Python's zlib/gzip modules, round trips
//        through our compressor, and corrupt input (every failure must be a DeflateError).
//
// test_deflate_zlib.cpp adds a cross-check against zlib itself where CMake finds it.
#include <ember/io/deflate.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "../support/catch.hpp"

#ifndef EMBER_FIXTURE_DIR
#define EMBER_FIXTURE_DIR "tests/fixtures/data"
#endif

namespace {

using Bytes = std::vector<uint8_t>;
using ember::io::DeflateError;

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

// An LSB-first bit writer for hand-made streams, written from RFC 1951 independently of the
// library's encoder. put_code sends a Huffman code most significant bit first.
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

template <class Fn>
std::string deflate_error_of(Fn fn) {
  try {
    fn();
  } catch (const DeflateError& e) {
    return e.what();
  }
  FAIL("expected a DeflateError");
  return "";
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

Bytes inflate(const Bytes& b) { return ember::io::inflate_raw(b.data(), b.size()); }
Bytes unzlib(const Bytes& b) { return ember::io::zlib_decompress(b.data(), b.size()); }
Bytes gunzip(const Bytes& b) { return ember::io::gunzip(b.data(), b.size()); }

// a followed by b (std::copy: GCC 12's -Warray-bounds misfires on vector::insert at -O3).
Bytes concat(const Bytes& a, const Bytes& b) {
  Bytes r;
  r.reserve(a.size() + b.size());
  std::copy(a.begin(), a.end(), std::back_inserter(r));
  std::copy(b.begin(), b.end(), std::back_inserter(r));
  return r;
}

void put_le32(Bytes& v, uint32_t x) {
  for (int s = 0; s < 32; s += 8) v.push_back(uint8_t(x >> s));
}

// Test data of several kinds.
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

TEST_CASE("crc32 and adler32 match their standard check values", "[io][deflate]") {
  const Bytes digits = bytes_of("123456789");
  CHECK(ember::io::crc32(digits.data(), digits.size()) == 0xCBF43926u);
  CHECK(ember::io::crc32(nullptr, 0) == 0u);
  // Continuing from a previous value equals one pass over the whole.
  const uint32_t part = ember::io::crc32(digits.data(), 4);
  CHECK(ember::io::crc32(digits.data() + 4, 5, part) == 0xCBF43926u);

  const Bytes wiki = bytes_of("Wikipedia");
  CHECK(ember::io::adler32(wiki.data(), wiki.size()) == 0x11E60398u);
  CHECK(ember::io::adler32(nullptr, 0) == 1u);
  // Long inputs (the modulo is taken in runs); values from Python's zlib.adler32/zlib.crc32.
  const Bytes ff(100000, 0xFF);
  CHECK(ember::io::adler32(ff.data(), ff.size()) == 0x149A302Cu);
  Bytes ramp;
  for (int k = 0; k < 1000; ++k)
    for (int b = 0; b < 256; ++b) ramp.push_back(uint8_t(b));
  CHECK(ember::io::crc32(ramp.data(), ramp.size()) == 0xFC70AF1Au);
  const uint32_t a = ember::io::adler32(ff.data(), 12345);
  CHECK(ember::io::adler32(ff.data() + 12345, ff.size() - 12345, a) == 0x149A302Cu);
}

TEST_CASE("inflate decodes hand-made stored and fixed-Huffman blocks", "[io][deflate]") {
  SECTION("one final stored block") {
    const Bytes s = {0x01, 0x05, 0x00, 0xFA, 0xFF, 'h', 'e', 'l', 'l', 'o'};
    size_t used = 0;
    CHECK(ember::io::inflate_raw(s.data(), s.size(), ember::io::kNoOutputLimit, &used) ==
          bytes_of("hello"));
    CHECK(used == s.size());
  }
  SECTION("empty stored block, then a fixed block with a back-reference") {
    Bits b;
    b.put(0, 1);  // BFINAL 0
    b.put(0, 2);  // stored
    b.put(0, 5);  // pad to the byte boundary
    b.put(0x0000, 16);
    b.put(0xFFFF, 16);
    b.put(1, 1);  // BFINAL 1
    b.put(1, 2);  // fixed Huffman
    b.fixed_lit('a');
    b.fixed_lit('b');
    b.fixed_lit('c');
    b.fixed_lit(260);  // length 6 (code 260, no extra bits)
    b.put_code(2, 5);  // distance code 2: distance 3
    b.fixed_lit(266);  // length 13 + 1 extra bit
    b.put(1, 1);       // -> 14
    b.put_code(4, 5);  // distance code 4: 5 + 1 extra bit
    b.put(1, 1);       // -> distance 6
    b.fixed_lit(256);
    // "abc" + 6 x "abc" pattern + 14 bytes copied from 6 back.
    std::string want = "abcabcabc";
    for (int i = 0; i < 14; ++i) want += want[want.size() - 6];
    CHECK(inflate(b.finish()) == bytes_of(want));
  }
  SECTION("fixed Huffman streams from Python's zlib.compress(..., 9)") {
    const Bytes z1 = {0x78, 0xda, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0xd7, 0x51, 0xf0, 0x40,
                      0xa2, 0x14, 0x15, 0x52, 0x73, 0x93, 0x52, 0x8b, 0x14, 0x52, 0x52,
                      0xd3, 0x72, 0x12, 0x4b, 0x52, 0x01, 0xc6, 0xd1, 0x0b, 0xb6};
    CHECK(((z1[2] >> 1) & 3) == 1);  // fixed Huffman
    CHECK(unzlib(z1) == bytes_of("Hello, Hello, Hello! ember deflate"));
    const Bytes z2 = {0x78, 0xda, 0x4b, 0x4c, 0x4a, 0x4e, 0x44, 0x45, 0x00, 0x41, 0x7c, 0x06, 0xe5};
    CHECK(unzlib(z2) == bytes_of("abcabcabcabcabcabc"));
  }
  SECTION("a distance of exactly the output so far, and overlapping copies of 258") {
    Bits b;
    b.put(1, 1);
    b.put(1, 2);
    b.fixed_lit('x');
    b.fixed_lit(285);  // length 258
    b.put_code(0, 5);  // distance 1
    b.fixed_lit(256);
    CHECK(inflate(b.finish()) == Bytes(259, 'x'));
  }
}

TEST_CASE("dynamic-Huffman fixtures written by Python's zlib and gzip modules", "[io][deflate]") {
  const Bytes text = fixture_text();
  REQUIRE(text.size() == 80075u);
  const Bytes z = read_fixture("deflate_text.zz");
  CHECK(((z[2] >> 1) & 3) == 2);  // first block is dynamic
  CHECK(unzlib(z) == text);

  // Three members: every optional header field (FEXTRA, FNAME, FCOMMENT, FHCRC), a plain one,
  // and an empty one.
  const Bytes gz = read_fixture("deflate_text_members.gz");
  CHECK(gz[3] == 0x1F);
  CHECK(gunzip(gz) == text);

  SECTION("output limit") {
    CHECK(ember::io::gunzip(gz.data(), gz.size(), text.size()) == text);
    DeflateError::Kind kind = DeflateError::Kind::kCorrupt;
    try {
      ember::io::gunzip(gz.data(), gz.size(), text.size() - 1);
    } catch (const DeflateError& e) {
      kind = e.kind();
      CHECK(contains(e.what(), "exceeds the limit"));
    }
    CHECK(kind == DeflateError::Kind::kOutputLimit);
    CHECK_THROWS_AS(ember::io::zlib_decompress(z.data(), z.size(), 1000), DeflateError);
  }
  SECTION("every truncation is an error") {
    // The last member is an empty one of 20 bytes: cutting it off whole leaves a valid file.
    const size_t last_member = gz.size() - 20;
    for (size_t n = 0; n < gz.size(); n += (n < 64 || gz.size() - n < 64) ? 1 : 97) {
      INFO("gzip cut to " << n << " bytes");
      if (n == last_member) {
        CHECK(ember::io::gunzip(gz.data(), n) == text);
        continue;
      }
      CHECK_THROWS_AS(ember::io::gunzip(gz.data(), n), DeflateError);
    }
    for (size_t n = 0; n < z.size(); n += (n < 64 || z.size() - n < 64) ? 1 : 97) {
      INFO("zlib cut to " << n << " bytes");
      CHECK_THROWS_AS(ember::io::zlib_decompress(z.data(), n), DeflateError);
    }
    std::string msg = deflate_error_of([&] { gunzip(Bytes(gz.begin(), gz.begin() + 5000)); });
    CHECK(contains(msg, "truncated"));
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

TEST_CASE("our compressor round-trips through our decompressor", "[io][deflate]") {
  for (size_t n : {size_t(0), size_t(1), size_t(2), size_t(3), size_t(100), size_t(65535),
                   size_t(65536), size_t(65537), size_t(200000)}) {
    for (int kind = 0; kind < 6; ++kind) {
      INFO("n = " << n << ", kind " << kind);
      const Bytes d = make_data(n, kind, uint32_t(n * 31 + size_t(kind)));
      const Bytes raw = ember::io::deflate_raw(d.data(), d.size());
      size_t used = 0;
      CHECK(ember::io::inflate_raw(raw.data(), raw.size(), ember::io::kNoOutputLimit, &used) == d);
      CHECK(used == raw.size());
      const Bytes z = ember::io::zlib_compress(d.data(), d.size());
      CHECK(unzlib(z) == d);
      const Bytes g = ember::io::gzip_compress(d.data(), d.size());
      CHECK(gunzip(g) == d);
      // Incompressible data costs at most a few bytes per 64 KiB block (stored blocks).
      CHECK(raw.size() <= n + 6 * (n / 65535 + 1) + 1);
      if (kind == 1 && n >= 65535) CHECK(raw.size() * 100 < n);  // long runs compress well
    }
  }
  // Two of our members concatenated make one gzip file.
  const Bytes a = make_data(5000, 2, 1), b = make_data(7000, 3, 2);
  const Bytes ga = ember::io::gzip_compress(a.data(), a.size());
  const Bytes gb = ember::io::gzip_compress(b.data(), b.size());
  CHECK(gunzip(concat(ga, gb)) == concat(a, b));
  // The empty stream is the standard one.
  CHECK(ember::io::zlib_compress(nullptr, 0) ==
        Bytes({0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}));
}

TEST_CASE("corrupt deflate, zlib and gzip input throws DeflateError", "[io][deflate]") {
  const Bytes text = bytes_of("the quick brown fox jumps over the lazy dog; the quick brown fox");
  const Bytes g = ember::io::gzip_compress(text.data(), text.size());
  const Bytes z = ember::io::zlib_compress(text.data(), text.size());
  REQUIRE(gunzip(g) == text);

  SECTION("gzip headers and trailers") {
    Bytes b = g;
    b[0] = 0x1E;
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "not gzip data"));
    b = g;
    b[2] = 7;
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "compression method"));
    b = g;
    b[3] = 0x20;
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "reserved"));
    b = g;
    b[3] = 0x08;  // FNAME without a terminating zero anywhere after it
    Bytes noname(b.begin(), b.begin() + 10);
    noname.push_back('n');
    CHECK(contains(deflate_error_of([&] { gunzip(noname); }), "truncated"));
    b = g;
    b[3] = 0x04;  // FEXTRA claiming more bytes than the file has
    b.insert(b.begin() + 10, {0xFF, 0xFF});
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "FEXTRA"));
    b = g;
    b[b.size() - 8] ^= 0x01;
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "gzip CRC-32 mismatch"));
    b = g;
    b[b.size() - 4] ^= 0x01;
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "ISIZE"));
    b = g;  // zero padding after the last member is ignored, as gzip and Python do
    b.insert(b.end(), 7, 0x00);
    CHECK(gunzip(b) == gunzip(g));
    b.push_back(0x01);  // but not other bytes
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "trailing garbage"));
    b = g;
    b.push_back(0x02);
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "trailing garbage"));
    b = g;
    b.push_back(0x1F);  // the first byte of a member that never comes
    CHECK(contains(deflate_error_of([&] { gunzip(b); }), "truncated"));
    CHECK(contains(deflate_error_of([&] { gunzip(Bytes()); }), "truncated"));
    // FHCRC: a header CRC that does not match.
    Bytes h = {0x1F, 0x8B, 8, 0x02, 0, 0, 0, 0, 0, 255};
    const uint32_t hc = ember::io::crc32(h.data(), h.size());
    Bytes good = h;
    good.push_back(uint8_t(hc));
    good.push_back(uint8_t(hc >> 8));
    good.insert(good.end(), g.begin() + 10, g.end());
    CHECK(gunzip(good) == text);
    good[10] ^= 0x40;
    CHECK(contains(deflate_error_of([&] { gunzip(good); }), "header CRC mismatch"));
  }
  SECTION("zlib headers and trailers") {
    Bytes b = z;
    b[0] = 0x79;  // method 9
    CHECK(contains(deflate_error_of([&] { unzlib(b); }), "compression method"));
    b = z;
    b[1] ^= 0x01;
    CHECK(contains(deflate_error_of([&] { unzlib(b); }), "header check"));
    b = {0x78, 0xBB};  // FDICT set, check bits valid
    CHECK(contains(deflate_error_of([&] { unzlib(b); }), "dictionary"));
    b = z;
    b.back() ^= 0x80;
    CHECK(contains(deflate_error_of([&] { unzlib(b); }), "Adler-32 mismatch"));
    b = z;
    b.push_back(0);
    CHECK(contains(deflate_error_of([&] { unzlib(b); }), "trailing"));
    b.assign(z.begin(), z.end() - 2);
    CHECK(contains(deflate_error_of([&] { unzlib(b); }), "truncated"));
  }
  SECTION("invalid block type 3") {
    CHECK(contains(deflate_error_of([&] { inflate({0x07, 0x00}); }), "block type 3"));
  }
  SECTION("stored block length and complement disagree") {
    const Bytes s = {0x01, 0x05, 0x00, 0xFA, 0xFE, 'h', 'e', 'l', 'l', 'o'};
    CHECK(contains(deflate_error_of([&] { inflate(s); }), "complement"));
    const Bytes cut = {0x01, 0x05, 0x00, 0xFA, 0xFF, 'h', 'e'};
    CHECK(contains(deflate_error_of([&] { inflate(cut); }), "truncated"));
  }
  SECTION("over-subscribed and incomplete Huffman codes") {
    // Code-length code: 19 codes of length 1.
    Bits a;
    a.put(1, 1);
    a.put(2, 2);    // dynamic
    a.put(0, 5);    // HLIT 257
    a.put(0, 5);    // HDIST 1
    a.put(15, 4);   // HCLEN 19
    for (int i = 0; i < 19; ++i) a.put(1, 3);
    CHECK(contains(deflate_error_of([&] { inflate(a.finish()); }), "over-subscribed code-length"));

    // A valid code-length code (symbols 1 and 2, one bit each), then 258 literal/length and
    // distance lengths of 1: over-subscribed literal/length code.
    const int order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    Bits o;
    o.put(1, 1);
    o.put(2, 2);
    o.put(0, 5);
    o.put(0, 5);
    o.put(14, 4);  // HCLEN 18: up to order[17] = symbol 1
    for (int i = 0; i < 18; ++i) o.put((order[i] == 1 || order[i] == 2) ? 1 : 0, 3);
    for (int i = 0; i < 258; ++i) o.put_code(0, 1);  // symbol 1 has code 0
    CHECK(contains(deflate_error_of([&] { inflate(o.finish()); }), "over-subscribed literal/length"));

    // Code-length code: symbols 0 and 2 (one bit each: 0 -> "0", 2 -> "1"). Literal/length
    // lengths: symbols 0, 1 and 256 of length 2, the rest 0: an incomplete code.
    Bits c;
    c.put(1, 1);
    c.put(2, 2);
    c.put(0, 5);
    c.put(0, 5);
    c.put(12, 4);  // HCLEN 16: up to order[15] = symbol 2
    for (int i = 0; i < 16; ++i) c.put((order[i] == 0 || order[i] == 2) ? 1 : 0, 3);
    for (int s = 0; s < 258; ++s) c.put_code((s == 0 || s == 1 || s == 256 || s == 257) ? 1 : 0, 1);
    CHECK(contains(deflate_error_of([&] { inflate(c.finish()); }), "incomplete literal/length"));

    // Too many length codes (HLIT 30 -> 287).
    Bits t;
    t.put(1, 1);
    t.put(2, 2);
    t.put(30, 5);
    t.put(0, 5);
    t.put(0, 4);
    for (int i = 0; i < 4; ++i) t.put(0, 3);
    CHECK(contains(deflate_error_of([&] { inflate(t.finish()); }), "too many"));

    // A repeat-previous code (16) with nothing before it.
    Bits r;
    r.put(1, 1);
    r.put(2, 2);
    r.put(0, 5);
    r.put(0, 5);
    r.put(0, 4);  // HCLEN 4: symbols 16, 17, 18, 0
    r.put(1, 3);  // 16: length 1 -> code "1" (codes go to symbols in value order)
    r.put(0, 3);
    r.put(0, 3);
    r.put(1, 3);  // 0: length 1 -> code "0"
    r.put_code(1, 1);
    r.put(0, 2);
    CHECK(contains(deflate_error_of([&] { inflate(r.finish()); }), "no previous length"));
  }
  SECTION("bad symbols and distances in a fixed block") {
    Bits d;  // a back-reference with no output before it
    d.put(1, 1);
    d.put(1, 2);
    d.fixed_lit(257);
    d.put_code(0, 5);
    d.fixed_lit(256);
    CHECK(contains(deflate_error_of([&] { inflate(d.finish()); }), "before the start"));

    Bits f;  // distance 4 after three bytes
    f.put(1, 1);
    f.put(1, 2);
    for (char ch : {'a', 'b', 'c'}) f.fixed_lit(ch);
    f.fixed_lit(257);
    f.put_code(3, 5);
    f.fixed_lit(256);
    CHECK(contains(deflate_error_of([&] { inflate(f.finish()); }), "distance 4"));

    Bits l;  // length symbol 286
    l.put(1, 1);
    l.put(1, 2);
    l.fixed_lit('a');
    l.fixed_lit(286);
    CHECK(contains(deflate_error_of([&] { inflate(l.finish()); }), "length symbol 286"));

    Bits s;  // distance symbol 30
    s.put(1, 1);
    s.put(1, 2);
    s.fixed_lit('a');
    s.fixed_lit(257);
    s.put_code(30, 5);
    CHECK(contains(deflate_error_of([&] { inflate(s.finish()); }), "distance symbol 30"));

    Bits e;  // no end-of-block: the input runs out
    e.put(1, 1);
    e.put(1, 2);
    e.fixed_lit('a');
    CHECK(contains(deflate_error_of([&] { inflate(e.finish()); }), "truncated"));
    CHECK(contains(deflate_error_of([&] { inflate(Bytes()); }), "truncated"));
  }
  SECTION("a back-reference may not reach into the previous gzip member") {
    // Member 2's deflate data starts with a back-reference of distance 1.
    Bits d;
    d.put(1, 1);
    d.put(1, 2);
    d.fixed_lit(257);
    d.put_code(0, 5);
    d.fixed_lit(256);
    Bytes two = g;
    const Bytes body = d.finish();
    two.insert(two.end(), {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255});
    two.insert(two.end(), body.begin(), body.end());
    put_le32(two, 0);
    put_le32(two, 3);
    const std::string msg = deflate_error_of([&] { gunzip(two); });
    CHECK(contains(msg, "member 2"));
    CHECK(contains(msg, "before the start"));
  }
}
