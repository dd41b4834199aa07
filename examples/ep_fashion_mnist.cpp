// Equilibrium propagation on Fashion-MNIST: a 784-256-10 hard-sigmoid energy network, trained
// by contrasting a free relaxation (T = 30 steps) with nudged ones (K = 10 steps, β = 0.2), the
// prototypical setting of Laborieux et al. (2021).
//
//   ep_fashion_mnist [epochs = 10] [estimator = centered | one_sided | random_sign | holomorphic]
//                    [neuron noise sd = 0] [beta = 0.2]
//
// Prints per epoch the free and nudged fixed-point residuals of the last batch and the test
// accuracy at the free equilibrium (how an EP network computes its output).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <pnn/pnn.hpp>
#include <pnn/learn/equilibrium_propagation.hpp>

using namespace pnn;

using neuron = dense<dynamic, dynamic, physics::digital, noise::none, act::hard_sigmoid>;
using net_t = network<neuron, neuron>;

int main(int argc, char** argv) {
  const std::size_t epochs = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10;
  const std::string which = argc > 2 ? argv[2] : "centered";
  const double noise_sd = argc > 3 ? std::atof(argv[3]) : 0.0;
  const double beta = argc > 4 ? std::atof(argv[4]) : 0.2;
  learn::ep_estimator estimator = learn::ep_estimator::centered;
  if (which == "one_sided") estimator = learn::ep_estimator::one_sided;
  else if (which == "random_sign") estimator = learn::ep_estimator::random_sign;
  else if (which == "holomorphic") estimator = learn::ep_estimator::holomorphic;
  else if (which != "centered") {
    std::fprintf(stderr, "unknown estimator '%s'\n", which.c_str());
    return 1;
  }

  data::split fmnist;
  try {
    fmnist = data::fashion_mnist();
  } catch (const pnn::error& e) {
    std::fprintf(stderr, "Fashion-MNIST not found (%s)\n", e.what());
    return 0;
  }

  const std::size_t batch = 50;
  const std::size_t steps = epochs * ((fmnist.train.size() + batch - 1) / batch);
  net_t net({784, 256, 10}, seed{1});
  // EP's hard-sigmoid units die when they start saturated: draw small weights and biases,
  // U(±1/√fan_in), as PyTorch's nn.Linear does (the reference implementation's initialisation).
  net.for_each_layer([](auto& l, std::size_t i) {
    rng g(11, i);
    const float limit = 1.0f / std::sqrt(float(l.in_size()));
    for (std::size_t k = 0; k < l.in_size() * l.out_size(); ++k) l.tile.weight_data()[k] = limit * (2 * g.uniform() - 1);
    for (std::size_t k = 0; k < l.out_size(); ++k) l.tile.bias_data()[k] = limit * (2 * g.uniform() - 1);
  });
  // Per-layer learning rates (0.2, 0.1) with cosine decay over the whole run.
  learn::equilibrium_propagation<> rule({.optimizer = {.learning_rate = 0.1f,
                                                       .lr_schedule = {.type = optim::schedule::kind::cosine,
                                                                       .total_steps = steps},
                                                       .layer_learning_rates = {0.2f, 0.1f}},
                                         .beta = beta,
                                         .free_steps = 30,
                                         .nudged_steps = 10,
                                         .estimator = estimator,
                                         .state_noise = noise_sd});

  std::printf("EP (%s, beta %.3g, neuron noise %.3g) on Fashion-MNIST 784-256-10, batch %zu\n", which.c_str(), beta,
              noise_sd, batch);
  auto report = [&](epoch_metrics& m) {
    rng g(7, m.epoch);
    const auto test = rule.evaluate(net, loss::mse{}, fmnist.test, g);
    const auto& r = rule.last_report();
    std::printf("epoch %2zu  train acc %.4f  test acc %.4f  residual free %.2e nudged %.2e  (%.1f s, %.0f samples/s)\n",
                m.epoch, m.train_accuracy, test.accuracy, r.free_residual, r.nudged_residual, m.seconds,
                m.samples_per_second);
    std::fflush(stdout);
    m.extra["test_accuracy_equilibrium"] = test.accuracy;
    return true;
  };
  train(net, rule, loss::mse{}, fmnist.train,
        {.epochs = epochs, .batch = batch, .seed = 1, .progress = progress_mode::never, .callbacks = {report}});
  return 0;
}
