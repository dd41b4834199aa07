// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::direct_feedback_alignment` (Nøkland 2016): every hidden layer learns from the
/// output error through its own fixed random matrix.
///
/// `e = δ_L = ∂L/∂a_L` (the output layer learns as in backprop), `δ_l = (B_l e) ⊙ f′(a_l)` with
/// `B_l` fixed random `n_l × n_out`, `ĝ_W = δ_l h_{l−1}ᵀ`, `ĝ_b = δ_l`. No error travels
/// through the layers, so the hidden layers' projections are independent (on hardware: one
/// optical random projection of `e`). Scaling, seeding and the feedback policy as in
/// `learn::feedback_alignment` (std of `B_l`'s entries `gain·√(2/(n_l + n_out))`).
/// docs/rules.md, "Feedback alignment".
#pragma once

#include <pnn/learn/feedback_alignment.hpp>

namespace pnn::learn {

/// Direct feedback alignment (Nøkland, NeurIPS 2016) with optimiser `Optimizer` and feedback
/// policy `Feedback` (`feedback::digital`: exact GEMM; `feedback::substrate<S, N>`: the
/// projection read from a physical tile with its noise). Only random feedback is meaningful
/// (`.feedback = feedback_kind::sign_symmetry` is rejected). With one hidden layer and
/// `B_0 = W_1ᵀ` it is exactly backprop.
///
/// ```cpp
/// learn::direct_feedback_alignment<optim::momentum> rule{{.optimizer = {.learning_rate = 0.01f}}};
/// ```
template <class Optimizer = optim::sgd, class Feedback = feedback::digital>
class direct_feedback_alignment : public detail::feedback_rule<Optimizer, Feedback, true> {
  using base = detail::feedback_rule<Optimizer, Feedback, true>;

 public:
  using params = typename base::params;
  using base::base;
};

}  // namespace pnn::learn
