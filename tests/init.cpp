// SPDX-License-Identifier: MIT
// Initialisation schemes: the constructor's defaults and pnn::init's re-draws, checked against
// their published limits and variances, and the spirals they exist for.
#include <catch2/catch.hpp>

#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_init {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using tanh_net = network<dense<dynamic, dynamic, dd, noise::none, act::tanh>,
                         dense<dynamic, dynamic, dd, noise::none, act::identity>>;
using relu_net = network<dense<dynamic, dynamic, dd, noise::none, act::relu>,
                         dense<dynamic, dynamic, dd, noise::none, act::identity>>;

struct moments {
  double max_abs = 0, variance = 0, bias_max_abs = 0;
};

template <class Net>
moments layer_moments(const Net& net, std::size_t layer) {
  moments m;
  net.for_each_layer([&](const auto& l, std::size_t i) {
    if (i != layer) return;
    const std::size_t n = l.in_size() * l.out_size();
    double sum2 = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const double w = l.tile.weight_data()[k];
      m.max_abs = std::max(m.max_abs, std::abs(w));
      sum2 += w * w;
    }
    m.variance = sum2 / double(n);
    for (std::size_t j = 0; j < l.out_size(); ++j) m.bias_max_abs = std::max(m.bias_max_abs, std::abs(l.tile.bias_data()[j]));
  });
  return m;
}

// U(−s, s) has variance s²/3; with 120 000 draws its sample variance is within 1 % of it.
void check_uniform(const moments& m, double limit) {
  CHECK(m.max_abs <= limit);
  CHECK(m.max_abs > 0.99 * limit);
  CHECK(m.variance == Approx(limit * limit / 3).epsilon(0.01));
}
}  // namespace

TEST_CASE("constructors draw Glorot-uniform weights for tanh, He-uniform for ReLU, zero biases", "[init]") {
  const tanh_net t({400, 300, 10}, seed{3});
  const moments mt = layer_moments(t, 0);
  check_uniform(mt, std::sqrt(6.0 / 700.0));
  CHECK(mt.bias_max_abs == 0.0);
  const relu_net r({400, 300, 10}, seed{3});
  const moments mr = layer_moments(r, 0);
  check_uniform(mr, std::sqrt(6.0 / 400.0));
  CHECK(mr.bias_max_abs == 0.0);
}

TEST_CASE("init schemes re-draw weights and biases with their published limits", "[init]") {
  tanh_net net({400, 300, 10}, seed{3});
  SECTION("uniform_fan_in: weights and biases U(±gain/√fan_in)") {
    init::uniform_fan_in(net, seed{5}, 2.0);
    const moments m = layer_moments(net, 0);
    check_uniform(m, 2.0 / std::sqrt(400.0));
    CHECK(m.bias_max_abs > 0.5 * 2.0 / std::sqrt(400.0));
    CHECK(m.bias_max_abs <= 2.0 / std::sqrt(400.0));
    CHECK(layer_moments(net, 1).max_abs <= 2.0 / std::sqrt(300.0));
  }
  SECTION("glorot_uniform and he_uniform: zero biases") {
    init::glorot_uniform(net, seed{5});
    check_uniform(layer_moments(net, 0), std::sqrt(6.0 / 700.0));
    CHECK(layer_moments(net, 0).bias_max_abs == 0.0);
    init::he_uniform(net, seed{5});
    check_uniform(layer_moments(net, 0), std::sqrt(6.0 / 400.0));
    CHECK(layer_moments(net, 1).bias_max_abs == 0.0);
  }
}

TEST_CASE("init schemes are reproducible per seed and differ between seeds", "[init]") {
  tanh_net a({20, 10, 3}, seed{1}), b({20, 10, 3}, seed{2});
  init::uniform_fan_in(a, seed{9});
  init::uniform_fan_in(b, seed{9});
  CHECK(std::equal(layer<0>(a).tile.weight_data(), layer<0>(a).tile.weight_data() + 200, layer<0>(b).tile.weight_data()));
  init::uniform_fan_in(b, seed{10});
  CHECK_FALSE(std::equal(layer<0>(a).tile.weight_data(), layer<0>(a).tile.weight_data() + 200, layer<0>(b).tile.weight_data()));
}

TEST_CASE("init schemes reject a gain that is not positive and finite, and change nothing", "[init][errors]") {
  tanh_net net({4, 3, 2}, seed{1});
  const double w0 = layer<0>(net).tile.weight_data()[0];
  CHECK_THROWS_WITH(init::uniform_fan_in(net, seed{2}, 0.0), Catch::Contains("gain must be positive"));
  CHECK_THROWS_AS(init::glorot_uniform(net, seed{2}, -1.0), pnn::error);
  CHECK_THROWS_AS(init::he_uniform(net, seed{2}, std::nan("")), pnn::error);
  CHECK(layer<0>(net).tile.weight_data()[0] == w0);
}

TEST_CASE("with non-zero biases a small tanh network learns two spirals", "[init][training]") {
  using net_t = network<dense<2, 64, physics::digital, noise::none, act::tanh>,
                        dense<64, 64, physics::digital, noise::none, act::tanh>,
                        dense<64, 2, physics::digital, noise::none, act::identity>>;
  rng g(7);
  const data::dataset train_set = data::spirals(1000, g);
  const data::dataset test_set = data::spirals(500, g);
  net_t net{seed{42}};
  init::uniform_fan_in(net, seed{43});
  learn::backprop<optim::adam> rule{{.optimizer = {.learning_rate = 0.005f}}};
  const auto hist = train(net, rule, loss::softmax_cross_entropy{}, train_set,
                          {.epochs = 120, .batch = 32, .seed = 2, .test = &test_set, .progress = progress_mode::never});
  CHECK(hist.back().test_accuracy > 0.93);
}

}  // namespace tests_init
