// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::coupled_learning`: contrast a free state with one whose outputs are clamped a
/// little towards the target (Stern et al., PRX 2021), on resistor networks and on layered
/// energy networks.
///
/// Free state with the inputs imposed; clamped state with the outputs held at
/// `V_O^C = V_O^F + η (V* − V_O^F)`; local update `Δθ = −(α/η)[∂E/∂θ(s^C) − ∂E/∂θ(s^F)]`
/// (docs/rules.md). `estimate` returns `ĝ = (1/η)[∂E/∂θ(s^C) − ∂E/∂θ(s^F)]` (batch mean), which
/// `step` subtracts scaled by the learning rate α.
/// * On a network of one resistor-network layer (`physics::resistor_substrate`, identity
///   activation, no noise policy; `E` = dissipated power `½Σk(ΔV)²`): the clamp is set in node
///   voltages, `V_O^C = V_O^F − η n ∂C/∂y / G` (for the MSE `V_O^F + η (V* − V_O^F)` with
///   `V* = y*/G`), and the estimate is Stern et al.'s, in conductance space:
///   `ĝ_e = (1/η) mean_n [(ΔV_e^C)² − (ΔV_e^F)²]` — twice the general formula above, since
///   `∂E/∂k_e = ½(ΔV_e)²` (the 2 sits in the learning rate). It goes through the optimiser like every estimate (momentum, Adam,
///   schedules act per resistor); conductances stop at `k_min`.
/// * On a layered `energy_network` whose output layer is `act::hard_sigmoid` (the energy model
///   of `equilibrium_propagation`): the free phase relaxes T steps, then the output state is held
///   at `s_out + η (y − s_out)` (for a general loss `s_out − η ∂C/∂s_out` per sample, clipped to
///   [0, 1]) while the hidden layers relax K steps; `ĝ_{W_l} = −(1/η)[s_l^C s_{l−1}^Cᵀ −
///   s_l^F s_{l−1}^Fᵀ]`, the same contrastive outer products as one-sided EP, with the optimiser.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/energy_model.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/nn/loss.hpp>
#include <pnn/physics/resistor_substrate.hpp>

namespace pnn::learn {

/// Coupled learning with optimiser `Optimizer` (see the file comment).
template <class Optimizer = optim::sgd>
class coupled_learning : public rule_skeleton<coupled_learning<Optimizer>> {
  friend class rule_skeleton<coupled_learning>;
  using skeleton = rule_skeleton<coupled_learning>;

 public:
  static constexpr bool factored_updates = true;
  static constexpr const char* name = "coupled_learning";
  /// Rows of the update's factors per sample (the nudged layers stack two phases): what a
  /// data-parallel step's factored exchange weighs against the dense update.
  static constexpr std::size_t factor_rows_per_sample = 2;
  /// Also on convolutional energy networks (`conv2d` layers of hard-sigmoid states; see
  /// `energy_model.hpp`).
  static constexpr bool runs_on_convolutions = true;

  /// Estimator parameters and the optimiser.
  struct params {
    Optimizer optimizer{};
    double eta = 0.2;               ///< clamping factor η ∈ (0, 1]
    std::size_t free_steps = 30;    ///< T (layered networks)
    std::size_t nudged_steps = 10;  ///< K: steps of the clamped phase (layered networks)
    double epsilon = 0.5;           ///< step of the gradient dynamics (> 0)
    double tolerance = 0;           ///< each sample stops a phase once its residual is below it
    ep_dynamics dynamics = ep_dynamics::fixed_point;
    ep_update_order update_order = ep_update_order::synchronous;  ///< layered networks (see energy_model.hpp)
    bool persistent = false;  ///< start the free phase from the last free state (same batch size)
    /// Measure each phase's state as its mean over its last `average_steps` steps (layered
    /// networks on noisy substrates; 1: the final state). ≤ both phases' steps.
    std::size_t average_steps = 1;
  };

  coupled_learning() = default;
  /// \pre `eta` ∈ (0, 1], `free_steps`, `nudged_steps` ≥ 1, `epsilon` > 0, `tolerance` ≥ 0,
  ///      `average_steps` in [1, min(free_steps, nudged_steps)].
  explicit coupled_learning(params p) : params_(std::move(p)) { check(params_); }

  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }
  /// Residuals, energies and steps of the last layered estimate (`nudged_*`: the clamped phase).
  [[nodiscard]] const relaxation_report& last_report() const noexcept { return report_; }

  // ---- layered energy networks ---------------------------------------------------------------

