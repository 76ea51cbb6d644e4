// @file benchmarks/bench_common.hpp
// @brief What bench-ops and bench-train share: options (CLI11), statistics, JSON lines
//        (nlohmann-json), the list of ops the seed U-Net runs (with their exact shapes), and
//        naive double-precision references (tests/support/naive_reference.hpp, shared with the
//        tests).
//
// JSON field names (one object per line, also used by torch_reference.py and compare_table.py):
//   op:    {"bench":"op","impl":"ember"|"ember-autograd"|"cudnn"|"cublas"|"cudart"|"torch",
//           "device","batch","name","kind","pass":"fwd"|"bwd_input"|"bwd_weight"|"bwd"|"fwd+bwd",
//           "count" (times the train step runs this op and pass),"iters","ms","min_ms","us",
//           "min_us","gflops" (null where no FLOP count applies), and for checked results
//           "max_abs_err","tol","check":"PASS"|"FAIL"}
//   train: {"bench":"train","impl":"ember"|"torch-eager"|"torch-graph","device","batch","iters",
//           "ms","min_ms","img_per_s","epoch60k_s","peak_host_mib","peak_device_mib","loss"}
//   info:  {"bench":"info","impl",...} describing the machine and settings.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <ember/kernels/params.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "../tests/support/naive_reference.hpp"

namespace bench {

// ---------------------------------------------------------------------------------------------
// options

struct Options {
  std::string device = "cpu";
  std::vector<int> batches;  // empty: the program's default
  int iters = -1;            // -1: default for the device
  int warmup = -1;
  int reps = -1;             // CUDA op timing: calls per timed sample (launch overhead amortised)
  std::string json;
  std::string only;          // run only ops whose name contains this
  bool tiny = false;
  bool check = true;
  bool tf32 = false;         // CUDA: let cuDNN/cuBLAS use TF32 tensor cores (ember is strict FP32)
  bool list = false;
};

inline std::vector<int> parse_int_list(const std::string& s, const char* what) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (*end != '\0' || v <= 0 || v > (1 << 24))
      throw std::invalid_argument(std::string(what) + ": expected positive integers, got '" + s +
                                  "'");
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) throw std::invalid_argument(std::string(what) + ": empty list");
  return out;
}

/// Parses the shared command line (CLI11); returns false (after printing the help) for --help.
/// Bad usage throws std::invalid_argument with CLI11's message.
inline bool parse_options(int argc, char** argv, Options& o, const char* program,
                          const char* extra_usage) {
  CLI::App app{"", program};
  app.footer(extra_usage);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // Each value is checked by the same rules as before CLI11 (parse_int_list), then stored.
  auto positive_list = [](const char* what, std::vector<int>* dst) {
    return [what, dst](const std::string& v) { *dst = parse_int_list(v, what); };
  };
  std::vector<int> iters, warmup, reps;
  app.add_option("--device", o.device, "cpu or cuda")
      ->type_name("cpu|cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option_function<std::string>("--batch", positive_list("--batch", &o.batches),
                                        "batch sizes (default: the program's)")
      ->type_name("N[,N...]");
  app.add_option_function<std::string>("--iters", positive_list("--iters", &iters),
                                        "timed samples (default: per device)")
      ->type_name("N");
  app.add_option_function<std::string>(
         "--warmup",
         [&warmup](const std::string& v) {
           warmup = v == "0" ? std::vector<int>{0} : parse_int_list(v, "--warmup");
         },
         "untimed calls first (default: per device)")
      ->type_name("N");
  app.add_option("--json", o.json, "also write the JSON lines to FILE")->type_name("FILE");
  app.add_flag("--tiny", o.tiny, "a few iterations at a small size (CI)");
  app.add_flag_function("--no-check", [&o](int64_t) { o.check = false; },
                        "skip the correctness checks");
  app.add_option("--only", o.only, "only ops whose name contains SUBSTRING")->type_name("SUBSTRING");
  app.add_option_function<std::string>("--reps", positive_list("--reps", &reps),
                                        "CUDA: calls per timed sample")
      ->type_name("N");
  app.add_flag("--tf32", o.tf32, "CUDA: let cuDNN/cuBLAS use TF32");
  app.add_flag("--list", o.list, "list the ops and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return false;
  } catch (const CLI::ParseError& e) {
    std::cerr << app.help();
    throw std::invalid_argument(e.what());
  }
  if (!iters.empty()) o.iters = iters[0];
  if (!warmup.empty()) o.warmup = warmup[0];
  if (!reps.empty()) o.reps = reps[0];
  return true;
}

