// SPDX-License-Identifier: MIT
/// \file
/// \brief Static per-device policies (weights stage): `variation`, `drift`, `stuck_at` (docs/physics.md).
///
/// Each draws one state per device (per weight of an `in`×`out` tile, row-major Out×In like
/// `weight_data()`) in `prepare(in, out, rng&)`, called once by the layer after it drew its
/// initial weights, and maps programmed weights to the effective ones a read computes with in
/// `weights(w, w_eff, n)`; `w_eff` may equal `w` (in place). The per-device draws are stored as
/// standard variates, so changing a σ after `prepare` rescales the same devices. These act on
/// the forward read only; a rule's update is still programmed onto `w`.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/noise/none.hpp>
#include <pnn/noise/stages.hpp>
#include <pnn/simd/random.hpp>

namespace pnn::noise {

/// \brief Device-to-device variation: w_eff = w·(1 + σ_m ξ) + σ_a ζ with ξ, ζ ~ N(0, 1) drawn
/// once per device (fabrication spread of gain and offset; typical 1–10 %). Weights stage.
struct variation {
  static constexpr unsigned stages = weight_stage | static_stage;
  static constexpr const char* name = "variation";
  double multiplicative = 0.05;  ///< σ_m, relative spread of each device's gain (dimensionless)
  double additive = 0.0;         ///< σ_a, spread of each device's offset (weight units)

  /// What `prepare` draws per device, kept apart from the parameters above
  /// (`noise::reconfigure` changes the parameters and keeps it).
  struct drawn_state {
    std::vector<float> gain_xi{};    ///< ξ per device
    std::vector<float> offset_xi{};  ///< ζ per device
  };
  drawn_state state{};

  /// Checkpoint contents (pnn/core/state_format.hpp): the drawn ξ and ζ.
  template <class V>
  void visit_state(V& v) {
    v("gain_xi", state.gain_xi);
    v("offset_xi", state.offset_xi);
  }

  /// \pre multiplicative >= 0, additive >= 0, both finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(multiplicative >= 0 && std::isfinite(multiplicative), "noise::variation: multiplicative must be >= 0 and finite");
    PNN_EXPECTS(additive >= 0 && std::isfinite(additive), "noise::variation: additive must be >= 0 and finite");
  }

  /// Draws ξ (from `g.split(0)`) and ζ (from `g.split(1)`) for the in·out devices.
  void prepare(std::size_t in, std::size_t out, rng& g) {
    validate();
    const std::size_t n = in * out;
    rng g0 = g.split(0), g1 = g.split(1);
    state.gain_xi.resize(n);
    state.offset_xi.resize(n);
    fill_normal(g0, state.gain_xi.data(), n);
    fill_normal(g1, state.offset_xi.data(), n);
  }

  /// w_eff[i] = w[i]·(1 + σ_m ξ_i) + σ_a ζ_i over [0, n).
  /// \pre `prepare` drew exactly n devices (else `pnn::error`).
  template <std::floating_point T>
  void weights(const T* w, T* w_eff, std::size_t n) const {
    validate();
    PNN_EXPECTS(state.gain_xi.size() == n && state.offset_xi.size() == n,
                "noise::variation: weights() on a tile of another size than prepare() drew");
    const T sm = static_cast<T>(multiplicative), sa = static_cast<T>(additive);
    const float* xi = state.gain_xi.data();
    const float* zeta = state.offset_xi.data();
    for (std::size_t i = 0; i < n; ++i) w_eff[i] = w[i] * (T(1) + sm * static_cast<T>(xi[i])) + sa * static_cast<T>(zeta[i]);
  }
};

/// \brief Conductance drift of phase-change memory: w(t) = w₀·(t/t₀)^(−ν), ν ~ N(ν_mean, ν_std)
/// per device, truncated at 0 (docs/physics.md; Nandakumar et al. 2019). Weights stage + time stage.
///
/// `t` is the time since programming in seconds, set by `at_time` (or `noise::set_time(net, t)`);
/// drift starts at the reference read t₀: for t ≤ t₀ the weights are the programmed ones.
/// With `compensate`, a global drift compensation rescales the tile by Σ|w₀|/Σ|w(t)| (the
/// ratio of a reference read at t₀ to one at t, docs/physics.md), which removes the mean decay.
struct drift {
  static constexpr unsigned stages = weight_stage | static_stage | time_stage;
  static constexpr const char* name = "drift";
  double nu_mean = 0.05;    ///< mean drift exponent (dimensionless; PCM ≈ 0.05)
  double nu_std = 0.01;     ///< device-to-device spread of ν
  double t0 = 20.0;         ///< reference time t₀ (s)
  bool compensate = false;  ///< apply global drift compensation
  double time = 0.0;        ///< time since programming (s); set by `at_time`

