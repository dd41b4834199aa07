// SPDX-License-Identifier: MIT
/// \file
/// \brief Uniform quantisers (symmetric and unipolar) and clippers: the DAC/ADC of docs/physics.md.
///
/// One definition of quantisation for the whole library, shared by the `dac`/`adc` noise
/// policies and by the periphery of substrates (crossbar DAC/ADC, docs/physics.md, "Periphery"):
///
/// * symmetric, range `[−b, b]`: `q(x) = Δ·round(clip(x, −b, b)/Δ)`, `Δ = b/(2^(bits−1) − 1)`;
///   the grid keeps zero and is odd-symmetric, so it has **2^bits − 1 levels** (one code of a
///   two's-complement converter is given up to keep `q(−x) = −q(x)`);
/// * unipolar, range `[0, b]`: `Δ = b/(2^bits − 1)`, **2^bits levels** (0 and b included).
///
/// `round` is round-to-nearest with ties to even (the IEEE default mode; `std::nearbyint`),
/// which is odd-symmetric too and vectorises. A quantiser acts on the forward read only: a
/// learning rule differentiates through it as the identity (straight-through estimator), so
/// nothing here has a derivative. `bits` must be in [1, 24] (24 bits is the float mantissa:
/// beyond it the grid is no longer exact in single precision); `bits = 0` is an error, not "no
/// quantisation": callers that want only the range limit use `clip_symmetric`/`clip_unipolar`
/// or `quantizer<T>::clip_only`, and callers that want nothing skip the call.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <pnn/core/error.hpp>
#include <pnn/simd/arch.hpp>

