// SPDX-License-Identifier: MIT
/// \file
/// \brief Inference-time PCM model: programming noise, conductance drift, 1/f read noise and
/// global drift compensation of a crossbar programmed once and read many times.
///
/// After aihwkit's `inference/noise/pcm.py` (Nandakumar et al. 2019; docs/physics.md), with
/// `ĝ = g/g_max`, `g_max = 25 µS`: a trained weight matrix is mapped onto pairs
/// `w = (G⁺ − G⁻)·max|W|/g_max` (the largest weight uses the full range), each device is
/// programmed with noise `σ_prog(ĝ) = (g_max/25)(0.26348 + 1.9650ĝ − 1.1731ĝ²)` µS, draws its own
/// drift exponent `ν = |μ(ĝ) + σ(ĝ) z|`, `z ~ N(0, 1)`, and drifts as `g(t) = g_prog (t/t₀)^(−ν)`.
/// Time runs from programming: the first (reference) read is at `t₀` and an evaluation
/// `t_inference` seconds after it is at `t = t_inference + t₀`, as in aihwkit. Each evaluation
/// adds 1/f read noise `|g(t)|·Q_s(ĝ_prog)·√ln((t + t_r)/(2 t_r))·z`, with
/// `Q_s = min(0.0088/ĝ^0.65, 0.2)` taken at the *programmed* conductance, and clips at 0
/// (`pcm_model::conductance_at`; tests/devices.cpp checks it against values computed by
/// tests/fixtures/pcm_reference.py from these formulas). Global drift compensation
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
/// Drift factor (t/t₀)^(−ν) at `t` seconds after programming (1 up to t₀).
[[nodiscard]] inline double drift_factor(double t, double t0, double nu) noexcept {
  return t > t0 ? std::pow(t / t0, -nu) : 1.0;
}
/// Time scaling of the 1/f read noise, √ln((t + t_r)/(2 t_r)).
[[nodiscard]] inline double read_noise_time_scale(double t, double t_read) noexcept {
  return std::sqrt(std::max(std::log((t + t_read) / (2 * t_read)), 0.0));
}
/// A device's drift exponent `|μ_ν(ĝ) + σ_ν(ĝ) z|` for a standard normal draw `z` (aihwkit folds
/// the negative tail instead of clipping it, so no device has ν = 0 by construction).
[[nodiscard]] inline double drift_exponent(double gh, double z) noexcept {
  return std::abs(drift_mean(gh) + drift_sigma(gh) * z);
}
/// Conductance (µS) of a device programmed to `g_prog` with drift exponent `nu`, read
/// `t_inference` s after the reference read: drift to `t = t_inference + t₀`, then 1/f read noise
/// `|g(t)|·read_noise_scale·Q_s(g_prog/g_max)·√ln((t + t_r)/(2 t_r))·z`, clipped at 0.
[[nodiscard]] inline double conductance_at(double g_prog, double nu, double t_inference, double z,
                                           const pcm_inference_params& p) noexcept {
  const double t = t_inference + p.t0;
  const double g = g_prog * drift_factor(t, p.t0, nu);
  const double noise = double(p.read_noise_scale) * read_noise_q(g_prog / double(p.g_max)) *
                       read_noise_time_scale(t, p.t_read);
  return std::max(g + std::abs(g) * noise * z, 0.0);
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
      nup_[k] = float(p.drift_scale * pcm_model::drift_exponent(gpk / gm, z[4 * k + 2]));
      num_[k] = float(p.drift_scale * pcm_model::drift_exponent(gmk / gm, z[4 * k + 3]));
    }
    ref0_ = 0;
    for (std::size_t k = 0; k < n; ++k) ref0_ += double(gp_[k]) + double(gm_[k]);
    set_time_noiseless();
  }

  /// Weights a read `seconds` after the reference read sees (`t = seconds + t₀` after
  /// programming): drift, then 1/f read noise drawn from `g` (one draw per evaluation time, as
  /// aihwkit does). Updates the compensation factor.
  /// \pre programmed; `seconds` ≥ 0 and finite (else `pnn::error`, nothing changed).
  void set_time(double seconds, rng& g) {
    PNN_EXPECTS(programmed(), "pcm_inference_state::set_time: program the tile for inference first");
    PNN_EXPECTS(seconds >= 0 && std::isfinite(seconds),
                "pcm_inference_state::set_time: time after the reference read must be >= 0 s and finite");
    time_ = seconds;
    std::vector<float> z(2 * n_);
    fill_normal(g, z.data(), z.size());
    double ref = 0;
    const double to_w = double(w_max_) / params_.g_max;
    for (std::size_t k = 0; k < n_; ++k) {
      const double a = pcm_model::conductance_at(gp_[k], nup_[k], seconds, z[2 * k], params_);
      const double b = pcm_model::conductance_at(gm_[k], num_[k], seconds, z[2 * k + 1], params_);
      ref += a + b;
      eff_[k] = float((a - b) * to_w);
    }
    scale_ = (params_.drift_compensation && ref > 0) ? float(ref0_ / ref) : 1.0f;
  }

  /// Switches global drift compensation on or off (takes effect at the next `set_time`).
  void set_drift_compensation(bool on) noexcept { params_.drift_compensation = on; }

  [[nodiscard]] bool programmed() const noexcept { return n_ != 0; }
  /// Seconds after the reference read of the last evaluation (0 right after programming).
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

  /// Checkpoint contents (pnn/core/state_format.hpp): parameters, the programmed conductance
  /// pairs, drift exponents, clock and compensation.
  template <class V>
  void visit_state(V& v) {
    v("g_max", params_.g_max);
    v("t0", params_.t0);
    v("t_read", params_.t_read);
    v("prog_noise_scale", params_.prog_noise_scale);
    v("read_noise_scale", params_.read_noise_scale);
    v("drift_scale", params_.drift_scale);
    v("drift_compensation", params_.drift_compensation);
    v("devices", n_);
    v("w_max", w_max_);
    v("reference", ref0_);
    v("time", time_);
    v("output_scale", scale_);
    v("g_plus", gp_);
    v("g_minus", gm_);
    v("nu_plus", nup_);
    v("nu_minus", num_);
    v("effective", eff_);
  }
 private:
  void set_time_noiseless() {
    const double to_w = double(w_max_) / params_.g_max;
    for (std::size_t k = 0; k < n_; ++k) eff_[k] = float((double(gp_[k]) - double(gm_[k])) * to_w);
    time_ = 0;
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

/// Evaluates every programmed layer `seconds` (≥ 0) after its reference read, i.e. `seconds + t₀`
/// after programming (drift + read noise).
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
