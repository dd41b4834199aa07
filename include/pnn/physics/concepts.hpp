// SPDX-License-Identifier: MIT
/// \file
/// \brief The substrate protocol: everything the layers, rules and tools ask of a physical layer,
/// stated as concepts, and the one readable check that names what a tile lacks.
///
/// A substrate `S` is a policy type with a `value_type`, a `params` type and a nested
/// `tile<In, Out>` holding one layer's physical state. The protocol (docs/guide.md, "Writing a
/// substrate") has a required core and optional capabilities:
///
/// | required (`trainable_tile`)                  | what calls it                                   |
/// |----------------------------------------------|-------------------------------------------------|
/// | `in_size()`, `out_size()`, `resize(in, out)` | `dense::initialize`, shape checks               |
/// | `read(x, n, y, rng&) const`                  | every forward pass                              |
/// | `program(update, rng&)`                      | every rule's `step`                             |
/// | `bias_data()`                                | the layer's digital bias                        |
/// | parameters: `weight_data()` (a dense W) or `parameter_count/get_parameters/set_parameters` | perturbative rules, optimisers |
/// | `set_weights(w, b, rng&)`, `effective_weights(w) const` (optional for a parameterised tile) | deployment, twins, alignment |
///
/// | optional                                     | what it enables                                 |
/// |----------------------------------------------|-------------------------------------------------|
/// | `read_transposed(dy, n, dx, rng&) const`     | backprop/EP/CL through the physics (`transposable_tile`) |
/// | `read_vjp(x, dy, n, dx, rng&) const`         | backprop below a nonlinear read (VJP at input `x`) |
/// | `prepare(rng&)`, `set_params(params)`        | per-device draws, network-wide configuration    |
/// | `programs_outer_products`, `uses_update_factors` | factored updates (`s·δᵀh`) reach `program`  |
/// | `reads_borrowed_factors`                     | a deferred update's `h` lent, not copied (`factor_input()`) |
///
/// `update` passed to `program` is a layer's update (`pnn::layer_gradient<T>`): it always has
/// `weight_data()`/`bias_data()` (dense ΔW, Δb to subtract); a tile whose parameters are not W
/// (`parameterised_tile`) also receives updates in its own parameter space (`update.parameter`,
/// flagged by `update.parameter_space`).
#pragma once

#include <concepts>
#include <cstddef>
#include <type_traits>

#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>

