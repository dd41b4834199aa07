// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::rule_skeleton<Rule>`: what every learning rule's `estimate` and `step` do
/// around its estimator — validate, check the batch, estimate, shape with the optimiser, reject
/// a non-finite update, program — written once.
///
/// Every shipped rule and `learn::composed_rule` derive from it (CRTP): a rule writes its
/// parameters, its typed per-network state and `run` (the estimator); the skeleton supplies the
/// public `estimate`/`step`, both with a caller-owned state (`make_state`) and with the state the
/// rule keeps per network type for callers that do not own one (docs/architecture.md,
/// "Estimate, step, program").
#pragma once

#include <any>
#include <array>
#include <cstddef>
#include <concepts>
#include <type_traits>

#include <xtensor/xtensor.hpp>

#include <pnn/core/rng.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/nn/gradients.hpp>

namespace pnn {

/// Which call a rule's estimator serves: `estimate` (the update is returned, nothing is
/// programmed) or `step` (the update is programmed; a rule may skip work only `estimate`'s
/// caller needs, or do work only `step` reports, e.g. forward-forward's accuracy pass).
enum class rule_pass { estimate, step };

namespace detail {
// Looked up only once `Net` is known: the skeleton is the base of an incomplete `Rule`.
template <class Rule, class Net>
struct rule_state {
  using type = typename Rule::template state<Net>;
};

template <class>
inline constexpr bool always_false_v = false;

/// True unless `Net` has a convolution and `Rule` says it does not run on one
/// (`static constexpr bool runs_on_convolutions = false`). Checked before the rule's state for
/// `Net` is instantiated, so the compile error is one sentence.
template <class Rule, class Net>
constexpr bool rule_runs_on_impl() {
  if constexpr (requires { Rule::runs_on_convolutions; }) return dense_only<Net> || Rule::runs_on_convolutions;
  else return true;
}
template <class Rule, class Net>
inline constexpr bool rule_runs_on = rule_runs_on_impl<Rule, Net>();
}  // namespace detail

// The one sentence every entry point of a rule gives when `rule_runs_on` is false (a macro:
// static_assert takes only a literal). Undefined at the end of this header.
#define PNN_DETAIL_CONV_UNSUPPORTED                                                                      \
  "this learning rule does not run on convolutional layers (pnn::conv2d) yet; on convolutions use "     \
  "backprop, feedback_alignment (also sign symmetry), direct_feedback_alignment, physics_aware, "       \
  "in_silico, weight_perturbation, node_perturbation, forward_gradient, spsa, forward_forward, "         \
  "equilibrium_propagation or coupled_learning"

namespace learn {

/// \brief The skeleton of a learning rule `Rule` (CRTP base).
///
/// `Rule` provides
/// * `static constexpr const char* name` and `parameters()` whose `.optimizer` shapes updates;
/// * `template <class Net> struct state` (public) with members `gradients<Net> grad` and
///   `typename Optimizer::template state<Net> opt`, plus whatever buffers its estimator keeps;
/// * `step_result run(Net&, const checked_batch<T>&, const Loss&, rng&, state<Net>&, rule_pass)`:
///   the estimator — fills `state.grad` (shaped like the network) and reports the batch's loss
///   and accuracy, measured before any update; it may perturb `net` but must restore it;
/// * optionally `validate(const Net&) const` (parameter checks, static requirements on `Net`),
///   called before anything else, and `static constexpr bool factored_updates = true` when its
///   updates come from `outer_product_update` (the skeleton then lets tiles that program outer
///   products skip the dense `ΔW` under `step`), and `static constexpr bool lends_layer_inputs
///   = true` when the inputs `h` it passes there stay unchanged until `run` returns and the
///   step has programmed the update (the checked batch's `x` and the forward trace: such tiles
///   then read `h` where it lies instead of a copy).
///
/// `estimate`/`step` take `pnn::network`s (a rule may add overloads for other models, as coupled
/// learning does for a resistor network). A bad parameter or batch throws before the state or the network change; a non-finite update
/// throws before the substrates are programmed.
template <class Rule>
class rule_skeleton {
 public:
  /// The typed per-network state of `Rule` for network `Net`.
  template <class Net>
  using state_type = typename detail::rule_state<Rule, Net>::type;

