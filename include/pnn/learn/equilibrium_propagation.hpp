// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::equilibrium_propagation`: the layered network read as an energy model, trained
/// by contrasting a free and a nudged relaxation (Scellier & Bengio 2017; Laborieux et al. 2021).
///
/// The network is read as the energy model of `energy_model.hpp` (hard-sigmoid states, input
/// clamped, `F = E + β C`), relaxed through each layer's substrate reads and noise: a free phase
/// (β = 0) of at most T steps, then nudged phases of at most K steps from the free state. With
/// an identity readout, the readout's own gradient is exact, `∂C/∂W_L` at the free state (the
/// free equilibrium does not depend on the readout, so this is `dL/dW_L`).
///
/// Update (`ĝ` estimates the gradient of the loss; the optimiser's step subtracts `η ĝ`):
/// `ĝ_{W_l} = −(1/β)[ρ(s_l^β) ρ(s_{l−1}^β)ᵀ − ρ(s_l^0) ρ(s_{l−1}^0)ᵀ]` (one-sided, bias O(β)),
/// centered `ĝ = −(1/2β)[… (+β) − … (−β)]` (bias O(β²)), averaged over the batch. Both nudged
/// phases of the centered estimator relax as one batch of 2n rows; the first layer's update is
/// one outer product of the state difference with the clamped input, the others one outer
/// product of the concatenated 2n-row batch, and both are kept in factored form (for crossbars'
/// pulse trains; on the digital substrate with `optim::sgd`, `step` programs them as GEMMs into
/// `W` without forming the dense update).
///
/// Neuron noise (`state_noise`: Gaussian on every drive at every step, as in Laborieux & Zenke
/// 2022; not with the holomorphic estimator, whose complex phases have no noise model) makes the final state of a phase a single noisy sample, and the update a difference of
/// two such samples divided by β: with small β the noise dominates and training random-walks.
/// `average_steps` measures each phase's state as its mean over the last steps (each neuron
/// integrating its own state, as in the reference implementation's 5-step average), which
/// divides that variance by about the number of steps; the centered estimator's larger `2β`
/// divides it further.
///
/// Holomorphic EP (Laborieux & Zenke 2022) uses N complex nudges `β_k = |β| e^{2πik/N}` and
/// `ĝ = (1/(N|β|)) Re Σ_k e^{−2πik/N} ∂E/∂θ(s_{β_k})`, the Cauchy-integral derivative, bias
/// O(β^N). There is no real N-point formula identical to it for N > 2, so it relaxes complex
/// states: the affine drive is continued as is, and the hard sigmoid by its active branch
/// (identity where the real part is inside (0, 1), the constant 0 or 1 outside), which is the
/// analytic continuation of the real equilibrium `s(β)` as long as no unit changes between
/// clipped and linear on the circle `|β_k| = |β|`. The nudges of N = 2 are `±β` with zero
/// imaginary parts, so N = 2 reproduces the centered estimate. Needs `loss::mse` (a cost with a
/// holomorphic gradient).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/energy_model.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/nn/loss.hpp>
#include <pnn/nn/network.hpp>

namespace pnn::learn {

/// How EP turns the two (or more) relaxations into an update estimate.
enum class ep_estimator {
  one_sided,    ///< free phase and one nudged phase at +β; bias O(β)
  random_sign,  ///< one-sided with the sign of β drawn per batch; bias O(β) averages out
  centered,     ///< nudged phases at +β and −β; bias O(β²)
  holomorphic   ///< N complex nudges β e^{2πik/N}; bias O(β^N), N = 2 equals centered
};

/// Loss and accuracy at the free equilibrium (`equilibrium_propagation::evaluate`).
struct equilibrium_metrics {
  double loss = 0;
  double accuracy = 0;
};

/// Equilibrium propagation with optimiser `Optimizer` (see the file comment for the model).
/// \tparam Optimizer `optim::sgd` (default; `layer_learning_rates` and `lr_schedule` give the
///         usual per-layer rates with cosine decay), `optim::momentum`, `optim::adam`.
template <class Optimizer = optim::sgd>
class equilibrium_propagation : public rule_skeleton<equilibrium_propagation<Optimizer>> {
  friend class rule_skeleton<equilibrium_propagation>;

 public:
  static constexpr const char* name = "equilibrium_propagation";
  /// Also on convolutional energy networks (`conv2d` layers of hard-sigmoid states, pooled
  /// before the nonlinearity; see `energy_model.hpp`), as Laborieux et al. 2021 train them.
  static constexpr bool runs_on_convolutions = true;
  static constexpr bool factored_updates = true;
  /// Rows of the update's factors per sample (the nudged layers stack two phases): what a
  /// data-parallel step's factored exchange weighs against the dense update.
  static constexpr std::size_t factor_rows_per_sample = 2;

