// SPDX-License-Identifier: MIT
// Fashion-MNIST through a scattering medium: the image on a spatial light modulator with a
// trainable phase mask overlaid (one phase per pixel), a fixed random medium (a multimode
// fibre's transmission matrix), 16 camera pixels with shot noise, a digital linear readout. The phases are trained by SPSA, which
// needs no model of the medium, and the readout by backprop, which needs only the camera's
// measured output (`learn::hybrid`). The same network is trained twice — once with the phases
// frozen (only the readout learns: the medium is a fixed random feature map), once with them.
//
//   scattering_fashion_mnist [epochs = 3] [train limit = 20000] [data dir]
//
// Claim (checked, exit status 1 otherwise): training the physics beats the frozen medium by at
// least 3 points on the test set.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <pnn/learn/hybrid.hpp>
#include <pnn/pnn.hpp>

namespace {
using medium = pnn::physics::scattering_medium;
using net_t = pnn::network<pnn::dense<784, 16, medium, pnn::noise::none, pnn::act::identity>,
                           pnn::dense<16, 10, pnn::physics::digital, pnn::noise::none, pnn::act::identity>>;

double run(bool train_phases, std::size_t epochs, const pnn::data::dataset& train_set,
           const pnn::data::dataset& test_set) {
  // The same seed: the same medium, the same initial phases and readout in both runs.
  net_t net(pnn::seed{4},
            medium::params{.placement = medium::mask::on_data, .photons = 1000, .train_mask = train_phases});
  using rule_t = pnn::learn::hybrid<pnn::learn::spsa<>, pnn::learn::backprop<>, pnn::optim::adam>;
  rule_t rule{{.lower = pnn::learn::spsa<>{{.c = 0.3, .num_perturbations = 8}},
               .split = 1,  // layer 0 (the medium) by SPSA, layer 1 (the readout) by backprop
               .optimizer = {.learning_rate = 0.01f}}};
  pnn::train(net, rule, pnn::loss::softmax_cross_entropy{}, train_set,
             {.epochs = epochs, .batch = 64, .seed = 2, .progress = pnn::progress_mode::never});
  return pnn::evaluate(net, pnn::loss::softmax_cross_entropy{}, test_set).accuracy;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    const std::size_t epochs = argc > 1 ? std::stoul(argv[1]) : 3;
    const std::size_t limit = argc > 2 ? std::stoul(argv[2]) : 20000;
    const pnn::data::split fm = argc > 3 ? pnn::data::fashion_mnist(argv[3]) : pnn::data::fashion_mnist();
    const pnn::data::dataset train_set = pnn::data::subset(fm.train, 0, std::min(limit, fm.train.size()));

    const double frozen = run(false, epochs, train_set, fm.test);
    const double trained = run(true, epochs, train_set, fm.test);
    std::printf("scattering medium, 784-pixel SLM with a phase mask -> 16 camera pixels -> digital readout, "
                "SPSA + backprop readout, %zu epochs of %zu images\n",
                epochs, train_set.size());
    std::printf("  control phases frozen:  %.2f %%\n", 100 * frozen);
    std::printf("  control phases trained: %.2f %%\n", 100 * trained);
    const bool ok = trained >= frozen + 0.03;
    std::printf("claim (training the physics beats the frozen medium by >= 3 points): %s\n", ok ? "holds" : "FAILS");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scattering_fashion_mnist: %s\n", e.what());
    return 2;
  }
}
