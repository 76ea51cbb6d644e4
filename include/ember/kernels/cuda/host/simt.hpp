// @file include/ember/kernels/cuda/host/simt.hpp
// @brief The host SIMT runtime's execution engine: runs a __global__ function's grid on the CPU
//        with CUDA's execution model, so include/ember/kernels/cuda executes without a GPU.
//
// Model (docs/architecture.md, "Host SIMT emulation"):
//  * Blocks run one after another on the launching host thread. The threads of a block are
//    cooperative fibers (a hand-written x86-64 stack switch; ucontext elsewhere): a thread runs
//    until it reaches __syncthreads(), a warp collective (__shfl*_sync, __syncwarp, votes) or its
//    end, then the next thread of the pass runs. A pass visits the runnable threads in a fixed
//    order; a barrier is released when every thread of the block waits at it, a warp collective
//    when every lane of its mask waits at it (the results are computed then, in lock-step).
//  * Faults are reported as an error naming the kernel: a barrier that not every thread of the
//    block reaches (a thread exited, or threads wait at different __syncthreads), a warp
//    collective that a lane of its mask never reaches, a mask without the calling lane or naming
//    a lane the block does not have, mismatched collectives, a deadlock, a C++ exception thrown
//    by a thread, and a race (below).
//  * Races: every launch runs twice from the same device memory, threads (and blocks) in
//    increasing order and then in decreasing order between barriers, with shared memory
//    poisoned with a different byte pattern each time (0xFF, then 0x7F); the device memory
//    after both runs must be bitwise equal. A missing __syncthreads, two threads writing one
//    element, or a read of shared memory the block never wrote makes them differ.
//    EMBER_SIMT_SCHEDULES=forward|reverse|both (default both) selects the runs.
//  * Shared memory (EMBER_SHARED / EMBER_DYNAMIC_SHARED in common.cuh) is a heap block per
//    thread block, exactly sized, so AddressSanitizer catches out-of-bounds shared accesses;
//    global memory is exact-size heap memory (cudaMalloc in runtime_api.hpp) for the same reason.
// Everything here is used only by builds with EMBER_CUDA_EMULATION (the CMake option of that
// name); nvcc builds never include this directory.
#pragma once

#include <stdlib.h>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define EMBER_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_SIMT_ASAN 1
#endif
#endif
#if defined(EMBER_SIMT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

// The scheduler is trusted code that runs between every two steps of every thread: it is left
// uninstrumented by the sanitizers (the kernels themselves stay fully instrumented).
#if defined(__clang__)
#define EMBER_SIMT_NOSAN __attribute__((no_sanitize("address", "undefined")))
#elif defined(__GNUC__)
#define EMBER_SIMT_NOSAN __attribute__((no_sanitize_address, no_sanitize_undefined))
#else
#define EMBER_SIMT_NOSAN
#endif

// ---- CUDA's vector types for launch geometry (global namespace, as in CUDA) ----
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

// ---- the built-in variables: per host thread, set by the scheduler before a fiber resumes ----
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

#if defined(__x86_64__)
// Switches stacks: saves the callee-saved registers on the current stack, stores the stack
// pointer in *save, loads `load` and restores from it. (MXCSR and the x87 control word are not
// switched: kernels do not change them, and all fibers share the launching thread's.) A new
// fiber's stack is prepared so that the final `ret` enters ember_simt_trampoline, which calls
// r13(r12). Weak symbols: every translation unit that includes this header emits them.
extern "C" void ember_simt_switch(void** save, void* load);
extern "C" void ember_simt_trampoline();
__asm__(
    ".pushsection .text\n"
    ".weak ember_simt_switch\n"
    ".type ember_simt_switch,@function\n"
    "ember_simt_switch:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size ember_simt_switch,.-ember_simt_switch\n"
    ".weak ember_simt_trampoline\n"
    ".type ember_simt_trampoline,@function\n"
    "ember_simt_trampoline:\n"
    "  movq %r12, %rdi\n"
    "  callq *%r13\n"
    "  ud2\n"
    ".size ember_simt_trampoline,.-ember_simt_trampoline\n"
    ".popsection\n");
#endif

