// @file kernels/cpu/parallel.hpp
// @brief A persistent thread pool and parallel_for used by every CPU kernel.
//
// The pool is created on first use with EMBER_NUM_THREADS threads (default: the hardware
// concurrency) and lives until program exit. parallel_for splits [0, n) into at most
// num_threads() contiguous chunks; the calling thread runs the first chunk itself. Calls made
// from inside a worker (nested parallelism) run serially, so kernels may call each other freely.
// Chunks are a pure function of (n, grain, num_threads), so results are deterministic.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
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

inline ThreadPool& thread_pool() {
  static ThreadPool pool(default_num_threads());
  return pool;
}

inline int num_threads() { return thread_pool().size(); }

/// Calls fn(begin, end) on disjoint chunks covering [0, n). Each chunk holds at least `grain`
/// items (except when n < grain), so tiny loops stay on the calling thread.
template <class F>
void parallel_for(int64_t n, int64_t grain, const F& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  ThreadPool& pool = thread_pool();
  int64_t chunks = std::min<int64_t>(pool.size(), (n + grain - 1) / grain);
  if (chunks <= 1 || ThreadPool::in_worker()) {
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
