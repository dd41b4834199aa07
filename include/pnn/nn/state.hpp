// SPDX-License-Identifier: MIT
/// \file
/// \brief What a network holds that a checkpoint must keep: every layer's substrate state and
/// its noise policies' drawn devices and clocks (`visit_state`, pnn/core/state_format.hpp).
///
/// Layer `i`'s entries live under `layer<i>`: the tile's own (`layer1.weight`,
/// `layer1.cells`, …) then, under `noise`, those of each policy that drew something per device
/// (`layer1.noise.variation.gain_xi`, `layer1.noise.drift.time`; a chain's members under
/// `noise.<index>.<name>`). Parameters of the substrate and noise models are configuration,
/// not state: a checkpoint is loaded into a network built with the same configuration, and the
/// type signature written with it says which. Usable on the embedded path: std only, no heap.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include <pnn/core/state_format.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/noise/stages.hpp>

namespace pnn {

namespace detail {

template <class N, class V>
void visit_noise_member(N& n, V& v, std::size_t i);

template <class N, class V>
void visit_noise_state(N& n, V& v) {
  if constexpr (requires { n.members; }) {
    std::apply(
        [&](auto&... m) {
          std::size_t i = 0;
          ((visit_noise_member(m, v, i++)), ...);
        },
        n.members);
  } else if constexpr (requires { n.visit_state(v); }) {
    auto g = v.scope(N::name);
    n.visit_state(v);
  } else {
    static_assert(!has_drawn_state<N>,
                  "pnn checkpoints: this noise policy draws per-device state (drawn_state) but does not say how "
                  "to store it: give it a member `template <class V> void visit_state(V& v)`");
  }
}

template <class N, class V>
void visit_noise_member(N& n, V& v, std::size_t i) {
  auto g = v.scope("", i);
  visit_noise_state(n, v);
}

}  // namespace detail

namespace detail {
/// The state of one layer: its tile's, then its noise policies' under `noise`; after a load,
/// the layer's effective-weight copy is re-derived from the loaded state.
template <class L, class V>
void visit_layer_state(L& l, V& v) {
  using tile_t = typename L::tile_type;
  static_assert(requires(tile_t& t) { t.visit_state(v); },
                "pnn checkpoints: this layer's substrate does not say what state it holds (a tile member "
                "`template <class V> void visit_state(V& v)`), so it cannot be checkpointed yet");
  // A convolution of run-time geometry records it first: the tile's extents follow from it.
  if constexpr (requires { l.visit_geometry(v); }) l.visit_geometry(v);
  l.tile.visit_state(v);
  {
    auto gn = v.scope("noise");
    visit_noise_state(l.noise, v);
  }
  if constexpr (V::loading)
    if (v.applying()) l.refresh_effective_tile();
}
}  // namespace detail

namespace detail {
template <class P, class Sink>
constexpr void policy_signature(Sink& out) {
  if constexpr (requires { typename std::tuple_size<decltype(P::members)>::type; }) {
    out(std::string_view("chain<"));
    std::size_t k = 0;
    std::apply([&](const auto&... m) { ((out(std::string_view(k++ == 0 ? "" : ",")), policy_signature<std::remove_cvref_t<decltype(m)>>(out)), ...); },
               P{}.members);
    out(std::string_view(">"));
  } else {
    out(std::string_view(P::name));
    if constexpr (requires { P::bits; }) {
      out(std::string_view("<"));
      signature_number(P::bits, out);
      out(std::string_view(">"));
    }
  }
}

template <class S, class Sink>
constexpr void substrate_signature(Sink& out) {
  out(std::string_view(S::name));
  if constexpr (requires { typename S::device_type; }) {
    out(std::string_view("<"));
    out(std::string_view(S::device_type::name));
    out(std::string_view(">"));
  }
}

template <class L, class Sink>
constexpr void layer_signature(Sink& out) {
  if constexpr (requires { typename L::shape_type; typename L::pool_type; }) {
    using C = typename L::shape_type;
    out(std::string_view("conv2d<"));
    const std::size_t v[] = {C::height, C::width, C::in_channels, C::out_channels, C::kernel, C::stride, C::padding};
    for (std::size_t k = 0; k < 7; ++k) {
      if (k != 0) out(std::string_view(","));
      signature_number(v[k], out);
    }
    out(std::string_view(","));
    out(std::string_view(L::pool_type::name));
    signature_number(L::pool_type::window, out);
  } else {
    out(std::string_view("dense<"));
    signature_number(L::in_extent, out);
    out(std::string_view(","));
    signature_number(L::out_extent, out);
  }
  out(std::string_view(","));
  substrate_signature<typename L::substrate_type>(out);
  out(std::string_view(","));
  policy_signature<typename L::noise_type>(out);
  out(std::string_view(","));
  out(std::string_view(L::activation_type::name));
  out(std::string_view(">"));
}
}  // namespace detail

/// \brief A network's checkpoint signature, e.g.
/// `network<float;dense<784,256,crossbar<soft_bounds>,chain<variation,adc<8>>,relu>;…>`: value
/// type, each layer's kind and extents, substrate (and device), noise policies and activation.
/// Configuration values (device parameters, σ) are not part of it.
template <class Sink, class... Layers>
constexpr void state_signature(std::type_identity<network<Layers...>>, Sink&& out) {
  using T = typename network<Layers...>::value_type;
  out(std::string_view("network<"));
  out(std::string_view(sizeof(T) == 8 ? "double" : sizeof(T) == 4 ? "float" : "other"));
  ((out(std::string_view(";")), detail::layer_signature<Layers>(out)), ...);
  out(std::string_view(">"));
}

/// \brief Visits the state of `net` for a checkpoint: the seed of its fixed-extent reads, then
/// every layer's (`detail::visit_layer_state`) under `layer<i>`. Fails to compile, with a
/// sentence, for a substrate whose tile does not declare its state.
template <class V, class... Layers>
void visit_state(network<Layers...>& net, V& v) {
  v("seed", net.seed_.value);
  net.for_each_layer([&](auto& l, std::size_t i) {
    auto g = v.scope("layer", i);
    detail::visit_layer_state(l, v);
  });
}

}  // namespace pnn
