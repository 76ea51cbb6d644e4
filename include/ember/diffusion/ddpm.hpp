// @file include/ember/diffusion/ddpm.hpp
// @brief DDPM (Ho et al. 2020) as the course's notebooks 02-04 use it: a linear beta schedule,
//        q_sample, the epsilon-prediction loss, ancestral sampling, classifier-free guidance
//        and DDIM sampling with fewer steps. Every random number comes from a seeded Philox
//        Generator, so a run is reproducible (and the same on the CPU and CUDA).
//
// Schedule (float32, bit for bit as PyTorch computes it on the CPU): betas = linspace(beta_start,
// beta_end, T) (detail::torch_cpu_linspace),
// alphas = 1 - betas, alpha_bar = cumprod(alphas) (accumulated in double, rounded per entry, as
// torch.cumprod on the CPU). Timesteps are 0-based: t in [0, T).
//   q_sample:  x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps       (t per sample)
//   loss:      mse(eps_theta(x_t, t), eps)
//   step:      x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t)
//                        + sigma_t z,      no noise at t = 0
//   sigma_t:   Sigma::beta       sqrt(beta_t)                          (default; DDPM's sigma^2 =
//   beta)
//              Sigma::beta_prev  sqrt(beta_{t-1})                      (one step behind)
//              Sigma::posterior  sqrt(beta_t (1 - abar_{t-1}) / (1 - abar_t))   (DDPM's beta~)
//   guidance:  eps = (1 + w) eps_theta(x, c) - w eps_theta(x, 0)   (both in one batched forward)
//   ddim_step: x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t);
//              sigma = eta sqrt((1 - abar_p) / (1 - abar_t) (1 - abar_t / abar_p));
//              x_p = sqrt(abar_p) x0 + sqrt(1 - abar_p - sigma^2) eps + sigma z
//              (abar_p = 1 when t_prev = -1, the last step).
// A timestep tensor holds N float values that are exact integers in [0, T) (ember keeps integer
// data in float32 tensors); the coefficients are gathered on the host (one small copy).
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../ember.hpp"

namespace ember::diffusion {

namespace detail {
/// torch.linspace(start, end, steps) in float32 bit for bit as PyTorch's CPU kernel computes it
/// (measured against PyTorch 1.13, whose AVX2 kernel this follows): blocks of 16 values, each
/// two 8-lane vectors whose lane k is base + float(k * step), with base = fma(step, i, start)
/// when the vector starts (at i) in the first half and fma(-step, steps - 1 - i, end) otherwise;
/// the last steps % 16 values one by one with the same fma forms. ember::linspace computes
/// every value by the fma forms, which differs from this in the last bit for some values.
inline std::vector<float> torch_cpu_linspace(double start, double end, int64_t steps) {
  const float s = static_cast<float>(start), e = static_cast<float>(end);
  std::vector<float> y(static_cast<size_t>(steps));
  if (steps == 1) {
    y[0] = s;
    return y;
  }
  const float step = (e - s) / static_cast<float>(steps - 1);
  const int64_t half = steps / 2;
  auto at = [&](int64_t i) {
    return i < half ? std::fma(step, static_cast<float>(i), s)
                    : std::fma(-step, static_cast<float>(steps - 1 - i), e);
  };
  int64_t i = 0;
  for (; i + 16 <= steps; i += 16) {
    for (int64_t v = i; v < i + 16; v += 8) {
      const float base = at(v);
      for (int k = 0; k < 8; ++k) {
        volatile float p = static_cast<float>(k) * step;  // rounded on its own, never fused
        y[static_cast<size_t>(v + k)] = base + p;
      }
    }
  }
  for (; i < steps; ++i) y[static_cast<size_t>(i)] = at(i);
  return y;
}
}  // namespace detail

/// The standard deviation of the noise added by an ancestral sampling step (see above).
enum class Sigma { beta, beta_prev, posterior };

/// A noise-prediction network as the samplers call it: eps = f(x_t, t) with t of N timesteps.
using EpsFn = std::function<Tensor(const Tensor& x_t, const Tensor& t)>;

class DDPM {
 public:
  explicit DDPM(int T = 150, double beta_start = 1e-4, double beta_end = 0.02,
                Sigma sigma = Sigma::beta)
      : T_(T), sigma_kind_(sigma) {
    const char* op = "DDPM";
    check_arg(T >= 2, op, "T must be at least 2, got ", T);
    check_arg(std::isfinite(beta_start) && std::isfinite(beta_end) && beta_start > 0 &&
                  beta_end > 0 && beta_start < 1 && beta_end < 1,
              op, "betas must lie in (0, 1), got beta_start ", beta_start, " and beta_end ",
              beta_end);
    betas_ = detail::torch_cpu_linspace(beta_start, beta_end, T);
    alphas_.resize(T);
    alpha_bars_.resize(T);
    double acc = 1.0;  // torch.cumprod accumulates float32 in double on the CPU
    for (int i = 0; i < T; ++i) {
      alphas_[i] = 1.0f - betas_[i];
      acc *= double(alphas_[i]);
      alpha_bars_[i] = static_cast<float>(acc);
    }
  }

