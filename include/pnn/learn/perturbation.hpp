// SPDX-License-Identifier: MIT
/// \file
/// \brief Perturbative rules that need nothing but forward passes of the physical network:
/// `learn::weight_perturbation`, `learn::node_perturbation`, `learn::spsa` (with multiplexed
/// gradient descent), and SPSA's step-size gain `optim::spsa_gain`.
///
/// Each rule perturbs what the hardware lets one perturb — the tile's own parameters (through
/// `pnn::get_tile_parameters`/`set_tile_parameters`: W and b of a crossbar or digital tile, the
/// phases and attenuators of an MZI mesh; restored bit for bit from a saved copy) or a layer's
/// pre-activations (an injected signal) — runs the network forward through its substrate and
/// noise, and turns loss differences into an update estimate. No transposed read, no model of
/// the physics: they work on every substrate, a black box included. Estimates for a tile with
/// its own parameter space land in `layer_gradient::parameter`, and the tile steps those
/// parameters when programmed (in-situ phase training on a mesh).
/// docs/rules.md, "Forward-mode and perturbative local learning".
#pragma once

#include <algorithm>
#include <any>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/digital.hpp>
#include <pnn/physics/parameters.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/random.hpp>

namespace pnn::optim {

/// \brief SPSA's step-size gain (Spall 1998): update `= a_k ĝ`, `a_k = a/(k + 1 + A)^α`.
///
/// The gain belongs to the optimiser, the perturbation size `c_k` to `learn::spsa`. Spall's
/// guidance: α = 0.602, A ≈ 10 % of the planned iterations, `a` such that `a_0 ĝ` moves the
/// parameters by a sensible amount early on.
struct spsa_gain {
  static constexpr const char* name = "spsa_gain";
  float a = 0.1f;           ///< gain numerator a
  float stability = 0.0f;   ///< stability constant A (≥ 0)
  float alpha = 0.602f;     ///< decay exponent α
  float weight_decay = 0.0f;

  template <class Net>
  struct state {
    std::size_t step = 0;
  };

  /// \pre `a`, `stability`, `weight_decay` ≥ 0 and finite; `alpha` > 0 and finite (else `pnn::error`).
  void validate() const {
    auto ok = [](float v) { return v >= 0.0f && std::isfinite(v); };
    if (!ok(a) || !ok(stability) || !ok(weight_decay))
      detail::parameter_error("optim::spsa_gain", "a, stability and weight_decay must be non-negative and finite");
    if (!(alpha > 0.0f && std::isfinite(alpha)))
      detail::parameter_error("optim::spsa_gain", "alpha must be positive and finite");
  }

  /// The gain at step `k` (0-based).
  [[nodiscard]] double gain(std::size_t k) const noexcept {
    return double(a) / std::pow(double(k) + 1.0 + double(stability), double(alpha));
  }

  /// Rewrites the estimate `g` into the update `a_k ĝ` to subtract.
  template <class Net>
  void apply(gradients<Net>& g, state<Net>& s, const Net& net) const {
    using T = typename Net::value_type;
    detail::add_weight_decay(g, net, weight_decay);
    const T ak = static_cast<T>(gain(s.step++));
    for (std::size_t i = 0; i < Net::num_layers; ++i) g[i].scale(ak);
  }
};

}  // namespace pnn::optim

