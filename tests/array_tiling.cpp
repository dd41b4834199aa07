// SPDX-License-Identifier: MIT
// A crossbar layer larger than one physical array is read as a grid of arrays, each with its own
// periphery, summed digitally: splitting an ideal layer changes nothing, the converters follow
// the tiling, each array manages its own input range and its own pulsed update, and bad array
// sizes are rejected.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/pnn.hpp>
#include <pnn/physics/crossbar.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_array_tiling {

using namespace pnn;

namespace {
using ideal_xbar = physics::crossbar<physics::devices::ideal>;
using tile_t = ideal_xbar::tile<dynamic, dynamic>;

tile_t make_tile(std::size_t in, std::size_t out, ideal_xbar::params p) {
  tile_t t(p);
  t.resize(in, out);
  rng g(11);
  fill_uniform(g, t.weight_data(), in * out, -0.5f, 0.5f);
  return t;
}
}  // namespace

TEST_CASE("array tiling: splitting an ideal layer over arrays changes nothing", "[crossbar][tiling]") {
  const std::size_t in = 40, out = 24, n = 5;
  auto whole = make_tile(in, out, ideal_xbar::params::ideal());
  auto p = ideal_xbar::params::ideal();
  p.max_input_size = 16;
  p.max_output_size = 10;
  auto split = make_tile(in, out, p);
  CHECK(whole.physical_arrays() == 1);
  CHECK(split.physical_arrays() == 9);  // ⌈40/16⌉ · ⌈24/10⌉
  rng gx(2);
  std::vector<float> x(n * in), dy(n * out), y1(n * out), y2(n * out), dx1(n * in), dx2(n * in);
  fill_normal(gx, x.data(), x.size());
  fill_normal(gx, dy.data(), dy.size());
  rng g(3);
  whole.read(x.data(), n, y1.data(), g);
  split.read(x.data(), n, y2.data(), g);
  whole.read_transposed(dy.data(), n, dx1.data(), g);
  split.read_transposed(dy.data(), n, dx2.data(), g);
  for (std::size_t e = 0; e < y1.size(); ++e) CHECK(y2[e] == Approx(y1[e]).margin(1e-5));
  for (std::size_t e = 0; e < dx1.size(); ++e) CHECK(dx2[e] == Approx(dx1[e]).margin(1e-5));
}

TEST_CASE("array tiling: converters and passes follow the tiling", "[crossbar][tiling][cost]") {
  // 40 inputs over arrays of 16 (3 column blocks), 24 outputs over arrays of 12 (2 row blocks).
  const std::size_t in = 40, out = 24, n = 5;
  ideal_xbar::params p;
  p.forward.out_noise = p.backward.out_noise = 0;
  p.forward.bound_management = physics::io_bound_management::none;
  p.max_input_size = 16;
  p.max_output_size = 12;
  auto t = make_tile(in, out, p);
  CHECK(t.physical_arrays() == 6);
  cost_counter c;
  t.attach_cost_counter(&c);
  rng gx(4), g(5);
  std::vector<float> x(n * in), y(n * out), dy(n * out), dx(n * in);
  fill_normal(gx, x.data(), x.size());
  fill_normal(gx, dy.data(), dy.size());
  t.read(x.data(), n, y.data(), g);
  auto e = c.totals();
  CHECK(e.reads == n);          // one pass of the layer: its arrays read in parallel
  CHECK(e.array_vectors == n);
  CHECK(e.macs == n * in * out);
  CHECK(e.dac_conversions == n * in * 2);   // each input drives both row blocks' arrays
  CHECK(e.adc_conversions == n * out * 3);  // each output is digitised once per column block
  c.reset();
  t.read_transposed(dy.data(), n, dx.data(), g);
  e = c.totals();
  CHECK(e.transposed_reads == n);
  CHECK(e.dac_conversions == n * out * 3);
  CHECK(e.adc_conversions == n * in * 2);
}

