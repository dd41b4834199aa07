// SPDX-License-Identifier: MIT
/// \file
/// \brief MZI meshes: Clements and Reck unitary meshes with decomposition, Haar initialisation,
/// reciprocal propagation and adjoint phase gradients; and `physics::mzi_mesh`, the photonic
/// substrate realising `W = U Σ V†` (docs/physics.md, "Weight tiles").
///
/// A `unitary_mesh` of N modes holds N(N−1)/2 MZIs in a Clements rectangle or a Reck triangle
/// and a phase screen of N shifters. With the default `mzi::phase_out` convention the external
/// phases sit after each MZI, so the screen that makes the mesh universal sits at the mesh
/// *input*; with `mzi::phase_in` it sits at the output (Clements et al. 2016). Fields travel in
/// a planar layout (real and imaginary planes, mode-major: `re[m·n + s]` for mode m, sample s)
/// so that every MZI updates two contiguous rows of the batch.
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
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/mzi.hpp>
#include <pnn/physics/photonic_noise.hpp>
#include <pnn/simd/gemm.hpp>

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


namespace detail {

/// \brief Real SVD `A = U diag(s) Vᵀ` of an N × N row-major matrix by one-sided Jacobi
/// (Hestenes) rotations in double; singular values in [0, ∞), U and V orthogonal (columns of U
/// for zero singular values completed to an orthonormal basis).
inline void jacobi_svd(std::size_t n, const double* a_rows, std::vector<double>& u, std::vector<double>& s,
                       std::vector<double>& v) {
  std::vector<double> a(n * n), vc(n * n, 0.0);  // column-major copies: column j at [j·n]
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) a[j * n + i] = a_rows[i * n + j];
  for (std::size_t j = 0; j < n; ++j) vc[j * n + j] = 1;
  for (int sweep = 0; sweep < 80; ++sweep) {
    double off = 0;
    for (std::size_t p = 0; p + 1 < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        double* ap = &a[p * n];
        double* aq = &a[q * n];
        double alpha = 0, beta = 0, gamma = 0;
        for (std::size_t i = 0; i < n; ++i) {
          alpha += ap[i] * ap[i];
          beta += aq[i] * aq[i];
          gamma += ap[i] * aq[i];
        }
        if (alpha == 0 || beta == 0 || std::abs(gamma) <= 1e-15 * std::sqrt(alpha * beta)) continue;
        off = std::max(off, std::abs(gamma) / std::sqrt(alpha * beta));
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::abs(zeta) + std::sqrt(1 + zeta * zeta));
        const double c = 1 / std::sqrt(1 + t * t), sn = c * t;
        for (std::size_t i = 0; i < n; ++i) {
          const double x = ap[i], y = aq[i];
          ap[i] = c * x - sn * y;
          aq[i] = sn * x + c * y;
        }
        double* vp = &vc[p * n];
        double* vq = &vc[q * n];
        for (std::size_t i = 0; i < n; ++i) {
          const double x = vp[i], y = vq[i];
          vp[i] = c * x - sn * y;
          vq[i] = sn * x + c * y;
        }
      }
    if (off < 1e-14) break;
  }
  s.assign(n, 0.0);
  double smax = 0;
  for (std::size_t j = 0; j < n; ++j) {
    double nr = 0;
    for (std::size_t i = 0; i < n; ++i) nr += a[j * n + i] * a[j * n + i];
    s[j] = std::sqrt(nr);
    smax = std::max(smax, s[j]);
  }
  std::vector<double> uc(n * n, 0.0);
  std::vector<bool> ok(n, false);
  for (std::size_t j = 0; j < n; ++j)
    if (s[j] > 1e-13 * std::max(smax, 1e-300) && s[j] > 0) {
      for (std::size_t i = 0; i < n; ++i) uc[j * n + i] = a[j * n + i] / s[j];
      ok[j] = true;
    } else {
      s[j] = 0;
    }
  std::size_t e = 0;  // complete the basis with Gram–Schmidt on unit vectors
  for (std::size_t j = 0; j < n; ++j) {
    if (ok[j]) continue;
    for (; e < n; ++e) {
      std::vector<double> cand(n, 0.0);
      cand[e] = 1;
      for (int pass = 0; pass < 2; ++pass)
        for (std::size_t k = 0; k < n; ++k) {
          if (!ok[k]) continue;
          double d = 0;
          for (std::size_t i = 0; i < n; ++i) d += uc[k * n + i] * cand[i];
          for (std::size_t i = 0; i < n; ++i) cand[i] -= d * uc[k * n + i];
        }
      double nr = 0;
      for (double x : cand) nr += x * x;
      nr = std::sqrt(nr);
      if (nr > 0.5) {
        for (std::size_t i = 0; i < n; ++i) uc[j * n + i] = cand[i] / nr;
        ok[j] = true;
        ++e;
        break;
      }
    }
  }
  u.assign(n * n, 0.0);
  v.assign(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      u[i * n + j] = uc[j * n + i];
      v[i * n + j] = vc[j * n + i];
    }
}

}  // namespace detail

