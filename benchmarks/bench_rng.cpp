// SPDX-License-Identifier: MIT
/// \file
/// \brief Counter-based RNG throughput: pnn's vectorised fills (Philox and ARS engines) against std::mt19937 with
/// std::normal_distribution / std::uniform_real_distribution, and against the same register
/// Box–Muller fed by a fast stateful generator (xoshiro128+, eight lanes).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <pnn/simd/random.hpp>

namespace {

constexpr std::size_t bench_count = std::size_t{1} << 16;

void BM_normal_pnn(benchmark::State& state) {
  std::vector<float> out(bench_count);
  pnn::rng g(pnn::seed{42});
  for (auto _ : state) {
    pnn::fill_normal(g, out.data(), out.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_normal_pnn);

void BM_normal_std(benchmark::State& state) {
  std::vector<float> out(bench_count);
  std::mt19937 engine(42);
  std::normal_distribution<float> dist;
  for (auto _ : state) {
    for (auto& x : out) x = dist(engine);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_normal_std);

void BM_uniform_pnn(benchmark::State& state) {
  std::vector<float> out(bench_count);
  pnn::rng g(pnn::seed{42});
  for (auto _ : state) {
    pnn::fill_uniform(g, out.data(), out.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_uniform_pnn);

void BM_uniform_std(benchmark::State& state) {
  std::vector<float> out(bench_count);
  std::mt19937 engine(42);
  std::uniform_real_distribution<float> dist;
  for (auto _ : state) {
    for (auto& x : out) x = dist(engine);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_uniform_std);

// The same fills on the ARS engine (AES rounds: VAES or AES-NI where the build targets them).
void BM_uniform_pnn_ars(benchmark::State& state) {
  std::vector<float> out(bench_count);
  pnn::rng g(pnn::seed{42, pnn::rng_engine::ars});
  for (auto _ : state) {
    pnn::fill_uniform(g, out.data(), out.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_uniform_pnn_ars);

void BM_normal_pnn_ars(benchmark::State& state) {
  std::vector<float> out(bench_count);
  pnn::rng g(pnn::seed{42, pnn::rng_engine::ars});
  for (auto _ : state) {
    pnn::fill_normal(g, out.data(), out.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_normal_pnn_ars);

#if PNN_DETAIL_RNG_AVX2
// The anchor for generator speed: the same register Box–Muller fed by xoshiro128+ on eight
// independent lanes (a fast generator with state, not counter-based: no reproducible stream
// per block, no skipping ahead), so the ratio isolates what the counter contract costs.
struct xoshiro128p8 {
  __m256i s0, s1, s2, s3;
  explicit xoshiro128p8(std::uint32_t seed) {
    alignas(32) std::uint32_t v[32];
    std::uint32_t z = seed;
    for (auto& w : v) {  // splitmix-style seeding, all lanes distinct
      z += 0x9E3779B9u;
      std::uint32_t t = z;
      t = (t ^ (t >> 16)) * 0x85EBCA6Bu;
      t = (t ^ (t >> 13)) * 0xC2B2AE35u;
      w = t ^ (t >> 16);
    }
    s0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(v));
    s1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(v + 8));
    s2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(v + 16));
    s3 = _mm256_load_si256(reinterpret_cast<const __m256i*>(v + 24));
  }
  __m256i next() noexcept {
    const __m256i r = _mm256_add_epi32(s0, s3);
    const __m256i t = _mm256_slli_epi32(s1, 9);
    s2 = _mm256_xor_si256(s2, s0);
    s3 = _mm256_xor_si256(s3, s1);
    s1 = _mm256_xor_si256(s1, s2);
    s0 = _mm256_xor_si256(s0, s3);
    s2 = _mm256_xor_si256(s2, t);
    s3 = _mm256_or_si256(_mm256_slli_epi32(s3, 11), _mm256_srli_epi32(s3, 21));
    return r;
  }
};

#if PNN_DETAIL_RNG_AVX512
// Sixteen lanes where the core has AVX-512, so the anchor is at its best.
struct xoshiro128p16 {
  __m512i s0, s1, s2, s3;
  explicit xoshiro128p16(std::uint32_t seed) {
    xoshiro128p8 lo(seed), hi(seed ^ 0x5bd1e995u);
    auto join = [](__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); };
    s0 = join(lo.s0, hi.s0);
    s1 = join(lo.s1, hi.s1);
    s2 = join(lo.s2, hi.s2);
    s3 = join(lo.s3, hi.s3);
  }
  __m512i next() noexcept {
    const __m512i r = _mm512_add_epi32(s0, s3);
    const __m512i t = _mm512_slli_epi32(s1, 9);
    s2 = _mm512_xor_si512(s2, s0);
    s3 = _mm512_xor_si512(s3, s1);
    s1 = _mm512_xor_si512(s1, s2);
    s0 = _mm512_xor_si512(s0, s3);
    s2 = _mm512_xor_si512(s2, t);
    s3 = _mm512_rol_epi32(s3, 11);
    return r;
  }
};
#endif

void BM_normal_xoshiro_box_muller(benchmark::State& state) {
  std::vector<float> out(bench_count);
#if PNN_DETAIL_RNG_AVX512
  xoshiro128p16 a(42), b(43);  // two generators: two independent dependency chains
  for (auto _ : state) {
    for (std::size_t i = 0; i < bench_count; i += 64) {
      for (int h = 0; h < 2; ++h) {
        xoshiro128p16& g = h == 0 ? a : b;
        const __m512 r = pnn::detail::box_muller_radius16(g.next());
        __m512 c, s;
        pnn::detail::box_muller_angle16(g.next(), c, s);
        _mm512_storeu_ps(out.data() + i + 32 * h, _mm512_mul_ps(r, c));
        _mm512_storeu_ps(out.data() + i + 32 * h + 16, _mm512_mul_ps(r, s));
      }
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
#else
  xoshiro128p8 a(42), b(43);  // two generators: two independent dependency chains
  for (auto _ : state) {
    for (std::size_t i = 0; i < bench_count; i += 32) {
      for (int h = 0; h < 2; ++h) {
        xoshiro128p8& g = h == 0 ? a : b;
        const __m256 r = pnn::detail::box_muller_radius8(g.next());
        __m256 c, s;
        pnn::detail::box_muller_angle8(g.next(), c, s);
        _mm256_storeu_ps(out.data() + i + 16 * h, _mm256_mul_ps(r, c));
        _mm256_storeu_ps(out.data() + i + 16 * h + 8, _mm256_mul_ps(r, s));
      }
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
#endif
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_normal_xoshiro_box_muller);
#endif

void BM_add_normal_pnn(benchmark::State& state) {
  std::vector<float> out(bench_count, 1.0f);
  pnn::rng g(pnn::seed{42});
  for (auto _ : state) {
    pnn::add_normal(g, out.data(), out.size(), 0.01f);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_add_normal_pnn);

void BM_add_normal_pnn_ars(benchmark::State& state) {
  std::vector<float> out(bench_count, 1.0f);
  pnn::rng g(pnn::seed{42, pnn::rng_engine::ars});
  for (auto _ : state) {
    pnn::add_normal(g, out.data(), out.size(), 0.01f);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_add_normal_pnn_ars);

void BM_poisson_pnn(benchmark::State& state) {
  std::vector<float> out(bench_count);
  pnn::rng g(pnn::seed{42});
  const auto lambda = static_cast<float>(state.range(0));
  for (auto _ : state) {
    pnn::fill_poisson(g, out.data(), out.size(), lambda);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bench_count));
}
BENCHMARK(BM_poisson_pnn)->Arg(4)->Arg(50);

}  // namespace
