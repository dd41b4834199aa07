// SPDX-License-Identifier: MIT
// The cost hook of the substrate protocol: tiles report what their physics did (vectors read,
// MACs, converter operations, pulses, parameter writes) into an attached counter, the counts
// match the work done, and nothing is counted when no counter is attached.
#include <catch2/catch.hpp>

#include <cstdint>
#include <thread>
#include <vector>

#include <pnn/pnn.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/physics/energy.hpp>
#include <pnn/simd/work.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_cost {

using namespace pnn;

namespace {
xt::xtensor<float, 2> batch(std::size_t n, std::size_t k, std::uint64_t s, float scale = 0.5f) {
  rng g(s, 7);
  xt::xtensor<float, 2> x({n, k});
  for (auto& v : x) v = scale * (2 * g.uniform() - 1);
  return x;
}
}  // namespace

TEST_CASE("a crossbar reports reads, MACs, conversions and pulses into an attached counter", "[cost][crossbar]") {
  using xbar = physics::crossbar<physics::devices::constant_step>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::tanh>, dense<dynamic, dynamic, xbar, noise::none>>;
  xbar::params p;
  p.forward.bound_management = p.backward.bound_management = physics::io_bound_management::none;
  net_t net({6, 5, 3}, seed{1}, p);
  const auto x = batch(4, 6, 2);
  xt::xtensor<float, 2> t = xt::zeros<float>({4, 3});
  for (std::size_t r = 0; r < 4; ++r) t(r, r % 3) = 1;
  rng g(3);

  cost_counter c;
  (void)forward(net, x, g);  // unattached: nothing to count, nothing counted
  CHECK(c.totals() == physical_events{});
  REQUIRE(attach_cost_counter(net, &c) == 2);

  (void)forward(net, x, g);
  physical_events e = c.totals();
  CHECK(e.reads == 4 + 4);
  CHECK(e.macs == 4 * (6 * 5) + 4 * (5 * 3));
  CHECK(e.dac_conversions == 4 * 6 + 4 * 5);  // one per input value of each vector
  CHECK(e.adc_conversions == 4 * 5 + 4 * 3);
  CHECK(e.transposed_reads == 0);
  CHECK(e.pulses == 0);

  // A backprop step: one forward pass, the second layer read transposed (the first layer's
  // transposed read is not needed), and pulse trains into both layers.
  c.reset();
  learn::backprop<> bp{{.optimizer = {.learning_rate = 0.1f}}};
  (void)bp.step(net, x, t, loss::softmax_cross_entropy{}, g);
  e = c.totals();
  CHECK(e.reads == 8);
  CHECK(e.transposed_reads == 4);
  CHECK(e.macs == 4 * 30 + 4 * 15 + 4 * 15);
  CHECK(e.pulses > 0);

  // Perfect periphery: no converters.
  c.reset();
  xbar::params perfect;
  perfect.forward.is_perfect = perfect.backward.is_perfect = true;
  net_t ideal({6, 5, 3}, seed{1}, perfect);
  attach_cost_counter(ideal, &c);
  (void)forward(ideal, x, g);
  CHECK(c.totals().reads == 8);
  CHECK(c.totals().dac_conversions == 0);
  CHECK(c.totals().adc_conversions == 0);

  // Detached: counting stops.
  attach_cost_counter(net, nullptr);
  c.reset();
  (void)forward(net, x, g);
  CHECK(c.totals() == physical_events{});
}

