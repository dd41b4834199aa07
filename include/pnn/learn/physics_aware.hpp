// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::physics_aware`: physics-aware training (PAT) — forward on the physical
/// network, backward through a digital twin's Jacobians at the physically measured layer inputs
/// (Wright et al., Nature 2022; docs/rules.md, "Physics-aware training").
///
/// The forward pass runs on the **physical** network (its substrate, noise, device variation,
/// mismatch: `forward_trace`) and records every layer's measured input `x_l`, pre-activation
/// `a_l` and output `h_l`. The backward pass never reads the physics backwards: it uses the
/// **twin** `f_m`, evaluated at the measured input of each layer as Wright et al. do:
/// `(a_m, h_m) = f_m(x_l)`, `δ_l = g_l ⊙ f_m′(a_m, h_m)`, `ĝ_W = δ_lᵀ x_l`, `ĝ_b = Σ δ_l`,
/// `∂L/∂x_l = δ_l W_m` (the twin's weights, mirrored from what a model of the physical tiles
/// knows before every estimate). `jacobian_point::measured_activations` evaluates `f_m′` at the
/// measured `(a_l, h_l)` instead (one twin forward per layer cheaper; our variant; the two agree
/// when the twin's linear part matches the physics). With `f_p ≡ f_m` this is backprop; with
/// a mismatch the error no longer compounds through the depth (toy chain of docs/rules.md theory
/// check 7: in-silico gradient gap 33 %, PAT 10.5 %). Physical substrates without a transposed
/// read (`physics::black_box`) train with it.
///
/// A twin is any object with
/// `backward(const Net& physical, const trace<Net>& measured, const T* dy, gradients<Net>&, rng&)`:
/// `digital_twin` (default: the ideal digital network of the same shape), `network_twin<M>`
/// (a user-supplied model network, e.g. with a different activation), or a learned surrogate
/// (`learn::surrogate_twin`, train/surrogate.hpp).
#pragma once

#include <algorithm>
#include <any>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <pnn/learn/backward.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/physics/digital.hpp>

namespace pnn::learn {

/// Where the twin's activation derivative is evaluated.
enum class jacobian_point {
  /// at the physically measured `(a_l, h_l)` (no extra computation; our variant)
  measured_activations,
  /// at the twin's own `(a_m, h_m) = f_m(x_l)` from the measured input `x_l`: Wright et al.'s
  /// published form and the default
  measured_inputs,
};

/// A twin usable by `physics_aware` for the physical network `Net`.
template <class M, class Net>
concept twin_model = requires(M& m, const Net& net, const trace<Net>& tr, const typename Net::value_type* dy,
                              gradients<Net>& g, rng& r) { m.backward(net, tr, dy, g, r); };


/// Walks the layers of `net` from the output down with a per-layer vector-Jacobian product:
/// `vjp(std::integral_constant<size_t, i>, const T* up, layer_gradient<T>& g, T* down)` gets
/// `up = ∂L/∂h_i` (n × Out_i), writes layer i's update into `g` and, when `down` is not null
/// (i > 0), `∂L/∂h_{i−1}` (n × In_i). `pnn::backward_walk` (learn/backward.hpp), the walk
/// backprop and FA use too, with fresh buffers; what every twin's `backward` uses.
template <class Net, class Vjp>
void twin_backward(const Net& net, const trace<Net>& tr, const typename Net::value_type* dy, gradients<Net>& grad,
                   Vjp&& vjp) {
  using T = typename Net::value_type;
  const std::size_t n = tr.batch;
  xt::xtensor<T, 2> up({n, net.output_size()}), down;
  std::copy(dy, dy + up.size(), up.data());
  grad.ensure_shape(net);
  backward_walk(net, n, up, down, grad, std::forward<Vjp>(vjp));
}

/// A twin that is a network `Model` of the physical network's shape (same depth and extents):
/// its activations give `f_m′`, its substrate the transposed reads `δ W_m`; its weights and
/// biases are mirrored from what a model of the physical tiles knows (`tile_hooks::model_weights`:
/// the nominal weights of a mesh's programmed phases, a crossbar's conductances; `bias_data`)
/// before every backward pass, never from fabrication errors nobody measured. Use it for a model that differs from the physics
/// on purpose, e.g. a calibrated activation. A physical layer without W (a diffractive stack, a
/// scattering medium) needs a twin layer of the same physics with the same parameter layout: it
/// mirrors the parameters as programmed, and the estimate is mapped into them through the twin's
/// adjoint (`map_layer_to_parameters`), never through the physical tile's own model.
/// \pre `Model::value_type` equals the physical network's; every layer's tile of `Model` can be
///      read transposed (below the first layer); a twin layer of a layer without W has the
///      physical layer's parameter count (else `pnn::error` at the first estimate).
template <class Model>
class network_twin {
 public:
  static constexpr const char* name = "network_twin";
  Model model{};  ///< the twin network (shape it like the physical one, or leave it empty)
  jacobian_point at = jacobian_point::measured_inputs;

