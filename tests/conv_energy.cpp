// SPDX-License-Identifier: MIT
// Convolutional energy networks (Laborieux et al. 2021): equilibrium propagation's estimate
// against finite differences of the loss at the free equilibrium as β → 0 (double; max, average
// and no pooling), the alternating order against the synchronous one, training on a small image
// task by EP and coupled learning, threads, and the estimator that does not run on them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include <pnn/core/threads.hpp>
#include <pnn/data/dataset.hpp>
#include <pnn/learn/coupled_learning.hpp>
#include <pnn/learn/equilibrium_propagation.hpp>
#include <pnn/nn/conv.hpp>
#include <pnn/physics/digital.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_conv_energy {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using hs = act::hard_sigmoid;

// 8 × 8 images → conv 2@3×3, max-pool 2 (3 × 3 × 2 states) → conv 4@2×2, max-pool 2 (1 × 1 × 4
// states) → identity readout of 2: the drive down from the second layer goes to its maxima.
using pooled_net = network<conv2d<conv_shape<8, 8, 1, 2, 3>, dd, noise::none, hs, pool::max<2>>,
                           conv2d<conv_shape<3, 3, 2, 4, 2>, dd, noise::none, hs, pool::max<2>>,
                           dense<4, 2, dd, noise::none, act::identity>>;
// 5 × 5 images → conv 2@3×3 with padding 1, no pooling (5 × 5 × 2 states) → conv 3@2×2,
// average-pool 2 (2 × 2 × 3 states) → an output state of 3.
using plain_net = network<conv2d<conv_shape<5, 5, 1, 2, 3, 1, 1>, dd, noise::none, hs>,
                          conv2d<conv_shape<5, 5, 2, 3, 2>, dd, noise::none, hs, pool::avg<2>>,
                          dense<12, 3, dd, noise::none, hs>>;
static_assert(learn::energy_network<pooled_net> && learn::energy_network<plain_net>);
static_assert(!learn::energy_network<network<dense<8, 18, dd, noise::none, hs>,
                                             conv2d<conv_shape<3, 3, 2, 4, 2>, dd, noise::none, act::identity>>>,
              "a readout above the states is a dense layer");

// Small weights (±0.6/√fan-in) and biases near ½ keep every state inside (0, 1), where F is smooth.
template <class Net>
Net small(std::uint64_t s) {
  Net net(seed{s});
  rng g(s, 7);
  net.for_each_layer([&](auto& l, std::size_t) {
    const std::size_t w = l.tile.in_size() * l.tile.out_size();
    const double scale = 1.2 / std::sqrt(double(l.tile.in_size()));
    for (std::size_t i = 0; i < w; ++i) l.tile.weight_data()[i] = scale * (g.uniform_double() - 0.5);
    for (std::size_t j = 0; j < l.tile.out_size(); ++j) l.tile.bias_data()[j] = 0.4 + 0.2 * g.uniform_double();
  });
  return net;
}

xt::xtensor<double, 2> uniform(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s, 3);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = g.uniform_double();
  return x;
}

learn::equilibrium_propagation<>::params tight(double beta) {
  return {.beta = beta, .free_steps = 2000, .nudged_steps = 2000, .tolerance = 1e-14};
}

// ∂L/∂θ by central differences of the loss at the free equilibrium, for every weight and bias.
template <class Net>
std::vector<double> equilibrium_gradient(Net& net, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t) {
  learn::equilibrium_propagation<> free_phase(tight(0.1));
  auto loss_at = [&] {
    rng g(1);
    const auto y = free_phase.predict(net, x, g);
    return double(loss::mse{}.value(y.data(), t.data(), x.shape()[0], t.shape()[1]));
  };
  std::vector<double> fd;
  const double h = 1e-5;
  net.for_each_layer([&](auto& l, std::size_t) {
    auto probe = [&](double* p, std::size_t count) {
      for (std::size_t j = 0; j < count; ++j) {
        const double keep = p[j];
        p[j] = keep + h;
        const double up = loss_at();
        p[j] = keep - h;
        const double down = loss_at();
        p[j] = keep;
        fd.push_back((up - down) / (2 * h));
      }
    };
    probe(l.tile.weight_data(), l.tile.in_size() * l.tile.out_size());
    probe(l.tile.bias_data(), l.tile.out_size());
  });
  return fd;
}

template <class Net>
std::vector<double> flatten(const Net& net, const gradients<Net>& g) {
  std::vector<double> v;
  net.for_each_layer([&](const auto& l, std::size_t i) {
    v.insert(v.end(), g[i].weight.data(), g[i].weight.data() + l.tile.in_size() * l.tile.out_size());
    v.insert(v.end(), g[i].bias.data(), g[i].bias.data() + l.tile.out_size());
  });
  return v;
}

