// @file tests/cuda/test_cuda_emulation.cu
// @brief Phase-by-phase host replays of the implicit-GEMM kernel and the channel reduction, for
//        what running the real kernels (test_cuda_kernels_*.cu, on a GPU or on the host SIMT
//        runtime) cannot show.
//
// The implicit-GEMM kernel's per-thread phases (igemm::TileThread: setup, load_kinfo, load_tiles,
// compute, store) run here for all 256 threads of a block in turn, with the barriers respected,
// over the real grid and over a deliberately small grid, so each block loops over several tiles:
// a path a launch at test sizes never takes (it needs more than 65535 tiles in y). The replay
// also checks that every shared-memory tile slot is written in every k-step. The channel
// reduction's per-thread walk is checked to visit every element exactly once. The other kernels'
// host replays were removed when the host SIMT runtime began running the kernels themselves.
//
// Build: as test_cuda_kernels_conv.cu, with tests/cuda/test_cuda_emulation.cu.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"

// Only the kernels replayed here (not backend.cuh, whose table would instantiate every kernel
// once more in this translation unit).
#include <ember/kernels/cuda/channel_reduce.cuh>
#include <ember/kernels/cuda/conv2d.cuh>
#include <ember/kernels/cuda/conv_transpose2d.cuh>
#include <ember/kernels/cuda/implicit_gemm.cuh>
#include <ember/kernels/cuda/linear.cuh>

#include <ember/kernels/cpu/conv2d.hpp>
#include <ember/kernels/cpu/conv_transpose2d.hpp>
#include <ember/kernels/cpu/linear.hpp>

using ember_cuda_test::bitwise_equal;
using ember_cuda_test::random_int_vec;
using ember_cuda_test::random_vec;
namespace K = ember::kernels;
namespace ecu = ember::cuda;
namespace ecpu = ember::cpu;
namespace ig = ember::cuda::igemm;

using ember_cuda_test::tolerances::kGemmR;
using ember_cuda_test::tolerances::kGemmS;

namespace {

std::vector<float> nan_vec(int64_t n) { return std::vector<float>(static_cast<size_t>(n), NAN); }

/// When true, grids are shrunk to at most 2 x 1 blocks so each block loops over many tiles.
bool g_small_grid = false;

/// Runs igemm_kernel<Op, T> on the host: for every block of `grid`, the kernel's phases for all
/// threads in turn. Checks that every shared-memory tile slot is written in every k-step.
template <class Op, class T>
void emulate_igemm(const Op& op, dim3 grid) {
  using Sub = typename Op::Sub;
  using Th = ig::TileThread<Sub, T>;
  using KInfo = typename Sub::KInfo;
  std::vector<Th> th(T::NT);
  std::vector<KInfo> kt(T::BK);
  struct Tiles {
    typename Th::ATile As;
    typename Th::BTile Bs;
  };
  auto tiles = std::make_unique<Tiles>();
  typename Th::ATile* As = &tiles->As;
  typename Th::BTile* Bs = &tiles->Bs;
  bool all_written = true;
  for (unsigned bz = 0; bz < grid.z; ++bz) {
    const Sub sp = op.sub(static_cast<int>(bz));
    if (sp.M <= 0 || sp.Ngemm <= 0) continue;
    const int64_t tiles_m = (sp.M + T::BM - 1) / T::BM, tiles_n = (sp.Ngemm + T::BN - 1) / T::BN;
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx)
        for (int64_t tm = by; tm < tiles_m; tm += grid.y)
          for (int64_t tn = bx; tn < tiles_n; tn += grid.x) {
            for (int t = 0; t < T::NT; ++t) th[size_t(t)].setup(sp, t, tm * T::BM, tn * T::BN);
            for (int64_t k0 = sp.kb; k0 < sp.ke; k0 += T::BK) {
              std::memset(static_cast<void*>(kt.data()), 0xFF, sizeof(KInfo) * kt.size());
              std::memset(static_cast<void*>(As), 0xFF, sizeof(typename Th::ATile));
              std::memset(static_cast<void*>(Bs), 0xFF, sizeof(typename Th::BTile));
              for (int t = 0; t < T::NT; ++t) th[size_t(t)].load_kinfo(sp, k0, kt.data());
              for (int t = 0; t < T::NT; ++t) th[size_t(t)].load_tiles(sp, k0, kt.data(), *As, *Bs);
              for (int kk = 0; kk < T::BK; ++kk) {
                for (int m = 0; m < T::BM; ++m) all_written &= !std::isnan((*As)[kk][m]);
                for (int n = 0; n < T::BN; ++n) all_written &= !std::isnan((*Bs)[kk][n]);
              }
              for (int t = 0; t < T::NT; ++t) th[size_t(t)].compute(*As, *Bs);
            }
            for (int t = 0; t < T::NT; ++t) th[size_t(t)].store(sp);
          }
  }
  CHECK(all_written);
}