  int T() const { return T_; }
  Sigma sigma_kind() const { return sigma_kind_; }
  const std::vector<float>& betas() const { return betas_; }
  const std::vector<float>& alphas() const { return alphas_; }
  const std::vector<float>& alpha_bars() const { return alpha_bars_; }

  /// sigma_t of an ancestral step from t (t >= 1; the step from t = 0 adds no noise).
  float sigma(int t) const {
    check_t("DDPM::sigma", t);
    check_arg(t >= 1, "DDPM::sigma",
              "sigma is defined for t >= 1 (the step from t = 0 adds no "
              "noise), got ",
              t);
    switch (sigma_kind_) {
      case Sigma::beta:
        return std::sqrt(betas_[t]);
      case Sigma::beta_prev:
        return std::sqrt(betas_[t - 1]);
      case Sigma::posterior:
        return std::sqrt(betas_[t] * (1.0f - alpha_bars_[t - 1]) / (1.0f - alpha_bars_[t]));
    }
    return 0.0f;
  }

  /// n timesteps drawn uniformly from [0, T) (torch.randint(0, T, (n,))), as float values.
  Tensor sample_timesteps(int64_t n, Generator& gen, Device device = Device::cpu) const {
    check_arg(n > 0, "DDPM::sample_timesteps", "n must be positive, got ", n);
    std::vector<float> u = rand(Shape{n}, gen).to_vector();
    for (float& v : u) v = std::min(std::floor(v * float(T_)), float(T_ - 1));
    return from_vector(u, Shape{n}, device);
  }

  /// x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, with t[i] for sample i (x0: (N, ...)).
  Tensor q_sample(const Tensor& x0, const Tensor& t, const Tensor& noise) const {
    const char* op = "DDPM::q_sample";
    check_arg(x0.dim() >= 1 && noise.shape() == x0.shape(), op,
              "x0 and noise must have the same shape (N, ...), got ", to_string(x0.shape()),
              " and ", to_string(noise.shape()));
    std::vector<int> ts = timesteps(op, t, x0.shape()[0]);
    std::vector<float> a(ts.size()), b(ts.size());
    for (size_t i = 0; i < ts.size(); ++i) {
      a[i] = std::sqrt(alpha_bars_[ts[i]]);
      b[i] = std::sqrt(1.0f - alpha_bars_[ts[i]]);
    }
    Shape cs(x0.dim(), 1);
    cs[0] = x0.shape()[0];
    return from_vector(a, cs, x0.device()) * x0 + from_vector(b, cs, x0.device()) * noise;
  }

  struct Noised {
    Tensor x_t, t, noise;
  };
  /// Draws t uniformly in [0, T) per sample and noise ~ N(0, 1), and returns q_sample's x_t.
  Noised add_noise(const Tensor& x0, Generator& gen) const {
    check_arg(x0.dim() >= 1, "DDPM::add_noise", "x0 must have a batch dimension, got ",
              to_string(x0.shape()));
    Noised r;
    r.t = sample_timesteps(x0.shape()[0], gen, x0.device());
    r.noise = randn(x0.shape(), gen, x0.device());
    r.x_t = q_sample(x0, r.t, r.noise);
    return r;
  }

  /// The epsilon-prediction loss: mse(eps_model(x_t, t), noise) for a fresh t and noise.
  Tensor loss(const EpsFn& eps_model, const Tensor& x0, Generator& gen) const {
    Noised n = add_noise(x0, gen);
    return mse_loss(eps_model(n.x_t, n.t), n.noise);
  }

