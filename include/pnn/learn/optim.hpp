// SPDX-License-Identifier: MIT
/// \file
/// \brief Digital optimisers (`pnn::optim`): turn a rule's estimate into the update programmed.
///
/// A learning rule owns the estimator; its optimiser owns the learning rate and its schedule
/// (docs/architecture.md, "Choices and amounts"). Hyper-parameters sit in a small aggregate, so
/// `learn::backprop<optim::momentum>{{.optimizer = {.learning_rate = 0.01f, .momentum = 0.9f}}}`
/// reads like a configuration; the per-network state (velocity, moments) is created for the
/// concrete network type when optimisation starts (ensmallen's design).
/// `apply` rewrites the estimate in place into the update the substrate subtracts.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <algorithm>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/math.hpp>

namespace pnn::optim {

namespace detail {
/// Throws `pnn::error("<owner>: <what>")`. Out of line and cold: parameter checks run on every
/// step, and GCC 12 misreads an inlined `std::string` concatenation as out of bounds.
[[gnu::cold, gnu::noinline]] inline void parameter_error(const char* owner, const char* what) {
  std::string m(owner);
  m.append(": ").append(what);
  throw_error(m);
}
}  // namespace detail

/// Learning-rate schedule: the factor multiplying η at a given step.
struct schedule {
  enum class kind { constant, cosine, exponential };
  kind type = kind::constant;
  std::size_t total_steps = 0;  ///< cosine: steps over which η decays to `min_factor`·η
  double min_factor = 0.0;      ///< cosine floor
  double gamma = 1.0;           ///< exponential: factor per `step_size` steps
  std::size_t step_size = 1;

  /// Rejects a schedule that cannot mean what it says (a cosine over zero steps, a floor outside
  /// [0, 1], a non-positive decay factor, a zero step size) with a `pnn::error`.
  void validate(const char* owner) const {
    if (type == kind::cosine && total_steps == 0)
      detail::parameter_error(owner, "lr_schedule: cosine needs total_steps > 0");
    if (!(min_factor >= 0 && min_factor <= 1)) detail::parameter_error(owner, "lr_schedule: min_factor must be in [0, 1]");
    if (type == kind::exponential && !(gamma > 0 && std::isfinite(gamma)))
      detail::parameter_error(owner, "lr_schedule: gamma must be positive and finite");
    if (type == kind::exponential && step_size == 0)
      detail::parameter_error(owner, "lr_schedule: step_size must be positive");
  }

