// @file include/ember/kernels/cuda/implicit_gemm.cuh
// @brief The tiled implicit-GEMM engine behind conv2d, conv_transpose2d and linear on CUDA.
//
// Computes C[m, n] = sum_{k in [kb, ke)} A(m, k) * B(k, n) for m < M, n < N, where A and B are
// never materialised: an "op" describes how to read them from the real tensors (e.g. B = the
// im2col matrix of a convolution input, read straight from x with zero padding) and where C goes.
//
// Op interface (EMBER_HD const member functions unless noted; structs are plain data):
//   GemmGrid grid() (host)             {max_m, max_n, z}: the largest slice and slice count
//   using Sub = ...;                   sub-problem type; Sub sub(int z) for z = blockIdx.z
//                                      (a convolution phase, a split-K slice, or just *this)
//   Sub::M, Sub::Ngemm, Sub::kb, Sub::ke  (int64) problem size and reduction range of the slice
//   Sub::kAKFast, Sub::kBKFast         true if consecutive k are adjacent in memory for A / B
//                                      (selects the coalesced shared-memory load pattern)
//   KInfo kinfo(int64 k)               per-k decomposition, computed once per k by BK threads
//   RowCtx row(int64 m), ColCtx col(int64 n)   per-row / per-column precomputation
//   float a(RowCtx, KInfo), float b(ColCtx, KInfo)   the A / B elements (bounds -> 0)
//   void store(int64 m, int64 n, float v)            writes C[m, n] (overwrite, =)
//
// Kernel (igemm_kernel<Op, Tile>): a block of NT = (BM/TM)*(BN/TN) = 256 threads owns a BM x BN
// tile of C; per BK-step of k it (1) computes the BK KInfos into shared memory, (2) loads the A
// tile (BM x BK) and B tile (BK x BN) into shared memory (zeros outside M, Ngemm, [kb, ke)),
// (3) every thread accumulates a TM x TN register block with fmaf in ascending k order; the
// phases are separated by __syncthreads(). Thread (tx, ty) owns rows ty + i*(BM/TM) and columns
// tx + j*(BN/TN) (interleaved, so shared-memory reads are conflict-free and stores coalesce
// along n). Blocks loop over tiles (grid-stride in x and y) so any problem size fits the grid
// limits. The per-thread phases live in TileThread as __host__ __device__ functions, so
// tests/cuda/test_cuda_emulation.cu runs the very same code on the host. No atomics: each C
// element is produced by one thread in a fixed order, so the result is bitwise reproducible.
// Tile shapes: TileSmall 16x128 (M <= 16), TileMid 32x128 (M <= 32), TileLarge 64x64 (others),
// all with BK = 16; with_tile() makes that choice from the largest M over the slices.
// Entry points: run(op) launches op.grid() = {max_m, max_n, z}; run_splitk(op) adds the split-K
// scratch and reduction.
//
// Split-K (for weight gradients, whose reduction runs over N*OH*OW or the batch): splitk_plan()
// cuts [0, Kd) into S slices of `chunk` (a multiple of BK) chosen from the shape only (about 512
// blocks in all, >= 256 k per slice, <= 1024 slices); slice z writes its C to partial + z*M*N
// (scratch from the caching allocator), then splitk_reduce_kernel sums the S partials in order
// z = 0..S-1 into the output.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "allocator.cuh"
#include "common.cuh"

namespace ember::cuda::igemm {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int TX = BN / TN;  // threads along n
  static constexpr int TY = BM / TM;  // threads along m
  static constexpr int NT = TX * TY;  // threads per block
  static constexpr int LA = BM * BK / NT;  // A elements loaded per thread per k-step
  static constexpr int LB = BN * BK / NT;  // B elements loaded per thread per k-step
  static_assert(BM % TM == 0 && BN % TN == 0, "tile must divide");
  static_assert(NT % BK == 0 && NT % BM == 0 && NT % BN == 0, "load mapping needs NT % dims");
  static_assert((BM * BK) % NT == 0 && (BN * BK) % NT == 0, "load mapping needs full rounds");
  static_assert(NT >= BK, "BK threads compute the k decompositions");
};

using TileSmall = Tile<16, 128, 16, 2, 4>;
using TileMid = Tile<32, 128, 16, 4, 4>;
using TileLarge = Tile<64, 64, 16, 4, 4>;
constexpr int kBK = 16;  // the BK of every tile (split-K chunks are multiples of it)

/// Per-thread state and phases of one tile of igemm_kernel. The phases are __host__ __device__
/// so tests can run the exact kernel code on the host (serialising the threads between the
/// barriers); the kernel separates them with __syncthreads().
template <class Sub, class T>
struct TileThread {
  using KInfo = typename Sub::KInfo;
  using RowCtx = typename Sub::RowCtx;
  using ColCtx = typename Sub::ColCtx;
  static constexpr int BM = T::BM, BN = T::BN, BK = T::BK, TM = T::TM, TN = T::TN;
  static constexpr int TX = T::TX, TY = T::TY, NT = T::NT, LA = T::LA, LB = T::LB;
  using ATile = float[BK][BM + 1];
  using BTile = float[BK][BN + 1];

