// A consumer program: trains y = 2x + 1 with one Linear layer and checks it learned it.
#include <ember/ember.hpp>

// One include prefix: ember puts only its include/ directory on a consumer's path, so headers are
// reached as <ember/...> and no generic name (<tensor.hpp>, <kernels/params.hpp>) is visible.
#if __has_include(<tensor.hpp>) || __has_include(<kernels/params.hpp>) || \
    __has_include(<cpu/conv2d.hpp>) || __has_include(<params.hpp>)
#error "ember leaks a generic header name onto the consumer's include path"
#endif
#if !__has_include(<ember/kernels/params.hpp>)
#error "<ember/kernels/params.hpp> is not reachable through ember::ember"
#endif

// The core's file formats (checkpoints, safetensors) need no library: they compile and link here
// against ember::ember alone, and do not pull in zlib.
#include <ember/io/checkpoint.hpp>
#include <ember/io/safetensors.hpp>
#if defined(ZLIB_H)
#error "a core ember header includes <zlib.h>"
#endif

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

int main() {
  ember::manual_seed(1);
  auto layer = std::make_shared<ember::nn::Linear>(1, 1);
  ember::optim::SGD opt(layer->parameters(), {/*lr=*/0.1f});
  ember::Tensor x = ember::from_vector({-1, -0.5f, 0, 0.5f, 1}, {5, 1});
  ember::Tensor y = ember::from_vector({-1, 0, 1, 2, 3}, {5, 1});
  float loss = 0;
  for (int i = 0; i < 300; ++i) {
    opt.zero_grad();
    ember::Tensor l = ember::mse_loss(layer->forward(x), y);
    l.backward();
    opt.step();
    loss = l.item();
  }
  // A checkpoint round trip (its CRC-32 is the core's own).
  const std::string ckpt = "consumer_" + std::to_string(::getpid()) + ".ckpt";
  ember::io::save_checkpoint(ckpt, *layer, nullptr, {{"by", "consumer"}});
  auto again = std::make_shared<ember::nn::Linear>(1, 1);
  std::map<std::string, std::string> meta;
  ember::io::load_checkpoint(ckpt, *again, nullptr, &meta);
  std::remove(ckpt.c_str());
  if (meta["by"] != "consumer" || again->weight.item() != layer->weight.item()) return 1;
  float w = layer->weight.item(), b = layer->bias.item();
  std::printf("consumer: w=%.4f b=%.4f loss=%.2e\n", w, b, loss);
  return (std::fabs(w - 2) < 1e-3 && std::fabs(b - 1) < 1e-3) ? 0 : 1;
}
