// @file tests/unit/test_cpu_conv_kernels.cpp
// @brief CPU gemm / conv2d / conv_transpose2d / linear kernels against naive double-precision
// loops (gemm here, the rest in tests/support/naive_reference.hpp), over many shapes and every
// instruction-set path the machine supports.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../support/catch.hpp"
#include "../support/naive_reference.hpp"
#include <ember/kernels/cpu/conv2d.hpp>
#include <ember/kernels/cpu/conv_transpose2d.hpp>
#include <ember/kernels/cpu/gemm.hpp>
#include <ember/kernels/cpu/linear.hpp>
#include "../support/test_util.hpp"

namespace {

using ember::cpu::Isa;
using ember::kernels::Conv2dShape;
using ember::kernels::ConvTranspose2dShape;
using ember::kernels::LinearShape;
using ember_test::naive::Sums;
namespace naive = ember_test::naive;

using ember_test::kNaN;

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

/// Per-element bound: 1e-5 * sum|terms| (widened like sqrt(#terms) for very long sums).
bool check_close(const std::string& op, const std::string& shape, const std::vector<float>& got,
                 const Sums& ref) {
  REQUIRE(got.size() == ref.val.size());
  double worst = -1.0;
  size_t worst_i = 0;
  bool ok = true;
  for (size_t i = 0; i < got.size(); ++i) {
    const double scale = std::max(1.0, std::sqrt(ref.terms[i] / 1024.0));
    const double bound = 1e-5 * scale * (ref.mag[i] + 1e-6);
    const double err = std::fabs(static_cast<double>(got[i]) - ref.val[i]);
    const double ratio = std::isfinite(got[i]) ? err / bound : 1e300;
    if (ratio > worst) {
      worst = ratio;
      worst_i = i;
    }
    if (!(ratio <= 1.0)) ok = false;
  }
  if (!ok) {
    INFO("op " << op << " isa " << ember::cpu::isa_name(ember::cpu::active_isa()) << " shape "
               << shape << ": worst element " << worst_i << " got " << got[worst_i] << " ref "
               << ref.val[worst_i] << " (sum|terms| " << ref.mag[worst_i] << ", error/bound "
               << worst << ")");
    CHECK(ok);
  }
  return ok;
}

std::vector<Isa> isas_to_test() {
  std::vector<Isa> v{Isa::generic};
  const Isa hw = ember::cpu::detail::hardware_isa();
  if (static_cast<int>(hw) >= static_cast<int>(Isa::avx2)) v.push_back(Isa::avx2);
  if (hw == Isa::avx512) v.push_back(Isa::avx512);
  return v;
}

struct IsaGuard {
  explicit IsaGuard(Isa isa) { ember::cpu::set_isa_for_testing(isa); }
  ~IsaGuard() { ember::cpu::reset_isa_for_testing(); }
};

// ------------------------------------------------------------------------------------------------
// gemm
// ------------------------------------------------------------------------------------------------

void run_gemm_case(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int pad,
                   uint32_t seed) {
  const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const size_t arows = ta ? K : M, brows = tb ? N : K;
  auto A = random_vec(arows * lda + 1, seed);
  auto B = random_vec(brows * ldb + 1, seed + 1);
  auto C0 = random_vec(static_cast<size_t>(M) * ldc + 1, seed + 2);
  std::vector<float> C = C0;
  if (beta == 0.f)
    for (auto& c : C) c = kNaN;
  ember::cpu::gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  Sums ref(static_cast<size_t>(M) * N);
  std::vector<float> got(static_cast<size_t>(M) * N);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      const size_t o = static_cast<size_t>(i) * N + j;
      for (int k = 0; k < K; ++k) {
        const double a = ta ? A[static_cast<size_t>(k) * lda + i] : A[static_cast<size_t>(i) * lda + k];
        const double b = tb ? B[static_cast<size_t>(j) * ldb + k] : B[static_cast<size_t>(k) * ldb + j];
        ref.add(o, static_cast<double>(alpha) * a * b);
      }
      if (beta != 0.f) ref.add(o, static_cast<double>(beta) * C0[static_cast<size_t>(i) * ldc + j]);
      got[o] = C[static_cast<size_t>(i) * ldc + j];
    }
  std::ostringstream sh;
  sh << "ta=" << ta << " tb=" << tb << " M=" << M << " N=" << N << " K=" << K << " alpha=" << alpha
     << " beta=" << beta << " pad=" << pad;
  check_close("gemm", sh.str(), got, ref);
  // Padding columns of C must be untouched.
  if (pad > 0 && beta != 0.f) {
    bool untouched = true;
    for (int i = 0; i < M; ++i)
      for (int j = N; j < ldc; ++j)
        if (C[static_cast<size_t>(i) * ldc + j] != C0[static_cast<size_t>(i) * ldc + j]) untouched = false;
    INFO("gemm wrote outside the C block: " << sh.str());
    CHECK(untouched);
  }
}

}  // namespace

