// @file examples/fashion_classify/main.cpp
// @brief fashion-classify: trains a small CNN (include/ember/models/classifier.hpp) to classify
//        FashionMNIST at 28x28 or 16x16, scores it on the test set and draws what it does.
//
// The recipe (benchmarks/torch_classify.py is it in PyTorch): images uint8 -> /255 -> (--size
// 16: the antialiased bilinear resize 28->16 of fashion-denoise) -> x*2-1; no augmentation; each
// epoch a seeded reshuffle, the last partial batch dropped; loss = cross_entropy; AdamW with a
// CosineAnnealingLR stepped after every batch down to 0 at the last step. After each epoch the
// test accuracy is measured and a checkpoint written; --resume continues from it exactly (the
// shuffles derive from --seed and the epoch, and the dropout generator's position is stored).
//
// The final model is also written as model.safetensors (PyTorch names, float32, metadata
// img_size/dropout/test_accuracy): the diffusion example loads it into
// ember::models::FashionClassifier(16) to score generated 16x16 images in [-1, 1].
#include <ember/data/idx.hpp>
#include <ember/data/transforms.hpp>
#include <ember/ember.hpp>
#include <ember/io/checkpoint.hpp>
#include <ember/io/png.hpp>
#include <ember/io/safetensors.hpp>
#include <ember/models/classifier.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../common/draw.hpp"
#include "../common/training_guard.hpp"
#include "reference_json.hpp"  // kReferenceJson: reference.json, embedded by CMake

namespace {

using ember::Tensor;
using ember::models::kFashionClasses;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

constexpr int64_t kEvalBatch = 1000;
constexpr const char* kArch = "FashionClassifier";
constexpr const char* kCheckpoint = "checkpoint.bin";
constexpr const char* kModel = "model.safetensors";
constexpr const char* kSummary = "summary.json";
constexpr const char* kEvalSummary = "eval.json";
constexpr const char* kTrainCsv = "train.csv";
constexpr const char* kConfusionPng = "confusion.png";
constexpr const char* kPredictionsPng = "predictions.png";

const char* kAbout =
    "Trains a small CNN (Conv-BN-ReLU-MaxPool x2, Dropout, Linear-ReLU, Dropout, Linear) to\n"
    "classify FashionMNIST at 28x28 or 16x16 (cross-entropy, AdamW, cosine schedule), scores\n"
    "it on the 10,000 test images after every epoch and writes its results to --out.";

const char* kFooter =
    "writes to --out: summary.json (accuracy, per-class accuracy, confusion matrix, per-epoch\n"
    "loss/accuracy, timings, settings, the PyTorch reference figure), train.csv,\n"
    "confusion.png, predictions.png, checkpoint.bin (after every epoch; --resume) and\n"
    "model.safetensors (the final weights with PyTorch's names). --eval writes eval.json and\n"
    "the two PNGs.\n"
    "Ctrl-C (SIGINT) or SIGTERM: stops; the checkpoint of the last finished epoch stays.\n"
    "exit status: 0 success, 1 runtime error (data, checkpoint, files, non-finite loss),\n"
    "2 bad usage, 130/143 stopped by SIGINT/SIGTERM";

// ---------------------------------------------------------------------------------------------
// command line (CLI11)

struct Options {
  std::string data;
  int64_t size = 28;
  int64_t epochs = 8;
  bool epochs_set = false;
  int64_t batch = 128;
  double lr = 2e-3;
  double weight_decay = 0.05;
  double dropout = 0.25;
  uint64_t seed = 0;
  std::string out = "fashion-classify-out";
  int64_t threads = 0;  // 0: ember's default
  int64_t limit = 0;    // 0: all 60,000 training images
  int64_t test_limit = 0;
  std::string eval, resume;
  int64_t stop_after = 0;  // 0: train all --epochs
  int64_t log_every = 50;
};

std::string fmt_num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

bool all_digits(const std::string& v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        errno = 0;
        const long long x = all_digits(v) ? std::strtoll(v.c_str(), nullptr, 10) : -1;
        if (all_digits(v) && errno != ERANGE && x >= lo && x <= hi) return "";
        return "needs an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
               "], got '" + v + "'";
      },
      "");
}

CLI::Validator non_negative_u64() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        errno = 0;
        if (all_digits(v) && (std::strtoull(v.c_str(), nullptr, 10), errno != ERANGE)) return "";
        return "needs a non-negative integer below 2^64, got '" + v + "'";
      },
      "");
}

/// A number in [lo, hi) (lo itself allowed when lo_ok).
CLI::Validator number_in(double lo, double hi, bool lo_ok) {
  return CLI::Validator(
      [lo, hi, lo_ok](std::string& v) -> std::string {
        errno = 0;
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (!v.empty() && *end == '\0' && errno != ERANGE && (lo_ok ? x >= lo : x > lo) && x < hi)
          return "";
        return std::string("needs a number in ") + (lo_ok ? "[" : "(") + fmt_num(lo) + ", " +
               fmt_num(hi) + "), got '" + v + "'";
      },
      "");
}

CLI::Validator path_value(const char* what) {
  return CLI::Validator(
      [what](std::string& v) -> std::string {
        if (v.empty()) return std::string("needs ") + what;
        if (v.compare(0, 2, "--") == 0)
          return std::string("needs ") + what + ", but the next argument is the flag '" + v +
                 "' (a forgotten value? write ./" + v + " for a name starting with --)";
        return "";
      },
      "");
}

