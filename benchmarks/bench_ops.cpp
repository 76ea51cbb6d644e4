// @file benchmarks/bench_ops.cpp
// @brief bench-ops: forward and backward of every op the seed U-Net runs, at its exact shapes.
//
// CPU (this file): each kernel pass (fwd, bwd_input, bwd_weight or bwd) is timed by calling the
// kernel in include/ember/kernels/cpu directly (steady_clock; median and min of --iters samples
// after
// --warmup calls), and the whole op (ember op + autograd backward) as "fwd+bwd". Every kernel
// result is checked against a naive double-precision reference (conv outputs on three sampled
// images of the batch, reductions over the whole batch); any FAIL makes the exit status 1.
// With EMBER_BENCH_CUDA (target bench-ops-cuda) --device cuda runs bench_ops_cuda.cu instead,
// which times ember's CUDA kernels beside cuDNN / cuBLAS and checks them against those.
//
//   bench-ops [--device cpu|cuda] [--batch 128] [--iters N] [--warmup N] [--json FILE] [--tiny]
//             [--only SUBSTRING] [--no-check] [--list]
#include <ember/ember.hpp>

#include <functional>
#include <map>

#include "../tests/support/naive_reference.hpp"
#include "bench_common.hpp"

#ifdef EMBER_BENCH_CUDA
int run_cuda_ops(const bench::Options& o, bench::JsonOut& out);  // bench_ops_cuda.cu
#endif

namespace {

using bench::CheckResult;
using bench::Kind;
using bench::OpSpec;
using ember::Shape;
using ember::Tensor;
namespace naive = ember_test::naive;

Tensor host_tensor(const Shape& shape, uint64_t seed, bool normal = true) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return ember::from_vector(bench::host_random(size_t(n), seed, normal), shape);
}

/// The kernel passes of one op, a check for each, and the autograd round trip.
struct OpBench {
  std::vector<std::pair<std::string, std::function<void()>>> passes;
  std::map<std::string, std::function<CheckResult()>> checks;  // run right after the pass
  std::function<void()> fwd_bwd;
};

std::vector<int> sample_images(int N) {
  std::vector<int> v{0};
  if (N / 2 != 0) v.push_back(N / 2);
  if (N - 1 != 0 && N - 1 != N / 2) v.push_back(N - 1);
  return v;
}

/// Compares image n of a (N, per) buffer with the reference `ref(n)` of that image alone.
template <class F>
CheckResult check_images(int N, size_t per, const float* got, double rel, F ref) {
  CheckResult all;
  for (int n : sample_images(N)) {
    const naive::Sums r = ref(n);
    if (r.size() != per) throw std::logic_error("check_images: reference of the wrong size");
    const std::vector<float> rf = r.to_float();
    all = bench::merge(all, bench::compare(got + size_t(n) * per, rf.data(), per, rel));
  }
  return all;
}

/// The shape of one image of a batch (the naive references then run on image n's buffers).
template <class S>
S one_image(S s) {
  s.N = 1;
  return s;
}

/// got (n values) against a naive reference, within rel of its largest magnitude.
CheckResult compare_ref(const float* got, const naive::Sums& ref, double rel) {
  const std::vector<float> r = ref.to_float();
  return bench::compare(got, r.data(), r.size(), rel);
}

constexpr double kConvRel = 5e-4;  // of the largest reference magnitude
constexpr double kRel = 1e-4;

/// The checks of a convolution's three passes against the naive op naive_op(shape): fwd and
/// bwd_input on sampled images, bwd_weight (dw and db) over the whole batch.
template <class Shape, class NaiveOp>
void add_conv_checks(OpBench& ob, const Shape& s, NaiveOp naive_op, const Tensor& x,
                     const Tensor& w, const Tensor& b, const Tensor& gy, const Tensor& y,
                     const Tensor& dx, const Tensor& dw, const Tensor& db) {
  const int N = s.N;
  const size_t per_x = size_t(s.C) * s.H * s.W, per_y = size_t(s.K) * s.OH * s.OW;
  ob.checks["fwd"] = [=] {
    return check_images(N, per_y, y.data(), kConvRel, [&](int n) {
      return naive::forward(naive_op(one_image(s)), x.data() + n * per_x, w.data(), b.data());
    });
  };
  ob.checks["bwd_input"] = [=] {
    return check_images(N, per_x, dx.data(), kConvRel, [&](int n) {
      return naive::backward_input(naive_op(one_image(s)), gy.data() + n * per_y, w.data());
    });
  };
  ob.checks["bwd_weight"] = [=] {
    const auto full = naive_op(s);
    return bench::merge(
        compare_ref(dw.data(), naive::backward_weight(full, x.data(), gy.data()), kConvRel),
        compare_ref(db.data(), naive::backward_bias(full, gy.data()), kConvRel));
  };
}

