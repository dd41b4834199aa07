// SPDX-License-Identifier: MIT
/// \file
/// \brief Resistive-device update models (`physics::devices`): how one programming pulse moves a
/// crossbar weight, with device-to-device and cycle-to-cycle variation (docs/physics.md).
///
/// A crossbar asks for `ΔW`; the device decides what happens. Weights are in normalised units
/// `w` (aihwkit's convention): a pulse moves `w` up or down by a step whose size depends on the
/// model and on `w`, the step carries multiplicative cycle-to-cycle noise
/// `(1 + dw_min_std·ξ)`, and `w` never leaves the device's own bounds `[b_min, b_max]`.
/// Every device draws its own step sizes and bounds once (device-to-device variation,
/// `draw_cell`), after aihwkit's pulsed devices (Rasch et al. 2021, `rpu_pulsed_device.cpp`):
/// `g = 1 + dw_min_dtod·ξ₁`, `r = up_down_dtod·ξ₂`, `Δw_up = |(g + min(up_down, 0) + r)|·dw_min`,
/// `Δw_down = |(g − max(up_down, 0) − r)|·dw_min` — a systematic asymmetry shortens only the
/// weaker direction — and `b_max = w_max(1 + w_max_dtod·ξ₃)`, `b_min = w_min(1 + w_min_dtod·ξ₄)`,
/// swapped if they cross and folded to `b_min ≤ 0 ≤ b_max` (aihwkit's `enforce_consistency`).
/// Defaults are aihwkit's reference configuration.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <utility>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>