double relative_distance(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0, r = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    r += b[i] * b[i];
  }
  return std::sqrt(d / r);
}

// Four classes of 8 × 8 images: a bright bar (horizontal or vertical, in the top-left or
// bottom-right half), on noise.
template <class T>
void bars(std::size_t n, std::uint64_t s, xt::xtensor<T, 2>& x, xt::xtensor<T, 2>& t) {
  rng g(s, 11);
  x = xt::xtensor<T, 2>({n, std::size_t{64}});
  t = xt::zeros<T>({n, std::size_t{4}});
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % 4;
    const std::size_t line = (c / 2 == 0 ? 1 : 5) + std::size_t(g.uniform_double() * 2);
    for (std::size_t p = 0; p < 64; ++p) {
      const std::size_t row = p / 8, col = p % 8;
      const bool on = c % 2 == 0 ? row == line : col == line;
      x(i, p) = static_cast<T>((on ? 0.8 : 0.0) + 0.2 * g.uniform_double());
    }
    t(i, c) = T(1);
  }
}
}  // namespace

TEST_CASE("convolutional EP equals the gradient of the equilibrium's loss as beta -> 0 (max, average, no pooling)",
          "[conv][equilibrium_propagation][theory]") {
  SECTION("two max-pooled convolutions under an identity readout") {
    auto net = small<pooled_net>(3);
    const auto x = uniform(3, 64, 1);
    const auto t = uniform(3, 2, 2);
    const auto ref = equilibrium_gradient(net, x, t);
    rng g(4);
    learn::equilibrium_propagation<> ep(tight(1e-3));
    const auto est = flatten(net, ep.estimate(net, x, t, loss::mse{}, g));
    CHECK(ep.last_report().free_residual < 1e-12);
    INFO("relative distance " << relative_distance(est, ref));
    CHECK(relative_distance(est, ref) < 1e-5);
  }
  SECTION("unpooled and average-pooled convolutions under an output state") {
    auto net = small<plain_net>(5);
    const auto x = uniform(2, 25, 3);
    const auto t = uniform(2, 3, 4);
    const auto ref = equilibrium_gradient(net, x, t);
    rng g(4);
    learn::equilibrium_propagation<> ep(tight(1e-3));
    const auto est = flatten(net, ep.estimate(net, x, t, loss::mse{}, g));
    INFO("relative distance " << relative_distance(est, ref));
    CHECK(relative_distance(est, ref) < 1e-5);
  }
}

TEST_CASE("convolutional EP: alternating updates reach the synchronous estimate", "[conv][equilibrium_propagation]") {
  auto net = small<pooled_net>(6);
  const auto x = uniform(4, 64, 5);
  const auto t = uniform(4, 2, 6);
  rng g(1);
  learn::equilibrium_propagation<> sync({.beta = 0.1, .free_steps = 200, .nudged_steps = 200});
  auto alt_p = sync.parameters();
  alt_p.update_order = learn::ep_update_order::alternating;
  learn::equilibrium_propagation<> alt(alt_p);
  const auto a = flatten(net, sync.estimate(net, x, t, loss::mse{}, g));
  const auto b = flatten(net, alt.estimate(net, x, t, loss::mse{}, g));
  CHECK(relative_distance(b, a) < 1e-9);
}

TEST_CASE("EP and coupled learning train a convolutional energy network on bar images",
          "[conv][equilibrium_propagation][coupled_learning]") {
  using net_t = network<conv2d<conv_shape<8, 8, 1, 4, 3>, physics::digital, noise::none, hs, pool::max<2>>,
                        dense<36, 4, physics::digital, noise::none, hs>>;
  xt::xtensor<float, 2> x, t, xv, tv;
  bars(128, 1, x, t);
  bars(200, 2, xv, tv);
  data::dataset held_out;
  held_out.inputs = xv;
  held_out.targets = tv;
  auto accuracy = [&](const net_t& net) {
    learn::equilibrium_propagation<> free_phase;
    rng g(9);
    return free_phase.evaluate(net, loss::mse{}, held_out, g).accuracy;
  };
  SECTION("equilibrium propagation") {
    net_t net(seed{2});
    const double before = accuracy(net);
    learn::equilibrium_propagation<> ep({.optimizer = {.learning_rate = 0.2f}, .beta = 0.5});
    for (std::uint64_t s = 0; s < 60; ++s) {
      rng g(s);
      ep.step(net, x, t, loss::mse{}, g);
    }
    INFO("accuracy " << before << " -> " << accuracy(net));
    CHECK(accuracy(net) > 0.9);
  }
  SECTION("coupled learning") {
    net_t net(seed{2});
    const double before = accuracy(net);
    learn::coupled_learning<> cl({.optimizer = {.learning_rate = 0.2f}, .eta = 0.5});
    for (std::uint64_t s = 0; s < 60; ++s) {
      rng g(s);
      cl.step(net, x, t, loss::mse{}, g);
    }
    INFO("accuracy " << before << " -> " << accuracy(net));
    CHECK(accuracy(net) > 0.9);
  }
}

