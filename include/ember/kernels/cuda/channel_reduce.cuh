// @file include/ember/kernels/cuda/channel_reduce.cuh
// @brief Deterministic per-channel reductions over (N, C, HW) tensors: batch-norm statistics,
//        conv bias gradients (HW = OH*OW) and linear bias gradients (HW = 1).
//
// For every channel c < C: total_v[c] = sum over n < N, j < HW of f(c, (n*C + c)*HW + j)[v],
// v < NV, accumulated in double. Two kernels, no atomics (bitwise reproducible):
//   chan_partial_kernel  grid (S, C'), 256 threads: block (s, c) walks the channel's flattened
//                        index e = n*HW + j over [s*chunk, min(cnt, (s+1)*chunk)), thread t
//                        taking e = s*chunk + t + 256*i (i ascending; n, j stepped without
//                        division), then a fixed shuffle tree writes partial[(c*S + s)*NV + v].
//                        chunk = max(8192, ceil(cnt / 2048)) depends only on the shape.
//   chan_final_kernel    one 256-thread block per channel folds its S partials in a fixed order
//                        and calls fin(c, totals) in thread 0.
// The partial buffer comes from the caching allocator.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "allocator.cuh"
#include "common.cuh"

namespace ember::cuda::chan {

constexpr int kChanThreads = 256;
constexpr int64_t kMinChunk = 8192;
constexpr int64_t kMaxSplits = 2048;

/// Thread `tid`'s share of block (slice [e0, e1) of channel c): f at e = e0 + tid + 256*i,
/// i ascending, with n = e / HW and j = e % HW stepped without division.
template <int NV, class F>
EMBER_HD void chan_thread_accumulate(const F& f, int c, int C, int HW, int64_t e0,
                                          int64_t e1, int tid, double* acc) {
  const int step_n = kChanThreads / HW, step_j = kChanThreads % HW;
  int64_t e = e0 + tid;
  if (e >= e1) return;
  int64_t n = e / HW;
  int j = static_cast<int>(e - n * HW);
  for (; e < e1; e += kChanThreads) {
    f(c, (n * C + c) * HW + j, acc);
    j += step_j;
    n += step_n;
    if (j >= HW) {
      j -= HW;
      ++n;
    }
  }
}

template <int NV, class F>
__global__ void __launch_bounds__(kChanThreads)
    chan_partial_kernel(int C, int HW, int64_t cnt, int64_t chunk, int splits, F f,
                        double* partial) {
  EMBER_SHARED(double, smem, [32]);
  for (int c = blockIdx.y; c < C; c += gridDim.y) {
    const int64_t e0 = int64_t(blockIdx.x) * chunk;
    const int64_t e1 = cnt < e0 + chunk ? cnt : e0 + chunk;
    double acc[NV];
#pragma unroll
    for (int v = 0; v < NV; ++v) acc[v] = 0.0;
    chan_thread_accumulate<NV>(f, c, C, HW, e0, e1, static_cast<int>(threadIdx.x), acc);
#pragma unroll
    for (int v = 0; v < NV; ++v) {
      const double r = block_reduce_sum(acc[v], smem);
      if (threadIdx.x == 0) partial[(int64_t(c) * splits + blockIdx.x) * NV + v] = r;
    }
  }
}

template <int NV, class Fin>
__global__ void __launch_bounds__(kChanThreads)
    chan_final_kernel(int C, int splits, const double* partial, Fin fin) {
  EMBER_SHARED(double, smem, [32]);
  EMBER_SHARED(double, tot, [NV]);
  for (int c = blockIdx.x; c < C; c += gridDim.x) {
#pragma unroll
    for (int v = 0; v < NV; ++v) {
      double acc = 0.0;
      for (int s = threadIdx.x; s < splits; s += kChanThreads)
        acc += partial[(int64_t(c) * splits + s) * NV + v];
      acc = block_reduce_sum(acc, smem);
      if (threadIdx.x == 0) tot[v] = acc;
    }
    if (threadIdx.x == 0) fin(c, tot);
    __syncthreads();  // tot is rewritten for the next channel
  }
}

struct ChanPlan {
  int64_t cnt;    // values per channel
  int64_t chunk;  // values per slice
  int splits;     // slices per channel
  int hw;         // max(HW, 1)
};

inline ChanPlan chan_plan(int N, int HW) {
  ChanPlan p;
  p.cnt = (N > 0 && HW > 0) ? int64_t(N) * HW : 0;
  p.hw = std::max(HW, 1);
  p.chunk = std::max<int64_t>(kMinChunk, ceil_div(p.cnt, kMaxSplits));
  p.splits = static_cast<int>(std::max<int64_t>(1, ceil_div(p.cnt, p.chunk)));
  return p;
}

/// Runs both passes: f(c, offset, double acc[NV]) adds element `offset`'s contributions,
/// fin(c, const double totals[NV]) consumes the channel totals.
template <int NV, class F, class Fin>
inline void channel_reduce(int N, int C, int HW, const F& f, const Fin& fin, cudaStream_t stream,
                           const char* name) {
  if (C <= 0) return;
  const ChanPlan p = chan_plan(N, HW);
  const int64_t cnt = p.cnt, chunk = p.chunk;
  const int hw = p.hw, splits = p.splits;
  Scratch<double> partial(int64_t(C) * splits * NV);
  const dim3 grid1(static_cast<unsigned>(splits), static_cast<unsigned>(std::min(C, 65535)));
  launch(name, "chan_partial_kernel", chan_partial_kernel<NV, F>, grid1, kChanThreads, 0, stream, C,
         hw, cnt, chunk, splits, f, partial.get());
  launch(name, "chan_final_kernel", chan_final_kernel<NV, Fin>, std::min(C, 65535), kChanThreads, 0,
         stream, C, splits, partial.get(), fin);
}

}  // namespace ember::cuda::chan