namespace pnn::physics::devices {

/// One device's own parameters, drawn once (device-to-device variation).
struct device_cell {
  float dw_up = 0;    ///< step of an up pulse at the reference point (normalised weight units)
  float dw_down = 0;  ///< step magnitude of a down pulse
  float b_min = 0;    ///< lower weight bound (≤ 0)
  float b_max = 0;    ///< upper weight bound (≥ 0)
};

/// Step laws: the magnitude of one up / down pulse at weight `w` before cycle-to-cycle noise.
namespace law {

/// `Δw_up`, `Δw_down` independent of `w` (aihwkit ConstantStep).
struct constant {
  static constexpr const char* name = "constant_step";
  static constexpr bool has_pair = false;
  void validate() const {}
  [[nodiscard]] float up(float, const device_cell& c) const noexcept { return c.dw_up; }
  [[nodiscard]] float down(float, const device_cell& c) const noexcept { return c.dw_down; }
};

/// Steps shrinking linearly towards the bounds: up `Δw_up(1 − γ_up w/b_max)`, down
/// `Δw_down(1 − γ_down w/b_min)`, i.e. docs/physics.md's `s_d w + Δw_d` with `s_up = −γ_up Δw_up/b_max`
/// (aihwkit LinearStep, `ls_decrease_up/down`). γ = 1 is soft bounds.
/// By default the slope is referred to the nominal bounds `w_max`, `w_min`, not each device's own
/// (aihwkit's `ls_mean_bound_reference`): a device whose bound happens to be small does not get a
/// steeper slope for it. `mean_bound_reference = false` refers it to the device's own bounds.
struct linear {
  static constexpr const char* name = "linear_step";
  static constexpr bool has_pair = false;
  float ls_decrease_up = 0.5f;    ///< γ_up ∈ [0, 1]: 1 makes the up step vanish at the reference bound
  float ls_decrease_down = 0.5f;  ///< γ_down ∈ [0, 1]
  bool mean_bound_reference = true;  ///< slope over the nominal bounds (true) or the device's own
  void validate() const {
    PNN_EXPECTS(ls_decrease_up >= 0 && ls_decrease_up <= 1 && ls_decrease_down >= 0 && ls_decrease_down <= 1,
                "devices::linear_step: ls_decrease_up/down must lie in [0, 1]");
  }
  /// Step sizes at `w` for a device `c` whose model has nominal bounds `w_min < 0 < w_max`.
  [[nodiscard]] float up(float w, const device_cell& c, float w_min, float w_max) const noexcept {
    (void)w_min;
    const float ref = mean_bound_reference ? w_max : c.b_max;
    return std::max(c.dw_up * (1.0f - ls_decrease_up * w / ref), 0.0f);
  }
  [[nodiscard]] float down(float w, const device_cell& c, float w_min, float w_max) const noexcept {
    (void)w_max;
    const float ref = mean_bound_reference ? w_min : c.b_min;
    return std::max(c.dw_down * (1.0f - ls_decrease_down * w / ref), 0.0f);
  }
};

/// Soft bounds: up `Δw_up(1 − w/b_max)`, down `Δw_down(1 − w/b_min)`; steps vanish at the bounds
/// (aihwkit SoftBounds; the usual ReRAM/ECRAM model).
struct soft {
  static constexpr const char* name = "soft_bounds";
  static constexpr bool has_pair = false;
  void validate() const {}
  [[nodiscard]] float up(float w, const device_cell& c) const noexcept {
    return std::max(c.dw_up * (1.0f - w / c.b_max), 0.0f);
  }
  [[nodiscard]] float down(float w, const device_cell& c) const noexcept {
    return std::max(c.dw_down * (1.0f - w / c.b_min), 0.0f);
  }
};

/// Exponential saturation fitted to ReRAM/PCM data (aihwkit ExpStep): `z = 2a w/(b_max − b_min) + b`,
/// up `Δw_up·max(1 − A_up e^{γ_up z}, 0)`, down `Δw_down·max(1 − A_down e^{−γ_down z}, 0)`.
struct exponential {
  static constexpr const char* name = "exp_step";
  static constexpr bool has_pair = false;
  float A_up = 0.00081f;
  float A_down = 0.36833f;
  float gamma_up = 12.44625f;
  float gamma_down = 12.78785f;
  float a = 0.244f;
  float b = 0.2425f;
  void validate() const {
    PNN_EXPECTS(A_up >= 0 && A_down >= 0 && gamma_up >= 0 && gamma_down >= 0,
                "devices::exp_step: A_up, A_down, gamma_up, gamma_down must be >= 0");
  }
  [[nodiscard]] float z(float w, const device_cell& c) const noexcept {
    return 2.0f * a * w / (c.b_max - c.b_min) + b;
  }
  [[nodiscard]] float up(float w, const device_cell& c) const noexcept {
    return c.dw_up * std::max(1.0f - A_up * std::exp(gamma_up * z(w, c)), 0.0f);
  }
  [[nodiscard]] float down(float w, const device_cell& c) const noexcept {
    return c.dw_down * std::max(1.0f - A_down * std::exp(-gamma_down * z(w, c)), 0.0f);
  }
};

/// Power-law saturation (aihwkit PowStep): up `Δw_up((b_max − w)/range)^γ_up`, down
/// `Δw_down((w − b_min)/range)^γ_down`, `range = b_max − b_min`.
struct power {
  static constexpr const char* name = "pow_step";
  static constexpr bool has_pair = false;
  float gamma_up = 1.0f;
  float gamma_down = 1.0f;
  void validate() const {
    PNN_EXPECTS(gamma_up >= 0 && gamma_down >= 0, "devices::pow_step: gamma_up/gamma_down must be >= 0");
  }
  [[nodiscard]] float up(float w, const device_cell& c) const noexcept {
    return c.dw_up * std::pow(std::max((c.b_max - w) / (c.b_max - c.b_min), 0.0f), gamma_up);
  }
  [[nodiscard]] float down(float w, const device_cell& c) const noexcept {
    return c.dw_down * std::pow(std::max((w - c.b_min) / (c.b_max - c.b_min), 0.0f), gamma_down);
  }
};

/// Phase-change memory pair: `w = g⁺ − g⁻` with two unipolar, set-only devices. An up pulse
/// crystallises `g⁺` a little, a down pulse `g⁻`; each set step saturates as the device fills,
/// `Δg = Δw·(1 − x)·(1 + set_boost·e^{−set_decay·x})` at fill `x = g/g_bound`, with
/// `g_bound = b_max` for `g⁺` and `−b_min` for `g⁻` (Nandakumar et al. 2019/2020's saturating set
/// response in soft-bounds form; `set_boost > 0` adds the large first steps of a nearly amorphous
/// cell, after aihwkit's PCM preset). Devices cannot be reset one pulse at a time, so when either
/// exceeds `refresh_threshold·g_bound` the pair is refreshed: both are reset and the weight is
/// rewritten onto one device (aihwkit OneSidedUnitCell's refresh).
struct pcm_pair {
  static constexpr const char* name = "pcm";
  static constexpr bool has_pair = true;
  float refresh_threshold = 0.75f;  ///< fraction of g_bound that triggers a refresh, in (0, 1]
  /// Extra relative step of an empty device (fill 0): its first set step is `1 + set_boost` times
  /// the plain one. ≥ 0; 0 (default) is the plain saturating step.
  float set_boost = 0.0f;
  float set_decay = 5.0f;  ///< how fast that extra step fades with the fill, ≥ 0
  void validate() const {
    PNN_EXPECTS(refresh_threshold > 0 && refresh_threshold <= 1, "devices::pcm: refresh_threshold must lie in (0, 1]");
    PNN_EXPECTS(set_boost >= 0 && std::isfinite(set_boost) && set_decay >= 0 && std::isfinite(set_decay),
                "devices::pcm: set_boost and set_decay must be finite and >= 0");
  }
  /// Set step of a device at `g ∈ [0, bound]`.
  [[nodiscard]] float set_step(float g, float dw, float bound) const noexcept {
    const float x = g / bound;
    const float step = std::max(dw * (1.0f - x), 0.0f);
    return set_boost > 0 ? step * (1.0f + set_boost * std::exp(-set_decay * x)) : step;
  }
};

}  // namespace law

/// \brief A pulsed device model: aihwkit's common pulsed parameters plus a step law.
///
/// The parameters are an aggregate, so `devices::soft_bounds{.dw_min = 0.002f}` reads like a
/// configuration. A cell's state is its weight `w` and, for pair devices (PCM), `aux = g⁻`
/// (then `g⁺ = w + aux`).
template <class Law>
struct pulsed {
  static constexpr const char* name = Law::name;
  static constexpr bool is_pulsed = true;
  static constexpr bool has_pair = Law::has_pair;

