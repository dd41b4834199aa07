// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::dense<In, Out, Substrate, Noise, Activation>`: one physical layer.
///
/// A layer is a substrate tile (the physics computing `W x` and holding the parameters), a noise
/// policy (how the read deviates from ideal) and an activation (the nonlinearity after it):
/// `a = noise_out(tile.read(noise_in(x))) + b`, `h = f(a)`. Extents are template values;
/// `std::dynamic_extent` (`pnn::dynamic`) gives run-time sizes.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/nn/activation.hpp>
#include <pnn/noise/none.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/simd/blas.hpp>

namespace pnn {

namespace detail {
/// Stand-in for the effective-weight tile of a layer whose noise has no weights stage.
struct no_effective_tile {};
/// Serialises reads through one layer's effective-weight copy (re-mapped by every read), so
/// const reads of the layer stay safe from several threads. A copied layer gets its own.
struct effective_tile_lock {
  mutable std::atomic_flag busy{};
  effective_tile_lock() = default;
  effective_tile_lock(const effective_tile_lock&) noexcept {}
  effective_tile_lock& operator=(const effective_tile_lock&) noexcept { return *this; }
};
/// Releases an `effective_tile_lock` at the end of a read, thrown or not (a template so that
/// targets without atomic waits, the embedded ones, never instantiate it).
template <class Lock>
struct effective_tile_release {
  const Lock& lock;
  ~effective_tile_release() {
    lock.busy.clear(std::memory_order_release);
    lock.busy.notify_one();
  }
};
}  // namespace detail

/// A fully connected physical layer with `In` inputs and `Out` outputs.
/// \tparam Substrate  physics computing the weighted sum (`physics::digital`, `crossbar<D>`, …)
/// \tparam Noise      deviation of the read from ideal (`noise::none`, `noise::chain<…>`, …)
/// \tparam Activation nonlinearity after the read (`act::tanh`, …)
/// A `Substrate` that does not model `pnn::substrate` is reported member by member
/// (`checked_tile_t`), not by a template backtrace.
template <std::size_t In, std::size_t Out, class Substrate, noise_policy Noise = noise::none,
          class Activation = act::identity>
class dense {
 public:
  using substrate_type = Substrate;
  using noise_type = Noise;
  using activation_type = Activation;
  using tile_type = typename detail::checked_tile<Substrate, In, Out>::type;  // readable errors
  using value_type = typename tile_type::value_type;
  /// The noise policy's hooks match its declared stages (else a compile error naming the stage).
  using noise_stages_checked = std::bool_constant<detail::check_noise_stages<Noise, value_type>()>;
  static_assert(activation<Activation, value_type>,
                "pnn::dense: Activation must provide f(x) and f.derivative(a, h) (see pnn::activation)");

  static constexpr std::size_t in_extent = In;
  static constexpr std::size_t out_extent = Out;
  static constexpr bool is_static = (In != dynamic && Out != dynamic);
  static constexpr bool has_input_noise = has_input_stage<Noise, value_type>;
  static constexpr bool has_output_noise = has_output_stage<Noise, value_type>;
  /// The policy maps programmed weights to effective ones (variation, drift, stuck-at): reads
  /// then go through a copy of the tile holding `noise.weights(W)`.
  static constexpr bool has_weight_noise = has_weight_stage<Noise, value_type> && dense_tile<tile_type>;

  tile_type tile{};
  Noise noise{};
  Activation activation{};
  /// Reads with a weights-stage policy compute with this copy of `tile` whose weights are
  /// `noise.weights(tile.weight_data())`, remapped on every read (so programming, set_weights
  /// and at_time are always seen); an empty member for other policies. Not part of the state;
  /// `initialize` and `network::configure` refresh it; call `refresh_effective_tile()` after
  /// changing a tile's state other than its weights by hand.
  [[no_unique_address]] mutable std::conditional_t<has_weight_noise, tile_type, detail::no_effective_tile> effective_tile{};
  [[no_unique_address]] std::conditional_t<has_weight_noise, detail::effective_tile_lock, detail::no_effective_tile>
      effective_lock{};

  [[nodiscard]] constexpr std::size_t in_size() const noexcept { return tile.in_size(); }
  [[nodiscard]] constexpr std::size_t out_size() const noexcept { return tile.out_size(); }

  /// Shapes the layer and draws its initial parameters: Glorot-uniform weights (He-uniform for
  /// ReLU), zero bias; then lets the substrate and noise draw their per-device state.
  /// \pre `in`, `out` > 0 and equal to the static extents where those are fixed.
  void initialize(std::size_t in, std::size_t out, rng& g) {
    PNN_EXPECTS(in > 0 && out > 0, "pnn::dense: extents must be positive");
    // √(3/fan): Glorot's √(6/(in+out)) with fan = (in+out)/2, He's √(6/in) with fan = in/2.
    const double fan = std::is_same_v<Activation, act::relu> ? 0.5 * double(in) : 0.5 * double(in + out);
    initialize_with_fan(in, out, fan, g);
  }

