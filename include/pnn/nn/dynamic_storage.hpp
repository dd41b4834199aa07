// SPDX-License-Identifier: MIT
/// \file
/// \brief Run-time sized parameter storage for `std::dynamic_extent` layers, on xtensor.
#pragma once

#include <cstddef>
#include <new>

#include <xtensor/xtensor.hpp>

#include <pnn/core/config.hpp>
#include <pnn/core/extents.hpp>

namespace pnn {

namespace detail {
/// \brief Allocates on cache-line (`PNN_ALIGNMENT`) boundaries.
///
/// malloc puts a large block 16 bytes past a page, so a weight matrix's rows would start
/// mid-line: every vector load and store of a row segment then touches two lines, and two
/// threads updating adjacent column slabs of one row share a line. On a 784-wide weight
/// update this cost 8 % on one core and 25 % on two.
template <class T>
struct line_allocator {
  using value_type = T;
  line_allocator() = default;
  template <class U>
  constexpr line_allocator(const line_allocator<U>&) noexcept {}
  [[nodiscard]] T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{PNN_ALIGNMENT}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{PNN_ALIGNMENT}); }
  template <class U>
  friend constexpr bool operator==(const line_allocator&, const line_allocator<U>&) noexcept {
    return true;
  }
};
}  // namespace detail

/// A row-major 2-D xtensor container whose first element starts a cache line.
template <class T>
using aligned_matrix = xt::xtensor_container<xt::uvector<T, detail::line_allocator<T>>, 2, xt::layout_type::row_major>;

/// Row-major matrix whose shape is set at run time; the values are a 2-D xtensor container
/// (`aligned_matrix`: row-major, starting on a cache line), so HPC code can hand them to any
/// xtensor expression.
template <class T, std::size_t Rows, std::size_t Cols>
  requires(Rows == dynamic || Cols == dynamic)
struct matrix_storage<T, Rows, Cols> {
  aligned_matrix<T> values{};

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
