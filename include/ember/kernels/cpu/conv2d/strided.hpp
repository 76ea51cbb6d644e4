// @file include/ember/kernels/cpu/conv2d/strided.hpp
// @brief CPU conv2d engine "phase split": stride >= 2 forward and input gradient as implicit
//        GEMMs on stride^2 phase planes (implicit_gemm.hpp's driver and micro-kernels).
//
// conv2d.hpp chooses it for a forward with stride >= 2, pad >= 0 and phase planes below 2^31
// floats (strided_ok): the input is split into stride^2 phase planes per channel so every tap is
// a pure shift. The input gradient with stride >= 2, pad < 4*stride and >= 32 input channels
// (strided_bwi_ok) runs one implicit GEMM per output phase, so the transposed convolution never
// multiplies by stuffed zeros. The strided weight gradient is left to im2col.hpp.
#pragma once
#include "common.hpp"
#include "implicit_gemm.hpp"

namespace ember::cpu::conv_detail {


/// Strided variant: plane ((c*st + a)*st + b) holds the phase image P[i][j] = xpad[st*i + a][st*j + b]
/// of the zero-padded input (xpad = x shifted by pad), so tap (c, r, q) of output (oh, ow) reads
/// plane (c, r%st, q%st) at (oh + r/st, ow + q/st): again a pure shift.
inline void to_phase_planar(int N, int C, int H, int W, int pad, int st, const Planar& pl,
                            const float* x, float* xp) {
  parallel_for(static_cast<int64_t>(C) * st * st, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t pidx = pb; pidx < pe; ++pidx) {
      const int c = static_cast<int>(pidx / (st * st)), a = static_cast<int>(pidx / st % st),
                b = static_cast<int>(pidx % st);
      float* plane = xp + pidx * pl.L;
      for (int n = 0; n < N; ++n) {
        const float* src = x + (static_cast<int64_t>(n) * C + c) * H * W;
        for (int i = 0; i < pl.Hb; ++i) {
          float* row = plane + (static_cast<int64_t>(n) * pl.Hb + i) * pl.Wb;
          const int h = st * i + a - pad;
          if (h < 0 || h >= H) {
            for (int j = 0; j < pl.Wb; ++j) row[j] = 0.f;
            continue;
          }
          const float* srow = src + static_cast<int64_t>(h) * W;
          for (int j = 0; j < pl.Wb; ++j) {
            const int w = st * j + b - pad;
            row[j] = (w >= 0 && w < W) ? srow[w] : 0.f;
          }
        }
      }
      std::memset(plane + pl.J, 0, sizeof(float) * static_cast<size_t>(pl.L - pl.J));
    }
  });
}

/// Planar geometry + tap offsets of a strided (st >= 2) convolution's input.
inline Planar strided_planar(const Conv2dShape& s, int64_t extra) {
  Planar p;
  p.N = s.N;
  p.Hb = std::max((s.H + 2 * s.pad + s.stride - 1) / s.stride, s.OH);
  p.Wb = std::max((s.W + 2 * s.pad + s.stride - 1) / s.stride, s.OW);
  p.J = static_cast<int64_t>(s.N) * p.Hb * p.Wb;
  const int64_t max_off = static_cast<int64_t>((s.R - 1) / s.stride + 1) * p.Wb + s.S;
  p.L = round_up(p.J + extra + max_off + 16, 16);
  return p;
}

inline void strided_offsets(const Conv2dShape& s, const Planar& pl, int* off) {
  const int st = s.stride;
  for (int c = 0; c < s.C; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int q = 0; q < s.S; ++q)
        off[(c * s.R + r) * s.S + q] = static_cast<int>(((c * st + r % st) * st + q % st) * pl.L +
                                                        (r / st) * pl.Wb + q / st);
}

inline bool strided_ok(const Conv2dShape& s) {
  if (s.stride < 2 || s.pad < 0) return false;
  const Planar pl = strided_planar(s, 64);
  return static_cast<double>(pl.L) * s.C * s.stride * s.stride < 2.0e9 &&
         static_cast<double>(pl.L) * s.K < 2.0e9;
}