  /// The coupled-learning estimate and step on a layered energy network or a resistor-network
  /// layer (`x`: n × inputs, `target`: n × outputs): `learn::rule_skeleton`'s, with or without
  /// a caller-owned state.
  using skeleton::estimate;
  using skeleton::step;

  /// True for a network of one layer whose tile is a resistor network (trained natively).
  template <class Net>
  static consteval bool on_resistor_network() {
    if constexpr (Net::num_layers == 1) return physics::resistor_tile<typename Net::template layer_type<0>::tile_type>;
    else return false;
  }

  /// Per-network state (layered networks): the relaxation engine, both phases' states, the
  /// estimate and the optimiser's state.
  template <class Net>
  struct state {
    using T = typename Net::value_type;
    struct no_engine {};
    std::conditional_t<on_resistor_network<Net>(), no_engine, energy_detail::energy_relaxation<Net>> engine{};
    std::array<xt::xtensor<T, 2>, Net::num_layers> free{}, clamped{}, free_mean{}, clamped_mean{};
    xt::xtensor<T, 2> delta0{}, cat_delta{}, dy{};
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    bool have_free = false;
    /// Checkpoint contents: the optimiser's state and the persistent free phase.
    template <class V>
    void visit_state(V& vis) {
      energy_detail::visit_rule_state(*this, vis);
    }
  };

 private:
  template <class Net>
  void validate(const Net&) const {
    if constexpr (on_resistor_network<Net>()) {
      using L = typename Net::template layer_type<0>;
      static_assert(std::is_same_v<typename L::activation_type, act::identity>,
                    "coupled_learning on a resistor network: the layer's outputs are node voltages (act::identity)");
      static_assert(std::is_same_v<typename L::noise_type, noise::none>,
                    "coupled_learning on a resistor network measures node voltages directly: no noise policy");
    } else {
      require_layered<Net>();
    }
    check(params_);
  }

  template <class Net>
  static constexpr void require_layered() {
    energy_detail::require_energy_network<Net>();
    static_assert(energy_detail::ep_traits<Net>::output_is_state,
                  "coupled_learning clamps the output state: the last layer must be act::hard_sigmoid");
  }

  static void check(const params& p) {
    if (!(p.eta > 0 && p.eta <= 1)) throw_error("coupled_learning: eta must be in (0, 1]");
    energy_detail::check_relaxation_params(name, p.free_steps, p.nudged_steps, p.epsilon, p.tolerance);
    if (p.average_steps == 0 || p.average_steps > std::min(p.free_steps, p.nudged_steps))
      throw_error("coupled_learning: average_steps must be between 1 and the steps of each phase, got " +
                  std::to_string(p.average_steps));
  }

