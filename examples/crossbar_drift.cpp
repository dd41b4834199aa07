// SPDX-License-Identifier: MIT
// Deploying a trained network on PCM crossbars: conductance drift over time, global drift
// compensation, and hardware-aware training (the standard aihwkit inference workflow).
//
// Two 784-256-10 networks are trained on Fashion-MNIST: one with an ideal periphery (plain
// digital training) and one hardware-aware, i.e. read through the crossbar periphery (7-bit DAC,
// 9-bit ADC, output noise) with 4 % weight noise injected in every forward read. Both are then
// programmed onto PCM conductance pairs (programming noise, per-device drift, 1/f read noise;
// docs/physics.md) and evaluated 1 s, 1 h, 1 day and 1 year after programming, with and without
// global drift compensation. Claim, checked for both trainings (exit status 1 when it fails):
// uncompensated drift costs at least 3 points of accuracy after a year, and global drift
// compensation keeps the one-year accuracy within 2 points of the one-second accuracy.
// Usage: crossbar_drift [epochs = 3] [train limit = 60000] [data dir]
#include <pnn/pnn.hpp>
#include <pnn/physics/crossbar.hpp>

#include <cstdio>
#include <string>

using namespace pnn;

// Training uses exact (ideal-device) updates: the devices matter at deployment, not here.
using xbar = physics::crossbar<physics::devices::ideal>;
using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::tanh>,
                      dense<dynamic, dynamic, xbar, noise::none, act::identity>>;

net_t train_network(const data::split& fm, std::size_t epochs, bool hardware_aware) {
  xbar::params p = xbar::params::ideal();
  if (hardware_aware) {
    p.forward = physics::io_params{};  // aihwkit's default periphery: DAC, ADC, output noise
    p.forward.w_noise = 0.04f;         // weight noise, relative to max|w|, drawn per read
  }
  net_t net({784, 256, 10}, seed{42}, p);
  const std::size_t steps = epochs * ((fm.train.size() + 63) / 64);
  learn::backprop<optim::momentum> rule{{.optimizer = {
      .learning_rate = 0.02f,
      .momentum = 0.9f,
      .lr_schedule = {.type = optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}}}};
  train(net, rule, loss::softmax_cross_entropy{}, fm.train, {.epochs = epochs, .batch = 64, .seed = 1});
  return net;
}

int main(int argc, char** argv) try {
  const std::size_t epochs = argc > 1 ? std::stoul(argv[1]) : 3;
  data::split fm = argc > 3 ? data::fashion_mnist(argv[3]) : data::fashion_mnist();
  if (argc > 2) fm.train = data::take(fm.train, std::stoul(argv[2]));
  const double times[] = {1.0, 3600.0, 86400.0, 365.25 * 86400.0};
  const char* names[] = {"1 s", "1 h", "1 day", "1 year"};

  std::printf("%-16s %-13s %8s", "training", "compensation", "trained");
  for (const char* n : names) std::printf(" %8s", n);
  std::printf("\n");
  bool holds = true;
  for (bool hwa : {false, true}) {
    net_t net = train_network(fm, epochs, hwa);
    const double trained = evaluate(net, loss::softmax_cross_entropy{}, fm.test).accuracy;
    // Deployment: the real periphery reads the PCM array, no training-time weight noise.
    net.configure(xbar::params{});
    rng g(7);
    physics::program_inference(net, physics::pcm_inference_params{}, g);
    double at_1s[2] = {}, at_1y[2] = {};
    for (bool compensate : {false, true}) {
      std::printf("%-16s %-13s %7.2f%%", hwa ? "hardware-aware" : "plain", compensate ? "global" : "none",
                  100 * trained);
      physics::set_drift_compensation(net, compensate);
      for (double t : times) {
        rng gt = g.split(static_cast<std::uint64_t>(t));
        physics::set_time(net, t, gt);
        const double acc = evaluate(net, loss::softmax_cross_entropy{}, fm.test, gt).accuracy;
        std::printf(" %7.2f%%", 100 * acc);
        if (t == times[0]) at_1s[compensate] = acc;
        at_1y[compensate] = acc;
      }
      std::printf("\n");
    }
    holds = holds && at_1y[0] <= at_1s[0] - 0.03 && at_1y[1] >= at_1s[1] - 0.02;
  }
  std::printf("claim: drift costs >= 3 points after a year uncompensated; compensation keeps it within 2: %s\n",
              holds ? "holds" : "FAILS");
  return holds ? 0 : 1;
} catch (const pnn::error& e) {
  std::fprintf(stderr, "crossbar_drift: %s\n", e.what());
  return 1;
}
