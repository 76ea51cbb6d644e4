// @file tests/unit/test_layout.cpp
// @brief Hand cases of the layout and indexing ops (#12 item 5): values written out by hand
//        from PyTorch's definitions, gradients of the zero-filled / inverse-permute backward,
//        copy semantics, factories, one_hot and the nn modules.
#include <vector>

#include <ember/ember.hpp>

#include "../support/catch.hpp"

namespace layout_test {

using ember::Shape;
using ember::Tensor;

/// 0, 1, 2, ... n-1 in `shape`, requiring grad when asked.
Tensor iota_tensor(const Shape& shape, bool grad = false) {
  std::vector<float> v(size_t(ember::numel_of(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  Tensor t = ember::from_vector(v, shape);
  if (grad) t.set_requires_grad(true);
  return t;
}

/// The gradient of sum(y * w) with w = 1, 2, 3, ... (so each output element is told apart).
Tensor grad_of(const Tensor& x, const Tensor& y) {
  ember::sum(ember::mul(y, iota_tensor(y.shape()))).backward();
  return x.grad();
}

}  // namespace layout_test

using namespace layout_test;

TEST_CASE("layout: transpose and permute move values as PyTorch's views do", "[layout]") {
  const Tensor x = iota_tensor({2, 3}, true);
  const Tensor y = ember::transpose(x, 0, 1);
  CHECK(y.shape() == Shape{3, 2});
  CHECK(y.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  // d/dx sum(y * w): w transposed back.
  CHECK(grad_of(x, y).to_vector() == std::vector<float>{0, 2, 4, 1, 3, 5});

  const Tensor z = iota_tensor({2, 3, 4}, true);
  const Tensor p = z.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  // p[k, i, j] = z[i, j, k] = 12 i + 4 j + k
  const std::vector<float> pv = p.to_vector();
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) CHECK(pv[size_t(k * 6 + i * 3 + j)] == float(12 * i + 4 * j + k));
  const std::vector<float> g = grad_of(z, p).to_vector();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) CHECK(g[size_t(12 * i + 4 * j + k)] == float(k * 6 + i * 3 + j));
  // A copy, not a view: writing into the result leaves the input alone.
  const Tensor o = ember::ones({2, 2});
  Tensor c = ember::transpose(o, 0, 1);
  c.data()[0] = 5.0f;
  CHECK(o.to_vector() == std::vector<float>{1, 1, 1, 1});
  // contiguous() is the tensor itself; a 0-dim transpose is a copy of it.
  CHECK(x.contiguous().data() == x.data());
  CHECK(ember::contiguous(x).data() == x.data());
  CHECK(ember::transpose(ember::scalar_tensor(2.5f), 0, -1).item() == 2.5f);
}

TEST_CASE("layout: narrow and select copy the slice; backward writes it into zeros", "[layout]") {
  const Tensor x = iota_tensor({3, 4}, true);
  const Tensor n = ember::narrow(x, 1, -3, 2);  // columns 1 and 2
  CHECK(n.shape() == Shape{3, 2});
  CHECK(n.to_vector() == std::vector<float>{1, 2, 5, 6, 9, 10});
  CHECK(grad_of(x, n).to_vector() == std::vector<float>{0, 0, 1, 0, 0, 2, 3, 0, 0, 4, 5, 0});

  const Tensor x2 = iota_tensor({3, 4}, true);
  const Tensor s = ember::select(x2, 0, -1);  // the last row
  CHECK(s.shape() == Shape{4});
  CHECK(s.to_vector() == std::vector<float>{8, 9, 10, 11});
  CHECK(grad_of(x2, s).to_vector() == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3});
  const Tensor s1 = ember::select(iota_tensor({5}), 0, 3);
  CHECK(s1.dim() == 0);
  CHECK(s1.item() == 3.0f);
  // start == size is accepted by PyTorch only with length 0, which ember refuses (no empty
  // tensors); start == -size is the first element.
  CHECK(ember::narrow(x, 0, -3, 1).to_vector() == std::vector<float>{0, 1, 2, 3});
}

TEST_CASE("layout: split and chunk follow PyTorch's sizing", "[layout]") {
  const Tensor x = iota_tensor({5, 2});
  auto sizes = [](const std::vector<Tensor>& v) {
    std::vector<int64_t> s;
    for (const Tensor& t : v) s.push_back(t.size(0));
    return s;
  };
  CHECK(sizes(ember::chunk(x, 4)) == std::vector<int64_t>{2, 2, 1});  // ceil(5/4) = 2
  CHECK(sizes(ember::chunk(x, 5)) == std::vector<int64_t>{1, 1, 1, 1, 1});
  CHECK(sizes(ember::chunk(x, 7)) == std::vector<int64_t>{1, 1, 1, 1, 1});
  CHECK(sizes(ember::chunk(x, 2)) == std::vector<int64_t>{3, 2});
  CHECK(sizes(ember::chunk(iota_tensor({6}), 4)) == std::vector<int64_t>{2, 2, 2});  // 3 chunks
  CHECK(sizes(ember::split(x, 2)) == std::vector<int64_t>{2, 2, 1});
  CHECK(sizes(ember::split(x, 9)) == std::vector<int64_t>{5});
  const auto parts = ember::split(x, std::vector<int64_t>{1, 4}, 0);
  CHECK(parts[1].to_vector() == std::vector<float>{2, 3, 4, 5, 6, 7, 8, 9});
  const auto cols = ember::chunk(x, 2, -1);
  REQUIRE(cols.size() == 2);
  CHECK(cols[1].shape() == Shape{5, 1});
  CHECK(cols[1].to_vector() == std::vector<float>{1, 3, 5, 7, 9});
  // The gradient of one piece lands in its rows only.
  const Tensor g = iota_tensor({5, 2}, true);
  const auto ps = ember::split(g, 2);
  CHECK(grad_of(g, ps[1]).to_vector() == std::vector<float>{0, 0, 0, 0, 0, 1, 2, 3, 0, 0});
}

TEST_CASE("layout: stack inserts a new dim; backward gives each input its slice", "[layout]") {
  const Tensor a = iota_tensor({2, 2}, true);
  Tensor b = ember::full({2, 2}, 10.0f);
  b.set_requires_grad(true);
  const Tensor s0 = ember::stack({a, b}, 0);
  CHECK(s0.shape() == Shape{2, 2, 2});
  CHECK(s0.to_vector() == std::vector<float>{0, 1, 2, 3, 10, 10, 10, 10});
  const Tensor s2 = ember::stack({a, b}, -1);
  CHECK(s2.shape() == Shape{2, 2, 2});
  CHECK(s2.to_vector() == std::vector<float>{0, 10, 1, 10, 2, 10, 3, 10});
  ember::sum(ember::mul(s2, iota_tensor({2, 2, 2}))).backward();
  CHECK(a.grad().to_vector() == std::vector<float>{0, 2, 4, 6});
  CHECK(b.grad().to_vector() == std::vector<float>{1, 3, 5, 7});
  CHECK(ember::stack({ember::scalar_tensor(1.0f), ember::scalar_tensor(2.0f)}).shape() ==
        Shape{2});
}

TEST_CASE("layout: pixel_shuffle and pixel_unshuffle use PyTorch's channel order", "[layout]") {
  // pixel_unshuffle: out[n, c*r*r + i*r + j, h, w] = in[n, c, h*r + i, w*r + j] (einops
  // "b c (h p1) (w p2) -> b (c p1 p2) h w").
  const int64_t N = 2, C = 3, r = 2, H = 2, W = 3;
  const Tensor x = iota_tensor({N, C, H * r, W * r}, true);
  const Tensor u = ember::pixel_unshuffle(x, r);
  REQUIRE(u.shape() == Shape{N, C * r * r, H, W});
  const std::vector<float> xv = x.to_vector(), uv = u.to_vector();
  bool all = true;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < r; ++j)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t w = 0; w < W; ++w) {
              const int64_t o = ((n * C * r * r + c * r * r + i * r + j) * H + h) * W + w;
              const int64_t s = ((n * C + c) * H * r + h * r + i) * W * r + w * r + j;
              all = all && uv[size_t(o)] == xv[size_t(s)];
            }
  CHECK(all);
  // pixel_shuffle inverts it, and the module forms agree.
  const Tensor back = ember::pixel_shuffle(u, r);
  CHECK(back.shape() == x.shape());
  CHECK(back.to_vector() == xv);
  ember::nn::PixelShuffle ps(r);
  ember::nn::PixelUnshuffle pu(r);
  CHECK(ps.forward(pu.forward(x)).to_vector() == xv);
  CHECK(ps.name() == "PixelShuffle");
  // Backward of pixel_unshuffle is pixel_shuffle of the gradient.
  const Tensor w = iota_tensor(u.shape());
  ember::sum(ember::mul(u, w)).backward();
  CHECK(x.grad().to_vector() == ember::pixel_shuffle(w, r).to_vector());
  // Rank 3 (no batch dim): [C*r*r, H, W] -> [C, H*r, W*r].
  CHECK(ember::pixel_shuffle(iota_tensor({4, 1, 1}), 2).to_vector() ==
        std::vector<float>{0, 1, 2, 3});
  CHECK(ember::pixel_shuffle(iota_tensor({4, 1, 1}), 2).shape() == Shape{1, 2, 2});
}

