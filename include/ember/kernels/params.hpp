// @file include/ember/kernels/params.hpp
// @brief Shape/argument structs shared by the CPU (include/ember/kernels/cpu) and CUDA
//        (include/ember/kernels/cuda) kernels.
//
// Every kernel takes raw float pointers to contiguous row-major buffers plus one of these
// structs by value. The structs are plain data so they can be passed to CUDA kernels directly.
// Layouts: activations (N, C, H, W); conv weight (K, C, R, S); conv-transpose weight (C, K, R, S)
// as PyTorch stores them; linear weight (out, in).
#pragma once
#include <cmath>
#include <cstdint>

namespace ember::kernels {

/// y[n,k,oh,ow] = b[k] + sum_{c,r,s} x[n,c,oh*stride-pad+r, ow*stride-pad+s] * w[k,c,r,s]
/// The pointwise math ops of the unary kernel family (cpu/unary.hpp, cuda/unary.cuh); their
/// formulas are in unary_math.hpp.
enum class UnaryOp : int { exp, log, sqrt, rsqrt, sin, cos, tanh, sigmoid, abs, square };

/// The broadcasting tensor-tensor ops (cpu/broadcast.hpp, cuda/broadcast.cuh); their formulas
/// are in binary_math.hpp.
/// The comparisons (gt ... ne) give 1.0f or 0.0f and have no gradient.
enum class BinaryOp : int { add, sub, mul, div, maximum, minimum, gt, ge, lt, le, eq, ne };

/// The tensor-scalar ops with parameters s0, s1 (cpu/broadcast.hpp, cuda/broadcast.cuh):
///   div    x / s0                 rdiv   (1 / x) * s0 (PyTorch's s0 / x: reciprocal, then mul)
///   pow    x ** s0                clamp  min(max(x, s0), s1), NaN kept
enum class ScalarOp : int { div, rdiv, pow, clamp };

/// The most dimensions a broadcast or a reduction has after merging (ops/broadcast.hpp).
constexpr int kMaxMergedRank = 8;

/// Up to three operands read with broadcasting into one contiguous output of `rank` merged
/// dimensions: output element (i_0, ..., i_{rank-1}) reads operand k at
/// sum_d i_d * stride[k][d] (stride 0 along the dims operand k is broadcast over).
struct BroadcastShape {
  int rank;       // >= 1
  int64_t numel;  // product of size
  int64_t size[kMaxMergedRank];
  int64_t stride[3][kMaxMergedRank];
};

/// A reduction of a contiguous input over some of its dims. Output element o (row-major over the
/// kept dims) reduces the elements base(o) + off(j), j = 0 .. red_numel - 1 in row-major order
/// over the reduced dims. Sizes and strides are those of the input after merging.
struct ReduceShape {
  int n_keep, n_red;  // n_red >= 1
  int64_t out_numel, red_numel;
  int64_t keep_size[kMaxMergedRank], keep_stride[kMaxMergedRank];
  int64_t red_size[kMaxMergedRank], red_stride[kMaxMergedRank];
};

struct Conv2dShape {
  int N, C, H, W;   // input
  int K, R, S;      // output channels, kernel height, kernel width
  int stride, pad;  // same in both spatial dims
  int OH, OW;       // (H + 2*pad - R) / stride + 1, likewise for W
};

/// Gradient of conv2d with respect to its input, i.e. y = conv_transpose2d(x, w):
/// y[n,k,ih*stride-pad+r, iw*stride-pad+s] += x[n,c,ih,iw] * w[c,k,r,s]
struct ConvTranspose2dShape {
  int N, C, H, W;      // input (C = in_channels)
  int K, R, S;         // out_channels, kernel height, kernel width; weight is (C, K, R, S)
  int stride, pad, out_pad;
  int OH, OW;          // (H-1)*stride - 2*pad + R + out_pad, likewise for W
};

/// Per-channel statistics over N and HW. x is (N, C, HW).
struct BatchNormShape {
  int N, C, HW;
};

/// Group normalisation of x (N, C, HW): the C channels form G groups of C/G consecutive channels;
/// statistics are taken per (sample n, group g) over the group's (C/G)*HW values, which lie
/// contiguously at x + (n*G + g) * (C/G)*HW. C must be divisible by G.
struct GroupNormShape {
  int N, C, HW, G;
};

/// Max pooling without dilation; padded positions count as -infinity.
struct MaxPool2dShape {
  int N, C, H, W;
  int kernel, stride, pad;
  int OH, OW;  // (H + 2*pad - kernel) / stride + 1
};

/// y (M, N) = x (M, K) * w^T (w is (N, K)) + b (N)
struct LinearShape {
  int M, K, N;
};

/// Philox-4x32-10 stream position: element i of a fill uses counter (offset + i/4), lane i%4.
struct PhiloxState {
  uint64_t seed;
  uint64_t offset;  // in units of 128-bit counters (4 floats)
};

/// Adam's per-step scalars, formed on the host in double exactly as torch.optim.Adam does
/// (its hyper-parameters are Python doubles) and rounded to float once: build with
/// make_adam_params, so 1 - beta2 is float(1 - 0.999) = 0.001f, not 1 - 0.999f.
struct AdamParams {
  float beta1, beta2;                    // float(beta)
  float one_minus_beta1, one_minus_beta2;  // float(1 - beta), the difference taken in double
  float step_size;                       // float(lr / (1 - beta1^step))
  float bias_correction2_sqrt;           // float(sqrt(1 - beta2^step))
  float eps, weight_decay;
  // AdamW (layers and training): param *= decay first (float(1 - lr*weight_decay)), as
  // torch.optim.AdamW's param.mul_(1 - lr * weight_decay); weight_decay is then 0.
  bool decoupled = false;
  float decay = 1.0f;
};

inline AdamParams make_adam_params(double lr, double beta1, double beta2, double eps,
                                   double weight_decay, int64_t step) {
  double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
  return AdamParams{float(beta1),       float(beta2),          float(1.0 - beta1),
                    float(1.0 - beta2), float(lr / bc1),       float(std::sqrt(bc2)),
                    float(eps),         float(weight_decay)};
}

struct SgdParams {
  float lr, momentum;
  float one_minus_dampening;  // float(1 - dampening), the difference taken in double
  float weight_decay;
  bool nesterov;
  bool first_step;  // momentum buffer is initialised to the gradient on the first step
};

/// SgdParams from torch.optim.SGD's double hyper-parameters, each rounded to float once.
inline SgdParams make_sgd_params(double lr, double momentum, double dampening,
                                 double weight_decay, bool nesterov, bool first_step) {
  return SgdParams{float(lr),           float(momentum), float(1.0 - dampening),
                   float(weight_decay), nesterov,        first_step};
}

// ---- softmax family (softmax, log_softmax, nll_loss, cross_entropy) ----

/// softmax / log_softmax over the middle axis of x viewed as (outer, C, inner): element
/// (o, c, i) lies at (o*C + c)*inner + i; one column (o, i) is reduced over c.
struct SoftmaxShape {
  int outer, C, inner;
};

/// Per-position negative log-likelihood of log_probs (N, C, inner) at class-index targets
/// (N, inner) (float32 holding exact integers, already checked): loss[n, i] =
/// one_minus_ls * -log_probs[n, t, i] + ls_over_C * -sum_c log_probs[n, c, i] (the second term
/// only when smoothing), 0 where t == ignore_index.
struct NllShape {
  int N, C, inner;
  int64_t ignore_index;
  float one_minus_ls;  // float(1 - label_smoothing)
  float ls_over_C;     // float(label_smoothing / C)
  bool smoothing;      // label_smoothing > 0
};

// ---- layout and indexing (#12 item 5: permute, pixel_shuffle, one_hot) ----

/// The most dimensions permute_copy handles.
constexpr int kMaxPermuteRank = 8;

/// y = x.permute(dims) copied contiguously: y has `rank` dims of sizes out_sizes; element
/// (o_0, ..., o_{rank-1}) of y is x[sum_d o_d * in_strides[d]], where in_strides[d] is x's
/// (contiguous) stride of its dimension dims[d]. n = the element count.
struct PermuteParams {
  int rank;
  int64_t n;
  int64_t out_sizes[kMaxPermuteRank];
  int64_t in_strides[kMaxPermuteRank];
};

}  // namespace ember::kernels
