// SPDX-License-Identifier: MIT
// Must NOT compile: a noise policy that declares the output stage but spells its hook `ouput`.
// Without the declaration the layer would silently skip the noise; with it, the build names
// the stage (tests/CMakeLists.txt checks the message and its size).
#include <pnn/nn/network.hpp>
#include <pnn/physics/digital.hpp>

struct read_noise {
  static constexpr unsigned stages = pnn::noise::output_stage;
  double sigma = 0.05;
  void ouput(float*, std::size_t, pnn::rng&) const {}
};

int main() {
  pnn::network<pnn::dense<3, 2, pnn::physics::digital, read_noise>> net({3, 2}, pnn::seed{1});
  return int(net.input_size());
}
