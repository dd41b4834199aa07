// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::unitary_mesh`: an N-mode Clements or Reck MZI mesh with its decomposition,
/// Haar initialisation, reciprocal propagation and adjoint phase gradients (docs/physics.md,
/// "Weight tiles").
///
/// A `unitary_mesh` of N modes holds N(N−1)/2 MZIs in a Clements rectangle or a Reck triangle
/// and a phase screen of N shifters. With the default `mzi::phase_out` convention the external
/// phases sit after each MZI, so the screen that makes the mesh universal sits at the mesh
/// *input*; with `mzi::phase_in` it sits at the output (Clements et al. 2016). Fields travel in
/// a planar layout (real and imaginary planes, mode-major: `re[m·n + s]` for mode m, sample s)
/// so that every MZI updates two contiguous rows of the batch. The photonic substrate built
/// from two of them is `physics::mzi_mesh` (physics/mzi_mesh.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/physics/mzi.hpp>
#include <pnn/physics/photonic_noise.hpp>

namespace pnn::physics {

/// Arrangement of the MZIs of a unitary mesh.
enum class mesh_topology {
  clements,  ///< rectangular, N columns, depth N (Clements et al., Optica 2016)
  reck       ///< triangular, depth 2N − 3 (Reck et al., PRL 1994)
};

/// A batch of `n` complex fields on `modes` waveguides, planar and mode-major.
template <class R>
struct field_batch {
  std::size_t modes = 0, n = 0;
  std::vector<R> re{}, im{};
  /// Shapes and zeroes the batch.
  void assign(std::size_t m, std::size_t count) {
    modes = m;
    n = count;
    re.assign(m * count, R(0));
    im.assign(m * count, R(0));
  }
  [[nodiscard]] std::complex<R> at(std::size_t mode, std::size_t s) const { return {re[mode * n + s], im[mode * n + s]}; }
  void set(std::size_t mode, std::size_t s, std::complex<R> v) {
    re[mode * n + s] = v.real();
    im[mode * n + s] = v.imag();
  }
};

/// Position of one MZI: it couples modes `mode` and `mode + 1` in column `column`.
struct mzi_site {
  std::size_t mode = 0;
  std::size_t column = 0;
  double alpha = 1;  ///< Haar exponent of θ at this site (Reck: modes already merged)
};

/// The 2×2 matrices and screen phasors a mesh applies on one read (its "realisation").
struct mesh_realisation {
  std::vector<mzi::mat2> ops{};
  std::vector<mzi::cplx> screen{};
  std::vector<double> theta{}, phi{}, screen_phase{};  ///< effective phases light sees (rad)
};

namespace detail {

/// Nominal phases produced by a decomposition, in application order, screen at the output
/// (the `phase_in` form from which both conventions are built).
struct mesh_decomposition {
  std::vector<mzi_site> sites{};
  std::vector<double> theta{}, phi{};
  std::vector<mzi::cplx> screen{};
};

inline void rows_apply(std::vector<mzi::cplx>& a, std::size_t n, std::size_t m, const mzi::mat2& t) {
  for (std::size_t c = 0; c < n; ++c) {
    const mzi::cplx x0 = a[m * n + c], x1 = a[(m + 1) * n + c];
    a[m * n + c] = t.a * x0 + t.b * x1;
    a[(m + 1) * n + c] = t.c * x0 + t.d * x1;
  }
}
inline void cols_apply(std::vector<mzi::cplx>& a, std::size_t n, std::size_t m, const mzi::mat2& t) {
  for (std::size_t r = 0; r < n; ++r) {
    const mzi::cplx x0 = a[r * n + m], x1 = a[r * n + m + 1];
    a[r * n + m] = x0 * t.a + x1 * t.c;
    a[r * n + m + 1] = x0 * t.b + x1 * t.d;
  }
}

/// \brief Nulls `a` (N × N unitary, row-major; destroyed) into MZIs of the `phase_in`
/// convention (Clements et al. 2016 for the rectangle; column-by-column nulling for Reck):
/// right multiplications by `T⁻¹` and left multiplications by `T`, then the leftover diagonal
/// is pushed through the left MZIs with `T⁻¹(θ, φ) D = D′ T(θ, arg(d₁/d₂))`. With `apply`
/// false only the site sequence (and Haar exponents) is produced.
inline mesh_decomposition decompose_phase_in(std::size_t n, mesh_topology topo, std::vector<mzi::cplx>* a) {
  using mzi::cplx;
  struct op {
    std::size_t mode;
    double theta, phi, alpha;
  };
  std::vector<op> right, left;
  const double pi = std::numbers::pi;
  auto null_left = [&](std::size_t r, std::size_t c, double alpha) {  // zero a[r][c] with rows (r−1, r)
    double th = 0, ph = 0;
    if (a) {
      const cplx x = (*a)[(r - 1) * n + c], y = (*a)[r * n + c];
      th = 2 * std::atan2(std::abs(x), std::abs(y));
      ph = std::arg(y) - std::arg(x);
      rows_apply(*a, n, r - 1, mzi::transfer<mzi::phase_in>(th, ph));
    }
    left.push_back({r - 1, th, ph, alpha});
  };
  if (topo == mesh_topology::clements) {
    for (std::size_t i = 0; i + 1 < n; ++i) {
      if (i % 2 == 0) {
        for (std::size_t j = 0; j <= i; ++j) {  // zero a[N−1−j][i−j] with columns (i−j, i−j+1)
          const std::size_t r = n - 1 - j, c = i - j;
          double th = 0, ph = 0;
          if (a) {
            const cplx x = (*a)[r * n + c], y = (*a)[r * n + c + 1];
            th = 2 * std::atan2(std::abs(y), std::abs(x));
            ph = std::arg(x) - std::arg(y) + pi;
            cols_apply(*a, n, c, mzi::transfer<mzi::phase_in>(th, ph).adjoint());
          }
          right.push_back({c, th, ph, 1});
        }
      } else {
        for (std::size_t j = 1; j <= i + 1; ++j) null_left(n + j - i - 2, j - 1, 1);
      }
    }
  } else {
    for (std::size_t c = 0; c + 1 < n; ++c)
      for (std::size_t r = n - 1; r > c; --r) null_left(r, c, double(n - r));
  }
  mesh_decomposition d;
  d.screen.assign(n, cplx(1, 0));
  if (a)
    for (std::size_t m = 0; m < n; ++m) d.screen[m] = (*a)[m * n + m];
  auto push = [&](const op& o) {
    d.sites.push_back({o.mode, 0, o.alpha});
    d.theta.push_back(o.theta);
    d.phi.push_back(o.phi);
  };
  for (const op& o : right) push(o);
  for (std::size_t k = left.size(); k-- > 0;) {
    op o = left[k];
    if (a) {
      const cplx d1 = d.screen[o.mode], d2 = d.screen[o.mode + 1];
      const cplx f = -std::polar(1.0, -o.theta);
      d.screen[o.mode] = f * std::polar(1.0, -o.phi) * d2;
      d.screen[o.mode + 1] = f * d2;
      o.phi = std::arg(d1 / d2);
    }
    push(o);
  }
  return d;
}

/// Assigns each site its column: one more than the latest column among its two modes.
inline void assign_columns(std::vector<mzi_site>& sites, std::size_t n) {
  std::vector<std::size_t> last(n, 0);
  for (auto& s : sites) {
    const std::size_t c = std::max(last[s.mode], last[s.mode + 1]);
    s.column = c;
    last[s.mode] = last[s.mode + 1] = c + 1;
  }
}

/// Minimal complex number for inner loops (no NaN-recovery branches of `std::complex` products).
struct cx {
  double r = 0, i = 0;
  constexpr cx() = default;
  constexpr cx(double re, double im) : r(re), i(im) {}
  explicit cx(std::complex<double> z) : r(z.real()), i(z.imag()) {}
  friend constexpr cx operator*(cx a, cx b) noexcept { return {a.r * b.r - a.i * b.i, a.r * b.i + a.i * b.r}; }
  friend constexpr cx operator+(cx a, cx b) noexcept { return {a.r + b.r, a.i + b.i}; }
};

/// `y ← t·y` on rows (m, m+1) of a planar batch of `n` samples.
template <class R>
inline void apply_rows(R* re, R* im, std::size_t n, std::size_t m, const mzi::mat2& t) {
  const R ar = R(t.a.real()), ai = R(t.a.imag()), br = R(t.b.real()), bi = R(t.b.imag());
  const R cr = R(t.c.real()), ci = R(t.c.imag()), dr = R(t.d.real()), di = R(t.d.imag());
  R* __restrict r0 = re + m * n;
  R* __restrict i0 = im + m * n;
  R* __restrict r1 = re + (m + 1) * n;
  R* __restrict i1 = im + (m + 1) * n;
  for (std::size_t s = 0; s < n; ++s) {
    const R x0r = r0[s], x0i = i0[s], x1r = r1[s], x1i = i1[s];
    r0[s] = ar * x0r - ai * x0i + br * x1r - bi * x1i;
    i0[s] = ar * x0i + ai * x0r + br * x1i + bi * x1r;
    r1[s] = cr * x0r - ci * x0i + dr * x1r - di * x1i;
    i1[s] = cr * x0i + ci * x0r + dr * x1i + di * x1r;
  }
}
template <class R>
inline void apply_phase_row(R* re, R* im, std::size_t n, std::size_t m, mzi::cplx p) {
  const R pr = R(p.real()), pi = R(p.imag());
  for (std::size_t s = 0; s < n; ++s) {
    const R xr = re[m * n + s], xi = im[m * n + s];
    re[m * n + s] = pr * xr - pi * xi;
    im[m * n + s] = pr * xi + pi * xr;
  }
}

}  // namespace detail

/// Phase gradients of a unitary mesh (one entry per MZI, and per screen shifter).
struct mesh_phase_gradients {
  std::vector<double> theta{}, phi{}, screen{};
  void assign(std::size_t mzis, std::size_t modes) {
    theta.assign(mzis, 0.0);
    phi.assign(mzis, 0.0);
    screen.assign(modes, 0.0);
  }
};

/// \brief An N-mode universal MZI mesh (Clements or Reck) with a phase screen, programmable
/// phases and the imperfections of `photonic_imperfections`.
/// \tparam C MZI phase convention (`mzi::phase_out` default, `mzi::phase_in`)
template <mzi::convention C = mzi::default_convention>
class unitary_mesh {
 public:
  using convention_type = C;
  /// True when the phase screen sits at the mesh input (the `phase_out` convention).
  static constexpr bool screen_at_input = C::external_phase_at_output;

