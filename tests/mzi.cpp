// SPDX-License-Identifier: MIT
// MZI and unitary meshes: transfer matrices, decomposition, Haar initialisation, adjoint
// gradients and imperfections (docs/physics.md, "Photonic mesh"), all checked in double precision.
#include <catch2/catch.hpp>

#include <cmath>
#include <complex>
#include <numbers>
#include <vector>

#include <pnn/physics/mzi.hpp>
#include <pnn/physics/mzi_mesh.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_mzi {

using namespace pnn;
using namespace pnn::physics;
using mzi::cplx;

namespace {

double max_diff(const mzi::mat2& x, const mzi::mat2& y) {
  return std::max({std::abs(x.a - y.a), std::abs(x.b - y.b), std::abs(x.c - y.c), std::abs(x.d - y.d)});
}

// max |M M† − s I|
double unitarity_error(const std::vector<cplx>& m, std::size_t n, double s = 1.0) {
  double e = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      cplx acc = 0;
      for (std::size_t k = 0; k < n; ++k) acc += m[i * n + k] * std::conj(m[j * n + k]);
      e = std::max(e, std::abs(acc - (i == j ? s : 0.0)));
    }
  return e;
}

// Haar unitary by Gram–Schmidt of a complex Ginibre matrix (independent of the mesh code).
std::vector<cplx> haar(std::size_t n, rng& g) {
  std::vector<cplx> q(n * n);
  for (auto& v : q) v = cplx(g.normal_double(), g.normal_double());
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t k = 0; k < j; ++k) {
      cplx s = 0;
      for (std::size_t i = 0; i < n; ++i) s += std::conj(q[i * n + k]) * q[i * n + j];
      for (std::size_t i = 0; i < n; ++i) q[i * n + j] -= s * q[i * n + k];
    }
    double nr = 0;
    for (std::size_t i = 0; i < n; ++i) nr += std::norm(q[i * n + j]);
    for (std::size_t i = 0; i < n; ++i) q[i * n + j] /= std::sqrt(nr);
  }
  return q;
}

template <class C>
void random_phases(unitary_mesh<C>& m, rng& g) {
  std::vector<double> t(m.num_mzis()), p(m.num_mzis()), s(m.size());
  for (auto& v : t) v = 2 * std::numbers::pi * g.uniform_double();
  for (auto& v : p) v = 2 * std::numbers::pi * g.uniform_double();
  for (auto& v : s) v = 2 * std::numbers::pi * g.uniform_double();
  m.set_phases(t, p, s);
}

double fidelity(const std::vector<cplx>& u, const std::vector<cplx>& m, std::size_t n) {
  cplx tr = 0;
  for (std::size_t i = 0; i < n * n; ++i) tr += std::conj(u[i]) * m[i];
  return std::norm(tr) / double(n * n);
}

}  // namespace

TEMPLATE_TEST_CASE("MZI closed form equals the product of couplers and phases", "[mzi]", mzi::phase_out, mzi::phase_in) {
  rng g(3);
  for (int k = 0; k < 20; ++k) {
    const double th = 4 * std::numbers::pi * g.uniform_double() - std::numbers::pi;
    const double ph = 4 * std::numbers::pi * g.uniform_double() - std::numbers::pi;
    CHECK(max_diff(mzi::transfer<TestType>(th, ph), mzi::closed_form<TestType>(th, ph)) < 1e-14);
  }
  const mzi::mat2 b = mzi::coupler();
  CHECK(std::abs(b.a - cplx(std::sqrt(0.5), 0)) < 1e-15);
  CHECK(std::abs(b.b - cplx(0, std::sqrt(0.5))) < 1e-15);
  // The form of docs/physics.md, "MZI", for the default convention, entry by entry.
  const double th = 0.7, ph = 1.9;
  const mzi::mat2 t = mzi::transfer<mzi::phase_out>(th, ph);
  const cplx pre = cplx(0, 1) * std::polar(1.0, th / 2);
  CHECK(std::abs(t.a - pre * std::polar(1.0, ph) * std::sin(th / 2)) < 1e-15);
  CHECK(std::abs(t.c - pre * std::cos(th / 2)) < 1e-15);
  // the two conventions are transposes of each other
  CHECK(max_diff(mzi::transfer<mzi::phase_in>(th, ph), t.transpose()) < 1e-15);
}

