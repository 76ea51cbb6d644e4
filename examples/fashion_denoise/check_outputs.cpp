// @file examples/fashion_denoise/check_outputs.cpp
// @brief fashion-denoise-check: validates what fashion-denoise wrote (used by the smoke test).
//
//   fashion-denoise-check outputs DIR [--step N] [--max-mse-ratio R]
//       PNGs (signature, IHDR size, decodable, not blank), loss.csv (header, numeric rows, steps
//       1..N), summary.json (valid JSON with the expected keys; final test MSE below R times the
//       noisy input's), checkpoint.bin (loads into a fresh U-Net and Adam; arch and step).
//       Also loss.png (size, decodable, something drawn) and, in the PNGs, text in the title band
//       and left of every row.
//   fashion-denoise-check checkpoint FILE [--step N]
//       FILE loads into a fresh U-Net and Adam (CRC verified) and holds step N.
//   fashion-denoise-check same-run DIR_A DIR_B
//       two runs ended in the same state, bitwise: every tensor of both checkpoints (parameters,
//       batch-norm buffers, Adam state) and their step and noise position are equal, loss.csv is
//       byte for byte the same, and so are the per-epoch losses and test MSEs in summary.json.
//   (command line: CLI11; summary.json is parsed by nlohmann-json)
//   fashion-denoise-check truncate SRC DST BYTES
//       writes the first BYTES bytes of SRC to DST (to build a damaged data directory).
// Prints "ok: ..." lines and exits 0, or prints "FAIL: ..." and exits 1 (2: bad command line).
#include <ember/ember.hpp>
#include <ember/io/checkpoint.hpp>
#include <ember/io/png.hpp>
#include <ember/models/unet.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "layout.hpp"

