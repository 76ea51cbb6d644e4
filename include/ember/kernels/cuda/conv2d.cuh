// @file include/ember/kernels/cuda/conv2d.cuh
// @brief 2-D convolution (cross-correlation, PyTorch semantics) on CUDA, twin of
//        include/ember/kernels/cpu/conv2d.hpp; also defines the implicit-GEMM ops shared with
//        conv_transpose2d.cuh.
//
// Layouts (contiguous float32, device): x (N,C,H,W), w (K,C,R,S), b (K), y/dy (N,K,OH,OW).
//   conv2d_forward(s, x, w, b /*nullable*/, y)         y  = conv(x, w) + b            (=)
//   conv2d_backward_input(s, dy, w, dx)                dx = conv^T(dy, w)             (=)
//   conv2d_backward_weight(s, x, dy, dw, db /*null.*/) dw = sum dy (x) x, db = sum dy (=)
// Kernel variants (all through implicit_gemm.cuh; no atomics, bitwise reproducible):
//   ConvFwdOp      C[co, (n,oh,ow)] = sum_{(ci,r,s)} w[co,ci,r,s] * x[n,ci,oh*st-pad+r,ow*st-pad+s]
//                  (GEMM M = K, N = N*OH*OW, k = C*R*S; B = im2col read straight from x).
//   ConvTransFwdOp out[n,co,oh,ow] = sum over (ci, ih, r) with oh = ih*st - pad + r of
//                  in[n,ci,ih,iw] * W[ci,co,r,s], split into st*st output phases
//                  (oh % st, ow % st) = blockIdx.z; a phase only visits the taps r = r0 + st*t
//                  that hit it, so no multiply by a structural zero. Used by backward_input.
//   ConvWgradOp    C[cg, (ct,r,s)] = sum_{(n,gh,gw)} G[n,cg,gh,gw] * T[n,ct,gh*st-pad+r,gw*st-pad+s]
//                  (GEMM M = K, N = C*R*S, k = N*OH*OW), split-K over k into slices written to
//                  a scratch buffer and summed in slice order (splitk_reduce).
//   db             chan::channel_reduce over (N, K, OH*OW), double accumulation.
// int64 offsets everywhere a product of tensor dimensions is formed.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../params.hpp"
#include "allocator.cuh"
#include "channel_reduce.cuh"
#include "common.cuh"
#include "implicit_gemm.cuh"

namespace ember::cuda {

namespace conv_detail {

EMBER_HD bool in_range(int v, int hi) {
  return static_cast<unsigned>(v) < static_cast<unsigned>(hi);
}

/// out[n,co,oh,ow] = bias[co] + sum_{ci,r,s} wt[co,ci,r,s] * in[n,ci,oh*st-pad+r, ow*st-pad+s]
/// (zero outside the input). wt is (Co, Ci, R, S); bias nullable.
struct ConvFwdOp {
  const float* in;
  const float* wt;
  const float* bias;
  float* out;
  int N, Ci, Hi, Wi, Co, R, S, st, pad, Ho, Wo;
  int64_t M, Ngemm, kb, ke;  // GEMM view: M = Co, Ngemm = N*Ho*Wo, [kb, ke) = [0, Ci*R*S)

  static constexpr bool kAKFast = true;   // w[co, k] is contiguous in k
  static constexpr bool kBKFast = false;  // x is contiguous along the output column (ow)
  struct KInfo {
    int64_t k;       // the k itself (w column)
    int64_t in_off;  // ci*Hi*Wi + r*Wi + s
    int r, s;
  };
  struct RowCtx {
    int64_t w_base;  // co * Ci*R*S
  };
  struct ColCtx {
    int64_t base;  // n*Ci*Hi*Wi + ih0*Wi + iw0 (may be negative; only used when in range)
    int ih0, iw0;  // oh*st - pad, ow*st - pad
  };
  using Sub = ConvFwdOp;

