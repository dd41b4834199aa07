// SPDX-License-Identifier: MIT
// Scattering media as a substrate: speckle statistics of a Gaussian transmission matrix,
// unitarity of a lossless medium, the adjoint gradient against finite differences, shot noise,
// measured matrices, the frozen-mask baseline, threads, training the control phases without a
// model, and bad input; calibrating a twin from camera frames alone (probe, fit_transmission).
#include <catch2/catch.hpp>

// GCC 12 reports false -Warray-bounds / -Wstringop-overflow in check_substrate's message
// concatenation when it is instantiated at -O2 (as in tests/quantum.cpp).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <numbers>
#include <vector>

#include <pnn/learn/physics_aware.hpp>
#include <pnn/nn/check_substrate.hpp>
#include <pnn/physics/energy.hpp>
#include <pnn/physics/scattering.hpp>
#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_scattering {

using namespace pnn;

namespace {
using sd = physics::basic_scattering_medium<double>;
using tile_d = sd::tile<dynamic, dynamic>;

tile_d make_tile(std::size_t in, std::size_t out, sd::params p, std::uint64_t seed) {
  tile_d t;
  t.set_params(p);
  t.resize(in, out);
  rng g(seed);
  t.prepare(g);
  return t;
}

std::vector<double> random_vector(std::size_t n, std::uint64_t seed, double lo = 0, double hi = 1) {
  rng g(seed);
  std::vector<double> v(n);
  for (auto& e : v) e = lo + (hi - lo) * g.uniform_double();
  return v;
}
}  // namespace

TEST_CASE("scattering medium: a Gaussian transmission matrix gives Rayleigh speckle of mean 1", "[scattering]") {
  // Uniformly random input phases (data phase 2 pi, x uniform in [0, 1]): each camera field is a
  // sum of N random phasors, a circular Gaussian across inputs.
  const std::size_t n = 400, out = 64;
  const tile_d t = make_tile(256, out, {.control_pixels = 0, .data_phase = 2 * std::numbers::pi}, 3);
  const auto x = random_vector(n * 256, 4);
  std::vector<double> y(n * out);
  rng g(1);
  t.read(x.data(), n, y.data(), g);
  double mean = 0, m2 = 0;
  for (double v : y) mean += v / double(y.size());
  for (double v : y) m2 += (v - mean) * (v - mean) / double(y.size() - 1);
  // Fully developed speckle: exponential intensity, contrast std/mean = 1.
  CHECK(mean == Approx(1.0).epsilon(0.05));
  CHECK(std::sqrt(m2) / mean == Approx(1.0).epsilon(0.05));
}

TEST_CASE("scattering medium: a lossless medium conserves power and its matrix is unitary", "[scattering]") {
  // Out = N = In + K: the whole unitary; every input's power reaches the camera.
  const tile_d t = make_tile(6, 10, {.control_pixels = 4, .kind = sd::medium::unitary}, 7);
  double worst = 0;
  for (std::size_t a = 0; a < 10; ++a)
    for (std::size_t b = 0; b < 10; ++b) {
      std::complex<double> dot = 0;
      for (std::size_t j = 0; j < 10; ++j) dot += std::conj(t.transmission(j, a)) * t.transmission(j, b);
      worst = std::max(worst, std::abs(dot - (a == b ? 1.0 : 0.0)));
    }
  CHECK(worst < 1e-12);
  const auto x = random_vector(5 * 6, 2);
  std::vector<double> y(5 * 10);
  rng g(1);
  t.read(x.data(), 5, y.data(), g);
  for (std::size_t r = 0; r < 5; ++r) {
    double p = 0;
    for (std::size_t j = 0; j < 10; ++j) p += y[r * 10 + j];
    CHECK(p == Approx(10.0).epsilon(1e-12));  // N unit-amplitude SLM pixels
  }
}