void describe_options(CLI::App& app, Options& o) {
  app.description(kAbout);
  app.footer(kFooter);
  app.get_formatter()->column_width(26);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "show this message");
  app.add_option("--data", o.data,
                 "FashionMNIST directory (default $EMBER_DATA, else\n"
                 "/usr/share/datasets/fashion-mnist)")
      ->type_name("DIR")
      ->check(path_value("a directory"));
  app.add_option("--size", o.size,
                 "image size: 28 (as stored) or 16 (antialiased resize,\n"
                 "as fashion-denoise; default 28)")
      ->type_name("28|16")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            if (v == "28" || v == "16") return "";
            return "must be 28 or 16, got '" + v + "'";
          },
          ""));
  app.add_option("--epochs", o.epochs, "epochs to train (default 8)")
      ->type_name("N")
      ->check(integer_in(1, 10000));
  app.add_option("--batch", o.batch, "batch size (default 128; the last partial batch is dropped)")
      ->type_name("N")
      ->check(integer_in(1, 65536));
  app.add_option("--lr", o.lr, "AdamW's peak learning rate, cosine to 0 (default 2e-3)")
      ->type_name("X")
      ->check(number_in(0, 1000, false));
  app.add_option("--weight-decay", o.weight_decay, "AdamW's weight decay (default 0.05)")
      ->type_name("X")
      ->check(number_in(0, 1000, true));
  app.add_option("--dropout", o.dropout, "probability of both Dropout layers (default 0.25)")
      ->type_name("P")
      ->check(number_in(0, 1, true));
  app.add_option("--seed", o.seed, "seed for initialisation, shuffling and dropout (default 0)")
      ->type_name("N")
      ->check(non_negative_u64());
  app.add_option("--out", o.out,
                 "output directory, created if missing (default\nfashion-classify-out, or "
                 "fashion-classify-out-16 for --size 16)")
      ->type_name("DIR")
      ->check(path_value("a directory"));
  app.add_option("--threads", o.threads, "CPU threads (default: ember's, all cores)")
      ->type_name("N")
      ->check(integer_in(1, 1024));
  app.add_option("--limit", o.limit, "train on the first N training images only (smoke runs)")
      ->type_name("N")
      ->check(integer_in(1, int64_t(1) << 40));
  app.add_option("--test-limit", o.test_limit, "score only the first N test images")
      ->type_name("N")
      ->check(integer_in(1, int64_t(1) << 40));
  CLI::Option* resume =
      app.add_option("--resume", o.resume,
                     "continue training from a checkpoint up to --epochs (settings\n"
                     "come from the checkpoint)")
          ->type_name("CKPT")
          ->check(path_value("a checkpoint file"));
  app.add_option("--eval", o.eval,
                 "only score a checkpoint or model.safetensors on the test set\n"
                 "and draw the PNGs")
      ->type_name("FILE")
      ->check(path_value("a checkpoint file"))
      ->excludes(resume);
  app.add_option("--stop-after", o.stop_after,
                 "stop after epoch K although the schedule spans --epochs\n"
                 "(split a run; continue with --resume)")
      ->type_name("K")
      ->check(integer_in(1, 10000));
  app.add_option("--log-every", o.log_every,
                 "when stdout is not a terminal, print progress every N steps\n(default 50)")
      ->type_name("N")
      ->check(integer_in(1, int64_t(1) << 40));
}

