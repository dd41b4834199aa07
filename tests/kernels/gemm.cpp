// SPDX-License-Identifier: MIT
// GEMM against a naive double-accumulated loop, on every path (direct, packed, skinny,
// weight_rows), over shapes
// around the register widths and cache blocks, with padded leading dimensions and NaN-filled C
// for beta == 0.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include <pnn/core/threads.hpp>
#include <pnn/nn/activation.hpp>
#include <pnn/simd/gemm.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_kernels_gemm {

namespace {

namespace g = pnn::simd::detail::gemm;
using g::layout;
using g::path;

struct lcg {
  std::uint64_t s;
  double next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * (1.0 / 9007199254740992.0) - 0.5;
  }
};

template <class T>
std::vector<T> random_matrix(std::size_t rows, std::size_t ld, lcg& rng) {
  std::vector<T> v(rows * ld + 1);
  for (auto& x : v) x = static_cast<T>(rng.next());
  return v;
}

struct shape {
  std::size_t m, n, k;
};

/// Runs one product on `how` and checks each element against the naive result, with a bound
/// proportional to K and to the magnitudes involved.
template <class T, class Arch = pnn::simd::default_arch>
void check(layout lay, path how, shape s, T alpha, T beta, std::size_t pad, lcg& rng) {
  const auto [m, n, k] = s;
  const bool ta = lay == layout::tn, tb = lay == layout::nt;
  const std::size_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  const std::vector<T> a = random_matrix<T>(ta ? k : m, lda, rng);
  const std::vector<T> b = random_matrix<T>(tb ? n : k, ldb, rng);
  std::vector<T> c = random_matrix<T>(m, ldc, rng);
  if (beta == T(0)) {
    for (auto& x : c) x = std::numeric_limits<T>::quiet_NaN();
  }
  const std::vector<T> c0 = c;

  switch (lay) {
    case layout::nn:
      g::run<layout::nn, T, Arch>(how, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      break;
    case layout::nt:
      g::run<layout::nt, T, Arch>(how, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      break;
    case layout::tn:
      g::run<layout::tn, T, Arch>(how, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      break;
  }

  // Reference in i-p-j order over dense double copies: fast enough unoptimised, too.
  std::vector<double> ad(m * k), bd(k * n), ref(m * n, 0.0), mag(m * n, 0.0);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t p = 0; p < k; ++p) ad[i * k + p] = static_cast<double>(ta ? a[p * lda + i] : a[i * lda + p]);
  }
  for (std::size_t p = 0; p < k; ++p) {
    for (std::size_t j = 0; j < n; ++j) bd[p * n + j] = static_cast<double>(tb ? b[j * ldb + p] : b[p * ldb + j]);
  }
  for (std::size_t i = 0; i < m; ++i) {
    double* r = ref.data() + i * n;
    double* g = mag.data() + i * n;
    for (std::size_t p = 0; p < k; ++p) {
      const double aip = ad[i * k + p];
      const double* bp = bd.data() + p * n;
      for (std::size_t j = 0; j < n; ++j) {
        r[j] += aip * bp[j];
        g[j] += std::abs(aip * bp[j]);
      }
    }
  }

  const double eps = static_cast<double>(std::numeric_limits<T>::epsilon());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < ldc; ++j) {
      const double got = static_cast<double>(c[i * ldc + j]);
      if (j >= n) {
        // Padding between rows must be left alone (NaN compares unequal, so compare bits).
        if (!(c[i * ldc + j] == c0[i * ldc + j] || (std::isnan(got) && std::isnan(c0[i * ldc + j])))) ++bad;
        continue;
      }
      double r = static_cast<double>(alpha) * ref[i * n + j];
      double bound = std::abs(static_cast<double>(alpha)) * mag[i * n + j];
      if (beta != T(0)) {
        const double cb = static_cast<double>(beta) * static_cast<double>(c0[i * ldc + j]);
        r += cb;
        bound += std::abs(cb);
      }
      const double tol = 2.0 * eps * static_cast<double>(k + 4) * bound + 1e-30;
      if (!(std::abs(got - r) <= tol)) ++bad;
    }
  }
  // Trailing element past the last row: never touched.
  if (!(c.back() == c0.back() || (std::isnan(c.back()) && std::isnan(c0.back())))) ++bad;
  INFO("layout " << static_cast<int>(lay) << " path " << static_cast<int>(how) << " M=" << m << " N=" << n
                 << " K=" << k << " alpha=" << alpha << " beta=" << beta << " pad=" << pad);
  CHECK(bad == 0);
}

