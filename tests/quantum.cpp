// SPDX-License-Identifier: MIT
// Quantum circuits as a substrate: the state-vector simulator against closed forms, the
// parameter-shift rule against finite differences of the exact expectations, shot noise
// (unbiased, the binomial variance), the substrate protocol, training by parameter shift, and
// bad input.
#include <catch2/catch.hpp>

// GCC 12 reports false -Warray-bounds / -Wstringop-overflow in check_substrate's message
// concatenation (`std::string&& + const char*`, libstdc++'s inlined SSO copy) when it is
// instantiated for this substrate at -O2.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <cmath>
#include <numbers>
#include <vector>

#include <pnn/data/synthetic.hpp>
#include <pnn/nn/check_substrate.hpp>
#include <pnn/physics/energy.hpp>
#include <pnn/physics/quantum.hpp>
#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_quantum {

using namespace pnn;

namespace {
using qsv = physics::quantum::state_vector;
using qd = physics::basic_quantum_circuit<double>;
using tile_d = qd::tile<dynamic, dynamic>;

tile_d make_tile(std::size_t in, std::size_t out, qd::params p, std::uint64_t seed) {
  tile_d t;
  t.set_params(p);
  t.resize(in, out);
  rng g(seed);
  std::vector<double> w(in * out), b(out);
  for (auto& v : w) v = 2 * g.uniform_double() - 1;
  for (auto& v : b) v = 0.1 * (2 * g.uniform_double() - 1);
  rng gs = g.split(1), gp = g.split(2);
  t.set_weights(w.data(), b.data(), gs);
  t.prepare(gp);
  return t;
}

std::vector<double> read(const tile_d& t, const std::vector<double>& x, std::size_t n, std::uint64_t stream = 5) {
  std::vector<double> y(n * t.out_size());
  rng g(11, stream);
  t.read(x.data(), n, y.data(), g);
  return y;
}
}  // namespace

TEST_CASE("quantum state vector: rotations, entanglement and unitarity match closed forms", "[quantum]") {
  for (double a : {0.0, 0.3, 1.2, 2.9, -2.0}) {
    qsv s(1);
    s.ry(0, a);
    CHECK(s.expectation_z(0) == Approx(std::cos(a)).margin(1e-14));
    s.reset();
    s.rx(0, a);
    CHECK(s.expectation_z(0) == Approx(std::cos(a)).margin(1e-14));
    s.rz(0, 0.7);  // a phase: leaves every Z-basis probability alone
    CHECK(s.expectation_z(0) == Approx(std::cos(a)).margin(1e-14));
  }
  // A Bell pair: RY(π/2) makes |+⟩, CNOT entangles; ⟨Z⟩ = 0 on each, the outcomes are equal.
  qsv bell(2);
  bell.ry(0, std::numbers::pi / 2);
  bell.cnot(0, 1);
  CHECK(bell.expectation_z(0) == Approx(0).margin(1e-14));
  CHECK(bell.expectation_z(1) == Approx(0).margin(1e-14));
  CHECK(std::norm(bell.data()[0]) == Approx(0.5));
  CHECK(std::norm(bell.data()[3]) == Approx(0.5));
  CHECK(std::norm(bell.data()[1]) + std::norm(bell.data()[2]) == Approx(0).margin(1e-15));
  // CZ = (I ⊗ H) CNOT (I ⊗ H), with H = RY(π/2) then Z (up to a global phase on the target).
  {
    qsv a(2), b(2);
    for (auto* s : {&a, &b}) {
      s->ry(0, 1.1);
      s->rx(1, 0.4);
      s->rz(0, 0.9);
    }
    a.cz(0, 1);
    // H = X·RY(π/2) exactly: RY(π/2)|0⟩ = |+⟩, RY(π/2)|1⟩ = −|−⟩, then X fixes the sign pattern.
    auto hadamard = [](qsv& s, std::size_t q) {
      s.ry(q, std::numbers::pi / 2);
      s.apply(q, 0, 1, 1, 0);
    };
    hadamard(b, 1);
    b.cnot(0, 1);
    hadamard(b, 1);
    for (std::size_t i = 0; i < 4; ++i) CHECK(std::abs(a.data()[i] - b.data()[i]) < 1e-12);
  }
  // Unitarity: norm kept through a long random circuit, and undoing it returns |0…0⟩.
  qsv s(5);
  rng g(3);
  std::vector<std::pair<std::size_t, double>> gates;
  for (int k = 0; k < 200; ++k) {
    const std::size_t q = g.uniform_int(5);
    const double a = 6 * g.uniform_double() - 3;
    gates.emplace_back(q, a);
    (k % 3 == 0 ? s.rx(q, a) : k % 3 == 1 ? s.ry(q, a) : s.rz(q, a));
    if (k % 7 == 0) s.cz(q, (q + 1) % 5);
  }
  CHECK(s.norm_squared() == Approx(1).margin(1e-12));
  for (int k = 199; k >= 0; --k) {
    const auto [q, a] = gates[std::size_t(k)];
    if (k % 7 == 0) s.cz(q, (q + 1) % 5);  // self-inverse
    (k % 3 == 0 ? s.rx(q, -a) : k % 3 == 1 ? s.ry(q, -a) : s.rz(q, -a));
  }
  CHECK(std::abs(s.data()[0] - std::complex<double>(1, 0)) < 1e-10);
  CHECK_THROWS_AS(qsv(13), pnn::error);
  CHECK_THROWS_AS(qsv(0), pnn::error);
  CHECK_THROWS_AS(s.cz(1, 1), pnn::error);
  CHECK_THROWS_AS(s.ry(5, 0.1), pnn::error);
}

