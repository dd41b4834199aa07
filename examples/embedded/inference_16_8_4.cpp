// SPDX-License-Identifier: MIT
// Fixed-size 16-8-4 inference on a microcontroller: the network is constinit data, the forward
// pass runs on our scalar kernels, nothing touches the heap (CI checks the image has no malloc).
// The weights arrive as a pnn checkpoint (the same bytes `pnn::io::save` writes on a host):
// `pnn::read_state` verifies magic, version, CRC-32 and the network's signature before copying.
#include <pnn/embedded.hpp>

using namespace pnn;

using net_t = network<dense<16, 8, physics::digital, noise::none, act::tanh>,
                      dense<8, 4, physics::digital, noise::none, act::identity>>;

// Zero-initialised at compile time; the weights are loaded from a checkpoint below.
constinit net_t net{};
constinit net_t trained{};

// A checkpoint of a trained network would sit in flash; here one is written at start-up.
alignas(8) std::byte checkpoint[1024];

// Where a firmware would hand the result to the application; volatile so it is not optimised out.
volatile float output[4];

int main() {
  // Stand-in for a host's training run: draw parameters and write their checkpoint.
  constexpr std::array<std::size_t, 3> sizes{16, 8, 4};
  trained.initialize(sizes.data(), seed{42});
  const std::size_t bytes = write_state(std::span<std::byte>(checkpoint), state_part{"network", trained});
  if (bytes == 0) return 2;  // buffer too small
  // What a firmware does: check and load the checkpoint (nothing changes if it is damaged).
  const state_status loaded = read_state(std::span<const std::byte>(checkpoint, bytes), state_part{"network", net});
  if (!loaded) return 1;
  rng g(42);
  std::array<float, 16> x{};
  for (auto& v : x) v = g.uniform() - 0.5f;
  const auto y = net(x);
  for (std::size_t i = 0; i < 4; ++i) output[i] = y[i];
  return 0;
}
