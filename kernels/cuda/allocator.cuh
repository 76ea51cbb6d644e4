// @file kernels/cuda/allocator.cuh
// @brief Caching device allocator: size-class free lists, counters, out-of-memory recovery.
//
// Size classes: requests round up to a multiple of 512 B below 1 MiB and to a multiple of 2 MiB
// from 1 MiB on (a 0-byte request gets a 512-byte block, so every pointer is distinct). Each class
// has its own free list; a freed block goes back to its list and is handed out again to the next
// request of the same class, so a training loop that repeats the same shapes makes no cudaMalloc
// calls after its first step. Blocks are never split or merged.
//
// Stream order: all ember work runs on the single current stream (common.cuh), so a block freed
// on the host while kernels that use it are still queued can be given out at once: every later
// user is queued behind those kernels on the same stream. (set_current_stream synchronises the
// old stream before switching, which keeps this true across a switch.)
//
// Out of memory: when cudaMalloc fails, the (non-sticky) error is cleared, every cached block is
// released (cudaFree) and the allocation is retried once; if that fails too, ember::Error("CUDA
// out of memory: tried to allocate N bytes (X bytes in use, Y bytes cached)") is thrown and the
// allocator stays usable (Y is what was cached before the flush).
//
// Counters: raw_malloc_count (every cudaMalloc call made, failed ones included), bytes_in_use
// (rounded sizes of live blocks), peak_bytes_in_use (since start / reset_peak), bytes_cached.
// The allocator is a leaked singleton: it is never destroyed, so frees during static destruction
// are safe, and cached blocks are reclaimed by the driver at exit.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.cuh"

namespace ember::cuda {

class CachingAllocator {
 public:
  static constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
  static constexpr size_t kSmallRound = 512;
  static constexpr size_t kLargeRound = size_t(2) << 20;  // 2 MiB

  static CachingAllocator& instance() {
    static CachingAllocator* a = new CachingAllocator();  // never destroyed (see file comment)
    return *a;
  }

  /// Rounded block size for a request of `bytes`, or 0 when the rounding would overflow.
  static size_t round_size(size_t bytes) {
    if (bytes == 0) return kSmallRound;
    if (bytes < kSmallLimit) return (bytes + kSmallRound - 1) / kSmallRound * kSmallRound;
    if (bytes > SIZE_MAX - kLargeRound) return 0;
    return (bytes + kLargeRound - 1) / kLargeRound * kLargeRound;
  }

  void* allocate(size_t bytes) {
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lk(mu_);
    if (size == 0) throw_oom(bytes, cached_bytes_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_bytes_ -= size;
      note_alloc(p, size);
      return p;
    }
    void* p = nullptr;
    ++raw_malloc_count_;
    cudaError_t err = cudaMalloc(&p, size);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // clear the error so later calls are not affected
      if (err != cudaErrorMemoryAllocation) throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
      const size_t cached_before = cached_bytes_;
      release_cached_locked();
      p = nullptr;
      ++raw_malloc_count_;
      err = cudaMalloc(&p, size);
      if (err != cudaSuccess) {
        (void)cudaGetLastError();
        if (err != cudaErrorMemoryAllocation)
          throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
        throw_oom(bytes, cached_before);
      }
    }
    note_alloc(p, size);
    return p;
  }

  void deallocate(void* p) {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = live_.find(p);
    if (it == live_.end())
      throw ember::Error("CUDA allocator: free of a pointer it did not allocate");
    const size_t size = it->second;
    live_.erase(it);
    in_use_ -= size;
    free_[size].push_back(p);
    cached_bytes_ += size;
  }

  /// cudaFree every cached (free) block. Live blocks are untouched.
  void empty_cache() {
    std::lock_guard<std::mutex> lk(mu_);
    release_cached_locked();
  }

  uint64_t raw_malloc_count() {
    std::lock_guard<std::mutex> lk(mu_);
    return raw_malloc_count_;
  }
  uint64_t bytes_in_use() {
    std::lock_guard<std::mutex> lk(mu_);
    return in_use_;
  }
  uint64_t peak_bytes_in_use() {
    std::lock_guard<std::mutex> lk(mu_);
    return peak_;
  }
  uint64_t bytes_cached() {
    std::lock_guard<std::mutex> lk(mu_);
    return cached_bytes_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lk(mu_);
    peak_ = in_use_;
  }

 private:
  CachingAllocator() = default;

  void note_alloc(void* p, size_t size) {
    live_[p] = size;
    in_use_ += size;
    if (in_use_ > peak_) peak_ = in_use_;
  }

  void release_cached_locked() {
    // cudaFree synchronises the device, so no queued kernel can still use these blocks.
    for (auto& kv : free_)
      for (void* p : kv.second) (void)cudaFree(p);
    free_.clear();
    cached_bytes_ = 0;
    (void)cudaGetLastError();
  }

  [[noreturn]] void throw_oom(size_t bytes, size_t cached) const {
    throw ember::Error("CUDA out of memory: tried to allocate " + std::to_string(bytes) +
                       " bytes (" + std::to_string(in_use_) + " bytes in use, " +
                       std::to_string(cached) + " bytes cached)");
  }

  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> free blocks
  std::unordered_map<void*, size_t> live_;     // live block -> size class
  uint64_t raw_malloc_count_ = 0;
  uint64_t in_use_ = 0;
  uint64_t peak_ = 0;
  uint64_t cached_bytes_ = 0;
};

inline CachingAllocator& allocator() { return CachingAllocator::instance(); }

/// RAII scratch buffer from the caching allocator for one op's temporaries. Freed (returned to
/// the cache) when it goes out of scope, possibly before the kernels using it have run: that is
/// safe because every later user of the block is queued behind them on the same stream.
template <class T>
class Scratch {
 public:
  explicit Scratch(int64_t count)
      : p_(static_cast<T*>(allocator().allocate(static_cast<size_t>(count) * sizeof(T)))) {}
  ~Scratch() {
    try {
      allocator().deallocate(p_);
    } catch (...) {
    }
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return p_; }

 private:
  T* p_;
};

}  // namespace ember::cuda
