// Quick start: a small network learns the two-spirals task with backprop on the ideal digital
// substrate. Swap `physics::digital` for another substrate, or `learn::backprop` for another
// rule, and nothing else changes.
#include <pnn/pnn.hpp>

#include <cstdio>

using namespace pnn;

using net_t = network<dense<2, 32, physics::digital, noise::none, act::tanh>,
                      dense<32, 32, physics::digital, noise::none, act::tanh>,
                      dense<32, 2, physics::digital, noise::none, act::identity>>;

int main() {
  rng g(7);
  const data::dataset train_set = data::spirals(1000, g);
  const data::dataset test_set = data::spirals(500, g);

  net_t net{seed{42}};
  learn::backprop<optim::adam> rule{{.optimizer = {.learning_rate = 0.01f}}};
  const auto hist = train(net, rule, loss::softmax_cross_entropy{}, train_set,
                          {.epochs = 200, .batch = 32, .seed = 1, .test = &test_set, .progress = progress_mode::never});

  for (std::size_t e = 0; e < hist.size(); e += 40)
    std::printf("epoch %3zu  loss %.3f  test accuracy %.1f %%\n", hist[e].epoch, hist[e].train_loss,
                100 * hist[e].test_accuracy);
  std::printf("final test accuracy: %.1f %%\n", 100 * hist.back().test_accuracy);
  return hist.back().test_accuracy > 0.9 ? 0 : 1;
}
