// SPDX-License-Identifier: MIT
// GEMM kernels against single-threaded OpenBLAS, in FLOP/s (items_per_second = 2·M·N·K per
// iteration). The shapes are a 784-256 dense layer on a batch of 64 (forward, and its weight
// gradient ΔW = δᵀ·h with M = 256, N = 784, K = 64), two square products, and the skinny
// products of a 256→10 layer (`BM_gemm_pnn_small_*`). The `_threads` variants and
// `BM_fork_join` take the layer's products and an empty fork-join onto pnn's thread team.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <pnn/core/threads.hpp>
#include <pnn/nn/dynamic_storage.hpp>
#include <pnn/simd/gemm.hpp>

#if PNN_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

enum class op { nn, nt, tn };

// Operands start on cache lines, as a layer's run-time sized weights do (pnn::aligned_matrix),
// for pnn and OpenBLAS alike.
using line_vector = std::vector<float, pnn::detail::line_allocator<float>>;

struct operands {
  std::size_t m, n, k;
  line_vector a, b, c;
  operands(std::size_t m_, std::size_t n_, std::size_t k_) : m(m_), n(n_), k(k_), a(m_ * k_), b(k_ * n_), c(m_ * n_) {
    // A cheap deterministic fill with no denormals and no pattern a cache could exploit.
    std::uint32_t s = 12345u;
    auto next = [&s] {
      s = s * 1664525u + 1013904223u;
      return static_cast<float>(s >> 8) * (1.0f / 16777216.0f) - 0.5f;
    };
    for (auto& x : a) x = next();
    for (auto& x : b) x = next();
    for (auto& x : c) x = next();
  }
};

operands make(const benchmark::State& state) {
  return {static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1)),
          static_cast<std::size_t>(state.range(2))};
}

void report(benchmark::State& state, const operands& o) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(2 * o.m * o.n * o.k));
}

template <op Op>
void pnn_gemm(benchmark::State& state) {
  operands o = make(state);
  for (auto _ : state) {
    if constexpr (Op == op::nn) {
      pnn::simd::gemm_nn<float>(o.m, o.n, o.k, 1.0f, o.a.data(), o.k, o.b.data(), o.n, 0.0f, o.c.data(), o.n);
    } else if constexpr (Op == op::nt) {
      pnn::simd::gemm_nt<float>(o.m, o.n, o.k, 1.0f, o.a.data(), o.k, o.b.data(), o.k, 0.0f, o.c.data(), o.n);
    } else {
      pnn::simd::gemm_tn<float>(o.m, o.n, o.k, 1.0f, o.a.data(), o.m, o.b.data(), o.n, 0.0f, o.c.data(), o.n);
    }
    benchmark::DoNotOptimize(o.c.data());
    benchmark::ClobberMemory();
  }
  report(state, o);
}

void BM_gemm_pnn(benchmark::State& state) { pnn_gemm<op::nn>(state); }
void BM_gemm_nt_pnn(benchmark::State& state) { pnn_gemm<op::nt>(state); }
void BM_gemm_tn_pnn(benchmark::State& state) { pnn_gemm<op::tn>(state); }

BENCHMARK(BM_gemm_pnn)->Args({64, 256, 784})->Args({256, 256, 256})->Args({1024, 1024, 1024});
BENCHMARK(BM_gemm_nt_pnn)->Args({64, 256, 784});
BENCHMARK(BM_gemm_tn_pnn)->Args({64, 256, 784})->Args({256, 784, 64});

// Threads inside one product (pnn::set_num_threads; the last argument): the 784-256 layer's
// forward product and weight update on one team, against the same call on one thread, and one
// fork-join of the team with no work — the fixed cost every threaded kernel call pays. A
// threaded training step loses what these ratios lose, plus that cost once per call
// (README, "Threads inside a run").
template <op Op>
void pnn_gemm_threads(benchmark::State& state) {
  pnn::set_num_threads(static_cast<unsigned>(state.range(3)));
  pnn_gemm<Op>(state);
  pnn::set_num_threads(1);
  state.counters["threads"] = pnn::threads_available ? double(state.range(3)) : 1.0;  // used
}
void BM_gemm_nt_pnn_threads(benchmark::State& state) { pnn_gemm_threads<op::nt>(state); }
void BM_gemm_tn_pnn_threads(benchmark::State& state) { pnn_gemm_threads<op::tn>(state); }
BENCHMARK(BM_gemm_nt_pnn_threads)
    ->ArgNames({"m", "n", "k", "threads"})
    ->Args({64, 256, 784, 1})
    ->Args({64, 256, 784, 2})
    ->UseRealTime();
