// @file include/ember/io/deflate.hpp
// @brief A small, self-contained DEFLATE codec: CRC-32, Adler-32, raw deflate, zlib and gzip
//        streams (standard library only; ember does not link zlib).
//
// Formats:
//   raw deflate (RFC 1951): a sequence of blocks, bits packed LSB first. Each block starts with
//     BFINAL (1 bit) and BTYPE (2 bits): 0 = stored (byte-aligned LEN, NLEN = ~LEN, LEN raw
//     bytes), 1 = fixed Huffman codes, 2 = dynamic Huffman codes (code lengths sent first,
//     themselves Huffman-coded), 3 = invalid. Huffman blocks hold literals, end-of-block and
//     <length 3..258, distance 1..32768> back-references into the output so far.
//   zlib (RFC 1950): 2-byte header (CMF: method 8 and window size; FLG: check bits so that
//     CMF*256+FLG is a multiple of 31, FDICT, level), raw deflate data, big-endian Adler-32 of
//     the uncompressed data.
//   gzip (RFC 1952): one or more members, each a 10-byte header (1F 8B, method 8, FLG, MTIME,
//     XFL, OS), optional FEXTRA / FNAME / FCOMMENT / FHCRC fields, raw deflate data, then the
//     little-endian CRC-32 and ISIZE (length mod 2^32) of that member's data. Concatenated
//     members decompress to the concatenation of their data.
//
// Decoding (inflate_raw, zlib_decompress, gunzip) validates everything: block types, stored
// lengths, Huffman code sets (over-subscribed or incomplete sets are rejected, except for the
// single-code case RFC 1951 permits for distances), symbol ranges, distances reaching before
// the start of the output, header fields and trailers (CRC-32, Adler-32, ISIZE), truncated input
// and trailing garbage. Every problem throws DeflateError (an ember::Error) saying what is
// wrong; callers add the file name. `max_output` bounds the decompressed size, so a corrupt or
// hostile stream cannot make the decoder allocate more than the caller allows.
//
// Encoding (deflate_raw, zlib_compress, gzip_compress) is deliberately simple: a greedy LZ77
// matcher (3-byte hash chains, 32 KiB window, bounded chain depth) emitting fixed-Huffman
// blocks; a block whose fixed-Huffman coding would be larger than the raw bytes is written as a
// stored block instead, so incompressible data grows by only a few bytes per 64 KiB.
//
// crc32 is the CRC of gzip, PNG and zlib's crc32() (reflected polynomial 0xEDB88320, initial
// and final XOR 0xFFFFFFFF); crc32("123456789") == 0xCBF43926. adler32 is zlib's adler32().
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace ember::io {

// Thrown for every malformed, truncated or oversized compressed stream (an ember::Error).
class DeflateError : public Error {
 public:
  enum class Kind {
    kCorrupt,      // invalid data (bad header, bad code, checksum mismatch, trailing garbage...)
    kTruncated,    // the input ends before the stream does
    kOutputLimit,  // the decompressed data would exceed the caller's max_output
  };
  DeflateError(Kind kind, const std::string& msg) : Error(msg), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

// The default max_output: no limit beyond what memory allows.
constexpr size_t kNoOutputLimit = std::numeric_limits<size_t>::max();

// ---------------------------------------------------------------------------------------------
// Checksums

namespace detail {

constexpr std::array<uint32_t, 256> make_crc32_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
    t[i] = c;
  }
  return t;
}

inline constexpr std::array<uint32_t, 256> kCrc32Table = make_crc32_table();

}  // namespace detail