  // Stern et al.'s rule on the layer's resistor network, in conductance space (file comment).
  template <class Net, class Loss>
  step_result run_resistor(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss,
                           state<Net>& s) {
    using T = typename Net::value_type;
    const auto& l = layer<0>(net);
    const physics::resistor_network& rn = l.tile.network();
    const double gain = l.tile.parameters().output_gain;
    const std::size_t n = b.n, in = rn.num_inputs(), k = rn.num_outputs(), nodes = rn.num_nodes();
    std::vector<double> vs(n * in), vf(n * nodes), vc(n * nodes), vo(n * k);
    for (std::size_t i = 0; i < n * in; ++i) vs[i] = double(b.x[i]);
    rn.free_state(vs.data(), n, vf.data());
    rn.outputs(vf.data(), n, vo.data());
    pnn::detail::resize_if_needed(s.free[0], n, k);
    pnn::detail::resize_if_needed(s.dy, n, k);
    T* y = s.free[0].data();
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t o = 0; o < k; ++o) y[r * k + o] = static_cast<T>(gain * vo[r * k + o]);
    step_result res;
    res.loss = double(loss.gradient(y, b.target, n, k, s.dy.data()));
    res.correct = k > 1 ? pnn::detail::count_correct<T>(y, b.target, n, k) : 0;
    res.count = n;
    // Clamp: one step of size η·n down the per-sample cost gradient, in output volts.
    const double step_out = params_.eta * double(n) / gain;
    for (std::size_t i = 0; i < n * k; ++i) vo[i] -= step_out * double(s.dy.data()[i]);
    rn.clamped_state(vs.data(), vo.data(), n, vc.data());
    s.grad.reshape(net);  // the weight-space part stays zero: the estimate is in conductances
    auto& g = s.grad[0];
    const auto& es = rn.edges();
    const double scale = 1.0 / (params_.eta * double(n));
    for (std::size_t e = 0; e < es.size(); ++e) {
      double acc = 0;
      for (std::size_t r = 0; r < n; ++r) {
        const double* f = vf.data() + r * nodes;
        const double* c = vc.data() + r * nodes;
        const double df = f[es[e].from] - f[es[e].to], dc = c[es[e].from] - c[es[e].to];
        acc += dc * dc - df * df;
      }
      g.parameter.data()[e] = static_cast<T>(scale * acc);
    }
    g.parameter_space = true;
    return res;
  }

  template <class Net, class Loss>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s, rule_pass) {
    if constexpr (on_resistor_network<Net>()) {
      return run_resistor(net, b, loss, s);
    } else {
      return run_layered(net, b, loss, g, s);
    }
  }

  template <class Net, class Loss>
  step_result run_layered(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss,
                          rng& g, state<Net>& s) {
    using T = typename Net::value_type;
    constexpr std::size_t S = energy_detail::ep_traits<Net>::num_states;
    const std::size_t n = b.n, k = net.output_size();
    energy_detail::relax_options o{.steps = params_.free_steps,
                                   .epsilon = params_.dynamics == ep_dynamics::fixed_point ? 1.0 : params_.epsilon,
                                   .fixed_point = params_.dynamics == ep_dynamics::fixed_point,
                                   .alternating = params_.update_order == ep_update_order::alternating,
                                   .tolerance = params_.tolerance,
                                   .average = params_.average_steps};
    const bool averaged = params_.average_steps > 1;
    relaxation_report rep;
    s.engine.begin_batch(net, b.x, n, g);
    if (!(params_.persistent && s.have_free && s.free[0].shape()[0] == n)) s.engine.zero_states(net, s.free, n);
    s.have_free = false;
    rng gf = g.split(1);
    auto fo = s.engine.relax(net, s.free, {0.0}, energy_detail::nudge_kind::none, o, loss, b.target, gf, name, "free",
                             averaged ? &s.free_mean : nullptr);
    const auto& free_state = averaged ? s.free_mean : s.free;
    rep.free_steps = fo.steps;
    rep.free_residual = fo.residual;
    rep.free_energy = fo.energy;

    const T* y = free_state[S - 1].data();
    pnn::detail::resize_if_needed(s.dy, n, k);
    step_result r;
    r.loss = double(loss.gradient(y, b.target, n, k, s.dy.data()));
    r.correct = pnn::detail::count_correct<T>(y, b.target, n, k);
    r.count = n;

    // Rows [0, n): the clamped phase (from the final free state); rows [n, 2n): the free
    // phase's measured state.
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i >= S) return;
      const std::size_t w = l.out_size();
      pnn::detail::resize_if_needed(s.clamped[i], 2 * n, w);
      std::copy(s.free[i].data(), s.free[i].data() + n * w, s.clamped[i].data());
      std::copy(free_state[i].data(), free_state[i].data() + n * w, s.clamped[i].data() + n * w);
      if (averaged) {
        pnn::detail::resize_if_needed(s.clamped_mean[i], 2 * n, w);
        std::copy(free_state[i].data(), free_state[i].data() + n * w, s.clamped_mean[i].data() + n * w);
      }
    });
    // The clamp is set from the measured free output.
    const T step_out = static_cast<T>(params_.eta * double(n));  // per-sample ∂C/∂s from the batch mean
    T* out = s.clamped[S - 1].data();
    for (std::size_t i = 0; i < n * k; ++i)
      out[i] = std::min(std::max(y[i] - step_out * s.dy.data()[i], T(0)), T(1));
    if constexpr (S > 1) {
      o.steps = params_.nudged_steps;
      rng gc = g.split(4);
      auto co = s.engine.relax(net, s.clamped, {0.0}, energy_detail::nudge_kind::clamp, o, loss, b.target, gc, name,
                               "clamped", averaged ? &s.clamped_mean : nullptr);
      rep.nudged_steps = co.steps;
      rep.nudged_residual = co.residual;
      rep.nudged_energy = co.energy;
    }
    s.grad.ensure_shape(net);
    const T scale = static_cast<T>(-1.0 / (params_.eta * double(n)));
    if constexpr (S == 1) {
      // No hidden layer relaxes: the clamped output is the clamped phase's measured state.
      if (averaged) std::copy(out, out + n * k, s.clamped_mean[0].data());
    }
    rng gu = g.split(5);
    energy_detail::contrast_update(net, s.engine, averaged ? s.clamped_mean : s.clamped, s.delta0, s.cat_delta, s.grad,
                                   b.x, n, scale, gu);
    report_ = std::move(rep);
    s.have_free = true;
    return r;
  }

  params params_{};
  relaxation_report report_{};
};

}  // namespace pnn::learn