namespace ember::simt {

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

enum class Schedules { both, forward, reverse };

inline Schedules schedules_setting() {
  static const Schedules s = [] {
    const char* e = std::getenv("EMBER_SIMT_SCHEDULES");
    if (e == nullptr || std::strcmp(e, "both") == 0 || *e == '\0') return Schedules::both;
    if (std::strcmp(e, "forward") == 0) return Schedules::forward;
    if (std::strcmp(e, "reverse") == 0) return Schedules::reverse;
    std::fprintf(stderr, "EMBER_SIMT_SCHEDULES=%s: expected both, forward or reverse\n", e);
    std::abort();
  }();
  return s;
}

/// Bytes of one fiber stack (EMBER_SIMT_STACK_KB, default 256 KiB; AddressSanitizer's frames
/// are larger than plain ones).
inline size_t stack_bytes() {
  static const size_t n = [] {
    const char* e = std::getenv("EMBER_SIMT_STACK_KB");
    long kb = e ? std::atol(e) : 256;
    if (kb < 64) kb = 64;
    return static_cast<size_t>(kb) * 1024;
  }();
  return n;
}

// ---------------------------------------------------------------------------------------------
// Fiber stacks: mmap'd, with a PROT_NONE guard page below, reused across launches.
// ---------------------------------------------------------------------------------------------

struct Stack {
  char* lo = nullptr;  // lowest usable byte (just above the guard page)
  size_t size = 0;
  // Bytes at the top of the stack whose AddressSanitizer shadow may still hold redzones of frames
  // that never returned: the whole stack while a fiber uses it and after a fault ended or
  // abandoned it; only the few frames at the top (fiber_main and the switch) after a fiber
  // finished normally, since every deeper frame returned and cleared its own redzones.
  // Unpoisoning only these bytes, not the whole 256 KiB, when the stack is reused made the
  // emulated suite's block launches much cheaper.
  size_t dirty = 0;
};

class StackPool {
 public:
  ~StackPool() {
    for (Stack& s : free_) release(s);
  }
  Stack get() {
    if (!free_.empty()) {
      Stack s = free_.back();
      free_.pop_back();
#if defined(EMBER_SIMT_ASAN)
      // A finished fiber's top frames never returned; forget their redzones.
      if (s.dirty > 0) __asan_unpoison_memory_region(s.lo + s.size - s.dirty, s.dirty);
#endif
      s.dirty = s.size;  // until fiber_main ends normally and says how much may be poisoned
      return s;
    }
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t size = (stack_bytes() + page - 1) / page * page;
    void* p =
        mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "ember host SIMT runtime: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(p, page, PROT_NONE);
    return Stack{static_cast<char*>(p) + page, size, size};
  }
  void put(Stack s) {
    free_.push_back(s);
  }

 private:
  static void release(Stack& s) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    munmap(s.lo - page, s.size + page);
  }
  std::vector<Stack> free_;
};

// ---------------------------------------------------------------------------------------------
// Per-launch scheduler state
// ---------------------------------------------------------------------------------------------

enum class St : uint8_t { not_started, runnable, barrier, warp, done };

enum class WarpKind : uint8_t { shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all, sync };

inline const char* warp_kind_name(WarpKind k) {
  switch (k) {
    case WarpKind::shfl_idx:
      return "__shfl_sync";
    case WarpKind::shfl_up:
      return "__shfl_up_sync";
    case WarpKind::shfl_down:
      return "__shfl_down_sync";
    case WarpKind::shfl_xor:
      return "__shfl_xor_sync";
    case WarpKind::ballot:
      return "__ballot_sync";
    case WarpKind::any:
      return "__any_sync";
    case WarpKind::all:
      return "__all_sync";
    case WarpKind::sync:
      return "__syncwarp";
  }
  return "?";
}

struct Site {
  const char* file = "";
  int line = 0;
};

inline std::string site_str(Site s) {
  const char* f = std::strrchr(s.file, '/');
  return std::string(f ? f + 1 : s.file) + ":" + std::to_string(s.line);
}

struct Fiber {
  void* sp = nullptr;
  Stack stack;
  bool has_stack = false;
  void* asan_fake = nullptr;
  St st = St::not_started;
  uint3 tid{0, 0, 0};
  int linear = 0;
  Site site;  // barrier or warp collective it waits at
  WarpKind kind = WarpKind::sync;
  unsigned mask = 0;
  uint64_t value = 0;  // shuffle payload / vote predicate
  int param = 0;       // source lane, delta or lane mask
  int width = 32;
  uint64_t result = 0;
};