/// How `program(update)` realises a weight-space update on the mesh.
enum class mesh_programming {
  /// In situ via re-programming: target `W − ΔW`, SVD, Clements/Reck decomposition (exact on
  /// an ideal mesh; O(N³) per update).
  reprogram,
  /// In situ adjoint: the update is mapped to phase space, `Δθ = η Jᵀ ΔW` (J = ∂Re W/∂θ), with
  /// the fields and adjoint fields of the mesh (Hughes et al. 2018); uses the update's
  /// factors `(h, δ)` when present (O(n N²)), else probes with the `In` unit inputs (O(In N²)).
  adjoint
};

/// Phase-space gradients (or steps) of an `mzi_mesh` tile: both meshes and the Σ line.
struct mzi_mesh_gradients {
  mesh_phase_gradients u{};  ///< output mesh U
  mesh_phase_gradients v{};  ///< input mesh V†
  std::vector<double> sigma{};  ///< attenuator amplitudes Σ
};

/// \brief The photonic substrate: each layer's weights `W = U Σ V†` are two unitary MZI meshes
/// and a line of attenuators (Shen et al. 2017), read by coherent or intensity detection.
///
/// Values between layers are real (`T`): a layer's inputs are encoded as real field amplitudes
/// on the first `In` of `N = max(In, Out)` modes (the others dark), and the first `Out` output
/// modes are detected. Coherent detection (default) returns `Re(E)` (homodyne against a
/// reference: linear, sign kept, so `act::tanh` etc. apply); intensity detection returns
/// `R·|E|²`. The attenuator amplitudes `σ_i` may exceed 1: read them as attenuation `σ_i/σ_max`
/// followed by a detector gain `σ_max`. Reads use the mesh's realised matrix (exactly what the
/// linear optics computes, built once per programming) unless per-read phase noise is on, in
/// which case every read propagates the batch through freshly perturbed meshes.
/// \tparam T value type between layers (float, or double for checks)
/// \tparam C MZI phase convention
template <class T = float, mzi::convention C = mzi::default_convention>
struct basic_mzi_mesh {
  using value_type = T;
  static constexpr const char* name = "mzi_mesh";

  /// Mesh, detection, programming and imperfection parameters.
  struct params {
    mesh_topology topology = mesh_topology::clements;
    detection detect = detection::coherent;
    double responsivity = 1.0;  ///< R (A/W) of the intensity detector
    mesh_programming programming = mesh_programming::reprogram;
    double phase_learning_rate = 1.0;  ///< η: multiplies the mapped phase step (adjoint programming)
    photonic_imperfections imperfections{};
    detection_noise detector{};

    /// \pre responsivity > 0, phase_learning_rate ≥ 0, valid imperfections and detector noise.
    void validate() const {
      PNN_EXPECTS(responsivity > 0 && std::isfinite(responsivity), "physics::mzi_mesh: responsivity must be > 0");
      PNN_EXPECTS(phase_learning_rate >= 0 && std::isfinite(phase_learning_rate),
                  "physics::mzi_mesh: phase_learning_rate must be >= 0 and finite");
      imperfections.validate();
      detector.validate();
    }
  };

  /// One layer: meshes V† (input side), Σ, U (output side); nominal W and bias kept in sync.
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = T;
    using mesh_type = unitary_mesh<C>;
    static constexpr std::size_t in_extent = In;
    static constexpr std::size_t out_extent = Out;
    /// Adjoint programming drives the mesh with the update's factors `(h, δ)`.
    static constexpr bool uses_update_factors = true;

