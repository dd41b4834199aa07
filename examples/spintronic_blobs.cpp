// SPDX-License-Identifier: MIT
// Physics-aware training of coupled spin-torque nano-oscillators (Romera et al. 2018): 2 inputs
// set the DC currents I_dc + W x + b of 8 oscillators coupled through the microwave currents they
// emit; their mean powers feed a digital readout that tells four Gaussian blobs apart. The
// oscillators are a black box with device-to-device spread and thermal noise, so the backward
// pass goes through a twin: the naive linear one, or an MLP fitted to measurements of the
// oscillators (a learned twin). The energy of the oscillators' running time is priced.
// Claim, checked (exit status 1 when it fails): PAT through the learned twin reaches >= 90 %.
// Usage: spintronic_blobs [epochs = 20]
#include <pnn/learn/physics_aware.hpp>
#include <pnn/physics/energy.hpp>
#include <pnn/physics/spintronic.hpp>
#include <pnn/pnn.hpp>
#include <pnn/train/surrogate.hpp>

#include <cstdio>
#include <string>

using namespace pnn;

using box = physics::spintronic_box<float>;
using net_t = network<dense<dynamic, dynamic, box>, dense<dynamic, dynamic, physics::digital>>;

net_t make_net() {
  const physics::spin_torque_oscillators<float> real{
      .frequency_spread = 0.2, .coupling_spread = 0.1, .thermal_noise = 0.02, .seed = 3};
  return net_t({2, 8, 4}, seed{5}, box::params{.model = real});
}

template <class Rule>
double run(const char* what, Rule rule, const data::split& d, std::size_t epochs) {
  net_t net = make_net();
  cost_counter counter;
  const auto h = train(net, rule, loss::softmax_cross_entropy{}, d.train,
                       {.epochs = epochs, .batch = 32, .seed = 1, .test = &d.test, .progress = progress_mode::never,
                        .cost = &counter});
  const double joules = estimate_energy(counter.totals(), {}, energy_model{}).oscillators;
  std::printf("%-26s test accuracy %6.2f %%, oscillators %.3g J per training sample\n", what,
              100 * h.back().test_accuracy, joules / double(epochs * d.train.size()));
  return h.back().test_accuracy;
}

int main(int argc, char** argv) try {
  const std::size_t epochs = argc > 1 ? std::stoul(argv[1]) : 20;
  rng g(3);
  const data::split d{data::gaussian_blobs(800, 2, 4, g, 0.2f), data::gaussian_blobs(500, 2, 4, g, 0.2f)};

  // The learned twin: 3000 measurements of the oscillators at random drives u = W x + b.
  learn::surrogate_report rep;
  const net_t probe = make_net();
  auto s = learn::fit_surrogate(layer<0>(probe),
                                {.hidden1 = 64, .hidden2 = 64, .epochs = 40, .batch = 32, .learning_rate = 1e-2f,
                                 .samples = 3000, .input = learn::surrogate_input::drive, .drive_sd = 1.5},
                                &rep);
  std::printf("learned twin: normalised RMS error %.3f on held-out measurements\n", rep.validation_error);
  learn::surrogate_twin twin;
  twin.set(0, std::move(s));

  const optim::adam opt{.learning_rate = 0.02f};
  run("PAT, linear digital twin", learn::physics_aware<optim::adam>{{.optimizer = opt}}, d, epochs);
  const double learned =
      run("PAT, learned twin", learn::physics_aware<optim::adam, learn::surrogate_twin>{std::move(twin), opt}, d, epochs);
  const bool holds = learned >= 0.9;
  std::printf("claim: PAT through the learned twin reaches at least 90 %%: %s\n", holds ? "holds" : "FAILS");
  return holds ? 0 : 1;
} catch (const pnn::error& e) {
  std::fprintf(stderr, "spintronic_blobs: %s\n", e.what());
  return 1;
}
