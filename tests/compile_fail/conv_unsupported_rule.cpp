// SPDX-License-Identifier: MIT
// Must NOT compile: a rule that does not run on convolutions (forward-forward) asked to train
// one. The error names the rule and lists those that do.
#include <pnn/learn/forward_forward.hpp>
#include <pnn/nn/conv.hpp>
#include <pnn/physics/digital.hpp>

int main() {
  using namespace pnn;
  using net_t = network<conv2d<conv_shape<6, 6, 1, 2, 3>, physics::digital, noise::none, act::tanh>,
                        dense<32, 3, physics::digital, noise::none, act::identity>>;
  net_t net(seed{1});
  learn::forward_forward<> ff{{.num_classes = 3}};
  xt::xtensor<float, 2> x = xt::zeros<float>({1, 36}), t = xt::zeros<float>({1, 3});
  rng g(1);
  ff.step(net, x, t, loss::mse{}, g);
  return 0;
}