TEST_CASE("cpu gemm matches naive loops for every transpose, beta and ISA path", "[cpu][gemm]") {
  const int sizes[] = {1, 3, 17, 65, 129};
  const int ks[] = {1, 17, 130, 300};
  for (Isa isa : isas_to_test()) {
    IsaGuard guard(isa);
    REQUIRE(ember::cpu::active_isa() == isa);
    uint32_t seed = 1;
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      for (int M : sizes)
        for (int N : sizes)
          for (int K : ks) {
            // Cover the full grid for beta 0/1 but keep the big corner cheap.
            if (M * N * K > 65 * 65 * 130 && ((M + N + K + t) % 4) != 0) continue;
            const float beta = ((M + N + K) & 1) ? 0.f : 1.f;
            const int pad = (M + K) % 3;
            run_gemm_case(ta, tb, M, N, K, 1.f, beta, pad, seed++);
          }
      run_gemm_case(ta, tb, 7, 33, 5, -0.75f, 0.5f, 2, seed++);
      run_gemm_case(ta, tb, 5, 9, 0, 1.f, 0.5f, 0, seed++);   // K == 0: C = beta C
      run_gemm_case(ta, tb, 5, 9, 0, 1.f, 0.f, 1, seed++);    // K == 0, beta 0: zeros
      run_gemm_case(ta, tb, 6, 10, 4, 0.f, 0.f, 0, seed++);   // alpha == 0
    }
    // Large enough to split across threads and to cross the MC/KC/NC cache blocks.
    run_gemm_case(false, false, 261, 40, 270, 1.f, 0.f, 1, 99);
    run_gemm_case(true, true, 150, 70, 513, 0.5f, 1.f, 0, 98);
    run_gemm_case(false, true, 9, 2100, 300, 1.f, 0.f, 0, 97);
    run_gemm_case(true, false, 64, 600, 40, 1.f, 1.f, 3, 96);
  }
}

// ------------------------------------------------------------------------------------------------
// conv2d
// ------------------------------------------------------------------------------------------------

