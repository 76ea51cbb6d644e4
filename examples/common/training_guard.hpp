// @file examples/common/training_guard.hpp
// @brief What every example's training loop needs to stop cleanly: Ctrl-C / SIGTERM handling,
//        detection of the first non-finite loss or gradient, a writable output directory checked
//        before any work, and the NaN test hook.
//
// Stop signals: install_stop_handlers() makes SIGINT and SIGTERM set a flag (async-signal-safe;
// the handler also writes one line to stderr with write(2)). The loop polls stop_signal() after
// each step, writes a checkpoint and exits with stop_exit_code() (128 + the signal: 130 for
// SIGINT, 143 for SIGTERM). The handlers reset themselves (SA_RESETHAND), so a second Ctrl-C
// ends the program at once.
//
// Non-finite values: gradient_probe() sums grad * 0 over all parameters on their device; the
// result is 0 when every gradient is finite and NaN otherwise, so the loop can keep it (like the
// loss) as a tensor and read it back when it reads the loss, without a device sync per step.
// check_step_finite() throws NonFiniteError naming the step and what was not finite.
//
// Test hook: EMBER_EXAMPLE_INJECT_NAN=loss@K multiplies the loss of step K (1-based, global)
// by NaN before backward (the NaN then reaches every gradient and, through Adam, the weights, as
// a real divergence would); EMBER_EXAMPLE_INJECT_NAN=grad@K sets one gradient element of step K
// to NaN while the loss stays finite. It exists only so that tests can force the failure; it is
// off when the variable is unset, and a malformed value is an error.
#pragma once
#include <ember/ember.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace ember_examples {

// ---- stop signals ----

inline volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" inline void ember_examples_on_stop_signal(int sig) {
  g_stop_signal = sig;
  const char* msg =
      sig == SIGINT
          ? "\nreceived SIGINT: stopping at the next safe point and writing a checkpoint "
            "(press Ctrl-C again to quit at once)\n"
          : "\nreceived SIGTERM: stopping at the next safe point and writing a checkpoint\n";
  ssize_t ignored = ::write(STDERR_FILENO, msg, std::strlen(msg));
  (void)ignored;
}

inline void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = ember_examples_on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // the second signal gets the default action: quit at once
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

/// The signal that asked us to stop (SIGINT or SIGTERM), or 0.
inline int stop_signal() {
  return int(g_stop_signal);
}
inline int stop_exit_code() {
  return 128 + stop_signal();
}
inline const char* stop_signal_name() {
  return stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT";
}

// ---- non-finite values ----

struct NonFiniteError : ember::Error {
  NonFiniteError(int64_t step_, const std::string& kind_, const std::string& msg)
      : ember::Error(msg), step(step_), kind(kind_) {}
  int64_t step;
  std::string kind;  // "loss" or "gradient"
};

/// A one-element tensor on the parameters' device: 0 when every gradient is finite, NaN when
/// any element of any gradient is NaN or infinite. Undefined when no parameter has a gradient.
inline ember::Tensor gradient_probe(const std::vector<ember::Tensor>& params) {
  ember::NoGradGuard guard;
  ember::Tensor acc;
  for (const ember::Tensor& p : params) {
    ember::Tensor g = p.grad();
    if (!g.defined()) continue;
    ember::Tensor s = ember::sum(g * 0.0f);
    acc = acc.defined() ? acc + s : s;
  }
  return acc;
}

/// Throws NonFiniteError when the loss or the gradient probe of `step` is not finite.
inline void check_step_finite(int64_t step, float loss, float grad_probe) {
  if (!std::isfinite(loss))
    throw NonFiniteError(step, "loss",
                         "non-finite loss (" + std::string(std::isnan(loss) ? "nan" : "inf") +
                             ") at step " + std::to_string(step));
  if (!std::isfinite(grad_probe))
    throw NonFiniteError(step, "gradient",
                         "non-finite gradient at step " + std::to_string(step) +
                             " (the loss was finite: " + std::to_string(loss) + ")");
}

// ---- the NaN test hook ----

class NanInjection {
 public:
  /// Reads EMBER_EXAMPLE_INJECT_NAN; throws ember::Error when it is set but malformed.
  NanInjection() {
    const char* v = std::getenv("EMBER_EXAMPLE_INJECT_NAN");
    if (v == nullptr || v[0] == '\0') return;
    const std::string s = v;
    const size_t at = s.find('@');
    const std::string kind = s.substr(0, at);
    char* end = nullptr;
    long long k = at == std::string::npos ? 0 : std::strtoll(s.c_str() + at + 1, &end, 10);
    if ((kind != "loss" && kind != "grad") || at == std::string::npos || end == nullptr ||
        *end != '\0' || k < 1)
      throw ember::Error(
          "EMBER_EXAMPLE_INJECT_NAN must be loss@STEP or grad@STEP (a test hook), "
          "got '" +
          s + "'");
    step_ = k;
    grad_ = kind == "grad";
  }
  bool active() const { return step_ > 0; }
  /// The loss of `step`, multiplied by NaN when the hook targets this step's loss.
  ember::Tensor loss(int64_t step, const ember::Tensor& loss) const {
    if (step != step_ || grad_) return loss;
    return loss * std::numeric_limits<float>::quiet_NaN();
  }
  /// After backward: puts a NaN into the first gradient when the hook targets this step's
  /// gradient.
  void gradients(int64_t step, const std::vector<ember::Tensor>& params) const {
    if (step != step_ || !grad_) return;
    for (const ember::Tensor& p : params) {
      ember::Tensor g = p.grad();
      if (!g.defined()) continue;
      ember::Tensor host = g.to(ember::Device::cpu).clone();
      host.data()[0] = std::numeric_limits<float>::quiet_NaN();
      ember::NoGradGuard guard;
      ember::detail::copy_(host, g);
      return;
    }
  }

 private:
  int64_t step_ = 0;
  bool grad_ = false;
};

// ---- output directory ----

/// Throws ember::Error unless a file can be created in the existing directory `dir` (checked by
/// creating and removing a probe file, which also catches read-only filesystems and, unlike
/// access(2), is right for root too).
inline void check_dir_writable(const std::string& dir) {
  const std::string probe = (dir.empty() || dir.back() == '/' ? dir : dir + "/") + ".write-test." +
                            std::to_string(long(::getpid()));
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    throw ember::Error("cannot write to the output directory '" + dir +
                       "': " + std::strerror(errno) + " (choose another with --out DIR)");
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace ember_examples
