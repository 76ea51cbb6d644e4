// @file tests/unit/test_fixture_loader.cpp
// @brief Tests the EMBERFIX loader and validates the committed PyTorch fixtures against naive
//        double-precision references (tests/support/naive_reference.hpp for conv2d,
//        conv_transpose2d, linear, max_pool2d and batch_norm2d; the rest written here), so a broken fixture is caught
//        before it is used to judge ember's kernels.
#include "../support/catch.hpp"
#include "../support/fixture.hpp"
#include "../support/naive_reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using ember_test::compare;
using ember_test::Fixture;
using ember_test::FixtureTensor;
namespace naive = ember_test::naive;

namespace {

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

void check_close(const std::string& what, const std::vector<double>& got, const FixtureTensor& exp, double atol,
                 double rtol) {
  REQUIRE(got.size() == exp.data.size());
  auto r = compare(what, to_float(got), exp, atol, rtol);
  INFO(r.message);
  CHECK(r.ok);
}

std::vector<char> read_fixture_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string write_temp(const std::string& name, const std::vector<char>& bytes) {
  auto p = std::filesystem::temp_directory_path() / name;
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p.string();
}

/// A conv fixture's y, gx, gw (and gb where it has a bias) against the naive passes r.
void check_conv_fixture(const std::string& name, const Fixture& f, const naive::Passes& r,
                        double gb_atol) {
  check_close(name + " y", r.y.val, f.at("y"), 1e-4, 1e-4);
  check_close(name + " gx", r.dx.val, f.at("gx"), 1e-4, 1e-4);
  check_close(name + " gw", r.dw.val, f.at("gw"), 1e-3, 1e-4);
  if (f.has("b")) check_close(name + " gb", r.db.val, f.at("gb"), gb_atol, 1e-4);
}

bool throws_mentioning(const std::string& path, const std::string& needle) {
  try {
    (void)Fixture::load_path(path);
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    return msg.find(path) != std::string::npos && msg.find(needle) != std::string::npos;
  }
  return false;
}

}  // namespace

TEST_CASE("fixture loader: relu fixture is self-consistent", "[fixture]") {
  Fixture f = Fixture::load("relu");
  const auto& x = f.at("x");
  const auto& y = f.at("y");
  const auto& gy = f.at("gy");
  const auto& gx = f.at("gx");
  REQUIRE(x.shape == std::vector<int64_t>{3, 4, 5, 6});
  REQUIRE(y.shape == x.shape);
  REQUIRE(gx.shape == x.shape);
  REQUIRE(gy.shape == x.shape);
  REQUIRE(static_cast<int64_t>(x.data.size()) == x.numel());
  size_t zeros = 0;
  for (size_t i = 0; i < x.data.size(); ++i) {
    CHECK(y.data[i] == std::max(x.data[i], 0.0f));
    CHECK(gx.data[i] == (x.data[i] > 0.0f ? gy.data[i] : 0.0f));
    zeros += x.data[i] == 0.0f;
  }
  CHECK(zeros >= 3);  // exact zeros exercise relu'(0) = 0
  CHECK(f.has("x"));
  CHECK_FALSE(f.has("nope"));
  std::vector<std::string> expected_names{"x", "gy", "y", "gx"};
  CHECK(f.names() == expected_names);
}

TEST_CASE("fixture loader: missing file, missing key, non-scalar", "[fixture]") {
  bool threw = false;
  try {
    (void)Fixture::load("no_such_fixture");
  } catch (const std::runtime_error& e) {
    threw = true;
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("no_such_fixture.bin") != std::string::npos);
    CHECK(msg.find("cannot open") != std::string::npos);
  }
  CHECK(threw);

  Fixture f = Fixture::load("sum");
  threw = false;
  try {
    (void)f.at("missing_key");
  } catch (const std::runtime_error& e) {
    threw = true;
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("sum.bin") != std::string::npos);
    CHECK(msg.find("missing_key") != std::string::npos);
  }
  CHECK(threw);
  CHECK_THROWS_AS(f.scalar("x"), std::runtime_error);
  CHECK(f.at("y").rank() == 0);
  CHECK(f.at("y").data.size() == 1);
}