/// Mirrors igemm::run.
template <class Op>
void emulate_run(const Op& op) {
  const ig::GemmGrid g = op.grid();
  if (g.max_m <= 0 || g.max_n <= 0 || g.z <= 0) return;
  ig::with_tile(g.max_m, [&](auto tile) {
    using T = decltype(tile);
    dim3 grid = ig::grid_for<T>(g.max_m, g.max_n, g.z);
    if (g_small_grid) {
      grid.x = std::min(grid.x, 2u);
      grid.y = 1;
    }
    emulate_igemm<Op, T>(op, grid);
  });
}

/// Mirrors igemm::run_splitk (partials, then the ordered sum of splitk_reduce_kernel).
template <class Op>
void emulate_run_splitk(Op op) {
  const ig::GemmGrid g = op.grid();
  if (g.max_m <= 0 || g.max_n <= 0) return;
  if (op.splits <= 1) {
    op.partial = nullptr;
    emulate_run(op);
    return;
  }
  const int64_t mn = g.max_m * g.max_n;
  std::vector<float> partial = nan_vec(int64_t(op.splits) * mn);
  op.partial = partial.data();
  emulate_run(op);
  for (int64_t i = 0; i < mn; ++i) {
    float s = partial[size_t(i)];
    for (int z = 1; z < op.splits; ++z) s += partial[size_t(int64_t(z) * mn + i)];
    op.out[i] = s;
  }
}

/// Mirrors chan::channel_reduce: every (channel, slice, thread) walk, summed in double.
template <int NV, class F, class Fin>
void emulate_channel_reduce(int N, int C, int HW, const F& f, const Fin& fin) {
  if (C <= 0) return;
  const ecu::chan::ChanPlan p = ecu::chan::chan_plan(N, HW);
  for (int c = 0; c < C; ++c) {
    double tot[NV] = {};
    for (int s = 0; s < p.splits; ++s) {
      const int64_t e0 = int64_t(s) * p.chunk;
      const int64_t e1 = std::min(p.cnt, e0 + p.chunk);
      for (int t = 0; t < ecu::chan::kChanThreads; ++t) {
        double acc[NV] = {};
        ecu::chan::chan_thread_accumulate<NV>(f, c, C, p.hw, e0, e1, t, acc);
        for (int v = 0; v < NV; ++v) tot[v] += acc[v];
      }
    }
    fin(c, tot);
  }
}

// ---- conv2d / conv_transpose2d / linear through the builders ----

K::Conv2dShape conv_shape(int N, int C, int H, int W, int Kc, int R, int S, int stride, int pad) {
  K::Conv2dShape s{N, C, H, W, Kc, R, S, stride, pad, 0, 0};
  s.OH = (H + 2 * pad - R) / stride + 1;
  s.OW = (W + 2 * pad - S) / stride + 1;
  return s;
}

K::ConvTranspose2dShape convt_shape(int N, int C, int H, int W, int Kc, int R, int S, int stride,
                                    int pad, int out_pad) {
  K::ConvTranspose2dShape s{N, C, H, W, Kc, R, S, stride, pad, out_pad, 0, 0};
  s.OH = (H - 1) * stride - 2 * pad + R + out_pad;
  s.OW = (W - 1) * stride - 2 * pad + S + out_pad;
  return s;
}

/// Per-channel sums of an (N, C, P) tensor, emulating conv_detail::channel_sums.
void emu_channel_sums(int N, int C, int64_t P, const float* y, float* out) {
  emulate_channel_reduce<1>(N, C, static_cast<int>(P), ecu::conv_detail::ChanSumF{y},
                            ecu::conv_detail::StoreChanSum{out});
}

