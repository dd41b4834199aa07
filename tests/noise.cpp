// SPDX-License-Identifier: MIT
// Noise policies (docs/physics.md): quantiser level counts, each policy's sample moments against
// its formula, stage presence, chain order and streams, drift law, stuck-at fractions, bad
// parameters, reproducibility, and layers reading through the weights stage.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include <pnn/noise/noise.hpp>
#include <pnn/pnn.hpp>

#include <xtensor/xview.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_noise {

using namespace pnn;

namespace {

struct moments {
  double mean = 0, var = 0;
};

template <class T>
moments moments_of(const std::vector<T>& v) {
  double s = 0;
  for (T x : v) s += static_cast<double>(x);
  const double m = s / static_cast<double>(v.size());
  double q = 0;
  for (T x : v) q += (static_cast<double>(x) - m) * (static_cast<double>(x) - m);
  return {m, q / static_cast<double>(v.size() - 1)};
}

// Checks sample moments of n iid draws against (mean, var) within 5 standard errors; the
// variance's standard error uses the Gaussian kurtosis plus `excess` (excess kurtosis).
void check_moments(const moments& m, std::size_t n, double mean, double var, double excess = 0) {
  const double nn = static_cast<double>(n);
  INFO("sample mean " << m.mean << " expected " << mean << "; sample var " << m.var << " expected " << var);
  CHECK(std::abs(m.mean - mean) <= 5 * std::sqrt(var / nn));
  CHECK(std::abs(m.var - var) <= 5 * var * std::sqrt((2 + excess) / nn));
}

constexpr std::size_t big = 200000;

}  // namespace

// ---- quantisers ------------------------------------------------------------------------------

TEST_CASE("symmetric quantiser has 2^bits - 1 levels including zero, unipolar 2^bits", "[noise][quantize]") {
  for (unsigned bits = 1; bits <= 10; ++bits) {
    std::set<double> sym, uni;
    const double b = 1.5;
    for (int i = -40000; i <= 40000; ++i) {
      const double x = 2.0 * b * i / 40000.0;  // sweeps [−2b, 2b], beyond the clip on both sides
      sym.insert(noise::quantize_symmetric(x, b, bits));
      uni.insert(noise::quantize_unipolar(x, b, bits));
    }
    INFO("bits " << bits);
    CHECK(sym.size() == noise::symmetric_levels(bits));
    CHECK(sym.size() == (std::size_t{1} << bits) - 1);
    CHECK(sym.count(0.0) == 1);
    CHECK(uni.size() == noise::unipolar_levels(bits));
    CHECK(uni.size() == (std::size_t{1} << bits));
    CHECK(*uni.begin() == 0.0);
    CHECK(*uni.rbegin() == Approx(b));
    if (bits > 1) {
      CHECK(*sym.rbegin() == Approx(b));
      CHECK(*sym.begin() == Approx(-b));
      CHECK(noise::symmetric_step(b, bits) == Approx(b / double((1u << (bits - 1)) - 1)));
    }
    CHECK(noise::unipolar_step(b, bits) == Approx(b / double((1u << bits) - 1)));
  }
}

TEST_CASE("quantiser: formula, odd symmetry, error within half a step, array form", "[noise][quantize]") {
  const unsigned bits = 6;
  const float b = 2.0f;
  const float step = b / 31.0f;
  rng g(5);
  std::vector<float> x(1000);
  fill_uniform(g, x.data(), x.size(), -3.0f, 3.0f);
  std::vector<float> q = x, u = x;
  noise::quantize_symmetric(q.data(), q.size(), b, bits);
  noise::quantize_unipolar(u.data(), u.size(), b, bits);
  const auto qz = noise::quantizer<float>::symmetric(b, bits);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float s = noise::quantize_symmetric(x[i], b, bits);
    CHECK(q[i] == s);
    CHECK(qz(x[i]) == s);
    CHECK(noise::quantize_symmetric(-x[i], b, bits) == -s);
    CHECK(u[i] == noise::quantize_unipolar(x[i], b, bits));
    const float clipped = std::min(std::max(x[i], -b), b);
    CHECK(std::abs(s - clipped) <= 0.5f * step * (1 + 1e-5f));
    const double code = static_cast<double>(s) / static_cast<double>(step);
    CHECK(std::abs(code - std::round(code)) < 1e-4);
  }
  CHECK(noise::quantize_symmetric(0.0, 1.0, 1) == 0.0);  // 1 bit symmetric: only the level 0
  // 24 bits is the finest grid; its extreme code is exact in float.
  CHECK(noise::quantize_symmetric(5.0f, 1.0f, 24) == 1.0f);
  CHECK(noise::quantize_unipolar(5.0f, 1.0f, 24) == 1.0f);
}

TEST_CASE("the vectorised array quantiser equals the scalar one: ties to even, every tail length, NaN kept, double",
          "[noise][quantize]") {
  // Exact half steps (code k + 1/2 with step 1) round to the even code, as std::nearbyint.
  for (std::size_t n : {1u, 7u, 8u, 15u, 16u, 17u, 33u, 64u}) {
    std::vector<float> x(n), q;
    for (std::size_t i = 0; i < n; ++i) x[i] = (float(i % 9) - 4.0f) + 0.5f;
    x[n / 2] = std::nanf("");
    q = x;
    noise::quantize_symmetric(q.data(), n, 127.0f, 8);  // step 1
    for (std::size_t i = 0; i < n; ++i) {
      if (i == n / 2) {
        CHECK(std::isnan(q[i]));
      } else {
        CHECK(q[i] == std::nearbyint(x[i]));
        CHECK(q[i] == noise::quantize_symmetric(x[i], 127.0f, 8));
      }
    }
  }
  rng g(8);
  std::vector<double> d(301);
  fill_uniform(g, d.data(), d.size(), -2.0, 2.0);
  std::vector<double> qd = d;
  noise::quantize_unipolar(qd.data(), qd.size(), 1.5, 5);
  for (std::size_t i = 0; i < d.size(); ++i) CHECK(qd[i] == noise::quantize_unipolar(d[i], 1.5, 5));
}

