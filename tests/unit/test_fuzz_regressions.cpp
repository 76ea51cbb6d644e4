// @file tests/unit/test_fuzz_regressions.cpp
// @brief Replays every fuzz seed (tests/fuzz/corpus/<reader>/) and every input a fuzzer ever
//        flagged (tests/fuzz/regressions/<reader>/) through the harness code
//        (tests/fuzz/fuzz_targets.hpp): each must be accepted or rejected with ember::Error;
//        no other exception, no broken invariant, no crash (the ASan/UBSan CI build runs this).
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "../fuzz/fuzz_targets.hpp"
#include "../support/catch.hpp"

namespace {

namespace fs = std::filesystem;

const std::string kFuzzDir = std::string(EMBER_FIXTURE_DIR) + "/../../fuzz";

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

using Target = int (*)(const uint8_t*, size_t);

/// Runs `target` on every file of corpus/<reader> and regressions/<reader>; returns how many
/// corpus seeds were accepted by at least one entry point.
int replay(const std::string& reader, Target target) {
  int accepted = 0;
  size_t corpus = 0;
  for (const std::string sub : {"corpus", "regressions"}) {
    for (const std::string& path : files_in(kFuzzDir + "/" + sub + "/" + reader)) {
      std::vector<uint8_t> bytes = ember::io::read_file(path);
      std::string failure;
      int ok = 0;
      try {
        ok = target(bytes.data(), bytes.size());
      } catch (const std::exception& e) {
        failure = e.what();
      }
      INFO(path << ": " << failure);
      CHECK(failure.empty());
      if (sub == "corpus") {
        ++corpus;
        if (ok > 0) ++accepted;
      }
    }
  }
  CHECK(corpus > 0);  // the seed corpus is there
  return accepted;
}

}  // namespace

TEST_CASE("fuzz regressions: IDX", "[fuzz][idx]") { CHECK(replay("idx", ember_fuzz::idx) >= 4); }
TEST_CASE("fuzz regressions: gzip/zlib/deflate", "[fuzz][deflate]") {
  CHECK(replay("deflate", ember_fuzz::deflate) >= 8);
}
TEST_CASE("fuzz regressions: PNG", "[fuzz][png]") { CHECK(replay("png", ember_fuzz::png) >= 4); }
TEST_CASE("fuzz regressions: checkpoint", "[fuzz][checkpoint]") {
  CHECK(replay("checkpoint", ember_fuzz::checkpoint) >= 2);
}
TEST_CASE("fuzz regressions: safetensors", "[fuzz][safetensors]") {
  CHECK(replay("safetensors", ember_fuzz::safetensors) >= 4);
}