TEST_CASE("pulse counts reported equal the pulses the devices received", "[cost][crossbar]") {
  // Constant-step devices without variation move by exactly dw_min per pulse, away from their
  // bounds: the number of pulses is |ΔW| / dw_min summed over devices.
  using xbar = physics::crossbar<physics::devices::constant_step>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  xbar::params p;
  p.update = physics::update_mode::deterministic_pulses;
  p.device.dw_min_dtod = p.device.dw_min_std = p.device.up_down_dtod = 0;
  p.device.w_min_dtod = p.device.w_max_dtod = 0;
  net_t net({4, 3}, seed{2}, p);
  rng gw(1);
  const std::vector<float> zeros(12, 0.0f);
  layer<0>(net).tile.set_weights(zeros.data(), zeros.data(), gw);  // far from the bounds
  std::vector<float> w0(12), w1(12);
  layer<0>(net).tile.effective_weights(w0.data());
  cost_counter c;
  attach_cost_counter(net, &c);
  gradients<net_t> update(net);
  for (std::size_t k = 0; k < 12; ++k) update[0].weight.data()[k] = float(int(k % 5) - 2) * 3 * p.device.dw_min;
  rng g(4);
  program(net, update, g);
  layer<0>(net).tile.effective_weights(w1.data());
  double moved = 0;
  for (std::size_t k = 0; k < 12; ++k) moved += std::abs(double(w1[k]) - double(w0[k]));
  CHECK(c.totals().pulses == 3 * (2 + 1 + 0 + 1 + 2 + 2 + 1 + 0 + 1 + 2 + 2 + 1));
  CHECK(c.totals().pulse_slots == 3 * 2);  // every device pulses in parallel: the largest count
  CHECK(moved / p.device.dw_min == Approx(double(c.totals().pulses)).epsilon(1e-3));
}

TEST_CASE("an MZI mesh and a resistor network report reads and parameter writes; a digital tile reports none",
          "[cost]") {
  {
    using mesh = physics::basic_mzi_mesh<double>;
    network<dense<dynamic, dynamic, mesh, noise::none, act::identity>> net({4, 3}, seed{1});
    cost_counter c;
    REQUIRE(attach_cost_counter(net, &c) == 1);
    xt::xtensor<double, 2> x = xt::ones<double>({2, 4});
    rng g(1);
    (void)forward(net, x, g);
    CHECK(c.totals().reads == 2);
    CHECK(c.totals().macs == 2 * 4 * 4);  // N = max(In, Out) modes
    auto& tile = layer<0>(net).tile;
    std::vector<double> theta(tile.parameter_count());
    tile.get_parameters(theta.data());
    tile.set_parameters(theta.data());
    CHECK(c.totals().parameter_writes == tile.parameter_count() - 3);  // phases and attenuators, not the bias
  }
  {
    using rsub = physics::basic_resistor_substrate<double>;
    network<dense<dynamic, dynamic, rsub, noise::none, act::identity>> net({4, 2}, seed{1});
    cost_counter c;
    REQUIRE(attach_cost_counter(net, &c) == 1);
    xt::xtensor<double, 2> x = xt::ones<double>({3, 4});
    rng g(1);
    (void)forward(net, x, g);
    CHECK(c.totals().reads == 3);
    CHECK(c.totals().macs == 3 * layer<0>(net).tile.network().num_edges());
    learn::weight_perturbation<> wp{{.optimizer = {.learning_rate = 0.01f}, .sigma = 1e-3, .num_perturbations = 1}};
    c.reset();
    xt::xtensor<double, 2> t = xt::zeros<double>({3, 2});
    (void)wp.step(net, x, t, loss::mse{}, g);
    // Central differences: perturb +, perturb −, restore, then the step: four writes of every
    // conductance.
    CHECK(c.totals().parameter_writes == 4 * layer<0>(net).tile.parameter_count());
  }
  {
    network<dense<dynamic, dynamic, physics::digital, noise::none, act::identity>> net({4, 2}, seed{1});
    cost_counter c;
    CHECK(attach_cost_counter(net, &c) == 0);
  }
}

TEST_CASE("const reads from several threads report into one counter without loss", "[cost][concurrent]") {
  using xbar = physics::crossbar<physics::devices::ideal>;
  network<dense<dynamic, dynamic, xbar, noise::none, act::identity>> net({8, 4}, seed{1});
  cost_counter c;
  attach_cost_counter(net, &c);
  const auto x = batch(3, 8, 5);
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < 4; ++t)
    pool.emplace_back([&, t] {
      for (int r = 0; r < 50; ++r) {
        rng g(t, std::uint64_t(r));
        (void)forward(net, x, g);
      }
    });
  for (auto& th : pool) th.join();
  CHECK(c.totals().reads == 4 * 50 * 3);
  CHECK(c.totals().macs == 4 * 50 * 3 * 32);
}