namespace pnn::learn {

/// Finite-difference scheme of a perturbative estimate.
enum class finite_difference {
  forward,  ///< `[L(θ + σu) − L(θ)]/σ`: one extra pass per perturbation, bias O(σ)
  central   ///< `[L(θ + σu) − L(θ − σu)]/(2σ)`: two passes, bias O(σ²)
};

/// Directions along which `node_perturbation` perturbs a layer's pre-activations.
enum class node_directions {
  gaussian,   ///< `u ~ N(0, I)` per sample, `num_perturbations` of them averaged
  coordinate  ///< one unit at a time (`u = e_j` for every sample): a finite-difference ∂L/∂z
};

/// How `spsa` applies its perturbations.
enum class spsa_perturbation {
  spsa,  ///< one Rademacher direction at a time, two passes each (Spall 1992)
  mgd    ///< multiplexed gradient descent: M directions at once under Walsh–Hadamard codes
};

namespace perturb_detail {

/// True when every layer's tile exposes its parameters (a dense W, or its own parameter space).
template <class Net>
constexpr bool accessible_layers() {
  bool ok = true;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((ok = ok && parameter_accessible_tile<typename Net::template layer_type<I>::tile_type>), ...);
  }(std::make_index_sequence<Net::num_layers>{});
  return ok;
}

/// True when some layer's tile has a parameter space of its own (then the flat vectors are
/// `double`, so that its parameters save and restore exactly).
template <class Net>
constexpr bool any_parameter_space() {
  bool any = false;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((any = any || updates_in_parameter_space<typename Net::template layer_type<I>::tile_type>), ...);
  }(std::make_index_sequence<Net::num_layers>{});
  return any;
}

/// Element type of the flat parameter vectors: the network's value type when every tile's
/// parameters are W and b (the fast path, as exact as the weights), `double` otherwise.
template <class Net>
using flat_t = std::conditional_t<any_parameter_space<Net>(), double, typename Net::value_type>;

/// Number of trainable parameters of `net` (each tile's, in its own space).
template <class Net>
std::size_t parameter_count(const Net& net) {
  std::size_t c = 0;
  net.for_each_layer([&](const auto& l, std::size_t) { c += tile_parameter_count(l.tile); });
  return c;
}

/// Copies all parameters into `saved` (flat, layer after layer, each in its tile's layout).
template <class Net, class V>
void save(Net& net, std::vector<V>& saved) {
  saved.resize(parameter_count(net));
  std::size_t off = 0;
  net.for_each_layer([&](auto& l, std::size_t) {
    get_tile_parameters(l.tile, saved.data() + off);
    off += tile_parameter_count(l.tile);
  });
}

/// Writes `θ = saved + s · dir` into the tiles, in one pass for tiles whose parameters are W and
/// b; tiles with their own parameter space go through `work` and `set_parameters`.
template <class Net, class V>
void write(Net& net, const std::vector<V>& saved, const V* dir, V s, std::vector<V>& work) {
  std::size_t off = 0;
  net.for_each_layer([&](auto& l, std::size_t) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    using T = typename tile_t::value_type;
    const std::size_t np = tile_parameter_count(l.tile);
    const V* b = saved.data() + off;
    const V* d = dir + off;
    if constexpr (parameterised_tile<tile_t>) {
      work.resize(np);
      for (std::size_t k = 0; k < np; ++k) work[k] = b[k] + s * d[k];
      set_tile_parameters(l.tile, work.data());
    } else {
      pnn::detail::require_writable_parameters(l.tile);
      const std::size_t nw = l.out_size() * l.in_size();
      T* w = l.tile.weight_data();
      T* bias = l.tile.bias_data();
      for (std::size_t k = 0; k < nw; ++k) w[k] = static_cast<T>(b[k] + s * d[k]);
      for (std::size_t j = 0; j < l.out_size(); ++j) bias[j] = static_cast<T>(b[nw + j] + s * d[nw + j]);
    }
    off += np;
  });
}

/// Restores the saved parameters bit for bit.
template <class Net, class V>
void restore(Net& net, const std::vector<V>& saved) {
  std::size_t off = 0;
  net.for_each_layer([&](auto& l, std::size_t) {
    set_tile_parameters(l.tile, saved.data() + off);
    off += tile_parameter_count(l.tile);
  });
}

