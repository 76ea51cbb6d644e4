// @file examples/fashion_denoise/main.cpp
// @brief fashion-denoise: trains the seed's 16x16 U-Net to remove Gaussian noise from
//        FashionMNIST images, scores it on the test set and draws what it does.
//
// The recipe is the seed's (benchmarks/torch_reference.py is it in PyTorch): images uint8 ->
// /255 -> antialiased bilinear resize 28->16 -> x2-1; each epoch a seeded reshuffle and random
// horizontal flips; noisy = 0.5 x + 0.5 N(0,1); loss = mse(model(noisy), x); Adam lr 1e-4, batch 128.
// After each epoch the test MSE is measured with fixed noise. Everything random comes from
// Philox generators derived from --seed, so a run is reproducible and --resume continues it
// exactly (the noise stream's position is stored in the checkpoint).
//
// Built alone this is the CPU program (fashion-denoise); linked with the compiled CUDA backend
// ember::cuda (src/cuda_backend.cu) the same file is fashion-denoise-cuda. The command line is
// CLI11's, summary.json is written with nlohmann-json (cmake/ember_example_deps.cmake finds both).
#include <ember/data/idx.hpp>
#include <ember/data/transforms.hpp>
#include <ember/ember.hpp>
#include <ember/io/checkpoint.hpp>
#include <ember/io/png.hpp>
#include <ember/models/unet.hpp>

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
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../common/draw.hpp"
#include "../common/training_guard.hpp"
#include "export.hpp"
#include "layout.hpp"

namespace {

namespace fd = fashion_denoise;
using ember::Device;
using ember::Tensor;
using Clock = std::chrono::steady_clock;

constexpr int S = fd::kImageSize;
constexpr int64_t kPixels = int64_t(S) * S;
constexpr int64_t kEvalBatch = 1000;
constexpr uint64_t kTestNoiseSeed = 1;  // fixed, whatever --seed is: scores stay comparable

const char* kAbout =
    "Trains the seed's 16x16 U-Net (234,977 parameters) to denoise FashionMNIST images\n"
    "(noisy = 0.5 x + 0.5 N(0,1), loss = MSE to the clean image, Adam), scores it on the\n"
    "test set with fixed noise after every epoch and writes its results to --out.";

const char* kFooter =
    "writes to --out: denoise_grid.png (original / noisy / denoised test images),\n"
    "from_noise.png (pure noise / model output), loss.png (loss curve), loss.csv,\n"
    "summary.json, checkpoint.bin (see README.md)\n"
    "Ctrl-C (SIGINT) or SIGTERM: writes a checkpoint after the current step and exits; resume\n"
    "with --resume. Training stops at the first non-finite loss or gradient, keeping the last\n"
    "good checkpoint.\n"
    "exit status: 0 success, 1 runtime error (data, checkpoint, device, files, non-finite\n"
    "loss), 2 bad usage, 130/143 stopped by SIGINT/SIGTERM (checkpoint written)";

// ---------------------------------------------------------------------------------------------
// command line (CLI11)

struct Options {
  std::string device = "auto";
  std::string data;
  int64_t epochs = 2;
  int64_t batch = 128;
  bool batch_set = false;
  double lr = 1e-4;
  bool lr_set = false;
  uint64_t seed = 0;
  bool seed_set = false;
  int64_t max_steps = 0;  // 0: no limit
  std::string out = "fashion-denoise-out";
  bool train_on_all = false;
  std::string resume, eval;
  std::string export_st;  // --export-safetensors
  int64_t log_every = 100;
  int64_t test_limit = 0;  // 0: the whole test set
  int64_t checkpoint_every = 200;  // 0: only after each epoch
};

bool all_digits(const std::string& v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Checks run on the text before CLI11 converts it: plain decimal integers only (CLI11 alone
// would also take "0x10", "010" as octal, or "-1" for an unsigned flag).
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

CLI::Validator positive_below_1000() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        errno = 0;
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (!v.empty() && *end == '\0' && errno != ERANGE && x > 0 && x < 1e3) return "";
        return "needs a positive number below 1000, got '" + v + "'";
      },
      "");
}

CLI::Validator one_of(std::vector<std::string> names) {
  return CLI::Validator(
      [names](std::string& v) -> std::string {
        if (std::find(names.begin(), names.end(), v) != names.end()) return "";
        std::string list;
        for (size_t i = 0; i < names.size(); ++i)
          list += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
        return "must be " + list + ", got '" + v + "'";
      },
      "");
}

// A file or directory name: not empty, and not the next option ("--out --epochs 3" forgot the
// value of --out; CLI11 would take "--epochs" as the directory name).
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