TEST_CASE("closed-form counts of a crossbar read: conversions by their levels, the array drive from the conductances",
          "[cost][energy][crossbar]") {
  using xbar = physics::crossbar<physics::devices::ideal>;
  SECTION("perfect periphery: Σ G x² over the driven cells, no converters") {
    xbar::tile<dynamic, dynamic> t(xbar::params::ideal());
    t.resize(3, 2);
    const std::vector<float> w{0.4f, -0.2f, 0.0f, 0.1f, 0.3f, -0.5f}, b(2, 0.0f);
    rng g(1);
    t.set_weights(w.data(), b.data(), g);
    const std::vector<float> x{1.0f, 0.5f, -1.0f, 0.0f, 1.0f, 0.5f};  // two vectors
    std::vector<float> y(4);
    cost_counter c;
    t.attach_cost_counter(&c);
    t.read(x.data(), 2, y.data(), g);
    const physical_events e = c.totals();
    CHECK(e.reads == 2);
    CHECK(e.array_vectors == 2);
    CHECK(e.dac_conversions == 0);
    CHECK(e.adc_levels == 0);
    // g_ref = 25 µS per weight (ideal device: range 1, g_min 0): G⁺ + G⁻ = 25·|w| per device.
    // Column sums: 25·(0.4 + 0.1), 25·(0.2 + 0.3), 25·(0 + 0.5) = 12.5, 12.5, 12.5 µS.
    const double want = 12.5 * (1.0 + 0.25 + 1.0) + 12.5 * (0.0 + 1.0 + 0.25);
    CHECK(e.array_drive == Approx(want).epsilon(1e-6));
    std::vector<float> dx(6);
    c.reset();
    const std::vector<float> dy{1.0f, -1.0f};
    t.read_transposed(dy.data(), 1, dx.data(), g);
    // Rows driven: Σ_i G of row 0 = 25·(0.4 + 0.2 + 0) = 15, row 1 = 25·(0.1 + 0.3 + 0.5) = 22.5.
    CHECK(c.totals().transposed_reads == 1);
    CHECK(c.totals().array_drive == Approx(15.0 + 22.5).epsilon(1e-6));
  }
  SECTION("default periphery: one DAC per input and ADC per output, 2^bits steps each") {
    xbar::params p;
    p.forward.bound_management = physics::io_bound_management::none;
    xbar::tile<dynamic, dynamic> t(p);
    t.resize(5, 3);
    rng g(2);
    std::vector<float> w(15, 0.1f), b(3, 0.0f), x(4 * 5, 0.3f), y(4 * 3);
    t.set_weights(w.data(), b.data(), g);
    cost_counter c;
    t.attach_cost_counter(&c);
    t.read(x.data(), 4, y.data(), g);
    const physical_events e = c.totals();
    CHECK(e.dac_conversions == 4 * 5);
    CHECK(e.adc_conversions == 4 * 3);
    CHECK(e.dac_levels == 4 * 5 * (std::uint64_t{1} << p.forward.inp_res));
    CHECK(e.adc_levels == 4 * 3 * (std::uint64_t{1} << p.forward.out_res));
    // Noise management scales each vector to abs-max 1: every u = 1, each column 3·0.1·25 µS.
    CHECK(e.array_drive == Approx(4 * 5 * 7.5).epsilon(1e-3));
  }
}