  /// Multiplier of the base learning rate at `step` (0-based).
  [[nodiscard]] double factor(std::size_t step) const noexcept {
    switch (type) {
      case kind::cosine: {
        if (total_steps == 0) return 1.0;
        const double p = step >= total_steps ? 1.0 : double(step) / double(total_steps);
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
      }
      case kind::exponential:
        return std::pow(gamma, double(step / (step_size == 0 ? 1 : step_size)));
      case kind::constant:
      default:
        return 1.0;
    }
  }
};

namespace detail {
/// Rejects a learning rate (global or per layer) or weight decay that is negative or not finite.
inline void check_rates(const char* owner, float learning_rate, float weight_decay,
                        const std::vector<float>& layer_learning_rates) {
  auto ok = [](float v) { return v >= 0.0f && std::isfinite(v); };
  if (!ok(learning_rate)) parameter_error(owner, "learning_rate must be non-negative and finite");
  if (!ok(weight_decay)) parameter_error(owner, "weight_decay must be non-negative and finite");
  for (float v : layer_learning_rates)
    if (!ok(v)) parameter_error(owner, "layer_learning_rates must be non-negative and finite");
}

/// Base learning rate of layer `i`: a per-layer value when given, else the global one.
inline double layer_rate(float global, const std::vector<float>& per_layer, std::size_t i) {
  return i < per_layer.size() ? double(per_layer[i]) : double(global);
}
/// The largest base rate over `layers` layers.
inline double max_layer_rate(float global, const std::vector<float>& per_layer, std::size_t layers) {
  double m = 0;
  for (std::size_t i = 0; i < layers; ++i) m = std::max(m, layer_rate(global, per_layer, i));
  return m;
}

template <class Net>
void add_weight_decay(gradients<Net>& g, const Net& net, float decay) {
  if (decay == 0.0f) return;
  using T = typename Net::value_type;
  net.for_each_layer([&](const auto& l, std::size_t i) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    if constexpr (parameterised_tile<tile_t>) {
      if (g[i].parameter_space) {  // decay of the tile's own parameters (phases, attenuators)
        std::vector<double> theta(l.tile.parameter_count());
        l.tile.get_parameters(theta.data());
        for (std::size_t k = 0; k < theta.size(); ++k) g[i].parameter.data()[k] += static_cast<T>(decay * theta[k]);
        return;
      }
    }
    if constexpr (dense_tile<tile_t>)
      simd::axpy<T>(g[i].weight.size(), static_cast<T>(decay), l.tile.weight_data(), g[i].weight.data());
    g[i].factored = false;
  });
}

/// Below this bound every update `u` keeps `W − u` finite for any finite `W`: the float result
/// overflows only when the exact one exceeds FLT_MAX by half an ulp there (2¹⁰³).
inline constexpr double in_place_bound = 0x1p100;

/// True when every layer's update can be written straight into its weights in memory: a tile
/// that holds W and programs by subtraction (`programs_outer_products`: the digital substrate),
/// with a dense estimate in weight space.
template <class Net>
bool updates_in_memory(const Net& net, const gradients<Net>& g) {
  bool ok = true;
  net.for_each_layer([&](const auto& l, std::size_t i) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    if constexpr (tile_hooks::programs_outer_products<tile_t> && dense_tile<tile_t>)
      ok = ok && !g[i].parameter_space && !g[i].deferred();
    else
      ok = false;
  });
  return ok;
}

/// The momentum step on one register (or one value): v ← μ v + g, returning the update
/// η v (Nesterov: η (g + μ v)). `apply` and `apply_in_place` both run it, so they round alike.
template <class P, class T>
PNN_ALWAYS_INLINE P momentum_step(P g, P& v, T mu, T eta, bool nesterov) noexcept {
  v = simd::fma(P(mu), v, g);
  return nesterov ? P(eta) * simd::fma(P(mu), v, g) : P(eta) * v;
}

/// The Adam step on one register: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², returning the update
/// s m/(√v/√c₂ + ε) (s: the rate over c₁).
template <class P, class T>
PNN_ALWAYS_INLINE P adam_step(P g, P& m, P& v, T b1, T b2, T step_size, T root_c2, T eps) noexcept {
  using simd::sqrt;  // ours for the scalar pack; xsimd's by argument-dependent lookup
  m = simd::fma(P(b1), m, P(T(1) - b1) * g);
  v = simd::fma(P(b2), v, P(T(1) - b2) * g * g);
  return P(step_size) * m / (sqrt(v) / P(root_c2) + P(eps));
}

/// Runs `step(g, state…) → update` over n values: `InPlace` subtracts each update from w (the
/// weights in memory, one pass); otherwise it overwrites g with the update (`apply`).
template <bool InPlace, class T, class Step, class... S>
PNN_ALWAYS_INLINE void for_each_update(std::size_t n, T* g, T* w, const Step& step, S*... state) {
  using P = simd::pack<T, simd::default_arch>;
  using Q = simd::scalar_pack<T>;
  constexpr std::size_t W = P::size;
  std::size_t i = 0;
  for (const std::size_t end = n - n % W; i < end; i += W) {
    P st[sizeof...(S)] = {P::load_unaligned(state + i)...};
    const P u = [&]<std::size_t... k>(std::index_sequence<k...>) {
      return step(P::load_unaligned(g + i), st[k]...);
    }(std::index_sequence_for<S...>{});
    std::size_t j = 0;
    ((st[j++].store_unaligned(state + i)), ...);
    if constexpr (InPlace) (P::load_unaligned(w + i) - u).store_unaligned(w + i);
    else u.store_unaligned(g + i);
  }
  for (; i < n; ++i) {
    Q st[sizeof...(S)] = {Q(state[i])...};
    const Q u = [&]<std::size_t... k>(std::index_sequence<k...>) {
      return step(Q(g[i]), st[k]...);
    }(std::index_sequence_for<S...>{});
    std::size_t j = 0;
    ((state[i] = st[j++].v), ...);
    if constexpr (InPlace) w[i] -= u.v;
    else g[i] = u.v;
  }
}

