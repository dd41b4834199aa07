// SPDX-License-Identifier: MIT
// A complete new learning rule, written as a user would from docs/guide.md ("Writing a learning
// rule"): reservoir-style readout training. The physical layers below the output keep the weights
// they were built with; only the output layer learns, by the delta rule on its own inputs. The
// estimator is all a rule author writes; `learn::composed_rule` adds the batch checks, the
// optimiser and the programming. tests/rule.cpp trains a network with it.
#pragma once

#include <cstddef>
#include <vector>

#include <pnn/learn/composed_rule.hpp>

namespace user {

struct readout_estimator {
  static constexpr const char* name = "readout";
  template <class Net, class Loss>
  pnn::step_result estimate(const Net& net, const pnn::checked_batch<typename Net::value_type>& b, const Loss& loss,
                            pnn::rng& g, pnn::gradients<Net>& out) {
    using T = typename Net::value_type;
    constexpr std::size_t top = Net::num_layers - 1;
    const std::size_t k = net.output_size();
    pnn::trace<Net> tr;
    pnn::forward_trace(net, b.x, b.n, tr, g);  // one pass through the physics, noise included
    std::vector<T> dy(b.n * k);
    const double l = loss.gradient(tr.output().data(), b.target, b.n, k, dy.data());
    const auto& out_layer = pnn::layer<top>(net);
    for (std::size_t q = 0; q < dy.size(); ++q)  // δ = ∂L/∂y ⊙ f′(a)
      dy[q] *= out_layer.activation.derivative(tr.a[top].data()[q], tr.h[top].data()[q]);
    pnn::outer_product_update(out_layer, tr.input_of(top), dy.data(), b.n, T(1), out[top]);
    return {l, pnn::count_correct(tr.output().data(), b.target, b.n, k), b.n};
  }
};

template <class Optimizer = pnn::optim::sgd>
using readout = pnn::learn::composed_rule<readout_estimator, Optimizer>;

}  // namespace user