TEST_CASE("scattering medium: the adjoint gradient equals finite differences; check_substrate passes",
          "[scattering]") {
  // Control pixels beside the data (K = 7), or one phase on each data pixel (K = In = 5).
  const auto placement = GENERATE(sd::mask::beside_data, sd::mask::on_data);
  const tile_d t = make_tile(5, 4, {.control_pixels = 7, .placement = placement, .output_gain = 2}, 11);
  const std::size_t controls = placement == sd::mask::on_data ? 5 : 7;
  REQUIRE(t.parameter_count() == controls + 4);
  const std::size_t n = 3;
  const auto x = random_vector(n * 5, 3), dy = random_vector(n * 4, 5, -1, 1);
  std::vector<double> grad(t.parameter_count());
  rng g(1);
  t.parameter_gradient(x.data(), dy.data(), n, 1.0, nullptr, grad.data(), g);
  std::vector<double> theta(t.parameter_count());
  t.get_parameters(theta.data());
  auto loss = [&](const tile_d& tt) {
    std::vector<double> y(n * 4);
    rng gr(2);
    tt.read(x.data(), n, y.data(), gr);
    double l = 0;
    for (std::size_t k = 0; k < y.size(); ++k) l += dy[k] * y[k];
    return l;
  };
  for (std::size_t k = 0; k < controls; ++k) {
    tile_d tp = t, tm = t;
    auto moved = theta;
    moved[k] += 1e-6;
    tp.set_parameters(moved.data());
    moved[k] -= 2e-6;
    tm.set_parameters(moved.data());
    CHECK(grad[k] == Approx((loss(tp) - loss(tm)) / 2e-6).epsilon(1e-6).margin(1e-9));
  }
  const auto rep = check_substrate<sd>({.control_pixels = 6, .placement = placement},
                                       {.in = 5, .out = 4, .linear = false, .tolerance = 1e-6,
                                                               .finite_difference_step = 1e-5});
  INFO(rep.summary());
  CHECK(rep.passed());
  CHECK(rep.vjp_error < 1e-6);
}

TEST_CASE("scattering medium: shot noise is unbiased with variance g^2 I / photons; costs", "[scattering]") {
  tile_d noisy = make_tile(4, 3, {.control_pixels = 4, .output_gain = 2, .photons = 50}, 5);
  tile_d clean = make_tile(4, 3, {.control_pixels = 4, .output_gain = 2}, 5);
  const auto x = random_vector(4, 1);
  const std::size_t n = 4000;
  std::vector<double> xs;
  for (std::size_t r = 0; r < n; ++r) xs.insert(xs.end(), x.begin(), x.end());
  std::vector<double> y(n * 3), y0(3);
  rng g(9);
  noisy.read(xs.data(), n, y.data(), g);
  clean.read(x.data(), 1, y0.data(), g);
  for (std::size_t j = 0; j < 3; ++j) {
    double mean = 0, var = 0;
    for (std::size_t r = 0; r < n; ++r) mean += y[r * 3 + j] / double(n);
    for (std::size_t r = 0; r < n; ++r) var += (y[r * 3 + j] - mean) * (y[r * 3 + j] - mean) / double(n - 1);
    const double expected_var = 2.0 * y0[j] / 50;  // g^2 * I / photons with y0 = g * I
    INFO("pixel " << j << ": I g = " << y0[j]);
    CHECK(mean == Approx(y0[j]).margin(5 * std::sqrt(expected_var / double(n))));
    CHECK(var == Approx(expected_var).epsilon(0.1));
  }
  cost_counter c;
  clean.attach_cost_counter(&c);
  std::vector<double> dy(3, 1.0), dx(4), grad(clean.parameter_count());
  clean.read(x.data(), 1, y0.data(), g);
  clean.read_vjp(x.data(), dy.data(), 1, dx.data(), g);
  CHECK(c.totals().reads == 1);
  CHECK(c.totals().transposed_reads == 1);
  CHECK(c.totals().optical_channels == 2 * (8 + 3));
  CHECK(estimate_energy(c.totals(), {}, energy_model{}).optical > 0);
}