TEST_CASE("the energy model reproduces hand-computed joules and seconds from its parameters", "[cost][energy]") {
  physical_events e;
  e.array_vectors = 10;
  e.array_drive = 2000;  // µS
  e.dac_levels = 1000;
  e.adc_levels = 4000;
  e.pulses = 50;
  e.pulse_slots = 5;
  e.optical_vectors = 0;
  simd::kernel_work w{1000000, 4000};
  energy_model m;
  const energy_estimate r = estimate_energy(e, w, m);
  CHECK(r.array == Approx(0.2 * 0.2 * 2000e-6 * 10e-9));  // V²·ΣG u²·t = 8e-16 J
  CHECK(r.converters == Approx(1e-15 * 1000 + 10e-15 * 4000));
  CHECK(r.programming == Approx(50 * 1e-12));
  CHECK(r.digital == Approx(1e6 * 2.3e-12 + 4000 * 2.5e-12));
  CHECK(r.latency == Approx(10 * 20e-9 + 5 * 10e-9 + 1e6 / 1e11));
  CHECK(r.total() == Approx(r.array + r.converters + r.programming + r.digital));
  // Photonic and resistive terms.
  physical_events o;
  o.optical_vectors = 3;
  o.optical_channels = 12;
  o.held_element_vectors = 60;
  o.parameter_writes = 7;
  o.settled_vectors = 0;
  const energy_estimate q = estimate_energy(o, {}, m);
  CHECK(q.optical == Approx(12 * 1e-12 + 60 * 10e-3 * 1e-9));
  CHECK(q.programming == Approx(7 * 1e-12));
  CHECK(q.latency == Approx(3 * 1e-9));
  physical_events s;
  s.settled_vectors = 2;
  s.dissipation = 500;  // µW at 1 V sources
  m.source_voltage = 0.5;
  CHECK(estimate_energy(s, {}, m).resistive == Approx(500e-6 * 0.25 * 1e-6));
  CHECK(energy_model::gpu().flop_energy == Approx(400.0 / 19.5e12));
  m.read_time = -1;
  CHECK_THROWS_WITH(estimate_energy(e, w, m), Catch::Contains("finite and >= 0"));
}

TEST_CASE("a resistor network reports the power it dissipates; a mesh its channels and held elements", "[cost][energy]") {
  {
    // One source, one output: edges source→output (k₁) and output→ground (k₂). V_out =
    // k₁/(k₁ + k₂)·V, and the power is V²·k₁k₂/(k₁ + k₂).
    using rsub = physics::basic_resistor_substrate<double>;
    rsub::tile<dynamic, dynamic> t;
    t.resize(1, 1);
    const auto k = t.network().conductances();
    REQUIRE(k.size() == 2);
    cost_counter c;
    t.attach_cost_counter(&c);
    const std::vector<double> x{2.0, -1.0};
    std::vector<double> y(2);
    rng g(1);
    t.read(x.data(), 2, y.data(), g);
    const double k1 = k[0], k2 = k[1];
    CHECK(c.totals().settled_vectors == 2);
    CHECK(c.totals().dissipation == Approx((4.0 + 1.0) * k1 * k2 / (k1 + k2)).epsilon(1e-9));
  }
  {
    using mesh = physics::basic_mzi_mesh<double>;
    network<dense<dynamic, dynamic, mesh, noise::none, act::identity>> net({4, 3}, seed{1});
    cost_counter c;
    attach_cost_counter(net, &c);
    xt::xtensor<double, 2> x = xt::ones<double>({5, 4});
    rng g(1);
    (void)forward(net, x, g);
    CHECK(c.totals().optical_vectors == 5);
    CHECK(c.totals().optical_channels == 5 * 4);
    CHECK(c.totals().held_element_vectors == 5 * (layer<0>(net).tile.parameter_count() - 3));
  }
}

TEST_CASE("simulated physics is not digital work; digital layers and a rule's gradients are", "[cost][energy]") {
#if PNN_COUNT_KERNEL_WORK
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  network<dense<dynamic, dynamic, xbar, noise::none, act::identity>> xnet({8, 4}, seed{1});
  network<dense<dynamic, dynamic, physics::digital, noise::none, act::identity>> dnet({8, 4}, seed{1});
  const auto x = batch(5, 8, 3);
  rng g(2);
  auto w0 = simd::kernel_work_on_this_thread();
  (void)forward(xnet, x, g);
  CHECK((simd::kernel_work_on_this_thread() - w0).flops == 0);
  w0 = simd::kernel_work_on_this_thread();
  (void)forward(dnet, x, g);
  CHECK((simd::kernel_work_on_this_thread() - w0).flops == 2 * 5 * 8 * 4);
  // A backprop step on the crossbar: the weight gradient δᵀh is computed digitally (one GEMM);
  // the reads and the pulses are physics.
  xt::xtensor<float, 2> t = xt::zeros<float>({5, 4});
  learn::backprop<> bp{{.optimizer = {.learning_rate = 0.1f}}};
  w0 = simd::kernel_work_on_this_thread();
  (void)bp.step(xnet, x, t, loss::mse{}, g);
  const auto w = simd::kernel_work_on_this_thread() - w0;
  CHECK(w.flops <= 2 * 5 * 8 * 4);  // at most the gradient GEMM (factored updates skip it)
#endif
}

