// @file examples/fashion_classify/check_outputs.cpp
// @brief fashion-classify-check: validates what fashion-classify wrote (used by the smoke test).
//
//   fashion-classify-check outputs DIR --epochs N [--min-accuracy A]
//       summary.json (valid JSON; N epochs; the confusion matrix is 10x10, sums to the test
//       images, its diagonal gives test_accuracy and per_class_accuracy; the train loss of the
//       last epoch is below the first's and below ln 10, a classifier's loss at chance),
//       train.csv (header and N numeric rows agreeing with summary.json), confusion.png and
//       predictions.png (decodable, not blank), checkpoint.bin (loads into a fresh
//       FashionClassifier and AdamW at the run's size, epoch N), model.safetensors (loads into a
//       fresh FashionClassifier; its metadata holds the size and the accuracy).
//   fashion-classify-check same-run DIR_A DIR_B
//       two runs ended in the same state, bitwise: every tensor of both checkpoints (parameters,
//       batch-norm buffers, AdamW state), their dropout generator position, train.csv and the
//       per-epoch losses and accuracies of summary.json.
//   fashion-classify-check truncate SRC DST BYTES
//       writes the first BYTES bytes of SRC to DST (to build damaged files).
// Prints "ok: ..." lines and exits 0, or prints "FAIL: ..." and exits 1 (2: bad command line).
#include <ember/ember.hpp>
#include <ember/io/checkpoint.hpp>
#include <ember/io/png.hpp>
#include <ember/io/safetensors.hpp>
#include <ember/models/classifier.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void require(bool cond, const std::string& what) {
  if (!cond) throw Failure(what);
}

using Json = nlohmann::json;

