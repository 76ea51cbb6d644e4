// @file tests/cuda/test_cuda_emulation.cu
// @brief Host emulation of the CUDA kernels' index logic, checked against the CPU twins.
//
// These tests need no GPU. The implicit-GEMM kernel is split into __host__ __device__ phases
// (igemm::TileThread: setup, load_kinfo, load_tiles, compute, store); here the phases run on
// the host for all 256 threads of a block in turn, i.e. with the kernel's barriers respected,
// over the real grid (and a deliberately small grid, so blocks loop over several tiles). The
// ops are built by the same *_op() builders the CUDA entry points use, so argument mapping,
// tiling, load slots, phases, split-K slices and bounds handling are all exercised. The
// channel reduction's per-thread walk, the max-pool per-element bodies, the batch-norm and
// group-norm functors and passes, and the GELU bodies are emulated the same way. A GPU run
// (test_cuda_kernels.cu) is still needed for the parts that only exist on the device (shuffles,
// launch configuration).
//
// Build: as test_cuda_kernels.cu, with tests/cuda/test_cuda_emulation.cu.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"

#include "../../kernels/cuda/backend.cuh"

#include "../../kernels/cpu/batch_norm.hpp"
#include "../../kernels/cpu/conv2d.hpp"
#include "../../kernels/cpu/conv_transpose2d.hpp"
#include "../../kernels/cpu/gelu.hpp"
#include "../../kernels/cpu/group_norm.hpp"
#include "../../kernels/cpu/linear.hpp"
#include "../../kernels/cpu/max_pool2d.hpp"

using ember_cuda_test::bitwise_equal;
using ember_cuda_test::random_int_vec;
using ember_cuda_test::random_vec;
namespace K = ember::kernels;
namespace ecu = ember::cuda;
namespace ecpu = ember::cpu;
namespace ig = ember::cuda::igemm;

