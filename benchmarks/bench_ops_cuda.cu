// @file benchmarks/bench_ops_cuda.cu
// @brief bench-ops --device cuda: ember's CUDA kernels beside cuDNN / cuBLAS at the seed U-Net's
//        shapes, with a correctness check of every ember result against the vendor's.
//
// For every op of bench::unet_ops() and every pass (fwd, bwd_input, bwd_weight or bwd):
//   ember   the kernel through ember's CUDA backend table (the one the ops call);
//   vendor  conv: cudnnConvolutionForward / BackwardData / BackwardFilter with the fastest
//           algorithm cudnnFind*AlgorithmEx reports (+ cudnnAddTensor / BackwardBias for the
//           bias); conv-transpose: the same three calls with the roles swapped (its forward is
//           BackwardData); batch norm: cudnnBatchNormalizationForwardTraining / Backward (the
//           faster of SPATIAL and SPATIAL_PERSISTENT); max pool: cudnnPooling*; relu:
//           cudnnActivation*; linear: cublasSgemm (+ a rank-1 sgemm for the bias, sgemv for its
//           gradient); concat: cudaMemcpy2DAsync.
// Timing: cudaEvents around --reps back-to-back calls per sample (launch overhead amortised),
// median and min of --iters samples after --warmup calls, in microseconds. Check: the ember
// output(s) of each pass against the vendor's: max |ember - vendor| <= rel * max|vendor| + abs;
// PASS/FAIL per pass, exit status 1 when any FAILs. cuDNN/cuBLAS run in strict FP32 (FMA math)
// unless --tf32. Also "fwd+bwd": the ember op plus autograd backward on CUDA tensors.
// Built without cuDNN (EMBER_BENCH_HAS_CUDNN undefined), the cuDNN columns are left empty.
#include <ember/ember.hpp>
// The kernels come from ember::cuda (linked); this file needs only the stream.
#include <ember/kernels/cuda/common.cuh>

#ifdef EMBER_BENCH_HAS_CUBLAS
#include <cublas_v2.h>
#endif
#include <cuda_runtime.h>
#ifdef EMBER_BENCH_HAS_CUDNN
#include <cudnn.h>
#endif

#include <functional>
#include <memory>

#include "bench_common.hpp"

namespace {

using bench::CheckResult;
using bench::Kind;
using bench::OpSpec;

#define BCHECK_CUDA(call) check_cuda((call), #call, __LINE__)
void check_cuda(cudaError_t e, const char* what, int line) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error ") + cudaGetErrorString(e) + " in " + what +
                             " (bench_ops_cuda.cu:" + std::to_string(line) + ")");
}
#ifdef EMBER_BENCH_HAS_CUBLAS
#define BCHECK_BLAS(call) check_blas((call), #call, __LINE__)
void check_blas(cublasStatus_t s, const char* what, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error("cuBLAS error " + std::to_string(int(s)) + " in " + what +
                             " (bench_ops_cuda.cu:" + std::to_string(line) + ")");
}
#endif
#ifdef EMBER_BENCH_HAS_CUDNN
#define BCHECK_DNN(call) check_dnn((call), #call, __LINE__)
void check_dnn(cudnnStatus_t s, const char* what, int line) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuDNN error ") + cudnnGetErrorString(s) + " in " + what +
                             " (bench_ops_cuda.cu:" + std::to_string(line) + ")");
}
#endif

