// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::black_box<F>`: a substrate whose forward pass is any user callable — a
/// simulator, or a routine that drives and measures real hardware.
///
/// For physics the library does not model (Wright et al., Nature 2022: "physical systems as
/// black boxes"): the layer's output is `a(n × Out) = F(x(n × In), θ)` with dense-shaped
/// parameters `θ = (W, b)` (W: Out × In, b: Out) that training programs like any tile's. The
/// tile can only be read forward — there is no transposed read — so it trains with
/// `learn::physics_aware` (backward through a twin), not with `learn::backprop`.
///
/// The callable receives a `black_box_call<T>` (the batch, its shape and the nominal
/// parameters) and an `rng&` for its own noise, and returns the n × Out outputs as a
/// `std::vector<T>` (row-major). A wrong number of values or a NaN/Inf is a `pnn::error`
/// naming the layer. Because `F` is a type, a stateful callable (a simulator's constants, a
/// device handle) is passed as a value through `params{.model = F{...}}` (applied by the
/// `network` constructor's configs, or per layer with `tile.set_params`); a default-constructed
/// `F` is used otherwise.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/simd/work.hpp>

namespace pnn::physics {

/// What a black-box callable is asked to compute: `y(n × out) = F(x(n × in), W, b)`.
template <class T>
struct black_box_call {
  const T* x = nullptr;       ///< inputs, n × in, row-major
  std::size_t n = 0;          ///< batch size
  std::size_t in = 0;         ///< inputs per sample
  std::size_t out = 0;        ///< outputs per sample
  const T* weight = nullptr;  ///< nominal W, out × in, row-major
  const T* bias = nullptr;    ///< nominal b, out
};

/// A callable usable as a black box: `f(call, rng&)` or `f(call)` returning `std::vector<T>`.
template <class F, class T>
concept black_box_callable = std::default_initializable<F> && std::copy_constructible<F> &&
                             (requires(F& f, const black_box_call<T>& c, rng& g) {
                               { f(c, g) } -> std::convertible_to<std::vector<T>>;
                             } || requires(F& f, const black_box_call<T>& c) {
                               { f(c) } -> std::convertible_to<std::vector<T>>;
                             });

/// A callable that also says what its physics did per call (`physical_events`), for the energy model.
template <class F, class T>
concept black_box_reporting = requires(const F& f, const black_box_call<T>& c) {
  { f.events(c) } -> std::convertible_to<physical_events>;
};

/// Substrate computing each layer with the callable `F` on value type `T`.
/// \tparam F callable satisfying `black_box_callable<F, T>` (may keep state; it is called on a
///           copy held by each tile, as `mutable` state, since reads are `const`)
template <class F, class T = float>
  requires black_box_callable<F, T>
struct black_box {
  using value_type = T;
  using callable_type = F;
  static constexpr const char* name = "black_box";

  /// The callable each tile computes with (copied into every tile it is applied to).
  struct params {
    F model{};
  };

  /// One layer's black box: the callable and its nominal parameters W (Out × In), b (Out).
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = T;
    static constexpr std::size_t in_extent = In;
    static constexpr std::size_t out_extent = Out;

    /// Index of the layer in its network, set by `network::initialize`; used in messages.
    std::size_t layer_index = static_cast<std::size_t>(-1);
    /// Optional human-readable name of this box (e.g. "oscillators"), used in messages.
    std::string label{};

    void resize(std::size_t in, std::size_t out) {
      weight_.resize(out, in);
      bias_.resize(1, out);
    }
    [[nodiscard]] constexpr std::size_t in_size() const noexcept { return weight_.cols(); }
    [[nodiscard]] constexpr std::size_t out_size() const noexcept { return weight_.rows(); }

    /// Uses the callable of `p` from now on.
    void set_params(const params& p) { model_ = p.model; }
    /// The callable (for per-layer state).
    [[nodiscard]] F& model() noexcept { return model_; }
    [[nodiscard]] const F& model() const noexcept { return model_; }

