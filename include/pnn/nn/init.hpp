// SPDX-License-Identifier: MIT
/// \file
/// \brief Initialisation schemes for a network's dense parameters, chosen per network.
///
/// `network`'s constructors draw Glorot-uniform weights (He-uniform for ReLU layers) and zero
/// biases, the usual choice for deep classifiers. That start is not right for every task:
/// with zero biases every first-layer unit's boundary passes through the origin, which stalls
/// tasks whose classes wind around it (two spirals: ~60 % instead of ~97 %), and equilibrium
/// propagation's hard-sigmoid units die when they start saturated. The schemes below re-draw a
/// constructed network; each layer's draw comes from `rng(seed).split(layer)`, and the values
/// are programmed onto the substrate with `set_weights`, so a physical tile realises them as its
/// physics can (a crossbar's conductances, a mesh's phases).
///
/// | scheme | weights | biases | reference |
/// |---|---|---|---|
/// | `glorot_uniform` | `U(±gain·√(6/(fan_in+fan_out)))` | 0 | Glorot & Bengio, AISTATS 2010 |
/// | `he_uniform` | `U(±gain·√(6/fan_in))` | 0 | He et al., ICCV 2015 (ReLU units) |
/// | `uniform_fan_in` | `U(±gain/√fan_in)` | `U(±gain/√fan_in)` | LeCun et al., "Efficient BackProp" 1998; PyTorch's `nn.Linear` default |
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/physics/concepts.hpp>

namespace pnn::init {

namespace detail {
/// Draws every layer's weights `U(±weight_limit(in, out))` and biases `U(±bias_limit(in, out))`
/// (a zero limit gives zeros) and programs them with `set_weights`.
template <class Net, class WeightLimit, class BiasLimit>
void uniform_layers(Net& net, seed s, WeightLimit weight_limit, BiasLimit bias_limit) {
  using T = typename Net::value_type;
  net.for_each_layer([&](auto& l, std::size_t i) {
    // A tile without W (a diffractive stack) keeps the parameters its `prepare` drew.
    if constexpr (deployable_tile<typename std::remove_cvref_t<decltype(l)>::tile_type>) {
    rng g = rng(s).split(i);
    // The tile's fans: a convolution's kernel matrix has fan-in k²·C_in.
    const std::size_t ni = l.tile.in_size(), no = l.tile.out_size();
    const double in = double(ni), out = double(no);
    const double wl = weight_limit(in, out), bl = bias_limit(in, out);
    std::vector<T> w(ni * no), b(no);
    for (auto& v : w) v = static_cast<T>(wl * (2 * g.uniform_double() - 1));
    for (auto& v : b) v = bl > 0 ? static_cast<T>(bl * (2 * g.uniform_double() - 1)) : T(0);
    rng gp = g.split(1);
    l.tile.set_weights(w.data(), b.data(), gp);
    }
  });
}

inline void check_gain(double gain, const char* scheme) {
  if (!(gain > 0) || !std::isfinite(gain))
    throw_error(std::string("pnn::init::") + scheme + ": gain must be positive and finite");
}
}  // namespace detail

/// Weights and biases `U(−s, s)`, `s = gain/√fan_in` (the default of PyTorch's `nn.Linear`):
/// non-zero biases spread the units' boundaries away from the origin.
/// \pre every layer's tile is a `dense_tile` with `set_weights`; `gain > 0`.
template <class Net>
void uniform_fan_in(Net& net, seed s, double gain = 1.0) {
  detail::check_gain(gain, "uniform_fan_in");
  const auto limit = [gain](double in, double) { return gain / std::sqrt(in); };
  detail::uniform_layers(net, s, limit, limit);
}

/// Glorot (Xavier) uniform weights, `s = gain·√(6/(fan_in + fan_out))`, zero biases: keeps the
/// variance of activations and of back-propagated errors constant across tanh/sigmoid layers.
/// This is what the network constructors draw for non-ReLU layers.
/// \pre as `uniform_fan_in`.
template <class Net>
void glorot_uniform(Net& net, seed s, double gain = 1.0) {
  detail::check_gain(gain, "glorot_uniform");
  detail::uniform_layers(
      net, s, [gain](double in, double out) { return gain * std::sqrt(6.0 / (in + out)); },
      [](double, double) { return 0.0; });
}

/// He (Kaiming) uniform weights, `s = gain·√(6/fan_in)`, zero biases: the variance-preserving
/// choice for ReLU layers, which zero half their inputs.
/// \pre as `uniform_fan_in`.
template <class Net>
void he_uniform(Net& net, seed s, double gain = 1.0) {
  detail::check_gain(gain, "he_uniform");
  detail::uniform_layers(
      net, s, [gain](double in, double) { return gain * std::sqrt(6.0 / in); },
      [](double, double) { return 0.0; });
}

}  // namespace pnn::init
