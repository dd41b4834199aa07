// SPDX-License-Identifier: MIT
// The crossbar substrate: ideal equivalence with digital, periphery (DAC/ADC levels, noise and
// bound management, output noise), pulsed programming (statistics of stochastic pulse trains,
// deterministic counts, bounds), conductance mapping, parameter validation, inference-time PCM
// programming, and backprop through the crossbar on a small task.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <vector>

#include <pnn/pnn.hpp>
#include <pnn/physics/crossbar.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_crossbar {

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

// One sample's update `lr·δᵀx` as its factors (x: in values, d: out values).
factored_update single_sample(const float* x, std::size_t in, const float* d, std::size_t out, float lr) {
  factored_update u;
  u.input = xt2({1, in});
  u.delta = xt2({1, out});
  std::copy(x, x + in, u.input.data());
  std::copy(d, d + out, u.delta.data());
  u.bias = xt::zeros<float>({out});
  u.weight = xt::zeros<float>({out, in});
  u.factor_scale = lr;
  return u;
}

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
      const factored_update u = single_sample(x, in, d, out, lr);
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

namespace {

// One pulse of a device's published step law (docs/physics.md, "Device models"), in double, on
// the state (w, g⁻) of a nominal device (no variation): dw_up, dw_down are its steps, [−0.5, 0.7]
// its bounds. g⁻ is used by the PCM pair only.
using pulse_law = std::function<void(double& w, double& gm, bool up)>;

// The pulsed devices' common parameters with all variation off: nominal steps dw_up = 0.002,
// dw_down = (1 − up_down)·0.002 = 0.0016 (the asymmetry shortens the down step), bounds
// [−0.5, 0.7] (asymmetric, so that a law referring to the wrong bound shows).
template <class Dev>
Dev without_variation(Dev d) {
  d.dw_min = 0.002f;
  d.dw_min_dtod = 0;
  d.dw_min_std = 0;
  d.up_down = 0.2f;
  d.up_down_dtod = 0;
  d.w_min = -0.5f;
  d.w_max = 0.7f;
  d.w_min_dtod = 0;
  d.w_max_dtod = 0;
  return d;
}
constexpr double law_up = 0.002, law_down = 0.0016, law_lo = -0.5, law_hi = 0.7;

// A bipolar device: w moves by the law's step magnitude, clipped to the bounds.
pulse_law bipolar(std::function<double(double)> up, std::function<double(double)> down) {
  return [up, down](double& w, double&, bool dir_up) {
    w = dir_up ? std::min(w + up(w), law_hi) : std::max(w - down(w), law_lo);
  };
}

// Programs `trials` times the same single-sample factored update s·δᵀx from the same state w0 and
// compares each device's mean and variance of Δw with the exact law of the pulse train: the
// coincidences of row i and column j are Binomial(BL, p_x p_d) (BL independent slots, row and
// column firing independently with p_x = A|x_i|, p_d = B|δ_j|; E = BL p_x p_d = s|x_i δ_j|/dw_min),
// each coincidence one pulse of the law in the direction that subtracts s x_i δ_j. With BL
// management, s = 0.02 gives BL = 8 (slot bits compared one Philox word each); without, s = 0.06
// keeps BL = 31 (slot bits from the 16-bit binary expansion).
template <class Dev>
void check_pulse_statistics(const Dev& dev, const pulse_law& law, bool bl_management) {
  using xbar = physics::crossbar<Dev>;
  constexpr std::size_t in = 6, out = 4;
  const double lr = bl_management ? 0.02 : 0.06, dw_min = 0.002;
  const float x[in] = {0.9f, -0.55f, 0.3f, 0.0f, -1.0f, 0.7f};
  const float d[out] = {0.6f, -0.35f, 0.75f, -0.15f};
  typename xbar::params p;
  p.device = without_variation(dev);
  p.update_bl_management = bl_management;
  typename xbar::template tile<dynamic, dynamic> t(p);
  t.resize(in, out);
  rng gp(1);
  t.prepare(gp);
  std::vector<float> w0(in * out), b0(out, 0.0f);
  for (std::size_t e = 0; e < in * out; ++e) {
    w0[e] = static_cast<float>(0.4 * std::sin(1.7 * double(e) + 0.3));  // states across [−0.4, 0.4]
    const auto c = t.cell(e);  // variation off: every device is the nominal one
    REQUIRE(c.dw_up == Approx(law_up));
    REQUIRE(c.dw_down == Approx(law_down));
    REQUIRE(c.b_min == Approx(law_lo));
    REQUIRE(c.b_max == Approx(law_hi));
  }
  const factored_update u = single_sample(x, in, d, out, float(lr));
  const int trials = 1000;
  std::vector<double> s1(in * out, 0.0), s2(in * out, 0.0);
  for (int k = 0; k < trials; ++k) {
    rng g = rng(91).split(std::uint64_t(k));
    t.set_weights(w0.data(), b0.data(), g);
    t.program(u, g);
    for (std::size_t e = 0; e < in * out; ++e) {
      const double dw = double(t.weight_data()[e]) - double(w0[e]);
      s1[e] += dw;
      s2[e] += dw * dw;
    }
  }
  // BL and the row/column probabilities as docs/physics.md states them.
  const double xmax = 1.0, dmax = 0.75;
  const unsigned bl = bl_management ? unsigned(std::ceil(lr * xmax * dmax / dw_min)) : 31u;
  const double a0 = std::sqrt(lr / (dw_min * bl)), r = std::sqrt(dmax / xmax);
  for (std::size_t j = 0; j < out; ++j) {
    for (std::size_t i = 0; i < in; ++i) {
      const std::size_t e = j * in + i;
      const double px = std::min(a0 * r * std::abs(double(x[i])), 1.0);
      const double pd = std::min(a0 / r * std::abs(double(d[j])), 1.0);
      const double q = px * pd;
      REQUIRE(bl * q == Approx(lr * std::abs(double(x[i]) * d[j]) / dw_min));  // no probability clipped
      const bool up = double(x[i]) * d[j] < 0;  // the update lr·x·δ is subtracted
      // Exact distribution of Δw: P(c coincidences) and the state after c pulses of the law (to
      // first order, E[Δw] = ±BL p_x p_d · step(w0)).
      double mean = 0, m2 = 0;
      std::vector<double> pk(bl + 1), dk(bl + 1);
      double w = w0[e], gm = std::max(-double(w0[e]), 0.0);
      for (unsigned c = 0; c <= bl; ++c) {
        if (c > 0) law(w, gm, up);
        dk[c] = w - double(w0[e]);
        pk[c] = std::exp(std::lgamma(bl + 1.0) - std::lgamma(c + 1.0) - std::lgamma(bl - c + 1.0)) * std::pow(q, c) *
                std::pow(1 - q, bl - c);
        mean += pk[c] * dk[c];
        m2 += pk[c] * dk[c] * dk[c];
      }
      const double var = std::max(m2 - mean * mean, 0.0);
      double m4 = 0;
      for (unsigned c = 0; c <= bl; ++c) m4 += pk[c] * std::pow(dk[c] - mean, 4);
      const double got_mean = s1[e] / trials;
      const double got_var = s2[e] / trials - got_mean * got_mean;
      INFO(Dev::name << " BL=" << bl << " j=" << j << " i=" << i << " w0=" << w0[e] << (up ? " up" : " down")
                     << " expected mean " << mean << " got " << got_mean << "; expected var " << var << " got "
                     << got_var);
      CHECK(std::abs(got_mean - mean) <= 5 * std::sqrt(var / trials) + 2e-7);
      if (var > 0) CHECK(std::abs(got_var - var) <= 5 * std::sqrt((m4 - var * var) / trials) + 1e-10);
    }
  }
}

}  // namespace

