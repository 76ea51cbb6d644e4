// @file tests/fuzz/fuzz_targets.hpp
// @brief What each fuzz harness does with one input: it feeds the bytes to a reader's in-memory
//        entry point and checks the result. Shared by the libFuzzer harnesses (tests/fuzz/*.cpp)
//        and the unit test that replays the corpus and every past finding
//        (tests/unit/test_fuzz_regressions.cpp).
//
// Contract: a reader either accepts the input or throws ember::Error (caught here). Anything else
// escaping these functions is a finding: another exception type, a crash or a sanitizer report,
// or a broken invariant of accepted data (reported as std::logic_error, e.g. "decompressing
// what the compressor wrote does not give the input back").
#pragma once
#include <ember/data/idx.hpp>
#include <ember/ember.hpp>
#include <ember/io/checkpoint.hpp>
#include <ember/io/gzip.hpp>
#include <ember/io/png.hpp>
#include <ember/io/safetensors.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ember_fuzz {

inline void require(bool ok, const char* what) {
  if (!ok) throw std::logic_error(std::string("fuzz invariant broken: ") + what);
}

// Decompressed output allowed per input (1 MiB: larger outputs only slow the fuzzer down).
constexpr size_t kMaxOutput = size_t(1) << 20;

/// IDX: the input as an image file and as a label file (plain or gzip-compressed).
inline int idx(const uint8_t* data, size_t size) {
  int ok = 0;
  try {
    ember::data::IdxImages im = ember::data::parse_idx_images(data, size, "fuzz.idx");
    require(im.pixels.size() == size_t(im.count) * size_t(im.rows) * size_t(im.cols),
            "IDX image count x rows x cols == pixel bytes");
    ++ok;
  } catch (const ember::Error&) {
  }
  try {
    ember::data::IdxLabels lb = ember::data::parse_idx_labels(data, size, "fuzz.idx");
    require(lb.labels.size() == size_t(lb.count), "IDX label count == label bytes");
    ++ok;
  } catch (const ember::Error&) {
  }
  return ok;
}

/// gzip / zlib: the input decoded as each by ember's zlib-backed readers (io/gzip.hpp: gunzip
/// for .gz IDX files, zlib_decompress for PNG image data), with an output bound. Decoding again
/// with the exact size as the bound must succeed and one byte less must be reported as
/// kOutputLimit; what a decoder accepted is compressed again (gzip_compress, zlib_compress) and
/// must decode back to the same bytes.
inline int deflate(const uint8_t* data, size_t size) {
  int ok = 0;
  using namespace ember::io;
  using Decoder = std::vector<uint8_t> (*)(const uint8_t*, size_t, size_t);
  using Encoder = std::vector<uint8_t> (*)(const uint8_t*, size_t, int);
  const Decoder decoders[2] = {gunzip, zlib_decompress};
  const Encoder encoders[2] = {gzip_compress, zlib_compress};
  for (int k = 0; k < 2; ++k) {
    std::vector<uint8_t> out;
    try {
      out = decoders[k](data, size, kMaxOutput);
    } catch (const ember::Error&) {
      continue;
    }
    ++ok;
    require(out.size() <= kMaxOutput, "decoder output within max_output");
    require(decoders[k](data, size, out.size()) == out, "decoding repeatable at its size");
    if (!out.empty()) {
      bool limited = false;
      try {
        decoders[k](data, size, out.size() - 1);
      } catch (const DeflateError& e) {
        limited = e.kind() == DeflateError::Kind::kOutputLimit;
      }
      require(limited, "max_output one below the size is reported as kOutputLimit");
    }
    const std::vector<uint8_t> again = encoders[k](out.data(), out.size(), 1);
    require(decoders[k](again.data(), again.size(), kNoOutputLimit) == out,
            "decompress(compress(x)) == x");
  }
  return ok;
}