TEST_CASE("quantizer object, clip_only and bad quantiser parameters", "[noise][quantize]") {
  const auto c = noise::quantizer<double>::clip_only(0.5);
  CHECK_FALSE(c.quantizes());
  CHECK(c.levels() == 0);
  CHECK(c(0.123456789) == 0.123456789);
  CHECK(c(3.0) == 0.5);
  CHECK(c(-3.0) == -0.5);
  CHECK(noise::quantizer<double>::clip_only(0.5, noise::quantizer_range::unipolar)(-1.0) == 0.0);
  CHECK(noise::clip_symmetric(-7.0, 2.0) == -2.0);
  CHECK(noise::clip_unipolar(-7.0, 2.0) == 0.0);
  const auto u = noise::quantizer<double>::unipolar(1.0, 3);
  CHECK(u.levels() == 8);
  CHECK(u.step() == Approx(1.0 / 7));
  std::vector<double> v{-1, 0.07, 0.5, 2};
  u.apply(v.data(), v.size());
  CHECK(v == std::vector<double>{0, 0, 4.0 / 7, 1});

  CHECK_THROWS_AS(noise::quantize_symmetric(0.5, 1.0, 0), pnn::error);
  CHECK_THROWS_AS(noise::quantize_symmetric(0.5, 1.0, 25), pnn::error);
  CHECK_THROWS_AS(noise::quantize_unipolar(0.5, 1.0, 0), pnn::error);
  CHECK_THROWS_AS(noise::quantize_symmetric(0.5, 0.0, 8), pnn::error);
  CHECK_THROWS_AS(noise::quantize_symmetric(0.5, -1.0, 8), pnn::error);
  CHECK_THROWS_AS(noise::quantize_symmetric(0.5, std::nan(""), 8), pnn::error);
  CHECK_THROWS_AS(noise::quantizer<float>::symmetric(1.0f, 0), pnn::error);
  CHECK_THROWS_AS(noise::quantizer<float>::clip_only(-1.0f), pnn::error);
  float a[2] = {0.1f, 0.2f};
  CHECK_THROWS_AS(noise::quantize_symmetric(a, 2, 1.0f, 30), pnn::error);
  CHECK(a[0] == 0.1f);  // rejected before touching the data
}

// ---- read-out noise ----------------------------------------------------------------------------

TEST_CASE("gaussian_read adds sigma * full_scale noise", "[noise][read]") {
  const noise::gaussian_read p{.sigma = 0.05, .full_scale = 4.0};
  std::vector<double> y(big, 0.7);
  rng g(11);
  p.output(y.data(), y.size(), g);
  check_moments(moments_of(y), big, 0.7, 0.2 * 0.2);
  std::vector<float> yf(big, -0.3f);
  rng g2(12);
  p.output(yf.data(), yf.size(), g2);
  check_moments(moments_of(yf), big, -0.3, 0.2 * 0.2);
}

TEST_CASE("a network's settings reach every layer of their type; at_layer reaches one", "[noise][read][network]") {
  using noisy = dense<dynamic, dynamic, physics::digital, noise::gaussian_read, act::identity>;
  network<noisy, noisy, noisy> net({4, 3, 3, 2}, seed{1}, noise::gaussian_read{.sigma = 0.1},
                                   at_layer<1>(noise::gaussian_read{.sigma = 0.3, .full_scale = 2.0}));
  CHECK(layer<0>(net).noise.sigma == 0.1);
  CHECK(layer<1>(net).noise.sigma == 0.3);
  CHECK(layer<1>(net).noise.full_scale == 2.0);
  CHECK(layer<2>(net).noise.sigma == 0.1);
  // Applied in order: a later setting for every layer overrides an earlier one for one layer.
  network<noisy, noisy> later({4, 3, 2}, seed{1}, at_layer<0>(noise::gaussian_read{.sigma = 0.3}),
                              noise::gaussian_read{.sigma = 0.2});
  CHECK(layer<0>(later).noise.sigma == 0.2);
  CHECK(layer<1>(later).noise.sigma == 0.2);
}

TEST_CASE("multiplicative noise scales by 1 + sigma eps", "[noise][read]") {
  const noise::multiplicative p{.sigma = 0.03};
  std::vector<double> y(big, -2.0);
  rng g(13);
  p.output(y.data(), y.size(), g);
  check_moments(moments_of(y), big, -2.0, 0.06 * 0.06);
}

TEST_CASE("shot noise: Poisson counts, Gaussian limit for large counts", "[noise][read]") {
  SECTION("exact Poisson regime") {
    const noise::shot p{.photons_per_unit = 100, .gaussian_above = 1000};
    std::vector<double> y(big / 2, -0.3);  // λ = 30 photons; the sign is kept
    rng g(14);
    p.output(y.data(), y.size(), g);
    for (double v : y) {
      REQUIRE(v <= 0);
      REQUIRE(std::abs(v * 100 - std::round(v * 100)) < 1e-9);  // whole photons
    }
    check_moments(moments_of(y), y.size(), -0.3, 0.3 / 100, 1.0 / 30);  // Poisson excess kurtosis 1/λ
  }
  SECTION("Gaussian regime") {
    const noise::shot p{.photons_per_unit = 1e4, .gaussian_above = 1000};
    std::vector<float> y(big, 0.5f);  // N = 5000 photons, relative noise 1/√N
    rng g(15);
    p.output(y.data(), y.size(), g);
    check_moments(moments_of(y), big, 0.5, 0.5 / 1e4);
  }
  SECTION("photons from the optics") {
    const auto s = noise::shot::from_optics(1e-6, 1e-9, 1.55e-6, 0.8);
    const double photon_energy = noise::planck * noise::speed_of_light / 1.55e-6;
    CHECK(s.photons_per_unit == Approx(1e-6 * 1e-9 * 0.8 / photon_energy));
    CHECK_THROWS_AS(noise::shot::from_optics(1e-6, 1e-9, 1.55e-6, 1.5), pnn::error);
    CHECK_THROWS_AS(noise::shot::from_optics(-1, 1e-9, 1.55e-6), pnn::error);
  }
}

