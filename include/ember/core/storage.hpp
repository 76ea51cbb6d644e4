// @file include/ember/core/storage.hpp
// @brief Storage: a reference-counted float buffer on one device, from a caching allocator.
//
// CPU memory comes from a small caching allocator (64-byte aligned blocks kept in per-size free
// lists), so a steady training loop allocates nothing from the system after its first step.
// The cache is bounded: a freed block is returned to the system instead of cached once the cache
// holds kMaxCached bytes (2 GiB), and a failed system allocation first empties the cache.
// CUDA memory comes from the CUDA backend's caching allocator.
//
// Sizes: a Storage holds at most kMaxNumel floats (core/shape.hpp), and a CPU request larger than
// the machine's memory (RAM + swap, cpu_memory_bytes()) is refused with ember::Error before the
// system allocator is asked; Tensor::empty adds the op and the shape to these errors.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/sysinfo.h>
#elif defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "device.hpp"
#include "shape.hpp"

namespace ember {
namespace detail {

/// This machine's RAM + swap in bytes (0 when unknown): the most one CPU allocation can get.
inline uint64_t cpu_memory_bytes() {
  static const uint64_t bytes = [] {
#if defined(__linux__)
    struct sysinfo si {};
    if (sysinfo(&si) == 0)
      return (uint64_t(si.totalram) + uint64_t(si.totalswap)) * uint64_t(si.mem_unit);
    return uint64_t(0);
#elif defined(__unix__) || defined(__APPLE__)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : uint64_t(0);
#else
    return uint64_t(0);
#endif
  }();
  return bytes;
}

class CpuCachingAllocator {
 public:
  static CpuCachingAllocator& instance() {
    static CpuCachingAllocator* a = new CpuCachingAllocator();  // never destroyed: safe at exit
    return *a;
  }
  void* allocate(size_t bytes) {
    bytes = round(bytes);
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= bytes;
        return p;
      }
    }
    const uint64_t limit = cpu_memory_bytes();
    if (limit != 0 && bytes > limit)
      throw Error("CPU out of memory: " + std::to_string(bytes) + " bytes requested, more than " +
                  "this machine's RAM + swap (" + std::to_string(limit) + " bytes)");
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) {
      release_cache();
      p = std::aligned_alloc(64, bytes);
      if (p == nullptr)
        throw Error("CPU out of memory: tried to allocate " + std::to_string(bytes) + " bytes");
    }
    return p;
  }
  void deallocate(void* p, size_t bytes) {
    bytes = round(bytes);
    std::lock_guard<std::mutex> lk(mu_);
    if (cached_bytes_ + bytes > kMaxCached) {
      std::free(p);
      return;
    }
    free_[bytes].push_back(p);
    cached_bytes_ += bytes;
  }
  /// Bytes held in the free lists now (at most kMaxCached).
  size_t cached_bytes() {
    std::lock_guard<std::mutex> lk(mu_);
    return cached_bytes_;
  }
  static constexpr size_t max_cached_bytes() { return kMaxCached; }
  void release_cache() {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& kv : free_)
      for (void* p : kv.second) std::free(p);
    free_.clear();
    cached_bytes_ = 0;
  }

 private:
  static constexpr size_t kMaxCached = size_t(2) << 30;
  static size_t round(size_t bytes) {
    if (bytes == 0) bytes = 1;
    return (bytes + 255) / 256 * 256;
  }
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
};

}  // namespace detail

class Storage {
 public:
  Storage(int64_t numel, Device device) : numel_(numel), device_(device) {
    if (numel < 0 || numel > kMaxNumel)
      throw Error("Storage: cannot hold " + std::to_string(numel) + " floats (at most 2^61 - 1)");
    size_t bytes = static_cast<size_t>(numel) * sizeof(float);
    if (device == Device::cpu)
      data_ = static_cast<float*>(detail::CpuCachingAllocator::instance().allocate(bytes));
    else
      data_ = static_cast<float*>(detail::cuda("allocate").malloc(bytes));
  }
  ~Storage() {
    if (data_ == nullptr) return;
    size_t bytes = static_cast<size_t>(numel_) * sizeof(float);
    if (device_ == Device::cpu)
      detail::CpuCachingAllocator::instance().deallocate(data_, bytes);
    else if (const detail::CudaBackend* b = detail::cuda_backend())
      b->free(data_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  float* data() const { return data_; }
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }

 private:
  float* data_ = nullptr;
  int64_t numel_;
  Device device_;
};

}  // namespace ember
