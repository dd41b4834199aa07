// SPDX-License-Identifier: MIT
// Builds against an installed pnn (no -march flags are inherited from pnn::pnn).
#include <pnn/pnn.hpp>

#include <cstdio>

int main() {
  using namespace pnn;
  network<dense<3, 4, physics::digital, noise::none, act::tanh>, dense<4, 2, physics::digital>> net{seed{1}};
  const auto y = net({0.1f, 0.2f, 0.3f});
  std::printf("pnn consumer: y = (%f, %f)\n", double(y[0]), double(y[1]));
  return 0;
}
