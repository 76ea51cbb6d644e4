// @file include/ember/io/checkpoint.hpp
// @brief Saving and loading a module (parameters, buffers), its optimizer state and string
//        metadata in one checksummed binary file.
//
// File layout (all integers little-endian, floats IEEE-754 binary32 little-endian):
//   8 bytes  magic "EMBERCKP"
//   u32      format version (1)
//   u64      payload size: the number of bytes from the end of this field to the CRC
//   payload:
//     u32 meta count, then per entry: u32 key length, key bytes, u32 value length, value bytes
//     u32 tensor count, then per tensor: u32 name length, name bytes, u32 rank, rank x i64 sizes,
//         numel x f32 values (row-major)
//   u32      CRC-32 (the gzip/PNG CRC, io::crc32 in crc32.hpp) of every byte before it
// Tensors are every module.named_parameters(), every module.named_buffers() and, when an
// optimizer is given, every opt->named_state() entry under the prefix "optim.". Values are copied
// to the host for writing and back onto each tensor's own device when loading.
//
// The file is written atomically (io::write_file_atomic): a crash leaves the old checkpoint or
// the new one, never half of one. load_checkpoint checks magic, version, size (truncation), the
// CRC ("checksum mismatch"), and that every tensor of the module (and optimizer) is present with
// the same shape before it changes anything, so a failed load leaves the module untouched. Every
// problem throws ember::Error naming the file and what is wrong.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../nn/module.hpp"         // nn::Module
#include "../optim/optimizer.hpp"   // optim::Optimizer
#include "../tensor.hpp"            // Tensor, NoGradGuard, detail::copy_
#include "atomic_file.hpp"          // write_file_atomic, read_file
#include "crc32.hpp"                // crc32

