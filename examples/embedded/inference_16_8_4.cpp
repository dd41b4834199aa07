// SPDX-License-Identifier: MIT
// Fixed-size 16-8-4 inference on a microcontroller: the network is constinit data, the forward
// pass runs on our scalar kernels, nothing touches the heap (CI checks the image has no malloc).
#include <pnn/embedded.hpp>

using namespace pnn;

using net_t = network<dense<16, 8, physics::digital, noise::none, act::tanh>,
                      dense<8, 4, physics::digital, noise::none, act::identity>>;

// Zero-initialised at compile time (it could equally hold trained weights in flash).
constinit net_t net{};

// Where a firmware would hand the result to the application; volatile so it is not optimised out.
volatile float output[4];

int main() {
  // Draw parameters from the counter-based RNG (stands in for loading trained values).
  constexpr std::array<std::size_t, 3> sizes{16, 8, 4};
  net.initialize(sizes.data(), seed{42});
  rng g(42);
  std::array<float, 16> x{};
  for (auto& v : x) v = g.uniform() - 0.5f;
  const auto y = net(x);
  for (std::size_t i = 0; i < 4; ++i) output[i] = y[i];
  return 0;
}
