// SPDX-License-Identifier: MIT
// Spin-torque nano-oscillators as a black-box layer: the auto-oscillator model against its
// closed forms (threshold, steady power, frequency tuned by current), mutual synchronisation,
// the substrate protocol, the cost hook, physics-aware training through a learned twin, and
// bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <pnn/learn/physics_aware.hpp>
#include <pnn/nn/check_substrate.hpp>
#include <pnn/physics/energy.hpp>
#include <pnn/physics/spintronic.hpp>
#include <pnn/pnn.hpp>
#include <pnn/train/surrogate.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_spintronic {

using namespace pnn;

namespace {
using stno = physics::spin_torque_oscillators<double>;

// Runs `model` on one sample with W = 0 and biases `b` (so ζ_i = I_dc + b_i): one output per oscillator.
std::vector<double> run(const stno& model, const std::vector<double>& b, std::uint64_t stream = 1) {
  const std::vector<double> x{0.0}, w(b.size(), 0.0);
  const physics::black_box_call<double> c{x.data(), 1, 1, b.size(), w.data(), b.data()};
  rng g(5, stream);
  return model(c, g);
}
}  // namespace

TEST_CASE("spin-torque oscillator: threshold, steady power and current-tuned frequency match the closed forms",
          "[spintronic]") {
  stno m{.nonlinear_damping = 1.0, .frequency_shift = 3.0, .detuning = {0.5}, .duration = 40, .steps = 800};
  for (double zeta : {1.5, 2.0, 3.0}) {
    CAPTURE(zeta);
    m.bias_current = zeta;
    const double p0 = (zeta - 1) / (zeta + m.nonlinear_damping);
    m.readout = physics::stno_readout::power;
    CHECK(run(m, {0.0})[0] == Approx(p0).epsilon(1e-4));
    // The current sets the power, and the power the frequency: ω = δ + N p₀ above ω₀.
    m.readout = physics::stno_readout::frequency;
    CHECK(run(m, {0.0})[0] == Approx(0.5 + 3.0 * p0).epsilon(1e-4));
  }
  // Below threshold the damping wins: the precession dies out.
  m.bias_current = 0.5;
  m.readout = physics::stno_readout::power;
  CHECK(run(m, {0.0})[0] < 1e-8);
  // The drive is the bias current plus W x + b: b = 1.5 on top of I_dc = 0.5 is ζ = 2.
  CHECK(run(m, {1.5})[0] == Approx(1.0 / 3.0).epsilon(1e-4));
}

TEST_CASE("spin-torque oscillators: coupled through their emitted currents, detuned oscillators lock", "[spintronic]") {
  stno m{.bias_current = 2.0, .detuning = {-0.1, 0.1}, .duration = 80, .steps = 1600};
  m.readout = physics::stno_readout::frequency;
  m.coupling = 0.0;
  const auto free = run(m, {0.0, 0.0});
  CHECK(free[1] - free[0] == Approx(0.2).epsilon(1e-3));
  m.coupling = 0.5;
  const auto locked = run(m, {0.0, 0.0});
  CHECK(std::abs(locked[1] - locked[0]) < 1e-3);
  // A detuning far beyond the coupling: no locking.
  m.detuning = {-2.0, 2.0};
  m.coupling = 0.1;
  const auto apart = run(m, {0.0, 0.0});
  CHECK(apart[1] - apart[0] > 3.0);
}