// The command line: every option, its value's name in the help (DIR, N, ...) and its check.
// Fills `o` when the program is run.
void describe_options(CLI::App& app, Options& o) {
  app.description(kAbout);
  app.footer(kFooter);
  app.get_formatter()->column_width(26);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "show this message");
  app.add_option("--device", o.device, "where to run (default auto: CUDA when a GPU is usable)")
      ->type_name("cpu|cuda|auto")
      ->check(one_of({"cpu", "cuda", "auto"}));
  app.add_option("--data", o.data,
                 "FashionMNIST directory (default $EMBER_DATA, else\n"
                 "/usr/share/datasets/fashion-mnist)")
      ->type_name("DIR")
      ->check(path_value("a directory"));
  app.add_option("--epochs", o.epochs, "epochs to train (default 2)")
      ->type_name("N")
      ->check(integer_in(1, 100000));
  app.add_option("--batch", o.batch, "batch size (default 128; the last partial batch is dropped)")
      ->type_name("N")
      ->check(integer_in(1, 65536));
  app.add_option("--lr", o.lr, "Adam learning rate (default 1e-4)")
      ->type_name("X")
      ->check(positive_below_1000());
  app.add_option("--seed", o.seed, "seed for initialisation, shuffling, flips and noise (default 0)")
      ->type_name("N")
      ->check(non_negative_u64());
  app.add_option("--max-steps", o.max_steps,
                 "stop after global step N, counted from the start (default: none)")
      ->type_name("N")
      ->check(integer_in(1, int64_t(1) << 40));
  app.add_option("--out", o.out, "output directory, created if missing (default fashion-denoise-out)")
      ->type_name("DIR")
      ->check(path_value("a directory"));
  app.add_flag("--train-on-all", o.train_on_all,
               "train on train+test, 70k images (the seed notebook's way)");
  CLI::Option* resume =
      app.add_option("--resume", o.resume,
                     "continue training from a checkpoint up to --epochs/--max-steps")
          ->type_name("CKPT")
          ->check(path_value("a checkpoint file"));
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "also write the checkpoint every N steps, not only after each\n"
                 "epoch (default 200; 0: only after each epoch)")
      ->type_name("N")
      ->check(integer_in(0, int64_t(1) << 40));
  app.add_option("--eval", o.eval, "only score a checkpoint (test MSE) and draw the PNGs")
      ->type_name("CKPT")
      ->check(path_value("a checkpoint file"))
      ->excludes(resume);
  app.add_option("--test-limit", o.test_limit,
                 "score only the first N test images (default: all 10,000; for\n"
                 "quick checks, e.g. the CUDA build under the host emulation)")
      ->type_name("N")
      ->check(integer_in(1, int64_t(1) << 40));
  app.add_option("--export-safetensors", o.export_st,
                 "also write the final model to F (.safetensors, PyTorch names)\n"
                 "and its test inputs to F's .testset.safetensors")
      ->type_name("F")
      ->check(path_value("a file name"));
  app.add_option("--log-every", o.log_every,
                 "when stdout is not a terminal, print progress every N steps\n(default 100)")
      ->type_name("N")
      ->check(integer_in(1, int64_t(1) << 40));
}

// ---------------------------------------------------------------------------------------------
// small utilities

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
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

/// A number as the checkpoint's history stores it ("null" when not finite).
std::string history_number(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt("%.8g", v);
}

// ---------------------------------------------------------------------------------------------
// data

/// uint8 images -> [0,1] -> antialiased bilinear resize to 16x16 -> [-1,1], N*256 floats.
std::vector<float> prepare_images(const ember::data::IdxImages& im) {
  std::vector<float> out(size_t(im.count) * size_t(kPixels));
  const size_t px = size_t(im.rows) * size_t(im.cols);
  const int64_t chunk = 2000;
  for (int64_t i0 = 0; i0 < im.count; i0 += chunk) {
    const int64_t k = std::min(chunk, im.count - i0);
    std::vector<float> unit =
        ember::data::to_unit_float(im.pixels.data() + size_t(i0) * px, size_t(k) * px);
    std::vector<float> small =
        ember::data::resize_bilinear_antialias(unit.data(), k, im.rows, im.cols, S, S);
    ember::data::unit_to_signed(small.data(), small.size());
    std::copy(small.begin(), small.end(), out.begin() + i0 * kPixels);
  }
  return out;
}

/// One epoch's order and flips: a seeded permutation (argsort of Philox uniforms) and, for
/// each position, whether that image is mirrored (p = 0.5).
struct EpochPlan {
  std::vector<int64_t> order;
  std::vector<uint8_t> flip;
};

EpochPlan plan_epoch(uint64_t seed, int64_t epoch, int64_t n) {
  ember::Generator g(derive_seed(seed, 1, uint64_t(epoch)));
  std::vector<float> keys = ember::rand({n}, g).to_vector();
  std::vector<float> coins = ember::rand({n}, g).to_vector();
  EpochPlan p;
  p.order.resize(size_t(n));
  std::iota(p.order.begin(), p.order.end(), int64_t(0));
  std::stable_sort(p.order.begin(), p.order.end(),
                   [&](int64_t a, int64_t b) { return keys[size_t(a)] < keys[size_t(b)]; });
  p.flip.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) p.flip[size_t(i)] = coins[size_t(i)] < 0.5f ? 1 : 0;
  return p;
}

void gather_batch(const std::vector<float>& images, const EpochPlan& plan, int64_t first,
                  int64_t count, std::vector<float>& out) {
  out.resize(size_t(count * kPixels));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t src = plan.order[size_t(first + i)];
    float* dst = out.data() + i * kPixels;
    std::copy(images.begin() + src * kPixels, images.begin() + (src + 1) * kPixels, dst);
    if (plan.flip[size_t(first + i)]) ember::data::hflip(dst, S, S);
  }
}

/// Rows [first, first+count) of an [N, 1, 16, 16] tensor, as a view sharing its storage.
Tensor rows_of(const Tensor& t, int64_t first, int64_t count) {
  auto impl = std::make_shared<ember::TensorImpl>();
  impl->storage = t.storage();
  impl->offset = t.impl().offset + first * kPixels;
  impl->shape = {count, 1, S, S};
  return Tensor(impl);
}

/// The test images and their fixed noise, on the run's device.
struct TestSet {
  Tensor x, noise;
  int64_t n = 0;
};

