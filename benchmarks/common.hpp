// SPDX-License-Identifier: MIT
// Shared fixtures of the rule benchmarks: the 784-256-10 MLP of the issues, Fashion-MNIST (or
// random data of the same shape when the data set is not installed), and one-epoch / one-step
// drivers so every rule is measured the same way.
#pragma once

#include <benchmark/benchmark.h>

#include <pnn/pnn.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xview.hpp>

namespace bench {

using mlp_t = pnn::network<pnn::dense<pnn::dynamic, pnn::dynamic, pnn::physics::digital, pnn::noise::none, pnn::act::tanh>,
                           pnn::dense<pnn::dynamic, pnn::dynamic, pnn::physics::digital, pnn::noise::none, pnn::act::identity>>;

inline mlp_t make_mlp(std::uint64_t s = 42) { return mlp_t({784, 256, 10}, pnn::seed{s}); }

/// Fashion-MNIST's training set, or 60000 random samples of the same shape.
inline const pnn::data::dataset& train_set() {
  static const pnn::data::dataset d = [] {
    try {
      return pnn::data::fashion_mnist().train;
    } catch (const pnn::error&) {
      pnn::data::dataset r;
      pnn::rng g(1);
      r.inputs.resize({60000, 784});
      pnn::fill_uniform(g, r.inputs.data(), r.inputs.size());
      r.targets = xt::zeros<float>({60000, 10});
      for (std::size_t i = 0; i < 60000; ++i) r.targets(i, i % 10) = 1;
      r.name = "random";
      return r;
    }
  }();
  return d;
}

/// A fixed batch of 64 samples and their targets.
struct batch64 {
  xt::xtensor<float, 2> x, t;
  batch64() {
    const auto& d = train_set();
    x = xt::view(d.inputs, xt::range(0, 64), xt::all());
    t = xt::view(d.targets, xt::range(0, 64), xt::all());
  }
};

/// One training epoch over the whole training set with `rule`; reports samples/s.
template <class Net, class Rule, class Loss = pnn::loss::softmax_cross_entropy>
void train_epoch(benchmark::State& state, Net net, Rule rule, Loss loss = {}) {
  const auto& d = train_set();
  for (auto _ : state) {
    auto h = pnn::train(net, rule, loss, d, {.epochs = 1, .batch = 64, .seed = 1, .progress = pnn::progress_mode::never});
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(d.size()));
}

/// One `step` on a batch of 64; reports samples/s.
template <class Net, class Rule, class Loss = pnn::loss::softmax_cross_entropy>
void train_step(benchmark::State& state, Net net, Rule rule, Loss loss = {}) {
  batch64 b;
  pnn::rng g(3);
  std::uint64_t k = 0;
  for (auto _ : state) {
    pnn::rng gk = g.split(k++);
    auto r = rule.step(net, b.x, b.t, loss, gk);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
}

}  // namespace bench
