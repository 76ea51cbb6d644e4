// @file tests/cuda/cuda_test_util.hpp
// @brief Helpers for the CUDA kernel tests: GPU-presence skip, device buffers, random data and
//        tolerance comparison against the CPU twins.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include <ember/kernels/cuda/allocator.cuh>
#include <ember/kernels/cuda/common.cuh>
#include <ember/kernels/params.hpp>

namespace ember_cuda_test {

#if defined(EMBER_CUDA_EMULATION)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

/// A test size: `full` on a GPU, `emulated` under the host SIMT runtime
/// (include/ember/kernels/cuda/host),
/// which runs every GPU thread as a CPU fiber, twice. Shrunk sizes keep the code paths of the
/// full ones (the same tile shapes, split-K, several blocks per reduction, channel splits);
/// each test that uses this says what it keeps.
template <class T>
constexpr T gpu_or_emu(T full, T emulated) {
  return kEmulated ? emulated : full;
}

/// True when the CUDA runtime sees at least one device (never throws).
inline bool has_cuda_device() {
  static const bool has = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return n > 0;
  }();
  return has;
}

}  // namespace ember_cuda_test

/// First statement of every GPU test: without a device the test reports itself skipped (SKIP in
/// Catch2 v3; a WARN message and an early return in v2, which has no SKIP).
#if EMBER_CATCH_V3 && defined(SKIP)  // SKIP exists from Catch2 v3.3 on
#define EMBER_SKIP_IF_NO_GPU()                                   \
  do {                                                           \
    if (!::ember_cuda_test::has_cuda_device()) SKIP("SKIPPED: no CUDA device"); \
  } while (0)
#else
#define EMBER_SKIP_IF_NO_GPU()                    \
  do {                                            \
    if (!::ember_cuda_test::has_cuda_device()) {       \
      WARN("SKIPPED: no CUDA device");            \
      return;                                     \
    }                                             \
  } while (0)
#endif