/// `grad += s · flat` for the flat vector `flat` in the order of `save`: into `weight`, `bias`
/// for tiles whose parameters are W and b, into `parameter` (marked `parameter_space`) for the
/// others.
template <class Net, class V>
void accumulate(Net& net, gradients<Net>& grad, const V* flat, V s) {
  using T = typename Net::value_type;
  std::size_t off = 0;
  net.for_each_layer([&](auto& l, std::size_t i) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    auto& g = grad[i];
    if constexpr (updates_in_parameter_space<tile_t>) {
      const std::size_t np = l.tile.parameter_count();
      for (std::size_t k = 0; k < np; ++k) g.parameter.data()[k] += static_cast<T>(s * flat[off + k]);
      g.parameter_space = true;
      off += np;
    } else if constexpr (std::is_same_v<V, T>) {
      const std::size_t nw = l.out_size() * l.in_size();
      simd::axpy<T>(nw, s, flat + off, g.weight.data());
      simd::axpy<T>(l.out_size(), s, flat + off + nw, g.bias.data());
      off += nw + l.out_size();
    } else {
      const std::size_t nw = l.out_size() * l.in_size();
      for (std::size_t k = 0; k < nw; ++k) g.weight.data()[k] += static_cast<T>(s * flat[off + k]);
      off += nw;
      for (std::size_t j = 0; j < l.out_size(); ++j) g.bias.data()[j] += static_cast<T>(s * flat[off + j]);
      off += l.out_size();
    }
  });
}

/// Batch-mean loss of one forward pass of the physical network (with its noise, from `g`).
template <class Net, class Loss>
double batch_loss(const Net& net, const typename Net::value_type* x, const typename Net::value_type* t,
                  std::size_t n, const Loss& loss, trace<Net>& tr, rng& g) {
  forward_trace(net, x, n, tr, g);
  return double(loss.value(tr.output().data(), t, n, net.output_size()));
}

/// Saves the parameters on construction and restores them, exactly, when it goes out of scope
/// (also when a forward pass throws).
template <class Net>
struct parameter_guard {
  Net& net;
  std::vector<flat_t<Net>>& saved;
  parameter_guard(Net& n, std::vector<flat_t<Net>>& s) : net(n), saved(s) {
    // Refuse before saving, so that the restore in the destructor cannot throw.
    net.for_each_layer([](const auto& l, std::size_t) { pnn::detail::require_writable_parameters(l.tile); });
    save(net, saved);
  }
  ~parameter_guard() { restore(net, saved); }
  parameter_guard(const parameter_guard&) = delete;
  parameter_guard& operator=(const parameter_guard&) = delete;
};

/// Common shape of a forward-only rule's state.
template <class Net, class Optimizer>
struct state {
  using T = typename Net::value_type;
  trace<Net> tr{}, tp{};
  gradients<Net> grad{};
  typename Optimizer::template state<Net> opt{};
  std::vector<flat_t<Net>> saved{}, dir{}, codes{}, pert{}, work{};  ///< flat parameter vectors
  std::size_t estimates = 0;  ///< estimates made so far (SPSA's k)
  xt::xtensor<T, 1> a{}, h{}, a2{}, h2{}, scratch{}, u{}, delta{}, base{}, lp{}, lm{};
};

/// Clean forward pass: the loss and accuracy `step` reports.
template <class Net, class Loss>
step_result clean_pass(const Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b,
                       const Loss& loss, trace<Net>& tr, rng& g) {
  using T = typename Net::value_type;
  step_result r;
  r.loss = batch_loss(net, b.x, b.target, b.n, loss, tr, g);
  r.correct = pnn::detail::count_correct<T>(tr.output().data(), b.target, b.n, net.output_size());
  r.count = b.n;
  return r;
}

/// `step` of every perturbative rule: estimate, optimiser, finite check, program.
template <class Rule, class Net, class X, class Y, class Loss>
step_result step(Rule& rule, Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                 const Loss& loss, rng& g) {
  rule.check_params();
  auto b = pnn::detail::check_batch(net, x, target, Rule::name);
  auto& s = pnn::detail::cached<state<Net, typename Rule::optimizer_type>>(rule.cache_);
  const step_result r = rule.run(net, b, loss, g, s);
  pnn::detail::finish_step(net, s.grad, rule.parameters().optimizer, s.opt, g, Rule::name);
  return r;
}