// ---------------------------------------------------------------------------------------------
// small utilities

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string duration_text(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

/// splitmix64 of (seed, stream, index): independent Philox keys for each use of --seed.
uint64_t derive_seed(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream * 0x100000001B3ull + index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void make_dirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part;
    if (::mkdir(cur.c_str(), 0777) != 0 && errno != EEXIST)
      throw ember::Error("cannot create output directory '" + cur + "': " + std::strerror(errno));
    struct stat st {};
    if (::stat(cur.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw ember::Error("output path '" + cur + "' exists and is not a directory");
    cur += "/";
  }
}

std::string join(const std::string& dir, const char* name) {
  return (dir.empty() || dir.back() == '/') ? dir + name : dir + "/" + name;
}

void prepare_out_dir(const std::string& out) {
  make_dirs(out);
  ember_examples::check_dir_writable(out);
  for (const char* name :
       {kCheckpoint, kModel, kSummary, kEvalSummary, kTrainCsv, kConfusionPng, kPredictionsPng})
    ember::io::detail::remove_stale_temps(join(out, name));
}

/// The metadata of an ember checkpoint (io/checkpoint.hpp's layout), read without a module so
/// that the model can be built at the checkpoint's size. Returns an empty map when the file
/// cannot be read this far; load_checkpoint then reports what is wrong with it.
std::map<std::string, std::string> peek_checkpoint_meta(const std::string& path) {
  std::map<std::string, std::string> meta;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return meta;
  std::vector<uint8_t> head(1 << 20);
  const size_t n = std::fread(head.data(), 1, head.size(), f);
  std::fclose(f);
  size_t pos = 20;  // magic, version, payload size
  auto u32 = [&](uint32_t& v) {
    if (pos + 4 > n) return false;
    v = uint32_t(head[pos]) | uint32_t(head[pos + 1]) << 8 | uint32_t(head[pos + 2]) << 16 |
        uint32_t(head[pos + 3]) << 24;
    pos += 4;
    return true;
  };
  auto str = [&](std::string& v) {
    uint32_t len = 0;
    if (!u32(len) || pos + len > n) return false;
    v.assign(reinterpret_cast<const char*>(head.data()) + pos, len);
    pos += len;
    return true;
  };
  if (n < 20 || std::memcmp(head.data(), "EMBERCKP", 8) != 0) return meta;
  uint32_t count = 0;
  if (!u32(count)) return meta;
  std::map<std::string, std::string> out;
  for (uint32_t i = 0; i < count; ++i) {
    std::string k, v;
    if (!str(k) || !str(v)) return meta;
    out[k] = v;
  }
  return out;
}

/// The checkpoint's metadata; throws load_checkpoint's own error for a damaged or missing file.
std::map<std::string, std::string> checkpoint_meta(const std::string& path) {
  std::map<std::string, std::string> meta = peek_checkpoint_meta(path);
  if (meta.empty()) {
    ember::models::FashionClassifier probe(28);
    ember::io::load_checkpoint(path, probe, nullptr, &meta);  // throws for a bad file
  }
  return meta;
}

void write_json(const std::string& path, const Json& js) {
  // Paths need not be UTF-8: invalid bytes are written as U+FFFD rather than refused.
  ember::io::write_file_atomic(path, js.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
}

// ---------------------------------------------------------------------------------------------
// the PyTorch reference figures (reference.json, measured by benchmarks/torch_classify.py)

/// The reference entry for `size` ("28" / "16"), or null when reference.json has none.
Json reference_for(int64_t size) {
  try {
    Json all = Json::parse(kReferenceJson);
    const std::string key = std::to_string(size);
    if (all.contains("results") && all["results"].contains(key)) return all["results"][key];
  } catch (const std::exception&) {
  }
  return Json(nullptr);
}

std::string reference_text(const Json& ref) {
  if (ref.is_null() || !ref.contains("test_accuracy") || !ref["test_accuracy"].is_number())
    return "PyTorch reference: not measured";
  char buf[256];
  std::snprintf(buf, sizeof buf, "PyTorch %s, same recipe: %.2f%% (benchmarks/torch_classify.py)",
                ref.value("torch", std::string("?")).c_str(),
                100.0 * ref["test_accuracy"].get<double>());
  return buf;
}

// ---------------------------------------------------------------------------------------------
// data

struct Split {
  std::vector<float> x;  // N * S * S floats in [-1, 1]
  std::vector<float> y;  // N labels 0..9 (as float, ember's class-index targets)
  int64_t n = 0;
};

/// uint8 images -> [0,1] -> (antialiased bilinear resize to size x size) -> [-1,1].
Split prepare_split(const ember::data::IdxImages& im, const ember::data::IdxLabels& lb,
                    int64_t size, int64_t limit) {
  Split s;
  s.n = limit > 0 ? std::min<int64_t>(limit, im.count) : im.count;
  const int64_t px = int64_t(size) * size;
  const size_t in_px = size_t(im.rows) * size_t(im.cols);
  s.x.resize(size_t(s.n * px));
  const int64_t chunk = 2000;
  for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
    const int64_t k = std::min(chunk, s.n - i0);
    std::vector<float> unit =
        ember::data::to_unit_float(im.pixels.data() + size_t(i0) * in_px, size_t(k) * in_px);
    if (size != im.rows || size != im.cols)
      unit = ember::data::resize_bilinear_antialias(unit.data(), k, im.rows, im.cols, int(size),
                                                    int(size));
    ember::data::unit_to_signed(unit.data(), unit.size());
    std::copy(unit.begin(), unit.end(), s.x.begin() + i0 * px);
  }
  s.y.resize(size_t(s.n));
  for (int64_t i = 0; i < s.n; ++i) {
    const uint8_t l = lb.labels[size_t(i)];
    if (l > 9)
      throw ember::data::DataError("ember::data: label " + std::to_string(int(l)) + " of image " +
                                   std::to_string(i) + " is not a FashionMNIST class (0..9)");
    s.y[size_t(i)] = float(l);
  }
  return s;
}

struct Data {
  Split train, test;
  double load_s = 0;
};

Data load_data(const std::string& dir, int64_t size, bool need_train, int64_t limit,
               int64_t test_limit) {
  auto t0 = Clock::now();
  ember::data::FashionMnist raw = ember::data::load_fashion_mnist(dir);
  if (raw.test_images.count < 1)
    throw ember::data::DataError("ember::data: " + dir + ": the test set holds no images; " +
                                 ember::data::data_help_text());
  Data d;
  if (need_train) d.train = prepare_split(raw.train_images, raw.train_labels, size, limit);
  d.test = prepare_split(raw.test_images, raw.test_labels, size, test_limit);
  d.load_s = seconds_since(t0);
  if (need_train)
    std::printf("data: %ld train / %ld test images from %s", long(d.train.n), long(d.test.n),
                dir.c_str());
  else
    std::printf("data: %ld test images from %s", long(d.test.n), dir.c_str());
  if (size != raw.train_images.rows)
    std::printf(", resized %dx%d -> %ldx%ld", raw.train_images.rows, raw.train_images.cols,
                long(size), long(size));
  std::printf(" (%.1f s)\n", d.load_s);
  return d;
}

/// One epoch's order: a seeded permutation (argsort of Philox uniforms).
std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t n) {
  ember::Generator g(derive_seed(seed, 1, uint64_t(epoch)));
  std::vector<float> keys = ember::rand({n}, g).to_vector();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
  return order;
}

// ---------------------------------------------------------------------------------------------
// scoring

struct Scores {
  double accuracy = 0, loss = 0;
  std::vector<int> pred;                        // per test image
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

int argmax10(const float* row) {
  int best = 0;
  for (int c = 1; c < 10; ++c)
    if (row[c] > row[best]) best = c;
  return best;
}

Scores evaluate(ember::models::FashionClassifier& model, const Split& ts, int64_t size) {
  model.eval();
  ember::NoGradGuard guard;
  const int64_t px = size * size;
  Scores s;
  s.pred.resize(size_t(ts.n));
  s.confusion.assign(10, std::vector<int64_t>(10, 0));
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t j = 0; j < ts.n; j += kEvalBatch) {
    const int64_t k = std::min(kEvalBatch, ts.n - j);
    std::vector<float> xb(ts.x.begin() + j * px, ts.x.begin() + (j + k) * px);
    std::vector<float> yb(ts.y.begin() + j, ts.y.begin() + j + k);
    Tensor logits = model.forward(ember::from_vector(xb, {k, 1, size, size}));
    loss_sum +=
        double(ember::cross_entropy(logits, ember::from_vector(yb, {k})).item()) * double(k);
    std::vector<float> lv = logits.to_vector();
    for (int64_t i = 0; i < k; ++i) {
      const int p = argmax10(lv.data() + i * 10), t = int(yb[size_t(i)]);
      s.pred[size_t(j + i)] = p;
      s.confusion[size_t(t)][size_t(p)] += 1;
      correct += p == t;
    }
  }
  model.train();
  s.accuracy = ts.n ? double(correct) / double(ts.n) : 0.0;
  s.loss = ts.n ? loss_sum / double(ts.n) : 0.0;
  return s;
}

std::vector<double> per_class_accuracy(const Scores& s) {
  std::vector<double> acc(10, 0.0);
  for (int t = 0; t < 10; ++t) {
    int64_t n = 0;
    for (int p = 0; p < 10; ++p) n += s.confusion[size_t(t)][size_t(p)];
    acc[size_t(t)] = n ? double(s.confusion[size_t(t)][size_t(t)]) / double(n) : 0.0;
  }
  return acc;
}

// ---------------------------------------------------------------------------------------------
// pictures

/// confusion.png: the 10x10 matrix (rows: true class, columns: predicted), each cell shaded by
/// its share of the row and labelled with its count.
void write_confusion_png(const std::string& path, const Scores& s, const std::string& title,
                         const std::string& subtitle) {
  namespace ex = ember_examples;
  const int cell = 56, left = 150, top = 110, right = 20, bottom = 20;
  const int w = left + 10 * cell + right, h = top + 10 * cell + bottom;
  ember::io::GrayImage img = ex::blank_image(w, h, 255);
  ex::draw_text(img, 10, 8, title, 2, 0);
  ex::draw_text(img, 10, 34, subtitle, 1, 0);
  ex::draw_text(img, left, top - 44, "predicted class ->", 1, 0);
  ex::draw_text(img, 4, top - 18, "true class", 1, 0);
  for (int t = 0; t < 10; ++t) {
    int64_t n = 0;
    for (int p = 0; p < 10; ++p) n += s.confusion[size_t(t)][size_t(p)];
    ex::draw_text(img, 4, top + t * cell + cell / 2 - 5, kFashionClasses[t], 1, 0);
    // Column headers: the class number and a short name.
    ex::draw_text_centered(img, left + t * cell + cell / 2, top - 26, std::to_string(t), 1, 0);
    static const char* const kShort[10] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal",  "Shirt",   "Sneaker",  "Bag",   "Boot"};
    const std::string shortname = kShort[t];
    ex::draw_text_centered(img, left + t * cell + cell / 2, top - 12, shortname, 1, 0);
    for (int p = 0; p < 10; ++p) {
      const int64_t c = s.confusion[size_t(t)][size_t(p)];
      const double share = n ? double(c) / double(n) : 0.0;
      // Share 0 -> white, 1 -> black; a gamma lifts the small off-diagonal shares.
      const uint8_t shade = uint8_t(std::lround(255.0 * (1.0 - std::pow(share, 0.5))));
      const int x0 = left + p * cell, y0 = top + t * cell;
      ex::fill_rect(img, x0, y0, cell, cell, shade);
      ex::draw_rect_outline(img, x0, y0, cell + 1, cell + 1, 160);
      ex::draw_text_centered(img, x0 + cell / 2, y0 + cell / 2, std::to_string(c), 1,
                             shade < 128 ? 255 : 0);
    }
  }
  ember::io::write_png_gray(path, img);
}

/// predictions.png: the first 32 test images, each with its predicted and true class; wrong
/// predictions get a thick frame and an "X".
void write_predictions_png(const std::string& path, const Split& ts, const Scores& s, int64_t size,
                           const std::string& title, const std::string& subtitle) {
  namespace ex = ember_examples;
  const int cols = 8, n = int(std::min<int64_t>(32, ts.n)), rows = (n + cols - 1) / cols;
  const int scale = size == 16 ? 5 : 3, tile = int(size) * scale;
  const int cw = 110, ch = tile + 44, top = 64;
  ember::io::GrayImage img = ex::blank_image(cols * cw + 10, top + rows * ch + 10, 255);
  ex::draw_text(img, 10, 8, title, 2, 0);
  ex::draw_text(img, 10, 36, subtitle, 1, 0);
  for (int i = 0; i < n; ++i) {
    const int cx = 10 + (i % cols) * cw, cy = top + (i / cols) * ch;
    const int ix = cx + (cw - 10 - tile) / 2;
    const float* src = ts.x.data() + int64_t(i) * size * size;
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const float v = std::clamp((src[y * size + x] + 1.0f) * 0.5f, 0.0f, 1.0f);
        // FashionMNIST is light-on-dark; drawn dark-on-light like a print.
        ex::fill_rect(img, ix + x * scale, cy + y * scale, scale, scale,
                      uint8_t(std::lround(255.0f * (1.0f - v))));
      }
    const int p = s.pred[size_t(i)], t = int(ts.y[size_t(i)]);
    if (p != t) {
      for (int k = 0; k < 3; ++k)
        ex::draw_rect_outline(img, ix - 3 + k, cy - 3 + k, tile + 6 - 2 * k, tile + 6 - 2 * k, 0);
      ex::draw_text(img, ix + tile + 4, cy, "X", 2, 0);
    }
    ex::draw_text(img, cx, cy + tile + 6, std::string("P:") + kFashionClasses[p], 1, 0);
    ex::draw_text(img, cx, cy + tile + 20, std::string("T:") + kFashionClasses[t], 1,
                  p == t ? 110 : 0);
  }
  ember::io::write_png_gray(path, img);
}

