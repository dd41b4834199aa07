// SPDX-License-Identifier: MIT
// The crossbar substrate: ideal equivalence with digital, periphery (DAC/ADC levels, noise and
// bound management, output noise), pulsed programming (statistics of stochastic pulse trains,
// deterministic counts, bounds), conductance mapping, parameter validation, inference-time PCM
// programming, and backprop through the crossbar on a small task.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include <pnn/pnn.hpp>
#include <pnn/physics/crossbar.hpp>

using namespace pnn;

namespace {
using ideal_xbar = physics::crossbar<physics::devices::ideal>;
using xt2 = xt::xtensor<float, 2>;

xt2 random_batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s);
  xt2 x({n, k});
  fill_normal(g, x.data(), x.size());
  return x;
}

// A minimal factored update for a single tile (what gradients' layer entries provide).
struct factored_update {
  xt2 weight, input, delta;
  xt::xtensor<float, 1> bias;
  float factor_scale = 0;
  bool factored = true;
  const float* weight_data() const { return weight.data(); }
  const float* bias_data() const { return bias.data(); }
};

}  // namespace

TEST_CASE("crossbar<ideal> with ideal periphery equals digital", "[crossbar]") {
  using xnet = network<dense<dynamic, dynamic, ideal_xbar, noise::none, act::tanh>,
                       dense<dynamic, dynamic, ideal_xbar, noise::none, act::identity>>;
  using dnet = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                       dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
  xnet a({12, 9, 4}, seed{3}, ideal_xbar::params::ideal());
  dnet b({12, 9, 4}, seed{3});
  const auto x = random_batch(7, 12, 1);
  const auto t = random_batch(7, 4, 2);
  rng g1(5), g2(5);
  const xt2 ya = forward(a, x, g1), yb = forward(b, x, g2);
  REQUIRE(ya.shape() == yb.shape());
  for (std::size_t k = 0; k < ya.size(); ++k) CHECK(ya.data()[k] == Approx(yb.data()[k]).margin(1e-6));
  // Training steps (transposed reads + exact programming) stay equal too.
  learn::backprop<> ra{{.optimizer = {.learning_rate = 0.1f}}}, rb{{.optimizer = {.learning_rate = 0.1f}}};
  for (std::uint64_t s = 0; s < 5; ++s) {
    rng ga(s), gb(s);
    ra.step(a, x, t, loss::mse{}, ga);
    rb.step(b, x, t, loss::mse{}, gb);
  }
  const xt2 za = forward(a, x, g1), zb = forward(b, x, g2);
  for (std::size_t k = 0; k < za.size(); ++k) CHECK(za.data()[k] == Approx(zb.data()[k]).margin(1e-5));
}

TEST_CASE("DAC has 2^bits - 1 levels; ADC clips and quantises to 2^bits - 1 levels", "[crossbar]") {
  ideal_xbar::tile<dynamic, dynamic> t;
  t.resize(1, 1);
  t.weight_data()[0] = 1.0f;
  auto p = ideal_xbar::params{};
  p.forward.out_noise = 0;
  p.forward.noise_management = physics::io_noise_management::none;
  p.forward.bound_management = physics::io_bound_management::none;
  p.forward.out_res = 24;
  p.forward.inp_res = 4;  // 15 levels on [-1, 1]
  t.set_params(p);
  rng g(1);
  std::set<float> levels;
  for (int k = -2000; k <= 2000; ++k) {
    const float x = 1.5f * float(k) / 2000.0f, y = 0;
    float out = y;
    t.read(&x, 1, &out, g);
    levels.insert(out);
    CHECK(std::abs(out) <= 1.0f + 1e-6f);
  }
  CHECK(levels.size() == 15);
  CHECK(*levels.rbegin() == Approx(1.0f));
  CHECK(levels.count(0.0f) == 1);
  // ADC: 3 bits on [-2, 2] -> 7 levels, step 2/3; input at full DAC resolution.
  p.forward.inp_res = 24;
  p.forward.out_res = 3;
  p.forward.out_bound = 2.0f;
  t.weight_data()[0] = 3.0f;
  t.set_params(p);
  levels.clear();
  for (int k = -1000; k <= 1000; ++k) {
    const float x = float(k) / 1000.0f;
    float out = 0;
    t.read(&x, 1, &out, g);
    levels.insert(out);
  }
  CHECK(levels.size() == 7);
  CHECK(*levels.rbegin() == Approx(2.0f));
  CHECK(levels.count(2.0f / 3.0f) == 1);
}

