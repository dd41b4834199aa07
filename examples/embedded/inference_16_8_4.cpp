// Fixed-size 16-8-4 inference on a microcontroller: weights are constinit data (flash), the
// forward pass runs on our scalar kernels, nothing touches the heap.
#include <pnn/embedded.hpp>

#include <cstdio>

using namespace pnn;

using net_t = network<dense<16, 8, physics::digital, noise::none, act::tanh>,
                      dense<8, 4, physics::digital, noise::none, act::identity>>;

// Zero-initialised at compile time; a real firmware would hold trained weights here.
constinit net_t net{};

int main() {
  // Programme a deterministic pattern into the weights (a stand-in for loading trained values).
  rng g(42);
  net.initialize(std::array<std::size_t, 3>{16, 8, 4}.data(), seed{42});
  std::array<float, 16> x{};
  for (auto& v : x) v = g.uniform() - 0.5f;
  const auto y = net(x);
  std::printf("y = %f %f %f %f\n", double(y[0]), double(y[1]), double(y[2]), double(y[3]));
  return 0;
}