 protected:
  /// `initialize` with weights `U(±√(3/fan))`: layers that share weights over positions
  /// (`pnn::conv2d`) count their fans differently from a dense layer of the tile's shape.
  void initialize_with_fan(std::size_t in, std::size_t out, double fan, rng& g) {
    if constexpr (requires { noise.validate(); }) noise.validate();
    tile.resize(in, out);
    using T = value_type;
    const T limit = static_cast<T>(std::sqrt(3.0 / fan));
    auto draw = [&](T* w, T* b) {
      for (std::size_t i = 0; i < in * out; ++i) w[i] = static_cast<T>((2 * g.uniform_double() - 1)) * limit;
      for (std::size_t j = 0; j < out; ++j) b[j] = T(0);
    };
    if constexpr (dense_tile<tile_type>) {
      draw(tile.weight_data(), tile.bias_data());
    } else if constexpr (deployable_tile<tile_type>) {
      // A tile with parameters of its own realises the drawn W as its physics does.
      std::vector<T> w(in * out), b(out);
      draw(w.data(), b.data());
      rng gw = g.split(0x5e7);
      tile.set_weights(w.data(), b.data(), gw);
    }  // else: no W at all (a diffractive stack): `prepare` below draws its parameters
    tile_hooks::prepare(tile, g);
    if constexpr (requires { noise.prepare(in, out, g); }) noise.prepare(in, out, g);
    refresh_effective_tile();
  }

 public:
  /// Forward read of a batch: `x` (n × In) → pre-activation `a` and output `h` (n × Out).
  /// `a` may alias `h` (inference: bias and activation fused in one pass). `input_scratch`
  /// (n × In values) is needed only when the noise policy perturbs inputs.
  void forward(const value_type* x, std::size_t n, value_type* a, value_type* h, rng& g,
               value_type* input_scratch = nullptr) const {
    if constexpr (!has_input_noise && !has_output_noise &&
                  requires(const tile_type& t) { t.read_bias_map(x, n, bias_or_null(), activation, a, h); }) {
      // A digital read takes the bias and activation as its GEMM's epilogue: same bits, no
      // second pass over the outputs, and on a thread team each thread finishes its own chunk.
      (void)input_scratch;
      (void)g;
      with_read_tile([&](const tile_type& t) { t.read_bias_map(x, n, bias_or_null(), activation, a, h); });
      return;
    }
    read(x, n, a, g, input_scratch);
    if (a == h) {
      simd::bias_map<value_type>(n, out_size(), a, out_size(), bias_or_null(), activation);
    } else {
      simd::bias_map_into<value_type>(n, out_size(), a, out_size(), bias_or_null(), activation, h, out_size());
    }
  }

  /// The layer's read without bias and activation, through its noise stages:
  /// `y = noise_out(W noise_in(x))` for `x` (n × In) into `y` (n × Out). `input_scratch`
  /// (n × In values) is needed only when the policy perturbs inputs. Input noise from
  /// `g.split(0)`, the tile's read from `g.split(1)`, output noise from `g.split(2)`.
  void read(const value_type* x, std::size_t n, value_type* y, rng& g, value_type* input_scratch = nullptr) const {
    const value_type* drive = x;
    if constexpr (has_input_noise) {
      PNN_EXPECTS(input_scratch != nullptr, "pnn::dense: input noise needs a scratch buffer");
      for (std::size_t i = 0; i < n * in_size(); ++i) input_scratch[i] = x[i];
      rng gi = g.split(0);
      noise.input(input_scratch, n * in_size(), gi);
      drive = input_scratch;
    }
    rng gr = g.split(1);
    with_read_tile([&](const tile_type& t) { t.read(drive, n, y, gr); });
    if constexpr (has_output_noise) {
      rng go = g.split(2);
      if constexpr (requires { noise.output(y, n, out_size(), go); })
        noise.output(y, n, out_size(), go);  // the shaped hook: the policy sees the width
      else
        noise.output(y, n * out_size(), go);
    }
  }