std::string join(const std::string& dir, const char* name) {
  return dir + "/" + name;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(bool(in), "cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json read_json(const std::string& path) {
  try {
    return Json::parse(read_text(path));
  } catch (const Json::exception& e) {
    throw Failure(path + ": " + e.what());
  }
}

void check_png(const std::string& path, int min_w, int min_h) {
  int w = 0, h = 0;
  std::vector<uint8_t> px = ember::io::read_png_gray(path, &w, &h);
  require(w >= min_w && h >= min_h, path + ": " + std::to_string(w) + "x" + std::to_string(h) +
                                        " is smaller than " + std::to_string(min_w) + "x" +
                                        std::to_string(min_h));
  size_t dark = 0;
  for (uint8_t v : px) dark += v < 128;
  require(dark > px.size() / 100 && dark < px.size() * 9 / 10,
          path + ": looks blank (" + std::to_string(dark) + " dark pixels of " +
              std::to_string(px.size()) + ")");
  std::printf("ok: %s (%dx%d)\n", path.c_str(), w, h);
}

int outputs(const std::string& dir, int64_t epochs, double min_acc) {
  const Json js = read_json(join(dir, "summary.json"));
  require(js.at("program") == "fashion-classify" && js.at("finished") == true,
          "summary.json: not a finished fashion-classify run");
  const int64_t size = js.at("settings").at("size").get<int64_t>();
  require(size == 28 || size == 16, "summary.json: size " + std::to_string(size));
  const Json& ep = js.at("epochs");
  require(int64_t(ep.size()) == epochs, "summary.json: " + std::to_string(ep.size()) +
                                            " epochs, expected " + std::to_string(epochs));
  const double first = ep.front().at("train_loss").get<double>();
  const double last = ep.back().at("train_loss").get<double>();
  require(std::isfinite(last) && last < std::log(10.0),
          "the train loss " + std::to_string(last) + " is not below ln 10 (chance)");
  if (epochs > 1)
    require(last < first, "the train loss did not fall: " + std::to_string(first) + " -> " +
                              std::to_string(last));
  std::printf("ok: train loss %.4f -> %.4f (chance: ln 10 = 2.3026)\n", first, last);

  const int64_t n_test = js.at("test_images").get<int64_t>();
  const Json& cm = js.at("confusion_matrix");
  require(cm.size() == 10, "confusion_matrix: not 10 rows");
  int64_t total = 0, diag = 0;
  const Json& pc = js.at("per_class_accuracy");
  require(pc.size() == 10, "per_class_accuracy: not 10 classes");
  for (int t = 0; t < 10; ++t) {
    require(cm[size_t(t)].size() == 10,
            "confusion_matrix: row " + std::to_string(t) + " not 10 long");
    int64_t row = 0;
    for (int p = 0; p < 10; ++p) row += cm[size_t(t)][size_t(p)].get<int64_t>();
    total += row;
    const int64_t d = cm[size_t(t)][size_t(t)].get<int64_t>();
    diag += d;
    const double want = row ? double(d) / double(row) : 0.0;
    const double got = pc.at(ember::models::kFashionClasses[t]).get<double>();
    require(std::fabs(got - want) < 1e-12, std::string("per_class_accuracy of ") +
                                               ember::models::kFashionClasses[t] +
                                               " disagrees "
                                               "with the confusion matrix");
  }
  require(total == n_test, "the confusion matrix counts " + std::to_string(total) +
                               " images, expected " + std::to_string(n_test));
  const double acc = js.at("test_accuracy").get<double>();
  require(std::fabs(acc - double(diag) / double(total)) < 1e-12,
          "test_accuracy disagrees with the confusion matrix");
  require(std::fabs(acc - ep.back().at("test_accuracy").get<double>()) < 1e-12,
          "test_accuracy is not the last epoch's");
  require(acc >= min_acc,
          "test accuracy " + std::to_string(acc) + " below " + std::to_string(min_acc));
  std::printf("ok: summary.json: %ld epochs, test accuracy %.4f, confusion matrix of %ld images\n",
              long(epochs), acc, long(total));

  // train.csv: a header and one row per epoch, equal to summary.json's figures.
  std::stringstream csv(read_text(join(dir, "train.csv")));
  std::string line;
  std::getline(csv, line);
  require(line == "epoch,train_loss,train_accuracy,test_loss,test_accuracy,lr,train_s,eval_s",
          "train.csv: bad header '" + line + "'");
  int64_t rows = 0;
  while (std::getline(csv, line)) {
    long e = 0;
    double tl = 0, ta = 0, sl = 0, sa = 0;
    require(std::sscanf(line.c_str(), "%ld,%lf,%lf,%lf,%lf", &e, &tl, &ta, &sl, &sa) == 5,
            "train.csv: bad row '" + line + "'");
    require(e == rows + 1, "train.csv: epoch " + std::to_string(e) + " out of order");
    require(std::fabs(sa - ep[size_t(rows)].at("test_accuracy").get<double>()) < 1e-5,
            "train.csv: row " + std::to_string(e) + " disagrees with summary.json");
    ++rows;
  }
  require(rows == epochs, "train.csv: " + std::to_string(rows) + " rows");
  std::printf("ok: train.csv (%ld rows)\n", long(rows));

  check_png(join(dir, "confusion.png"), 400, 400);
  check_png(join(dir, "predictions.png"), 400, 200);

  {
    ember::models::FashionClassifier m(static_cast<int>(size));
    ember::optim::AdamW opt(m.parameters());
    std::map<std::string, std::string> meta;
    ember::io::load_checkpoint(join(dir, "checkpoint.bin"), m, &opt, &meta);
    require(meta["arch"] == "FashionClassifier", "checkpoint.bin: arch '" + meta["arch"] + "'");
    require(meta["epoch"] == std::to_string(epochs), "checkpoint.bin: epoch " + meta["epoch"]);
    std::printf("ok: checkpoint.bin (epoch %s, size %s)\n", meta["epoch"].c_str(),
                meta["size"].c_str());
  }
  {
    ember::io::SafetensorsFile f = ember::io::load_safetensors(join(dir, "model.safetensors"));
    ember::models::FashionClassifier m(static_cast<int>(size));
    ember::io::load_safetensors(f, m, "model.safetensors");
    require(f.metadata["img_size"] == std::to_string(size),
            "model.safetensors: img_size '" + f.metadata["img_size"] + "'");
    require(std::fabs(std::strtod(f.metadata["test_accuracy"].c_str(), nullptr) - acc) < 1e-5,
            "model.safetensors: test_accuracy metadata disagrees with summary.json");
    std::printf("ok: model.safetensors (%zu tensors)\n", f.tensors.size());
  }
  return 0;
}

int same_run(const std::string& a, const std::string& b) {
  const Json ja = read_json(join(a, "summary.json")), jb = read_json(join(b, "summary.json"));
  const int64_t size = ja.at("settings").at("size").get<int64_t>();
  require(jb.at("settings").at("size").get<int64_t>() == size, "different sizes");
  auto load = [&](const std::string& dir, std::map<std::string, std::string>& meta) {
    auto m = std::make_shared<ember::models::FashionClassifier>(int(size));
    auto opt = std::make_shared<ember::optim::AdamW>(m->parameters());
    ember::io::load_checkpoint(join(dir, "checkpoint.bin"), *m, opt.get(), &meta);
    std::vector<std::pair<std::string, ember::Tensor>> all = m->named_parameters();
    for (auto& kv : m->named_buffers()) all.push_back(kv);
    for (auto& kv : opt->named_state()) all.push_back({"optim." + kv.first, kv.second});
    return all;
  };
  std::map<std::string, std::string> ma, mb;
  auto ta = load(a, ma), tb = load(b, mb);
  require(ta.size() == tb.size(), "different tensor counts");
  for (size_t i = 0; i < ta.size(); ++i) {
    std::vector<float> va = ta[i].second.to_vector(), vb = tb[i].second.to_vector();
    require(ta[i].first == tb[i].first && va.size() == vb.size() &&
                std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0,
            "tensor " + ta[i].first + " differs");
  }
  require(ma["epoch"] == mb["epoch"] && ma["dropout_offset"] == mb["dropout_offset"],
          "epoch or dropout generator position differs");
  const Json& ea = ja.at("epochs");
  const Json& eb = jb.at("epochs");
  require(ea.size() == eb.size(), "different epoch counts");
  for (size_t i = 0; i < ea.size(); ++i)
    for (const char* k : {"train_loss", "train_accuracy", "test_loss", "test_accuracy"})
      require(ea[i].at(k) == eb[i].at(k),
              std::string("epoch ") + std::to_string(i + 1) + " " + k + " differs");
  require(ja.at("confusion_matrix") == jb.at("confusion_matrix"), "confusion matrices differ");
  std::printf("ok: %s and %s hold the same run (%zu tensors bitwise equal, %zu epochs)\n",
              a.c_str(), b.c_str(), ta.size(), ea.size());
  return 0;
}

int truncate_file(const std::string& src, const std::string& dst, int64_t bytes) {
  std::string s = read_text(src);
  require(bytes >= 0 && size_t(bytes) <= s.size(), "truncate: bad size");
  std::ofstream out(dst, std::ios::binary);
  out.write(s.data(), std::streamsize(bytes));
  require(bool(out), "cannot write " + dst);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"validates fashion-classify's outputs", "fashion-classify-check"};
  app.require_subcommand(1);
  std::string dir, dir_b, src, dst;
  int64_t epochs = 1, bytes = 0;
  double min_acc = 0.0;
  CLI::App* out = app.add_subcommand("outputs", "check a finished run's --out directory");
  out->add_option("DIR", dir)->required();
  out->add_option("--epochs", epochs)->required();
  out->add_option("--min-accuracy", min_acc);
  CLI::App* same = app.add_subcommand("same-run", "two --out directories hold the same run");
  same->add_option("DIR_A", dir)->required();
  same->add_option("DIR_B", dir_b)->required();
  CLI::App* trunc = app.add_subcommand("truncate", "copy the first BYTES bytes of SRC to DST");
  trunc->add_option("SRC", src)->required();
  trunc->add_option("DST", dst)->required();
  trunc->add_option("BYTES", bytes)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (out->parsed()) return outputs(dir, epochs, min_acc);
    if (same->parsed()) return same_run(dir, dir_b);
    return truncate_file(src, dst, bytes);
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
}
