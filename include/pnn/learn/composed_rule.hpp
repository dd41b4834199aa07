// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::composed_rule<Core, Optimizer>`: the rule skeleton — check the batch, estimate,
/// shape with the optimiser, reject a non-finite update, program — around a user's estimator.
///
/// A new learning rule is its estimator only (`Core`, docs/guide.md, "Writing a learning rule"):
/// `core.estimate(net, batch, loss, rng, out)` fills `out` (arriving shaped like the network and
/// zeroed) and returns the batch's `step_result`. Everything else every rule does is here, once:
/// the batch is checked (shape, finiteness) before anything runs, the per-network state (the
/// estimate and the optimiser's state) is typed, and `step` ends in the
/// optimiser → finiteness check → `pnn::program` sequence of `learn::rule_skeleton`, the base of
/// every shipped rule, so updates in a tile's own parameter space and factored updates reach
/// the substrate as they do there.
#pragma once

#include <concepts>
#include <utility>

#include <xtensor/xtensor.hpp>

#include <pnn/core/rng.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/nn/gradients.hpp>

namespace pnn {

/// What a rule's estimator provides for network `Net` and loss `Loss`: a `name` and
/// `estimate(net, batch, loss, rng, out) -> step_result`, which must not change `net`.
template <class Core, class Net, class Loss>
concept rule_core = requires(Core& c, const Net& net, const checked_batch<typename Net::value_type>& b, const Loss& loss,
                             rng& g, gradients<Net>& out) {
  { Core::name } -> std::convertible_to<const char*>;
  { c.estimate(net, b, loss, g, out) } -> std::convertible_to<step_result>;
};

namespace learn {

/// \brief A learning rule made of an estimator `Core` and an optimiser: `step` = check batch →
/// `core.estimate` → `optimizer.apply` → finiteness check → `pnn::program`.
/// \tparam Core an estimator (`pnn::rule_core`); its parameters live in the core object
/// \tparam Optimizer `optim::sgd` (default), `optim::momentum`, `optim::adam`, …
template <class Core, class Optimizer = optim::sgd>
class composed_rule : public rule_skeleton<composed_rule<Core, Optimizer>> {
  friend class rule_skeleton<composed_rule>;

 public:
  static constexpr const char* name = Core::name;
  /// An estimator written for dense layers only says so (`static constexpr bool
  /// runs_on_convolutions = false`); training a network with a `pnn::conv2d` is then one
  /// readable compile error instead of a failure deep inside the estimator.
  static constexpr bool runs_on_convolutions = [] {
    if constexpr (requires { Core::runs_on_convolutions; }) return bool(Core::runs_on_convolutions);
    else return true;
  }();
  using core_type = Core;
  using optimizer_type = Optimizer;

  /// The estimator and the optimiser.
  struct params {
    Optimizer optimizer{};
    Core core{};
  };

  /// Typed per-network state: the estimate and the optimiser's state. A driver that owns it
  /// (`make_state`, then the `estimate`/`step` overloads taking it) keeps several networks apart.
  template <class Net>
  struct state {
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    /// Checkpoint contents (pnn/core/state_format.hpp): the optimiser's state.
    template <class V>
    void visit_state(V& vis) {
      auto g = vis.scope("optimizer");
      opt.visit_state(vis);
    }
  };

  composed_rule() = default;
  explicit composed_rule(params p) : params_(std::move(p)) {}
  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

 private:
  template <class Net, class Loss>
  step_result run(Net& net, const checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s, rule_pass) {
    static_assert(rule_core<Core, Net, Loss>,
                  "composed_rule: Core needs `static constexpr const char* name` and "
                  "`step_result estimate(const Net&, const checked_batch<T>&, const Loss&, rng&, gradients<Net>&)`");
    s.grad.reshape(net);
    const Net& view = net;
    return params_.core.estimate(view, b, loss, g, s.grad);
  }

  params params_{};
};

}  // namespace learn
}  // namespace pnn