TEST_CASE("imperfect couplers stay unitary, the gradient's three-intensity form is exact", "[mzi]") {
  const mzi::mat2 b = mzi::coupler(0.1);
  const mzi::mat2 p = b * b.adjoint();
  CHECK(std::abs(p.a - 1.0) < 1e-15);
  CHECK(std::abs(p.b) < 1e-15);
  rng g(5);
  for (int k = 0; k < 20; ++k) {
    const cplx a(g.normal_double(), g.normal_double()), ab(g.normal_double(), g.normal_double());
    CHECK(mzi::adjoint_phase_gradient_from_intensities(a, ab) == Approx(mzi::adjoint_phase_gradient(a, ab)).margin(1e-12));
  }
}

TEMPLATE_TEST_CASE("lossless meshes are unitary to 1e-12", "[mzi]", mzi::phase_out, mzi::phase_in) {
  rng g(7);
  for (auto topo : {mesh_topology::clements, mesh_topology::reck})
    for (std::size_t n : {1U, 2U, 3U, 5U, 8U, 16U}) {
      unitary_mesh<TestType> m(n, topo);
      CHECK(m.num_mzis() == n * (n - 1) / 2);
      random_phases(m, g);
      CHECK(unitarity_error(m.matrix(), n) < 1e-12);
    }
}

TEMPLATE_TEST_CASE("decomposing a Haar unitary and rebuilding it reproduces it", "[mzi]", mzi::phase_out, mzi::phase_in) {
  rng g(11);
  for (auto topo : {mesh_topology::clements, mesh_topology::reck})
    for (std::size_t n : {2U, 3U, 8U, 16U}) {
      const auto u = haar(n, g);
      unitary_mesh<TestType> m(n, topo);
      m.program(u);
      const auto r = m.matrix();
      double e = 0;
      for (std::size_t i = 0; i < n * n; ++i) e = std::max(e, std::abs(r[i] - u[i]));
      INFO("n = " << n << (topo == mesh_topology::clements ? " clements" : " reck"));
      CHECK(e < 1e-10);
      std::size_t depth = 0;
      for (const auto& s : m.sites()) depth = std::max(depth, s.column + 1);
      CHECK(depth == (n == 2 ? 1 : (topo == mesh_topology::clements ? n : 2 * n - 3)));
    }
}

TEST_CASE("Haar initialisation has the moments of the Haar measure", "[mzi]") {
  // E|U_ij|² = 1/N, E|U_ij|⁴ = 2/(N(N+1)) for Haar unitaries.
  const std::size_t n = 4, samples = 3000;
  for (auto topo : {mesh_topology::reck, mesh_topology::clements}) {
    unitary_mesh<> m(n, topo);
    rng g(21);
    double m2 = 0, m4 = 0, c4 = 0;
    for (std::size_t k = 0; k < samples; ++k) {
      m.randomize_haar(g);
      const auto u = m.matrix();
      m2 += std::norm(u[0]);
      m4 += std::norm(u[0]) * std::norm(u[0]);
      c4 += std::norm(u[2 * n + 3]) * std::norm(u[2 * n + 3]);
    }
    CHECK(m2 / samples == Approx(1.0 / n).epsilon(0.05));
    CHECK(m4 / samples == Approx(2.0 / double(n * (n + 1))).epsilon(0.1));
    CHECK(c4 / samples == Approx(2.0 / double(n * (n + 1))).epsilon(0.1));
  }
}