struct scalars {
  double alpha, beta;
};
constexpr scalars coefficients[] = {{1.0, 0.0}, {-0.5, 0.0}, {2.0, 1.0}, {0.75, -1.25}};
constexpr std::size_t pads[] = {0, 1, 5};

template <class T>
void sweep(layout lay) {
  const std::size_t ms[] = {1, 3, 7, 8, 9, 17, 33};
  const std::size_t ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33};
  const std::size_t ks[] = {1, 3, 17, 33};
  lcg rng{42};
  std::size_t variant = 0;
  for (std::size_t m : ms) {
    for (std::size_t n : ns) {
      for (std::size_t k : ks) {
        const scalars ab = coefficients[variant % 4];
        const std::size_t pad = pads[variant % 3];
        ++variant;
        for (path how : {path::direct, path::packed, path::skinny, path::weight_rows, path::automatic}) {
          check<T>(lay, how, {m, n, k}, static_cast<T>(ab.alpha), static_cast<T>(ab.beta), pad, rng);
        }
      }
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("gemm matches a naive product on small shapes", "[simd][gemm]", float, double) {
  SECTION("nn") { sweep<TestType>(layout::nn); }
  SECTION("nt") { sweep<TestType>(layout::nt); }
  SECTION("tn") { sweep<TestType>(layout::tn); }
}

TEMPLATE_TEST_CASE("gemm matches a naive product on a dense-layer shape", "[simd][gemm]", float, double) {
  lcg rng{7};
  // The double run covers one layout only, to keep unoptimised builds fast.
  for (layout lay : {layout::nn, layout::nt, layout::tn}) {
    if (sizeof(TestType) == sizeof(double) && lay != layout::nn) continue;
    check<TestType>(lay, path::automatic, {64, 256, 784}, TestType(1), TestType(0), 0, rng);
  }
  check<TestType>(layout::tn, path::automatic, {256, 784, 64}, TestType(-0.01), TestType(1), 3, rng);
}

TEMPLATE_TEST_CASE("gemm's skinny path matches a naive product on a 256→10 layer's shapes", "[simd][gemm]", float,
                   double) {
  // The reads of an output layer: forward A·Bᵀ with N = 10, transposed A·B with K = 10, on
  // batches that leave every row remainder of the 4-row blocks, with K and N off the vector width.
  lcg rng{13};
  std::size_t variant = 0;
  for (std::size_t m : {50U, 64U, 97U, 100U}) {
    for (std::size_t wide : {256U, 259U}) {
      const scalars ab = coefficients[variant % 4];
      const std::size_t pad = pads[variant % 3];
      ++variant;
      for (path how : {path::skinny, path::automatic}) {
        const auto alpha = static_cast<TestType>(ab.alpha), beta = static_cast<TestType>(ab.beta);
        check<TestType>(layout::nt, how, {m, 10, wide}, alpha, beta, pad, rng);
        check<TestType>(layout::nn, how, {m, wide, 10}, alpha, beta, pad, rng);
        check<TestType>(layout::tn, how, {m, wide, 10}, alpha, beta, pad, rng);
      }
    }
  }
  // Column counts that exercise every grouping of the dot-product blocks (3, 2+2, 3+2, 1).
  for (std::size_t n = 1; n <= 14; ++n) check<TestType>(layout::nt, path::skinny, {9, n, 40}, TestType(1), TestType(0), 1, rng);
}

TEST_CASE("gemm's automatic choice picks the skinny path for skinny shapes and agrees with the others", "[simd][gemm]") {
  // Bitwise: the skinny path is deterministic and the automatic path must route to it.
  lcg rng{17};
  const auto a = random_matrix<float>(64, 256, rng);
  const auto b = random_matrix<float>(10, 256, rng);
  std::vector<float> c1(64 * 10), c2(64 * 10);
  pnn::simd::gemm_nt<float>(64, 10, 256, 1.0f, a.data(), 256, b.data(), 256, 0.0f, c1.data(), 10);
  g::run<layout::nt, float, pnn::simd::default_arch>(path::skinny, 64, 10, 256, 1.0f, a.data(), 256, b.data(), 256,
                                                      0.0f, c2.data(), 10);
  CHECK(c1 == c2);
  using arch = pnn::simd::default_arch;
  constexpr std::size_t lanes = pnn::simd::pack<float, arch>::size;
  if constexpr (lanes > 1 && PNN_GEMM_PACKING) {
    // The thresholds scale with the vector width: N ≤ 4 vectors (A·Bᵀ), K ≤ 2 vectors (A·B, Aᵀ·B).
    CHECK(g::choose<layout::nt, float, arch>(100, 10, 256) == path::skinny);
    CHECK(g::choose<layout::nn, float, arch>(100, 256, 2 * lanes) == path::skinny);
    CHECK(g::choose<layout::tn, float, arch>(100, 256, 2 * lanes) == path::skinny);
    CHECK(g::choose<layout::nn, float, arch>(100, 256, 2 * lanes + 1) == path::packed);
    // The MLP's forward pass and weight update take the weight-row chunks (A·Bᵀ in float with AVX).
    CHECK(g::choose<layout::nt, float, arch>(64, 256, 784) ==
          (PNN_DETAIL_GEMM_AVX_TRANSPOSE ? path::weight_rows : path::packed));
    CHECK(g::choose<layout::tn, float, arch>(256, 784, 64) == path::weight_rows);
    CHECK(g::choose<layout::nt, float, arch>(1000, 256, 784) == path::packed);
    // B too large to stay in L2 while every block of 4 rows streams it: packed after all.
    CHECK(g::choose<layout::nt, float, arch>(1000, 32, 8192) == path::packed);
    CHECK(g::choose<layout::nt, float, arch>(1, 10, 256) == path::direct);
  }
}

TEST_CASE("gemm spans several cache blocks in every dimension", "[simd][gemm]") {
  lcg rng{11};
  // Larger than mc, nc and kc for double (the smallest blocks; the loops do not depend on the
  // type), and not multiples of the register tile.
  check<double>(layout::nn, path::packed, {130, 262, 259}, 0.5, 0.25, 2, rng);
  check<double>(layout::nt, path::packed, {131, 259, 262}, 1.0, 0.0, 1, rng);
  check<double>(layout::tn, path::packed, {127, 263, 257}, -1.0, 1.0, 0, rng);
  // float packs A·Bᵀ's and A·B's row-major panels by in-register transposes of 6×8 and 8×8
  // blocks (on AVX and AVX-512): blocks of k that start off a multiple of 8 and leave remainders.
  check<float>(layout::nt, path::packed, {259, 70, 301}, 1.0f, 0.0f, 3, rng);
  check<float>(layout::nn, path::packed, {259, 70, 301}, -0.5f, 1.0f, 1, rng);
  check<float>(layout::nt, path::packed, {13, 530, 270}, 2.0f, 0.0f, 0, rng);
}

TEST_CASE("gemm's weight-row chunks agree with the packed path and never write outside C", "[simd][gemm]") {
  lcg rng{23};
  using arch = pnn::simd::default_arch;
  // Ragged everywhere: batches that are not a multiple of the tile (nor of 8, for the transpose
  // back), weight rows that leave a partial chunk and a partial register tile, k that splits
  // into several blocks; every alpha/beta rule; padded strides.
  struct product {
    layout lay;
    std::size_t m, n, k;
  };
  const product shapes[] = {{layout::nt, 50, 256, 784}, {layout::nt, 64, 131, 300},  {layout::nt, 13, 77, 520},
                          {layout::nt, 128, 100, 64}, {layout::tn, 256, 784, 64},  {layout::tn, 131, 300, 50},
                          {layout::tn, 49, 70, 256},  {layout::tn, 25, 33, 7}};
  std::size_t variant = 0;
  for (const auto& s : shapes) {
    for (const auto& ab : coefficients) {
      INFO("layout " << int(s.lay) << " " << s.m << "x" << s.n << "x" << s.k << " alpha " << ab.alpha << " beta "
                     << ab.beta);
      check<float>(s.lay, path::weight_rows, {s.m, s.n, s.k}, float(ab.alpha), float(ab.beta), pads[variant++ % 3], rng);
      check<double>(s.lay, path::weight_rows, {s.m, s.n, s.k}, ab.alpha, ab.beta, pads[variant++ % 3], rng);
    }
  }
  // Bitwise against the packed path where the tiles round alike: every Aᵀ·B, and A·Bᵀ with
  // alpha = 1 (the forward pass), with and without beta.
  for (const auto& s : shapes) {
    for (const float beta : {0.0f, 1.0f, -0.5f}) {
      INFO("layout " << int(s.lay) << " " << s.m << "x" << s.n << "x" << s.k << " beta " << beta);
      const std::size_t ar = s.lay == layout::tn ? s.k : s.m, ac = s.lay == layout::tn ? s.m : s.k;
      const std::size_t br = s.lay == layout::nt ? s.n : s.k, bc = s.lay == layout::nt ? s.k : s.n;
      const auto a = random_matrix<float>(ar, ac, rng);
      const auto b = random_matrix<float>(br, bc, rng);
      const auto c0 = random_matrix<float>(s.m, s.n, rng);
      auto c1 = c0, c2 = c0;
      const float alpha = s.lay == layout::tn ? -0.75f : 1.0f;
      if (s.lay == layout::nt) {
        g::run<layout::nt, float, arch>(path::packed, s.m, s.n, s.k, alpha, a.data(), ac, b.data(), bc, beta, c1.data(), s.n);
        g::run<layout::nt, float, arch>(path::weight_rows, s.m, s.n, s.k, alpha, a.data(), ac, b.data(), bc, beta,
                                        c2.data(), s.n);
      } else {
        g::run<layout::tn, float, arch>(path::packed, s.m, s.n, s.k, alpha, a.data(), ac, b.data(), bc, beta, c1.data(), s.n);
        g::run<layout::tn, float, arch>(path::weight_rows, s.m, s.n, s.k, alpha, a.data(), ac, b.data(), bc, beta,
                                        c2.data(), s.n);
      }
      CHECK(c1 == c2);
    }
  }
}

template <class F>
void check_bias_map_epilogue(std::size_t m, std::size_t n, std::size_t k, const F& f, bool with_bias, bool in_place,
                             lcg& rng) {
  INFO(m << "x" << n << "x" << k << " bias " << with_bias << " in place " << in_place);
  const auto a = random_matrix<float>(m, k, rng);
  const auto b = random_matrix<float>(n, k, rng);
  const auto bias = random_matrix<float>(1, n, rng);
  const float* bp = with_bias ? bias.data() : nullptr;
  // The reference: the product, then the separate pass over its outputs.
  std::vector<float> c_ref(m * n + 1, -7.0f), h_ref(m * n + 1, -9.0f);
  pnn::simd::gemm_nt<float>(m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c_ref.data(), n);
  if (in_place) {
    pnn::simd::bias_map<float>(m, n, c_ref.data(), n, bp, f);
  } else {
    pnn::simd::bias_map_into<float>(m, n, c_ref.data(), n, bp, f, h_ref.data(), n);
  }
  std::vector<float> c(m * n + 1, -7.0f), h(m * n + 1, -9.0f);
  pnn::simd::gemm_nt_bias_map<float>(m, n, k, a.data(), k, b.data(), k, bp, f, c.data(), n,
                                     in_place ? c.data() : h.data(), n);
  CHECK(c == c_ref);  // the sentinel past the end included
  CHECK(h == h_ref);
}

TEST_CASE("gemm_nt_bias_map gives bitwise the product followed by bias and activation", "[simd][gemm]") {
  lcg rng{31};
  // The MLP's layer (weight-row chunks, 48-row chunks on AVX-512), ragged chunk and tail
  // counts, a single row (direct), a narrow output (skinny), a large batch (packed), K == 0.
  struct product {
    std::size_t m, n, k;
  };
  const product shapes[] = {{64, 256, 784}, {50, 250, 300}, {13, 77, 520}, {128, 100, 64},
                            {1, 10, 50},    {100, 10, 256}, {300, 100, 64}, {20, 60, 0}};
  for (const auto& s : shapes) {
    for (const bool with_bias : {true, false}) {
      for (const bool in_place : {false, true}) {
        check_bias_map_epilogue(s.m, s.n, s.k, pnn::act::tanh{}, with_bias, in_place, rng);
        check_bias_map_epilogue(s.m, s.n, s.k, pnn::act::relu{}, with_bias, in_place, rng);
        check_bias_map_epilogue(s.m, s.n, s.k, pnn::act::identity{}, with_bias, in_place, rng);
      }
    }
  }
  // The chunks' epilogues run on whichever thread computed them: the same bits on any team.
  const unsigned before = pnn::num_threads();
  for (const unsigned t : {2U, 3U}) {
    pnn::set_num_threads(t);
    check_bias_map_epilogue(64, 256, 784, pnn::act::tanh{}, true, false, rng);
    check_bias_map_epilogue(50, 250, 300, pnn::act::sigmoid{}, true, true, rng);
  }
  pnn::set_num_threads(before);
  std::vector<float> a(6, 1.0f), b(6, 1.0f), c(4, 0.0f);
  CHECK_THROWS(pnn::simd::gemm_nt_bias_map<float>(2, 2, 3, a.data(), 3, b.data(), 3, nullptr, pnn::act::relu{},
                                                  c.data(), 2, nullptr, 2));
  CHECK_THROWS(pnn::simd::gemm_nt_bias_map<float>(2, 2, 3, a.data(), 3, b.data(), 3, nullptr, pnn::act::relu{},
                                                  c.data(), 2, c.data(), 3));
}

TEST_CASE("gemm on the scalar architecture runs the same code with one lane", "[simd][gemm]") {
  lcg rng{3};
  for (layout lay : {layout::nn, layout::nt, layout::tn}) {
    for (path how : {path::direct, path::packed, path::skinny, path::weight_rows}) {
      check<float, pnn::simd::scalar>(lay, how, {9, 17, 33}, 1.5f, 0.0f, 1, rng);
      check<double, pnn::simd::scalar>(lay, how, {5, 3, 17}, -1.0, 0.5, 0, rng);
    }
  }
  std::vector<float> a(6, 1.0f), b(6, 2.0f), c(4, 0.0f);
  pnn::simd::gemm_nn<float, pnn::simd::scalar>(2, 2, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>{6.0f, 6.0f, 6.0f, 6.0f});
}

TEST_CASE("gemm edge cases: empty sizes, alpha == 0, K == 0", "[simd][gemm]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> a(12, nan), b(12, nan), c(4, nan);
  // alpha == 0 reads neither A nor B; beta == 0 overwrites NaN.
  pnn::simd::gemm_nn<float>(2, 2, 3, 0.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>(4, 0.0f));
  // K == 0 only scales C.
  c.assign(4, 2.0f);
  pnn::simd::gemm_tn<float>(2, 2, 0, 1.0f, nullptr, 2, nullptr, 2, 3.0f, c.data(), 2);
  CHECK(c == std::vector<float>(4, 6.0f));
  // Nothing to do: no pointer is touched.
  pnn::simd::gemm_nt<double>(0, 0, 5, 1.0, nullptr, 0, nullptr, 0, 0.0, nullptr, 0);
}

TEST_CASE("gemm's per-thread packing buffers keep concurrent products apart", "[simd][gemm]") {
  lcg rng{5};
  const std::size_t n = 70;
  const auto a = random_matrix<float>(n, n, rng);
  const auto b = random_matrix<float>(n, n, rng);
  std::vector<float> serial(n * n), c1(n * n), c2(n * n);
  pnn::simd::gemm_nn<float>(n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, serial.data(), n);
  auto work = [&](std::vector<float>* c, bool transposed) {
    for (int rep = 0; rep < 20; ++rep) {
      if (transposed) {
        // A different product at the same time: a shared buffer would corrupt c1.
        pnn::simd::gemm_tn<float>(n, n, n, 1.0f, b.data(), n, a.data(), n, 0.0f, c->data(), n);
      } else {
        pnn::simd::gemm_nn<float>(n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c->data(), n);
      }
    }
  };
  std::thread t1(work, &c1, false);
  std::thread t2(work, &c2, true);
  t1.join();
  t2.join();
  CHECK(c1 == serial);  // same blocking, same order of operations: bitwise equal
}

#if PNN_HAS_EXCEPTIONS
TEST_CASE("gemm rejects violated preconditions", "[simd][gemm]") {
  std::vector<float> a(12, 1.0f), b(12, 1.0f), c(4, 0.0f);
  CHECK_THROWS_AS(pnn::simd::gemm_nn<float>(2, 2, 3, 1.0f, nullptr, 3, b.data(), 2, 0.0f, c.data(), 2),
                  pnn::error);
  CHECK_THROWS_AS(pnn::simd::gemm_nt<float>(2, 2, 3, 1.0f, a.data(), 3, nullptr, 3, 0.0f, c.data(), 2),
                  pnn::error);
  CHECK_THROWS_AS(pnn::simd::gemm_tn<float>(2, 2, 3, 1.0f, a.data(), 2, b.data(), 2, 0.0f, nullptr, 2),
                  pnn::error);
  CHECK_THROWS_AS(pnn::simd::gemm_nn<float>(2, 2, 3, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2),
                  pnn::error);
  CHECK_THROWS_AS(pnn::simd::gemm_nt<float>(2, 2, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 2),
                  pnn::error);
  CHECK_THROWS_AS(pnn::simd::gemm_tn<float>(2, 2, 3, 1.0f, a.data(), 1, b.data(), 2, 0.0f, c.data(), 2),
                  pnn::error);
  CHECK_THROWS_AS(pnn::simd::gemm_nn<float>(2, 2, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 1),
                  pnn::error);
}
#endif

TEST_CASE("the matrix kernels count their work: 2·M·N·K FLOPs and each operand's bytes once", "[simd][gemm][work]") {
#if PNN_COUNT_KERNEL_WORK
  const std::size_t m = 7, n = 5, k = 3;
  std::vector<float> a(m * k, 1.0f), b(k * n, 1.0f), c(m * n, 0.0f), x(n, 1.0f), y(m, 0.0f);
  const auto w0 = pnn::simd::kernel_work_on_this_thread();
  pnn::simd::gemm_nn<float>(m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  const auto w1 = pnn::simd::kernel_work_on_this_thread() - w0;
  CHECK(w1.flops == 2 * m * n * k);
  CHECK(w1.bytes == 4 * (m * k + k * n + m * n));
  // Accumulating into C reads it as well.
  pnn::simd::gemm_nt<float>(m, k, n, 1.0f, c.data(), n, b.data(), n, 1.0f, a.data(), k);
  const auto w2 = pnn::simd::kernel_work_on_this_thread() - w0 - w1;
  CHECK(w2.flops == 2 * m * n * k);
  CHECK(w2.bytes == 4 * (m * n + k * n + 2 * m * k));
  // Nothing to multiply (K = 0) is no arithmetic.
  pnn::simd::gemm_nn<float>(m, n, 0, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  CHECK((pnn::simd::kernel_work_on_this_thread() - w0).flops == w1.flops + w2.flops);
  // Counts are per thread: another thread's products do not appear here.
  const auto before = pnn::simd::kernel_work_on_this_thread();
  std::thread([&] {
    std::vector<float> cc(m * n);
    pnn::simd::gemm_nn<float>(m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, cc.data(), n);
    CHECK(pnn::simd::kernel_work_on_this_thread().flops == 2 * m * n * k);
  }).join();
  CHECK(pnn::simd::kernel_work_on_this_thread().flops == before.flops);
#else
  CHECK(pnn::simd::kernel_work_on_this_thread().flops == 0);
#endif
}

}  // namespace tests_kernels_gemm
