// SPDX-License-Identifier: MIT
// Equilibrium propagation: the estimate against the implicit-differentiation gradient of the
// equilibrium (β → 0 with the orders one-sided O(β), centered O(β²)), holomorphic N = 2 =
// centered, energy descent of the gradient dynamics, the residual reaching tolerance, and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include <pnn/pnn.hpp>
#include <pnn/learn/coupled_learning.hpp>
#include <pnn/learn/equilibrium_propagation.hpp>

#include "support/energy_reference.hpp"

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_equilibrium_propagation {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using hs = dense<dynamic, dynamic, dd, noise::none, act::hard_sigmoid>;
using ro = dense<dynamic, dynamic, dd, noise::none, act::identity>;
using energy_net = network<hs, hs>;   // output is a state of the energy model
using readout_net = network<hs, ro>;  // identity readout above one hard-sigmoid layer
using pnn_test::implicit_gradient;
static_assert(std::is_same_v<energy_net, pnn_test::reference_energy_net>);

// A tile that can only be read forward (e.g. a one-way optical projection).
struct forward_only {
  using value_type = float;
  struct params {};
  template <std::size_t In, std::size_t Out>
  struct tile {
    using value_type = float;
    void resize(std::size_t, std::size_t) {}
    std::size_t in_size() const { return In; }
    std::size_t out_size() const { return Out; }
    void read(const float*, std::size_t, float*, rng&) const {}
    template <class U>
    void program(const U&, rng&) {}
    void set_weights(const float*, const float*, rng&) {}
    void effective_weights(float*) const {}
    float* weight_data() { return w; }
    const float* weight_data() const { return w; }
    float* bias_data() { return b; }
    const float* bias_data() const { return b; }
    float w[In == dynamic ? 1 : In * Out]{}, b[Out == dynamic ? 1 : Out]{};
  };
};
static_assert(learn::energy_network<energy_net> && learn::energy_network<readout_net>);
static_assert(!learn::energy_network<network<dense<dynamic, dynamic, dd, noise::none, act::tanh>, hs>>,
              "a tanh hidden layer is not an EP neuron");
static_assert(!learn::energy_network<network<hs, dense<dynamic, dynamic, dd, noise::none, act::relu>>>);
static_assert(!learn::energy_network<network<ro>>, "a readout needs a hidden layer below it");
static_assert(!learn::energy_network<network<dense<3, 3, physics::digital, noise::none, act::hard_sigmoid>,
                                      dense<3, 3, forward_only, noise::none, act::hard_sigmoid>>>,
              "EP needs the transposed read above the first layer");

// Small weights and biases near ½ keep every state inside (0, 1), where F is smooth.
template <class Net>
Net small_net(std::initializer_list<std::size_t> sizes, std::uint64_t s) {
  Net net(sizes, seed{s});
  rng g(s, 7);
  net.for_each_layer([&](auto& l, std::size_t) {
    for (std::size_t i = 0; i < l.in_size() * l.out_size(); ++i) l.tile.weight_data()[i] = 0.4 * (g.uniform_double() - 0.5);
    for (std::size_t j = 0; j < l.out_size(); ++j) l.tile.bias_data()[j] = 0.4 + 0.2 * g.uniform_double();
  });
  return net;
}

xt::xtensor<double, 2> uniform_batch(std::size_t n, std::size_t k, double lo, double hi, std::uint64_t s) {
  rng g(s, 3);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = lo + (hi - lo) * g.uniform_double();
  return x;
}

template <class Net>
double relative_error(const gradients<Net>& a, const gradients<Net>& ref) {
  return (a - ref).norm() / ref.norm();
}

learn::equilibrium_propagation<>::params tight(double beta, learn::ep_estimator e) {
  return {.beta = beta, .free_steps = 3000, .nudged_steps = 3000, .tolerance = 1e-14, .estimator = e};
}

double slope(const std::vector<double>& beta, const std::vector<double>& err) {
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < beta.size(); ++i) {
    mx += std::log(beta[i]) / double(beta.size());
    my += std::log(err[i]) / double(beta.size());
  }
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < beta.size(); ++i) {
    sxy += (std::log(beta[i]) - mx) * (std::log(err[i]) - my);
    sxx += (std::log(beta[i]) - mx) * (std::log(beta[i]) - mx);
  }
  return sxy / sxx;
}
}  // namespace

