// SPDX-License-Identifier: MIT
/// \file
/// \brief Concepts for substrates: what a physical layer must offer to be read and trained.
///
/// A substrate `S` is a policy type with a `value_type` and a nested `tile<In, Out>` holding one
/// layer's physical parameters. Every tile can be read forward (`y = W x` as the physics computes
/// it); some can also be read transposed (`Wᵀ y`: drive the columns, sense the rows), which
/// backward passes and energy-based rules need.
#pragma once

#include <concepts>
#include <cstddef>

#include <pnn/core/rng.hpp>

namespace pnn {

/// A tile computes `y(n × Out) = x(n × In) Wᵀ` through its physics.
template <class Tile>
concept readable_tile = requires(const Tile& t, const typename Tile::value_type* x, typename Tile::value_type* y,
                                 std::size_t n, rng& g) {
  typename Tile::value_type;
  { t.in_size() } -> std::convertible_to<std::size_t>;
  { t.out_size() } -> std::convertible_to<std::size_t>;
  t.read(x, n, y, g);
};

/// A tile that can also be read transposed: `dx(n × In) = dy(n × Out) W`.
template <class Tile>
concept transposable_tile = readable_tile<Tile> && requires(const Tile& t, const typename Tile::value_type* dy,
                                                            typename Tile::value_type* dx, std::size_t n, rng& g) {
  t.read_transposed(dy, n, dx, g);
};

/// A tile whose parameters are a dense weight matrix and bias that can be inspected.
template <class Tile>
concept dense_tile = readable_tile<Tile> && requires(Tile& t) {
  { t.weight_data() } -> std::convertible_to<const typename Tile::value_type*>;
  { t.bias_data() } -> std::convertible_to<const typename Tile::value_type*>;
};

/// A substrate policy: value type, parameters and a tile template.
template <class S>
concept substrate = requires {
  typename S::value_type;
  typename S::params;
  typename S::template tile<3, 2>;
} && readable_tile<typename S::template tile<3, 2>>;

/// A substrate whose tiles can be read transposed (crossbars, reciprocal optics, digital).
template <class S>
concept transposed_readable = substrate<S> && transposable_tile<typename S::template tile<3, 2>>;

}  // namespace pnn
