// SPDX-License-Identifier: MIT
// GEMM kernels against single-threaded OpenBLAS, in FLOP/s (items_per_second = 2·M·N·K per
// iteration). The shapes are a 784-256 dense layer on a batch of 64 (forward, and its weight
// gradient ΔW = δᵀ·h with M = 256, N = 784, K = 64), two square products, and the skinny
// products of a 256→10 layer (`BM_gemm_pnn_small_*`). The `_threads` variants and
// `BM_fork_join` take the layer's products and an empty fork-join onto pnn's thread team;
// `BM_batch_read` what a batch costs to read on the core that did not write it.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include <pnn/core/threads.hpp>
#include <pnn/nn/dynamic_storage.hpp>
#include <pnn/simd/blas.hpp>
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

// What a batch costs to reach a second core: the calling thread reads (max |x|, as `pnn::train`
// checks a copied batch) 200 KB, one batch of 64 Fashion-MNIST rows, that was written
// `from:0` by itself just before (its own cache), `from:1` by itself before 8 MB of other
// data passed through its cache (its last-level cache, or memory), `from:2` by another thread
// (on another core wherever the system puts it). A two-thread step hands the batch over this
// way: one core copies it, both pack it (docs/performance.md, "Two threads"). Where two cores
// share a last-level cache, from:2 costs about what from:1 does; where they do not, more.
void BM_batch_read(benchmark::State& state) {
  const auto from = state.range(0);
  if (from == 2 && std::thread::hardware_concurrency() < 2) {
    state.SkipWithError("needs two cores");
    return;
  }
  constexpr std::size_t n = 64 * 784;
  line_vector batch(n), other(from == 1 ? std::size_t(2) << 20 : 0);  // 8 MB that pass through the cache
  std::atomic<int> turn{0};  // 1: the writer's, 2: the reader's, -1: stop
  std::uint64_t round = 0;
  auto write = [&] {
    ++round;
    for (std::size_t i = 0; i < n; ++i) batch[i] = float((i + round) % 255) * (1.0f / 255.0f);
  };
  std::thread writer;
  if (from == 2) {
    writer = std::thread([&] {
      for (;;) {
        int t = turn.load(std::memory_order_acquire);
        if (t == -1) return;
        if (t != 1) {
          std::this_thread::yield();
          continue;
        }
        write();
        turn.store(2, std::memory_order_release);
      }
    });
  }
  double sum = 0;
  for (auto _ : state) {
    if (from == 2) {
      turn.store(1, std::memory_order_release);
      while (turn.load(std::memory_order_acquire) != 2) std::this_thread::yield();
    } else {
      write();
      if (from == 1)
        for (std::size_t i = 0; i < other.size(); i += 16) other[i] += 1.0f;
    }
    const auto t0 = std::chrono::steady_clock::now();
    sum += pnn::simd::finite_abs_max<float>(n, batch.data());
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (writer.joinable()) {
    turn.store(-1, std::memory_order_release);
    writer.join();
  }
  benchmark::DoNotOptimize(sum);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n * sizeof(float)));
}
BENCHMARK(BM_batch_read)->ArgName("from")->Arg(0)->Arg(1)->Arg(2)->UseManualTime();

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