TEST_CASE("quantum shots: the estimate is unbiased with the binomial variance", "[quantum]") {
  qsv s(3);
  s.ry(0, 1.0);
  s.ry(1, 2.2);
  s.cnot(0, 2);
  const double z0 = s.expectation_z(0), z1 = s.expectation_z(1), z2 = s.expectation_z(2);
  const std::size_t shots = 64, trials = 4000;
  double m[3] = {0, 0, 0}, v0 = 0, c02 = 0;
  for (std::size_t t = 0; t < trials; ++t) {
    rng g(9, t);
    double z[3];
    s.sample_z(shots, 3, z, g);
    for (int q = 0; q < 3; ++q) m[q] += z[q] / double(trials);
    v0 += (z[0] - z0) * (z[0] - z0) / double(trials);
    c02 += (z[0] - z0) * (z[2] - z2) / double(trials);
  }
  const double se0 = std::sqrt((1 - z0 * z0) / double(shots * trials));
  CHECK(std::abs(m[0] - z0) < 4 * se0);
  CHECK(std::abs(m[1] - z1) < 4 * std::sqrt((1 - z1 * z1) / double(shots * trials)));
  CHECK(std::abs(m[2] - z2) < 4 * std::sqrt((1 - z2 * z2) / double(shots * trials)));
  // Var = (1 − z²)/S for one qubit; qubits 0 and 2 are perfectly correlated (CNOT copied the
  // bit), and the shared shots keep that: their estimates covary as fully as they vary.
  CHECK(v0 == Approx((1 - z0 * z0) / double(shots)).epsilon(0.1));
  CHECK(c02 == Approx(v0).epsilon(1e-12));
}

TEST_CASE("quantum circuit: the parameter-shift rule equals finite differences of the exact expectations",
          "[quantum]") {
  for (bool reupload : {true, false}) {
    CAPTURE(reupload);
    const std::size_t in = 3, out = 4, n = 3;
    const tile_d t = make_tile(in, out, {.layers = 3, .reupload = reupload}, 21);
    rng g(4);
    std::vector<double> x(n * in), delta(n * out), bias_grad(out);
    for (auto& v : x) v = 2 * g.uniform_double() - 1;
    for (auto& v : delta) v = 2 * g.uniform_double() - 1;
    for (auto& v : bias_grad) v = g.uniform_double();
    const double s = 0.7;
    std::vector<double> grad(t.parameter_count());
    rng gg(5);
    t.parameter_gradient(x.data(), delta.data(), n, s, bias_grad.data(), grad.data(), gg);
    // L(θ) = s Σ_r δ_r · y_r, differentiated centrally in every parameter (W, θ; b has no read).
    auto loss = [&](const tile_d& tt) {
      const auto y = read(tt, x, n);
      double l = 0;
      for (std::size_t k = 0; k < y.size(); ++k) l += s * delta[k] * y[k];
      return l;
    };
    std::vector<double> theta(t.parameter_count());
    t.get_parameters(theta.data());
    const std::size_t nb = t.parameter_count() - out;
    double worst = 0, scale = 0;
    for (std::size_t k = 0; k < nb; ++k) {
      const double h = 1e-5;
      tile_d tp = t, tm = t;
      std::vector<double> p = theta;
      p[k] += h;
      tp.set_parameters(p.data());
      p[k] -= 2 * h;
      tm.set_parameters(p.data());
      const double fd = (loss(tp) - loss(tm)) / (2 * h);
      worst = std::max(worst, std::abs(fd - grad[k]));
      scale = std::max(scale, std::abs(fd));
    }
    CHECK(worst / scale < 1e-8);
    for (std::size_t j = 0; j < out; ++j) CHECK(grad[nb + j] == bias_grad[j]);
  }
}