  float dw_min = 0.001f;        ///< mean step of one pulse (normalised weight units), > 0
  float dw_min_dtod = 0.3f;     ///< device-to-device spread of the step, relative
  float dw_min_std = 0.3f;      ///< cycle-to-cycle spread of each step, relative
  float up_down = 0.0f;         ///< systematic up/down asymmetry, relative
  float up_down_dtod = 0.01f;   ///< device-to-device spread of the asymmetry
  float w_min = -0.6f;          ///< nominal lower bound (< 0)
  float w_max = 0.6f;           ///< nominal upper bound (> 0)
  float w_min_dtod = 0.3f;      ///< device-to-device spread of w_min, relative
  float w_max_dtod = 0.3f;      ///< device-to-device spread of w_max, relative
  Law law{};                    ///< the step law's own parameters

  /// Rejects unphysical parameters with a clear error.
  void validate() const {
    PNN_EXPECTS(dw_min > 0 && std::isfinite(dw_min), "devices: dw_min must be > 0");
    PNN_EXPECTS(dw_min_dtod >= 0 && dw_min_std >= 0 && up_down_dtod >= 0 && w_min_dtod >= 0 && w_max_dtod >= 0,
                "devices: variation sigmas (dw_min_dtod, dw_min_std, up_down_dtod, w_min_dtod, w_max_dtod) "
                "must be >= 0");
    PNN_EXPECTS(up_down > -1 && up_down < 1, "devices: up_down must lie in (-1, 1)");
    PNN_EXPECTS(w_min < 0 && w_max > 0, "devices: need w_min < 0 < w_max");
    law.validate();
  }

  /// Largest nominal weight magnitude: the weight mapped onto `g_max − g_min`.
  [[nodiscard]] float weight_range() const noexcept { return std::max(-w_min, w_max); }

  /// Draws one device's parameters (device-to-device variation). Bounds keep their sign, steps
  /// stay non-negative.
  [[nodiscard]] device_cell draw_cell(rng& g) const {
    const float gain = 1.0f + dw_min_dtod * g.normal();
    const float r = up_down_dtod * g.normal();
    device_cell c;
    // The asymmetry shortens the weaker direction only (aihwkit's up/down bias); negative
    // draws are folded, as aihwkit's enforce_consistency does.
    c.dw_up = std::abs(gain + std::min(up_down, 0.0f) + r) * dw_min;
    c.dw_down = std::abs(gain - std::max(up_down, 0.0f) - r) * dw_min;
    float hi = w_max * (1.0f + w_max_dtod * g.normal());
    float lo = w_min * (1.0f + w_min_dtod * g.normal());
    if (lo > hi) std::swap(lo, hi);
    c.b_max = std::abs(hi);
    c.b_min = -std::abs(lo);
    return c;
  }

  /// Nominal device (no variation), for closed-form checks.
  [[nodiscard]] device_cell nominal_cell() const noexcept {
    return {(1.0f + std::min(up_down, 0.0f)) * dw_min, (1.0f - std::max(up_down, 0.0f)) * dw_min, w_min, w_max};
  }

  /// Step magnitude of one up (`up`) or down pulse at `w`, before cycle-to-cycle noise. For a
  /// pair device it is the step of the set device at its conductance.
  [[nodiscard]] float step(float w, float aux, bool up, const device_cell& c) const noexcept {
    if constexpr (has_pair) {
      return up ? law.set_step(w + aux, c.dw_up, c.b_max) : law.set_step(aux, c.dw_down, -c.b_min);
    } else if constexpr (requires { law.up(w, c, w_min, w_max); }) {
      return up ? law.up(w, c, w_min, w_max) : law.down(w, c, w_min, w_max);  // laws referred to nominal bounds
    } else {
      return up ? law.up(w, c) : law.down(w, c);
    }
  }