struct SharedVar {
  const void* key;
  void* mem;
};

/// One launch in flight on this host thread.
struct Scheduler {
  const char* kernel = "";
  void (*invoke)(const void*) = nullptr;
  const void* args = nullptr;
  dim3 grid, block;
  size_t dyn_smem = 0;
  unsigned char poison = 0xFF;
  std::vector<Fiber> fibers;
  int nthreads = 0;
  Fiber* current = nullptr;
  void* sched_sp = nullptr;
  std::string fault;  // non-empty once the launch failed
  StackPool* pool = nullptr;
  std::vector<SharedVar> shared;  // this block's __shared__ variables
  void* dyn_shared = nullptr;
  size_t static_smem = 0;
#if defined(EMBER_SIMT_ASAN)
  const void* main_bottom = nullptr;
  size_t main_size = 0;
#endif
#if !defined(__x86_64__)
  ucontext_t sched_ctx;
  std::vector<ucontext_t> ctx;
#endif

  std::string thread_name(const Fiber& f) const {
    return "thread (" + std::to_string(f.tid.x) + "," + std::to_string(f.tid.y) + "," +
           std::to_string(f.tid.z) + ") of block (" + std::to_string(blockIdx.x) + "," +
           std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) + ")";
  }
  void set_fault(const std::string& what) {
    if (fault.empty()) fault = what;
  }
};

inline thread_local Scheduler* t_sched = nullptr;

inline Scheduler& sched() {
  if (t_sched == nullptr) {
    std::fprintf(stderr,
                 "ember host SIMT runtime: a device function ran outside a kernel launch\n");
    std::abort();
  }
  return *t_sched;
}

// ---- switching ----

inline void fiber_main(Scheduler* s);

#if defined(__x86_64__)
inline void fiber_entry(void* arg) {
  fiber_main(static_cast<Scheduler*>(arg));
}
#else
inline void fiber_entry_uc(unsigned lo, unsigned hi) {
  const uintptr_t p = (uintptr_t(hi) << 32) | uintptr_t(lo);
  fiber_main(reinterpret_cast<Scheduler*>(p));
}
#endif

/// Scheduler side: runs fiber f until it blocks or ends.
EMBER_SIMT_NOSAN inline void resume(Scheduler& s, Fiber& f) {
  threadIdx = f.tid;
  s.current = &f;
  if (f.st == St::not_started) {
    f.stack = s.pool->get();
    f.has_stack = true;
#if defined(__x86_64__)
    char* top = f.stack.lo + f.stack.size;
    top = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15));
    // Popped by ember_simt_switch: r15 r14 r13 r12 rbx rbp, then `ret` into the trampoline with
    // the stack 16-byte aligned (so its call enters fiber_entry as the ABI expects).
    auto* sp = reinterpret_cast<uint64_t*>(top - 72);
    sp[0] = 0;                                         // r15
    sp[1] = 0;                                         // r14
    sp[2] = reinterpret_cast<uint64_t>(&fiber_entry);  // r13: entry
    sp[3] = reinterpret_cast<uint64_t>(&s);            // r12: its argument
    sp[4] = 0;                                         // rbx
    sp[5] = 0;                                         // rbp (ends frame-pointer walks)
    sp[6] = reinterpret_cast<uint64_t>(&ember_simt_trampoline);
    f.sp = sp;
#else
    ucontext_t& c = s.ctx[size_t(f.linear)];
    getcontext(&c);
    c.uc_stack.ss_sp = f.stack.lo;
    c.uc_stack.ss_size = f.stack.size;
    c.uc_link = nullptr;
    const uintptr_t p = reinterpret_cast<uintptr_t>(&s);
    makecontext(&c, reinterpret_cast<void (*)()>(&fiber_entry_uc), 2, unsigned(p & 0xffffffffu),
                unsigned(p >> 32));
#endif
  }
  f.st = St::runnable;
#if defined(EMBER_SIMT_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack.lo, f.stack.size);
#endif
#if defined(__x86_64__)
  ember_simt_switch(&s.sched_sp, f.sp);
