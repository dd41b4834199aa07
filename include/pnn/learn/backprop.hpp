// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::backprop`: error back-propagation run on the network as it physically runs.
///
/// `δ_L = ∂L/∂a_L`, `δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l)`, `ĝ_W = δ_l h_{l−1}ᵀ`, `ĝ_b = δ_l`
/// (Rumelhart et al. 1986; docs/rules.md). The forward pass, the transposed reads `Wᵀ δ` and the
/// programming all go through each layer's substrate and noise: on `physics::digital` this is
/// exact backprop, on a crossbar it is aihwkit's "analog SGD". Batch gradients are averaged.
#pragma once

#include <any>
#include <cstddef>

#include <pnn/learn/optim.hpp>
#include <pnn/learn/rule.hpp>

namespace pnn::learn {

/// Back-propagation of errors with optimiser `Optimizer`.
template <class Optimizer = optim::sgd>
class backprop {
 public:
  static constexpr const char* name = "backprop";
  /// Rule parameters: backprop has none besides its optimiser.
  struct params {
    Optimizer optimizer{};
  };

  backprop() = default;
  explicit backprop(params p) : params_(std::move(p)) {}

  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// The backprop estimate `ĝ` of `loss` on the batch (`x`: n × inputs, `target`: n × outputs).
  template <class Net, class X, class Y, class Loss>
  gradients<Net> estimate(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                          const Loss& loss, rng& g) {
    auto& s = detail::cached<state<Net>>(cache_);
    auto b = detail::check_batch(net, x, target, name);
    detail::defer_dense_updates(s.grad, net, params_.optimizer, false);
    run(net, b, loss, g, s);
    return s.grad;
  }

  /// Estimate, shape with the optimiser, program the substrates. Returns the batch's loss.
  template <class Net, class X, class Y, class Loss>
  step_result step(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target, const Loss& loss,
                   rng& g) {
    auto& s = detail::cached<state<Net>>(cache_);
    auto b = detail::check_batch(net, x, target, name);
    detail::defer_dense_updates(s.grad, net, params_.optimizer, true);
    step_result r = run(net, b, loss, g, s);
    detail::finish_step(net, s.grad, params_.optimizer, s.opt, g, name);
    return r;
  }

  /// Back-propagates an output error `dy = ∂L/∂h_L` through a recorded trace into `grad`.
  /// Public so that rules built on backprop (physics-aware training, local losses) reuse it.
  template <class Net>
  static void backward(const Net& net, const trace<Net>& tr, const typename Net::value_type* dy,
                       gradients<Net>& grad, rng& g) {
    using T = typename Net::value_type;
    const std::size_t n = tr.batch;
    xt::xtensor<T, 2> up({n, net.output_size()});
    std::copy(dy, dy + up.size(), up.data());
    xt::xtensor<T, 2> delta, next;
    backward_impl(net, tr, up, delta, next, grad, g, std::integral_constant<std::size_t, Net::num_layers>{});
  }

 private:
  template <class Net>
  struct state {
    trace<Net> tr{};
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    xt::xtensor<typename Net::value_type, 2> dy{}, delta{}, next{};
  };

  template <class Net, class Loss>
  step_result run(Net& net, const detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s) {
    using T = typename Net::value_type;
    rng gf = g.split(1);
    forward_trace(net, b.x, b.n, s.tr, gf);
    const std::size_t k = net.output_size();
    detail::resize_if_needed(s.dy, b.n, k);
    step_result r;
    r.loss = double(loss.gradient(s.tr.output().data(), b.target, b.n, k, s.dy.data()));
    r.correct = detail::count_correct<T>(s.tr.output().data(), b.target, b.n, k);
    r.count = b.n;
    s.grad.ensure_shape(net);
    rng gb = g.split(2);
    backward_impl(net, s.tr, s.dy, s.delta, s.next, s.grad, gb, std::integral_constant<std::size_t, Net::num_layers>{});
    return r;
  }

  // Walks the layers from the output down; `up` holds ∂L/∂h_{l+1} on entry to layer l.
  template <class Net, std::size_t L>
  static void backward_impl(const Net& net, const trace<Net>& tr, xt::xtensor<typename Net::value_type, 2>& up,
                            xt::xtensor<typename Net::value_type, 2>& delta,
                            xt::xtensor<typename Net::value_type, 2>& next, gradients<Net>& grad, rng& g,
                            std::integral_constant<std::size_t, L>) {
    if constexpr (L > 0) {
      constexpr std::size_t i = L - 1;
      using T = typename Net::value_type;
      const auto& l = layer<i>(net);
      const std::size_t n = tr.batch;
      detail::resize_if_needed(delta, n, l.out_size());
      detail::times_derivative(l, up.data(), tr.a[i].data(), tr.h[i].data(), delta.size(), delta.data());
      detail::outer_product_update(l, tr.input_of(i), delta.data(), n, l.in_size(), l.out_size(), T(1), grad[i]);
      if constexpr (i > 0) {
        using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
        static_assert(transposable_tile<tile_t>,
                      "learn::backprop needs every layer above the first to be read transposed (W^T delta); "
                      "use learn::physics_aware for substrates without a transposed read");
        detail::resize_if_needed(next, n, l.in_size());
        rng gl = g.split(i);
        l.backward_read_at(tr.input_of(i), delta.data(), n, next.data(), gl);
        std::swap(up, next);
        backward_impl(net, tr, up, delta, next, grad, g, std::integral_constant<std::size_t, i>{});
      }
    }
  }

  params params_{};
  std::any cache_{};
};

}  // namespace pnn::learn