  network_twin() = default;
  explicit network_twin(Model m, jacobian_point p = jacobian_point::measured_inputs)
      : model(std::move(m)), at(p) {}

  /// Copies the physical network's parameters into `model` (shaping it on first use).
  template <class Net>
  void mirror(const Net& physical) {
    static_assert(Net::num_layers == Model::num_layers, "learn::network_twin: twin and physical network differ in depth");
    static_assert(std::is_same_v<typename Net::value_type, typename Model::value_type>,
                  "learn::network_twin: twin and physical network must share value_type");
    if (model.input_size() == 0) {
      // A twin convolution of run-time geometry takes the physical layer's before it is shaped.
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (copy_geometry(layer<I>(physical), layer<I>(model)), ...);
      }(std::make_index_sequence<Net::num_layers>{});
      const auto s = physical.sizes();
      model.initialize(s.data(), seed{0});
    } else if (model.sizes() != physical.sizes()) {
      throw_error("learn::network_twin: the twin's layer sizes differ from the physical network's");
    }
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (mirror_layer(layer<I>(physical), layer<I>(model), I), ...);
    }(std::make_index_sequence<Net::num_layers>{});
  }

  /// A convolution's geometry from the physical layer into a twin layer of run-time geometry.
  template <class PhysicalLayer, class TwinLayer>
  static void copy_geometry(const PhysicalLayer& pl, TwinLayer& tl) {
    if constexpr (requires { pl.geometry(); tl.set_geometry(pl.geometry()); }) tl.set_geometry(pl.geometry());
  }

  /// One layer of `mirror`: the physical layer `pl` into the twin's layer `tl` (layer `i`).
  template <class PhysicalLayer, class TwinLayer>
  void mirror_layer(const PhysicalLayer& pl, TwinLayer& tl, std::size_t i) {
    if constexpr (requires { pl.geometry() == tl.geometry(); })
      if (!(pl.geometry() == tl.geometry()))
        throw_error("learn::network_twin: layer " + std::to_string(i) +
                    " of the twin convolves with another geometry than the physical layer's");
    using T = typename PhysicalLayer::value_type;
    const std::size_t out = pl.tile.out_size();
    using twin_substrate = typename TwinLayer::substrate_type;
    using physical_tile = typename PhysicalLayer::tile_type;
    using twin_tile = typename TwinLayer::tile_type;
    if constexpr (!deployable_tile<physical_tile>) {
      // No W to mirror (a diffractive stack, a scattering medium): the model is the same
      // physics without the imperfections nobody measured, holding the parameters as
      // programmed; the estimate is mapped into them through the model (`layer_vjp`).
      static_assert(parameterised_tile<twin_tile> && tile_hooks::maps_parameter_gradients<twin_tile>,
                    "learn::network_twin: a physical tile without W (a diffractive stack, a scattering medium) "
                    "needs a twin layer of the same physics with the same parameter layout (a network_twin "
                    "whose Model is built on it; digital_twin cannot model it)");
      if (pl.tile.parameter_count() != tl.tile.parameter_count())
        throw_error("learn::network_twin: layer " + std::to_string(i) +
                    " of the twin has a different parameter count from the physical layer's (" +
                    std::to_string(tl.tile.parameter_count()) + " vs " + std::to_string(pl.tile.parameter_count()) +
                    ")");
      p_.resize(pl.tile.parameter_count());
      pl.tile.get_parameters(p_.data());
      tl.tile.set_parameters(p_.data());
    } else if constexpr (std::is_same_v<twin_substrate, physics::basic_digital<T>>) {
      // A digital tile's weight_data() is W itself: mirror without a buffer.
      tile_hooks::model_weights(pl.tile, tl.tile.weight_data());
      std::copy(pl.tile.bias_data(), pl.tile.bias_data() + out, tl.tile.bias_data());
    } else {
      w_.resize(pl.tile.in_size() * out);
      tile_hooks::model_weights(pl.tile, w_.data());
      rng g(0);
      tl.tile.set_weights(w_.data(), pl.tile.bias_data(), g);
    }
  }

  /// One layer's vector-Jacobian product through the twin at the measured values.
  template <std::size_t I, class Net>
  void layer_vjp(const Net& physical, const trace<Net>& tr, const typename Net::value_type* up,
                 layer_gradient<typename Net::value_type>& g, typename Net::value_type* down, rng& r) {
    using T = typename Net::value_type;
    const auto& pl = layer<I>(physical);
    const auto& tl = layer<I>(model);
    const std::size_t n = tr.batch, in = pl.in_size(), pre = pnn::detail::pre_activation_size(pl);
    const T* x = tr.input_of(I);
    const T* a = tr.a[I].data();
    const T* h = tr.h[I].data();
    using pl_t = std::remove_cvref_t<decltype(pl)>;
    using tl_t = std::remove_cvref_t<decltype(tl)>;
    // When both layers read exactly and without noise, and the twin holds the physical weights
    // (exact tiles have no nominal/effective gap) with the same stateless activation, the twin's
    // forward pass at x_l reproduces the measured (a_l, h_l) bit for bit: skip it.
    constexpr bool twin_reproduces_measurement =
        tile_hooks::reads_exactly<typename pl_t::tile_type> && tile_hooks::reads_exactly<typename tl_t::tile_type> &&
        !pl_t::has_input_noise && !pl_t::has_output_noise && !pl_t::has_weight_noise && !tl_t::has_input_noise &&
        !tl_t::has_output_noise && !tl_t::has_weight_noise &&
        std::is_same_v<typename pl_t::activation_type, typename tl_t::activation_type> &&
        std::is_empty_v<typename pl_t::activation_type>;
    if (at == jacobian_point::measured_inputs && !twin_reproduces_measurement) {
      pnn::detail::resize_if_needed(am_, n, pre);
      pnn::detail::resize_if_needed(hm_, n, pl.out_size());
      if (scratch_.size() < n * in) scratch_.resize({n * in});
      rng gl = r.split(I);
      tl.forward(x, n, am_.data(), hm_.data(), gl, scratch_.data());
      a = am_.data();
      h = hm_.data();
    }
    pnn::detail::resize_if_needed(delta_, n, pre);
    pnn::detail::layer_delta(tl, up, a, h, n, delta_.data());
    // The physical layer decides the update's form: its substrate is what gets programmed.
    pnn::detail::layer_update(pl, x, delta_.data(), n, T(1), g);
    if constexpr (!deployable_tile<typename pl_t::tile_type>) {
      // Into the parameters through the model's own adjoint (at the measured input x_l): the
      // physical tile would map it through physics it cannot know.
      rng gm = r.split(0x70a ^ I);
      pnn::detail::map_layer_to_parameters(tl.tile, g, I, gm);
    }
    if (down != nullptr) {
      using tile_t = typename std::remove_cvref_t<decltype(tl)>::tile_type;
      static_assert(transposable_tile<tile_t>, "learn::network_twin: the twin's substrate must be read transposed");
      rng gb = r.split(I + 1000);
      tl.backward_read_at(x, delta_.data(), n, down, gb);
    }
  }

  /// PAT's backward pass: mirrors the parameters, then walks the layers through the twin.
  template <class Net>
  void backward(const Net& physical, const trace<Net>& tr, const typename Net::value_type* dy, gradients<Net>& grad,
                rng& r) {
    mirror(physical);
    twin_backward(physical, tr, dy, grad, [&](auto ic, const auto* up, auto& g, auto* down) {
      layer_vjp<decltype(ic)::value>(physical, tr, up, g, down, r);
    });
  }

 private:
  xt::xtensor<typename Model::value_type, 2> delta_{}, am_{}, hm_{};
  xt::xtensor<typename Model::value_type, 1> scratch_{};
  std::vector<typename Model::value_type> w_{};
  std::vector<double> p_{};
};