namespace {

Conv2dShape make_conv(int N, int C, int H, int W, int K, int R, int S, int stride, int pad) {
  Conv2dShape s{N, C, H, W, K, R, S, stride, pad, 0, 0};
  s.OH = (H + 2 * pad - R) / stride + 1;
  s.OW = (W + 2 * pad - S) / stride + 1;
  return s;
}

std::string describe(const Conv2dShape& s) {
  std::ostringstream o;
  o << "N=" << s.N << " C=" << s.C << " H=" << s.H << " W=" << s.W << " K=" << s.K << " R=" << s.R
    << " S=" << s.S << " stride=" << s.stride << " pad=" << s.pad << " -> " << s.OH << "x" << s.OW;
  return o.str();
}

std::string describe(const ConvTranspose2dShape& s) {
  std::ostringstream o;
  o << "N=" << s.N << " C=" << s.C << " H=" << s.H << " W=" << s.W << " K=" << s.K << " R=" << s.R
    << " S=" << s.S << " stride=" << s.stride << " pad=" << s.pad << " out_pad=" << s.out_pad
    << " -> " << s.OH << "x" << s.OW;
  return o.str();
}

/// The CPU kernels of a convolution op (conv2d or conv_transpose2d) and their name.
template <class Shape>
struct ConvKernels {
  std::string name;
  void (*forward)(Shape, const float*, const float*, const float*, float*);
  void (*backward_input)(Shape, const float*, const float*, float*);
  void (*backward_weight)(Shape, const float*, const float*, float*, float*);
};

/// Every pass of one convolution op (with and without bias / db) against the naive passes of
/// `op` (naive::conv2d(s) or naive::conv_transpose2d(s)).
template <class Shape, class NaiveOp>
void run_conv_kernels_case(const ConvKernels<Shape>& kern, const NaiveOp& op, const Shape& s,
                           uint32_t seed) {
  const size_t nx = op.nx, nw = op.nw, ny = op.ny();
  auto x = random_vec(nx, seed), w = random_vec(nw, seed + 1), b = random_vec(s.K, seed + 2);
  auto dy = random_vec(ny, seed + 3);
  const naive::Passes ref = naive::passes(op, x.data(), w.data(), b.data(), dy.data());

  const std::string sh = describe(s), fwd = kern.name + "_forward",
                    bwd_w = kern.name + "_backward_weight";
  std::vector<float> y(ny, kNaN), dx(nx, kNaN), dw(nw, kNaN), db(s.K, kNaN);
  kern.forward(s, x.data(), w.data(), b.data(), y.data());
  check_close(fwd, sh, y, ref.y);
  kern.backward_input(s, dy.data(), w.data(), dx.data());
  check_close(kern.name + "_backward_input", sh, dx, ref.dx);
  kern.backward_weight(s, x.data(), dy.data(), dw.data(), db.data());
  check_close(bwd_w + "(dw)", sh, dw, ref.dw);
  check_close(bwd_w + "(db)", sh, db, ref.db);

  // Null bias / db (the error scale stays that of the biased sum).
  Sums y_nb = ref.y;
  for (size_t i = 0; i < ny; ++i) y_nb.val[i] -= b[(i / (static_cast<size_t>(s.OH) * s.OW)) % s.K];
  std::fill(y.begin(), y.end(), kNaN);
  kern.forward(s, x.data(), w.data(), nullptr, y.data());
  check_close(fwd + "(no bias)", sh, y, y_nb);
  std::fill(dw.begin(), dw.end(), kNaN);
  kern.backward_weight(s, x.data(), dy.data(), dw.data(), nullptr);
  check_close(bwd_w + "(dw, no db)", sh, dw, ref.dw);
}

void run_conv_case(const Conv2dShape& s, uint32_t seed) {
  const ConvKernels<Conv2dShape> kern{"conv2d", ember::cpu::conv2d_forward,
                                      ember::cpu::conv2d_backward_input,
                                      ember::cpu::conv2d_backward_weight};
  run_conv_kernels_case(kern, naive::conv2d(s), s, seed);
}

void run_conv_transpose_case(const ConvTranspose2dShape& s, uint32_t seed) {
  const ConvKernels<ConvTranspose2dShape> kern{
      "conv_transpose2d", ember::cpu::conv_transpose2d_forward,
      ember::cpu::conv_transpose2d_backward_input, ember::cpu::conv_transpose2d_backward_weight};
  run_conv_kernels_case(kern, naive::conv_transpose2d(s), s, seed);
}

ConvTranspose2dShape make_convt(int N, int C, int H, int W, int K, int R, int S, int stride, int pad,
                                int out_pad) {
  ConvTranspose2dShape s{N, C, H, W, K, R, S, stride, pad, out_pad, 0, 0};
  s.OH = (H - 1) * stride - 2 * pad + R + out_pad;
  s.OW = (W - 1) * stride - 2 * pad + S + out_pad;
  return s;
}

std::vector<Conv2dShape> conv_shapes() {
  return {
      // N, C, H, W, K, R, S, stride, pad
      make_conv(1, 1, 5, 7, 1, 1, 1, 1, 0),    make_conv(1, 3, 5, 7, 4, 3, 3, 1, 1),
      make_conv(2, 3, 5, 7, 2, 2, 3, 2, 0),    make_conv(2, 2, 6, 5, 3, 3, 3, 3, 2),
      make_conv(1, 4, 5, 7, 5, 3, 2, 2, 1),    make_conv(3, 5, 9, 9, 6, 3, 3, 1, 2),
      make_conv(1, 2, 3, 3, 3, 1, 1, 1, 2),    make_conv(2, 3, 7, 5, 2, 2, 3, 3, 1),
      make_conv(1, 1, 5, 7, 3, 3, 3, 2, 1),    make_conv(2, 4, 5, 7, 1, 3, 3, 1, 1),
      make_conv(2, 17, 7, 5, 33, 3, 3, 1, 1),  make_conv(1, 6, 1, 1, 4, 1, 1, 1, 0),
      make_conv(1, 3, 4, 9, 2, 1, 3, 1, 0),    make_conv(1, 2, 9, 4, 3, 3, 1, 2, 0),
      make_conv(5, 3, 6, 6, 4, 3, 3, 1, 1),    make_conv(2, 5, 11, 13, 7, 5, 5, 1, 2),
      make_conv(1, 3, 20, 33, 5, 3, 3, 1, 1),
      // >= 32 input channels with stride > 1 (phase-split input-gradient path), incl. a 1x1
      // stride-2 kernel whose odd phases receive no taps at all.
      make_conv(2, 33, 7, 9, 5, 3, 2, 2, 1),   make_conv(1, 32, 8, 7, 3, 2, 3, 3, 2),
      make_conv(2, 32, 5, 5, 4, 1, 1, 2, 0),   make_conv(1, 40, 9, 9, 9, 3, 3, 2, 0),
      // The seed U-Net's convolutions (batch reduced).
      make_conv(3, 1, 16, 16, 16, 3, 3, 1, 1),   make_conv(2, 16, 16, 16, 32, 3, 3, 1, 1),
      make_conv(2, 32, 16, 16, 32, 3, 3, 1, 1),  make_conv(2, 32, 8, 8, 64, 3, 3, 1, 1),
      make_conv(2, 64, 8, 8, 64, 3, 3, 1, 1),    make_conv(3, 64, 4, 4, 64, 3, 3, 1, 1),
      make_conv(2, 32, 8, 8, 32, 3, 3, 1, 1),    make_conv(2, 16, 16, 16, 16, 3, 3, 1, 1),
      make_conv(3, 16, 16, 16, 1, 3, 3, 1, 1),
      // 3x3 pad-1 stride-1 with H*W a multiple of 16 but other widths (dense small-image path:
      // lane masks for rows that wrap inside a 16-pixel group, ragged channel tiles).
      make_conv(3, 5, 4, 12, 9, 3, 3, 1, 1),     make_conv(2, 7, 2, 40, 11, 3, 3, 1, 1),
      make_conv(2, 3, 16, 1, 2, 3, 3, 1, 1),     make_conv(1, 9, 1, 32, 3, 3, 3, 1, 1),
  };
}

std::vector<ConvTranspose2dShape> convt_shapes() {
  return {
      // N, C, H, W, K, R, S, stride, pad, out_pad
      make_convt(1, 1, 5, 7, 1, 1, 1, 1, 0, 0),   make_convt(2, 3, 5, 7, 4, 3, 3, 2, 1, 1),
      make_convt(1, 4, 4, 4, 2, 2, 3, 2, 0, 1),   make_convt(2, 2, 5, 6, 3, 3, 3, 3, 2, 2),
      make_convt(1, 5, 3, 4, 3, 3, 2, 3, 1, 0),   make_convt(1, 3, 5, 7, 2, 3, 3, 1, 1, 0),
      make_convt(2, 1, 4, 4, 1, 3, 3, 2, 0, 1),   make_convt(3, 2, 5, 3, 5, 2, 2, 2, 0, 0),
      make_convt(1, 3, 4, 5, 2, 3, 3, 2, 2, 1),   make_convt(2, 4, 5, 7, 3, 1, 1, 2, 0, 1),
      make_convt(1, 2, 3, 3, 2, 3, 3, 3, 0, 2),   make_convt(1, 3, 4, 5, 32, 3, 3, 3, 1, 2),
      make_convt(2, 5, 3, 4, 33, 2, 3, 2, 0, 1),
      // The seed U-Net's up-sampling layers (batch reduced).
      make_convt(2, 128, 4, 4, 32, 3, 3, 2, 1, 1), make_convt(2, 64, 8, 8, 16, 3, 3, 2, 1, 1),
  };
}

}  // namespace

