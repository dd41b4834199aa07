// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::hybrid<Lower, Upper, Optimizer>`: one rule for the layers below a split, another
/// for the layers above — e.g. a model-free perturbative rule for the physical layers and backprop
/// for the digital readout that follows them.
///
/// Physical neural networks are rarely physical end to end: a camera or detector feeds a digital
/// layer whose derivative is known exactly. Training the whole network by perturbation wastes the
/// perturbations on the digital weights, and backprop would need a model of the physics below.
/// `hybrid` estimates with both rules on the same batch and keeps, per layer, the estimate of
/// the rule that owns it: layers `[0, split)` from `Lower`, layers `[split, L)` from `Upper`.
/// Each rule's own optimiser is ignored; the hybrid's optimiser shapes the combined update, and
/// the update is programmed as any rule's (updates in a tile's own parameter space included).
///
/// `Upper` must not need anything below the split that the physics cannot give: backprop's
/// estimate of the layers above the split uses only their inputs (the measured outputs of the
/// physics) and the digital layers' derivatives, so with `split` at the first digital layer no
/// derivative of the physics is taken. Both rules run their forward passes on the network: the
/// batch is read by each (a perturbative rule reads it several times more).
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/perturbation_common.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/nn/gradients.hpp>

namespace pnn::learn {

/// \brief Rule `Lower` for layers `[0, split)`, rule `Upper` for layers `[split, L)`, one optimiser.
/// \tparam Lower, Upper any rules (their optimisers are not used)
/// \tparam Optimizer shapes the combined update
template <class Lower, class Upper, class Optimizer = optim::sgd>
class hybrid : public rule_skeleton<hybrid<Lower, Upper, Optimizer>> {
  friend class rule_skeleton<hybrid>;

 public:
  static constexpr const char* name = "hybrid";
  using optimizer_type = Optimizer;

  /// The two rules, where the second takes over, and the optimiser.
  struct params {
    Lower lower{};
    Upper upper{};
    std::size_t split = 1;  ///< the first layer `upper` trains; 1 ≤ split < L
    Optimizer optimizer{};
  };

  /// The combined estimate, the optimiser's state and each rule's own state.
  template <class Net>
  struct state {
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    typename Lower::template state_type<Net> lower{};
    typename Upper::template state_type<Net> upper{};
    trace<Net> tr{};
    bool shaped = false;
    /// Checkpoint contents: the optimiser's state (the rules' states are per-step scratch).
    template <class V>
    void visit_state(V& vis) {
      auto g = vis.scope("optimizer");
      opt.visit_state(vis);
    }
  };

  hybrid() = default;
  explicit hybrid(params p) : params_(std::move(p)) {}
  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// \pre 1 ≤ split < the network's depth (else `pnn::error`).
  template <class Net>
  void validate(const Net&) const {
    if (params_.split < 1 || params_.split >= Net::num_layers)
      throw_error("learn::hybrid: split must be in [1, " + std::to_string(Net::num_layers) +
                  ") so that each rule trains at least one layer (got " + std::to_string(params_.split) + ")");
  }

 private:
  template <class Net, class Loss>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss,
                  rng& g, state<Net>& s, rule_pass) {
    using T = typename Net::value_type;
    if (!s.shaped) {
      s.lower = params_.lower.make_state(net);
      s.upper = params_.upper.make_state(net);
      s.shaped = true;
    }
    const auto x = xt::adapt(b.x, b.n * net.input_size(), xt::no_ownership(),
                             std::array<std::size_t, 2>{b.n, net.input_size()});
    const auto t = xt::adapt(b.target, b.n * net.output_size(), xt::no_ownership(),
                             std::array<std::size_t, 2>{b.n, net.output_size()});
    const xt::xtensor<T, 2> xb = x, tb = t;
    rng g0 = g.split(1), gl = g.split(0x10e7), gu = g.split(0x0bbe);
    // The batch's loss and accuracy, measured before any update.
    const step_result r = perturb_detail::clean_pass(net, b, loss, s.tr, g0, name);
    const gradients<Net>& lo = params_.lower.estimate(net, s.lower, xb, tb, loss, gl);
    const gradients<Net>& up = params_.upper.estimate(net, s.upper, xb, tb, loss, gu);
    s.grad.reshape(net);
    for (std::size_t i = 0; i < Net::num_layers; ++i) s.grad[i] = i < params_.split ? lo[i] : up[i];
    return r;
  }

  params params_{};
};

}  // namespace pnn::learn
