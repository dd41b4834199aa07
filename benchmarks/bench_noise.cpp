// SPDX-License-Identifier: MIT
// Cost of noise on the forward pass of the 784-256-10 tanh MLP (batch 64): the noise must not
// dominate the read. Compare BM_noisy_forward (gaussian_read) with BM_clean_forward; the other
// variants show a full periphery chain (DAC, read noise, ADC) and a weights-stage policy
// (device variation, which re-derives the effective weights on every read).
#include <benchmark/benchmark.h>

#include <vector>

#include "common.hpp"
#include <pnn/noise/noise.hpp>

namespace {

using namespace pnn;

template <class Noise>
using noisy_mlp_t = network<dense<dynamic, dynamic, physics::digital, Noise, act::tanh>,
                            dense<dynamic, dynamic, physics::digital, Noise, act::identity>>;

constexpr std::size_t batch = 64;

template <class Net>
void run_forward(benchmark::State& state, const Net& net) {
  bench::batch64 b;
  trace<Net> tr;
  rng g(1);
  std::uint64_t k = 0;
  const auto mark = bench::work_mark();
  for (auto _ : state) {
    rng gk = g.split(k++);
    forward_trace(net, b.x.data(), batch, tr, gk);
    benchmark::DoNotOptimize(tr.output().data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  bench::report_roofline(state, mark, double(state.iterations()) * double(batch));
}

void BM_clean_forward(benchmark::State& state) { run_forward(state, bench::make_mlp()); }
BENCHMARK(BM_clean_forward);

void BM_noisy_forward(benchmark::State& state) {
  const noisy_mlp_t<noise::gaussian_read> net({784, 256, 10}, seed{42}, noise::gaussian_read{.sigma = 0.05});
  run_forward(state, net);
}
BENCHMARK(BM_noisy_forward);

void BM_noisy_forward_periphery(benchmark::State& state) {
  using periphery = noise::chain<noise::dac<7>, noise::gaussian_read, noise::adc<9>>;
  const noisy_mlp_t<periphery> net({784, 256, 10}, seed{42}, periphery{});
  run_forward(state, net);
}
BENCHMARK(BM_noisy_forward_periphery);

void BM_noisy_forward_variation(benchmark::State& state) {
  const noisy_mlp_t<noise::variation> net({784, 256, 10}, seed{42}, noise::variation{.multiplicative = 0.05});
  run_forward(state, net);
}
BENCHMARK(BM_noisy_forward_variation);

// Throughput of the kernels themselves on one batch of first-layer outputs (64 × 256).
void BM_gaussian_read_output(benchmark::State& state) {
  std::vector<float> y(batch * 256, 0.5f);
  const noise::gaussian_read p{};
  rng g(2);
  for (auto _ : state) {
    p.output(y.data(), y.size(), g);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(y.size()));
}
BENCHMARK(BM_gaussian_read_output);

void BM_quantize_symmetric(benchmark::State& state) {
  std::vector<float> x(batch * 784);
  rng g(3);
  fill_uniform(g, x.data(), x.size(), -1.5f, 1.5f);
  for (auto _ : state) {
    noise::quantize_symmetric(x.data(), x.size(), 1.0f, 7);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(x.size()));
}
BENCHMARK(BM_quantize_symmetric);

}  // namespace