/// PNG: decode; when accepted, re-encode the pixels and decode again (must match).
inline int png(const uint8_t* data, size_t size) {
  int w = 0, h = 0;
  std::vector<uint8_t> px;
  try {
    px = ember::io::decode_png_gray(data, size, &w, &h, "fuzz.png");
  } catch (const ember::Error&) {
    return 0;
  }
  require(w > 0 && h > 0 && px.size() == size_t(w) * size_t(h), "PNG pixels == width x height");
  std::vector<uint8_t> again = ember::io::encode_png_gray(px.data(), w, h);
  int w2 = 0, h2 = 0;
  require(ember::io::decode_png_gray(again.data(), again.size(), &w2, &h2) == px && w2 == w &&
              h2 == h,
          "PNG re-encode round trip");
  return 1;
}

/// The small model the checkpoint and safetensors harnesses load into (its seeds are written
/// by tests/fuzz/make_corpus.cpp with the same model).
inline std::shared_ptr<ember::nn::Sequential> model() {
  using namespace ember::nn;
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Conv2d>(1, 2, 3, 1, 1), std::make_shared<BatchNorm2d>(2),
      std::make_shared<ReLU>(), std::make_shared<Flatten>(), std::make_shared<Linear>(8, 3)});
}

/// Checkpoint: the input as it is, and again with its last four bytes replaced by the correct
/// CRC-32 so that the parser behind the checksum is reached too; into a model with Adam state.
inline int checkpoint(const uint8_t* data, size_t size) {
  int ok = 0;
  auto net = model();
  ember::optim::Adam opt(net->parameters(), ember::optim::AdamOptions{});
  std::map<std::string, std::string> meta;
  try {
    ember::io::load_checkpoint(data, size, "fuzz.ckpt", *net, &opt, &meta);
    ++ok;
  } catch (const ember::Error&) {
  }
  if (size >= 4) {
    std::vector<uint8_t> fixed(data, data + size);
    const uint32_t crc = ember::io::crc32(fixed.data(), size - 4);
    for (int i = 0; i < 4; ++i) fixed[size - 4 + size_t(i)] = uint8_t(crc >> (8 * i));
    try {
      ember::io::load_checkpoint(fixed.data(), fixed.size(), "fuzz.ckpt", *net, &opt, &meta);
      ++ok;
    } catch (const ember::Error&) {
    }
    try {  // and without an optimizer
      ember::io::load_checkpoint(fixed.data(), fixed.size(), "fuzz.ckpt", *net, nullptr, nullptr);
      ++ok;
    } catch (const ember::Error&) {
    }
  }
  return ok;
}

/// safetensors: decode; when accepted, re-encode (where every dtype is writable) and decode
/// again (must give the same names, dtypes, shapes, bits and metadata), and load into a model.
inline int safetensors(const uint8_t* data, size_t size) {
  ember::io::SafetensorsFile st;
  try {
    st = ember::io::decode_safetensors(data, size, "fuzz.safetensors");
  } catch (const ember::Error&) {
    return 0;
  }
  for (const auto& t : st.tensors) require(t.tensor.defined() && t.tensor.numel() > 0, "tensor defined");
  bool writable = true;
  for (const auto& t : st.tensors)
    if (t.dtype != "F32" && t.dtype != "F64" && t.dtype != "I64") writable = false;
  if (writable) {
    std::vector<uint8_t> again;
    bool encoded = true;
    try {
      again = ember::io::encode_safetensors(st.tensors, st.metadata);
    } catch (const ember::Error&) {
      encoded = false;  // e.g. an I64 value that float32 rounded to 2^63
    }
    if (encoded) {
      ember::io::SafetensorsFile back = ember::io::decode_safetensors(again.data(), again.size());
      require(back.metadata == st.metadata, "safetensors metadata round trip");
      require(back.tensors.size() == st.tensors.size(), "safetensors tensor count round trip");
      for (size_t i = 0; i < st.tensors.size(); ++i) {
        const auto& a = st.tensors[i];
        const auto& b = back.tensors[i];
        std::vector<float> va = a.tensor.to_vector(), vb = b.tensor.to_vector();
        require(a.name == b.name && a.dtype == b.dtype && a.tensor.shape() == b.tensor.shape() &&
                    std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0,
                "safetensors tensor round trip");
      }
    }
  }
  auto net = model();
  try {
    ember::io::load_safetensors(st, *net, "fuzz.safetensors");
  } catch (const ember::Error&) {
  }
  return 1;
}

}  // namespace ember_fuzz