/// `estimate` of every perturbative rule.
template <class Rule, class Net, class X, class Y, class Loss>
gradients<Net> estimate(Rule& rule, Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                        const Loss& loss, rng& g) {
  rule.check_params();
  auto b = pnn::detail::check_batch(net, x, target, Rule::name);
  auto& s = pnn::detail::cached<state<Net, typename Rule::optimizer_type>>(rule.cache_);
  rule.run(net, b, loss, g, s);
  return s.grad;
}

}  // namespace perturb_detail

/// \brief Weight perturbation: `ĝ = [(L(θ+σu) − L(θ−σu))/(2σ)] u` (central) or
/// `[(L(θ+σu) − L(θ))/σ] u` (forward), `u ~ N(0, I)` over all parameters, averaged over
/// `num_perturbations` directions (Jabri & Flower 1992; docs/rules.md, "Weight perturbation").
///
/// Unbiased up to the finite-difference bias, O(σ²) central and O(σ) forward; its variance grows
/// with the parameter count, which is what makes it slow on large networks. The parameters are
/// the tiles' own (W and b, or a mesh's phases; `pnn::set_tile_parameters`), restored from a
/// saved copy.
template <class Optimizer = optim::sgd>
class weight_perturbation {
 public:
  static constexpr const char* name = "weight_perturbation";
  using optimizer_type = Optimizer;

  /// Rule parameters (defaults in brackets).
  struct params {
    Optimizer optimizer{};
    double sigma = 1e-3;                       ///< perturbation size σ (parameter units) [1e-3], > 0
    std::size_t num_perturbations = 1;         ///< directions averaged per step [1], ≥ 1
    finite_difference difference = finite_difference::central;  ///< [central]
  };

  weight_perturbation() = default;
  explicit weight_perturbation(params p) : params_(std::move(p)) {}
  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// The estimate on the batch; perturbation directions and forward noise from `g`. The
  /// network's parameters are unchanged afterwards (bit for bit).
  /// \pre `sigma > 0`, `num_perturbations ≥ 1` (else `pnn::error`).
  template <class Net, class X, class Y, class Loss>
  gradients<Net> estimate(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                          const Loss& loss, rng& g) {
    return perturb_detail::estimate(*this, net, x, target, loss, g);
  }
  /// Estimate, shape with the optimiser, program the substrates.
  template <class Net, class X, class Y, class Loss>
  step_result step(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target, const Loss& loss,
                   rng& g) {
    return perturb_detail::step(*this, net, x, target, loss, g);
  }

 private:
  template <class R, class N, class X, class Y, class L>
  friend step_result perturb_detail::step(R&, N&, const xt::xexpression<X>&, const xt::xexpression<Y>&, const L&,
                                          rng&);
  template <class R, class N, class X, class Y, class L>
  friend gradients<N> perturb_detail::estimate(R&, N&, const xt::xexpression<X>&, const xt::xexpression<Y>&,
                                               const L&, rng&);

  void check_params() const {
    PNN_EXPECTS(params_.sigma > 0 && std::isfinite(params_.sigma), "learn::weight_perturbation: sigma must be > 0");
    PNN_EXPECTS(params_.num_perturbations >= 1, "learn::weight_perturbation: num_perturbations must be at least 1");
  }

  template <class Net, class Loss, class S>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  S& s) {
    static_assert(perturb_detail::accessible_layers<Net>(),
                  "learn::weight_perturbation needs tiles whose parameters can be written (weight_data() or "
                  "get_parameters/set_parameters)");
    rng g0 = g.split(1);
    const step_result r = perturb_detail::clean_pass(net, b, loss, s.tr, g0);
    s.grad.reshape(net);
    using V = perturb_detail::flat_t<Net>;
    const std::size_t P = params_.num_perturbations;
    const V sigma = static_cast<V>(params_.sigma);
    {
      perturb_detail::parameter_guard<Net> guard(net, s.saved);
      s.dir.resize(s.saved.size());
      for (std::size_t p = 0; p < P; ++p) {
        rng gu = g.split(2).split(p);
        fill_normal<V>(gu, s.dir.data(), s.dir.size());
        perturb_detail::write(net, s.saved, s.dir.data(), sigma, s.work);
        rng gplus = g.split(3).split(2 * p);
        const double lp = perturb_detail::batch_loss(net, b.x, b.target, b.n, loss, s.tp, gplus);
        double coef = 0;
        if (params_.difference == finite_difference::central) {
          perturb_detail::write(net, s.saved, s.dir.data(), -sigma, s.work);
          rng gminus = g.split(3).split(2 * p + 1);
          const double lm = perturb_detail::batch_loss(net, b.x, b.target, b.n, loss, s.tp, gminus);
          coef = (lp - lm) / (2 * params_.sigma);
        } else {
          coef = (lp - r.loss) / params_.sigma;
        }
        perturb_detail::accumulate(net, s.grad, s.dir.data(), static_cast<V>(coef / double(P)));
      }
    }
    return r;
  }

  params params_{};
  std::any cache_{};
};