TEST_CASE("fixture loader: truncated and corrupt files are rejected", "[fixture]") {
  const std::vector<char> good = read_fixture_bytes(std::string(EMBER_FIXTURE_DIR) + "/linear.bin");
  REQUIRE(good.size() > 100);
  {
    std::vector<char> cut(good.begin(), good.end() - 3);
    const std::string p = write_temp("ember_fix_truncated.bin", cut);
    CHECK(throws_mentioning(p, "truncated"));
    std::remove(p.c_str());
  }
  {
    std::vector<char> cut(good.begin(), good.begin() + 10);
    const std::string p = write_temp("ember_fix_short.bin", cut);
    CHECK(throws_mentioning(p, "truncated"));
    std::remove(p.c_str());
  }
  {
    std::vector<char> bad = good;
    bad[0] = 'X';
    const std::string p = write_temp("ember_fix_magic.bin", bad);
    CHECK(throws_mentioning(p, "magic"));
    std::remove(p.c_str());
  }
  {
    std::vector<char> extra = good;
    extra.push_back(0);
    const std::string p = write_temp("ember_fix_trailing.bin", extra);
    CHECK(throws_mentioning(p, "trailing"));
    std::remove(p.c_str());
  }
  {
    const std::string p = write_temp("ember_fix_ok.bin", good);
    Fixture f = Fixture::load_path(p);
    CHECK(f.at("w").shape == std::vector<int64_t>{3, 7});
    std::remove(p.c_str());
  }
}

TEST_CASE("compare helper", "[fixture]") {
  const float e[4] = {1.0f, -2.0f, 3.0f, 100.0f};
  const float g[4] = {1.0f, -2.0f, 3.05f, 100.0f};
  auto r = compare("vec", g, e, 4, 1e-3, 0.0);
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("vec") != std::string::npos);
  CHECK(r.message.find("worst index 2") != std::string::npos);
  CHECK(compare("vec", g, e, 4, 0.1, 0.0).ok);
  CHECK(compare("vec", g, e, 4, 0.0, 0.02).ok);
  const float n1[1] = {std::nanf("")};
  const float one[1] = {1.0f};
  CHECK(compare("nan", n1, n1, 1, 0, 0).ok);
  CHECK_FALSE(compare("nan", n1, one, 1, 1, 1).ok);
  CHECK_FALSE(compare("nan", one, n1, 1, 1, 1).ok);
}

// Naive double-precision conv2d (+ gradients) checks of every conv2d fixture.
TEST_CASE("fixtures: conv2d matches a naive double-precision reference", "[fixture][conv]") {
  for (int c = 0; c < 5; ++c) {
    const std::string name = "conv2d_" + std::to_string(c);
    INFO(name);
    Fixture f = Fixture::load(name);
    const auto& x = f.at("x");
    const auto& w = f.at("w");
    const auto& gy = f.at("gy");
    const bool bias = f.has("b");
    CHECK(bias == f.has("gb"));
    const int64_t s = static_cast<int64_t>(f.scalar("stride"));
    const int64_t p = static_cast<int64_t>(f.scalar("pad"));
    REQUIRE(x.rank() == 4);
    REQUIRE(w.rank() == 4);
    const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const int64_t K = w.shape[0], KH = w.shape[2], KW = w.shape[3];
    REQUIRE(w.shape[1] == C);
    const int64_t OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
    REQUIRE(f.at("y").shape == std::vector<int64_t>{N, K, OH, OW});
    REQUIRE(gy.shape == f.at("y").shape);
    REQUIRE(f.at("gx").shape == x.shape);
    REQUIRE(f.at("gw").shape == w.shape);

    const ember::kernels::Conv2dShape cs{int(N),  int(C), int(H), int(W),  int(K), int(KH),
                                         int(KW), int(s), int(p), int(OH), int(OW)};
    const float* b = bias ? f.at("b").data.data() : nullptr;
    const naive::Passes r =
        naive::passes(naive::conv2d(cs), x.data.data(), w.data.data(), b, gy.data.data());
    check_conv_fixture(name, f, r, 1e-3);
  }
}

