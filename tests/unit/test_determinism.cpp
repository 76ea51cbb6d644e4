// @file tests/unit/test_determinism.cpp
// @brief CPU results are bitwise the same for 1, 2, 3 and 7 threads: every op with a weight
//        gradient (forward output, input, weight and bias gradients), the full reductions, and
//        one forward/backward of the seed U-Net; on every instruction-set path the CPU has.
//
// The thread count is changed at run time with ember::set_num_threads. The shapes are chosen so
// that each kernel really splits its work (several reduction pieces, several parallel chunks);
// 1 thread is the reference, and the values are compared as bits (memcmp), not to a tolerance.
// The ops and shapes are the op table's determinism entries (tests/support/op_cases.hpp).
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <ember/ember.hpp>
#include <ember/models/unet.hpp>

#include "../support/catch.hpp"
#include "../support/op_cases.hpp"

namespace determinism_test {

using ember::Shape;
using ember::Tensor;

using Results = std::vector<std::pair<std::string, std::vector<float>>>;

/// Restores the thread count and the instruction-set path when the test ends.
struct ThreadsAndIsaRestore {
  int threads = ember::get_num_threads();
  ~ThreadsAndIsaRestore() {
    ember::set_num_threads(threads);
    ember::cpu::reset_isa_for_testing();
  }
};

Tensor seeded_input(const Shape& s, uint64_t seed, bool requires_grad = true) {
  ember::Generator gen(seed);
  Tensor t = ember::randn(s, gen);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

/// Runs y = f(), backward of sum(y * r) with a fixed random r, and returns y and the gradients
/// of `leaves` (named), all fresh each call.
Results forward_backward(const std::function<Tensor(std::vector<Tensor>&)>& f,
                         const std::vector<std::pair<std::string, Shape>>& leaves) {
  std::vector<Tensor> ts;
  uint64_t seed = 11;
  for (const auto& [name, shape] : leaves) ts.push_back(seeded_input(shape, seed++));
  Tensor y = f(ts);
  Tensor r = seeded_input(y.shape(), 999, false);
  ember::sum(y * r).backward();
  Results out{{"output", y.to_vector()}};
  for (size_t i = 0; i < leaves.size(); ++i)
    out.push_back({"grad of " + leaves[i].first, ts[i].grad().to_vector()});
  return out;
}

/// The run with 1 thread is the reference; 2, 3 and 7 threads must match it bit for bit.
void expect_same_bits_for_thread_counts(const std::string& what,
                                        const std::function<Results()>& run) {
  ember::set_num_threads(1);
  const Results ref = run();
  for (int threads : {2, 3, 7}) {
    ember::set_num_threads(threads);
    REQUIRE(ember::get_num_threads() == threads);
    const Results got = run();
    REQUIRE(got.size() == ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      INFO(what << ", isa " << ember::cpu::isa_name(ember::cpu::active_isa()) << ": "
                << ref[i].first << " with " << threads << " threads vs 1 thread");
      REQUIRE(got[i].second.size() == ref[i].second.size());
      size_t first_diff = ref[i].second.size();
      for (size_t k = 0; k < ref[i].second.size(); ++k)
        if (std::memcmp(&got[i].second[k], &ref[i].second[k], sizeof(float)) != 0) {
          first_diff = k;
          break;
        }
      INFO("first differing element " << first_diff);
      CHECK(first_diff == ref[i].second.size());
    }
  }
}

/// Every path the CPU supports (generic, avx2, avx512), each checked separately.
std::vector<ember::cpu::Isa> isas() {
  std::vector<ember::cpu::Isa> out;
  for (auto isa : {ember::cpu::Isa::generic, ember::cpu::Isa::avx2, ember::cpu::Isa::avx512}) {
    ember::cpu::set_isa_for_testing(isa);
    if (ember::cpu::active_isa() == isa) out.push_back(isa);
  }
  ember::cpu::reset_isa_for_testing();
  return out;
}

void check_layer(const std::string& what, const std::function<Tensor(std::vector<Tensor>&)>& f,
                 const std::vector<std::pair<std::string, Shape>>& leaves) {
  ThreadsAndIsaRestore restore;
  for (auto isa : isas()) {
    ember::cpu::set_isa_for_testing(isa);
    expect_same_bits_for_thread_counts(what, [&] { return forward_backward(f, leaves); });
  }
}

/// Every determinism entry of the op table's group (tests/support/op_cases.hpp).
void check_group(const std::string& group) {
  const auto cases = ember_test::op_cases(ember_test::kDeterminism, group);
  REQUIRE(!cases.empty());
  for (const ember_test::OpCase* c : cases) {
    std::vector<std::pair<std::string, Shape>> leaves;
    for (const ember_test::Input& in : c->inputs) leaves.push_back({in.name, in.shape});
    const ember_test::OpFn& fn = c->fn;
    check_layer(c->label, [&fn](std::vector<Tensor>& t) { return fn(t); }, leaves);
  }
}

}  // namespace determinism_test

using namespace determinism_test;

TEST_CASE("determinism: conv2d gradients are bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][conv2d]") {
  check_group("conv2d");
}

TEST_CASE("determinism: conv_transpose2d and linear gradients are bitwise equal for 1, 2, 3, 7 "
          "threads",
          "[determinism][conv_transpose2d][linear]") {
  check_group("conv_transpose2d linear");
}

TEST_CASE("determinism: batch_norm2d, group_norm and reductions are bitwise equal for 1, 2, 3, 7 "
          "threads",
          "[determinism][batch_norm][group_norm][reduce]") {
  check_group("norm reduce");
}

TEST_CASE("determinism: pointwise ops are bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][pointwise]") {
  check_group("pointwise");
}

TEST_CASE("determinism: broadcasting add and mul are bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][broadcast]") {
  check_group("broadcast");
}

TEST_CASE("determinism: sums over dims are bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][reduce_dims]") {
  check_group("reduce_dims");
}

// softmax family
TEST_CASE("determinism: softmax and log_softmax are bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][softmax]") {
  check_group("softmax");
}

TEST_CASE("determinism: cross_entropy is bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][cross_entropy]") {
  check_group("cross_entropy");
}

// layout and indexing (#12 item 5)
TEST_CASE("determinism: layout ops are bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][layout]") {
  check_group("layout");
}

// layers and training (#12 item 6)
TEST_CASE("determinism: dropout is bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][dropout]") {
  check_group("dropout");
}

TEST_CASE("determinism: embedding is bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][embedding]") {
  check_group("embedding");
}

TEST_CASE("determinism: every determinism entry of the op table has a test case",
          "[determinism]") {
  for (const ember_test::OpCase* c : ember_test::op_cases(ember_test::kDeterminism)) {
    INFO(c->label << " is in group \"" << c->group << "\"");
    CHECK((c->group == "conv2d" || c->group == "conv_transpose2d linear" ||
           c->group == "norm reduce" || c->group == "pointwise" || c->group == "broadcast" ||
           c->group == "reduce_dims" ||
           // softmax family
           c->group == "softmax" || c->group == "cross_entropy" ||
           c->group == "layout" ||
           c->group == "dropout" || c->group == "embedding"));  // last two: layers and training
  }
}

TEST_CASE("determinism: one U-Net step's gradients are bitwise equal for 1, 2, 3 and 7 threads",
          "[determinism][unet]") {
  ThreadsAndIsaRestore restore;
  auto step = [] {
    ember::manual_seed(3);
    ember::models::UNet net;
    net.train();
    Tensor x = seeded_input({32, 1, 16, 16}, 5, false);
    Tensor target = seeded_input({32, 1, 16, 16}, 6, false);
    Tensor out = net.forward(x);
    Tensor loss = ember::mse_loss(out, target);
    loss.backward();
    Results r{{"output", out.to_vector()}, {"loss", loss.to_vector()}};
    for (auto& [name, p] : net.named_parameters()) r.push_back({"grad of " + name, p.grad().to_vector()});
    for (auto& [name, b] : net.named_buffers()) r.push_back({"buffer " + name, b.to_vector()});
    return r;
  };
  expect_same_bits_for_thread_counts("U-Net step, batch 32", step);
}

TEST_CASE("set_num_threads: rejects counts below 1 and changes the pool at run time",
          "[determinism][threads]") {
  ThreadsAndIsaRestore restore;
  CHECK_THROWS_AS(ember::set_num_threads(0), std::invalid_argument);
  CHECK_THROWS_AS(ember::set_num_threads(-3), std::invalid_argument);
  ember::set_num_threads(3);
  CHECK(ember::get_num_threads() == 3);
  // A parallel region really uses the new pool: 3 chunks run, on 3 distinct threads.
  std::vector<std::thread::id> ids(3);
  ember::cpu::parallel_for(3, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) ids[i] = std::this_thread::get_id();
  });
  CHECK(ids[0] == std::this_thread::get_id());
  CHECK(ids[1] != ids[0]);
  CHECK(ids[2] != ids[0]);
  CHECK(ids[2] != ids[1]);
  ember::set_num_threads(1);
  CHECK(ember::get_num_threads() == 1);
}
