// @file include/ember/core/generator.hpp
// @brief Generator: a seeded, counter-based (Philox-4x32-10) random stream.
//
// A generator is (seed, offset). Each fill of n numbers uses counters [offset, offset+ceil(n/4))
// and advances the offset, so the same seed gives the same numbers on the CPU and on CUDA, and
// the result does not depend on thread count or launch configuration.
#pragma once
#include <cstdint>

#include <ember/kernels/params.hpp>

namespace ember {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

  /// Reserves the counters for n numbers and returns where they start.
  kernels::PhiloxState reserve(int64_t n) {
    kernels::PhiloxState st{seed_, offset_};
    offset_ += static_cast<uint64_t>((n + 3) / 4);
    return st;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The process-wide generator used when none is given (module initialisation, rand without a
/// generator). Seed it with manual_seed for reproducible runs.
inline Generator& default_generator() {
  static Generator g(0);
  return g;
}

inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace ember
