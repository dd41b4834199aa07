// SPDX-License-Identifier: MIT
/// \file
/// \brief Run-time sized parameter storage for `std::dynamic_extent` layers, on xtensor.
#pragma once

#include <cstddef>

#include <xtensor/xtensor.hpp>

#include <pnn/core/extents.hpp>

namespace pnn {

/// Row-major matrix whose shape is set at run time; the values are an `xt::xtensor<T, 2>`, so
/// HPC code can hand them to any xtensor expression.
template <class T, std::size_t Rows, std::size_t Cols>
  requires(Rows == dynamic || Cols == dynamic)
struct matrix_storage<T, Rows, Cols> {
  xt::xtensor<T, 2> values{};

  std::size_t rows() const noexcept { return values.shape()[0]; }
  std::size_t cols() const noexcept { return values.shape()[1]; }
  std::size_t size() const noexcept { return values.size(); }
  T* data() noexcept { return values.data(); }
  const T* data() const noexcept { return values.data(); }
  /// Reshapes to `r × c`, zero-filled; a fixed extent among Rows/Cols must be respected.
  void resize(std::size_t r, std::size_t c) {
    PNN_EXPECTS(Rows == dynamic || r == Rows, "matrix_storage: row extent is fixed");
    PNN_EXPECTS(Cols == dynamic || c == Cols, "matrix_storage: column extent is fixed");
    values = xt::zeros<T>({r, c});
  }
};

}  // namespace pnn