TEST_CASE("fixtures: conv_transpose2d matches a naive double-precision reference", "[fixture][conv]") {
  for (int c = 0; c < 5; ++c) {
    const std::string name = "conv_transpose2d_" + std::to_string(c);
    INFO(name);
    Fixture f = Fixture::load(name);
    const auto& x = f.at("x");
    const auto& w = f.at("w");  // (Cin, Cout, KH, KW)
    const bool bias = f.has("b");
    const int64_t s = static_cast<int64_t>(f.scalar("stride"));
    const int64_t p = static_cast<int64_t>(f.scalar("pad"));
    const int64_t op = static_cast<int64_t>(f.scalar("out_pad"));
    const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const int64_t K = w.shape[1], KH = w.shape[2], KW = w.shape[3];
    REQUIRE(w.shape[0] == C);
    const int64_t OH = (H - 1) * s - 2 * p + KH + op, OW = (W - 1) * s - 2 * p + KW + op;
    REQUIRE(f.at("y").shape == std::vector<int64_t>{N, K, OH, OW});
    const auto& gy = f.at("gy");
    const ember::kernels::ConvTranspose2dShape ts{int(N), int(C),  int(H),  int(W),
                                                  int(K), int(KH), int(KW), int(s),
                                                  int(p), int(op), int(OH), int(OW)};
    const float* b = bias ? f.at("b").data.data() : nullptr;
    const naive::Passes r =
        naive::passes(naive::conv_transpose2d(ts), x.data.data(), w.data.data(), b, gy.data.data());
    check_conv_fixture(name, f, r, 1e-4);
  }
}

TEST_CASE("fixtures: max_pool2d ties follow the first-max rule", "[fixture]") {
  for (const char* name : {"max_pool2d_ties", "max_pool2d_k2s2", "max_pool2d_k3s2p1", "max_pool2d_ties_k3s2p1"}) {
    INFO(name);
    Fixture f = Fixture::load(name);
    const auto& x = f.at("x");
    const auto& gy = f.at("gy");
    const int64_t k = int64_t(f.scalar("kernel")), s = int64_t(f.scalar("stride")), p = int64_t(f.scalar("pad"));
    const int64_t H = x.shape[2], W = x.shape[3];
    const int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    REQUIRE(f.at("y").shape == std::vector<int64_t>{x.shape[0], x.shape[1], OH, OW});
    // strict: the first (row-major) maximum of each window wins
    const naive::MaxPool2d r = naive::max_pool2d(
        naive::pool_shape(int(x.shape[0]), int(x.shape[1]), int(H), int(W), int(k), int(s), int(p)),
        x.data.data(), gy.data.data());
    check_close(std::string(name) + " y", r.y, f.at("y"), 0, 0);
    check_close(std::string(name) + " gx", r.dx, f.at("gx"), 1e-6, 1e-6);
  }
}

TEST_CASE("fixtures: batch_norm2d training statistics", "[fixture]") {
  for (const char* name : {"batch_norm2d_train", "batch_norm2d_train_n1", "batch_norm2d_train_u"}) {
    INFO(name);
    Fixture f = Fixture::load(name);
    const auto& x = f.at("x");
    const int N = int(x.shape[0]), C = int(x.shape[1]), HW = int(x.shape[2] * x.shape[3]);
    // biased variance normalises, the unbiased one enters running_var
    const naive::BatchNorm r = naive::batch_norm(
        naive::BatchNormShape{N, C, HW}, x.data.data(), nullptr, f.at("w").data.data(),
        f.at("b").data.data(), f.at("running_mean").data.data(), f.at("running_var").data.data(),
        f.scalar("eps"), f.scalar("momentum"), false);
    check_close(std::string(name) + " y", r.y, f.at("y"), 1e-4, 1e-4);
    check_close(std::string(name) + " running_mean_after", r.running_mean, f.at("running_mean_after"), 1e-5, 1e-5);
    check_close(std::string(name) + " running_var_after", r.running_var, f.at("running_var_after"), 1e-5, 1e-5);
  }
}