OpBench make_conv(const OpSpec& op, int N) {
  auto s = bench::conv_shape(op, N);
  Tensor x = host_tensor({N, s.C, s.H, s.W}, 1), w = host_tensor({s.K, s.C, 3, 3}, 2),
         b = host_tensor({s.K}, 3), gy = host_tensor({N, s.K, s.OH, s.OW}, 4);
  Tensor y = ember::empty(gy.shape()), dx = ember::empty(x.shape()), dw = ember::empty(w.shape()),
         db = ember::empty(b.shape());
  OpBench ob;
  ob.passes = {
      {"fwd", [=] { ember::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data()); }},
      {"bwd_input", [=] { ember::cpu::conv2d_backward_input(s, gy.data(), w.data(), dx.data()); }},
      {"bwd_weight",
       [=] { ember::cpu::conv2d_backward_weight(s, x.data(), gy.data(), dw.data(), db.data()); }}};
  add_conv_checks(ob, s, naive::conv2d, x, w, b, gy, y, dx, dw, db);
  Tensor lx = x.clone().set_requires_grad(), lw = w.clone().set_requires_grad(),
         lb = b.clone().set_requires_grad();
  ob.fwd_bwd = [=] { ember::conv2d(lx, lw, lb, 1, 1).backward(gy); };
  return ob;
}

OpBench make_convT(const OpSpec& op, int N) {
  auto s = bench::convT_shape(op, N);
  Tensor x = host_tensor({N, s.C, s.H, s.W}, 11), w = host_tensor({s.C, s.K, 3, 3}, 12),
         b = host_tensor({s.K}, 13), gy = host_tensor({N, s.K, s.OH, s.OW}, 14);
  Tensor y = ember::empty(gy.shape()), dx = ember::empty(x.shape()), dw = ember::empty(w.shape()),
         db = ember::empty(b.shape());
  OpBench ob;
  ob.passes = {
      {"fwd",
       [=] { ember::cpu::conv_transpose2d_forward(s, x.data(), w.data(), b.data(), y.data()); }},
      {"bwd_input",
       [=] { ember::cpu::conv_transpose2d_backward_input(s, gy.data(), w.data(), dx.data()); }},
      {"bwd_weight", [=] {
         ember::cpu::conv_transpose2d_backward_weight(s, x.data(), gy.data(), dw.data(),
                                                      db.data());
       }}};
  add_conv_checks(ob, s, naive::conv_transpose2d, x, w, b, gy, y, dx, dw, db);
  Tensor lx = x.clone().set_requires_grad(), lw = w.clone().set_requires_grad(),
         lb = b.clone().set_requires_grad();
  ob.fwd_bwd = [=] { ember::conv_transpose2d(lx, lw, lb, 2, 1, 1).backward(gy); };
  return ob;
}

