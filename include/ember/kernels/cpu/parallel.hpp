// @file include/ember/kernels/cpu/parallel.hpp
// @brief A persistent thread pool and parallel_for used by every CPU kernel.
//
// The pool is created on first use with EMBER_NUM_THREADS threads (default: the hardware
// concurrency) and lives until program exit; set_num_threads(n) replaces it at run time (as
// torch.set_num_threads): later parallel regions use the new pool, a region already running
// finishes on the old one, which is destroyed (its workers joined) when that region returns.
// parallel_for splits [0, n) into at most num_threads() contiguous chunks; the calling thread runs
// the first chunk itself. Calls made from inside a worker (nested parallelism) run serially, so
// kernels may call each other freely. Chunks depend on the thread count, so a kernel whose result
// depends on how its work is split (a reduction into per-chunk partial sums) must not split with
// parallel_for's chunks: it cuts its work into pieces fixed by the problem size alone and runs
// the pieces with parallel_for(pieces, 1, ...), adding their partial results in piece order
// (conv2d.hpp's weight gradients, reduce.hpp). Every CPU result is then bitwise the same for any
// thread count.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ember::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads) : nthreads_(std::max(1, threads)) {
    for (int i = 1; i < nthreads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return nthreads_; }

  /// Runs fn(t) for t in [0, tasks) across the pool (tasks <= size()); returns when all are done.
  /// The first exception thrown by any task is rethrown here.
  void run(int tasks, const std::function<void(int)>& fn) {
    tasks = std::min(tasks, nthreads_);
    if (tasks <= 1 || in_worker()) {
      for (int t = 0; t < tasks; ++t) fn(t);
      return;
    }
    std::unique_lock<std::mutex> run_lock(run_mu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      tasks_ = tasks;
      pending_ = tasks - 1;
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    in_worker() = true;
    try {
      fn(0);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    in_worker() = false;
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  static bool& in_worker() {
    thread_local bool flag = false;
    return flag;
  }

 private:
  void worker_loop(int index) {
    in_worker() = true;
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job = nullptr;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        if (index >= tasks_) continue;
        job = job_;
      }
      try {
        (*job)(index);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  int nthreads_;
  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  int tasks_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

inline int default_num_threads() {
  if (const char* env = std::getenv("EMBER_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

namespace detail {

/// The current pool, created on first use; replaced by set_num_threads.
struct PoolSlot {
  std::mutex mu;
  std::shared_ptr<ThreadPool> pool;
};

inline PoolSlot& pool_slot() {
  static PoolSlot slot;
  return slot;
}

}  // namespace detail

/// A reference to the current pool: it stays alive while the caller holds it, even if
/// set_num_threads replaces the pool meanwhile.
inline std::shared_ptr<ThreadPool> thread_pool() {
  detail::PoolSlot& slot = detail::pool_slot();
  std::lock_guard<std::mutex> lk(slot.mu);
  if (!slot.pool) slot.pool = std::make_shared<ThreadPool>(default_num_threads());
  return slot.pool;
}

/// Threads the CPU kernels use (the calling thread included).
inline int num_threads() { return thread_pool()->size(); }

/// Makes the CPU kernels use `n` threads from now on (n >= 1; the calling thread counts as one),
/// as torch.set_num_threads. Safe to call at any time from any thread: a parallel region that
/// is running keeps its pool until it returns. Results do not depend on the count (see above).
inline void set_num_threads(int n) {
  if (n < 1)
    throw std::invalid_argument("set_num_threads: the thread count must be >= 1, got " +
                                std::to_string(n));
  std::shared_ptr<ThreadPool> old;
  {
    detail::PoolSlot& slot = detail::pool_slot();
    std::lock_guard<std::mutex> lk(slot.mu);
    if (slot.pool && slot.pool->size() == n) return;
    old = std::move(slot.pool);
    slot.pool = std::make_shared<ThreadPool>(n);
  }
  // `old` is released here, outside the lock: its workers are joined once no region uses it.
}

/// The most pieces a thread-count-independent reduction is cut into (see the file comment):
/// 16 keeps 2, 4, 8 and 16 threads evenly loaded and 3 or 7 threads at >= 3/4 of that.
constexpr int64_t kReductionPieces = 16;

/// How many pieces to cut `units` of reduction work into: as many as possible up to
/// kReductionPieces with at least `min_units` each (1 when units < 2 * min_units). A function of
/// the problem size alone, never of the thread count.
inline int64_t reduction_pieces(int64_t units, int64_t min_units) {
  const int64_t p = units / std::max<int64_t>(min_units, 1);
  return std::max<int64_t>(1, std::min<int64_t>(p, kReductionPieces));
}

/// Calls fn(begin, end) on disjoint chunks covering [0, n). Each chunk holds at least `grain`
/// items (except when n < grain), so tiny loops stay on the calling thread.
template <class F>
void parallel_for(int64_t n, int64_t grain, const F& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (ThreadPool::in_worker() || n <= grain) {
    fn(int64_t(0), n);
    return;
  }
  const std::shared_ptr<ThreadPool> hold = thread_pool();
  ThreadPool& pool = *hold;
  int64_t chunks = std::min<int64_t>(pool.size(), (n + grain - 1) / grain);
  if (chunks <= 1) {
    fn(int64_t(0), n);
    return;
  }
  const int64_t per = (n + chunks - 1) / chunks;
  std::function<void(int)> task = [&](int t) {
    int64_t b = t * per, e = std::min(n, b + per);
    if (b < e) fn(b, e);
  };
  pool.run(static_cast<int>(chunks), task);
}

}  // namespace ember::cpu
