// SPDX-License-Identifier: MIT
// Forward-forward and PhyLL-style local learning (check 9 of docs/rules.md): each layer's update
// is the gradient of its own goodness loss (finite differences), it does not depend on the layers
// above (inter-layer gradients blocked), and after training positives have higher goodness. A
// layer without W (a scattering medium) is trained from measured perturbations of its own
// goodness loss, whose estimate approaches the medium's adjoint gradient.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <pnn/learn/forward_forward.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/physics/digital.hpp>
#include <pnn/physics/scattering.hpp>
#include <pnn/simd/random.hpp>

#include <xtensor/xbuilder.hpp>

#include "support/ff_reference.hpp"

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_forward_forward {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using hidden = dense<dynamic, dynamic, dd, noise::none, act::tanh>;
using net3 = network<hidden, hidden, hidden>;

xt::xtensor<double, 2> batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = g.normal_double();
  return x;
}
xt::xtensor<double, 2> labels_one_hot(std::size_t n, std::size_t k) {
  xt::xtensor<double, 2> t = xt::zeros<double>({n, k});
  for (std::size_t i = 0; i < n; ++i) t(i, i % 2) = 1;
  return t;
}

// The local loss of layer `li` with every read written out by hand: tanh(W x + b).
double local_loss(const net3& net, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t, std::size_t li,
                  bool cosine_goodness, double theta, double alpha) {
  return pnn_test::ff_local_loss(net, x, t, li, cosine_goodness, theta, alpha,
                                 [](const auto& l, const std::vector<double>& cur, std::size_t n, std::vector<double>& h) {
                                   const std::size_t d = l.out_size(), width = l.in_size();
                                   for (std::size_t r = 0; r < n; ++r)
                                     for (std::size_t j = 0; j < d; ++j) {
                                       double a = l.tile.bias_data()[j];
                                       for (std::size_t q = 0; q < width; ++q)
                                         a += l.tile.weight_data()[j * width + q] * cur[r * width + q];
                                       h[r * d + j] = std::tanh(a);
                                     }
                                 });
}
}  // namespace

TEST_CASE("forward_forward: each layer's update is the gradient of its own goodness loss", "[forward_forward]") {
  for (auto kind : {learn::ff_goodness::energy, learn::ff_goodness::cosine}) {
    const bool cos = kind == learn::ff_goodness::cosine;
    net3 net({6, 5, 4, 3}, seed{4});
    const auto x = batch(6, 6, 1);
    const auto t = labels_one_hot(6, 3);  // labels 0 and 1 only
    learn::forward_forward<> ff{{.goodness = kind, .threshold = cos ? 0.1 : 0.4, .sharpness = 3.0, .num_classes = 2}};
    rng g(3);
    const auto est = ff.estimate(net, x, t, loss::mse{}, g);
    const double eps = 1e-6;
    net.for_each_layer([&](auto& l, std::size_t li) {
      double worst = 0, scale = 0;
      for (std::size_t q = 0; q < l.in_size() * l.out_size(); q += 3) {
        double& w = l.tile.weight_data()[q];
        const double w0 = w;
        w = w0 + eps;
        const double lp = local_loss(net, x, t, li, cos, cos ? 0.1 : 0.4, 3.0);
        w = w0 - eps;
        const double lm = local_loss(net, x, t, li, cos, cos ? 0.1 : 0.4, 3.0);
        w = w0;
        const double fd = (lp - lm) / (2 * eps);
        worst = std::max(worst, std::abs(fd - est[li].weight.data()[q]));
        scale = std::max(scale, std::abs(fd));
      }
      INFO("goodness " << (cos ? "cosine" : "energy") << ", layer " << li << ": max |fd − ff| " << worst
                       << " (scale " << scale << ")");
      CHECK(scale > 1e-4);
      CHECK(worst < 1e-7 * std::max(1.0, scale));
    });
  }
}

