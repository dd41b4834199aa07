// SPDX-License-Identifier: MIT
// Forward-only perturbative rules (docs/rules.md theory checks 5 and 6): finite-difference bias
// O(σ²) central / SPSA and O(σ) forward (log-log slopes), node perturbation with exact ∂L/∂z
// equals backprop, code-multiplexed SPSA demultiplexes, parameters are restored exactly,
// bad parameters are rejected, and the rules train through a noisy forward pass.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <pnn/learn/backprop.hpp>
#include <pnn/learn/perturbation.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/physics/digital.hpp>
#include <pnn/simd/random.hpp>

#include <xtensor/xbuilder.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_perturbation {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using hidden = dense<dynamic, dynamic, dd, noise::none, act::tanh>;
using out_layer = dense<dynamic, dynamic, dd, noise::none, act::identity>;
using net2 = network<hidden, out_layer>;
using net3 = network<hidden, hidden, out_layer>;

xt::xtensor<double, 2> batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = g.normal_double();
  return x;
}
xt::xtensor<double, 2> one_hot(std::size_t n, std::size_t k) {
  xt::xtensor<double, 2> t = xt::zeros<double>({n, k});
  for (std::size_t i = 0; i < n; ++i) t(i, (i * 5 + 1) % k) = 1;
  return t;
}
template <class Net>
gradients<Net> exact(Net& net, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t) {
  learn::backprop<> bp;
  rng g(0);
  return bp.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
}
template <class Net>
std::vector<typename Net::value_type> params_of(Net& net) {
  std::vector<typename Net::value_type> p;
  net.for_each_layer([&](auto& l, std::size_t) {
    p.insert(p.end(), l.tile.weight_data(), l.tile.weight_data() + l.in_size() * l.out_size());
    p.insert(p.end(), l.tile.bias_data(), l.tile.bias_data() + l.out_size());
  });
  return p;
}

// Least-squares slope of log(err) over log(sigma).
double slope(const std::vector<double>& s, const std::vector<double>& e) {
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < s.size(); ++i) mx += std::log(s[i]), my += std::log(e[i]);
  mx /= double(s.size());
  my /= double(s.size());
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    sxy += (std::log(s[i]) - mx) * (std::log(e[i]) - my);
    sxx += (std::log(s[i]) - mx) * (std::log(s[i]) - mx);
  }
  return sxy / sxx;
}

// Finite-difference bias of a perturbative estimator: the same directions (common random
// numbers, same seed) at perturbation size σ and at a tiny σ₀ where the difference quotient is
// the exact directional derivative; ‖ĝ(σ) − ĝ(σ₀)‖ is the bias the finite difference adds.
template <class Make>
double bias_slope(Make make, const std::vector<double>& sigmas) {
  net2 net({3, 4, 2}, seed{7});
  const auto x = batch(5, 3, 2);
  const auto t = one_hot(5, 2);
  auto est = [&](double s) {
    auto rule = make(s);
    rng g(42);
    return rule.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  };
  const auto ref = est(1e-6);
  const auto g_true = exact(net, x, t);
  std::vector<double> err;
  for (double s : sigmas) err.push_back((est(s) - ref).norm() / g_true.norm());
  for (std::size_t i = 0; i < err.size(); ++i) INFO("sigma " << sigmas[i] << " bias " << err[i]);
  return slope(sigmas, err);
}
}  // namespace

TEST_CASE("weight_perturbation: central bias O(sigma^2), forward O(sigma)", "[perturbation]") {
  const std::vector<double> sig{0.01, 0.02, 0.04, 0.08};
  const double central = bias_slope(
      [](double s) {
        return learn::weight_perturbation<>{{.sigma = s, .num_perturbations = 200}};
      },
      sig);
  const double fwd = bias_slope(
      [](double s) {
        return learn::weight_perturbation<>{
            {.sigma = s, .num_perturbations = 200, .difference = learn::finite_difference::forward}};
      },
      sig);
  INFO("log-log slopes: central " << central << ", forward " << fwd);
  CHECK(central == Approx(2.0).margin(0.15));
  CHECK(fwd == Approx(1.0).margin(0.15));
}

