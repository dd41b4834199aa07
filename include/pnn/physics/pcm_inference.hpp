// SPDX-License-Identifier: MIT
/// \file
/// \brief Inference-time PCM model: programming noise, conductance drift, 1/f read noise and
/// global drift compensation of a crossbar programmed once and read many times.
///
/// After aihwkit's `inference/noise/pcm.py` (Nandakumar et al. 2019; docs/physics.md), with
/// `ĝ = g/g_max`, `g_max = 25 µS`: a trained weight matrix is mapped onto pairs
/// `w = (G⁺ − G⁻)·max|W|/g_max` (the largest weight uses the full range), each device is
/// programmed with noise `σ_prog(ĝ) = (g_max/25)(0.26348 + 1.9650ĝ − 1.1731ĝ²)` µS, draws its own
/// drift exponent `ν ~ N(μ(ĝ), σ(ĝ))` and drifts as `g(t) = g_prog (t/t₀)^(−ν)` for `t > t₀`;
/// each evaluation at `t` adds 1/f read noise of relative size
/// `Q_s(ĝ)·√ln((t + t_r)/(2 t_r))`, `Q_s = min(0.0088/ĝ^0.65, 0.2)`. Global drift compensation
/// rescales the outputs by `ref(t₀)/ref(t)`, the ratio of one reference read right after
/// programming and at `t`; the reference is the total conductance `Σ(G⁺ + G⁻)` of the array (what
/// driving every row with the same voltage and summing all columns of both polarities measures),
/// not `Σ|W|`, which would need the two devices of each pair read separately.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/simd/random.hpp>

namespace pnn::physics {

/// Parameters of the inference-time PCM model (defaults: aihwkit's PCMLikeNoiseModel).
struct pcm_inference_params {
  float g_max = 25.0f;          ///< conductance of the largest weight, µS (> 0)
  double t0 = 20.0;             ///< time of the first (reference) read after programming, s (> 0)
  double t_read = 250e-9;       ///< duration of one read, s (> 0), sets the 1/f noise bandwidth
  float prog_noise_scale = 1;   ///< multiplies σ_prog (0: ideal programming)
  float read_noise_scale = 1;   ///< multiplies Q_s (0: no read noise)
  float drift_scale = 1;        ///< multiplies ν (0: no drift)
  bool drift_compensation = true;  ///< rescale outputs by ref(t₀)/ref(t)

  void validate() const {
    PNN_EXPECTS(g_max > 0 && t0 > 0 && t_read > 0, "pcm_inference_params: g_max, t0 and t_read must be > 0");
    PNN_EXPECTS(prog_noise_scale >= 0 && read_noise_scale >= 0 && drift_scale >= 0,
                "pcm_inference_params: noise scales must be >= 0");
  }
};

namespace pcm_model {
/// Programming noise σ_prog in µS at normalised target `gh = g/g_max ∈ [0, 1]`.
[[nodiscard]] inline double programming_sigma(double gh, double g_max = 25.0) noexcept {
  return (g_max / 25.0) * std::max(0.26348 + 1.9650 * gh - 1.1731 * gh * gh, 0.0);
}
/// Mean drift exponent μ_ν(ĝ) = clamp(−0.0155 ln ĝ + 0.0244, 0.049, 0.1).
[[nodiscard]] inline double drift_mean(double gh) noexcept {
  return std::clamp(-0.0155 * std::log(std::max(gh, 1e-12)) + 0.0244, 0.049, 0.1);
}
/// Spread of the drift exponent σ_ν(ĝ) = clamp(−0.0125 ln ĝ − 0.0059, 0.008, 0.045).
[[nodiscard]] inline double drift_sigma(double gh) noexcept {
  return std::clamp(-0.0125 * std::log(std::max(gh, 1e-12)) - 0.0059, 0.008, 0.045);
}
/// 1/f read-noise amplitude Q_s(ĝ) = min(0.0088/ĝ^0.65, 0.2).
[[nodiscard]] inline double read_noise_q(double gh) noexcept {
  return gh <= 0 ? 0.2 : std::min(0.0088 / std::pow(gh, 0.65), 0.2);
}
/// Drift factor (t/t₀)^(−ν) (1 before t₀).
[[nodiscard]] inline double drift_factor(double t, double t0, double nu) noexcept {
  return t > t0 ? std::pow(t / t0, -nu) : 1.0;
}
/// Time scaling of the 1/f read noise, √ln((t + t_r)/(2 t_r)).
[[nodiscard]] inline double read_noise_time_scale(double t, double t_read) noexcept {
  return std::sqrt(std::max(std::log((t + t_read) / (2 * t_read)), 0.0));
}
}  // namespace pcm_model

/// \brief The programmed state of one crossbar tile under the PCM inference model.
///
/// `program` maps target weights onto noisy conductance pairs and draws each device's drift
/// exponent; `set_time` produces the weights a read at time `t` sees (drift + read noise) and
/// the drift-compensation factor.
class pcm_inference_state {
 public:
  /// Programs `n` target weights `w` (µS pairs on a `g_max` range scaled to `max|w|`).
  void program(const float* w, std::size_t n, const pcm_inference_params& p, rng& g) {
    p.validate();
    params_ = p;
    n_ = n;
    w_max_ = 0;
    for (std::size_t k = 0; k < n; ++k) w_max_ = std::max(w_max_, std::abs(w[k]));
    if (w_max_ == 0) w_max_ = 1;
    gp_.assign(n, 0);
    gm_.assign(n, 0);
    nup_.assign(n, 0);
    num_.assign(n, 0);
    eff_.assign(n, 0);
    std::vector<float> z(4 * n);
    fill_normal(g, z.data(), z.size());
    const double gm = p.g_max;
    for (std::size_t k = 0; k < n; ++k) {
      const double target = double(std::abs(w[k])) / double(w_max_) * gm;
      const double tp = w[k] > 0 ? target : 0.0, tm = w[k] < 0 ? target : 0.0;
      const double sp = p.prog_noise_scale * pcm_model::programming_sigma(tp / gm, gm);
      const double sm = p.prog_noise_scale * pcm_model::programming_sigma(tm / gm, gm);
      const double gpk = std::max(tp + sp * z[4 * k], 0.0);
      const double gmk = std::max(tm + sm * z[4 * k + 1], 0.0);
      gp_[k] = float(gpk);
      gm_[k] = float(gmk);
      nup_[k] = float(p.drift_scale * std::max(pcm_model::drift_mean(gpk / gm) +
                                                   pcm_model::drift_sigma(gpk / gm) * z[4 * k + 2], 0.0));
      num_[k] = float(p.drift_scale * std::max(pcm_model::drift_mean(gmk / gm) +
                                                   pcm_model::drift_sigma(gmk / gm) * z[4 * k + 3], 0.0));
    }
    ref0_ = 0;
    for (std::size_t k = 0; k < n; ++k) ref0_ += double(gp_[k]) + double(gm_[k]);
    set_time_noiseless(p.t0);
  }