// ---------------------------------------------------------------------------------------------
// statistics and timing

struct Stats {
  double median = 0, min = 0, mean = 0;
  int n = 0;
};

inline Stats stats_of(std::vector<double> v) {
  Stats s;
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  s.median = v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
  s.min = v.front();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

/// Times fn() on the host clock: warmup calls, then `iters` samples; returns milliseconds.
template <class F>
Stats time_host(F&& fn, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(iters));
  for (int i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return stats_of(ms);
}

// ---------------------------------------------------------------------------------------------
// JSON lines

/// One JSON line (nlohmann-json, keys in insertion order). num() rounds to `digits` significant
/// digits; a number that is not finite is written as null.
class Json {
 public:
  Json& str(const std::string& k, const std::string& v) {
    j_[k] = v;
    return *this;
  }
  Json& num(const std::string& k, double v, int digits = 6) {
    if (std::isfinite(v)) {
      std::ostringstream t;
      t << std::setprecision(digits) << v;
      j_[k] = std::stod(t.str());
    } else {
      j_[k] = nullptr;
    }
    return *this;
  }
  Json& integer(const std::string& k, int64_t v) {
    j_[k] = v;
    return *this;
  }
  Json& boolean(const std::string& k, bool v) {
    j_[k] = v;
    return *this;
  }
  Json& null(const std::string& k) {
    j_[k] = nullptr;
    return *this;
  }
  std::string line() const {
    return j_.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }

 private:
  nlohmann::ordered_json j_ = nlohmann::ordered_json::object();
};

/// Writes each JSON line to stdout (prefixed "JSON ") and to --json FILE when given.
class JsonOut {
 public:
  explicit JsonOut(const std::string& path) {
    if (!path.empty()) {
      file_.open(path, std::ios::out | std::ios::trunc);
      if (!file_) throw std::runtime_error("cannot write " + path);
    }
  }
  void emit(const Json& j) {
    std::string l = j.line();
    std::cout << "JSON " << l << "\n" << std::flush;
    if (file_.is_open()) file_ << l << "\n" << std::flush;
  }

 private:
  std::ofstream file_;
};

// ---------------------------------------------------------------------------------------------
// host memory

/// Resets the kernel's peak-RSS counter of this process (Linux >= 4.0; ignored elsewhere).
inline void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}

/// Peak resident set size (VmHWM) in MiB, or NaN when unknown.
inline double peak_rss_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.compare(0, 6, "VmHWM:") == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return NAN;
}

// ---------------------------------------------------------------------------------------------
// the seed U-Net's ops at batch N (input 1x16x16; see include/ember/models/unet.hpp)

enum class Kind { conv, convT, bn, relu, maxpool, linear, concat };

inline const char* kind_name(Kind k) {
  switch (k) {
    case Kind::conv: return "conv";
    case Kind::convT: return "convT";
    case Kind::bn: return "batchnorm";
    case Kind::relu: return "relu";
    case Kind::maxpool: return "maxpool";
    case Kind::linear: return "linear";
    case Kind::concat: return "concat";
  }
  return "?";
}

/// One distinct op shape. Spatial ops: input (C, H, W), output channels K. linear: C = in
/// features, K = out features. concat: C and K are the two inputs' channel counts. relu with
/// H = W = 1 is a flat feature vector of C values. `count` = how often one training step runs it.
struct OpSpec {
  Kind kind;
  int C, K, H, W;
  int count;
  std::string name;
};

