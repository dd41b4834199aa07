// SPDX-License-Identifier: MIT
/// \file
/// \brief `noise::none` and the stage hooks a noise policy may provide.
///
/// A noise policy describes how a physical computation deviates from the ideal one, at the
/// stages where hardware deviates (docs/physics.md). A policy declares its stages
/// (`static constexpr unsigned stages = noise::output_stage | …;`) and provides exactly the hooks
/// it declares: a declared stage without its hook, or a hook without its declaration (a
/// misspelt `ouput`), is a compile error naming it where a layer uses the policy. A layer calls
/// only the declared hooks (`if constexpr`), so a missing stage costs nothing.
///
/// | stage           | hook                                   | when                         |
/// |-----------------|----------------------------------------|------------------------------|
/// | input (DAC)     | `input(T* x, std::size_t n, rng&)`     | on the values driving a read |
/// | output (read)   | `output(T* y, std::size_t n, rng&)`    | on the analogue read-out     |
/// |   (shaped form) | `output(T* y, rows, width, rng&)`      | preferred by layers if present |
/// | weights, static | `weights(const T* w, T* w_eff, n)`     | once per programmed state    |
/// | static state    | `prepare(in, out, rng&)`               | once, when the layer is drawn |
/// | time            | `at_time(double seconds)`              | `set_time` on the network    |
#pragma once

#include <cstddef>

#include <pnn/core/rng.hpp>

namespace pnn::noise {

/// Stage flags a policy combines into its `stages` declaration.
inline constexpr unsigned input_stage = 1u;    ///< `input(T* x, n, rng&) const`
inline constexpr unsigned output_stage = 2u;   ///< `output(T* y, n, rng&) const`
inline constexpr unsigned weight_stage = 4u;   ///< `weights(const T* w, T* w_eff, n) const`
inline constexpr unsigned static_stage = 8u;   ///< `prepare(in, out, rng&)`
inline constexpr unsigned time_stage = 16u;    ///< `at_time(double seconds)`

/// Ideal computation: no hook at all, so a layer with `none` is exactly its substrate's kernel.
struct none {
  static constexpr const char* name = "none";
  static constexpr unsigned stages = 0;
};

}  // namespace pnn::noise

namespace pnn {

/// A noise policy: a default-constructible, copyable type that declares the stages it acts at
/// (`static constexpr unsigned stages`, a combination of `noise::*_stage`). That its hooks match
/// the declaration is checked for the layer's value type (`detail::check_noise_stages`).
template <class N>
concept noise_policy = std::is_default_constructible_v<N> && std::is_copy_constructible_v<N> &&
                       requires { { N::stages } -> std::convertible_to<unsigned>; };

/// The policy perturbs the values that drive a read (DAC stage).
template <class N, class T = float>
concept has_input_stage = noise_policy<N> && requires(const N& p, T* x, std::size_t n, rng& g) {
  p.input(x, n, g);
};

/// The policy perturbs the analogue read-out (read noise, ADC).
template <class N, class T = float>
concept has_output_stage = noise_policy<N> && requires(const N& p, T* y, std::size_t n, rng& g) {
  p.output(y, n, g);
};

/// The policy replaces programmed weights by static effective ones (device variation, stuck-at).
template <class N, class T = float>
concept has_weight_stage = noise_policy<N> && requires(const N& p, const T* w, T* we, std::size_t n) {
  p.weights(w, we, n);
};

static_assert(noise_policy<noise::none> && !has_input_stage<noise::none> && !has_output_stage<noise::none>);

namespace detail {
/// One `static_assert` per stage whose hook and declaration disagree, each naming the hook:
/// what a layer on policy `N` with value type `T` reports. True when they agree.
template <class N, class T>
consteval bool check_noise_stages() {
  constexpr unsigned declared = N::stages;
  constexpr bool in = requires(const N& p, T* x, std::size_t n, rng& g) { p.input(x, n, g); };
  constexpr bool out = requires(const N& p, T* y, std::size_t n, rng& g) { p.output(y, n, g); };
  constexpr bool w = requires(const N& p, const T* a, T* b, std::size_t n) { p.weights(a, b, n); };
  constexpr bool st = requires(N& p, std::size_t k, rng& g) { p.prepare(k, k, g); };
  constexpr bool tm = requires(N& p, double s) { p.at_time(s); };
  constexpr bool shaped = requires(const N& p, T* y, std::size_t n, rng& g) { p.output(y, n, n, g); };
  constexpr bool shaped_ok = !shaped || bool(declared & noise::output_stage);
  constexpr bool in_ok = in == bool(declared & noise::input_stage);
  constexpr bool out_ok = out == bool(declared & noise::output_stage);
  constexpr bool w_ok = w == bool(declared & noise::weight_stage);
  constexpr bool st_ok = st == bool(declared & noise::static_stage);
  constexpr bool tm_ok = tm == bool(declared & noise::time_stage);
  static_assert(in_ok, "pnn noise policy: input_stage and input(T* x, size_t n, rng&) const disagree");
  static_assert(out_ok, "pnn noise policy: output_stage and output(T* y, size_t n, rng&) const disagree");
  static_assert(w_ok, "pnn noise policy: weight_stage and weights(const T* w, T* w_eff, size_t n) const disagree");
  static_assert(st_ok, "pnn noise policy: static_stage and prepare(size_t in, size_t out, rng&) disagree");
  static_assert(tm_ok, "pnn noise policy: time_stage and at_time(double seconds) disagree");
  static_assert(shaped_ok, "pnn noise policy: output(T* y, size_t rows, size_t width, rng&) const needs output_stage");
  return in_ok && out_ok && w_ok && st_ok && tm_ok && shaped_ok;
}
}  // namespace detail

}  // namespace pnn