TestSet make_test_set(const std::vector<float>& images, Device dev) {
  TestSet t;
  t.n = int64_t(images.size()) / kPixels;
  t.x = ember::from_vector(images, {t.n, 1, S, S}, dev);
  ember::Generator g(kTestNoiseSeed);
  t.noise = ember::randn({t.n, 1, S, S}, g, dev);
  return t;
}

struct Scores {
  double test_mse = 0, noisy_mse = 0;
};

Scores evaluate(ember::models::UNet& model, const TestSet& ts) {
  model.eval();
  ember::NoGradGuard guard;
  double se = 0, se_noisy = 0;
  for (int64_t j = 0; j < ts.n; j += kEvalBatch) {
    const int64_t k = std::min(kEvalBatch, ts.n - j);
    Tensor x = rows_of(ts.x, j, k), nz = rows_of(ts.noise, j, k);
    Tensor noisy = x * 0.5f + nz * 0.5f;
    Tensor out = model.forward(noisy);
    se += double(ember::mse_loss(out, x).item()) * double(k * kPixels);
    se_noisy += double(ember::mse_loss(noisy, x).item()) * double(k * kPixels);
  }
  model.train();
  const double total = double(ts.n * kPixels);
  return {se / total, se_noisy / total};
}

/// The tiles of `rows` rows, with a label left of each row and a two-line title above.
ember::io::GrayImage labelled_grid(const std::vector<const float*>& tiles,
                                   const std::vector<std::string>& row_labels,
                                   const std::string& title, const std::string& subtitle) {
  namespace ex = ember_examples;
  ember::io::GrayImage grid = ember::io::make_grid(tiles, S, S, fd::kGridImages, fd::kGridScale,
                                                   fd::kGridPad, -1.0f, 1.0f);
  const int rows = int(row_labels.size());
  ember::io::GrayImage img = ex::blank_image(fd::grid_width(), fd::grid_height(rows), 255);
  ex::blit(img, grid, fd::kLabelWidth, fd::kTitleHeight);
  ex::draw_text(img, 12, 8, title, 2, 0);
  ex::draw_text(img, 12, 36, subtitle, 2, 0);
  const int pitch = S * fd::kGridScale + fd::kGridPad;
  for (int r = 0; r < rows; ++r) {
    // A label may hold two lines separated by '\n'.
    std::string a = row_labels[size_t(r)], b;
    const size_t nl = a.find('\n');
    if (nl != std::string::npos) {
      b = a.substr(nl + 1);
      a.resize(nl);
    }
    const int cy = fd::kTitleHeight + fd::kGridPad + r * pitch + S * fd::kGridScale / 2;
    const int cx = fd::kLabelWidth / 2;
    if (b.empty()) {
      ex::draw_text_centered(img, cx, cy, a, 2, 0);
    } else {
      ex::draw_text_centered(img, cx, cy - 12, a, 2, 0);
      ex::draw_text_centered(img, cx, cy + 12, b, 2, 0);
    }
  }
  return img;
}

/// denoise_grid.png (original / noisy / denoised) and from_noise.png (noise / output), labelled.
void draw_pictures(ember::models::UNet& model, const TestSet& ts, uint64_t seed, Device dev,
                   const std::string& out_dir, int64_t step, double test_mse) {
  model.eval();
  ember::NoGradGuard guard;
  const int64_t k = std::min<int64_t>(fd::kGridImages, ts.n);
  Tensor x = rows_of(ts.x, 0, k), nz = rows_of(ts.noise, 0, k);
  Tensor noisy = x * 0.5f + nz * 0.5f;
  std::vector<float> vx = x.to_vector(), vn = noisy.to_vector(),
                     vd = model.forward(noisy).to_vector();
  std::vector<const float*> tiles;
  for (const std::vector<float>* row : {&vx, &vn, &vd}) {
    for (int64_t i = 0; i < fd::kGridImages; ++i)
      tiles.push_back(row->data() + std::min(i, k - 1) * kPixels);
  }
  char title[160];
  std::snprintf(title, sizeof title, "fashion-denoise after %ld steps: test MSE %.4f", long(step),
                test_mse);
  ember::io::write_png_gray(
      join(out_dir, fd::kDenoiseGrid),
      labelled_grid(tiles, {"original", "noisy\ninput", "denoised\n(output)"}, title,
                    "the first 8 test images; noisy = 0.5 x + 0.5 N(0,1)"));

  // The seed's "generation from pure noise" attempt: one pass of the denoiser over N(0,1).
  ember::Generator g(derive_seed(seed, 3, 0));
  Tensor z = ember::randn({fd::kGridImages, 1, S, S}, g, dev);
  std::vector<float> vz = z.to_vector(), vo = model.forward(z).to_vector();
  tiles.clear();
  for (const std::vector<float>* row : {&vz, &vo})
    for (int64_t i = 0; i < fd::kGridImages; ++i) tiles.push_back(row->data() + i * kPixels);
  std::snprintf(title, sizeof title, "pure noise through the denoiser (after %ld steps)",
                long(step));
  ember::io::write_png_gray(
      join(out_dir, fd::kFromNoise),
      labelled_grid(tiles, {"N(0,1)\nnoise", "model\noutput"}, title,
                    "one pass, no test image behind it: not a generator"));
  model.train();
}

// ---------------------------------------------------------------------------------------------
// run state: loss history, per-epoch records, checkpoint metadata

struct LossRow {
  int64_t step;
  int64_t epoch;
  float loss;
};

struct EpochRecord {
  int64_t epoch = 0;      // 1-based
  int64_t steps = 0;      // batches of this epoch trained so far
  bool complete = false;  // all batches of the epoch
  double loss_mean = 0, loss_last = 0, test_mse = 0, noisy_mse = 0, train_s = 0, eval_s = 0;
};