namespace ember::io {

namespace detail {

constexpr char kCheckpointMagic[8] = {'E', 'M', 'B', 'E', 'R', 'C', 'K', 'P'};
constexpr uint32_t kCheckpointVersion = 1;
constexpr size_t kCheckpointHeader = 8 + 4 + 8;  // magic, version, payload size

[[noreturn]] inline void ckpt_fail(const std::string& path, const std::string& what) {
  throw Error("ember::io: checkpoint '" + path + "': " + what);
}

inline void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
inline void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
inline void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put_u32(out, uint32_t(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

/// Bounds-checked little-endian reader over the payload.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, const std::string& path)
      : p_(data), n_(size), path_(path) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }
  void need(size_t bytes, const char* what) {
    if (bytes > remaining())
      ckpt_fail(path_, std::string("corrupt: ") + what + " at payload byte " +
                           std::to_string(pos_) + " needs " + std::to_string(bytes) +
                           " bytes, only " + std::to_string(remaining()) + " left");
  }
  uint32_t u32(const char* what) {
    need(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(p_[pos_ + size_t(i)]) << (8 * i);
    pos_ += 4;
    return v;
  }
  uint64_t u64(const char* what) {
    need(8, what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(p_[pos_ + size_t(i)]) << (8 * i);
    pos_ += 8;
    return v;
  }
  std::string str(const char* what) {
    uint32_t len = u32(what);
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  const uint8_t* take(size_t bytes, const char* what) {
    need(bytes, what);
    const uint8_t* at = p_ + pos_;
    pos_ += bytes;
    return at;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  std::string path_;
};

struct StoredTensor {
  Shape shape;
  const uint8_t* data = nullptr;  // numel little-endian floats inside the file buffer
};

inline std::vector<std::pair<std::string, Tensor>> checkpoint_tensors(
    const nn::Module& module, optim::Optimizer* opt) {
  std::vector<std::pair<std::string, Tensor>> all = module.named_parameters();
  for (auto& kv : module.named_buffers()) all.push_back(kv);
  if (opt != nullptr)
    for (auto& kv : opt->named_state()) all.emplace_back("optim." + kv.first, kv.second);
  return all;
}

inline void decode_floats(const uint8_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* b = src + 4 * i;
    uint32_t u = uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) |
                 (uint32_t(b[3]) << 24);
    std::memcpy(dst + i, &u, 4);
  }
}

}  // namespace detail

/// Writes `module`'s parameters and buffers, `opt`'s state (when not null) and `meta` to `path`
/// atomically. Throws ember::Error on failure.
inline void save_checkpoint(const std::string& path, const nn::Module& module,
                            optim::Optimizer* opt,
                            const std::map<std::string, std::string>& meta = {}) {
  using detail::checkpoint_tensors;
  using detail::ckpt_fail;
  using detail::kCheckpointMagic;
  using detail::kCheckpointVersion;
  using detail::put_string;
  using detail::put_u32;
  using detail::put_u64;
  std::vector<std::pair<std::string, Tensor>> tensors = checkpoint_tensors(module, opt);
  std::vector<uint8_t> payload;
  put_u32(payload, uint32_t(meta.size()));
  for (auto& [k, v] : meta) {
    put_string(payload, k);
    put_string(payload, v);
  }
  put_u32(payload, uint32_t(tensors.size()));
  std::set<std::string> seen;
  for (auto& [name, t] : tensors) {
    if (!seen.insert(name).second) ckpt_fail(path, "duplicate tensor name '" + name + "'");
    if (!t.defined()) ckpt_fail(path, "tensor '" + name + "' is undefined");
    put_string(payload, name);
    put_u32(payload, uint32_t(t.dim()));
    for (int64_t d : t.shape()) put_u64(payload, uint64_t(d));
    std::vector<float> values = t.to_vector();
    size_t at = payload.size();
    payload.resize(at + 4 * values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      uint32_t u;
      std::memcpy(&u, &values[i], 4);
      for (int b = 0; b < 4; ++b) payload[at + 4 * i + size_t(b)] = uint8_t(u >> (8 * b));
    }
  }
  std::vector<uint8_t> file(kCheckpointMagic, kCheckpointMagic + 8);
  put_u32(file, kCheckpointVersion);
  put_u64(file, uint64_t(payload.size()));
  file.insert(file.end(), payload.begin(), payload.end());
  put_u32(file, io::crc32(file.data(), file.size()));
  try {
    write_file_atomic(path, file);
  } catch (const std::exception& e) {
    ckpt_fail(path, std::string("cannot write: ") + e.what());
  }
}

/// Reads checkpoint bytes held in memory (`name` is used in errors) into `module` (and `opt`'s
/// state when not null, and `*meta` when not null); see load_checkpoint(path, ...) below.
inline void load_checkpoint(const uint8_t* data, size_t size, const std::string& name,
                            nn::Module& module, optim::Optimizer* opt,
                            std::map<std::string, std::string>* meta = nullptr) {
  using detail::ByteReader;
  using detail::StoredTensor;
  using detail::checkpoint_tensors;
  using detail::ckpt_fail;
  using detail::decode_floats;
  using detail::kCheckpointHeader;
  using detail::kCheckpointMagic;
  using detail::kCheckpointVersion;
  const std::string& path = name;
  if (size < 8 || std::memcmp(data, kCheckpointMagic, 8) != 0) {
    if (size == 0) ckpt_fail(path, "truncated: the file is empty");
    if (size < 8 && std::memcmp(data, kCheckpointMagic, size) == 0)
      ckpt_fail(path, "truncated: only " + std::to_string(size) + " bytes");
    ckpt_fail(path, "not an ember checkpoint (bad magic; expected \"EMBERCKP\")");
  }
  if (size < kCheckpointHeader + 4)
    ckpt_fail(path, "truncated: only " + std::to_string(size) + " bytes, the header alone needs " +
                        std::to_string(kCheckpointHeader + 4));
  ByteReader header(data + 8, kCheckpointHeader - 8, path);
  uint32_t version = header.u32("version");
  uint64_t payload_size = header.u64("payload size");
  if (version != kCheckpointVersion)
    ckpt_fail(path, "unsupported format version " + std::to_string(version) + " (this build reads " +
                        std::to_string(kCheckpointVersion) + ")");
  const uint64_t expected = uint64_t(kCheckpointHeader) + payload_size + 4;
  if (payload_size > size || uint64_t(size) < expected)
    ckpt_fail(path, "truncated: the file has " + std::to_string(size) +
                        " bytes but its header declares " + std::to_string(expected) +
                        " (an interrupted copy?)");
  if (uint64_t(size) > expected)
    ckpt_fail(path, "corrupt: the file has " + std::to_string(size) +
                        " bytes but its header declares " + std::to_string(expected) +
                        " (trailing bytes)");
  const size_t body = size - 4;
  ByteReader tail(data + body, 4, path);
  if (io::crc32(data, body) != tail.u32("crc"))
    ckpt_fail(path, "checksum mismatch (the file is corrupt)");

  // ---- parse ----
  ByteReader r(data + kCheckpointHeader, size_t(payload_size), path);
  std::map<std::string, std::string> stored_meta;
  uint32_t nmeta = r.u32("metadata count");
  for (uint32_t i = 0; i < nmeta; ++i) {
    std::string k = r.str("metadata key");
    stored_meta[k] = r.str("metadata value");
  }
  std::map<std::string, StoredTensor> stored;
  uint32_t ntensors = r.u32("tensor count");
  for (uint32_t i = 0; i < ntensors; ++i) {
    std::string name = r.str("tensor name");
    uint32_t rank = r.u32("tensor rank");
    if (rank > 16) ckpt_fail(path, "corrupt: tensor '" + name + "' has rank " + std::to_string(rank));
    StoredTensor st;
    uint64_t numel = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      uint64_t size = r.u64("tensor size");
      if (size == 0 || size > (uint64_t(1) << 40) || numel > (uint64_t(1) << 40) / size)
        ckpt_fail(path, "corrupt: tensor '" + name + "' has an implausible size");
      numel *= size;
      st.shape.push_back(int64_t(size));
    }
    st.data = r.take(size_t(numel) * 4, "tensor data");
    if (!stored.emplace(name, st).second)
      ckpt_fail(path, "corrupt: tensor '" + name + "' appears twice");
  }
  if (r.remaining() != 0)
    ckpt_fail(path, "corrupt: " + std::to_string(r.remaining()) + " unread payload bytes");

  // ---- match against the module (and optimizer) before changing anything ----
  const std::string arch =
      stored_meta.count("arch") ? " (the checkpoint's architecture is \"" + stored_meta["arch"] + "\")"
                                : std::string();
  std::vector<std::pair<std::string, Tensor>> targets = checkpoint_tensors(module, nullptr);
  if (opt != nullptr) {
    bool any_optim = false;
    for (auto& kv : stored)
      if (kv.first.compare(0, 6, "optim.") == 0) any_optim = true;
    if (!any_optim) ckpt_fail(path, "holds no optimizer state (saved without an optimizer)");
    for (auto& kv : opt->named_state()) targets.emplace_back("optim." + kv.first, kv.second);
  }
  std::set<std::string> wanted;
  for (auto& [name, t] : targets) {
    wanted.insert(name);
    auto it = stored.find(name);
    if (it == stored.end())
      ckpt_fail(path, "tensor '" + name + "' of shape " + to_string(t.shape()) +
                          " is missing from the file" + arch);
    if (it->second.shape != t.shape())
      ckpt_fail(path, "tensor '" + name + "' has shape " + to_string(it->second.shape) +
                          " in the file but " + to_string(t.shape()) + " in the " +
                          (name.compare(0, 6, "optim.") == 0 ? "optimizer" : "module") + arch);
  }
  for (auto& kv : stored) {
    if (kv.first.compare(0, 6, "optim.") == 0) {
      if (opt != nullptr && !wanted.count(kv.first))
        ckpt_fail(path, "optimizer state '" + kv.first + "' is not in this optimizer" + arch);
      continue;
    }
    if (!wanted.count(kv.first))
      ckpt_fail(path, "tensor '" + kv.first + "' of shape " + to_string(kv.second.shape) +
                          " in the file is not in the module" + arch);
  }

  // ---- copy values ----
  NoGradGuard guard;
  for (auto& [name, t] : targets) {
    const StoredTensor& st = stored.at(name);
    Tensor host = Tensor::empty(t.shape(), Device::cpu);
    decode_floats(st.data, host.data(), size_t(host.numel()));
    ember::detail::copy_(host, t);
  }
  if (meta != nullptr) *meta = std::move(stored_meta);
}

/// Reads `path` into `module` (and `opt`'s state when not null, and `*meta` when not null).
/// Every parameter and buffer of the module (and every optimizer state tensor) must be in the
/// file with the same shape; the file must hold no other module tensors. Values are copied in
/// place onto each tensor's device. Throws ember::Error naming the file and the problem.
inline void load_checkpoint(const std::string& path, nn::Module& module, optim::Optimizer* opt,
                            std::map<std::string, std::string>* meta = nullptr) {
  std::vector<uint8_t> file;
  try {
    file = read_file(path);
  } catch (const std::exception& e) {
    detail::ckpt_fail(path, std::string("cannot read: ") + e.what());
  }
  load_checkpoint(file.data(), file.size(), path, module, opt, meta);
}

}  // namespace ember::io