  /// Applies one pulse with cycle-to-cycle noise `ξ ~ N(0, 1)`: the step is scaled by
  /// `(1 + dw_min_std·ξ)` (never reversed) and the result clipped to the cell's bounds.
  void pulse(float& w, float& aux, bool up, const device_cell& c, float xi) const noexcept {
    const float s = step(w, aux, up, c) * std::max(1.0f + dw_min_std * xi, 0.0f);
    if constexpr (has_pair) {
      float gp = w + aux, gm = aux;
      if (up) gp = std::min(gp + s, c.b_max);
      else gm = std::min(gm + s, -c.b_min);
      if (gp > law.refresh_threshold * c.b_max || gm > law.refresh_threshold * -c.b_min) {
        const float v = gp - gm;  // read the pair, reset both, rewrite onto one device
        gp = std::max(v, 0.0f);
        gm = std::max(-v, 0.0f);
      }
      w = gp - gm;
      aux = gm;
    } else {
      w = up ? std::min(w + s, c.b_max) : std::max(w - s, c.b_min);
    }
  }

  /// Writes `target` as well as the pair allows (clipped to the bounds; pair: onto one device).
  void write(float& w, float& aux, float target, const device_cell& c) const noexcept {
    w = std::clamp(target, c.b_min, c.b_max);
    if constexpr (has_pair) aux = std::max(-w, 0.0f);
    else aux = 0;
  }
};

/// Ideal device: `w ← w − ΔW` exactly, no pulses, no bounds; isolates the periphery's effects.
struct ideal {
  static constexpr const char* name = "ideal";
  static constexpr bool is_pulsed = false;
  static constexpr bool has_pair = false;
  void validate() const {}
  /// Weight magnitude mapped onto `g_max − g_min` (no physical bound; 1 by convention).
  [[nodiscard]] float weight_range() const noexcept { return 1.0f; }
};

/// Constant step with bounds (aihwkit ConstantStepDevice).
using constant_step = pulsed<law::constant>;
/// Step decreasing linearly with the weight (aihwkit LinearStepDevice).
using linear_step = pulsed<law::linear>;
/// Soft bounds: steps vanish at the bounds (aihwkit SoftBoundsDevice).
using soft_bounds = pulsed<law::soft>;
/// Exponential step (aihwkit ExpStepDevice).
using exp_step = pulsed<law::exponential>;
/// Power-law step (aihwkit PowStepDevice).
using pow_step = pulsed<law::power>;
/// Phase-change memory pair: unipolar set-only devices with refresh.
using pcm = pulsed<law::pcm_pair>;

}  // namespace pnn::physics::devices

namespace pnn::physics {

/// A device model a crossbar can program pulse by pulse.
template <class D>
concept pulsed_device = std::default_initializable<D> && D::is_pulsed &&
    requires(const D& d, float& w, float& aux, const devices::device_cell& c, rng& g) {
      { D::name } -> std::convertible_to<const char*>;
      { d.dw_min } -> std::convertible_to<float>;
      d.validate();
      { d.draw_cell(g) } -> std::same_as<devices::device_cell>;
      { d.step(w, aux, true, c) } -> std::same_as<float>;
      d.pulse(w, aux, true, c, 0.0f);
      d.write(w, aux, 0.0f, c);
      { d.weight_range() } -> std::convertible_to<float>;
    };

/// A pulsed device model chosen at run time among several (`devices::any_of`, in
/// pnn/physics/device_choice.hpp): `visit(f)` calls `f` with the chosen model, so that a crossbar
/// dispatches once per array operation and its pulse loops run on the concrete model.
template <class D>
concept device_choice = std::default_initializable<D> && requires { D::is_choice; } && D::is_choice &&
                        D::is_pulsed && requires(const D& d) {
                          { D::name } -> std::convertible_to<const char*>;
                          d.validate();
                          { d.weight_range() } -> std::convertible_to<float>;
                          { d.pair() } -> std::same_as<bool>;
                        };

/// Any device a crossbar accepts: a pulsed one, a run-time choice of pulsed ones, or an ideal
/// (non-pulsed) one.
template <class D>
concept crossbar_device = pulsed_device<D> || device_choice<D> ||
                          (std::default_initializable<D> && !D::is_pulsed && requires(const D& d) {
                            d.validate();
                            { d.weight_range() } -> std::convertible_to<float>;
                          });

static_assert(pulsed_device<devices::constant_step>);
static_assert(pulsed_device<devices::linear_step>);
static_assert(pulsed_device<devices::soft_bounds>);
static_assert(pulsed_device<devices::exp_step>);
static_assert(pulsed_device<devices::pow_step>);
static_assert(pulsed_device<devices::pcm>);
static_assert(crossbar_device<devices::ideal> && !pulsed_device<devices::ideal>);

}  // namespace pnn::physics