inline void strided_conv_forward(const Conv2dShape& s, const float* x, const float* w,
                                 const float* b, float* y) {
  const ImplicitConfig cfg = implicit_config(active_isa());
  const int Kd = s.C * s.R * s.S;
  const Planar pl = strided_planar(s, cfg.nr);
  float* xp = detail::thread_scratch(4, static_cast<size_t>(pl.L) * s.C * s.stride * s.stride);
  to_phase_planar(s.N, s.C, s.H, s.W, s.pad, s.stride, pl, x, xp);
  int* off = reinterpret_cast<int*>(detail::thread_scratch(5, Kd));
  strided_offsets(s, pl, off);
  float* apack = detail::thread_scratch(6, static_cast<size_t>(round_up(s.K, cfg.mr)) * Kd);
  pack_implicit_a(s.K, Kd, cfg.mr, [&](int m, int kd) { return w[static_cast<int64_t>(m) * Kd + kd]; },
                  apack);
  const OutMap om{s.K, s.OH, s.OW, pl.Hb, pl.Wb, pl.J};
  implicit_forward(cfg, s.K, Kd, apack, off, xp, om, b, y);
}

/// Strided input gradient, one output phase (a, b) at a time: rows ih with ih + pad = st*i + a
/// only see taps r = a + st*t, so each phase is a stride-1 correlation of dy with a sub-kernel,
/// again a pure shift of one planar copy of dy (padded by T-1 rows / U-1 columns on top / left).
inline void strided_conv_backward_input(const Conv2dShape& s, const float* dy, const float* w,
                                        float* dx, const float* bias) {
  const ImplicitConfig cfg = implicit_config(active_isa());
  const int st = s.stride;
  const int T = (s.R + st - 1) / st, U = (s.S + st - 1) / st;
  Planar pl;
  pl.N = s.N;
  pl.Hb = std::max(T - 1 + s.OH, (s.H - 1 + s.pad) / st + 1);
  pl.Wb = std::max(U - 1 + s.OW, (s.W - 1 + s.pad) / st + 1);
  pl.J = static_cast<int64_t>(s.N) * pl.Hb * pl.Wb;
  pl.L = round_up(pl.J + cfg.nr + static_cast<int64_t>(T + 1) * pl.Wb + U + 16, 16);
  float* gp = detail::thread_scratch(4, static_cast<size_t>(pl.L) * s.K);
  to_planar(s.N, s.K, s.OH, s.OW, T - 1, U - 1, pl, dy, gp);
  int* off = reinterpret_cast<int*>(detail::thread_scratch(5, static_cast<size_t>(s.K) * T * U));
  float* apack =
      detail::thread_scratch(6, static_cast<size_t>(round_up(s.C, cfg.mr)) * s.K * T * U);
  for (int a = 0; a < st; ++a) {
    const int Ta = a < s.R ? (s.R - a + st - 1) / st : 0;
    for (int b = 0; b < st; ++b) {
      const int Ub = b < s.S ? (s.S - b + st - 1) / st : 0;
      const int Kd = s.K * Ta * Ub;
      for (int k = 0; k < s.K; ++k)
        for (int t = 0; t < Ta; ++t)
          for (int u = 0; u < Ub; ++u)
            off[(k * Ta + t) * Ub + u] =
                static_cast<int>(k * pl.L + (T - 1 - t) * pl.Wb + (U - 1 - u));
      pack_implicit_a(s.C, Kd, cfg.mr,
                      [&](int c, int kd) {
                        const int k = kd / (Ta * Ub), tu = kd % (Ta * Ub);
                        const int r = a + st * (tu / Ub), q = b + st * (tu % Ub);
                        return w[((static_cast<int64_t>(k) * s.C + c) * s.R + r) * s.S + q];
                      },
                      apack);
      OutMap om{s.C, s.H, s.W, pl.Hb, pl.Wb, pl.J};
      om.st = st;
      om.r0 = a - s.pad;
      om.c0 = b - s.pad;
      implicit_forward(cfg, s.C, Kd, apack, off, gp, om, bias, dx);  // phases are disjoint
    }
  }
}

inline bool strided_bwi_ok(const Conv2dShape& s) {
  // With few input channels (the M of each phase GEMM) the phases are memory-bound and the
  // per-image im2col path measured faster (e.g. the U-Net's 64->16 up-convolution).
  if (s.stride < 2 || s.pad < 0 || s.pad >= s.stride * 4 || s.C < 32) return false;
  const double plane = (static_cast<double>(s.N) * (s.OH + s.H / s.stride + s.R + 2) + 4) *
                           (s.OW + s.W / s.stride + s.S + 2) + 256;
  return plane * std::max(s.C, s.K) < 2.0e9;
}
}  // namespace ember::cpu::conv_detail
