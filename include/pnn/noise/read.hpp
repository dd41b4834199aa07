// SPDX-License-Identifier: MIT
/// \file
/// \brief Read-out noise policies (output stage): `gaussian_read`, `multiplicative`, `shot`,
/// `thermal`, `saturation` (docs/physics.md, "Noise policies").
///
/// Each acts on the analogue read-out `y = W x` of a layer, before the bias is added, and is
/// drawn anew on every read (dynamic noise). All randomness comes from the `rng` the layer
/// hands to the hook, through the vectorised fills of simd/random.hpp. Like every noise
/// policy they perturb the forward read only: a learning rule treats them as identity in its
/// backward pass (its derivatives use the measured activations).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <type_traits>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/noise/none.hpp>
#include <pnn/noise/stages.hpp>
#include <pnn/simd/math.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/random.hpp>

namespace pnn::noise {

namespace detail {

/// Samples drawn per chunk when a policy needs its normals in a buffer (stack, 2 KiB for double).
inline constexpr std::size_t noise_chunk = 256;

inline bool finite_nonnegative(double v) noexcept { return v >= 0 && std::isfinite(v); }
inline bool finite_positive(double v) noexcept { return v > 0 && std::isfinite(v); }

}  // namespace detail

/// Boltzmann constant k_B (J/K), exact in SI since 2019.
inline constexpr double boltzmann = 1.380649e-23;
/// Planck constant h (J s), exact in SI.
inline constexpr double planck = 6.62607015e-34;
/// Speed of light in vacuum c (m/s), exact in SI.
inline constexpr double speed_of_light = 299792458.0;

/// \brief Additive Gaussian read noise `y + σ·full_scale·ε`, ε ~ N(0, 1), per output and read.
///
/// The usual lumped model of analogue read-out noise (aihwkit's `out_noise`, 0.06 of a unit
/// output; docs/physics.md, "Periphery"). Output stage.
struct gaussian_read {
  static constexpr unsigned stages = output_stage;
  static constexpr const char* name = "gaussian_read";
  double sigma = 0.05;      ///< noise standard deviation relative to full scale (typical 0.01–0.1)
  double full_scale = 1.0;  ///< the full-scale output in output units; σ_abs = sigma·full_scale

  /// \pre sigma >= 0, full_scale > 0, both finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(detail::finite_nonnegative(sigma), "noise::gaussian_read: sigma must be >= 0 and finite");
    PNN_EXPECTS(detail::finite_positive(full_scale), "noise::gaussian_read: full_scale must be > 0 and finite");
  }
  /// Absolute standard deviation added to each output (output units).
  double stddev() const noexcept { return sigma * full_scale; }

  /// y[i] += σ·full_scale·ε_i over y[0, n).
  template <std::floating_point T>
  void output(T* y, std::size_t n, rng& g) const {
    validate();
    const T sd = static_cast<T>(stddev());
    if (sd > T(0)) add_normal(g, y, n, sd);
  }
};

/// \brief Multiplicative read noise `y·(1 + σ ε)`: a gain error per output and read (laser
/// intensity fluctuation, amplifier gain noise). Output stage.
struct multiplicative {
  static constexpr unsigned stages = output_stage;
  static constexpr const char* name = "multiplicative";
  double sigma = 0.02;  ///< relative standard deviation of the gain (dimensionless, typical 0.01–0.05)

  /// \pre sigma >= 0 and finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(detail::finite_nonnegative(sigma), "noise::multiplicative: sigma must be >= 0 and finite");
  }

  /// y[i] ← y[i]·(1 + σ ε_i) over y[0, n).
  template <std::floating_point T>
  void output(T* y, std::size_t n, rng& g) const {
    validate();
    if (sigma == 0) return;
    T gain[detail::noise_chunk];
    for (std::size_t i0 = 0; i0 < n; i0 += detail::noise_chunk) {
      const std::size_t m = std::min(detail::noise_chunk, n - i0);
      fill_normal(g, gain, m, T(1), static_cast<T>(sigma));
      T* yc = y + i0;
      for (std::size_t i = 0; i < m; ++i) yc[i] *= gain[i];
    }
  }
};