TEST_CASE("spsa: bias O(c^2); the multiplexed form too", "[perturbation]") {
  const std::vector<double> sig{0.01, 0.02, 0.04, 0.08};
  const double s1 = bias_slope([](double c) { return learn::spsa<>{{.c = c, .num_perturbations = 200}}; }, sig);
  const double s2 = bias_slope(
      [](double c) {
        return learn::spsa<>{{.c = c, .num_perturbations = 7, .perturbation = learn::spsa_perturbation::code_multiplexed}};
      },
      sig);
  INFO("log-log slopes: spsa " << s1 << ", code-multiplexed " << s2);
  CHECK(s1 == Approx(2.0).margin(0.15));
  CHECK(s2 == Approx(2.0).margin(0.15));
}

TEST_CASE("spsa: unbiased for small c, code multiplexing with one code equals central SPSA, c_k decays", "[perturbation]") {
  net2 net({3, 4, 2}, seed{7});
  const auto x = batch(5, 3, 2);
  const auto t = one_hot(5, 2);
  const auto g_true = exact(net, x, t);
  for (auto mode : {learn::spsa_perturbation::spsa, learn::spsa_perturbation::code_multiplexed}) {
    learn::spsa<> rule{{.c = 1e-4, .gamma = 0, .num_perturbations = 4, .perturbation = mode}};
    gradients<net2> mean(net);
    const int K = 1500;
    for (int k = 0; k < K; ++k) {
      rng g(std::uint64_t(k) + 1);
      mean += rule.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
    }
    mean *= 1.0 / K;
    // variance of one 4-direction estimate ≈ (n−1+…)/4 ‖∇L‖², n = 26: relative error ≈ 0.065
    INFO("relative error of the mean " << (mean - g_true).norm() / g_true.norm());
    CHECK((mean - g_true).norm() / g_true.norm() < 0.15);
  }
  learn::spsa<> one{{.c = 1e-3}};
  learn::spsa<> mux{{.c = 1e-3, .perturbation = learn::spsa_perturbation::code_multiplexed}};
  rng ga(5), gb(5);
  const auto ea = one.estimate(net, x, t, loss::softmax_cross_entropy{}, ga);
  const auto eb = mux.estimate(net, x, t, loss::softmax_cross_entropy{}, gb);
  CHECK((ea - eb).norm() < 1e-9 * ea.norm());
  learn::spsa<> decay{{.c = 0.2}};
  CHECK(decay.perturbation_size(0) == Approx(0.2));
  CHECK(decay.perturbation_size(9) == Approx(0.2 / std::pow(10.0, 0.101)));
  optim::spsa_gain gain{.a = 0.5f, .stability = 10.0f};
  CHECK(gain.gain(0) == Approx(0.5 / std::pow(11.0, 0.602)).epsilon(1e-6));
}

TEST_CASE("node_perturbation: with the exact dL/dz (coordinate directions, small sigma) it equals backprop",
          "[perturbation]") {
  net3 net({4, 6, 5, 3}, seed{3});
  const auto x = batch(7, 4, 11);
  const auto t = one_hot(7, 3);
  const auto g_true = exact(net, x, t);
  learn::node_perturbation<> np{{.sigma = 1e-5, .directions = learn::node_directions::coordinate}};
  rng g(1);
  const auto est = np.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  const double rel = (est - g_true).norm() / g_true.norm();
  INFO("relative difference to backprop " << rel);
  CHECK(rel < 1e-7);
  // Gaussian node perturbation is unbiased: many directions approach the gradient.
  learn::node_perturbation<> ng{{.sigma = 1e-4, .num_perturbations = 3000}};
  rng g2(2);
  const auto est2 = ng.estimate(net, x, t, loss::softmax_cross_entropy{}, g2);
  INFO("gaussian node perturbation, relative error " << (est2 - g_true).norm() / g_true.norm());
  CHECK((est2 - g_true).norm() / g_true.norm() < 0.15);
}

