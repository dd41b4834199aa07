// SPDX-License-Identifier: MIT
/// \file
/// \brief In-silico training: train a digital twin, program its weights onto the physical
/// network, evaluate there (docs/rules.md, "Backprop and the in-silico workflow").
///
/// Fast, and blind to the sim-to-real gap: whatever the physical network does differently from
/// the twin (variation, noise, nonlinearity) shows up only at deployment. It is the baseline
/// that physics-aware training is judged against.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include <pnn/learn/rule.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/train/train.hpp>

namespace pnn {

/// Programs every layer of `twin` onto the same layer of `physical`: the physical tile receives
/// the twin's effective weights and bias as targets (`set_weights`) and realises them as its
/// physics allows (bounds, programming noise, variation). A physical tile without W (a diffractive
/// stack) receives the twin tile's parameters instead — its designed phases, which the physical
/// masks realise with their own quantisation, errors and misalignment.
/// \pre both networks have the same depth and layer shapes; where the physical tile has no W, the
///      twin's tile has parameters of the same count.
template <class Twin, class Physical>
void deploy(const Twin& twin, Physical& physical, rng& g) {
  static_assert(Twin::num_layers == Physical::num_layers, "pnn::deploy: twin and physical network differ in depth");
  using T = typename Physical::value_type;
  std::vector<typename Twin::value_type> w, b;
  std::vector<T> wt, bt;
  twin.for_each_layer([&](const auto& tl, std::size_t i) {
    physical.for_each_layer([&](auto& pl, std::size_t j) {
      if (i != j) return;
      const auto& tt = tl.tile;
      const auto& pt = pl.tile;
      if (tt.in_size() != pt.in_size() || tt.out_size() != pt.out_size())
        throw_error("pnn::deploy: layer " + std::to_string(i) + " has shape " + std::to_string(tt.out_size()) + "x" +
                    std::to_string(tt.in_size()) + " in the twin but " + std::to_string(pt.out_size()) + "x" +
                    std::to_string(pt.in_size()) + " on the physical network");
      // Every (twin layer, physical layer) pair is compiled, matched or not (the loops compare
      // indices at run time), so a pair that cannot be deployed is a run-time error.
      using pt_t = std::remove_cvref_t<decltype(pt)>;
      using tt_t = std::remove_cvref_t<decltype(tt)>;
      if constexpr (!deployable_tile<pt_t>) {
        if constexpr (parameterised_tile<tt_t>) {
          if (tt.parameter_count() != pt.parameter_count())
            throw_error("pnn::deploy: layer " + std::to_string(i) + " has " + std::to_string(tt.parameter_count()) +
                        " parameters in the twin but " + std::to_string(pt.parameter_count()) +
                        " on the physical network");
          std::vector<double> theta(tt.parameter_count());
          tt.get_parameters(theta.data());
          pl.tile.set_parameters(theta.data());
        } else {
          throw_error("pnn::deploy: layer " + std::to_string(i) +
                      " has no W on the physical network, and the twin's layer has no parameters of its own to copy");
        }
      } else if constexpr (!deployable_tile<tt_t>) {
        throw_error("pnn::deploy: layer " + std::to_string(i) + " of the twin has no W to program onto the physical "
                    "network");
      } else {
        w.resize(tt.in_size() * tt.out_size());
        tt.effective_weights(w.data());
        const auto* tb = tt.bias_data();
        wt.assign(w.begin(), w.end());
        bt.assign(tb, tb + tt.out_size());
        rng gl = g.split(i);
        pl.tile.set_weights(wt.data(), bt.data(), gl);
      }
    });
  });
}

/// Outcome of the in-silico workflow.
struct in_silico_result {
  history twin_history;         ///< the twin's training run
  evaluation twin{};            ///< the twin on the test set
  evaluation deployed{};        ///< the physical network after deployment, on the test set
};

/// Trains `twin` with `rule` on `train_set`, deploys it onto `physical`, and evaluates both on
/// `test_set` — pnn-bench's `in_silico`.
template <class Twin, class Physical, class Rule, class Loss>
in_silico_result in_silico(Twin& twin, Physical& physical, Rule& rule, const Loss& loss, const data::dataset& train_set,
                           const data::dataset& test_set, train_options opt = {}) {
  in_silico_result r;
  opt.test = &test_set;
  r.twin_history = train(twin, rule, loss, train_set, opt);
  r.twin = evaluate(twin, loss, test_set);
  rng g(opt.seed, 0xde9);
  deploy(twin, physical, g);
  r.deployed = evaluate(physical, loss, test_set);
  return r;
}

}  // namespace pnn
