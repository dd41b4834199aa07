// SPDX-License-Identifier: MIT
// Impossible optimiser parameters are errors: every rule's step rejects them before the
// optimiser state or the network changes (learn/rule.hpp, finish_step).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_parameters {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using net_t = network<dense<dynamic, dynamic, dd, noise::none, act::tanh>,
                      dense<dynamic, dynamic, dd, noise::none, act::identity>>;

xt::xtensor<double, 2> batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = g.normal_double();
  return x;
}

std::vector<double> weights_of(const net_t& net) {
  std::vector<double> w;
  net.for_each_layer([&](const auto& l, std::size_t) {
    w.insert(w.end(), l.tile.weight_data(), l.tile.weight_data() + l.in_size() * l.out_size());
    w.insert(w.end(), l.tile.bias_data(), l.tile.bias_data() + l.out_size());
  });
  return w;
}

// One step with `rule` must throw a pnn::error whose message contains `what`, and leave the
// network as it was; a second step with a valid rule must then work (no half-made state).
template <class Rule>
void rejects(Rule rule, const std::string& what) {
  net_t net({4, 5, 3}, seed{3});
  const auto x = batch(6, 4, 1), t = batch(6, 3, 2);
  const auto before = weights_of(net);
  rng g(5);
  INFO(what);
  CHECK_THROWS_WITH(rule.step(net, x, t, loss::mse{}, g), Catch::Contains(what));
  CHECK(weights_of(net) == before);
}

constexpr float inf = std::numeric_limits<float>::infinity();
}  // namespace

TEST_CASE("sgd rejects negative or non-finite rates and impossible schedules", "[optim][errors]") {
  using rule = learn::backprop<optim::sgd>;
  rejects(rule{{.optimizer = {.learning_rate = -0.1f}}}, "learning_rate must be non-negative and finite");
  rejects(rule{{.optimizer = {.learning_rate = std::nanf("")}}}, "learning_rate");
  rejects(rule{{.optimizer = {.learning_rate = inf}}}, "learning_rate");
  rejects(rule{{.optimizer = {.weight_decay = -1.0f}}}, "weight_decay");
  rejects(rule{{.optimizer = {.layer_learning_rates = {0.1f, -0.1f}}}}, "layer_learning_rates");
  using optim::schedule;
  rejects(rule{{.optimizer = {.lr_schedule = {.type = schedule::kind::cosine, .total_steps = 0}}}},
          "cosine needs total_steps > 0");
  rejects(rule{{.optimizer = {.lr_schedule = {.type = schedule::kind::cosine, .total_steps = 10, .min_factor = 2}}}},
          "min_factor must be in [0, 1]");
  rejects(rule{{.optimizer = {.lr_schedule = {.type = schedule::kind::exponential, .gamma = 0}}}},
          "gamma must be positive");
  rejects(rule{{.optimizer = {.lr_schedule = {.type = schedule::kind::exponential, .gamma = 0.5, .step_size = 0}}}},
          "step_size must be positive");
}

TEST_CASE("momentum and Adam reject coefficients outside their ranges", "[optim][errors]") {
  rejects(learn::backprop<optim::momentum>{{.optimizer = {.momentum = 1.0f}}}, "momentum must be in [0, 1)");
  rejects(learn::backprop<optim::momentum>{{.optimizer = {.momentum = -0.1f}}}, "momentum must be in [0, 1)");
  rejects(learn::backprop<optim::momentum>{{.optimizer = {.learning_rate = -1.0f}}}, "learning_rate");
  rejects(learn::backprop<optim::adam>{{.optimizer = {.beta1 = 1.0f}}}, "beta1 and beta2 must be in [0, 1)");
  rejects(learn::backprop<optim::adam>{{.optimizer = {.beta2 = 1.5f}}}, "beta1 and beta2 must be in [0, 1)");
  rejects(learn::backprop<optim::adam>{{.optimizer = {.beta1 = -0.1f}}}, "beta1 and beta2");
  rejects(learn::backprop<optim::adam>{{.optimizer = {.epsilon = 0.0f}}}, "epsilon must be positive");
  rejects(learn::backprop<optim::adam>{{.optimizer = {.epsilon = -1e-8f}}}, "epsilon must be positive");
}

TEST_CASE("every rule's step checks its optimiser, not only backprop's", "[optim][errors]") {
  rejects(learn::feedback_alignment<optim::sgd>{{.optimizer = {.learning_rate = -1.0f}}}, "learning_rate");
  rejects(learn::direct_feedback_alignment<optim::adam>{{.optimizer = {.beta1 = 1.0f}}}, "beta1");
  rejects(learn::forward_gradient<optim::momentum>{{.optimizer = {.momentum = 1.5f}}}, "momentum");
  rejects(learn::weight_perturbation<optim::sgd>{{.optimizer = {.learning_rate = -1.0f}}}, "learning_rate");
  rejects(learn::spsa<optim::spsa_gain>{{.optimizer = {.alpha = 0.0f}}}, "alpha must be positive");
  rejects(learn::spsa<optim::spsa_gain>{{.optimizer = {.a = -0.1f}}}, "non-negative");
}

TEST_CASE("valid boundary values are accepted", "[optim]") {
  // Zero learning rate (a frozen network), zero momentum and Adam's beta1 = 0 are legitimate.
  net_t net({4, 5, 3}, seed{3});
  const auto x = batch(6, 4, 1), t = batch(6, 3, 2);
  rng g(5);
  learn::backprop<optim::sgd> frozen{{.optimizer = {.learning_rate = 0.0f}}};
  const auto before = weights_of(net);
  CHECK_NOTHROW(frozen.step(net, x, t, loss::mse{}, g));
  CHECK(weights_of(net) == before);
  learn::backprop<optim::momentum> plain{{.optimizer = {.momentum = 0.0f}}};
  CHECK_NOTHROW(plain.step(net, x, t, loss::mse{}, g));
  learn::backprop<optim::adam> no_first_moment{{.optimizer = {.beta1 = 0.0f}}};
  CHECK_NOTHROW(no_first_moment.step(net, x, t, loss::mse{}, g));
}

}  // namespace tests_parameters