/// \brief Node perturbation: perturb a layer's pre-activations `z_l` by `σu`, measure each
/// sample's loss change with forward passes only, `ĝ_z = (ΔL/σ) u` (batch-mean scaled),
/// `ĝ_W = ĝ_zᵀ x_{l−1}`, `ĝ_b = Σ_n ĝ_z` (Williams 1992; Fiete & Seung 2006; docs/rules.md).
///
/// Each layer is perturbed in passes of its own; the layers below keep the activities of the
/// step's clean pass and the layers above run forward through their substrate and noise. The
/// perturbation is a signal injected at the node (before the activation), so the tile's
/// parameters are never touched. With `directions = coordinate` and small σ, `ĝ_z` is a
/// finite-difference `∂L/∂z`, and the update equals backprop's up to O(σ²).
template <class Optimizer = optim::sgd>
class node_perturbation {
 public:
  static constexpr const char* name = "node_perturbation";
  using optimizer_type = Optimizer;

  /// Rule parameters (defaults in brackets).
  struct params {
    Optimizer optimizer{};
    double sigma = 1e-3;                 ///< perturbation size σ (pre-activation units) [1e-3], > 0
    std::size_t num_perturbations = 1;   ///< Gaussian directions averaged per layer [1], ≥ 1
    finite_difference difference = finite_difference::central;  ///< [central]
    node_directions directions = node_directions::gaussian;     ///< [gaussian]
  };

  node_perturbation() = default;
  explicit node_perturbation(params p) : params_(std::move(p)) {}
  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// The estimate on the batch. \pre `sigma > 0`, `num_perturbations ≥ 1` (else `pnn::error`).
  template <class Net, class X, class Y, class Loss>
  gradients<Net> estimate(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                          const Loss& loss, rng& g) {
    return perturb_detail::estimate(*this, net, x, target, loss, g);
  }
  /// Estimate, shape with the optimiser, program the substrates.
  template <class Net, class X, class Y, class Loss>
  step_result step(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target, const Loss& loss,
                   rng& g) {
    return perturb_detail::step(*this, net, x, target, loss, g);
  }

 private:
  template <class R, class N, class X, class Y, class L>
  friend step_result perturb_detail::step(R&, N&, const xt::xexpression<X>&, const xt::xexpression<Y>&, const L&,
                                          rng&);
  template <class R, class N, class X, class Y, class L>
  friend gradients<N> perturb_detail::estimate(R&, N&, const xt::xexpression<X>&, const xt::xexpression<Y>&,
                                               const L&, rng&);

  void check_params() const {
    PNN_EXPECTS(params_.sigma > 0 && std::isfinite(params_.sigma), "learn::node_perturbation: sigma must be > 0");
    PNN_EXPECTS(params_.num_perturbations >= 1, "learn::node_perturbation: num_perturbations must be at least 1");
  }