TEMPLATE_TEST_CASE("adjoint phase gradients equal central finite differences", "[mzi]", mzi::phase_out, mzi::phase_in) {
  // L = Σ w_j |y_j|² + Re(conj(c) y) over a batch; ∂L/∂Re y + i ∂L/∂Im y = 2 w y + c.
  const std::size_t n = 5, batch = 3;
  rng g(31);
  for (auto topo : {mesh_topology::clements, mesh_topology::reck}) {
    unitary_mesh<TestType> m(n, topo);
    random_phases(m, g);
    photonic_imperfections imp;
    imp.coupler_sigma = 0.05;
    imp.insertion_loss_db = 0.2;
    imp.crosstalk = 0.03;
    imp.phase_error_sigma = 0.02;
    rng gi(2);
    m.set_imperfections(imp, gi);
    field_batch<double> x;
    x.assign(n, batch);
    for (auto& v : x.re) v = g.normal_double();
    for (auto& v : x.im) v = g.normal_double();
    std::vector<double> w(n);
    std::vector<cplx> c(n * batch);
    for (auto& v : w) v = g.normal_double();
    for (auto& v : c) v = cplx(g.normal_double(), g.normal_double());
    auto loss = [&](const unitary_mesh<TestType>& mm) {
      field_batch<double> y = x;
      mm.forward(y, mm.realise());
      double l = 0;
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t s = 0; s < batch; ++s) l += w[j] * std::norm(y.at(j, s)) + (std::conj(c[j * batch + s]) * y.at(j, s)).real();
      return l;
    };
    const mesh_realisation r = m.realise();
    field_batch<double> y = x, adj;
    m.forward(y, r);
    adj.assign(n, batch);
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t s = 0; s < batch; ++s) adj.set(j, s, std::conj(2 * w[j] * y.at(j, s) + c[j * batch + s]));
    mesh_phase_gradients grad;
    m.adjoint_gradients(r, y, adj, grad);
    // the sweep recovers the input fields
    for (std::size_t i = 0; i < x.re.size(); ++i) CHECK(y.re[i] == Approx(x.re[i]).margin(1e-10));
    const double h = 1e-6;
    auto fd = [&](int which, std::size_t k) {
      unitary_mesh<TestType> a = m, b = m;
      auto th = m.theta(), ph = m.phi(), sc = m.screen();
      std::vector<double>* v = which == 0 ? &th : (which == 1 ? &ph : &sc);
      (*v)[k] += h;
      a.set_phases(th, ph, sc);
      (*v)[k] -= 2 * h;
      b.set_phases(th, ph, sc);
      return (loss(a) - loss(b)) / (2 * h);
    };
    for (std::size_t k = 0; k < m.num_mzis(); ++k) {
      CHECK(grad.theta[k] == Approx(fd(0, k)).margin(1e-6));
      CHECK(grad.phi[k] == Approx(fd(1, k)).margin(1e-6));
    }
    for (std::size_t k = 0; k < n; ++k) CHECK(grad.screen[k] == Approx(fd(2, k)).margin(1e-6));
  }
}

TEST_CASE("coupler splitting errors make a mesh no longer exactly programmable", "[mzi]") {
  const std::size_t n = 8;
  rng g(41);
  const auto u = haar(n, g);
  double last = 1.0;
  for (double sigma : {0.0, 0.02, 0.05, 0.1}) {
    unitary_mesh<> m(n);
    photonic_imperfections imp;
    imp.coupler_sigma = sigma;
    rng gi(9);
    m.set_imperfections(imp, gi);
    m.program(u);  // the controller programs the ideal phases; the chip has its couplers
    const double f = fidelity(u, m.matrix(), n);
    INFO("sigma_bs = " << sigma << " fidelity = " << f);
    if (sigma == 0.0) {
      CHECK(f == Approx(1.0).margin(1e-12));
    } else {
      CHECK(f < 1.0 - 1e-4);
      CHECK(f < last);
    }
    CHECK(unitarity_error(m.matrix(), n) < 1e-12);  // still a unitary, just not the one asked
    last = f;
  }
}

