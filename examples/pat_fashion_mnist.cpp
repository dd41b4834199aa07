// SPDX-License-Identifier: MIT
// In-silico training vs physics-aware training (PAT) of Fashion-MNIST 784-256-10 on a mismatched
// physical substrate, `crossbar_variation`: a soft-bounds crossbar (default IO) whose weights
// carry static per-device variation w(1 + 0.3ξ), a static per-column gain error (σ = 0.1) and
// read noise (σ = 0.02 of full scale). In silico: train the ideal digital twin, program its
// weights onto the crossbar, evaluate there. PAT: forward on the crossbar, backward through the
// digital twin at the measured activations, updates programmed onto the crossbar.
// PAT here fine-tunes the deployed network, so it gets its epochs on top of in-silico's.
// Claim, checked (exit status 1 when it fails): PAT ends at least one point above in-silico
// deployment on the same crossbar.
// Usage: pat_fashion_mnist [epochs = 5] [PAT fine-tuning epochs = 2] [train limit = 60000] [data dir]
//                          [PAT learning rate = 0.005]
#include <pnn/pnn.hpp>

#include <cstdio>
#include <string>
#include <vector>

using namespace pnn;

using mismatch = noise::crossbar_mismatch;
using xbar = physics::crossbar<physics::devices::soft_bounds>;
using physical_t = network<dense<dynamic, dynamic, xbar, mismatch, act::tanh>,
                           dense<dynamic, dynamic, xbar, mismatch, act::identity>>;
using twin_t = rebind_t<physical_t, physics::digital>;

physical_t make_physical() {
  return physical_t({784, 256, 10}, seed{7}, noise::crossbar_variation_mismatch());
}

template <class Rule>
void report(const char* what, const history& h) {
  for (const auto& m : h)
    std::printf("  %-10s epoch %zu  train acc %.2f %%  test acc %.2f %%  (%.0f samples/s)\n", what, m.epoch,
                100 * m.train_accuracy, 100 * m.test_accuracy, m.samples_per_second);
  (void)sizeof(Rule);
}

int main(int argc, char** argv) try {
  const std::size_t epochs = argc > 1 ? std::stoul(argv[1]) : 5;
  const std::size_t tune = argc > 2 ? std::stoul(argv[2]) : 2;
  data::split fm = argc > 4 ? data::fashion_mnist(argv[4]) : data::fashion_mnist();
  if (argc > 3) fm.train = data::take(fm.train, std::stoul(argv[3]));
  const std::size_t steps = epochs * ((fm.train.size() + 63) / 64);
  const optim::momentum opt{.learning_rate = 0.02f, .momentum = 0.9f,
                            .lr_schedule = {.type = optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}};
  const train_options to{.epochs = epochs, .batch = 64, .seed = 1, .progress = progress_mode::never};
  const loss::softmax_cross_entropy ce{};

  // In silico: train the digital twin, deploy onto the crossbar, evaluate there.
  twin_t twin({784, 256, 10}, seed{42});
  physical_t deployed = make_physical();
  learn::backprop<optim::momentum> bp{{.optimizer = opt}};
  const auto silico = in_silico(twin, deployed, bp, ce, fm.train, fm.test, to);
  report<decltype(bp)>("digital", silico.twin_history);

  // Physics-aware: start from the deployed weights and keep training on the crossbar itself
  // (forward through its physics, backward through the digital twin), `tune` more epochs.
  physical_t pat_net = deployed;
  const float lr = argc > 5 ? std::stof(argv[5]) : 0.005f;
  learn::physics_aware<optim::momentum> pat{{.optimizer = {.learning_rate = lr, .momentum = 0.9f}}};
  train_options tp = to;
  tp.epochs = tune;
  tp.test = &fm.test;
  const auto h = train(pat_net, pat, ce, fm.train, tp);
  report<decltype(pat)>("PAT", h);
  const double pat_acc = h.back().test_accuracy;

  const double dig = silico.twin.accuracy, sil = silico.deployed.accuracy;
  std::printf("digital reference        %.2f %%\n", 100 * dig);
  std::printf("in-silico on crossbar    %.2f %%  (loses %.2f points)\n", 100 * sil, 100 * (dig - sil));
  std::printf("physics-aware on crossbar %.2f %%  (recovers %.0f %% of the loss)\n", 100 * pat_acc,
              dig > sil ? 100 * (pat_acc - sil) / (dig - sil) : 0.0);
  const bool holds = pat_acc >= sil + 0.01;
  std::printf("claim: physics-aware training ends at least 1 point above in-silico deployment: %s\n",
              holds ? "holds" : "FAILS");
  return holds ? 0 : 1;
} catch (const pnn::error& e) {
  std::fprintf(stderr, "pat_fashion_mnist: %s\n", e.what());
  return 1;
}