TEST_CASE("forward_forward: a layer's update does not depend on the layers above it", "[forward_forward]") {
  net3 a({6, 5, 4, 3}, seed{4});
  net3 b = a;
  rng gr(9);
  fill_normal<double>(gr, layer<1>(b).tile.weight_data(), 20);
  fill_normal<double>(gr, layer<2>(b).tile.weight_data(), 12);
  const auto x = batch(8, 6, 2);
  const auto t = labels_one_hot(8, 3);
  learn::forward_forward<> ff{{.num_classes = 3}};
  rng ga(5), gb(5);
  const auto ea = ff.estimate(a, x, t, loss::mse{}, ga);
  const auto eb = ff.estimate(b, x, t, loss::mse{}, gb);
  for (std::size_t q = 0; q < 30; ++q) CHECK(ea[0].weight.data()[q] == eb[0].weight.data()[q]);
  CHECK(ea[1].weight.data()[0] != eb[1].weight.data()[0]);
}

TEST_CASE("forward_forward: PhyLL fixed layers get no update; the layers above get their goodness gradient",
          "[forward_forward]") {
  net3 net({6, 5, 4, 3}, seed{4});
  const auto x = batch(8, 6, 2);
  const auto t = labels_one_hot(8, 3);  // labels 0 and 1 only: the wrong label is the other one
  const double theta = 0.1, alpha = 3.0;
  learn::forward_forward<> ff{
      {.goodness = learn::ff_goodness::cosine, .threshold = theta, .sharpness = alpha, .num_classes = 2}};
  rng g0(5);
  const auto trained = ff.estimate(net, x, t, loss::mse{}, g0);  // every layer trained
  // The same rule object (and so the same kept estimate buffers) with layer 0 fixed.
  ff.parameters().fixed_layers = {0};
  rng g1(5);
  const auto est = ff.estimate(net, x, t, loss::mse{}, g1);
  std::size_t nonzero_before = 0, nonzero_fixed = 0;
  for (std::size_t q = 0; q < 30; ++q) {
    nonzero_before += trained[0].weight.data()[q] != 0.0 ? 1U : 0U;
    nonzero_fixed += est[0].weight.data()[q] != 0.0 ? 1U : 0U;
  }
  for (std::size_t j = 0; j < 5; ++j) {
    nonzero_before += trained[0].bias.data()[j] != 0.0 ? 1U : 0U;
    nonzero_fixed += est[0].bias.data()[j] != 0.0 ? 1U : 0U;
  }
  CHECK(nonzero_before == 35);  // trained, layer 0 has a dense update …
  CHECK(nonzero_fixed == 0);    // … fixed, all of its weights and biases get exactly zero
  // The trained layers: central differences of their own goodness loss (written out in
  // `local_loss`, the fixed layer's normalised output as their input), weights and biases.
  const double eps = 1e-6;
  for (std::size_t li : {std::size_t{1}, std::size_t{2}}) {
    double worst = 0, scale = 0;
    net.for_each_layer([&](auto& l, std::size_t i) {
      if (i != li) return;
      const std::size_t nw = l.in_size() * l.out_size();
      for (std::size_t q = 0; q < nw + l.out_size(); ++q) {
        double& p = q < nw ? l.tile.weight_data()[q] : l.tile.bias_data()[q - nw];
        const double p0 = p;
        p = p0 + eps;
        const double lp = local_loss(net, x, t, li, true, theta, alpha);
        p = p0 - eps;
        const double lm = local_loss(net, x, t, li, true, theta, alpha);
        p = p0;
        const double fd = (lp - lm) / (2 * eps);
        const double e = q < nw ? est[li].weight.data()[q] : est[li].bias.data()[q - nw];
        worst = std::max(worst, std::abs(fd - e));
        scale = std::max(scale, std::abs(fd));
      }
    });
    INFO("layer " << li << ": max |fd - ff| " << worst << " (scale " << scale << ")");
    CHECK(scale > 1e-4);
    CHECK(worst < 1e-7 * std::max(1.0, scale));
  }
}

namespace {
struct toy_set {
  xt::xtensor<float, 2> inputs, targets;
};
toy_set toy(std::size_t n, std::uint64_t s) {
  // 3 classes, 12 inputs: the first 3 are the label slots, class c raises features 3c+3…3c+5.
  toy_set d;
  d.inputs = xt::zeros<float>({n, std::size_t{12}});
  d.targets = xt::zeros<float>({n, std::size_t{3}});
  rng g(s);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % 3;
    for (std::size_t j = 3; j < 12; ++j) d.inputs(i, j) = 0.3f * g.normal();
    for (std::size_t j = 0; j < 3; ++j) d.inputs(i, 3 + 3 * c + j) += 1.0f;
    d.targets(i, c) = 1;
  }
  return d;
}
}  // namespace

