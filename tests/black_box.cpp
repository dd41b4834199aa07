// SPDX-License-Identifier: MIT
// Black-box substrates (any callable as a layer), the coupled-oscillator physics, and learned
// twins (MLP surrogates) used by physics-aware training.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include <pnn/learn/physics_aware.hpp>
#include <pnn/train/surrogate.hpp>
#include <pnn/physics/black_box.hpp>
#include <pnn/physics/oscillators.hpp>
#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_black_box {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;

xt::xtensor<double, 2> normal_batch(std::size_t n, std::size_t k, std::uint64_t s, double sd = 1.0) {
  rng g(s);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = sd * g.normal_double();
  return x;
}

// A callable misbehaving on demand: `mode` 1 drops a value, 2 returns a NaN.
struct faulty {
  int mode = 0;
  std::vector<double> operator()(const physics::black_box_call<double>& c) const {
    auto y = physics::detail::affine_callable<double>{}(c);
    if (mode == 1) y.pop_back();
    if (mode == 2) y[1] = std::nan("");
    return y;
  }
};

// y_j = sin(Σ_k W_jk x_k + b_j): a known smooth black box for the surrogate fit.
struct sine_box {
  std::vector<double> operator()(const physics::black_box_call<double>& c) const {
    auto y = physics::detail::affine_callable<double>{}(c);
    for (auto& v : y) v = std::sin(v);
    return y;
  }
};
// Cosine between two estimates of networks of the same shape but different types.
template <class A, class B>
double cosine_across(const A& a, const B& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < A::num_layers; ++i) {
    for (std::size_t k = 0; k < a[i].weight.size(); ++k) {
      ab += a[i].weight.data()[k] * b[i].weight.data()[k];
      aa += a[i].weight.data()[k] * a[i].weight.data()[k];
      bb += b[i].weight.data()[k] * b[i].weight.data()[k];
    }
    for (std::size_t k = 0; k < a[i].bias.size(); ++k) {
      ab += a[i].bias.data()[k] * b[i].bias.data()[k];
      aa += a[i].bias.data()[k] * a[i].bias.data()[k];
      bb += b[i].bias.data()[k] * b[i].bias.data()[k];
    }
  }
  return ab / std::sqrt(aa * bb);
}
}  // namespace

TEST_CASE("black_box: a wrong shape or a NaN is an error naming the layer", "[black_box]") {
  using box = physics::black_box<faulty, double>;
  using net_t = network<dense<dynamic, dynamic, dd, noise::none, act::tanh>, dense<dynamic, dynamic, box>>;
  net_t net({3, 4, 2}, seed{1});
  const auto x = normal_batch(5, 3, 2);
  CHECK_NOTHROW(forward(net, x));

  layer<1>(net).tile.set_params({.model = faulty{1}});
  layer<1>(net).tile.label = "detector";
  try {
    forward(net, x);
    FAIL("no error");
  } catch (const pnn::error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("layer 1") != std::string::npos);
    CHECK(m.find("detector") != std::string::npos);
    CHECK(m.find("9 values, expected 5 x 2 = 10") != std::string::npos);
  }
  layer<1>(net).tile.model().mode = 2;
  try {
    forward(net, x);
    FAIL("no error");
  } catch (const pnn::error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("layer 1") != std::string::npos);
    CHECK(m.find("NaN") != std::string::npos);
  }
  // A failing measurement during a step leaves the parameters unchanged.
  const double w0 = layer<0>(net).tile.weight_data()[0];
  learn::physics_aware<> pat;
  rng g(1);
  CHECK_THROWS_AS(pat.step(net, x, xt::xtensor<double, 2>(xt::zeros<double>({5, 2})), loss::mse{}, g), pnn::error);
  CHECK(layer<0>(net).tile.weight_data()[0] == w0);
}