  unitary_mesh() = default;
  /// An N-mode mesh programmed to the identity.
  /// \pre n ≥ 1.
  explicit unitary_mesh(std::size_t n, mesh_topology topology = mesh_topology::clements) { resize(n, topology); }

  /// Sets the size and topology and programs the identity (no imperfections drawn).
  void resize(std::size_t n, mesh_topology topology = mesh_topology::clements) {
    PNN_EXPECTS(n >= 1, "physics::unitary_mesh: a mesh needs at least one mode");
    n_ = n;
    topology_ = topology;
    detail::mesh_decomposition d = detail::decompose_phase_in(n, topology, nullptr);
    build_from(std::move(d), false);
    theta_.assign(sites_.size(), 0.0);
    phi_.assign(sites_.size(), 0.0);
    screen_.assign(n_, 0.0);
    std::vector<mzi::cplx> id(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) id[i * n + i] = 1.0;
    program(id.data());
    clear_imperfections();
  }

  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] std::size_t num_mzis() const noexcept { return sites_.size(); }
  [[nodiscard]] mesh_topology topology() const noexcept { return topology_; }
  [[nodiscard]] const std::vector<mzi_site>& sites() const noexcept { return sites_; }
  [[nodiscard]] const std::vector<double>& theta() const noexcept { return theta_; }
  [[nodiscard]] const std::vector<double>& phi() const noexcept { return phi_; }
  [[nodiscard]] const std::vector<double>& screen() const noexcept { return screen_; }
  [[nodiscard]] const photonic_imperfections& imperfections() const noexcept { return imp_; }
  /// Static coupler errors ε (two per MZI: input-side then output-side coupler).
  [[nodiscard]] const std::vector<double>& coupler_errors() const noexcept { return eps_; }

