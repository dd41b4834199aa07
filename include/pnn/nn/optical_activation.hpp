// SPDX-License-Identifier: MIT
/// \file
/// \brief Optical activations (`pnn::act`): `square_law` (photodetection), `saturable_absorber`
/// and the `electro_optic` activation of Williamson et al. (IEEE JSTQE 2020).
///
/// Each serves real values between layers (a coherently detected field amplitude `a`, sign
/// kept) with `f(a)` for scalars and SIMD packs and `derivative(a, h)`; `square_law` and
/// `electro_optic` also take `std::complex` fields (the coherent optical path).
#pragma once

#include <cmath>
#include <complex>

#include <pnn/nn/activation.hpp>
#include <pnn/simd/math.hpp>

namespace pnn::act {

namespace detail {
template <class T> inline T cos_any(T a) { using std::cos; using pnn::simd::cos; return cos(a); }
}  // namespace detail

/// Photodetection `f(a) = R·|a|²` (responsivity R, A/W): field amplitude to photocurrent.
/// On a complex field it returns the real intensity `R|E|²`.
struct square_law {
  static constexpr const char* name = "square_law";
  float responsivity = 1.0f;  ///< R (A/W)
  template <class T> T operator()(T a) const noexcept { return T(responsivity) * a * a; }
  template <class R> R operator()(std::complex<R> e) const noexcept { return R(responsivity) * std::norm(e); }
  static constexpr bool derivative_on_packs = true;
  template <class T> constexpr T derivative(T a, T) const noexcept { return T(2) * T(responsivity) * a; }
};

/// \brief Saturable absorber (thin-absorber steady state, as in Shen et al. 2017): intensity
/// transmission `exp(−OD/(1 + a²/I_sat))`, so the field `f(a) = a·exp(−(OD/2)/(1 + a²/I_sat))`:
/// weak light is absorbed, strong light bleaches the absorber and passes.
struct saturable_absorber {
  static constexpr const char* name = "saturable_absorber";
  float optical_depth = 1.0f;         ///< OD = α₀L at low intensity (dimensionless, ≥ 0)
  float saturation_intensity = 1.0f;  ///< I_sat in units of a² (> 0)
  template <class T> T operator()(T a) const noexcept {
    const T k = T(-0.5f * optical_depth);
    return a * pnn::detail::exp_any(k / (T(1) + a * a / T(saturation_intensity)));
  }
  /// `f' = g(1 + 2 a² OD/(2 I_sat (1 + a²/I_sat)²))` with `g` the amplitude transmission.
  template <class T> T derivative(T a, T) const noexcept {
    const T u = T(1) + a * a / T(saturation_intensity);
    const T g = std::exp(T(-0.5f * optical_depth) / u);
    return g * (T(1) + a * a * T(optical_depth) / (T(saturation_intensity) * u * u));
  }
};

/// \brief Electro-optic activation (Williamson et al. 2020): a fraction α of the light is tapped
/// to a photodiode whose signal, with gain g and bias φ_b, phase-shifts the rest in an MZI:
/// `f(E) = i√(1−α) e^{−iΔ/2} cos(Δ/2) E`, `Δ = g|E|² + φ_b`. For real values the field-dependent
/// phase factor `i e^{−iΔ/2}` is dropped (its magnitude is 1): `f(a) = √(1−α) cos(Δ/2) a`.
struct electro_optic {
  static constexpr const char* name = "electro_optic";
  float alpha = 0.1f;              ///< tapped fraction α ∈ [0, 1)
  float gain = 3.14159265f;        ///< g (rad per unit |E|²)
  float bias = 3.14159265f;        ///< φ_b (rad)
  template <class T> T operator()(T a) const noexcept {
    const T d = (T(gain) * a * a + T(bias)) * T(0.5f);
    return T(std::sqrt(1.0f - alpha)) * detail::cos_any(d) * a;
  }
  template <class R> std::complex<R> operator()(std::complex<R> e) const noexcept {
    const R d = R(gain) * std::norm(e) + R(bias);
    return std::complex<R>(0, 1) * R(std::sqrt(1.0f - alpha)) * std::polar(R(1), -d / 2) * std::cos(d / 2) * e;
  }
  /// `f' = √(1−α)(cos(Δ/2) − g a² sin(Δ/2))`.
  template <class T> T derivative(T a, T) const noexcept {
    const T d = (T(gain) * a * a + T(bias)) * T(0.5f);
    return T(std::sqrt(1.0f - alpha)) * (std::cos(d) - T(gain) * a * a * std::sin(d));
  }
};

}  // namespace pnn::act

namespace pnn {
static_assert(activation<act::square_law> && activation<act::saturable_absorber> && activation<act::electro_optic>);
static_assert(activation<act::square_law, double> && activation<act::electro_optic, double>);
}  // namespace pnn