TEST_CASE("thermal noise has variance gain^2 * 4kTB/R", "[noise][read]") {
  const noise::thermal p{.temperature = 350, .bandwidth = 2e9, .load_resistance = 100, .gain = 2e4};
  const double sd = 2e4 * std::sqrt(4 * 1.380649e-23 * 350 * 2e9 / 100);
  CHECK(p.stddev() == Approx(sd));
  CHECK(noise::thermal{}.current_stddev() == Approx(5.7563e-7).epsilon(1e-4));
  std::vector<double> y(big, 0.25);
  rng g(16);
  p.output(y.data(), y.size(), g);
  check_moments(moments_of(y), big, 0.25, sd * sd);
}

TEST_CASE("saturation is y_sat tanh(y / y_sat)", "[noise][read]") {
  const noise::saturation p{.y_sat = 2.0};
  std::vector<double> y{-100, -3, -0.5, 0, 0.01, 1, 7};
  const auto y0 = y;
  rng g(1);
  p.output(y.data(), y.size(), g);
  for (std::size_t i = 0; i < y.size(); ++i) {
    CHECK(y[i] == Approx(2.0 * std::tanh(y0[i] / 2.0)).margin(1e-12));
    CHECK(std::abs(y[i]) <= 2.0);
  }
  std::vector<float> yf(37);  // float path (vectorised body and tail)
  for (std::size_t i = 0; i < yf.size(); ++i) yf[i] = static_cast<float>(i) * 0.2f - 3.0f;
  const auto yf0 = yf;
  p.output(yf.data(), yf.size(), g);
  for (std::size_t i = 0; i < yf.size(); ++i) CHECK(yf[i] == Approx(2.0 * std::tanh(yf0[i] / 2.0)).epsilon(1e-5).margin(1e-6));
}

TEST_CASE("dac and adc quantise their stage and nothing else", "[noise][convert]") {
  const noise::dac<4> d{.bound = 1.0};
  const noise::adc<6> a{.bound = 8.0};
  std::vector<double> x{-2, -0.4, 0.05, 0.33, 0.9};
  auto x0 = x;
  rng g(1);
  d.input(x.data(), x.size(), g);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == noise::quantize_symmetric(x0[i], 1.0, 4));
  CHECK(d.step() == Approx(1.0 / 7));
  a.output(x0.data(), x0.size(), g);
  CHECK(x0[2] == 0.0);  // |0.05| < Δ/2 = 4/31
  CHECK(x0[1] == Approx(-16.0 / 31));  // −0.4 is 1.55 steps: rounds to −2Δ
  CHECK(a.step() == Approx(8.0 / 31));
  STATIC_REQUIRE(has_input_stage<noise::dac<4>> && !has_output_stage<noise::dac<4>>);
  STATIC_REQUIRE(has_output_stage<noise::adc<6>> && !has_input_stage<noise::adc<6>>);
  STATIC_REQUIRE(noise::dac<>::bits == 7);
  STATIC_REQUIRE(noise::adc<>::bits == 9);
}

// ---- static per-device effects ---------------------------------------------------------------

TEST_CASE("variation: static per-device gain and offset", "[noise][device]") {
  noise::variation p{.multiplicative = 0.1, .additive = 0.02};
  rng g(21);
  p.prepare(400, 500, g);
  const std::size_t n = 400 * 500;
  std::vector<double> w(n, 1.0), we(n);
  p.weights(w.data(), we.data(), n);
  check_moments(moments_of(we), n, 1.0, 0.1 * 0.1 + 0.02 * 0.02);
  std::vector<double> we2(n);
  p.weights(w.data(), we2.data(), n);
  CHECK(we == we2);  // static: the same devices on every read
  std::vector<double> w0(n, 0.0);
  p.weights(w0.data(), we.data(), n);
  check_moments(moments_of(we), n, 0.0, 0.02 * 0.02);  // a zero weight keeps only the offset
  CHECK_THROWS_AS(p.weights(w.data(), we.data(), n - 1), pnn::error);
}