TEST_CASE("black_box: an affine box trained by PAT matches backprop on the digital network", "[black_box][theory]") {
  using box = physics::affine_black_box<double>;
  using phys_t = network<dense<dynamic, dynamic, box, noise::none, act::tanh>, dense<dynamic, dynamic, box>>;
  using dig_t = network<dense<dynamic, dynamic, dd, noise::none, act::tanh>, dense<dynamic, dynamic, dd>>;
  phys_t phys({4, 6, 3}, seed{3});
  dig_t dig({4, 6, 3}, seed{3});
  const auto x = normal_batch(7, 4, 1);
  const auto t = normal_batch(7, 3, 2);
  rng g(1);
  auto pa = learn::physics_aware<>{}.estimate(phys, x, t, loss::mse{}, g);
  auto bp = learn::backprop<>{}.estimate(dig, x, t, loss::mse{}, g);
  CHECK(cosine_across(pa, bp) > 1 - 1e-12);
  CHECK(pa[0].weight(2, 1) == Approx(bp[0].weight(2, 1)).epsilon(1e-10));
  // The tile keeps W, b as nominal parameters: set_weights / effective_weights / program.
  std::vector<double> w(24);
  layer<0>(phys).tile.effective_weights(w.data());
  CHECK(w[5] == layer<0>(dig).tile.weight_data()[5]);
}

TEST_CASE("coupled_oscillators: deterministic physics with an explicit sim-to-real gap", "[black_box][oscillators]") {
  using osc = physics::coupled_oscillators<double>;
  using box = physics::oscillator_box<double>;
  using net_t = network<dense<dynamic, dynamic, box>>;
  net_t model({3, 5}, seed{2});
  net_t real({3, 5}, seed{2}, box::params{.model = osc{.nonlinearity_scale = 1.3, .coupling_noise = 0.2, .input_noise = 0.05}});
  const auto x = normal_batch(4, 3, 1);
  rng g1(9), g2(9);
  const auto y1 = forward(model, x, g1), y1b = forward(model, x, g2);
  CHECK(y1 == y1b);
  rng g3(9);
  const auto y2 = forward(real, x, g3);
  const double gap = xt::amax(xt::abs(y2 - y1))();
  CHECK(gap > 1e-3);
  // The gap is the mismatch's: none without it, and it grows with the nonlinearity error.
  auto gap_with = [&](double scale) {
    net_t r({3, 5}, seed{2}, box::params{.model = osc{.nonlinearity_scale = scale}});
    rng gr(9);
    return double(xt::amax(xt::abs(forward(r, x, gr) - y1))());
  };
  CHECK(gap_with(1.0) == 0.0);
  const double small = gap_with(1.1), large = gap_with(1.3);
  INFO("gap at nonlinearity x1.1 " << small << ", x1.3 " << large);
  CHECK(small > 0);
  CHECK(large > 2 * small);
  // Small drive from rest: x(T) ≈ u·(1 − cos ω₀T)/ω₀² for a linear, uncoupled oscillator.
  osc lin{.damping = 0.0, .nonlinearity = 0.0, .coupling = 0.0, .steps = 200};
  const std::vector<double> xin{1.0}, w{0.01}, b{0.0};
  rng g(1);
  const auto y = lin(physics::black_box_call<double>{xin.data(), 1, 1, 1, w.data(), b.data()}, g);
  CHECK(y[0] == Approx(0.01 * (1 - std::cos(2.0))).epsilon(1e-6));
}

