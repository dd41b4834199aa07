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

#include <cstddef>

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

}  // namespace noise
}  // namespace pnn