  igemm::GemmGrid grid() const { return {M, Ngemm, 1}; }
  EMBER_HD Sub sub(int) const { return *this; }
  EMBER_HD KInfo kinfo(int64_t k) const {
    const int RS = R * S;
    const int kk = static_cast<int>(k);
    const int ci = kk / RS, rs = kk - ci * RS;
    const int r = rs / S, s = rs - r * S;
    return KInfo{k, int64_t(ci) * Hi * Wi + int64_t(r) * Wi + s, r, s};
  }
  EMBER_HD RowCtx row(int64_t m) const { return RowCtx{m * ke}; }
  EMBER_HD ColCtx col(int64_t n) const {
    const int64_t P = int64_t(Ho) * Wo;
    const int64_t img = n / P;
    const int p = static_cast<int>(n - img * P);
    const int oh = p / Wo, ow = p - oh * Wo;
    const int ih0 = oh * st - pad, iw0 = ow * st - pad;
    return ColCtx{img * Ci * Hi * Wi + int64_t(ih0) * Wi + iw0, ih0, iw0};
  }
  EMBER_HD float a(const RowCtx& rc, const KInfo& ki) const { return wt[rc.w_base + ki.k]; }
  EMBER_HD float b(const ColCtx& cc, const KInfo& ki) const {
    return (in_range(cc.ih0 + ki.r, Hi) && in_range(cc.iw0 + ki.s, Wi)) ? in[cc.base + ki.in_off]
                                                                        : 0.0f;
  }
  EMBER_HD void store(int64_t m, int64_t n, float v) const {
    const int64_t P = int64_t(Ho) * Wo;
    const int64_t img = n / P, p = n - img * P;
    out[(img * Co + m) * P + p] = bias ? v + bias[m] : v;
  }
};

inline ConvFwdOp make_conv_fwd(const float* in, const float* wt, const float* bias, float* out,
                               int N, int Ci, int Hi, int Wi, int Co, int R, int S, int st,
                               int pad, int Ho, int Wo) {
  if (st <= 0 || pad < 0) throw ember::Error("conv: stride must be > 0 and pad >= 0");
  ConvFwdOp op{in, wt, bias, out, N, Ci, Hi, Wi, Co, R, S, st, pad, Ho, Wo, 0, 0, 0, 0};
  op.M = Co;
  op.Ngemm = int64_t(N) * Ho * Wo;
  op.kb = 0;
  op.ke = int64_t(Ci) * R * S;
  return op;
}

/// out[n,co,oh,ow] = bias[co] + sum over ci, ih, iw, r, s with oh = ih*st - pad + r and
/// ow = iw*st - pad + s of in[n,ci,ih,iw] * wt[ci,co,r,s]. wt is (Ci, Co, R, S); bias nullable.
/// blockIdx.z = output phase (ph, pw) = (z / st, z % st): rows oh = ph + st*i, columns
/// ow = pw + st*j. For such an output only r = r0 + st*tr with r0 = (ph + pad) % st contribute,
/// from ih = i + qh - tr with qh = (ph + pad - r0) / st (exact), likewise for s / iw.
struct ConvTransFwdOp {
  const float* in;
  const float* wt;
  const float* bias;
  float* out;
  int N, Ci, Hi, Wi, Co, R, S, st, pad, Ho, Wo;

  struct Sub {
    const float* in;
    const float* wt;
    const float* bias;
    float* out;
    int Ci, Hi, Wi, Co, R, S, st, Ho, Wo;
    int ph, pw, Hp, Wp, Rp, Sp, r0, s0, qh, qw;
    int64_t M, Ngemm, kb, ke;  // M = Co, Ngemm = N*Hp*Wp, k = Ci*Rp*Sp

    static constexpr bool kAKFast = true;
    static constexpr bool kBKFast = false;
    struct KInfo {
      int64_t in_off;  // ci*Hi*Wi + dh*Wi + dw
      int64_t w_off;   // ci*Co*R*S + r*S + s
      int dh, dw;      // ih = i + dh, iw = j + dw
    };
    struct RowCtx {
      int64_t w_base;  // co*R*S
    };
    struct ColCtx {
      int64_t base;  // n*Ci*Hi*Wi + i*Wi + j
      int i, j;
    };

