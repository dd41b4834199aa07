// SPDX-License-Identifier: MIT
// Forward gradient (docs/rules.md theory check 4): the forward-mode JVP equals the central finite
// difference, the mean of K samples approaches ∇L with error ≈ √((n+1)/K)·‖∇L‖, the activity
// variant is unbiased, local losses follow their readout, and steps are reproducible.
#include <catch2/catch.hpp>

#include <cmath>

#include <pnn/learn/backprop.hpp>
#include <pnn/learn/forward_gradient.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/physics/digital.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_forward_gradient {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using hidden = dense<dynamic, dynamic, dd, noise::none, act::tanh>;
using out_layer = dense<dynamic, dynamic, dd, noise::none, act::identity>;
using net3 = network<hidden, hidden, out_layer>;
using net2 = network<hidden, out_layer>;

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
double loss_at(const Net& net, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t) {
  rng g(0);
  auto y = forward(net, x, g);
  return loss::softmax_cross_entropy{}.value(y.data(), t.data(), x.shape()[0], net.output_size());
}
template <class Net>
gradients<Net> exact(Net& net, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t) {
  learn::backprop<> bp;
  rng g(0);
  return bp.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
}
}  // namespace

TEST_CASE("forward_gradient: the forward-mode JVP equals the central finite-difference directional derivative",
          "[forward_gradient]") {
  net3 net({4, 6, 5, 3}, seed{3});
  const auto x = batch(7, 4, 11);
  const auto t = one_hot(7, 3);
  gradients<net3> v(net);
  rng gv(5);
  for (std::size_t i = 0; i < 3; ++i) {
    for (auto& w : v[i].weight) w = gv.normal_double();
    for (auto& w : v[i].bias) w = gv.normal_double();
  }
  learn::forward_gradient<> fg;
  rng g(1);
  const double jvp = fg.directional_derivative(net, x, t, loss::softmax_cross_entropy{}, v, g);
  const double eps = 1e-6;
  net3 plus = net, minus = net;
  auto step_by = [&](net3& m, double sc) {
    m.for_each_layer([&](auto& l, std::size_t li) {
      for (std::size_t q = 0; q < v[li].weight.size(); ++q) l.tile.weight_data()[q] += sc * v[li].weight.data()[q];
      for (std::size_t q = 0; q < v[li].bias.size(); ++q) l.tile.bias_data()[q] += sc * v[li].bias.data()[q];
    });
  };
  step_by(plus, eps);
  step_by(minus, -eps);
  const double fd = (loss_at(plus, x, t) - loss_at(minus, x, t)) / (2 * eps);
  INFO("jvp " << jvp << " fd " << fd);
  CHECK(std::abs(jvp - fd) < 1e-7 * std::max(1.0, std::abs(fd)));
  // and it is ∇L·v with ∇L from backprop
  CHECK(jvp == Approx(exact(net, x, t).dot(v)).epsilon(1e-10));
}

TEST_CASE("forward_gradient: weight-perturbed mean of K samples has error sqrt((n+1)/K)·|∇L|", "[forward_gradient]") {
  net2 net({3, 4, 2}, seed{7});  // n = 4·3 + 4 + 2·4 + 2 = 26 parameters
  const auto x = batch(5, 3, 2);
  const auto t = one_hot(5, 2);
  const auto g_true = exact(net, x, t);
  const double n_params = 26;
  const std::size_t K = 400;
  learn::forward_gradient<> fg{{.mode = learn::forward_gradient_mode::weight, .num_tangents = K}};
  double ratio_sum = 0;
  const int seeds = 12;
  for (int s = 0; s < seeds; ++s) {
    rng g(100 + std::uint64_t(s));
    auto est = fg.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
    const auto err = est - g_true;
    ratio_sum += err.dot(err) / (g_true.dot(g_true) * (n_params + 1) / double(K));
  }
  const double ratio = ratio_sum / seeds;  // E = 1 for the theory
  INFO("mean squared error / ((n+1)/K |∇L|²) = " << ratio);
  CHECK(ratio > 0.7);
  CHECK(ratio < 1.4);
}