  /// Sets all nominal phases (rad).
  /// \pre sizes num_mzis(), num_mzis(), size(); all finite.
  void set_phases(const std::vector<double>& theta, const std::vector<double>& phi, const std::vector<double>& screen) {
    PNN_EXPECTS(theta.size() == sites_.size() && phi.size() == sites_.size() && screen.size() == n_,
                "physics::unitary_mesh::set_phases: expected one theta and phi per MZI and one screen phase per mode");
    for (const auto* v : {&theta, &phi, &screen})
      for (double x : *v) PNN_EXPECTS(std::isfinite(x), "physics::unitary_mesh::set_phases: phases must be finite (NaN/Inf given)");
    theta_ = theta;
    phi_ = phi;
    screen_ = screen;
  }

  /// Subtracts a phase step (gradient descent in phase space): `θ ← θ − step.theta`, ….
  /// \pre shapes as `set_phases`; all finite.
  void step_phases(const mesh_phase_gradients& step) {
    PNN_EXPECTS(step.theta.size() == sites_.size() && step.phi.size() == sites_.size() && step.screen.size() == n_,
                "physics::unitary_mesh::step_phases: step has the wrong shape");
    for (const auto* v : {&step.theta, &step.phi, &step.screen})
      for (double x : *v) PNN_EXPECTS(std::isfinite(x), "physics::unitary_mesh::step_phases: step must be finite");
    for (std::size_t k = 0; k < sites_.size(); ++k) {
      theta_[k] = wrap_phase(theta_[k] - step.theta[k]);
      phi_[k] = wrap_phase(phi_[k] - step.phi[k]);
    }
    for (std::size_t m = 0; m < n_; ++m) screen_[m] = wrap_phase(screen_[m] - step.screen[m]);
  }