TEST_CASE("scattering medium: a measured matrix is used as given; bad ones change nothing", "[scattering]") {
  tile_d t = make_tile(2, 2, {.control_pixels = 1}, 1);
  // A = [[1, 0, 0], [0, 0, i]]: camera pixel 0 sees data pixel 0, pixel 1 the control pixel.
  const std::vector<double> a{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  t.set_transmission(a);
  CHECK(t.transmission(1, 2) == std::complex<double>(0, 1));
  std::vector<double> x{0.3, 0.8}, y(2);
  rng g(1);
  t.read(x.data(), 1, y.data(), g);
  CHECK(y[0] == Approx(1.0));
  CHECK(y[1] == Approx(1.0));
  std::vector<double> bad(a);
  bad[3] = std::nan("");
  CHECK_THROWS_WITH(t.set_transmission(bad), Catch::Contains("not finite"));
  CHECK_THROWS_WITH(t.set_transmission(std::vector<double>(10, 0.0)), Catch::Contains("expected 2 x 3"));
  CHECK(t.transmission(1, 2) == std::complex<double>(0, 1));
  CHECK_THROWS_WITH(t.set_params({.data_phase = 0}), Catch::Contains("data_phase"));
  CHECK_THROWS_WITH(t.set_params({.photons = -1}), Catch::Contains("photons"));
  CHECK(t.parameters().control_pixels == 1);
  std::vector<double> p(t.parameter_count()), q(t.parameter_count()), pb;
  t.get_parameters(p.data());
  pb = p;
  pb[0] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(t.set_parameters(pb.data()), pnn::error);
  t.get_parameters(q.data());
  CHECK(p == q);
  std::vector<double> dy(2), dx(2);
  CHECK_THROWS_WITH(t.read_transposed(dy.data(), 1, dx.data(), g), Catch::Contains("read_vjp"));
}

TEST_CASE("scattering medium: reads and gradients are the same on 1, 2 and 3 threads", "[scattering][threads]") {
  const tile_d t = make_tile(6, 5, {.control_pixels = 9, .photons = 30}, 12);
  const std::size_t n = 21;
  const auto x = random_vector(n * 6, 1), dy = random_vector(n * 5, 2, -1, 1);
  auto run = [&](unsigned threads) {
    set_num_threads(threads);
    std::vector<double> out(n * 5), dx(n * 6), grad(t.parameter_count());
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

TEST_CASE("scattering medium: training the control phases without a model beats the frozen medium",
          "[scattering]") {
  // Four classes of 8-pixel patterns; the camera's four pixels are the class scores. With the
  // control phases frozen only the biases learn; SPSA on the phases shapes the speckle itself.
  rng gd(3);
  std::vector<std::vector<float>> proto(4, std::vector<float>(8));
  for (auto& p : proto)
    for (auto& v : p) v = gd.uniform();
  auto make = [&](std::size_t n) {
    xt::xtensor<float, 2> x({n, 8}), t({n, 4});
    t.fill(0);
    for (std::size_t r = 0; r < n; ++r) {
      const std::size_t c = r % 4;
      for (std::size_t i = 0; i < 8; ++i) x(r, i) = proto[c][i] + 0.05f * gd.normal();
      t(r, c) = 1;
    }
    return data::dataset{std::move(x), std::move(t)};
  };
  const data::dataset train_set = make(256), test_set = make(400);
  using sf = physics::basic_scattering_medium<float>;
  using net_t = network<dense<8, 4, sf, noise::none, act::identity>>;
  auto run = [&](bool train_mask) {
    net_t net(seed{5}, sf::params{.control_pixels = 24, .output_gain = 4, .train_mask = train_mask});
    learn::spsa<optim::adam> rule{{.optimizer = {.learning_rate = 0.05f}, .c = 0.05, .num_perturbations = 4}};
    train(net, rule, loss::softmax_cross_entropy{}, train_set,
          {.epochs = 30, .batch = 32, .seed = 3, .progress = progress_mode::never});
    return evaluate(net, loss::softmax_cross_entropy{}, test_set).accuracy;
  };
  const double frozen = run(false), trained = run(true);
  INFO("frozen " << frozen << ", trained " << trained);
  CHECK(trained >= frozen + 0.15);
  CHECK(trained >= 0.7);
}

TEST_CASE("scattering medium: physics-aware training maps its estimate through the twin's medium",
          "[scattering][physics_aware]") {
  using dd = physics::basic_digital<double>;
  using net_t = network<dense<dynamic, dynamic, sd, noise::none, act::identity>,
                        dense<dynamic, dynamic, dd, noise::none, act::identity>>;
  const sd::params p{.control_pixels = 9, .output_gain = 2};
  const std::size_t n = 7;
  const auto xv = random_vector(n * 6, 1);
  xt::xtensor<double, 2> x({n, 6}), t({n, 3});
  t.fill(0);
  std::copy(xv.begin(), xv.end(), x.data());
  for (std::size_t i = 0; i < n; ++i) t(i, i % 3) = 1;
  auto parameters = [](const auto& net) {
    std::vector<double> v(layer<0>(net).tile.parameter_count());
    layer<0>(net).tile.get_parameters(v.data());
    const double* w = layer<1>(net).tile.weight_data();
    v.insert(v.end(), w, w + 15);
    return v;
  };
  using twin_t = learn::network_twin<net_t>;

  SECTION("an exact twin steps as backprop does") {
    net_t a({6, 5, 3}, seed{4}, p), b = a;
    learn::backprop<> bp{{.optimizer = {.learning_rate = 0.1f}}};
    learn::physics_aware<optim::sgd, twin_t> pat{twin_t{a}, optim::sgd{.learning_rate = 0.1f}};
    rng g1(3), g2(3);
    bp.step(a, x, t, loss::softmax_cross_entropy{}, g1);
    pat.step(b, x, t, loss::softmax_cross_entropy{}, g2);
    const auto pa = parameters(a), pb = parameters(b), p0 = parameters(net_t({6, 5, 3}, seed{4}, p));
    REQUIRE(pa.size() == pb.size());
    CHECK(pa != p0);
    for (std::size_t k = 0; k < pa.size(); ++k) CHECK(pb[k] == Approx(pa[k]).margin(1e-12));
  }
  SECTION("a twin with another medium maps the measured error through its own matrix") {
    // One layer: PAT's estimate is the twin medium's adjoint of the error at the physical output.
    using one_t = network<dense<dynamic, dynamic, sd, noise::none, act::identity>>;
    using one_twin = learn::network_twin<one_t>;
    one_t physical({6, 3}, seed{4}, p), model({6, 3}, seed{9}, p);
    model.for_each_layer([&](auto& l, std::size_t) {
      std::vector<double> q(l.tile.parameter_count());
      layer<0>(physical).tile.get_parameters(q.data());
      l.tile.set_parameters(q.data());
    });
    learn::physics_aware<optim::sgd, one_twin> pat{one_twin{model}};
    rng g(3);
    auto est = pat.estimate(physical, x, t, loss::softmax_cross_entropy{}, g);
    REQUIRE(est[0].parameter_space);
    // The reference: the physical output (exact reads), its loss gradient, the twin's adjoint.
    xt::xtensor<double, 2> y({n, 3}), dy({n, 3});
    rng gr(0);
    layer<0>(physical).tile.read(x.data(), n, y.data(), gr);
    for (std::size_t i = 0; i < n * 3; ++i) y.data()[i] += layer<0>(physical).tile.bias_data()[i % 3];
    loss::softmax_cross_entropy{}.gradient(y.data(), t.data(), n, 3, dy.data());
    std::vector<double> db(3, 0.0), via_twin(layer<0>(model).tile.parameter_count()),
        via_physics(via_twin.size());
    for (std::size_t i = 0; i < n * 3; ++i) db[i % 3] += dy.data()[i];
    layer<0>(model).tile.parameter_gradient(x.data(), dy.data(), n, 1.0, db.data(), via_twin.data(), gr);
    layer<0>(physical).tile.parameter_gradient(x.data(), dy.data(), n, 1.0, db.data(), via_physics.data(), gr);
    double diff_twin = 0, diff_physics = 0;
    for (std::size_t k = 0; k < via_twin.size(); ++k) {
      diff_twin = std::max(diff_twin, std::abs(double(est[0].parameter.data()[k]) - via_twin[k]));
      diff_physics = std::max(diff_physics, std::abs(double(est[0].parameter.data()[k]) - via_physics[k]));
    }
    CHECK(diff_twin < 1e-12);
    CHECK(diff_physics > 1e-3);  // the physical medium's own adjoint is not what PAT uses
  }
  SECTION("a twin of another parameter count is refused and changes nothing") {
    net_t physical({6, 5, 3}, seed{4}, p);
    net_t model({6, 5, 3}, seed{4}, sd::params{.control_pixels = 4, .output_gain = 2});
    learn::physics_aware<optim::sgd, twin_t> pat{twin_t{model}};
    const auto before = parameters(physical);
    rng g(3);
    CHECK_THROWS_WITH(pat.step(physical, x, t, loss::softmax_cross_entropy{}, g), Catch::Contains("parameter count"));
    CHECK(parameters(physical) == before);
  }
}

// ---- A twin learned from camera frames: probe and fit_transmission ----

namespace {
// sqrt(Σ(ŷ − y)² / Σ y²) between two tiles' frames for the same random SLM patterns.
double frame_error(const tile_d& model, const tile_d& reference, std::size_t frames, std::uint64_t seed) {
  const auto phases = random_vector(frames * reference.modes(), seed, 0, 2 * std::numbers::pi);
  std::vector<double> a(frames * reference.out_size()), b(a.size());
  rng ga(1), gb(2);
  model.probe(phases.data(), frames, a.data(), ga);
  reference.probe(phases.data(), frames, b.data(), gb);
  double d2 = 0, y2 = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    d2 += (a[k] - b[k]) * (a[k] - b[k]);
    y2 += b[k] * b[k];
  }
  return std::sqrt(d2 / y2);
}

// A tile of another medium with the given tile's θ and b: a twin before its calibration.
tile_d other_medium(const tile_d& t, std::uint64_t seed) {
  tile_d o = make_tile(t.in_size(), t.out_size(), t.parameters(), seed);
  std::vector<double> q(t.parameter_count());
  t.get_parameters(q.data());
  o.set_parameters(q.data());
  return o;
}

// The cosine between the two tiles' adjoint gradients ∂L/∂θ for the same inputs and errors.
double gradient_cosine(const tile_d& a, const tile_d& b, std::uint64_t seed) {
  REQUIRE(std::equal(a.control_phases().begin(), a.control_phases().end(), b.control_phases().begin()));
  const std::size_t n = 16, k = a.controls();
  const auto x = random_vector(n * a.in_size(), seed), dy = random_vector(n * a.out_size(), seed + 1, -1, 1);
  std::vector<double> ga(a.parameter_count()), gb(b.parameter_count());
  rng g(1);
  a.parameter_gradient(x.data(), dy.data(), n, 1.0, nullptr, ga.data(), g);
  b.parameter_gradient(x.data(), dy.data(), n, 1.0, nullptr, gb.data(), g);
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t q = 0; q < k; ++q) {
    ab += ga[q] * gb[q];
    aa += ga[q] * ga[q];
    bb += gb[q] * gb[q];
  }
  return ab / std::sqrt(aa * bb);
}
}  // namespace

TEST_CASE("scattering medium: probe shows any SLM pattern; the pattern of a read gives its frame",
          "[scattering]") {
  const auto placement = GENERATE(sd::mask::beside_data, sd::mask::on_data);
  const double photons = GENERATE(0.0, 40.0);
  const tile_d t = make_tile(5, 4, {.control_pixels = 3, .placement = placement, .photons = photons}, 8);
  const std::size_t n = 11, in = 5, modes = t.modes();
  const auto x = random_vector(n * in, 4);
  const auto theta = t.control_phases();
  std::vector<double> phases(n * modes);
  const bool on = placement == sd::mask::on_data;
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t m = 0; m < modes; ++m)
      phases[r * modes + m] = m < in ? std::numbers::pi * x[r * in + m] + (on ? theta[m] : 0.0) : theta[m - in];
  std::vector<double> y_read(n * 4), y_probe(n * 4);
  rng g1(5), g2(5);  // the same per-sample streams: the same shot noise too
  t.read(x.data(), n, y_read.data(), g1);
  cost_counter c;
  tile_d counted = t;
  counted.attach_cost_counter(&c);
  counted.probe(phases.data(), n, y_probe.data(), g2);
  for (std::size_t k = 0; k < y_read.size(); ++k) CHECK(y_probe[k] == Approx(y_read[k]).margin(1e-12));
  CHECK(c.totals().reads == n);
  CHECK(c.totals().optical_channels == n * (modes + 4));
  // Another pattern, another frame: probe really shows the phases it is given.
  phases[0] += 1.0;
  rng g3(5);
  t.probe(phases.data(), 1, y_probe.data(), g3);
  double moved = 0;
  for (std::size_t j = 0; j < 4; ++j) moved += std::abs(y_probe[j] - y_read[j]);
  CHECK(moved > 1e-3);
}