TEST_CASE("cpu conv2d forward/backward match naive loops", "[cpu][conv2d]") {
  for (Isa isa : isas_to_test()) {
    IsaGuard guard(isa);
    uint32_t seed = 100;
    for (const auto& s : conv_shapes()) run_conv_case(s, seed += 10);
  }
}

TEST_CASE("cpu conv2d at the U-Net's training batch", "[cpu][conv2d]") {
  // Long weight-gradient reductions and the multithreaded batch split.
  run_conv_case(make_conv(24, 16, 16, 16, 32, 3, 3, 1, 1), 7);
  run_conv_case(make_conv(48, 64, 4, 4, 64, 3, 3, 1, 1), 8);
  run_conv_transpose_case(make_convt(24, 64, 8, 8, 16, 3, 3, 2, 1, 1), 9);
}

TEST_CASE("cpu conv_transpose2d forward/backward match naive loops", "[cpu][conv_transpose2d]") {
  for (Isa isa : isas_to_test()) {
    IsaGuard guard(isa);
    uint32_t seed = 500;
    for (const auto& s : convt_shapes()) run_conv_transpose_case(s, seed += 10);
  }
}

TEST_CASE("cpu conv kernels are deterministic", "[cpu][conv2d]") {
  const Conv2dShape s = make_conv(9, 16, 16, 16, 32, 3, 3, 1, 1);
  auto x = random_vec(static_cast<size_t>(s.N) * s.C * s.H * s.W, 1);
  auto dy = random_vec(static_cast<size_t>(s.N) * s.K * s.OH * s.OW, 2);
  std::vector<float> dw1(static_cast<size_t>(s.K) * s.C * 9), dw2(dw1.size()), db1(s.K), db2(s.K);
  ember::cpu::conv2d_backward_weight(s, x.data(), dy.data(), dw1.data(), db1.data());
  ember::cpu::conv2d_backward_weight(s, x.data(), dy.data(), dw2.data(), db2.data());
  CHECK(dw1 == dw2);
  CHECK(db1 == db2);
}