namespace {

namespace fd = fashion_denoise;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void require(bool cond, const std::string& what) {
  if (!cond) throw Failure(what);
}

using Json = nlohmann::json;

// summary.json parsed by nlohmann-json (a syntax error, a missing key or a value of the wrong
// type throws, and is reported as a failure).
Json read_json(const std::string& path) {
  std::vector<uint8_t> b = ember::io::read_file(path);
  try {
    return Json::parse(b.begin(), b.end());
  } catch (const Json::exception& e) {
    throw Failure(path + ": not valid JSON: " + e.what());
  }
}

double number(const Json& j, const std::string& what) {
  require(j.is_number(), "JSON: '" + what + "' is not a number");
  return j.get<double>();
}

std::string read_text(const std::string& path) {
  std::vector<uint8_t> b = ember::io::read_file(path);
  return std::string(b.begin(), b.end());
}

std::string join(const std::string& dir, const char* name) { return dir + "/" + name; }

// How many pixels darker than 100 the rectangle holds (text is drawn black on white).
int dark_pixels(const std::vector<uint8_t>& px, int w, int x0, int y0, int rw, int rh) {
  int n = 0;
  for (int y = y0; y < y0 + rh; ++y)
    for (int x = x0; x < x0 + rw; ++x)
      if (px[size_t(y) * size_t(w) + size_t(x)] < 100) ++n;
  return n;
}

void check_png(const std::string& path, int want_w, int want_h, int rows) {
  std::vector<uint8_t> bytes = ember::io::read_file(path);
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  require(bytes.size() > 33 && std::memcmp(bytes.data(), sig, 8) == 0, path + ": no PNG signature");
  require(std::memcmp(bytes.data() + 12, "IHDR", 4) == 0, path + ": first chunk is not IHDR");
  auto be32 = [&](size_t at) {
    return (uint32_t(bytes[at]) << 24) | (uint32_t(bytes[at + 1]) << 16) |
           (uint32_t(bytes[at + 2]) << 8) | uint32_t(bytes[at + 3]);
  };
  require(int(be32(16)) == want_w && int(be32(20)) == want_h,
          path + ": IHDR says " + std::to_string(be32(16)) + "x" + std::to_string(be32(20)) +
              ", expected " + std::to_string(want_w) + "x" + std::to_string(want_h));
  int w = 0, h = 0;
  std::vector<uint8_t> px = ember::io::read_png_gray(path, &w, &h);
  require(w == want_w && h == want_h && px.size() == size_t(w) * size_t(h), path + ": bad decode");
  // The tiles must hold pictures, not a constant: count distinct gray levels.
  std::vector<int> seen(256, 0);
  for (uint8_t p : px) seen[p] = 1;
  int levels = 0;
  for (int s : seen) levels += s;
  require(levels >= 16, path + ": only " + std::to_string(levels) + " gray levels (blank image?)");
  require(px[0] == 255, path + ": the title band is not white");
  require(px[size_t(fd::kTitleHeight) * size_t(w) + size_t(fd::kLabelWidth)] == 128,
          path + ": the padding around the tiles is not the expected gray");
  // A title, and a label left of each row.
  require(dark_pixels(px, w, 0, 0, w, fd::kTitleHeight) > 200, path + ": no title text");
  const int pitch = fd::kImageSize * fd::kGridScale + fd::kGridPad;
  for (int r = 0; r < rows; ++r)
    require(dark_pixels(px, w, 0, fd::kTitleHeight + fd::kGridPad + r * pitch, fd::kLabelWidth,
                        pitch - fd::kGridPad) > 50,
            path + ": no label left of row " + std::to_string(r + 1));
  std::printf("ok: %s %dx%d, %d gray levels, title and %d row labels\n", path.c_str(), w, h,
              levels, rows);
}

void check_plot(const std::string& path) {
  int w = 0, h = 0;
  std::vector<uint8_t> px = ember::io::read_png_gray(path, &w, &h);
  require(w == fd::kLossPlotWidth && h == fd::kLossPlotHeight,
          path + ": " + std::to_string(w) + "x" + std::to_string(h) + ", expected " +
              std::to_string(fd::kLossPlotWidth) + "x" + std::to_string(fd::kLossPlotHeight));
  // Something is drawn inside the frame (curve, grid) and around it (title, labels, ticks).
  const int inside = dark_pixels(px, w, 110, 66, w - 150, h - 160);
  require(inside > 300, path + ": nothing drawn inside the plot (" + std::to_string(inside) +
                            " dark pixels)");
  require(dark_pixels(px, w, 0, 0, w, 50) > 200, path + ": no title");
  std::printf("ok: %s %dx%d, %d dark pixels in the plot\n", path.c_str(), w, h, inside);
}

int64_t check_loss_csv(const std::string& path) {
  std::istringstream in(read_text(path));
  std::string line;
  require(std::getline(in, line) && line == "step,epoch,loss",
          path + ": header is '" + line + "', expected 'step,epoch,loss'");
  int64_t rows = 0, last_step = 0;
  while (std::getline(in, line)) {
    long step = 0, epoch = 0;
    double loss = 0;
    int used = 0;
    require(std::sscanf(line.c_str(), "%ld,%ld,%lf%n", &step, &epoch, &loss, &used) == 3 &&
                size_t(used) == line.size(),
            path + ": bad row '" + line + "'");
    require(step == last_step + 1, path + ": step " + std::to_string(step) + " follows " +
                                       std::to_string(last_step));
    require(epoch >= 1 && std::isfinite(loss) && loss > 0 && loss < 10,
            path + ": implausible row '" + line + "'");
    last_step = step;
    ++rows;
  }
  require(rows > 0, path + ": no rows");
  std::printf("ok: %s, %ld rows\n", path.c_str(), long(rows));
  return last_step;
}

void check_summary(const std::string& path, int64_t want_step, double max_ratio) {
  Json j = read_json(path);
  require(j.is_object(), path + ": not a JSON object");
  require(j.at("program") == "fashion-denoise", path + ": wrong program");
  require(number(j.at("parameters"), "parameters") == 234977, path + ": parameters != 234977");
  const Json& settings = j.at("settings");
  for (const char* k : {"epochs", "batch", "lr", "seed", "max_steps", "train_on_all", "data", "out"})
    (void)settings.at(k);
  require(j.at("device").is_string(), path + ": device is not a string");
  const Json& t = j.at("timings");
  require(number(t.at("total_s"), "total_s") > 0, path + ": total_s <= 0");
  require(t.at("s_per_epoch").is_array(), path + ": s_per_epoch is not an array");
  require(number(t.at("images_per_s"), "images_per_s") > 0, path + ": images_per_s <= 0");
  const Json& epochs = j.at("epochs");
  require(epochs.is_array() && !epochs.empty(), path + ": no epochs");
  for (const Json& e : epochs)
    for (const char* k : {"epoch", "steps", "train_loss_mean", "test_mse", "noisy_input_mse"})
      (void)number(e.at(k), k);
  const double mse = number(j.at("final").at("test_mse"), "final.test_mse");
  const double noisy = number(j.at("final").at("noisy_input_mse"), "final.noisy_input_mse");
  require(noisy > 0.3 && noisy < 0.5, path + ": noisy input MSE " + std::to_string(noisy) +
                                          " is not the expected ~0.4");
  if (want_step >= 0)
    require(int64_t(number(j.at("step"), "step")) == want_step,
            path + ": step " + j.at("step").dump() + ", expected " + std::to_string(want_step));
  if (max_ratio > 0)
    require(mse < max_ratio * noisy, path + ": final test MSE " + std::to_string(mse) +
                                         " is not below " + std::to_string(max_ratio) +
                                         " x the noisy input's " + std::to_string(noisy));
  std::printf("ok: %s, final test MSE %.5f vs noisy input %.5f\n", path.c_str(), mse, noisy);
}

void check_checkpoint(const std::string& path, int64_t want_step) {
  ember::models::UNet model(fd::kImageSize, 1);
  ember::optim::Adam opt(model.parameters());
  std::map<std::string, std::string> meta;
  ember::io::load_checkpoint(path, model, &opt, &meta);
  require(meta["arch"] == fd::kArch, path + ": arch '" + meta["arch"] + "'");
  if (want_step >= 0)
    require(meta["step"] == std::to_string(want_step),
            path + ": step " + meta["step"] + ", expected " + std::to_string(want_step));
  if (want_step > 0) require(opt.step_count(0) == want_step, path + ": Adam step count differs");
  std::printf("ok: %s loads into a fresh U-Net + Adam (step %s, epoch %s)\n", path.c_str(),
              meta["step"].c_str(), meta["epoch"].c_str());
}

/// Both runs' final state must be bitwise equal (see the file comment).
void check_same_run(const std::string& a, const std::string& b) {
  auto load = [](const std::string& path, std::map<std::string, std::string>& meta) {
    auto model = std::make_shared<ember::models::UNet>(fd::kImageSize, 1);
    auto opt = std::make_shared<ember::optim::Adam>(model->parameters());
    ember::io::load_checkpoint(path, *model, opt.get(), &meta);
    std::vector<std::pair<std::string, std::vector<float>>> all;
    for (auto& kv : model->named_parameters()) all.emplace_back(kv.first, kv.second.to_vector());
    for (auto& kv : model->named_buffers()) all.emplace_back(kv.first, kv.second.to_vector());
    for (auto& kv : opt->named_state()) all.emplace_back("optim." + kv.first, kv.second.to_vector());
    return all;
  };
  std::map<std::string, std::string> ma, mb;
  auto ta = load(join(a, fd::kCheckpoint), ma), tb = load(join(b, fd::kCheckpoint), mb);
  for (const char* k : {"step", "noise_offset", "seed", "batch", "lr"})
    require(ma[k] == mb[k], std::string("checkpoints differ in '") + k + "': " + ma[k] + " vs " + mb[k]);
  require(ta.size() == tb.size(), "checkpoints hold different tensors");
  size_t floats = 0;
  for (size_t i = 0; i < ta.size(); ++i) {
    require(ta[i].first == tb[i].first && ta[i].second.size() == tb[i].second.size(),
            "checkpoints hold different tensors");
    require(std::memcmp(ta[i].second.data(), tb[i].second.data(), 4 * ta[i].second.size()) == 0,
            "tensor '" + ta[i].first + "' differs between " + a + " and " + b);
    floats += ta[i].second.size();
  }
  const std::string ca = read_text(join(a, fd::kLossCsv)), cb = read_text(join(b, fd::kLossCsv));
  require(ca == cb, "loss.csv differs between " + a + " and " + b);
  Json ja = read_json(join(a, fd::kSummary));
  Json jb = read_json(join(b, fd::kSummary));
  const Json &ea = ja.at("epochs"), &eb = jb.at("epochs");
  require(ea.size() == eb.size(), "summary.json: different numbers of epochs");
  for (size_t i = 0; i < ea.size(); ++i)
    for (const char* k : {"epoch", "steps", "train_loss_mean", "train_loss_last", "test_mse",
                          "noisy_input_mse"})
      require(number(ea[i].at(k), k) == number(eb[i].at(k), k),
              std::string("summary.json: epoch ") + std::to_string(i + 1) + " '" + k + "' differs");
  std::printf("ok: %s and %s hold the same run: %zu tensors (%zu floats) bitwise equal at step %s, "
              "loss.csv identical (%zu bytes), final test MSE %.6f in both\n",
              a.c_str(), b.c_str(), ta.size(), floats, ma["step"].c_str(), ca.size(),
              number(ja.at("final").at("test_mse"), "test_mse"));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fashion-denoise-check: validates what fashion-denoise wrote", "fashion-denoise-check"};
  app.require_subcommand(1);
  std::string dir, file, dir_a, dir_b, src, dst;
  int64_t step = -1;
  double ratio = 0;
  uint64_t bytes = 0;
  CLI::App* outputs = app.add_subcommand("outputs", "check every output in DIR");
  outputs->add_option("DIR", dir, "the --out directory of a run")->required();
  outputs->add_option("--step", step, "the step the run ended at");
  outputs->add_option("--max-mse-ratio", ratio, "final test MSE must be below R x the noisy input's")
      ->type_name("R");
  CLI::App* checkpoint = app.add_subcommand("checkpoint", "FILE loads into a fresh U-Net and Adam");
  checkpoint->add_option("FILE", file, "a checkpoint")->required();
  checkpoint->add_option("--step", step, "the step it must hold");
  CLI::App* same = app.add_subcommand("same-run", "two runs ended in the same state, bitwise");
  same->add_option("DIR_A", dir_a)->required();
  same->add_option("DIR_B", dir_b)->required();
  CLI::App* truncate = app.add_subcommand("truncate", "write the first BYTES bytes of SRC to DST");
  truncate->add_option("SRC", src)->required();
  truncate->add_option("DST", dst)->required();
  truncate->add_option("BYTES", bytes)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*truncate) {
      std::vector<uint8_t> b = ember::io::read_file(src);
      const size_t keep = size_t(std::min<uint64_t>(b.size(), bytes));
      b.resize(keep);
      ember::io::write_file_atomic(dst, b);
      std::printf("ok: wrote the first %zu bytes of %s to %s\n", keep, src.c_str(), dst.c_str());
    } else if (*same) {
      check_same_run(dir_a, dir_b);
    } else if (*checkpoint) {
      check_checkpoint(file, step);
    } else {
      check_png(join(dir, fd::kDenoiseGrid), fd::grid_width(), fd::grid_height(fd::kDenoiseRows),
                fd::kDenoiseRows);
      check_png(join(dir, fd::kFromNoise), fd::grid_width(), fd::grid_height(fd::kFromNoiseRows),
                fd::kFromNoiseRows);
      check_plot(join(dir, fd::kLossPng));
      const int64_t last = check_loss_csv(join(dir, fd::kLossCsv));
      if (step >= 0)
        require(last == step, "loss.csv ends at step " + std::to_string(last) + ", expected " +
                                  std::to_string(step));
      check_summary(join(dir, fd::kSummary), step, ratio);
      check_checkpoint(join(dir, fd::kCheckpoint), step);
      std::printf("ok: all outputs in %s are valid\n", dir.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    return 1;
  }
}
