// SPDX-License-Identifier: MIT
/// \file
/// \brief Static read-out mismatch (`noise::column_gain`) and the `crossbar_variation` mismatch
/// that physics-aware training is judged on (issue 8 / pnn-bench).
///
/// Real arrays differ from their model in ways that do not change during use: every device's
/// gain (`noise::variation`), every column's sense-amplifier/ADC gain, and a read noise floor.
/// In-silico training is blind to them; physics-aware training sees them in its forward pass.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/noise/chain.hpp>
#include <pnn/noise/device.hpp>
#include <pnn/noise/read.hpp>
#include <pnn/noise/stages.hpp>

namespace pnn::noise {

/// Static gain error of each output column (sense amplifier / ADC gain spread), drawn once:
/// `y_j ← k_j y_j`, `k_j = 1 + σ ξ_j`. Stages: output (static state drawn in `prepare`).
/// The gains belong to the layer width they were drawn for: a layer passes its read-out's shape
/// (`output(y, rows, width, rng&)`), and any other width is an error, never a silent reuse of the
/// gains of a narrower layer.
struct column_gain {
  static constexpr unsigned stages = output_stage | static_stage;
  static constexpr const char* name = "column_gain";
  double sigma = 0.1;  ///< relative spread of the column gains (dimensionless)
  /// What `prepare` draws, kept apart from the parameter above (`noise::reconfigure` changes
  /// the parameter and keeps it).
  struct drawn_state {
    std::vector<float> gain{};  ///< k_j per output column
  };
  drawn_state state{};

  /// Checkpoint contents (pnn/core/state_format.hpp): the drawn column gains.
  template <class V>
  void visit_state(V& v) {
    v("gain", state.gain);
  }

  /// \pre sigma ≥ 0 and finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(sigma >= 0 && std::isfinite(sigma), "noise::column_gain: sigma must be >= 0 and finite");
  }
  /// Draws the `out` column gains.
  void prepare(std::size_t, std::size_t out, rng& g) {
    validate();
    state.gain.resize(out);
    for (auto& k : state.gain) k = static_cast<float>(1.0 + sigma * g.normal_double());
  }
  /// Multiplies each output column by its gain; `y` is `rows × width`, row-major (what a layer calls).
  /// \pre `prepare` drew `width` gains (else `pnn::error` naming both widths; `y` unchanged).
  template <class T>
  void output(T* y, std::size_t rows, std::size_t width, rng&) const {
    check_width(width, false);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < width; ++j) y[r * width + j] *= static_cast<T>(state.gain[j]);
  }
  /// The flat form of the output stage: `n` values carry no shape, so they are one read-out row
  /// of width `n` (a batch needs the shaped form above).
  /// \pre `prepare` drew `n` gains (else `pnn::error`; `y` unchanged).
  template <class T>
  void output(T* y, std::size_t n, rng& g) const {
    check_width(n, true);
    output(y, 1, n, g);
  }
  /// A transposed read is sensed by the row periphery, whose gains this policy does not model:
  /// it leaves such reads unchanged (rather than applying column gains to rows).
  template <class T>
  void output_transposed(T*, std::size_t, rng&) const noexcept {}

 private:
  void check_width(std::size_t width, bool flat) const {
    PNN_EXPECTS(!state.gain.empty(), "noise::column_gain: prepare() was not called for this layer");
    if (width == state.gain.size()) return;
#if PNN_HAS_EXCEPTIONS
    throw_error("noise::column_gain: a read-out of width " + std::to_string(width) + " does not match the " +
                std::to_string(state.gain.size()) + " column gains prepare() drew for this layer" +
                (flat ? " (output(y, n, rng) is one row of width n; pass rows and width for a batch)" : ""));
#else
    (void)flat;
    ::pnn::detail::fail("noise::column_gain: the read-out width does not match the column gains prepare() drew",
                        __FILE__, __LINE__);
#endif
  }
};
static_assert(noise_policy<column_gain> && has_shaped_output<column_gain> && has_shaped_output<column_gain, double>);

/// The mismatch of pnn-bench's `crossbar_variation`: per-device multiplicative variation, a
/// per-column gain error and read noise, in that order.
using crossbar_mismatch = chain<variation, column_gain, gaussian_read>;
static_assert(has_shaped_output<crossbar_mismatch>);

/// `crossbar_mismatch` with the amounts the PAT issue fixes: `w_eff = w (1 + 0.3 ξ)`, column
/// gain σ 0.1, read noise σ 0.02 of full scale.
inline crossbar_mismatch crossbar_variation_mismatch(double device = 0.3, double column = 0.1, double read = 0.02) {
  return crossbar_mismatch{{variation{.multiplicative = device}, column_gain{.sigma = column},
                            gaussian_read{.sigma = read, .full_scale = 1.0}}};
}

}  // namespace pnn::noise
