// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::network<Layers...>`: a network spelled as a type, held by value.
///
/// The type knows its depth (`num_layers`) and every extent at compile time; `layer<i>(net)`
/// reaches a layer. Consecutive fixed extents must agree, checked at compile time. A network of
/// fixed layers is trivially copyable storage plus empty policies: it can live in flash.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <tuple>
#include <type_traits>
#include <utility>

#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/nn/dense.hpp>

namespace pnn {

namespace detail {
template <class... L>
constexpr bool adjacent_extents_agree() {
  constexpr std::size_t n = sizeof...(L);
  constexpr std::array<std::size_t, n> in{L::in_extent...};
  constexpr std::array<std::size_t, n> out{L::out_extent...};
  for (std::size_t i = 0; i + 1 < n; ++i)
    if (out[i] != dynamic && in[i + 1] != dynamic && out[i] != in[i + 1]) return false;
  return true;
}
template <class... L>
constexpr std::size_t max_static_width() {
  std::size_t m = 0;
  ((m = std::max({m, L::in_extent, L::out_extent})), ...);
  return m;
}
}  // namespace detail

/// A setting for layer `I` alone, as `pnn::at_layer<I>(value)` makes it: a network's constructors
/// apply it to that layer only (a `pnn::conv_geometry`, substrate parameters, a noise policy).
template <std::size_t I, class V>
struct layer_setting {
  static constexpr std::size_t index = I;
  V value;
};

/// Addresses `value` to layer `I` of the network being built, e.g. the run-time geometry of a
/// convolution whose shape is `pnn::dynamic`: `pnn::at_layer<0>(pnn::conv_geometry{28, 28, 1, 6, 5})`.
template <std::size_t I, class V>
constexpr layer_setting<I, V> at_layer(const V& value) {
  return {value};
}

namespace detail {
template <class C>
inline constexpr bool is_layer_setting_v = false;
template <std::size_t I, class V>
inline constexpr bool is_layer_setting_v<layer_setting<I, V>> = true;
}  // namespace detail

/// A feed-forward stack of layers; layer `i` feeds layer `i + 1`.
template <class... Layers>
class network {
  static_assert(sizeof...(Layers) >= 1, "pnn::network needs at least one layer");
  static_assert(detail::adjacent_extents_agree<Layers...>(),
                "pnn::network: each layer's output extent (Out) must equal the next layer's input "
                "extent (In)");

 public:
  using layers_type = std::tuple<Layers...>;
  using value_type = typename std::tuple_element_t<0, layers_type>::value_type;
  static_assert((std::is_same_v<value_type, typename Layers::value_type> && ...),
                "pnn::network: all layers must share one value_type");
  static constexpr std::size_t num_layers = sizeof...(Layers);
  static constexpr bool is_static = (Layers::is_static && ...);

  /// Layer `i`'s type.
  template <std::size_t I>
  using layer_type = std::tuple_element_t<I, layers_type>;

  /// Uninitialised (zero) parameters; call `initialize` before use.
  constexpr network() = default;

  /// Fixed extents: draws every layer's initial parameters from `s`. Each `config` is applied
  /// first to every layer whose substrate parameters or noise policy has its type.
  template <class... Configs>
  explicit network(seed s, const Configs&... configs)
    requires is_static
  {
    (configure(configs), ...);
    std::array<std::size_t, num_layers + 1> sizes{};
    sizes[0] = layer_type<0>::in_extent;
    std::size_t i = 1;
    ((sizes[i++] = Layers::out_extent), ...);
    initialize(sizes.data(), s);
  }

  /// Run-time extents: `sizes` lists the input size then each layer's output size.
  /// \pre `sizes.size() == num_layers + 1`, all positive, matching fixed extents.
  template <class... Configs>
  network(std::initializer_list<std::size_t> sizes, seed s, const Configs&... configs) {
    PNN_EXPECTS(sizes.size() == num_layers + 1, "pnn::network: sizes must list the input and every layer's output");
    (configure(configs), ...);
    initialize(sizes.begin(), s);
  }

  /// Draws all parameters anew from `s` (layer `i` uses stream `split(i)`).
  void initialize(const std::size_t* sizes, seed s) {
    seed_ = s;
    for_each_layer([&](auto& l, std::size_t i) {
      rng g = rng(s).split(i);
      l.initialize(sizes[i], sizes[i + 1], g);
      // Tiles that report errors by layer (physics::black_box) learn their position here.
      tile_hooks::set_layer_index(l.tile, i);
    });
  }

