// @file tests/support/test_util.hpp
// @brief Small helpers several test files share (one definition each: the test programs are
//        compiled as unity translation units, tests/CMakeLists.txt, so file-local copies with one
//        name would collide).
#pragma once
#include <dirent.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <ember/ember.hpp>

namespace ember_test {

inline const float kNaN = std::numeric_limits<float>::quiet_NaN();

inline bool contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

/// A leaf tensor that requires grad.
inline ember::Tensor leaf(const std::vector<float>& v, const ember::Shape& s) {
  ember::Tensor t = ember::from_vector(v, s);
  t.set_requires_grad(true);
  return t;
}

/// Bitwise CRC-32 (gzip/PNG polynomial) straight from RFC 1952, independent of ember's tables.
inline uint32_t ref_crc32(const std::vector<uint8_t>& v) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t b : v) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

/// A fresh temporary directory ($TMPDIR or /tmp), removed with its files at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && base[0] ? base : "/tmp") + "/ember_test_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = buf.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    for (const std::string& f : list()) std::remove((path + "/" + f).c_str());
    ::rmdir(path.c_str());
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(path.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      ::closedir(d);
    }
    return names;
  }
};

}  // namespace ember_test