namespace ember_cuda_test {

/// A device buffer of T from ember's caching allocator.
template <class T>
class DevBuf {
 public:
  DevBuf() = default;
  explicit DevBuf(int64_t n) : n_(n) {
    p_ = static_cast<T*>(ember::cuda::allocator().allocate(static_cast<size_t>(n) * sizeof(T)));
  }
  explicit DevBuf(const std::vector<T>& h) : DevBuf(static_cast<int64_t>(h.size())) { upload(h); }
  ~DevBuf() {
    if (p_) ember::cuda::allocator().deallocate(p_);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  DevBuf(DevBuf&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }

  T* get() const { return p_; }
  int64_t size() const { return n_; }

  void upload(const std::vector<T>& h) {
    REQUIRE(static_cast<int64_t>(h.size()) == n_);
    if (n_ == 0) return;
    EMBER_CUDA_CHECK(cudaMemcpyAsync(p_, h.data(), sizeof(T) * h.size(), cudaMemcpyHostToDevice,
                                     ember::cuda::current_stream()),
                     "test upload");
    EMBER_CUDA_CHECK(cudaStreamSynchronize(ember::cuda::current_stream()), "test upload");
  }
  std::vector<T> download() const {
    std::vector<T> h(static_cast<size_t>(n_));
    if (n_ == 0) return h;
    EMBER_CUDA_CHECK(cudaMemcpyAsync(h.data(), p_, sizeof(T) * h.size(), cudaMemcpyDeviceToHost,
                                     ember::cuda::current_stream()),
                     "test download");
    EMBER_CUDA_CHECK(cudaStreamSynchronize(ember::cuda::current_stream()), "test download");
    return h;
  }
  /// Fills the buffer with a byte pattern (e.g. 0xFF -> NaN floats) to catch unwritten outputs.
  void poison(int byte = 0xFF) {
    if (n_ == 0) return;
    EMBER_CUDA_CHECK(cudaMemsetAsync(p_, byte, sizeof(T) * static_cast<size_t>(n_),
                                     ember::cuda::current_stream()),
                     "test poison");
  }

 private:
  T* p_ = nullptr;
  int64_t n_ = 0;
};

/// n floats uniform in [lo, hi) from a seeded mt19937.
inline std::vector<float> random_vec(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(gen);
  return v;
}

/// n small integers in [lo, hi] as floats (exact arithmetic; creates ties for max-pool tests).
inline std::vector<float> random_int_vec(int64_t n, uint32_t seed, int lo, int hi) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(dist(gen));
  return v;
}

/// Result of comparing a GPU result with the CPU reference.
struct Cmp {
  bool ok = true;
  std::string msg;
};

/// Passes when |got - ref| <= atol + rtol * |ref| everywhere, with atol = tol_scale * max|ref|
/// (so a long dot product is judged against the tensor's magnitude). NaN must match NaN.
inline Cmp compare(const std::vector<float>& got, const std::vector<float>& ref, double rtol,
                   double tol_scale) {
  Cmp c;
  if (got.size() != ref.size()) {
    c.ok = false;
    c.msg = "size mismatch";
    return c;
  }
  double maxref = 0.0;
  for (float r : ref)
    if (std::isfinite(r)) maxref = std::max(maxref, std::fabs(double(r)));
  const double atol = tol_scale * std::max(1.0, maxref);
  double worst = 0.0;
  size_t wi = 0;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i], r = ref[i];
    bool fine;
    if (std::isnan(r) || std::isnan(g))
      fine = std::isnan(r) && std::isnan(g);
    else if (std::isinf(r) || std::isinf(g))
      fine = g == r;
    else
      fine = std::fabs(g - r) <= atol + rtol * std::fabs(r);
    if (!fine) {
      ++bad;
      const double d = std::isfinite(g - r) ? std::fabs(g - r) : INFINITY;
      if (bad == 1 || d > worst) {
        worst = d;
        wi = i;
      }
    }
  }
  if (bad) {
    std::ostringstream os;
    os << bad << " of " << ref.size() << " elements differ; worst at " << wi << ": got "
       << got[wi] << " want " << ref[wi] << " (atol " << atol << ", rtol " << rtol << ")";
    c.ok = false;
    c.msg = os.str();
  }
  return c;
}

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    uint32_t x, y;
    std::memcpy(&x, &a[i], 4);
    std::memcpy(&y, &b[i], 4);
    if (x != y) return false;
  }
  return true;
}

/// The current stream (the kernel tests launch on it).
inline cudaStream_t stream() { return ember::cuda::current_stream(); }

/// n NaNs (an output buffer's poison).
inline std::vector<float> nan_vec(int64_t n) { return std::vector<float>(size_t(n), NAN); }

/// A conv2d shape with OH and OW from the convolution arithmetic.
inline ember::kernels::Conv2dShape conv_shape(int N, int C, int H, int W, int Kc, int R, int S,
                                              int stride, int pad) {
  ember::kernels::Conv2dShape s{N, C, H, W, Kc, R, S, stride, pad, 0, 0};
  s.OH = (H + 2 * pad - R) / stride + 1;
  s.OW = (W + 2 * pad - S) / stride + 1;
  return s;
}

/// The kernel tests' tolerances: (rtol, scale) -- see compare above.
namespace tolerances {
constexpr double kExactR = 1e-6, kExactS = 1e-7;  // same formula, same order (bitwise expected)
constexpr double kSumR = 1e-6, kSumS = 1e-6;      // double accumulation on both sides
constexpr double kGemmR = 1e-4, kGemmS = 2e-5;    // float dot products, different order
constexpr double kBnR = 1e-4, kBnS = 1e-5;
}  // namespace tolerances

}  // namespace ember_cuda_test

/// CHECKs a comparison, printing the worst element on failure.
#define EMBER_CHECK_CLOSE(got, ref, rtol, tol_scale)                             \
  do {                                                                           \
    const ::ember_cuda_test::Cmp ember_cmp_ = ::ember_cuda_test::compare((got), (ref), (rtol), (tol_scale)); \
    INFO(ember_cmp_.msg);                                                        \
    CHECK(ember_cmp_.ok);                                                        \
  } while (0)
