// SPDX-License-Identifier: MIT
// Photonic mesh throughput: forward propagation through an N-mode Clements mesh, the adjoint
// phase-gradient sweep, and the dense complex matrix–batch product the mesh replaces.
// Arg = N modes; every case pushes a batch of 64 complex fields (planar, double).
#include <benchmark/benchmark.h>

#include <complex>
#include <vector>

#include <pnn/physics/mzi_mesh.hpp>

namespace {

using namespace pnn;
using namespace pnn::physics;
constexpr std::size_t batch = 64;

field_batch<double> random_fields(std::size_t n) {
  rng g(7);
  field_batch<double> f;
  f.assign(n, batch);
  for (auto& v : f.re) v = g.normal_double();
  for (auto& v : f.im) v = g.normal_double();
  return f;
}

void BM_mzi_forward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  unitary_mesh<> m(n);
  rng g(1);
  m.randomize_haar(g);
  const mesh_realisation r = m.realise();
  const field_batch<double> x = random_fields(n);
  field_batch<double> f;
  for (auto _ : state) {
    f = x;
    m.forward(f, r);
    benchmark::DoNotOptimize(f.re.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

void BM_mzi_adjoint(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  unitary_mesh<> m(n);
  rng g(1);
  m.randomize_haar(g);
  const mesh_realisation r = m.realise();
  const field_batch<double> x = random_fields(n), dy = random_fields(n);
  field_batch<double> f, a;
  mesh_phase_gradients grad;
  for (auto _ : state) {  // forward pass, then the backward sweep (fields, adjoint, gradients)
    f = x;
    a = dy;
    m.forward(f, r);
    m.adjoint_gradients(r, f, a, grad);
    benchmark::DoNotOptimize(grad.theta.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

void BM_complex_gemv(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  rng g(3);
  std::vector<double> mr(n * n), mi(n * n);
  for (auto& v : mr) v = g.normal_double();
  for (auto& v : mi) v = g.normal_double();
  const field_batch<double> x = random_fields(n);
  field_batch<double> y;
  y.assign(n, batch);
  for (auto _ : state) {  // y = M x, planar, row by row over the batch (vectorised inner loop)
    std::fill(y.re.begin(), y.re.end(), 0.0);
    std::fill(y.im.begin(), y.im.end(), 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      double* __restrict yr = &y.re[i * batch];
      double* __restrict yi = &y.im[i * batch];
      for (std::size_t k = 0; k < n; ++k) {
        const double ar = mr[i * n + k], ai = mi[i * n + k];
        const double* xr = &x.re[k * batch];
        const double* xi = &x.im[k * batch];
        for (std::size_t s = 0; s < batch; ++s) {
          yr[s] += ar * xr[s] - ai * xi[s];
          yi[s] += ar * xi[s] + ai * xr[s];
        }
      }
    }
    benchmark::DoNotOptimize(y.re.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

}  // namespace

BENCHMARK(BM_mzi_forward)->Arg(64);
BENCHMARK(BM_mzi_adjoint)->Arg(64);
BENCHMARK(BM_complex_gemv)->Arg(64);
