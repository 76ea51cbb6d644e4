// @file tests/unit/test_classifier.cpp
// @brief fashion-classify's CNN (include/ember/models/classifier.hpp): PyTorch's parameter names
//        and counts, the forward pass against the same network written with the functional
//        ops, dropout only in training mode, and bad sizes.
#include <ember/models/classifier.hpp>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support/catch.hpp"

namespace {

// torch.nn names of benchmarks/torch_classify.py's model (nn.Sequential indices: Flatten,
// Dropout, ReLU and MaxPool2d hold no parameters).
const std::vector<std::string> kClassifierParamNames = {
    "features.0.weight",   "features.0.bias",   "features.1.weight",   "features.1.bias",
    "features.4.weight",   "features.4.bias",   "features.5.weight",   "features.5.bias",
    "classifier.2.weight", "classifier.2.bias", "classifier.5.weight", "classifier.5.bias"};

}  // namespace

TEST_CASE("classifier: PyTorch's parameter names, shapes and counts", "[classifier]") {
  for (int size : {28, 16}) {
    ember::models::FashionClassifier net(size);
    std::vector<std::string> names;
    for (auto& kv : net.named_parameters()) names.push_back(kv.first);
    CHECK(names == kClassifierParamNames);
    std::vector<std::string> buffers;
    for (auto& kv : net.named_buffers()) buffers.push_back(kv.first);
    CHECK(buffers == std::vector<std::string>{"features.1.running_mean", "features.1.running_var",
                                              "features.5.running_mean", "features.5.running_var"});
    // By hand: conv 1->32 3x3 (288 + 32), BN 32 (64), conv 32->64 (18432 + 64), BN 64 (128),
    // Linear 64*(s/4)^2 -> 128, Linear 128 -> 10 (1280 + 10). PyTorch's count of the same model
    // (torch_classify.py prints it): 421834 at 28, 151498 at 16.
    const int64_t flat = 64 * (size / 4) * (size / 4);
    const int64_t expect = 320 + 64 + 18496 + 128 + (flat * 128 + 128) + 1290;
    CHECK(net.num_parameters() == expect);
    CHECK(net.num_parameters() == (size == 28 ? 421834 : 151498));
    CHECK(net.features->forward(ember::zeros({1, 1, size, size})).shape() ==
          ember::Shape{1, 64, size / 4, size / 4});
  }
}

TEST_CASE("classifier: eval forward equals the functional composition", "[classifier]") {
  ember::manual_seed(11);
  ember::models::FashionClassifier net(16);
  net.eval();
  ember::Tensor x = ember::randn({3, 1, 16, 16});
  std::vector<ember::Tensor> p;
  for (auto& kv : net.named_parameters()) p.push_back(kv.second);
  // Fresh batch norms in eval mode: running mean 0, var 1, weight 1, bias 0, eps 1e-5, so each
  // is a multiplication by 1/sqrt(1 + 1e-5) (and ReLU and max-pooling commute with it).
  const float s = float(1.0 / std::sqrt(1.0 + 1e-5));
  ember::Tensor h = ember::max_pool2d(ember::relu(ember::conv2d(x, p[0], p[1], 1, 1) * s), 2);
  h = ember::max_pool2d(ember::relu(ember::conv2d(h, p[4], p[5], 1, 1) * s), 2);
  ember::Tensor ref =
      ember::linear(ember::relu(ember::linear(ember::flatten(h, 1), p[8], p[9])), p[10], p[11]);
  ember::Tensor y;
  {
    ember::NoGradGuard guard;
    y = net.forward(x);
  }
  REQUIRE(y.shape() == ember::Shape{3, 10});
  std::vector<float> a = y.to_vector(), b = ref.to_vector();
  for (size_t i = 0; i < a.size(); ++i) CHECK(std::fabs(a[i] - b[i]) <= 1e-5f);
}

TEST_CASE("classifier: dropout acts in training mode only, from the given generator",
          "[classifier]") {
  ember::manual_seed(5);
  ember::Generator g1(42), g2(42);
  ember::models::FashionClassifier a(16, 0.5, &g1);
  ember::manual_seed(5);
  ember::models::FashionClassifier b(16, 0.5, &g2);
  ember::Tensor x = ember::randn({4, 1, 16, 16});
  ember::NoGradGuard guard;
  a.eval();
  const std::vector<float> e1 = a.forward(x).to_vector(), e2 = a.forward(x).to_vector();
  CHECK(e1 == e2);
  a.train();
  b.train();
  const std::vector<float> t1 = a.forward(x).to_vector(), t2 = a.forward(x).to_vector();
  CHECK(t1 != t2);  // new masks each call (and batch statistics: the same for both calls)
  CHECK(b.forward(x).to_vector() == t1);  // same seed, same generator state: same masks
}

TEST_CASE("classifier: a size that is not a positive multiple of 4 is refused", "[classifier]") {
  for (int bad : {0, -4, 18}) {
    try {
      ember::models::FashionClassifier net(bad);
      FAIL("no error for img_size " << bad);
    } catch (const std::invalid_argument& e) {  // ember's bad-argument error
      CHECK(std::string(e.what()).find("FashionClassifier") != std::string::npos);
      CHECK(std::string(e.what()).find(std::to_string(bad)) != std::string::npos);
    }
  }
}