TEST_CASE("EP converges to the implicit-differentiation gradient: one-sided O(beta), centered O(beta^2)",
          "[equilibrium_propagation][theory]") {
  auto net = small_net<energy_net>({6, 5, 3}, 11);
  const auto x = uniform_batch(4, 6, 0, 1, 1);
  const auto t = uniform_batch(4, 3, 0.3, 0.7, 2);
  const auto ref = implicit_gradient(net, x, t);
  const std::vector<double> betas{0.2, 0.1, 0.05, 0.025};
  std::vector<double> e1, e2;
  for (double b : betas) {
    rng g(5);
    learn::equilibrium_propagation<> one(tight(b, learn::ep_estimator::one_sided));
    e1.push_back(relative_error(one.estimate(net, x, t, loss::mse{}, g), ref));
    CHECK(one.last_report().free_residual < 1e-12);
    learn::equilibrium_propagation<> cen(tight(b, learn::ep_estimator::centered));
    e2.push_back(relative_error(cen.estimate(net, x, t, loss::mse{}, g), ref));
  }
  INFO("one-sided errors " << e1[0] << " " << e1[1] << " " << e1[2] << " " << e1[3]);
  INFO("centered errors " << e2[0] << " " << e2[1] << " " << e2[2] << " " << e2[3]);
  CHECK(slope(betas, e1) == Approx(1.0).margin(0.15));
  CHECK(slope(betas, e2) == Approx(2.0).margin(0.15));
  CHECK(e2[1] < 0.2 * e1[1]);
  CHECK(e1[3] < 0.05);
}