/// The default twin: the ideal digital network of the physical network's shape and
/// activations, `rebind_t<Net, physics::basic_digital<T>>`, created for the concrete network on
/// first use.
struct digital_twin {
  static constexpr const char* name = "digital_twin";
  jacobian_point at = jacobian_point::measured_inputs;

  /// The twin network type of a physical network `Net`.
  template <class Net>
  using network_type = rebind_t<Net, physics::basic_digital<typename Net::value_type>>;

  /// The twin network built for `Net` (valid after the first `backward` with it).
  template <class Net>
  network_twin<network_type<Net>>& for_network() {
    return pnn::detail::cached<network_twin<network_type<Net>>>(cache_);
  }

  template <class Net>
  void backward(const Net& physical, const trace<Net>& tr, const typename Net::value_type* dy, gradients<Net>& grad,
                rng& r) {
    auto& t = for_network<Net>();
    t.at = at;
    t.backward(physical, tr, dy, grad, r);
  }

 private:
  std::any cache_{};
};

/// Physics-aware training with optimiser `Optimizer` and twin `Twin`.
/// \tparam Twin `digital_twin` (default), `network_twin<Model>`, `surrogate_twin`, or any type
///              satisfying `twin_model<Twin, Net>`.
template <class Optimizer = optim::sgd, class Twin = digital_twin>
class physics_aware : public rule_skeleton<physics_aware<Optimizer, Twin>> {
  friend class rule_skeleton<physics_aware>;

