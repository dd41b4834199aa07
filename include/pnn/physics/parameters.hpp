// SPDX-License-Identifier: MIT
/// \file
/// \brief Parameter access to any tile: the flat vector a perturbative rule perturbs and restores.
///
/// A tile's trainable parameters are what its physics is programmed with: a dense `W` and `b`
/// for digital tiles, crossbars and black boxes; phases and attenuators for an MZI mesh
/// (`parameterised_tile`). These functions give every rule one view of them — a flat vector of
/// `double` (exact for `float` and `double` values, so restoring a saved copy is bit for bit) —
/// so that weight perturbation and SPSA perturb what the hardware would perturb, on every
/// substrate (docs/guide.md, "Parameter space").
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/physics/concepts.hpp>

namespace pnn {

/// True when updates of this tile are estimated in its own parameter space (not as a dense ΔW).
template <class Tile>
inline constexpr bool updates_in_parameter_space = parameterised_tile<Tile>;

/// A tile whose parameters can be read and written through `tile_parameters`.
template <class Tile>
concept parameter_accessible_tile = parameterised_tile<Tile> || dense_tile<Tile>;

namespace detail {
// A crossbar programmed for inference (PCM drift) reads its programmed state, not W: writing W
// there would perturb nothing, so it is refused rather than silently ignored.
template <class Tile>
void require_writable_parameters(const Tile& t) {
  if constexpr (requires { t.inference().programmed(); }) {
    PNN_EXPECTS(!t.inference().programmed(),
                "tile parameters: the tile is programmed for inference (program_inference); its reads ignore W. "
                "Call clear_inference() before training it");
  }
}
}  // namespace detail

/// Number of trainable parameters of a tile: `parameter_count()`, or `Out·(In + 1)` for W and b.
template <parameter_accessible_tile Tile>
[[nodiscard]] std::size_t tile_parameter_count(const Tile& t) {
  if constexpr (parameterised_tile<Tile>) return t.parameter_count();
  else return t.out_size() * (t.in_size() + 1);
}

/// Copies the parameters into `p` (`tile_parameter_count(t)` values; W row-major, then b).
/// `V` is `double`, or the tile's value type for a tile whose parameters are W and b.
template <parameter_accessible_tile Tile, class V>
void get_tile_parameters(const Tile& t, V* p) {
  if constexpr (parameterised_tile<Tile>) {
    static_assert(std::is_same_v<V, double>, "get_tile_parameters: a tile's own parameters are read as double");
    t.get_parameters(p);
  } else {
    const std::size_t nw = t.out_size() * t.in_size();
    const auto* w = t.weight_data();
    const auto* b = t.bias_data();
    for (std::size_t k = 0; k < nw; ++k) p[k] = V(w[k]);
    for (std::size_t j = 0; j < t.out_size(); ++j) p[nw + j] = V(b[j]);
  }
}

/// Writes the parameters from `p` (the layout of `get_tile_parameters`). Values read back from
/// `get_tile_parameters` restore the tile exactly.
/// \pre a crossbar is not programmed for inference (else `pnn::error`).
template <parameter_accessible_tile Tile, class V>
void set_tile_parameters(Tile& t, const V* p) {
  detail::require_writable_parameters(t);
  if constexpr (parameterised_tile<Tile>) {
    static_assert(std::is_same_v<V, double>, "set_tile_parameters: a tile's own parameters are written as double");
    t.set_parameters(p);
  } else {
    using T = typename Tile::value_type;
    const std::size_t nw = t.out_size() * t.in_size();
    T* w = t.weight_data();
    T* b = t.bias_data();
    for (std::size_t k = 0; k < nw; ++k) w[k] = static_cast<T>(p[k]);
    for (std::size_t j = 0; j < t.out_size(); ++j) b[j] = static_cast<T>(p[nw + j]);
    // A physical tile whose W is written directly (a crossbar: each device programmed to its
    // value) reports those writes to its cost counter; the bias is digital.
    if constexpr (requires { t.report_parameter_writes(std::uint64_t{}); }) t.report_parameter_writes(nw);
  }
}

/// Programs a step in the tile's own parameter space, `θ ← θ − Δθ` (`delta`:
/// `tile_parameter_count(t)` values). What every tile with `set_parameters` gets for free; a
/// substrate whose devices cannot be written to an exact value would model that in its
/// `set_parameters`.
template <parameter_accessible_tile Tile, class V>
void step_tile_parameters(Tile& t, const V* delta) {
  std::vector<double> theta(tile_parameter_count(t));
  get_tile_parameters(t, theta.data());
  for (std::size_t k = 0; k < theta.size(); ++k) theta[k] -= double(delta[k]);
  set_tile_parameters(t, theta.data());
}

}  // namespace pnn