/// \brief Photon shot noise: a read-out of magnitude |y| is `N/k` detected photons, N ~ Poisson(k|y|),
/// with k = `photons_per_unit` = P τ η / (h ν) photons for |y| = 1 (docs/physics.md).
///
/// Relative noise 1/√N. The sign of y is kept (a balanced or coherent detector reports signed
/// values; the count statistics are those of the magnitude). For a mean count ≥
/// `gaussian_above` the Poisson law is replaced by its Gaussian limit N(k|y|, k|y|), drawn
/// vectorised; below it the count is drawn exactly (slower, one draw per output). Output stage.
struct shot {
  static constexpr unsigned stages = output_stage;
  static constexpr const char* name = "shot";
  double photons_per_unit = 1e4;  ///< k: mean detected photons for a read-out of 1 (1/output unit)
  double gaussian_above = 1000;   ///< mean count from which the Gaussian approximation is used (photons)

  /// k from the optics: optical power `power_per_unit` (W) reaching the detector for a
  /// read-out of 1, integration time τ (s), wavelength λ (m), quantum efficiency η ∈ (0, 1]:
  /// k = P τ η λ / (h c).
  /// \pre all positive and finite, η ≤ 1 (else `pnn::error`).
  static shot from_optics(double power_per_unit, double integration_time, double wavelength,
                          double quantum_efficiency = 1.0) {
    PNN_EXPECTS(detail::finite_positive(power_per_unit), "noise::shot: power must be > 0 (W)");
    PNN_EXPECTS(detail::finite_positive(integration_time), "noise::shot: integration time must be > 0 (s)");
    PNN_EXPECTS(detail::finite_positive(wavelength), "noise::shot: wavelength must be > 0 (m)");
    PNN_EXPECTS(quantum_efficiency > 0 && quantum_efficiency <= 1, "noise::shot: quantum efficiency must be in (0, 1]");
    shot s;
    s.photons_per_unit = power_per_unit * integration_time * quantum_efficiency * wavelength / (planck * speed_of_light);
    return s;
  }

  /// \pre photons_per_unit > 0, gaussian_above >= 0, both finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(detail::finite_positive(photons_per_unit), "noise::shot: photons_per_unit must be > 0 and finite");
    PNN_EXPECTS(detail::finite_nonnegative(gaussian_above), "noise::shot: gaussian_above must be >= 0 and finite");
  }

  /// y[i] ← sign(y[i])·N_i/k over y[0, n).
  template <std::floating_point T>
  void output(T* y, std::size_t n, rng& g) const {
    validate();
    const double k = photons_per_unit;
    const T inv_k = static_cast<T>(1.0 / k);
    T z[detail::noise_chunk];
    for (std::size_t i0 = 0; i0 < n; i0 += detail::noise_chunk) {
      const std::size_t m = std::min(detail::noise_chunk, n - i0);
      fill_normal(g, z, m, T(0), T(1));
      T* yc = y + i0;
      for (std::size_t i = 0; i < m; ++i) {
        const T mag = std::abs(yc[i]);
        const double mean = static_cast<double>(mag) * k;
        if (mean >= gaussian_above) {
          yc[i] += std::sqrt(mag * inv_k) * z[i];
        } else {
          T count = 0;
          fill_poisson(g, &count, 1, static_cast<T>(mean));
          yc[i] = std::copysign(count * inv_k, yc[i]);
        }
      }
    }
  }
};