  /// A fresh state for `net`: pass it to the overloads below to keep several networks (or
  /// several runs on one network) apart, or to reset the optimiser. The rule's and the
  /// optimiser's `prepare_state` (where they have one) shape it for `net` first.
  template <class Net>
  [[nodiscard]] state_type<Net> make_state(const Net& net) const {
    static_assert(detail::rule_runs_on<Rule, Net>,
                  PNN_DETAIL_CONV_UNSUPPORTED);
    state_type<Net> s;
    s.grad.reshape(net);
    if constexpr (requires(const Rule& r) { r.prepare_state(net, s); }) self().prepare_state(net, s);
    if constexpr (requires(const Rule& r) { r.parameters().optimizer.prepare_state(net, s.opt); })
      self().parameters().optimizer.prepare_state(net, s.opt);
    return s;
  }

  /// The rule's update estimate on the batch (`x`: n × inputs, `target`: n × outputs); nothing
  /// is programmed. \pre `x`, `target` finite with matching rows, n ≥ 1 (else `pnn::error`).
  template <class Net, class X, class Y, class Loss>
    requires is_network_v<Net>
  gradients<Net> estimate(Net& net, state_type<Net>& s, const xt::xexpression<X>& x,
                          const xt::xexpression<Y>& target, const Loss& loss, rng& g) {
    if constexpr (!detail::rule_runs_on<Rule, Net>) {
      static_assert(detail::always_false_v<Net>,
                    PNN_DETAIL_CONV_UNSUPPORTED);
      return {};
    } else {
      run_checked(net, s, x, target, loss, g, rule_pass::estimate);
      return s.grad;
    }
  }

  /// `estimate`, except that each layer `i` with `factors_only[i]` whose update is a batch of
  /// outer products (`ĝ_W = s · δᵀh`: a rule with `factored_updates`, a dense layer) keeps only
  /// its factors `(h, δ, s)` and bias, and its dense `ĝ_W` is not formed: `deferred()` is true
  /// there. For transport between processes: n rows of factors are n·(In + Out) values, the
  /// dense update In·Out (pnn/train/data_parallel.hpp). Other layers, and every layer of a rule
  /// without `factored_updates`, are formed as by `estimate`.
  /// With `metrics` set, the batch's loss and accuracy before any update land there, as `step`
  /// returns them (a data-parallel step reports them without a second forward pass).
  /// \pre as `estimate`.
  template <class Net, class X, class Y, class Loss>
    requires is_network_v<Net>
  gradients<Net> estimate_factors(Net& net, state_type<Net>& s, const xt::xexpression<X>& x,
                                  const xt::xexpression<Y>& target, const Loss& loss, rng& g,
                                  const std::array<bool, Net::num_layers>& factors_only,
                                  step_result* metrics = nullptr) {
    if constexpr (!detail::rule_runs_on<Rule, Net>) {
      static_assert(detail::always_false_v<Net>,
                    PNN_DETAIL_CONV_UNSUPPORTED);
      return {};
    } else {
      return estimate_in_state(net, s, x, target, loss, g, factors_only, metrics);
    }
  }

  /// `estimate_factors` without the copy: the estimate is left in `s.grad`, valid until the
  /// state's next use (pnn/train/data_parallel.hpp reads it once per micro-shard).
  /// \pre as `estimate`.
  template <class Net, class X, class Y, class Loss>
    requires is_network_v<Net>
  const gradients<Net>& estimate_in_state(Net& net, state_type<Net>& s, const xt::xexpression<X>& x,
                                          const xt::xexpression<Y>& target, const Loss& loss, rng& g,
                                          const std::array<bool, Net::num_layers>& factors_only,
                                          step_result* metrics = nullptr) {
    static_assert(detail::rule_runs_on<Rule, Net>, PNN_DETAIL_CONV_UNSUPPORTED);
    const step_result r = run_checked(net, s, x, target, loss, g, rule_pass::estimate, &factors_only);
    if (metrics != nullptr) *metrics = r;
    return s.grad;
  }

  /// Estimate, shape with the rule's optimiser, check finiteness, program every layer's
  /// substrate (write noise from `g`). Returns the batch's loss and accuracy before the update.
  template <class Net, class X, class Y, class Loss>
    requires is_network_v<Net>
  step_result step(Net& net, state_type<Net>& s, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                   const Loss& loss, rng& g) {
    if constexpr (!detail::rule_runs_on<Rule, Net>) {
      static_assert(detail::always_false_v<Net>,
                    PNN_DETAIL_CONV_UNSUPPORTED);
      return {};
    } else {
      // Programmed inside `run_checked`, while the checked batch (which the update may borrow
      // from) still lives.
      return run_checked(net, s, x, target, loss, g, rule_pass::step, nullptr, [&] {
        detail::finish_step(net, s.grad, self().parameters().optimizer, s.opt, g, Rule::name);
      });
    }
  }

