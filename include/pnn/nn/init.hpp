/// \file
/// \brief Re-initialisation schemes for a network's dense parameters.
///
/// `network`'s constructors draw Glorot-uniform weights (He for ReLU) and zero biases. Some
/// rules want another start: equilibrium propagation's hard-sigmoid units die when they start
/// saturated, so its reference implementations use small `U(±1/√fan_in)` weights *and* biases
/// (PyTorch's `nn.Linear` default). Each draw comes from `rng(seed).split(layer)`.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include <pnn/core/rng.hpp>
#include <pnn/physics/concepts.hpp>

namespace pnn::init {

/// Sets every layer's weights and biases to `U(−s, s)`, `s = gain/√fan_in`, and programs them
/// onto the substrate with `set_weights` (so a physical tile realises them as it can).
/// \pre every layer's tile is a `dense_tile` with `set_weights`.
template <class Net>
void uniform_fan_in(Net& net, seed s, double gain = 1.0) {
  using T = typename Net::value_type;
  net.for_each_layer([&](auto& l, std::size_t i) {
    rng g = rng(s).split(i);
    const double limit = gain / std::sqrt(double(l.in_size()));
    std::vector<T> w(l.in_size() * l.out_size()), b(l.out_size());
    for (auto& v : w) v = static_cast<T>(limit * (2 * g.uniform_double() - 1));
    for (auto& v : b) v = static_cast<T>(limit * (2 * g.uniform_double() - 1));
    rng gp = g.split(1);
    l.tile.set_weights(w.data(), b.data(), gp);
  });
}

}  // namespace pnn::init