/// \brief Johnson–Nyquist (thermal) noise of the detector's load: current noise σ_I² = 4 k_B T B / R_L,
/// converted to output units by the read-out gain: `y + gain·σ_I·ε` (docs/physics.md). Output stage.
///
/// Defaults: room temperature, 1 GHz detection bandwidth, 50 Ω load (σ_I ≈ 0.58 µA), and a gain
/// of 10⁴ output units per ampere (a read-out of 1 = 100 µA), so σ ≈ 0.0058 output units.
struct thermal {
  static constexpr unsigned stages = output_stage;
  static constexpr const char* name = "thermal";
  double temperature = 300.0;     ///< T (K)
  double bandwidth = 1e9;         ///< B, detection bandwidth (Hz)
  double load_resistance = 50.0;  ///< R_L (Ω)
  double gain = 1e4;              ///< output units per ampere of detector current

  /// \pre temperature >= 0, bandwidth >= 0, load_resistance > 0, gain >= 0, all finite.
  void validate() const {
    PNN_EXPECTS(detail::finite_nonnegative(temperature), "noise::thermal: temperature must be >= 0 (K)");
    PNN_EXPECTS(detail::finite_nonnegative(bandwidth), "noise::thermal: bandwidth must be >= 0 (Hz)");
    PNN_EXPECTS(detail::finite_positive(load_resistance), "noise::thermal: load_resistance must be > 0 (ohm)");
    PNN_EXPECTS(detail::finite_nonnegative(gain), "noise::thermal: gain must be >= 0 (output units per A)");
  }
  /// σ_I = √(4 k_B T B / R_L), amperes.
  double current_stddev() const noexcept { return std::sqrt(4.0 * boltzmann * temperature * bandwidth / load_resistance); }
  /// σ in output units, gain·σ_I.
  double stddev() const noexcept { return gain * current_stddev(); }

  /// y[i] += gain·σ_I·ε_i over y[0, n).
  template <std::floating_point T>
  void output(T* y, std::size_t n, rng& g) const {
    validate();
    const T sd = static_cast<T>(stddev());
    if (sd > T(0)) add_normal(g, y, n, sd);
  }
};

namespace detail {
template <class T>
struct soft_clip {
  T y_sat, inv;
  template <class P>
  P operator()(P v) const noexcept {
    return P(y_sat) * pnn::detail::tanh_any(v * P(inv));
  }
};
}  // namespace detail

/// \brief Soft saturation of the read-out `y_sat·tanh(y/y_sat)` (amplifier or detector
/// compression): linear for |y| ≪ y_sat, bounded by ±y_sat. Deterministic. Output stage.
struct saturation {
  static constexpr unsigned stages = output_stage;
  static constexpr const char* name = "saturation";
  double y_sat = 1.0;  ///< saturation level (output units)

  /// \pre y_sat > 0 and finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(detail::finite_positive(y_sat), "noise::saturation: y_sat must be > 0 and finite");
  }

  /// y[i] ← y_sat·tanh(y[i]/y_sat) over y[0, n); draws nothing from `g`.
  template <std::floating_point T>
  void output(T* y, std::size_t n, rng&) const {
    validate();
    const detail::soft_clip<T> f{static_cast<T>(y_sat), static_cast<T>(1.0 / y_sat)};
    simd::map<T>(n, y, y, f);
  }
};

static_assert(noise_policy<gaussian_read> && has_output_stage<gaussian_read> && has_output_stage<gaussian_read, double> &&
              !has_input_stage<gaussian_read> && !has_weight_stage<gaussian_read> && !has_static_state<gaussian_read>);
static_assert(noise_policy<multiplicative> && has_output_stage<multiplicative> && !has_input_stage<multiplicative> &&
              !has_weight_stage<multiplicative>);
static_assert(noise_policy<shot> && has_output_stage<shot> && !has_input_stage<shot> && !has_weight_stage<shot>);
static_assert(noise_policy<thermal> && has_output_stage<thermal> && !has_input_stage<thermal> && !has_weight_stage<thermal>);
static_assert(noise_policy<saturation> && has_output_stage<saturation> && !has_input_stage<saturation> &&
              !has_weight_stage<saturation> && !has_time_stage<saturation>);

}  // namespace pnn::noise