TEST_CASE("scattering medium: a twin fitted to noise-free frames predicts new frames and gives the physical gradient",
          "[scattering]") {
  // N = 24 data + 24 control pixels, 6 camera pixels, the default 8·N frames.
  const sd::params p{.control_pixels = 24, .output_gain = 2};
  const tile_d physical = make_tile(24, 6, p, 3);
  tile_d twin = other_medium(physical, 4);
  const double error_before = frame_error(twin, physical, 200, 7);
  const double cosine_before = gradient_cosine(twin, physical, 9);
  rng g(11);
  const auto rep = physics::fit_transmission(physical, twin, {}, g);
  CHECK(rep.frames == 8 * 48);
  CHECK(rep.held_out == 48);
  CHECK(rep.iterations >= 1);
  const double error_after = frame_error(twin, physical, 200, 7);
  const double cosine_after = gradient_cosine(twin, physical, 9);
  INFO("held-out " << rep.relative_error << ", new frames " << error_before << " -> " << error_after
                   << ", gradient cosine " << cosine_before << " -> " << cosine_after << ", steps "
                   << rep.iterations);
  CHECK(error_before > 0.3);
  CHECK(rep.relative_error < 1e-3);
  CHECK(error_after < 1e-3);
  CHECK(cosine_before < 0.9);
  CHECK(cosine_after > 0.999);
}

