// SPDX-License-Identifier: MIT
/// \file
/// \brief Converter policies `dac<bits>` (input stage) and `adc<bits>` (output stage): symmetric
/// uniform quantisation with clipping, q(x) = Δ·round(clip(x, −b, b)/Δ) (docs/physics.md).
///
/// Resolution is a template value (it decides the grid at compile time and is checked by
/// `static_assert`); the bound is a run-time parameter. Both are deterministic and act on the
/// forward read only: gradients pass straight through (a rule differentiates them as identity).
/// Defaults follow aihwkit's IO parameters: DAC 7 bits on [−1, 1], ADC 9 bits on [−12, 12].
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/noise/none.hpp>
#include <pnn/noise/quantize.hpp>
#include <pnn/noise/stages.hpp>

namespace pnn::noise {

/// \brief Digital-to-analogue converter on the inputs that drive a read: clip to [−bound, bound]
/// and quantise to 2^Bits − 1 symmetric levels. Input stage.
/// \tparam Bits resolution in [1, 24]
template <unsigned Bits = 7>
struct dac {
  static constexpr unsigned stages = input_stage;
  static_assert(valid_quantizer_bits(Bits), "noise::dac<Bits>: Bits must be in [1, 24]");
  static constexpr const char* name = "dac";
  static constexpr unsigned bits = Bits;  ///< resolution
  double bound = 1.0;                     ///< input range b (input units)

  /// \pre bound > 0 and finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(bound > 0 && std::isfinite(bound), "noise::dac: bound must be > 0 and finite");
  }
  /// Grid step Δ = b/(2^(Bits−1) − 1) (input units).
  double step() const { return symmetric_step(bound, Bits); }

  /// Quantises x[0, n) in place; draws nothing from `g`.
  template <std::floating_point T>
  void input(T* x, std::size_t n, rng&) const {
    validate();
    quantize_symmetric(x, n, static_cast<T>(bound), Bits);
  }
};

/// \brief Analogue-to-digital converter on the read-out: clip to [−bound, bound] and quantise
/// to 2^Bits − 1 symmetric levels. Output stage (before the bias, which is digital).
/// \tparam Bits resolution in [1, 24]
template <unsigned Bits = 9>
struct adc {
  static constexpr unsigned stages = output_stage;
  static_assert(valid_quantizer_bits(Bits), "noise::adc<Bits>: Bits must be in [1, 24]");
  static constexpr const char* name = "adc";
  static constexpr unsigned bits = Bits;  ///< resolution
  double bound = 12.0;                    ///< output range b (output units)

  /// \pre bound > 0 and finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(bound > 0 && std::isfinite(bound), "noise::adc: bound must be > 0 and finite");
  }
  /// Grid step Δ = b/(2^(Bits−1) − 1) (output units).
  double step() const { return symmetric_step(bound, Bits); }

  /// Quantises y[0, n) in place; draws nothing from `g`.
  template <std::floating_point T>
  void output(T* y, std::size_t n, rng&) const {
    validate();
    quantize_symmetric(y, n, static_cast<T>(bound), Bits);
  }
};

static_assert(noise_policy<dac<>> && has_input_stage<dac<>> && has_input_stage<dac<8>, double> &&
              !has_output_stage<dac<>> && !has_weight_stage<dac<>>);
static_assert(noise_policy<adc<>> && has_output_stage<adc<>> && has_output_stage<adc<4>, double> &&
              !has_input_stage<adc<>> && !has_weight_stage<adc<>>);

}  // namespace pnn::noise