inline std::vector<OpSpec> unet_ops() {
  auto hw = [](int h) { return " @" + std::to_string(h) + "x" + std::to_string(h); };
  auto conv = [&](int c, int k, int h, int n) {
    return OpSpec{Kind::conv, c, k, h, h, n,
                  "conv3x3 " + std::to_string(c) + "->" + std::to_string(k) + hw(h)};
  };
  auto convT = [&](int c, int k, int h) {
    return OpSpec{Kind::convT, c, k, h, h, 1,
                  "convT3x3 s2 " + std::to_string(c) + "->" + std::to_string(k) + hw(h)};
  };
  auto bn = [&](int c, int h, int n) {
    return OpSpec{Kind::bn, c, c, h, h, n, "batchnorm " + std::to_string(c) + "ch" + hw(h)};
  };
  auto relu = [&](int c, int h, int n) {
    return OpSpec{Kind::relu, c, c, h, h, n,
                  h == 1 ? "relu " + std::to_string(c) + " features"
                         : "relu " + std::to_string(c) + "ch" + hw(h)};
  };
  auto pool = [&](int c, int h) {
    return OpSpec{Kind::maxpool, c, c, h, h, 1, "maxpool2 " + std::to_string(c) + "ch" + hw(h)};
  };
  auto lin = [&](int in, int out) {
    return OpSpec{Kind::linear, in, out, 1, 1, 1,
                  "linear " + std::to_string(in) + "->" + std::to_string(out)};
  };
  auto cat = [&](int a, int b, int h) {
    return OpSpec{Kind::concat, a, b, h, h, 1,
                  "concat " + std::to_string(a) + "+" + std::to_string(b) + "ch" + hw(h)};
  };
  return {
      conv(1, 16, 16, 1),    // down0
      conv(16, 32, 16, 1),   // down1
      conv(32, 32, 16, 1),
      conv(32, 64, 8, 1),    // down2
      conv(64, 64, 8, 1),
      conv(64, 64, 4, 1),    // up0
      conv(32, 32, 8, 1),    // up1
      conv(16, 16, 16, 2),   // up2, out
      conv(16, 1, 16, 1),    // out (last)
      convT(128, 32, 4),     // up1
      convT(64, 16, 8),      // up2
      bn(16, 16, 4),         // down0, up2 x2, out
      bn(32, 16, 2),         // down1 x2
      bn(64, 8, 2),          // down2 x2
      bn(64, 4, 1),          // up0
      bn(32, 8, 2),          // up1 x2
      relu(16, 16, 4),
      relu(32, 16, 2),
      relu(64, 8, 2),
      relu(64, 4, 3),        // to_vec (1024 features), dense_emb's last ReLU, up0
      relu(32, 1, 2),        // dense_emb
      relu(32, 8, 2),
      pool(32, 16),          // down1
      pool(64, 8),           // down2
      lin(1024, 32),
      lin(32, 32),
      lin(32, 1024),
      cat(64, 64, 4),        // up1: cat(up0, down2)
      cat(32, 32, 8),        // up2: cat(up1, down1)
  };
}

/// The ops selected by --only (all when empty).
inline std::vector<OpSpec> selected_ops(const Options& o) {
  std::vector<OpSpec> out;
  for (auto& op : unet_ops())
    if (o.only.empty() || op.name.find(o.only) != std::string::npos) out.push_back(op);
  return out;
}

/// How often the train step runs a pass of `op` (the first conv's input needs no gradient).
inline int pass_count(const OpSpec& op, const std::string& pass) {
  if (op.kind == Kind::conv && op.C == 1 && pass == "bwd_input") return 0;
  return op.count;
}