TEST_CASE("scattering medium: the fitted matrix is the true one up to a phase per row, which changes nothing",
          "[scattering]") {
  const tile_d physical = make_tile(20, 5, {.control_pixels = 20}, 21);
  tile_d twin = make_tile(20, 5, {.control_pixels = 20}, 22);
  rng g(3);
  physics::fit_transmission(physical, twin, {}, g);
  const std::size_t n = physical.modes();
  std::vector<double> phase(5);
  for (std::size_t j = 0; j < 5; ++j) {
    std::complex<double> overlap = 0;
    for (std::size_t m = 0; m < n; ++m) overlap += std::conj(physical.transmission(j, m)) * twin.transmission(j, m);
    phase[j] = std::arg(overlap);
    const std::complex<double> rot = std::polar(1.0, phase[j]);
    double worst = 0, worst_modulus = 0;
    for (std::size_t m = 0; m < n; ++m) {
      const auto a = physical.transmission(j, m), b = twin.transmission(j, m);
      worst = std::max(worst, std::abs(b - rot * a));
      worst_modulus = std::max(worst_modulus, std::abs(std::abs(b) - std::abs(a)));
    }
    INFO("row " << j << ": phase " << phase[j]);
    CHECK(worst_modulus < 1e-6);  // |A| ~ 1/sqrt(N) = 0.16
    CHECK(worst < 1e-6);
  }
  // The fit does not find the true row phases (nothing could): they differ from row to row.
  CHECK(std::abs(phase[0] - phase[1]) + std::abs(phase[1] - phase[2]) > 1e-3);

  // Any row phases: the same frames, the same adjoint gradients in θ and x.
  tile_d rotated = physical;
  std::vector<double> re_im(2 * 5 * n);
  for (std::size_t j = 0; j < 5; ++j)
    for (std::size_t m = 0; m < n; ++m) {
      const auto v = std::polar(1.0, 0.7 + 1.3 * double(j)) * physical.transmission(j, m);
      re_im[2 * (j * n + m)] = v.real();
      re_im[2 * (j * n + m) + 1] = v.imag();
    }
  rotated.set_transmission(re_im);
  REQUIRE(std::abs(rotated.transmission(1, 0) - physical.transmission(1, 0)) > 1e-3);
  const std::size_t s = 6;
  const auto x = random_vector(s * 20, 5), dy = random_vector(s * 5, 6, -1, 1);
  std::vector<double> ya(s * 5), yb(s * 5), dxa(s * 20), dxb(s * 20), ga(physical.parameter_count()),
      gb(physical.parameter_count());
  rng gr(1);
  physical.read(x.data(), s, ya.data(), gr);
  rotated.read(x.data(), s, yb.data(), gr);
  physical.read_vjp(x.data(), dy.data(), s, dxa.data(), gr);
  rotated.read_vjp(x.data(), dy.data(), s, dxb.data(), gr);
  physical.parameter_gradient(x.data(), dy.data(), s, 1.0, nullptr, ga.data(), gr);
  rotated.parameter_gradient(x.data(), dy.data(), s, 1.0, nullptr, gb.data(), gr);
  for (std::size_t k = 0; k < ya.size(); ++k) CHECK(yb[k] == Approx(ya[k]).margin(1e-12));
  for (std::size_t k = 0; k < dxa.size(); ++k) CHECK(dxb[k] == Approx(dxa[k]).margin(1e-12));
  for (std::size_t k = 0; k < ga.size(); ++k) CHECK(gb[k] == Approx(ga[k]).margin(1e-12));
}