TEST_CASE("train counts the training steps' events per epoch, not the evaluation", "[cost][energy][train]") {
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  net_t net({6, 3}, seed{4});
  data::dataset d;
  d.inputs = batch(40, 6, 9);
  d.targets = xt::zeros<float>({40, 3});
  for (std::size_t i = 0; i < 40; ++i) d.targets(i, i % 3) = 1;
  d.name = "tiny";
  cost_counter c;
  learn::backprop<> bp{{.optimizer = {.learning_rate = 0.05f}}};
  const auto h = train(net, bp, loss::mse{}, d,
                       {.epochs = 2, .batch = 8, .test = &d, .progress = progress_mode::never, .cost = &c});
  REQUIRE(h.size() == 2);
  for (const auto& m : h) {
    CHECK(m.events.reads == 40);  // one forward read per training sample; the test pass is not counted
    CHECK(m.events.transposed_reads == 0);  // a single layer: no dx needed
    CHECK(m.events.pulses > 0);
  }
  CHECK(c.totals().reads == 80);
  // Detached afterwards: reads no longer count.
  rng g(1);
  (void)forward(net, d.inputs, g);
  CHECK(c.totals().reads == 80);
}

TEST_CASE("a perturbative rule's writes into a crossbar are counted and priced", "[cost][energy][crossbar]") {
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  network<dense<dynamic, dynamic, xbar, noise::none, act::identity>> net({5, 3}, seed{2});
  cost_counter c;
  attach_cost_counter(net, &c);
  const auto x = batch(4, 5, 6);
  xt::xtensor<float, 2> t = xt::zeros<float>({4, 3});
  rng g(3);
  learn::weight_perturbation<> wp{{.optimizer = {.learning_rate = 0.01f}, .sigma = 1e-3, .num_perturbations = 1}};
  (void)wp.step(net, x, t, loss::mse{}, g);
  // Central differences: W perturbed +, perturbed −, restored — three writes of every device
  // (the bias is digital); the step itself is pulses.
  CHECK(c.totals().parameter_writes == 3 * 15);
  CHECK(estimate_energy(c.totals(), {}, energy_model{}).programming >= 3 * 15 * 1e-12);
}

TEST_CASE("deploying a twin onto a crossbar or a resistor network is counted as one write of every device",
          "[cost][energy][crossbar]") {
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  network<dense<dynamic, dynamic, physics::digital, noise::none, act::identity>,
          dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>
      twin({6, 4, 3}, seed{5});
  network<dense<dynamic, dynamic, xbar, noise::none, act::identity>, dense<dynamic, dynamic, xbar, noise::none, act::identity>>
      physical({6, 4, 3}, seed{6});
  cost_counter c;
  attach_cost_counter(physical, &c);
  rng g(7);
  deploy(twin, physical, g);
  CHECK(c.totals().parameter_writes == 6 * 4 + 4 * 3);  // the biases are digital
  CHECK(c.totals().pulse_slots == 2);                     // one programming slot per array
  CHECK(estimate_energy(c.totals(), {}, energy_model{}).programming ==
        Approx((6 * 4 + 4 * 3) * energy_model{}.conductance_write_energy));

  using rsub = physics::resistor_substrate;
  network<dense<dynamic, dynamic, physics::digital, noise::none, act::identity>> dtwin({4, 2}, seed{1});
  network<dense<dynamic, dynamic, rsub, noise::none, act::identity>> rnet({4, 2}, seed{1});
  cost_counter rc;
  attach_cost_counter(rnet, &rc);
  deploy(dtwin, rnet, g);
  CHECK(rc.totals().parameter_writes == layer<0>(rnet).tile.parameter_count());
}

}  // namespace tests_cost
