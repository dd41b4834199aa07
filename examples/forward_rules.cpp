// SPDX-License-Identifier: MIT
// Forward-only learning on Fashion-MNIST: rules that need no backward pass through the physics.
//   activity  forward gradient, activity-perturbed (Ren et al. 2022), 784-256-10
//   weight    forward gradient, weight-perturbed (Baydin et al. 2022), 784-256-10
//   ff        forward-forward (Hinton 2022), label embedded in the first 10 pixels, 784-256-10
//   phyll     PhyLL-style: cosine goodness, 784-256-10
//   spsa      SPSA with Spall's gains on a small 784-32-10 net
//   wp        weight perturbation (central differences) on 784-32-10
//   np        node perturbation on 784-32-10
// Usage: forward_rules [rule=activity] [epochs=10] [train-limit=60000]
#include <pnn/learn/forward_forward.hpp>
#include <pnn/learn/forward_gradient.hpp>
#include <pnn/learn/perturbation.hpp>
#include <pnn/pnn.hpp>

#include <cstdio>
#include <string>

using namespace pnn;

using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                      dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;

// Test accuracy of `net`. Forward-forward networks classify by goodness, not by output argmax,
// so they are measured with the rule's own `evaluate`.
template <class Rule>
double test_accuracy(const net_t& net, const Rule& rule, const data::split& fm) {
  if constexpr (requires { rule.evaluate(net, fm.test); }) return rule.evaluate(net, fm.test);
  else return evaluate(net, loss::softmax_cross_entropy{}, fm.test).accuracy;
}

// Trains, prints the test accuracy per epoch, and checks the example's claim: each rule learns
// from forward passes alone, i.e. ends at least 15 points above the untrained network.
template <class Rule>
bool run(net_t net, Rule rule, const data::split& fm, std::size_t epochs) {
  const loss::softmax_cross_entropy ce{};
  const double untrained = test_accuracy(net, rule, fm);
  std::printf("epoch  0  test acc %.2f %% (untrained)\n", 100 * untrained);
  double acc = untrained;
  for (std::size_t e = 1; e <= epochs; ++e) {
    const auto h = train(net, rule, ce, fm.train, {.epochs = 1, .batch = 64, .seed = e, .progress = progress_mode::never});
    acc = test_accuracy(net, rule, fm);
    std::printf("epoch %2zu  train loss %.4f  train acc %.2f %%  test acc %.2f %%  (%.0f samples/s)\n", e,
                h[0].train_loss, 100 * h[0].train_accuracy, 100 * acc, h[0].samples_per_second);
  }
  const bool holds = acc >= untrained + 0.15;
  std::printf("claim: test accuracy at least 15 points above the untrained network's: %s\n", holds ? "holds" : "FAILS");
  return holds;
}

int main(int argc, char** argv) try {
  const std::string rule = argc > 1 ? argv[1] : "activity";
  const std::size_t epochs = argc > 2 ? std::stoul(argv[2]) : 10;
  const std::size_t limit = argc > 3 ? std::stoul(argv[3]) : 60000;
  data::split fm = data::fashion_mnist();
  fm.train = data::take(fm.train, limit);
  const std::size_t steps = epochs * ((fm.train.size() + 63) / 64);
  const optim::schedule cosine{.type = optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05};
  const net_t wide({784, 256, 10}, seed{42}), small({784, 32, 10}, seed{42});
  bool ok = false;

  if (rule == "activity") {
    ok = run(wide, learn::forward_gradient<optim::adam>{{.optimizer = {.learning_rate = 1e-3f, .lr_schedule = cosine},
                                                    .mode = learn::forward_gradient_mode::activity,
                                                    .num_tangents = 4}},
        fm, epochs);
  } else if (rule == "weight") {
    // Plain SGD: Adam's per-coordinate scaling turns a (n+1)-times noisier estimate into a random walk.
    ok = run(wide, learn::forward_gradient<optim::sgd>{{.optimizer = {.learning_rate = 1e-3f, .lr_schedule = cosine},
                                                    .mode = learn::forward_gradient_mode::weight}},
        fm, epochs);
  } else if (rule == "ff" || rule == "phyll") {
    const bool cos = rule == "phyll";
    // A bright label (4× the brightest pixel) and a steep logistic make the label count.
    ok = run(wide, learn::forward_forward<optim::adam>{{.optimizer = {.learning_rate = 3e-3f, .lr_schedule = cosine},
                                                   .goodness = cos ? learn::ff_goodness::cosine : learn::ff_goodness::energy,
                                                   .threshold = cos ? 0.0 : 0.5,
                                                   .sharpness = 10.0,
                                                   .label_scale = 4.0,
                                                   .step_accuracy = false}},
        fm, epochs);
  } else if (rule == "spsa") {
    ok = run(small, learn::spsa<optim::spsa_gain>{{.optimizer = {.a = 0.05f, .stability = 100.0f}, .c = 0.01,
                                              .num_perturbations = 8}},
        fm, epochs);
  } else if (rule == "wp") {
    ok = run(small, learn::weight_perturbation<optim::adam>{{.optimizer = {.learning_rate = 1e-3f, .lr_schedule = cosine},
                                                        .sigma = 0.01, .num_perturbations = 8}},
        fm, epochs);
  } else if (rule == "np") {
    ok = run(small, learn::node_perturbation<optim::adam>{{.optimizer = {.learning_rate = 1e-3f, .lr_schedule = cosine},
                                                      .sigma = 0.01, .num_perturbations = 1}},
        fm, epochs);
  } else {
    std::fprintf(stderr, "forward_rules: unknown rule '%s' (activity, weight, ff, phyll, spsa, wp, np)\n", rule.c_str());
    return 2;
  }
  return ok ? 0 : 1;
} catch (const pnn::error& e) {
  std::fprintf(stderr, "forward_rules: %s\n", e.what());
  return 1;
}