/// max |x| over the weight and bias arrays of an estimate or a state, or +∞ when one is not finite.
template <class Net>
double state_abs_max(const gradients<Net>& s) {
  double m = 0;
  for (std::size_t i = 0; i < Net::num_layers; ++i) {
    m = std::max(m, simd::finite_abs_max(s[i].weight.size(), s[i].weight.data()));
    m = std::max(m, simd::finite_abs_max(s[i].bias.size(), s[i].bias.data()));
  }
  return m;
}
}  // namespace detail

/// Plain stochastic gradient descent: update `= η_l · s(k) · ĝ`. Keeps the factored form, so a
/// crossbar can realise it with stochastic pulse trains.
struct sgd {
  static constexpr const char* name = "sgd";
  float learning_rate = 0.01f;
  float weight_decay = 0.0f;
  schedule lr_schedule{};
  std::vector<float> layer_learning_rates{};  ///< optional η per layer (EP uses one per layer)

  template <class Net>
  struct state {
    std::size_t step = 0;
    /// Checkpoint contents (pnn/core/state_format.hpp).
    template <class V>
    void visit_state(V& v) {
      v("step", step);
    }
  };

  /// True when `apply` only rescales each layer's estimate, so that a factored estimate stays
  /// factored (no weight decay): rules may then defer forming the dense update.
  [[nodiscard]] bool keeps_factors() const noexcept { return weight_decay == 0.0f; }

  /// \pre learning rates and weight decay ≥ 0 and finite; a valid schedule (else `pnn::error`).
  void validate() const {
    detail::check_rates("optim::sgd", learning_rate, weight_decay, layer_learning_rates);
    lr_schedule.validate("optim::sgd");
  }

  /// Rewrites the estimate `g` into the update to subtract.
  template <class Net>
  void apply(gradients<Net>& g, state<Net>& s, const Net& net) const {
    using T = typename Net::value_type;
    detail::add_weight_decay(g, net, weight_decay);
    const double f = lr_schedule.factor(s.step++);
    for (std::size_t i = 0; i < Net::num_layers; ++i)
      g[i].scale(static_cast<T>(f * detail::layer_rate(learning_rate, layer_learning_rates, i)));
  }
};

/// Heavy-ball momentum: `v ← μ v + ĝ`, update `= η v` (Nesterov: `η (ĝ + μ v)`).
struct momentum {
  static constexpr const char* name = "momentum";
  float learning_rate = 0.01f;
  float momentum = 0.9f;
  bool nesterov = false;
  float weight_decay = 0.0f;
  schedule lr_schedule{};
  std::vector<float> layer_learning_rates{};
  /// Update weights held in memory in the same pass as the velocity (`apply_in_place`); false
  /// keeps separate passes (the benchmark's baseline). Both give the same numbers.
  bool in_place = true;

  template <class Net>
  struct state {
    std::size_t step = 0;
    gradients<Net> velocity{};
    bool ready = false;
    /// An upper bound of max |v| kept by `apply_in_place` (< 0: unknown, measured on first use).
    double velocity_bound = -1;
    /// Checkpoint contents (pnn/core/state_format.hpp).
    template <class V>
    void visit_state(V& vis) {
      vis("step", step);
      vis("ready", ready);
      auto g = vis.scope("velocity");
      velocity.visit_state(vis);
      if constexpr (V::loading) velocity_bound = -1;
    }
  };