  /// What `prepare` draws per device, kept apart from the parameters above
  /// (`noise::reconfigure` changes the parameters and keeps it).
  struct drawn_state {
    std::vector<float> nu{};       ///< ν per device
    std::vector<double> factor{};  ///< (max(t, t₀)/t₀)^(−ν) per device, cached for `time`
  };
  drawn_state state{};

  /// Checkpoint contents (pnn/core/state_format.hpp): the drift clock, the drawn ν and the
  /// factors cached for that time.
  template <class V>
  void visit_state(V& v) {
    v("time", time);
    v("nu", state.nu);
    v("factor", state.factor);
  }

  /// \pre nu_std >= 0, t0 > 0, time >= 0, all finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(std::isfinite(nu_mean), "noise::drift: nu_mean must be finite");
    PNN_EXPECTS(nu_std >= 0 && std::isfinite(nu_std), "noise::drift: nu_std must be >= 0 and finite");
    PNN_EXPECTS(t0 > 0 && std::isfinite(t0), "noise::drift: t0 must be > 0 and finite (s)");
    PNN_EXPECTS(time >= 0 && std::isfinite(time), "noise::drift: time must be >= 0 and finite (s)");
  }

  /// Draws ν for the in·out devices and caches the factors for the current time.
  void prepare(std::size_t in, std::size_t out, rng& g) {
    validate();
    const std::size_t n = in * out;
    state.nu.resize(n);
    fill_normal(g, state.nu.data(), n, static_cast<float>(nu_mean), static_cast<float>(nu_std));
    for (float& v : state.nu) v = std::max(v, 0.0f);
    refresh();
  }

  /// Sets the time since programming and recomputes the per-device decay factors.
  /// \pre seconds >= 0 and finite (else `pnn::error`, nothing changed).
  void at_time(double seconds) {
    PNN_EXPECTS(seconds >= 0 && std::isfinite(seconds), "noise::drift: time must be >= 0 and finite (s)");
    time = seconds;
    refresh();
  }

  /// The decay factor of one device with exponent `nu_i` at the current time.
  double factor_of(double nu_i) const { return std::pow(std::max(time, t0) / t0, -nu_i); }

  /// w_eff[i] = w[i]·(t/t₀)^(−ν_i) (times the global compensation when enabled) over [0, n).
  /// \pre `prepare` drew exactly n devices (else `pnn::error`).
  template <std::floating_point T>
  void weights(const T* w, T* w_eff, std::size_t n) const {
    validate();
    PNN_EXPECTS(state.factor.size() == n, "noise::drift: weights() on a tile of another size than prepare() drew");
    double scale = 1.0;
    if (compensate) {
      double ref = 0, now = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double a = std::abs(static_cast<double>(w[i]));
        ref += a;
        now += a * state.factor[i];
      }
      if (now > 0) scale = ref / now;
    }
    for (std::size_t i = 0; i < n; ++i) w_eff[i] = static_cast<T>(static_cast<double>(w[i]) * state.factor[i] * scale);
  }

 private:
  void refresh() {
    state.factor.resize(state.nu.size());
    for (std::size_t i = 0; i < state.nu.size(); ++i) state.factor[i] = factor_of(static_cast<double>(state.nu[i]));
  }
};

/// \brief Stuck devices: a fraction of the devices no longer respond to programming. Weights stage.
///
/// Mapping to weights (a weight is a differential pair w = (G⁺ − G⁻)/g_ref, docs/physics.md):
/// a device stuck at g_min (open, never sets) leaves its pair unable to hold a difference, so
/// the weight reads **0**; a device stuck at g_max (shorted / stuck-SET) pins its side of the
/// pair at full conductance while the other side is at most g_max too, so the weight reads the
/// extreme of that side, **+w_max** (G⁺ stuck) or **−w_max** (G⁻ stuck), equally likely.
/// Each weight is stuck-at-g_min with probability `fraction_g_min`, stuck-at-g_max with
/// probability `fraction_g_max`, else free (typical total 0.1–5 %).
struct stuck_at {
  static constexpr unsigned stages = weight_stage | static_stage;
  static constexpr const char* name = "stuck_at";
  double fraction_g_min = 0.005;  ///< probability a weight is stuck at g_min (reads 0)
  double fraction_g_max = 0.005;  ///< probability a weight is stuck at g_max (reads ±w_max)
  double w_max = 1.0;             ///< |weight| of a pair with one side at g_max (weight units)

