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
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/noise/chain.hpp>
#include <pnn/noise/device.hpp>
#include <pnn/noise/read.hpp>

namespace pnn::noise {

/// Static gain error of each output column (sense amplifier / ADC gain spread), drawn once:
/// `y_j ← k_j y_j`, `k_j = 1 + σ ξ_j`. Stages: output (static state drawn in `prepare`).
struct column_gain {
  static constexpr unsigned stages = output_stage | static_stage;
  static constexpr const char* name = "column_gain";
  double sigma = 0.1;  ///< relative spread of the column gains (dimensionless)
  std::vector<float> gain{};

  /// \pre sigma ≥ 0 and finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(sigma >= 0 && std::isfinite(sigma), "noise::column_gain: sigma must be >= 0 and finite");
  }
  /// Draws the `out` column gains.
  void prepare(std::size_t, std::size_t out, rng& g) {
    validate();
    gain.resize(out);
    for (auto& k : gain) k = static_cast<float>(1.0 + sigma * g.normal_double());
  }
  /// Multiplies each output column by its gain (`y` is n × out, row-major).
  /// \pre `prepare` was called for this layer's width.
  template <class T>
  void output(T* y, std::size_t n, rng&) const {
    PNN_EXPECTS(!gain.empty() && n % gain.size() == 0, "noise::column_gain: prepare() was not called for this layer");
    const std::size_t cols = gain.size();
    for (std::size_t i = 0; i < n; i += cols)
      for (std::size_t j = 0; j < cols; ++j) y[i + j] *= static_cast<T>(gain[j]);
  }
  /// A transposed read is sensed by the row periphery, whose gains this policy does not model:
  /// it leaves such reads unchanged (rather than applying column gains to rows).
  template <class T>
  void output_transposed(T*, std::size_t, rng&) const noexcept {}
};
static_assert(noise_policy<column_gain>);

/// The mismatch of pnn-bench's `crossbar_variation`: per-device multiplicative variation, a
/// per-column gain error and read noise, in that order.
using crossbar_mismatch = chain<variation, column_gain, gaussian_read>;

/// `crossbar_mismatch` with the amounts the PAT issue fixes: `w_eff = w (1 + 0.3 ξ)`, column
/// gain σ 0.1, read noise σ 0.02 of full scale.
inline crossbar_mismatch crossbar_variation_mismatch(double device = 0.3, double column = 0.1, double read = 0.02) {
  return crossbar_mismatch{{variation{.multiplicative = device}, column_gain{.sigma = column},
                            gaussian_read{.sigma = read, .full_scale = 1.0}}};
}

}  // namespace pnn::noise
