// SPDX-License-Identifier: MIT
// Diffractive optics: `BM_diffractive_forward` reads a five-mask D2NN (the pnn-bench model,
// argument = grid side) for a batch of 32 images; `BM_diffractive_fft_floor` runs only the
// 2·(M + 1) two-dimensional FFTs per image that the propagations need, calling Eigen directly —
// the floor of this FFT-based design. Their ratio is what masks, detection and the tile cost.
#if PNN_HAS_DIFFRACTIVE
#include <benchmark/benchmark.h>

#include <complex>
#include <vector>

#include <pnn/physics/diffractive.hpp>

namespace {
constexpr std::size_t batch = 32, masks = 5;

void BM_diffractive_forward(benchmark::State& state) {
  const auto grid = static_cast<std::size_t>(state.range(0));
  pnn::physics::diffractive::tile<pnn::dynamic, pnn::dynamic> t;
  t.set_params({.grid = grid, .masks = masks, .distance = 10e-3});
  t.resize(784, 10);
  pnn::rng g(1);
  t.prepare(g);
  std::vector<float> x(batch * 784), y(batch * 10);
  for (auto& v : x) v = g.uniform();
  for (auto _ : state) {
    t.read(x.data(), batch, y.data(), g);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(batch));
}

void BM_diffractive_fft_floor(benchmark::State& state) {
  const auto grid = static_cast<std::size_t>(state.range(0));
  pnn::physics::optics::fft2<float> f(grid);
  std::vector<std::complex<float>> u(grid * grid, std::complex<float>(0.5f, 0.0f));
  for (auto _ : state) {
    for (std::size_t r = 0; r < batch; ++r)
      for (std::size_t k = 0; k <= masks; ++k) {
        f.forward(u.data());
        f.inverse(u.data());
      }
    benchmark::DoNotOptimize(u.data());
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(batch));
}
}  // namespace

BENCHMARK(BM_diffractive_forward)->ArgName("grid")->Arg(64)->Arg(100)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_diffractive_fft_floor)->ArgName("grid")->Arg(64)->Arg(100)->Unit(benchmark::kMillisecond);
#endif  // PNN_HAS_DIFFRACTIVE
