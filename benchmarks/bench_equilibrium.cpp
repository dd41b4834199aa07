// SPDX-License-Identifier: MIT
// Equilibrium propagation's training throughput: one epoch of Fashion-MNIST (or random data of
// its shape) on the 784-256-10 hard-sigmoid energy network with the prototypical setting
// (β 0.2, T 30, K 10, synchronous, batch 50), centered and one-sided, the alternating update
// order that reaches the same states in T 15, K 5, and backprop's epoch on the tanh MLP with the
// same batch, so that the ratio EP / backprop comes from one run. The PyTorch baseline of the
// same EP is benchmarks/reference/ep_pytorch.py (run it on the same machine). The relaxation
// runs on whole batches through the substrate's reads; the input drive W₁x is read once per
// batch; with SGD on the digital substrate the updates are programmed as GEMMs into W.
#include "common.hpp"

#include <pnn/learn/equilibrium_propagation.hpp>

namespace {
using namespace pnn;

using ep_neuron = dense<dynamic, dynamic, physics::digital, noise::none, act::hard_sigmoid>;
using ep_net_t = network<ep_neuron, ep_neuron>;

constexpr std::size_t ep_batch = 50;

ep_net_t make_ep_net() {
  ep_net_t net({784, 256, 10}, seed{42});
  net.for_each_layer([](auto& l, std::size_t i) {  // small initial weights, as EP nets use
    rng g(11, i);
    const float limit = 1.0f / std::sqrt(float(l.in_size()));
    for (std::size_t k = 0; k < l.in_size() * l.out_size(); ++k) l.tile.weight_data()[k] = limit * (2 * g.uniform() - 1);
    for (std::size_t k = 0; k < l.out_size(); ++k) l.tile.bias_data()[k] = limit * (2 * g.uniform() - 1);
  });
  return net;
}

// One epoch with batch 50 (bench::train_epoch's driver uses 64).
template <class Net, class Rule, class Loss>
void epoch_50(benchmark::State& state, Net net, Rule rule, Loss loss) {
  const auto& d = bench::train_set();
  const auto mark = bench::work_mark();
  for (auto _ : state) {
    auto h = pnn::train(net, rule, loss, d,
                        {.epochs = 1, .batch = ep_batch, .seed = 1, .progress = pnn::progress_mode::never});
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(d.size()));
  bench::report_roofline(state, mark, double(state.iterations()) * double(d.size()));
}

learn::equilibrium_propagation<>::params ep_params(learn::ep_estimator e, bool alternating = false) {
  return {.optimizer = {.learning_rate = 0.1f, .layer_learning_rates = {0.2f, 0.1f}},
          .beta = 0.2,
          .free_steps = alternating ? 15U : 30U,
          .nudged_steps = alternating ? 5U : 10U,
          .estimator = e,
          .update_order = alternating ? learn::ep_update_order::alternating : learn::ep_update_order::synchronous};
}

void BM_train_epoch_ep(benchmark::State& state) {
  epoch_50(state, make_ep_net(), learn::equilibrium_propagation<>(ep_params(learn::ep_estimator::centered)),
           loss::mse{});
}
BENCHMARK(BM_train_epoch_ep)->Unit(benchmark::kSecond)->Iterations(1);

void BM_train_epoch_ep_one_sided(benchmark::State& state) {
  epoch_50(state, make_ep_net(), learn::equilibrium_propagation<>(ep_params(learn::ep_estimator::one_sided)),
           loss::mse{});
}
BENCHMARK(BM_train_epoch_ep_one_sided)->Unit(benchmark::kSecond)->Iterations(1);

void BM_train_epoch_ep_alternating(benchmark::State& state) {
  epoch_50(state, make_ep_net(), learn::equilibrium_propagation<>(ep_params(learn::ep_estimator::centered, true)),
           loss::mse{});
}
BENCHMARK(BM_train_epoch_ep_alternating)->Unit(benchmark::kSecond)->Iterations(1);

void BM_train_epoch_ep_alternating_one_sided(benchmark::State& state) {
  epoch_50(state, make_ep_net(), learn::equilibrium_propagation<>(ep_params(learn::ep_estimator::one_sided, true)),
           loss::mse{});
}
BENCHMARK(BM_train_epoch_ep_alternating_one_sided)->Unit(benchmark::kSecond)->Iterations(1);

// The reference of the ratio: backprop on the 784-256-10 tanh MLP, same data, batch 50.
void BM_train_epoch_ep_backprop_reference(benchmark::State& state) {
  epoch_50(state, bench::make_mlp(), learn::backprop<>{}, loss::softmax_cross_entropy{});
}
BENCHMARK(BM_train_epoch_ep_backprop_reference)->Unit(benchmark::kSecond)->Iterations(1);

// What the per-sample early stop buys: the centered synchronous epoch with `tolerance` =
// arg × 10⁻⁴ (0: all T 30 / K 10 steps), driven batch by batch so that the relaxation steps
// actually taken (the last sample's: the batch runs until its slowest sample stops) and the
// epoch's mean training loss and accuracy are reported beside the throughput.
void BM_train_epoch_ep_tolerance(benchmark::State& state) {
  auto p = ep_params(learn::ep_estimator::centered);
  p.tolerance = double(state.range(0)) * 1e-4;
  const auto& d = bench::train_set();
  const std::size_t batches = d.size() / ep_batch;
  double free_steps = 0, nudged_steps = 0, loss_sum = 0, correct = 0;
  const auto mark = bench::work_mark();
  for (auto _ : state) {
    auto net = make_ep_net();
    learn::equilibrium_propagation<> rule(p);
    rng g(5, 0xe9);
    xt::xtensor<float, 2> x, t;
    free_steps = nudged_steps = loss_sum = correct = 0;
    for (std::size_t b = 0; b < batches; ++b) {
      x = xt::view(d.inputs, xt::range(b * ep_batch, (b + 1) * ep_batch), xt::all());
      t = xt::view(d.targets, xt::range(b * ep_batch, (b + 1) * ep_batch), xt::all());
      rng gb = g.split(b);
      const auto r = rule.step(net, x, t, loss::mse{}, gb);
      loss_sum += double(r.loss);
      correct += double(r.correct);
      free_steps += double(rule.last_report().free_steps);
      nudged_steps += double(rule.last_report().nudged_steps);
    }
  }
  const double samples = double(state.iterations()) * double(batches * ep_batch);
  state.SetItemsProcessed(static_cast<std::int64_t>(samples));
  state.counters["free_steps"] = free_steps / double(batches);
  state.counters["nudged_steps"] = nudged_steps / double(batches);
  state.counters["train_loss"] = loss_sum / double(batches);
  state.counters["train_accuracy"] = correct / double(batches * ep_batch);
  bench::report_roofline(state, mark, samples);
}
BENCHMARK(BM_train_epoch_ep_tolerance)->ArgName("tol_e4")->Arg(0)->Arg(10)->Arg(30)->Arg(100)->Unit(benchmark::kSecond)->Iterations(1);

// One centered EP step on a batch of 50: the relaxation alone, without the data pipeline.
void BM_step_ep_centered(benchmark::State& state) {
  auto net = make_ep_net();
  learn::equilibrium_propagation<> rule(ep_params(learn::ep_estimator::centered));
  const auto& d = bench::train_set();
  xt::xtensor<float, 2> x = xt::view(d.inputs, xt::range(0, ep_batch), xt::all());
  xt::xtensor<float, 2> t = xt::view(d.targets, xt::range(0, ep_batch), xt::all());
  rng g(3);
  std::uint64_t k = 0;
  const auto mark = bench::work_mark();
  for (auto _ : state) {
    rng gk = g.split(k++);
    auto r = rule.step(net, x, t, loss::mse{}, gk);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(ep_batch));
  bench::report_roofline(state, mark, double(state.iterations()) * double(ep_batch));
}
BENCHMARK(BM_step_ep_centered);

}  // namespace