inline ember::kernels::Conv2dShape conv_shape(const OpSpec& op, int N) {
  ember::kernels::Conv2dShape s{};
  s.N = N, s.C = op.C, s.H = op.H, s.W = op.W, s.K = op.K, s.R = 3, s.S = 3, s.stride = 1,
  s.pad = 1;
  s.OH = op.H, s.OW = op.W;
  return s;
}

inline ember::kernels::ConvTranspose2dShape convT_shape(const OpSpec& op, int N) {
  ember::kernels::ConvTranspose2dShape s{};
  s.N = N, s.C = op.C, s.H = op.H, s.W = op.W, s.K = op.K, s.R = 3, s.S = 3, s.stride = 2,
  s.pad = 1, s.out_pad = 1;
  s.OH = (op.H - 1) * 2 - 2 + 3 + 1, s.OW = (op.W - 1) * 2 - 2 + 3 + 1;
  return s;
}

/// The convolution whose input-gradient is the transposed convolution t (same weight buffer).
inline ember::kernels::Conv2dShape conv_of_transpose(const ember::kernels::ConvTranspose2dShape& t) {
  ember::kernels::Conv2dShape c{};
  c.N = t.N, c.C = t.K, c.H = t.OH, c.W = t.OW, c.K = t.C, c.R = t.R, c.S = t.S;
  c.stride = t.stride, c.pad = t.pad, c.OH = t.H, c.OW = t.W;
  return c;
}

inline ember::kernels::MaxPool2dShape pool_shape(const OpSpec& op, int N) {
  ember::kernels::MaxPool2dShape s{};
  s.N = N, s.C = op.C, s.H = op.H, s.W = op.W, s.kernel = 2, s.stride = 2, s.pad = 0;
  s.OH = op.H / 2, s.OW = op.W / 2;
  return s;
}

/// FLOPs of one pass (forward, backward-input and backward-weight each cost the same), or 0.
inline double pass_flops(const OpSpec& op, int N) {
  if (op.kind == Kind::conv) {
    auto s = conv_shape(op, N);
    return 2.0 * s.N * s.K * s.C * s.R * s.S * double(s.OH) * s.OW;
  }
  if (op.kind == Kind::convT) {
    auto s = convT_shape(op, N);
    return 2.0 * s.N * s.C * s.K * s.R * s.S * double(s.H) * s.W;
  }
  if (op.kind == Kind::linear) return 2.0 * N * double(op.C) * op.K;
  return 0.0;
}

/// The passes timed for an op (besides "fwd+bwd" through autograd).
inline std::vector<std::string> kernel_passes(const OpSpec& op) {
  if (op.kind == Kind::conv || op.kind == Kind::convT || op.kind == Kind::linear)
    return {"fwd", "bwd_input", "bwd_weight"};
  return {"fwd", "bwd"};
}

/// The common part of an op result line.
inline Json op_json(const std::string& impl, const std::string& device, int N, const OpSpec& op,
                    const std::string& pass, int iters, const Stats& st_ms) {
  Json j;
  j.str("bench", "op").str("impl", impl).str("device", device).integer("batch", N);
  j.str("name", op.name).str("kind", kind_name(op.kind)).str("pass", pass);
  j.integer("count", pass == "fwd+bwd" ? op.count : pass_count(op, pass));
  j.integer("iters", iters).num("ms", st_ms.median).num("min_ms", st_ms.min);
  j.num("us", st_ms.median * 1e3).num("min_us", st_ms.min * 1e3);
  double f = pass_flops(op, N);
  if (f > 0 && pass != "fwd+bwd" && pass != "bwd" && st_ms.median > 0)
    j.num("gflops", f / (st_ms.median * 1e-3) / 1e9, 4);
  else if (f > 0 && pass == "fwd+bwd" && st_ms.median > 0)
    j.num("gflops", 3 * f / (st_ms.median * 1e-3) / 1e9, 4);
  else
    j.null("gflops");
  return j;
}

// ---------------------------------------------------------------------------------------------
// deterministic host data