TEST_CASE("surrogate: a learned twin of a smooth black box reaches its validation error", "[black_box][surrogate]") {
  // sin(w x + b), seen through (x, w, b): 4000 measurements, [32, 32] ReLU, 150 epochs:
  // normalised validation RMS error below 0.15 (1 = predicting the mean). Measured 0.059–0.102
  // over fitting seeds 0–5; with 2000 measurements it ranged 0.06–0.24 and depended on the
  // instruction set, which is why the margin is taken over seeds, not one run.
  using box = physics::black_box<sine_box, double>;
  network<dense<dynamic, dynamic, box>> net({1, 1}, seed{1});
  learn::surrogate_report rep;
  auto s = learn::fit_surrogate(layer<0>(net),
                                {.hidden1 = 32, .hidden2 = 32, .epochs = 150, .batch = 32, .learning_rate = 1e-2f,
                                 .samples = 4000, .input_sd = 0.8, .weight_sd = 0.8, .bias_sd = 0.3},
                                &rep);
  INFO("train " << rep.train_error << ", validation " << rep.validation_error);
  CHECK(rep.validation_samples == 800);
  CHECK(rep.validation_error < 0.15);
  CHECK(s.model.features() == 3);

  SECTION("and its Jacobian drives PAT close to the exact gradient") {
    using dig_t = network<dense<dynamic, dynamic, dd, noise::none, act::identity>>;
    // The exact model of sin(W x + b) is a digital layer with a sine activation's Jacobian;
    // compare with the PAT estimate through the surrogate at small, in-distribution weights.
    struct sine {
      double operator()(double a) const { return std::sin(a); }
      double derivative(double a, double) const { return std::cos(a); }
    };
    network<dense<dynamic, dynamic, dd, noise::none, sine>> exact({1, 1}, seed{1});
    (void)sizeof(dig_t);
    const auto x = normal_batch(64, 1, 4, 0.8);
    const auto t = normal_batch(64, 1, 5, 0.5);
    rng g(1);
    learn::surrogate_twin twin;
    twin.set(0, std::move(s));
    learn::physics_aware<optim::sgd, learn::surrogate_twin> pat{std::move(twin)};
    auto ps = pat.estimate(net, x, t, loss::mse{}, g);
    auto ex = learn::backprop<>{}.estimate(exact, x, t, loss::mse{}, g);
    INFO("cosine " << cosine_across(ps, ex));
    CHECK(cosine_across(ps, ex) > 0.95);
  }
}

TEST_CASE("PAT with a drive surrogate trains a mismatched oscillator network", "[black_box][surrogate][oscillators]") {
  using osc = physics::coupled_oscillators<double>;
  using box = physics::oscillator_box<double>;
  using net_t = network<dense<dynamic, dynamic, box>, dense<dynamic, dynamic, dd>>;
  net_t net({2, 6, 1}, seed{5}, box::params{.model = osc{.nonlinearity_scale = 1.2, .coupling_noise = 0.1}});
  learn::surrogate_report rep;
  auto s = learn::fit_surrogate(layer<0>(net),
                                {.hidden1 = 32, .hidden2 = 32, .epochs = 40, .batch = 32, .learning_rate = 1e-2f, .samples = 2000,
                                 .input = learn::surrogate_input::drive, .drive_sd = 1.5},
                                &rep);
  INFO("drive surrogate validation error " << rep.validation_error);
  CHECK(rep.validation_error < 0.1);
  learn::surrogate_twin twin;
  twin.set(0, std::move(s));
  learn::physics_aware<optim::adam, learn::surrogate_twin> pat{std::move(twin), {.learning_rate = 0.02f}};
  const auto x = normal_batch(32, 2, 3);
  xt::xtensor<double, 2> t({32, 1});
  for (std::size_t i = 0; i < 32; ++i) t(i, 0) = 0.5 * std::tanh(x(i, 0) - x(i, 1));
  rng g(2);
  const double first = pat.step(net, x, t, loss::mse{}, g).loss;
  double last = first;
  for (int k = 0; k < 150; ++k) {
    rng gk = g.split(std::uint64_t(k));
    last = pat.step(net, x, t, loss::mse{}, gk).loss;
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.3 * first);
}

