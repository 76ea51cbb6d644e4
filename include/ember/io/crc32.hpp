// @file include/ember/io/crc32.hpp
// @brief CRC-32 for ember's own file formats (checkpoints); part of the core, no dependency.
//
// The CRC of gzip, PNG and zlib's crc32() (reflected polynomial 0xEDB88320, initial and final
// XOR 0xFFFFFFFF): crc32("123456789") == 0xCBF43926. Table-driven, one byte at a time.
// Compression (gzip, zlib streams, PNG) is not part of the core: see <ember/io/gzip.hpp>, the
// optional CMake target ember::io.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace ember::io {

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

}  // namespace ember::io