    /// Applies parameters; static imperfections are (re)drawn if the tile is already prepared.
    void set_params(const params& p) {
      p.validate();
      const bool redraw = modes_ > 0 && prepared_;
      const bool new_topology = p.topology != p_.topology;
      p_ = p;
      if (modes_ > 0 && new_topology) {
        u_.resize(modes_, p_.topology);
        v_.resize(modes_, p_.topology);
        if (prepared_) decompose(w_.data());
      }
      if (redraw) draw_imperfections();
      invalidate();
    }
    [[nodiscard]] const params& parameters() const noexcept { return p_; }

    /// Shapes the tile (N = max(in, out) modes), programs W = 0.
    void resize(std::size_t in, std::size_t out) {
      PNN_EXPECTS(in > 0 && out > 0, "physics::mzi_mesh: extents must be positive");
      PNN_EXPECTS((In == dynamic || in == In) && (Out == dynamic || out == Out),
                  "physics::mzi_mesh: size differs from the tile's fixed extent");
      in_ = in;
      out_ = out;
      modes_ = std::max(in, out);
      w_.assign(in * out, T(0));
      b_.assign(out, T(0));
      u_.resize(modes_, p_.topology);
      v_.resize(modes_, p_.topology);
      sigma_.assign(modes_, 0.0);
      nominal_valid_ = true;
      prepared_ = false;
      invalidate();
    }
    [[nodiscard]] std::size_t in_size() const noexcept { return in_; }
    [[nodiscard]] std::size_t out_size() const noexcept { return out_; }
    /// Number of waveguide modes N of each mesh.
    [[nodiscard]] std::size_t modes() const noexcept { return modes_; }

    /// After the layer drew its initial weights: draws the static imperfections and programs
    /// those weights onto the meshes.
    void prepare(rng& g) {
      static_rng_ = g.split(0x6d7a69);
      prepared_ = true;
      draw_imperfections();
      decompose(w_.data());
    }