  int tid, tx, ty;
  int64_t m0, n0;
  // Fixed load slots for this tile: (row/col within the tile, k within the step).
  RowCtx rc[LA];
  ColCtx cc[LB];
  int amm[LA], akk[LA], bnn[LB], bkk[LB];
  bool av[LA], bv[LB];
  float acc[TM][TN];

  EMBER_HD void setup(const Sub& sp, int tid_, int64_t m0_, int64_t n0_) {
    tid = tid_;
    tx = tid % TX;
    ty = tid / TX;
    m0 = m0_;
    n0 = n0_;
EMBER_UNROLL
    for (int l = 0; l < LA; ++l) {
      const int i = tid + l * NT;
      amm[l] = Sub::kAKFast ? i / BK : i % BM;
      akk[l] = Sub::kAKFast ? i % BK : i / BM;
      av[l] = m0 + amm[l] < sp.M;
      rc[l] = av[l] ? sp.row(m0 + amm[l]) : RowCtx{};
    }
EMBER_UNROLL
    for (int l = 0; l < LB; ++l) {
      const int i = tid + l * NT;
      bnn[l] = Sub::kBKFast ? i / BK : i % BN;
      bkk[l] = Sub::kBKFast ? i % BK : i / BN;
      bv[l] = n0 + bnn[l] < sp.Ngemm;
      cc[l] = bv[l] ? sp.col(n0 + bnn[l]) : ColCtx{};
    }
EMBER_UNROLL
    for (int i = 0; i < TM; ++i)
EMBER_UNROLL
      for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  }

  /// Phase 1 of a k-step: threads tid < BK decompose k0 + tid.
  EMBER_HD void load_kinfo(const Sub& sp, int64_t k0, KInfo* kt) const {
    if (tid < BK && k0 + tid < sp.ke) kt[tid] = sp.kinfo(k0 + tid);
  }

  /// Phase 2: this thread's A and B tile elements (zero outside M, Ngemm and [kb, ke)).
  EMBER_HD void load_tiles(const Sub& sp, int64_t k0, const KInfo* kt, ATile& As,
                                BTile& Bs) const {
EMBER_UNROLL
    for (int l = 0; l < LA; ++l) {
      const int kk = akk[l];
      As[kk][amm[l]] = (av[l] && k0 + kk < sp.ke) ? sp.a(rc[l], kt[kk]) : 0.0f;
    }
EMBER_UNROLL
    for (int l = 0; l < LB; ++l) {
      const int kk = bkk[l];
      Bs[kk][bnn[l]] = (bv[l] && k0 + kk < sp.ke) ? sp.b(cc[l], kt[kk]) : 0.0f;
    }
  }

  /// Phase 3: acc += the TM x TN block of As^T Bs, k ascending.
  EMBER_HD void compute(const ATile& As, const BTile& Bs) {
EMBER_UNROLL
    for (int kk = 0; kk < BK; ++kk) {
      float ar[TM], br[TN];
EMBER_UNROLL
      for (int i = 0; i < TM; ++i) ar[i] = As[kk][ty + i * TY];
EMBER_UNROLL
      for (int j = 0; j < TN; ++j) br[j] = Bs[kk][tx + j * TX];
EMBER_UNROLL
      for (int i = 0; i < TM; ++i)
EMBER_UNROLL
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
    }
  }

  EMBER_HD void store(const Sub& sp) const {
EMBER_UNROLL
    for (int i = 0; i < TM; ++i) {
      const int64_t m = m0 + ty + i * TY;
      if (m >= sp.M) continue;
EMBER_UNROLL
      for (int j = 0; j < TN; ++j) {
        const int64_t n = n0 + tx + j * TX;
        if (n < sp.Ngemm) sp.store(m, n, acc[i][j]);
      }
    }
  }
};

template <class Op, class T>
__global__ void __launch_bounds__(T::NT) igemm_kernel(const Op op) {
  using Sub = typename Op::Sub;
  using Thread = TileThread<Sub, T>;
  using KInfo = typename Sub::KInfo;
  constexpr int BM = T::BM, BN = T::BN, BK = T::BK;

  EMBER_SHARED(float, As, [BK][BM + 1]);
  EMBER_SHARED(float, Bs, [BK][BN + 1]);
  EMBER_SHARED(KInfo, kt, [BK]);

  const Sub sp = op.sub(static_cast<int>(blockIdx.z));
  if (sp.M <= 0 || sp.Ngemm <= 0) return;  // uniform over the block
  const int64_t tiles_m = (sp.M + BM - 1) / BM, tiles_n = (sp.Ngemm + BN - 1) / BN;
  Thread th;
  for (int64_t tm = blockIdx.y; tm < tiles_m; tm += gridDim.y) {
    for (int64_t tn = blockIdx.x; tn < tiles_n; tn += gridDim.x) {
      th.setup(sp, static_cast<int>(threadIdx.x), tm * BM, tn * BN);
      for (int64_t k0 = sp.kb; k0 < sp.ke; k0 += BK) {
        th.load_kinfo(sp, k0, kt);
        __syncthreads();
        th.load_tiles(sp, k0, kt, As, Bs);
        __syncthreads();
        th.compute(As, Bs);
        __syncthreads();  // the next step overwrites kt, As, Bs
      }
      th.store(sp);
    }
  }
}

