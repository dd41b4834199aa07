// SPDX-License-Identifier: MIT
// learn::hybrid: one rule below the split, another above — each layer's estimate is exactly
// its owner's, backprop above a perturbative rule needs no derivative of the physics below, and
// training a scattering medium's phases model-free beats freezing them.
#include <catch2/catch.hpp>

#include <vector>

#include <pnn/learn/hybrid.hpp>
#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_hybrid {

using namespace pnn;

namespace {
using medium_d = physics::basic_scattering_medium<double>;
using net_d = network<dense<9, 6, medium_d, noise::none, act::identity>,
                      dense<6, 3, physics::basic_digital<double>, noise::none, act::identity>>;

data::dataset three_classes(std::size_t n, std::uint64_t seed) {
  rng g(seed);
  xt::xtensor<double, 2> x({n, 9}), t({n, 3});
  t.fill(0);
  for (std::size_t r = 0; r < n; ++r) {
    const std::size_t c = r % 3;
    for (std::size_t i = 0; i < 9; ++i) x(r, i) = (i % 3 == c ? 0.8 : 0.2) + 0.1 * g.normal_double();
    t(r, c) = 1;
  }
  return data::dataset{xt::xtensor<float, 2>(x), xt::xtensor<float, 2>(t)};
}
}  // namespace

TEST_CASE("hybrid: each layer's estimate is its own rule's, bit for bit", "[hybrid]") {
  net_d net(seed{3}, medium_d::params{.control_pixels = 5});
  rng gd(1);
  xt::xtensor<double, 2> x({8, 9}), t({8, 3});
  for (auto& v : x) v = gd.uniform_double();
  t.fill(0);
  for (std::size_t r = 0; r < 8; ++r) t(r, r % 3) = 1;
  using spsa_t = learn::spsa<>;
  using bp_t = learn::backprop<>;
  learn::hybrid<spsa_t, bp_t> rule{{.lower = spsa_t{{.c = 0.01, .num_perturbations = 2}}, .split = 1}};
  rng g(5);
  const auto est = rule.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  // The same streams the hybrid hands each rule.
  spsa_t spsa{{.c = 0.01, .num_perturbations = 2}};
  bp_t bp;
  rng gl = rng(5).split(0x10e7), gu = rng(5).split(0x0bbe);
  const auto lo = spsa.estimate(net, x, t, loss::softmax_cross_entropy{}, gl);
  const auto up = bp.estimate(net, x, t, loss::softmax_cross_entropy{}, gu);
  REQUIRE(est[0].parameter_space);
  CHECK(est[0].parameter == lo[0].parameter);
  CHECK(!est[1].parameter_space);
  CHECK(est[1].weight == up[1].weight);
  CHECK(est[1].bias == up[1].bias);
  // The network is unchanged by an estimate.
  net_d fresh(seed{3}, medium_d::params{.control_pixels = 5});
  std::vector<double> a(layer<0>(net).tile.parameter_count()), b(a.size());
  layer<0>(net).tile.get_parameters(a.data());
  layer<0>(fresh).tile.get_parameters(b.data());
  CHECK(a == b);
}

TEST_CASE("hybrid: a split outside the network is refused before anything changes", "[hybrid]") {
  net_d net(seed{3}, medium_d::params{.control_pixels = 5});
  xt::xtensor<double, 2> x = xt::zeros<double>({2, 9}), t = xt::zeros<double>({2, 3});
  learn::hybrid<learn::spsa<>, learn::backprop<>> rule{{.split = 2}};
  rng g(1);
  CHECK_THROWS_WITH(rule.step(net, x, t, loss::softmax_cross_entropy{}, g), Catch::Contains("split must be in [1, 2)"));
  rule.parameters().split = 0;
  CHECK_THROWS_WITH(rule.step(net, x, t, loss::softmax_cross_entropy{}, g), Catch::Contains("split"));
}

TEST_CASE("hybrid: SPSA on a scattering medium's phases with a backprop readout beats the frozen medium",
          "[hybrid][scattering]") {
  // Two camera pixels for three classes: the readout alone cannot separate them well from
  // a random speckle, shaping the speckle by the control phases can.
  using medium = physics::scattering_medium;
  using net_t = network<dense<9, 2, medium, noise::none, act::identity>,
                        dense<2, 3, physics::digital, noise::none, act::identity>>;
  const data::dataset train_set = three_classes(300, 4), test_set = three_classes(300, 5);
  auto run = [&](bool train_mask) {
    net_t net(seed{8}, medium::params{.control_pixels = 16, .train_mask = train_mask});
    using rule_t = learn::hybrid<learn::spsa<>, learn::backprop<>, optim::adam>;
    rule_t rule{{.lower = learn::spsa<>{{.c = 0.05, .num_perturbations = 4}}, .split = 1,
                 .optimizer = {.learning_rate = 0.05f}}};
    train(net, rule, loss::softmax_cross_entropy{}, train_set,
          {.epochs = 40, .batch = 30, .seed = 2, .progress = progress_mode::never});
    return evaluate(net, loss::softmax_cross_entropy{}, test_set).accuracy;
  };
  const double frozen = run(false), trained = run(true);
  INFO("frozen " << frozen << ", trained " << trained);
  CHECK(trained >= frozen + 0.1);
}

}  // namespace tests_hybrid
