// SPDX-License-Identifier: MIT
// Non-finite training and gradient-norm clipping: a diverging run stops with an error naming the
// epoch, the batch, the rule and the layer, and leaves the network as it was before that step;
// `optim::clipped` bounds every step's norm.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_robustness {

using namespace pnn;

namespace {
using net_t = network<dense<dynamic, dynamic, physics::basic_digital<double>, noise::none, act::tanh>,
                      dense<dynamic, dynamic, physics::basic_digital<double>, noise::none, act::identity>>;

template <class Net>
std::vector<std::byte> snapshot(const Net& n) {
  return io::to_bytes(state_part{"network", n});
}

// tanh forward, NaN derivative: a twin that is right going forward and broken going back.
struct broken_derivative {
  template <class T> T operator()(T a) const noexcept { return act::tanh{}(a); }
  template <class T> T derivative(T, T) const noexcept { return std::numeric_limits<T>::quiet_NaN(); }
};

double update_norm(const net_t& before, const net_t& after) {
  double sq = 0;
  before.for_each_layer([&](const auto& l, std::size_t i) {
    after.for_each_layer([&](const auto& m, std::size_t j) {
      if (i != j) return;
      for (std::size_t k = 0; k < l.tile.in_size() * l.tile.out_size(); ++k)
        sq += std::pow(l.tile.weight_data()[k] - m.tile.weight_data()[k], 2);
      for (std::size_t k = 0; k < l.tile.out_size(); ++k) sq += std::pow(l.tile.bias_data()[k] - m.tile.bias_data()[k], 2);
    });
  });
  return std::sqrt(sq);
}
}  // namespace

TEST_CASE("a diverging training run names the epoch, batch, rule and layer, and keeps the last good network",
          "[robustness][train][errors]") {
  using float_net = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                            dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
  rng gd(1);
  auto d = data::gaussian_blobs(64, 4, 2, gd);
  d.inputs *= 1e3f;
  float_net net({4, 8, 2}, seed{3});
  learn::backprop<> rule{{.optimizer = {.learning_rate = 3e38f}}};
  const auto before = snapshot(net);
  try {
    train(net, rule, loss::mse{}, d, {.epochs = 2, .batch = 16, .progress = progress_mode::never});
    FAIL("a learning rate of 3e38 trained without error");
  } catch (const pnn::error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("pnn::train: epoch 1, batch 1 of 4") != std::string::npos);
    CHECK(m.find("backprop: update of layer") != std::string::npos);
    CHECK(m.find("not finite") != std::string::npos);
  }
  CHECK(snapshot(net) == before);
}

TEST_CASE("optim::clipped bounds each step's global norm and passes smaller ones through", "[robustness][optim]") {
  net_t net({3, 5, 2}, seed{4});
  xt::xtensor<double, 2> x = {{0.5, -1.0, 2.0}, {1.5, 0.3, -0.7}};
  xt::xtensor<double, 2> t = {{1.0, 0.0}, {0.0, 1.0}};
  rng g(1);
  learn::backprop<> plain{{.optimizer = {.learning_rate = 1.0f}}};
  const gradients<net_t> grad = plain.estimate(net, x, t, loss::mse{}, g);
  double sq = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    for (double v : grad[i].weight) sq += v * v;
    for (double v : grad[i].bias) sq += v * v;
  }
  const double norm = std::sqrt(sq);
  REQUIRE(norm > 0.05);

  for (const double cap : {0.01, 10.0 * norm}) {
    learn::backprop<optim::clipped<optim::sgd>> rule{{.optimizer = {.inner = {.learning_rate = 1.0f}, .max_norm = float(cap)}}};
    auto s = rule.make_state(net);
    net_t stepped = net;
    rule.step(stepped, s, x, t, loss::mse{}, g);
    CHECK(s.opt.last_norm == Approx(norm).epsilon(1e-5));
    CHECK(update_norm(net, stepped) == Approx(std::min(cap, norm)).epsilon(1e-5));
    CHECK(s.opt.clipped_steps == (cap < norm ? 1u : 0u));
  }
  learn::backprop<optim::clipped<>> bad{{.optimizer = {.max_norm = 0.0f}}};
  const auto before = snapshot(net);
  CHECK_THROWS_WITH(bad.step(net, x, t, loss::mse{}, g), Catch::Contains("optim::clipped: max_norm must be positive"));
  CHECK(snapshot(net) == before);
}

