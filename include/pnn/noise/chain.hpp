// SPDX-License-Identifier: MIT
/// \file
/// \brief `noise::chain<Ps...>`: several noise policies applied in order at each stage.
///
/// A stage exists on the chain iff some member has it, so a chain of output-only policies adds
/// no input stage (and costs nothing there). At each stage the members that have it are applied
/// in declaration order, member `i` drawing from `g.split(i)` (independent streams); static
/// state is drawn the same way in `prepare`. Example: `chain<saturation, adc<8>>` compresses
/// the read-out and then digitises it, `chain<adc<8>, saturation>` the other way round.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <tuple>
#include <utility>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/noise/none.hpp>
#include <pnn/noise/stages.hpp>

namespace pnn::noise {

/// \brief Applies `Ps...` in order at every stage any of them has (docs/physics.md, "Stages").
/// Build with `chain<A, B>{{A{...}, B{...}}}` or default parameters `chain<A, B>{}`.
template <noise_policy... Ps>
struct chain {
  static constexpr const char* name = "chain";
  static constexpr std::size_t size = sizeof...(Ps);
  /// A chain acts at the union of its members' stages.
  static constexpr unsigned stages = (0u | ... | Ps::stages);
  std::tuple<Ps...> members{};  ///< the policies, applied in this order

  /// Member `I`.
  template <std::size_t I>
  constexpr auto& get() noexcept { return std::get<I>(members); }
  template <std::size_t I>
  constexpr const auto& get() const noexcept { return std::get<I>(members); }

  /// Validates every member that has parameters.
  void validate() const {
    std::apply([](const auto&... p) { (noise::validate(p), ...); }, members);
  }

  /// Draws every member's per-device state, member `i` from `g.split(i)`.
  void prepare(std::size_t in, std::size_t out, rng& g)
    requires(has_static_state<Ps> || ...)
  {
    for_each([&](auto& p, std::size_t i) {
      if constexpr (has_static_state<std::remove_cvref_t<decltype(p)>>) {
        rng gi = g.split(i);
        p.prepare(in, out, gi);
      }
    });
  }

  /// Forwards the time since programming to every member with a time stage.
  void at_time(double seconds)
    requires(has_time_stage<Ps> || ...)
  {
    // Validate first for all members so that a bad time changes nobody.
    PNN_EXPECTS(seconds >= 0 && std::isfinite(seconds), "noise::chain: time must be >= 0 and finite (s)");
    for_each([&](auto& p, std::size_t) {
      if constexpr (has_time_stage<std::remove_cvref_t<decltype(p)>>) p.at_time(seconds);
    });
  }

  /// Input stage: members with one, in order.
  template <std::floating_point T>
  void input(T* x, std::size_t n, rng& g) const
    requires(has_input_stage<Ps, T> || ...)
  {
    for_each([&](const auto& p, std::size_t i) {
      if constexpr (has_input_stage<std::remove_cvref_t<decltype(p)>, T>) {
        rng gi = g.split(i);
        p.input(x, n, gi);
      }
    });
  }

  /// Output stage: members with one, in order.
  template <std::floating_point T>
  void output(T* y, std::size_t n, rng& g) const
    requires(has_output_stage<Ps, T> || ...)
  {
    for_each([&](const auto& p, std::size_t i) {
      if constexpr (has_output_stage<std::remove_cvref_t<decltype(p)>, T>) {
        rng gi = g.split(i);
        p.output(y, n, gi);
      }
    });
  }

  /// Output stage of a `rows × width` read-out (what a layer calls): members with a shaped hook
  /// (`has_shaped_output`, e.g. `column_gain`) get the shape, the others `rows·width` values;
  /// same order and streams as the flat form.
  template <std::floating_point T>
  void output(T* y, std::size_t rows, std::size_t width, rng& g) const
    requires(has_output_stage<Ps, T> || ...)
  {
    for_each([&](const auto& p, std::size_t i) {
      using P = std::remove_cvref_t<decltype(p)>;
      if constexpr (has_output_stage<P, T>) {
        rng gi = g.split(i);
        if constexpr (has_shaped_output<P, T>) p.output(y, rows, width, gi);
        else p.output(y, rows * width, gi);
      }
    });
  }

  /// Output stage of a transposed read (`Wᵀ y`, sensed by the row periphery): each member's
  /// `output_transposed` where it has one, else its `output`.
  template <std::floating_point T>
  void output_transposed(T* y, std::size_t n, rng& g) const
    requires(has_output_stage<Ps, T> || ...)
  {
    for_each([&](const auto& p, std::size_t i) {
      using P = std::remove_cvref_t<decltype(p)>;
      rng gi = g.split(i);
      if constexpr (requires { p.output_transposed(y, n, gi); }) p.output_transposed(y, n, gi);
      else if constexpr (has_output_stage<P, T>) p.output(y, n, gi);
    });
  }

  /// Weights stage: the first member with one maps w → w_eff, the next ones w_eff in place.
  template <std::floating_point T>
  void weights(const T* w, T* w_eff, std::size_t n) const
    requires(has_weight_stage<Ps, T> || ...)
  {
    bool first = true;
    for_each([&](const auto& p, std::size_t) {
      if constexpr (has_weight_stage<std::remove_cvref_t<decltype(p)>, T>) {
        p.weights(first ? w : w_eff, w_eff, n);
        first = false;
      }
    });
  }

 private:
  template <class F>
  constexpr void for_each(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(members), I), ...); }(std::index_sequence_for<Ps...>{});
  }
  template <class F>
  constexpr void for_each(F&& f) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(members), I), ...); }(std::index_sequence_for<Ps...>{});
  }
};

}  // namespace pnn::noise