#else
  swapcontext(&s.sched_ctx, &s.ctx[size_t(f.linear)]);
#endif
#if defined(EMBER_SIMT_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  s.current = nullptr;
  if (f.st == St::done && f.has_stack) {
    s.pool->put(f.stack);
    f.has_stack = false;
  }
}

/// Fiber side: back to the scheduler (f.st says why). `finished`: f never runs again.
inline void yield_to_scheduler(Scheduler& s, Fiber& f, bool finished) {
#if defined(EMBER_SIMT_ASAN)
  __sanitizer_start_switch_fiber(finished ? nullptr : &f.asan_fake, s.main_bottom, s.main_size);
#else
  (void)finished;
#endif
#if defined(__x86_64__)
  ember_simt_switch(&f.sp, s.sched_sp);
#else
  swapcontext(&s.ctx[size_t(f.linear)], &s.sched_ctx);
#endif
#if defined(EMBER_SIMT_ASAN)
  __sanitizer_finish_switch_fiber(f.asan_fake, &s.main_bottom, &s.main_size);
#endif
  threadIdx = f.tid;
}

inline void fiber_main(Scheduler* s) {
#if defined(EMBER_SIMT_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &s->main_bottom, &s->main_size);
#endif
  Fiber& f = *s->current;
  try {
    s->invoke(s->args);
  } catch (const std::exception& e) {
    s->set_fault(s->thread_name(f) + " threw an exception: " + e.what());
  } catch (...) {
    s->set_fault(s->thread_name(f) + " threw an exception");
  }
  f.st = St::done;
  {
    // Every frame below this one returned; what may stay poisoned is this frame and the switch.
    const char* top = f.stack.lo + f.stack.size;
    const char* here = static_cast<const char*>(__builtin_frame_address(0));
    const size_t used = here >= f.stack.lo && here < top ? size_t(top - here) : f.stack.size;
    f.stack.dirty = std::min(f.stack.size, used + size_t(8192));
  }
  yield_to_scheduler(*s, f, true);
  std::abort();  // never resumed
}

// ---------------------------------------------------------------------------------------------
// Device-side entry points (called by the builtins in device_builtins.hpp from inside a fiber)
// ---------------------------------------------------------------------------------------------

EMBER_SIMT_NOSAN inline void barrier(Site site) {
  Scheduler& s = sched();
  Fiber& f = *s.current;
  f.st = St::barrier;
  f.site = site;
  yield_to_scheduler(s, f, false);
}

EMBER_SIMT_NOSAN inline uint64_t warp_collective(WarpKind kind, unsigned mask, uint64_t value, int param, int width,
                                Site site) {
  Scheduler& s = sched();
  Fiber& f = *s.current;
  const unsigned lane = static_cast<unsigned>(f.linear) & 31u;
  if (!(mask & (1u << lane))) {
    s.set_fault(std::string(warp_kind_name(kind)) + " at " + site_str(site) + ": " +
                s.thread_name(f) + " (lane " + std::to_string(lane) + ") calls it with mask 0x" +
                [&] {
                  char b[16];
                  std::snprintf(b, sizeof b, "%08x", mask);
                  return std::string(b);
                }() +
                " that does not include its own lane");
    f.st = St::done;
    yield_to_scheduler(s, f, true);
    std::abort();
  }
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    s.set_fault(std::string(warp_kind_name(kind)) + " at " + site_str(site) + ": width " +
                std::to_string(width) + " is not a power of two in [1, 32]");
    f.st = St::done;
    yield_to_scheduler(s, f, true);
    std::abort();
  }
  f.st = St::warp;
  f.site = site;
  f.kind = kind;
  f.mask = mask;
  f.value = value;
  f.param = param;
  f.width = width;
  yield_to_scheduler(s, f, false);
  return f.result;
}

/// The block's instance of the __shared__ variable identified by `key` (allocated, exactly
/// sized and poisoned by the first thread of the block that reaches its declaration).
inline void* shared_var(const void* key, size_t bytes, size_t align) {
  Scheduler& s = sched();
  for (const SharedVar& v : s.shared)
    if (v.key == key) return v.mem;
  if (align < alignof(std::max_align_t)) align = alignof(std::max_align_t);
  void* mem = nullptr;  // exactly `bytes`: AddressSanitizer sees the byte past the end
  if (posix_memalign(&mem, align, std::max<size_t>(bytes, 1)) != 0 || mem == nullptr) {
    std::fprintf(stderr, "ember host SIMT runtime: out of memory for shared memory\n");
    std::abort();
  }
  std::memset(mem, s.poison, bytes);
  s.shared.push_back(SharedVar{key, mem});
  s.static_smem += bytes;
  return mem;
}