TEST_CASE("noise management rescales; bound management recovers saturated outputs", "[crossbar]") {
  ideal_xbar::tile<dynamic, dynamic> t;
  const std::size_t in = 64;
  t.resize(in, 2);
  for (std::size_t i = 0; i < in; ++i) {
    t.weight_data()[i] = 0.5f;                // row 0: sum 0.5·64 = 32 > out_bound 12
    t.weight_data()[in + i] = 0.01f * float(i % 3);  // row 1: small
  }
  std::vector<float> x(in, 1.0f);
  float y[2];
  rng g(2);
  auto p = ideal_xbar::params{};
  p.forward.out_noise = 0;
  p.forward.inp_res = 24;
  p.forward.out_res = 24;
  t.set_params(p);
  t.read(x.data(), 1, y, g);
  CHECK(y[0] == Approx(32.0f).epsilon(1e-5));  // one halving: 16 > 12, two: 8 < 12
  p.forward.bound_management = physics::io_bound_management::none;
  t.set_params(p);
  t.read(x.data(), 1, y, g);
  CHECK(y[0] == Approx(12.0f));  // clipped at the ADC bound
  // Noise management: inputs of size 100 are read like inputs of size 1, times 100.
  std::vector<float> big(in, 100.0f);
  t.read(big.data(), 1, y, g);
  CHECK(y[1] == Approx(100.0f * 0.01f * 63.0f).epsilon(1e-5));
  p.forward.noise_management = physics::io_noise_management::none;
  t.set_params(p);
  t.read(big.data(), 1, y, g);
  CHECK(y[1] == Approx(0.01f * 63.0f).epsilon(1e-5));  // the DAC clips each input to 1
}

TEST_CASE("output noise has sigma out_noise in units of the managed input scale", "[crossbar]") {
  ideal_xbar::tile<dynamic, dynamic> t;
  t.resize(4, 256);
  rng gw(3);
  fill_uniform(gw, t.weight_data(), 4 * 256, -0.3f, 0.3f);
  auto p = ideal_xbar::params{};
  p.forward.inp_res = 24;
  p.forward.out_res = 24;
  t.set_params(p);
  const float x[4] = {2.0f, -1.0f, 0.5f, 1.5f};  // abs-max 2: noise σ = 0.06·2
  std::vector<float> y(256), y0(256);
  simd::gemv<float>(256, 4, 1.0f, t.weight_data(), 4, x, 0.0f, y0.data());
  double s2 = 0, s1 = 0;
  std::size_t cnt = 0;
  for (std::uint64_t r = 0; r < 100; ++r) {
    rng g(r);
    t.read(x, 1, y.data(), g);
    for (std::size_t j = 0; j < 256; ++j, ++cnt) {
      const double e = double(y[j]) - y0[j];
      s1 += e;
      s2 += e * e;
    }
  }
  const double m = s1 / double(cnt), sd = std::sqrt(s2 / double(cnt) - m * m);
  CHECK(std::abs(m) < 0.005);
  CHECK(sd == Approx(0.12).epsilon(0.03));
}