  /// Estimator parameters (defaults: the prototypical setting of Laborieux et al. 2021 on an
  /// MLP, β 0.2, T 30, K 10, centered) and the optimiser.
  struct params {
    Optimizer optimizer{};
    double beta = 0.2;                 ///< nudging strength β (≠ 0); hEP: the radius |β|
    std::size_t free_steps = 30;       ///< T: most steps of the free phase
    std::size_t nudged_steps = 10;     ///< K: most steps of each nudged phase
    double epsilon = 0.5;              ///< step ε of the gradient dynamics (> 0)
    /// Each sample stops a phase once its residual is below it (0: run all steps; the holomorphic
    /// estimator's complex relaxation stops on the batch's residual).
    double tolerance = 0;
    ep_estimator estimator = ep_estimator::centered;
    std::size_t holomorphic_points = 4;  ///< N of the holomorphic estimator (≥ 2)
    ep_dynamics dynamics = ep_dynamics::fixed_point;
    /// Synchronous (the prototypical form) or alternating even/odd layer updates; alternating
    /// reaches in T steps what synchronous reaches in 2T (see `energy_model.hpp`).
    ep_update_order update_order = ep_update_order::synchronous;
    bool persistent = false;     ///< start the free phase from the last free state (same batch size) instead of 0
    double state_noise = 0;      ///< sd of Gaussian neuron noise added to every drive at every step
    /// Measure each phase's state as its mean over the last `average_steps` steps (1: the final
    /// state); used for the update, the loss and the prediction. ≤ the phase's steps.
    std::size_t average_steps = 1;
    bool record_energy = false;  ///< record `F` after every step in `last_report()` (costs a read per layer)
  };

  /// Per-network state: the relaxation engine, the phases' states, the estimate, the
  /// optimiser's state (and the last free state, for `persistent`).
  template <class Net>
  struct state {
    using T = typename Net::value_type;
    energy_detail::energy_relaxation<Net> engine{};
    std::array<xt::xtensor<T, 2>, Net::num_layers> free{}, nudged{}, imag{};
    std::array<xt::xtensor<T, 2>, Net::num_layers> free_mean{}, nudged_mean{};  // average_steps > 1
    xt::xtensor<T, 2> delta0{}, cat_in{}, cat_delta{}, dy{};
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    bool have_free = false;
    /// Checkpoint contents: the optimiser's state and the persistent free phase.
    template <class V>
    void visit_state(V& vis) {
      energy_detail::visit_rule_state(*this, vis);
    }
  };

  /// Default parameters.
  equilibrium_propagation() = default;
  /// \pre `p.beta` finite and non-zero, `free_steps`, `nudged_steps` ≥ 1, `epsilon` > 0,
  ///      `tolerance` ≥ 0, `holomorphic_points` ≥ 2, `state_noise` ≥ 0, `average_steps` in
  ///      [1, min(T, K)], not above 1 for the holomorphic estimator (else `pnn::error`).
  explicit equilibrium_propagation(params p) : params_(std::move(p)) { check(params_); }

  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }
  /// Residuals, energies and steps of the last estimate's relaxations.
  [[nodiscard]] const relaxation_report& last_report() const noexcept { return report_; }

  /// The network's prediction at the free equilibrium (T steps from 0, or to tolerance): the
  /// output state, or the readout. This is how an EP network computes; `pnn::forward` is its
  /// feed-forward pass (no feedback), which differs.
  template <class Net, class X>
  xt::xtensor<typename Net::value_type, 2> predict(const Net& net, const xt::xexpression<X>& x, rng& g) {
    energy_detail::require_energy_network<Net>();
    check(params_);
    using T = typename Net::value_type;
    auto& s = this->template kept_state<Net>();
    auto xb = pnn::detail::as_batch<T>(x, net.input_size(), "equilibrium_propagation::predict: x");
    const std::size_t n = xb.shape()[0];
    s.engine.begin_batch(net, xb.data(), n, g);
    std::array<xt::xtensor<T, 2>, Net::num_layers> st{}, mean{};
    s.engine.zero_states(net, st, n);
    rng gf = g.split(1);
    const bool averaged = params_.average_steps > 1;
    s.engine.relax(net, st, {0.0}, energy_detail::nudge_kind::none, free_options(), loss::mse{},
                   static_cast<const T*>(nullptr), gf, name, "free", averaged ? &mean : nullptr);
    xt::xtensor<T, 2> y;
    s.engine.output(net, averaged ? mean : st, y, g);
    return y;
  }

