// SPDX-License-Identifier: MIT
/// \file
/// \brief All noise policies of `pnn::noise` (docs/physics.md, "Noise policies") in one include.
///
/// | policy             | stages                  | header          |
/// |--------------------|-------------------------|-----------------|
/// | `none`             | —                       | none.hpp        |
/// | `gaussian_read`    | output                  | read.hpp        |
/// | `multiplicative`   | output                  | read.hpp        |
/// | `shot`             | output                  | read.hpp        |
/// | `thermal`          | output                  | read.hpp        |
/// | `saturation`       | output                  | read.hpp        |
/// | `dac<bits>`        | input                   | converters.hpp  |
/// | `adc<bits>`        | output                  | converters.hpp  |
/// | `variation`        | weights (static)        | device.hpp      |
/// | `drift`            | weights (static), time  | device.hpp      |
/// | `stuck_at`         | weights (static)        | device.hpp      |
/// | `chain<Ps...>`     | union of its members'   | chain.hpp       |
///
/// Quantisers and clippers shared with substrates' periphery: quantize.hpp.
#pragma once

#include <pnn/noise/chain.hpp>
#include <pnn/noise/converters.hpp>
#include <pnn/noise/device.hpp>
#include <pnn/noise/none.hpp>
#include <pnn/noise/quantize.hpp>
#include <pnn/noise/read.hpp>
#include <pnn/noise/stages.hpp>

namespace pnn::noise {

// A chain has exactly the stages of its members, no more.
static_assert(noise_policy<chain<gaussian_read, adc<8>>> && has_output_stage<chain<gaussian_read, adc<8>>> &&
              !has_input_stage<chain<gaussian_read, adc<8>>> && !has_weight_stage<chain<gaussian_read, adc<8>>> &&
              !has_static_state<chain<gaussian_read, adc<8>>> && !has_time_stage<chain<gaussian_read, adc<8>>>);
static_assert(has_input_stage<chain<dac<7>, gaussian_read>> && has_output_stage<chain<dac<7>, gaussian_read>, double>);
static_assert(has_weight_stage<chain<variation, drift>> && has_static_state<chain<variation, drift>> &&
              has_time_stage<chain<variation, drift>> && !has_output_stage<chain<variation, drift>>);

}  // namespace pnn::noise