  /// \pre as `sgd`, and `momentum` ∈ [0, 1) (at 1 the velocity never forgets; above, it grows).
  void validate() const {
    detail::check_rates("optim::momentum", learning_rate, weight_decay, layer_learning_rates);
    if (!(momentum >= 0.0f && momentum < 1.0f)) detail::parameter_error("optim::momentum", "momentum must be in [0, 1)");
    lr_schedule.validate("optim::momentum");
  }

  template <class Net>
  void apply(gradients<Net>& g, state<Net>& s, const Net& net) const {
    using T = typename Net::value_type;
    detail::add_weight_decay(g, net, weight_decay);
    if (!s.ready) {
      s.velocity.reshape(net);
      s.ready = true;
    }
    const double f = lr_schedule.factor(s.step++);
    const T mu = static_cast<T>(momentum);
    for (std::size_t i = 0; i < Net::num_layers; ++i) {
      const T eta = static_cast<T>(f * detail::layer_rate(learning_rate, layer_learning_rates, i));
      auto update = [&](T* gv, T* vv, std::size_t n) {
        detail::for_each_update<false>(
            n, gv, static_cast<T*>(nullptr),
            [&](auto gk, auto& vk) { return detail::momentum_step(gk, vk, mu, eta, nesterov); }, vv);
      };
      update(g[i].weight.data(), s.velocity[i].weight.data(), g[i].weight.size());
      update(g[i].bias.data(), s.velocity[i].bias.data(), g[i].bias.size());
      update(g[i].parameter.data(), s.velocity[i].parameter.data(), g[i].parameter.size());
      g[i].factored = false;
    }
    s.velocity_bound = -1;
  }

  /// \brief `apply` and the programming of the update in one pass over each layer's W, for
  /// layers whose weights live in memory (`detail::updates_in_memory`): v and W are read and
  /// written once, the update is never stored. `estimate_bound` is max |ĝ| of a finite estimate.
  ///
  /// Returns false, having changed nothing, when that cannot be done safely: weight decay, or
  /// a bound on the update that does not rule out overflow (the network must stay unchanged if
  /// an update is not finite, and a fused pass cannot take back what it wrote); the caller then
  /// applies and programs in separate passes.
  template <class Net>
  bool apply_in_place(gradients<Net>& g, state<Net>& s, Net& net, double estimate_bound) const {
    using T = typename Net::value_type;
    if (!in_place || weight_decay != 0.0f || !detail::updates_in_memory(net, g)) return false;
    if (!s.ready) {
      s.velocity.reshape(net);
      s.ready = true;
      s.velocity_bound = 0;
    }
    if (s.velocity_bound < 0) s.velocity_bound = detail::state_abs_max(s.velocity);
    const double f = lr_schedule.factor(s.step);
    const double eta_max = f * detail::max_layer_rate(learning_rate, layer_learning_rates, Net::num_layers);
    const double mu = momentum;
    const double v_bound = mu * s.velocity_bound + estimate_bound;
    const double u_bound = eta_max * (nesterov ? estimate_bound + mu * v_bound : v_bound);
    if (!(v_bound < detail::in_place_bound && u_bound < detail::in_place_bound)) return false;
    ++s.step;
    const T tmu = static_cast<T>(momentum);
    net.for_each_layer([&](auto& l, std::size_t i) {
      using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
      if constexpr (dense_tile<tile_t>) {
        const T eta = static_cast<T>(f * detail::layer_rate(learning_rate, layer_learning_rates, i));
        const auto step = [&](auto gk, auto& vk) { return detail::momentum_step(gk, vk, tmu, eta, nesterov); };
        detail::for_each_update<true>(g[i].weight.size(), g[i].weight.data(), l.tile.weight_data(), step,
                                      s.velocity[i].weight.data());
        detail::for_each_update<true>(g[i].bias.size(), g[i].bias.data(), l.tile.bias_data(), step,
                                      s.velocity[i].bias.data());
      }
    });
    s.velocity_bound = v_bound;
    return true;
  }
};

