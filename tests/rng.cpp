// SPDX-License-Identifier: MIT
// Counter-based RNG: Philox4x32-10 and ARS-7 known answers, the counter/stream contract,
// statistics of every sampler under both engines, and the SIMD paths against the scalar one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <pnn/core/rng.hpp>
#include <pnn/simd/random.hpp>

#if defined(__AES__) && !defined(PNN_NO_SIMD)
#include <immintrin.h>
#endif

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_rng {

namespace {

using words4 = std::array<std::uint32_t, 4>;

struct moments {
  double mean = 0, var = 0;
};
template <class T>
moments moments_of(const std::vector<T>& x) {
  double s = 0, s2 = 0;
  for (T v : x) s += static_cast<double>(v);
  const double n = static_cast<double>(x.size());
  const double m = s / n;
  for (T v : x) s2 += (static_cast<double>(v) - m) * (static_cast<double>(v) - m);
  return {m, s2 / (n - 1)};
}

/// Checks sample mean and variance against (mu, var) within 5 standard errors; `kurt` is the
/// fourth central moment over var² of the distribution (3 for a normal), for the variance's SE.
template <class T>
void check_moments(const std::vector<T>& x, double mu, double var, double kurt) {
  const auto m = moments_of(x);
  const double n = static_cast<double>(x.size());
  INFO("mean " << m.mean << " vs " << mu << ", var " << m.var << " vs " << var);
  CHECK(std::fabs(m.mean - mu) < 5.0 * std::sqrt(var / n));
  CHECK(std::fabs(m.var - var) < 5.0 * var * std::sqrt((kurt - 1.0) / n));
}

/// Kolmogorov–Smirnov statistic of x against the CDF `cdf`.
template <class T, class Cdf>
double ks_statistic(std::vector<T> x, Cdf cdf) {
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double d = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double f = cdf(static_cast<double>(x[i]));
    d = std::max({d, f - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - f});
  }
  return d;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

}  // namespace

TEST_CASE("philox4x32-10 matches Random123's known-answer vectors", "[rng]") {
  // Random123's kat_vectors file, "philox4x32 10" lines: counter, key, expected output.
  STATIC_REQUIRE(pnn::philox4x32::generate({0, 0, 0, 0}, {0, 0}) ==
                 words4{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(pnn::philox4x32::generate({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}) ==
        words4{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(pnn::philox4x32::generate({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}) ==
        words4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("ars4x32 matches Random123's known-answer vectors and the AES instructions", "[rng][ars]") {
  // Random123's kat_vectors, "ars4x32 10" lines (its only ARS answers): counter, key, output.
  STATIC_REQUIRE(pnn::ars4x32::generate<10>({0, 0, 0, 0}, {0, 0, 0, 0}) ==
                 words4{0x8d73ee19u, 0x506401efu, 0x13c2dbe4u, 0x0cbe9c0du});
  CHECK(pnn::ars4x32::generate<10>({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                                   {0xa4093822u, 0x299f31d0u, 0x082efa98u, 0xec4e6c89u}) ==
        words4{0xa516e7d6u, 0x8357ad74u, 0x5b59b3ecu, 0x8763fff3u});
  CHECK(pnn::ars4x32::generate<10>({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                   {0xffffffffu, 0xffffffffu, 0u, 0u}) ==
        words4{0xbb3743b1u, 0x9f635551u, 0xecbc87fcu, 0xa19478a9u});
  // FIPS-197's S-box examples: the table is derived, not typed in.
  STATIC_REQUIRE(pnn::detail::aes_sbox[0x00] == 0x63);
  STATIC_REQUIRE(pnn::detail::aes_sbox[0x53] == 0xED);
  STATIC_REQUIRE(pnn::detail::aes_sbox[0xFF] == 0x16);
#if defined(__AES__) && !defined(PNN_NO_SIMD)
  // The portable round is the instruction, bit for bit, on random states and keys.
  pnn::rng g(pnn::seed{99});
  for (int i = 0; i < 20000; ++i) {
    const words4 st = g.next_block(), key = g.next_block();
    const __m128i hs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(st.data()));
    const __m128i hk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key.data()));
    words4 full{}, last{};
    _mm_storeu_si128(reinterpret_cast<__m128i*>(full.data()), _mm_aesenc_si128(hs, hk));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(last.data()), _mm_aesenclast_si128(hs, hk));
    REQUIRE(pnn::detail::aes_round<false>(st, key) == full);
    REQUIRE(pnn::detail::aes_round<true>(st, key) == last);
  }
#endif
}

TEST_CASE("the ars engine: its blocks, its streams, and the same words on every architecture", "[rng][ars]") {
  const std::uint64_t seed = 0x299f31d0a4093822ull, stream = 0x0370734413198a2eull;
  pnn::rng a(pnn::seed{seed, pnn::rng_engine::ars}, stream);
  CHECK(a.engine() == pnn::rng_engine::ars);
  a.set_counter(0x85a308d3243f6a88ull);
  CHECK(a.next_block() == pnn::ars4x32::generate({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                                                 {0xa4093822u, 0x299f31d0u, 0u, 0u}));
  // Children keep the engine; the engine is part of what a seed means.
  const pnn::rng p(seed, stream), r(seed, stream, pnn::rng_engine::ars);
  CHECK(r.split(3).engine() == pnn::rng_engine::ars);
  CHECK(r.split(3).stream() == p.split(3).stream());
  CHECK(p.with_engine(pnn::rng_engine::ars) == r);
  CHECK(p != r);
  pnn::rng pp = p, rr = r;
  CHECK(pp.next_block() != rr.next_block());
  // Bulk fills at every width this build has give the scalar draws' words, through the
  // counter's carry into its high word and its wrap at 2⁶⁴.
  for (std::uint64_t start : {std::uint64_t{0xFFFFFFF0ull}, ~std::uint64_t{0} - 20}) {
    for (std::size_t n : {std::size_t{5}, std::size_t{64}, std::size_t{131}, std::size_t{1000}}) {
      INFO("start " << start << ", n " << n);
      pnn::rng s(pnn::seed{7, pnn::rng_engine::ars}, 9);
      s.set_counter(start);
      std::vector<float> ref(n);
      for (float& v : ref) v = s.uniform();
      const auto check_arch = [&](auto arch) {
        using A = decltype(arch);
        pnn::rng g(pnn::seed{7, pnn::rng_engine::ars}, 9);
        g.set_counter(start);
        std::vector<float> u(n);
        pnn::fill_uniform<float, A>(g, u.data(), n);
        CHECK(u == ref);
        CHECK(g.counter() == start + (n + 3) / 4);
        // Normals: the same words through each width's Box–Muller (last bits may differ).
        pnn::rng h(pnn::seed{7, pnn::rng_engine::ars}, 9), k(pnn::seed{7, pnn::rng_engine::ars}, 9);
        h.set_counter(start);
        k.set_counter(start);
        std::vector<float> z(n), zs(n);
        pnn::fill_normal<float, A>(h, z.data(), n, 0.5f, 2.0f);
        pnn::fill_normal<float, pnn::simd::scalar>(k, zs.data(), n, 0.5f, 2.0f);
        for (std::size_t i = 0; i < n; ++i) REQUIRE(z[i] == Approx(zs[i]).margin(4e-5));
        std::vector<float> b(n), bs(n);
        pnn::fill_bernoulli<float, A>(h, b.data(), n, 0.3f);
        pnn::fill_bernoulli<float, pnn::simd::scalar>(k, bs.data(), n, 0.3f);
        CHECK(b == bs);
      };
      check_arch(pnn::simd::scalar{});
      check_arch(pnn::simd::default_arch{});
#if !defined(PNN_NO_SIMD) && defined(__AVX2__)
      check_arch(xsimd::avx2{});
      check_arch(xsimd::sse4_2{});
#endif
    }
  }
}

TEST_CASE("rng blocks are Philox of (counter lo, hi, stream lo, hi) under the seed", "[rng]") {
  pnn::rng g(pnn::seed{0x299f31d0a4093822ull}, 0x0370734413198a2eull);
  g.set_counter(0x85a308d3243f6a88ull);
  CHECK(g.next_block() == words4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
  CHECK(g.counter() == 0x85a308d3243f6a89ull);
  pnn::rng z;
  CHECK(z.next_u32() == 0x6627e8d5u);
  CHECK(z.next_u32() == 0xe169c58du);
  CHECK(z.next_u64() == ((std::uint64_t{0xbc57ac4cu} << 32) | 0x9b00dbd8u));
  CHECK(z.counter() == 1);
  static_assert(pnn::rng(7u).seed_value() == 7 && pnn::rng(pnn::seed{7}, 3).stream() == 3);
}

TEST_CASE("rng is reproducible and split streams are independent of the parent's counter", "[rng]") {
  pnn::rng a(pnn::seed{42}, 5), b(pnn::seed{42}, 5);
  for (int i = 0; i < 100; ++i) REQUIRE(a.next_u32() == b.next_u32());
  CHECK(a.split(3) == b.split(3));
  pnn::rng fresh(pnn::seed{42}, 5);
  CHECK(fresh.split(3) == a.split(3));  // the parent's counter does not matter
  CHECK(a.split(3).counter() == 0);
  CHECK(a.split(3).stream() != a.split(4).stream());
  CHECK(a.split(1).split(2).stream() != a.split(2).split(1).stream());
  CHECK(a.split(0).stream() != a.stream());
  CHECK(pnn::rng(pnn::seed{43}, 5).next_u32() != pnn::rng(pnn::seed{42}, 5).next_u32());
  pnn::rng s1 = a.split(1), s2 = a.split(2);
  int equal = 0;
  for (int i = 0; i < 1000; ++i) equal += s1.next_u32() == s2.next_u32();
  CHECK(equal < 3);
  // set_counter rewinds exactly, dropping buffered words.
  pnn::rng c(pnn::seed{9});
  const std::uint32_t first = c.next_u32();
  c.next_u32();
  c.set_counter(0);
  CHECK(c.next_u32() == first);
}

TEST_CASE("scalar draws: ranges, uniform_int, Box-Muller", "[rng]") {
  pnn::rng g(pnn::seed{1});
  for (int i = 0; i < 10000; ++i) {
    const float u = g.uniform();
    REQUIRE((u > 0.0f && u <= 1.0f));
    const double d = g.uniform_double();
    REQUIRE((d > 0.0 && d <= 1.0));
  }
  CHECK(pnn::detail::u01f(0xFFFFFFFFu) == Approx(0x1p-23).epsilon(1e-12));
  CHECK(pnn::detail::u01f(0u) == 1.0f);
  CHECK(pnn::detail::u01d(0xFFFFFFFFu, 0xFFFFFFFFu) == 1.0);
  CHECK(pnn::detail::u01d(0u, 0u) == 0x1p-53);
  std::array<int, 7> hist{};
  for (int i = 0; i < 70000; ++i) {
    const std::uint32_t k = g.uniform_int(7);
    REQUIRE(k < 7);
    ++hist[k];
  }
  for (int h : hist) CHECK(std::abs(h - 10000) < 5 * 93);  // σ = √(n p (1 − p)) ≈ 93
  CHECK(g.uniform_int(1) == 0);
  CHECK(g.uniform_int(0) == 0);
  std::vector<double> z(200000);
  for (auto& v : z) v = g.normal_double();
  check_moments(z, 0.0, 1.0, 3.0);
  std::vector<float> zf(200000);
  for (auto& v : zf) v = g.normal();
  check_moments(zf, 0.0, 1.0, 3.0);
}

TEST_CASE("fills follow the counter contract", "[rng]") {
  const auto engine = GENERATE(pnn::rng_engine::philox, pnn::rng_engine::ars);
  INFO("engine " << (engine == pnn::rng_engine::ars ? "ars" : "philox"));
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{4}, std::size_t{31},
                        std::size_t{32}, std::size_t{33}, std::size_t{100}}) {
    pnn::rng g(pnn::seed{7, engine}, 2);
    g.set_counter(10);
    std::vector<float> x(n + 1);
    pnn::fill_uniform(g, x.data(), n);
    CHECK(g.counter() == 10 + (n + 3) / 4);
    std::vector<double> d(n + 1);
    g.set_counter(10);
    pnn::fill_normal(g, d.data(), n);
    CHECK(g.counter() == 10 + (n + 1) / 2);
    g.set_counter(10);
    pnn::fill_poisson(g, x.data(), n, 3.0f);
    CHECK(g.counter() == 10 + n);
  }
  // Fill of n, then m, equals fill of n + m when the samples-per-block divides n.
  const std::size_t n = 36, m = 77;
  pnn::rng a(pnn::seed{11, engine}), b(pnn::seed{11, engine});
  std::vector<float> one(n + m), two(n + m);
  pnn::fill_normal(a, one.data(), n + m);
  pnn::fill_normal(b, two.data(), n);
  pnn::fill_normal(b, two.data() + n, m);
  CHECK(one == two);
  CHECK(a.counter() == b.counter());
  std::vector<double> p1(n + m), p2(n + m);
  pnn::rng c(pnn::seed{12, engine}), e(pnn::seed{12, engine});
  pnn::fill_poisson(c, p1.data(), n + m, 40.0);
  pnn::fill_poisson(e, p2.data(), 13, 40.0);
  pnn::fill_poisson(e, p2.data() + 13, n + m - 13, 40.0);
  CHECK(p1 == p2);
  // Consecutive calls give fresh numbers; a fresh stream gives the same uniforms as scalar draws.
  pnn::rng f(pnn::seed{13, engine}), h(pnn::seed{13, engine});
  std::vector<float> u1(50), u2(50);
  pnn::fill_uniform(f, u1.data(), 50);
  pnn::fill_uniform(f, u2.data(), 50);
  CHECK(u1 != u2);
  for (float v : u1) CHECK(v == h.uniform());
  // add_normal adds exactly what fill_normal draws.
  pnn::rng q(pnn::seed{14, engine}), r(pnn::seed{14, engine});
  std::vector<float> base(45, 2.0f), noise(45);
  pnn::add_normal(q, base.data(), base.size(), 0.5f);
  pnn::fill_normal(r, noise.data(), noise.size());
  for (std::size_t i = 0; i < base.size(); ++i) CHECK(base[i] == Approx(2.0f + 0.5f * noise[i]).margin(1e-6));
}

TEST_CASE("SIMD and scalar paths agree", "[rng]") {
  const auto engine = GENERATE(pnn::rng_engine::philox, pnn::rng_engine::ars);
  INFO("engine " << (engine == pnn::rng_engine::ars ? "ars" : "philox"));
  for (std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{33}, std::size_t{1000}}) {
    pnn::rng a(pnn::seed{21, engine}, 4), b(pnn::seed{21, engine}, 4);
    a.set_counter(0xFFFFFFFEull);  // crosses the carry into the counter's high word
    b.set_counter(0xFFFFFFFEull);
    std::vector<float> x(n), y(n);
    pnn::fill_uniform(a, x.data(), n);
    pnn::fill_uniform<float, pnn::simd::scalar>(b, y.data(), n);
    CHECK(x == y);
    pnn::fill_normal(a, x.data(), n, 1.0f, 2.0f);
    pnn::fill_normal<float, pnn::simd::scalar>(b, y.data(), n, 1.0f, 2.0f);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(x[i] == Approx(y[i]).margin(2e-5));
    std::vector<double> xd(n), yd(n);
    pnn::fill_normal(a, xd.data(), n);
    pnn::fill_normal<double, pnn::simd::scalar>(b, yd.data(), n);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(xd[i] == Approx(yd[i]).margin(1e-12));
    pnn::fill_uniform(a, xd.data(), n);
    pnn::fill_uniform<double, pnn::simd::scalar>(b, yd.data(), n);
    CHECK(xd == yd);
    pnn::fill_poisson(a, x.data(), n, 25.0f);
    pnn::fill_poisson<float, pnn::simd::scalar>(b, y.data(), n, 25.0f);
    CHECK(x == y);
    pnn::fill_rademacher(a, x.data(), n);
    pnn::fill_rademacher<float, pnn::simd::scalar>(b, y.data(), n);
    CHECK(x == y);
    CHECK(a == b);
  }
  // The scalar Box–Muller of a fresh stream draws the same normals as the bulk fill.
  pnn::rng s(pnn::seed{5, engine}), t(pnn::seed{5, engine});
  std::vector<float> z(64);
  pnn::fill_normal(s, z.data(), z.size());
  for (float v : z) CHECK(v == Approx(t.normal()).margin(2e-5));
}

TEST_CASE("bulk samplers have the right moments", "[rng][statistics]") {
  const auto engine = GENERATE(pnn::rng_engine::philox, pnn::rng_engine::ars);
  INFO("engine " << (engine == pnn::rng_engine::ars ? "ars" : "philox"));
  const std::size_t n = 1000000;
  pnn::rng g(pnn::seed{20261123, engine});
  std::vector<float> x(n);
  pnn::fill_uniform(g, x.data(), n, -1.0f, 3.0f);
  CHECK(*std::min_element(x.begin(), x.end()) > -1.0f);
  CHECK(*std::max_element(x.begin(), x.end()) <= 3.0f);
  check_moments(x, 1.0, 16.0 / 12.0, 1.8);
  pnn::fill_normal(g, x.data(), n, 2.0f, 0.5f);
  check_moments(x, 2.0, 0.25, 3.0);
  std::vector<double> d(n);
  pnn::fill_normal(g, d.data(), n);
  check_moments(d, 0.0, 1.0, 3.0);
  pnn::fill_bernoulli(g, x.data(), n, 0.3f);
  CHECK(std::all_of(x.begin(), x.end(), [](float v) { return v == 0.0f || v == 1.0f; }));
  check_moments(x, 0.3, 0.21, (1 - 3 * 0.21) / 0.21);
  pnn::fill_rademacher(g, x.data(), n);
  CHECK(std::all_of(x.begin(), x.end(), [](float v) { return v == 1.0f || v == -1.0f; }));
  CHECK(std::fabs(moments_of(x).mean) < 5.0 / std::sqrt(static_cast<double>(n)));
  for (double lambda : {0.5, 4.0, 50.0}) {
    INFO("lambda " << lambda);
    pnn::fill_poisson(g, x.data(), n, static_cast<float>(lambda));
    CHECK(std::all_of(x.begin(), x.end(), [](float v) { return v >= 0.0f && v == std::floor(v); }));
    check_moments(x, lambda, lambda, 3.0 + 1.0 / lambda);
  }
  pnn::fill_poisson(g, d.data(), 1000, 0.0);
  CHECK(std::all_of(d.begin(), d.begin() + 1000, [](double v) { return v == 0.0; }));
  pnn::fill_bernoulli(g, d.data(), 1000, 1.0);
  CHECK(std::all_of(d.begin(), d.begin() + 1000, [](double v) { return v == 1.0; }));
  pnn::fill_bernoulli(g, d.data(), 1000, 0.0);
  CHECK(std::all_of(d.begin(), d.begin() + 1000, [](double v) { return v == 0.0; }));
}

TEST_CASE("Poisson probabilities match the pmf", "[rng][statistics]") {
  const auto engine = GENERATE(pnn::rng_engine::philox, pnn::rng_engine::ars);
  INFO("engine " << (engine == pnn::rng_engine::ars ? "ars" : "philox"));
  // Chi-square over k = 0 .. 11 (tail lumped) at λ = 4, and for λ = 15 (PTRS) around the mode.
  for (double lambda : {4.0, 15.0}) {
    INFO("lambda " << lambda);
    const std::size_t n = 200000;
    std::vector<double> x(n);
    pnn::rng g(pnn::seed{77, engine});
    pnn::fill_poisson(g, x.data(), n, lambda);
    const int lo = lambda < 10 ? 0 : 5, hi = lambda < 10 ? 11 : 26;
    std::vector<double> count(static_cast<std::size_t>(hi - lo + 1), 0.0);
    for (double v : x) count[static_cast<std::size_t>(std::clamp(static_cast<int>(v), lo, hi) - lo)] += 1;
    const auto pmf = [&](int k) { return std::exp(-lambda + k * std::log(lambda) - std::lgamma(k + 1.0)); };
    std::vector<double> prob(count.size(), 0.0);
    for (int k = 0; k < hi; ++k) prob[static_cast<std::size_t>(std::max(k, lo) - lo)] += pmf(k);
    double rest = 1.0;
    for (std::size_t i = 0; i + 1 < prob.size(); ++i) rest -= prob[i];
    prob.back() = rest;  // the upper tail, k >= hi
    double chi2 = 0;
    for (std::size_t i = 0; i < prob.size(); ++i) {
      const double e = prob[i] * static_cast<double>(n);
      chi2 += (count[i] - e) * (count[i] - e) / e;
    }
    // 11 or 21 degrees of freedom: the 0.999 quantiles are 31.3 and 46.8.
    CHECK(chi2 < (lambda < 10 ? 31.3 : 46.8));
  }
}

TEST_CASE("Kolmogorov-Smirnov: normals against Phi, uniforms against U(0,1)", "[rng][statistics]") {
  const auto engine = GENERATE(pnn::rng_engine::philox, pnn::rng_engine::ars);
  INFO("engine " << (engine == pnn::rng_engine::ars ? "ars" : "philox"));
  const std::size_t n = 100000;
  const double critical = 1.63 / std::sqrt(static_cast<double>(n));  // alpha ≈ 0.01
  pnn::rng g(pnn::seed{31337, engine});
  std::vector<float> z(n);
  pnn::fill_normal(g, z.data(), n);
  CHECK(ks_statistic(z, normal_cdf) < critical);
  std::vector<double> zd(n);
  pnn::fill_normal(g, zd.data(), n);
  CHECK(ks_statistic(zd, normal_cdf) < critical);
  std::vector<float> zs(n);
  pnn::fill_normal<float, pnn::simd::scalar>(g, zs.data(), n);
  CHECK(ks_statistic(zs, normal_cdf) < critical);
  std::vector<float> u(n);
  pnn::fill_uniform(g, u.data(), n);
  CHECK(ks_statistic(u, [](double x) { return std::clamp(x, 0.0, 1.0); }) < critical);
}

TEST_CASE("sampler preconditions", "[rng]") {
  pnn::rng g;
  float x = 0;
  CHECK_THROWS_AS(pnn::fill_uniform<float>(g, nullptr, 3), pnn::error);
  CHECK_NOTHROW(pnn::fill_uniform<float>(g, nullptr, 0));
  CHECK_THROWS_AS(pnn::fill_uniform(g, &x, 1, 2.0f, 1.0f), pnn::error);
  CHECK_THROWS_AS(pnn::fill_normal(g, &x, 1, 0.0f, -1.0f), pnn::error);
  CHECK_THROWS_AS(pnn::add_normal(g, &x, 1, std::nanf("")), pnn::error);
  CHECK_THROWS_AS(pnn::fill_bernoulli(g, &x, 1, 1.5f), pnn::error);
  CHECK_THROWS_AS(pnn::fill_bernoulli(g, &x, 1, -0.1f), pnn::error);
  CHECK_THROWS_AS(pnn::fill_poisson(g, &x, 1, -1.0f), pnn::error);
  CHECK_THROWS_AS(pnn::fill_poisson(g, &x, 1, std::nanf("")), pnn::error);
  CHECK_THROWS_AS(pnn::fill_poisson(g, &x, 1, std::numeric_limits<float>::infinity()), pnn::error);
  CHECK(g.counter() == 0);  // a rejected call draws nothing
}

}  // namespace tests_rng