TEST_CASE("layout: arange and linspace", "[layout]") {
  CHECK(ember::arange(5.0).to_vector() == std::vector<float>{0, 1, 2, 3, 4});
  CHECK(ember::arange(1.0, 2.0, 0.25).to_vector() == std::vector<float>{1, 1.25, 1.5, 1.75});
  CHECK(ember::arange(1.0, 2.1, 0.25).size(0) == 5);  // ceil(1.1 / 0.25)
  CHECK(ember::arange(3.0, 0.0, -1.0).to_vector() == std::vector<float>{3, 2, 1});
  CHECK(ember::linspace(0.0, 1.0, 5).to_vector() == std::vector<float>{0, 0.25, 0.5, 0.75, 1});
  CHECK(ember::linspace(2.0, -2.0, 3).to_vector() == std::vector<float>{2, 0, -2});
  CHECK(ember::linspace(7.0, 9.0, 1).to_vector() == std::vector<float>{7});
  // Computed from both ends: the last value is `end` exactly.
  const std::vector<float> l = ember::linspace(-0.1, 0.7, 11).to_vector();
  CHECK(l.front() == -0.1f);
  CHECK(l.back() == 0.7f);
}

TEST_CASE("layout: one_hot of float32 integer indices", "[layout]") {
  const Tensor idx = ember::from_vector({2, 0, 1, 2}, Shape{2, 2});
  const Tensor y = ember::one_hot(idx);
  CHECK(y.shape() == Shape{2, 2, 3});
  CHECK(y.to_vector() == std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1});
  const Tensor y5 = ember::one_hot(ember::scalar_tensor(1.0f), 5);
  CHECK(y5.shape() == Shape{5});
  CHECK(y5.to_vector() == std::vector<float>{0, 1, 0, 0, 0});
  CHECK(!y.requires_grad());
}
