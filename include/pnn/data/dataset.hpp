// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::data::dataset`: inputs, targets and (for classification) labels as xtensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <xtensor/xtensor.hpp>

namespace pnn::data {

/// A supervised data set: `inputs` (n × features) and `targets` (n × outputs, one-hot for
/// classification); `labels` (n) holds class indices for classification and is empty otherwise.
struct dataset {
  xt::xtensor<float, 2> inputs{};
  xt::xtensor<float, 2> targets{};
  xt::xtensor<std::int32_t, 1> labels{};
  std::string name{};

  [[nodiscard]] std::size_t size() const noexcept { return inputs.shape()[0]; }
  [[nodiscard]] std::size_t features() const noexcept { return inputs.shape()[1]; }
  [[nodiscard]] std::size_t outputs() const noexcept { return targets.shape()[1]; }
};

/// A training set and a held-out test set.
struct split {
  dataset train{};
  dataset test{};
};

}  // namespace pnn::data