namespace pnn {

class cost_counter;

namespace archetype {
/// The least a layer update offers a tile's `program`: dense `ΔW` (Out × In) and `Δb` (Out).
template <class T>
struct dense_update {
  const T* weight_data() const noexcept;
  const T* bias_data() const noexcept;
};
}  // namespace archetype

/// A tile computes `y(n × Out) = x(n × In) Wᵀ` through its physics.
template <class Tile>
concept readable_tile = requires(const Tile& t, const typename Tile::value_type* x, typename Tile::value_type* y,
                                 std::size_t n, rng& g) {
  typename Tile::value_type;
  { t.in_size() } -> std::convertible_to<std::size_t>;
  { t.out_size() } -> std::convertible_to<std::size_t>;
  t.read(x, n, y, g);
};

/// A tile that can also be read transposed: `dx(n × In) = dy(n × Out) W` — for a linear read,
/// the vector–Jacobian product of `read` (what `check_substrate` verifies).
template <class Tile>
concept transposable_tile = readable_tile<Tile> && requires(const Tile& t, const typename Tile::value_type* dy,
                                                            typename Tile::value_type* dx, std::size_t n, rng& g) {
  t.read_transposed(dy, n, dx, g);
};

/// A tile whose parameters are a dense weight matrix and bias that can be written in place.
template <class Tile>
concept dense_tile = readable_tile<Tile> && requires(Tile& t) {
  { t.weight_data() } -> std::convertible_to<const typename Tile::value_type*>;
  { t.bias_data() } -> std::convertible_to<const typename Tile::value_type*>;
};

/// A tile whose trainable parameters are its own (an MZI mesh's phases and attenuators), not a
/// dense W: they are read and written as one flat vector in `double` (so that a save/restore is
/// exact whatever `value_type` is), and updates may arrive in that space.
template <class Tile>
concept parameterised_tile = readable_tile<Tile> && requires(Tile& t, const Tile& ct, double* p, const double* q) {
  { ct.parameter_count() } -> std::convertible_to<std::size_t>;
  ct.get_parameters(p);
  t.set_parameters(q);
};

/// A tile the layer can shape at run time.
template <class Tile>
concept resizable_tile = requires(Tile& t, std::size_t n) { t.resize(n, n); };

/// A tile a rule can program: `program(update, rng&)` subtracts the update as the physics allows.
template <class Tile>
concept programmable_tile =
    requires(Tile& t, const archetype::dense_update<typename Tile::value_type>& u, rng& g) { t.program(u, g); };

/// A tile the in-silico workflow can deploy to and inspect: target weights in, realised weights
/// and the bias out.
template <class Tile>
concept deployable_tile = requires(Tile& t, const Tile& ct, const typename Tile::value_type* w,
                                   typename Tile::value_type* out, rng& g) {
  t.set_weights(w, w, g);
  ct.effective_weights(out);
  { ct.bias_data() } -> std::convertible_to<const typename Tile::value_type*>;
};

/// A tile with a digital bias the layer adds to its reads.
template <class Tile>
concept biased_tile = requires(const Tile& ct) {
  { ct.bias_data() } -> std::convertible_to<const typename Tile::value_type*>;
};

/// Everything every layer and rule may ask of a tile (the required core of the protocol). A
/// tile whose parameters are its own and whose physics is no matrix product (a diffractive
/// stack: phase masks, intensity detection) need not be deployable: it has no W to set or
/// report, and is deployed and mirrored through its parameters instead.
template <class Tile>
concept trainable_tile = readable_tile<Tile> && resizable_tile<Tile> && programmable_tile<Tile> && biased_tile<Tile> &&
                         ((dense_tile<Tile> && deployable_tile<Tile>) || parameterised_tile<Tile>);

/// A substrate policy: value type, parameters and a tile template that models `trainable_tile`
/// (checked on a fixed-extent tile, so the concept holds without the hosted dynamic storage).
template <class S>
concept substrate = requires {
  typename S::value_type;
  typename S::params;
  typename S::template tile<3, 2>;
} && trainable_tile<typename S::template tile<3, 2>>;

/// A substrate whose tiles can be read transposed (crossbars, reciprocal optics, digital).
template <class S>
concept transposed_readable = substrate<S> && transposable_tile<typename S::template tile<3, 2>>;

/// \brief The one place optional tile hooks are probed: layers, networks and rules call these,
/// never `if constexpr (requires …)` on a tile themselves, so an optional capability has one
/// spelling and one meaning.
namespace tile_hooks {

/// The tile programs a factored update `s·δᵀh` itself, exactly, and may receive deferred ones.
template <class Tile>
inline constexpr bool programs_outer_products = requires { requires Tile::programs_outer_products; };
/// The tile's `program` reads a deferred update's `h` through `update.factor_input()`, so a
/// rule whose layer inputs outlive the programming may lend them instead of copying them.
template <class Tile>
inline constexpr bool reads_borrowed_factors = requires { requires Tile::reads_borrowed_factors; };
/// The tile wants an update's factors `(h, δ, s)` kept for `program` (pulse trains, adjoint steps).
template <class Tile>
inline constexpr bool uses_update_factors = requires { requires Tile::uses_update_factors; };
/// Reads are exactly `x Wᵀ` / `dy W` with `W = weight_data()` (rules may reuse or fuse them).
template <class Tile>
inline constexpr bool reads_exactly = requires { requires Tile::reads_exactly; };

/// The tile computes its transposed product exactly, off the array (a digital tile): the
/// layer's read-periphery noise stages do not apply to it. Every other substrate's transposed
/// read is a read of the physics (columns driven, rows sensed) and goes through the same noise
/// stages as its forward read, for every rule alike (`dense::read_transposed`).
template <class Tile>
inline constexpr bool computes_transposed_exactly = requires { requires Tile::computes_transposed_exactly; };
/// The tile's read is nonlinear in its input and it provides the VJP (`read_vjp`) itself.
template <class Tile>
inline constexpr bool has_read_vjp = requires(const Tile& t, const typename Tile::value_type* p,
                                              typename Tile::value_type* q, std::size_t n, rng& g) {
  t.read_vjp(p, p, n, q, g);
};

/// The tile's parameters are not W and it maps a weight-space estimate `∂L/∂W = s·δᵀh` into
/// them itself (`parameter_gradient(h, δ, n, s, ∂L/∂b, out, rng&)`, in the layout of
/// `get_parameters`).
template <class Tile>
inline constexpr bool maps_parameter_gradients =
    requires(const Tile& t, const typename Tile::value_type* p, double* out, std::size_t n, double s, rng& g) {
      t.parameter_gradient(p, p, n, s, p, out, g);
    };

/// True when the tile learns in its own parameters: every rule's weight-space estimate is
/// mapped there (`maps_parameter_gradients`) before the optimiser, so that the learning rate,
/// momentum and Adam moments live in the space the hardware is programmed in (a resistor
/// network's conductances always; an MZI mesh's phases under adjoint programming).
template <class Tile>
[[nodiscard]] bool learns_in_parameter_space(const Tile& t) {
  if constexpr (maps_parameter_gradients<Tile> && requires { { t.learns_in_parameter_space() } -> std::convertible_to<bool>; })
    return t.learns_in_parameter_space();
  else
    return false;
}

/// The weights a model of the tile can know (Out × In into `w`): its `nominal_weights` where the
/// physics adds errors nobody measured (an MZI mesh's fabrication errors: the nominal matrix of
/// the programmed phases), its `effective_weights` otherwise (a crossbar's conductances can be
/// read). What digital twins mirror, so that a twin is a model and not an oracle.
template <class Tile, class T>
void model_weights(const Tile& t, T* w) {
  if constexpr (requires { t.nominal_weights(w); }) t.nominal_weights(w);
  else t.effective_weights(w);
}

/// The vector–Jacobian product of the tile's read at inputs `x`: its `read_vjp` where it has one
/// (a read nonlinear in `x`), its transposed read otherwise (the VJP of a linear read).
template <transposable_tile Tile, class T>
void read_vjp(const Tile& t, const T* x, const T* dy, std::size_t n, T* dx, rng& g) {
  if constexpr (requires { t.read_vjp(x, dy, n, dx, g); }) t.read_vjp(x, dy, n, dx, g);
  else t.read_transposed(dy, n, dx, g);
}

/// The smallest weight step the tile's programming can make (a pulsed device's `dw_min`),
/// where it has one; 0 for continuous programming. What `optim::mixed_precision` transfers in.
template <class Tile>
[[nodiscard]] double update_granularity(const Tile& t) {
  if constexpr (requires { { t.update_granularity() } -> std::convertible_to<double>; })
    return double(t.update_granularity());
  else
    return 0.0;
}

/// Attaches a cost counter (`physics/cost.hpp`) to a tile that reports its physical events;
/// false for a tile that reports none (digital tiles, black boxes).
template <class Tile>
bool attach_cost_counter(Tile& t, cost_counter* c) {
  if constexpr (requires { t.attach_cost_counter(c); }) {
    t.attach_cost_counter(c);
    return true;
  } else {
    return false;
  }
}

/// Draws the tile's per-device state once (`prepare`), where it has any.
template <class Tile>
void prepare(Tile& t, rng& g) {
  if constexpr (requires { t.prepare(g); }) t.prepare(g);
}
/// Applies substrate parameters `c` (`set_params`); false when the tile takes no such type.
template <class Tile, class C>
bool configure(Tile& t, const C& c) {
  if constexpr (requires { t.set_params(c); }) {
    t.set_params(c);
    return true;
  } else {
    return false;
  }
}
/// Tells a tile that reports errors by layer its position in the network.
template <class Tile>
void set_layer_index(Tile& t, std::size_t i) {
  if constexpr (requires { t.layer_index = i; }) t.layer_index = i;
}
/// PCM inference: programs the tile's current weights for inference, where it models that.
template <class Tile, class P>
void program_inference(Tile& t, const P& p, rng& g) {
  if constexpr (requires { t.program_inference(p, g); }) t.program_inference(p, g);
}
/// PCM inference: evaluates a programmed tile `seconds` after programming.
template <class Tile>
void set_time(Tile& t, double seconds, rng& g) {
  if constexpr (requires { t.set_time(seconds, g); }) t.set_time(seconds, g);
}
/// PCM inference: switches global drift compensation.
template <class Tile>
void set_drift_compensation(Tile& t, bool on) {
  if constexpr (requires { t.set_drift_compensation(on); }) t.set_drift_compensation(on);
}

}  // namespace tile_hooks

namespace detail {

template <class S>
concept has_substrate_types = requires {
  typename S::value_type;
  typename S::params;
  typename S::template tile<3, 2>;
};

/// One `static_assert` per missing member, each naming it: what a layer built on `S` reports
/// instead of a template backtrace. True when `S` is a substrate.
template <class S, std::size_t In, std::size_t Out>
consteval bool check_substrate_members() {
  if constexpr (!has_substrate_types<S>) {
    static_assert(has_substrate_types<S>,
                  "pnn substrate: S needs `using value_type`, `struct params` and `template <size_t In, size_t Out> "
                  "class tile` (docs/guide.md, \"Writing a substrate\")");
    return false;
  } else {
    using tile = typename S::template tile<In, Out>;
    constexpr bool types = requires { typename tile::value_type; };
    static_assert(types, "pnn substrate: tile<In, Out> needs `using value_type = T`");
    if constexpr (!types) {
      return false;
    } else {
      using T = typename tile::value_type;
      // Named flags keep each compiler's message to the flag's name and the text.
      constexpr bool same_value_type = std::same_as<T, typename S::value_type>;
      constexpr bool has_sizes = requires(const tile& t) {
        { t.in_size() } -> std::convertible_to<std::size_t>;
        { t.out_size() } -> std::convertible_to<std::size_t>;
      };
      constexpr bool has_read = requires(const tile& t, const T* x, T* y, std::size_t n, rng& g) { t.read(x, n, y, g); };
      constexpr bool has_resize = resizable_tile<tile>;
      constexpr bool has_program = programmable_tile<tile>;
      constexpr bool has_set_weights = requires(tile& t, const T* w, rng& g) { t.set_weights(w, w, g); };
      constexpr bool has_effective_weights = requires(const tile& t, T* w) { t.effective_weights(w); };
      constexpr bool has_bias_data = requires(const tile& t) { { t.bias_data() } -> std::convertible_to<const T*>; };
      constexpr bool has_parameter_access = !has_sizes || dense_tile<tile> || parameterised_tile<tile>;
      // A tile with parameters of its own may have no W (a diffractive stack).
      constexpr bool own_parameters = has_sizes && parameterised_tile<tile>;
      static_assert(same_value_type, "pnn substrate: tile::value_type differs from S::value_type");
      static_assert(has_sizes, "pnn substrate: tile lacks size_t in_size() const, size_t out_size() const");
      static_assert(has_read, "pnn substrate: tile lacks read(const T* x, size_t n, T* y, rng&) const");
      static_assert(has_resize, "pnn substrate: tile lacks resize(size_t in, size_t out)");
      static_assert(has_program, "pnn substrate: tile lacks template <class U> program(const U& update, rng&)");
      static_assert(has_set_weights || own_parameters,
                    "pnn substrate: tile lacks set_weights(const T* w, const T* b, rng&)");
      static_assert(has_effective_weights || own_parameters,
                    "pnn substrate: tile lacks effective_weights(T* w) const");
      static_assert(has_bias_data, "pnn substrate: tile lacks const T* bias_data() const");
      static_assert(has_parameter_access,
                    "pnn substrate: tile lacks T* weight_data() or parameter_count(), "
                    "get_parameters(double*), set_parameters(const double*)");
      return trainable_tile<tile>;
    }
  }
}

/// A minimal complete tile put in place of a non-conforming one, so that after the member
/// errors above the compiler has nothing else to complain about.
template <class T, std::size_t In, std::size_t Out>
struct placeholder_tile {
  using value_type = T;
  void resize(std::size_t, std::size_t) {}
  std::size_t in_size() const { return In == dynamic ? 1 : In; }
  std::size_t out_size() const { return Out == dynamic ? 1 : Out; }
  void read(const T*, std::size_t, T*, rng&) const {}
  template <class U>
  void program(const U&, rng&) {}
  void set_weights(const T*, const T*, rng&) {}
  void effective_weights(T*) const {}
  T* weight_data() { return nullptr; }
  const T* weight_data() const { return nullptr; }
  T* bias_data() { return nullptr; }
  const T* bias_data() const { return nullptr; }
};

template <class S>
struct value_type_or_float {
  using type = float;
};
template <class S>
  requires requires { typename S::value_type; }
struct value_type_or_float<S> {
  using type = typename S::value_type;
};

/// `S::tile<In, Out>` when `S` is a substrate; otherwise, after the readable errors, a placeholder.
template <class S, std::size_t In, std::size_t Out, bool Ok = check_substrate_members<S, In, Out>()>
struct checked_tile {
  using type = typename S::template tile<In, Out>;
};
template <class S, std::size_t In, std::size_t Out>
struct checked_tile<S, In, Out, false> {
  using type = placeholder_tile<typename value_type_or_float<S>::type, In, Out>;
};

}  // namespace detail

/// The tile type a layer of extents `In × Out` on substrate `S` holds; a type that is not a
/// substrate fails here with one error per missing member, each naming it.
template <class S, std::size_t In, std::size_t Out>
using checked_tile_t = typename detail::checked_tile<S, In, Out>::type;

}  // namespace pnn