  /// One ancestral step from x_t to x_{t-1} given the predicted noise eps and the fresh noise z
  /// (z is not used, and may be undefined, at t = 0).
  Tensor step(const Tensor& x_t, int t, const Tensor& eps, const Tensor& z) const {
    const char* op = "DDPM::step";
    check_t(op, t);
    check_arg(eps.shape() == x_t.shape(), op, "eps must have x_t's shape ", to_string(x_t.shape()),
              ", got ", to_string(eps.shape()));
    const float coef = betas_[t] / std::sqrt(1.0f - alpha_bars_[t]);
    Tensor mean = (x_t - eps * coef) / std::sqrt(alphas_[t]);
    if (t == 0) return mean;
    check_arg(z.defined() && z.shape() == x_t.shape(), op, "z must have x_t's shape ",
              to_string(x_t.shape()), " for t = ", t);
    return mean + z * sigma(t);
  }
  /// The same, drawing z ~ N(0, 1) from gen (nothing is drawn at t = 0).
  Tensor step(const Tensor& x_t, int t, const Tensor& eps, Generator& gen) const {
    check_t("DDPM::step", t);
    return step(x_t, t, eps, t > 0 ? randn(x_t.shape(), gen, x_t.device()) : Tensor());
  }

  /// One DDIM step from t to t_prev (t_prev < t; -1 for the last step to x_0). eta = 0 is
  /// deterministic (z unused, may be undefined); eta = 1 adds DDPM-like noise.
  Tensor ddim_step(const Tensor& x_t, int t, int t_prev, const Tensor& eps, float eta = 0.0f,
                   const Tensor& z = Tensor()) const {
    const char* op = "DDPM::ddim_step";
    check_t(op, t);
    check_arg(t_prev >= -1 && t_prev < t, op, "t_prev must be in [-1, t), got t ", t,
              " and t_prev ", t_prev);
    check_arg(eta >= 0.0f && std::isfinite(eta), op, "eta must be finite and >= 0, got ", eta);
    check_arg(eps.shape() == x_t.shape(), op, "eps must have x_t's shape ", to_string(x_t.shape()),
              ", got ", to_string(eps.shape()));
    const float ab = alpha_bars_[t], abp = t_prev >= 0 ? alpha_bars_[t_prev] : 1.0f;
    Tensor x0 = (x_t - eps * std::sqrt(1.0f - ab)) / std::sqrt(ab);
    const float sig = eta * std::sqrt((1.0f - abp) / (1.0f - ab) * (1.0f - ab / abp));
    const float dir = std::sqrt(std::max(1.0f - abp - sig * sig, 0.0f));
    Tensor out = x0 * std::sqrt(abp) + eps * dir;
    if (sig == 0.0f) return out;
    check_arg(z.defined() && z.shape() == x_t.shape(), op, "z must have x_t's shape ",
              to_string(x_t.shape()), " when eta > 0");
    return out + z * sig;
  }

  /// `steps` DDIM timesteps from T - 1 down (evenly spaced, floor(i T / steps) for
  /// i = steps - 1 .. 0), e.g. T = 150, steps = 3: {100, 50, 0}.
  std::vector<int> ddim_timesteps(int steps) const {
    check_arg(steps >= 1 && steps <= T_, "DDPM::ddim_timesteps", "steps must be in [1, T = ", T_,
              "], got ", steps);
    std::vector<int> ts;
    for (int i = steps - 1; i >= 0; --i) ts.push_back(static_cast<int>((int64_t(i) * T_) / steps));
    return ts;
  }

  /// Ancestral sampling: x_{T-1} ~ N(0, 1) of `shape`, then T steps down to x_0 (no graph is
  /// recorded). Put a model with BatchNorm in eval mode first.
  Tensor sample(const EpsFn& eps_model, const Shape& shape, Generator& gen,
                Device device = Device::cpu) const {
    NoGradGuard ng;
    Tensor x = randn(shape, gen, device);
    for (int t = T_ - 1; t >= 0; --t) x = step(x, t, eps_model(x, full_t(shape, t, device)), gen);
    return x;
  }

