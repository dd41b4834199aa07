// SPDX-License-Identifier: MIT
/// \file
/// \brief `noise::none` and the stage hooks a noise policy may provide.
///
/// A noise policy describes how a physical computation deviates from the ideal one, at the
/// stages where hardware deviates (docs/physics.md). Each stage is an optional member; a layer
/// calls only the hooks its policy has (`if constexpr`), so a missing stage costs nothing.
///
/// | stage           | hook                                   | when                         |
/// |-----------------|----------------------------------------|------------------------------|
/// | input (DAC)     | `input(T* x, std::size_t n, rng&)`     | on the values driving a read |
/// | output (read)   | `output(T* y, std::size_t n, rng&)`    | on the analogue read-out     |
/// | weights, static | `weights(const T* w, T* w_eff, n)`     | once per programmed state    |
/// | time            | `at_time(double seconds)`              | `set_time` on the network    |
#pragma once

#include <cstddef>

#include <pnn/core/rng.hpp>

namespace pnn::noise {

/// Ideal computation: no hook at all, so a layer with `none` is exactly its substrate's kernel.
struct none {
  static constexpr const char* name = "none";
};

}  // namespace pnn::noise

namespace pnn {

/// A noise policy: any default-constructible type; its hooks are detected individually.
template <class N>
concept noise_policy = std::is_default_constructible_v<N> && std::is_copy_constructible_v<N>;

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

}  // namespace pnn
