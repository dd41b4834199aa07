// SPDX-License-Identifier: MIT
/// \file
/// \brief Concepts for the static and time hooks of noise policies, and network-wide helpers.
///
/// Complements noise/none.hpp (input, output and weight stages): a policy with per-device state
/// has `prepare(in, out, rng&)`, drawn once when its layer is initialised; a policy that
/// changes with time has `at_time(seconds)`; a policy with parameters has `validate()`, which
/// throws `pnn::error` on a bad parameter and is called by the layer before it draws anything;
/// an output-stage policy may also take the read-out's shape (`has_shaped_output`).
#pragma once

#include <concepts>
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/noise/none.hpp>

namespace pnn {

/// The policy draws per-device state once for an `in`×`out` tile (variation, drift, stuck-at).
template <class N>
concept has_static_state = noise_policy<N> && requires(N& p, std::size_t in, std::size_t out, rng& g) {
  p.prepare(in, out, g);
};

/// The policy's effect depends on the time since programming (drift).
template <class N>
concept has_time_stage = noise_policy<N> && requires(N& p, double seconds) { p.at_time(seconds); };

/// The policy's output stage also takes the read-out's shape, `output(T* y, rows, width, rng&)`,
/// besides the flat `output(T* y, n, rng&)` its stage declaration requires. A layer calls the
/// shaped form where there is one, so a policy tied to output columns (`noise::column_gain`)
/// checks the width it was prepared for instead of accepting any divisor of `rows·width`.
template <class N, class T = float>
concept has_shaped_output = has_output_stage<N, T> && bool(N::stages & noise::output_stage) &&
                            requires(const N& p, T* y, std::size_t rows, std::size_t width, rng& g) {
                              p.output(y, rows, width, g);
                            };

/// The policy checks its parameters (`validate()` throws `pnn::error` on a bad one).
template <class N>
concept has_validate = noise_policy<N> && requires(const N& p) { p.validate(); };

/// A policy whose per-device draws (`prepare`) are kept apart from its parameters: a nested
/// `drawn_state` held in the member `state` (`variation`, `drift`, `stuck_at`, `column_gain`).
template <class N>
concept has_drawn_state =
    noise_policy<N> && requires { typename N::drawn_state; } && std::same_as<decltype(N::state), typename N::drawn_state>;

namespace noise {

/// Checks `p`'s parameters when it has a `validate()`; a policy without parameters is valid.
template <class N>
void validate(const N& p) {
  if constexpr (has_validate<N>) p.validate();
}

/// Sets every layer's time since programming (seconds) in `net`: calls `at_time` on each noise
/// policy that has a time stage (e.g. `drift`); others are untouched.
/// \pre seconds >= 0 and finite (checked by the policies).
template <class Net>
void set_time(Net& net, double seconds) {
  net.for_each_layer([&](auto& l, std::size_t) {
    if constexpr (requires { l.noise.at_time(seconds); }) l.noise.at_time(seconds);
  });
}

namespace detail {
template <class P, class N>
std::size_t reconfigure_one(N& n, const P& p) {
  if constexpr (std::is_same_v<N, P>) {
    if constexpr (has_drawn_state<P>) {
      auto kept = std::move(n.state);
      n = p;
      n.state = std::move(kept);
    } else {
      n = p;
    }
    if constexpr (requires { n.at_time(n.time); }) n.at_time(n.time);  // factors for the new parameters
    return 1;
  } else if constexpr (requires { n.members; }) {
    return std::apply([&](auto&... m) { return (std::size_t{0} + ... + reconfigure_one(m, p)); }, n.members);
  } else {
    return 0;
  }
}
}  // namespace detail

/// \brief Gives every policy of type `P` in `net` (a layer's policy, or a member of its chain)
/// the parameters of `p` and keeps what each drew per device: a σ changed from 0.1 to 0.2
/// doubles the same devices' deviations instead of drawing new devices. Returns how many
/// policies changed. \pre `p` is valid and some layer has a policy of type `P` (else
/// `pnn::error`, nothing changed).
template <class Net, class P>
std::size_t reconfigure(Net& net, const P& p) {
  validate(p);
  std::size_t count = 0;
  net.for_each_layer([&](auto& l, std::size_t) { count += detail::reconfigure_one(l.noise, p); });
  if (count == 0) throw_error(std::string("noise::reconfigure: no layer of the network has a policy of type ") + P::name);
  return count;
}

}  // namespace noise
}  // namespace pnn