  /// DDIM sampling with `steps` model calls (ddim_timesteps(steps)); eta as in ddim_step.
  Tensor sample_ddim(const EpsFn& eps_model, const Shape& shape, int steps, Generator& gen,
                     float eta = 0.0f, Device device = Device::cpu) const {
    NoGradGuard ng;
    std::vector<int> ts = ddim_timesteps(steps);
    Tensor x = randn(shape, gen, device);
    for (size_t i = 0; i < ts.size(); ++i) {
      const int t = ts[i], tp = i + 1 < ts.size() ? ts[i + 1] : -1;
      Tensor eps = eps_model(x, full_t(shape, t, device));
      Tensor z = eta > 0.0f ? randn(shape, gen, device) : Tensor();
      x = ddim_step(x, t, tp, eps, eta, z);
    }
    return x;
  }

 private:
  void check_t(const char* op, int t) const {
    check_arg(t >= 0 && t < T_, op, "timestep must be in [0, T = ", T_, "), got ", t);
  }
  std::vector<int> timesteps(const char* op, const Tensor& t, int64_t n) const {
    check_arg(t.numel() == n, op, "expected ", n, " timesteps, got t of shape ",
              to_string(t.shape()));
    std::vector<float> v = t.detach().to_vector();
    std::vector<int> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      check_arg(std::isfinite(v[i]) && v[i] == std::floor(v[i]) && v[i] >= 0 && v[i] < T_, op,
                "timesteps must be integers in [0, T = ", T_, "), got ", v[i], " at ", i);
      out[i] = static_cast<int>(v[i]);
    }
    return out;
  }
  static Tensor full_t(const Shape& shape, int t, Device device) {
    check_arg(!shape.empty(), "DDPM::sample", "shape must have a batch dimension");
    return full(Shape{shape[0]}, float(t), device);
  }

  int T_;
  Sigma sigma_kind_;
  std::vector<float> betas_, alphas_, alpha_bars_;
};

/// Classifier-free guidance: (1 + w) eps_cond - w eps_uncond.
inline Tensor guidance(const Tensor& eps_cond, const Tensor& eps_uncond, float w) {
  check_arg(eps_cond.shape() == eps_uncond.shape(), "guidance",
            "eps_cond and eps_uncond must have the same shape, got ", to_string(eps_cond.shape()),
            " and ", to_string(eps_uncond.shape()));
  return eps_cond * (1.0f + w) - eps_uncond * w;
}

/// The context mask of classifier-free training: (n, 1) of Bernoulli(keep_prob) values (1 keeps
/// a sample's class, 0 drops it), e.g. keep_prob 0.9 to drop 10% of the labels.
inline Tensor context_mask(int64_t n, float keep_prob, Generator& gen,
                           Device device = Device::cpu) {
  check_arg(n > 0 && keep_prob >= 0.0f && keep_prob <= 1.0f, "context_mask",
            "need n > 0 and keep_prob in [0, 1], got n ", n, " and keep_prob ", keep_prob);
  std::vector<float> u = rand(Shape{n, 1}, gen).to_vector();
  for (float& v : u) v = v < keep_prob ? 1.0f : 0.0f;
  return from_vector(u, Shape{n, 1}, device);
}

/// An EpsFn with classifier-free guidance for a class-conditioned model called as
/// model.forward(x, t, c, c_mask) (models::CondUNet): both branches in one forward of batch 2N
/// (x and t twice; c twice; mask 1 for the first N, 0 for the rest), then guidance(w).
/// `model` must outlive the returned function; c is (N, n_classes).
template <class Model>
EpsFn guided(Model& model, Tensor c, float w) {
  return [&model, c = std::move(c), w](const Tensor& x, const Tensor& t) {
    const int64_t n = x.shape()[0];
    check_arg(c.dim() == 2 && c.shape()[0] == n, "guided", "c must be (N, n_classes) with N = ", n,
              ", got ", to_string(c.shape()));
    Tensor mask = cat({ones(Shape{n, 1}, x.device()), zeros(Shape{n, 1}, x.device())}, 0);
    Tensor e = model.forward(cat({x, x}, 0), cat({reshape(t, Shape{n}), reshape(t, Shape{n})}, 0),
                             cat({c, c}, 0), mask);
    return guidance(narrow(e, 0, 0, n), narrow(e, 0, n, n), w);
  };
}

}  // namespace ember::diffusion
