// @file include/ember/io/atomic_file.hpp
// @brief Atomic whole-file writes (temp file + fsync + rename) and whole-file reads (POSIX).
//
// write_file_atomic writes to "<path>.tmp.<pid>" in the target's directory, flushes and fsyncs
// it, then rename()s it over the target, so a reader (or a crash) sees either the old file or
// the complete new one, never a partial one. On any failure the temp file is removed and
// std::runtime_error is thrown, naming the path and strerror(errno). After the rename the
// containing directory is fsynced too (best effort; failures there are ignored).
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace ember::io {

namespace detail {

[[noreturn]] inline void io_fail(const std::string& what, const std::string& path, int err) {
  throw std::runtime_error("ember::io: " + what + " '" + path + "': " + std::strerror(err));
}

inline std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace detail

inline void write_file_atomic(const std::string& path, const void* data, size_t bytes) {
  if (path.empty()) throw std::runtime_error("ember::io: cannot write a file with an empty path");
  if (data == nullptr && bytes > 0)
    throw std::runtime_error("ember::io: null data for '" + path + "'");
  const std::string tmp = path + ".tmp." + std::to_string(long(::getpid()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) detail::io_fail("cannot create temporary file", tmp, errno);
  auto fail = [&](const char* what, int err) {
    if (f != nullptr) std::fclose(f);
    std::remove(tmp.c_str());
    detail::io_fail(what, path, err);
  };
  if (bytes > 0 && std::fwrite(data, 1, bytes, f) != bytes) fail("write failed for", errno);
  if (std::fflush(f) != 0) fail("flush failed for", errno);
  if (::fsync(::fileno(f)) != 0) fail("fsync failed for", errno);
  int rc = std::fclose(f);
  f = nullptr;
  if (rc != 0) fail("close failed for", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename temporary file over", errno);
  // Make the rename itself durable (best effort).
  int dfd = ::open(detail::parent_dir(path).c_str(), O_RDONLY);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// Reads a whole file. Throws std::runtime_error naming the path and strerror on failure.
inline std::vector<uint8_t> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) detail::io_fail("cannot open", path, errno);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  for (;;) {
    size_t n = std::fread(buf, 1, sizeof(buf), f);
    out.insert(out.end(), buf, buf + n);
    if (n < sizeof(buf)) {
      if (std::ferror(f)) {
        int e = errno;
        std::fclose(f);
        detail::io_fail("read failed for", path, e != 0 ? e : EIO);
      }
      break;
    }
  }
  std::fclose(f);
  return out;
}

}  // namespace ember::io
