// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::backprop`: error back-propagation run on the network as it physically runs.
///
/// `δ_L = ∂L/∂a_L`, `δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l)`, `ĝ_W = δ_l h_{l−1}ᵀ`, `ĝ_b = δ_l`
/// (Rumelhart et al. 1986; docs/rules.md). The forward pass, the transposed reads `Wᵀ δ` and the
/// programming all go through each layer's substrate and noise: on `physics::digital` this is
/// exact backprop, on a crossbar it is aihwkit's "analog SGD". Batch gradients are averaged.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <pnn/learn/backward.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>

namespace pnn::learn {

/// Back-propagation of errors with optimiser `Optimizer`.
template <class Optimizer = optim::sgd>
class backprop : public rule_skeleton<backprop<Optimizer>> {
  friend class rule_skeleton<backprop>;

 public:
  static constexpr const char* name = "backprop";
  static constexpr bool factored_updates = true;
  /// The inputs of the updates are the checked batch and the forward trace, which nothing
  /// changes before the step has programmed them: a digital layer's update reads them in place.
  static constexpr bool lends_layer_inputs = true;
  /// Rule parameters: backprop has none besides its optimiser.
  struct params {
    Optimizer optimizer{};
  };

  /// Per-network state: the forward trace, the estimate, the optimiser's state, scratch.
  template <class Net>
  struct state {
    trace<Net> tr{};
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    xt::xtensor<typename Net::value_type, 2> dy{}, delta{}, next{};
    /// Checkpoint contents (pnn/core/state_format.hpp): the optimiser's state.
    template <class V>
    void visit_state(V& vis) {
      auto g = vis.scope("optimizer");
      opt.visit_state(vis);
    }
  };

  backprop() = default;
  explicit backprop(params p) : params_(std::move(p)) {}

  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// Back-propagates an output error `dy = ∂L/∂h_L` through a recorded trace into `grad`.
  /// Public so that rules built on backprop (physics-aware training, local losses) reuse it.
  template <class Net>
  static void backward(const Net& net, const trace<Net>& tr, const typename Net::value_type* dy,
                       gradients<Net>& grad, rng& g) {
    using T = typename Net::value_type;
    xt::xtensor<T, 2> up({tr.batch, net.output_size()});
    std::copy(dy, dy + up.size(), up.data());
    xt::xtensor<T, 2> delta, next;
    grad.ensure_shape(net);
    transposed_backward(net, tr, up, delta, next, grad, g);
  }

 private:
  template <class Net, class Loss>
  step_result run(Net& net, const checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s, rule_pass) {
    using T = typename Net::value_type;
    rng gf = g.split(1);
    forward_trace(net, b.x, b.n, s.tr, gf);
    detail::require_finite_forward(s.tr, name);
    const std::size_t k = net.output_size();
    detail::resize_if_needed(s.dy, b.n, k);
    step_result r;
    r.loss = double(loss.gradient(s.tr.output().data(), b.target, b.n, k, s.dy.data()));
    r.correct = detail::count_correct<T>(s.tr.output().data(), b.target, b.n, k);
    r.count = b.n;
    s.grad.ensure_shape(net);
    rng gb = g.split(2);
    transposed_backward(net, s.tr, s.dy, s.delta, s.next, s.grad, gb);
    return r;
  }

  // The chain rule with each layer's error carried down by its substrate's transposed read.
  template <class Net>
  static void transposed_backward(const Net& net, const trace<Net>& tr, xt::xtensor<typename Net::value_type, 2>& up,
                                  xt::xtensor<typename Net::value_type, 2>& delta,
                                  xt::xtensor<typename Net::value_type, 2>& next, gradients<Net>& grad, rng& g) {
    chain_rule_backward(net, tr, up, delta, next, grad, [&](auto ic, const auto& l, const auto* d, std::size_t n, auto* down) {
      constexpr std::size_t i = decltype(ic)::value;
      using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
      static_assert(transposable_tile<tile_t>,
                    "learn::backprop needs every layer above the first to be read transposed (W^T delta); "
                    "use learn::physics_aware for substrates without a transposed read");
      rng gl = g.split(i);
      l.backward_read_at(tr.input_of(i), d, n, down, gl);
    });
  }

  params params_{};
};

}  // namespace pnn::learn