    /// Runs the callable on the batch. The layer adds `b` after a read, so the tile returns
    /// `F(x, W, b) − b`: the layer's pre-activation is then exactly what `F` produced.
    /// \throws pnn::error naming the layer when `F` returns other than n × Out values, or a
    ///         non-finite value.
    void read(const T* x, std::size_t n, T* y, rng& g) const {
      const simd::kernel_work_pause simulated;  // the model stands for physics, not digital work
      const black_box_call<T> c{x, n, in_size(), out_size(), weight_.data(), bias_.data()};
      std::vector<T> r;
      if constexpr (requires { model_(c, g); }) r = model_(c, g);
      else r = model_(c);
      const std::size_t out = out_size();
      if (r.size() != n * out)
        throw_error(where() + ": the callable returned " + std::to_string(r.size()) + " values, expected " +
                    std::to_string(n) + " x " + std::to_string(out) + " = " + std::to_string(n * out));
      for (std::size_t i = 0; i < r.size(); ++i)
        if (!std::isfinite(static_cast<double>(r[i])))
          throw_error(where() + ": the callable returned a non-finite value (NaN or Inf) at sample " +
                      std::to_string(i / out) + ", output " + std::to_string(i % out));
      if constexpr (black_box_reporting<F, T>) cost_.report([&] { return model_.events(c); });
      const T* b = bias_.data();
      for (std::size_t r0 = 0; r0 < n; ++r0)
        for (std::size_t j = 0; j < out; ++j) y[r0 * out + j] = r[r0 * out + j] - b[j];
    }

    /// Programs an update onto the nominal parameters: `W ← W − ΔW`, `b ← b − Δb`.
    template <class U>
    void program(const U& update, rng&) {
      const T* dw = update.weight_data();
      const T* db = update.bias_data();
      for (std::size_t i = 0; i < weight_.size(); ++i) weight_.data()[i] -= dw[i];
      for (std::size_t j = 0; j < out_size(); ++j) bias_.data()[j] -= db[j];
    }
    /// Sets the nominal parameters (in-silico deployment).
    void set_weights(const T* w, const T* b, rng&) {
      for (std::size_t i = 0; i < weight_.size(); ++i) weight_.data()[i] = w[i];
      for (std::size_t j = 0; j < out_size(); ++j) bias_.data()[j] = b[j];
    }
    /// The nominal W: what the black box is driven with (its physics is unknown to the library).
    void effective_weights(T* w) const {
      for (std::size_t i = 0; i < weight_.size(); ++i) w[i] = weight_.data()[i];
    }

    [[nodiscard]] constexpr T* weight_data() noexcept { return weight_.data(); }
    [[nodiscard]] constexpr const T* weight_data() const noexcept { return weight_.data(); }
    [[nodiscard]] constexpr T* bias_data() noexcept { return bias_.data(); }
    [[nodiscard]] constexpr const T* bias_data() const noexcept { return bias_.data(); }

    /// Checkpoint contents (pnn/core/state_format.hpp): the weights and the bias (the
    /// model is code, not state).
    template <class V>
    void visit_state(V& v) {
      v("weight", std::span<T>(weight_.data(), weight_.size()));
      v("bias", std::span<T>(bias_.data(), bias_.size()));
    }

    /// Reports the callable's events into `c` (`tile_hooks::attach_cost_counter`), for a
    /// callable with `events(call)`.
    void attach_cost_counter(cost_counter* c) noexcept
      requires black_box_reporting<F, T>
    {
      cost_.attach(c);
    }

   private:
    std::string where() const {
      std::string s = "pnn::physics::black_box";
      if (layer_index != static_cast<std::size_t>(-1)) s += " (layer " + std::to_string(layer_index);
      if (!label.empty()) s += (layer_index != static_cast<std::size_t>(-1) ? ", '" : " ('") + label + "'";
      if (layer_index != static_cast<std::size_t>(-1) || !label.empty()) s += ")";
      return s;
    }

    matrix_storage<T, Out, In> weight_{};
    matrix_storage<T, 1, Out> bias_{};
    mutable F model_{};
    cost_report cost_{};
  };
};

namespace detail {
/// The identity callable `y = W x + b`: the black box of a linear layer (tests, templates).
template <class T>
struct affine_callable {
  std::vector<T> operator()(const black_box_call<T>& c) const {
    std::vector<T> y(c.n * c.out);
    for (std::size_t r = 0; r < c.n; ++r)
      for (std::size_t j = 0; j < c.out; ++j) {
        T s = c.bias[j];
        for (std::size_t k = 0; k < c.in; ++k) s += c.weight[j * c.in + k] * c.x[r * c.in + k];
        y[r * c.out + j] = s;
      }
    return y;
  }
};
}  // namespace detail

/// A black box computing the affine map `W x + b` (a reference for tests and templates).
template <class T = float>
using affine_black_box = black_box<detail::affine_callable<T>, T>;

static_assert(substrate<affine_black_box<float>>);
static_assert(dense_tile<affine_black_box<float>::tile<3, 2>>);
static_assert(!transposed_readable<affine_black_box<float>>);

}  // namespace pnn::physics