TEST_CASE("scattering medium: a twin fitted to shot-noisy frames reaches the noise floor", "[scattering]") {
  const sd::params clean{.control_pixels = 30};
  sd::params noisy = clean;
  noisy.photons = 1e4;
  const tile_d physical = make_tile(30, 6, noisy, 31);
  tile_d exact = physical;
  exact.set_params(clean);  // the same medium, noise-free
  tile_d twin = other_medium(exact, 32);
  // The floor: how far the noisy camera is from its own noise-free frames.
  const double floor = frame_error(physical, exact, 400, 4);
  rng g(5);
  const auto rep = physics::fit_transmission(physical, twin, {}, g);
  const double model_error = frame_error(twin, exact, 400, 4), cosine = gradient_cosine(twin, exact, 8);
  INFO("noise floor " << floor << ", held-out " << rep.relative_error << ", fitted " << rep.training_error
                      << ", against the noise-free medium " << model_error << ", gradient cosine " << cosine);
  CHECK(floor == Approx(std::sqrt(0.5e-4)).epsilon(0.2));  // Var = I/photons, E I² = 2 (Rayleigh speckle)
  CHECK(rep.relative_error < 3 * floor);
  CHECK(rep.relative_error > 0.5 * floor);  // the held-out frames carry their own noise
  CHECK(rep.relative_error > rep.training_error);  // which the fit could not adapt to
  CHECK(model_error < floor);
  CHECK(cosine > 0.98);
}

