// @file include/ember/models/classifier.hpp
// @brief fashion-classify's small CNN classifier for FashionMNIST (28x28 or 16x16 images, 10
//        classes), with PyTorch's module names.
//
// features:   Conv(1,32,3,p1) BN ReLU MaxPool2 -> Conv(32,64,3,p1) BN ReLU MaxPool2
// classifier: Flatten -> Dropout(p) -> Linear(64*(s/4)^2, 128) ReLU -> Dropout(p) -> Linear(128,10)
// Parameter names equal PyTorch's named_parameters() of the same nn.Sequential pair
// (benchmarks/torch_classify.py: "features.0.weight", "features.1.running_mean", ...,
// "classifier.2.weight", "classifier.5.bias"). 421,834 parameters at 28x28, 151,498 at 16x16.
// Input: [N, 1, s, s] in [-1, 1] (pixel / 255 * 2 - 1, after the antialiased resize for 16x16);
// output: [N, 10] logits in FashionMNIST's class order (see kFashionClasses).
//
// Trained weights: `fashion-classify --size 16` writes fashion-classify-out-16/model.safetensors
// (float32 tensors under the names above plus BatchNorm's running_mean/running_var; metadata
// arch, img_size, dropout, test_accuracy, input, classes). To score 16x16 images in [-1, 1]
// with it (io/safetensors.hpp):
//   ember::models::FashionClassifier clf(16);
//   ember::io::load_safetensors("fashion-classify-out-16/model.safetensors", clf);
//   clf.eval();
//   ember::NoGradGuard no_grad;
//   Tensor logits = clf.forward(images);  // images: [N, 1, 16, 16]
// PyTorch loads the same file into torch_classify.py's make_model(16) (load_state_dict with
// strict=False: ember does not store num_batches_tracked).
#pragma once
#include "../ember.hpp"

namespace ember::models {

/// FashionMNIST's class names, in label order.
inline const char* const kFashionClasses[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

class FashionClassifier : public nn::Module {
 public:
  /// img_size: a positive multiple of 4 (two poolings). dropout: the probability of both
  /// Dropout layers. Dropout masks come from `dropout_gen` when given (it must outlive the
  /// model), else from ember's default generator.
  explicit FashionClassifier(int img_size = 28, double dropout = 0.25,
                             Generator* dropout_gen = nullptr)
      : img_size_(img_size) {
    using nn::BatchNorm2d, nn::Conv2d, nn::Dropout, nn::Flatten, nn::Linear, nn::MaxPool2d,
        nn::ReLU, nn::Sequential;
    check_arg(img_size > 0 && img_size % 4 == 0, "FashionClassifier",
              "img_size must be a positive multiple of 4, got ", img_size);
    const int c1 = 32, c2 = 64, hidden = 128, L = img_size / 4;
    Generator& g = dropout_gen ? *dropout_gen : default_generator();
    using List = std::initializer_list<std::shared_ptr<Module>>;
    features = register_module(
        "features",
        std::make_shared<Sequential>(
            List{std::make_shared<Conv2d>(1, c1, 3, 1, 1), std::make_shared<BatchNorm2d>(c1),
                 std::make_shared<ReLU>(), std::make_shared<MaxPool2d>(2),
                 std::make_shared<Conv2d>(c1, c2, 3, 1, 1), std::make_shared<BatchNorm2d>(c2),
                 std::make_shared<ReLU>(), std::make_shared<MaxPool2d>(2)}));
    classifier = register_module(
        "classifier",
        std::make_shared<Sequential>(
            List{std::make_shared<Flatten>(), std::make_shared<Dropout>(dropout, g),
                 std::make_shared<Linear>(c2 * L * L, hidden), std::make_shared<ReLU>(),
                 std::make_shared<Dropout>(dropout, g), std::make_shared<Linear>(hidden, 10)}));
  }

  /// [N, 1, s, s] -> [N, 10] logits.
  Tensor forward(const Tensor& x) override { return classifier->forward(features->forward(x)); }
  std::string name() const override { return "FashionClassifier"; }
  int img_size() const { return img_size_; }

  std::shared_ptr<nn::Sequential> features, classifier;

 private:
  int img_size_;
};

}  // namespace ember::models
