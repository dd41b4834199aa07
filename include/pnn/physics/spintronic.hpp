// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::spin_torque_oscillators`: a network of coupled spin-torque nano-oscillators as
/// a black-box layer — the universal auto-oscillator model (Slavin and Tiberkevich, IEEE Trans.
/// Magn. 45, 2009) of the devices Romera et al. (Nature 563, 2018) trained to classify vowels,
/// their frequencies tuned by DC currents.
///
/// Oscillator `i` of a layer with `Out` outputs has a complex amplitude `c_i` (power
/// `p_i = |c_i|²`, normalised so that p = 1 is the largest precession) written in the frame
/// rotating at the common natural frequency ω₀. Its DC current, in units of the threshold
/// current, is `ζ_i = I_dc + (W x + b)_i`, clipped to ±`max_current`, and
///
///   dc_i/dt = −i (δ_i + N p_i) c_i − Γ (1 + Q p_i) c_i + Γ ζ_i (1 − p_i) c_i
///             + (κ / (M − 1)) e^{iψ} Σ_{k≠i} c_k  (+ thermal noise),
///
/// with Γ the damping rate (the time unit is 1/Γ), Q the nonlinear damping, N the nonlinear
/// frequency shift — the current tunes the frequency through the power it sustains — δ_i a
/// static detuning, and κ, ψ the strength and phase of the all-to-all coupling through the
/// microwave currents the oscillators emit into a common line. A free oscillator above threshold
/// (ζ > 1) settles at `p₀ = (ζ − 1)/(ζ + Q)` and precesses at `δ + N p₀` relative to ω₀; below
/// threshold it decays to p = 0. Integrated with classical RK4 from `c_i = initial_amplitude`;
/// the layer's output per oscillator is, by `readout`, its power or its angular frequency
/// (relative to ω₀, in Γ units), averaged over the second half of the run — what a rectifying
/// detector or a frequency counter reports.
///
/// The sim-to-real gap is explicit, as for `coupled_oscillators`: a static spread
/// `frequency_spread` of the detunings and `coupling_spread` of each pair's coupling (drawn once
/// from `seed`), and per-read thermal noise. The model instance has none of them.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/core/threads.hpp>
#include <pnn/physics/black_box.hpp>
#include <pnn/physics/cost.hpp>

namespace pnn::physics {

/// What a spin-torque oscillator layer reports per oscillator.
enum class stno_readout {
  power,      ///< mean normalised power p over the second half of the run
  frequency,  ///< mean angular frequency relative to ω₀ (Γ units) over the second half
};

/// Coupled spin-torque nano-oscillators driven by DC currents `I_dc + W x + b`; a `black_box` callable.
template <class T = float>
struct spin_torque_oscillators {
  double bias_current = 1.5;        ///< I_dc, in units of the threshold current
  /// |ζ| at most this: the current source's compliance (and the junction's breakdown) bound the
  /// current, which also keeps the run stable at the default step
  double max_current = 4.0;
  double damping = 1.0;             ///< Γ, linear damping rate (sets the time unit)
  double nonlinear_damping = 1.0;   ///< Q, ≥ 0
  double frequency_shift = 3.0;     ///< N, nonlinear frequency shift (rad per time unit at p = 1)
  double coupling = 0.5;            ///< κ, all-to-all coupling strength (rad per time unit)
  double coupling_phase = 0.0;      ///< ψ, phase of the coupling (rad)
  std::vector<double> detuning{};   ///< δ_i per oscillator (rad per time unit); empty: all 0
  double duration = 12.0;           ///< T, run time (1/Γ units)
  std::size_t steps = 120;          ///< RK4 steps over T
  double initial_amplitude = 0.1;   ///< |c_i(0)| (c = 0 is a fixed point: the oscillation starts from a seed)
  stno_readout readout = stno_readout::power;
  double frequency_spread = 0.0;    ///< gap: static spread (std) added to each δ_i
  double coupling_spread = 0.0;     ///< gap: static relative spread of each pair's coupling
  double thermal_noise = 0.0;       ///< gap: std of the thermal field per unit time, per read
  std::uint64_t seed = 0;           ///< stream of the static spreads

  /// \pre positive damping, duration and steps; Q ≥ 0; finite values (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(max_current > 0, "physics::spin_torque_oscillators: max_current must be > 0");
    PNN_EXPECTS(damping > 0 && duration > 0 && steps > 0 && nonlinear_damping >= 0 && initial_amplitude > 0 &&
                    initial_amplitude < 1,
                "physics::spin_torque_oscillators: damping, duration, steps > 0, nonlinear_damping >= 0 and "
                "0 < initial_amplitude < 1 are required");
    for (double v : {bias_current, max_current, frequency_shift, coupling, coupling_phase, frequency_spread, coupling_spread,
                     thermal_noise})
      PNN_EXPECTS(std::isfinite(v), "physics::spin_torque_oscillators: parameters must be finite");
    PNN_EXPECTS(frequency_spread >= 0 && coupling_spread >= 0 && thermal_noise >= 0,
                "physics::spin_torque_oscillators: spreads and noise must be >= 0");
  }