  /// `estimate` with the state the rule keeps for `Net` (created on first use; one per network
  /// type, shared by every network of that type the rule is used with).
  template <class Net, class X, class Y, class Loss>
    requires is_network_v<Net>
  gradients<Net> estimate(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                          const Loss& loss, rng& g) {
    if constexpr (!detail::rule_runs_on<Rule, Net>) {
      static_assert(detail::always_false_v<Net>,
                    PNN_DETAIL_CONV_UNSUPPORTED);
      return {};
    } else {
      return estimate(net, kept_state<Net>(), x, target, loss, g);
    }
  }
  /// `step` with the state the rule keeps for `Net`.
  template <class Net, class X, class Y, class Loss>
    requires is_network_v<Net>
  step_result step(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target, const Loss& loss,
                   rng& g) {
    if constexpr (!detail::rule_runs_on<Rule, Net>) {
      static_assert(detail::always_false_v<Net>,
                    PNN_DETAIL_CONV_UNSUPPORTED);
      return {};
    } else {
      return step(net, kept_state<Net>(), x, target, loss, g);
    }
  }

  /// The state the rule keeps for networks of `net`'s type (what `pnn::train` trains with):
  /// for a checkpoint, `pnn::io::save(net, rule.kept_state_for(net), path)`, and the matching
  /// `load` into a fresh rule's before resuming.
  template <class Net>
    requires is_network_v<Net>
  state_type<Net>& kept_state_for(const Net& net) {
    static_assert(detail::rule_runs_on<Rule, Net>,
                  PNN_DETAIL_CONV_UNSUPPORTED);
    auto& s = kept_state<Net>();
    if (s.grad[0].weight.size() == 0) s.grad.reshape(net);
    if constexpr (requires(const Rule& r) { r.prepare_state(net, s); }) self().prepare_state(net, s);
    if constexpr (requires(const Rule& r) { r.parameters().optimizer.prepare_state(net, s.opt); })
      self().parameters().optimizer.prepare_state(net, s.opt);
    return s;
  }

 protected:
  /// The state kept for `Net` by the overloads without a caller-owned state.
  template <class Net>
  state_type<Net>& kept_state() {
    return detail::cached<state_type<Net>>(kept_);
  }

 private:
  Rule& self() noexcept { return static_cast<Rule&>(*this); }
  const Rule& self() const noexcept { return static_cast<const Rule&>(*this); }

  // Checks the batch, runs the estimator, then `then()` (a step's programming) while the
  // checked batch lives; borrowed inputs end with it, also when either throws.
  template <class Net, class X, class Y, class Loss, class Then = void (*)()>
  step_result run_checked(Net& net, state_type<Net>& s, const xt::xexpression<X>& x,
                          const xt::xexpression<Y>& target, const Loss& loss, rng& g, rule_pass pass,
                          const std::array<bool, Net::num_layers>* factors_only = nullptr, Then then = [] {}) {
    Rule& r = self();
    if constexpr (requires(const Rule& cr) { cr.validate(net); }) static_cast<const Rule&>(r).validate(net);
    const auto b = detail::check_batch(net, x, target, Rule::name);
    if constexpr (requires { requires Rule::factored_updates; }) {
      constexpr bool lends = requires { requires Rule::lends_layer_inputs; };
      detail::defer_dense_updates(s.grad, net, r.parameters().optimizer, pass == rule_pass::step,
                                  lends && pass == rule_pass::step && factors_only == nullptr);
      // A convolution clears its flag again (its factors, the patches, outweigh its update).
      if (factors_only != nullptr)
        for (std::size_t i = 0; i < Net::num_layers; ++i) s.grad[i].defer = (*factors_only)[i];
    }
    struct borrow_end {
      decltype(s.grad)& grad;
      ~borrow_end() { detail::end_borrows(grad); }
    } const ends{s.grad};
    const step_result res = r.run(net, b, loss, g, s, pass);
    if constexpr (requires { requires Rule::lends_layer_inputs; }) detail::note_batch_bound(s.grad, b);
    then();
    return res;
  }

  // The convenience overloads' state, typed on first use (the rule is not templated on the
  // network); callers that own a `make_state` never touch it.
  std::any kept_{};
};

}  // namespace learn
}  // namespace pnn

#undef PNN_DETAIL_CONV_UNSUPPORTED
