// @file tests/unit/test_crash_safety.cpp
// @brief Checkpoints survive SIGKILL at any moment: a forked child saves checkpoints of changing
//        content in a loop, the parent kills it at random (seeded) moments, and after every kill
//        the file on disk is the previous complete checkpoint or a newer complete one (it loads,
//        its CRC verifies, every value matches its sequence number); temp files of dead writers
//        are removed by the next write.
#include <ember/ember.hpp>
#include <ember/io/atomic_file.hpp>
#include <ember/io/checkpoint.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../support/catch.hpp"

namespace {

using ember::Tensor;

struct ScratchDir {
  std::string path;
  ScratchDir() {
    char tmpl[] = "/tmp/ember_crash_XXXXXX";
    char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~ScratchDir() {
    for (const std::string& f : list()) std::remove((path + "/" + f).c_str());
    ::rmdir(path.c_str());
  }
  std::vector<std::string> list() const {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(path.c_str())) {
      while (const dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(n);
      }
      ::closedir(d);
    }
    return out;
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// The value every element k of checkpoint tensor number t holds in the checkpoint with sequence
// number `seq`: an integer below 2^24, so exact in float32.
float pattern(int64_t seq, size_t t, size_t k) {
  return float((uint64_t(seq) * 7919u + uint64_t(t) * 104729u + uint64_t(k)) % 1000003u);
}

// Fills every parameter, buffer and optimizer-state tensor with the pattern of `seq` (raw host
// writes only: no kernels run, so this is safe in a forked child).
void fill(std::vector<std::pair<std::string, Tensor>>& tensors, int64_t seq) {
  for (size_t t = 0; t < tensors.size(); ++t) {
    float* p = tensors[t].second.data();
    for (size_t k = 0; k < size_t(tensors[t].second.numel()); ++k) p[k] = pattern(seq, t, k);
  }
}

// Whether every tensor holds the pattern of `seq`.
bool holds(std::vector<std::pair<std::string, Tensor>>& tensors, int64_t seq) {
  for (size_t t = 0; t < tensors.size(); ++t) {
    const float* p = tensors[t].second.data();
    for (size_t k = 0; k < size_t(tensors[t].second.numel()); ++k)
      if (p[k] != pattern(seq, t, k)) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("checkpoints survive SIGKILL at random moments", "[crash][checkpoint]") {
  ScratchDir dir;
  const std::string path = dir.file("ckpt.bin");
  // 256x256 Linear + Adam: a 0.8 MB checkpoint; a save (mostly its two fsyncs) takes ~25 ms here.
  ember::manual_seed(7);
  ember::nn::Linear model(256, 256);
  ember::optim::Adam opt(model.parameters());
  std::vector<std::pair<std::string, Tensor>> tensors = model.named_parameters();
  for (auto& kv : opt.named_state()) tensors.push_back(kv);  // creates Adam's state now

  const int kills =
      std::getenv("EMBER_CRASH_KILLS") ? std::atoi(std::getenv("EMBER_CRASH_KILLS")) : 200;
  // Kill after a random delay of up to four save times (measured here, so the kills spread over
  // a few saves on slow and fast disks alike, under sanitizers too).
  std::vector<double> save_times;  // median of 5, robust to a disk (or machine) hiccup
  for (int i = 0; i < 5; ++i) {
    const auto s0 = std::chrono::steady_clock::now();
    ember::io::save_checkpoint(path, model, &opt, {{"seq", "-1"}});
    save_times.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s0).count());
  }
  std::sort(save_times.begin(), save_times.end());
  const double save_us = save_times[2];
  std::remove(path.c_str());
  std::mt19937 rng(20261201);
  std::uniform_int_distribution<int> delay_us(0, int(4 * save_us) + 1000);
  int64_t last_seq = -1;  // sequence number on disk after the previous kill (-1: no file yet)
  // Child number r writes sequence numbers r * kRange, r * kRange + 1, ...: each number names
  // one complete save of one child, so what is on disk says exactly who wrote it.
  const int64_t kRange = 1000000;
  int mid_write = 0, advanced = 0, unchanged = 0;
  const auto t0 = std::chrono::steady_clock::now();

  for (int round = 0; round < kills; ++round) {
    const int64_t start_seq = int64_t(round) * kRange;
    std::fflush(stdout);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      try {
        for (int64_t seq = start_seq;; ++seq) {
          fill(tensors, seq);
          ember::io::save_checkpoint(path, model, &opt, {{"seq", std::to_string(seq)}});
        }
      } catch (...) {
        ::_exit(3);
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("round " << round << ", child " << child);
    // The child must have died by our signal, not by an error of its own.
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);

    // Besides the checkpoint at most one temp file may be there: the killed child's own (it
    // died writing), or the previous child's if this one died before its first write removed
    // it (each write removes dead writers' temps before it creates its own).
    const std::vector<std::string> names = dir.list();
    int temps = 0;
    for (const std::string& f : names) {
      if (f == "ckpt.bin") continue;
      REQUIRE(f.compare(0, 13, "ckpt.bin.tmp.") == 0);
      ++temps;
    }
    REQUIRE(temps <= 1);
    if (std::find(names.begin(), names.end(), "ckpt.bin.tmp." + std::to_string(long(child))) !=
        names.end())
      ++mid_write;

    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {  // no complete save yet: allowed only before the first
      REQUIRE(last_seq == -1);
      continue;
    }
    std::map<std::string, std::string> meta;
    fill(tensors, -1);  // so a load that silently did nothing would be caught
    ember::io::load_checkpoint(path, model, &opt, &meta);  // throws on truncation or a bad CRC
    REQUIRE(meta.count("seq") == 1);
    const int64_t seq = std::stoll(meta["seq"]);
    // The previous complete checkpoint, or one the killed child completed.
    const bool same = seq == last_seq;
    REQUIRE((same || (seq >= start_seq && seq < start_seq + kRange)));
    REQUIRE(holds(tensors, seq));
    if (same)
      ++unchanged;
    else
      ++advanced;
    last_seq = seq;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "crash safety: %d SIGKILLs in %.1f s (one save: %.1f ms); %d hit a write in "
      "progress (temp file left), checkpoint advanced %d times, unchanged %d times; all "
      "loaded with a valid CRC\n",
      kills, secs, save_us / 1000, mid_write, advanced, unchanged);
  std::fflush(stdout);
  CHECK(last_seq >= 0);  // at least one save completed
  CHECK(mid_write > 0);  // the kills did land inside writes
  CHECK(advanced > 0);

  // One more write from this (live) process removes the last dead child's temp file.
  fill(tensors, 42);
  ember::io::save_checkpoint(path, model, &opt, {{"seq", "42"}});
  CHECK(dir.list() == std::vector<std::string>{"ckpt.bin"});
}

TEST_CASE("write_file_atomic removes only temp files of dead writers", "[crash][io]") {
  ScratchDir dir;
  const std::string target = dir.file("x.bin");
  // A pid that certainly belonged to a process that is gone: a child we reaped.
  const pid_t dead = ::fork();
  REQUIRE(dead >= 0);
  if (dead == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(dead, &status, 0) == dead);
  const std::string stale = "x.bin.tmp." + std::to_string(long(dead));
  const std::string live = "x.bin.tmp." + std::to_string(long(::getppid()));  // our parent lives
  const std::string other_target = "y.bin.tmp." + std::to_string(long(dead));
  const std::string not_a_pid = "x.bin.tmp.abc";
  for (const std::string& f : {stale, live, other_target, not_a_pid})
    ember::io::write_file_atomic(dir.file(f), std::string("leftover"));
  // write_file_atomic(dir.file(f)) must itself have left no temp of its own.
  REQUIRE(dir.list().size() == 4);

  ember::io::write_file_atomic(target, std::string("new contents"));
  std::vector<std::string> names = dir.list();
  std::sort(names.begin(), names.end());
  std::vector<std::string> want{"x.bin", live, not_a_pid, other_target};
  std::sort(want.begin(), want.end());
  CHECK(names == want);
  const std::vector<uint8_t> got = ember::io::read_file(target);
  CHECK(std::string(got.begin(), got.end()) == "new contents");
}