std::string encode_history(const std::vector<EpochRecord>& h) {
  std::ostringstream os;
  for (const EpochRecord& r : h)
    os << r.epoch << ',' << r.steps << ',' << (r.complete ? 1 : 0) << ','
       << history_number(r.loss_mean) << ',' << history_number(r.loss_last) << ','
       << history_number(r.test_mse) << ',' << history_number(r.noisy_mse) << ','
       << history_number(r.train_s) << ',' << history_number(r.eval_s) << ';';
  return os.str();
}

std::vector<EpochRecord> decode_history(const std::string& s) {
  std::vector<EpochRecord> h;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ';')) {
    if (item.empty()) continue;
    EpochRecord r;
    int complete = 0;
    if (std::sscanf(item.c_str(), "%ld,%ld,%d,%lf,%lf,%lf,%lf,%lf,%lf", &r.epoch, &r.steps,
                    &complete, &r.loss_mean, &r.loss_last, &r.test_mse, &r.noisy_mse, &r.train_s,
                    &r.eval_s) == 9) {
      r.complete = complete != 0;
      h.push_back(r);
    }
  }
  return h;
}

void put_record(std::vector<EpochRecord>& h, const EpochRecord& r) {
  for (EpochRecord& e : h)
    if (e.epoch == r.epoch) {
      e = r;
      return;
    }
  h.push_back(r);
}

std::vector<LossRow> read_loss_csv(const std::string& path, int64_t up_to_step) {
  std::vector<LossRow> rows;
  std::ifstream in(path);
  if (!in) return rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    LossRow r{};
    if (std::sscanf(line.c_str(), "%ld,%ld,%f", &r.step, &r.epoch, &r.loss) == 3 &&
        r.step <= up_to_step && (rows.empty() || r.step > rows.back().step))
      rows.push_back(r);
  }
  return rows;
}

void write_loss_csv(const std::string& path, const std::vector<LossRow>& rows) {
  std::string text = "step,epoch,loss\n";
  char buf[96];
  for (const LossRow& r : rows) {
    // %.9g: a float round-trips exactly, so a resumed run's epoch means equal an uninterrupted
    // run's.
    std::snprintf(buf, sizeof buf, "%ld,%ld,%.9g\n", long(r.step), long(r.epoch), double(r.loss));
    text += buf;
  }
  ember::io::write_file_atomic(path, text);
}

/// loss.png: the train loss of every step (thin, light), its moving average (thick) and the test
/// MSE after each epoch (squares), against the step.
void write_loss_png(const std::string& path, const std::vector<LossRow>& rows,
                    const std::vector<EpochRecord>& history, int64_t steps_per_epoch) {
  namespace ex = ember_examples;
  if (rows.empty()) return;
  std::vector<double> v;
  ex::PlotSeries raw{"train loss of each step", {}, ex::PlotSeries::kThinLine, 185};
  for (const LossRow& r : rows) {
    raw.points.emplace_back(double(r.step), double(r.loss));
    v.push_back(double(r.loss));
  }
  // Smoothed over 1/40 of the run; short runs are drawn as they are.
  const size_t window = rows.size() / 40;
  std::vector<ex::PlotSeries> series;
  if (window >= 2) {
    std::vector<double> avg = ex::moving_average(v, window);
    ex::PlotSeries smooth{"train loss, mean of the last " + std::to_string(window) + " steps", {},
                          ex::PlotSeries::kLine, 0};
    for (size_t i = 0; i < rows.size(); ++i)
      smooth.points.emplace_back(double(rows[i].step), avg[i]);
    series = {raw, smooth};
  } else {
    raw.style = ex::PlotSeries::kLine;
    raw.ink = 0;
    series = {raw};
  }
  ex::PlotSeries test{"test MSE after each epoch", {}, ex::PlotSeries::kSquares, 80};
  for (const EpochRecord& r : history)
    if (r.epoch > 0 && r.steps > 0)
      test.points.emplace_back(double((r.epoch - 1) * steps_per_epoch + r.steps), r.test_mse);
  if (!test.points.empty()) series.push_back(test);
  ember::io::write_png_gray(
      path, ex::line_plot(series, "fashion-denoise: loss (MSE to the clean image)",
                          "training step", "MSE", fd::kLossPlotWidth, fd::kLossPlotHeight));
}

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key,
                 const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end())
    throw ember::Error("checkpoint '" + path + "' has no '" + key +
                       "' entry (not written by fashion-denoise?)");
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || errno == ERANGE || v < 0)
    throw ember::Error("checkpoint '" + path + "': bad '" + key + "' entry '" + it->second + "'");
  return v;
}

void check_arch(const std::map<std::string, std::string>& meta, const std::string& path) {
  auto it = meta.find("arch");
  if (it == meta.end() || it->second != fd::kArch)
    throw ember::Error("checkpoint '" + path + "' holds architecture '" +
                       (it == meta.end() ? std::string("(none)") : it->second) + "', expected '" +
                       fd::kArch + "'");
}

// ---------------------------------------------------------------------------------------------
// progress display