/// Adam (Kingma & Ba 2015) with bias correction: update `= η m̂/(√v̂ + ε)`.
struct adam {
  static constexpr const char* name = "adam";
  float learning_rate = 0.001f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;
  schedule lr_schedule{};
  std::vector<float> layer_learning_rates{};
  /// Update weights held in memory in the same pass as the moments (`apply_in_place`).
  bool in_place = true;

  template <class Net>
  struct state {
    std::size_t step = 0;
    gradients<Net> m{}, v{};
    bool ready = false;
    /// An upper bound of max |m| kept by `apply_in_place` (< 0: unknown, measured on first use).
    double m_bound = -1;
    /// Checkpoint contents (pnn/core/state_format.hpp).
    template <class V>
    void visit_state(V& vis) {
      vis("step", step);
      vis("ready", ready);
      {
        auto g = vis.scope("m");
        m.visit_state(vis);
      }
      auto g = vis.scope("v");
      v.visit_state(vis);
      if constexpr (V::loading) m_bound = -1;
    }
  };

  /// \pre as `sgd`, `beta1`, `beta2` ∈ [0, 1) (the bias corrections divide by 1 − βᵏ) and
  /// `epsilon` > 0 and finite.
  void validate() const {
    detail::check_rates("optim::adam", learning_rate, weight_decay, layer_learning_rates);
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
      detail::parameter_error("optim::adam", "beta1 and beta2 must be in [0, 1)");
    if (!(epsilon > 0.0f && std::isfinite(epsilon)))
      detail::parameter_error("optim::adam", "epsilon must be positive and finite");
    lr_schedule.validate("optim::adam");
  }

  template <class Net>
  void apply(gradients<Net>& g, state<Net>& s, const Net& net) const {
    using T = typename Net::value_type;
    detail::add_weight_decay(g, net, weight_decay);
    if (!s.ready) {
      s.m.reshape(net);
      s.v.reshape(net);
      s.ready = true;
    }
    const double f = lr_schedule.factor(s.step);
    ++s.step;
    const double c1 = 1.0 - std::pow(double(beta1), double(s.step));
    const double c2 = 1.0 - std::pow(double(beta2), double(s.step));
    const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2), eps = static_cast<T>(epsilon);
    for (std::size_t i = 0; i < Net::num_layers; ++i) {
      const T step_size = static_cast<T>(f * detail::layer_rate(learning_rate, layer_learning_rates, i) / c1);
      const T root_c2 = static_cast<T>(std::sqrt(c2));
      auto update = [&](T* gv, T* mv, T* vv, std::size_t n) {
        detail::for_each_update<false>(
            n, gv, static_cast<T*>(nullptr),
            [&](auto gk, auto& mk, auto& vk) { return detail::adam_step(gk, mk, vk, b1, b2, step_size, root_c2, eps); },
            mv, vv);
      };
      update(g[i].weight.data(), s.m[i].weight.data(), s.v[i].weight.data(), g[i].weight.size());
      update(g[i].bias.data(), s.m[i].bias.data(), s.v[i].bias.data(), g[i].bias.size());
      update(g[i].parameter.data(), s.m[i].parameter.data(), s.v[i].parameter.data(), g[i].parameter.size());
      g[i].factored = false;
    }
    s.m_bound = -1;
  }

  /// \brief `apply` and the programming of the update in one pass over each layer's W, as
  /// `momentum::apply_in_place`. |m| stays below max(|m|, |ĝ|), v ≥ 0 stays finite while ĝ² is,
  /// and |update| ≤ η m̂/ε, which bounds what the fused pass can write.
  template <class Net>
  bool apply_in_place(gradients<Net>& g, state<Net>& s, Net& net, double estimate_bound) const {
    using T = typename Net::value_type;
    if (!in_place || weight_decay != 0.0f || !detail::updates_in_memory(net, g)) return false;
    if (!s.ready) {
      s.m.reshape(net);
      s.v.reshape(net);
      s.ready = true;
      s.m_bound = 0;
    }
    if (s.m_bound < 0) {
      s.m_bound = detail::state_abs_max(s.m);
      if (!(detail::state_abs_max(s.v) < HUGE_VAL)) s.m_bound = HUGE_VAL;  // a loaded v with NaN: take the checked path
    }
    const double f = lr_schedule.factor(s.step);
    const double c1 = 1.0 - std::pow(double(beta1), double(s.step + 1));
    const double c2 = 1.0 - std::pow(double(beta2), double(s.step + 1));
    const double eta_max = f * detail::max_layer_rate(learning_rate, layer_learning_rates, Net::num_layers);
    const double m_bound = std::max(s.m_bound, estimate_bound);
    const double u_bound = eta_max / c1 * m_bound / double(epsilon);
    if (!(estimate_bound < 0x1p60 && u_bound < detail::in_place_bound)) return false;
    ++s.step;
    const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2), eps = static_cast<T>(epsilon);
    const T root_c2 = static_cast<T>(std::sqrt(c2));
    net.for_each_layer([&](auto& l, std::size_t i) {
      using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
      if constexpr (dense_tile<tile_t>) {
        const T step_size = static_cast<T>(f * detail::layer_rate(learning_rate, layer_learning_rates, i) / c1);
        const auto step = [&](auto gk, auto& mk, auto& vk) {
          return detail::adam_step(gk, mk, vk, b1, b2, step_size, root_c2, eps);
        };
        detail::for_each_update<true>(g[i].weight.size(), g[i].weight.data(), l.tile.weight_data(), step,
                                      s.m[i].weight.data(), s.v[i].weight.data());
        detail::for_each_update<true>(g[i].bias.size(), g[i].bias.data(), l.tile.bias_data(), step,
                                      s.m[i].bias.data(), s.v[i].bias.data());
      }
    });
    s.m_bound = m_bound;
    return true;
  }
};