TEST_CASE("drift follows (t / t0)^(-nu) per device", "[noise][device]") {
  noise::drift p{.nu_mean = 0.06, .nu_std = 0.015, .t0 = 20.0};
  rng g(22);
  p.prepare(300, 400, g);
  const std::size_t n = 300 * 400;
  check_moments(moments_of(p.state.nu), n, 0.06, 0.015 * 0.015);  // truncation at 0 is 4σ away
  std::vector<double> w(n), we(n);
  rng gw(23);
  fill_uniform(gw, w.data(), n, -1.0, 1.0);
  p.weights(w.data(), we.data(), n);
  CHECK(we == w);  // at t ≤ t0 nothing has drifted
  for (double t : {20.0, 3600.0, 86400.0 * 365}) {
    p.at_time(t);
    p.weights(w.data(), we.data(), n);
    for (std::size_t i = 0; i < n; i += 997) CHECK(we[i] == Approx(w[i] * std::pow(t / 20.0, -double(p.state.nu[i]))).epsilon(1e-12));
    // The mean log-decay is −ν_mean ln(t/t0).
    std::vector<double> logr;
    for (std::size_t i = 0; i < n; ++i)
      if (std::abs(w[i]) > 1e-3) logr.push_back(std::log(we[i] / w[i]));
    const double l = std::log(t / 20.0);
    if (l > 0) check_moments(moments_of(logr), logr.size(), -0.06 * l, 0.015 * 0.015 * l * l);
  }
  SECTION("global drift compensation: one scale computed from the drawn nu, exact for a uniform nu") {
    // p is at one year: (t/t0)^(−ν) ≈ 0.42 on average, spread by ν_std · ln(t/t0) ≈ 0.21.
    const double t = 86400.0 * 365;
    std::vector<double> drifted(n);
    p.weights(w.data(), drifted.data(), n);  // uncompensated
    p.compensate = true;
    p.weights(w.data(), we.data(), n);
    // The scale by hand from the per-device ν the policy exposes: Σ|w| / Σ|w| (t/t0)^(−ν).
    double ref = 0, now = 0;
    for (std::size_t i = 0; i < n; ++i) {
      ref += std::abs(w[i]);
      now += std::abs(w[i]) * std::pow(t / 20.0, -double(p.state.nu[i]));
    }
    const double scale = ref / now;
    INFO("compensation scale " << scale);
    CHECK(scale > 2);  // a large correction, so that the checks below can tell
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i)
      worst = std::max(worst, std::abs(we[i] - w[i] * std::pow(t / 20.0, -double(p.state.nu[i])) * scale));
    CHECK(worst < 1e-12);
    // Against the undrifted weights, compensation leaves only the device-to-device spread: the
    // error of the outputs y = W x over random inputs is much smaller with it than without.
    const std::size_t in = 300, out = 400;  // prepare(300, 400): w is out × in, row-major
    rng gx(24);
    double e_comp = 0, e_drift = 0;
    std::vector<double> x(in);
    for (int trial = 0; trial < 4; ++trial) {
      fill_uniform(gx, x.data(), in, -1.0, 1.0);
      for (std::size_t o = 0; o < out; ++o) {
        double y0 = 0, yc = 0, yd = 0;
        for (std::size_t i = 0; i < in; ++i) {
          y0 += w[o * in + i] * x[i];
          yc += we[o * in + i] * x[i];
          yd += drifted[o * in + i] * x[i];
        }
        e_comp += (yc - y0) * (yc - y0);
        e_drift += (yd - y0) * (yd - y0);
      }
    }
    INFO("squared output error: compensated " << e_comp << ", uncompensated " << e_drift);
    CHECK(e_comp < 0.25 * e_drift);

    // All devices at the same ν: compensation undoes the drift, to round-off.
    noise::drift u{.nu_mean = 0.06, .nu_std = 0.0, .t0 = 20.0, .compensate = true};
    rng gu(25);
    u.prepare(300, 400, gu);
    u.at_time(t);
    std::vector<double> wu(n);
    u.weights(w.data(), wu.data(), n);
    double worst_u = 0;
    for (std::size_t i = 0; i < n; ++i) worst_u = std::max(worst_u, std::abs(wu[i] - w[i]));
    INFO("uniform nu: the drift alone scales by " << std::pow(t / 20.0, -0.06));
    CHECK(worst_u < 1e-12);
    u.compensate = false;
    u.weights(w.data(), wu.data(), n);
    CHECK(wu[0] == Approx(w[0] * std::pow(t / 20.0, -double(u.state.nu[0]))).epsilon(1e-12));
    CHECK(std::abs(wu[0] - w[0]) > 0.1 * std::abs(w[0]));
  }
  CHECK_THROWS_AS(p.at_time(-1.0), pnn::error);
  CHECK(p.time == 86400.0 * 365);  // a rejected time changes nothing
}

TEST_CASE("stuck_at: fractions and stuck values", "[noise][device]") {
  noise::stuck_at p{.fraction_g_min = 0.02, .fraction_g_max = 0.05, .w_max = 0.6};
  rng g(24);
  const std::size_t n = 500 * 400;
  p.prepare(500, 400, g);
  std::vector<float> w(n, 0.25f), we(n);
  p.weights(w.data(), we.data(), n);
  std::size_t zero = 0, plus = 0, minus = 0, free = 0;
  for (float v : we) {
    if (v == 0.0f) ++zero;
    else if (v == 0.6f) ++plus;
    else if (v == -0.6f) ++minus;
    else if (v == 0.25f) ++free;
  }
  REQUIRE(zero + plus + minus + free == n);
  const auto binom_ok = [&](std::size_t k, double pr) {
    const double nn = static_cast<double>(n);
    return std::abs(static_cast<double>(k) - nn * pr) <= 5 * std::sqrt(nn * pr * (1 - pr));
  };
  CHECK(binom_ok(zero, 0.02));
  CHECK(binom_ok(plus, 0.025));
  CHECK(binom_ok(minus, 0.025));
  CHECK(p.stuck_count() == zero + plus + minus);
}

// ---- chain -----------------------------------------------------------------------------------

TEST_CASE("chain applies its members in order", "[noise][chain]") {
  using sat_then_adc = noise::chain<noise::saturation, noise::adc<3>>;
  using adc_then_sat = noise::chain<noise::adc<3>, noise::saturation>;
  const sat_then_adc a{{noise::saturation{.y_sat = 1.0}, noise::adc<3>{.bound = 1.0}}};
  const adc_then_sat b{{noise::adc<3>{.bound = 1.0}, noise::saturation{.y_sat = 1.0}}};
  double ya = 0.7, yb = 0.7;
  rng g(1);
  a.output(&ya, 1, g);
  b.output(&yb, 1, g);
  CHECK(ya == Approx(2.0 / 3));                // tanh(0.7) = 0.604 → 2 steps of 1/3
  CHECK(yb == Approx(std::tanh(2.0 / 3)));     // 0.7 → 2/3 → tanh(2/3) = 0.583
  CHECK(ya != yb);
  // After saturation the ADC output is on its grid; after the ADC the saturation leaves it.
  CHECK(ya * 3 == Approx(std::round(ya * 3)));
  CHECK(std::abs(yb * 3 - std::round(yb * 3)) > 0.1);
}

TEST_CASE("chain: a stage exists iff a member has it", "[noise][chain]") {
  using out_only = noise::chain<noise::gaussian_read, noise::adc<8>>;
  STATIC_REQUIRE(has_output_stage<out_only> && !has_input_stage<out_only> && !has_weight_stage<out_only>);
  STATIC_REQUIRE(!has_static_state<out_only> && !has_time_stage<out_only>);
  using mixed = noise::chain<noise::dac<6>, noise::drift, noise::saturation>;
  STATIC_REQUIRE(has_input_stage<mixed> && has_output_stage<mixed> && has_weight_stage<mixed>);
  STATIC_REQUIRE(has_static_state<mixed> && has_time_stage<mixed>);
  STATIC_REQUIRE(!has_output_stage<noise::none> && !has_weight_stage<noise::none>);
  STATIC_REQUIRE(!has_input_stage<noise::gaussian_read> && !has_weight_stage<noise::gaussian_read>);
}