TEST_CASE("forward_forward: after training, positives have higher goodness and labels are predicted",
          "[forward_forward]") {
  for (auto kind : {learn::ff_goodness::energy, learn::ff_goodness::cosine}) {
    using net_t = network<hidden, hidden>;
    net_t net({12, 16, 3}, seed{1});
    const auto train_set = toy(90, 1), test_set = toy(60, 2);
    xt::xtensor<double, 2> x = xt::cast<double>(train_set.inputs), t = xt::cast<double>(train_set.targets);
    learn::forward_forward<optim::adam> ff{{.optimizer = {.learning_rate = 0.02f},
                                            .goodness = kind,
                                            .threshold = kind == learn::ff_goodness::cosine ? 0.0 : 0.5}};
    step_result last{};
    for (std::uint64_t k = 0; k < 150; ++k) {
      rng g = rng(4).split(k);
      last = ff.step(net, x, t, loss::mse{}, g);
    }
    std::vector<double> sc(60 * 3);
    xt::xtensor<double, 2> xt_ = xt::cast<double>(test_set.inputs);
    rng g(0);
    ff.scores(net, xt_.data(), 60, sc.data(), g);
    double pos = 0, neg = 0;
    for (std::size_t r = 0; r < 60; ++r)
      for (std::size_t c = 0; c < 3; ++c) (c == r % 3 ? pos : neg) += sc[r * 3 + c];
    pos /= 60;
    neg /= 120;
    const double acc = ff.evaluate(net, test_set);
    INFO("goodness " << (kind == learn::ff_goodness::cosine ? "cosine" : "energy") << ": positive " << pos
                     << ", negative " << neg << ", test accuracy " << acc << ", last train correct " << last.correct);
    CHECK(pos > neg);
    CHECK(acc > 0.9);
    CHECK(last.correct > 80);
  }
}

TEST_CASE("forward_forward: bad parameters are rejected before any change", "[forward_forward]") {
  net3 net({6, 5, 4, 3}, seed{4});
  const auto x = batch(4, 6, 1);
  const auto t = labels_one_hot(4, 3);
  const double w0 = layer<0>(net).tile.weight_data()[0];
  rng g(1);
  CHECK_THROWS_AS((learn::forward_forward<>{{.sharpness = 0}}.step(net, x, t, loss::mse{}, g)), pnn::error);
  CHECK_THROWS_AS((learn::forward_forward<>{{.num_classes = 7}}.step(net, x, t, loss::mse{}, g)), pnn::error);
  // A fixed layer that does not exist would silently leave every layer trainable.
  CHECK_THROWS_WITH((learn::forward_forward<>{{.num_classes = 3, .fixed_layers = {3}}}.step(net, x, t, loss::mse{}, g)),
                    Catch::Contains("fixed_layers names layer 3 of a 3-layer network"));
  CHECK(layer<0>(net).tile.weight_data()[0] == w0);
}

TEST_CASE("forward_forward: prediction leaves out the first trained layer, as Hinton does", "[forward_forward]") {
  using net_t = network<hidden, hidden>;
  const net_t net({6, 5, 3}, seed{2});
  const auto x = batch(4, 6, 3);
  auto scores_of = [&](learn::forward_forward<>::params p) {
    learn::forward_forward<> ff{std::move(p)};
    std::vector<double> sc(4 * 3);
    rng g(1);
    ff.scores(net, x.data(), 4, sc.data(), g);
    return sc;
  };
  const auto hinton = scores_of({});
  const auto all = scores_of({.score_first_layer = true});
  const auto first_only = scores_of({.fixed_layers = {1}});       // one trained layer: it is scored
  const auto second_only = scores_of({.fixed_layers = {0}});
  for (std::size_t q = 0; q < hinton.size(); ++q) {
    CHECK(hinton[q] == Approx(second_only[q]).epsilon(1e-12));   // the default scores layer 1 alone
    CHECK(all[q] == Approx(first_only[q] + second_only[q]).epsilon(1e-12));
    CHECK(first_only[q] > 0);                                     // so leaving it out changes the score
  }
}