// CRC-32 of n bytes, continuing from `crc` (0 to start; pass a previous result to continue).
inline uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  uint32_t c = crc ^ 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = detail::kCrc32Table[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// Adler-32 of n bytes, continuing from `adler` (1 to start).
inline uint32_t adler32(const uint8_t* data, size_t n, uint32_t adler = 1) {
  constexpr uint32_t kMod = 65521;
  constexpr size_t kMaxRun = 5552;  // largest run whose sums cannot overflow 32 bits
  uint32_t a = adler & 0xFFFFu, b = adler >> 16;
  while (n > 0) {
    size_t run = n < kMaxRun ? n : kMaxRun;
    n -= run;
    for (size_t i = 0; i < run; ++i) {
      a += data[i];
      b += a;
    }
    data += run;
    a %= kMod;
    b %= kMod;
  }
  return (b << 16) | a;
}

// ---------------------------------------------------------------------------------------------
// Decoding

namespace detail {

[[noreturn]] inline void deflate_corrupt(const std::string& what) {
  throw DeflateError(DeflateError::Kind::kCorrupt, what);
}
[[noreturn]] inline void deflate_truncated(const std::string& what) {
  throw DeflateError(DeflateError::Kind::kTruncated, what);
}
[[noreturn]] inline void deflate_limit(size_t max_output) {
  throw DeflateError(DeflateError::Kind::kOutputLimit,
                     "decompressed data exceeds the limit of " + std::to_string(max_output) +
                         " bytes");
}

// LSB-first bit reader over a byte range. Invariant: bits of `buf` at and above `cnt` are 0.
struct BitReader {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;    // next byte to load into buf
  uint64_t buf = 0;  // loaded, not yet consumed bits
  unsigned cnt = 0;  // number of valid bits in buf

  BitReader(const uint8_t* d, size_t n) : data(d), size(n) {}

  // Loads whole bytes while they fit; never throws (the input may simply have ended).
  void refill() {
    while (cnt <= 56 && pos < size) {
      buf |= uint64_t(data[pos++]) << cnt;
      cnt += 8;
    }
  }
  // Consumes and returns n (0..16) bits.
  uint32_t bits(unsigned n) {
    if (cnt < n) {
      refill();
      if (cnt < n) deflate_truncated("truncated deflate stream");
    }
    uint32_t v = uint32_t(buf & ((uint64_t(1) << n) - 1));
    buf >>= n;
    cnt -= n;
    return v;
  }
  // Skips to the next byte boundary.
  void align() {
    unsigned drop = cnt & 7u;
    buf >>= drop;
    cnt -= drop;
  }
  // Input bytes used so far (a partly used byte counts as used).
  size_t consumed() const { return pos - cnt / 8; }
};

constexpr int kMaxCodeBits = 15;
constexpr int kFastBits = 10;

// A canonical Huffman code (RFC 1951 3.2.2) for decoding.
struct Huffman {
  uint16_t count[kMaxCodeBits + 1] = {};  // number of codes of each length
  uint16_t symbol[320] = {};              // symbols ordered by (length, value)
  // Codes of up to kFastBits bits, indexed by the next kFastBits input bits (LSB first):
  // (symbol << 4) | length, or 0 when the code there is longer (or does not exist).
  uint16_t fast[1u << kFastBits] = {};
};

enum class CodeKind { kCodeLengths, kLiteralLength, kDistance };

inline const char* code_name(CodeKind k) {
  switch (k) {
    case CodeKind::kCodeLengths: return "code-length";
    case CodeKind::kLiteralLength: return "literal/length";
    case CodeKind::kDistance: return "distance";
  }
  return "?";
}

// Builds `h` from n (<= 320) code lengths (each 0..15). Rejects over-subscribed sets and
// incomplete ones, except (as zlib does) a set of a single one-bit code and, for distances, an
// empty set (a block that uses no back-references).
inline void build_huffman(Huffman& h, const uint8_t* lens, int n, CodeKind kind) {
  h = Huffman{};
  int used = 0, max_len = 0;
  for (int s = 0; s < n; ++s) {
    if (lens[s] > kMaxCodeBits) deflate_corrupt("invalid Huffman code length");
    if (lens[s] != 0) {
      ++h.count[lens[s]];
      ++used;
      if (lens[s] > max_len) max_len = lens[s];
    }
  }
  int left = 1;  // codes of the current length not yet assigned
  for (int len = 1; len <= kMaxCodeBits; ++len) {
    left <<= 1;
    left -= h.count[len];
    if (left < 0)
      deflate_corrupt(std::string("invalid deflate data: over-subscribed ") + code_name(kind) +
                      " Huffman code");
  }
  if (left > 0) {
    const bool empty_ok = used == 0 && kind == CodeKind::kDistance;
    const bool single_ok = max_len == 1 && kind != CodeKind::kCodeLengths;
    if (!empty_ok && !single_ok)
      deflate_corrupt(std::string("invalid deflate data: incomplete ") + code_name(kind) +
                      " Huffman code");
  }
  // Symbols sorted by code length, then value.
  int offs[kMaxCodeBits + 2] = {};
  for (int len = 1; len <= kMaxCodeBits; ++len) offs[len + 1] = offs[len] + h.count[len];
  for (int s = 0; s < n; ++s)
    if (lens[s] != 0) h.symbol[offs[lens[s]]++] = uint16_t(s);
  // Fast table: canonical codes are assigned in (length, value) order; the stream sends them
  // MSB first, so the table index is the bit-reversed code padded with every possible suffix.
  uint32_t code = 0;
  int k = 0;
  for (int len = 1; len <= kMaxCodeBits; ++len) {
    for (int i = 0; i < h.count[len]; ++i, ++k, ++code) {
      if (len > kFastBits) continue;
      uint32_t rev = 0;
      for (int b = 0; b < len; ++b) rev |= ((code >> b) & 1u) << (len - 1 - b);
      const uint16_t entry = uint16_t((uint32_t(h.symbol[k]) << 4) | uint32_t(len));
      for (uint32_t fill = rev; fill < (1u << kFastBits); fill += (1u << len)) h.fast[fill] = entry;
    }
    code <<= 1;
  }
}

// Decodes one symbol.
inline int decode_symbol(BitReader& br, const Huffman& h) {
  br.refill();
  const uint16_t e = h.fast[br.buf & ((1u << kFastBits) - 1)];
  const unsigned len = e & 15u;
  if (len != 0 && len <= br.cnt) {
    br.buf >>= len;
    br.cnt -= len;
    return e >> 4;
  }
  // Slow path, one bit at a time (long codes, or input near its end).
  int code = 0, first = 0, index = 0;
  for (int l = 1; l <= kMaxCodeBits; ++l) {
    code |= int(br.bits(1));
    const int c = h.count[l];
    if (code - c < first) return h.symbol[index + (code - first)];
    index += c;
    first += c;
    first <<= 1;
    code <<= 1;
  }
  deflate_corrupt("invalid deflate data: invalid Huffman code");
}

constexpr uint16_t kLengthBase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr uint8_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr uint16_t kDistBase[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                    33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                    6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

struct FixedCodes {
  Huffman lit, dist;
  FixedCodes() {
    uint8_t lens[288];
    for (int s = 0; s < 288; ++s) lens[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
    build_huffman(lit, lens, 288, CodeKind::kLiteralLength);
    uint8_t dl[32];
    for (int s = 0; s < 32; ++s) dl[s] = 5;  // 30 and 31 complete the code but are invalid
    build_huffman(dist, dl, 32, CodeKind::kDistance);
  }
};

inline const FixedCodes& fixed_codes() {
  static const FixedCodes codes;
  return codes;
}

// Decodes the literals and back-references of one Huffman block into out. `base` is where this
// stream's output starts in out (back-references may not reach before it).
inline void inflate_codes(BitReader& br, const Huffman& lit, const Huffman& dist,
                          std::vector<uint8_t>& out, size_t base, size_t max_output) {
  for (;;) {
    const int sym = decode_symbol(br, lit);
    if (sym < 256) {
      if (out.size() >= max_output) deflate_limit(max_output);
      out.push_back(uint8_t(sym));
    } else if (sym == 256) {
      return;
    } else {
      const int li = sym - 257;
      if (li >= 29)
        deflate_corrupt("invalid deflate data: invalid length symbol " + std::to_string(sym));
      const size_t len = size_t(kLengthBase[li]) + br.bits(kLengthExtra[li]);
      const int ds = decode_symbol(br, dist);
      if (ds >= 30)
        deflate_corrupt("invalid deflate data: invalid distance symbol " + std::to_string(ds));
      const size_t d = size_t(kDistBase[ds]) + br.bits(kDistExtra[ds]);
      const size_t have = out.size() - base;
      if (d > have)
        deflate_corrupt("invalid deflate data: distance " + std::to_string(d) +
                        " reaches before the start of the output (" + std::to_string(have) +
                        " bytes so far)");
      if (len > max_output - out.size()) deflate_limit(max_output);
      const size_t at = out.size();
      out.resize(at + len);
      uint8_t* p = out.data() + at;
      const uint8_t* src = p - d;  // d <= have, so src is inside the output
      for (size_t i = 0; i < len; ++i) p[i] = src[i];  // may overlap: byte by byte
    }
  }
}

inline void inflate_stored(BitReader& br, std::vector<uint8_t>& out, size_t max_output) {
  br.align();
  const uint32_t len = br.bits(16);
  const uint32_t nlen = br.bits(16);
  if ((len ^ 0xFFFFu) != nlen)
    deflate_corrupt("invalid deflate data: stored block length does not match its complement");
  if (len > max_output - out.size()) deflate_limit(max_output);
  size_t left = len;
  // Whole bytes already loaded into the bit buffer come first (cnt is a multiple of 8 here).
  while (left > 0 && br.cnt >= 8) {
    out.push_back(uint8_t(br.buf & 0xFFu));
    br.buf >>= 8;
    br.cnt -= 8;
    --left;
  }
  if (left > br.size - br.pos) deflate_truncated("truncated deflate stream (in a stored block)");
  out.insert(out.end(), br.data + br.pos, br.data + br.pos + left);
  br.pos += left;
}

inline void inflate_dynamic(BitReader& br, std::vector<uint8_t>& out, size_t base,
                            size_t max_output) {
  const int nlit = int(br.bits(5)) + 257;
  const int ndist = int(br.bits(5)) + 1;
  const int ncode = int(br.bits(4)) + 4;
  if (nlit > 286 || ndist > 30)
    deflate_corrupt("invalid deflate data: too many length or distance symbols (" +
                    std::to_string(nlit) + ", " + std::to_string(ndist) + ")");
  static constexpr uint8_t kOrder[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                         11, 4,  12, 3, 13, 2, 14, 1, 15};
  uint8_t cl[19] = {};
  for (int i = 0; i < ncode; ++i) cl[kOrder[i]] = uint8_t(br.bits(3));
  Huffman clcode;
  build_huffman(clcode, cl, 19, CodeKind::kCodeLengths);

  uint8_t lens[286 + 30] = {};
  const int total = nlit + ndist;
  int i = 0;
  while (i < total) {
    const int sym = decode_symbol(br, clcode);
    if (sym < 16) {
      lens[i++] = uint8_t(sym);
      continue;
    }
    uint8_t value = 0;
    int repeat = 0;
    if (sym == 16) {
      if (i == 0) deflate_corrupt("invalid deflate data: code-length repeat with no previous length");
      value = lens[i - 1];
      repeat = 3 + int(br.bits(2));
    } else if (sym == 17) {
      repeat = 3 + int(br.bits(3));
    } else {
      repeat = 11 + int(br.bits(7));
    }
    if (repeat > total - i)
      deflate_corrupt("invalid deflate data: code-length repeat runs past the declared codes");
    for (int r = 0; r < repeat; ++r) lens[i++] = value;
  }
  if (lens[256] == 0) deflate_corrupt("invalid deflate data: no end-of-block code");
  Huffman lit, dist;
  build_huffman(lit, lens, nlit, CodeKind::kLiteralLength);
  build_huffman(dist, lens + nlit, ndist, CodeKind::kDistance);
  inflate_codes(br, lit, dist, out, base, max_output);
}

// Decodes one raw deflate stream from data[0..size) and appends it to out (whose final size may
// not exceed max_output). Returns the number of input bytes the stream used.
inline size_t inflate_append(const uint8_t* data, size_t size, std::vector<uint8_t>& out,
                             size_t max_output) {
  BitReader br(data, size);
  const size_t base = out.size();
  if (base > max_output) deflate_limit(max_output);
  for (;;) {
    const uint32_t final_block = br.bits(1);
    const uint32_t type = br.bits(2);
    if (type == 0) {
      inflate_stored(br, out, max_output);
    } else if (type == 1) {
      inflate_codes(br, fixed_codes().lit, fixed_codes().dist, out, base, max_output);
    } else if (type == 2) {
      inflate_dynamic(br, out, base, max_output);
    } else {
      deflate_corrupt("invalid deflate data: invalid block type 3");
    }
    if (final_block) break;
  }
  return br.consumed();
}

inline uint32_t get_le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

}  // namespace detail

// Decodes a raw deflate stream (RFC 1951). When `consumed` is not null it receives the number of
// input bytes the stream used (anything after it is not looked at).
inline std::vector<uint8_t> inflate_raw(const uint8_t* data, size_t size,
                                        size_t max_output = kNoOutputLimit,
                                        size_t* consumed = nullptr) {
  std::vector<uint8_t> out;
  const size_t used = detail::inflate_append(data, size, out, max_output);
  if (consumed != nullptr) *consumed = used;
  return out;
}

// Decodes a zlib stream (RFC 1950) and checks its Adler-32. Trailing bytes are an error.
// Preset dictionaries (FDICT) are not supported.
inline std::vector<uint8_t> zlib_decompress(const uint8_t* data, size_t size,
                                            size_t max_output = kNoOutputLimit) {
  using namespace detail;
  if (size < 2) deflate_truncated("truncated zlib stream (no header)");
  const unsigned cmf = data[0], flg = data[1];
  if ((cmf & 0x0Fu) != 8)
    deflate_corrupt("not a zlib stream: unknown compression method " + std::to_string(cmf & 0x0Fu));
  if ((cmf >> 4) > 7) deflate_corrupt("not a zlib stream: invalid window size");
  if (((cmf << 8) | flg) % 31 != 0) deflate_corrupt("not a zlib stream: header check failed");
  if (flg & 0x20u) deflate_corrupt("zlib preset dictionary is not supported");
  std::vector<uint8_t> out;
  const size_t used = inflate_append(data + 2, size - 2, out, max_output);
  const size_t at = 2 + used;
  if (size - at < 4) deflate_truncated("truncated zlib stream (no Adler-32 trailer)");
  const uint32_t want = (uint32_t(data[at]) << 24) | (uint32_t(data[at + 1]) << 16) |
                        (uint32_t(data[at + 2]) << 8) | uint32_t(data[at + 3]);
  if (adler32(out.data(), out.size()) != want) deflate_corrupt("zlib Adler-32 mismatch");
  if (size - at > 4)
    deflate_corrupt("trailing garbage: " + std::to_string(size - at - 4) +
                    " bytes after the zlib stream");
  return out;
}

// Decodes gzip data (RFC 1952): one or more members, each with its CRC-32 and ISIZE checked.
// Zero bytes after the last member are padding and ignored (as GNU gzip and Python's gzip do);
// any other bytes that do not start another member are an error ("trailing garbage").
inline std::vector<uint8_t> gunzip(const uint8_t* data, size_t size,
                                   size_t max_output = kNoOutputLimit) {
  using namespace detail;
  std::vector<uint8_t> out;
  // ISIZE of the last member is a good guess at the total; never trust it beyond what deflate's
  // best ratio (1032:1) allows for this input.
  if (size >= 18) {
    const uint64_t guess = get_le32(data + size - 4);
    if (guess <= uint64_t(size) * 1032u && guess <= max_output) out.reserve(size_t(guess));
  }
  size_t pos = 0;
  int member = 0;
  do {
    const uint8_t* m = data + pos;
    const size_t left = size - pos;
    const std::string which = member == 0 ? "gzip" : "gzip member " + std::to_string(member + 1);
    if (member > 0 && std::all_of(m, m + left, [](uint8_t v) { return v == 0; })) break;
    if (left < 2 || m[0] != 0x1F || m[1] != 0x8B) {
      if (member == 0) {
        if (left < 2 && (left == 0 || m[0] == 0x1F)) deflate_truncated("truncated gzip header");
        deflate_corrupt("not gzip data (bad magic number)");
      }
      if (left == 1 && m[0] == 0x1F) deflate_truncated("truncated " + which + " header");
      deflate_corrupt("trailing garbage: " + std::to_string(left) + " bytes after the gzip data");
    }
    if (left < 10) deflate_truncated("truncated " + which + " header");
    if (m[2] != 8)
      deflate_corrupt(which + ": unknown compression method " + std::to_string(m[2]));
    const unsigned flg = m[3];
    if (flg & 0xE0u) deflate_corrupt(which + ": reserved header flag bits are set");
    size_t h = 10;
    if (flg & 0x04u) {  // FEXTRA
      if (left - h < 2) deflate_truncated("truncated " + which + " header (FEXTRA)");
      const size_t xlen = size_t(m[h]) | (size_t(m[h + 1]) << 8);
      h += 2;
      if (left - h < xlen) deflate_truncated("truncated " + which + " header (FEXTRA)");
      h += xlen;
    }
    for (unsigned bit : {0x08u, 0x10u}) {  // FNAME, FCOMMENT: zero-terminated strings
      if (!(flg & bit)) continue;
      const void* z = std::memchr(m + h, 0, left - h);
      if (z == nullptr)
        deflate_truncated("truncated " + which + " header (" +
                          (bit == 0x08u ? "FNAME" : "FCOMMENT") + ")");
      h = size_t(static_cast<const uint8_t*>(z) - m) + 1;
    }
    if (flg & 0x02u) {  // FHCRC: low 16 bits of the CRC-32 of the header so far
      if (left - h < 2) deflate_truncated("truncated " + which + " header (FHCRC)");
      const uint32_t want = uint32_t(m[h]) | (uint32_t(m[h + 1]) << 8);
      if ((crc32(m, h) & 0xFFFFu) != want) deflate_corrupt(which + " header CRC mismatch");
      h += 2;
    }
    const size_t start = out.size();
    size_t used = 0;
    try {
      used = inflate_append(m + h, left - h, out, max_output);
    } catch (const DeflateError& e) {
      if (member == 0) throw;
      throw DeflateError(e.kind(), which + ": " + e.what());
    }
    const size_t t = h + used;
    if (left - t < 8) deflate_truncated("truncated " + which + " (no CRC-32/ISIZE trailer)");
    const uint32_t crc = crc32(out.data() + start, out.size() - start);
    if (crc != get_le32(m + t)) deflate_corrupt(which + " CRC-32 mismatch");
    if (uint32_t(out.size() - start) != get_le32(m + t + 4))
      deflate_corrupt(which + " length (ISIZE) mismatch");
    pos += t + 8;
    ++member;
  } while (pos < size);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoding

namespace detail {

// LSB-first bit writer.
struct BitWriter {
  std::vector<uint8_t>& out;
  uint64_t buf = 0;
  unsigned cnt = 0;
  explicit BitWriter(std::vector<uint8_t>& o) : out(o) {}
  void put(uint32_t value, unsigned n) {  // n <= 32
    buf |= uint64_t(value) << cnt;
    cnt += n;
    while (cnt >= 8) {
      out.push_back(uint8_t(buf & 0xFFu));
      buf >>= 8;
      cnt -= 8;
    }
  }
  // Huffman codes are sent most significant bit first.
  void put_code(uint32_t code, unsigned n) {
    uint32_t rev = 0;
    for (unsigned b = 0; b < n; ++b) rev |= ((code >> b) & 1u) << (n - 1 - b);
    put(rev, n);
  }
  void align() {
    if (cnt > 0) put(0, 8 - cnt);
  }
};

// The fixed literal/length code (RFC 1951 3.2.6): length and code of symbol s.
inline unsigned fixed_lit_bits(int s) { return s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8; }
inline uint32_t fixed_lit_code(int s) {
  if (s < 144) return 0x30u + uint32_t(s);
  if (s < 256) return 0x190u + uint32_t(s - 144);
  if (s < 280) return uint32_t(s - 256);
  return 0xC0u + uint32_t(s - 280);
}

inline int length_index(size_t len) {  // index into kLengthBase for a match length 3..258
  int i = 28;
  while (kLengthBase[i] > len) --i;
  return i;
}
inline int dist_index(size_t d) {  // index into kDistBase for a distance 1..32768
  int i = 29;
  while (kDistBase[i] > d) --i;
  return i;
}

struct Token {
  uint16_t len;   // 0: literal
  uint16_t dist;  // the literal byte when len == 0
};

constexpr size_t kWindow = 32768;  // matches have distance < kWindow
constexpr size_t kMinMatch = 3, kMaxMatch = 258;
constexpr int kHashBits = 15;
constexpr int kMaxChain = 64;
constexpr size_t kBlockBytes = 65535;  // input bytes per block (the stored-block maximum)

}  // namespace detail

// Compresses to a raw deflate stream (RFC 1951).
inline std::vector<uint8_t> deflate_raw(const uint8_t* data, size_t n) {
  using namespace detail;
  std::vector<uint8_t> out;
  BitWriter bw(out);
  if (n == 0) {  // one final fixed block holding only end-of-block
    bw.put(1, 1);
    bw.put(1, 2);
    bw.put_code(fixed_lit_code(256), fixed_lit_bits(256));
    bw.align();
    return out;
  }
  // Hash chains: head[h] = latest position with hash h; prev[p % kWindow] = the position before
  // p with the same hash. A chain is followed only while positions stay within the window, so
  // every prev slot read still belongs to the position that wrote it.
  std::vector<int64_t> head(size_t(1) << kHashBits, -1);
  std::vector<int64_t> prev(kWindow, -1);
  auto hash_at = [&](size_t p) {
    const uint32_t v = uint32_t(data[p]) | (uint32_t(data[p + 1]) << 8) | (uint32_t(data[p + 2]) << 16);
    return size_t((v * 2654435761u) >> (32 - kHashBits));
  };
  auto insert = [&](size_t p) {
    if (p + kMinMatch > n) return;
    const size_t h = hash_at(p);
    prev[p % kWindow] = head[h];
    head[h] = int64_t(p);
  };
  std::vector<Token> tokens;
  for (size_t start = 0; start < n; start += kBlockBytes) {
    const size_t end = n - start < kBlockBytes ? n : start + kBlockBytes;
    tokens.clear();
    size_t p = start;
    while (p < end) {
      size_t best_len = 0, best_dist = 0;
      const size_t max_len = end - p < kMaxMatch ? end - p : kMaxMatch;
      if (max_len >= kMinMatch) {
        int64_t cand = head[hash_at(p)];
        for (int depth = 0; cand >= 0 && p - size_t(cand) < kWindow && depth < kMaxChain; ++depth) {
          const uint8_t* a = data + cand;
          const uint8_t* b = data + p;
          size_t l = 0;
          while (l < max_len && a[l] == b[l]) ++l;
          if (l > best_len) {
            best_len = l;
            best_dist = p - size_t(cand);
            if (l == max_len) break;
          }
          cand = prev[size_t(cand) % kWindow];
        }
      }
      if (best_len >= kMinMatch) {
        tokens.push_back(Token{uint16_t(best_len), uint16_t(best_dist)});
        for (size_t k = 0; k < best_len; ++k) insert(p + k);
        p += best_len;
      } else {
        tokens.push_back(Token{0, data[p]});
        insert(p);
        ++p;
      }
    }
    // Size of this block with fixed codes, against stored (header, alignment, LEN/NLEN, bytes).
    uint64_t fixed_bits = 3 + fixed_lit_bits(256);
    for (const Token& t : tokens) {
      if (t.len == 0) {
        fixed_bits += fixed_lit_bits(t.dist);
      } else {
        const int li = length_index(t.len), di = dist_index(t.dist);
        fixed_bits += fixed_lit_bits(257 + li) + kLengthExtra[li] + 5 + kDistExtra[di];
      }
    }
    const uint64_t stored_bits = 3 + 7 + 32 + 8 * uint64_t(end - start);
    const uint32_t final_block = end == n ? 1u : 0u;
    if (fixed_bits <= stored_bits) {
      bw.put(final_block, 1);
      bw.put(1, 2);
      for (const Token& t : tokens) {
        if (t.len == 0) {
          bw.put_code(fixed_lit_code(t.dist), fixed_lit_bits(t.dist));
          continue;
        }
        const int li = length_index(t.len), di = dist_index(t.dist);
        bw.put_code(fixed_lit_code(257 + li), fixed_lit_bits(257 + li));
        bw.put(uint32_t(t.len - kLengthBase[li]), kLengthExtra[li]);
        bw.put_code(uint32_t(di), 5);
        bw.put(uint32_t(t.dist - kDistBase[di]), kDistExtra[di]);
      }
      bw.put_code(fixed_lit_code(256), fixed_lit_bits(256));
    } else {
      const uint32_t len = uint32_t(end - start);
      bw.put(final_block, 1);
      bw.put(0, 2);
      bw.align();
      bw.put(len, 16);
      bw.put(len ^ 0xFFFFu, 16);
      out.insert(out.end(), data + start, data + end);
    }
  }
  bw.align();
  return out;
}

// Compresses to a zlib stream (RFC 1950) that zlib's inflate/uncompress accept.
inline std::vector<uint8_t> zlib_compress(const uint8_t* data, size_t n) {
  std::vector<uint8_t> out = {0x78, 0x01};  // deflate, 32 KiB window, "fastest" level hint
  std::vector<uint8_t> body = deflate_raw(data, n);
  out.insert(out.end(), body.begin(), body.end());
  const uint32_t a = adler32(data, n);
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(a >> s));
  return out;
}

// Compresses to a single-member gzip stream (RFC 1952; no name, MTIME 0, OS unknown).
inline std::vector<uint8_t> gzip_compress(const uint8_t* data, size_t n) {
  std::vector<uint8_t> out = {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255};
  std::vector<uint8_t> body = deflate_raw(data, n);
  out.insert(out.end(), body.begin(), body.end());
  const uint32_t crc = crc32(data, n);
  for (int s = 0; s < 32; s += 8) out.push_back(uint8_t(crc >> s));
  for (int s = 0; s < 32; s += 8) out.push_back(uint8_t(uint64_t(n) >> s));
  return out;
}

}  // namespace ember::io