TEST_CASE("chain members draw from independent streams", "[noise][chain]") {
  // Two Gaussian members with the same σ: independent draws add variances (2σ²); the same
  // stream twice would add the same ε twice (4σ²).
  const noise::chain<noise::gaussian_read, noise::gaussian_read> c{{{.sigma = 0.1}, {.sigma = 0.1}}};
  std::vector<double> y(big, 0.0);
  rng g(31);
  c.output(y.data(), y.size(), g);
  check_moments(moments_of(y), big, 0.0, 2 * 0.01);

  // Static state too: two variation members draw different devices.
  noise::chain<noise::variation, noise::variation> v{{{.multiplicative = 0.1}, {.multiplicative = 0.1}}};
  rng gv(32);
  v.prepare(100, 100, gv);
  CHECK(v.get<0>().state.gain_xi != v.get<1>().state.gain_xi);
  std::vector<double> w(10000, 1.0), we(10000);
  v.weights(w.data(), we.data(), w.size());
  for (std::size_t i = 0; i < w.size(); i += 101) {
    const double e = (1 + 0.1 * double(v.get<0>().state.gain_xi[i])) * (1 + 0.1 * double(v.get<1>().state.gain_xi[i]));
    CHECK(we[i] == Approx(e).epsilon(1e-12));
  }
}

TEST_CASE("chain weights stage: later members act on earlier ones' output", "[noise][chain]") {
  noise::chain<noise::variation, noise::stuck_at> c{
      {noise::variation{.multiplicative = 0.2}, noise::stuck_at{.fraction_g_min = 0.1, .fraction_g_max = 0.1, .w_max = 3.0}}};
  rng g(33);
  c.prepare(50, 40, g);
  std::vector<double> w(2000, 0.5), we(2000);
  c.weights(w.data(), we.data(), w.size());
  std::size_t stuck = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const auto code = c.get<1>().state.code[i];
    if (code != 0) {
      ++stuck;
      CHECK((we[i] == 0.0 || we[i] == 3.0 || we[i] == -3.0));
    } else {
      CHECK(we[i] == Approx(0.5 * (1 + 0.2 * double(c.get<0>().state.gain_xi[i]))));
    }
  }
  CHECK(stuck > 0);
}

// ---- parameters and seeds --------------------------------------------------------------------

TEST_CASE("bad noise parameters are rejected", "[noise][errors]") {
  CHECK_THROWS_AS(noise::gaussian_read{.sigma = -0.1}.validate(), pnn::error);
  CHECK_THROWS_AS((noise::gaussian_read{.sigma = 0.1, .full_scale = 0}.validate()), pnn::error);
  CHECK_THROWS_AS(noise::gaussian_read{.sigma = std::nan("")}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::multiplicative{.sigma = -1}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::shot{.photons_per_unit = 0}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::thermal{.load_resistance = 0}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::thermal{.temperature = -1}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::saturation{.y_sat = 0}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::dac<8>{.bound = 0}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::adc<8>{.bound = -2}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::variation{.multiplicative = -0.1}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::drift{.nu_std = -0.1}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::drift{.t0 = 0}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::stuck_at{.fraction_g_min = 1.5}.validate(), pnn::error);
  CHECK_THROWS_AS(noise::stuck_at{.fraction_g_max = -0.1}.validate(), pnn::error);
  CHECK_THROWS_AS((noise::stuck_at{.fraction_g_min = 0.6, .fraction_g_max = 0.6}.validate()), pnn::error);
  CHECK_THROWS_AS((noise::chain<noise::gaussian_read, noise::adc<8>>{{{.sigma = 0.1}, {.bound = 0}}}.validate()), pnn::error);
  CHECK_NOTHROW(noise::chain<noise::gaussian_read, noise::adc<8>>{}.validate());

  // A hook refuses a bad parameter set after validation, before touching the data.
  noise::gaussian_read p{};
  p.sigma = -1;
  double y = 1.0;
  rng g(1);
  CHECK_THROWS_AS(p.output(&y, 1, g), pnn::error);
  CHECK(y == 1.0);

  // The layer validates its policy before drawing anything.
  using layer_t = dense<dynamic, dynamic, physics::basic_digital<double>, noise::gaussian_read, act::tanh>;
  CHECK_THROWS_AS((network<layer_t>({4, 3}, seed{1}, noise::gaussian_read{.sigma = -0.5})), pnn::error);
}

TEST_CASE("noise is reproducible from seeds", "[noise][seeds]") {
  const noise::chain<noise::dac<5>, noise::gaussian_read, noise::shot, noise::adc<8>> c{};
  const auto run = [&](std::uint64_t s, std::uint64_t stream) {
    std::vector<float> y(1000);
    rng gy(99);
    fill_uniform(gy, y.data(), y.size(), -1.0f, 1.0f);
    rng g(s, stream);
    c.input(y.data(), y.size(), g);
    c.output(y.data(), y.size(), g);
    return y;
  };
  CHECK(run(1, 0) == run(1, 0));
  CHECK(run(1, 0) != run(2, 0));
  CHECK(run(1, 0) != run(1, 1));
  noise::stuck_at a{.fraction_g_min = 0.1}, b = a;
  rng g1(5), g2(5);
  a.prepare(30, 30, g1);
  b.prepare(30, 30, g2);
  CHECK(a.state.code == b.state.code);
}

// ---- layers ----------------------------------------------------------------------------------

