// @file include/ember/core/threads.hpp
// @brief set_num_threads / get_num_threads: the CPU kernels' thread count, as torch's.
//
// The CPU kernels share one thread pool (include/ember/kernels/cpu/parallel.hpp), sized on first
// use from
// EMBER_NUM_THREADS (default: every hardware thread). set_num_threads changes it at run time; a
// parallel region already running finishes on the old pool. Every CPU result is bitwise the
// same for any thread count (see docs/reliability.md, "Determinism across thread counts").
#pragma once
#include <ember/kernels/cpu/parallel.hpp>

#include "error.hpp"

namespace ember {

/// Makes the CPU kernels use `n` threads (n >= 1, the calling thread included).
inline void set_num_threads(int n) {
  check_arg(n >= 1, "set_num_threads", "the thread count must be >= 1, got ", n);
  cpu::set_num_threads(n);
}

/// The number of threads the CPU kernels use.
inline int get_num_threads() { return cpu::num_threads(); }

}  // namespace ember