  /// The layer's transposed read `dx = noise_out(noise_in(dy) W)` for `dy` (n × Out) into `dx`
  /// (n × In). The substrate decides once whether it is noisy: a physical transposed read
  /// (crossbar, mesh) goes through the same noise stages as the forward read — policies tied
  /// to output columns act on the row read-out through their `output_transposed` — and a tile
  /// that `computes_transposed_exactly` (digital) is read clean. Every rule reads transposed
  /// through here (backprop, equilibrium propagation, coupled learning). On a noisy physical
  /// read each row of `dy` is first scaled to unit abs-max (the converters' range; the stages
  /// act there) and the read-out scaled back, as a backward pass with noise management does.
  /// `input_scratch` is not needed (kept for callers). Input noise from `g.split(0)`, the
  /// tile's read from `g.split(3)`, output noise from `g.split(2)`.
  void read_transposed(const value_type* dy, std::size_t n, value_type* dx, rng& g,
                       value_type* input_scratch = nullptr) const
    requires transposable_tile<tile_type>
  {
    constexpr bool physical = !tile_hooks::computes_transposed_exactly<tile_type>;
    rng gr = g.split(3);
    if constexpr (physical && (has_input_noise || has_output_noise)) {
      // The backward drive (errors, often ~1/batch in size) is scaled row by row to the
      // converters' range before it drives the array, as hardware must (abs-max noise
      // management, aihwkit's backward pass): the stages act in those normalised units and
      // the read-out is scaled back. Without it, a read-noise floor set for O(1) forward
      // signals would swamp the errors.
      const std::size_t out = out_size(), in = in_size();
      // Per thread: const reads may run concurrently, and EP reads transposed every relaxation
      // step, so the buffers are reused rather than allocated per read.
      static thread_local std::vector<value_type> scale, normalised;
      scale.resize(n);
      normalised.resize(n * out);
      for (std::size_t r = 0; r < n; ++r) {
        value_type m = 0;
        for (std::size_t j = 0; j < out; ++j) m = std::max(m, std::abs(dy[r * out + j]));
        scale[r] = m;
        const value_type inv = m > 0 ? value_type(1) / m : value_type(0);
        for (std::size_t j = 0; j < out; ++j) normalised[r * out + j] = dy[r * out + j] * inv;
      }
      if constexpr (has_input_noise) {
        rng gi = g.split(0);
        noise.input(normalised.data(), n * out, gi);
      }
      (void)input_scratch;
      with_read_tile([&](const tile_type& t) { t.read_transposed(normalised.data(), n, dx, gr); });
      if constexpr (has_output_noise) {
        rng go = g.split(2);
        if constexpr (requires { noise.output_transposed(dx, n * in, go); })
          noise.output_transposed(dx, n * in, go);
        else if constexpr (requires { noise.output(dx, n, in, go); })
          noise.output(dx, n, in, go);
        else
          noise.output(dx, n * in, go);
      }
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < in; ++i) dx[r * in + i] *= scale[r];
    } else {
      (void)input_scratch;
      with_read_tile([&](const tile_type& t) { t.read_transposed(dy, n, dx, gr); });
    }
  }

  /// Forgets the cached effective tile so the next read copies the tile's whole state again.
  void refresh_effective_tile() {
    if constexpr (has_weight_noise) effective_tile = tile;
  }

  /// The vector–Jacobian product of the layer's read at input `x` (n × In): `dx = (∂y/∂x)ᵀ dy`.
  /// The tile's `read_vjp` where it has one (a nonlinear read, e.g. intensity detection: a
  /// computed VJP, clean), the layer's transposed read otherwise (a linear read's VJP, noisy
  /// where the substrate's transposed read is physical; `read_transposed`).
  void backward_read_at(const value_type* x, const value_type* dy, std::size_t n, value_type* dx, rng& g) const
    requires transposable_tile<tile_type>
  {
    if constexpr (tile_hooks::has_read_vjp<tile_type>) {
      rng gr = g.split(3);
      with_read_tile([&](const tile_type& t) { tile_hooks::read_vjp(t, x, dy, n, dx, gr); });
    } else if constexpr (has_input_noise && !tile_hooks::computes_transposed_exactly<tile_type>) {
      // Each thread reads with its own scratch: const reads stay safe from several threads.
      static thread_local std::vector<value_type> scratch;
      if (scratch.size() < n * out_size()) scratch.resize(n * out_size());
      read_transposed(dy, n, dx, g, scratch.data());
    } else {
      read_transposed(dy, n, dx, g);
    }
  }

  /// Calls `f(const tile_type&)` with the tile a read computes with: `tile`, or its copy
  /// through the policy's weights stage, re-mapped and held for the call (reads of a layer with
  /// a weights stage are serialised; every other read runs concurrently). What `read`,
  /// `read_transposed` and `backward_read_at` use; rules that drive a tile themselves use it too.
  template <class F>
  void with_read_tile(F&& f) const {
    if constexpr (has_weight_noise) {
      while (effective_lock.busy.test_and_set(std::memory_order_acquire))
        effective_lock.busy.wait(true, std::memory_order_relaxed);
      const detail::effective_tile_release<decltype(effective_lock)> guard{effective_lock};
      f(read_tile());
    } else {
      f(tile);
    }
  }

  /// The tile a read computes with: `tile`, or its copy through the policy's weights stage
  /// (not safe from several threads for a layer with a weights stage: use `with_read_tile`).
  const tile_type& read_tile() const {
    if constexpr (has_weight_noise) {
      // The copy of the whole tile (device state, periphery) is made once; afterwards only the
      // weights are mapped again, which is what programming and time change.
      if (effective_tile.in_size() != in_size() || effective_tile.out_size() != out_size()) effective_tile = tile;
      noise.weights(tile.weight_data(), effective_tile.weight_data(), in_size() * out_size());
      return effective_tile;
    } else {
      return tile;
    }
  }

 private:
  const value_type* bias_or_null() const noexcept {
    return tile.bias_data();
  }
};

/// True for instantiations of `pnn::dense`.
template <class L>
inline constexpr bool is_dense_v = false;
template <std::size_t I, std::size_t O, class S, class N, class A>
inline constexpr bool is_dense_v<dense<I, O, S, N, A>> = true;

}  // namespace pnn
