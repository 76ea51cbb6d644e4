// @file include/ember/core/error.hpp
// @brief ember's error types and the argument-check helpers every op uses.
//
// Bad arguments (shapes, ranks, devices, sizes) throw std::invalid_argument whose message starts
// with the op name and lists the shapes involved. Runtime failures (CUDA errors, out of memory,
// files) throw ember::Error.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace ember {

/// A runtime failure: a CUDA error, an out-of-memory request, a missing backend, bad files.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Parts>
std::string concat_message(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

}  // namespace detail

/// Throws std::invalid_argument("<op>: <message parts...>") unless cond holds.
template <class... Parts>
void check_arg(bool cond, const char* op, const Parts&... parts) {
  if (!cond) throw std::invalid_argument(detail::concat_message(op, ": ", parts...));
}

}  // namespace ember