  /// Loss and accuracy of `net` on a data set at the free equilibrium, in batches of `batch`.
  /// `Set` is a `data::dataset` (float `inputs` and `targets`, row per sample).
  template <class Net, class Loss, class Set>
  equilibrium_metrics evaluate(const Net& net, const Loss& loss, const Set& set, rng& g, std::size_t batch = 1000) {
    using T = typename Net::value_type;
    PNN_EXPECTS(batch > 0, "equilibrium_propagation::evaluate: batch must be positive");
    equilibrium_metrics e;
    const std::size_t count_all = set.inputs.shape()[0], in = net.input_size(), k = net.output_size();
    if (count_all == 0) return e;
    if (set.inputs.shape()[1] != in || set.targets.shape()[1] != k)
      throw_error("equilibrium_propagation::evaluate: the data set does not match the network's extents");
    double total = 0;
    std::size_t correct = 0;
    xt::xtensor<T, 2> xb, tb;
    for (std::size_t first = 0, c = 0; first < count_all; first += batch, ++c) {
      const std::size_t count = std::min(batch, count_all - first);
      xb.resize({count, in});
      tb.resize({count, k});
      std::copy(set.inputs.data() + first * in, set.inputs.data() + (first + count) * in, xb.data());
      std::copy(set.targets.data() + first * k, set.targets.data() + (first + count) * k, tb.data());
      rng gb = g.split(c);
      auto y = predict(net, xb, gb);
      total += double(loss.value(y.data(), tb.data(), count, k)) * double(count);
      correct += pnn::detail::count_correct<T>(y.data(), tb.data(), count, k);
    }
    e.loss = total / double(count_all);
    e.accuracy = double(correct) / double(count_all);
    return e;
  }

 private:
  template <class Net>
  void validate(const Net&) const {
    energy_detail::require_energy_network<Net>();
    check(params_);
  }

  static void check(const params& p) {
    if (!(p.beta != 0) || !std::isfinite(p.beta))
      throw_error("equilibrium_propagation: beta must be finite and non-zero (β = 0 gives no learning signal)");
    energy_detail::check_relaxation_params(name, p.free_steps, p.nudged_steps, p.epsilon, p.tolerance);
    if (p.estimator == ep_estimator::holomorphic && p.holomorphic_points < 2)
      throw_error("equilibrium_propagation: holomorphic_points (N) must be at least 2");
    if (!(p.state_noise >= 0) || !std::isfinite(p.state_noise))
      throw_error("equilibrium_propagation: state_noise must be finite and non-negative");
    if (p.average_steps == 0 || p.average_steps > std::min(p.free_steps, p.nudged_steps))
      throw_error("equilibrium_propagation: average_steps must be between 1 and the steps of each phase, got " +
                  std::to_string(p.average_steps));
    // Neuron noise is a real perturbation of a real relaxation; the holomorphic estimator's
    // phases are complex, and a noisy free phase feeding noiseless complex ones would mix two
    // different dynamics into one estimate.
    if (p.estimator == ep_estimator::holomorphic && p.state_noise > 0)
      throw_error("equilibrium_propagation: the holomorphic estimator takes no state_noise (its complex relaxation "
                  "has no noise model); use the centered or random_sign estimator for noisy neurons");
    if (p.estimator == ep_estimator::holomorphic && (p.average_steps > 1 || p.update_order != ep_update_order::synchronous))
      throw_error("equilibrium_propagation: the holomorphic estimator relaxes synchronously and measures final states "
                  "(average_steps 1, update_order synchronous)");
  }

  [[nodiscard]] energy_detail::relax_options free_options() const {
    return {.steps = params_.free_steps,
            .epsilon = params_.dynamics == ep_dynamics::fixed_point ? 1.0 : params_.epsilon,
            .fixed_point = params_.dynamics == ep_dynamics::fixed_point,
            .alternating = params_.update_order == ep_update_order::alternating,
            .tolerance = params_.tolerance,
            .state_noise = params_.state_noise,
            .average = params_.average_steps,
            .record = params_.record_energy};
  }
  [[nodiscard]] energy_detail::relax_options nudged_options() const {
    auto o = free_options();
    o.steps = params_.nudged_steps;
    return o;
  }