  /// Weights a read at `seconds` after programming sees: drift, then 1/f read noise drawn
  /// from `g` (one draw per evaluation time, as aihwkit does). Updates the compensation factor.
  /// \pre programmed; `seconds > 0`.
  void set_time(double seconds, rng& g) {
    PNN_EXPECTS(programmed(), "pcm_inference_state::set_time: program the tile for inference first");
    PNN_EXPECTS(seconds > 0, "pcm_inference_state::set_time: time must be > 0 s");
    time_ = seconds;
    std::vector<float> z(2 * n_);
    fill_normal(g, z.data(), z.size());
    const double gm = params_.g_max;
    const double ts = params_.read_noise_scale * pcm_model::read_noise_time_scale(seconds, params_.t_read);
    double ref = 0;
    const double to_w = double(w_max_) / gm;
    for (std::size_t k = 0; k < n_; ++k) {
      double a = double(gp_[k]) * pcm_model::drift_factor(seconds, params_.t0, double(nup_[k]));
      double b = double(gm_[k]) * pcm_model::drift_factor(seconds, params_.t0, double(num_[k]));
      a = std::max(a * (1 + pcm_model::read_noise_q(a / gm) * ts * z[2 * k]), 0.0);
      b = std::max(b * (1 + pcm_model::read_noise_q(b / gm) * ts * z[2 * k + 1]), 0.0);
      ref += a + b;
      eff_[k] = float((a - b) * to_w);
    }
    scale_ = (params_.drift_compensation && ref > 0) ? float(ref0_ / ref) : 1.0f;
  }

  /// Switches global drift compensation on or off (takes effect at the next `set_time`).
  void set_drift_compensation(bool on) noexcept { params_.drift_compensation = on; }

  [[nodiscard]] bool programmed() const noexcept { return n_ != 0; }
  [[nodiscard]] double time() const noexcept { return time_; }
  /// Effective weights of the last `set_time` (normalised units).
  [[nodiscard]] const float* weights() const noexcept { return eff_.data(); }
  /// Digital output rescaling from drift compensation (1 when off).
  [[nodiscard]] float output_scale() const noexcept { return scale_; }
  /// Programmed conductances (µS) of the positive and negative devices, and their ν.
  [[nodiscard]] const std::vector<float>& g_plus() const noexcept { return gp_; }
  [[nodiscard]] const std::vector<float>& g_minus() const noexcept { return gm_; }
  [[nodiscard]] const std::vector<float>& nu_plus() const noexcept { return nup_; }
  [[nodiscard]] const std::vector<float>& nu_minus() const noexcept { return num_; }
  [[nodiscard]] const pcm_inference_params& params() const noexcept { return params_; }
  void clear() noexcept { *this = pcm_inference_state{}; }

 private:
  void set_time_noiseless(double t) {
    const double to_w = double(w_max_) / params_.g_max;
    for (std::size_t k = 0; k < n_; ++k) eff_[k] = float((double(gp_[k]) - double(gm_[k])) * to_w);
    time_ = t;
    scale_ = 1;
  }

  pcm_inference_params params_{};
  std::size_t n_ = 0;
  float w_max_ = 1;
  double ref0_ = 0;
  double time_ = 0;
  float scale_ = 1;
  std::vector<float> gp_, gm_, nup_, num_, eff_;
};

/// Programs every layer whose tile supports it (`program_inference`) with its current weights.
/// Layer `i` draws from `g.split(i)`.
template <class Net>
void program_inference(Net& net, const pcm_inference_params& p, rng& g) {
  net.for_each_layer([&](auto& l, std::size_t i) {
    rng gl = g.split(i);
    tile_hooks::program_inference(l.tile, p, gl);
  });
}

/// Evaluates every programmed layer at `seconds` after programming (drift + read noise).
template <class Net>
void set_time(Net& net, double seconds, rng& g) {
  net.for_each_layer([&](auto& l, std::size_t i) {
    rng gl = g.split(i);
    tile_hooks::set_time(l.tile, seconds, gl);
  });
}

/// Switches global drift compensation on every programmed layer (applies at the next `set_time`).
template <class Net>
void set_drift_compensation(Net& net, bool on) {
  net.for_each_layer([&](auto& l, std::size_t) {
    tile_hooks::set_drift_compensation(l.tile, on);
  });
}

}  // namespace pnn::physics