/// \brief Gradient-norm clipping around another optimiser (Pascanu, Mikolov & Bengio 2013): the
/// estimate is rescaled so that its global L2 norm over all layers is at most `max_norm`, then
/// `Inner` shapes it. A single exploding batch — an EP phase far from equilibrium, a
/// perturbative estimate from a noisy read — then moves the weights by a bounded step instead
/// of throwing them off the devices' range. The norm covers weights, biases and a tile's own
/// parameters; the estimate is formed densely (factors are not kept).
template <class Inner = sgd>
struct clipped {
  static constexpr const char* name = "clipped";
  Inner inner{};           ///< the optimiser that shapes the clipped estimate
  float max_norm = 1.0f;   ///< largest global L2 norm of an estimate (> 0)

  template <class Net>
  struct state {
    typename Inner::template state<Net> inner{};
    double last_norm = 0;           ///< norm of the last estimate, before clipping
    std::size_t clipped_steps = 0;  ///< estimates that were rescaled so far
    /// Checkpoint contents (pnn/core/state_format.hpp).
    template <class V>
    void visit_state(V& v) {
      {
        auto g = v.scope("inner");
        inner.visit_state(v);
      }
      v("last_norm", last_norm);
      v("clipped_steps", clipped_steps);
    }
  };

  /// The estimate's norm needs its dense form.
  [[nodiscard]] bool keeps_factors() const noexcept { return false; }

  /// \pre `max_norm` > 0 and finite, and the inner optimiser's preconditions (else `pnn::error`).
  void validate() const {
    if (!(max_norm > 0.0f && std::isfinite(max_norm))) detail::parameter_error("optim::clipped", "max_norm must be positive and finite");
    if constexpr (requires { inner.validate(); }) inner.validate();
  }