TEST_CASE("spin-torque oscillators: the layer passes check_substrate, reports its running time, and its gaps are "
          "static draws",
          "[spintronic]") {
  using box = physics::spintronic_box<double>;
  const auto rep = check_substrate<box>({}, {.in = 3, .out = 4, .linear = false});
  INFO(rep.summary());
  CHECK(rep.passed());

  network<dense<3, 4, box, noise::none, act::identity>> net(seed{2});
  cost_counter c;
  CHECK(attach_cost_counter(net, &c) == 1);
  const xt::xtensor<double, 2> x = {{0.1, 0.2, 0.3}, {0.0, -0.4, 0.2}};
  (void)forward(net, x);
  CHECK(c.totals().reads == 2);
  CHECK(c.totals().oscillator_time == Approx(2 * 4 * 12.0));
  CHECK(c.totals().oscillator_run_time == Approx(2 * 12.0));
  const energy_model em{};
  CHECK(estimate_energy(c.totals(), {}, em).oscillators == Approx(2e-3 * 50e-9 * 96.0));

  // The spreads are drawn once from the seed: the same instance reads the same; noise per read.
  stno gap{.frequency_spread = 0.3, .coupling_spread = 0.2, .seed = 9};
  const auto a = run(gap, {0.2, -0.1, 0.4}), b = run(gap, {0.2, -0.1, 0.4}, 2);
  CHECK(a == b);
  CHECK(a != run(stno{}, {0.2, -0.1, 0.4}));
  gap.thermal_noise = 0.05;
  CHECK(run(gap, {0.2, -0.1, 0.4}, 1) == run(gap, {0.2, -0.1, 0.4}, 1));
  CHECK(run(gap, {0.2, -0.1, 0.4}, 1) != run(gap, {0.2, -0.1, 0.4}, 2));

  // Bad parameters are refused with a clear error.
  CHECK_THROWS_AS(run(stno{.damping = 0}, {0.0}), pnn::error);
  CHECK_THROWS_AS(run(stno{.thermal_noise = -1}, {0.0}), pnn::error);
  CHECK_THROWS_AS(run(stno{.initial_amplitude = 0}, {0.0}), pnn::error);
}

TEST_CASE("spin-torque oscillators: physics-aware training through a learned twin classifies four blobs",
          "[spintronic]") {
  using box = physics::spintronic_box<float>;
  using net_t = network<dense<dynamic, dynamic, box>, dense<dynamic, dynamic, physics::digital>>;
  // The physical oscillators differ from any model: spread frequencies and couplings, thermal noise.
  const physics::spin_torque_oscillators<float> real{
      .frequency_spread = 0.2, .coupling_spread = 0.1, .thermal_noise = 0.02, .seed = 3};
  auto make = [&] { return net_t({2, 4, 4}, seed{5}, box::params{.model = real}); };
  rng g(3);
  const data::split d{data::gaussian_blobs(600, 2, 4, g, 0.2f), data::gaussian_blobs(500, 2, 4, g, 0.2f)};
  learn::surrogate_report rep;
  const net_t probe = make();
  auto s = learn::fit_surrogate(layer<0>(probe),
                                {.hidden1 = 64, .hidden2 = 64, .epochs = 40, .batch = 32, .learning_rate = 1e-2f,
                                 .samples = 3000, .input = learn::surrogate_input::drive, .drive_sd = 1.5},
                                &rep);
  CHECK(rep.validation_error < 0.2);
  learn::surrogate_twin twin;
  twin.set(0, std::move(s));
  net_t net = make();
  learn::physics_aware<optim::adam, learn::surrogate_twin> pat{std::move(twin), optim::adam{.learning_rate = 0.02f}};
  const auto h = train(net, pat, loss::softmax_cross_entropy{}, d.train,
                       {.epochs = 12, .batch = 32, .seed = 1, .test = &d.test, .progress = progress_mode::never});
  CHECK(h.back().test_accuracy >= 0.9);
}

TEST_CASE("spin-torque oscillators: a batch reads the same on 1, 2 and 3 threads", "[spintronic][threads]") {
  const stno m{.frequency_spread = 0.2, .coupling_spread = 0.1, .thermal_noise = 0.05, .seed = 4};
  const std::size_t n = 7, in = 3, out = 5;
  std::vector<double> x(n * in), w(out * in), b(out, 0.1);
  rng g(6);
  for (auto& v : x) v = 2 * g.uniform_double() - 1;
  for (auto& v : w) v = g.uniform_double();
  const physics::black_box_call<double> c{x.data(), n, in, out, w.data(), b.data()};
  auto run = [&](unsigned threads) {
    set_num_threads(threads);
    rng gr(3, 9);
    auto y = m(c, gr);
    set_num_threads(0);
    return y;
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}

}  // namespace tests_spintronic
