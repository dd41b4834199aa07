// SPDX-License-Identifier: MIT
/// \file
/// \brief Fixed-extent, aligned, trivially copyable storage for parameters of fixed layers.
///
/// `std::array` wrapped with cache-line alignment: no heap, `constexpr`-constructible, so a whole
/// fixed network can be `constinit` and live in flash on a microcontroller.
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>

#include <pnn/core/config.hpp>

namespace pnn {

/// Aligned array of `N` values of `T` (N may be 0). Aggregate; trivially copyable when T is.
template <class T, std::size_t N>
struct alignas(PNN_ALIGNMENT) fixed_array {
  std::array<T, N> values{};

  using value_type = T;
  static constexpr std::size_t extent = N;

  [[nodiscard]] constexpr T* data() noexcept { return values.data(); }
  [[nodiscard]] constexpr const T* data() const noexcept { return values.data(); }
  [[nodiscard]] static constexpr std::size_t size() noexcept { return N; }
  constexpr T& operator[](std::size_t i) noexcept { return values[i]; }
  constexpr const T& operator[](std::size_t i) const noexcept { return values[i]; }
  constexpr T* begin() noexcept { return values.data(); }
  constexpr T* end() noexcept { return values.data() + N; }
  constexpr const T* begin() const noexcept { return values.data(); }
  constexpr const T* end() const noexcept { return values.data() + N; }
  friend constexpr bool operator==(const fixed_array&, const fixed_array&) = default;
};

static_assert(std::is_trivially_copyable_v<fixed_array<float, 4>>);
static_assert(alignof(fixed_array<float, 3>) == PNN_ALIGNMENT);

}  // namespace pnn
