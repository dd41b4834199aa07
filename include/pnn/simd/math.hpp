// SPDX-License-Identifier: MIT
/// \file
/// \brief Element-wise math on packs: the same spelling for xsimd batches and our scalar pack.
///
/// Activations and noise are written once over `T` (a float, or a pack of floats); these
/// overloads give the one-lane `scalar_pack` the functions xsimd provides for its batches.
#pragma once

#include <cmath>

#include <pnn/simd/arch.hpp>

namespace pnn::simd {

template <class T> inline scalar_pack<T> exp(scalar_pack<T> a) noexcept { return {std::exp(a.v)}; }
template <class T> inline scalar_pack<T> log(scalar_pack<T> a) noexcept { return {std::log(a.v)}; }
template <class T> inline scalar_pack<T> sqrt(scalar_pack<T> a) noexcept { return {std::sqrt(a.v)}; }
template <class T> inline scalar_pack<T> tanh(scalar_pack<T> a) noexcept { return {std::tanh(a.v)}; }
template <class T> inline scalar_pack<T> sin(scalar_pack<T> a) noexcept { return {std::sin(a.v)}; }
template <class T> inline scalar_pack<T> cos(scalar_pack<T> a) noexcept { return {std::cos(a.v)}; }
template <class T> inline scalar_pack<T> round(scalar_pack<T> a) noexcept { return {std::nearbyint(a.v)}; }

/// `lo ≤ x ≤ hi` clamp that works for scalars and packs.
template <class P>
PNN_ALWAYS_INLINE P clamp(P x, P lo, P hi) noexcept {
  using pnn::simd::max;
  using pnn::simd::min;
  return min(max(x, lo), hi);
}

}  // namespace pnn::simd

namespace pnn::detail {
// Scalar-or-pack dispatch used by functors: `std::` for arithmetic types, ADL otherwise.
template <class T> inline T exp_any(T a) { using std::exp; using pnn::simd::exp; return exp(a); }
template <class T> inline T tanh_any(T a) { using std::tanh; using pnn::simd::tanh; return tanh(a); }
template <class T> inline T max_any(T a, T b) {
  if constexpr (std::is_arithmetic_v<T>) return a < b ? b : a;
  else return pnn::simd::max(a, b);
}
template <class T> inline T min_any(T a, T b) {
  if constexpr (std::is_arithmetic_v<T>) return b < a ? b : a;
  else return pnn::simd::min(a, b);
}
}  // namespace pnn::detail