    EMBER_HD KInfo kinfo(int64_t k) const {
      const int RSp = Rp * Sp;
      const int kk = static_cast<int>(k);
      const int ci = kk / RSp, rem = kk - ci * RSp;
      const int tr = rem / Sp, ts = rem - tr * Sp;
      const int r = r0 + st * tr, s = s0 + st * ts;
      const int dh = qh - tr, dw = qw - ts;
      return KInfo{int64_t(ci) * Hi * Wi + int64_t(dh) * Wi + dw,
                   int64_t(ci) * Co * R * S + int64_t(r) * S + s, dh, dw};
    }
    EMBER_HD RowCtx row(int64_t m) const { return RowCtx{m * R * S}; }
    EMBER_HD ColCtx col(int64_t n) const {
      const int64_t P = int64_t(Hp) * Wp;
      const int64_t img = n / P;
      const int p = static_cast<int>(n - img * P);
      const int i = p / Wp, j = p - i * Wp;
      return ColCtx{img * Ci * Hi * Wi + int64_t(i) * Wi + j, i, j};
    }
    EMBER_HD float a(const RowCtx& rc, const KInfo& ki) const {
      return wt[rc.w_base + ki.w_off];
    }
    EMBER_HD float b(const ColCtx& cc, const KInfo& ki) const {
      return (in_range(cc.i + ki.dh, Hi) && in_range(cc.j + ki.dw, Wi)) ? in[cc.base + ki.in_off]
                                                                       : 0.0f;
    }
    EMBER_HD void store(int64_t m, int64_t n, float v) const {
      const int64_t P = int64_t(Hp) * Wp;
      const int64_t img = n / P;
      const int p = static_cast<int>(n - img * P);
      const int i = p / Wp, j = p - i * Wp;
      const int oh = ph + st * i, ow = pw + st * j;
      out[((img * Co + m) * Ho + oh) * Wo + ow] = bias ? v + bias[m] : v;
    }
  };

  /// Number of t >= 0 with first + step*t < limit.
  EMBER_HD static int count_from(int first, int step, int limit) {
    return first < limit ? (limit - first + step - 1) / step : 0;
  }

  /// Phase 0 has the most output rows / columns.
  igemm::GemmGrid grid() const {
    return {Co, int64_t(N) * count_from(0, st, Ho) * count_from(0, st, Wo), st * st};
  }

  EMBER_HD Sub sub(int z) const {
    Sub sp;
    sp.in = in;
    sp.wt = wt;
    sp.bias = bias;
    sp.out = out;
    sp.Ci = Ci;
    sp.Hi = Hi;
    sp.Wi = Wi;
    sp.Co = Co;
    sp.R = R;
    sp.S = S;
    sp.st = st;
    sp.Ho = Ho;
    sp.Wo = Wo;
    sp.ph = z / st;
    sp.pw = z - sp.ph * st;
    sp.Hp = count_from(sp.ph, st, Ho);
    sp.Wp = count_from(sp.pw, st, Wo);
    sp.r0 = (sp.ph + pad) % st;
    sp.s0 = (sp.pw + pad) % st;
    sp.Rp = count_from(sp.r0, st, R);
    sp.Sp = count_from(sp.s0, st, S);
    sp.qh = (sp.ph + pad - sp.r0) / st;
    sp.qw = (sp.pw + pad - sp.s0) / st;
    sp.M = Co;
    sp.Ngemm = int64_t(N) * sp.Hp * sp.Wp;
    sp.kb = 0;
    sp.ke = int64_t(Ci) * sp.Rp * sp.Sp;
    return sp;
  }
};

inline ConvTransFwdOp make_conv_trans_fwd(const float* in, const float* wt, const float* bias,
                                          float* out, int N, int Ci, int Hi, int Wi, int Co, int R,
                                          int S, int st, int pad, int Ho, int Wo) {
  if (st <= 0 || pad < 0) throw ember::Error("conv: stride must be > 0 and pad >= 0");
  return ConvTransFwdOp{in, wt, bias, out, N, Ci, Hi, Wi, Co, R, S, st, pad, Ho, Wo};
}

/// out[cg, (ct,r,s)] = sum_{n,gh,gw} G[n,cg,gh,gw] * T[n, ct, gh*st - pad + r, gw*st - pad + s]
/// (zero outside T). G is (N, Cg, Hg, Wg), T is (N, Ct, Ht, Wt); out is (Cg, Ct, R, S).
/// blockIdx.z = split-K slice; with splits > 1 slice z writes partial + z*M*Ngemm.
struct ConvWgradOp {
  const float* G;
  const float* T;
  float* out;
  float* partial;  // scratch for splits > 1 (set by igemm::run_splitk), else null
  int N, Cg, Hg, Wg, Ct, Ht, Wt, R, S, st, pad;
  int64_t chunk;  // k per split-K slice
  int splits;     // number of slices (blockIdx.z)