void draw_pictures(const std::string& out, const Split& ts, const Scores& s, int64_t size,
                   const std::string& what) {
  char title[200];
  std::snprintf(title, sizeof title, "fashion-classify %ldx%ld: %.2f%% test accuracy", long(size),
                long(size), 100.0 * s.accuracy);
  int wrong = 0;
  const int n = int(std::min<int64_t>(32, ts.n));
  for (int i = 0; i < n; ++i) wrong += s.pred[size_t(i)] != int(ts.y[size_t(i)]);
  char sub[300];
  std::snprintf(sub, sizeof sub, "%s; first %d test images, P: predicted, T: true; %d wrong (X)",
                what.c_str(), n, wrong);
  write_predictions_png(join(out, kPredictionsPng), ts, s, size, title, sub);
  std::snprintf(sub, sizeof sub, "%s; %ld test images; rows: true class, columns: predicted",
                what.c_str(), long(ts.n));
  write_confusion_png(join(out, kConfusionPng), s, title, sub);
}

// ---------------------------------------------------------------------------------------------
// run state

struct EpochRecord {
  int64_t epoch = 0;
  double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0, lr_end = 0, train_s = 0,
         eval_s = 0;
};

std::string encode_history(const std::vector<EpochRecord>& h) {
  std::ostringstream os;
  char buf[400];
  for (const EpochRecord& r : h) {
    std::snprintf(buf, sizeof buf, "%ld,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g;", long(r.epoch),
                  r.train_loss, r.train_acc, r.test_loss, r.test_acc, r.lr_end, r.train_s,
                  r.eval_s);
    os << buf;
  }
  return os.str();
}

