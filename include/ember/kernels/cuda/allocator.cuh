// @file include/ember/kernels/cuda/allocator.cuh
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
//
// Exact mode (EMBER_CUDA_ALLOCATOR=exact in the environment, or set_caching(false)): every
// request is its own cudaMalloc of exactly the bytes asked for and every free a cudaFree, so
// compute-sanitizer and the host SIMT runtime's AddressSanitizer see each buffer's true bounds
// and every use after free. tests/gpu-check.sh's sanitizer runs and the emulated test suite use
// it; tests of the cache itself turn caching back on for their duration (CachingScope).
//
// Devices: each block remembers the device it was allocated on (cudaGetDevice at allocation) and
// is only handed out again on that device.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
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
    std::lock_guard<std::mutex> lk(mu_);
    const size_t size = caching_ ? round_size(bytes) : (bytes == 0 ? 1 : bytes);
    if (size == 0) throw_oom(bytes, cached_bytes_);
    const int dev = current_device();
    auto it = free_.find(Key{dev, size});
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_bytes_ -= size;
      note_alloc(p, size, dev);
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
    note_alloc(p, size, dev);
    return p;
  }

  void deallocate(void* p) {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = live_.find(p);
    if (it == live_.end())
      throw ember::Error("CUDA allocator: free of a pointer it did not allocate");
    const Block b = it->second;
    live_.erase(it);
    in_use_ -= b.size;
    if (!caching_) {
      // cudaFree waits for the work queued on the device, so no kernel can still use p.
      const cudaError_t err = cudaFree(p);
      if (err != cudaSuccess) throw_cuda_error(err, "cudaFree", __FILE__, __LINE__);
      return;
    }
    free_[Key{b.device, b.size}].push_back(p);
    cached_bytes_ += b.size;
  }

  /// Turns caching on or off (off: exact mode, see the file comment); returns the previous
  /// setting. Turning it off releases the cache.
  bool set_caching(bool on) {
    std::lock_guard<std::mutex> lk(mu_);
    const bool was = caching_;
    caching_ = on;
    if (!on) release_cached_locked();
    return was;
  }
  bool caching() {
    std::lock_guard<std::mutex> lk(mu_);
    return caching_;
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
  struct Key {
    int device;
    size_t size;
    bool operator<(const Key& o) const {
      return device != o.device ? device < o.device : size < o.size;
    }
  };
  struct Block {
    size_t size;
    int device;
  };

  CachingAllocator() {
    const char* e = std::getenv("EMBER_CUDA_ALLOCATOR");
    caching_ = !(e != nullptr && std::string(e) == "exact");
  }

  static int current_device() {
    int d = 0;
    if (cudaGetDevice(&d) != cudaSuccess) {
      (void)cudaGetLastError();
      d = 0;
    }
    return d;
  }

  void note_alloc(void* p, size_t size, int device) {
    live_[p] = Block{size, device};
    in_use_ += size;
    if (in_use_ > peak_) peak_ = in_use_;
  }

  void release_cached_locked() {
    // Kernels queued on any stream may still use a cached block (it was freed in stream order):
    // wait for the device before giving the memory back.
    (void)cudaDeviceSynchronize();
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
  bool caching_ = true;
  std::map<Key, std::vector<void*>> free_;  // (device, size class) -> free blocks
  std::unordered_map<void*, Block> live_;   // live block -> size class and device
  uint64_t raw_malloc_count_ = 0;
  uint64_t in_use_ = 0;
  uint64_t peak_ = 0;
  uint64_t cached_bytes_ = 0;
};

inline CachingAllocator& allocator() { return CachingAllocator::instance(); }

/// Caching on (or off) for the lifetime of the scope, then the previous setting again.
class CachingScope {
 public:
  explicit CachingScope(bool on = true) : prev_(allocator().set_caching(on)) {}
  ~CachingScope() { allocator().set_caching(prev_); }
  CachingScope(const CachingScope&) = delete;
  CachingScope& operator=(const CachingScope&) = delete;

 private:
  bool prev_;
};

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
