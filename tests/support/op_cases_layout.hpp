// @file tests/support/op_cases_layout.hpp
// @brief Op-table entries of the layout and indexing ops (#12 item 5): transpose, permute,
//        narrow, select, split, chunk, stack, pixel_shuffle, pixel_unshuffle. Group "layout"
//        (TEST_CASEs in test_ops_gradcheck.cpp, test_determinism.cpp, tests/cuda/test_cuda_ops.cu).
//
// Every op here is pure data movement: outputs and gradients are exact, so the gradcheck
// tolerance covers only the float32 rounding of the finite differences, and CPU vs CUDA is
// bitwise (tolerance 0). Ops with several outputs (split, chunk) are checked through the
// concatenation of their flattened pieces in a shuffled order, so each piece gets its own
// random output weights. Included by op_cases.hpp (after its helpers).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace ember_test::op_cases_detail {

/// The pieces flattened and joined in the order `order` (a permutation of the piece indices).
inline ember::Tensor join_pieces(const std::vector<ember::Tensor>& pieces,
                                 const std::vector<int>& order) {
  std::vector<ember::Tensor> flat;
  for (int i : order) flat.push_back(ember::flatten(pieces[size_t(i)]));
  return ember::cat(flat, 0);
}

inline void layout_cases(std::vector<OpCase>& c) {
  using ember::Shape;
  uint32_t seed = 1200;
  auto add = [&](const char* op, const std::string& label, std::vector<Input> ins, OpFn f,
                 unsigned suites = kGradcheck | kCuda | kDeterminism) {
    OpCase e{"layout", op, label, std::move(ins), std::move(f), suites, {1e-3, 1e-3}};
    e.seed = seed++;
    e.rseed = seed;
    c.push_back(e);
  };
  // permute / transpose
  add("permute", "permute([2, 3, 4], {2, 0, 1})", {in("x", {2, 3, 4})},
      [](const Ins& t) { return ember::permute(t[0], {2, 0, 1}); });
  add("permute", "permute([2, 3, 4], {-1, 0, 1}) (negative dims)", {in("x", {2, 3, 4})},
      [](const Ins& t) { return ember::permute(t[0], {-1, 0, 1}); });
  add("permute", "permute([2, 1, 3, 2, 2], {4, 2, 0, 3, 1})", {in("x", {2, 1, 3, 2, 2})},
      [](const Ins& t) { return t[0].permute({4, 2, 0, 3, 1}); });
  add("permute", "permute([1, 2, 1, 2, 1, 2, 1, 2], reversed) (rank 8)",
      {in("x", {1, 2, 1, 2, 1, 2, 1, 2})},
      [](const Ins& t) { return ember::permute(t[0], {7, 6, 5, 4, 3, 2, 1, 0}); });
  add("transpose", "transpose([3, 4], 0, 1)", {in("x", {3, 4})},
      [](const Ins& t) { return ember::transpose(t[0], 0, 1); });
  add("transpose", "transpose([2, 3, 4], -1, -3)", {in("x", {2, 3, 4})},
      [](const Ins& t) { return t[0].transpose(-1, -3); });
  // narrow / select
  add("narrow", "narrow([4, 5], 1, 1, 3)", {in("x", {4, 5})},
      [](const Ins& t) { return ember::narrow(t[0], 1, 1, 3); });
  add("narrow", "narrow([4, 5], 0, -3, 2) (negative start)", {in("x", {4, 5})},
      [](const Ins& t) { return ember::narrow(t[0], 0, -3, 2); });
  add("narrow", "narrow([2, 3, 4], -1, 0, 4) (whole dim)", {in("x", {2, 3, 4})},
      [](const Ins& t) { return ember::narrow(t[0], -1, 0, 4); });
  add("select", "select([3, 4, 2], 1, -1)", {in("x", {3, 4, 2})},
      [](const Ins& t) { return ember::select(t[0], 1, -1); });
  add("select", "select([3, 4, 2], 0, 2)", {in("x", {3, 4, 2})},
      [](const Ins& t) { return ember::select(t[0], 0, 2); });
  // split / chunk (pieces joined in a shuffled order)
  add("split", "split([7, 3], 3, 0) -> 3, 3, 1", {in("x", {7, 3})},
      [](const Ins& t) { return join_pieces(ember::split(t[0], 3, 0), {2, 0, 1}); });
  add("split", "split([2, 6], {1, 3, 2}, -1)", {in("x", {2, 6})}, [](const Ins& t) {
    return join_pieces(ember::split(t[0], std::vector<int64_t>{1, 3, 2}, -1), {1, 2, 0});
  });
  add("chunk", "chunk([5, 2], 4, 0) -> 2, 2, 1", {in("x", {5, 2})},
      [](const Ins& t) { return join_pieces(ember::chunk(t[0], 4, 0), {2, 1, 0}); });
  add("chunk", "chunk([2, 3, 6], 3, 2)", {in("x", {2, 3, 6})},
      [](const Ins& t) { return join_pieces(ember::chunk(t[0], 3, 2), {1, 0, 2}); });
  // stack
  for (int dim : {0, 1, -1}) {
    add("stack", "stack(3 x [2, 3], dim " + std::to_string(dim) + ")",
        {in("a", {2, 3}), in("b", {2, 3}), in("c", {2, 3})},
        [dim](const Ins& t) { return ember::stack(t, dim); });
  }
  add("stack", "stack(2 x [2, 3], dim 1) (second input constant)",
      {in("a", {2, 3}), in("b", {2, 3}).constant()},
      [](const Ins& t) { return ember::stack(t, 1); });
  // pixel_shuffle / pixel_unshuffle
  add("pixel_shuffle", "pixel_shuffle([1, 8, 2, 3], 2)", {in("x", {1, 8, 2, 3})},
      [](const Ins& t) { return ember::pixel_shuffle(t[0], 2); });
  add("pixel_shuffle", "pixel_shuffle([2, 9, 2, 1], 3)", {in("x", {2, 9, 2, 1})},
      [](const Ins& t) { return ember::pixel_shuffle(t[0], 3); });
  add("pixel_shuffle", "pixel_shuffle([4, 2, 3], 2) (rank 3)", {in("x", {4, 2, 3})},
      [](const Ins& t) { return ember::pixel_shuffle(t[0], 2); });
  add("pixel_shuffle", "pixel_shuffle([2, 1, 4, 2, 1], 2) (rank 5)", {in("x", {2, 1, 4, 2, 1})},
      [](const Ins& t) { return ember::pixel_shuffle(t[0], 2); });
  add("pixel_unshuffle", "pixel_unshuffle([1, 2, 4, 6], 2)", {in("x", {1, 2, 4, 6})},
      [](const Ins& t) { return ember::pixel_unshuffle(t[0], 2); });
  add("pixel_unshuffle", "pixel_unshuffle([2, 1, 6, 3], 3)", {in("x", {2, 1, 6, 3})},
      [](const Ins& t) { return ember::pixel_unshuffle(t[0], 3); });
  // Larger shapes for determinism across thread counts (the permute kernel splits at 2^14
  // elements) and CPU vs CUDA (smaller under the host SIMT runtime).
  const int64_t B = full_or_emulated(8, 2);
  add("permute", "permute([B, 16, 32, 33], {0, 3, 1, 2}) (large)", {in("x", {B, 16, 32, 33})},
      [](const Ins& t) { return ember::permute(t[0], {0, 3, 1, 2}); }, kCuda | kDeterminism);
  add("pixel_shuffle", "pixel_shuffle([B, 64, 16, 17], 4) (large)", {in("x", {B, 64, 16, 17})},
      [](const Ins& t) { return ember::pixel_shuffle(t[0], 4); }, kCuda | kDeterminism);
  add("narrow", "narrow([B, 64, 33, 31], 2, 5, 20) (large)", {in("x", {B, 64, 33, 31})},
      [](const Ins& t) { return ember::narrow(t[0], 2, 5, 20); }, kCuda | kDeterminism);
}

}  // namespace ember_test::op_cases_detail
