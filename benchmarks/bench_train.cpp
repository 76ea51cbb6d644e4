// @file benchmarks/bench_train.cpp
// @brief bench-train: one full training step of the seed U-Net (forward, MSE loss, backward,
//        Adam lr 1e-4) per sample, at each --batch size.
//
// Synthetic data made once on the device, as shared/tools/torch_unet.py does: x uniform in
// [-1, 1), a fixed N(0, 1) noise; the step computes noisy = 0.5 x + 0.5 noise itself. Reports
// ms/step (median and min of --iters steps after --warmup steps; on CUDA every step ends with a
// device synchronise), images/s, seconds per 60k-image epoch, peak host memory (VmHWM, reset
// per batch size), peak device memory (ember's caching allocator, reset per batch size) and the
// loss after the timed steps. Check: the loss must be finite and lower than after the first step.
//
// This file is plain C++. bench-train-cuda links it with bench_train_cuda.cu, whose inclusion of
// <ember/ember.hpp> registers the CUDA backend, so --device cuda works there.
//
//   bench-train [--device cpu|cuda] [--batch 32,128,1024] [--iters N] [--warmup N] [--json FILE]
//               [--tiny]
#include <ember/models/unet.hpp>

#include "bench_common.hpp"

namespace {

using ember::Device;
using ember::Tensor;

}  // namespace

int main(int argc, char** argv) {
  try {
    bench::Options o;
    if (!bench::parse_options(argc, argv, o, "bench-train", "")) return 0;
    if (o.batches.empty()) o.batches = o.tiny ? std::vector<int>{4} : std::vector<int>{32, 128, 1024};
    const bool cuda = o.device == "cuda";
    const int iters = o.iters > 0 ? o.iters : (o.tiny ? 2 : (cuda ? 50 : 10));
    const int warmup = o.warmup >= 0 ? o.warmup : (o.tiny ? 1 : (cuda ? 10 : 2));
    const Device dev = cuda ? Device::cuda : Device::cpu;
    if (cuda && !ember::cuda::is_available()) {
      std::fprintf(stderr, "bench-train: %s\n",
                   ember::cuda::is_compiled()
                       ? "no CUDA device is visible"
                       : "this build has no CUDA; use bench-train-cuda");
      return 2;
    }
    const ember::detail::CudaBackend* cb = cuda ? &ember::detail::cuda("bench-train") : nullptr;

    bench::JsonOut out(o.json);
    bench::Json info;
    info.str("bench", "info").str("impl", "ember").str("device", o.device);
    info.integer("threads", ember::cpu::num_threads()).integer("iters", iters);
    info.integer("warmup", warmup);
    if (cb) info.str("gpu", cb->device_name());
    out.emit(info);
    std::printf("bench-train: seed U-Net train step on %s (%s), %d iters after %d warmup\n",
                o.device.c_str(),
                cb ? cb->device_name()
                   : (std::to_string(ember::cpu::num_threads()) + " threads").c_str(),
                iters, warmup);
    std::printf("%6s %11s %11s %10s %12s %14s %14s %10s  %s\n", "batch", "ms/step", "min ms",
                "img/s", "s/epoch60k", "peak host MiB", "peak dev MiB", "loss", "check");

    int failures = 0;
    for (int B : o.batches) {
      if (cb) {
        cb->empty_cache();
        cb->reset_peak();
      } else {
        ember::detail::CpuCachingAllocator::instance().release_cache();
      }
      bench::reset_peak_rss();

      ember::manual_seed(0);
      ember::models::UNet net;
      net.to(dev);
      net.train();
      ember::optim::Adam opt(net.parameters(), {/*lr=*/1e-4f});
      ember::Generator gen(1);
      Tensor x = ember::rand({B, 1, 16, 16}, gen, dev) * 2.0f - 1.0f;
      Tensor noise = ember::randn({B, 1, 16, 16}, gen, dev);
      Tensor loss;
      auto step = [&] {
        opt.zero_grad();
        Tensor noisy = x * 0.5f + noise * 0.5f;
        loss = ember::mse_loss(net.forward(noisy), x);
        loss.backward();
        opt.step();
        if (cb) cb->synchronize();
      };
      step();
      const float first_loss = loss.item();
      bench::Stats st = bench::time_host(step, warmup, iters);
      const float last_loss = loss.item();
      const double host_mib = bench::peak_rss_mib();
      const double dev_mib = cb ? double(cb->peak_bytes_in_use()) / (1 << 20) : NAN;
      const bool ok = std::isfinite(last_loss) && last_loss < first_loss;
      if (!ok) ++failures;

      const double img_s = B / (st.median * 1e-3);
      const double epoch = 60000.0 / B * st.median * 1e-3;
      bench::Json j;
      j.str("bench", "train").str("impl", "ember").str("device", o.device).integer("batch", B);
      j.integer("iters", iters).num("ms", st.median).num("min_ms", st.min);
      j.num("img_per_s", img_s).num("epoch60k_s", epoch);
      j.num("peak_host_mib", host_mib, 5).num("peak_device_mib", dev_mib, 5);
      j.num("loss_first", first_loss).num("loss", last_loss).str("check", ok ? "PASS" : "FAIL");
      out.emit(j);
      std::printf("%6d %11.3f %11.3f %10.0f %12.2f %14.1f %14.1f %10.5f  %s\n", B, st.median,
                  st.min, img_s, epoch, host_mib, dev_mib, last_loss,
                  ok ? "PASS" : "FAIL (loss not finite or not decreasing)");
      std::fflush(stdout);
    }
    return failures ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-train: %s\n", e.what());
    return 2;
  }
}