    /// `y(n × Out)` = detection of `U Σ V† x` for real inputs `x(n × In)`; bias not included.
    void read(const T* x, std::size_t n, T* y, rng& g) const {
      if (n == 0) return;
      if (use_matrix(n)) {
        ensure_effective();
        simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, weff_re_.data(), in_, T(0), y, out_);
        if (p_.detect == detection::intensity) {
          scratch_.resize(n * out_);
          simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, weff_im_.data(), in_, T(0), scratch_.data(), out_);
          const T r = T(p_.responsivity);
          for (std::size_t i = 0; i < n * out_; ++i) y[i] = r * (y[i] * y[i] + scratch_[i] * scratch_[i]);
        }
      } else {
        field_batch<double> f;
        load(f, x, n, in_);
        rng gn = g.split(0);
        propagate(f, &gn, false);
        for (std::size_t s = 0; s < n; ++s)
          for (std::size_t j = 0; j < out_; ++j) {
            const double re = f.re[j * n + s], im = f.im[j * n + s];
            y[s * out_ + j] = p_.detect == detection::coherent ? T(re) : T(p_.responsivity * (re * re + im * im));
          }
      }
      if (p_.detector.active()) {
        rng gd = g.split(1);
        p_.detector.apply(y, n * out_, gd);
      }
    }

    /// Reciprocal read `dx(n × In) = dy(n × Out) Re(W)`: light sent backwards through U, Σ,
    /// V† (the mesh is reciprocal, so `Wᵀ` is physically available): the vector–Jacobian product
    /// of a coherent read.
    /// \pre coherent detection (else `pnn::error`): under intensity detection `y = R|Wx|²` the
    /// vector–Jacobian product depends on `x`, so no transposed read is correct: `read_vjp`
    /// computes it at the layer's input (backprop uses it).
    void read_transposed(const T* dy, std::size_t n, T* dx, rng& g) const {
      PNN_EXPECTS(p_.detect == detection::coherent,
                  "physics::mzi_mesh::read_transposed: intensity detection (y = R|Wx|^2) has no input-independent "
                  "transposed read; use read_vjp (backprop does), or train the mesh in its parameter space "
                  "(weight_perturbation, spsa)");
      if (n == 0) return;
      if (use_matrix(n)) {
        ensure_effective();
        simd::gemm_nn<T>(n, in_, out_, T(1), dy, out_, weff_re_.data(), in_, T(0), dx, in_);
        return;
      }
      field_batch<double> f;
      load(f, dy, n, out_);
      rng gn = g.split(2);
      rng gu = gn.split(0), gv = gn.split(1);
      const bool noisy = p_.imperfections.has_call_noise();
      const mesh_realisation ru = u_.realise(noisy ? &gu : nullptr), rv = v_.realise(noisy ? &gv : nullptr);
      u_.transposed(f, ru);
      scale_rows(f, sigma_);
      v_.transposed(f, rv);
      for (std::size_t s = 0; s < n; ++s)
        for (std::size_t i = 0; i < in_; ++i) dx[s * in_ + i] = T(f.re[i * n + s]);
    }

    /// \brief The vector–Jacobian product of `read` at inputs `x`: `dx = (∂y/∂x)ᵀ dy` (n × In).
    /// Coherent detection: the transposed read. Intensity detection, `y_j = R|E_j|²` with
    /// `E = W x`: `dx_i = 2R Σ_j dy_j (Re E_j Re W_ji + Im E_j Im W_ji)` — what backprop needs to
    /// pass gradients below an intensity-detected mesh (tests/substrate.cpp checks it against
    /// finite differences). Uses the realised matrix without per-read phase noise.
    void read_vjp(const T* x, const T* dy, std::size_t n, T* dx, rng& g) const {
      if (p_.detect == detection::coherent) {
        read_transposed(dy, n, dx, g);
        return;
      }
      if (n == 0) return;
      ensure_effective();
      std::vector<T> er(n * out_), ei(n * out_);
      simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, weff_re_.data(), in_, T(0), er.data(), out_);
      simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, weff_im_.data(), in_, T(0), ei.data(), out_);
      const T two_r = T(2 * p_.responsivity);
      for (std::size_t k = 0; k < n * out_; ++k) {
        er[k] *= two_r * dy[k];
        ei[k] *= two_r * dy[k];
      }
      simd::gemm_nn<T>(n, in_, out_, T(1), er.data(), out_, weff_re_.data(), in_, T(0), dx, in_);
      simd::gemm_nn<T>(n, in_, out_, T(1), ei.data(), out_, weff_im_.data(), in_, T(1), dx, in_);
    }

    /// \brief Realises a weight-space update `ΔW` (and `Δb`, applied digitally). `reprogram`:
    /// decompose `W − ΔW`; `adjoint`: phase step `η Jᵀ ΔW` from mesh fields (see
    /// `mesh_programming`). `U` has `weight_data()`/`bias_data()` and optionally the factors.
    template <class U>
    void program(const U& update, rng& g) {
      const T* dw = update.weight_data();
      const T* db = update.bias_data();
      PNN_EXPECTS(all_finite_(dw, in_ * out_) && all_finite_(db, out_), "physics::mzi_mesh::program: update is not finite");
      if (p_.programming == mesh_programming::reprogram) {
        PNN_EXPECTS(p_.detect == detection::coherent,
                    "physics::mzi_mesh::program: a dense weight update cannot be re-programmed under intensity detection "
                    "(the layer is not W x); use adjoint programming or a parameter-space rule");
        sync_nominal();
        std::vector<T> target(w_);
        for (std::size_t i = 0; i < target.size(); ++i) target[i] -= dw[i];
        decompose(target.data());
      } else {
        mzi_mesh_gradients step;
        bool done = false;
        if constexpr (requires { update.factored; update.input; update.delta; update.factor_scale; }) {
          if (update.factored && update.input.size() > 0) {
            const std::size_t n = update.input.shape()[0];
            adjoint_phase_gradients(update.input.data(), update.delta.data(), n, step, g, double(update.factor_scale));
            done = true;
          }
        }
        PNN_EXPECTS(done || p_.detect == detection::coherent,
                    "physics::mzi_mesh::program: adjoint programming under intensity detection needs the update's "
                    "factors (h, delta)");
        if (!done) {  // probe with the unit inputs: Σ_j ΔW[:, j]·Re(W e_j) = <ΔW, Re W>
          std::vector<T> eye(in_ * in_, T(0)), probe(in_ * out_);
          for (std::size_t j = 0; j < in_; ++j) eye[j * in_ + j] = T(1);
          for (std::size_t o = 0; o < out_; ++o)
            for (std::size_t j = 0; j < in_; ++j) probe[j * out_ + o] = dw[o * in_ + j];
          adjoint_phase_gradients(eye.data(), probe.data(), in_, step, g, 1.0);
        }
        scale_step(step, p_.phase_learning_rate);
        program_phases(step);
      }
      for (std::size_t j = 0; j < out_; ++j) b_[j] -= db[j];
    }

    /// \brief Adjoint phase gradients of `L = scale · Σ_s dy_s · y_s` (y the detected output of
    /// inputs x): forward fields, then `conj(∂L/∂E)` sent backwards through U, Σ, V†. With
    /// `dy = ∂L/∂y` of a loss this is `∂L/∂(phases, σ)` — what in-situ training measures.
    void adjoint_phase_gradients(const T* x, const T* dy, std::size_t n, mzi_mesh_gradients& out, rng& g,
                                 double scale = 1.0) const {
      field_batch<double> f;
      load(f, x, n, in_);
      const bool noisy = p_.imperfections.has_call_noise();
      rng gu = g.split(10), gv = g.split(11);
      const mesh_realisation rv = v_.realise(noisy ? &gv : nullptr), ru = u_.realise(noisy ? &gu : nullptr);
      v_.forward(f, rv);
      field_batch<double> z = f;  // V† output
      scale_rows(f, sigma_);
      u_.forward(f, ru);
      field_batch<double> adj;
      adj.assign(modes_, n);
      for (std::size_t s = 0; s < n; ++s)
        for (std::size_t j = 0; j < out_; ++j) {
          const double d = scale * double(dy[s * out_ + j]);
          if (p_.detect == detection::coherent) {
            adj.re[j * n + s] = d;
          } else {  // y = R|E|²: ∂L/∂E = 2 R d E, adjoint source conj of it
            adj.re[j * n + s] = 2 * p_.responsivity * d * f.re[j * n + s];
            adj.im[j * n + s] = -2 * p_.responsivity * d * f.im[j * n + s];
          }
        }
      u_.adjoint_gradients(ru, f, adj, out.u);
      out.sigma.assign(modes_, 0.0);
      for (std::size_t m = 0; m < modes_; ++m) {
        double s = 0;
        for (std::size_t j = 0; j < n; ++j) s += z.re[m * n + j] * adj.re[m * n + j] - z.im[m * n + j] * adj.im[m * n + j];
        out.sigma[m] = s;
      }
      scale_rows(adj, sigma_);
      v_.adjoint_gradients(rv, z, adj, out.v);
    }

    /// Subtracts a phase-space step from the nominal phases and attenuators (in-situ update);
    /// an attenuator amplitude stops at 0.
    void program_phases(const mzi_mesh_gradients& step) {
      PNN_EXPECTS(step.sigma.size() == modes_, "physics::mzi_mesh::program_phases: step has the wrong shape");
      u_.step_phases(step.u);
      v_.step_phases(step.v);
      // An attenuator transmits between nothing and everything: its amplitude stops at 0.
      for (std::size_t m = 0; m < modes_; ++m) sigma_[m] = std::max(sigma_[m] - step.sigma[m], 0.0);
      nominal_valid_ = false;
      invalidate();
    }

    /// Number of trainable parameters: θ and φ of every MZI and the screen of both meshes, the
    /// N attenuators σ and the Out biases.
    [[nodiscard]] std::size_t parameter_count() const noexcept {
      return 2 * (2 * u_.num_mzis() + modes_) + modes_ + out_;
    }
    /// The parameters as one flat vector (rad for phases): U's θ, φ, screen; V†'s θ, φ, screen;
    /// σ; bias. Exact copies of the programmed values.
    void get_parameters(double* p) const {
      for (const mesh_type* m : {&u_, &v_})
        for (const auto* v : {&m->theta(), &m->phi(), &m->screen()}) p = std::copy(v->begin(), v->end(), p);
      p = std::copy(sigma_.begin(), sigma_.end(), p);
      for (std::size_t j = 0; j < out_; ++j) *p++ = double(b_[j]);
    }
    /// Programs the phases, attenuators and bias from `p` (the layout of `get_parameters`), as
    /// heater drives and attenuator settings would; reads then use them. Parameter-space
    /// updates (in-situ phase training by weight perturbation or SPSA) arrive through it. An
    /// attenuator amplitude below 0 is set to 0 (no transmission), as the device would; a
    /// negative sign is the phase screen's job.
    /// \pre `parameter_count()` finite values (else `pnn::error`; the tile is unchanged).
    void set_parameters(const double* p) {
      PNN_EXPECTS(all_finite_(p, parameter_count()), "physics::mzi_mesh::set_parameters: parameters are not finite");
      mzi_mesh_gradients v;
      const double* rest = unflatten(p, v);
      u_.set_phases(v.u.theta, v.u.phi, v.u.screen);
      v_.set_phases(v.v.theta, v.v.phi, v.v.screen);
      sigma_ = v.sigma;
      for (double& a : sigma_) a = std::max(a, 0.0);  // amplitudes below 0 are not an attenuator
      for (std::size_t j = 0; j < out_; ++j) b_[j] = T(rest[j]);
      nominal_valid_ = false;
      invalidate();
    }

    /// \brief A weight-space gradient in this tile's parameter space: for `∂L/∂W = s·δᵀh` (its
    /// factors: inputs `h` n × In, output gradients `δ` n × Out) and `∂L/∂b = bias_grad`,
    /// writes `∂L/∂θ` in the layout of `get_parameters` (the adjoint phase gradients, then
    /// `bias_grad`). What a perturbative estimate in phase space is compared with.
    void parameter_gradient(const T* h, const T* delta, std::size_t n, double s, const T* bias_grad, double* out,
                            rng& g) const {
      mzi_mesh_gradients pg;
      adjoint_phase_gradients(h, delta, n, pg, g, s);
      for (const mesh_phase_gradients* m : {&pg.u, &pg.v})
        for (const auto* v : {&m->theta, &m->phi, &m->screen}) out = std::copy(v->begin(), v->end(), out);
      out = std::copy(pg.sigma.begin(), pg.sigma.end(), out);
      for (std::size_t j = 0; j < out_; ++j) out[j] = double(bias_grad[j]);
    }

    /// Writes target weights (decomposed onto the meshes: in-silico deployment) and bias.
    void set_weights(const T* w, const T* b, rng&) {
      PNN_EXPECTS(all_finite_(w, in_ * out_) && all_finite_(b, out_), "physics::mzi_mesh::set_weights: weights are not finite");
      decompose(w);
      std::copy(b, b + out_, b_.begin());
    }
    /// The real weights the physical mesh realises (with its static imperfections).
    void effective_weights(T* w) const {
      ensure_effective();
      std::copy(weff_re_.begin(), weff_re_.end(), w);
    }
    /// The nominal weights `Re(U Σ V†)` of the programmed phases on an ideal mesh. Writing
    /// through the pointer takes effect at the next `prepare`/`set_weights`.
    [[nodiscard]] T* weight_data() {
      sync_nominal();
      return w_.data();
    }
    [[nodiscard]] const T* weight_data() const {
      sync_nominal();
      return w_.data();
    }
    [[nodiscard]] T* bias_data() noexcept { return b_.data(); }
    [[nodiscard]] const T* bias_data() const noexcept { return b_.data(); }

    [[nodiscard]] const mesh_type& u_mesh() const noexcept { return u_; }
    [[nodiscard]] const mesh_type& v_mesh() const noexcept { return v_; }
    [[nodiscard]] const std::vector<double>& sigma() const noexcept { return sigma_; }

   private:
    // Splits a flat parameter vector into phase and attenuator parts; returns the bias part.
    const double* unflatten(const double* p, mzi_mesh_gradients& out) const {
      for (auto [m, mesh] : {std::pair{&out.u, &u_}, std::pair{&out.v, &v_}}) {
        m->theta.assign(p, p + mesh->num_mzis());
        p += mesh->num_mzis();
        m->phi.assign(p, p + mesh->num_mzis());
        p += mesh->num_mzis();
        m->screen.assign(p, p + modes_);
        p += modes_;
      }
      out.sigma.assign(p, p + modes_);
      return p + modes_;
    }
    template <class V>
    static bool all_finite_(const V* p, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(double(p[i]))) return false;
      return true;
    }
    static void scale_step(mzi_mesh_gradients& s, double a) {
      for (auto* m : {&s.u, &s.v}) {
        for (double& x : m->theta) x *= a;
        for (double& x : m->phi) x *= a;
        for (double& x : m->screen) x *= a;
      }
      for (double& x : s.sigma) x *= a;
    }
    static void scale_rows(field_batch<double>& f, const std::vector<double>& s) {
      for (std::size_t m = 0; m < f.modes; ++m)
        for (std::size_t j = 0; j < f.n; ++j) {
          f.re[m * f.n + j] *= s[m];
          f.im[m * f.n + j] *= s[m];
        }
    }
    // Real rows (n × width) onto the first `width` modes of an N-mode planar batch.
    void load(field_batch<double>& f, const T* x, std::size_t n, std::size_t width) const {
      f.assign(modes_, n);
      for (std::size_t s = 0; s < n; ++s)
        for (std::size_t i = 0; i < width; ++i) f.re[i * n + s] = double(x[s * width + i]);
    }
    // V†, Σ, U; noise from `g` when per-read phase noise is on; `ideal` drops imperfections.
    void propagate(field_batch<double>& f, rng* g, bool ideal) const {
      const bool noisy = g != nullptr && p_.imperfections.has_call_noise();
      rng gv = noisy ? g->split(0) : rng{}, gu = noisy ? g->split(1) : rng{};
      v_.forward(f, v_.realise(noisy ? &gv : nullptr, ideal));
      scale_rows(f, sigma_);
      u_.forward(f, u_.realise(noisy ? &gu : nullptr, ideal));
    }
    [[nodiscard]] bool use_matrix(std::size_t n) const {
      return !p_.imperfections.has_call_noise() && (weff_valid_ || n >= in_);
    }
    void invalidate() { weff_valid_ = false; }
    // The realised matrix, by sending the In unit vectors through the meshes.
    void ensure_effective() const {
      if (weff_valid_) return;
      matrix_of(false, weff_re_, &weff_im_);
      weff_valid_ = true;
    }
    void sync_nominal() const {
      if (nominal_valid_) return;
      matrix_of(true, w_, nullptr);
      nominal_valid_ = true;
    }
    void matrix_of(bool ideal, std::vector<T>& re, std::vector<T>* im) const {
      field_batch<double> f;
      f.assign(modes_, in_);
      for (std::size_t i = 0; i < in_; ++i) f.re[i * in_ + i] = 1;
      propagate(f, nullptr, ideal);
      re.resize(out_ * in_);
      if (im) im->resize(out_ * in_);
      for (std::size_t j = 0; j < out_; ++j)
        for (std::size_t i = 0; i < in_; ++i) {
          re[j * in_ + i] = T(f.re[j * in_ + i]);
          if (im) (*im)[j * in_ + i] = T(f.im[j * in_ + i]);
        }
    }
    void draw_imperfections() {
      rng gu = static_rng_.split(0), gv = static_rng_.split(1);
      u_.set_imperfections(p_.imperfections, gu);
      v_.set_imperfections(p_.imperfections, gv);
      invalidate();
    }
    // SVD of the zero-padded N × N target, then U and V† onto the meshes.
    void decompose(const T* w) {
      const std::size_t n = modes_;
      std::vector<double> a(n * n, 0.0), u, s, v;
      for (std::size_t j = 0; j < out_; ++j)
        for (std::size_t i = 0; i < in_; ++i) a[j * n + i] = double(w[j * in_ + i]);
      detail::jacobi_svd(n, a.data(), u, s, v);
      std::vector<mzi::cplx> uc(n * n), vh(n * n);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          uc[i * n + j] = u[i * n + j];
          vh[i * n + j] = v[j * n + i];
        }
      u_.program(uc.data());
      v_.program(vh.data());
      sigma_ = s;
      if (w != w_.data()) std::copy(w, w + in_ * out_, w_.begin());
      nominal_valid_ = true;
      invalidate();
    }

    std::size_t in_ = 0, out_ = 0, modes_ = 0;
    params p_{};
    mesh_type u_{}, v_{};
    std::vector<double> sigma_{};
    mutable std::vector<T> w_{};
    std::vector<T> b_{};
    mutable std::vector<T> weff_re_{}, weff_im_{}, scratch_{};
    mutable bool weff_valid_ = false, nominal_valid_ = true;
    bool prepared_ = false;
    rng static_rng_{};
  };
};

/// The photonic substrate in single precision with the convention of docs/physics.md, "MZI".
using mzi_mesh = basic_mzi_mesh<float>;

static_assert(substrate<mzi_mesh> && transposed_readable<mzi_mesh>);
static_assert(dense_tile<mzi_mesh::tile<3, 2>> && parameterised_tile<mzi_mesh::tile<3, 2>>);

}  // namespace pnn::physics
