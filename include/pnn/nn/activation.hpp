// SPDX-License-Identifier: MIT
/// \file
/// \brief Activations (`pnn::act`): the physical nonlinearity that follows a layer's weighted sum.
///
/// Each activation is a small functor with one call written over `T` that serves scalars and
/// SIMD packs alike, and `derivative(a, h)` from the pre-activation `a` and the output
/// `h = f(a)` (training reuses the recorded `h`, so most derivatives need nothing else). An
/// activation whose derivative is written for packs too says so with
/// `static constexpr bool derivative_on_packs = true`: backward passes then take the derivative a
/// register at a time (`simd::times_derivative`); without it they take it value by value, so a
/// derivative written for scalars only (calling `std::exp`, say) stays correct.
#pragma once

#include <concepts>
#include <type_traits>

#include <pnn/simd/math.hpp>

namespace pnn::act {

/// `f(a) = a`.
struct identity {
  static constexpr const char* name = "identity";
  static constexpr bool nondecreasing = true;  ///< max pooling commutes with it (pnn::conv2d)
  template <class T> constexpr T operator()(T a) const noexcept { return a; }
  static constexpr bool derivative_on_packs = true;
  template <class T> constexpr T derivative(T, T) const noexcept { return T(1); }
};

/// Rectified linear unit `f(a) = max(a, 0)`.
struct relu {
  static constexpr const char* name = "relu";
  static constexpr bool nondecreasing = true;  ///< max pooling commutes with it (pnn::conv2d)
  template <class T> T operator()(T a) const noexcept { return pnn::detail::max_any(a, T(0)); }
  static constexpr bool derivative_on_packs = true;
  template <class T> constexpr T derivative(T, T h) const noexcept {
    if constexpr (std::is_arithmetic_v<T>) return h > T(0) ? T(1) : T(0);
    else return pnn::simd::where_greater(h, T(0), T(1), T(0));
  }
};

/// Hyperbolic tangent; `f' = 1 − h²`.
struct tanh {
  static constexpr const char* name = "tanh";
  static constexpr bool nondecreasing = true;  ///< max pooling commutes with it (pnn::conv2d)
  template <class T> T operator()(T a) const noexcept { return pnn::detail::tanh_any(a); }
  static constexpr bool derivative_on_packs = true;
  template <class T> constexpr T derivative(T, T h) const noexcept { return T(1) - h * h; }
};

/// Logistic sigmoid `1/(1 + e^{−a})`; `f' = h(1 − h)`.
struct sigmoid {
  static constexpr const char* name = "sigmoid";
  static constexpr bool nondecreasing = true;  ///< max pooling commutes with it (pnn::conv2d)
  template <class T> T operator()(T a) const noexcept { return T(1) / (T(1) + pnn::detail::exp_any(-a)); }
  static constexpr bool derivative_on_packs = true;
  template <class T> constexpr T derivative(T, T h) const noexcept { return h * (T(1) - h); }
};

/// Hard sigmoid `ρ(a) = clip(a, 0, 1)`, the neuron nonlinearity of equilibrium propagation
/// (Scellier & Bengio 2017); `ρ' = 1` strictly inside (0, 1), else 0.
struct hard_sigmoid {
  static constexpr const char* name = "hard_sigmoid";
  static constexpr bool nondecreasing = true;  ///< max pooling commutes with it (pnn::conv2d)
  template <class T> T operator()(T a) const noexcept {
    return pnn::detail::min_any(pnn::detail::max_any(a, T(0)), T(1));
  }
  static constexpr bool derivative_on_packs = true;
  template <class T> constexpr T derivative(T a, T) const noexcept {
    if constexpr (std::is_arithmetic_v<T>) return (a > T(0) && a < T(1)) ? T(1) : T(0);
    else return pnn::simd::where_greater(a, T(0), pnn::simd::where_greater(T(1), a, T(1), T(0)), T(0));
  }
};

}  // namespace pnn::act

namespace pnn {
/// What a layer's activation must provide: a call and a derivative from `(a, h)`.
template <class A, class T = float>
concept activation = std::default_initializable<A> && requires(const A& f, T x) {
  { f(x) } -> std::convertible_to<T>;
  { f.derivative(x, x) } -> std::convertible_to<T>;
};

static_assert(activation<act::identity> && activation<act::relu> && activation<act::tanh>);
static_assert(activation<act::sigmoid> && activation<act::hard_sigmoid, double>);
}  // namespace pnn