/// A device buffer of floats (cudaMalloc'd directly, outside ember's allocator).
struct DevBuf {
  float* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) {
    BCHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * sizeof(float)));
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void upload(const std::vector<float>& v) {
    BCHECK_CUDA(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  std::vector<float> download() const {
    std::vector<float> v(n);
    BCHECK_CUDA(cudaMemcpy(v.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  }
};

/// Library handles shared by all ops.
struct Libs {
  cudaStream_t stream = nullptr;
#ifdef EMBER_BENCH_HAS_CUBLAS
  cublasHandle_t blas = nullptr;
#endif
#ifdef EMBER_BENCH_HAS_CUDNN
  cudnnHandle_t dnn = nullptr;
#endif
  std::unique_ptr<DevBuf> workspace;  // cuDNN workspace
  size_t workspace_bytes = 0;
  bool tf32 = false;
};

/// One timed pass: ember's call, the vendor's, and which buffers hold their results.
struct Pass {
  std::string name;
  std::function<void()> ember, vendor;
  std::string vendor_impl;  // "cudnn", "cublas", "cudart" or "" (none)
  std::string vendor_algo;
  std::vector<std::pair<DevBuf*, DevBuf*>> outputs;  // (ember, vendor)
  double rel = 1e-4, abs = 1e-5;
};

struct OpCase {
  std::vector<std::unique_ptr<DevBuf>> bufs;
  std::vector<Pass> passes;
  std::function<void()> fwd_bwd;
  std::vector<std::function<void()>> cleanup;
  ~OpCase() {
    for (auto& f : cleanup) f();
  }
  DevBuf* buf(size_t n, uint64_t seed = 0, bool random = false) {
    bufs.push_back(std::make_unique<DevBuf>(n));
    if (random) bufs.back()->upload(bench::host_random(n, seed));
    return bufs.back().get();
  }
};

class GpuTimer {
 public:
  GpuTimer(cudaStream_t s, int warmup, int iters, int reps)
      : s_(s), warmup_(warmup), iters_(iters), reps_(reps) {
    BCHECK_CUDA(cudaEventCreate(&a_));
    BCHECK_CUDA(cudaEventCreate(&b_));
  }
  ~GpuTimer() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  /// Milliseconds per call.
  bench::Stats operator()(const std::function<void()>& fn) {
    for (int i = 0; i < warmup_; ++i) fn();
    BCHECK_CUDA(cudaStreamSynchronize(s_));
    std::vector<double> ms;
    for (int i = 0; i < iters_; ++i) {
      BCHECK_CUDA(cudaEventRecord(a_, s_));
      for (int r = 0; r < reps_; ++r) fn();
      BCHECK_CUDA(cudaEventRecord(b_, s_));
      BCHECK_CUDA(cudaEventSynchronize(b_));
      float t = 0;
      BCHECK_CUDA(cudaEventElapsedTime(&t, a_, b_));
      ms.push_back(double(t) / reps_);
    }
    return bench::stats_of(ms);
  }

 private:
  cudaStream_t s_;
  int warmup_, iters_, reps_;
  cudaEvent_t a_{}, b_{};
};

const ember::detail::CudaBackend& ember_cuda() { return ember::detail::cuda("bench-ops-cuda"); }

ember::Tensor dev_tensor(const DevBuf& b, const ember::Shape& shape, bool grad) {
  ember::Tensor t = ember::from_vector(b.download(), shape, ember::Device::cuda);
  if (grad) t.set_requires_grad();
  return t;
}

#ifdef EMBER_BENCH_HAS_CUDNN
const float kOne = 1.0f, kZero = 0.0f;

cudnnTensorDescriptor_t tensor_desc(int n, int c, int h, int w) {
  cudnnTensorDescriptor_t d;
  BCHECK_DNN(cudnnCreateTensorDescriptor(&d));
  BCHECK_DNN(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  return d;
}

/// cuDNN descriptors and algorithms for one convolution geometry c (x: input, y: output).
struct ConvDnn {
  cudnnTensorDescriptor_t x{}, y{};
  cudnnFilterDescriptor_t w{};
  cudnnConvolutionDescriptor_t conv{};
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t ws_fwd = 0, ws_data = 0, ws_filter = 0;
};

std::shared_ptr<ConvDnn> make_conv_dnn(const Libs& L, const ember::kernels::Conv2dShape& c) {
  auto d = std::shared_ptr<ConvDnn>(new ConvDnn, [](ConvDnn* p) {
    cudnnDestroyTensorDescriptor(p->x);
    cudnnDestroyTensorDescriptor(p->y);
    cudnnDestroyFilterDescriptor(p->w);
    cudnnDestroyConvolutionDescriptor(p->conv);
    delete p;
  });
  d->x = tensor_desc(c.N, c.C, c.H, c.W);
  d->y = tensor_desc(c.N, c.K, c.OH, c.OW);
  BCHECK_DNN(cudnnCreateFilterDescriptor(&d->w));
  BCHECK_DNN(cudnnSetFilter4dDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, c.K, c.C, c.R,
                                        c.S));
  BCHECK_DNN(cudnnCreateConvolutionDescriptor(&d->conv));
  BCHECK_DNN(cudnnSetConvolution2dDescriptor(d->conv, c.pad, c.pad, c.stride, c.stride, 1, 1,
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  BCHECK_DNN(cudnnSetConvolutionMathType(d->conv, L.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  int n = 0, k = 0, h = 0, w = 0;
  BCHECK_DNN(cudnnGetConvolution2dForwardOutputDim(d->conv, d->x, d->w, &n, &k, &h, &w));
  if (n != c.N || k != c.K || h != c.OH || w != c.OW)
    throw std::logic_error("cuDNN output dims differ from ember's");
  return d;
}

/// Finds the fastest algorithm of each direction on real buffers (x, w, y; any contents).
void find_algos(const Libs& L, ConvDnn& d, float* x, float* w, float* y) {
  const int kMax = 16;
  int got = 0;
  cudnnConvolutionFwdAlgoPerf_t pf[kMax];
  BCHECK_DNN(cudnnFindConvolutionForwardAlgorithmEx(L.dnn, d.x, x, d.w, w, d.conv, d.y, y, kMax,
                                                    &got, pf, L.workspace->p, L.workspace_bytes));
  int i = 0;
  while (i < got && pf[i].status != CUDNN_STATUS_SUCCESS) ++i;
  if (i == got) throw std::runtime_error("cuDNN found no forward algorithm");
  d.fwd = pf[i].algo, d.ws_fwd = pf[i].memory;
  cudnnConvolutionBwdDataAlgoPerf_t pd[kMax];
  BCHECK_DNN(cudnnFindConvolutionBackwardDataAlgorithmEx(L.dnn, d.w, w, d.y, y, d.conv, d.x, x,
                                                         kMax, &got, pd, L.workspace->p,
                                                         L.workspace_bytes));
  i = 0;
  while (i < got && pd[i].status != CUDNN_STATUS_SUCCESS) ++i;
  if (i == got) throw std::runtime_error("cuDNN found no backward-data algorithm");
  d.bwd_data = pd[i].algo, d.ws_data = pd[i].memory;
  cudnnConvolutionBwdFilterAlgoPerf_t pw[kMax];
  BCHECK_DNN(cudnnFindConvolutionBackwardFilterAlgorithmEx(L.dnn, d.x, x, d.y, y, d.conv, d.w, w,
                                                           kMax, &got, pw, L.workspace->p,
                                                           L.workspace_bytes));
  i = 0;
  while (i < got && pw[i].status != CUDNN_STATUS_SUCCESS) ++i;
  if (i == got) throw std::runtime_error("cuDNN found no backward-filter algorithm");
  d.bwd_filter = pw[i].algo, d.ws_filter = pw[i].memory;
}
#endif  // EMBER_BENCH_HAS_CUDNN

double conv_rel(const Libs& L) { return L.tf32 ? 2e-2 : 1e-4; }

void make_conv(OpCase& oc, Libs& L, const OpSpec& op, int N) {
  const auto s = bench::conv_shape(op, N);
  const size_t nx = size_t(N) * s.C * s.H * s.W, ny = size_t(N) * s.K * s.OH * s.OW,
               nw = size_t(s.K) * s.C * 9;
  DevBuf *x = oc.buf(nx, 1, true), *w = oc.buf(nw, 2, true), *b = oc.buf(size_t(s.K), 3, true),
         *gy = oc.buf(ny, 4, true);
  DevBuf *y = oc.buf(ny), *dx = oc.buf(nx), *dw = oc.buf(nw), *db = oc.buf(size_t(s.K));
  DevBuf *vy = oc.buf(ny), *vdx = oc.buf(nx), *vdw = oc.buf(nw), *vdb = oc.buf(size_t(s.K));
  const auto& E = ember_cuda();
  Pass f{"fwd", [=, &E] { E.conv2d_forward(s, x->p, w->p, b->p, y->p); }, {}, "", "", {{y, vy}}};
  Pass bi{"bwd_input", [=, &E] { E.conv2d_backward_input(s, gy->p, w->p, dx->p); }, {}, "", "",
          {{dx, vdx}}};
  Pass bw{"bwd_weight", [=, &E] { E.conv2d_backward_weight(s, x->p, gy->p, dw->p, db->p); }, {},
          "", "", {{dw, vdw}, {db, vdb}}};
#ifdef EMBER_BENCH_HAS_CUDNN
  auto d = make_conv_dnn(L, s);
  find_algos(L, *d, vdx->p, vdw->p, vy->p);  // scratch buffers: Find writes all three
  cudnnTensorDescriptor_t bd = tensor_desc(1, s.K, 1, 1);
  oc.cleanup.push_back([bd] { cudnnDestroyTensorDescriptor(bd); });
  const Libs* l = &L;
  f.vendor = [=] {
    BCHECK_DNN(cudnnConvolutionForward(l->dnn, &kOne, d->x, x->p, d->w, w->p, d->conv, d->fwd,
                                       l->workspace->p, d->ws_fwd, &kZero, d->y, vy->p));
    BCHECK_DNN(cudnnAddTensor(l->dnn, &kOne, bd, b->p, &kOne, d->y, vy->p));
  };
  bi.vendor = [=] {
    BCHECK_DNN(cudnnConvolutionBackwardData(l->dnn, &kOne, d->w, w->p, d->y, gy->p, d->conv,
                                            d->bwd_data, l->workspace->p, d->ws_data, &kZero,
                                            d->x, vdx->p));
  };
  bw.vendor = [=] {
    BCHECK_DNN(cudnnConvolutionBackwardFilter(l->dnn, &kOne, d->x, x->p, d->y, gy->p, d->conv,
                                              d->bwd_filter, l->workspace->p, d->ws_filter,
                                              &kZero, d->w, vdw->p));
    BCHECK_DNN(cudnnConvolutionBackwardBias(l->dnn, &kOne, d->y, gy->p, &kZero, bd, vdb->p));
  };
  f.vendor_impl = bi.vendor_impl = bw.vendor_impl = "cudnn";
  f.vendor_algo = "fwd algo " + std::to_string(int(d->fwd));
  bi.vendor_algo = "bwd_data algo " + std::to_string(int(d->bwd_data));
  bw.vendor_algo = "bwd_filter algo " + std::to_string(int(d->bwd_filter));
#endif
  for (Pass* p : {&f, &bi, &bw}) p->rel = conv_rel(L);
  oc.passes = {f, bi, bw};
  ember::Tensor lx = dev_tensor(*x, {N, s.C, s.H, s.W}, true),
                lw = dev_tensor(*w, {s.K, s.C, 3, 3}, true), lb = dev_tensor(*b, {s.K}, true),
                g = dev_tensor(*gy, {N, s.K, s.OH, s.OW}, false);
  oc.fwd_bwd = [=] { ember::conv2d(lx, lw, lb, 1, 1).backward(g); };
}

void make_convT(OpCase& oc, Libs& L, const OpSpec& op, int N) {
  const auto s = bench::convT_shape(op, N);
  const auto c = bench::conv_of_transpose(s);  // input = convT output, output = convT input
  const size_t nx = size_t(N) * s.C * s.H * s.W, ny = size_t(N) * s.K * s.OH * s.OW,
               nw = size_t(s.C) * s.K * 9;
  DevBuf *x = oc.buf(nx, 11, true), *w = oc.buf(nw, 12, true), *b = oc.buf(size_t(s.K), 13, true),
         *gy = oc.buf(ny, 14, true);
  DevBuf *y = oc.buf(ny), *dx = oc.buf(nx), *dw = oc.buf(nw), *db = oc.buf(size_t(s.K));
  DevBuf *vy = oc.buf(ny), *vdx = oc.buf(nx), *vdw = oc.buf(nw), *vdb = oc.buf(size_t(s.K));
  const auto& E = ember_cuda();
  Pass f{"fwd", [=, &E] { E.conv_transpose2d_forward(s, x->p, w->p, b->p, y->p); }, {}, "", "",
         {{y, vy}}};
  Pass bi{"bwd_input", [=, &E] { E.conv_transpose2d_backward_input(s, gy->p, w->p, dx->p); }, {},
          "", "", {{dx, vdx}}};
  Pass bw{"bwd_weight",
          [=, &E] { E.conv_transpose2d_backward_weight(s, x->p, gy->p, dw->p, db->p); }, {}, "",
          "", {{dw, vdw}, {db, vdb}}};
#ifdef EMBER_BENCH_HAS_CUDNN
  auto d = make_conv_dnn(L, c);
  find_algos(L, *d, vy->p, vdw->p, vdx->p);  // conv x = convT y, conv y = convT x
  cudnnTensorDescriptor_t bd = tensor_desc(1, s.K, 1, 1);
  oc.cleanup.push_back([bd] { cudnnDestroyTensorDescriptor(bd); });
  const Libs* l = &L;
  f.vendor = [=] {  // y = conv's input-gradient of x
    BCHECK_DNN(cudnnConvolutionBackwardData(l->dnn, &kOne, d->w, w->p, d->y, x->p, d->conv,
                                            d->bwd_data, l->workspace->p, d->ws_data, &kZero,
                                            d->x, vy->p));
    BCHECK_DNN(cudnnAddTensor(l->dnn, &kOne, bd, b->p, &kOne, d->x, vy->p));
  };
  bi.vendor = [=] {  // dx = conv(dy)
    BCHECK_DNN(cudnnConvolutionForward(l->dnn, &kOne, d->x, gy->p, d->w, w->p, d->conv, d->fwd,
                                       l->workspace->p, d->ws_fwd, &kZero, d->y, vdx->p));
  };
  bw.vendor = [=] {  // dw = conv's filter gradient with input dy and output-gradient x
    BCHECK_DNN(cudnnConvolutionBackwardFilter(l->dnn, &kOne, d->x, gy->p, d->y, x->p, d->conv,
                                              d->bwd_filter, l->workspace->p, d->ws_filter,
                                              &kZero, d->w, vdw->p));
    BCHECK_DNN(cudnnConvolutionBackwardBias(l->dnn, &kOne, d->x, gy->p, &kZero, bd, vdb->p));
  };
  f.vendor_impl = bi.vendor_impl = bw.vendor_impl = "cudnn";
  f.vendor_algo = "bwd_data algo " + std::to_string(int(d->bwd_data));
  bi.vendor_algo = "fwd algo " + std::to_string(int(d->fwd));
  bw.vendor_algo = "bwd_filter algo " + std::to_string(int(d->bwd_filter));
#else
  (void)c;
#endif
  for (Pass* p : {&f, &bi, &bw}) p->rel = conv_rel(L);
  oc.passes = {f, bi, bw};
  ember::Tensor lx = dev_tensor(*x, {N, s.C, s.H, s.W}, true),
                lw = dev_tensor(*w, {s.C, s.K, 3, 3}, true), lb = dev_tensor(*b, {s.K}, true),
                g = dev_tensor(*gy, {N, s.K, s.OH, s.OW}, false);
  oc.fwd_bwd = [=] { ember::conv_transpose2d(lx, lw, lb, 2, 1, 1).backward(g); };
}

void make_bn(OpCase& oc, Libs& L, const OpSpec& op, int N) {
  (void)L;
  ember::kernels::BatchNormShape s{N, op.C, op.H * op.W};
  const float eps = 1e-5f, momentum = 0.1f;
  const size_t nx = size_t(N) * op.C * op.H * op.W, C = size_t(op.C);
  DevBuf *x = oc.buf(nx, 21, true), *g = oc.buf(C, 22, true), *b = oc.buf(C, 23, true),
         *gy = oc.buf(nx, 24, true);
  DevBuf *y = oc.buf(nx), *dx = oc.buf(nx), *dg = oc.buf(C), *db = oc.buf(C), *mean = oc.buf(C),
         *inv = oc.buf(C), *rm = oc.buf(C), *rv = oc.buf(C);
  DevBuf *vy = oc.buf(nx), *vdx = oc.buf(nx), *vdg = oc.buf(C), *vdb = oc.buf(C),
         *vmean = oc.buf(C), *vinv = oc.buf(C), *vrm = oc.buf(C), *vrv = oc.buf(C);
  rm->upload(std::vector<float>(C, 0.f)), vrm->upload(std::vector<float>(C, 0.f));
  rv->upload(std::vector<float>(C, 1.f)), vrv->upload(std::vector<float>(C, 1.f));
  const auto& E = ember_cuda();
  Pass f{"fwd",
         [=, &E] {
           E.batch_norm_forward_train(s, x->p, g->p, b->p, eps, momentum, y->p, mean->p, inv->p,
                                      rm->p, rv->p);
         },
         {}, "", "", {{y, vy}, {mean, vmean}, {inv, vinv}}};
  Pass bw{"bwd",
          [=, &E] {
            E.batch_norm_backward_train(s, x->p, gy->p, g->p, mean->p, inv->p, dx->p, dg->p,
                                        db->p);
          },
          {}, "", "", {{dx, vdx}, {dg, vdg}, {db, vdb}}};
#ifdef EMBER_BENCH_HAS_CUDNN
  cudnnTensorDescriptor_t xd = tensor_desc(N, op.C, op.H, op.W), pd = tensor_desc(1, op.C, 1, 1);
  oc.cleanup.push_back([xd, pd] {
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroyTensorDescriptor(pd);
  });
  const Libs* l = &L;
  auto fwd_mode = [=](cudnnBatchNormMode_t mode) {
    BCHECK_DNN(cudnnBatchNormalizationForwardTraining(
        l->dnn, mode, &kOne, &kZero, xd, x->p, xd, vy->p, pd, g->p, b->p, momentum, vrm->p,
        vrv->p, eps, vmean->p, vinv->p));
  };
  // Use whichever mode is faster here.
  cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL;
  {
    GpuTimer quick(L.stream, 3, 5, 3);
    double t_sp = quick([&] { fwd_mode(CUDNN_BATCHNORM_SPATIAL); }).median;
    double t_pe = quick([&] { fwd_mode(CUDNN_BATCHNORM_SPATIAL_PERSISTENT); }).median;
    if (t_pe < t_sp) mode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
  }
  f.vendor = [=] { fwd_mode(mode); };
  bw.vendor = [=] {
    BCHECK_DNN(cudnnBatchNormalizationBackward(l->dnn, mode, &kOne, &kZero, &kOne, &kZero, xd,
                                               x->p, xd, gy->p, xd, vdx->p, pd, g->p, vdg->p,
                                               vdb->p, eps, vmean->p, vinv->p));
  };
  f.vendor_impl = bw.vendor_impl = "cudnn";
  f.vendor_algo = bw.vendor_algo =
      mode == CUDNN_BATCHNORM_SPATIAL ? "BATCHNORM_SPATIAL" : "BATCHNORM_SPATIAL_PERSISTENT";
#endif
  f.abs = bw.abs = 1e-5;
  oc.passes = {f, bw};
  ember::Shape shape{N, op.C, op.H, op.W};
  ember::Tensor lx = dev_tensor(*x, shape, true), lg = dev_tensor(*g, {op.C}, true),
                lb = dev_tensor(*b, {op.C}, true), lrm = ember::zeros({op.C}, ember::Device::cuda),
                lrv = ember::ones({op.C}, ember::Device::cuda), lgy = dev_tensor(*gy, shape, false);
  oc.fwd_bwd = [=] {
    ember::batch_norm2d(lx, lg, lb, lrm, lrv, true, momentum, eps).backward(lgy);
  };
}

void make_relu(OpCase& oc, Libs& L, const OpSpec& op, int N) {
  (void)L;
  const int64_t n = int64_t(N) * op.C * op.H * op.W;
  DevBuf *x = oc.buf(size_t(n), 31, true), *gy = oc.buf(size_t(n), 32, true);
  DevBuf *y = oc.buf(size_t(n)), *dx = oc.buf(size_t(n)), *vy = oc.buf(size_t(n)),
         *vdx = oc.buf(size_t(n));
  const auto& E = ember_cuda();
  Pass f{"fwd", [=, &E] { E.relu_forward(n, x->p, y->p); }, {}, "", "", {{y, vy}}};
  Pass bw{"bwd", [=, &E] { E.relu_backward(n, x->p, gy->p, dx->p); }, {}, "", "", {{dx, vdx}}};
#ifdef EMBER_BENCH_HAS_CUDNN
  cudnnTensorDescriptor_t xd = tensor_desc(N, op.C, op.H, op.W);
  cudnnActivationDescriptor_t ad;
  BCHECK_DNN(cudnnCreateActivationDescriptor(&ad));
  BCHECK_DNN(cudnnSetActivationDescriptor(ad, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  oc.cleanup.push_back([xd, ad] {
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroyActivationDescriptor(ad);
  });
  const Libs* l = &L;
  f.vendor = [=] {
    BCHECK_DNN(cudnnActivationForward(l->dnn, ad, &kOne, xd, x->p, &kZero, xd, vy->p));
  };
  bw.vendor = [=] {
    BCHECK_DNN(cudnnActivationBackward(l->dnn, ad, &kOne, xd, vy->p, xd, gy->p, xd, x->p, &kZero,
                                       xd, vdx->p));
  };
  f.vendor_impl = bw.vendor_impl = "cudnn";
#endif
  f.rel = bw.rel = 0, f.abs = bw.abs = 0;
  oc.passes = {f, bw};
  ember::Shape shape = op.H == 1 ? ember::Shape{N, op.C} : ember::Shape{N, op.C, op.H, op.W};
  ember::Tensor lx = dev_tensor(*x, shape, true), lgy = dev_tensor(*gy, shape, false);
  oc.fwd_bwd = [=] { ember::relu(lx).backward(lgy); };
}

void make_pool(OpCase& oc, Libs& L, const OpSpec& op, int N) {
  (void)L;
  const auto s = bench::pool_shape(op, N);
  const size_t nx = size_t(N) * s.C * s.H * s.W, ny = size_t(N) * s.C * s.OH * s.OW;
  DevBuf *x = oc.buf(nx, 41, true), *gy = oc.buf(ny, 42, true);
  DevBuf *y = oc.buf(ny), *idx = oc.buf(ny), *dx = oc.buf(nx), *vy = oc.buf(ny),
         *vdx = oc.buf(nx);
  auto* argmax = reinterpret_cast<int32_t*>(idx->p);
  const auto& E = ember_cuda();
  Pass f{"fwd", [=, &E] { E.max_pool2d_forward(s, x->p, y->p, argmax); }, {}, "", "", {{y, vy}}};
  Pass bw{"bwd", [=, &E] { E.max_pool2d_backward(s, gy->p, argmax, dx->p); }, {}, "", "",
          {{dx, vdx}}};
#ifdef EMBER_BENCH_HAS_CUDNN
  cudnnTensorDescriptor_t xd = tensor_desc(N, s.C, s.H, s.W), yd = tensor_desc(N, s.C, s.OH, s.OW);
  cudnnPoolingDescriptor_t pd;
  BCHECK_DNN(cudnnCreatePoolingDescriptor(&pd));
  BCHECK_DNN(cudnnSetPooling2dDescriptor(pd, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0,
                                         0, 2, 2));
  oc.cleanup.push_back([xd, yd, pd] {
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroyTensorDescriptor(yd);
    cudnnDestroyPoolingDescriptor(pd);
  });
  const Libs* l = &L;
  f.vendor = [=] {
    BCHECK_DNN(cudnnPoolingForward(l->dnn, pd, &kOne, xd, x->p, &kZero, yd, vy->p));
  };
  bw.vendor = [=] {
    BCHECK_DNN(cudnnPoolingBackward(l->dnn, pd, &kOne, yd, vy->p, yd, gy->p, xd, x->p, &kZero, xd,
                                    vdx->p));
  };
  f.vendor_impl = bw.vendor_impl = "cudnn";
#endif
  f.rel = bw.rel = 0, f.abs = bw.abs = 0;
  oc.passes = {f, bw};
  ember::Tensor lx = dev_tensor(*x, {N, s.C, s.H, s.W}, true),
                lgy = dev_tensor(*gy, {N, s.C, s.OH, s.OW}, false);
  oc.fwd_bwd = [=] { ember::max_pool2d(lx, 2).backward(lgy); };
}

void make_linear(OpCase& oc, Libs& L, const OpSpec& op, int N) {
  const ember::kernels::LinearShape s{N, op.C, op.K};
  const int M = s.M, K = s.K, O = s.N;
  DevBuf *x = oc.buf(size_t(M) * K, 51, true), *w = oc.buf(size_t(O) * K, 52, true),
         *b = oc.buf(size_t(O), 53, true), *gy = oc.buf(size_t(M) * O, 54, true);
  DevBuf *y = oc.buf(size_t(M) * O), *dx = oc.buf(size_t(M) * K), *dw = oc.buf(size_t(O) * K),
         *db = oc.buf(size_t(O));
  DevBuf *vy = oc.buf(size_t(M) * O), *vdx = oc.buf(size_t(M) * K), *vdw = oc.buf(size_t(O) * K),
         *vdb = oc.buf(size_t(O)), *ones = oc.buf(size_t(M));
  ones->upload(std::vector<float>(size_t(M), 1.0f));
#ifdef EMBER_BENCH_HAS_CUBLAS
  const auto& E = ember_cuda();
  cublasHandle_t h = L.blas;
  const float one = 1.0f, zero = 0.0f;
  // Row-major buffers seen by column-major cuBLAS as their transposes.
  Pass f{"fwd", [=, &E] { E.linear_forward(s, x->p, w->p, b->p, y->p); },
         [=] {  // y^T (O x M) = W (O x K) x^T, then += b 1^T
           BCHECK_BLAS(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, O, M, K, &one, w->p, K, x->p, K,
                                   &zero, vy->p, O));
           BCHECK_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, O, M, 1, &one, b->p, O, ones->p, 1,
                                   &one, vy->p, O));
         },
         "cublas", "sgemm + rank-1 sgemm (bias)", {{y, vy}}};
  Pass bi{"bwd_input", [=, &E] { E.linear_backward_input(s, gy->p, w->p, dx->p); },
          [=] {  // dx^T (K x M) = W^T (K x O) dy^T (O x M)
            BCHECK_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, K, M, O, &one, w->p, K, gy->p, O,
                                    &zero, vdx->p, K));
          },
          "cublas", "sgemm", {{dx, vdx}}};
  Pass bw{"bwd_weight", [=, &E] { E.linear_backward_weight(s, x->p, gy->p, dw->p, db->p); },
          [=] {  // dW^T (K x O) = x^T (K x M) dy (M x O); db = dy^T 1
            BCHECK_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, K, O, M, &one, x->p, K, gy->p, O,
                                    &zero, vdw->p, K));
            BCHECK_BLAS(cublasSgemv(h, CUBLAS_OP_N, O, M, &one, gy->p, O, ones->p, 1, &zero,
                                    vdb->p, 1));
          },
          "cublas", "sgemm + sgemv (bias)", {{dw, vdw}, {db, vdb}}};
#else
  const auto& E = ember_cuda();
  // Without cuBLAS (the host SIMT runtime) ember's kernels run alone, checked by bench_common.
  Pass f{"fwd", [=, &E] { E.linear_forward(s, x->p, w->p, b->p, y->p); }, nullptr, "", "", {}};
  Pass bi{"bwd_input", [=, &E] { E.linear_backward_input(s, gy->p, w->p, dx->p); }, nullptr, "",
          "", {}};
  Pass bw{"bwd_weight", [=, &E] { E.linear_backward_weight(s, x->p, gy->p, dw->p, db->p); },
          nullptr, "", "", {}};
  (void)vy;
  (void)vdx;
  (void)vdw;
  (void)vdb;
#endif
  for (Pass* p : {&f, &bi, &bw}) p->rel = L.tf32 ? 2e-2 : 1e-4;
  oc.passes = {f, bi, bw};
  ember::Tensor lx = dev_tensor(*x, {M, K}, true), lw = dev_tensor(*w, {O, K}, true),
                lb = dev_tensor(*b, {O}, true), lgy = dev_tensor(*gy, {M, O}, false);
  oc.fwd_bwd = [=] { ember::linear(lx, lw, lb).backward(lgy); };
}

void make_concat(OpCase& oc, Libs& L, const OpSpec& op, int N) {
  const int64_t P = int64_t(op.H) * op.W, ba = op.C * P, bb = op.K * P, bo = ba + bb;
  DevBuf *a = oc.buf(size_t(N * ba), 61, true), *b = oc.buf(size_t(N * bb), 62, true),
         *gy = oc.buf(size_t(N * bo), 63, true);
  DevBuf *y = oc.buf(size_t(N * bo)), *da = oc.buf(size_t(N * ba)), *db = oc.buf(size_t(N * bb));
  DevBuf *vy = oc.buf(size_t(N * bo)), *vda = oc.buf(size_t(N * ba)),
         *vdb = oc.buf(size_t(N * bb));
  const auto& E = ember_cuda();
  cudaStream_t st = L.stream;
  const size_t fs = sizeof(float);
  Pass f{"fwd",
         [=, &E] {
           E.concat_copy(N, ba, bo, 0, a->p, y->p);
           E.concat_copy(N, bb, bo, ba, b->p, y->p);
         },
         [=] {
           BCHECK_CUDA(cudaMemcpy2DAsync(vy->p, bo * fs, a->p, ba * fs, ba * fs, N,
                                         cudaMemcpyDeviceToDevice, st));
           BCHECK_CUDA(cudaMemcpy2DAsync(vy->p + ba, bo * fs, b->p, bb * fs, bb * fs, N,
                                         cudaMemcpyDeviceToDevice, st));
         },
         "cudart", "cudaMemcpy2DAsync x2", {{y, vy}}};
  Pass bw{"bwd",
          [=, &E] {
            E.slice_copy(N, bo, 0, ba, gy->p, da->p);
            E.slice_copy(N, bo, ba, bb, gy->p, db->p);
          },
          [=] {
            BCHECK_CUDA(cudaMemcpy2DAsync(vda->p, ba * fs, gy->p, bo * fs, ba * fs, N,
                                          cudaMemcpyDeviceToDevice, st));
            BCHECK_CUDA(cudaMemcpy2DAsync(vdb->p, bb * fs, gy->p + ba, bo * fs, bb * fs, N,
                                          cudaMemcpyDeviceToDevice, st));
          },
          "cudart", "cudaMemcpy2DAsync x2", {{da, vda}, {db, vdb}}};
  f.rel = bw.rel = 0, f.abs = bw.abs = 0;
  oc.passes = {f, bw};
  ember::Tensor la = dev_tensor(*a, {N, op.C, op.H, op.W}, true),
                lb = dev_tensor(*b, {N, op.K, op.H, op.W}, true),
                lgy = dev_tensor(*gy, {N, op.C + op.K, op.H, op.W}, false);
  oc.fwd_bwd = [=] { ember::cat({la, lb}, 1).backward(lgy); };
}

void make_case(OpCase& oc, Libs& L, const OpSpec& op, int N) {
  switch (op.kind) {
    case Kind::conv: return make_conv(oc, L, op, N);
    case Kind::convT: return make_convT(oc, L, op, N);
    case Kind::bn: return make_bn(oc, L, op, N);
    case Kind::relu: return make_relu(oc, L, op, N);
    case Kind::maxpool: return make_pool(oc, L, op, N);
    case Kind::linear: return make_linear(oc, L, op, N);
    case Kind::concat: return make_concat(oc, L, op, N);
  }
}

}  // namespace

int run_cuda_ops(const bench::Options& o, bench::JsonOut& out) {
  if (!ember::cuda::is_available()) {
    std::fprintf(stderr, "bench-ops: no CUDA device is visible\n");
    return 2;
  }
  const int iters = o.iters > 0 ? o.iters : (o.tiny ? 3 : 100);
  const int warmup = o.warmup >= 0 ? o.warmup : (o.tiny ? 1 : 10);
  const int reps = o.reps > 0 ? o.reps : (o.tiny ? 2 : 10);

  Libs L;
  L.tf32 = o.tf32;
  L.stream = ember::cuda::current_stream();
#ifdef EMBER_BENCH_HAS_CUBLAS
  BCHECK_BLAS(cublasCreate(&L.blas));
  BCHECK_BLAS(cublasSetStream(L.blas, L.stream));
  BCHECK_BLAS(cublasSetMathMode(L.blas, o.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
#endif
#ifdef EMBER_BENCH_HAS_CUDNN
  L.workspace_bytes = size_t(256) << 20;  // cuDNN's workspace
  L.workspace = std::make_unique<DevBuf>(L.workspace_bytes / sizeof(float));
  BCHECK_DNN(cudnnCreate(&L.dnn));
  BCHECK_DNN(cudnnSetStream(L.dnn, L.stream));
  const std::string cudnn_version = std::to_string(cudnnGetVersion());
#else
  const std::string cudnn_version = "none";
#endif
  int blas_version = 0;
#ifdef EMBER_BENCH_HAS_CUBLAS
  BCHECK_BLAS(cublasGetVersion(L.blas, &blas_version));
#endif

  bench::Json info;
  info.str("bench", "info").str("impl", "ember").str("device", "cuda");
  info.str("gpu", ember_cuda().device_name()).str("cudnn", cudnn_version);
  info.integer("cublas", blas_version).boolean("tf32", o.tf32);
  info.integer("iters", iters).integer("warmup", warmup).integer("reps", reps);
  out.emit(info);
  std::printf("bench-ops: ember CUDA kernels vs cuDNN %s / cuBLAS %d on %s (%s), %d samples of %d "
              "calls after %d warmup\n",
              cudnn_version.c_str(), blas_version, ember_cuda().device_name(),
              o.tf32 ? "vendor TF32 allowed" : "strict FP32", iters, reps, warmup);

  GpuTimer timer(L.stream, warmup, iters, reps);
  int failures = 0;
  for (int N : o.batches) {
    std::printf("\nbatch %d (microseconds per call)\n", N);
    std::printf("%-26s %-10s %11s %11s %11s %8s  %-26s %s\n", "op", "pass", "ember us",
                "ember min", "vendor us", "ratio", "check (max abs err / tol)", "vendor");
    std::printf("%s\n", std::string(130, '-').c_str());
    for (const OpSpec& op : bench::selected_ops(o)) {
      OpCase oc;
      make_case(oc, L, op, N);
      for (Pass& p : oc.passes) {
        bench::Stats se = timer(p.ember);
        bench::Json je = bench::op_json("ember", "cuda", N, op, p.name, iters, se);
        je.integer("reps", reps);
        bench::Stats sv;
        bool have_vendor = static_cast<bool>(p.vendor);
        CheckResult cr;
        if (have_vendor) {
          sv = timer(p.vendor);
          // Outputs of the last timed calls; both are deterministic functions of the inputs.
          BCHECK_CUDA(cudaStreamSynchronize(L.stream));
          for (auto& [eb, vb] : p.outputs) {
            std::vector<float> ge = eb->download(), gv = vb->download();
            cr = bench::merge(cr, bench::compare(ge.data(), gv.data(), ge.size(), p.rel, p.abs));
          }
          if (o.check) {
            bench::add_check(je, cr);
            if (!cr.ok) ++failures;
          }
          je.str("vs", p.vendor_impl).num("ratio_vs_vendor", se.median / sv.median, 4);
        }
        out.emit(je);
        if (have_vendor) {
          bench::Json jv = bench::op_json(p.vendor_impl, "cuda", N, op, p.name, iters, sv);
          jv.integer("reps", reps).str("algo", p.vendor_algo);
          out.emit(jv);
        }
        char chk[64] = "-", vus[32] = "-", ratio[32] = "-";
        if (have_vendor) {
          std::snprintf(vus, sizeof vus, "%.2f", sv.median * 1e3);
          std::snprintf(ratio, sizeof ratio, "%.2f", se.median / sv.median);
          std::snprintf(chk, sizeof chk, "%s (%.2e / %.2e)", cr.ok ? "PASS" : "FAIL",
                        cr.max_abs_err, cr.tol);
        }
        std::printf("%-26s %-10s %11.2f %11.2f %11s %8s  %-26s %s %s\n", op.name.c_str(),
                    p.name.c_str(), se.median * 1e3, se.min * 1e3, vus, ratio, chk,
                    p.vendor_impl.c_str(), p.vendor_algo.c_str());
        std::fflush(stdout);
      }
      bench::Stats sf = timer(oc.fwd_bwd);
      out.emit(bench::op_json("ember-autograd", "cuda", N, op, "fwd+bwd", iters, sf));
      std::printf("%-26s %-10s %11.2f %11.2f %11s %8s  %-26s %s\n", op.name.c_str(), "fwd+bwd",
                  sf.median * 1e3, sf.min * 1e3, "-", "-", "-", "(ember op + autograd)");
    }
  }
#ifdef EMBER_BENCH_HAS_CUDNN
  cudnnDestroy(L.dnn);
#endif
#ifdef EMBER_BENCH_HAS_CUBLAS
  cublasDestroy(L.blas);
#endif
  if (failures) std::printf("\nbench-ops: %d check(s) against cuDNN/cuBLAS FAILED\n", failures);
  else if (o.check) std::printf("\nbench-ops: all checks against cuDNN/cuBLAS passed\n");
  return failures ? 1 : 0;
}