namespace pnn::noise {

/// Largest supported resolution of a quantiser (bits), the mantissa width of `float`.
inline constexpr unsigned max_quantizer_bits = 24;

/// True when `bits` is a supported quantiser resolution, [1, 24].
constexpr bool valid_quantizer_bits(unsigned bits) noexcept { return bits >= 1 && bits <= max_quantizer_bits; }

/// Number of levels of the symmetric quantiser, 2^bits − 1 (zero included).
/// \pre 1 <= bits <= 24
constexpr std::uint32_t symmetric_levels(unsigned bits) noexcept { return (std::uint32_t{1} << bits) - 1u; }

/// Number of levels of the unipolar quantiser, 2^bits (0 and the bound included).
/// \pre 1 <= bits <= 24
constexpr std::uint32_t unipolar_levels(unsigned bits) noexcept { return std::uint32_t{1} << bits; }

/// Largest code magnitude of the symmetric quantiser, 2^(bits−1) − 1 (0 for one bit: the
/// 1-bit symmetric quantiser has the single level 0, consistent with 2^1 − 1 = 1 level).
constexpr std::uint32_t symmetric_max_code(unsigned bits) noexcept { return (std::uint32_t{1} << (bits - 1)) - 1u; }

/// Largest code of the unipolar quantiser, 2^bits − 1.
constexpr std::uint32_t unipolar_max_code(unsigned bits) noexcept { return (std::uint32_t{1} << bits) - 1u; }

namespace detail {

template <class T>
void check_quantizer_bound(T bound) {
  static_assert(std::is_floating_point_v<T>, "quantisers work on floating-point values");
  PNN_EXPECTS(bound > T(0) && std::isfinite(bound), "quantizer: bound must be positive and finite");
}

template <class T>
void check_quantizer(T bound, unsigned bits) {
  PNN_EXPECTS(valid_quantizer_bits(bits), "quantizer: bits must be in [1, 24] (0 is not 'no quantisation': use clip_only)");
  check_quantizer_bound(bound);
}

/// Clip to [lo, hi] in code units and round to the grid, a register at a time (the compiler's
/// -O2 cost model leaves the scalar loop unvectorised: a DAC and an ADC pass cost as much as a
/// tenth of a crossbar read). The same operations in the same order as `quantize_code`, so the
/// results are identical; NaN stays NaN (the clip's operands are ordered so that it propagates).
template <class T, class Arch = simd::default_arch>
inline void quantize_codes(T* x, std::size_t n, T inv_step, T step, T lo_code, T hi_code) noexcept {
  std::size_t i = 0;
#if !defined(PNN_NO_SIMD)
  if constexpr (!simd::is_scalar_arch<Arch>) {
    using P = simd::pack<T, Arch>;
    const P inv(inv_step), st(step), lo(lo_code), hi(hi_code);
    for (const std::size_t end = n - n % P::size; i < end; i += P::size) {
      const P v = xsimd::min(hi, xsimd::max(lo, P::load_unaligned(x + i) * inv));
      (st * simd::nearbyint(v)).store_unaligned(x + i);
    }
  }
#endif
  for (; i < n; ++i) {
    const T v = std::min(std::max(x[i] * inv_step, lo_code), hi_code);
    x[i] = step * std::nearbyint(v);
  }
}

template <class T>
inline T quantize_code(T x, T inv_step, T step, T lo_code, T hi_code) noexcept {
  return step * std::nearbyint(std::min(std::max(x * inv_step, lo_code), hi_code));
}

}  // namespace detail

/// Step Δ of the symmetric quantiser, b/(2^(bits−1) − 1); for one bit (single level 0) it is b.
/// \pre 1 <= bits <= 24, bound > 0
template <class T>
T symmetric_step(T bound, unsigned bits) {
  detail::check_quantizer(bound, bits);
  const std::uint32_t l = symmetric_max_code(bits);
  return l == 0 ? bound : bound / static_cast<T>(l);
}

/// Step Δ of the unipolar quantiser, b/(2^bits − 1).
/// \pre 1 <= bits <= 24, bound > 0
template <class T>
T unipolar_step(T bound, unsigned bits) {
  detail::check_quantizer(bound, bits);
  return bound / static_cast<T>(unipolar_max_code(bits));
}

/// \brief Symmetric uniform quantiser q(x) = Δ·round(clip(x, −b, b)/Δ), Δ = b/(2^(bits−1) − 1):
/// 2^bits − 1 levels including zero (docs/physics.md). Straight-through in backward passes.
/// \pre 1 <= bits <= 24; bound > 0 and finite (else `pnn::error`).
template <class T>
T quantize_symmetric(T x, std::type_identity_t<T> bound, unsigned bits) {
  detail::check_quantizer(bound, bits);
  const std::uint32_t l = symmetric_max_code(bits);
  if (l == 0) return T(0);
  const T hi = static_cast<T>(l);
  return detail::quantize_code(x, hi / bound, bound / hi, -hi, hi);
}

/// \brief Unipolar uniform quantiser on [0, b]: Δ = b/(2^bits − 1), 2^bits levels.
/// \pre 1 <= bits <= 24; bound > 0 and finite (else `pnn::error`).
template <class T>
T quantize_unipolar(T x, std::type_identity_t<T> bound, unsigned bits) {
  detail::check_quantizer(bound, bits);
  const T hi = static_cast<T>(unipolar_max_code(bits));
  return detail::quantize_code(x, hi / bound, bound / hi, T(0), hi);
}

/// \brief In-place symmetric quantisation of x[0, n) (vectorised form of the scalar one).
/// \pre x != nullptr or n == 0; 1 <= bits <= 24; bound > 0 and finite (else `pnn::error`).
template <class T>
void quantize_symmetric(T* x, std::size_t n, std::type_identity_t<T> bound, unsigned bits) {
  detail::check_quantizer(bound, bits);
  const std::uint32_t l = symmetric_max_code(bits);
  if (l == 0) {
    std::fill(x, x + n, T(0));
    return;
  }
  const T hi = static_cast<T>(l);
  detail::quantize_codes(x, n, hi / bound, bound / hi, -hi, hi);
}

/// \brief In-place unipolar quantisation of x[0, n) onto [0, b] with 2^bits levels.
/// \pre x != nullptr or n == 0; 1 <= bits <= 24; bound > 0 and finite (else `pnn::error`).
template <class T>
void quantize_unipolar(T* x, std::size_t n, std::type_identity_t<T> bound, unsigned bits) {
  detail::check_quantizer(bound, bits);
  const T hi = static_cast<T>(unipolar_max_code(bits));
  detail::quantize_codes(x, n, hi / bound, bound / hi, T(0), hi);
}

/// Range limit without quantisation ("infinite resolution" converter): clip(x, −b, b).
/// \pre bound > 0 and finite.
template <class T>
T clip_symmetric(T x, std::type_identity_t<T> bound) {
  detail::check_quantizer_bound(bound);
  return std::min(std::max(x, -bound), bound);
}

/// In-place clip(x, −b, b) of x[0, n).
/// \pre x != nullptr or n == 0; bound > 0 and finite.
template <class T>
void clip_symmetric(T* x, std::size_t n, std::type_identity_t<T> bound) {
  detail::check_quantizer_bound(bound);
  for (std::size_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], -bound), bound);
}

/// Range limit to [0, b] without quantisation.
/// \pre bound > 0 and finite.
template <class T>
T clip_unipolar(T x, std::type_identity_t<T> bound) {
  detail::check_quantizer_bound(bound);
  return std::min(std::max(x, T(0)), bound);
}