TEST_CASE("stochastic pulse trains move every pulsed device by its own step law", "[crossbar][statistical]") {
  namespace dv = physics::devices;
  // The step laws of docs/physics.md's table, written out with the documented default parameters.
  const pulse_law constant = bipolar([](double) { return law_up; }, [](double) { return law_down; });
  const pulse_law linear = bipolar([](double w) { return std::max(law_up * (1 - 0.5 * w / law_hi), 0.0); },
                                   [](double w) { return std::max(law_down * (1 - 0.5 * w / law_lo), 0.0); });
  const pulse_law soft = bipolar([](double w) { return std::max(law_up * (1 - w / law_hi), 0.0); },
                                 [](double w) { return std::max(law_down * (1 - w / law_lo), 0.0); });
  auto z = [](double w) { return 2 * 0.244 * w / (law_hi - law_lo) + 0.2425; };
  const pulse_law exponential =
      bipolar([z](double w) { return law_up * std::max(1 - 0.00081 * std::exp(12.44625 * z(w)), 0.0); },
              [z](double w) { return law_down * std::max(1 - 0.36833 * std::exp(-12.78785 * z(w)), 0.0); });
  const double gu = 1.7, gd = 0.6;  // pow_step with non-default exponents
  const pulse_law power =
      bipolar([gu](double w) { return law_up * std::pow((law_hi - w) / (law_hi - law_lo), gu); },
              [gd](double w) { return law_down * std::pow((w - law_lo) / (law_hi - law_lo), gd); });
  // PCM pair: an up pulse sets g⁺ by dw_up(1 − g⁺/b_max), a down pulse g⁻ by dw_down(1 − g⁻/(−b_min));
  // past 0.75 of its bound the pair is rewritten onto one device.
  const pulse_law pcm = [](double& w, double& gm, bool up) {
    double gp = w + gm;
    if (up) gp = std::min(gp + law_up * (1 - gp / law_hi), law_hi);
    else gm = std::min(gm + law_down * (1 - gm / -law_lo), -law_lo);
    if (gp > 0.75 * law_hi || gm > 0.75 * -law_lo) {
      const double v = gp - gm;
      gp = std::max(v, 0.0);
      gm = std::max(-v, 0.0);
    }
    w = gp - gm;
  };
  for (bool blm : {true, false}) {  // BL = 8 and BL = 31
    check_pulse_statistics(dv::constant_step{}, constant, blm);
    check_pulse_statistics(dv::linear_step{}, linear, blm);
    check_pulse_statistics(dv::soft_bounds{}, soft, blm);
    check_pulse_statistics(dv::exp_step{}, exponential, blm);
    check_pulse_statistics(dv::pow_step{.law = {.gamma_up = float(gu), .gamma_down = float(gd)}}, power, blm);
    check_pulse_statistics(dv::pcm{}, pcm, blm);
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
  // optim::mixed_precision around SGD (η 1): the crossbar receives whole dw_min steps and fires
  // them as pulse counts; the remainder stays in the optimiser's accumulator χ.
  using dev = physics::devices::soft_bounds;
  using xbar = physics::crossbar<dev>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  xbar::params p;
  p.forward.is_perfect = p.backward.is_perfect = true;
  p.device = dev{.dw_min = 0.01f, .dw_min_dtod = 0, .dw_min_std = 0, .up_down_dtod = 0, .w_min_dtod = 0, .w_max_dtod = 0};
  net_t net({3, 1}, seed{1}, p);
  rng g(1);
  const std::vector<float> zeros(3, 0.0f);
  layer<0>(net).tile.set_weights(zeros.data(), zeros.data(), g);
  optim::mixed_precision<optim::sgd> mp{.inner = {.learning_rate = 1.0f}};
  auto st = decltype(mp)::state<net_t>{};
  auto apply = [&](float a, float b, float c) {
    gradients<net_t> u(net);
    u[0].weight(0, 0) = a;
    u[0].weight(0, 1) = b;
    u[0].weight(0, 2) = c;
    mp.apply(u, st, net);
    program(net, u, g);
  };
  // Element 0: three updates of −0.004 (χ = −0.012) → one up pulse, χ keeps −0.002.
  // Element 1: alternating ±0.006 — the noise cancels in χ, the device sees no pulse at all.
  // Element 2: one update of +0.025 → two down pulses, χ keeps 0.005.
  apply(-0.004f, 0.006f, 0.025f);
  apply(-0.004f, -0.006f, 0.0f);
  apply(-0.004f, 0.006f, 0.0f);
  const float* w = layer<0>(net).tile.weight_data();
  double w2 = 0;
  for (int k = 0; k < 2; ++k) w2 -= 0.01 * (1 - w2 / -0.6);
  CHECK(w[0] == Approx(0.01).epsilon(1e-6));
  CHECK(w[1] == 0.0f);
  CHECK(w[2] == Approx(w2).epsilon(1e-6));
  CHECK(st.chi[0][0] == Approx(-0.002).margin(1e-6));
  CHECK(st.chi[0][2] == Approx(0.005).margin(1e-6));
  // The residue is kept: one more −0.008 on element 0 makes χ = −0.010 → a second pulse.
  apply(-0.008f, 0.0f, 0.0f);
  CHECK(w[0] == Approx(0.01 + 0.01 * (1 - 0.01 / 0.6)).epsilon(1e-5));
}

TEST_CASE("mixed precision keeps soft-bounds weights where noisy pulse trains decay them", "[crossbar]") {
  // Zero-mean per-sample updates: pulse trains realise every sample (soft bounds pull w towards
  // the symmetry point), mixed precision cancels them digitally first.
  using dev = physics::devices::soft_bounds;
  using xbar = physics::crossbar<dev>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  const std::size_t in = 16, out = 4;
  auto run = [&](bool mixed) {
    xbar::params p;
    p.device = dev{.dw_min_std = 0, .up_down_dtod = 0, .w_min_dtod = 0, .w_max_dtod = 0};
    net_t net({in, out}, seed{3}, p);
    auto& t = layer<0>(net).tile;
    rng g(3);
    std::vector<float> w0(in * out, 0.2f), b0(out, 0.0f);
    t.set_weights(w0.data(), b0.data(), g);
    optim::mixed_precision<optim::sgd> mp{.inner = {.learning_rate = 1.0f}};
    auto st = decltype(mp)::state<net_t>{};
    for (int k = 0; k < 200; ++k) {
      // Two samples with opposite deltas: the batch update is exactly zero.
      gradients<net_t> u(net);
      u[0].input = xt2({2, in}, 1.0f);
      u[0].delta = xt2({2, out}, 0.5f);
      for (std::size_t j = 0; j < out; ++j) u[0].delta(1, j) = -0.5f;
      u[0].factor_scale = 0.05f;
      u[0].factored = true;  // the dense product (zero) is formed too
      rng gk = rng(9).split(std::uint64_t(k));
      if (mixed) mp.apply(u, st, net);
      program(net, u, gk);
    }
    double m = 0;
    for (std::size_t e = 0; e < in * out; ++e) m += t.weight_data()[e];
    return m / double(in * out);
  };
  CHECK(run(true) == Approx(0.2).epsilon(1e-6));
  CHECK(run(false) < 0.15);
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

TEST_CASE("conductance pairs load onto the array: exact round trip, clipped to each device, bad values rejected",
          "[crossbar]") {
  rng g(12);
  SECTION("PCM pairs keep both devices as written") {
    using xbar = physics::crossbar<physics::devices::pcm>;
    xbar::tile<dynamic, dynamic> t;
    t.resize(6, 4);
    t.prepare(g);
    const float g0 = t.parameters().g_min, r = t.g_ref();
    std::vector<float> gp(24), gm(24);
    for (std::size_t e = 0; e < 24; ++e) {
      // Inside both devices' ranges: a pair with both devices partly set (not reachable by write()).
      gp[e] = g0 + r * 0.5f * std::min(t.cell(e).b_max, -t.cell(e).b_min) * float(e % 5) / 4.0f;
      gm[e] = g0 + r * 0.3f * std::min(t.cell(e).b_max, -t.cell(e).b_min) * float(e % 3) / 2.0f;
    }
    t.set_conductances(gp.data(), gm.data());
    std::vector<float> bp(24), bm(24);
    t.conductances(bp.data(), bm.data());
    for (std::size_t e = 0; e < 24; ++e) {
      CHECK(bp[e] == Approx(gp[e]).margin(1e-4));
      CHECK(bm[e] == Approx(gm[e]).margin(1e-4));
      CHECK(t.weight_data()[e] == Approx((gp[e] - gm[e]) / r).margin(1e-6));
    }
    // Beyond a device's range: that device saturates, the other keeps its value.
    std::vector<float> hi(24, g0 + 10.0f * r), lo(24, g0);
    t.set_conductances(hi.data(), lo.data());
    for (std::size_t e = 0; e < 24; ++e) CHECK(t.weight_data()[e] == Approx(t.cell(e).b_max));
  }
  SECTION("a single bipolar device holds the difference, within its bounds") {
    using xbar = physics::crossbar<physics::devices::soft_bounds>;
    xbar::tile<dynamic, dynamic> t;
    t.resize(5, 3);
    t.prepare(g);
    const float g0 = t.parameters().g_min, r = t.g_ref();
    std::vector<float> gp(15), gm(15);
    for (std::size_t e = 0; e < 15; ++e) {
      gp[e] = g0 + r * 0.1f * float(e % 4);
      gm[e] = g0 + r * 0.1f * float(e % 3);
    }
    t.set_conductances(gp.data(), gm.data());
    for (std::size_t e = 0; e < 15; ++e) {
      const float want = std::clamp((gp[e] - gm[e]) / r, t.cell(e).b_min, t.cell(e).b_max);
      CHECK(t.weight_data()[e] == Approx(want).margin(1e-6));
    }
    std::vector<float> bp(15), bm(15);
    t.conductances(bp.data(), bm.data());
    for (std::size_t e = 0; e < 15; ++e) CHECK((bp[e] - bm[e]) / r == Approx(t.weight_data()[e]).margin(1e-6));
  }
  SECTION("NaN or a conductance below g_min is an error and changes nothing") {
    using xbar = physics::crossbar<physics::devices::pcm>;
    xbar::tile<dynamic, dynamic> t;
    t.resize(3, 2);
    t.prepare(g);
    fill_uniform(g, t.weight_data(), 6, -0.3f, 0.3f);
    const std::vector<float> before(t.weight_data(), t.weight_data() + 6);
    std::vector<float> gp(6, 5.0f), gm(6, 5.0f);
    gp[4] = std::nanf("");
    CHECK_THROWS_WITH(t.set_conductances(gp.data(), gm.data()), Catch::Contains("finite and >= g_min"));
    gp[4] = 5.0f;
    gm[2] = t.parameters().g_min - 1.0f;
    CHECK_THROWS_WITH(t.set_conductances(gp.data(), gm.data()), Catch::Contains("finite and >= g_min"));
    CHECK(std::vector<float>(t.weight_data(), t.weight_data() + 6) == before);
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

}  // namespace tests_crossbar