  /// What `prepare` draws per device, kept apart from the parameters above
  /// (`noise::reconfigure` changes the parameters and keeps it).
  struct drawn_state {
    std::vector<std::uint8_t> code{};  ///< 0 free, 1 stuck at g_min, 2 at +w_max, 3 at −w_max
  };
  drawn_state state{};

  /// Checkpoint contents (pnn/core/state_format.hpp): the stuck-at map.
  template <class V>
  void visit_state(V& v) {
    v("code", state.code);
  }

  /// \pre fractions in [0, 1] with sum ≤ 1; w_max > 0 and finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(fraction_g_min >= 0 && fraction_g_min <= 1, "noise::stuck_at: fraction_g_min must be a probability in [0, 1]");
    PNN_EXPECTS(fraction_g_max >= 0 && fraction_g_max <= 1, "noise::stuck_at: fraction_g_max must be a probability in [0, 1]");
    PNN_EXPECTS(fraction_g_min + fraction_g_max <= 1, "noise::stuck_at: fraction_g_min + fraction_g_max must be <= 1");
    PNN_EXPECTS(w_max > 0 && std::isfinite(w_max), "noise::stuck_at: w_max must be > 0 and finite");
  }

  /// Draws which of the in·out devices are stuck, and where (uniforms from `g.split(0)`, signs
  /// from `g.split(1)`).
  void prepare(std::size_t in, std::size_t out, rng& g) {
    validate();
    const std::size_t n = in * out;
    state.code.assign(n, 0);
    rng gu = g.split(0), gs = g.split(1);
    double u[256];
    float s[256];
    for (std::size_t i0 = 0; i0 < n; i0 += 256) {
      const std::size_t m = std::min<std::size_t>(256, n - i0);
      fill_uniform(gu, u, m);
      fill_rademacher(gs, s, m);
      for (std::size_t i = 0; i < m; ++i) {
        if (u[i] <= fraction_g_min) state.code[i0 + i] = 1;
        else if (u[i] <= fraction_g_min + fraction_g_max) state.code[i0 + i] = s[i] > 0 ? 2 : 3;
      }
    }
  }

  /// Number of devices stuck (either way), for diagnostics.
  std::size_t stuck_count() const noexcept {
    return static_cast<std::size_t>(std::count_if(state.code.begin(), state.code.end(), [](std::uint8_t c) { return c != 0; }));
  }

  /// w_eff[i] = w[i] for free devices, else the stuck value, over [0, n).
  /// \pre `prepare` drew exactly n devices (else `pnn::error`).
  template <std::floating_point T>
  void weights(const T* w, T* w_eff, std::size_t n) const {
    validate();
    PNN_EXPECTS(state.code.size() == n, "noise::stuck_at: weights() on a tile of another size than prepare() drew");
    const T table[4] = {T(0), T(0), static_cast<T>(w_max), static_cast<T>(-w_max)};
    for (std::size_t i = 0; i < n; ++i) w_eff[i] = state.code[i] == 0 ? w[i] : table[state.code[i]];
  }
};

static_assert(noise_policy<variation> && has_weight_stage<variation> && has_weight_stage<variation, double> &&
              has_static_state<variation> && !has_input_stage<variation> && !has_output_stage<variation> &&
              !has_time_stage<variation>);
static_assert(noise_policy<drift> && has_weight_stage<drift> && has_static_state<drift> && has_time_stage<drift> &&
              !has_input_stage<drift> && !has_output_stage<drift>);
static_assert(noise_policy<stuck_at> && has_weight_stage<stuck_at> && has_static_state<stuck_at> &&
              !has_input_stage<stuck_at> && !has_output_stage<stuck_at> && !has_time_stage<stuck_at>);

}  // namespace pnn::noise