void check_conv2d(const K::Conv2dShape& s, uint32_t seed) {
  INFO("conv2d N " << s.N << " C " << s.C << " H " << s.H << " W " << s.W << " K " << s.K << " R "
                   << s.R << " S " << s.S << " stride " << s.stride << " pad " << s.pad
                   << (g_small_grid ? " small grid" : ""));
  const int64_t nx = int64_t(s.N) * s.C * s.H * s.W, nw = int64_t(s.K) * s.C * s.R * s.S;
  const int64_t ny = int64_t(s.N) * s.K * s.OH * s.OW;
  const auto x = random_vec(nx, seed), w = random_vec(nw, seed + 1), b = random_vec(s.K, seed + 2);
  const auto dy = random_vec(ny, seed + 3);
  std::vector<float> y = nan_vec(ny), ry = nan_vec(ny), gx = nan_vec(nx), rgx = nan_vec(nx);
  std::vector<float> gw = nan_vec(nw), rgw = nan_vec(nw), gb = nan_vec(s.K), rgb = nan_vec(s.K);
  emulate_run(ecu::conv2d_forward_op(s, x.data(), w.data(), b.data(), y.data()));
  ecpu::conv2d_forward(s, x.data(), w.data(), b.data(), ry.data());
  EMBER_CHECK_CLOSE(y, ry, kGemmR, kGemmS);
  emulate_run(ecu::conv2d_backward_input_op(s, dy.data(), w.data(), gx.data()));
  ecpu::conv2d_backward_input(s, dy.data(), w.data(), rgx.data());
  EMBER_CHECK_CLOSE(gx, rgx, kGemmR, kGemmS);
  emulate_run_splitk(ecu::conv2d_backward_weight_op(s, x.data(), dy.data(), gw.data()));
  emu_channel_sums(s.N, s.K, int64_t(s.OH) * s.OW, dy.data(), gb.data());
  ecpu::conv2d_backward_weight(s, x.data(), dy.data(), rgw.data(), rgb.data());
  EMBER_CHECK_CLOSE(gw, rgw, kGemmR, kGemmS);
  EMBER_CHECK_CLOSE(gb, rgb, kGemmR, kGemmS);
}

void check_conv_transpose2d(const K::ConvTranspose2dShape& s, uint32_t seed) {
  INFO("conv_transpose2d N " << s.N << " C " << s.C << " H " << s.H << " W " << s.W << " K "
                             << s.K << " R " << s.R << " S " << s.S << " stride " << s.stride
                             << " pad " << s.pad << " out_pad " << s.out_pad
                             << (g_small_grid ? " small grid" : ""));
  const int64_t nx = int64_t(s.N) * s.C * s.H * s.W, nw = int64_t(s.C) * s.K * s.R * s.S;
  const int64_t ny = int64_t(s.N) * s.K * s.OH * s.OW;
  const auto x = random_vec(nx, seed), w = random_vec(nw, seed + 1), b = random_vec(s.K, seed + 2);
  const auto dy = random_vec(ny, seed + 3);
  std::vector<float> y = nan_vec(ny), ry = nan_vec(ny), gx = nan_vec(nx), rgx = nan_vec(nx);
  std::vector<float> gw = nan_vec(nw), rgw = nan_vec(nw), gb = nan_vec(s.K), rgb = nan_vec(s.K);
  emulate_run(ecu::conv_transpose2d_forward_op(s, x.data(), w.data(), b.data(), y.data()));
  ecpu::conv_transpose2d_forward(s, x.data(), w.data(), b.data(), ry.data());
  EMBER_CHECK_CLOSE(y, ry, kGemmR, kGemmS);
  emulate_run(ecu::conv_transpose2d_backward_input_op(s, dy.data(), w.data(), gx.data()));
  ecpu::conv_transpose2d_backward_input(s, dy.data(), w.data(), rgx.data());
  EMBER_CHECK_CLOSE(gx, rgx, kGemmR, kGemmS);
  emulate_run_splitk(ecu::conv_transpose2d_backward_weight_op(s, x.data(), dy.data(), gw.data()));
  emu_channel_sums(s.N, s.K, int64_t(s.OH) * s.OW, dy.data(), gb.data());
  ecpu::conv_transpose2d_backward_weight(s, x.data(), dy.data(), rgw.data(), rgb.data());
  EMBER_CHECK_CLOSE(gw, rgw, kGemmR, kGemmS);
  EMBER_CHECK_CLOSE(gb, rgb, kGemmR, kGemmS);
}

