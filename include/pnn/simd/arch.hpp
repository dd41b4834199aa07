// SPDX-License-Identifier: MIT
/// \file
/// \brief Instruction-set selection and the one place that spells xsimd's API.
///
/// Kernels are written once as `template <class Arch>` over `pack<T, Arch>`. For a real SIMD
/// architecture `pack` is `xsimd::batch<T, Arch>`; for `pnn::simd::scalar` (our own fallback:
/// xsimd 8.1 has no batch type on a core without SIMD, e.g. a Cortex-M4) it is a one-lane
/// wrapper with the same operations. Every xsimd spelling that changed between versions
/// (`hadd` in 8.1, `reduce_add` later) is wrapped here and nowhere else.
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>

#include <pnn/core/config.hpp>

// A target without any SIMD instruction set gets no xsimd batch type at all (xsimd 8.1), and
// xsimd's allocator needs posix_memalign, which newlib hides: such targets use our scalar arch
// and never include xsimd.
#if !defined(PNN_NO_SIMD) && !defined(__SSE2__) && !defined(__ARM_NEON) && !defined(__wasm_simd128__)
#define PNN_NO_SIMD 1
#endif

#if !defined(PNN_NO_SIMD)
// GCC 12's AVX-512 intrinsics initialise their "undefined" registers from themselves
// (`__m512 __Y = __Y;` in avx512fintrin.h), which -Wmaybe-uninitialized and -Wuninitialized
// report wherever xsimd's math (exp, tanh, ...) is inlined: GCC bug 105593, fixed in GCC 13.
// GCC 12 looks up the diagnostic state along the inlining chain, so silencing the two warnings
// around xsimd's definitions alone keeps them on for every line of ours and of our users'.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop
#else
#include <xsimd/xsimd.hpp>
#endif
#endif

namespace pnn::simd {

/// Our scalar architecture tag: one lane, plain C++ arithmetic.
struct scalar {
  static constexpr const char* name() noexcept { return "pnn_scalar"; }
};

/// One-lane pack with the subset of the `xsimd::batch` interface our kernels use.
template <class T>
struct scalar_pack {
  using value_type = T;
  static constexpr std::size_t size = 1;
  T v;
  constexpr scalar_pack() noexcept = default;
  constexpr scalar_pack(T x) noexcept : v(x) {}  // NOLINT: broadcast, as xsimd::batch
  static scalar_pack load_unaligned(const T* p) noexcept { return {*p}; }
  static scalar_pack load_aligned(const T* p) noexcept { return {*p}; }
  static scalar_pack broadcast(T x) noexcept { return {x}; }
  void store_unaligned(T* p) const noexcept { *p = v; }
  void store_aligned(T* p) const noexcept { *p = v; }
  T get(std::size_t) const noexcept { return v; }
  friend scalar_pack operator+(scalar_pack a, scalar_pack b) noexcept { return {a.v + b.v}; }
  friend scalar_pack operator-(scalar_pack a, scalar_pack b) noexcept { return {a.v - b.v}; }
  friend scalar_pack operator*(scalar_pack a, scalar_pack b) noexcept { return {a.v * b.v}; }
  friend scalar_pack operator/(scalar_pack a, scalar_pack b) noexcept { return {a.v / b.v}; }
  friend scalar_pack operator-(scalar_pack a) noexcept { return {-a.v}; }
  scalar_pack& operator+=(scalar_pack b) noexcept { v += b.v; return *this; }
  scalar_pack& operator-=(scalar_pack b) noexcept { v -= b.v; return *this; }
  scalar_pack& operator*=(scalar_pack b) noexcept { v *= b.v; return *this; }
};

namespace detail {
template <class T, class Arch>
struct pack_of {
#if !defined(PNN_NO_SIMD)
  using type = xsimd::batch<T, Arch>;
#else
  using type = scalar_pack<T>;
#endif
};
template <class T>
struct pack_of<T, scalar> {
  using type = scalar_pack<T>;
};
}  // namespace detail

/// The register type of `Arch` for element type `T`.
template <class T, class Arch>
using pack = typename detail::pack_of<T, Arch>::type;

/// The architecture our kernels use by default: xsimd's best for this compilation, or `scalar`
/// under `PNN_NO_SIMD` or when xsimd finds no SIMD instruction set.
#if defined(PNN_NO_SIMD)
using default_arch = scalar;
#else
namespace detail {
// xsimd 8.1's AVX512BW `select` names 8- and 16-bit intrinsics in branches that are compiled for
// every lane width; without optimisation (-O0, a Debug build) GCC defines those intrinsics as
// casting macros, and the casts of 32-bit batches that xsimd::log reaches do not compile.
// Unoptimised GCC builds therefore run AVX512DQ's kernels: the same 512-bit registers.
template <class A>
struct buildable_arch {
  using type = A;
};
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__) && defined(__AVX512BW__)
template <>
struct buildable_arch<xsimd::avx512bw> {
  using type = xsimd::avx512dq;
};
#endif
}  // namespace detail
using default_arch = std::conditional_t<std::is_same_v<xsimd::default_arch, xsimd::unavailable>, scalar,
                                        typename detail::buildable_arch<xsimd::default_arch>::type>;