inline void* dynamic_shared() {
  Scheduler& s = sched();
  if (s.dyn_shared == nullptr) {
    s.dyn_shared = std::malloc(std::max<size_t>(s.dyn_smem, 1));
    if (s.dyn_shared == nullptr) std::abort();
    std::memset(s.dyn_shared, s.poison, s.dyn_smem);
  }
  return s.dyn_shared;
}

// ---------------------------------------------------------------------------------------------
// Block execution
// ---------------------------------------------------------------------------------------------

inline std::string hex32(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

/// Releases every warp collective whose mask is complete; records faults. Returns the number of
/// threads released.
EMBER_SIMT_NOSAN inline int resolve_warps(Scheduler& s) {
  int released = 0;
  const int n = s.nthreads;
  for (int w0 = 0; w0 < n; w0 += 32) {
    for (int l = 0; l < 32 && w0 + l < n; ++l) {
      Fiber& f = s.fibers[size_t(w0 + l)];
      if (f.st != St::warp) continue;
      const unsigned mask = f.mask;
      bool complete = true;
      for (int j = 0; j < 32; ++j) {
        if (!(mask & (1u << j))) continue;
        if (w0 + j >= n) {
          s.set_fault(std::string(warp_kind_name(f.kind)) + " at " + site_str(f.site) + ": mask " +
                      hex32(mask) + " names lane " + std::to_string(j) + ", which this block of " +
                      std::to_string(n) + " threads does not have");
          return 0;
        }
        const Fiber& g = s.fibers[size_t(w0 + j)];
        if (g.st != St::warp) {
          complete = false;
          continue;
        }
        if (g.mask != mask || g.kind != f.kind) {
          s.set_fault("mismatched warp collectives: " + s.thread_name(f) + " waits at " +
                      warp_kind_name(f.kind) + " (" + site_str(f.site) + ", mask " + hex32(mask) +
                      "), " + s.thread_name(g) + " at " + warp_kind_name(g.kind) + " (" +
                      site_str(g.site) + ", mask " + hex32(g.mask) + ")");
          return 0;
        }
      }
      if (!complete) continue;
      // Every lane of the mask is here: compute all results at once (lock-step).
      unsigned ballot = 0;
      for (int j = 0; j < 32; ++j)
        if ((mask & (1u << j)) && s.fibers[size_t(w0 + j)].value != 0) ballot |= 1u << j;
      for (int j = 0; j < 32; ++j) {
        if (!(mask & (1u << j))) continue;
        Fiber& g = s.fibers[size_t(w0 + j)];
        const int base = j & ~(g.width - 1);
        int src = j;
        switch (g.kind) {
          case WarpKind::shfl_idx:
            src = base + (g.param & (g.width - 1));
            break;
          case WarpKind::shfl_up:
            src = (j - base) >= g.param ? j - g.param : j;
            break;
          case WarpKind::shfl_down:
            src = (j - base) + g.param < g.width ? j + g.param : j;
            break;
          case WarpKind::shfl_xor: {
            const int t = j ^ g.param;
            src = (t >= base && t < base + g.width) ? t : j;
            break;
          }
          default:
            break;
        }
        switch (g.kind) {
          case WarpKind::shfl_idx:
          case WarpKind::shfl_up:
          case WarpKind::shfl_down:
          case WarpKind::shfl_xor:
            if (src < 0 || src > 31 || !(mask & (1u << src))) {
              s.set_fault(std::string(warp_kind_name(g.kind)) + " at " + site_str(g.site) + ": " +
                          s.thread_name(g) + " reads lane " + std::to_string(src) +
                          ", which is not in the mask " + hex32(mask));
              return 0;
            }
            g.result = s.fibers[size_t(w0 + src)].value;
            break;
          case WarpKind::ballot:
            g.result = ballot;
            break;
          case WarpKind::any:
            g.result = ballot != 0;
            break;
          case WarpKind::all:
            g.result = ballot == mask;
            break;
          case WarpKind::sync:
            g.result = 0;
            break;
        }
      }
      for (int j = 0; j < 32; ++j)
        if (mask & (1u << j)) {
          s.fibers[size_t(w0 + j)].st = St::runnable;
          ++released;
        }
    }
  }
  return released;
}

/// Releases __syncthreads once every thread of the block waits at it; records faults.
EMBER_SIMT_NOSAN inline bool resolve_barrier(Scheduler& s) {
  int at = 0, done = 0, other = 0;
  const Fiber* first_at = nullptr;
  const Fiber* first_done = nullptr;
  for (const Fiber& f : s.fibers) {
    if (f.st == St::barrier) {
      ++at;
      if (!first_at) first_at = &f;
    } else if (f.st == St::done) {
      ++done;
      if (!first_done) first_done = &f;
    } else {
      ++other;
    }
  }
  if (at == 0 || other > 0) return false;
  if (done > 0) {
    s.set_fault("__syncthreads at " + site_str(first_at->site) +
                " is not reached by every thread " + "of the block: " + std::to_string(at) +
                " threads wait there (first " + s.thread_name(*first_at) + ") while " +
                std::to_string(done) + " have exited (first " + s.thread_name(*first_done) + ")");
    return false;
  }
  for (const Fiber& f : s.fibers) {
    if (f.site.line != first_at->site.line ||
        (f.site.file != first_at->site.file &&
         std::strcmp(f.site.file, first_at->site.file) != 0)) {
      s.set_fault("divergent __syncthreads: " + s.thread_name(*first_at) + " waits at " +
                  site_str(first_at->site) + ", " + s.thread_name(f) + " at " + site_str(f.site));
      return false;
    }
  }
  for (Fiber& f : s.fibers) f.st = St::runnable;
  return true;
}

/// Describes why no thread can run although some have not finished.
inline void diagnose_deadlock(Scheduler& s) {
  for (const Fiber& f : s.fibers) {
    if (f.st != St::warp) continue;
    const int w0 = f.linear & ~31;
    for (int j = 0; j < 32; ++j) {
      if (!(f.mask & (1u << j))) continue;
      const Fiber& g = s.fibers[size_t(w0 + j)];
      if (g.st == St::warp) continue;
      s.set_fault(std::string(warp_kind_name(f.kind)) + " at " + site_str(f.site) + " (mask " +
                  hex32(f.mask) + ", " + s.thread_name(f) + ") is never reached by lane " +
                  std::to_string(j) + ", which " +
                  (g.st == St::done ? std::string("has exited")
                                    : "waits at __syncthreads at " + site_str(g.site)));
      return;
    }
  }
  s.set_fault("deadlock: no thread of the block can continue");
}

inline void free_block_shared(Scheduler& s) {
  for (SharedVar& v : s.shared) std::free(v.mem);
  s.shared.clear();
  std::free(s.dyn_shared);
  s.dyn_shared = nullptr;
}

/// Runs one block; returns false on a fault (s.fault says what).
EMBER_SIMT_NOSAN inline bool run_block(Scheduler& s, bool reverse) {
  const int n = s.nthreads;
  for (int i = 0; i < n; ++i) {
    Fiber& f = s.fibers[size_t(i)];
    f.st = St::not_started;
    f.asan_fake = nullptr;
  }
  s.static_smem = 0;
  bool ok = true;
  int n_done = 0, n_barrier = 0, n_warp = 0;  // threads in each waiting state
  for (;;) {
    bool ran = false;
    for (int k = 0; k < n; ++k) {
      Fiber& f = s.fibers[size_t(reverse ? n - 1 - k : k)];
      if (f.st == St::not_started || f.st == St::runnable) {
        resume(s, f);
        ran = true;
        if (!s.fault.empty()) break;
        n_done += f.st == St::done;
        n_barrier += f.st == St::barrier;
        n_warp += f.st == St::warp;
      }
    }
    if (!s.fault.empty()) {
      ok = false;
      break;
    }
    bool released = false;
    if (n_warp > 0) {
      const int r = resolve_warps(s);
      n_warp -= r;
      released = r > 0;
    }
    if (s.fault.empty() && n_barrier > 0 && n_warp == 0 && n_barrier + n_done == n) {
      if (resolve_barrier(s)) {
        n_barrier = 0;
        released = true;
      }
    }
    if (!s.fault.empty()) {
      ok = false;
      break;
    }
    if (n_done == n) break;
    if (!ran && !released) {
      diagnose_deadlock(s);
      ok = false;
      break;
    }
  }
  // Fibers abandoned by a fault never finish: take their stacks back (all of it may be poisoned).
  for (Fiber& f : s.fibers)
    if (f.has_stack) {
      f.stack.dirty = f.stack.size;
      s.pool->put(f.stack);
      f.has_stack = false;
    }
  if (ok && s.static_smem + s.dyn_smem > 227u * 1024u) {
    s.set_fault("the block uses " + std::to_string(s.static_smem) + " bytes of static and " +
                std::to_string(s.dyn_smem) +
                " bytes of dynamic shared memory, more than the 227 KiB a block may have");
    ok = false;
  }
  free_block_shared(s);
  return ok;
}

inline bool run_grid(Scheduler& s, bool reverse) {
  const uint64_t gx = s.grid.x, gy = s.grid.y, gz = s.grid.z;
  const uint64_t blocks = gx * gy * gz;
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t lin = reverse ? blocks - 1 - b : b;
    blockIdx = uint3{unsigned(lin % gx), unsigned((lin / gx) % gy), unsigned(lin / (gx * gy))};
    if (!run_block(s, reverse)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The emulated device: memory registry, last error, launch limits
// ---------------------------------------------------------------------------------------------

struct Device {
  std::recursive_mutex mu;                  // one kernel or copy at a time
  std::map<uintptr_t, size_t> allocations;  // device allocations: start -> bytes
  size_t bytes = 0;
  size_t limit = 0;
  std::map<const void*, int> max_dyn_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize
  uint64_t launches = 0;
};

inline Device& device() {
  static Device* d = [] {
    auto* dev = new Device();  // leaked on purpose: usable during static destruction
    const char* e = std::getenv("EMBER_SIMT_MEMORY_MB");
    const long mb = e ? std::atol(e) : 4096;
    dev->limit = static_cast<size_t>(mb > 0 ? mb : 4096) << 20;
    return dev;
  }();
  return *d;
}

/// The allocation containing [p, p + n), or false.
inline bool find_allocation(const void* p, size_t n, uintptr_t* start = nullptr,
                            size_t* size = nullptr) {
  Device& d = device();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = d.allocations.upper_bound(a);
  if (it == d.allocations.begin()) return false;
  --it;
  if (a < it->first || a - it->first > it->second || n > it->second - (a - it->first)) return false;
  if (start) *start = it->first;
  if (size) *size = it->second;
  return true;
}

inline thread_local std::string t_fault_detail;

/// The detail of the last kernel fault on this host thread (then cleared).
inline std::string take_fault_detail() {
  std::string s;
  s.swap(t_fault_detail);
  return s;
}

template <class... P>
struct LaunchArgs {
  void (*kernel)(P...);
  std::tuple<std::decay_t<P>...> params;
};

template <class... P>
inline void invoke_thunk(const void* p) {
  const auto* a = static_cast<const LaunchArgs<P...>*>(p);
  std::apply(a->kernel, a->params);
}

enum class LaunchResult { ok, bad_config, bad_smem, fault };

/// Runs kernel<<<grid, block, smem>>>(args...) on the host. Returns what went wrong, with the
/// description in `why`.
template <class... P, class... A>
inline LaunchResult launch(const char* kernel_name, void (*kernel)(P...), dim3 grid, dim3 block,
                           size_t smem, std::string& why, A&&... args) {
  Device& d = device();
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x > 2147483647u ||
      grid.y > 65535 || grid.z > 65535) {
    why = std::string("invalid launch configuration for ") + kernel_name + ": grid (" +
          std::to_string(grid.x) + "," + std::to_string(grid.y) + "," + std::to_string(grid.z) +
          "), block (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," +
          std::to_string(block.z) + ")";
    return LaunchResult::bad_config;
  }
  std::lock_guard<std::recursive_mutex> lk(d.mu);
  {
    auto it = d.max_dyn_smem.find(reinterpret_cast<const void*>(kernel));
    const size_t allowed = it == d.max_dyn_smem.end() ? 48u * 1024u : size_t(it->second);
    if (smem > allowed) {
      why = std::string(kernel_name) + ": " + std::to_string(smem) +
            " bytes of dynamic shared memory exceed the " + std::to_string(allowed) +
            "-byte limit (raise it with cudaFuncSetAttribute)";
      return LaunchResult::bad_smem;
    }
  }
  ++d.launches;
  LaunchArgs<P...> la{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  StackPool* pool = [] {
    static thread_local StackPool p;
    return &p;
  }();
  Scheduler s;
  s.kernel = kernel_name;
  s.invoke = &invoke_thunk<P...>;
  s.args = &la;
  s.grid = grid;
  s.block = block;
  s.dyn_smem = smem;
  s.pool = pool;
  s.nthreads = static_cast<int>(threads);
  s.fibers.resize(threads);
  for (unsigned z = 0, i = 0; z < block.z; ++z)
    for (unsigned y = 0; y < block.y; ++y)
      for (unsigned x = 0; x < block.x; ++x, ++i) {
        s.fibers[i].tid = uint3{x, y, z};
        s.fibers[i].linear = static_cast<int>(i);
      }
#if !defined(__x86_64__)
  s.ctx.resize(threads);
#endif
  Scheduler* saved = t_sched;
  const uint3 saved_t = threadIdx, saved_b = blockIdx;
  const dim3 saved_bd = blockDim, saved_gd = gridDim;
  t_sched = &s;
  blockDim = block;
  gridDim = grid;
  auto restore = [&] {
    t_sched = saved;
    threadIdx = saved_t;
    blockIdx = saved_b;
    blockDim = saved_bd;
    gridDim = saved_gd;
  };

  const Schedules mode = schedules_setting();
  bool ok;
  if (mode != Schedules::both) {
    s.poison = mode == Schedules::forward ? 0xFF : 0x7F;
    ok = run_grid(s, mode == Schedules::reverse);
  } else {
    // Snapshot the device, run forward, keep the result, restore, run in reverse, compare.
    // Kept between launches (capacity only): fresh buffers would page-fault on every launch.
    static thread_local std::vector<unsigned char> before, after;
    before.clear();
    after.clear();
    before.reserve(d.bytes);
    for (const auto& a : d.allocations) {
      const auto* p = reinterpret_cast<const unsigned char*>(a.first);
      before.insert(before.end(), p, p + a.second);
    }
    s.poison = 0xFF;
    ok = run_grid(s, false);
    if (ok) {
      after.reserve(d.bytes);
      size_t off = 0;
      for (const auto& a : d.allocations) {
        auto* p = reinterpret_cast<unsigned char*>(a.first);
        after.insert(after.end(), p, p + a.second);
        std::memcpy(p, before.data() + off, a.second);
        off += a.second;
      }
      s.poison = 0x7F;
      ok = run_grid(s, true);
    }
    if (ok) {
      size_t off = 0;
      for (const auto& a : d.allocations) {
        const auto* p = reinterpret_cast<const unsigned char*>(a.first);
        if (std::memcmp(p, after.data() + off, a.second) != 0) {
          size_t i = 0;
          while (p[i] == after[off + i]) ++i;
          const size_t e = i & ~size_t(3);
          float fa = 0, fb = 0;
          if (e + 4 <= a.second) {
            std::memcpy(&fa, after.data() + off + e, 4);
            std::memcpy(&fb, p + e, 4);
          }
          char buf[256];
          std::snprintf(buf, sizeof buf,
                        "byte %zu of a %zu-byte allocation (as float: %.9g in increasing thread "
                        "order, %.9g in decreasing order)",
                        i, a.second, double(fa), double(fb));
          s.set_fault(std::string("race or read of unwritten shared memory: the device memory "
                                  "differs between the increasing and the decreasing thread "
                                  "order, first at ") +
                      buf +
                      " (a missing __syncthreads, two threads writing one element, or a "
                      "shared read before any write)");
          ok = false;
          break;
        }
        off += a.second;
      }
    }
  }
  restore();
  if (!ok) {
    why = std::string("kernel ") + kernel_name + ": " + s.fault;
    return LaunchResult::fault;
  }
  return LaunchResult::ok;
}

}  // namespace ember::simt
