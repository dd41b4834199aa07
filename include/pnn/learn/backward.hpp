// SPDX-License-Identifier: MIT
/// \file
/// \brief The one backward walk of the layered rules: from the output down, each layer turns
/// the error reaching its output into its update and the error reaching its input.
///
/// Backprop, feedback alignment, direct feedback alignment and physics-aware training differ
/// only in how a layer's error is carried to the layer below — the substrate's transposed read
/// `Wᵀδ` (backprop), a fixed feedback projection `Bδ` (FA; DFA projects the output error
/// instead), or a twin's vector–Jacobian product (PAT) — so the walk is written once and the
/// carrying is a policy (docs/rules.md).
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include <xtensor/xtensor.hpp>

#include <pnn/learn/rule.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>

namespace pnn {

namespace detail {

template <class Net, class Vjp, std::size_t L>
void backward_walk(const Net& net, std::size_t n, xt::xtensor<typename Net::value_type, 2>& up,
                   xt::xtensor<typename Net::value_type, 2>& down, gradients<Net>& grad, Vjp& vjp,
                   std::integral_constant<std::size_t, L>) {
  if constexpr (L > 0) {
    constexpr std::size_t i = L - 1;
    using T = typename Net::value_type;
    T* d = nullptr;
    if constexpr (i > 0) {
      resize_if_needed(down, n, layer<i>(net).in_size());
      d = down.data();
    }
    vjp(std::integral_constant<std::size_t, i>{}, static_cast<const T*>(up.data()), grad[i], d);
    if constexpr (i > 0) {
      std::swap(up, down);
      backward_walk(net, n, up, down, grad, vjp, std::integral_constant<std::size_t, i>{});
    }
  }
}

}  // namespace detail

/// \brief Walks the layers of `net` from the output down with a per-layer vector–Jacobian
/// product `vjp(std::integral_constant<size_t, i>, const T* up, layer_gradient<T>& g, T* down)`.
///
/// `up` (n × Out_i) is `∂L/∂h_i` as the rule estimates it; `vjp` writes layer i's update into
/// `g` and, when `down` is not null (i > 0), the error reaching the layer below (n × In_i).
/// `up` holds the output error on entry and is used as scratch; `down` is scratch; `grad` is
/// shaped like `net` (`ensure_shape`).
template <class Net, class Vjp>
void backward_walk(const Net& net, std::size_t n, xt::xtensor<typename Net::value_type, 2>& up,
                   xt::xtensor<typename Net::value_type, 2>& down, gradients<Net>& grad, Vjp&& vjp) {
  detail::backward_walk(net, n, up, down, grad, vjp, std::integral_constant<std::size_t, Net::num_layers>{});
}

/// \brief The chain rule through a recorded forward pass: layer i's `δ_i = up ⊙ f′(a_i, h_i)`
/// (at the measured activations), update `ĝ_W = δ_iᵀ x_i`, `ĝ_b = Σ δ_i`, and the error below
/// `carry(std::integral_constant<size_t, i>, layer, const T* δ_i, n, T* down)` for i > 0.
/// For a `conv2d`, `δ_i` is at every position before pooling (`detail::layer_delta`) and the
/// update sums over patches (`detail::layer_update`).
///
/// `carry` is what distinguishes the rules: `layer.backward_read_at(x_i, δ, n, down, g)`
/// (backprop), a feedback projection (FA, DFA). `up` holds `∂L/∂h_L` on entry; `delta` and
/// `down` are scratch.
template <class Net, class Carry>
void chain_rule_backward(const Net& net, const trace<Net>& tr, xt::xtensor<typename Net::value_type, 2>& up,
                         xt::xtensor<typename Net::value_type, 2>& delta,
                         xt::xtensor<typename Net::value_type, 2>& down, gradients<Net>& grad, Carry&& carry) {
  using T = typename Net::value_type;
  const std::size_t n = tr.batch;
  backward_walk(net, n, up, down, grad, [&](auto ic, const T* u, layer_gradient<T>& g, T* d) {
    constexpr std::size_t i = decltype(ic)::value;
    const auto& l = layer<i>(net);
    T* dl = detail::factor_delta_buffer(l, n, g);
    if (dl == nullptr) {
      detail::resize_if_needed(delta, n, detail::pre_activation_size(l));
      dl = delta.data();
    }
    detail::layer_delta(l, u, tr.a[i].data(), tr.h[i].data(), n, dl);
    detail::layer_update(l, tr.input_of(i), static_cast<const T*>(dl), n, T(1), g);
    if constexpr (i > 0) carry(ic, l, static_cast<const T*>(dl), n, d);
  });
}

}  // namespace pnn
