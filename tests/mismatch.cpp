// SPDX-License-Identifier: MIT
// The crossbar_variation mismatch: column gains act on forward read-outs only, and rules that
// drive tiles themselves (equilibrium propagation) see the static weight variation.
#include <catch2/catch.hpp>

#include <pnn/pnn.hpp>

using namespace pnn;

TEST_CASE("column_gain scales output columns, not transposed read-outs", "[noise][mismatch]") {
  noise::column_gain cg{.sigma = 0.1};
  rng g(3);
  cg.prepare(4, 3, g);
  REQUIRE(cg.gain.size() == 3);
  std::vector<float> y(6, 1.0f);
  cg.output(y.data(), y.size(), g);
  for (std::size_t i = 0; i < 6; ++i) CHECK(y[i] == Approx(cg.gain[i % 3]));
  std::vector<float> x(8, 1.0f);
  cg.output_transposed(x.data(), x.size(), g);
  for (float v : x) CHECK(v == 1.0f);
  CHECK_THROWS_AS(noise::column_gain{.sigma = -1.0}.validate(), pnn::error);
  noise::column_gain unprepared;
  CHECK_THROWS_AS(unprepared.output(y.data(), y.size(), g), pnn::error);
}

TEST_CASE("equilibrium propagation reads through the static weight variation", "[equilibrium][mismatch]") {
  using hs = act::hard_sigmoid;
  using clean_t = network<dense<dynamic, dynamic, physics::digital, noise::none, hs>,
                          dense<dynamic, dynamic, physics::digital, noise::none, hs>>;
  using mism_t = network<dense<dynamic, dynamic, physics::digital, noise::crossbar_mismatch, hs>,
                         dense<dynamic, dynamic, physics::digital, noise::crossbar_mismatch, hs>>;
  clean_t clean({6, 5, 3}, seed{2});
  mism_t varied({6, 5, 3}, seed{2}, noise::crossbar_variation_mismatch(0.3, 0.1, 0.0));
  init::uniform_fan_in(clean, seed{4});
  init::uniform_fan_in(varied, seed{4});
  xt::xtensor<float, 2> x({4, 6});
  rng g(1);
  for (auto& v : x) v = g.uniform();
  xt::xtensor<float, 2> t = xt::zeros<float>({4, 3});
  for (std::size_t i = 0; i < 4; ++i) t(i, i % 3) = 1;
  learn::equilibrium_propagation<> ep({.beta = 0.2, .free_steps = 20, .nudged_steps = 5});
  rng g1(5), g2(5);
  const auto a = ep.estimate(clean, x, t, loss::mse{}, g1);
  const auto b = ep.estimate(varied, x, t, loss::mse{}, g2);  // must not throw on transposed reads
  CHECK(std::isfinite(b.norm()));
  // Same nominal weights, different physics: the estimates differ.
  double diff = 0;
  for (std::size_t k = 0; k < a[0].weight.size(); ++k)
    diff += std::abs(double(a[0].weight.data()[k]) - double(b[0].weight.data()[k]));
  CHECK(diff > 1e-4);
}