  /// δ_i with its static spread.
  [[nodiscard]] double detuning_of(std::size_t i) const {
    double d = i < detuning.size() ? detuning[i] : 0.0;
    if (frequency_spread > 0) {
      rng g = rng(seed, 0x57A0).split(i);
      d += frequency_spread * g.normal_double();
    }
    return d;
  }
  /// κ_ik / κ with its static spread (symmetric in i, k).
  [[nodiscard]] double coupling_of(std::size_t i, std::size_t k) const {
    if (coupling_spread == 0) return 1.0;
    const std::size_t a = std::min(i, k), b = std::max(i, k);
    rng g = rng(seed, 0x57A1).split(a * 4096 + b);
    return 1.0 + coupling_spread * g.normal_double();
  }

  /// Mean power or frequency of each of the `c.out` oscillators, per sample.
  std::vector<T> operator()(const black_box_call<T>& c, rng& g) const {
    validate();
    using cplx = std::complex<double>;
    const std::size_t m = c.out;
    std::vector<double> delta(m), kappa(m * m, 0.0);
    for (std::size_t i = 0; i < m; ++i) delta[i] = detuning_of(i);
    const cplx link = m > 1 ? std::polar(coupling / double(m - 1), coupling_phase) : cplx(0);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t k = 0; k < m; ++k)
        if (k != i) kappa[i * m + k] = coupling_of(i, k);
    const double dt = duration / double(steps);
    const std::size_t half = steps / 2;
    const double kick = thermal_noise * std::sqrt(dt / 2);
    std::vector<T> out(c.n * m);
    std::atomic<bool> diverged{false};
    // Samples run on the kernels' thread team, each from its own stream: the result does not
    // depend on the thread count.
    pnn::detail::parallel_team(c.n, [&](std::size_t t, std::size_t team) {
      const auto [first, last] = pnn::detail::team_range(c.n, 1, t, team);
      if (first >= last) return;
      std::vector<cplx> a(m), s(m), k1(m), k2(m), k3(m), k4(m);
      std::vector<double> zeta(m), acc(m), last_phase(m), turned(m);
      auto rate = [&](const std::vector<cplx>& z, std::vector<cplx>& dz) {
        for (std::size_t i = 0; i < m; ++i) {
          const double p = std::norm(z[i]);
          cplx d = cplx(damping * (zeta[i] * (1 - p) - (1 + nonlinear_damping * p)), -(delta[i] + frequency_shift * p)) *
                   z[i];
          if (m > 1) {
            cplx sum(0);
            for (std::size_t k = 0; k < m; ++k)
              if (k != i) sum += kappa[i * m + k] * z[k];
            d += link * sum;
          }
          dz[i] = d;
        }
      };
      for (std::size_t r = first; r < last; ++r) {
        for (std::size_t i = 0; i < m; ++i) {
          double u = double(c.bias[i]);
          for (std::size_t j = 0; j < c.in; ++j) u += double(c.weight[i * c.in + j]) * double(c.x[r * c.in + j]);
          zeta[i] = std::clamp(bias_current + u, -max_current, max_current);
          a[i] = cplx(initial_amplitude, 0);
          acc[i] = 0;
          turned[i] = 0;
        }
        rng gr = g.split(r);
        for (std::size_t st = 0; st < steps; ++st) {
          rate(a, k1);
          for (std::size_t i = 0; i < m; ++i) s[i] = a[i] + 0.5 * dt * k1[i];
          rate(s, k2);
          for (std::size_t i = 0; i < m; ++i) s[i] = a[i] + 0.5 * dt * k2[i];
          rate(s, k3);
          for (std::size_t i = 0; i < m; ++i) s[i] = a[i] + dt * k3[i];
          rate(s, k4);
          for (std::size_t i = 0; i < m; ++i) {
            a[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
            if (kick > 0) a[i] += cplx(kick * gr.normal_double(), kick * gr.normal_double());
          }
          if (st + 1 == half)
            for (std::size_t i = 0; i < m; ++i) last_phase[i] = std::arg(a[i]);
          if (st + 1 > half)
            for (std::size_t i = 0; i < m; ++i) {
              acc[i] += std::norm(a[i]);
              // Phase advance over the step, unwrapped (|Δφ| < π per step at these step sizes).
              const double ph = std::arg(a[i]);
              double dphi = ph - last_phase[i];
              dphi -= 2 * std::numbers::pi * std::round(dphi / (2 * std::numbers::pi));
              turned[i] += dphi;
              last_phase[i] = ph;
            }
        }
        const double window = double(steps - half);
        for (std::size_t i = 0; i < m; ++i) {
          if (!std::isfinite(acc[i]) || !std::isfinite(turned[i])) diverged.store(true, std::memory_order_relaxed);
          out[r * m + i] = static_cast<T>(readout == stno_readout::power ? acc[i] / window : -turned[i] / (window * dt));
        }
      }
    });
    if (diverged.load())
      throw_error("physics::spin_torque_oscillators: the amplitudes diverged (reduce the step, the drive or the coupling)");
    return out;
  }

  /// The events of a call: one read per sample, and the oscillators' running time (oscillators ×
  /// T, in 1/Γ units) that the energy model prices at the oscillators' DC power.
  [[nodiscard]] physical_events events(const black_box_call<T>& c) const {
    return physical_events{.reads = c.n, .oscillator_time = double(c.n * c.out) * duration,
                           .oscillator_run_time = double(c.n) * duration};
  }
};

/// The spin-torque oscillator layer as a substrate: `dense<In, Out, spintronic_box<>>`.
template <class T = float>
using spintronic_box = black_box<spin_torque_oscillators<T>, T>;

static_assert(substrate<spintronic_box<float>> && !transposed_readable<spintronic_box<double>>);

}  // namespace pnn::physics