  struct Sub {
    const float* G;
    const float* T;
    float* dst;
    int Cg, Wg, Ct, Ht, Wt, R, S, st, pad;
    int64_t HgWg;
    int64_t M, Ngemm, kb, ke;  // M = Cg, Ngemm = Ct*R*S, k over N*Hg*Wg

    static constexpr bool kAKFast = true;  // G contiguous along (gh, gw)
    static constexpr bool kBKFast = true;  // T contiguous along gw (for stride 1)
    struct KInfo {
      int64_t g_off;  // n*Cg*Hg*Wg + p
      int64_t t_off;  // n*Ct*Ht*Wt + th0*Wt + tw0
      int th0, tw0;   // gh*st - pad, gw*st - pad
    };
    struct RowCtx {
      int64_t g_base;  // cg*Hg*Wg
    };
    struct ColCtx {
      int64_t t_base;  // ct*Ht*Wt + r*Wt + s
      int r, s;
    };

    EMBER_HD KInfo kinfo(int64_t k) const {
      const int64_t n = k / HgWg;
      const int p = static_cast<int>(k - n * HgWg);
      const int gh = p / Wg, gw = p - gh * Wg;
      const int th0 = gh * st - pad, tw0 = gw * st - pad;
      return KInfo{n * Cg * HgWg + p, n * Ct * Ht * Wt + int64_t(th0) * Wt + tw0, th0, tw0};
    }
    EMBER_HD RowCtx row(int64_t m) const { return RowCtx{m * HgWg}; }
    EMBER_HD ColCtx col(int64_t n) const {
      const int RS = R * S;
      const int c = static_cast<int>(n);
      const int ct = c / RS, rs = c - ct * RS;
      const int r = rs / S, s = rs - r * S;
      return ColCtx{int64_t(ct) * Ht * Wt + int64_t(r) * Wt + s, r, s};
    }
    EMBER_HD float a(const RowCtx& rc, const KInfo& ki) const { return G[ki.g_off + rc.g_base]; }
    EMBER_HD float b(const ColCtx& cc, const KInfo& ki) const {
      return (in_range(ki.th0 + cc.r, Ht) && in_range(ki.tw0 + cc.s, Wt)) ? T[ki.t_off + cc.t_base]
                                                                         : 0.0f;
    }
    EMBER_HD void store(int64_t m, int64_t n, float v) const { dst[m * Ngemm + n] = v; }
  };

  igemm::GemmGrid grid() const { return {Cg, int64_t(Ct) * R * S, splits}; }