  /// Applies `c` to every layer whose substrate parameters or noise policy is of its type; a
  /// `pnn::at_layer<i>(v)` setting applies `v` to layer `i` only (a type that layer cannot take
  /// is a compile error).
  template <class C>
  void configure(const C& c) {
    if constexpr (detail::is_layer_setting_v<C>) {
      static_assert(C::index < num_layers, "pnn::at_layer: the network has no layer of that index");
      auto& l = std::get<C::index>(layers);
      using L = std::remove_cvref_t<decltype(l)>;
      using V = std::remove_cvref_t<decltype(c.value)>;
      if constexpr (requires { l.set_geometry(c.value); }) {
        l.set_geometry(c.value);
      } else if constexpr (std::is_same_v<V, typename L::noise_type>) {
        l.noise = c.value;
      } else if constexpr (requires { l.tile.set_params(c.value); }) {
        tile_hooks::configure(l.tile, c.value);
        l.refresh_effective_tile();
      } else {
        static_assert(sizeof(V) == 0,
                      "pnn::at_layer<i>(value): layer i takes no value of this type (not its noise policy, not its "
                      "substrate's params, not a conv_geometry for a convolution)");
      }
    } else {
      for_each_layer([&](auto& l, std::size_t) {
        using L = std::remove_cvref_t<decltype(l)>;
        if constexpr (std::is_same_v<C, typename L::noise_type>) l.noise = c;
        else if (tile_hooks::configure(l.tile, c)) l.refresh_effective_tile();
      });
    }
  }

  /// Calls `f(layer, index)` for each layer in order.
  template <class F>
  constexpr void for_each_layer(F&& f) {
    for_each_impl(f, std::make_index_sequence<num_layers>{});
  }
  template <class F>
  constexpr void for_each_layer(F&& f) const {
    for_each_impl(f, std::make_index_sequence<num_layers>{});
  }

  [[nodiscard]] constexpr std::size_t input_size() const noexcept { return std::get<0>(layers).in_size(); }
  [[nodiscard]] constexpr std::size_t output_size() const noexcept {
    return std::get<num_layers - 1>(layers).out_size();
  }
  /// The input size followed by every layer's output size (what the sizes constructor takes).
  [[nodiscard]] constexpr std::array<std::size_t, num_layers + 1> sizes() const noexcept {
    std::array<std::size_t, num_layers + 1> s{};
    s[0] = input_size();
    for_each_layer([&](const auto& l, std::size_t i) { s[i + 1] = l.out_size(); });
    return s;
  }

  /// The seed the parameters were drawn from; forward noise defaults to streams of it.
  [[nodiscard]] constexpr seed initial_seed() const noexcept { return seed_; }

  /// Single-sample inference for fixed extents (the embedded path): no heap, stack buffers of
  /// the widest layer. Noise draws from `g`.
  void infer(const value_type* x, value_type* y, rng& g) const
    requires is_static
  {
    constexpr std::size_t width = detail::max_static_width<Layers...>();
    alignas(PNN_ALIGNMENT) value_type buf[2][width];
    [[maybe_unused]] alignas(PNN_ALIGNMENT) value_type scratch[width];
    const value_type* in = x;
    std::size_t which = 0;
    for_each_layer([&](const auto& l, std::size_t i) {
      value_type* out = (i + 1 == num_layers) ? y : buf[which];
      rng gl = g.split(i);
      l.forward(in, 1, out, out, gl, scratch);
      in = out;
      which ^= 1U;
    });
  }

  /// `std::array` in, `std::array` out, for fixed extents.
  std::array<value_type, layer_type<num_layers - 1>::out_extent> operator()(
      const std::array<value_type, layer_type<0>::in_extent>& x) const
    requires is_static
  {
    std::array<value_type, layer_type<num_layers - 1>::out_extent> y{};
    rng g(seed_);
    infer(x.data(), y.data(), g);
    return y;
  }

  layers_type layers{};

 private:
  // Checkpoints keep the seed that `operator()`'s reads draw their noise from (pnn/nn/state.hpp).
  template <class V, class... L>
  friend void visit_state(network<L...>& net, V& v);

  template <class F, std::size_t... I>
  constexpr void for_each_impl(F& f, std::index_sequence<I...>) {
    (f(std::get<I>(layers), I), ...);
  }
  template <class F, std::size_t... I>
  constexpr void for_each_impl(F& f, std::index_sequence<I...>) const {
    (f(std::get<I>(layers), I), ...);
  }

  seed seed_{};
};

/// Layer `I` of a network (dlib's `layer<i>(net)`).
template <std::size_t I, class... L>
constexpr auto& layer(network<L...>& net) noexcept {
  return std::get<I>(net.layers);
}
template <std::size_t I, class... L>
constexpr const auto& layer(const network<L...>& net) noexcept {
  return std::get<I>(net.layers);
}

namespace detail {
template <class L, class S, class N>
struct rebind_layer;
template <std::size_t I, std::size_t O, class S0, class N0, class A, class S, class N>
struct rebind_layer<dense<I, O, S0, N0, A>, S, N> {
  using type = dense<I, O, S, N, A>;
};
template <class Net, class S, class N>
struct rebind_network;
template <class... L, class S, class N>
struct rebind_network<network<L...>, S, N> {
  using type = network<typename rebind_layer<L, S, N>::type...>;
};
}  // namespace detail

/// `Net` with every layer moved onto substrate `S` with noise `N` (same extents, activations):
/// e.g. the ideal digital twin of a physical network, `rebind_t<Net, physics::digital>`.
template <class Net, class S, class N = noise::none>
using rebind_t = typename detail::rebind_network<Net, S, N>::type;

/// True for instantiations of `pnn::network`.
template <class N>
inline constexpr bool is_network_v = false;
template <class... L>
inline constexpr bool is_network_v<network<L...>> = true;

}  // namespace pnn