  // Per-sample losses of the network with layer `first`'s pre-activations replaced by
  // `a_first + s u` (into `out`, n values).
  template <class Net, class Loss, class S>
  void perturbed_losses(const Net& net, std::size_t first, const typename Net::value_type* target, std::size_t n,
                        const Loss& loss, typename Net::value_type sc, S& s, rng& g, typename Net::value_type* out) {
    using T = typename Net::value_type;
    const std::size_t k = net.output_size();
    const T* cur = nullptr;
    net.for_each_layer([&](const auto& l, std::size_t i) {
      using L = std::remove_cvref_t<decltype(l)>;
      if (i < first) return;
      const std::size_t m = n * l.out_size();
      T* a = (i % 2 == 0) ? s.a.data() : s.a2.data();
      T* h = (i % 2 == 0) ? s.h.data() : s.h2.data();
      if (i == first) {
        const T* a0 = s.tr.a[i].data();
        const T* u = s.u.data();
        for (std::size_t q = 0; q < m; ++q) a[q] = a0[q] + sc * u[q];
        simd::map<T>(m, a, h, l.activation);
      } else {
        T* scratch = L::has_input_noise ? s.scratch.data() : nullptr;
        rng gl = g.split(i);
        l.forward(cur, n, a, h, gl, scratch);
      }
      cur = h;
    });
    for (std::size_t r = 0; r < n; ++r) out[r] = loss.value(cur + r * k, target + r * k, std::size_t{1}, k);
  }

  template <class Net, class Loss, class S>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  S& s) {
    using T = typename Net::value_type;
    const std::size_t n = b.n, k = net.output_size();
    rng g0 = g.split(1);
    const step_result r = perturb_detail::clean_pass(net, b, loss, s.tr, g0);
    s.grad.ensure_shape(net);
    std::size_t widest = k;
    net.for_each_layer([&](const auto& l, std::size_t) { widest = std::max({widest, l.in_size(), l.out_size()}); });
    for (auto* v : {&s.a, &s.h, &s.a2, &s.h2, &s.scratch, &s.u, &s.delta})
      if (v->size() < n * widest) v->resize({n * widest});
    for (auto* v : {&s.base, &s.lp, &s.lm})
      if (v->size() < n) v->resize({n});
    const T* y0 = s.tr.output().data();
    for (std::size_t q = 0; q < n; ++q) s.base.data()[q] = loss.value(y0 + q * k, b.target + q * k, std::size_t{1}, k);
    const bool central = params_.difference == finite_difference::central;
    const T sigma = static_cast<T>(params_.sigma);
    net.for_each_layer([&](const auto& l, std::size_t i) {
      const std::size_t out = l.out_size();
      std::fill(s.delta.data(), s.delta.data() + n * out, T(0));
      const bool coord = params_.directions == node_directions::coordinate;
      const std::size_t P = coord ? out : params_.num_perturbations;
      const double avg = coord ? 1.0 : 1.0 / double(P);
      for (std::size_t p = 0; p < P; ++p) {
        if (coord) {
          std::fill(s.u.data(), s.u.data() + n * out, T(0));
          for (std::size_t q = 0; q < n; ++q) s.u.data()[q * out + p] = T(1);
        } else {
          rng gu = g.split(2).split(i).split(p);
          fill_normal<T>(gu, s.u.data(), n * out);
        }
        rng gplus = g.split(3).split(i).split(2 * p);
        perturbed_losses(net, i, b.target, n, loss, sigma, s, gplus, s.lp.data());
        if (central) {
          rng gminus = g.split(3).split(i).split(2 * p + 1);
          perturbed_losses(net, i, b.target, n, loss, -sigma, s, gminus, s.lm.data());
        }
        for (std::size_t q = 0; q < n; ++q) {
          const double dl = central ? (double(s.lp.data()[q]) - double(s.lm.data()[q])) / (2 * params_.sigma)
                                    : (double(s.lp.data()[q]) - double(s.base.data()[q])) / params_.sigma;
          // Batch-mean loss: ∂L/∂z_n = (1/n) ∂L_n/∂z_n.
          const T c = static_cast<T>(dl * avg / double(n));
          if (coord) s.delta.data()[q * out + p] += c;
          else simd::axpy<T>(out, c, s.u.data() + q * out, s.delta.data() + q * out);
        }
      }
      pnn::detail::outer_product_update(l, s.tr.input_of(i), s.delta.data(), n, l.in_size(), out, T(1), s.grad[i]);
    });
    return r;
  }

  params params_{};
  std::any cache_{};
};

