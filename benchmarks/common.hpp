// SPDX-License-Identifier: MIT
// Shared fixtures of the rule benchmarks: the 784-256-10 MLP of the issues, Fashion-MNIST (or
// random data of the same shape when the data set is not installed), and one-epoch / one-step
// drivers so every rule is measured the same way.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include <pnn/pnn.hpp>
#include <pnn/simd/work.hpp>
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

/// This binary's GEMM rate (FLOP/s) on the forward product of the 784-256 layer with a batch
/// of 64 (`BM_gemm_pnn/64/256/784`'s shape): the median of five timings of 20 products each,
/// after a warm-up (about 30 ms). Measured right after each benchmark's loop, so that a shared,
/// noisy machine slows both sides of the ratio alike.
inline double gemm_rate() {
  constexpr std::size_t m = 64, n = 256, k = 784;
  // On cache lines, as a layer's run-time sized weights are (pnn::aligned_matrix).
  using line_vector = std::vector<float, pnn::detail::line_allocator<float>>;
  static line_vector a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  auto run = [&] { pnn::simd::gemm_nn<float>(m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n); };
  for (int i = 0; i < 10; ++i) run();
  double rates[5];
  for (double& r : rates) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) run();
    benchmark::DoNotOptimize(c.data());
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    r = 20.0 * 2.0 * double(m * n * k) / dt.count();
  }
  std::nth_element(rates, rates + 2, rates + 5);
  return rates[2];
}

/// Where a benchmark's timed loop starts: the kernel work done so far on this thread, and when.
struct work_mark_t {
  pnn::simd::kernel_work work;
  std::chrono::steady_clock::time_point start;
};
inline work_mark_t work_mark() { return {pnn::simd::kernel_work_on_this_thread(), std::chrono::steady_clock::now()}; }

/// Roofline counters from the kernel work since `mark` over `samples` samples:
/// `flop_per_sample` and `bytes_per_sample` (matrix kernels only: simd/work.hpp), the achieved
/// `flop_rate` (FLOP/s over the loop's wall time), and `gemm_fraction`, that rate over this
/// binary's GEMM rate on the 784-256 layer's product (1 = every second spent at the GEMM limit).
inline void report_roofline(benchmark::State& state, const work_mark_t& mark, double samples) {
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - mark.start;
  const pnn::simd::kernel_work w = pnn::simd::kernel_work_on_this_thread() - mark.work;
  if (samples <= 0 || dt.count() <= 0) return;
  const auto flops = static_cast<double>(w.flops);
  state.counters["flop_per_sample"] = flops / samples;
  state.counters["bytes_per_sample"] = static_cast<double>(w.bytes) / samples;
  state.counters["flop_rate"] = flops / dt.count();
  state.counters["gemm_fraction"] = flops / dt.count() / gemm_rate();
}

/// One training epoch over the whole training set with `rule`; reports samples/s.
template <class Net, class Rule, class Loss = pnn::loss::softmax_cross_entropy>
void train_epoch(benchmark::State& state, Net net, Rule rule, Loss loss = {}) {
  const auto& d = train_set();
  const auto mark = work_mark();
  for (auto _ : state) {
    auto h = pnn::train(net, rule, loss, d, {.epochs = 1, .batch = 64, .seed = 1, .progress = pnn::progress_mode::never});
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(d.size()));
  report_roofline(state, mark, double(state.iterations()) * double(d.size()));
}

/// One `step` on a batch of 64; reports samples/s.
template <class Net, class Rule, class Loss = pnn::loss::softmax_cross_entropy>
void train_step(benchmark::State& state, Net net, Rule rule, Loss loss = {}) {
  batch64 b;
  pnn::rng g(3);
  std::uint64_t k = 0;
  const auto mark = work_mark();
  for (auto _ : state) {
    pnn::rng gk = g.split(k++);
    auto r = rule.step(net, b.x, b.t, loss, gk);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
  report_roofline(state, mark, double(state.iterations()) * 64.0);
}

}  // namespace bench
