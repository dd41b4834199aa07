// SPDX-License-Identifier: MIT
/// \file
/// \brief Imperfections of photonic meshes (docs/physics.md): coupler splitting error, static
/// phase error, phase noise per call, thermal crosstalk, insertion loss, heater DAC
/// quantisation; and the photodetector's shot and thermal noise.
///
/// These are physics of the mesh, not a layer noise policy: they act on phases and couplers
/// inside the interferometers, where a `pnn::noise` hook on the layer's output cannot reach.
/// The tile of `physics::mzi_mesh` takes them through its `params`. Detection noise reuses
/// `noise::shot` and `noise::thermal` (one implementation of each effect).
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/noise/read.hpp>

namespace pnn::physics {

/// \brief Static and dynamic imperfections of an MZI mesh. All default to an ideal mesh.
///
/// Order in which a programmed phase `φ` becomes the phase light sees: DAC quantisation of the
/// heater voltage (`φ = γV²`), thermal crosstalk `φ_eff = (I + C) φ` (nearest-neighbour heaters
/// couple with `crosstalk`), plus a static fabrication error (drawn once per shifter), plus
/// phase noise drawn on every read.
struct photonic_imperfections {
  double coupler_sigma = 0.0;      ///< σ_bs (rad): splitting-angle error ε ~ N(0, σ_bs) per coupler, static
  double phase_error_sigma = 0.0;  ///< static phase offset per shifter ~ N(0, σ) (rad)
  double phase_noise_sigma = 0.0;  ///< phase noise per shifter and read ~ N(0, σ) (rad), dynamic
  double crosstalk = 0.0;          ///< c: fraction of a heater's phase seen by its neighbours (≈ 0.01)
  double insertion_loss_db = 0.0;  ///< IL per MZI (dB, typical 0.1–0.3); amplitude 10^(−IL/20)
  unsigned heater_bits = 0;        ///< DAC bits driving each heater; 0: continuous phases
  double heater_gamma = 1.0;       ///< γ (rad/V²) of `φ = γV²`; full scale V_max = √(2π/γ)

  /// \pre every σ, crosstalk, loss ≥ 0 and finite; crosstalk < 0.5; heater_bits ≤ 24; γ > 0.
  void validate() const {
    auto ok = [](double v) { return v >= 0 && std::isfinite(v); };
    PNN_EXPECTS(ok(coupler_sigma), "physics::photonic_imperfections: coupler_sigma must be >= 0 and finite");
    PNN_EXPECTS(ok(phase_error_sigma), "physics::photonic_imperfections: phase_error_sigma must be >= 0 and finite");
    PNN_EXPECTS(ok(phase_noise_sigma), "physics::photonic_imperfections: phase_noise_sigma must be >= 0 and finite");
    PNN_EXPECTS(ok(crosstalk) && crosstalk < 0.5, "physics::photonic_imperfections: crosstalk must be in [0, 0.5)");
    PNN_EXPECTS(ok(insertion_loss_db), "physics::photonic_imperfections: insertion loss must be >= 0 dB and finite");
    PNN_EXPECTS(heater_bits <= 24, "physics::photonic_imperfections: heater_bits must be <= 24");
    PNN_EXPECTS(heater_gamma > 0 && std::isfinite(heater_gamma),
                "physics::photonic_imperfections: heater_gamma must be > 0 and finite");
  }
  /// True when reads draw random phases (the tile then propagates fields on every read).
  [[nodiscard]] bool has_call_noise() const noexcept { return phase_noise_sigma > 0; }
  /// Amplitude transmission of one MZI, `10^(−IL/20)`.
  [[nodiscard]] double mzi_amplitude() const noexcept { return std::pow(10.0, -insertion_loss_db / 20.0); }
};

/// Wraps a phase into [0, 2π) (MZIs are 2π-periodic in both phases).
[[nodiscard]] inline double wrap_phase(double phi) noexcept {
  constexpr double two_pi = 2 * std::numbers::pi;
  double r = std::fmod(phi, two_pi);
  if (r < 0) r += two_pi;
  return r >= two_pi ? 0.0 : r;
}

/// \brief The phase a heater driven by a `bits`-bit DAC realises for a requested phase `phi`.
///
/// A thermo-optic shifter gives `φ = γV²`; the DAC sets `V` on `2^bits` levels over
/// `[0, V_max]`, `γV_max² = 2π`. So the phase grid is quadratic: fine near 0, coarse near 2π
/// (largest step ≈ 2·2π/(2^bits − 1)). `bits = 0` returns the wrapped phase unchanged.
[[nodiscard]] inline double quantize_heater_phase(double phi, unsigned bits, double gamma = 1.0) noexcept {
  const double p = wrap_phase(phi);
  if (bits == 0) return p;
  const double v_max = std::sqrt(2 * std::numbers::pi / gamma);
  const double levels = std::ldexp(1.0, static_cast<int>(bits)) - 1.0;
  const double dv = v_max / levels;
  const double v = std::round(std::sqrt(p / gamma) / dv) * dv;
  return gamma * v * v;
}

/// How the tile's photodetectors turn the output field into the layer's real output.
enum class detection {
  coherent,  ///< homodyne against a reference: `y = Re(E)`, sign kept (linear in the field)
  intensity  ///< square-law photodiode: `y = R·|E|²` (responsivity R in A/W, |E|² in W)
};

/// \brief Photodetector noise after detection: shot noise (`noise::shot`, Poisson photon
/// counts) and Johnson noise of the load (`noise::thermal`). Both off by default.
struct detection_noise {
  double shot_photons_per_unit = 0.0;  ///< k of `noise::shot` (photons per unit output); 0: off
  bool thermal_on = false;             ///< adds `thermal` when true
  noise::thermal thermal{};            ///< Johnson noise model (T, B, R_L, gain)

  void validate() const {
    PNN_EXPECTS(shot_photons_per_unit >= 0 && std::isfinite(shot_photons_per_unit),
                "physics::detection_noise: shot_photons_per_unit must be >= 0 and finite");
    if (thermal_on) thermal.validate();
  }
  [[nodiscard]] bool active() const noexcept { return shot_photons_per_unit > 0 || thermal_on; }

  /// Adds the enabled noises to `n` detected outputs.
  template <class T>
  void apply(T* y, std::size_t n, rng& g) const {
    if (shot_photons_per_unit > 0) {
      rng gs = g.split(0);
      noise::shot{shot_photons_per_unit, 1000}.output(y, n, gs);
    }
    if (thermal_on) {
      rng gt = g.split(1);
      thermal.output(y, n, gt);
    }
  }
};

}  // namespace pnn::physics
