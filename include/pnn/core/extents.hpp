// SPDX-License-Identifier: MIT
/// \file
/// \brief Extents and matrix storage selection: fixed extents get `fixed_array`, dynamic ones
/// get a container defined by a hosted header (`pnn/nn/dynamic_storage.hpp`, xtensor).
#pragma once

#include <cstddef>
#include <span>

#include <pnn/core/error.hpp>
#include <pnn/core/fixed_storage.hpp>

namespace pnn {

/// Marks an extent chosen at run time (`std::dynamic_extent`).
inline constexpr std::size_t dynamic = std::dynamic_extent;

/// True when the extent is known at compile time.
template <std::size_t E>
inline constexpr bool is_static_extent = (E != dynamic);

/// Row-major `Rows × Cols` matrix of `T`. The primary template covers fixed extents: aligned,
/// trivially copyable, no heap. Dynamic extents are specialised in `pnn/nn/dynamic_storage.hpp`.
template <class T, std::size_t Rows, std::size_t Cols>
struct matrix_storage {
  fixed_array<T, Rows * Cols> values{};

  static constexpr std::size_t rows() noexcept { return Rows; }
  static constexpr std::size_t cols() noexcept { return Cols; }
  static constexpr std::size_t size() noexcept { return Rows * Cols; }
  constexpr T* data() noexcept { return values.data(); }
  constexpr const T* data() const noexcept { return values.data(); }
  /// Fixed storage cannot change shape; asking for another one is a precondition violation.
  constexpr void resize(std::size_t r, std::size_t c) {
    PNN_EXPECTS(r == Rows && c == Cols, "matrix_storage: fixed extents cannot be resized");
  }
};

template <class T, std::size_t Rows, std::size_t Cols>
  requires(Rows == dynamic || Cols == dynamic)
struct matrix_storage<T, Rows, Cols>;  // defined in pnn/nn/dynamic_storage.hpp

}  // namespace pnn