TEST_CASE("quantum circuit: passes check_substrate, and its VJP is the parameter-shift gradient of the inputs",
          "[quantum]") {
  for (std::size_t shots : {std::size_t{0}}) {
    const auto rep = check_substrate<qd>({.layers = 2, .shots = shots}, {.in = 3, .out = 4, .linear = false});
    INFO(rep.summary());
    CHECK(rep.passed());
    CHECK(rep.vjp_error < 1e-6);
  }
  // With shots, reads are random but reproducible from their stream.
  const tile_d t = make_tile(2, 3, {.layers = 2, .shots = 200}, 8);
  const std::vector<double> x{0.3, -0.5};
  CHECK(read(t, x, 1, 5) == read(t, x, 1, 5));
  CHECK(read(t, x, 1, 5) != read(t, x, 1, 6));
  static_assert(substrate<physics::quantum_circuit>);
  static_assert(!tile_hooks::computes_transposed_exactly<tile_d>);
}

TEST_CASE("quantum circuit: the parameter-shift gradient from finite shots is unbiased", "[quantum]") {
  const std::size_t in = 2, out = 3;
  const tile_d exact = make_tile(in, out, {.layers = 2}, 31);
  tile_d noisy = exact;
  noisy.set_params({.layers = 2, .shots = 50});
  std::vector<double> x{0.4, -0.8}, delta{1.0, -0.5, 0.25};
  const std::size_t np = exact.parameter_count();
  std::vector<double> g0(np), mean(np, 0.0), var(np, 0.0), gk(np);
  rng g(1);
  exact.parameter_gradient(x.data(), delta.data(), 1, 1.0, nullptr, g0.data(), g);
  const std::size_t trials = 600;
  for (std::size_t t = 0; t < trials; ++t) {
    rng gt(77, t);
    noisy.parameter_gradient(x.data(), delta.data(), 1, 1.0, nullptr, gk.data(), gt);
    for (std::size_t k = 0; k < np; ++k) {
      mean[k] += gk[k] / double(trials);
      var[k] += (gk[k] - g0[k]) * (gk[k] - g0[k]) / double(trials);
    }
  }
  std::size_t checked = 0;
  for (std::size_t k = 0; k < np - out; ++k) {
    if (var[k] == 0) continue;  // a parameter with no effect (exact zero both ways)
    const double se = std::sqrt(var[k] / double(trials));
    CHECK(std::abs(mean[k] - g0[k]) < 4.5 * se);
    ++checked;
  }
  CHECK(checked > 10);
}

TEST_CASE("quantum circuit: backprop by parameter shift trains a 4-qubit two-moons classifier", "[quantum]") {
  rng gd(2024);
  const data::dataset train_set = data::two_moons(400, gd), test_set = data::two_moons(400, gd);
  using q = physics::basic_quantum_circuit<float>;
  network<dense<2, 4, q, noise::none, act::identity>, dense<4, 2, physics::digital, noise::none, act::identity>> net(
      seed{7}, q::params{.layers = 3});
  const double before = evaluate(net, loss::softmax_cross_entropy{}, test_set).accuracy;
  const std::vector<double> angles0(layer<0>(net).tile.angles().begin(), layer<0>(net).tile.angles().end());
  learn::backprop<optim::adam> rule{{.optimizer = {.learning_rate = 0.1f}}};
  train(net, rule, loss::softmax_cross_entropy{}, train_set,
        {.epochs = 20, .batch = 16, .seed = 3, .progress = progress_mode::never});
  const double after = evaluate(net, loss::softmax_cross_entropy{}, test_set).accuracy;
  INFO("before " << before << ", after " << after);
  CHECK(after >= 0.9);
  // The circuit's angles moved: the rotations were trained, not only the encoding and readout.
  const auto th = layer<0>(net).tile.angles();
  REQUIRE(th.size() == 24);
  double moved = 0;
  for (std::size_t k = 0; k < th.size(); ++k) moved = std::max(moved, std::abs(th[k] - angles0[k]));
  CHECK(moved > 0.05);
}