TEST_CASE("EP with an identity readout over one hard-sigmoid layer equals backprop as beta -> 0",
          "[equilibrium_propagation][theory]") {
  auto net = small_net<readout_net>({5, 6, 3}, 12);
  const auto x = uniform_batch(3, 5, 0, 1, 3);
  const auto t = uniform_batch(3, 3, 0, 1, 4);
  rng g(1);
  learn::backprop<> bp;
  const auto ref = bp.estimate(net, x, t, loss::mse{}, g);
  learn::equilibrium_propagation<> cen(tight(1e-3, learn::ep_estimator::centered));
  const auto ep = cen.estimate(net, x, t, loss::mse{}, g);
  CHECK(relative_error(ep, ref) < 1e-6);
  CHECK(cosine(ep, ref, 1) == Approx(1.0).margin(1e-12));  // the readout gradient is exact
  // Cross-entropy readout: the same with softmax.
  const auto tc = xt::xtensor<double, 2>{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  const auto ref_ce = bp.estimate(net, x, tc, loss::softmax_cross_entropy{}, g);
  CHECK(relative_error(cen.estimate(net, x, tc, loss::softmax_cross_entropy{}, g), ref_ce) < 1e-6);
}

TEST_CASE("holomorphic EP with N = 2 equals centered EP; N = 4 is more accurate", "[equilibrium_propagation]") {
  auto net = small_net<energy_net>({6, 5, 3}, 21);
  const auto x = uniform_batch(3, 6, 0, 1, 5);
  const auto t = uniform_batch(3, 3, 0.3, 0.7, 6);
  rng g(2);
  learn::equilibrium_propagation<> cen(tight(0.1, learn::ep_estimator::centered));
  auto p2 = tight(0.1, learn::ep_estimator::holomorphic);
  p2.holomorphic_points = 2;
  learn::equilibrium_propagation<> h2(p2);
  const auto gc = cen.estimate(net, x, t, loss::mse{}, g);
  const auto gh = h2.estimate(net, x, t, loss::mse{}, g);
  CHECK(relative_error(gh, gc) < 1e-12);
  auto p4 = p2;
  p4.holomorphic_points = 4;
  learn::equilibrium_propagation<> h4(p4);
  const auto ref = implicit_gradient(net, x, t);
  const double e4 = relative_error(h4.estimate(net, x, t, loss::mse{}, g), ref);
  const double e2 = relative_error(gc, ref);
  INFO("centered " << e2 << ", holomorphic N=4 " << e4);
  CHECK(e4 < 0.1 * e2);
  CHECK_THROWS_AS(h4.estimate(net, x, t, loss::softmax_cross_entropy{}, g), pnn::error);
}

TEST_CASE("random-sign EP: both signs are drawn and their mean cancels the one-sided O(beta) bias",
          "[equilibrium_propagation][theory]") {
  // Each random-sign estimate is the one-sided estimate at +β or at −β; the O(β) terms of the
  // two have opposite signs, so the mean over many draws is close to the centered (O(β²)) one
  // while every single draw keeps the one-sided bias.
  auto net = small_net<energy_net>({6, 5, 3}, 11);
  const auto x = uniform_batch(4, 6, 0, 1, 1);
  const auto t = uniform_batch(4, 3, 0.3, 0.7, 2);
  const auto ref = implicit_gradient(net, x, t);
  const double beta = 0.1;
  rng g0(5);
  learn::equilibrium_propagation<> at_plus(tight(beta, learn::ep_estimator::one_sided));
  learn::equilibrium_propagation<> at_minus(tight(-beta, learn::ep_estimator::one_sided));
  const auto plus = at_plus.estimate(net, x, t, loss::mse{}, g0);
  const auto minus = at_minus.estimate(net, x, t, loss::mse{}, g0);
  const double e_one = relative_error(plus, ref);
  const double e_minus = relative_error(minus, ref);
  learn::equilibrium_propagation<> rs(tight(beta, learn::ep_estimator::random_sign));
  constexpr std::size_t draws = 200;
  std::size_t n_plus = 0, n_minus = 0;
  gradients<energy_net> mean(net);
  for (std::size_t d = 0; d < draws; ++d) {
    rng g(1000 + d);
    const auto est = rs.estimate(net, x, t, loss::mse{}, g);
    const double to_plus = relative_error(est, plus), to_minus = relative_error(est, minus);
    INFO("draw " << d << ": distance to the +beta estimate " << to_plus << ", to the -beta one " << to_minus);
    REQUIRE((to_plus < 1e-12 || to_minus < 1e-12));  // one of the two one-sided estimates, exactly
    (to_plus < 1e-12 ? n_plus : n_minus) += 1;
    mean += est;
  }
  mean *= 1.0 / double(draws);
  const double e_mean = relative_error(mean, ref);
  INFO("one-sided +beta " << e_one << ", -beta " << e_minus << "; mean of " << draws << " random-sign draws " << e_mean
                          << " (" << n_plus << " +, " << n_minus << " -)");
  CHECK(e_one > 0.02);  // the bias to cancel is visible at this β, on either side
  CHECK(e_minus > 0.02);
  // A fair coin: 5 standard deviations of Binomial(200, ½) is ±35.
  CHECK(n_plus >= 65);
  CHECK(n_minus >= 65);
  CHECK(e_mean < 0.25 * e_one);
}

TEST_CASE("persistent EP starts the free phase from the last free state of the same batch size",
          "[equilibrium_propagation][theory]") {
  auto net = small_net<energy_net>({6, 5, 3}, 13);
  const auto x = uniform_batch(4, 6, 0, 1, 31);
  const auto t = uniform_batch(4, 3, 0.3, 0.7, 32);
  const auto ref = implicit_gradient(net, x, t);
  // One-sided: the estimate contrasts the nudged state with the free state itself (a centered
  // estimate would not see the free state once both nudged phases have converged).
  auto many = tight(0.05, learn::ep_estimator::one_sided);
  auto few = many;
  few.free_steps = 2;
  rng g(3);
  const auto converged = learn::equilibrium_propagation<>(many).estimate(net, x, t, loss::mse{}, g);
  const auto short_fresh = learn::equilibrium_propagation<>(few).estimate(net, x, t, loss::mse{}, g);
  const double e_fresh = relative_error(short_fresh, converged);

  auto pm = many;
  pm.persistent = true;
  learn::equilibrium_propagation<> ep(pm);
  (void)ep.estimate(net, x, t, loss::mse{}, g);  // relaxes the free phase to equilibrium and keeps it
  ep.parameters().free_steps = 2;
  const auto warm = ep.estimate(net, x, t, loss::mse{}, g);
  const double e_warm = relative_error(warm, converged);
  INFO("2 free steps from zero: " << e_fresh << " from the converged estimate; from the kept state: " << e_warm);
  CHECK(e_fresh > 1e-2);   // two steps from zero are far from the equilibrium
  CHECK(e_warm < 1e-10);   // from the kept equilibrium they stay on it
  CHECK(ep.last_report().free_residual < 1e-12);
  CHECK(relative_error(warm, ref) < 0.1);  // the one-sided O(β) bias, about 0.05 here

  // Another batch size: the kept state does not fit, the free phase starts from zero again, so
  // two steps give exactly what a non-persistent rule gives with two steps.
  const auto x3 = uniform_batch(3, 6, 0, 1, 33);
  const auto t3 = uniform_batch(3, 3, 0.3, 0.7, 34);
  rng g1(8), g2(8), g3(9);
  const auto converged3 = learn::equilibrium_propagation<>(many).estimate(net, x3, t3, loss::mse{}, g3);
  const auto reset = ep.estimate(net, x3, t3, loss::mse{}, g1);
  const auto fresh3 = learn::equilibrium_propagation<>(few).estimate(net, x3, t3, loss::mse{}, g2);
  CHECK(relative_error(reset, fresh3) < 1e-14);
  CHECK(relative_error(reset, converged3) > 1e-2);
  // … and that state is kept in turn: with enough steps once, two steps later suffice.
  ep.parameters().free_steps = 3000;
  (void)ep.estimate(net, x3, t3, loss::mse{}, g1);
  ep.parameters().free_steps = 2;
  CHECK(relative_error(ep.estimate(net, x3, t3, loss::mse{}, g1), converged3) < 1e-10);
}

TEST_CASE("holomorphic EP with an identity readout and N = 3, 5 points has bias O(beta^N)",
          "[equilibrium_propagation][theory]") {
  // With a readout the free state of the one hard-sigmoid layer is its feed-forward value, so
  // backprop is the exact gradient; the N-point Cauchy estimate's error falls as |β|^N.
  auto net = small_net<readout_net>({5, 6, 3}, 12);
  const auto x = uniform_batch(3, 5, 0, 1, 3);
  const auto t = uniform_batch(3, 3, 0, 1, 4);
  rng g(1);
  const auto ref = learn::backprop<>().estimate(net, x, t, loss::mse{}, g);
  const std::vector<double> betas{0.8, 0.4, 0.2};
  std::vector<double> e3, e5, ec;
  for (double b : betas) {
    auto p = tight(b, learn::ep_estimator::holomorphic);
    p.holomorphic_points = 3;
    learn::equilibrium_propagation<> h3(p);
    e3.push_back(relative_error(h3.estimate(net, x, t, loss::mse{}, g), ref));
    CHECK(h3.last_report().nudged_residual < 1e-12);
    p.holomorphic_points = 5;
    learn::equilibrium_propagation<> h5(p);
    e5.push_back(relative_error(h5.estimate(net, x, t, loss::mse{}, g), ref));
    learn::equilibrium_propagation<> cen(tight(b, learn::ep_estimator::centered));
    ec.push_back(relative_error(cen.estimate(net, x, t, loss::mse{}, g), ref));
  }
  INFO("centered " << ec[0] << " " << ec[1] << " " << ec[2]);
  INFO("N = 3    " << e3[0] << " " << e3[1] << " " << e3[2]);
  INFO("N = 5    " << e5[0] << " " << e5[1] << " " << e5[2]);
  CHECK(slope(betas, ec) == Approx(2.0).margin(0.2));
  CHECK(slope(betas, e3) == Approx(3.0).margin(0.2));
  CHECK(slope(betas, e5) == Approx(5.0).margin(0.3));
  for (std::size_t i = 0; i < betas.size(); ++i) {
    CHECK(e3[i] < 0.5 * ec[i]);
    CHECK(e5[i] < 0.5 * e3[i]);
  }
  CHECK(e3.back() < 1e-5);
  CHECK(e5.back() < 1e-6);
}

TEST_CASE("the gradient dynamics does not increase the energy; the residual reaches tolerance",
          "[equilibrium_propagation]") {
  auto net = energy_net({8, 12, 4}, seed{3});
  const auto x = uniform_batch(5, 8, 0, 1, 7);
  const auto t = uniform_batch(5, 4, 0, 1, 8);
  rng g(3);
  learn::equilibrium_propagation<> ep({.beta = 0.5,
                                       .free_steps = 60,
                                       .nudged_steps = 40,
                                       .epsilon = 0.1,
                                       .estimator = learn::ep_estimator::one_sided,
                                       .dynamics = learn::ep_dynamics::gradient,
                                       .record_energy = true});
  (void)ep.estimate(net, x, t, loss::mse{}, g);
  const auto& r = ep.last_report();
  REQUIRE(r.free_energy_trace.size() == 60);
  REQUIRE(r.nudged_energy_trace.size() == 40);
  for (std::size_t i = 1; i < r.free_energy_trace.size(); ++i)
    CHECK(r.free_energy_trace[i] <= r.free_energy_trace[i - 1] + 1e-12);
  for (std::size_t i = 1; i < r.nudged_energy_trace.size(); ++i)
    CHECK(r.nudged_energy_trace[i] <= r.nudged_energy_trace[i - 1] + 1e-12);
  CHECK(r.free_energy_trace.back() < r.free_energy_trace.front());

  auto small = small_net<energy_net>({8, 12, 4}, 3);
  for (auto dyn : {learn::ep_dynamics::fixed_point, learn::ep_dynamics::gradient})
  for (auto order : {learn::ep_update_order::synchronous, learn::ep_update_order::alternating}) {
    learn::equilibrium_propagation<> tol(
        {.free_steps = 5000, .nudged_steps = 5000, .tolerance = 1e-9, .dynamics = dyn, .update_order = order});
    (void)tol.estimate(small, x, t, loss::mse{}, g);
    INFO("dynamics " << int(dyn) << " order " << int(order) << " steps " << tol.last_report().free_steps << " "
                     << tol.last_report().nudged_steps);
    CHECK(tol.last_report().free_residual < 1e-9);
    CHECK(tol.last_report().nudged_residual < 1e-9);
    CHECK(tol.last_report().free_steps < 5000);
  }
}

TEST_CASE("EP trains a small energy network", "[equilibrium_propagation]") {
  auto net = small_net<energy_net>({4, 16, 2}, 5);
  const auto x = uniform_batch(32, 4, 0, 1, 9);
  xt::xtensor<double, 2> t({32, 2});
  for (std::size_t r = 0; r < 32; ++r) {
    t(r, 0) = 0.2 + 0.6 * (x(r, 0) > x(r, 1) ? 1.0 : 0.0);
    t(r, 1) = 1.0 - t(r, 0);
  }
  learn::equilibrium_propagation<> ep({.optimizer = {.learning_rate = 0.1f}});
  rng g(4);
  const double before = ep.step(net, x, t, loss::mse{}, g).loss;
  double after = before;
  for (int i = 0; i < 300; ++i) after = ep.step(net, x, t, loss::mse{}, g).loss;
  CHECK(after < 0.2 * before);
  const auto y = ep.predict(net, x, g);
  CHECK(loss::mse{}.value(y.data(), t.data(), 32, 2) == Approx(ep.step(net, x, t, loss::mse{}, g).loss).epsilon(1e-6));
}

TEST_CASE("EP rejects bad parameters and a diverging relaxation before changing anything",
          "[equilibrium_propagation]") {
  using ep_t = learn::equilibrium_propagation<>;
  CHECK_THROWS_AS(ep_t({.beta = 0}), pnn::error);
  CHECK_THROWS_AS(ep_t({.free_steps = 0}), pnn::error);
  CHECK_THROWS_AS(ep_t({.nudged_steps = 0}), pnn::error);
  CHECK_THROWS_AS(ep_t({.epsilon = 0}), pnn::error);
  CHECK_THROWS_AS(ep_t({.epsilon = -1}), pnn::error);
  // +inf would end every phase after one step: no relaxation, silently.
  CHECK_THROWS_WITH(ep_t({.tolerance = std::numeric_limits<double>::infinity()}), Catch::Contains("finite"));
  CHECK_THROWS_AS(learn::coupled_learning<>({.tolerance = std::numeric_limits<double>::infinity()}), pnn::error);
  CHECK_THROWS_AS(ep_t({.estimator = learn::ep_estimator::holomorphic, .holomorphic_points = 1}), pnn::error);

  auto net = energy_net({4, 5, 2}, seed{1});
  const auto x = uniform_batch(3, 4, 0, 1, 1);
  const auto t = uniform_batch(3, 2, 0, 1, 2);
  ep_t ep;
  rng g(1);
  ep.parameters().beta = 0;  // changed after construction: still rejected
  CHECK_THROWS_AS(ep.step(net, x, t, loss::mse{}, g), pnn::error);
  ep.parameters().beta = 0.2;
  CHECK_THROWS_AS(ep.step(net, uniform_batch(3, 5, 0, 1, 1), t, loss::mse{}, g), pnn::error);

  auto& l1 = layer<1>(net);
  const double w_before = layer<0>(net).tile.weight_data()[0];
  l1.tile.weight_data()[0] = std::nan("");
  CHECK_THROWS_WITH(ep.step(net, x, t, loss::mse{}, g), Catch::Contains("diverged"));
  CHECK(layer<0>(net).tile.weight_data()[0] == w_before);
}

TEST_CASE("alternating updates reach in T steps the synchronous state of 2T steps", "[equilibrium_propagation][theory]") {
  // A layered network is bipartite: the synchronous iteration from zero is two interleaved
  // copies of the alternating one, so the output state after T alternating steps is the
  // synchronous one after 2T (the hidden state after 2T − 1).
  auto net = energy_net({7, 9, 4}, seed{17});
  const auto x = uniform_batch(5, 7, 0, 1, 21);
  rng g(4);
  for (std::size_t t : {1U, 2U, 5U, 12U}) {
    learn::equilibrium_propagation<> sync({.free_steps = 2 * t});
    learn::equilibrium_propagation<> alt({.free_steps = t, .update_order = learn::ep_update_order::alternating});
    const auto ys = sync.predict(net, x, g);
    const auto ya = alt.predict(net, x, g);
    double worst = 0;
    for (std::size_t i = 0; i < ys.size(); ++i) worst = std::max(worst, std::abs(ys.data()[i] - ya.data()[i]));
    INFO("T = " << t << ": worst difference " << worst);
    CHECK(worst < 1e-15);
  }
}

TEST_CASE("alternating and synchronous relaxations reach the same equilibrium and estimate",
          "[equilibrium_propagation][theory]") {
  auto net = small_net<energy_net>({6, 5, 3}, 11);
  const auto x = uniform_batch(4, 6, 0, 1, 1);
  const auto t = uniform_batch(4, 3, 0.3, 0.7, 2);
  for (auto e : {learn::ep_estimator::one_sided, learn::ep_estimator::centered}) {
    rng g(5);
    auto p = tight(0.1, e);
    learn::equilibrium_propagation<> sync(p);
    p.update_order = learn::ep_update_order::alternating;
    learn::equilibrium_propagation<> alt(p);
    const auto gs = sync.estimate(net, x, t, loss::mse{}, g);
    const auto ga = alt.estimate(net, x, t, loss::mse{}, g);
    CHECK(relative_error(ga, gs) < 1e-10);
    CHECK(alt.last_report().free_residual < 1e-13);
    CHECK(alt.last_report().free_steps < sync.last_report().free_steps);
    // Both reach the equilibrium solved directly (H s = c in the linear region), not only each
    // other's.
    const auto direct = pnn_test::free_equilibrium_outputs(net, x);
    rng gs2(6), ga2(6);
    const auto ys = sync.predict(net, x, gs2), ya = alt.predict(net, x, ga2);
    CHECK(xt::amax(xt::abs(ys - direct))() < 1e-10);
    CHECK(xt::amax(xt::abs(ya - direct))() < 1e-10);
  }
}

TEST_CASE("alternating fixed-point updates never increase the free energy", "[equilibrium_propagation][theory]") {
  // Each half-step sets a set of uncoupled layers to the exact minimiser of F over them (a
  // separable box-constrained quadratic); the output's MSE nudge evaluated at its old state
  // still contracts towards that minimiser for |β| < 1.
  auto net = energy_net({8, 12, 4}, seed{3});
  net.for_each_layer([](auto& l, std::size_t) {  // strong coupling: the synchronous form oscillates here
    for (std::size_t k = 0; k < l.in_size() * l.out_size(); ++k) l.tile.weight_data()[k] *= 3;
  });
  const auto x = uniform_batch(5, 8, 0, 1, 7);
  const auto t = uniform_batch(5, 4, 0, 1, 8);
  for (auto e : {learn::ep_estimator::one_sided, learn::ep_estimator::centered}) {
    rng g(3);
    learn::equilibrium_propagation<> ep({.beta = 0.5,
                                         .free_steps = 40,
                                         .nudged_steps = 30,
                                         .estimator = e,
                                         .update_order = learn::ep_update_order::alternating,
                                         .record_energy = true});
    (void)ep.estimate(net, x, t, loss::mse{}, g);
    const auto& r = ep.last_report();
    REQUIRE(r.free_energy_trace.size() == 40);
    REQUIRE(r.nudged_energy_trace.size() == 30);
    for (std::size_t i = 1; i < r.free_energy_trace.size(); ++i)
      CHECK(r.free_energy_trace[i] <= r.free_energy_trace[i - 1] + 1e-12);
    for (std::size_t i = 1; i < r.nudged_energy_trace.size(); ++i)
      CHECK(r.nudged_energy_trace[i] <= r.nudged_energy_trace[i - 1] + 1e-12);
  }
}

TEST_CASE("each sample stops on its own residual", "[equilibrium_propagation]") {
  auto net = small_net<energy_net>({8, 12, 4}, 3);
  const auto x = uniform_batch(6, 8, 0, 1, 7);
  const auto t = uniform_batch(6, 4, 0, 1, 8);
  rng g(2);
  // Converged to 1e-9 per sample, the estimate is the fully converged one to about that.
  learn::equilibrium_propagation<> tol({.free_steps = 5000, .nudged_steps = 5000, .tolerance = 1e-9});
  learn::equilibrium_propagation<> full({.free_steps = 400, .nudged_steps = 400});
  const auto gt = tol.estimate(net, x, t, loss::mse{}, g);
  const auto gf = full.estimate(net, x, t, loss::mse{}, g);
  CHECK(relative_error(gt, gf) < 1e-6);
  CHECK(tol.last_report().free_residual < 1e-9);
  CHECK(tol.last_report().free_steps < 400);
}

namespace {
// Mean squared distance of noisy estimates from the noiseless one over `draws` noise streams.
double noisy_error(energy_net net, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t,
                   learn::equilibrium_propagation<>::params p, std::size_t draws) {
  p.state_noise = 0;
  learn::equilibrium_propagation<> clean(p);
  rng g0(1);
  const auto ref = clean.estimate(net, x, t, loss::mse{}, g0);
  p.state_noise = 0.04;
  learn::equilibrium_propagation<> noisy(p);
  double e = 0;
  for (std::size_t d = 0; d < draws; ++d) {
    rng g(100 + d);
    const auto est = noisy.estimate(net, x, t, loss::mse{}, g);
    e += (est - ref).dot(est - ref) / double(draws);
  }
  return e / ref.dot(ref);
}
}  // namespace

TEST_CASE("time-averaged measurements tame neuron noise; centered EP suffers less than one-sided",
          "[equilibrium_propagation]") {
  auto net = small_net<energy_net>({10, 16, 4}, 5);
  const auto x = uniform_batch(8, 10, 0, 1, 3);
  const auto t = uniform_batch(8, 4, 0.2, 0.8, 4);
  learn::equilibrium_propagation<>::params p{.beta = 0.2, .free_steps = 40, .nudged_steps = 30};
  const double e1 = noisy_error(net, x, t, p, 24);
  p.average_steps = 10;
  const double e10 = noisy_error(net, x, t, p, 24);
  INFO("relative squared error: final state " << e1 << ", mean of the last 10 steps " << e10);
  CHECK(e10 < 0.3 * e1);
  p.beta = 0.05;
  const double centered = noisy_error(net, x, t, p, 24);
  p.estimator = learn::ep_estimator::one_sided;
  const double one_sided = noisy_error(net, x, t, p, 24);
  INFO("beta 0.05: centered " << centered << ", one-sided " << one_sided);
  CHECK(one_sided > 2 * centered);

  // Without noise and converged, averaging changes nothing.
  auto q = tight(0.1, learn::ep_estimator::centered);
  rng g(1);
  const auto a1 = learn::equilibrium_propagation<>(q).estimate(net, x, t, loss::mse{}, g);
  q.average_steps = 10;
  const auto a10 = learn::equilibrium_propagation<>(q).estimate(net, x, t, loss::mse{}, g);
  CHECK(relative_error(a10, a1) < 1e-12);
}

TEST_CASE("EP rejects impossible averaging and ordering parameters", "[equilibrium_propagation][errors]") {
  using ep_t = learn::equilibrium_propagation<>;
  CHECK_THROWS_AS(ep_t({.average_steps = 0}), pnn::error);
  CHECK_THROWS_AS(ep_t({.nudged_steps = 4, .average_steps = 5}), pnn::error);
  CHECK_THROWS_AS(ep_t({.state_noise = std::nan("")}), pnn::error);
  CHECK_THROWS_AS(ep_t({.estimator = learn::ep_estimator::holomorphic, .update_order = learn::ep_update_order::alternating}),
                  pnn::error);
  CHECK_THROWS_AS(ep_t({.estimator = learn::ep_estimator::holomorphic, .average_steps = 2}), pnn::error);
  // Neuron noise would perturb the real free phase but not the complex nudged ones.
  CHECK_THROWS_WITH(ep_t({.estimator = learn::ep_estimator::holomorphic, .state_noise = 0.01}),
                    Catch::Contains("holomorphic estimator takes no state_noise"));
  CHECK_NOTHROW(ep_t({.estimator = learn::ep_estimator::holomorphic}));
  CHECK_NOTHROW(ep_t({.nudged_steps = 5, .average_steps = 5}));
}

}  // namespace tests_equilibrium_propagation