TEST_CASE("the mean of stochastic pulse-train updates approaches lr x delta^T", "[crossbar][statistical]") {
  using dev = physics::devices::constant_step;
  using xbar = physics::crossbar<dev>;
  const std::size_t in = 8, out = 4;
  const float lr = 0.01f, dw = 0.001f;
  const float x[in] = {0.9f, -0.4f, 0.1f, 0.0f, 1.0f, -0.75f, 0.3f, -0.05f};
  const float d[out] = {0.5f, -0.2f, 0.05f, -0.8f};
  for (bool um : {true, false}) {
    for (bool blm : {true, false}) {
      xbar::params p;
      p.device = dev{.dw_min = dw, .dw_min_dtod = 0, .dw_min_std = 0, .up_down_dtod = 0, .w_min = -10, .w_max = 10};
      p.update_management = um;
      p.update_bl_management = blm;
      if (!um && blm) {
        // BL management without update management would drive A|x| past 1 here and clip it
        // (a biased update): the configuration is refused instead.
        using tile_t = xbar::tile<dynamic, dynamic>;
        CHECK_THROWS_WITH(tile_t(p), Catch::Contains("update_bl_management needs update_management"));
        continue;
      }
      xbar::tile<dynamic, dynamic> t(p);
      t.resize(in, out);
      rng gp(1);
      t.prepare(gp);
      factored_update u;
      u.input = xt2({1, in});
      u.delta = xt2({1, out});
      std::copy(x, x + in, u.input.data());
      std::copy(d, d + out, u.delta.data());
      u.bias = xt::zeros<float>({out});
      u.weight = xt::zeros<float>({out, in});
      u.factor_scale = lr;
      const int trials = 3000;
      std::vector<double> sum(in * out, 0.0);
      const std::vector<float> zero(in * out, 0.0f), zero_b(out, 0.0f);
      for (int k = 0; k < trials; ++k) {
        rng g = rng(77).split(std::uint64_t(k));
        t.set_weights(zero.data(), zero_b.data(), g);
        t.program(u, g);
        for (std::size_t e = 0; e < in * out; ++e) sum[e] += t.weight_data()[e];
      }
      for (std::size_t j = 0; j < out; ++j) {
        for (std::size_t i = 0; i < in; ++i) {
          const double expect = -double(lr) * x[i] * d[j];  // subtracted
          const double mean = sum[j * in + i] / trials;
          const double pulses = std::abs(expect) / dw;  // expected pulses per update
          const double se = dw * std::sqrt(std::max(pulses, 1e-3) / trials);
          INFO("um=" << um << " blm=" << blm << " j=" << j << " i=" << i);
          CHECK(std::abs(mean - expect) < 5 * se + 2e-7);
        }
      }
    }
  }
}

TEST_CASE("deterministic pulses: round(|dW|/dw_min) steps of the device", "[crossbar]") {
  using dev = physics::devices::soft_bounds;
  using xbar = physics::crossbar<dev>;
  xbar::params p;
  p.device = dev{.dw_min = 0.01f, .dw_min_dtod = 0, .dw_min_std = 0, .up_down_dtod = 0, .w_min_dtod = 0, .w_max_dtod = 0};
  p.update = physics::update_mode::deterministic_pulses;
  xbar::tile<dynamic, dynamic> t(p);
  t.resize(3, 1);
  rng g(1);
  t.prepare(g);
  factored_update u;
  u.weight = xt2({1, 3});
  u.weight(0, 0) = -0.034f;  // 3 up pulses
  u.weight(0, 1) = 0.004f;   // rounds to 0 pulses
  u.weight(0, 2) = 0.02f;    // 2 down pulses
  u.bias = xt::zeros<float>({1});
  u.factored = false;
  t.program(u, g);
  double w0 = 0;
  for (int k = 0; k < 3; ++k) w0 += 0.01 * (1 - w0 / 0.6);
  double w2 = 0;
  for (int k = 0; k < 2; ++k) w2 -= 0.01 * (1 - w2 / -0.6);
  CHECK(t.weight_data()[0] == Approx(w0).epsilon(1e-6));
  CHECK(t.weight_data()[1] == 0.0f);
  CHECK(t.weight_data()[2] == Approx(w2).epsilon(1e-6));
}

TEST_CASE("mixed precision: the update accumulates digitally and only whole steps are pulsed", "[crossbar]") {
  using dev = physics::devices::soft_bounds;
  using xbar = physics::crossbar<dev>;
  xbar::params p;
  p.device = dev{.dw_min = 0.01f, .dw_min_dtod = 0, .dw_min_std = 0, .up_down_dtod = 0, .w_min_dtod = 0, .w_max_dtod = 0};
  p.update = physics::update_mode::mixed_precision;
  xbar::tile<dynamic, dynamic> t(p);
  t.resize(3, 1);
  rng g(1);
  t.prepare(g);
  factored_update u;
  u.weight = xt2({1, 3});
  u.bias = xt::zeros<float>({1});
  u.factored = true;  // mixed precision accumulates the dense update even when factors are offered
  u.input = xt2({1, 3}, 0.0f);
  u.delta = xt2({1, 1}, 0.0f);
  u.factor_scale = 1;
  // Element 0: three updates of −0.004 (χ = 0.012) → one up pulse, χ keeps 0.002.
  // Element 1: alternating ±0.006 — the noise cancels in χ, the device sees no pulse at all.
  // Element 2: one update of +0.025 → two down pulses, χ keeps −0.005.
  const float upd[3][3] = {{-0.004f, 0.006f, 0.025f}, {-0.004f, -0.006f, 0.0f}, {-0.004f, 0.006f, 0.0f}};
  for (const auto& r : upd) {
    std::copy(r, r + 3, u.weight.data());
    t.program(u, g);
  }
  double w2 = 0;
  for (int k = 0; k < 2; ++k) w2 -= 0.01 * (1 - w2 / -0.6);
  CHECK(t.weight_data()[0] == Approx(0.01).epsilon(1e-6));
  CHECK(t.weight_data()[1] == 0.0f);
  CHECK(t.weight_data()[2] == Approx(w2).epsilon(1e-6));
  // The residue is kept: one more −0.008 on element 0 makes χ = 0.010 → a second pulse.
  u.weight = xt2({1, 3}, 0.0f);
  u.weight(0, 0) = -0.008f;
  t.program(u, g);
  CHECK(t.weight_data()[0] == Approx(0.01 + 0.01 * (1 - 0.01 / 0.6)).epsilon(1e-5));
}

