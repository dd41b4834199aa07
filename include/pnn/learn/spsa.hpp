// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::spsa`: simultaneous-perturbation stochastic approximation with optional
/// code-multiplexed directions, and its step-size gain `optim::spsa_gain` (Spall 1992, 1998;
/// docs/rules.md, "SPSA and code-multiplexed SPSA").
#pragma once

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
#include <pnn/learn/perturbation_common.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/random.hpp>
#include <bit>

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
    /// Checkpoint contents (pnn/core/state_format.hpp).
    template <class V>
    void visit_state(V& v) {
      v("step", step);
    }
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

/// How `spsa` applies its perturbations.
enum class spsa_perturbation {
  spsa,  ///< one Rademacher direction at a time, two passes each (Spall 1992)
  /// M directions at once under Walsh–Hadamard codes (code-multiplexed SPSA, which borrows
  /// McCaughan et al.'s multiplexing but is not their multiplexed gradient descent)
  code_multiplexed
};

/// \brief Simultaneous-perturbation stochastic approximation (Spall 1992):
/// `ĝ_i = [L(θ + c_kΔ) − L(θ − c_kΔ)]/(2 c_k Δ_i)`, `Δ` Rademacher, `c_k = c/(k+1)^γ`.
///
/// `k` counts the estimates made on the network. The step gain `a_k = a/(k+1+A)^0.602` is the
/// optimiser's: use `optim::spsa_gain`. With `perturbation = code_multiplexed` (after the code
/// multiplexing of McCaughan et al. 2023) M = `num_perturbations` directions `Δ^m` are applied
/// concurrently over T time slots (T the smallest power of two ≥ 2M): slot t carries `(c_k/√M) Σ_m H_mt Δ^m`, with
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
/// scheme (docs/rules.md, "SPSA and code-multiplexed SPSA", says how they differ).
template <class Optimizer = optim::sgd>
class spsa : public rule_skeleton<spsa<Optimizer>> {
  friend class rule_skeleton<spsa>;

 public:
  static constexpr const char* name = "spsa";
  using optimizer_type = Optimizer;
  /// Per-network state: the traces, flat parameter vectors and buffers of the passes, the
  /// estimate and the optimiser's state.
  template <class Net>
  using state = perturb_detail::state<Net, Optimizer>;

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

  // Every `estimate`/`step` (learn::rule_skeleton) advances `k`.

 private:
  template <class Net>
  void validate(const Net&) const {
    check_params();
  }

  void check_params() const {
    PNN_EXPECTS(params_.c > 0 && std::isfinite(params_.c), "learn::spsa: c must be > 0");
    PNN_EXPECTS(params_.gamma >= 0 && std::isfinite(params_.gamma), "learn::spsa: gamma must be >= 0");
    PNN_EXPECTS(params_.num_perturbations >= 1, "learn::spsa: num_perturbations must be at least 1");
  }

  template <class Net, class Loss, class S>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  S& s, rule_pass) {
    static_assert(perturb_detail::accessible_layers<Net>(),
                  "learn::spsa needs tiles whose parameters can be written (weight_data() or "
                  "get_parameters/set_parameters)");
    rng g0 = g.split(1);
    const step_result r = perturb_detail::clean_pass(net, b, loss, s.tr, g0, name);
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
};

static_assert(optimizer<optim::spsa_gain, network<dense<2, 2, physics::basic_digital<double>>>>);

}  // namespace pnn::learn