TEST_CASE("scattering medium: fit_transmission refuses bad input and leaves the twin unchanged", "[scattering]") {
  const tile_d physical = make_tile(8, 3, {.control_pixels = 4}, 1);
  tile_d twin = make_tile(8, 3, {.control_pixels = 4}, 2);
  const auto before = std::vector{twin.transmission(0, 0), twin.transmission(1, 5), twin.transmission(2, 11)};
  auto unchanged = [&](const tile_d& t) {
    return t.transmission(0, 0) == before[0] && t.transmission(1, 5) == before[1] && t.transmission(2, 11) == before[2];
  };
  rng g(1);
  SECTION("shapes") {
    tile_d other_out = make_tile(8, 4, {.control_pixels = 4}, 2), other_k = make_tile(8, 3, {.control_pixels = 5}, 2),
           other_in = make_tile(9, 3, {.control_pixels = 3}, 2),
           on_data = make_tile(8, 3, {.control_pixels = 0, .placement = sd::mask::on_data}, 2),
           beside = make_tile(8, 3, {.control_pixels = 0}, 2), unshaped;
    CHECK_THROWS_WITH(physics::fit_transmission(physical, other_out, {}, g), Catch::Contains("sizes"));
    CHECK_THROWS_WITH(physics::fit_transmission(physical, other_k, {}, g), Catch::Contains("modes 13"));
    CHECK_THROWS_WITH(physics::fit_transmission(physical, other_in, {}, g), Catch::Contains("in 9"));
    // The same N = 8, but the phases sit elsewhere.
    CHECK_THROWS_WITH(physics::fit_transmission(beside, on_data, {}, g), Catch::Contains("placement"));
    CHECK_THROWS_WITH(physics::fit_transmission(physical, unshaped, {}, g), Catch::Contains("shaped"));
    CHECK_THROWS_AS(physics::fit_transmission(physical, twin, {.iterations = 0}, g), pnn::error);
    CHECK_THROWS_AS(physics::fit_transmission(physical, twin, {.tolerance = std::nan("")}, g), pnn::error);
    CHECK(unchanged(twin));
  }
  SECTION("too few frames") {
    CHECK_THROWS_WITH(physics::fit_transmission(physical, twin, {.frames = 4 * 12 - 1}, g),
                      Catch::Contains("at least 4·N = 48 frames, got 47"));
    CHECK(unchanged(twin));
    CHECK_NOTHROW(physics::fit_transmission(physical, twin, {.frames = 4 * 12}, g));
    CHECK(!unchanged(twin));
  }
  SECTION("non-finite probe phases") {
    std::vector<double> phases(2 * 12, 0.5), y(2 * 3, -1.0);
    phases[17] = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(physical.probe(phases.data(), 2, y.data(), g), Catch::Contains("not finite"));
    CHECK(y == std::vector<double>(6, -1.0));
    tile_d unshaped;
    CHECK_THROWS_WITH(unshaped.probe(phases.data(), 0, y.data(), g), Catch::Contains("not shaped"));
  }
}

}  // namespace tests_scattering