BENCHMARK(BM_gemm_tn_pnn_threads)
    ->ArgNames({"m", "n", "k", "threads"})
    ->Args({256, 784, 64, 1})
    ->Args({256, 784, 64, 2})
    ->UseRealTime();

void BM_fork_join(benchmark::State& state) {
  pnn::set_num_threads(static_cast<unsigned>(state.range(0)));
  std::atomic<std::size_t> members{0};
  for (auto _ : state)
    pnn::detail::parallel_team(1024, [&](std::size_t, std::size_t) noexcept {
      members.fetch_add(1, std::memory_order_relaxed);
    });
  pnn::set_num_threads(1);
  // Every member ran once per iteration: the team was formed, not skipped.
  state.counters["members_per_call"] = double(members.load()) / double(state.iterations());
  state.counters["threads"] = pnn::threads_available ? double(state.range(0)) : 1.0;
}
BENCHMARK(BM_fork_join)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

// Skinny shapes of equilibrium propagation's relaxation and of every rule's 256→10 output layer:
// W₂ρ(s₁) is A·Bᵀ with N = 10 (M = 50 samples, or 100 with both nudged phases batched), W₂ᵀρ(s₂)
// is A·B with K = 10, and backprop's dx of the output layer is the latter with M = 64.
void BM_gemm_pnn_small_nt(benchmark::State& state) { pnn_gemm<op::nt>(state); }
void BM_gemm_pnn_small_nn(benchmark::State& state) { pnn_gemm<op::nn>(state); }
BENCHMARK(BM_gemm_pnn_small_nt)->Args({50, 10, 256})->Args({100, 10, 256})->Args({64, 10, 256});
BENCHMARK(BM_gemm_pnn_small_nn)->Args({50, 256, 10})->Args({100, 256, 10})->Args({64, 256, 10});

#if PNN_HAVE_OPENBLAS
template <op Op>
void openblas_gemm(benchmark::State& state) {
  openblas_set_num_threads(1);
  operands o = make(state);
  const auto m = static_cast<int>(o.m), n = static_cast<int>(o.n), k = static_cast<int>(o.k);
  for (auto _ : state) {
    if constexpr (Op == op::nn) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, o.a.data(), k, o.b.data(), n, 0.0f,
                  o.c.data(), n);
    } else if constexpr (Op == op::nt) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, o.a.data(), k, o.b.data(), k, 0.0f,
                  o.c.data(), n);
    } else {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0f, o.a.data(), m, o.b.data(), n, 0.0f,
                  o.c.data(), n);
    }
    benchmark::DoNotOptimize(o.c.data());
    benchmark::ClobberMemory();
  }
  report(state, o);
}

void BM_gemm_openblas(benchmark::State& state) { openblas_gemm<op::nn>(state); }
void BM_gemm_nt_openblas(benchmark::State& state) { openblas_gemm<op::nt>(state); }
void BM_gemm_tn_openblas(benchmark::State& state) { openblas_gemm<op::tn>(state); }

BENCHMARK(BM_gemm_openblas)->Args({64, 256, 784})->Args({256, 256, 256})->Args({1024, 1024, 1024});
BENCHMARK(BM_gemm_nt_openblas)->Args({64, 256, 784});
BENCHMARK(BM_gemm_tn_openblas)->Args({64, 256, 784})->Args({256, 784, 64});
void BM_gemm_openblas_small_nt(benchmark::State& state) { openblas_gemm<op::nt>(state); }
void BM_gemm_openblas_small_nn(benchmark::State& state) { openblas_gemm<op::nn>(state); }
BENCHMARK(BM_gemm_openblas_small_nt)->Args({50, 10, 256})->Args({100, 10, 256})->Args({64, 10, 256});
BENCHMARK(BM_gemm_openblas_small_nn)->Args({50, 256, 10})->Args({100, 256, 10})->Args({64, 256, 10});
#endif

}  // namespace