TEST_CASE("a layer reads through the weights stage; other policies are unchanged", "[noise][dense]") {
  using dd = physics::basic_digital<double>;
  using var_layer = dense<dynamic, dynamic, dd, noise::variation, act::identity>;
  using clean_layer = dense<dynamic, dynamic, dd, noise::none, act::identity>;
  STATIC_REQUIRE(var_layer::has_weight_noise && !clean_layer::has_weight_noise);
  STATIC_REQUIRE(dense<dynamic, dynamic, dd, noise::chain<noise::stuck_at, noise::gaussian_read>>::has_weight_noise);
  STATIC_REQUIRE(!dense<dynamic, dynamic, dd, noise::chain<noise::dac<8>, noise::gaussian_read>>::has_weight_noise);

  network<var_layer> net({6, 4}, seed{3}, noise::variation{.multiplicative = 0.2, .additive = 0.05});
  auto& l = layer<0>(net);
  REQUIRE(l.noise.state.gain_xi.size() == 24);
  rng gx(4);
  xt::xtensor<double, 2> x({5, 6});
  for (auto& v : x) v = gx.normal_double();
  rng g(7);
  const auto y = forward(net, x, g);
  std::vector<double> we(24);
  l.noise.weights(l.tile.weight_data(), we.data(), 24);
  for (std::size_t r = 0; r < 5; ++r)
    for (std::size_t j = 0; j < 4; ++j) {
      double s = l.tile.bias_data()[j];
      for (std::size_t i = 0; i < 6; ++i) s += we[j * 6 + i] * x(r, i);
      CHECK(y(r, j) == Approx(s).epsilon(1e-12));
    }
  // The effective weights differ from the programmed ones, which stay untouched.
  network<clean_layer> clean({6, 4}, seed{3});
  const auto yc = forward(clean, x, g);
  CHECK(std::abs(y(0, 0) - yc(0, 0)) > 1e-6);
  for (std::size_t i = 0; i < 24; ++i) CHECK(l.tile.weight_data()[i] == layer<0>(clean).tile.weight_data()[i]);
}

TEST_CASE("drift through a network: set_time decays the read", "[noise][dense]") {
  using dd = physics::basic_digital<double>;
  using drift_layer = dense<dynamic, dynamic, dd, noise::drift, act::identity>;
  network<drift_layer> net({8, 3}, seed{5}, noise::drift{.nu_mean = 0.1, .nu_std = 0.0});
  xt::xtensor<double, 2> x = xt::ones<double>({1, 8});
  rng g(1);
  const auto y0 = forward(net, x, g);
  noise::set_time(net, 20.0 * 1000);
  const auto y1 = forward(net, x, g);
  const double nu = static_cast<double>(layer<0>(net).noise.state.nu[0]);  // ν_std = 0: every device drifts alike
  CHECK(nu == Approx(0.1).epsilon(1e-6));
  for (std::size_t j = 0; j < 3; ++j) CHECK(y1(0, j) == Approx(y0(0, j) * std::pow(1000.0, -nu)).epsilon(1e-12));
}

namespace {
// q(v) = Δ·round(clip(v, −b, b)/Δ), Δ = b/(2^(bits−1) − 1): the symmetric converter grid,
// written out here as the reference.
double on_grid(double v, double b, unsigned bits) {
  const double step = b / double((1u << (bits - 1)) - 1);
  return step * std::round(std::min(std::max(v, -b), b) / step);
}
// One layer read through DAC → W → (read noise) → ADC, then the digital bias and activation,
// by hand: rows of `x` (n × in) through weights `w` (out × in), bias `b`.
template <class Act>
xt::xtensor<double, 2> periphery_by_hand(const xt::xtensor<double, 2>& x, const double* w, const double* b,
                                         std::size_t out, double dac_bound, double adc_bound, Act act) {
  const std::size_t n = x.shape()[0], in = x.shape()[1];
  xt::xtensor<double, 2> y({n, out});
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t j = 0; j < out; ++j) {
      double s = 0;
      for (std::size_t i = 0; i < in; ++i) s += w[j * in + i] * on_grid(x(r, i), dac_bound, 8);
      y(r, j) = act(on_grid(s, adc_bound, 10) + b[j]);
    }
  return y;
}
}  // namespace

