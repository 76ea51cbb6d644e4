// @file include/ember/core/shape.hpp
// @brief Shape (a vector of sizes), its element count and printing.
#pragma once
#include <cstdint>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace ember {

using Shape = std::vector<int64_t>;

inline int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline std::string to_string(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

/// Normalises a possibly negative dimension index against `rank` (returns -1 if out of range).
inline int normalize_dim(int64_t dim, int64_t rank) {
  if (dim < 0) dim += rank;
  return (dim < 0 || dim >= rank) ? -1 : static_cast<int>(dim);
}

}  // namespace ember