TEST_CASE("mixed precision keeps soft-bounds weights where noisy pulse trains decay them", "[crossbar]") {
  // Zero-mean per-sample updates: pulse trains realise every sample (soft bounds pull w towards
  // the symmetry point), mixed precision cancels them digitally first.
  using dev = physics::devices::soft_bounds;
  using xbar = physics::crossbar<dev>;
  const std::size_t in = 16, out = 4;
  auto run = [&](physics::update_mode mode) {
    xbar::params p;
    p.device = dev{.dw_min_std = 0, .up_down_dtod = 0, .w_min_dtod = 0, .w_max_dtod = 0};
    p.update = mode;
    xbar::tile<dynamic, dynamic> t(p);
    t.resize(in, out);
    rng g(3);
    t.prepare(g);
    std::vector<float> w0(in * out, 0.2f), b0(out, 0.0f);
    t.set_weights(w0.data(), b0.data(), g);
    factored_update u;
    u.bias = xt::zeros<float>({out});
    u.factor_scale = 0.05f;
    for (int k = 0; k < 200; ++k) {
      // Two samples with opposite deltas: the batch update is exactly zero.
      u.input = xt2({2, in}, 1.0f);
      u.delta = xt2({2, out}, 0.5f);
      for (std::size_t j = 0; j < out; ++j) u.delta(1, j) = -0.5f;
      u.weight = xt::zeros<float>({out, in});
      rng gk = rng(9).split(std::uint64_t(k));
      t.program(u, gk);
    }
    double m = 0;
    for (std::size_t e = 0; e < in * out; ++e) m += t.weight_data()[e];
    return m / double(in * out);
  };
  CHECK(run(physics::update_mode::mixed_precision) == Approx(0.2).epsilon(1e-6));
  CHECK(run(physics::update_mode::stochastic_pulses) < 0.15);
}

TEST_CASE("pulsed training never crosses device bounds; conductances map the weights", "[crossbar]") {
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  xbar::tile<dynamic, dynamic> t;
  t.resize(16, 8);
  rng g(4);
  fill_uniform(g, t.weight_data(), 128, -2.0f, 2.0f);  // beyond the bounds: prepare clips
  t.prepare(g);
  factored_update u;
  u.input = random_batch(32, 16, 5);
  u.delta = random_batch(32, 8, 6);
  u.bias = xt::zeros<float>({8});
  u.weight = xt::zeros<float>({8, 16});
  u.factor_scale = 0.5f;
  for (int k = 0; k < 20; ++k) {
    rng gk = g.split(std::uint64_t(k));
    t.program(u, gk);
    for (std::size_t e = 0; e < 128; ++e) {
      REQUIRE(t.weight_data()[e] >= t.cell(e).b_min);
      REQUIRE(t.weight_data()[e] <= t.cell(e).b_max);
    }
  }
  std::vector<float> gp(128), gm(128);
  t.conductances(gp.data(), gm.data());
  const float gref = t.g_ref();
  CHECK(gref == Approx(25.0f / 0.6f));
  for (std::size_t e = 0; e < 128; ++e) {
    CHECK((gp[e] - gm[e]) / gref == Approx(t.weight_data()[e]).margin(1e-6));
    CHECK(std::min(gp[e], gm[e]) >= 0.0f);
  }
}