OpBench make_bn(const OpSpec& op, int N) {
  ember::kernels::BatchNormShape s{N, op.C, op.H * op.W};
  const float eps = 1e-5f, momentum = 0.1f;
  Tensor x = host_tensor({N, op.C, op.H, op.W}, 21), g = host_tensor({op.C}, 22),
         b = host_tensor({op.C}, 23), gy = host_tensor(x.shape(), 24);
  Tensor y = ember::empty(x.shape()), dx = ember::empty(x.shape()), dg = ember::empty(g.shape()),
         db = ember::empty(g.shape()), mean = ember::empty(g.shape()),
         invstd = ember::empty(g.shape()), rm = ember::zeros(g.shape()),
         rv = ember::ones(g.shape());
  OpBench ob;
  ob.passes = {{"fwd",
                [=] {
                  ember::cpu::batch_norm_forward_train(s, x.data(), g.data(), b.data(), eps,
                                                       momentum, y.data(), mean.data(),
                                                       invstd.data(), rm.data(), rv.data());
                }},
               {"bwd", [=] {
                  ember::cpu::batch_norm_backward_train(s, x.data(), gy.data(), g.data(),
                                                        mean.data(), invstd.data(), dx.data(),
                                                        dg.data(), db.data());
                }}};
  ob.checks["fwd"] = [=] {
    std::vector<float> r(size_t(x.numel()));
    bench::ref::bn_fwd(N, s.C, s.HW, x.data(), g.data(), b.data(), eps, r.data());
    return bench::compare(y.data(), r.data(), r.size(), kRel, 1e-5);
  };
  ob.checks["bwd"] = [=] {
    std::vector<float> r(size_t(x.numel())), rg(size_t(s.C)), rb(size_t(s.C));
    bench::ref::bn_bwd(N, s.C, s.HW, x.data(), gy.data(), g.data(), eps, r.data(), rg.data(),
                       rb.data());
    auto a = bench::compare(dx.data(), r.data(), r.size(), kRel, 1e-5);
    a = bench::merge(a, bench::compare(dg.data(), rg.data(), rg.size(), kRel, 1e-5));
    return bench::merge(a, bench::compare(db.data(), rb.data(), rb.size(), kRel, 1e-5));
  };
  Tensor lx = x.clone().set_requires_grad(), lg = g.clone().set_requires_grad(),
         lb = b.clone().set_requires_grad(), lrm = rm.clone(), lrv = rv.clone();
  ob.fwd_bwd = [=] {
    ember::batch_norm2d(lx, lg, lb, lrm, lrv, true, momentum, eps).backward(gy);
  };
  return ob;
}

OpBench make_relu(const OpSpec& op, int N) {
  Shape shape = op.H == 1 ? Shape{N, op.C} : Shape{N, op.C, op.H, op.W};
  Tensor x = host_tensor(shape, 31), gy = host_tensor(shape, 32);
  Tensor y = ember::empty(shape), dx = ember::empty(shape);
  const int64_t n = x.numel();
  OpBench ob;
  ob.passes = {{"fwd", [=] { ember::cpu::relu_forward(n, x.data(), y.data()); }},
               {"bwd", [=] { ember::cpu::relu_backward(n, x.data(), gy.data(), dx.data()); }}};
  ob.checks["fwd"] = [=] {
    std::vector<float> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) r[size_t(i)] = std::max(x.data()[i], 0.0f);
    return bench::compare(y.data(), r.data(), r.size(), 0, 0);
  };
  ob.checks["bwd"] = [=] {
    std::vector<float> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) r[size_t(i)] = x.data()[i] > 0 ? gy.data()[i] : 0.0f;
    return bench::compare(dx.data(), r.data(), r.size(), 0, 0);
  };
  Tensor lx = x.clone().set_requires_grad();
  ob.fwd_bwd = [=] { ember::relu(lx).backward(gy); };
  return ob;
}

OpBench make_pool(const OpSpec& op, int N) {
  auto s = bench::pool_shape(op, N);
  Tensor x = host_tensor({N, s.C, s.H, s.W}, 41), gy = host_tensor({N, s.C, s.OH, s.OW}, 42);
  Tensor y = ember::empty(gy.shape()), idx = ember::empty(gy.shape()),
         dx = ember::empty(x.shape());
  auto* argmax = reinterpret_cast<int32_t*>(idx.data());
  OpBench ob;
  ob.passes = {{"fwd", [=] { ember::cpu::max_pool2d_forward(s, x.data(), y.data(), argmax); }},
               {"bwd", [=] { ember::cpu::max_pool2d_backward(s, gy.data(), argmax, dx.data()); }}};
  auto refs = [=](std::vector<float>& ry, std::vector<float>& rdx) {
    ry.resize(size_t(y.numel()));
    rdx.resize(size_t(x.numel()));
    bench::ref::maxpool_fwd_bwd(s, x.data(), gy.data(), ry.data(), rdx.data());
  };
  ob.checks["fwd"] = [=] {
    std::vector<float> ry, rdx;
    refs(ry, rdx);
    return bench::compare(y.data(), ry.data(), ry.size(), 0, 0);
  };
  ob.checks["bwd"] = [=] {
    std::vector<float> ry, rdx;
    refs(ry, rdx);
    return bench::compare(dx.data(), rdx.data(), rdx.size(), 0, 0);
  };
  Tensor lx = x.clone().set_requires_grad();
  ob.fwd_bwd = [=] { ember::max_pool2d(lx, 2).backward(gy); };
  return ob;
}