/// \brief Simultaneous-perturbation stochastic approximation (Spall 1992):
/// `ĝ_i = [L(θ + c_kΔ) − L(θ − c_kΔ)]/(2 c_k Δ_i)`, `Δ` Rademacher, `c_k = c/(k+1)^γ`.
///
/// `k` counts the estimates made on the network. The step gain `a_k = a/(k+1+A)^0.602` is the
/// optimiser's: use `optim::spsa_gain`. With `perturbation = mgd` (multiplexed gradient descent,
/// McCaughan et al. 2023) M = `num_perturbations` directions `Δ^m` are applied concurrently over
/// T time slots (T the smallest power of two ≥ 2M): slot t carries `(c_k/√M) Σ_m H_mt Δ^m`, with
/// `H_m` the first M rows of odd weight (odd popcount of the row index) of the T×T Walsh–Hadamard
/// matrix: ±1, mutually orthogonal and zero-mean, so the unperturbed loss cancels without being
/// measured. The loss of each slot is demultiplexed by correlating with each code,
/// `d_m = √M/(c_k T) Σ_t H_mt L_t ≈ ∇L·Δ^m`, and `ĝ = (1/M) Σ_m d_m Δ^m`. Why odd weight: the
/// product of two Walsh rows is another Walsh row, so with all rows the curvature term
/// `c² Δ^{m'}ᵀ H Δ^{m''}` leaks into code `m' ⊕ m''` and the bias becomes O(c); the product of
/// two odd rows is even, so with odd rows only the bias stays O(c²) like central SPSA. Every
/// perturbation is then on all the time (the physical advantage of multiplexing: no parameter
/// is ever switched alone), at 2M passes like SPSA. With M = 1 it is exactly central SPSA.
/// This is code-multiplexed SPSA, not McCaughan et al.'s per-parameter, continuously integrating
/// scheme (docs/rules.md, "SPSA and multiplexed gradient descent", says how they differ).
template <class Optimizer = optim::sgd>
class spsa {
 public:
  static constexpr const char* name = "spsa";
  using optimizer_type = Optimizer;

  /// Rule parameters (defaults in brackets).
  struct params {
    Optimizer optimizer{};
    double c = 1e-3;                     ///< perturbation size c [1e-3], > 0
    double gamma = 0.101;                ///< decay exponent γ of c_k [0.101], ≥ 0
    std::size_t num_perturbations = 1;   ///< directions per step, averaged or multiplexed [1], ≥ 1
    spsa_perturbation perturbation = spsa_perturbation::spsa;  ///< [spsa]
  };

  spsa() = default;
  explicit spsa(params p) : params_(std::move(p)) {}
  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// The perturbation size at estimate `k` (0-based): `c/(k+1)^γ`.
  [[nodiscard]] double perturbation_size(std::size_t k) const noexcept {
    return params_.c / std::pow(double(k) + 1.0, params_.gamma);
  }

  /// The estimate on the batch (advances `k`). \pre `c > 0`, `gamma ≥ 0`,
  /// `num_perturbations ≥ 1` (else `pnn::error`).
  template <class Net, class X, class Y, class Loss>
  gradients<Net> estimate(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                          const Loss& loss, rng& g) {
    return perturb_detail::estimate(*this, net, x, target, loss, g);
  }
  /// Estimate, shape with the optimiser, program the substrates.
  template <class Net, class X, class Y, class Loss>
  step_result step(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target, const Loss& loss,
                   rng& g) {
    return perturb_detail::step(*this, net, x, target, loss, g);
  }

 private:
  template <class R, class N, class X, class Y, class L>
  friend step_result perturb_detail::step(R&, N&, const xt::xexpression<X>&, const xt::xexpression<Y>&, const L&,
                                          rng&);
  template <class R, class N, class X, class Y, class L>
  friend gradients<N> perturb_detail::estimate(R&, N&, const xt::xexpression<X>&, const xt::xexpression<Y>&,
                                               const L&, rng&);