TEST_CASE("forward_forward: a scattering medium learns from measured perturbations of its goodness loss",
          "[forward_forward][scattering]") {
  using sd = physics::basic_scattering_medium<double>;
  using net_t = network<dense<dynamic, dynamic, sd, noise::none, act::identity>, hidden>;
  const sd::params p{.control_pixels = 9, .output_gain = 2};
  const auto x = batch(8, 6, 7);
  const auto t = labels_one_hot(8, 3);
  auto phases = [](const net_t& net) {
    std::vector<double> v(layer<0>(net).tile.parameter_count());
    layer<0>(net).tile.get_parameters(v.data());
    return v;
  };
  using ff_t = learn::forward_forward<>;
  const ff_t::params base{.optimizer = {.learning_rate = 0.1f}, .num_classes = 3};

  SECTION("the perturbative estimate approaches the medium's adjoint; the layer above is unaffected") {
    net_t a({6, 5, 3}, seed{4}, p), b = a;
    const auto p0 = phases(a);
    ff_t::params pm = base, pp = base;
    pm.physics_gradient = learn::ff_physics_gradient::model;
    pp.perturbation = 1e-5;
    pp.num_perturbations = 4000;
    rng ga(3), gb(3);
    ff_t{pm}.step(a, x, t, loss::mse{}, ga);
    ff_t{pp}.step(b, x, t, loss::mse{}, gb);
    const auto pa = phases(a), pb = phases(b);
    double dot = 0, na = 0, nb = 0;
    for (std::size_t k = 0; k < p0.size(); ++k) {
      const double da = pa[k] - p0[k], db = pb[k] - p0[k];
      dot += da * db, na += da * da, nb += db * db;
    }
    const double cosine = dot / std::sqrt(na * nb), ratio = std::sqrt(nb / na);
    INFO("cosine " << cosine << ", norm ratio " << ratio);
    CHECK(na > 1e-8);
    CHECK(cosine > 0.99);
    CHECK(ratio == Approx(1.0).margin(0.05));
    // The digital layer's local gradient does not pass through the medium's estimate.
    for (std::size_t q = 0; q < 15; ++q) CHECK(layer<1>(a).tile.weight_data()[q] == layer<1>(b).tile.weight_data()[q]);
  }
  SECTION("an estimate restores the medium's parameters exactly and charges its reads and writes") {
    net_t net({6, 5, 3}, seed{4}, p);
    const auto p0 = phases(net);
    cost_counter counter;
    attach_cost_counter(net, &counter);
    rng g(5);
    ff_t ff{{.num_classes = 3, .num_perturbations = 4}};
    const auto est = ff.estimate(net, x, t, loss::mse{}, g);
    attach_cost_counter(net, nullptr);
    CHECK(phases(net) == p0);
    REQUIRE(est[0].parameter_space);
    CHECK(!est[1].parameter_space);
    // One unperturbed read of the positives and negatives, then 2 per direction.
    CHECK(counter.totals().reads == 16 * (1 + 2 * 4));
    CHECK(counter.totals().parameter_writes >= 2 * 4 * 9);
  }
  SECTION("training the medium alone lowers its goodness loss") {
    net_t net({6, 5, 3}, seed{4}, p);
    ff_t ff{{.optimizer = {.learning_rate = 0.05f}, .num_classes = 3, .fixed_layers = {1}, .perturbation = 0.05}};
    rng g(1);
    const double first = ff.step(net, x, t, loss::mse{}, g).loss;
    double last = first;
    for (int k = 0; k < 60; ++k) last = ff.step(net, x, t, loss::mse{}, g).loss;
    INFO("goodness loss " << first << " -> " << last);
    CHECK(last < 0.8 * first);
  }
  SECTION("bad perturbation settings are rejected before any change") {
    net_t net({6, 5, 3}, seed{4}, p);
    const auto p0 = phases(net);
    rng g(1);
    CHECK_THROWS_WITH((ff_t{{.num_classes = 3, .perturbation = 0}}.step(net, x, t, loss::mse{}, g)),
                      Catch::Contains("perturbation must be > 0"));
    CHECK_THROWS_WITH((ff_t{{.num_classes = 3, .num_perturbations = 0}}.step(net, x, t, loss::mse{}, g)),
                      Catch::Contains("num_perturbations"));
    CHECK(phases(net) == p0);
  }
}

}  // namespace tests_forward_forward