/// xorshift-based uniform [-1, 1) / approximately normal values (fixed seed per buffer).
inline std::vector<float> host_random(size_t n, uint64_t seed, bool normal = true) {
  std::vector<float> v(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  auto next = [&]() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<double>(s >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
  };
  for (size_t i = 0; i < n; ++i) {
    if (normal) {
      double a = 0;
      for (int k = 0; k < 4; ++k) a += next();
      v[i] = static_cast<float>((a - 2.0) * std::sqrt(3.0));  // mean 0, variance 1
    } else {
      v[i] = static_cast<float>(2.0 * next() - 1.0);
    }
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// comparisons

struct CheckResult {
  double max_abs_err = 0, max_ref = 0, tol = 0;
  bool ok = true;
};

/// max |got - ref| against tol = rel * max|ref| + abs over `n` values (NaN fails).
inline CheckResult compare(const float* got, const float* ref, size_t n, double rel,
                           double abs_tol = 1e-6) {
  CheckResult r;
  for (size_t i = 0; i < n; ++i) r.max_ref = std::max(r.max_ref, std::fabs(double(ref[i])));
  for (size_t i = 0; i < n; ++i) {
    double e = std::fabs(double(got[i]) - double(ref[i]));
    if (!(e == e)) e = INFINITY;
    r.max_abs_err = std::max(r.max_abs_err, e);
  }
  r.tol = rel * r.max_ref + abs_tol;
  r.ok = r.max_abs_err <= r.tol;
  return r;
}

inline CheckResult merge(const CheckResult& a, const CheckResult& b) {
  CheckResult r;
  r.max_abs_err = std::max(a.max_abs_err, b.max_abs_err);
  r.max_ref = std::max(a.max_ref, b.max_ref);
  r.tol = std::max(a.tol, b.tol);
  r.ok = a.ok && b.ok;
  return r;
}

inline void add_check(Json& j, const CheckResult& r) {
  j.num("max_abs_err", r.max_abs_err, 3).num("tol", r.tol, 3).str("check", r.ok ? "PASS" : "FAIL");
}

// ---------------------------------------------------------------------------------------------
// naive references (double accumulation), used by the CPU benchmark's correctness checks: thin
// adapters over the tests' references (tests/support/naive_reference.hpp), one per op

namespace ref {

namespace naive = ember_test::naive;

/// Batch-norm training forward (biased variance), whole tensors.
inline void bn_fwd(int N, int C, int P, const float* x, const float* g, const float* b, float eps,
                   float* y) {
  const naive::BatchNorm r = naive::batch_norm(ember::kernels::BatchNormShape{N, C, P}, x, nullptr,
                                               g, b, nullptr, nullptr, eps, 0.0, false);
  std::copy(r.y.begin(), r.y.end(), y);
}

/// Batch-norm training backward: dx, dgamma and dbeta.
inline void bn_bwd(int N, int C, int P, const float* x, const float* dy, const float* g,
                   float eps, float* dx, float* dg, float* db) {
  const std::vector<float> beta(size_t(C), 0.0f);
  const naive::BatchNorm r = naive::batch_norm(ember::kernels::BatchNormShape{N, C, P}, x, dy, g,
                                               beta.data(), nullptr, nullptr, eps, 0.0, false);
  std::copy(r.dx.begin(), r.dx.end(), dx);
  std::copy(r.dgamma.begin(), r.dgamma.end(), dg);
  std::copy(r.dbeta.begin(), r.dbeta.end(), db);
}

/// Max pooling: y and dx (gradient to the first maximum of each window).
inline void maxpool_fwd_bwd(const ember::kernels::MaxPool2dShape& s, const float* x,
                            const float* dy, float* y, float* dx) {
  const naive::MaxPool2d r = naive::max_pool2d(s, x, dy);
  std::copy(r.y.begin(), r.y.end(), y);
  std::copy(r.dx.begin(), r.dx.end(), dx);
}

}  // namespace ref

}  // namespace bench