OpBench make_linear(const OpSpec& op, int N) {
  ember::kernels::LinearShape s{N, op.C, op.K};
  Tensor x = host_tensor({N, op.C}, 51), w = host_tensor({op.K, op.C}, 52),
         b = host_tensor({op.K}, 53), gy = host_tensor({N, op.K}, 54);
  Tensor y = ember::empty(gy.shape()), dx = ember::empty(x.shape()), dw = ember::empty(w.shape()),
         db = ember::empty(b.shape());
  OpBench ob;
  ob.passes = {
      {"fwd", [=] { ember::cpu::linear_forward(s, x.data(), w.data(), b.data(), y.data()); }},
      {"bwd_input", [=] { ember::cpu::linear_backward_input(s, gy.data(), w.data(), dx.data()); }},
      {"bwd_weight",
       [=] { ember::cpu::linear_backward_weight(s, x.data(), gy.data(), dw.data(), db.data()); }}};
  ob.checks["fwd"] = [=] {
    return compare_ref(y.data(), naive::forward(naive::linear(s), x.data(), w.data(), b.data()),
                       kRel);
  };
  ob.checks["bwd_input"] = [=] {
    return compare_ref(dx.data(), naive::backward_input(naive::linear(s), gy.data(), w.data()),
                       kRel);
  };
  ob.checks["bwd_weight"] = [=] {
    return bench::merge(
        compare_ref(dw.data(), naive::backward_weight(naive::linear(s), x.data(), gy.data()), kRel),
        compare_ref(db.data(), naive::backward_bias(naive::linear(s), gy.data()), kRel));
  };
  Tensor lx = x.clone().set_requires_grad(), lw = w.clone().set_requires_grad(),
         lb = b.clone().set_requires_grad();
  ob.fwd_bwd = [=] { ember::linear(lx, lw, lb).backward(gy); };
  return ob;
}

OpBench make_concat(const OpSpec& op, int N) {
  const int64_t P = int64_t(op.H) * op.W, ba = op.C * P, bb = op.K * P, bo = ba + bb;
  Tensor a = host_tensor({N, op.C, op.H, op.W}, 61), b = host_tensor({N, op.K, op.H, op.W}, 62),
         gy = host_tensor({N, op.C + op.K, op.H, op.W}, 63);
  Tensor y = ember::empty(gy.shape()), da = ember::empty(a.shape()), db = ember::empty(b.shape());
  OpBench ob;
  ob.passes = {{"fwd",
                [=] {
                  ember::cpu::concat_copy(N, ba, bo, 0, a.data(), y.data());
                  ember::cpu::concat_copy(N, bb, bo, ba, b.data(), y.data());
                }},
               {"bwd", [=] {
                  ember::cpu::slice_copy(N, bo, 0, ba, gy.data(), da.data());
                  ember::cpu::slice_copy(N, bo, ba, bb, gy.data(), db.data());
                }}};
  ob.checks["fwd"] = [=] {
    std::vector<float> r(size_t(y.numel()));
    for (int n = 0; n < N; ++n) {
      std::copy(a.data() + n * ba, a.data() + (n + 1) * ba, r.data() + n * bo);
      std::copy(b.data() + n * bb, b.data() + (n + 1) * bb, r.data() + n * bo + ba);
    }
    return bench::compare(y.data(), r.data(), r.size(), 0, 0);
  };
  ob.checks["bwd"] = [=] {
    std::vector<float> ra(size_t(a.numel())), rb(size_t(b.numel()));
    for (int n = 0; n < N; ++n) {
      std::copy(gy.data() + n * bo, gy.data() + n * bo + ba, ra.data() + n * ba);
      std::copy(gy.data() + n * bo + ba, gy.data() + (n + 1) * bo, rb.data() + n * bb);
    }
    return bench::merge(bench::compare(da.data(), ra.data(), ra.size(), 0, 0),
                        bench::compare(db.data(), rb.data(), rb.size(), 0, 0));
  };
  Tensor la = a.clone().set_requires_grad(), lb = b.clone().set_requires_grad();
  ob.fwd_bwd = [=] { ember::cat({la, lb}, 1).backward(gy); };
  return ob;
}