  EMBER_HD Sub sub(int z) const {
    Sub sp;
    sp.G = G;
    sp.T = T;
    sp.Cg = Cg;
    sp.Wg = Wg;
    sp.Ct = Ct;
    sp.Ht = Ht;
    sp.Wt = Wt;
    sp.R = R;
    sp.S = S;
    sp.st = st;
    sp.pad = pad;
    sp.HgWg = int64_t(Hg) * Wg;
    sp.M = Cg;
    sp.Ngemm = int64_t(Ct) * R * S;
    const int64_t kd = int64_t(N) * Hg * Wg;
    sp.kb = int64_t(z) * chunk;
    sp.ke = sp.kb + chunk < kd ? sp.kb + chunk : kd;
    sp.dst = partial ? partial + int64_t(z) * sp.M * sp.Ngemm : out;
    return sp;
  }
};

/// dW (Cg, Ct, R, S) = correlation of G with T (see ConvWgradOp), with its split-K plan.
inline ConvWgradOp make_conv_wgrad(const float* G, const float* T, float* out, int N, int Cg,
                                   int Hg, int Wg, int Ct, int Ht, int Wt, int R, int S, int st,
                                   int pad) {
  const int64_t kd = (N > 0 && Hg > 0 && Wg > 0) ? int64_t(N) * Hg * Wg : 0;
  const igemm::SplitPlan plan = igemm::splitk_plan(Cg, int64_t(Ct) * R * S, kd);
  return ConvWgradOp{G,  T,  out, nullptr, N, Cg, Hg,          Wg,         Ct,
                     Ht, Wt, R,   S,       st, pad, plan.chunk, plan.splits};
}

struct ChanSumF {
  const float* x;
  EMBER_HD void operator()(int, int64_t off, double* acc) const {
    acc[0] += static_cast<double>(x[off]);
  }
};
struct StoreChanSum {
  float* out;
  EMBER_HD void operator()(int c, const double* t) const { out[c] = static_cast<float>(t[0]); }
};

/// out[c] = sum over n < N, p < P of y[(n*C + c)*P + p] (deterministic, double accumulation).
inline void channel_sums(int N, int C, int64_t P, const float* y, float* out, cudaStream_t stream,
                         const char* name) {
  if (P > INT32_MAX) throw ember::Error(std::string(name) + ": spatial size too large");
  chan::channel_reduce<1>(N, C, static_cast<int>(P), ChanSumF{y}, StoreChanSum{out}, stream, name);
}

}  // namespace conv_detail

// ---- the GEMM ops behind each public function (also used by the host emulation tests) ----

inline conv_detail::ConvFwdOp conv2d_forward_op(const kernels::Conv2dShape& s, const float* x,
                                                const float* w, const float* b, float* y) {
  return conv_detail::make_conv_fwd(x, w, b, y, s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride,
                                    s.pad, s.OH, s.OW);
}

/// dx[n,c,ih,iw] = sum_{k,r,s: ih = oh*st - pad + r} dy[n,k,oh,ow] * w[k,c,r,s]: a transposed
/// convolution of dy (Ci = K) into dx (Co = C) whose weight (K, C, R, S) is (Ci, Co, R, S).
inline conv_detail::ConvTransFwdOp conv2d_backward_input_op(const kernels::Conv2dShape& s,
                                                            const float* dy, const float* w,
                                                            float* dx) {
  return conv_detail::make_conv_trans_fwd(dy, w, nullptr, dx, s.N, s.K, s.OH, s.OW, s.C, s.R,
                                          s.S, s.stride, s.pad, s.H, s.W);
}

/// dw[k,c,r,s] = sum_{n,oh,ow} dy[n,k,oh,ow] * x[n,c,oh*st-pad+r,ow*st-pad+s]
inline conv_detail::ConvWgradOp conv2d_backward_weight_op(const kernels::Conv2dShape& s,
                                                          const float* x, const float* dy,
                                                          float* dw) {
  return conv_detail::make_conv_wgrad(dy, x, dw, s.N, s.K, s.OH, s.OW, s.C, s.H, s.W, s.R, s.S,
                                      s.stride, s.pad);
}

inline void conv2d_forward(kernels::Conv2dShape s, const float* x, const float* w, const float* b,
                           float* y, cudaStream_t stream) {
  if (s.N <= 0 || s.K <= 0 || s.OH <= 0 || s.OW <= 0) return;
  igemm::run(conv2d_forward_op(s, x, w, b, y), stream, "conv2d_forward");
}

inline void conv2d_backward_input(kernels::Conv2dShape s, const float* dy, const float* w,
                                  float* dx, cudaStream_t stream) {
  if (s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0) return;
  igemm::run(conv2d_backward_input_op(s, dy, w, dx), stream, "conv2d_backward_input");
}

inline void conv2d_backward_weight(kernels::Conv2dShape s, const float* x, const float* dy,
                                   float* dw, float* db, cudaStream_t stream) {
  if (s.K <= 0) return;
  igemm::run_splitk(conv2d_backward_weight_op(s, x, dy, dw), stream, "conv2d_backward_weight");
  if (db)
    conv_detail::channel_sums(s.N, s.K, int64_t(s.OH) * s.OW, dy, db, stream,
                              "conv2d_backward_weight");
}

}  // namespace ember::cuda