  /// Rescales `g` to norm ≤ `max_norm` (a non-finite norm is left for the rule's finiteness check
  /// to report), then applies the inner optimiser.
  template <class Net>
  void apply(gradients<Net>& g, state<Net>& s, const Net& net) const {
    using T = typename Net::value_type;
    double sq = 0;
    auto add = [&](const auto& t) {
      for (std::size_t k = 0; k < t.size(); ++k) sq += double(t.data()[k]) * double(t.data()[k]);
    };
    for (std::size_t i = 0; i < Net::num_layers; ++i) {
      if (!g[i].parameter_space) add(g[i].weight);
      add(g[i].bias);
      add(g[i].parameter);
    }
    s.last_norm = std::sqrt(sq);
    if (std::isfinite(s.last_norm) && s.last_norm > double(max_norm)) {
      const T f = static_cast<T>(double(max_norm) / s.last_norm);
      for (std::size_t i = 0; i < Net::num_layers; ++i) g[i].scale(f);
      ++s.clipped_steps;
    }
    inner.apply(g, s.inner, net);
  }
};

/// \brief Mixed-precision transfer around an optimiser (Nandakumar et al. 2020; aihwkit's
/// `MixedPrecisionCompound`): the shaped update is accumulated in a digital matrix χ per layer
/// and only whole device steps leave it, `n = trunc(χ/Δw_min)` per element, `χ ← χ − n·Δw_min`.
///
/// Batch noise then cancels in χ instead of in the devices, which saturating (soft-bounds)
/// devices need to train well. The step `Δw_min` is the tile's `tile_hooks::update_granularity`
/// (a pulsed crossbar's `dw_min`); a layer without one (digital, continuous devices) and an
/// update in a tile's own parameters pass through unchanged. The crossbar then fires exactly
/// `|n|` pulses per device (its dense-update path). How updates are accumulated is a learning
/// decision, so it lives here and not in the device physics.
template <class Inner = sgd>
struct mixed_precision {
  static constexpr const char* name = "mixed_precision";
  Inner inner{};  ///< the optimiser whose update is accumulated

  template <class Net>
  struct state {
    typename Inner::template state<Net> inner{};
    std::array<std::vector<double>, Net::num_layers> chi{};  ///< χ per layer (Out × In)
    /// Checkpoint contents (pnn/core/state_format.hpp): the inner optimiser's state and χ.
    template <class V>
    void visit_state(V& v) {
      {
        auto g = v.scope("inner");
        inner.visit_state(v);
      }
      for (std::size_t i = 0; i < chi.size(); ++i) {
        auto g = v.scope("chi", i);
        v("values", chi[i]);
      }
    }
  };

  /// Never keeps factors: the transferred update is a whole-step matrix.
  [[nodiscard]] bool keeps_factors() const noexcept { return false; }

  /// \pre the inner optimiser's preconditions.
  void validate() const {
    if constexpr (requires { inner.validate(); }) inner.validate();
  }

  /// Shapes with the inner optimiser, then moves whole device steps out of χ into `g`.
  template <class Net>
  void apply(gradients<Net>& g, state<Net>& s, const Net& net) const {
    using T = typename Net::value_type;
    inner.apply(g, s.inner, net);
    net.for_each_layer([&](const auto& l, std::size_t i) {
      const double q = tile_hooks::update_granularity(l.tile);
      if (!(q > 0) || g[i].parameter_space) return;
      auto& chi = s.chi[i];
      const std::size_t n = g[i].weight.size();
      if (chi.size() != n) chi.assign(n, 0.0);
      T* w = g[i].weight.data();
      for (std::size_t e = 0; e < n; ++e) {
        const double c = chi[e] + double(w[e]);
        const double steps = std::trunc(c / q);
        chi[e] = c - steps * q;
        w[e] = static_cast<T>(steps * q);
      }
      g[i].factored = false;
    });
  }
};

}  // namespace pnn::optim

namespace pnn {
/// An optimiser: typed per-network state and `apply(estimate, state, net)`.
template <class O, class Net>
concept optimizer = requires(const O& o, gradients<Net>& g, typename O::template state<Net>& s, const Net& net) {
  o.apply(g, s, net);
};
}  // namespace pnn