TEST_CASE("quantum circuit: counts executions and shots, and rejects bad input", "[quantum]") {
  tile_d t = make_tile(2, 3, {.layers = 2, .shots = 10}, 4);
  cost_counter c;
  t.attach_cost_counter(&c);
  std::vector<double> x{0.1, 0.2, 0.3, 0.4}, y(6), dy{1, 0, 0, 0, 1, 0}, dx(4);
  rng g(1);
  t.read(x.data(), 2, y.data(), g);
  CHECK(c.totals().reads == 2);
  CHECK(c.totals().circuit_executions == 2);
  CHECK(c.totals().circuit_shots == 20);
  c.reset();
  std::vector<double> grad(t.parameter_count());
  t.parameter_gradient(x.data(), dy.data(), 2, 1.0, nullptr, grad.data(), g);
  // Two executions per rotation gate and sample: 3 qubits × (2 encodings + 2 × 2 variational).
  CHECK(c.totals().circuit_executions == 2 * 2 * 3 * (2 + 4));
  CHECK(c.totals().reads == 0);
  c.reset();
  t.read_vjp(x.data(), dy.data(), 2, dx.data(), g);
  CHECK(c.totals().circuit_executions == 2 * 2 * 3 * 2);
  CHECK(estimate_energy(c.totals(), {}, energy_model{}).quantum ==
        Approx(20e3 * 100e-6 * double(c.totals().circuit_shots)));

  // Bad parameters: nothing changes.
  std::vector<double> before(t.parameter_count()), bad(t.parameter_count()), after(t.parameter_count());
  t.get_parameters(before.data());
  bad = before;
  bad[5] = std::nan("");
  CHECK_THROWS_AS(t.set_parameters(bad.data()), pnn::error);
  t.get_parameters(after.data());
  CHECK(after == before);
  CHECK_THROWS_AS(t.read_transposed(dy.data(), 1, dx.data(), g), pnn::error);
  tile_d big;
  CHECK_THROWS_AS(big.resize(2, 13), pnn::error);
  CHECK_THROWS_AS(big.set_params({.layers = 0}), pnn::error);
  // A dense weight-space estimate cannot be mapped through a nonlinear read: a clear error.
  using q = physics::basic_quantum_circuit<double>;
  network<dense<2, 3, q, noise::none, act::identity>> net(seed{1});
  gradients<decltype(net)> grad_net(net);
  grad_net[0].weight.fill(0.1);
  rng gm(2);
  CHECK_THROWS_WITH(pnn::detail::map_to_tile_parameters(net, grad_net, gm),
                    Catch::Contains("can map only a factored estimate"));
}

TEST_CASE("quantum circuit: reads and parameter-shift gradients are the same on 1, 2 and 3 threads",
          "[quantum][threads]") {
  const tile_d t = make_tile(3, 4, {.layers = 2, .shots = 64}, 12);
  const std::size_t n = 9;
  std::vector<double> x(n * 3), dy(n * 4);
  rng g(2);
  for (auto& v : x) v = 2 * g.uniform_double() - 1;
  for (auto& v : dy) v = 2 * g.uniform_double() - 1;
  auto run = [&](unsigned threads) {
    set_num_threads(threads);
    std::vector<double> out(n * 4), dx(n * 3), grad(t.parameter_count());
    rng g1(1, 1), g2(1, 2), g3(1, 3);
    t.read(x.data(), n, out.data(), g1);
    t.read_vjp(x.data(), dy.data(), n, dx.data(), g2);
    t.parameter_gradient(x.data(), dy.data(), n, 0.5, nullptr, grad.data(), g3);
    set_num_threads(0);
    out.insert(out.end(), dx.begin(), dx.end());
    out.insert(out.end(), grad.begin(), grad.end());
    return out;
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}

}  // namespace tests_quantum