TEST_CASE("convolutional EP gives the same weights on 1, 2 and 3 threads", "[conv][equilibrium_propagation][threads]") {
  using net_t = network<conv2d<conv_shape<12, 12, 1, 8, 5, 1, 2>, physics::digital, noise::none, hs, pool::max<2>>,
                        dense<6 * 6 * 8, 4, physics::digital, noise::none, hs>>;
  xt::xtensor<float, 2> x({128, 144}), t = xt::zeros<float>({128, 4});
  rng gx(3);
  for (auto& v : x) v = static_cast<float>(gx.uniform_double());
  for (std::size_t i = 0; i < 128; ++i) t(i, i % 4) = 1.0f;
  auto run = [&](unsigned threads) {
    set_num_threads(threads);
    net_t net(seed{5});
    learn::equilibrium_propagation<> ep({.free_steps = 8, .nudged_steps = 4});
    for (std::uint64_t s = 0; s < 2; ++s) {
      rng g(s);
      ep.step(net, x, t, loss::mse{}, g);
    }
    set_num_threads(0);
    const auto& k = layer<0>(net).tile;
    return std::vector<float>(k.weight_data(), k.weight_data() + 8 * 25);
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}

TEST_CASE("the holomorphic estimator refuses a convolutional energy network and changes nothing",
          "[conv][equilibrium_propagation][errors]") {
  auto net = small<pooled_net>(3);
  const auto x = uniform(2, 64, 1);
  const auto t = uniform(2, 2, 2);
  const std::vector<double> before(layer<0>(net).tile.weight_data(), layer<0>(net).tile.weight_data() + 18);
  learn::equilibrium_propagation<> ep({.estimator = learn::ep_estimator::holomorphic});
  rng g(1);
  CHECK_THROWS_WITH(ep.step(net, x, t, loss::mse{}, g), Catch::Contains("convolutional energy networks"));
  CHECK(std::vector<double>(layer<0>(net).tile.weight_data(), layer<0>(net).tile.weight_data() + 18) == before);
}

TEST_CASE("a convolutional energy network of run-time geometry relaxes and learns as the fixed one",
          "[conv][equilibrium_propagation][dynamic]") {
  using any_shape = conv_shape<dynamic, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic>;
  using pooled_dyn = network<conv2d<any_shape, dd, noise::none, hs, pool::max<2>>,
                             conv2d<any_shape, dd, noise::none, hs, pool::max<2>>,
                             dense<dynamic, dynamic, dd, noise::none, act::identity>>;
  static_assert(learn::energy_network<pooled_dyn>);
  auto fixed = small<pooled_net>(3);
  pooled_dyn dyn({64, 18, 4, 2}, seed{1}, at_layer<0>(conv_geometry{8, 8, 1, 2, 3}),
                 at_layer<1>(conv_geometry{3, 3, 2, 4, 2}));
  REQUIRE(dyn.sizes() == fixed.sizes());
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((std::copy(layer<I>(fixed).tile.weight_data(),
                layer<I>(fixed).tile.weight_data() + layer<I>(fixed).tile.in_size() * layer<I>(fixed).tile.out_size(),
                layer<I>(dyn).tile.weight_data()),
      std::copy(layer<I>(fixed).tile.bias_data(), layer<I>(fixed).tile.bias_data() + layer<I>(fixed).tile.out_size(),
                layer<I>(dyn).tile.bias_data())),
     ...);
  }(std::make_index_sequence<3>{});
  const auto x = uniform(3, 64, 1);
  const auto t = uniform(3, 2, 2);
  learn::equilibrium_propagation<> ep_fixed({.beta = 0.1, .free_steps = 40, .nudged_steps = 20}), ep_dyn = ep_fixed;
  rng g1(4), g2(4);
  const auto a = ep_fixed.estimate(fixed, x, t, loss::mse{}, g1);
  const auto b = ep_dyn.estimate(dyn, x, t, loss::mse{}, g2);
  for (std::size_t l = 0; l < 3; ++l) {
    INFO("layer " << l);
    CHECK(std::vector<double>(a[l].weight.begin(), a[l].weight.end()) ==
          std::vector<double>(b[l].weight.begin(), b[l].weight.end()));
    CHECK(std::vector<double>(a[l].bias.begin(), a[l].bias.end()) ==
          std::vector<double>(b[l].bias.begin(), b[l].bias.end()));
  }
}

}  // namespace tests_conv_energy