/// In-place clip(x, 0, b) of x[0, n).
/// \pre x != nullptr or n == 0; bound > 0 and finite.
template <class T>
void clip_unipolar(T* x, std::size_t n, std::type_identity_t<T> bound) {
  detail::check_quantizer_bound(bound);
  for (std::size_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], T(0)), bound);
}

/// Range of a quantiser: odd-symmetric `[−b, b]` or unipolar `[0, b]`.
enum class quantizer_range { symmetric, unipolar };

/// \brief A validated converter (DAC or ADC) with its constants precomputed: one object a
/// substrate can hold and apply to whole vectors without re-checking its parameters.
///
/// Built by `symmetric(b, bits)`, `unipolar(b, bits)` or `clip_only(b[, range])` (range limit,
/// no quantisation). Acts on forward reads only; gradients pass straight through.
template <class T>
class quantizer {
  static_assert(std::is_floating_point_v<T>, "quantizer<T>: T must be float or double");

 public:
  using value_type = T;

  /// Default: clip-only to [−1, 1] (valid, so a default-constructed member is usable).
  quantizer() noexcept = default;

  /// Symmetric quantiser on [−b, b] with 2^bits − 1 levels.
  /// \pre 1 <= bits <= 24; bound > 0 (else `pnn::error`).
  static quantizer symmetric(T bound, unsigned bits) {
    detail::check_quantizer(bound, bits);
    const std::uint32_t l = symmetric_max_code(bits);
    return quantizer(quantizer_range::symmetric, bound, bits, static_cast<T>(l));
  }

  /// Unipolar quantiser on [0, b] with 2^bits levels.
  /// \pre 1 <= bits <= 24; bound > 0 (else `pnn::error`).
  static quantizer unipolar(T bound, unsigned bits) {
    detail::check_quantizer(bound, bits);
    return quantizer(quantizer_range::unipolar, bound, bits, static_cast<T>(unipolar_max_code(bits)));
  }

  /// Range limit only (an ideal-resolution converter); `bits()` is 0 and `levels()` 0.
  /// \pre bound > 0 (else `pnn::error`).
  static quantizer clip_only(T bound, quantizer_range range = quantizer_range::symmetric) {
    detail::check_quantizer_bound(bound);
    return quantizer(range, bound, 0u, T(0));
  }

  T bound() const noexcept { return bound_; }                      ///< b
  unsigned bits() const noexcept { return bits_; }                 ///< resolution; 0 for clip-only
  quantizer_range range() const noexcept { return range_; }        ///< symmetric or unipolar
  bool quantizes() const noexcept { return bits_ != 0; }           ///< false for clip-only
  T step() const noexcept { return step_; }                        ///< Δ (0 for clip-only)
  /// Number of distinct output levels (0 = continuum, for clip-only).
  std::uint32_t levels() const noexcept {
    if (bits_ == 0) return 0;
    return range_ == quantizer_range::symmetric ? symmetric_levels(bits_) : unipolar_levels(bits_);
  }

  /// q(x) for one value.
  T operator()(T x) const noexcept {
    const T lo = range_ == quantizer_range::symmetric ? -bound_ : T(0);
    if (bits_ == 0) return std::min(std::max(x, lo), bound_);
    if (max_code_ == T(0)) return T(0);
    const T lo_code = range_ == quantizer_range::symmetric ? -max_code_ : T(0);
    return detail::quantize_code(x, inv_step_, step_, lo_code, max_code_);
  }

  /// In-place q on x[0, n).
  /// \pre x != nullptr or n == 0
  void apply(T* x, std::size_t n) const noexcept {
    const T lo = range_ == quantizer_range::symmetric ? -bound_ : T(0);
    if (bits_ == 0) {
      for (std::size_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], lo), bound_);
      return;
    }
    if (max_code_ == T(0)) {
      std::fill(x, x + n, T(0));
      return;
    }
    const T lo_code = range_ == quantizer_range::symmetric ? -max_code_ : T(0);
    detail::quantize_codes(x, n, inv_step_, step_, lo_code, max_code_);
  }

 private:
  quantizer(quantizer_range r, T b, unsigned bits, T max_code) noexcept
      : range_(r), bits_(bits), bound_(b), max_code_(max_code) {
    if (bits != 0 && max_code > T(0)) {
      step_ = b / max_code;
      inv_step_ = max_code / b;
    } else if (bits != 0) {
      step_ = b;  // one-bit symmetric: the single level 0
    }
  }

  quantizer_range range_ = quantizer_range::symmetric;
  unsigned bits_ = 0;
  T bound_ = T(1);
  T max_code_ = T(0);
  T step_ = T(0);
  T inv_step_ = T(0);
};

}  // namespace pnn::noise