OpBench make_bench(const OpSpec& op, int N) {
  switch (op.kind) {
    case Kind::conv: return make_conv(op, N);
    case Kind::convT: return make_convT(op, N);
    case Kind::bn: return make_bn(op, N);
    case Kind::relu: return make_relu(op, N);
    case Kind::maxpool: return make_pool(op, N);
    case Kind::linear: return make_linear(op, N);
    case Kind::concat: return make_concat(op, N);
  }
  throw std::logic_error("unknown op kind");
}

void print_header() {
  std::printf("%-26s %-10s %-15s %11s %11s %9s  %s\n", "op", "pass", "impl", "median ms",
              "min ms", "GFLOP/s", "check (max abs err / tol)");
  std::printf("%s\n", std::string(110, '-').c_str());
}

void print_row(const OpSpec& op, const std::string& pass, const std::string& impl,
               const bench::Stats& st, int N, const CheckResult* cr) {
  double f = bench::pass_flops(op, N);
  if (pass == "fwd+bwd") f *= 3;
  if (pass == "bwd") f = 0;
  char gf[32] = "-";
  if (f > 0 && st.median > 0) std::snprintf(gf, sizeof gf, "%.1f", f / (st.median * 1e-3) / 1e9);
  std::string chk = "-";
  if (cr) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s (%.2e / %.2e)", cr->ok ? "PASS" : "FAIL", cr->max_abs_err,
                  cr->tol);
    chk = buf;
  }
  std::printf("%-26s %-10s %-15s %11.4f %11.4f %9s  %s\n", op.name.c_str(), pass.c_str(),
              impl.c_str(), st.median, st.min, gf, chk.c_str());
  std::fflush(stdout);
}

int run_cpu(const bench::Options& o, bench::JsonOut& out) {
  const int iters = o.iters > 0 ? o.iters : (o.tiny ? 3 : 20);
  const int warmup = o.warmup >= 0 ? o.warmup : (o.tiny ? 1 : 3);
  bench::Json info;
  info.str("bench", "info").str("impl", "ember").str("device", "cpu");
  info.integer("threads", ember::cpu::num_threads()).integer("iters", iters);
  info.integer("warmup", warmup);
  const char* isa = std::getenv("EMBER_CPU_ISA");
  info.str("cpu_isa_env", isa ? isa : "");
  out.emit(info);
  std::printf("bench-ops: ember CPU kernels, %d threads, %d iters after %d warmup\n",
              ember::cpu::num_threads(), iters, warmup);
  int failures = 0;
  for (int N : o.batches) {
    std::printf("\nbatch %d\n", N);
    print_header();
    for (const OpSpec& op : bench::selected_ops(o)) {
      OpBench ob = make_bench(op, N);
      for (auto& [pass, fn] : ob.passes) {
        bench::Stats st = bench::time_host(fn, warmup, iters);
        bench::Json j = bench::op_json("ember", "cpu", N, op, pass, iters, st);
        CheckResult cr;
        bool checked = o.check && ob.checks.count(pass);
        if (checked) {
          cr = ob.checks[pass]();
          bench::add_check(j, cr);
          if (!cr.ok) ++failures;
        }
        out.emit(j);
        print_row(op, pass, "ember", st, N, checked ? &cr : nullptr);
      }
      bench::Stats st = bench::time_host(ob.fwd_bwd, warmup, iters);
      out.emit(bench::op_json("ember-autograd", "cpu", N, op, "fwd+bwd", iters, st));
      print_row(op, "fwd+bwd", "ember-autograd", st, N, nullptr);
    }
  }
  if (failures) std::printf("\nbench-ops: %d correctness check(s) FAILED\n", failures);
  else if (o.check) std::printf("\nbench-ops: all correctness checks passed\n");
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::Options o;
    if (!bench::parse_options(argc, argv, o, "bench-ops", "")) return 0;
    if (o.list) {
      for (const OpSpec& op : bench::selected_ops(o))
        std::printf("%-26s x%d per train step\n", op.name.c_str(), op.count);
      return 0;
    }
    if (o.batches.empty()) o.batches = {o.tiny ? 4 : 128};
    bench::JsonOut out(o.json);
    if (o.device == "cuda") {
#ifdef EMBER_BENCH_CUDA
      return run_cuda_ops(o, out);
#else
      std::fprintf(stderr, "bench-ops: this build has no CUDA; use bench-ops-cuda\n");
      return 2;
#endif
    }
    return run_cpu(o, out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-ops: %s\n", e.what());
    return 2;
  }
}