void check_linear(int M, int Kin, int Nout, uint32_t seed) {
  const K::LinearShape s{M, Kin, Nout};
  INFO("linear M " << M << " K " << Kin << " N " << Nout << (g_small_grid ? " small grid" : ""));
  const int64_t nx = int64_t(M) * Kin, nw = int64_t(Nout) * Kin, ny = int64_t(M) * Nout;
  const auto x = random_vec(nx, seed), w = random_vec(nw, seed + 1), b = random_vec(Nout, seed + 2);
  const auto dy = random_vec(ny, seed + 3);
  std::vector<float> y = nan_vec(ny), ry = nan_vec(ny), gx = nan_vec(nx), rgx = nan_vec(nx);
  std::vector<float> gw = nan_vec(nw), rgw = nan_vec(nw), gb = nan_vec(Nout), rgb = nan_vec(Nout);
  emulate_run(ecu::linear_forward_op(s, x.data(), w.data(), b.data(), y.data()));
  ecpu::linear_forward(s, x.data(), w.data(), b.data(), ry.data());
  EMBER_CHECK_CLOSE(y, ry, kGemmR, kGemmS);
  emulate_run(ecu::linear_backward_input_op(s, dy.data(), w.data(), gx.data()));
  ecpu::linear_backward_input(s, dy.data(), w.data(), rgx.data());
  EMBER_CHECK_CLOSE(gx, rgx, kGemmR, kGemmS);
  emulate_run_splitk(ecu::linear_backward_weight_op(s, x.data(), dy.data(), gw.data()));
  emulate_channel_reduce<1>(M, Nout, 1, ecu::linear_detail::ColSumF{dy.data()},
                            ecu::linear_detail::StoreColSum{gb.data()});
  ecpu::linear_backward_weight(s, x.data(), dy.data(), rgw.data(), rgb.data());
  EMBER_CHECK_CLOSE(gw, rgw, kGemmR, kGemmS);
  EMBER_CHECK_CLOSE(gb, rgb, kGemmR, kGemmS);
}

}  // namespace

TEST_CASE("emulated conv2d kernels match the CPU", "[cuda][emulation][conv2d]") {
  for (bool small : {false, true}) {
    g_small_grid = small;
    uint32_t seed = 10;
    check_conv2d(conv_shape(1, 1, 1, 1, 1, 1, 1, 1, 0), seed++);
    check_conv2d(conv_shape(2, 3, 5, 7, 4, 3, 2, 2, 1), seed++);
    check_conv2d(conv_shape(3, 5, 9, 9, 17, 3, 3, 1, 1), seed++);
    check_conv2d(conv_shape(2, 4, 6, 5, 33, 5, 3, 3, 2), seed++);
    check_conv2d(conv_shape(2, 2, 3, 3, 3, 3, 3, 1, 2), seed++);
    check_conv2d(conv_shape(3, 7, 11, 13, 65, 1, 1, 2, 0), seed++);
    check_conv2d(conv_shape(2, 16, 7, 7, 16, 3, 3, 2, 1), seed++);
    check_conv2d(conv_shape(2, 17, 5, 6, 32, 3, 3, 1, 1), seed++);
    check_conv2d(conv_shape(16, 8, 8, 8, 8, 3, 3, 1, 1), seed++);  // split-K weight gradient
  }
  g_small_grid = false;
}