// ------------------------------------------------------------------------------------------------
// linear
// ------------------------------------------------------------------------------------------------

TEST_CASE("cpu linear forward/backward match naive loops", "[cpu][linear]") {
  const LinearShape shapes[] = {{1, 1, 1},     {3, 5, 7},      {17, 33, 65}, {128, 1024, 32},
                                {128, 32, 32}, {128, 32, 1024}, {1, 1024, 32}, {65, 129, 3}};
  for (Isa isa : isas_to_test()) {
    IsaGuard guard(isa);
    uint32_t seed = 900;
    for (const auto& s : shapes) {
      seed += 10;
      auto x = random_vec(static_cast<size_t>(s.M) * s.K, seed);
      auto w = random_vec(static_cast<size_t>(s.N) * s.K, seed + 1);
      auto b = random_vec(s.N, seed + 2);
      auto dy = random_vec(static_cast<size_t>(s.M) * s.N, seed + 3);
      const naive::Passes ref =
          naive::passes(naive::linear(s), x.data(), w.data(), b.data(), dy.data());
      const Sums &y_ref = ref.y, &dx_ref = ref.dx, &dw_ref = ref.dw, &db_ref = ref.db;
      std::ostringstream o;
      o << "M=" << s.M << " K=" << s.K << " N=" << s.N;
      std::vector<float> y(y_ref.val.size(), kNaN), dx(dx_ref.val.size(), kNaN),
          dw(dw_ref.val.size(), kNaN), db(s.N, kNaN);
      ember::cpu::linear_forward(s, x.data(), w.data(), b.data(), y.data());
      check_close("linear_forward", o.str(), y, y_ref);
      ember::cpu::linear_backward_input(s, dy.data(), w.data(), dx.data());
      check_close("linear_backward_input", o.str(), dx, dx_ref);
      ember::cpu::linear_backward_weight(s, x.data(), dy.data(), dw.data(), db.data());
      check_close("linear_backward_weight(dw)", o.str(), dw, dw_ref);
      check_close("linear_backward_weight(db)", o.str(), db, db_ref);
      std::fill(y.begin(), y.end(), kNaN);
      ember::cpu::linear_forward(s, x.data(), w.data(), nullptr, y.data());
      Sums y_nb = y_ref;
      for (size_t i = 0; i < y_nb.val.size(); ++i) y_nb.val[i] -= b[i % s.N];
      check_close("linear_forward(no bias)", o.str(), y, y_nb);
    }
  }
}
