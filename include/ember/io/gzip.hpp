// @file include/ember/io/gzip.hpp
// @brief gzip and zlib streams through zlib: what the IDX reader (.gz files) and the PNG
//        reader/writer use. Part of the optional CMake target ember::io, which links zlib
//        (Debian: zlib1g-dev); the core target ember::ember links nothing.
//
// Decoding (gunzip, zlib_decompress) is zlib's inflate, with ember's rules around it:
//   gunzip: one or more gzip members (RFC 1952), each one's CRC-32 and ISIZE checked by zlib;
//     concatenated members decompress to the concatenation of their data; zero bytes after the
//     last member are padding and ignored (as GNU gzip and Python's gzip do); any other bytes
//     that do not start another member are an error ("trailing garbage").
//   zlib_decompress: one zlib stream (RFC 1950, Adler-32 checked); bytes after it are an error;
//     preset dictionaries (FDICT) are refused.
// `max_output` bounds the decompressed size, so a corrupt or hostile stream cannot make the
// decoder allocate more than the caller allows. Every malformed, truncated or oversized stream
// throws DeflateError (an ember::Error) whose kind says which and whose message says what is
// wrong (zlib's own message, e.g. "invalid block type", with "CRC-32 mismatch" / "Adler-32
// mismatch" / "ISIZE mismatch" spelled out); callers add the file name.
//
// Encoding (zlib_compress, gzip_compress) is zlib's deflate at the given level (default: zlib's
// default, 6); gzip_compress writes one member with no name and MTIME 0.
#pragma once
#if !__has_include(<zlib.h>)
#error "<ember/io/gzip.hpp> (used by <ember/io/png.hpp> and <ember/data/idx.hpp>) needs zlib: \
install it (Debian: apt-get install zlib1g-dev) and link the CMake target ember::io"
#endif
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

