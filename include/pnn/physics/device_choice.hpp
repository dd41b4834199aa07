// SPDX-License-Identifier: MIT
/// \file
/// \brief A crossbar device model chosen at run time (`devices::any_of`, `devices::selectable`)
/// and its names (`device_from_name`): one crossbar type trains on any listed device.
///
/// A crossbar's device is a template parameter, so each model is its own network type and a
/// program that offers a choice of devices on its command line would compile every rule once
/// per model. `any_of<Ds...>` holds one of `Ds` (a `std::variant`) and is itself a crossbar
/// device: the crossbar calls `visit` once per array operation (a batch of pulse trains, a
/// zero-shift, a deployment), so the pulse loops are compiled for each concrete model and run
/// without per-pulse dispatch. Reads never consult the device. The price is compile time
/// (every pulse loop once per alternative) and, in checkpoints, a signature that names
/// `any_of` rather than the chosen model.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <pnn/core/error.hpp>
#include <pnn/physics/devices.hpp>
#include <pnn/physics/measured_device.hpp>

namespace pnn::physics::devices {

/// \brief A pulsed device model chosen at run time among `Ds` (each a `pulsed_device`).
///
/// Assign a model to choose it: `p.device = devices::pcm{...}`. Default: the first alternative
/// with its defaults.
template <pulsed_device... Ds>
  requires(sizeof...(Ds) >= 1)
struct any_of {
  static constexpr const char* name = "any_of";
  static constexpr bool is_pulsed = true;
  static constexpr bool is_choice = true;
  /// Some alternative holds each weight as a pair of one-sided devices (`pair()` says whether
  /// the chosen one does).
  static constexpr bool has_pair = (Ds::has_pair || ...);

  std::variant<Ds...> model{};  ///< the chosen model and its parameters

  any_of() = default;
  /// Chooses `d` (implicit, so a model can be assigned where an `any_of` is expected).
  template <class D>
    requires(std::same_as<std::remove_cvref_t<D>, Ds> || ...)
  any_of(D&& d) : model(std::forward<D>(d)) {}  // NOLINT(google-explicit-constructor)

  /// Calls `f(model)` with the chosen model (`const Ds&`).
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit(std::forward<F>(f), model);
  }
  /// Calls `f(model)` with the chosen model (`Ds&`), to change its parameters.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), model);
  }
  /// Name of the chosen model (`soft_bounds`, `pcm`, …).
  [[nodiscard]] const char* model_name() const noexcept {
    return std::visit([](const auto& d) { return std::remove_cvref_t<decltype(d)>::name; }, model);
  }
  /// True when the chosen model is a pair of one-sided devices (w = G⁺ − G⁻).
  [[nodiscard]] bool pair() const noexcept {
    return std::visit([](const auto& d) { return std::remove_cvref_t<decltype(d)>::has_pair; }, model);
  }
  /// Validates the chosen model's parameters.
  void validate() const {
    visit([](const auto& d) { d.validate(); });
  }
  /// The chosen model's largest nominal weight magnitude.
  [[nodiscard]] float weight_range() const {
    return visit([](const auto& d) { return d.weight_range(); });
  }
  /// The chosen model's nominal pulse step (normalised weight units).
  [[nodiscard]] float step_size() const {
    return visit([](const auto& d) { return d.dw_min; });
  }
};

/// Every pulsed model of this library, chosen at run time (pnn-bench's `--device`).
using selectable = any_of<soft_bounds, constant_step, linear_step, exp_step, pow_step, pcm, measured>;

/// PCM pair after aihwkit's PCM preset (Nandakumar et al. 2020's Ge₂Sb₂Te₅ fit): a late set
/// step of 1/200 of a device's range (aihwkit: dw_min 0.01 over [0, 2]; here 0.003 over
/// [0, 0.6]) and abrupt first steps, 28 times larger on an empty device and fading as
/// `e^{−5·fill}` (aihwkit: 1 + 27.2·e^{−2.5 g} over g ∈ [0, 2]), cycle-to-cycle spread 0.6 of a
/// step, device-to-device spreads 0.2 (step), 0.05 (asymmetry), 0.1 (range). The set step also
/// saturates as the device fills (soft-bounds form) and the pair is refreshed at 75 % of its
/// range, so every refresh restarts both devices on their abrupt steps. A device on which plain
/// pulsed SGD trains poorly.
[[nodiscard]] inline pcm pcm_preset() noexcept {
  pcm d;
  d.law.set_boost = 27.2f;
  d.law.set_decay = 5.0f;
  d.dw_min = 0.003f;
  d.dw_min_std = 0.6f;
  d.dw_min_dtod = 0.2f;
  d.up_down = 0.0f;
  d.up_down_dtod = 0.05f;
  d.w_max_dtod = 0.1f;
  d.w_min_dtod = 0.1f;
  return d;
}

/// Names `device_from_name` accepts, for messages and help texts.
inline constexpr std::string_view selectable_names =
    "soft_bounds|constant_step|linear_step|exp_step|pow_step|pcm|measured:FILE.csv";

/// \brief The device a name stands for: `soft_bounds`, `constant_step`, `linear_step`,
/// `exp_step`, `pow_step` (each with this library's defaults, aihwkit's pulsed-device reference
/// values), `pcm` (`pcm_preset()`), or `measured:FILE.csv` — the tabulated device fitted to that
/// pulse-response file (`fit_pulse_response(load_pulse_response(FILE)).table`).
/// \throws pnn::error for an unknown name, or as `load_pulse_response`/`fit_pulse_response` do
/// for the file.
[[nodiscard]] inline selectable device_from_name(std::string_view spec) {
  if (spec == "soft_bounds") return soft_bounds{};
  if (spec == "constant_step") return constant_step{};
  if (spec == "linear_step") return linear_step{};
  if (spec == "exp_step") return exp_step{};
  if (spec == "pow_step") return pow_step{};
  if (spec == "pcm") return pcm_preset();
  constexpr std::string_view prefix = "measured:";
  if (spec.substr(0, prefix.size()) == prefix) {
    const std::string path(spec.substr(prefix.size()));
    PNN_EXPECTS(!path.empty(), "devices::device_from_name: 'measured:' needs a pulse-response file (measured:FILE.csv)");
    return fit_pulse_response(load_pulse_response(path)).table;
  }
  ::pnn::throw_error("devices::device_from_name: unknown device '" + std::string(spec) + "' (expected " +
                     std::string(selectable_names) + ")");
}

}  // namespace pnn::physics::devices

namespace pnn::physics {
static_assert(device_choice<devices::selectable> && crossbar_device<devices::selectable>);
}  // namespace pnn::physics