  template <class Net, class Loss>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s, rule_pass) {
    using T = typename Net::value_type;
    using tr = energy_detail::ep_traits<Net>;
    constexpr std::size_t S = tr::num_states;
    constexpr std::size_t L = Net::num_layers;
    const std::size_t n = b.n, k = net.output_size();
    const bool holo = params_.estimator == ep_estimator::holomorphic;
    if (holo && !std::is_same_v<Loss, loss::mse>)
      throw_error("equilibrium_propagation: the holomorphic estimator needs loss::mse (a cost whose gradient "
                  "continues to complex states)");
    if (holo && tr::has_convolution)
      throw_error("equilibrium_propagation: the holomorphic estimator does not run on convolutional energy networks "
                  "(a max-pooled drive has no complex continuation); use the centered estimator");
    relaxation_report rep;
    s.engine.begin_batch(net, b.x, n, g);

    // Free phase.
    if (!(params_.persistent && s.have_free && s.free[0].shape()[0] == n)) s.engine.zero_states(net, s.free, n);
    s.have_free = false;
    rng gfree = g.split(1);
    const bool averaged = params_.average_steps > 1;
    auto fo = s.engine.relax(net, s.free, {0.0}, energy_detail::nudge_kind::none, free_options(), loss, b.target, gfree,
                             name, "free", averaged ? &s.free_mean : nullptr);
    // What the free phase measured: its final state, or the mean over its last steps.
    const auto& free_state = averaged ? s.free_mean : s.free;
    rep.free_steps = fo.steps;
    rep.free_residual = fo.residual;
    rep.free_energy = fo.energy;
    rep.free_energy_trace = std::move(fo.trace);

    // Loss, accuracy and (readout) the exact readout gradient at the free equilibrium.
    step_result r;
    const T* y = nullptr;
    if constexpr (!tr::output_is_state) {
      rng gy = g.split(2);
      s.engine.readout_forward(layer<L - 1>(net), free_state[S - 1].data(), n, gy);
      y = s.engine.readout_values().data();
    } else {
      y = free_state[S - 1].data();
    }
    pnn::detail::resize_if_needed(s.dy, n, k);
    r.loss = double(loss.gradient(y, b.target, n, k, s.dy.data()));
    r.correct = pnn::detail::count_correct<T>(y, b.target, n, k);
    r.count = n;
    s.grad.ensure_shape(net);
    if constexpr (!tr::output_is_state) {
      const auto& lr = layer<L - 1>(net);
      pnn::detail::outer_product_update(lr, free_state[S - 1].data(), s.dy.data(), n, lr.in_size(), lr.out_size(), T(1),
                                        s.grad[L - 1]);
    }

    if (holo) {
      run_holomorphic(net, b, g, s, rep);
    } else {
      // Nudged phase(s), from the free fixed point, as one batch of `halves · n` rows.
      double beta = params_.beta;
      if (params_.estimator == ep_estimator::random_sign) {
        rng gsgn = g.split(3);
        if (gsgn.uniform_double() < 0.5) beta = -beta;
      }
      const bool centered = params_.estimator == ep_estimator::centered;
      const std::vector<double> betas = centered ? std::vector<double>{beta, -beta} : std::vector<double>{beta};
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i >= S) return;
        const std::size_t w = l.out_size();
        // Rows [0, n): the +β phase; rows [n, 2n): the −β phase (centered) or the free state
        // (one-sided: the engine relaxes only the first `betas.size() · n` rows).
        pnn::detail::resize_if_needed(s.nudged[i], 2 * n, w);
        std::copy(s.free[i].data(), s.free[i].data() + n * w, s.nudged[i].data());
        std::copy(s.free[i].data(), s.free[i].data() + n * w, s.nudged[i].data() + n * w);
        if (averaged) pnn::detail::resize_if_needed(s.nudged_mean[i], 2 * n, w);
      });
      rng gn = g.split(4);
      auto no = s.engine.relax(net, s.nudged, betas, energy_detail::nudge_kind::cost, nudged_options(), loss, b.target, gn,
                               name, "nudged", averaged ? &s.nudged_mean : nullptr);
      rep.nudged_steps = no.steps;
      rep.nudged_residual = no.residual;
      rep.nudged_energy = no.energy;
      rep.nudged_energy_trace = std::move(no.trace);
      if (averaged && !centered) {
        // One-sided: the bottom rows are the free phase's measured state.
        net.for_each_layer([&](const auto& l, std::size_t i) {
          if (i >= S) return;
          const std::size_t w = l.out_size();
          std::copy(s.free_mean[i].data(), s.free_mean[i].data() + n * w, s.nudged_mean[i].data() + n * w);
        });
      }
      const T scale = static_cast<T>(-1.0 / ((centered ? 2.0 : 1.0) * beta * double(n)));
      rng gc = g.split(5);
      energy_detail::contrast_update(net, s.engine, averaged ? s.nudged_mean : s.nudged, s.delta0, s.cat_delta, s.grad,
                                     b.x, n, scale, gc);
    }
    report_ = std::move(rep);
    s.have_free = true;
    return r;
  }

  // Holomorphic EP: N complex nudged phases from the free state, relaxed as one batch of N·n
  // complex rows (real and imaginary parts read separately through the real substrate).
  template <class Net>
  void run_holomorphic(const Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, rng& g, state<Net>& s,
                       relaxation_report& rep) {
    using T = typename Net::value_type;
    constexpr std::size_t S = energy_detail::ep_traits<Net>::num_states;
    const std::size_t n = b.n, N = params_.holomorphic_points;
    const double radius = std::abs(params_.beta);
    // cos/sin of 2πk/N, exact on quarter turns so that N = 2 and N = 4 nudge along the axes.
    std::vector<double> cs(N), sn(N), br(N), bi(N);
    for (std::size_t k = 0; k < N; ++k) {
      if ((4 * k) % N == 0) {
        const std::size_t q = (4 * k) / N;
        const double c4[4] = {1, 0, -1, 0}, s4[4] = {0, 1, 0, -1};
        cs[k] = c4[q % 4];
        sn[k] = s4[q % 4];
      } else {
        const double phi = 2 * std::numbers::pi * double(k) / double(N);
        cs[k] = std::cos(phi);
        sn[k] = std::sin(phi);
      }
      br[k] = radius * cs[k];
      bi[k] = radius * sn[k];
    }
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i >= S) return;
      const std::size_t w = l.out_size();
      pnn::detail::resize_if_needed(s.nudged[i], N * n, w);
      pnn::detail::resize_if_needed(s.imag[i], N * n, w);
      for (std::size_t k = 0; k < N; ++k) std::copy(s.free[i].data(), s.free[i].data() + n * w, s.nudged[i].data() + k * n * w);
      s.imag[i].fill(T(0));
    });
    energy_detail::relax_outcome no;
    rng gn = g.split(4);
    s.engine.relax_complex(net, s.nudged, s.imag, br, bi, nudged_options(), b.target, gn, name, no);
    rep.nudged_steps = no.steps;
    rep.nudged_residual = no.residual;
    rep.nudged_energy = 0;  // F of complex states is not reported
    // ĝ = −(1/(N r n)) Re Σ_k c̄_k z_l z_{l−1}ᵀ with c̄_k = e^{−2πik/N}:
    // Re(c̄ z_l z_{l−1}ᵀ) = Re(c̄ z_l) Re(z_{l−1})ᵀ − Im(c̄ z_l) Im(z_{l−1})ᵀ.
    const T scale = static_cast<T>(-1.0 / (double(N) * radius * double(n)));
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i >= S) return;
      const std::size_t w = l.out_size();
      const std::size_t rows = N * n;
      pnn::detail::resize_if_needed(s.cat_delta, 2 * rows, w);
      for (std::size_t r = 0; r < rows; ++r) {
        const T c = static_cast<T>(cs[r / n]), sk = static_cast<T>(sn[r / n]);
        for (std::size_t j = 0; j < w; ++j) {
          const T zr = s.nudged[i](r, j), zi = s.imag[i](r, j);
          s.cat_delta(r, j) = c * zr + sk * zi;           // Re(c̄ z)
          s.cat_delta(rows + r, j) = -(c * zi - sk * zr);  // −Im(c̄ z)
        }
      }
      if (i == 0) {
        pnn::detail::resize_if_needed(s.delta0, n, w);
        s.delta0.fill(T(0));
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t j = 0; j < w; ++j) s.delta0(r % n, j) += s.cat_delta(r, j);
        pnn::detail::outer_product_update(l, b.x, s.delta0.data(), n, l.in_size(), w, scale, s.grad[i]);
      } else {
        const std::size_t in = l.in_size();
        pnn::detail::resize_if_needed(s.cat_in, 2 * rows, in);
        std::copy(s.nudged[i - 1].data(), s.nudged[i - 1].data() + rows * in, s.cat_in.data());
        std::copy(s.imag[i - 1].data(), s.imag[i - 1].data() + rows * in, s.cat_in.data() + rows * in);
        pnn::detail::outer_product_update(l, s.cat_in.data(), s.cat_delta.data(), 2 * rows, in, w, scale, s.grad[i]);
      }
    });
  }

  params params_{};
  relaxation_report report_{};
};

}  // namespace pnn::learn
