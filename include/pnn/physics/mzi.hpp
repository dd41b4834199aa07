// SPDX-License-Identifier: MIT
/// \file
/// \brief One Mach–Zehnder interferometer: 2×2 transfer matrices, the phase convention as a
/// policy, imperfect couplers, and the adjoint phase-gradient formulas (docs/physics.md, "MZI").
///
/// An MZI is two directional couplers `B` around an internal phase shifter `θ` on the top arm,
/// with an external phase shifter `φ` on the top arm of one side. Which side is a convention:
/// `mzi::phase_out` (the default, docs/physics.md and neuroptica: `T = Φ(φ) B Θ(θ) B`, `φ` after the
/// MZI) or `mzi::phase_in` (Clements et al. 2016: `T = B Θ(θ) B Φ(φ)`, `φ` before it). The two
/// are transposes of each other, which is what lets one decomposition serve both.
#pragma once

#include <cmath>
#include <complex>
#include <concepts>
#include <numbers>

namespace pnn::physics::mzi {

/// Complex amplitude type of the mesh algebra (double: decompositions and checks need it).
using cplx = std::complex<double>;

/// A 2×2 complex matrix `[[a, b], [c, d]]` acting on the two modes (top, bottom) of an MZI.
struct mat2 {
  cplx a{1}, b{0}, c{0}, d{1};

  [[nodiscard]] friend constexpr mat2 operator*(const mat2& x, const mat2& y) noexcept {
    return {x.a * y.a + x.b * y.c, x.a * y.b + x.b * y.d, x.c * y.a + x.d * y.c, x.c * y.b + x.d * y.d};
  }
  [[nodiscard]] friend constexpr mat2 operator*(cplx s, const mat2& x) noexcept {
    return {s * x.a, s * x.b, s * x.c, s * x.d};
  }
  /// Plain transpose (the reciprocal device's matrix: light going backwards).
  [[nodiscard]] constexpr mat2 transpose() const noexcept { return {a, c, b, d}; }
  /// Conjugate transpose.
  [[nodiscard]] mat2 adjoint() const noexcept { return {std::conj(a), std::conj(c), std::conj(b), std::conj(d)}; }
};

/// Imperfect directional coupler `B(ε) = [[cos(π/4+ε), i sin(π/4+ε)], [i sin(π/4+ε), cos(π/4+ε)]]`;
/// `ε = 0` is the ideal 50:50 coupler `(1/√2)[[1, i], [i, 1]]`. Unitary for every ε.
/// \param epsilon splitting-angle error (rad)
[[nodiscard]] inline mat2 coupler(double epsilon = 0.0) noexcept {
  const double t = std::numbers::pi / 4 + epsilon;
  const cplx c(std::cos(t), 0.0), s(0.0, std::sin(t));
  return {c, s, s, c};
}

/// Phase shifter `diag(e^{iφ}, 1)` on the top arm.
[[nodiscard]] inline mat2 top_phase(double phi) noexcept { return {std::polar(1.0, phi), 0.0, 0.0, 1.0}; }

/// Convention `T = Φ(φ) B Θ(θ) B`: external phase on the output's top arm (docs/physics.md, "MZI",
/// neuroptica). Universal meshes then need their phase screen at the *input*.
struct phase_out {
  static constexpr const char* name = "phase_out";
  static constexpr bool external_phase_at_output = true;
};

/// Convention `T = B Θ(θ) B Φ(φ)`: external phase on the input's top arm (Clements et al.
/// 2016). Universal meshes then carry their phase screen at the *output*.
struct phase_in {
  static constexpr const char* name = "phase_in";
  static constexpr bool external_phase_at_output = false;
};

/// An MZI phase convention: `phase_out` or `phase_in`.
template <class C>
concept convention = requires {
  { C::external_phase_at_output } -> std::convertible_to<bool>;
  { C::name } -> std::convertible_to<const char*>;
};
static_assert(convention<phase_out> && convention<phase_in>);

/// The default convention (docs/physics.md, "MZI").
using default_convention = phase_out;

/// Transfer matrix of one MZI as the product of its parts, with coupler errors `eps_in`
/// (first coupler the light meets) and `eps_out`, and amplitude transmission `amplitude`
/// (insertion loss `10^(−IL/20)`).
template <convention C = default_convention>
[[nodiscard]] inline mat2 transfer(double theta, double phi, double eps_in = 0.0, double eps_out = 0.0,
                                   double amplitude = 1.0) noexcept {
  const mat2 core = coupler(eps_out) * top_phase(theta) * coupler(eps_in);
  const mat2 t = C::external_phase_at_output ? top_phase(phi) * core : core * top_phase(phi);
  return cplx(amplitude, 0.0) * t;
}

/// Closed form of the ideal MZI. `phase_out`: `i e^{iθ/2} [[e^{iφ} s, e^{iφ} c], [c, −s]]`,
/// `phase_in`: its transpose, with `s = sin(θ/2)`, `c = cos(θ/2)`.
template <convention C = default_convention>
[[nodiscard]] inline mat2 closed_form(double theta, double phi) noexcept {
  const cplx g = cplx(0.0, 1.0) * std::polar(1.0, theta / 2);
  const cplx e = std::polar(1.0, phi);
  const double s = std::sin(theta / 2), c = std::cos(theta / 2);
  const mat2 out{g * e * s, g * e * c, g * c, -g * s};
  return C::external_phase_at_output ? out : out.transpose();
}

/// Adjoint-method phase gradient (Hughes et al., Optica 2018): with `a` the forward field just
/// after a phase shifter and `abar` the adjoint field there (`conj(∂L/∂y)` with
/// `∂L/∂y = ∂L/∂Re y + i ∂L/∂Im y`, propagated backwards through the reciprocal mesh),
/// `∂L/∂φ = −Im(a·abar)`.
[[nodiscard]] inline double adjoint_phase_gradient(cplx a, cplx abar) noexcept { return -(a * abar).imag(); }

/// The same gradient from three intensity measurements, as hardware obtains it:
/// `2 Re(u v) = |u + v*|² − |u|² − |v|²` with `u = i a` (a quarter-wave extra phase), `v = abar`,
/// so `∂L/∂φ = ½ (|i a + abar*|² − |a|² − |abar|²)`.
[[nodiscard]] inline double adjoint_phase_gradient_from_intensities(cplx a, cplx abar) noexcept {
  const cplx u = cplx(0.0, 1.0) * a;
  return 0.5 * (std::norm(u + std::conj(abar)) - std::norm(a) - std::norm(abar));
}

}  // namespace pnn::physics::mzi
