// @file tests/fuzz/make_corpus.cpp
// @brief Writes the ember-made half of the fuzz seed corpus (tests/fuzz/corpus/<reader>/ember-*):
//        small valid inputs from ember's own writers and near-valid variants (truncated, one
//        byte changed). tests/fuzz/make_corpus.py writes the other half with independent
//        encoders (Python's zlib/gzip, a hand-built PNG, PyTorch + safetensors).
//
//   g++ -std=c++17 -O1 -I include -I . tests/fuzz/make_corpus.cpp -o /tmp/make_corpus -pthread -lz
//   /tmp/make_corpus tests/fuzz/corpus
#include <cstdio>
#include <string>
#include <vector>

#include "fuzz_targets.hpp"

namespace {

using Bytes = std::vector<uint8_t>;

void put(const std::string& dir, const std::string& name, const Bytes& b) {
  ember::io::write_file_atomic(dir + "/" + name, b);
}

Bytes truncated(Bytes b, size_t keep) {
  b.resize(std::min(keep, b.size()));
  return b;
}

Bytes flipped(Bytes b, size_t at) {
  if (at < b.size()) b[at] ^= 0x40;
  return b;
}

void be32(Bytes& b, uint32_t v) {
  for (int i = 3; i >= 0; --i) b.push_back(uint8_t(v >> (8 * i)));
}

Bytes text(size_t n) {
  Bytes t;
  const char* words[] = {"ember ", "tensor ", "denoise ", "fashion ", "16x16 ", "\n"};
  for (size_t i = 0; t.size() < n; ++i) {
    const char* w = words[(i * 7 + i / 3) % 6];
    t.insert(t.end(), w, w + std::string(w).size());
  }
  t.resize(n);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus CORPUS_DIR (with idx/ deflate/ png/ checkpoint/ safetensors/)\n");
    return 2;
  }
  const std::string root = argv[1];
  using namespace ember::io;

  // ---- IDX: 3 images of 4x5 and their labels, plain and gzip ----
  {
    const std::string d = root + "/idx";
    Bytes im;
    be32(im, 2051);
    be32(im, 3);
    be32(im, 4);
    be32(im, 5);
    for (int i = 0; i < 60; ++i) im.push_back(uint8_t(i * 37));
    Bytes lb;
    be32(lb, 2049);
    be32(lb, 3);
    for (int i = 0; i < 3; ++i) lb.push_back(uint8_t(i + 7));
    put(d, "ember-images.idx", im);
    put(d, "ember-labels.idx", lb);
    put(d, "ember-images.idx.gz", gzip_compress(im.data(), im.size()));
    put(d, "ember-labels.idx.gz", gzip_compress(lb.data(), lb.size()));
    put(d, "ember-images-truncated.idx", truncated(im, 40));
    Bytes gz = gzip_compress(im.data(), im.size());
    put(d, "ember-images-truncated.idx.gz", truncated(gz, gz.size() - 6));
  }
  // ---- deflate: ember's writers (io/gzip.hpp) on text and on incompressible bytes ----
  {
    const std::string d = root + "/deflate";
    Bytes t = text(600);
    Bytes noise;
    uint32_t x = 12345;
    for (int i = 0; i < 300; ++i) {
      x = x * 1103515245u + 12345u;
      noise.push_back(uint8_t(x >> 24));
    }
    put(d, "ember-text.gz", gzip_compress(t.data(), t.size()));
    put(d, "ember-text.zz", zlib_compress(t.data(), t.size()));
    put(d, "ember-noise.zz", zlib_compress(noise.data(), noise.size()));
    put(d, "ember-empty.gz", gzip_compress(nullptr, 0));
    Bytes zz = zlib_compress(t.data(), t.size());
    put(d, "ember-text-badadler.zz", flipped(zz, zz.size() - 2));
  }
  // ---- PNG: ember's writer ----
  {
    const std::string d = root + "/png";
    Bytes px;
    for (int i = 0; i < 7 * 5; ++i) px.push_back(uint8_t(i * 9));
    Bytes png = encode_png_gray(px.data(), 7, 5);
    put(d, "ember-7x5.png", png);
    put(d, "ember-7x5-badcrc.png", flipped(png, 30));
    put(d, "ember-7x5-truncated.png", truncated(png, png.size() - 12));
  }
  // ---- checkpoint and safetensors of the harnesses' model ----
  {
    ember::manual_seed(0);
    auto net = ember_fuzz::model();
    ember::optim::Adam opt(net->parameters(), ember::optim::AdamOptions{});
    const std::string ck = root + "/checkpoint/ember-model.ckpt";
    save_checkpoint(ck, *net, &opt, {{"arch", "fuzz"}, {"step", "0"}});
    const std::string ck2 = root + "/checkpoint/ember-model-noopt.ckpt";
    save_checkpoint(ck2, *net, nullptr, {});
    Bytes b = read_file(ck2);
    put(root + "/checkpoint", "ember-model-noopt-truncated.ckpt", truncated(b, b.size() / 2));

    const std::string st = root + "/safetensors/ember-model.safetensors";
    save_safetensors(st, *net, {{"format", "pt"}});
    std::vector<SafeTensor> mixed = {{"a", "F64", ember::from_vector({1.5f, -2.0f}, {2})},
                                     {"n", "I64", ember::from_vector({3.0f}, {})},
                                     {"w", "F32", ember::ones({2, 2})}};
    put(root + "/safetensors", "ember-mixed.safetensors", encode_safetensors(mixed, {{"k", "v"}}));
  }
  std::printf("wrote the ember-made seeds under %s\n", root.c_str());
  return 0;
}