  void check_params() const {
    PNN_EXPECTS(params_.c > 0 && std::isfinite(params_.c), "learn::spsa: c must be > 0");
    PNN_EXPECTS(params_.gamma >= 0 && std::isfinite(params_.gamma), "learn::spsa: gamma must be >= 0");
    PNN_EXPECTS(params_.num_perturbations >= 1, "learn::spsa: num_perturbations must be at least 1");
  }

  template <class Net, class Loss, class S>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  S& s) {
    static_assert(perturb_detail::accessible_layers<Net>(),
                  "learn::spsa needs tiles whose parameters can be written (weight_data() or "
                  "get_parameters/set_parameters)");
    rng g0 = g.split(1);
    const step_result r = perturb_detail::clean_pass(net, b, loss, s.tr, g0);
    s.grad.reshape(net);
    using V = perturb_detail::flat_t<Net>;
    const std::size_t M = params_.num_perturbations;
    const double ck = perturbation_size(s.estimates++);
    perturb_detail::parameter_guard<Net> guard(net, s.saved);
    const std::size_t np = s.saved.size();
    if (params_.perturbation == spsa_perturbation::spsa) {
      s.dir.resize(np);
      for (std::size_t p = 0; p < M; ++p) {
        rng gd = g.split(2).split(p);
        fill_rademacher<V>(gd, s.dir.data(), np);
        perturb_detail::write(net, s.saved, s.dir.data(), static_cast<V>(ck), s.work);
        rng gplus = g.split(3).split(2 * p);
        const double lp = perturb_detail::batch_loss(net, b.x, b.target, b.n, loss, s.tp, gplus);
        perturb_detail::write(net, s.saved, s.dir.data(), static_cast<V>(-ck), s.work);
        rng gminus = g.split(3).split(2 * p + 1);
        const double lm = perturb_detail::batch_loss(net, b.x, b.target, b.n, loss, s.tp, gminus);
        // 1/Δ_i = Δ_i for Δ_i = ±1.
        perturb_detail::accumulate(net, s.grad, s.dir.data(), static_cast<V>((lp - lm) / (2 * ck) / double(M)));
      }
      return r;
    }
    // Multiplexed: M codes over T slots, Walsh rows of odd weight (see the class comment).
    const std::size_t slots = std::bit_ceil(2 * M);
    std::vector<std::size_t> rows;
    for (std::size_t q = 1; rows.size() < M; ++q)
      if (std::popcount(q) % 2 == 1) rows.push_back(q);
    auto code = [&](std::size_t m, std::size_t t) { return (std::popcount(rows[m - 1] & t) % 2 == 0) ? 1.0 : -1.0; };
    s.codes.resize(M * np);
    for (std::size_t m = 0; m < M; ++m) {
      rng gd = g.split(2).split(m);
      fill_rademacher<V>(gd, s.codes.data() + m * np, np);
    }
    s.pert.resize(np);
    std::vector<double> d(M, 0.0);
    const double amp = ck / std::sqrt(double(M));
    for (std::size_t t = 0; t < slots; ++t) {
      std::fill(s.pert.begin(), s.pert.end(), V(0));
      for (std::size_t m = 0; m < M; ++m)
        simd::axpy<V>(np, static_cast<V>(code(m + 1, t)), s.codes.data() + m * np, s.pert.data());
      perturb_detail::write(net, s.saved, s.pert.data(), static_cast<V>(amp), s.work);
      rng gl = g.split(3).split(t);
      const double lt = perturb_detail::batch_loss(net, b.x, b.target, b.n, loss, s.tp, gl);
      for (std::size_t m = 0; m < M; ++m) d[m] += code(m + 1, t) * lt;
    }
    for (std::size_t m = 0; m < M; ++m) {
      const double dm = d[m] * std::sqrt(double(M)) / (ck * double(slots));
      perturb_detail::accumulate(net, s.grad, s.codes.data() + m * np, static_cast<V>(dm / double(M)));
    }
    return r;
  }

  params params_{};
  std::any cache_{};
};

static_assert(optimizer<optim::spsa_gain, network<dense<2, 2, physics::basic_digital<double>>>>);

}  // namespace pnn::learn