/// Grid of a launch: tiles of the largest slice (max_m x max_n) in x/y, capped (blocks loop over
/// the remaining tiles), and z slices.
template <class T>
inline dim3 grid_for(int64_t max_m, int64_t max_n, int z) {
  int64_t gx = ceil_div(max_n, T::BN), gy = ceil_div(max_m, T::BM);
  gx = std::min<int64_t>(std::max<int64_t>(gx, 1), int64_t(1) << 30);
  gy = std::min<int64_t>(std::max<int64_t>(gy, 1), 65535);
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(z));
}

/// What an op launches: the largest slice (max_m x max_n) and the number of slices z.
struct GemmGrid {
  int64_t max_m, max_n;
  int z;
};

/// Calls f.template operator()<Tile>() with the tile shape used for a problem whose largest
/// slice has max_m rows (the one place that choice is made).
template <class F>
inline void with_tile(int64_t max_m, F&& f) {
  if (max_m <= TileSmall::BM)
    f(TileSmall{});
  else if (max_m <= TileMid::BM)
    f(TileMid{});
  else
    f(TileLarge{});
}

/// Launches igemm_kernel for op (nothing when the problem is empty).
template <class Op>
inline void run(const Op& op, cudaStream_t stream, const char* name) {
  const GemmGrid g = op.grid();
  if (g.max_m <= 0 || g.max_n <= 0 || g.z <= 0) return;
  if (g.z > 65535) throw ember::Error(std::string(name) + ": too many grid slices");
  with_tile(g.max_m, [&](auto tile) {
    using T = decltype(tile);
    launch(name, "igemm_kernel", igemm_kernel<Op, T>, grid_for<T>(g.max_m, g.max_n, g.z), T::NT, 0,
           stream, op);
  });
}

// ---------------------------------------------------------------------------------------------
// Split-K
// ---------------------------------------------------------------------------------------------

struct SplitPlan {
  int splits;     // S >= 1
  int64_t chunk;  // k per slice, a multiple of kBK (0 when Kd == 0)
};

/// Shape-only split of a reduction of length kd for an M x N output: aims at about
/// kTargetBlocks blocks in all, with at least kMinChunk k per slice and at most kMaxSplits slices.
inline SplitPlan splitk_plan(int64_t M, int64_t N, int64_t kd) {
  constexpr int64_t kTargetBlocks = 512, kMinChunk = 256, kMaxSplits = 1024;
  if (kd <= 0) return {1, 0};
  int64_t tiles = 1;  // tiles of the tile shape run() will pick for M
  with_tile(M, [&](auto tile) {
    using T = decltype(tile);
    tiles = std::max<int64_t>(1, ceil_div(M, T::BM) * ceil_div(N, T::BN));
  });
  int64_t s = std::max<int64_t>(1, kTargetBlocks / tiles);
  s = std::min<int64_t>(s, std::max<int64_t>(1, kd / kMinChunk));
  s = std::min<int64_t>(s, kMaxSplits);
  int64_t chunk = ceil_div(kd, s);
  chunk = ceil_div(chunk, kBK) * kBK;
  s = ceil_div(kd, chunk);
  return {static_cast<int>(s), chunk};
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    splitk_reduce_kernel(int64_t mn, int splits, const T* partial, T* out) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < mn; i += stride) {
    T s = partial[i];
    for (int z = 1; z < splits; ++z) s += partial[int64_t(z) * mn + i];
    out[i] = s;
  }
}

inline void splitk_reduce(int64_t mn, int splits, const float* partial, float* out,
                          cudaStream_t stream, const char* name) {
  if (mn <= 0) return;
  launch(name, "splitk_reduce_kernel", splitk_reduce_kernel<float>, grid_1d(mn), kThreads, 0,
         stream, mn, splits, partial, out);
}

/// Runs a split-K op (fields out, partial, splits; M x Ngemm output): with one slice it writes
/// out directly, else slices go to a scratch buffer that splitk_reduce folds into out.
template <class Op>
inline void run_splitk(Op op, cudaStream_t stream, const char* name) {
  const GemmGrid g = op.grid();
  if (g.max_m <= 0 || g.max_n <= 0) return;
  if (op.splits <= 1) {
    op.partial = nullptr;
    run(op, stream, name);
    return;
  }
  const int64_t mn = g.max_m * g.max_n;
  Scratch<float> partial(int64_t(op.splits) * mn);
  op.partial = partial.get();
  run(op, stream, name);
  splitk_reduce(mn, op.splits, partial.get(), op.out, stream, name);
}

}  // namespace ember::cuda::igemm