TEST_CASE("fixtures: linear, cat, adam and U-Net are well formed", "[fixture]") {
  {
    Fixture f = Fixture::load("linear");
    const auto &x = f.at("x"), &w = f.at("w"), &b = f.at("b");
    REQUIRE(x.shape == std::vector<int64_t>{5, 7});
    REQUIRE(w.shape == std::vector<int64_t>{3, 7});
    const ember::kernels::LinearShape ls{5, 7, 3};  // M, K (in), N (out)
    const auto y = naive::forward(naive::linear(ls), x.data.data(), w.data.data(), b.data.data());
    check_close("linear y", y.val, f.at("y"), 1e-5, 1e-5);
  }
  for (int dim = 0; dim < 4; ++dim)
    for (int n = 2; n <= 3; ++n) {
      const std::string name = "cat_dim" + std::to_string(dim) + "_" + std::to_string(n);
      INFO(name);
      Fixture f = Fixture::load(name);
      CHECK(int(f.scalar("dim")) == dim);
      CHECK(int(f.scalar("n_inputs")) == n);
      int64_t total = 0;
      for (int j = 0; j < n; ++j) {
        total += f.at("x" + std::to_string(j)).shape[size_t(dim)];
        CHECK(f.at("gx" + std::to_string(j)).shape == f.at("x" + std::to_string(j)).shape);
      }
      CHECK(f.at("y").shape[size_t(dim)] == total);
    }
  {
    Fixture f = Fixture::load("adam");
    // Recompute the first Adam step in double: m = (1-b1) g, v = (1-b2) g^2, bias-corrected.
    const auto &p0 = f.at("param0"), &g = f.at("grad_1");
    const double lr = f.scalar("lr"), b1 = f.scalar("beta1"), b2 = f.scalar("beta2"), eps = f.scalar("eps");
    std::vector<double> p1(p0.data.size());
    for (size_t i = 0; i < p1.size(); ++i) {
      const double m = (1 - b1) * g.data[i] / (1 - b1);
      const double v = (1 - b2) * double(g.data[i]) * g.data[i] / (1 - b2);
      p1[i] = p0.data[i] - lr * m / (std::sqrt(v) + eps);
    }
    check_close("adam param_1", p1, f.at("param_1"), 1e-6, 1e-5);
    CHECK(f.has("param_5"));
    CHECK(f.has("grad_5"));
  }
  {
    Fixture f = Fixture::load("unet_step");
    std::ifstream names(std::string(EMBER_FIXTURE_DIR) + "/unet_param_names.txt");
    REQUIRE(names.good());
    std::string line;
    size_t count = 0, total = 0;
    while (std::getline(names, line)) {
      if (line.empty()) continue;
      ++count;
      INFO(line);
      const auto& p = f.at("param." + line);
      total += p.data.size();
      CHECK(f.at("grad." + line).shape == p.shape);
      CHECK(f.at("updated." + line).shape == p.shape);
    }
    CHECK(count == 52);
    CHECK(total == 234977);  // the seed U-Net's parameter count
    CHECK(f.at("out").shape == std::vector<int64_t>{8, 1, 16, 16});
    CHECK(f.at("loss").rank() == 0);
    // loss == mean((out - x)^2)
    const auto &out = f.at("out"), &x = f.at("x");
    double l = 0;
    for (size_t i = 0; i < out.data.size(); ++i) l += (double(out.data[i]) - x.data[i]) * (double(out.data[i]) - x.data[i]);
    l /= double(out.data.size());
    CHECK(std::fabs(l - f.scalar("loss")) < 1e-5);
    CHECK(f.has("buffer.down0.1.running_mean"));
    CHECK(f.has("buffer_after.down0.1.running_var"));
  }
}