std::vector<EpochRecord> decode_history(const std::string& s) {
  std::vector<EpochRecord> h;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ';')) {
    EpochRecord r;
    long e = 0;
    if (std::sscanf(item.c_str(), "%ld,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &e, &r.train_loss,
                    &r.train_acc, &r.test_loss, &r.test_acc, &r.lr_end, &r.train_s,
                    &r.eval_s) == 8) {
      r.epoch = e;
      h.push_back(r);
    }
  }
  return h;
}

void write_train_csv(const std::string& path, const std::vector<EpochRecord>& h) {
  std::string text = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,lr,train_s,eval_s\n";
  char buf[300];
  for (const EpochRecord& r : h) {
    std::snprintf(buf, sizeof buf, "%ld,%.6f,%.6f,%.6f,%.6f,%.6g,%.2f,%.2f\n", long(r.epoch),
                  r.train_loss, r.train_acc, r.test_loss, r.test_acc, r.lr_end, r.train_s,
                  r.eval_s);
    text += buf;
  }
  ember::io::write_file_atomic(path, text);
}

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key,
                 const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end())
    throw ember::Error("checkpoint '" + path + "' has no '" + key +
                       "' entry (not written by fashion-classify?)");
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || errno == ERANGE || v < 0)
    throw ember::Error("checkpoint '" + path + "': bad '" + key + "' entry '" + it->second + "'");
  return v;
}

double meta_double(const std::map<std::string, std::string>& meta, const std::string& key,
                   const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end())
    throw ember::Error("checkpoint '" + path + "' has no '" + key +
                       "' entry (not written by fashion-classify?)");
  return std::strtod(it->second.c_str(), nullptr);
}

void check_arch(const std::map<std::string, std::string>& meta, const std::string& path) {
  auto it = meta.find("arch");
  if (it == meta.end() || it->second != kArch)
    throw ember::Error("checkpoint '" + path + "' holds architecture '" +
                       (it == meta.end() ? std::string("(none)") : it->second) + "', expected '" +
                       kArch + "'");
}

Json confusion_json(const Scores& s) {
  Json m = Json::array();
  for (const auto& row : s.confusion) m.push_back(row);
  return m;
}

Json per_class_json(const Scores& s) {
  Json j = Json::object();
  std::vector<double> acc = per_class_accuracy(s);
  for (int c = 0; c < 10; ++c) j[kFashionClasses[c]] = acc[size_t(c)];
  return j;
}

// ---------------------------------------------------------------------------------------------
// progress display

class Progress {
 public:
  Progress(int64_t total_steps, int64_t batch, int64_t log_every)
      : tty_(::isatty(STDOUT_FILENO) == 1),
        total_(total_steps),
        batch_(batch),
        log_every_(log_every) {}
  void start(int64_t step) {
    t0_ = Clock::now();
    last_print_ = t0_;
    first_step_ = step;
  }
  bool tty() const { return tty_; }
  bool due(int64_t step) const {
    if (step >= total_) return true;
    if (tty_) return std::chrono::duration<double>(Clock::now() - last_print_).count() >= 0.25;
    return step % log_every_ == 0;
  }
  void show(int64_t step, int64_t epoch, int64_t epochs, double loss, double acc) {
    last_print_ = Clock::now();
    const double el = seconds_since(t0_);
    const int64_t done = step - first_step_;
    const double ips = el > 0 ? double(done * batch_) / el : 0.0;
    const double eta = done > 0 ? el / double(done) * double(total_ - step) : -1.0;
    if (tty_) {
      const int width = 24;
      int filled = total_ > 0 ? int(double(width) * double(step) / double(total_)) : width;
      std::string bar(size_t(filled), '=');
      if (filled < width) bar += '>';
      bar.resize(size_t(width), ' ');
      std::printf("\r\033[Kepoch %ld/%ld [%s] %ld/%ld loss %.4f acc %.1f%% %.0f img/s ETA %s",
                  long(epoch), long(epochs), bar.c_str(), long(step), long(total_), loss,
                  100.0 * acc, ips, duration_text(eta).c_str());
    } else {
      std::printf("step %ld/%ld (epoch %ld) loss %.4f, train acc %.1f%%, %.0f img/s, ETA %s\n",
                  long(step), long(total_), long(epoch), loss, 100.0 * acc, ips,
                  duration_text(eta).c_str());
    }
    std::fflush(stdout);
  }
  void end_line() {
    if (tty_) std::printf("\r\033[K");
  }

 private:
  bool tty_;
  int64_t total_, batch_, log_every_;
  int64_t first_step_ = 0;
  Clock::time_point t0_, last_print_;
};

// ---------------------------------------------------------------------------------------------
// the program

std::string cpu_text() {
  return "cpu (" + std::to_string(ember::cpu::num_threads()) + " threads)";
}

void save_model_safetensors(const std::string& path, const ember::models::FashionClassifier& m,
                            double dropout, double accuracy) {
  ember::io::save_safetensors(
      path, m,
      {{"arch", kArch},
       {"img_size", std::to_string(m.img_size())},
       {"dropout", std::to_string(dropout)},
       {"input", "[N,1,img_size,img_size] float32 in [-1,1] (pixel/255*2-1)"},
       {"classes", "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"},
       {"test_accuracy", std::to_string(accuracy)}});
}