  /// Sets the imperfections and draws the static ones (coupler errors, phase offsets) from `g`.
  void set_imperfections(const photonic_imperfections& imp, rng& g) {
    imp.validate();
    imp_ = imp;
    const std::size_t k = sites_.size();
    eps_.assign(2 * k, 0.0);
    theta_err_.assign(k, 0.0);
    phi_err_.assign(k, 0.0);
    screen_err_.assign(n_, 0.0);
    for (double& e : eps_) e = imp.coupler_sigma * g.normal_double();
    for (double& e : theta_err_) e = imp.phase_error_sigma * g.normal_double();
    for (double& e : phi_err_) e = imp.phase_error_sigma * g.normal_double();
    for (double& e : screen_err_) e = imp.phase_error_sigma * g.normal_double();
  }
  /// Back to an ideal mesh.
  void clear_imperfections() {
    imp_ = {};
    eps_.assign(2 * sites_.size(), 0.0);
    theta_err_.assign(sites_.size(), 0.0);
    phi_err_.assign(sites_.size(), 0.0);
    screen_err_.assign(n_, 0.0);
  }
  /// Sets the static coupler errors directly (two per MZI).
  /// \pre size 2·num_mzis(), finite.
  void set_coupler_errors(const std::vector<double>& eps) {
    PNN_EXPECTS(eps.size() == 2 * sites_.size(), "physics::unitary_mesh: expected two coupler errors per MZI");
    for (double e : eps) PNN_EXPECTS(std::isfinite(e), "physics::unitary_mesh: coupler errors must be finite");
    eps_ = eps;
  }