TEST_CASE("a forward pass that diverges is reported at the layer where it did, by every rule that reads forward",
          "[robustness][errors]") {
  using lin = dense<dynamic, dynamic, physics::digital, noise::none, act::identity>;
  using net_f = network<lin, lin, lin>;
  net_f net({4, 3, 3, 2}, seed{5});
  rng gw(9);
  // Layer 0 maps inputs of 1e38 to outputs of 1e38 (finite in float); layer 1 doubles and sums
  // three of them, which overflows: its pre-activation is the first non-finite value.
  const std::vector<float> quarter(12, 0.25f), twos(9, 2.0f), zeros(3, 0.0f);
  layer<0>(net).tile.set_weights(quarter.data(), zeros.data(), gw);
  layer<1>(net).tile.set_weights(twos.data(), zeros.data(), gw);
  xt::xtensor<float, 2> x({2, 4}, 1e38f);
  xt::xtensor<float, 2> t = {{1.0f, 0.0f}, {0.0f, 1.0f}};
  const auto before = snapshot(net);
  const std::string expected = "the forward pass gave NaN or Inf in the output of layer 1 (sample 0 of the batch, unit 0; "
                               "already in its pre-activation";
  auto check = [&](auto rule, const std::string& name) {
    INFO(name);
    rng g(3);
    try {
      rule.step(net, x, t, loss::mse{}, g);
      FAIL("a diverging forward pass trained without error");
    } catch (const pnn::error& e) {
      const std::string m = e.what();
      INFO(m);
      CHECK(m.rfind(name + ": ", 0) == 0);
      CHECK(m.find(expected) != std::string::npos);
      CHECK(m.find("the network was left unchanged") != std::string::npos);
    }
    CHECK(snapshot(net) == before);
  };
  check(learn::backprop<>{}, "backprop");
  check(learn::physics_aware<>{}, "physics_aware");
  check(learn::feedback_alignment<>{}, "feedback_alignment");
  check(learn::direct_feedback_alignment<>{}, "direct_feedback_alignment");
  check(learn::forward_gradient<>{}, "forward_gradient");
  check(learn::weight_perturbation<>{}, "weight_perturbation");
  check(learn::node_perturbation<>{}, "node_perturbation");
  check(learn::spsa<>{}, "spsa");
}

TEST_CASE("a twin whose backward pass diverges stops physics-aware training, the network unchanged",
          "[robustness][errors][physics_aware]") {
  // The model's activation is right in the forward direction but its derivative is NaN, as a
  // badly calibrated twin (or a surrogate outside its data) can give: the measured forward pass
  // is finite, the twin's error signal is not. With momentum, the velocity must not take the
  // NaN either: the next step (after the caller has fixed the twin) would diverge again.
  using model_t = network<dense<dynamic, dynamic, physics::basic_digital<double>, noise::none, broken_derivative>,
                          dense<dynamic, dynamic, physics::basic_digital<double>, noise::none, act::identity>>;
  net_t net({3, 5, 2}, seed{4});
  xt::xtensor<double, 2> x = {{0.5, -1.0, 2.0}, {1.5, 0.3, -0.7}};
  xt::xtensor<double, 2> t = {{1.0, 0.0}, {0.0, 1.0}};
  learn::physics_aware<optim::momentum, learn::network_twin<model_t>> pat{learn::network_twin<model_t>{}};
  auto s = pat.make_state(net);
  const auto before = snapshot(net);
  const auto state_before = io::to_bytes(state_part{"rule", s});
  rng g(1);
  CHECK_THROWS_WITH(pat.step(net, s, x, t, loss::mse{}, g),
                    Catch::Contains("physics_aware: the estimate of layer 0 is not finite") &&
                        Catch::Contains("the network and the optimiser's state were left unchanged"));
  CHECK(snapshot(net) == before);
  CHECK(io::to_bytes(state_part{"rule", s}) == state_before);

  SECTION("a plain step counter is put back too") {
    learn::physics_aware<optim::sgd, learn::network_twin<model_t>> plain{learn::network_twin<model_t>{}};
    auto ps = plain.make_state(net);
    CHECK_THROWS_WITH(plain.step(net, ps, x, t, loss::mse{}, g), Catch::Contains("physics_aware: update of layer 0 is not finite"));
    CHECK(ps.opt.step == 0);
    CHECK(snapshot(net) == before);
  }
}

}  // namespace tests_robustness