int run_eval(const Options& o) {
  auto t_start = Clock::now();
  const std::string data_dir = ember::data::default_data_dir(o.data);
  prepare_out_dir(o.out);
  int64_t size = 0;
  double dropout = 0.25;
  std::unique_ptr<ember::models::FashionClassifier> model;
  std::string step_text;
  const bool st = o.eval.size() > 12 && o.eval.compare(o.eval.size() - 12, 12, ".safetensors") == 0;
  if (st) {
    ember::io::SafetensorsFile f = ember::io::load_safetensors(o.eval);
    auto it = f.metadata.find("img_size");
    if (it == f.metadata.end() || f.metadata["arch"] != kArch)
      throw ember::Error("'" + o.eval + "' is not a fashion-classify model (no arch '" + kArch +
                         "' / img_size in its metadata)");
    size = std::strtoll(it->second.c_str(), nullptr, 10);
    if (size != 28 && size != 16)
      throw ember::Error("'" + o.eval + "': img_size " + it->second + " is not 28 or 16");
    model = std::make_unique<ember::models::FashionClassifier>(int(size), dropout);
    ember::io::load_safetensors(f, *model, o.eval);
    step_text = "final model";
  } else {
    std::map<std::string, std::string> meta = checkpoint_meta(o.eval);
    check_arch(meta, o.eval);
    size = meta_int(meta, "size", o.eval);
    if (size != 28 && size != 16)
      throw ember::Error("checkpoint '" + o.eval + "': size " + meta["size"] + " is not 28 or 16");
    dropout = meta_double(meta, "dropout", o.eval);
    model = std::make_unique<ember::models::FashionClassifier>(int(size), dropout);
    ember::io::load_checkpoint(o.eval, *model, nullptr, &meta);
    step_text = "after epoch " + meta["epoch"];
  }
  std::printf("fashion-classify: evaluating %s (%ldx%ld, %s), %ld parameters, %s\n", o.eval.c_str(),
              long(size), long(size), step_text.c_str(), long(model->num_parameters()),
              cpu_text().c_str());
  Data d = load_data(data_dir, size, false, 0, o.test_limit);
  auto t0 = Clock::now();
  Scores s = evaluate(*model, d.test, size);
  const Json ref = reference_for(size);
  std::printf("eval: test accuracy %.2f%% (loss %.4f) on %ld test images, %.1f s\n",
              100.0 * s.accuracy, s.loss, long(d.test.n), seconds_since(t0));
  std::printf("%s\n", reference_text(ref).c_str());
  draw_pictures(o.out, d.test, s, size, "eval of " + o.eval);
  Json js;
  js["program"] = "fashion-classify";
  js["mode"] = "eval";
  js["model"] = o.eval;
  js["size"] = size;
  js["test_images"] = d.test.n;
  js["test_accuracy"] = s.accuracy;
  js["test_loss"] = s.loss;
  js["per_class_accuracy"] = per_class_json(s);
  js["confusion_matrix"] = confusion_json(s);
  js["pytorch_reference"] = ref;
  write_json(join(o.out, kEvalSummary), js);
  std::printf("wrote %s, %s and %s in %s (%.1f s total)\n", kEvalSummary, kPredictionsPng,
              kConfusionPng, o.out.c_str(), seconds_since(t_start));
  return 0;
}

