// @file tests/unit/test_checkpoint.cpp
// @brief io::save_checkpoint / load_checkpoint: bitwise resume of training (parameters,
//        batch-norm buffers, Adam state), wrong architecture, truncation, corruption, missing file.
#include <ember/ember.hpp>
#include <ember/io/checkpoint.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "../support/catch.hpp"
#include "../support/test_util.hpp"

namespace {

using ember::Tensor;
using namespace ember::nn;

using ember_test::TempDir;

std::shared_ptr<Sequential> small_model(int hidden = 4) {
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Conv2d>(1, hidden, 3, 1, 1), std::make_shared<BatchNorm2d>(hidden),
      std::make_shared<ReLU>(), std::make_shared<Conv2d>(hidden, 1, 3, 1, 1)});
}

// One training step on data that depends only on `step` (so two runs see the same batches).
float train_step(Module& m, ember::optim::Adam& opt, int step) {
  ember::Generator g(1000 + uint64_t(step));
  Tensor x = ember::randn({4, 1, 6, 6}, g);
  Tensor target = ember::randn({4, 1, 6, 6}, g);
  opt.zero_grad();
  Tensor loss = ember::mse_loss(m.forward(x), target);
  loss.backward();
  opt.step();
  return loss.item();
}

std::vector<std::vector<float>> snapshot(const Module& m) {
  std::vector<std::vector<float>> out;
  for (auto& kv : m.named_parameters()) out.push_back(kv.second.to_vector());
  for (auto& kv : m.named_buffers()) out.push_back(kv.second.to_vector());
  return out;
}

bool bitwise_equal(const std::vector<std::vector<float>>& a,
                   const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    if (std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0) return false;
  }
  return true;
}

std::vector<uint8_t> read_bytes(const std::string& path) { return ember::io::read_file(path); }

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!bytes.empty()) REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  std::fclose(f);
}

std::string load_error(const std::string& path, Module& m, ember::optim::Optimizer* opt) {
  try {
    ember::io::load_checkpoint(path, m, opt, nullptr);
  } catch (const ember::Error& e) {
    return e.what();
  }
  FAIL("expected load_checkpoint to throw ember::Error for " << path);
  return "";
}

using ember_test::contains;

}  // namespace

TEST_CASE("checkpoint: resuming training is bitwise identical to uninterrupted training",
          "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("a.bin");

  ember::manual_seed(7);
  auto a = small_model();
  ember::optim::Adam opt_a(a->parameters(), {1e-2f});
  for (int s = 0; s < 3; ++s) train_step(*a, opt_a, s);
  std::map<std::string, std::string> meta{{"arch", "small"}, {"step", "3"}, {"note", "a b\nc"}};
  ember::io::save_checkpoint(path, *a, &opt_a, meta);
  for (int s = 3; s < 6; ++s) train_step(*a, opt_a, s);
  auto uninterrupted = snapshot(*a);

  ember::manual_seed(99);  // a different initialisation, overwritten by the load
  auto b = small_model();
  ember::optim::Adam opt_b(b->parameters(), {1e-2f});
  std::map<std::string, std::string> got_meta;
  ember::io::load_checkpoint(path, *b, &opt_b, &got_meta);
  CHECK(got_meta == meta);
  for (size_t i = 0; i < b->parameters().size(); ++i) CHECK(opt_b.step_count(i) == 3);
  for (int s = 3; s < 6; ++s) train_step(*b, opt_b, s);
  CHECK(bitwise_equal(snapshot(*b), uninterrupted));

  SECTION("a module alone loads from a checkpoint that also holds optimizer state") {
    auto c = small_model();
    ember::io::load_checkpoint(path, *c, nullptr, nullptr);
    auto first = snapshot(*c);
    ember::manual_seed(7);
    auto ref = small_model();
    ember::optim::Adam opt_r(ref->parameters(), {1e-2f});
    for (int s = 0; s < 3; ++s) train_step(*ref, opt_r, s);
    CHECK(bitwise_equal(first, snapshot(*ref)));
  }
  SECTION("a checkpoint without optimizer state cannot restore an optimizer") {
    const std::string p2 = dir.file("b.bin");
    ember::io::save_checkpoint(p2, *a, nullptr, {});
    auto c = small_model();
    ember::optim::Adam opt_c(c->parameters());
    std::string msg = load_error(p2, *c, &opt_c);
    INFO(msg);
    CHECK(contains(msg, "no optimizer state"));
    CHECK(contains(msg, p2));
  }
}