TEST_CASE("surrogate twins on a convolutional network: a conv read's drive surrogate and a black box's",
          "[black_box][surrogate][conv]") {
  // Two digital convolutions feeding a black-box layer sin(W x + b) and a digital readout. PAT
  // through learned surrogates of the second convolution (per patch read) and of the box must
  // follow the exact gradient: backprop through the same network with the sine as an
  // activation. The first convolution's estimate depends on the error the second one's
  // surrogate carries down to its input.
  using conv0_t = conv2d<conv_shape<6, 6, 1, 3, 3, 1, 1>, dd, noise::none, act::tanh, pool::max<2>>;  // → 3×3×3
  using conv1_t = conv2d<conv_shape<3, 3, 3, 4, 2>, dd, noise::none, act::tanh>;                      // → 2×2×4
  using box = physics::black_box<sine_box, double>;
  struct sine {
    double operator()(double a) const { return std::sin(a); }
    double derivative(double a, double) const { return std::cos(a); }
  };
  network<conv0_t, conv1_t, dense<16, 4, box>, dense<4, 2, dd>> net(seed{3});
  network<conv0_t, conv1_t, dense<16, 4, dd, noise::none, sine>, dense<4, 2, dd>> exact(seed{4});
  rng gw(9);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((void)[&] {
      auto& from = layer<I>(net).tile;
      std::vector<double> w(from.in_size() * from.out_size());
      tile_hooks::model_weights(from, w.data());
      layer<I>(exact).tile.set_weights(w.data(), from.bias_data(), gw);
    }(), ...);
  }(std::make_index_sequence<4>{});

  const learn::surrogate_options drive{.hidden1 = 64, .hidden2 = 64, .epochs = 150, .batch = 32, .learning_rate = 1e-2f,
                                       .samples = 4000, .input = learn::surrogate_input::drive, .drive_sd = 1.0};
  learn::surrogate_report conv_rep, box_rep;
  auto conv_s = learn::fit_surrogate(layer<1>(net), drive, &conv_rep);
  auto box_s = learn::fit_surrogate(layer<2>(net), drive, &box_rep);
  INFO("validation error: convolution " << conv_rep.validation_error << ", black box " << box_rep.validation_error);
  CHECK(conv_s.model.features() == 4);  // one read's drive: the kernel's output channels
  CHECK(conv_rep.validation_error < 0.1);
  CHECK(box_rep.validation_error < 0.1);

  const auto x = normal_batch(16, conv0_t::in_extent, 6);
  const auto t = normal_batch(16, 2, 7, 0.5);
  rng g(1);
  learn::surrogate_twin twin;
  twin.set(1, conv_s);
  twin.set(2, std::move(box_s));
  learn::physics_aware<optim::sgd, learn::surrogate_twin> pat{std::move(twin)};
  const auto ps = pat.estimate(net, x, t, loss::mse{}, g);
  const auto ex = learn::backprop<>{}.estimate(exact, x, t, loss::mse{}, g);
  // Layer by layer: a wrong kernel update or a wrong error below the surrogate shows in its
  // own layer, however small that layer is.
  for (std::size_t i = 0; i < 3; ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t k = 0; k < ex[i].weight.size(); ++k) {
      ab += ps[i].weight.data()[k] * ex[i].weight.data()[k];
      aa += ps[i].weight.data()[k] * ps[i].weight.data()[k];
      bb += ex[i].weight.data()[k] * ex[i].weight.data()[k];
    }
    INFO("layer " << i << ": cosine " << ab / std::sqrt(aa * bb) << ", norm ratio " << std::sqrt(aa / bb));
    CHECK(ab / std::sqrt(aa * bb) > 0.85);  // 0.93–1.00 over fitting seeds; the fits vary by instruction set
    CHECK(std::sqrt(aa / bb) == Approx(1.0).margin(0.4));  // 0.84–1.25 seen; a lost factor 2 is not
  }
  // Above the surrogates the twin is the digital readout at the measured input: its estimate
  // is backprop's to rounding.
  for (std::size_t k = 0; k < ex[3].weight.size(); ++k)
    CHECK(ps[3].weight.data()[k] == Approx(ex[3].weight.data()[k]).margin(1e-12));

  SECTION("a convolution's surrogate must see the drive") {
    const auto params = learn::surrogate_options{.hidden1 = 4, .hidden2 = 4, .epochs = 1, .samples = 8};
    CHECK_THROWS_WITH(learn::fit_surrogate(layer<1>(net), params), Catch::Contains("surrogate_input::drive"));
    learn::surrogate_twin wrong;
    learn::layer_surrogate s = conv_s;
    s.input = learn::surrogate_input::parameters;
    wrong.set(1, std::move(s));
    learn::physics_aware<optim::sgd, learn::surrogate_twin> bad{std::move(wrong)};
    CHECK_THROWS_WITH(bad.estimate(net, x, t, loss::mse{}, g), Catch::Contains("layer 1 is a convolution"));
  }
}

}  // namespace tests_black_box