class Progress {
 public:
  Progress(int64_t total_steps, int64_t batch, int64_t log_every)
      : tty_(::isatty(STDOUT_FILENO) == 1), total_(total_steps), batch_(batch),
        log_every_(log_every) {}
  void start(int64_t step) {
    t0_ = Clock::now();
    last_print_ = t0_;
    first_step_ = step;
  }
  bool tty() const { return tty_; }
  /// Whether the caller should read the pending losses now and call show().
  bool due(int64_t step) const {
    if (step >= total_) return true;
    if (tty_) return std::chrono::duration<double>(Clock::now() - last_print_).count() >= 0.25;
    return step % log_every_ == 0;
  }
  void show(int64_t step, int64_t epoch, int64_t epochs, double recent_loss) {
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
      std::printf("\r\033[Kepoch %ld/%ld [%s] %ld/%ld loss %.4f %.0f img/s ETA %s", long(epoch),
                  long(epochs), bar.c_str(), long(step), long(total_), recent_loss, ips,
                  duration_text(eta).c_str());
    } else {
      std::printf("step %ld/%ld (epoch %ld) loss %.4f, %.0f img/s, ETA %s\n", long(step),
                  long(total_), long(epoch), recent_loss, ips, duration_text(eta).c_str());
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

Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") {
    if (!ember::cuda::is_compiled())
      throw ember::Error(
          "--device cuda: this program was built without CUDA; use fashion-denoise-cuda (built "
          "when CMake finds nvcc) or --device cpu");
    if (!ember::cuda::is_available())
      throw ember::Error("--device cuda: no CUDA GPU is visible to this program");
    return Device::cuda;
  }
  return ember::cuda::is_available() ? Device::cuda : Device::cpu;
}

std::string device_description(Device dev) {
  if (dev == Device::cuda) return std::string("cuda (") + ember::detail::cuda_backend()->device_name() + ")";
  return "cpu (" + std::to_string(ember::cpu::num_threads()) + " threads)";
}

struct Data {
  std::vector<float> train, test;  // N*256 floats in [-1, 1]
  double load_s = 0;
};

Data load_data(const std::string& dir, bool need_train, int64_t test_limit) {
  auto t0 = Clock::now();
  ember::data::FashionMnist raw = ember::data::load_fashion_mnist(dir);
  if (raw.test_images.count < 1)
    throw ember::data::DataError("ember::data: " + dir + ": the test set holds no images; " +
                                 ember::data::data_help_text());
  Data d;
  if (need_train) d.train = prepare_images(raw.train_images);
  d.test = prepare_images(raw.test_images);
  if (test_limit > 0 && int64_t(d.test.size()) > test_limit * kPixels) {
    d.test.resize(size_t(test_limit * kPixels));
    std::printf("data: scoring only the first %ld test images (--test-limit)\n", long(test_limit));
  }
  d.load_s = seconds_since(t0);
  std::printf("data: %ld train / %ld test images from %s, resized %dx%d -> %dx%d (%.1f s)\n",
              long(raw.train_images.count), long(raw.test_images.count), dir.c_str(),
              raw.train_images.rows, raw.train_images.cols, S, S, d.load_s);
  return d;
}

/// Creates --out and checks that it is writable before any data is loaded or anything trained;
/// removes temp files that killed runs left there.
void prepare_out_dir(const std::string& out) {
  make_dirs(out);
  ember_examples::check_dir_writable(out);
  for (const char* name : {fd::kCheckpoint, fd::kLossCsv, fd::kLossPng, fd::kSummary,
                           fd::kDenoiseGrid, fd::kFromNoise})
    ember::io::detail::remove_stale_temps(join(out, name));
}

int run_eval(const Options& o, Device dev) {
  auto t_start = Clock::now();
  const std::string data_dir = ember::data::default_data_dir(o.data);
  prepare_out_dir(o.out);
  ember::models::UNet model(S, 1);
  std::printf("fashion-denoise: evaluating %s, U-Net with %ld parameters, device %s\n",
              o.eval.c_str(), long(model.num_parameters()), device_description(dev).c_str());
  model.to(dev);
  std::map<std::string, std::string> meta;
  ember::io::load_checkpoint(o.eval, model, nullptr, &meta);
  check_arch(meta, o.eval);
  std::printf("checkpoint: step %s, epoch %s, seed %s\n", meta["step"].c_str(),
              meta["epoch"].c_str(), meta["seed"].c_str());
  Data d = load_data(data_dir, false, o.test_limit);
  TestSet ts = make_test_set(d.test, dev);
  auto t0 = Clock::now();
  std::printf("scoring %ld test images ...\n", long(ts.n));
  std::fflush(stdout);
  Scores s = evaluate(model, ts);
  std::printf("eval: test MSE %.5f (noisy input %.5f) on %ld test images, %.1f s\n", s.test_mse,
              s.noisy_mse, long(ts.n), seconds_since(t0));
  uint64_t seed = 0;
  if (meta.count("seed")) seed = std::strtoull(meta["seed"].c_str(), nullptr, 10);
  draw_pictures(model, ts, seed, dev, o.out, std::strtoll(meta["step"].c_str(), nullptr, 10),
                s.test_mse);
  if (!o.export_st.empty())
    fd::export_safetensors(o.export_st, model, ts.x, ts.noise, s.test_mse, s.noisy_mse);
  std::printf("wrote %s and %s in %s (%.1f s total)\n", fd::kDenoiseGrid, fd::kFromNoise,
              o.out.c_str(), seconds_since(t_start));
  return 0;
}