  /// \brief Programs the nominal phases so that the ideal mesh realises `u` (N × N unitary,
  /// row-major): Clements' or Reck's nulling algorithm. Exact to rounding for an ideal mesh.
  /// \pre `u` unitary to 1e-8 and finite (else `pnn::error`, mesh unchanged).
  void program(const mzi::cplx* u) {
    const std::size_t n = n_;
    std::vector<mzi::cplx> a(u, u + n * n);
    for (const auto& v : a)
      PNN_EXPECTS(std::isfinite(v.real()) && std::isfinite(v.imag()), "physics::unitary_mesh::program: matrix is not finite");
    double dev = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        mzi::cplx s = 0;
        for (std::size_t k = 0; k < n; ++k) s += a[i * n + k] * std::conj(a[j * n + k]);
        dev = std::max(dev, std::abs(s - (i == j ? 1.0 : 0.0)));
      }
    if (!(dev < 1e-8))
      throw_error("physics::unitary_mesh::program: matrix is not unitary (max |U U^H - I| = " + std::to_string(dev) + ")");
    if (screen_at_input) {  // phase_out: decompose Uᵀ in phase_in form and reverse the sequence
      std::vector<mzi::cplx> t(n * n);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) t[i * n + j] = a[j * n + i];
      a.swap(t);
    }
    build_from(detail::decompose_phase_in(n, topology_, &a), true);
  }

  /// Programs `u` given as a vector: checks that it is N × N first.
  /// \pre `u.size() == size()²` (a non-square or wrongly sized matrix is an error).
  void program(const std::vector<mzi::cplx>& u) {
    if (u.size() != n_ * n_)
      throw_error("physics::unitary_mesh::program: expected a square " + std::to_string(n_) + "x" + std::to_string(n_) +
                  " matrix, got " + std::to_string(u.size()) + " entries");
    program(u.data());
  }

  /// \brief Haar-random unitary. Reck: each θ drawn at its position from
  /// `cos(θ/2) = u^{1/(2α)}` (α = modes merged below the MZI; the Beta law of a Haar column),
  /// every φ and screen phase uniform. Clements: a Haar matrix (Gram–Schmidt of a complex
  /// Ginibre matrix) decomposed onto the mesh.
  void randomize_haar(rng& g) {
    const double two_pi = 2 * std::numbers::pi;
    if (topology_ == mesh_topology::reck) {
      for (std::size_t k = 0; k < sites_.size(); ++k) {
        theta_[k] = 2 * std::acos(std::pow(g.uniform_double(), 1.0 / (2 * sites_[k].alpha)));
        phi_[k] = two_pi * g.uniform_double();
      }
      for (double& s : screen_) s = two_pi * g.uniform_double();
      return;
    }
    const std::size_t n = n_;
    std::vector<mzi::cplx> q(n * n);
    for (auto& v : q) v = mzi::cplx(g.normal_double(), g.normal_double());
    for (std::size_t j = 0; j < n; ++j) {  // modified Gram–Schmidt on columns
      for (std::size_t k = 0; k < j; ++k) {
        mzi::cplx s = 0;
        for (std::size_t i = 0; i < n; ++i) s += std::conj(q[i * n + k]) * q[i * n + j];
        for (std::size_t i = 0; i < n; ++i) q[i * n + j] -= s * q[i * n + k];
      }
      double nr = 0;
      for (std::size_t i = 0; i < n; ++i) nr += std::norm(q[i * n + j]);
      nr = std::sqrt(nr);
      for (std::size_t i = 0; i < n; ++i) q[i * n + j] /= nr;
    }
    program(q.data());
  }

  /// \brief The matrices one read applies: nominal phases through the heater DAC, thermal
  /// crosstalk, static errors, and (when `noise` is given) phase noise drawn from it; couplers
  /// with their static errors; insertion loss. `ideal` ignores every imperfection.
  [[nodiscard]] mesh_realisation realise(rng* noise = nullptr, bool ideal = false) const {
    mesh_realisation r;
    const std::size_t k = sites_.size();
    r.theta.resize(k);
    r.phi.resize(k);
    r.screen_phase.resize(n_);
    const photonic_imperfections imp = ideal ? photonic_imperfections{} : imp_;
    auto q = [&](double p) { return quantize_heater_phase(p, imp.heater_bits, imp.heater_gamma); };
    for (std::size_t i = 0; i < k; ++i) {
      r.theta[i] = q(theta_[i]);
      r.phi[i] = q(phi_[i]);
    }
    for (std::size_t m = 0; m < n_; ++m) r.screen_phase[m] = q(screen_[m]);
    if (imp.crosstalk > 0) {
      r.theta = crosstalk_mzi(r.theta, imp.crosstalk);
      r.phi = crosstalk_mzi(r.phi, imp.crosstalk);
      r.screen_phase = crosstalk_screen(r.screen_phase, imp.crosstalk);
    }
    if (!ideal) {
      for (std::size_t i = 0; i < k; ++i) {
        r.theta[i] += theta_err_[i];
        r.phi[i] += phi_err_[i];
      }
      for (std::size_t m = 0; m < n_; ++m) r.screen_phase[m] += screen_err_[m];
      if (noise != nullptr && imp.phase_noise_sigma > 0) {
        for (double& v : r.theta) v += imp.phase_noise_sigma * noise->normal_double();
        for (double& v : r.phi) v += imp.phase_noise_sigma * noise->normal_double();
        for (double& v : r.screen_phase) v += imp.phase_noise_sigma * noise->normal_double();
      }
    }
    const double amp = imp.mzi_amplitude();
    r.ops.resize(k);
    for (std::size_t i = 0; i < k; ++i) {
      const double e0 = ideal ? 0.0 : eps_[2 * i], e1 = ideal ? 0.0 : eps_[2 * i + 1];
      r.ops[i] = mzi::transfer<C>(r.theta[i], r.phi[i], e0, e1, amp);
    }
    r.screen.resize(n_);
    for (std::size_t m = 0; m < n_; ++m) r.screen[m] = std::polar(1.0, r.screen_phase[m]);
    return r;
  }

  /// Thermal crosstalk on MZI heaters: `φ_eff,i = φ_i + c Σ_j φ_j` over the MZIs j adjacent to
  /// i in the same column (modes two apart), `(I + C) φ` with a symmetric tridiagonal C.
  [[nodiscard]] std::vector<double> crosstalk_mzi(const std::vector<double>& p, double c) const {
    std::vector<double> out(p);
    for (std::size_t i = 0; i < p.size(); ++i)
      for (long j : neighbours_[i])
        if (j >= 0) out[i] += c * p[std::size_t(j)];
    return out;
  }
  /// Thermal crosstalk on the screen heaters (adjacent waveguides).
  [[nodiscard]] std::vector<double> crosstalk_screen(const std::vector<double>& p, double c) const {
    std::vector<double> out(p);
    for (std::size_t m = 0; m < p.size(); ++m) {
      if (m > 0) out[m] += c * p[m - 1];
      if (m + 1 < p.size()) out[m] += c * p[m + 1];
    }
    return out;
  }

  /// Propagates a batch forward through realisation `r`: `x ← M x`.
  template <class R>
  void forward(field_batch<R>& f, const mesh_realisation& r) const {
    PNN_EXPECTS(f.modes == n_, "physics::unitary_mesh::forward: field has the wrong number of modes");
    if (screen_at_input) apply_screen(f, r);
    for (std::size_t k = 0; k < sites_.size(); ++k)
      detail::apply_rows(f.re.data(), f.im.data(), f.n, sites_[k].mode, r.ops[k]);
    if (!screen_at_input) apply_screen(f, r);
  }
  /// Reciprocal propagation (light entering the outputs): `x ← Mᵀ x`.
  template <class R>
  void transposed(field_batch<R>& f, const mesh_realisation& r) const {
    PNN_EXPECTS(f.modes == n_, "physics::unitary_mesh::transposed: field has the wrong number of modes");
    if (!screen_at_input) apply_screen(f, r);
    for (std::size_t k = sites_.size(); k-- > 0;)
      detail::apply_rows(f.re.data(), f.im.data(), f.n, sites_[k].mode, r.ops[k].transpose());
    if (screen_at_input) apply_screen(f, r);
  }

  /// The N × N matrix (row-major) realisation `r` applies.
  [[nodiscard]] std::vector<mzi::cplx> matrix(const mesh_realisation& r) const {
    field_batch<double> f;
    f.assign(n_, n_);
    for (std::size_t i = 0; i < n_; ++i) f.re[i * n_ + i] = 1;
    forward(f, r);
    std::vector<mzi::cplx> m(n_ * n_);
    for (std::size_t i = 0; i < n_ * n_; ++i) m[i] = {f.re[i], f.im[i]};
    return m;
  }
  /// The matrix the mesh realises with its static imperfections (no per-read noise).
  [[nodiscard]] std::vector<mzi::cplx> matrix() const { return matrix(realise()); }

  /// \brief Adjoint method (Hughes et al. 2018), sweeping the mesh backwards once.
  ///
  /// On entry `out` holds the forward output fields `y = M x` of realisation `r` and `adj`
  /// holds `conj(∂L/∂y)` (`∂L/∂y = ∂L/∂Re y + i ∂L/∂Im y`). Each MZI's input field is recovered
  /// from its output (`T⁻¹ = T†/|amp|²`, all couplers are unitary), the adjoint is carried
  /// backwards by `Tᵀ`, and at every shifter `∂L/∂φ = −Im(a·ā)` is accumulated over the batch.
  /// On return `out` holds the input fields and `adj` the adjoint at the input (`Mᵀ conj(∂L/∂y)`,
  /// what the previous optical stage needs). Gradients are w.r.t. the *nominal* phases:
  /// crosstalk is chained through `(I + C)ᵀ`, the heater DAC is straight-through.
  void adjoint_gradients(const mesh_realisation& r, field_batch<double>& out, field_batch<double>& adj,
                         mesh_phase_gradients& grad) const {
    PNN_EXPECTS(out.modes == n_ && adj.modes == n_ && out.n == adj.n,
                "physics::unitary_mesh::adjoint_gradients: fields have the wrong shape");
    const std::size_t n = out.n;
    grad.assign(sites_.size(), n_);
    auto screen_grad = [&] {
      for (std::size_t m = 0; m < n_; ++m) {
        double s = 0;
        for (std::size_t j = 0; j < n; ++j) s += mzi::adjoint_phase_gradient(out.at(m, j), adj.at(m, j));
        grad.screen[m] = s;
      }
    };
    auto undo_screen = [&] {
      for (std::size_t m = 0; m < n_; ++m) {
        detail::apply_phase_row(out.re.data(), out.im.data(), n, m, std::conj(r.screen[m]));
        detail::apply_phase_row(adj.re.data(), adj.im.data(), n, m, r.screen[m]);
      }
    };
    if (!screen_at_input) {
      screen_grad();
      undo_screen();
    }
    const double amp = imp_.mzi_amplitude();
    using detail::cx;
    std::vector<double> lane_t(n), lane_p(n);  // per-sample terms: keeps the loop vectorisable
    for (std::size_t k = sites_.size(); k-- > 0;) {
      const std::size_t m = sites_[k].mode;
      const mzi::mat2& t = r.ops[k];
      const mzi::mat2 inv = mzi::cplx(1.0 / (std::norm(t.a) + std::norm(t.c)), 0.0) * t.adjoint();
      const mzi::mat2 b1 = mzi::coupler(eps_[2 * k]), b2 = mzi::coupler(eps_[2 * k + 1]);
      const mzi::cplx et = std::polar(1.0, r.theta[k]), ep = std::polar(1.0, r.phi[k]);
      // per-MZI coefficients, so the per-sample loop is plain real arithmetic on the planes
      const cx i00(inv.a), i01(inv.b), i10(inv.c), i11(inv.d), ta(t.a), tb(t.b), tc(t.c), td(t.d);
      cx w_x0, w_x1, v_w0, v_x0, v_x1, f_a0, f_a1, g_a0, g_a1, z_x0;
      if constexpr (C::external_phase_at_output) {  // T = amp Φ B2 Θ B1
        w_x0 = cx(et * b1.a);                          // w0 = et (b1.a x0 + b1.b x1)
        w_x1 = cx(et * b1.b);
        v_w0 = cx(ep * b2.a);                          // z0 = ep v0 = ep (b2.a w0 + b2.b (b1.c x0 + b1.d x1))
        v_x0 = cx(ep * b2.b * b1.c);
        v_x1 = cx(ep * b2.b * b1.d);
        f_a0 = cx(mzi::cplx(amp, 0)), f_a1 = cx(mzi::cplx(0, 0));  // adjoint at φ: amp a0
        g_a0 = cx(amp * b2.a * ep), g_a1 = cx(amp * b2.c);          // adjoint at θ
      } else {  // T = amp B2 Θ B1 Φ
        z_x0 = cx(ep);                                 // z0 = ep x0
        w_x0 = cx(et * b1.a * ep);                     // w0 = et (b1.a z0 + b1.b x1)
        w_x1 = cx(et * b1.b);
        f_a0 = cx(amp * (b1.a * et * b2.a + b1.c * b2.b));  // adjoint at φ: amp (B1ᵀ Θ B2ᵀ a)_0
        f_a1 = cx(amp * (b1.a * et * b2.c + b1.c * b2.d));
        g_a0 = cx(amp * b2.a), g_a1 = cx(amp * b2.c);         // adjoint at θ: amp (B2ᵀ a)_0
      }
      double* __restrict y0r = &out.re[m * n];
      double* __restrict y0i = &out.im[m * n];
      double* __restrict y1r = &out.re[(m + 1) * n];
      double* __restrict y1i = &out.im[(m + 1) * n];
      double* __restrict a0r = &adj.re[m * n];
      double* __restrict a0i = &adj.im[m * n];
      double* __restrict a1r = &adj.re[(m + 1) * n];
      double* __restrict a1i = &adj.im[(m + 1) * n];
      double* __restrict lt = lane_t.data();
      double* __restrict lp = lane_p.data();
      for (std::size_t j = 0; j < n; ++j) {
        const cx y0{y0r[j], y0i[j]}, y1{y1r[j], y1i[j]}, a0{a0r[j], a0i[j]}, a1{a1r[j], a1i[j]};
        const cx x0 = i00 * y0 + i01 * y1, x1 = i10 * y0 + i11 * y1;
        const cx w0 = w_x0 * x0 + w_x1 * x1;
        const cx ath = g_a0 * a0 + g_a1 * a1;
        lt[j] = -(w0.r * ath.i + w0.i * ath.r);  // −Im(w0·ā)
        if constexpr (C::external_phase_at_output) {
          const cx z0 = v_w0 * w0 + v_x0 * x0 + v_x1 * x1;
          lp[j] = -amp * (z0.r * a0.i + z0.i * a0.r);
        } else {
          const cx z0 = z_x0 * x0;
          const cx aph = f_a0 * a0 + f_a1 * a1;
          lp[j] = -(z0.r * aph.i + z0.i * aph.r);
        }
        const cx n0 = ta * a0 + tc * a1, n1 = tb * a0 + td * a1;
        y0r[j] = x0.r;
        y0i[j] = x0.i;
        y1r[j] = x1.r;
        y1i[j] = x1.i;
        a0r[j] = n0.r;
        a0i[j] = n0.i;
        a1r[j] = n1.r;
        a1i[j] = n1.i;
      }
      double gt = 0, gp = 0;
      for (std::size_t j = 0; j < n; ++j) {
        gt += lt[j];
        gp += lp[j];
      }
      grad.theta[k] = gt;
      grad.phi[k] = gp;
    }
    if (screen_at_input) {  // the screen is the first element: the fields are now just after it
      screen_grad();
      undo_screen();
    }
    if (imp_.crosstalk > 0) {
      grad.theta = crosstalk_mzi(grad.theta, imp_.crosstalk);
      grad.phi = crosstalk_mzi(grad.phi, imp_.crosstalk);
      grad.screen = crosstalk_screen(grad.screen, imp_.crosstalk);
    }
  }

 private:
  template <class R>
  void apply_screen(field_batch<R>& f, const mesh_realisation& r) const {
    for (std::size_t m = 0; m < n_; ++m) detail::apply_phase_row(f.re.data(), f.im.data(), f.n, m, r.screen[m]);
  }

  // Installs a phase_in decomposition: as is for phase_in, reversed (and screen moved to the
  // input) for phase_out, where it was computed for Uᵀ.
  void build_from(detail::mesh_decomposition d, bool set_values) {
    if (screen_at_input) {
      std::reverse(d.sites.begin(), d.sites.end());
      std::reverse(d.theta.begin(), d.theta.end());
      std::reverse(d.phi.begin(), d.phi.end());
    }
    detail::assign_columns(d.sites, n_);
    const bool same_layout = sites_.size() == d.sites.size();
    sites_ = std::move(d.sites);
    if (!same_layout || neighbours_.size() != sites_.size()) build_neighbours();
    if (set_values) {
      for (double& t : d.theta) t = wrap_phase(t);
      for (double& p : d.phi) p = wrap_phase(p);
      theta_ = std::move(d.theta);
      phi_ = std::move(d.phi);
      screen_.resize(n_);
      for (std::size_t m = 0; m < n_; ++m) screen_[m] = wrap_phase(std::arg(d.screen[m]));
    }
  }
  void build_neighbours() {
    neighbours_.assign(sites_.size(), {-1, -1});
    std::vector<long> index(n_ * (2 * n_ + 2), -1);  // (column, mode) → site
    for (std::size_t k = 0; k < sites_.size(); ++k) index[sites_[k].column * n_ + sites_[k].mode] = long(k);
    for (std::size_t k = 0; k < sites_.size(); ++k) {
      const std::size_t c = sites_[k].column, m = sites_[k].mode;
      if (m >= 2) neighbours_[k][0] = index[c * n_ + m - 2];
      if (m + 2 < n_) neighbours_[k][1] = index[c * n_ + m + 2];
    }
  }

  std::size_t n_ = 0;
  mesh_topology topology_ = mesh_topology::clements;
  std::vector<mzi_site> sites_{};
  std::vector<std::array<long, 2>> neighbours_{};
  std::vector<double> theta_{}, phi_{}, screen_{};
  photonic_imperfections imp_{};
  std::vector<double> eps_{}, theta_err_{}, phi_err_{}, screen_err_{};
};

}  // namespace pnn::physics