TEST_CASE("emulated conv_transpose2d kernels match the CPU", "[cuda][emulation][conv_transpose2d]") {
  for (bool small : {false, true}) {
    g_small_grid = small;
    uint32_t seed = 30;
    check_conv_transpose2d(convt_shape(1, 1, 1, 1, 1, 1, 1, 1, 0, 0), seed++);
    check_conv_transpose2d(convt_shape(2, 3, 5, 4, 2, 3, 3, 2, 1, 1), seed++);
    check_conv_transpose2d(convt_shape(2, 4, 3, 3, 5, 2, 2, 3, 0, 2), seed++);
    check_conv_transpose2d(convt_shape(3, 2, 4, 5, 3, 3, 3, 2, 0, 0), seed++);
    check_conv_transpose2d(convt_shape(2, 5, 4, 4, 7, 4, 4, 2, 1, 0), seed++);
    check_conv_transpose2d(convt_shape(1, 3, 2, 3, 2, 5, 3, 3, 2, 1), seed++);
    check_conv_transpose2d(convt_shape(4, 33, 7, 5, 17, 3, 3, 1, 1, 0), seed++);
    check_conv_transpose2d(convt_shape(2, 3, 1, 1, 40, 3, 3, 2, 1, 1), seed++);
    check_conv_transpose2d(convt_shape(16, 16, 4, 4, 8, 3, 3, 2, 1, 1), seed++);
  }
  g_small_grid = false;
}

TEST_CASE("emulated linear kernels match the CPU", "[cuda][emulation][linear]") {
  for (bool small : {false, true}) {
    g_small_grid = small;
    uint32_t seed = 50;
    check_linear(1, 1, 1, seed++);
    check_linear(7, 13, 5, seed++);
    check_linear(33, 65, 129, seed++);
    check_linear(3, 1000, 2, seed++);
    check_linear(700, 17, 3, seed++);  // split-K over the batch
    check_linear(5, 0, 3, seed++);     // K = 0: y = b, dw empty
    check_linear(0, 4, 3, seed++);     // M = 0: dw = 0, db = 0
  }
  g_small_grid = false;
}

namespace {

struct CountVisits {
  int* visits;
  int* wrong_channel;
  int C, HW;
  EMBER_HD void operator()(int c, int64_t off, double* acc) const {
    visits[off] += 1;
    if ((off / HW) % C != c) *wrong_channel += 1;
    acc[0] += 1.0;
  }
};
struct NoFin {
  EMBER_HD void operator()(int, const double*) const {}
};

}  // namespace

TEST_CASE("emulated channel reduction visits every element once", "[cuda][emulation][chan]") {
  struct Case {
    int N, C, HW;
  };
  for (const Case cs : {Case{1, 1, 1}, Case{3, 2, 1}, Case{5, 3, 7}, Case{2, 2, 255}, Case{2, 2, 256},
                        Case{3, 2, 257}, Case{2, 3, 300}, Case{100, 2, 100}, Case{3, 1, 16384},
                        Case{20000, 1, 1}, Case{5000, 3, 13}}) {
    INFO("N " << cs.N << " C " << cs.C << " HW " << cs.HW);
    const int64_t n = int64_t(cs.N) * cs.C * cs.HW;
    std::vector<int> visits(static_cast<size_t>(n), 0);
    int wrong = 0;
    emulate_channel_reduce<1>(cs.N, cs.C, cs.HW, CountVisits{visits.data(), &wrong, cs.C, cs.HW},
                              NoFin{});
    CHECK(wrong == 0);
    bool once = true;
    for (int v : visits) once &= v == 1;
    CHECK(once);
  }
}

TEST_CASE("split-K plans cover the reduction exactly", "[cuda][emulation][splitk]") {
  for (int64_t M : {1, 16, 17, 33, 64, 512})
    for (int64_t N : {1, 9, 576, 4608})
      for (int64_t kd : {0, 1, 15, 16, 255, 4096, 32768, 67108864}) {
        const ig::SplitPlan p = ig::splitk_plan(M, N, kd);
        INFO("M " << M << " N " << N << " kd " << kd << " -> splits " << p.splits << " chunk "
                  << p.chunk);
        CHECK(p.splits >= 1);
        CHECK(p.splits <= 1024);
        CHECK(p.chunk % ig::kBK == 0);
        if (kd > 0) {
          CHECK(int64_t(p.splits - 1) * p.chunk < kd);  // the last slice is non-empty
          CHECK(int64_t(p.splits) * p.chunk >= kd);     // the slices cover [0, kd)
        }
      }
}