TEST_CASE("array tiling: each array scales its own inputs (noise management per array)", "[crossbar][tiling]") {
  // One large input in the first array, small ones in the second: read as one array, the 4-bit
  // DAC's step (2/15 of the largest input) rounds the small inputs to zero; split, the second
  // array scales them to its own range and they are read.
  ideal_xbar::params p;
  p.forward.inp_res = 4;
  p.forward.out_noise = 0;
  p.forward.bound_management = physics::io_bound_management::none;
  auto whole = make_tile(8, 1, p);
  p.max_input_size = 4;
  auto split = make_tile(8, 1, p);
  const std::vector<float> w{0, 0, 0, 0, 1, 1, 1, 1}, b{0};
  rng g(6);
  whole.set_weights(w.data(), b.data(), g);
  split.set_weights(w.data(), b.data(), g);
  const std::vector<float> x{1, 0, 0, 0, 0.01f, 0.01f, 0.01f, 0.01f};
  float y_whole = 0, y_split = 0;
  whole.read(x.data(), 1, &y_whole, g);
  split.read(x.data(), 1, &y_split, g);
  CHECK(y_whole == 0.0f);
  CHECK(y_split == Approx(0.04f).margin(5e-4));  // ADC step 24/511 of 4, times the scale 0.01
}

TEST_CASE("array tiling: each array manages its own pulsed update", "[crossbar][tiling]") {
  // One output, eight inputs: four large ones and four small ones, one sample, |s| = 1. Managed
  // over the whole layer, lr·x_max·δ_max = 1 needs 1000 slots of dw_min 0.001: BL stays 31, the
  // column probability B|δ| = 5.7 is clipped at 1 and the small inputs' weights get
  // 31·A·0.01 ≈ 1.8 pulses instead of 10. On their own array (x_max 0.01) BL is 10 and every
  // probability exactly 1: each of those weights moves by exactly 10 pulses.
  using cs = physics::devices::constant_step;
  using xbar = physics::crossbar<cs>;
  struct update {
    bool factored = true;
    xt::xtensor<float, 2> input = {{1.0f, 1.0f, 1.0f, 1.0f, 0.01f, 0.01f, 0.01f, 0.01f}};
    xt::xtensor<float, 2> delta = {{1.0f}};
    double factor_scale = 1.0;
    std::vector<float> dense = std::vector<float>(8, 0.0f), bias = std::vector<float>(1, 0.0f);
    const float* weight_data() const { return dense.data(); }
    const float* bias_data() const { return bias.data(); }
  } u;
  auto run = [&](std::size_t max_in, std::uint64_t trial, cost_counter* counter) {
    xbar::params p = xbar::params::ideal();
    p.device = cs{.dw_min = 0.001f, .dw_min_dtod = 0, .dw_min_std = 0, .up_down_dtod = 0, .w_min = -1.0f, .w_max = 1.0f,
                  .w_min_dtod = 0, .w_max_dtod = 0};
    p.max_input_size = max_in;
    xbar::tile<dynamic, dynamic> t(p);
    t.resize(8, 1);
    rng g(trial);
    t.prepare(g);
    t.attach_cost_counter(counter);
    rng gu(100 + trial);
    t.program(u, gu);
    double small = 0;
    for (std::size_t i = 4; i < 8; ++i) small += -double(t.weight_data()[i]) / 4;
    return small;
  };
  cost_counter split_cost;
  const double split = run(4, 1, &split_cost);
  CHECK(split == Approx(0.010).margin(1e-6));
  CHECK(split_cost.totals().pulse_slots == 31);  // the arrays pulse in parallel: the longer train
  double whole = 0;
  for (std::uint64_t trial = 0; trial < 40; ++trial) whole += run(8, trial, nullptr) / 40;
  INFO("mean step of a small input's weight managed over the whole layer: " << whole);
  CHECK(whole == Approx(31 * std::sqrt(1.0 / 0.031) * 0.01 * 0.001).epsilon(0.15));
  CHECK(whole < 0.4 * split);
}

TEST_CASE("array tiling: an array of no lines is rejected", "[crossbar][tiling]") {
  ideal_xbar::params p;
  p.max_input_size = 0;
  CHECK_THROWS_WITH(tile_t(p), Catch::Contains("max_input_size"));
  p.max_input_size = 4;
  p.max_output_size = 0;
  CHECK_THROWS_WITH(tile_t(p), Catch::Contains("max_output_size"));
}

}  // namespace tests_array_tiling