#endif

/// True when `Arch` is our scalar fallback.
template <class Arch>
inline constexpr bool is_scalar_arch = std::is_same_v<Arch, scalar>;

/// Lanes of `pack<T, Arch>`.
template <class T, class Arch = default_arch>
inline constexpr std::size_t lanes = pack<T, Arch>::size;

// ---- the wrapped spellings ------------------------------------------------------------------

/// a*b + c, fused where the architecture has FMA.
template <class T>
PNN_ALWAYS_INLINE scalar_pack<T> fma(scalar_pack<T> a, scalar_pack<T> b, scalar_pack<T> c) noexcept {
  return {a.v * b.v + c.v};
}
/// Horizontal sum of all lanes (xsimd 8.1: `hadd`; later versions: `reduce_add`).
template <class T>
PNN_ALWAYS_INLINE T reduce_add(scalar_pack<T> a) noexcept { return a.v; }
template <class T>
PNN_ALWAYS_INLINE scalar_pack<T> max(scalar_pack<T> a, scalar_pack<T> b) noexcept { return {a.v < b.v ? b.v : a.v}; }
template <class T>
PNN_ALWAYS_INLINE scalar_pack<T> min(scalar_pack<T> a, scalar_pack<T> b) noexcept { return {b.v < a.v ? b.v : a.v}; }
template <class T>
PNN_ALWAYS_INLINE scalar_pack<T> abs(scalar_pack<T> a) noexcept { return {a.v < T(0) ? -a.v : a.v}; }
template <class T>
PNN_ALWAYS_INLINE T reduce_max(scalar_pack<T> a) noexcept { return a.v; }
/// Lane-wise `a > b ? x : y` (false where a or b is NaN), without a branch.
template <class T>
PNN_ALWAYS_INLINE scalar_pack<T> where_greater(scalar_pack<T> a, scalar_pack<T> b, scalar_pack<T> x,
                                               scalar_pack<T> y) noexcept {
  return {a.v > b.v ? x.v : y.v};
}
/// Lane-wise `a == b ? x : y`, without a branch.
template <class T>
PNN_ALWAYS_INLINE scalar_pack<T> where_equal(scalar_pack<T> a, scalar_pack<T> b, scalar_pack<T> x,
                                             scalar_pack<T> y) noexcept {
  return {a.v == b.v ? x.v : y.v};
}
/// Round to the nearest integer, ties to even (the default rounding mode), as `std::nearbyint`.
template <class T>
PNN_ALWAYS_INLINE scalar_pack<T> nearbyint(scalar_pack<T> a) noexcept { return {std::nearbyint(a.v)}; }

#if !defined(PNN_NO_SIMD)
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> fma(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                         const xsimd::batch<T, A>& c) noexcept {
  return xsimd::fma(a, b, c);
}
template <class T, class A>
PNN_ALWAYS_INLINE T reduce_add(const xsimd::batch<T, A>& a) noexcept {
#if XSIMD_VERSION_MAJOR < 9
  return xsimd::hadd(a);
#else
  return xsimd::reduce_add(a);
#endif
}
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> max(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
  return xsimd::max(a, b);
}
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> min(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
  return xsimd::min(a, b);
}
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> abs(const xsimd::batch<T, A>& a) noexcept {
  return xsimd::abs(a);
}
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> where_greater(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                                   const xsimd::batch<T, A>& x, const xsimd::batch<T, A>& y) noexcept {
  return xsimd::select(a > b, x, y);
}
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> where_equal(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                                 const xsimd::batch<T, A>& x, const xsimd::batch<T, A>& y) noexcept {
  return xsimd::select(a == b, x, y);
}
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> nearbyint(const xsimd::batch<T, A>& a) noexcept {
  return xsimd::nearbyint(a);
}
template <class T, class A>
PNN_ALWAYS_INLINE T reduce_max(const xsimd::batch<T, A>& a) noexcept {
  alignas(64) T tmp[xsimd::batch<T, A>::size];
  a.store_aligned(tmp);
  T m = tmp[0];
  for (std::size_t i = 1; i < xsimd::batch<T, A>::size; ++i) m = tmp[i] > m ? tmp[i] : m;
  return m;
}
#endif

}  // namespace pnn::simd