TEST_CASE("a full periphery chain (DAC 8 bits, read noise, ADC 10 bits) matches a hand computation",
          "[noise][dense]") {
  using dd = physics::basic_digital<double>;
  using periphery = noise::chain<noise::dac<8>, noise::gaussian_read, noise::adc<10>>;
  using layer_t = dense<dynamic, dynamic, dd, periphery, act::identity>;
  periphery p{};
  p.get<0>().bound = 1.0;
  p.get<2>().bound = 1.5;
  const double dac_step = 1.0 / 127, adc_step = 1.5 / 511;
  REQUIRE(p.get<0>().step() == Approx(dac_step).epsilon(1e-15));
  REQUIRE(p.get<2>().step() == Approx(adc_step).epsilon(1e-15));
  const auto identity = [](double v) { return v; };

  SECTION("without read noise the output is the converters' grids applied by hand") {
    p.get<1>().sigma = 0;
    network<layer_t> net({8, 4}, seed{8}, p);
    auto& l = layer<0>(net);
    rng gb(2);
    for (std::size_t j = 0; j < 4; ++j) l.tile.bias_data()[j] = 0.3 * gb.normal_double();  // digital, after the ADC
    for (std::size_t q = 0; q < 32; ++q) l.tile.weight_data()[q] *= 1.5;  // so that some reads exceed the ADC's range
    xt::xtensor<double, 2> x({64, 8});
    rng gx(9);
    for (auto& v : x) v = -1.3 + 2.6 * gx.uniform_double();  // some inputs beyond the DAC's range
    rng g(10);
    const auto y = forward(net, x, g);
    const auto ref = periphery_by_hand(x, l.tile.weight_data(), l.tile.bias_data(), 4, 1.0, 1.5, identity);
    std::size_t clipped_out = 0, off_grid = 0;
    double worst = 0;
    for (std::size_t r = 0; r < 64; ++r)
      for (std::size_t j = 0; j < 4; ++j) {
        worst = std::max(worst, std::abs(y(r, j) - ref(r, j)));
        const double code = (y(r, j) - l.tile.bias_data()[j]) / adc_step;
        off_grid += std::abs(code - std::round(code)) > 1e-9 ? 1U : 0U;
        clipped_out += std::abs(std::round(code)) == 511 ? 1U : 0U;
      }
    std::size_t clipped_in = 0;
    for (double v : x) clipped_in += std::abs(v) > 1.0 ? 1U : 0U;
    INFO("max |y - hand| " << worst << "; " << clipped_in << " inputs and " << clipped_out << " reads clipped");
    CHECK(worst < 1e-12);
    CHECK(off_grid == 0);
    CHECK(clipped_in > 0);   // both clips are exercised
    CHECK(clipped_out > 0);
    // The converters matter: the unquantised read differs by more than round-off.
    double unquantised = 0;
    for (std::size_t r = 0; r < 64; ++r)
      for (std::size_t j = 0; j < 4; ++j) {
        double s = l.tile.bias_data()[j];
        for (std::size_t i = 0; i < 8; ++i)
          s += l.tile.weight_data()[j * 8 + i] * std::min(std::max(x(r, i), -1.0), 1.0);
        unquantised = std::max(unquantised, std::abs(s - y(r, j)));
      }
    CHECK(unquantised > 0.1 * dac_step);

    // Two layers with a tanh between them: the composition of the hand computation.
    using hidden_t = dense<dynamic, dynamic, dd, periphery, act::tanh>;
    network<hidden_t, layer_t> mlp({8, 6, 4}, seed{11}, p);
    const auto ym = forward(mlp, x, g);
    const auto& l0 = layer<0>(mlp);
    const auto& l1 = layer<1>(mlp);
    const auto h = periphery_by_hand(x, l0.tile.weight_data(), l0.tile.bias_data(), 6, 1.0, 1.5,
                                     [](double v) { return std::tanh(v); });
    const auto ref2 = periphery_by_hand(h, l1.tile.weight_data(), l1.tile.bias_data(), 4, 1.0, 1.5, identity);
    CHECK(xt::amax(xt::abs(ym - ref2))() < 1e-12);
  }

  SECTION("read noise has mean 0 and sd sigma * full_scale, and every noisy read lies on the ADC grid") {
    p.get<1>().sigma = 0.05;
    p.get<1>().full_scale = 2.0;  // σ_abs = 0.1, 34 ADC steps: the rounding adds Δ²/12 to the variance
    const double sd = 0.1;
    network<layer_t> net({8, 4}, seed{8}, p);
    auto& l = layer<0>(net);
    for (std::size_t j = 0; j < 4; ++j) l.tile.bias_data()[j] = 0.01 * double(j + 1);
    constexpr std::size_t reads = 20000;
    xt::xtensor<double, 2> x({reads, 8});
    for (std::size_t r = 0; r < reads; ++r)
      for (std::size_t i = 0; i < 8; ++i) x(r, i) = 0.3 - 0.1 * double(i);  // the same input, read `reads` times
    const xt::xtensor<double, 2> x0 = xt::view(x, xt::range(0, 1), xt::all());
    const auto clean = periphery_by_hand(x0, l.tile.weight_data(), l.tile.bias_data(), 4, 1.0, 1.5, identity);
    std::vector<double> exact(4);  // W q_dac(x), without the ADC
    for (std::size_t j = 0; j < 4; ++j) {
      for (std::size_t i = 0; i < 8; ++i) exact[j] += l.tile.weight_data()[j * 8 + i] * on_grid(x(0, i), 1.0, 8);
      INFO("clean read " << exact[j]);
      REQUIRE(std::abs(exact[j]) < 1.5 - 6 * sd);  // noisy reads stay clear of the ADC's clip
    }
    rng g(12);
    const auto y = forward(net, x, g);
    std::vector<double> dev;
    dev.reserve(reads * 4);
    std::size_t off_grid = 0;
    for (std::size_t r = 0; r < reads; ++r)
      for (std::size_t j = 0; j < 4; ++j) {
        const double v = y(r, j) - l.tile.bias_data()[j];
        off_grid += std::abs(v / adc_step - std::round(v / adc_step)) > 1e-9 ? 1U : 0U;
        dev.push_back(v - exact[j]);
      }
    CHECK(off_grid == 0);
    check_moments(moments_of(dev), dev.size(), 0.0, sd * sd + adc_step * adc_step / 12);
    // Independent reads: neighbouring reads of one output are uncorrelated.
    double c = 0;
    for (std::size_t r = 1; r < reads; ++r) c += dev[r * 4] * dev[(r - 1) * 4];
    c /= double(reads - 1) * sd * sd;
    CHECK(std::abs(c) < 5 / std::sqrt(double(reads)));
    // The noiseless hand value is the mean read to within the noise's standard error.
    for (std::size_t j = 0; j < 4; ++j) {
      double m = 0;
      for (std::size_t r = 0; r < reads; ++r) m += y(r, j) / double(reads);
      CHECK(std::abs(m - clean(0, j)) < 5 * sd / std::sqrt(double(reads)) + adc_step / 2);
    }
  }
}

TEST_CASE("the substrate decides once whether the transposed read is noisy, for every rule alike",
          "[noise][dense][transposed]") {
  // A crossbar's transposed read drives the columns and senses the rows: it goes through the
  // layer's read periphery like the forward read. A digital tile computes dy·W exactly.
  using xbar = physics::crossbar<physics::devices::ideal>;
  using noisy_xbar = dense<dynamic, dynamic, xbar, noise::gaussian_read, act::identity>;
  using noisy_digital = dense<dynamic, dynamic, physics::digital, noise::gaussian_read, act::identity>;
  STATIC_REQUIRE(!tile_hooks::computes_transposed_exactly<noisy_xbar::tile_type>);
  STATIC_REQUIRE(tile_hooks::computes_transposed_exactly<noisy_digital::tile_type>);

  auto transposed_twice = [](const auto& l) {
    std::vector<float> dy(3 * l.out_size()), x(3 * l.in_size()), a(x.size()), b(x.size()), exact(x.size());
    rng gd(1);
    for (auto& v : dy) v = gd.normal();
    rng g1(2), g2(3);
    l.backward_read_at(x.data(), dy.data(), 3, a.data(), g1);
    l.read_transposed(dy.data(), 3, b.data(), g2);
    std::vector<float> w(l.in_size() * l.out_size());
    l.tile.effective_weights(w.data());
    for (std::size_t r = 0; r < 3; ++r)
      for (std::size_t i = 0; i < l.in_size(); ++i) {
        double s = 0;
        for (std::size_t j = 0; j < l.out_size(); ++j) s += double(dy[r * l.out_size() + j]) * w[j * l.in_size() + i];
        exact[r * l.in_size() + i] = float(s);
      }
    double da = 0, db = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
      da = std::max(da, double(std::abs(a[k] - exact[k])));
      db = std::max(db, double(std::abs(b[k] - exact[k])));
    }
    return std::pair{da, db};
  };
  network<noisy_xbar> xnet({8, 5}, seed{4}, xbar::params::ideal(), noise::gaussian_read{.sigma = 0.1});
  const auto [xa, xb] = transposed_twice(layer<0>(xnet));
  CHECK(xa > 0.01);  // backprop's read (backward_read_at) and EP's (read_transposed) are both noisy
  CHECK(xb > 0.01);
  CHECK(xa < 0.6);   // … by the policy's σ = 0.1, not more
  network<noisy_digital> dnet({8, 5}, seed{4}, physics::digital::params{}, noise::gaussian_read{.sigma = 0.1});
  const auto [da, db] = transposed_twice(layer<0>(dnet));
  CHECK(da < 1e-5);
  CHECK(db < 1e-5);
  // The forward read of the same digital layer stays noisy.
  xt::xtensor<float, 2> x = xt::ones<float>({2, 8});
  rng g1(5), g2(6);
  CHECK(xt::amax(xt::abs(forward(dnet, x, g1) - forward(dnet, x, g2)))() > 0.01f);
}