int run_train(Options o) {
  auto t_start = Clock::now();
  const std::string data_dir = ember::data::default_data_dir(o.data);
  prepare_out_dir(o.out);
  const ember_examples::NanInjection nan_hook;  // test hook, off unless EMBER_EXAMPLE_INJECT_NAN

  std::map<std::string, std::string> meta;
  int64_t start_epoch = 0;
  std::vector<EpochRecord> history;
  if (!o.resume.empty()) {
    // Settings come from the checkpoint (a different recipe would not continue the same run).
    meta = checkpoint_meta(o.resume);
    check_arch(meta, o.resume);
    o.size = meta_int(meta, "size", o.resume);
    o.batch = meta_int(meta, "batch", o.resume);
    o.seed = uint64_t(meta_int(meta, "seed", o.resume));
    o.limit = meta_int(meta, "limit", o.resume);
    o.lr = meta_double(meta, "lr", o.resume);
    o.weight_decay = meta_double(meta, "weight_decay", o.resume);
    o.dropout = meta_double(meta, "dropout", o.resume);
    const int64_t ck_epochs = meta_int(meta, "epochs", o.resume);
    if (!o.epochs_set) o.epochs = ck_epochs;
    if (o.epochs != ck_epochs)
      throw ember::Error("checkpoint '" + o.resume + "' belongs to a run of --epochs " +
                         std::to_string(ck_epochs) +
                         " (the cosine schedule depends on it); resume with the same --epochs");
    start_epoch = meta_int(meta, "epoch", o.resume);
  }

  ember::Generator dropout_gen(derive_seed(o.seed, 2, 0));
  ember::manual_seed(derive_seed(o.seed, 0, 0));
  auto model =
      std::make_shared<ember::models::FashionClassifier>(int(o.size), o.dropout, &dropout_gen);
  const int64_t nparams = model->num_parameters();
  std::printf("fashion-classify: %ldx%ld CNN with %ld parameters, %s\n", long(o.size), long(o.size),
              long(nparams), cpu_text().c_str());
  std::fflush(stdout);
  model->train();
  ember::optim::AdamW opt(model->parameters(),
                          ember::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  if (!o.resume.empty()) {
    ember::io::load_checkpoint(o.resume, *model, &opt, &meta);
    dropout_gen.set_offset(uint64_t(meta_int(meta, "dropout_offset", o.resume)));
    history = decode_history(meta.count("history") ? meta["history"] : std::string());
    std::printf("resuming from %s after epoch %ld of %ld\n", o.resume.c_str(), long(start_epoch),
                long(o.epochs));
  }

  Data d = load_data(data_dir, o.size, true, o.limit, o.test_limit);
  const int64_t n_train = d.train.n, px = o.size * o.size;
  if (n_train < o.batch)
    throw ember::data::DataError("ember::data: " + data_dir + ": " + std::to_string(n_train) +
                                 " training images, fewer than one batch of " +
                                 std::to_string(o.batch));
  const int64_t spe = n_train / o.batch, total = o.epochs * spe;
  int64_t step = start_epoch * spe;

  // The cosine schedule over all steps, advanced to where the run stands (PyTorch's recursive
  // form, step by step, as an uninterrupted run computed it).
  opt.set_lr(o.lr);
  ember::optim::CosineAnnealingLR sched(opt, total);
  for (int64_t i = 0; i < step; ++i) sched.step();

  const Json ref = reference_for(o.size);
  std::printf(
      "training: %ld epochs x %ld steps (batch %ld, AdamW lr %g cosine, weight decay %g, "
      "dropout %g, seed %lu)\n",
      long(o.epochs), long(spe), long(o.batch), o.lr, o.weight_decay, o.dropout,
      (unsigned long)o.seed);
  std::fflush(stdout);

  const std::string ckpt_path = join(o.out, kCheckpoint);
  double train_s_total = 0, eval_s_total = 0;
  for (const EpochRecord& r : history) {
    train_s_total += r.train_s;
    eval_s_total += r.eval_s;
  }
  Scores last;
  bool have_last = false;

  auto save = [&](int64_t epoch) {
    std::map<std::string, std::string> m{
        {"arch", kArch},
        {"program", "fashion-classify"},
        {"size", std::to_string(o.size)},
        {"epoch", std::to_string(epoch)},
        {"epochs", std::to_string(o.epochs)},
        {"seed", std::to_string(o.seed)},
        {"batch", std::to_string(o.batch)},
        {"limit", std::to_string(o.limit)},
        {"lr", std::to_string(o.lr)},
        {"weight_decay", std::to_string(o.weight_decay)},
        {"dropout", std::to_string(o.dropout)},
        {"dropout_offset", std::to_string(dropout_gen.offset())},
        {"history", encode_history(history)},
    };
    // Rates as %.17g: --resume continues with exactly the same values.
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", o.lr);
    m["lr"] = buf;
    std::snprintf(buf, sizeof buf, "%.17g", o.weight_decay);
    m["weight_decay"] = buf;
    std::snprintf(buf, sizeof buf, "%.17g", o.dropout);
    m["dropout"] = buf;
    ember::io::save_checkpoint(ckpt_path, *model, &opt, m);
  };

  auto write_summary = [&](bool finished) {
    Json js;
    js["program"] = "fashion-classify";
    js["finished"] = finished;
    Json& set = js["settings"];
    set["size"] = o.size;
    set["epochs"] = o.epochs;
    set["batch"] = o.batch;
    set["lr"] = o.lr;
    set["weight_decay"] = o.weight_decay;
    set["dropout"] = o.dropout;
    set["seed"] = o.seed;
    set["limit"] = o.limit;
    set["schedule"] = "CosineAnnealingLR per step, T_max = all steps, eta_min 0";
    set["optimizer"] = "AdamW betas (0.9, 0.999) eps 1e-8";
    set["data"] = data_dir;
    set["out"] = o.out;
    set["resumed_from"] = o.resume.empty() ? Json(nullptr) : Json(o.resume);
    js["device"] = cpu_text();
    js["parameters"] = nparams;
    js["train_images"] = n_train;
    js["test_images"] = d.test.n;
    js["steps_per_epoch"] = spe;
    js["epochs_done"] = history.empty() ? 0 : history.back().epoch;
    Json& t = js["timings"];
    t["total_s"] = seconds_since(t_start);
    t["data_load_s"] = d.load_s;
    t["train_s"] = train_s_total;
    t["eval_s"] = eval_s_total;
    t["images_per_s"] =
        train_s_total > 0 ? double(int64_t(history.size()) * spe * o.batch) / train_s_total : 0.0;
    js["epochs"] = Json::array();
    for (const EpochRecord& r : history)
      js["epochs"].push_back(Json{{"epoch", r.epoch},
                                  {"train_loss", r.train_loss},
                                  {"train_accuracy", r.train_acc},
                                  {"test_loss", r.test_loss},
                                  {"test_accuracy", r.test_acc},
                                  {"lr_end", r.lr_end},
                                  {"train_s", r.train_s},
                                  {"eval_s", r.eval_s}});
    if (have_last) {
      js["test_accuracy"] = last.accuracy;
      js["test_loss"] = last.loss;
      js["per_class_accuracy"] = per_class_json(last);
      js["confusion_matrix"] = confusion_json(last);
    } else {
      js["test_accuracy"] = history.empty() ? Json(nullptr) : Json(history.back().test_acc);
    }
    js["pytorch_reference"] = ref;
    js["model_file"] = kModel;
    write_json(join(o.out, kSummary), js);
  };

  Progress progress(total, o.batch, o.log_every);
  progress.start(step);
  if (step >= total)
    std::printf("checkpoint is already at epoch %ld of %ld: nothing to train\n", long(start_epoch),
                long(o.epochs));
  ember_examples::install_stop_handlers();
  std::vector<float> xb, yb;
  try {
    const int64_t end_epoch = o.stop_after > 0 ? std::min(o.stop_after, o.epochs) : o.epochs;
    for (int64_t e = start_epoch; e < end_epoch; ++e) {
      std::vector<int64_t> order = epoch_order(o.seed, e, n_train);
      model->train();
      auto t0 = Clock::now();
      double loss_sum = 0, recent_loss = 0;
      int64_t correct = 0, recent_correct = 0, recent_n = 0;
      for (int64_t b = 0; b < spe; ++b) {
        if (ember_examples::stop_signal() != 0) break;
        xb.resize(size_t(o.batch * px));
        yb.resize(size_t(o.batch));
        for (int64_t i = 0; i < o.batch; ++i) {
          const int64_t src = order[size_t(b * o.batch + i)];
          std::copy(d.train.x.begin() + src * px, d.train.x.begin() + (src + 1) * px,
                    xb.begin() + i * px);
          yb[size_t(i)] = d.train.y[size_t(src)];
        }
        Tensor x = ember::from_vector(xb, {o.batch, 1, o.size, o.size});
        Tensor y = ember::from_vector(yb, {o.batch});
        Tensor logits = model->forward(x);
        Tensor loss = nan_hook.loss(step + 1, ember::cross_entropy(logits, y));
        opt.zero_grad();
        loss.backward();
        nan_hook.gradients(step + 1, model->parameters());
        const float lv = loss.item();
        ember_examples::check_step_finite(step + 1, lv, 0.0f);
        opt.step();
        sched.step();
        ++step;
        std::vector<float> l = logits.detach().to_vector();
        int64_t c = 0;
        for (int64_t i = 0; i < o.batch; ++i)
          c += argmax10(l.data() + i * 10) == int(yb[size_t(i)]);
        correct += c;
        loss_sum += lv;
        recent_loss += lv;
        recent_correct += c;
        recent_n += 1;
        if (progress.due(step)) {
          progress.show(step, e + 1, o.epochs, recent_loss / double(recent_n),
                        double(recent_correct) / double(recent_n * o.batch));
          recent_loss = 0;
          recent_correct = 0;
          recent_n = 0;
        }
      }
      const double train_s = seconds_since(t0);
      progress.end_line();
      if (ember_examples::stop_signal() != 0) {
        std::printf("stopped by %s in epoch %ld: %s\n", ember_examples::stop_signal_name(),
                    long(e + 1),
                    e > start_epoch || !o.resume.empty()
                        ? ("the checkpoint " + ckpt_path +
                           " holds the last finished epoch; "
                           "continue with --resume " +
                           ckpt_path + " --epochs " + std::to_string(o.epochs))
                              .c_str()
                        : "no epoch finished, nothing saved");
        std::fflush(stdout);
        return ember_examples::stop_exit_code();
      }
      train_s_total += train_s;
      auto t1 = Clock::now();
      last = evaluate(*model, d.test, o.size);
      have_last = true;
      const double eval_s = seconds_since(t1);
      eval_s_total += eval_s;
      EpochRecord r;
      r.epoch = e + 1;
      r.train_loss = loss_sum / double(spe);
      r.train_acc = double(correct) / double(spe * o.batch);
      r.test_loss = last.loss;
      r.test_acc = last.accuracy;
      r.lr_end = opt.lr();
      r.train_s = train_s;
      r.eval_s = eval_s;
      history.push_back(r);
      std::printf(
          "epoch %ld/%ld: train loss %.4f (acc %.2f%%), test loss %.4f, test accuracy "
          "%.2f%%, %.1f s + %.1f s scoring\n",
          long(e + 1), long(o.epochs), r.train_loss, 100.0 * r.train_acc, r.test_loss,
          100.0 * r.test_acc, train_s, eval_s);
      std::fflush(stdout);
      write_train_csv(join(o.out, kTrainCsv), history);
      save(e + 1);
      write_summary(false);
    }
  } catch (const ember_examples::NonFiniteError& err) {
    progress.end_line();
    throw ember::Error(std::string(err.what()) + "; training stopped (lr " + std::to_string(o.lr) +
                       "; a smaller --lr may help). The checkpoint " + ckpt_path +
                       " holds the last finished epoch, if any.");
  }

  if (o.stop_after > 0 && o.stop_after < o.epochs) {
    std::printf(
        "stopped after epoch %ld of %ld (--stop-after); continue with: fashion-classify "
        "--resume %s --epochs %ld --out %s\n",
        long(history.empty() ? 0 : history.back().epoch), long(o.epochs), ckpt_path.c_str(),
        long(o.epochs), o.out.c_str());
    return 0;
  }
  if (!have_last) {  // nothing trained in this run: score what the checkpoint holds
    last = evaluate(*model, d.test, o.size);
    have_last = true;
  }
  const int64_t epochs_done = history.empty() ? 0 : history.back().epoch;
  draw_pictures(
      o.out, d.test, last, o.size,
      "after " + std::to_string(epochs_done) + " epochs (seed " + std::to_string(o.seed) + ")");
  save_model_safetensors(join(o.out, kModel), *model, o.dropout, last.accuracy);
  write_train_csv(join(o.out, kTrainCsv), history);
  write_summary(true);
  std::vector<double> pc = per_class_accuracy(last);
  std::printf("per class:");
  for (int c = 0; c < 10; ++c)
    std::printf(" %s %.1f%%%s", kFashionClasses[c], 100.0 * pc[size_t(c)], c < 9 ? "," : "\n");
  std::printf("test accuracy %.2f%% (%ldx%ld, %ld epochs); %s\n", 100.0 * last.accuracy,
              long(o.size), long(o.size), long(epochs_done), reference_text(ref).c_str());
  std::printf(
      "done: %.1f s total (%.1f s training, %.0f images/s); results in %s\n",
      seconds_since(t_start), train_s_total,
      train_s_total > 0 ? double(int64_t(history.size()) * spe * o.batch) / train_s_total : 0.0,
      o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"", "fashion-classify"};
  describe_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "fashion-classify: %s\n\n%s", e.what(), app.help().c_str());
    return 2;
  }
  o.epochs_set = app.count("--epochs") > 0;
  // The two sizes' runs do not overwrite each other's results by default.
  if (app.count("--out") == 0 && o.size == 16) o.out = "fashion-classify-out-16";
  try {
    if (o.threads > 0) ember::set_num_threads(int(o.threads));
    return o.eval.empty() ? run_train(o) : run_eval(o);
  } catch (const ember::data::DataError& e) {
    if (::isatty(STDOUT_FILENO) == 1) std::printf("\n");
    std::fflush(stdout);
    std::fprintf(stderr, "fashion-classify: %s\n", e.what());
  } catch (const std::exception& e) {
    if (::isatty(STDOUT_FILENO) == 1) std::printf("\n");
    std::fflush(stdout);
    std::fprintf(stderr, "fashion-classify: error: %s\n", e.what());
  }
  return 1;
}