TEST_CASE("perturbative rules restore the parameters exactly and reject bad parameters", "[perturbation]") {
  using fh = dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>;
  using fo = dense<dynamic, dynamic, physics::digital, noise::none, act::identity>;
  using fnet = network<fh, fo>;
  fnet net({6, 9, 4}, seed{1});
  xt::xtensor<float, 2> x = xt::cast<float>(batch(5, 6, 3));
  xt::xtensor<float, 2> t = xt::cast<float>(one_hot(5, 4));
  const auto before = params_of(net);
  auto same = [&] { return params_of(net) == before; };
  rng g(1);
  learn::weight_perturbation<> wp{{.sigma = 0.0123, .num_perturbations = 3}};
  wp.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  CHECK(same());
  learn::weight_perturbation<> wf{{.sigma = 0.0123, .difference = learn::finite_difference::forward}};
  wf.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  CHECK(same());
  learn::spsa<> sp{{.c = 0.031, .num_perturbations = 2}};
  sp.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  CHECK(same());
  learn::spsa<> mg{{.c = 0.031, .num_perturbations = 5, .perturbation = learn::spsa_perturbation::code_multiplexed}};
  mg.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  CHECK(same());
  learn::node_perturbation<> np{{.sigma = 0.05}};
  np.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  CHECK(same());

  CHECK_THROWS_AS((learn::weight_perturbation<>{{.sigma = 0}}.step(net, x, t, loss::mse{}, g)), pnn::error);
  CHECK_THROWS_AS((learn::weight_perturbation<>{{.sigma = -1}}.step(net, x, t, loss::mse{}, g)), pnn::error);
  CHECK_THROWS_AS((learn::weight_perturbation<>{{.num_perturbations = 0}}.step(net, x, t, loss::mse{}, g)),
                  pnn::error);
  CHECK_THROWS_AS((learn::node_perturbation<>{{.sigma = 0}}.step(net, x, t, loss::mse{}, g)), pnn::error);
  CHECK_THROWS_AS((learn::node_perturbation<>{{.num_perturbations = 0}}.step(net, x, t, loss::mse{}, g)),
                  pnn::error);
  CHECK_THROWS_AS((learn::spsa<>{{.c = 0}}.step(net, x, t, loss::mse{}, g)), pnn::error);
  CHECK_THROWS_AS((learn::spsa<>{{.num_perturbations = 0}}.step(net, x, t, loss::mse{}, g)), pnn::error);
  CHECK(same());
}

namespace {
// Read noise on the outputs of a layer: the physical forward pass is stochastic.
struct read_noise {
  static constexpr unsigned stages = noise::output_stage;
  double sd = 0.02;
  template <class T>
  void output(T* y, std::size_t n, rng& g) const {
    add_normal<T>(g, y, n, static_cast<T>(sd));
  }
};
}  // namespace

TEST_CASE("perturbative rules train through a noisy physical forward pass", "[perturbation]") {
  using nh = dense<dynamic, dynamic, dd, read_noise, act::tanh>;
  using no = dense<dynamic, dynamic, dd, read_noise, act::identity>;
  using nnet = network<nh, no>;
  const auto x = batch(40, 3, 4);
  xt::xtensor<double, 2> t = xt::zeros<double>({40, 2});
  for (std::size_t i = 0; i < 40; ++i) t(i, x(i, 0) + x(i, 1) > 0 ? 0 : 1) = 1;
  auto clean_loss = [&](const nnet& net) {
    rng g(0);
    trace<nnet> tr;
    forward_trace(net, x.data(), 40, tr, g);
    return loss::softmax_cross_entropy{}.value(tr.output().data(), t.data(), 40, 2);
  };
  auto train = [&](auto rule) {
    nnet net({3, 6, 2}, seed{2});
    const double before = clean_loss(net);
    for (std::uint64_t k = 0; k < 300; ++k) {
      rng g = rng(7).split(k);
      rule.step(net, x, t, loss::softmax_cross_entropy{}, g);
    }
    const double after = clean_loss(net);
    INFO("loss " << before << " -> " << after);
    CHECK(after < 0.6 * before);
  };
  train(learn::weight_perturbation<optim::adam>{{.optimizer = {.learning_rate = 0.02f}, .sigma = 0.05, .num_perturbations = 4}});
  train(learn::spsa<optim::spsa_gain>{{.optimizer = {.a = 0.5f, .stability = 20.0f}, .c = 0.05, .num_perturbations = 4}});
  train(learn::spsa<optim::adam>{{.optimizer = {.learning_rate = 0.02f}, .c = 0.05, .num_perturbations = 4,
                                  .perturbation = learn::spsa_perturbation::code_multiplexed}});
  train(learn::node_perturbation<optim::adam>{{.optimizer = {.learning_rate = 0.02f}, .sigma = 0.05, .num_perturbations = 2}});
}

}  // namespace tests_perturbation