TEST_CASE("checkpoint: a different architecture is refused and the module is untouched",
          "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("a.bin");
  auto a = small_model(4);
  ember::io::save_checkpoint(path, *a, nullptr, {{"arch", "small4"}});

  auto wide = small_model(8);
  auto before = snapshot(*wide);
  std::string msg = load_error(path, *wide, nullptr);
  INFO(msg);
  CHECK(contains(msg, path));
  CHECK(contains(msg, "'0.weight'"));  // the first tensor that differs
  CHECK(contains(msg, "[4, 1, 3, 3]"));
  CHECK(contains(msg, "[8, 1, 3, 3]"));
  CHECK(contains(msg, "small4"));
  CHECK(bitwise_equal(snapshot(*wide), before));

  auto linear = std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Linear>(3, 2)});
  msg = load_error(path, *linear, nullptr);
  INFO(msg);
  CHECK(contains(msg, "'0.weight'"));

  auto deeper = std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Conv2d>(1, 4, 3, 1, 1), std::make_shared<BatchNorm2d>(4),
      std::make_shared<ReLU>(), std::make_shared<Conv2d>(4, 1, 3, 1, 1),
      std::make_shared<Conv2d>(1, 1, 1)});
  msg = load_error(path, *deeper, nullptr);
  INFO(msg);
  CHECK(contains(msg, "'4.weight'"));
  CHECK(contains(msg, "missing"));
}

TEST_CASE("checkpoint: damaged and missing files give clear errors", "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("a.bin");
  auto a = small_model();
  ember::optim::Adam opt(a->parameters());
  train_step(*a, opt, 0);
  ember::io::save_checkpoint(path, *a, &opt, {{"arch", "small"}});
  const std::vector<uint8_t> good = read_bytes(path);
  REQUIRE(good.size() > 100);
  REQUIRE(std::memcmp(good.data(), "EMBERCKP", 8) == 0);
  const std::string bad = dir.file("b.bin");
  auto b = small_model();
  ember::optim::Adam opt_b(b->parameters());

  SECTION("truncated") {
    for (size_t keep : {size_t(0), size_t(5), size_t(15), good.size() / 2, good.size() - 1}) {
      write_bytes(bad, std::vector<uint8_t>(good.begin(), good.begin() + long(keep)));
      std::string msg = load_error(bad, *b, &opt_b);
      INFO("kept " << keep << " bytes: " << msg);
      CHECK(contains(msg, bad));
      CHECK(contains(msg, "truncated"));
    }
  }
  SECTION("a flipped byte gives a checksum mismatch") {
    for (size_t at : {size_t(40), good.size() / 2, good.size() - 10, good.size() - 2}) {
      std::vector<uint8_t> v = good;
      v[at] ^= 0x10;
      write_bytes(bad, v);
      std::string msg = load_error(bad, *b, &opt_b);
      INFO("flipped byte " << at << ": " << msg);
      CHECK(contains(msg, bad));
      CHECK(contains(msg, "checksum mismatch"));
    }
  }
  SECTION("not a checkpoint") {
    write_bytes(bad, std::vector<uint8_t>(200, 'x'));
    std::string msg = load_error(bad, *b, &opt_b);
    INFO(msg);
    CHECK(contains(msg, "not an ember checkpoint"));
  }
  SECTION("missing file") {
    const std::string missing = dir.file("does-not-exist.bin");
    std::string msg = load_error(missing, *b, &opt_b);
    INFO(msg);
    CHECK(contains(msg, missing));
    CHECK(contains(msg, "No such file"));
  }
  SECTION("saving into a missing directory fails with ember::Error") {
    const std::string nowhere = dir.file("no/such/dir/c.bin");
    CHECK_THROWS_AS(ember::io::save_checkpoint(nowhere, *a, &opt, {}), ember::Error);
  }
}
