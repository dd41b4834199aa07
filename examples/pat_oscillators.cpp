// SPDX-License-Identifier: MIT
// Physics-aware training of a layer of coupled nonlinear oscillators (Wright et al. 2022), a
// black box the library cannot differentiate: 2 inputs → 8 Duffing oscillators driven by W x + b
// (RK4) → digital readout, on two moons. The "physical" oscillators differ from the model
// (nonlinearity ×1.3, 10 % coupling spread, input noise). PAT runs the forward pass on them and
// back-propagates either through the naive digital twin (the layer taken as linear) or through
// a learned twin: an MLP fitted to measurements of the oscillators.
// Claim, checked (exit status 1 when it fails): the learned twin fits the oscillators (normalised
// validation RMS error below 0.1), and PAT through either twin trains the network to at least
// 80 % test accuracy (chance: 50 %). On this task the two twins end close to each other (~87 %).
// Usage: pat_oscillators [epochs = 30]
#include <pnn/learn/physics_aware.hpp>
#include <pnn/train/surrogate.hpp>
#include <pnn/physics/oscillators.hpp>
#include <pnn/pnn.hpp>

#include <cstdio>
#include <string>

using namespace pnn;

using box = physics::oscillator_box<float>;
using net_t = network<dense<dynamic, dynamic, box>, dense<dynamic, dynamic, physics::digital>>;

net_t make_net() {
  const physics::coupled_oscillators<float> real{.nonlinearity_scale = 1.3, .coupling_noise = 0.1,
                                                 .input_noise = 0.02, .seed = 3};
  return net_t({2, 8, 2}, seed{5}, box::params{.model = real});
}

template <class Rule>
double run(const char* what, Rule rule, const data::split& d, std::size_t epochs) {
  net_t net = make_net();
  const auto h = train(net, rule, loss::softmax_cross_entropy{}, d.train,
                       {.epochs = epochs, .batch = 32, .seed = 1, .test = &d.test, .progress = progress_mode::never});
  std::printf("%-28s train loss %.4f  test accuracy %.2f %%\n", what, h.back().train_loss, 100 * h.back().test_accuracy);
  return h.back().test_accuracy;
}

int main(int argc, char** argv) try {
  const std::size_t epochs = argc > 1 ? std::stoul(argv[1]) : 30;
  rng g(11);
  data::split d{data::two_moons(1000, g, 0.15f), data::two_moons(500, g, 0.15f)};

  // Learned twin: 4000 measurements of the physical oscillators at random drives u = W x + b.
  learn::surrogate_report rep;
  const net_t probe = make_net();
  auto s = learn::fit_surrogate(layer<0>(probe),
                                {.hidden1 = 64, .hidden2 = 64, .epochs = 60, .batch = 32, .learning_rate = 1e-2f,
                                 .samples = 4000, .input = learn::surrogate_input::drive, .drive_sd = 1.5},
                                &rep);
  std::printf("learned twin: normalised RMS error train %.3f, validation %.3f (%zu / %zu samples)\n", rep.train_error,
              rep.validation_error, rep.train_samples, rep.validation_samples);
  learn::surrogate_twin twin;
  twin.set(0, std::move(s));

  const optim::adam opt{.learning_rate = 0.01f};
  const double linear = run("PAT, linear digital twin", learn::physics_aware<optim::adam>{{.optimizer = opt}}, d, epochs);
  const double learned =
      run("PAT, learned twin", learn::physics_aware<optim::adam, learn::surrogate_twin>{std::move(twin), opt}, d, epochs);
  const bool holds = rep.validation_error < 0.1 && linear >= 0.80 && learned >= 0.80;
  std::printf("claim: learned twin validation error < 0.1, both PAT runs at least 80 %%: %s\n", holds ? "holds" : "FAILS");
  return holds ? 0 : 1;
} catch (const pnn::error& e) {
  std::fprintf(stderr, "pat_oscillators: %s\n", e.what());
  return 1;
}