TEST_CASE("thermal crosstalk follows (I + C) phi with nearest neighbours", "[mzi]") {
  const std::size_t n = 8;
  unitary_mesh<> m(n);
  // find a site with neighbours on both sides in its column
  std::size_t k0 = 0, col = 0;
  for (std::size_t k = 0; k < m.num_mzis(); ++k)
    if (m.sites()[k].mode == 2) {
      k0 = k;
      col = m.sites()[k].column;
    }
  std::vector<double> th(m.num_mzis(), 0.0), ph(m.num_mzis(), 0.0), sc(n, 0.0);
  th[k0] = 1.0;
  sc[3] = 0.5;
  m.set_phases(th, ph, sc);
  photonic_imperfections imp;
  imp.crosstalk = 0.01;
  rng gi(1);
  m.set_imperfections(imp, gi);
  const mesh_realisation r = m.realise();
  std::size_t touched = 0;
  for (std::size_t k = 0; k < m.num_mzis(); ++k) {
    const auto& s = m.sites()[k];
    if (k == k0) {
      CHECK(r.theta[k] == Approx(1.0));
    } else if (s.column == col && (s.mode == 0 || s.mode == 4)) {
      CHECK(r.theta[k] == Approx(0.01));
      ++touched;
    } else {
      CHECK(r.theta[k] == 0.0);
    }
  }
  CHECK(touched == 2);
  CHECK(r.screen_phase[2] == Approx(0.005));
  CHECK(r.screen_phase[4] == Approx(0.005));
  CHECK(r.screen_phase[3] == Approx(0.5));
  CHECK(r.screen_phase[0] == 0.0);
}

TEST_CASE("insertion loss attenuates each MZI by 10^(-IL/20)", "[mzi]") {
  const std::size_t n = 6;
  unitary_mesh<> m(n);
  // θ = π: every MZI in the bar state, light stays in its waveguide
  m.set_phases(std::vector<double>(m.num_mzis(), std::numbers::pi), std::vector<double>(m.num_mzis(), 0.3),
               std::vector<double>(n, 0.0));
  photonic_imperfections imp;
  imp.insertion_loss_db = 0.25;
  rng gi(1);
  m.set_imperfections(imp, gi);
  const auto u = m.matrix();
  for (std::size_t mode = 0; mode < n; ++mode) {
    std::size_t passes = 0;
    for (const auto& s : m.sites()) passes += (s.mode == mode || s.mode + 1 == mode) ? 1U : 0U;
    double power = 0;
    for (std::size_t i = 0; i < n; ++i) power += std::norm(u[i * n + mode]);
    CHECK(power == Approx(std::pow(10.0, -0.25 * double(passes) / 10.0)).epsilon(1e-12));
  }
  CHECK(imp.mzi_amplitude() == Approx(std::pow(10.0, -0.25 / 20)));
}

TEST_CASE("heater DAC quantises phi = gamma V^2 on 2^bits voltage levels", "[mzi]") {
  const unsigned bits = 6;
  const double two_pi = 2 * std::numbers::pi;
  double worst = 0;
  for (int k = 0; k <= 1000; ++k) {
    const double p = two_pi * k / 1000.0;
    const double q = quantize_heater_phase(p, bits, 2.0);
    const double v = std::sqrt(q / 2.0), dv = std::sqrt(two_pi / 2.0) / 63.0;
    CHECK(std::abs(v / dv - std::round(v / dv)) < 1e-9);  // on the voltage grid
    const double d = std::abs(q - p);
    worst = std::max(worst, std::min(d, two_pi - d));  // phases are 2π-periodic
  }
  CHECK(worst <= 2 * two_pi / 63.0);
  CHECK(quantize_heater_phase(1.234, 0) == Approx(1.234));
  CHECK(quantize_heater_phase(-0.5, 0) == Approx(two_pi - 0.5));
}

TEST_CASE("unitary meshes reject bad input before changing state", "[mzi]") {
  CHECK_THROWS_AS(unitary_mesh<>(0), pnn::error);
  unitary_mesh<> m(4);
  const auto before = m.theta();
  std::vector<cplx> not_square(12, cplx(0.5));
  CHECK_THROWS_WITH(m.program(not_square), Catch::Contains("square"));
  std::vector<cplx> not_unitary(16, cplx(0.5));
  CHECK_THROWS_WITH(m.program(not_unitary), Catch::Contains("not unitary"));
  auto th = m.theta();
  th[0] = std::nan("");
  CHECK_THROWS_WITH(m.set_phases(th, m.phi(), m.screen()), Catch::Contains("finite"));
  CHECK(m.theta() == before);
  photonic_imperfections imp;
  imp.insertion_loss_db = -0.1;
  rng g(1);
  CHECK_THROWS_WITH(m.set_imperfections(imp, g), Catch::Contains("loss"));
  imp = {};
  imp.coupler_sigma = std::nan("");
  CHECK_THROWS_AS(m.set_imperfections(imp, g), pnn::error);
}

}  // namespace tests_mzi