TEST_CASE("bad crossbar parameters are rejected at set_params, leaving the tile unchanged", "[crossbar]") {
  using xbar = physics::crossbar<physics::devices::pcm>;
  xbar::tile<dynamic, dynamic> t;
  auto bad = [&](auto edit, const char* what) {
    xbar::params p;
    edit(p);
    CHECK_THROWS_WITH(t.set_params(p), Catch::Contains(what));
    CHECK(t.parameters().forward.inp_res == 7);
  };
  bad([](auto& p) { p.forward.inp_res = 0; }, "[1, 24]");
  bad([](auto& p) { p.forward.out_res = 25; }, "[1, 24]");
  bad([](auto& p) { p.backward.out_noise = -0.1f; }, ">= 0");
  bad([](auto& p) { p.g_min = 30.0f; }, "g_min < g_max");
  bad([](auto& p) { p.device.dw_min = 0.0f; }, "dw_min");
  bad([](auto& p) { p.device.dw_min_dtod = -0.3f; }, ">= 0");
  bad([](auto& p) { p.device.law.refresh_threshold = 1.5f; }, "refresh_threshold");
  bad([](auto& p) { p.desired_bl = 0; }, "desired_bl");
  // BL management without update management would clip pulse probabilities above 1.
  bad([](auto& p) { p.update_management = false; }, "update_bl_management needs update_management");
  bad([](auto& p) { p.forward.inp_bound = 0.5f; }, "abs-max noise management needs inp_bound = 1");
  bad([](auto& p) { p.forward.max_bound_iterations = 0; }, "max_bound_iterations in [1, 20]");
  bad([](auto& p) { p.forward.max_bound_iterations = 100; }, "max_bound_iterations in [1, 20]");
  // Without noise management any positive DAC range is a valid design.
  xbar::params ranged;
  ranged.forward.noise_management = physics::io_noise_management::none;
  ranged.forward.inp_bound = 0.5f;
  CHECK_NOTHROW(t.set_params(ranged));
  xbar::params neg;
  neg.g_max = -1.0f;
  using tile_t = xbar::tile<dynamic, dynamic>;
  CHECK_THROWS_AS(tile_t(neg), pnn::error);
}

TEST_CASE("PCM inference programming: ideal model reproduces the weights; drift is compensated", "[crossbar][pcm]") {
  using xbar = physics::crossbar<physics::devices::pcm>;
  xbar::tile<dynamic, dynamic> t(xbar::params::ideal());
  t.resize(32, 16);
  rng g(8);
  fill_uniform(g, t.weight_data(), 512, -0.5f, 0.5f);
  t.prepare(g);
  const auto x = random_batch(4, 32, 9);
  xt2 y0({4, 16}), y1({4, 16});
  t.read(x.data(), 4, y0.data(), g);
  t.program_inference({.prog_noise_scale = 0, .read_noise_scale = 0, .drift_scale = 0}, g);
  t.read(x.data(), 4, y1.data(), g);
  for (std::size_t k = 0; k < y0.size(); ++k) CHECK(y1.data()[k] == Approx(y0.data()[k]).margin(1e-5));
  // Drift without noise: outputs shrink; compensation brings their magnitude back.
  t.program_inference({.prog_noise_scale = 0, .read_noise_scale = 0, .drift_compensation = false}, g);
  t.set_time(86400.0, g);
  t.read(x.data(), 4, y1.data(), g);
  double n0 = 0, n1 = 0;
  for (std::size_t k = 0; k < y0.size(); ++k) {
    n0 += std::abs(y0.data()[k]);
    n1 += std::abs(y1.data()[k]);
  }
  CHECK(n1 < 0.8 * n0);
  t.set_drift_compensation(true);
  t.set_time(86400.0, g);
  t.read(x.data(), 4, y1.data(), g);
  n1 = 0;
  for (std::size_t k = 0; k < y0.size(); ++k) n1 += std::abs(y1.data()[k]);
  CHECK(n1 == Approx(n0).epsilon(0.05));
}

TEST_CASE("backprop through a soft-bounds crossbar (transposed reads) reduces the loss", "[crossbar][training]") {
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::tanh>,
                        dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  rng gd(1);
  const auto d = data::gaussian_blobs(256, 8, 3, gd);
  net_t net({8, 16, 3}, seed{2});
  learn::backprop<> rule{{.optimizer = {.learning_rate = 0.1f}}};
  const double before = evaluate(net, loss::softmax_cross_entropy{}, d).loss;
  train(net, rule, loss::softmax_cross_entropy{}, d, {.epochs = 8, .batch = 16, .seed = 3, .progress = progress_mode::never});
  const auto after = evaluate(net, loss::softmax_cross_entropy{}, d);
  INFO("loss " << before << " -> " << after.loss << ", accuracy " << after.accuracy);
  CHECK(after.loss < 0.6 * before);
  CHECK(after.accuracy > 0.8);
}