 public:
  static constexpr const char* name = "physics_aware";
  /// Rule parameters: the optimiser and the twin the backward pass goes through.
  struct params {
    Optimizer optimizer{};
    Twin twin{};
  };

  /// Per-network state: the physical forward trace, the estimate, the optimiser's state.
  template <class Net>
  struct state {
    trace<Net> tr{};
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    xt::xtensor<typename Net::value_type, 2> dy{};
    /// Checkpoint contents (pnn/core/state_format.hpp): the optimiser's state.
    template <class V>
    void visit_state(V& vis) {
      auto g = vis.scope("optimizer");
      opt.visit_state(vis);
    }
  };

  physics_aware() = default;
  explicit physics_aware(params p) : params_(std::move(p)) {}
  /// A rule with a given twin (e.g. a calibrated `network_twin` or a fitted surrogate).
  explicit physics_aware(Twin twin, Optimizer opt = {}) : params_{std::move(opt), std::move(twin)} {}

  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }
  [[nodiscard]] Twin& twin() noexcept { return params_.twin; }

 private:
  // The PAT estimate: physical forward, twin backward.
  template <class Net, class Loss>
  step_result run(Net& net, const checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s, rule_pass) {
    static_assert(twin_model<Twin, Net>, "learn::physics_aware: Twin must provide backward(net, trace, dy, grads, rng)");
    using T = typename Net::value_type;
    rng gf = g.split(1);
    forward_trace(net, b.x, b.n, s.tr, gf);
    pnn::detail::require_finite_forward(s.tr, name);
    const std::size_t k = net.output_size();
    pnn::detail::resize_if_needed(s.dy, b.n, k);
    step_result r;
    r.loss = double(loss.gradient(s.tr.output().data(), b.target, b.n, k, s.dy.data()));
    r.correct = pnn::detail::count_correct<T>(s.tr.output().data(), b.target, b.n, k);
    r.count = b.n;
    s.grad.ensure_shape(net);
    rng gb = g.split(2);
    params_.twin.backward(net, s.tr, s.dy.data(), s.grad, gb);
    return r;
  }

  params params_{};
};

}  // namespace pnn::learn
