// @file include/ember/io/atomic_file.hpp
// @brief Atomic whole-file writes (temp file + fsync + rename) and whole-file reads (POSIX).
//
// write_file_atomic writes to "<path>.tmp.<pid>" in the target's directory, flushes and fsyncs
// it, then rename()s it over the target, so a reader (or a crash) sees either the old file or
// the complete new one, never a partial one. After the rename the containing directory is
// fsynced, which makes the rename itself durable (a filesystem that cannot fsync a directory,
// EINVAL, or a directory without read permission, EACCES, is accepted; any other failure is
// reported, although the new file is then in place).
// On any failure before the rename the temp file is removed and ember::Error (a
// std::runtime_error) is thrown, naming the path and strerror(errno); read_file's failures too.
//
// A process killed while writing (SIGKILL, power loss) leaves its "<path>.tmp.<pid>" behind.
// Each write first removes such leftovers of the same target whose process no longer exists
// (kill(pid, 0) fails with ESRCH), so they do not pile up; readers never look at temp files.
// Temp files of live processes (a concurrent writer) are left alone.
// tests/unit/test_crash_safety.cpp kills writers at random moments and checks all of this.
#pragma once
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace ember::io {

namespace detail {

[[noreturn]] inline void io_fail(const std::string& what, const std::string& path, int err) {
  throw Error("ember::io: " + what + " '" + path + "': " + std::strerror(err));
}

inline std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

inline std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// Removes "<path>.tmp.<pid>" files left by processes that no longer exist. Best effort: a file
/// that cannot be removed is simply left (it is never read). Returns how many were removed.
inline int remove_stale_temps(const std::string& path) {
  const std::string prefix = base_name(path) + ".tmp.";
  const std::string dir = parent_dir(path);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  int removed = 0;
  const long self = long(::getpid());
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(digits);
    if (pid <= 0 || pid == self) continue;
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    const std::string full = (dir == "/" ? std::string("/") : dir + "/") + name;
    if (::unlink(full.c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

}  // namespace detail

inline void write_file_atomic(const std::string& path, const void* data, size_t bytes) {
  if (path.empty()) throw Error("ember::io: cannot write a file with an empty path");
  if (data == nullptr && bytes > 0)
    throw Error("ember::io: null data for '" + path + "'");
  detail::remove_stale_temps(path);
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
  // Make the rename itself durable: fsync the directory that holds the entry.
  const std::string dir = detail::parent_dir(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd < 0) {
    if (errno == EACCES) return;  // a directory we may write but not read: nothing more to do
    detail::io_fail("renamed, but cannot open the directory to fsync it for", path, errno);
  }
  if (::fsync(dfd) != 0 && errno != EINVAL) {
    int e = errno;
    ::close(dfd);
    detail::io_fail("renamed, but fsync of its directory failed for", path, e);
  }
  ::close(dfd);
}

inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// Reads a whole file. Throws ember::Error naming the path and strerror on failure.
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