namespace detail {

[[noreturn]] inline void deflate_fail(DeflateError::Kind kind, const std::string& what) {
  throw DeflateError(kind, what);
}

// zlib counts bytes in 32-bit uInt: input and output are handed to it in pieces of at most this.
constexpr size_t kZlibPiece = size_t(1) << 30;

// An inflate stream (window_bits as for inflateInit2: 15 zlib, 15 + 16 gzip), ended on scope exit.
class Inflater {
 public:
  explicit Inflater(int window_bits) {
    const int rc = inflateInit2(&s_, window_bits);
    if (rc == Z_MEM_ERROR) throw Error("ember::io: out of memory setting up zlib's inflate");
    if (rc != Z_OK) throw Error("ember::io: zlib inflateInit2 failed (" + std::to_string(rc) + ")");
  }
  ~Inflater() { inflateEnd(&s_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  z_stream& stream() { return s_; }
  void reset() { inflateReset(&s_); }

 private:
  z_stream s_{};
};

// zlib's message for a Z_DATA_ERROR, with the checksum failures spelled out.
inline std::string zlib_data_error(const z_stream& s, bool gzip) {
  const std::string m = s.msg != nullptr ? s.msg : "invalid data";
  if (m == "incorrect data check") return m + (gzip ? " (CRC-32 mismatch)" : " (Adler-32 mismatch)");
  if (m == "incorrect length check") return m + " (ISIZE mismatch)";
  return m;
}

// Inflates one stream (one gzip member or one zlib stream) from data[0..size), appending to out
// (whose size may not exceed max_output). Returns the number of input bytes the stream used.
// `what` names the stream in errors ("gzip", "gzip member 2", "zlib").
inline size_t inflate_one(Inflater& z, const uint8_t* data, size_t size, std::vector<uint8_t>& out,
                          size_t max_output, const std::string& what, bool gzip) {
  using Kind = DeflateError::Kind;
  z_stream& s = z.stream();
  // zlib only reads through next_in (it is not const for historical reasons).
  s.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(data));
  s.avail_in = 0;
  auto used = [&] { return size_t(s.next_in - reinterpret_cast<const Bytef*>(data)); };
  if (out.size() > max_output) deflate_fail(Kind::kOutputLimit, "decompressed data exceeds the limit");
  for (;;) {
    if (s.avail_in == 0) s.avail_in = uInt(std::min(size - used(), kZlibPiece));
    // Room for the output: grow geometrically, but never offer more than one byte past the
    // limit (a byte written there means the limit is exceeded).
    const size_t have = out.size();
    const size_t allowed = max_output - have;
    size_t room = std::min(std::max(have, size_t(1) << 16), kZlibPiece);
    if (allowed < room) room = allowed + 1;
    out.resize(have + room);
    s.next_out = out.data() + have;
    s.avail_out = uInt(room);
    const int rc = ::inflate(&s, Z_NO_FLUSH);
    out.resize(have + room - s.avail_out);
    if (out.size() > max_output)
      deflate_fail(Kind::kOutputLimit, "decompressed data exceeds the limit of " +
                                           std::to_string(max_output) + " bytes");
    if (rc == Z_STREAM_END) return used();
    if (rc == Z_NEED_DICT)
      deflate_fail(Kind::kCorrupt, what + ": a preset dictionary (FDICT) is not supported");
    if (rc == Z_DATA_ERROR)
      deflate_fail(Kind::kCorrupt, "invalid " + what + " data: " + zlib_data_error(s, gzip));
    if (rc == Z_MEM_ERROR) throw Error("ember::io: out of memory while decompressing " + what);
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw Error("ember::io: zlib inflate failed (" + std::to_string(rc) + ") in " + what);
    // Z_OK or Z_BUF_ERROR: more output space or more input wanted. With all input given and
    // output space left over, the input ended inside the stream.
    if (used() == size && s.avail_in == 0 && s.avail_out != 0)
      deflate_fail(Kind::kTruncated, "truncated " + what + " stream (the input ends inside it)");
  }
}

inline uint32_t get_le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// Deflates data[0..n) with zlib (window_bits 15: zlib stream, 15 + 16: gzip member).
inline std::vector<uint8_t> deflate_with_zlib(const uint8_t* data, size_t n, int level,
                                              int window_bits, const char* op) {
  if (level < -1 || level > 9)
    throw std::invalid_argument(std::string(op) + ": compression level must be -1 (zlib's default) "
                                "or 0..9, got " + std::to_string(level));
  z_stream s{};
  const int rc0 = deflateInit2(&s, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  if (rc0 == Z_MEM_ERROR) throw Error(std::string(op) + ": out of memory setting up zlib's deflate");
  if (rc0 != Z_OK) throw Error(std::string(op) + ": zlib deflateInit2 failed (" + std::to_string(rc0) + ")");
  struct End {
    z_stream* s;
    ~End() { deflateEnd(s); }
  } end{&s};
  std::vector<uint8_t> out(size_t(deflateBound(&s, uLong(n))));
  size_t done_in = 0, done_out = 0;
  for (;;) {
    const size_t in_piece = std::min(n - done_in, kZlibPiece);
    s.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(data + done_in));
    s.avail_in = uInt(in_piece);
    const bool last = done_in + in_piece == n;
    if (out.size() - done_out < 64) out.resize(out.size() + std::max(out.size() / 2, size_t(64)));
    const size_t out_piece = std::min(out.size() - done_out, kZlibPiece);
    s.next_out = out.data() + done_out;
    s.avail_out = uInt(out_piece);
    const int rc = ::deflate(&s, last ? Z_FINISH : Z_NO_FLUSH);
    done_in += in_piece - s.avail_in;
    done_out += out_piece - s.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw Error(std::string(op) + ": zlib deflate failed (" + std::to_string(rc) + ")");
  }
  out.resize(done_out);
  return out;
}

}  // namespace detail

// Decodes gzip data (RFC 1952): one or more members (see the file comment).
inline std::vector<uint8_t> gunzip(const uint8_t* data, size_t size,
                                   size_t max_output = kNoOutputLimit) {
  using Kind = DeflateError::Kind;
  using detail::deflate_fail;
  std::vector<uint8_t> out;
  // ISIZE of the last member is a good guess at the total; never trust it beyond what deflate's
  // best ratio (1032:1) allows for this input.
  if (size >= 18) {
    const uint64_t guess = detail::get_le32(data + size - 4);
    if (guess <= uint64_t(size) * 1032u && guess <= max_output) out.reserve(size_t(guess));
  }
  detail::Inflater z(15 + 16);  // gzip only
  size_t pos = 0;
  int member = 0;
  do {
    const uint8_t* m = data + pos;
    const size_t left = size - pos;
    const std::string which = member == 0 ? "gzip" : "gzip member " + std::to_string(member + 1);
    if (member > 0 && std::all_of(m, m + left, [](uint8_t v) { return v == 0; })) break;
    if (left < 2 || m[0] != 0x1F || m[1] != 0x8B) {
      if (member == 0) {
        if (left < 2 && (left == 0 || m[0] == 0x1F)) deflate_fail(Kind::kTruncated, "truncated gzip header");
        deflate_fail(Kind::kCorrupt, "not gzip data (bad magic number)");
      }
      if (left == 1 && m[0] == 0x1F) deflate_fail(Kind::kTruncated, "truncated " + which + " header");
      deflate_fail(Kind::kCorrupt,
                   "trailing garbage: " + std::to_string(left) + " bytes after the gzip data");
    }
    if (member > 0) z.reset();
    pos += detail::inflate_one(z, m, left, out, max_output, which, true);
    ++member;
  } while (pos < size);
  return out;
}

// Decodes one zlib stream (RFC 1950) and checks its Adler-32. Trailing bytes are an error.
inline std::vector<uint8_t> zlib_decompress(const uint8_t* data, size_t size,
                                            size_t max_output = kNoOutputLimit) {
  std::vector<uint8_t> out;
  detail::Inflater z(15);  // zlib only
  const size_t used = detail::inflate_one(z, data, size, out, max_output, "zlib", false);
  if (used < size)
    detail::deflate_fail(DeflateError::Kind::kCorrupt,
                         "trailing garbage: " + std::to_string(size - used) +
                             " bytes after the zlib stream");
  return out;
}

// Compresses to a zlib stream (RFC 1950). level: -1 (zlib's default, 6) or 0..9.
inline std::vector<uint8_t> zlib_compress(const uint8_t* data, size_t n, int level = -1) {
  return detail::deflate_with_zlib(data, n, level, 15, "ember::io::zlib_compress");
}

// Compresses to a single-member gzip stream (RFC 1952; no name, MTIME 0). level as above.
inline std::vector<uint8_t> gzip_compress(const uint8_t* data, size_t n, int level = -1) {
  return detail::deflate_with_zlib(data, n, level, 15 + 16, "ember::io::gzip_compress");
}

}  // namespace ember::io
