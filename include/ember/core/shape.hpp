// @file include/ember/core/shape.hpp
// @brief Shape (a vector of sizes), its element count (plain and overflow-checked) and printing.
//
// Size arithmetic never overflows: an element count or byte size that would not fit in int64_t
// is refused (ember::Error naming the op and the shape) before anything is allocated. A tensor
// holds at most kMaxNumel elements, so its byte size (4 * numel) always fits in int64_t/size_t.
#pragma once
#include <cstdint>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "error.hpp"

namespace ember {

using Shape = std::vector<int64_t>;

/// The element count of a shape already known to be valid (a tensor's own shape).
inline int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

/// The most elements a tensor may hold: 2^61 - 1, so that 4 * numel (float32 bytes) fits int64.
constexpr int64_t kMaxNumel = std::numeric_limits<int64_t>::max() / 4;

/// a * b for a, b >= 0, or -1 when the product exceeds kMaxNumel (no signed overflow happens).
inline int64_t checked_size_mul(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return -1;
  if (a != 0 && b > kMaxNumel / a) return -1;
  return a * b;
}

/// a + b for a, b >= 0, or -1 when the sum exceeds kMaxNumel.
inline int64_t checked_size_add(int64_t a, int64_t b) {
  if (a < 0 || b < 0 || b > kMaxNumel - a) return -1;
  return a + b;
}

inline std::string to_string(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

/// The element count of `s`, checked: throws ember::Error("<op>: shape [...] ...") when a size
/// is negative or the product exceeds kMaxNumel (it would overflow int64 or its byte size would).
inline int64_t checked_numel(const Shape& s, const char* op) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error(std::string(op) + ": negative size in shape " + to_string(s));
    n = checked_size_mul(n, d);
    if (n < 0)
      throw Error(std::string(op) + ": shape " + to_string(s) +
                  " has too many elements (the product of its sizes exceeds 2^61 - 1, so its "
                  "element count or byte size would overflow int64)");
  }
  return n;
}

/// Normalises a possibly negative dimension index against `rank` (returns -1 if out of range).
inline int normalize_dim(int64_t dim, int64_t rank) {
  if (dim < 0) dim += rank;
  return (dim < 0 || dim >= rank) ? -1 : static_cast<int>(dim);
}

}  // namespace ember
