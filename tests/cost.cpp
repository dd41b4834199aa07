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