TEST_CASE("forward_gradient: activity-perturbed estimates are unbiased, with less variance than weight-perturbed",
          "[forward_gradient]") {
  net3 net({4, 6, 5, 3}, seed{3});
  const auto x = batch(6, 4, 9);
  const auto t = one_hot(6, 3);
  const auto g_true = exact(net, x, t);
  const std::size_t K = 4000;
  learn::forward_gradient<> act_fg{{.num_tangents = K}};
  rng g(21);
  const auto est = act_fg.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  const double rel = (est - g_true).norm() / g_true.norm();
  INFO("relative error of the activity mean over " << K << " tangents: " << rel);
  CHECK(rel < 0.15);

  // Single-tangent variance: activity < weight.
  learn::forward_gradient<> a1{}, w1{{.mode = learn::forward_gradient_mode::weight}};
  double va = 0, vw = 0;
  for (std::uint64_t s = 0; s < 200; ++s) {
    rng ga(s), gw(s);
    const auto ea = a1.estimate(net, x, t, loss::softmax_cross_entropy{}, ga) - g_true;
    const auto ew = w1.estimate(net, x, t, loss::softmax_cross_entropy{}, gw) - g_true;
    va += ea.dot(ea);
    vw += ew.dot(ew);
  }
  INFO("activity variance " << va / 200 << ", weight variance " << vw / 200);
  CHECK(va < vw);
}

TEST_CASE("forward_gradient: local losses train each hidden layer on its fixed random readout", "[forward_gradient]") {
  net2 net({4, 6, 3}, seed{4});
  const auto x = batch(5, 4, 3);
  const auto t = one_hot(5, 3);
  learn::forward_gradient<> fg{{.num_tangents = 6000, .local_losses = true, .readout_seed = 77}};
  rng g(8);
  const auto est = fg.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  // Reference: backprop through [layer 0, readout R_0] where R_0 is the documented readout.
  net2 local({4, 6, 3}, seed{4});
  auto& r = layer<1>(local).tile;
  rng gr = rng(77).split(0);
  fill_normal<double>(gr, r.weight_data(), 18, 0.0, 1.0 / std::sqrt(6.0));
  for (std::size_t j = 0; j < 3; ++j) r.bias_data()[j] = 0;
  const auto ref = exact(local, x, t);
  const auto full = exact(net, x, t);
  INFO("cosine to the local gradient " << cosine(est, ref, 0) << ", to the global one " << cosine(est, full, 0));
  CHECK(cosine(est, ref, 0) > 0.98);
  CHECK(cosine(est, full, 1) > 0.98);  // the output layer keeps the global loss
}

TEST_CASE("forward_gradient: steps are reproducible and bad parameters are rejected", "[forward_gradient]") {
  net2 a({4, 5, 3}, seed{2}), b({4, 5, 3}, seed{2});
  const auto x = batch(4, 4, 1);
  const auto t = one_hot(4, 3);
  for (auto mode : {learn::forward_gradient_mode::activity, learn::forward_gradient_mode::weight}) {
    learn::forward_gradient<optim::momentum> ra{{.optimizer = {.learning_rate = 0.1f}, .mode = mode, .num_tangents = 3}};
    auto rb = ra;
    for (std::uint64_t k = 0; k < 3; ++k) {
      rng ga = rng(9).split(k), gb = rng(9).split(k);
      ra.step(a, x, t, loss::softmax_cross_entropy{}, ga);
      rb.step(b, x, t, loss::softmax_cross_entropy{}, gb);
    }
    for (std::size_t q = 0; q < 20; ++q) CHECK(layer<0>(a).tile.weight_data()[q] == layer<0>(b).tile.weight_data()[q]);
  }
  learn::forward_gradient<> bad{{.num_tangents = 0}};
  const auto w0 = layer<0>(a).tile.weight_data()[0];
  rng g(1);
  CHECK_THROWS_AS(bad.step(a, x, t, loss::softmax_cross_entropy{}, g), pnn::error);
  CHECK(layer<0>(a).tile.weight_data()[0] == w0);
}

TEST_CASE("forward_gradient: trains a small classifier", "[forward_gradient]") {
  net2 net({4, 8, 3}, seed{5});
  const auto x = batch(60, 4, 4);
  xt::xtensor<double, 2> t = xt::zeros<double>({60, 3});
  for (std::size_t i = 0; i < 60; ++i) t(i, x(i, 0) > 0.5 ? 0 : (x(i, 1) > 0 ? 1 : 2)) = 1;
  learn::forward_gradient<optim::adam> fg{{.optimizer = {.learning_rate = 0.02f}, .num_tangents = 4}};
  const double before = loss_at(net, x, t);
  for (std::uint64_t k = 0; k < 300; ++k) {
    rng g = rng(3).split(k);
    fg.step(net, x, t, loss::softmax_cross_entropy{}, g);
  }
  const double after = loss_at(net, x, t);
  INFO("loss " << before << " -> " << after);
  CHECK(after < 0.5 * before);
}

}  // namespace tests_forward_gradient
