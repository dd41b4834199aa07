// SPDX-License-Identifier: MIT
// Must NOT compile: a 7 × 7 kernel on a 5 × 5 image without padding. The build reports it in one
// short error naming the geometry (tests/CMakeLists.txt checks the message and its size).
#include <pnn/nn/conv.hpp>
#include <pnn/physics/digital.hpp>

int main() {
  using layer_t = pnn::conv2d<pnn::conv_shape<5, 5, 1, 4, 7>, pnn::physics::digital>;
  return int(layer_t::out_extent);
}