TEST_CASE("a noisy transposed read acts in the converters' range: its noise scales with the errors",
          "[noise][dense][transposed]") {
  // Backward errors are ~1/batch in size; a read-noise floor set for O(1) forward signals would
  // swamp them if it were added in absolute units. The layer scales each row of dy to unit
  // abs-max before the read (abs-max noise management) and the read-out back, so reading
  // 10⁻³·dy gives exactly 10⁻³ times the noisy read of dy with the same stream.
  using xbar = physics::crossbar<physics::devices::ideal>;
  using layer_t = dense<dynamic, dynamic, xbar, noise::gaussian_read, act::identity>;
  xbar::params p;
  p.forward.is_perfect = p.backward.is_perfect = true;
  network<layer_t> net({6, 4}, seed{3}, p, noise::gaussian_read{.sigma = 0.05, .full_scale = 1.0});
  const auto& l = layer<0>(net);
  xt::xtensor<float, 2> dy({3, 4});
  rng gd(4);
  fill_uniform(gd, dy.data(), dy.size(), -1.0f, 1.0f);
  const xt::xtensor<float, 2> small = dy * 1e-3f;
  xt::xtensor<float, 2> dx({3, 6}), dx_small({3, 6}), clean({3, 6});
  rng g1(7), g2(7);
  l.read_transposed(dy.data(), 3, dx.data(), g1);
  l.read_transposed(small.data(), 3, dx_small.data(), g2);
  rng g3(8);
  l.tile.read_transposed(dy.data(), 3, clean.data(), g3);
  double noise = 0;
  for (std::size_t k = 0; k < dx.size(); ++k) {
    CHECK(dx_small.data()[k] == Approx(1e-3 * dx.data()[k]).epsilon(1e-4).margin(1e-9));
    noise = std::max(noise, std::abs(double(dx.data()[k]) - double(clean.data()[k])));
  }
  CHECK(noise > 1e-3);  // the read is noisy
}

TEST_CASE("noise parameters are apart from the drawn device state: reconfigure keeps the devices",
          "[noise][device]") {
  using dd = physics::basic_digital<double>;
  using var_layer = dense<dynamic, dynamic, dd, noise::variation, act::identity>;
  using chain_t = noise::chain<noise::variation, noise::drift>;
  using chained = dense<dynamic, dynamic, dd, chain_t, act::identity>;
  network<var_layer, chained> net({5, 4, 3}, seed{2}, noise::variation{.multiplicative = 0.1},
                                  chain_t{{noise::variation{.multiplicative = 0.1}, noise::drift{.nu_mean = 0.05}}});
  auto effective = [](const auto& l) {
    std::vector<double> w(l.in_size() * l.out_size());
    l.noise.weights(l.tile.weight_data(), w.data(), w.size());
    return w;
  };
  const auto xi0 = layer<0>(net).noise.state.gain_xi;
  const auto w_before = effective(layer<0>(net));
  // σ 0.1 → 0.2: the same devices deviate twice as much.
  CHECK(noise::reconfigure(net, noise::variation{.multiplicative = 0.2}) == 2);
  CHECK(layer<0>(net).noise.state.gain_xi == xi0);
  CHECK(layer<0>(net).noise.multiplicative == 0.2);
  CHECK(layer<1>(net).noise.get<0>().multiplicative == 0.2);
  const auto w_after = effective(layer<0>(net));
  const double* w = layer<0>(net).tile.weight_data();
  for (std::size_t k = 0; k < w_after.size(); ++k)
    CHECK(w_after[k] - w[k] == Approx(2 * (w_before[k] - w[k])).epsilon(1e-12).margin(1e-15));
  // A drift member gets a new t0 and its factors follow; its exponents stay.
  noise::set_time(net, 1000.0);
  const auto nu0 = layer<1>(net).noise.get<1>().state.nu;
  CHECK(noise::reconfigure(net, noise::drift{.nu_mean = 0.05, .t0 = 10.0, .time = 1000.0}) == 1);
  const auto& d = layer<1>(net).noise.get<1>();
  CHECK(d.state.nu == nu0);
  CHECK(d.state.factor[0] == Approx(std::pow(100.0, -double(nu0[0]))).epsilon(1e-12));
  // Nothing to reconfigure, or impossible parameters: an error, and nothing changes.
  CHECK_THROWS_WITH(noise::reconfigure(net, noise::stuck_at{}), Catch::Contains("no layer"));
  CHECK_THROWS_AS(noise::reconfigure(net, noise::variation{.multiplicative = -1.0}), pnn::error);
  CHECK(layer<0>(net).noise.multiplicative == 0.2);
  static_assert(has_drawn_state<noise::variation> && has_drawn_state<noise::drift> && has_drawn_state<noise::stuck_at> &&
                has_drawn_state<noise::column_gain> && !has_drawn_state<noise::gaussian_read>);
}

}  // namespace tests_noise
