// SPDX-License-Identifier: MIT
// Must NOT compile: a user's estimator written for dense layers only (it says so with
// `runs_on_convolutions = false`) asked to train a convolutional network. The error names the
// contract and lists the shipped rules that do run on convolutions.
#include <pnn/learn/composed_rule.hpp>
#include <pnn/nn/conv.hpp>
#include <pnn/physics/digital.hpp>

struct dense_readout {
  static constexpr const char* name = "dense_readout";
  static constexpr bool runs_on_convolutions = false;
  template <class Net, class Loss>
  pnn::step_result estimate(const Net&, const pnn::checked_batch<typename Net::value_type>& b, const Loss&, pnn::rng&,
                            pnn::gradients<Net>&) {
    return {0.0, 0, b.n};
  }
};

int main() {
  using namespace pnn;
  using net_t = network<conv2d<conv_shape<6, 6, 1, 2, 3>, physics::digital, noise::none, act::tanh>,
                        dense<32, 3, physics::digital, noise::none, act::identity>>;
  net_t net(seed{1});
  learn::composed_rule<dense_readout> rule;
  xt::xtensor<float, 2> x = xt::zeros<float>({1, 36}), t = xt::zeros<float>({1, 3});
  rng g(1);
  rule.step(net, x, t, loss::mse{}, g);
  return 0;
}