int run_train(Options o, Device dev) {
  auto t_start = Clock::now();
  const std::string data_dir = ember::data::default_data_dir(o.data);
  prepare_out_dir(o.out);
  const ember_examples::NanInjection nan_hook;  // test hook, off unless EMBER_EXAMPLE_INJECT_NAN

  // ---- resume: settings come from the checkpoint ----
  std::map<std::string, std::string> meta;
  int64_t start_step = 0;
  uint64_t noise_offset = 0;
  std::vector<EpochRecord> history;

  ember::manual_seed(derive_seed(o.seed, 0, 0));
  auto model = std::make_shared<ember::models::UNet>(S, 1);
  const int64_t nparams = model->num_parameters();
  std::printf("fashion-denoise: U-Net with %ld parameters, device %s\n", long(nparams),
              device_description(dev).c_str());
  std::fflush(stdout);
  model->to(dev);
  model->train();
  ember::optim::AdamOptions aopt;
  aopt.lr(o.lr);
  ember::optim::Adam opt(model->parameters(), aopt);

  if (!o.resume.empty()) {
    ember::io::load_checkpoint(o.resume, *model, &opt, &meta);
    check_arch(meta, o.resume);
    start_step = meta_int(meta, "step", o.resume);
    const int64_t ck_batch = meta_int(meta, "batch", o.resume);
    const uint64_t ck_seed = uint64_t(meta_int(meta, "seed", o.resume));
    const bool ck_all = meta_int(meta, "train_on_all", o.resume) != 0;
    noise_offset = uint64_t(meta_int(meta, "noise_offset", o.resume));
    if (o.batch_set && o.batch != ck_batch)
      throw ember::Error("checkpoint '" + o.resume + "' was trained with --batch " +
                         std::to_string(ck_batch) + "; resume with the same batch size");
    if (o.seed_set && o.seed != ck_seed)
      throw ember::Error("checkpoint '" + o.resume + "' was trained with --seed " +
                         std::to_string(ck_seed) + "; resume with the same seed");
    if (o.train_on_all && !ck_all)
      throw ember::Error("checkpoint '" + o.resume +
                         "' was trained on the train split only; resume without --train-on-all");
    o.batch = ck_batch;
    o.seed = ck_seed;
    o.train_on_all = ck_all;
    if (!o.lr_set && meta.count("lr")) o.lr = std::strtod(meta["lr"].c_str(), nullptr);
    opt.options().lr(o.lr);
    history = decode_history(meta.count("history") ? meta["history"] : std::string());
    const int64_t ck_spe = meta.count("steps_per_epoch")
                               ? meta_int(meta, "steps_per_epoch", o.resume)
                               : 0;
    if (ck_spe > 0 && start_step % ck_spe != 0)
      std::printf("resuming from %s at step %ld (inside epoch %ld: %ld of its %ld steps done)\n",
                  o.resume.c_str(), long(start_step), long(start_step / ck_spe + 1),
                  long(start_step % ck_spe), long(ck_spe));
    else
      std::printf("resuming from %s at step %ld (epoch %s done)\n", o.resume.c_str(),
                  long(start_step), meta["epoch"].c_str());
  }

  Data d = load_data(data_dir, true, o.test_limit);
  std::vector<float> train = std::move(d.train);
  if (o.train_on_all) {
    train.insert(train.end(), d.test.begin(), d.test.end());
    std::printf("training on train+test (%ld images, --train-on-all): the test MSE below is "
                "measured on images the model has seen\n",
                long(int64_t(train.size()) / kPixels));
  }
  const int64_t n_train = int64_t(train.size()) / kPixels;
  if (n_train < o.batch)
    throw ember::data::DataError("ember::data: " + data_dir + ": the training set has " +
                                 std::to_string(n_train) + " images, fewer than one batch of " +
                                 std::to_string(o.batch) + "; " + ember::data::data_help_text());
  const int64_t spe = n_train / o.batch;
  int64_t total = o.epochs * spe;
  if (o.max_steps > 0) total = std::min(total, o.max_steps);
  if (!o.resume.empty() && meta.count("steps_per_epoch") &&
      meta_int(meta, "steps_per_epoch", o.resume) != spe)
    throw ember::Error("checkpoint '" + o.resume + "' was trained with " +
                       meta["steps_per_epoch"] + " steps per epoch but this data gives " +
                       std::to_string(spe) + " (a different data set?)");
  TestSet ts = make_test_set(d.test, dev);

  const std::string ckpt_path = join(o.out, fd::kCheckpoint);
  std::vector<LossRow> losses;
  if (start_step > 0) losses = read_loss_csv(join(o.out, fd::kLossCsv), start_step);

  std::printf("training: %ld epochs x %ld steps (batch %ld, lr %g, seed %lu), steps %ld..%ld\n",
              long(o.epochs), long(spe), long(o.batch), o.lr, (unsigned long)o.seed,
              long(start_step + 1), long(total));
  std::fflush(stdout);

  ember::Generator noise_gen(derive_seed(o.seed, 2, 0));
  noise_gen.set_offset(noise_offset);

  double train_s_total = 0, eval_s_total = 0;
  int64_t images_trained = 0;
  std::vector<double> epoch_train_s;

  auto save = [&](int64_t step) {
    std::map<std::string, std::string> m{
        {"arch", fd::kArch},
        {"program", "fashion-denoise"},
        {"step", std::to_string(step)},
        {"epoch", std::to_string(step / spe)},
        {"seed", std::to_string(o.seed)},
        {"batch", std::to_string(o.batch)},
        {"lr", fmt("%.9g", o.lr)},
        {"train_on_all", o.train_on_all ? "1" : "0"},
        {"steps_per_epoch", std::to_string(spe)},
        {"noise_offset", std::to_string(noise_gen.offset())},
        {"history", encode_history(history)},
    };
    ember::io::save_checkpoint(ckpt_path, *model, &opt, m);
  };

  // summary.json (nlohmann-json; a number that is not finite is written as null).
  auto write_summary = [&](int64_t step, bool finished) {
    using Json = nlohmann::ordered_json;
    Json js;
    js["program"] = "fashion-denoise";
    js["finished"] = finished;
    Json& set = js["settings"];
    set["epochs"] = o.epochs;
    set["batch"] = o.batch;
    set["lr"] = o.lr;
    set["seed"] = o.seed;
    set["max_steps"] = o.max_steps;
    set["train_on_all"] = o.train_on_all;
    set["data"] = data_dir;
    set["out"] = o.out;
    set["resumed_from"] = o.resume.empty() ? Json(nullptr) : Json(o.resume);
    js["device"] = device_name(dev);
    js["device_description"] = device_description(dev);
    js["parameters"] = nparams;
    js["train_images"] = n_train;
    js["test_images"] = ts.n;
    js["steps_per_epoch"] = spe;
    js["step"] = step;
    Json& t = js["timings"];
    t["total_s"] = seconds_since(t_start);
    t["data_load_s"] = d.load_s;
    t["train_s"] = train_s_total;
    t["eval_s"] = eval_s_total;
    t["s_per_epoch"] = epoch_train_s;
    t["images_per_s"] = train_s_total > 0 ? double(images_trained) / train_s_total : 0.0;
    js["epochs"] = Json::array();
    for (const EpochRecord& r : history)
      js["epochs"].push_back(Json{{"epoch", r.epoch},
                                  {"steps", r.steps},
                                  {"complete", r.complete},
                                  {"train_loss_mean", r.loss_mean},
                                  {"train_loss_last", r.loss_last},
                                  {"test_mse", r.test_mse},
                                  {"noisy_input_mse", r.noisy_mse},
                                  {"train_s", r.train_s},
                                  {"eval_s", r.eval_s}});
    js["final"] = history.empty() ? Json(nullptr)
                                  : Json{{"test_mse", history.back().test_mse},
                                         {"noisy_input_mse", history.back().noisy_mse}};
    // Paths need not be UTF-8: invalid bytes are written as U+FFFD rather than refused.
    ember::io::write_file_atomic(join(o.out, fd::kSummary),
                                 js.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
  };

  Progress progress(total, o.batch, o.log_every);
  progress.start(start_step);
  // (step, detached loss, gradient probe) not yet read back: reading a loss waits for the
  // device, so it is done in batches, and the finiteness checks with it.
  struct Pending {
    int64_t step;
    Tensor loss, grad_probe;
  };
  std::vector<Pending> pending;
  std::vector<float> host_batch;
  int64_t step = start_step;
  double recent_sum = 0;
  int64_t recent_n = 0;
  // Where the last good state is on disk (for the message when training has to stop).
  std::string good_ckpt = o.resume;
  int64_t good_step = start_step;
  auto flush_losses = [&](int64_t epoch1) {
    for (Pending& p : pending) {
      const float v = p.loss.item();
      ember_examples::check_step_finite(p.step, v, p.grad_probe.defined() ? p.grad_probe.item() : 0.0f);
      losses.push_back({p.step, epoch1, v});
      recent_sum += v;
      ++recent_n;
    }
    pending.clear();
  };
  // loss.csv first, then the checkpoint: a kill between the two leaves a loss.csv that runs
  // ahead of the checkpoint, and --resume reads it only up to the checkpoint's step.
  auto checkpoint_now = [&](int64_t at_step, bool summary) {
    write_loss_csv(join(o.out, fd::kLossCsv), losses);
    write_loss_png(join(o.out, fd::kLossPng), losses, history, spe);
    save(at_step);
    good_ckpt = ckpt_path;
    good_step = at_step;
    if (summary) write_summary(at_step, false);
  };
  auto stop_message = [&](const std::string& why) {
    std::string m = why + "; training stopped. ";
    if (good_ckpt.empty())
      m += "No checkpoint was written: nothing before this step was saved.";
    else
      m += "The last good checkpoint is " + good_ckpt + " (step " + std::to_string(good_step) +
           "); nothing after it was saved.";
    return m;
  };

  if (step >= total)
    std::printf("checkpoint is already at step %ld of %ld: nothing to train\n", long(step),
                long(total));
  ember_examples::install_stop_handlers();
  try {
    while (step < total) {
      const int64_t e = step / spe;  // 0-based epoch of the next step
      const int64_t first = step - e * spe, last = std::min(spe, total - e * spe);
      EpochPlan plan = plan_epoch(o.seed, e, n_train);
      model->train();
      auto t0 = Clock::now();
      for (int64_t b = first; b < last; ++b) {
        if (ember_examples::stop_signal() != 0) break;
        gather_batch(train, plan, b * o.batch, o.batch, host_batch);
        Tensor x = ember::from_vector(host_batch, {o.batch, 1, S, S}, dev);
        Tensor noise = ember::randn({o.batch, 1, S, S}, noise_gen, dev);
        Tensor noisy = x * 0.5f + noise * 0.5f;
        opt.zero_grad();
        Tensor loss = nan_hook.loss(step + 1, ember::mse_loss(model->forward(noisy), x));
        loss.backward();
        nan_hook.gradients(step + 1, model->parameters());
        Tensor probe = ember_examples::gradient_probe(model->parameters());
        opt.step();
        ++step;
        pending.push_back({step, loss.detach(), probe});
        if (progress.due(step) || b + 1 == last) {
          flush_losses(e + 1);
          if (progress.due(step))
            progress.show(step, e + 1, o.epochs, recent_n ? recent_sum / double(recent_n) : 0.0);
          recent_sum = 0;
          recent_n = 0;
        }
        if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0 && b + 1 < last) {
          flush_losses(e + 1);
          checkpoint_now(step, false);
        }
      }
      flush_losses(e + 1);
      const double train_s = seconds_since(t0);
      train_s_total += train_s;
      images_trained += (step - (e * spe + first)) * o.batch;
      progress.end_line();
      if (ember_examples::stop_signal() != 0 && step < e * spe + last) {
        // Interrupted inside the epoch: save where we are and say how to go on.
        checkpoint_now(step, true);
        std::printf("stopped by %s at step %ld of %ld (epoch %ld): checkpoint written to %s\n"
                    "continue with: fashion-denoise --resume %s --out %s --epochs %ld%s\n",
                    ember_examples::stop_signal_name(), long(step), long(total), long(e + 1),
                    ckpt_path.c_str(), ckpt_path.c_str(), o.out.c_str(), long(o.epochs),
                    o.max_steps > 0 ? (" --max-steps " + std::to_string(o.max_steps)).c_str() : "");
        std::fflush(stdout);
        return ember_examples::stop_exit_code();
      }
      epoch_train_s.push_back(train_s);

      if (progress.tty())
        std::printf("epoch %ld: scoring %ld test images ...", long(e + 1), long(ts.n));
      else
        std::printf("epoch %ld: scoring %ld test images ...\n", long(e + 1), long(ts.n));
      std::fflush(stdout);
      auto t1 = Clock::now();
      Scores sc = evaluate(*model, ts);
      const double eval_s = seconds_since(t1);
      eval_s_total += eval_s;
      progress.end_line();

      EpochRecord r;
      r.epoch = e + 1;
      r.steps = last;
      r.complete = last == spe;
      double sum = 0;
      int64_t cnt = 0;
      for (const LossRow& lr : losses)
        if (lr.epoch == e + 1) {
          sum += lr.loss;
          ++cnt;
        }
      r.loss_mean = cnt ? sum / double(cnt) : 0.0;
      r.loss_last = losses.empty() ? 0.0 : losses.back().loss;
      r.test_mse = sc.test_mse;
      r.noisy_mse = sc.noisy_mse;
      r.train_s = train_s;
      r.eval_s = eval_s;
      put_record(history, r);
      std::printf("epoch %ld: train loss %.4f, test MSE %.4f (noisy input %.4f), %.1f s + %.1f s "
                  "scoring",
                  long(e + 1), r.loss_mean, sc.test_mse, sc.noisy_mse, train_s, eval_s);
      if (!r.complete)
        std::printf(" (stopped after %ld of %ld steps: --max-steps)", long(last), long(spe));
      std::printf("\n");
      std::fflush(stdout);

      checkpoint_now(step, true);
      if (ember_examples::stop_signal() != 0 && step < total) {
        std::printf("stopped by %s after epoch %ld (step %ld of %ld): checkpoint written to %s\n"
                    "continue with: fashion-denoise --resume %s --out %s --epochs %ld%s\n",
                    ember_examples::stop_signal_name(), long(e + 1), long(step), long(total),
                    ckpt_path.c_str(), ckpt_path.c_str(), o.out.c_str(), long(o.epochs),
                    o.max_steps > 0 ? (" --max-steps " + std::to_string(o.max_steps)).c_str() : "");
        std::fflush(stdout);
        return ember_examples::stop_exit_code();
      }
    }
  } catch (const ember_examples::NonFiniteError& err) {
    progress.end_line();
    const int64_t epoch1 = (err.step - 1) / spe + 1;
    throw ember::Error(stop_message(std::string(err.what()) + " (epoch " + std::to_string(epoch1) +
                                    ", lr " + fmt("%g", o.lr) +
                                    "; a smaller --lr may help)"));
  }

  if (history.empty()) {  // nothing trained in any run: still score what we have
    Scores sc = evaluate(*model, ts);
    std::printf("test MSE %.4f (noisy input %.4f)\n", sc.test_mse, sc.noisy_mse);
    EpochRecord r;
    r.test_mse = sc.test_mse;
    r.noisy_mse = sc.noisy_mse;
    history.push_back(r);
  }
  draw_pictures(*model, ts, o.seed, dev, o.out, step, history.back().test_mse);
  if (!o.export_st.empty())
    fd::export_safetensors(o.export_st, *model, ts.x, ts.noise, history.back().test_mse,
                           history.back().noisy_mse);
  checkpoint_now(step, false);
  write_summary(step, true);
  const double total_s = seconds_since(t_start);
  std::printf("done: %ld steps, %.1f s total (%.1f s training, %.0f images/s); results in %s\n",
              long(step), total_s, train_s_total,
              train_s_total > 0 ? double(images_trained) / train_s_total : 0.0, o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"", "fashion-denoise"};
  describe_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "fashion-denoise: %s\n\n%s", e.what(), app.help().c_str());
    return 2;
  }
  o.batch_set = app.count("--batch") > 0;
  o.lr_set = app.count("--lr") > 0;
  o.seed_set = app.count("--seed") > 0;
  try {
    Device dev = resolve_device(o.device);
    return o.eval.empty() ? run_train(o, dev) : run_eval(o, dev);
  } catch (const ember::data::DataError& e) {
    if (::isatty(STDOUT_FILENO) == 1) std::printf("\n");
    std::fflush(stdout);
    std::fprintf(stderr, "fashion-denoise: %s\n", e.what());
  } catch (const std::exception& e) {
    if (::isatty(STDOUT_FILENO) == 1) std::printf("\n");
    std::fflush(stdout);
    std::fprintf(stderr, "fashion-denoise: error: %s\n", e.what());
  }
  return 1;
}