namespace {

constexpr double kGemmR = 1e-4, kGemmS = 2e-5;
constexpr double kBnR = 1e-4, kBnS = 1e-5;

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
  EMBER_CUDA_HD void operator()(int c, int64_t off, double* acc) const {
    visits[off] += 1;
    if ((off / HW) % C != c) *wrong_channel += 1;
    acc[0] += 1.0;
  }
};
struct NoFin {
  EMBER_CUDA_HD void operator()(int, const double*) const {}
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

TEST_CASE("emulated max_pool2d bodies match the CPU bitwise", "[cuda][emulation][max_pool2d]") {
  struct Case {
    int N, C, H, W, k, stride, pad;
  };
  uint32_t seed = 70;
  for (const Case c : {Case{1, 1, 1, 1, 1, 1, 0}, Case{2, 3, 7, 5, 3, 2, 1}, Case{2, 2, 9, 9, 3, 1, 1},
                       Case{3, 4, 8, 6, 2, 2, 1}, Case{2, 3, 5, 5, 4, 3, 2}, Case{2, 3, 11, 4, 2, 3, 0},
                       Case{4, 2, 16, 16, 2, 2, 0}}) {
    K::MaxPool2dShape s{c.N, c.C, c.H, c.W, c.k, c.stride, c.pad, 0, 0};
    s.OH = (c.H + 2 * c.pad - c.k) / c.stride + 1;
    s.OW = (c.W + 2 * c.pad - c.k) / c.stride + 1;
    INFO("max_pool2d H " << c.H << " W " << c.W << " k " << c.k << " stride " << c.stride << " pad "
                         << c.pad);
    const int64_t nx = int64_t(c.N) * c.C * c.H * c.W, ny = int64_t(c.N) * c.C * s.OH * s.OW;
    const auto x = random_int_vec(nx, seed++, -2, 2);
    const auto dy = random_vec(ny, seed++);
    std::vector<float> y = nan_vec(ny), ry = nan_vec(ny), gx = nan_vec(nx), rgx = nan_vec(nx);
    std::vector<int32_t> am(static_cast<size_t>(ny), -5), ram(static_cast<size_t>(ny), -7);
    for (int64_t i = 0; i < ny; ++i)
      ecu::pool_detail::maxpool_fwd_one(s, x.data(), i, y.data(), am.data());
    ecpu::max_pool2d_forward(s, x.data(), ry.data(), ram.data());
    CHECK(bitwise_equal(y, ry));
    CHECK(am == ram);
    for (int64_t i = 0; i < nx; ++i)
      gx[size_t(i)] = ecu::pool_detail::maxpool_bwd_one(s, dy.data(), ram.data(), i);
    ecpu::max_pool2d_backward(s, dy.data(), ram.data(), rgx.data());
    CHECK(bitwise_equal(gx, rgx));
  }
}

TEST_CASE("emulated batch_norm passes match the CPU", "[cuda][emulation][batch_norm]") {
  namespace bn = ember::cuda::bn_detail;
  uint32_t seed = 90;
  for (const K::BatchNormShape s : {K::BatchNormShape{1, 1, 1}, K::BatchNormShape{2, 3, 5},
                                    K::BatchNormShape{3, 7, 1}, K::BatchNormShape{50, 4, 300}}) {
    INFO("batch_norm N " << s.N << " C " << s.C << " HW " << s.HW);
    const int64_t n = int64_t(s.N) * s.C * s.HW;
    const auto x = random_vec(n, seed++, -1.0f, 3.0f), dy = random_vec(n, seed++);
    const auto gamma = random_vec(s.C, seed++, 0.5f, 1.5f), beta = random_vec(s.C, seed++);
    const auto rm0 = random_vec(s.C, seed++), rv0 = random_vec(s.C, seed++, 0.5f, 2.0f);
    const float eps = 1e-5f, momentum = 0.1f;
    const double M = double(s.N) * double(s.HW);

    // forward_train, as batch_norm_forward_train sequences it.
    std::vector<double> mean(size_t(s.C));
    std::vector<float> a(size_t(s.C)), b(size_t(s.C)), sm(size_t(s.C)), si(size_t(s.C));
    std::vector<float> rm = rm0, rv = rv0, y = nan_vec(n);
    emulate_channel_reduce<1>(s.N, s.C, s.HW, bn::SumX{x.data()}, bn::StoreMean{mean.data(), M});
    emulate_channel_reduce<1>(
        s.N, s.C, s.HW, bn::SumSqDev{x.data(), mean.data()},
        bn::FinishForwardTrain{mean.data(), gamma.data(), beta.data(), eps, momentum, M, sm.data(),
                               si.data(), rm.data(), rv.data(), a.data(), b.data()});
    for (int64_t i = 0; i < n; ++i) {
      const int c = bn::bn_channel<uint32_t>(i, s.C, s.HW);
      y[size_t(i)] = bn::bn_affine_one(x[size_t(i)], sm[size_t(c)], a[size_t(c)], b[size_t(c)]);
    }
    std::vector<float> ry = nan_vec(n), rsm(size_t(s.C)), rsi(size_t(s.C)), rrm = rm0, rrv = rv0;
    ecpu::batch_norm_forward_train(s, x.data(), gamma.data(), beta.data(), eps, momentum,
                                   ry.data(), rsm.data(), rsi.data(), rrm.data(), rrv.data());
    EMBER_CHECK_CLOSE(y, ry, kBnR, kBnS);
    EMBER_CHECK_CLOSE(sm, rsm, kBnR, kBnS);
    EMBER_CHECK_CLOSE(si, rsi, kBnR, kBnS);
    EMBER_CHECK_CLOSE(rm, rrm, kBnR, kBnS);
    EMBER_CHECK_CLOSE(rv, rrv, kBnR, kBnS);

    // backward (train and eval), as bn_detail::backward sequences it.
    for (bool train : {true, false}) {
      INFO((train ? "backward_train" : "backward_eval"));
      const std::vector<float>& mu = train ? rsm : rm0;
      const std::vector<float>& vi = train ? rsi : rv0;
      std::vector<double> stats(size_t(2 * s.C)), coef(size_t(3 * s.C));
      for (int c = 0; c < s.C; ++c) {  // bn_prep_kernel
        stats[size_t(2 * c)] = mu[size_t(c)];
        stats[size_t(2 * c + 1)] = train ? double(vi[size_t(c)])
                                         : 1.0 / std::sqrt(double(vi[size_t(c)]) + double(eps));
      }
      std::vector<float> gx = nan_vec(n), gg = nan_vec(s.C), gb = nan_vec(s.C);
      emulate_channel_reduce<2>(
          s.N, s.C, s.HW, bn::BackwardSums{x.data(), dy.data(), stats.data()},
          bn::FinishBackward{stats.data(), gamma.data(), M, train, gg.data(), gb.data(), coef.data()});
      for (int64_t i = 0; i < n; ++i) {
        const int c = bn::bn_channel<uint64_t>(i, s.C, s.HW);
        gx[size_t(i)] = bn::bn_dx_one(x[size_t(i)], dy[size_t(i)], coef.data() + 3 * c);
      }
      std::vector<float> rgx = nan_vec(n), rgg = nan_vec(s.C), rgb = nan_vec(s.C);
      if (train)
        ecpu::batch_norm_backward_train(s, x.data(), dy.data(), gamma.data(), rsm.data(),
                                        rsi.data(), rgx.data(), rgg.data(), rgb.data());
      else
        ecpu::batch_norm_backward_eval(s, x.data(), dy.data(), gamma.data(), rm0.data(),
                                       rv0.data(), eps, rgx.data(), rgg.data(), rgb.data());
      EMBER_CHECK_CLOSE(gx, rgx, kBnR, kBnS);
      EMBER_CHECK_CLOSE(gg, rgg, kBnR, kBnS);
      EMBER_CHECK_CLOSE(gb, rgb, kBnR, kBnS);
    }
  }
}

TEST_CASE("emulated group_norm passes match the CPU", "[cuda][emulation][group_norm]") {
  namespace gn = ember::cuda::gn_detail;
  namespace bn = ember::cuda::bn_detail;  // SumX, SumSqDev are batch norm's
  uint32_t seed = 110;
  for (const K::GroupNormShape s :
       {K::GroupNormShape{1, 1, 1, 1}, K::GroupNormShape{2, 6, 5, 3}, K::GroupNormShape{3, 4, 1, 2},
        K::GroupNormShape{2, 5, 7, 5}, K::GroupNormShape{2, 3, 20000, 1},
        K::GroupNormShape{4, 8, 3, 8}, K::GroupNormShape{3, 12, 17, 4}}) {
    INFO("group_norm N " << s.N << " C " << s.C << " HW " << s.HW << " G " << s.G);
    const int cg = s.C / s.G, D = cg * s.HW;
    const int64_t n = int64_t(s.N) * s.C * s.HW, groups = int64_t(s.N) * s.G;
    const int64_t rows = int64_t(s.N) * s.C;
    const auto x = random_vec(n, seed++, -1.0f, 3.0f), dy = random_vec(n, seed++);
    const auto gamma_v = random_vec(s.C, seed++, 0.5f, 1.5f), beta_v = random_vec(s.C, seed++);
    const float eps = 1e-5f;
    for (bool affine : {true, false}) {
      INFO((affine ? "affine" : "no affine"));
      const float* gamma = affine ? gamma_v.data() : nullptr;
      const float* beta = affine ? beta_v.data() : nullptr;

      // forward, as group_norm_forward sequences it.
      std::vector<double> mean(size_t(groups), NAN), rstd(size_t(groups), NAN);
      std::vector<float> sm = nan_vec(groups), sr = nan_vec(groups), a = nan_vec(rows);
      std::vector<float> y = nan_vec(n);
      emulate_channel_reduce<1>(1, int(groups), D, bn::SumX{x.data()},
                                gn::StoreMean{mean.data(), double(D)});
      emulate_channel_reduce<1>(
          1, int(groups), D, bn::SumSqDev{x.data(), mean.data()},
          gn::FinishStats{mean.data(), eps, double(D), sm.data(), sr.data(), rstd.data()});
      for (int64_t q = 0; q < rows; ++q)  // gn_coef_kernel
        a[size_t(q)] = gn::gn_coef_one(q, s.C, cg, rstd.data(), gamma);
      for (int64_t i = 0; i < n; ++i)  // gn_affine_kernel
        y[size_t(i)] =
            gn::gn_affine_at<uint32_t>(i, s.C, s.HW, cg, x.data(), sm.data(), a.data(), beta);
      std::vector<float> ry = nan_vec(n), rsm = nan_vec(groups), rsr = nan_vec(groups);
      ecpu::group_norm_forward(s, x.data(), gamma, beta, eps, ry.data(), rsm.data(), rsr.data());
      EMBER_CHECK_CLOSE(y, ry, kBnR, kBnS);
      EMBER_CHECK_CLOSE(sm, rsm, kBnR, kBnS);
      EMBER_CHECK_CLOSE(sr, rsr, kBnR, kBnS);

      // backward, as group_norm_backward sequences it, from the CPU's saved statistics.
      std::vector<double> sums(size_t(2 * rows), NAN), coef(size_t(2 * groups), NAN);
      emulate_channel_reduce<2>(1, int(rows), s.HW,
                                gn::RowSums{x.data(), dy.data(), rsm.data(), cg},
                                gn::StoreRowSums{sums.data()});
      std::vector<float> gx = nan_vec(n), gg = nan_vec(s.C), gb = nan_vec(s.C);
      for (int c = 0; c < s.C; ++c)  // gn_param_grad_kernel
        gn::gn_param_grad_one(c, s.N, s.C, s.G, cg, sums.data(), rsr.data(), gg.data(), gb.data());
      for (int64_t r = 0; r < groups; ++r)  // gn_group_coef_kernel
        gn::gn_group_coef_one(r, s.C, cg, double(D), sums.data(), gamma, rsr.data(), coef.data());
      for (int64_t i = 0; i < n; ++i)  // gn_dx_kernel
        gx[size_t(i)] = gn::gn_dx_at<uint64_t>(i, s.C, s.HW, cg, x.data(), dy.data(), gamma,
                                               rsm.data(), rsr.data(), coef.data());
      std::vector<float> rgx = nan_vec(n), rgg = nan_vec(s.C), rgb = nan_vec(s.C);
      ecpu::group_norm_backward(s, x.data(), dy.data(), gamma, rsm.data(), rsr.data(), rgx.data(),
                                rgg.data(), rgb.data());
      EMBER_CHECK_CLOSE(gx, rgx, kBnR, kBnS);
      EMBER_CHECK_CLOSE(gg, rgg, kBnR, kBnS);
      EMBER_CHECK_CLOSE(gb, rgb, kBnR, kBnS);
    }
  }
}

TEST_CASE("emulated gelu bodies match the CPU bitwise", "[cuda][emulation][gelu]") {
  // On the host the bodies call the C library like the CPU kernels, so any difference in the
  // constants or the operation order shows up as a bitwise mismatch.
  namespace gl = ember::cuda::gelu_detail;
  std::vector<float> x = random_vec(10007, 150, -9.0f, 9.0f);
  const std::vector<float> specials = {0.0f,  -0.0f,  NAN,    INFINITY, -INFINITY,
                                       40.0f, -40.0f, 1e-30f, -5.0685f};
  x.insert(x.end(), specials.begin(), specials.end());
  const int64_t n = int64_t(x.size());
  const auto dy = random_vec(n, 151);
  std::vector<float> y = nan_vec(n), ry = nan_vec(n);
  for (int64_t i = 0; i < n; ++i) y[size_t(i)] = gl::erf_fwd_one(x[size_t(i)]);
  ecpu::gelu_forward(n, x.data(), ry.data());
  CHECK(bitwise_equal(y, ry));
  for (int64_t i = 0; i < n; ++i) y[size_t(i)] = gl::erf_bwd_one(x[size_t(i)], dy[size_t(i)]);
  ecpu::gelu_backward(n, x.data(), dy.data(), ry.data());
  CHECK(bitwise_equal(y, ry));
  for (int64_t i = 0; i < n; ++i) y[size_t(i)] = gl::tanh_fwd_one(x[size_t(i)]);
  ecpu::gelu_tanh_forward(n, x.data(), ry.data());
  CHECK(bitwise_equal(y, ry));
  for (int64_t i = 0; i < n; ++i) y[size_t(i)] = gl::tanh_bwd_one(x[size_t(i)], dy[size_t(i)]);
  ecpu::gelu_tanh_backward(n, x.data(), dy.data(), ry.data());
  CHECK(bitwise_equal(y, ry));
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
