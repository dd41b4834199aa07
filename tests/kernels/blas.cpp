// SPDX-License-Identifier: MIT
// Level-1/2 kernels and element-wise maps against naive double-accumulated loops, over lengths
// around the register widths.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include <pnn/nn/activation.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/gemm.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_kernels_blas {

namespace {

namespace s = pnn::simd;

constexpr std::size_t lengths[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100};

struct lcg {
  std::uint64_t state;
  double next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0) - 0.5;
  }
};

template <class T>
std::vector<T> random_vector(std::size_t n, lcg& rng) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.next());
  return v;
}

template <class T>
double tolerance(std::size_t n, double magnitude) {
  return 2.0 * static_cast<double>(std::numeric_limits<T>::epsilon()) * static_cast<double>(n + 4) * magnitude +
         1e-30;
}

/// Rectified linear unit with a scalar and a pack call: `map` vectorises it.
struct relu_both {
  float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
  double operator()(double x) const { return x > 0.0 ? x : 0.0; }
  template <class P>
    requires(!std::is_arithmetic_v<P>)
  P operator()(const P& p) const {
    return s::max(p, P(typename P::value_type(0)));
  }
};

/// A scalar-only function: `map` calls it per element.
struct cube_scalar {
  float operator()(float x) const { return x * x * x; }
  double operator()(double x) const { return x * x * x; }
};

static_assert(s::scalar_function<relu_both, float>);
static_assert(s::pack_function<relu_both, float, s::default_arch>);
static_assert(s::pack_function<relu_both, double, s::scalar>);
static_assert(!s::vectorised_function<relu_both, double, s::scalar>);
static_assert(s::scalar_function<cube_scalar, double>);
static_assert(!s::pack_function<cube_scalar, float, s::default_arch>);

}  // namespace

TEMPLATE_TEST_CASE("reductions match naive loops", "[simd][blas]", float, double) {
  using T = TestType;
  lcg rng{1};
  for (std::size_t n : lengths) {
    const auto x = random_vector<T>(n, rng);
    const auto y = random_vector<T>(n, rng);
    double d = 0, dm = 0, sm = 0, sa = 0, ss = 0, am = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double xi = static_cast<double>(x[i]), yi = static_cast<double>(y[i]);
      d += xi * yi;
      dm += std::abs(xi * yi);
      sm += xi;
      sa += std::abs(xi);
      ss += xi * xi;
      am = std::max(am, std::abs(xi));
    }
    INFO("n=" << n);
    CHECK(std::abs(static_cast<double>(s::dot(n, x.data(), y.data())) - d) <= tolerance<T>(n, dm));
    CHECK(std::abs(static_cast<double>(s::sum(n, x.data())) - sm) <= tolerance<T>(n, sa));
    CHECK(std::abs(static_cast<double>(s::sum_squares(n, x.data())) - ss) <= tolerance<T>(n, ss));
    CHECK(static_cast<double>(s::abs_max(n, x.data())) == am);
    CHECK(s::finite_abs_max(n, x.data()) == am);
    CHECK(std::abs(static_cast<double>(s::dot<T, s::scalar>(n, x.data(), y.data())) - d) <= tolerance<T>(n, dm));
    CHECK(std::abs(static_cast<double>(s::abs_sum(n, x.data())) - sa) <= tolerance<T>(n, sa));
    // Σ |y|·x² with non-negative weights |y|; and y + |x| element by element.
    std::vector<T> w(n), acc(y);
    double ws = 0;
    for (std::size_t i = 0; i < n; ++i) {
      w[i] = y[i] < T(0) ? -y[i] : y[i];
      ws += static_cast<double>(w[i]) * static_cast<double>(x[i]) * static_cast<double>(x[i]);
    }
    CHECK(std::abs(static_cast<double>(s::weighted_sum_squares(n, x.data(), w.data())) - ws) <= tolerance<T>(n, ws));
    s::add_abs(n, x.data(), acc.data());
    for (std::size_t i = 0; i < n; ++i) CHECK(acc[i] == y[i] + (x[i] < T(0) ? -x[i] : x[i]));
  }
}

TEMPLATE_TEST_CASE("finite_abs_max is +inf for a NaN or Inf at any position, in the vector body or its tail",
                   "[simd][blas]", float, double) {
  using T = TestType;
  lcg rng{7};
  for (std::size_t n : lengths) {
    if (n == 0) {
      CHECK(s::finite_abs_max<T>(0, nullptr) == 0.0);
      continue;
    }
    const auto x = random_vector<T>(n, rng);
    for (const T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                        -std::numeric_limits<T>::infinity()}) {
      std::size_t missed = 0;
      for (std::size_t at = 0; at < n; ++at) {
        auto y = x;
        y[at] = bad;
        if (s::finite_abs_max(n, y.data()) != HUGE_VAL) ++missed;
      }
      INFO("n=" << n << " bad=" << bad);
      CHECK(missed == 0);
    }
  }
}

/// An activation whose derivative is written for scalars only (std::exp): without
/// `derivative_on_packs` it must be taken value by value, never handed a pack.
struct scalar_only_derivative {
  template <class T> T operator()(T a) const noexcept { return a; }
  template <class T> T derivative(T a, T) const noexcept { return std::exp(a); }
};
static_assert(!s::pack_derivative<scalar_only_derivative, float, s::default_arch>);
static_assert(s::is_scalar_arch<s::default_arch> || s::pack_derivative<pnn::act::tanh, float, s::default_arch>);
static_assert(!s::pack_derivative<pnn::act::tanh, float, s::scalar>);

template <class T, class F>
std::size_t derivative_mismatches(const F& f, std::size_t n, const std::vector<T>& dy, const std::vector<T>& a,
                                  const std::vector<T>& h, bool exact) {
  std::vector<T> d(n), d_scalar(n);
  s::times_derivative<T>(n, dy.data(), a.data(), h.data(), f, d.data());
  s::times_derivative<T, s::scalar>(n, dy.data(), a.data(), h.data(), f, d_scalar.data());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double want = static_cast<double>(static_cast<T>(dy[i] * f.derivative(a[i], h[i])));
    // tanh's 1 − h² may or may not be contracted to one FMA: a couple of roundings apart.
    const double tol = exact ? 0.0 : 4.0 * static_cast<double>(std::numeric_limits<T>::epsilon()) * std::abs(double(dy[i]));
    if (!(std::abs(static_cast<double>(d[i]) - want) <= tol)) ++bad;
    if (!(std::abs(static_cast<double>(d_scalar[i]) - want) <= tol)) ++bad;
  }
  return bad;
}

TEMPLATE_TEST_CASE("times_derivative takes each activation's derivative register by register as value by value",
                   "[simd][blas]", float, double) {
  using T = TestType;
  lcg rng{8};
  for (std::size_t n : lengths) {
    const auto dy = random_vector<T>(n, rng);
    auto a = random_vector<T>(n, rng);
    // Pre-activations on both sides of 0 and 1 (hard_sigmoid's corners), exactly at them, and NaN.
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = T(3) * a[i] + T(0.5);
      if (i % 7 == 3) a[i] = T(i % 2);
      if (i % 11 == 5) a[i] = std::numeric_limits<T>::quiet_NaN();
    }
    INFO("n=" << n);
    auto outputs = [&](auto f) {
      std::vector<T> h(n);
      for (std::size_t i = 0; i < n; ++i) h[i] = f(a[i]);
      return h;
    };
    CHECK(derivative_mismatches<T>(pnn::act::identity{}, n, dy, a, outputs(pnn::act::identity{}), true) == 0);
    CHECK(derivative_mismatches<T>(pnn::act::relu{}, n, dy, a, outputs(pnn::act::relu{}), true) == 0);
    CHECK(derivative_mismatches<T>(pnn::act::hard_sigmoid{}, n, dy, a, outputs(pnn::act::hard_sigmoid{}), true) == 0);
    // Finite values only for the smooth ones (a NaN h gives a NaN on both paths).
    std::vector<T> af(a);
    for (auto& v : af)
      if (std::isnan(v)) v = T(0.25);
    std::vector<T> ht(n), hs(n);
    for (std::size_t i = 0; i < n; ++i) {
      ht[i] = std::tanh(af[i]);
      hs[i] = T(1) / (T(1) + std::exp(-af[i]));
    }
    CHECK(derivative_mismatches<T>(pnn::act::tanh{}, n, dy, af, ht, false) == 0);
    CHECK(derivative_mismatches<T>(pnn::act::sigmoid{}, n, dy, af, hs, false) == 0);
    CHECK(derivative_mismatches<T>(scalar_only_derivative{}, n, dy, af, af, true) == 0);
    // delta may be dy.
    auto in_place = dy;
    s::times_derivative<T>(n, in_place.data(), a.data(), outputs(pnn::act::relu{}).data(), pnn::act::relu{},
                           in_place.data());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (in_place[i] != dy[i] * pnn::act::relu{}.derivative(a[i], pnn::act::relu{}(a[i]))) ++bad;
    CHECK(bad == 0);
  }
}

TEMPLATE_TEST_CASE("axpy and scale match naive loops", "[simd][blas]", float, double) {
  using T = TestType;
  lcg rng{2};
  for (std::size_t n : lengths) {
    const auto x = random_vector<T>(n, rng);
    auto y = random_vector<T>(n, rng);
    const auto y0 = y;
    s::axpy(n, T(-1.5), x.data(), y.data());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double ref = static_cast<double>(y0[i]) - 1.5 * static_cast<double>(x[i]);
      if (!(std::abs(static_cast<double>(y[i]) - ref) <= tolerance<T>(1, std::abs(ref) + 1.0))) ++bad;
    }
    s::scale(n, T(0.5), y.data());
    auto z = y;
    for (auto& v : z) v = std::numeric_limits<T>::quiet_NaN();
    s::scale(n, T(0), z.data());
    for (std::size_t i = 0; i < n; ++i) {
      const double ref = 0.5 * (static_cast<double>(y0[i]) - 1.5 * static_cast<double>(x[i]));
      if (!(std::abs(static_cast<double>(y[i]) - ref) <= tolerance<T>(2, std::abs(ref) + 1.0))) ++bad;
      if (z[i] != T(0)) ++bad;
    }
    INFO("n=" << n);
    CHECK(bad == 0);
  }
}

TEMPLATE_TEST_CASE("gemv, gemv_t and ger match naive loops", "[simd][blas]", float, double) {
  using T = TestType;
  lcg rng{3};
  const std::size_t dims[] = {0, 1, 3, 4, 5, 8, 9, 16, 17, 33};
  std::size_t variant = 0;
  for (std::size_t m : dims) {
    for (std::size_t n : dims) {
      const std::size_t lda = n + variant % 3;
      const T alpha = variant % 2 ? T(1) : T(-0.75);
      const T beta = variant % 3 == 0 ? T(0) : T(0.5);
      ++variant;
      const auto a = random_vector<T>(m * lda + 1, rng);
      const auto xn = random_vector<T>(n, rng);
      const auto xm = random_vector<T>(m, rng);
      auto ym = random_vector<T>(m, rng);
      auto yn = random_vector<T>(n, rng);
      const auto ym0 = ym, yn0 = yn;
      if (beta == T(0)) {
        for (auto& v : ym) v = std::numeric_limits<T>::quiet_NaN();
        for (auto& v : yn) v = std::numeric_limits<T>::quiet_NaN();
      }
      s::gemv(m, n, alpha, a.data(), lda, xn.data(), beta, ym.data());
      s::gemv_t(m, n, alpha, a.data(), lda, xm.data(), beta, yn.data());
      std::size_t bad = 0;
      for (std::size_t i = 0; i < m; ++i) {
        double r = 0, g = 0;
        for (std::size_t j = 0; j < n; ++j) {
          r += static_cast<double>(a[i * lda + j]) * static_cast<double>(xn[j]);
          g += std::abs(static_cast<double>(a[i * lda + j]) * static_cast<double>(xn[j]));
        }
        r = static_cast<double>(alpha) * r + (beta == T(0) ? 0.0 : static_cast<double>(beta * ym0[i]));
        if (!(std::abs(static_cast<double>(ym[i]) - r) <= tolerance<T>(n, g + 1.0))) ++bad;
      }
      for (std::size_t j = 0; j < n; ++j) {
        double r = 0, g = 0;
        for (std::size_t i = 0; i < m; ++i) {
          r += static_cast<double>(a[i * lda + j]) * static_cast<double>(xm[i]);
          g += std::abs(static_cast<double>(a[i * lda + j]) * static_cast<double>(xm[i]));
        }
        r = static_cast<double>(alpha) * r + (beta == T(0) ? 0.0 : static_cast<double>(beta * yn0[j]));
        if (!(std::abs(static_cast<double>(yn[j]) - r) <= tolerance<T>(m, g + 1.0))) ++bad;
      }
      auto w = a;
      s::ger(m, n, alpha, xm.data(), xn.data(), w.data(), lda);
      for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < lda; ++j) {
          const double r = j < n ? static_cast<double>(a[i * lda + j]) +
                                       static_cast<double>(alpha) * static_cast<double>(xm[i]) *
                                           static_cast<double>(xn[j])
                                 : static_cast<double>(a[i * lda + j]);
          if (!(std::abs(static_cast<double>(w[i * lda + j]) - r) <= tolerance<T>(2, 1.0))) ++bad;
        }
      }
      if (w.back() != a.back()) ++bad;
      INFO("M=" << m << " N=" << n << " lda=" << lda);
      CHECK(bad == 0);
    }
  }
}

TEMPLATE_TEST_CASE("map and bias_map apply pack and scalar functions alike", "[simd][blas]", float, double) {
  using T = TestType;
  lcg rng{4};
  for (std::size_t n : lengths) {
    const auto x = random_vector<T>(n, rng);
    std::vector<T> y(n), z(n);
    s::map(n, x.data(), y.data(), relu_both{});
    s::map(n, x.data(), z.data(), cube_scalar{});
    auto w = x;
    s::map(n, w.data(), w.data(), relu_both{});  // in place
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (y[i] != (x[i] > T(0) ? x[i] : T(0))) ++bad;
      if (w[i] != y[i]) ++bad;
      if (z[i] != x[i] * x[i] * x[i]) ++bad;
    }
    INFO("n=" << n);
    CHECK(bad == 0);
  }
  for (std::size_t m : {std::size_t{1}, std::size_t{3}}) {
    for (std::size_t n : lengths) {
      const std::size_t ldc = n + 2;
      const auto c0 = random_vector<T>(m * ldc, rng);
      const auto bias = random_vector<T>(n, rng);
      auto c1 = c0, c2 = c0, c3 = c0;
      s::bias_map(m, n, c1.data(), ldc, bias.data(), relu_both{});
      s::bias_map(m, n, c2.data(), ldc, bias.data(), cube_scalar{});
      s::bias_map<T, s::scalar>(m, n, c3.data(), ldc, nullptr, relu_both{});
      std::size_t bad = 0;
      for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < ldc; ++j) {
          const std::size_t k = i * ldc + j;
          if (j >= n) {
            if (c1[k] != c0[k] || c2[k] != c0[k] || c3[k] != c0[k]) ++bad;
            continue;
          }
          const T v = c0[k] + bias[j];
          if (c1[k] != (v > T(0) ? v : T(0))) ++bad;
          if (c2[k] != v * v * v) ++bad;
          if (c3[k] != (c0[k] > T(0) ? c0[k] : T(0))) ++bad;
        }
      }
      INFO("M=" << m << " N=" << n);
      CHECK(bad == 0);
    }
  }
}

TEMPLATE_TEST_CASE("bias_map_into writes the biased pre-activation and its image as bias_map and map do", "[simd][blas]",
                   float, double) {
  using T = TestType;
  lcg rng{9};
  for (std::size_t m : {std::size_t{1}, std::size_t{3}}) {
    for (std::size_t n : lengths) {
      const std::size_t ldc = n + 2, ldh = n + 1;
      const auto c0 = random_vector<T>(m * ldc, rng);
      const auto h0 = random_vector<T>(m * ldh, rng);
      const auto bias = random_vector<T>(n, rng);
      for (const bool with_bias : {true, false}) {
        const T* b = with_bias ? bias.data() : nullptr;
        auto c1 = c0, c2 = c0, c3 = c0;
        auto h1 = h0, h2 = h0, h3 = h0;
        s::bias_map_into(m, n, c1.data(), ldc, b, relu_both{}, h1.data(), ldh);
        s::bias_map_into(m, n, c2.data(), ldc, b, cube_scalar{}, h2.data(), ldh);
        s::bias_map_into<T, s::scalar>(m, n, c3.data(), ldc, b, relu_both{}, h3.data(), ldh);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < m; ++i) {
          for (std::size_t j = 0; j < ldc; ++j) {
            const std::size_t k = i * ldc + j;
            const T v = j < n ? (with_bias ? c0[k] + bias[j] : c0[k]) : c0[k];
            if (c1[k] != v || c2[k] != v || c3[k] != v) ++bad;  // the pre-activation, and nothing past N
          }
          for (std::size_t j = 0; j < ldh; ++j) {
            const std::size_t k = i * ldh + j;
            if (j >= n) {
              if (h1[k] != h0[k] || h2[k] != h0[k] || h3[k] != h0[k]) ++bad;
              continue;
            }
            const T v = c1[i * ldc + j];
            if (h1[k] != (v > T(0) ? v : T(0)) || h3[k] != h1[k]) ++bad;
            if (h2[k] != v * v * v) ++bad;
          }
        }
        INFO("M=" << m << " N=" << n << " bias=" << with_bias);
        CHECK(bad == 0);
      }
    }
  }
}

TEMPLATE_TEST_CASE("correlate_narrow sums every patch as narrow_nt sums the unfolded patches; its gradient is δᵀ·patches", "[simd][blas][conv]", float,
                   double) {
  using T = TestType;
  constexpr std::size_t W = s::lanes<T>;
  if constexpr (W > 1) {
    struct geometry {
      std::size_t out, channels, kernel, height, width, padding;
    };
    // One kernel and tap; LeNet-5's first layer; several input channels and an odd width;
    // the most kernels a register allows, a width spanning three registers.
    // (Kernels beyond a register's lanes are left out on narrow registers.)
    constexpr auto fewer = [](std::size_t out) { return out < W ? out : W - 1; };
    const geometry cases[] = {{1, 1, 1, 5, 7, 0}, {fewer(6), 1, 5, 28, 28, 2}, {fewer(3), 3, 3, 9, 21, 1},
                              {W - 1, 2, 2, 6, 3 * W + 5, 0}};
    lcg rng{7};
    for (const auto& g : cases) {
      CAPTURE(g.out, g.channels, g.kernel, g.width);
      const std::size_t oh = g.height + 2 * g.padding - g.kernel + 1, ow = g.width + 2 * g.padding - g.kernel + 1;
      const std::size_t taps = g.kernel * g.kernel * g.channels, rows = g.height + 2 * g.padding;
      const std::size_t pitch = s::correlate_pitch<T>(ow, g.kernel);
      const auto image = random_vector<T>(g.height * g.width * g.channels, rng);  // (y, x, c)
      const auto w = random_vector<T>(g.out * taps, rng);
      std::vector<T> planes(g.channels * rows * pitch, T(0));
      for (std::size_t y = 0; y < g.height; ++y)
        for (std::size_t x = 0; x < g.width; ++x)
          for (std::size_t c = 0; c < g.channels; ++c)
            planes[(c * rows + y + g.padding) * pitch + x + g.padding] = image[(y * g.width + x) * g.channels + c];
      // The patches unfolded as a convolution unfolds them: (ky, kx, c) per row.
      std::vector<T> patches(oh * ow * taps);
      for (std::size_t oy = 0; oy < oh; ++oy)
        for (std::size_t ox = 0; ox < ow; ++ox)
          for (std::size_t ky = 0; ky < g.kernel; ++ky)
            for (std::size_t kx = 0; kx < g.kernel; ++kx)
              for (std::size_t c = 0; c < g.channels; ++c)
                patches[(oy * ow + ox) * taps + (ky * g.kernel + kx) * g.channels + c] =
                    planes[(c * rows + oy + ky) * pitch + ox + kx];
      std::vector<T> y(oh * ow * g.out, T(-7)), reference(y.size());
      const auto before = s::kernel_work_on_this_thread();
      s::correlate_narrow<T>(g.out, g.channels, g.kernel, w.data(), taps, planes.data(), rows, pitch, oh, ow, y.data(),
                             g.out);
#if PNN_COUNT_KERNEL_WORK
      CHECK((s::kernel_work_on_this_thread() - before).flops == 2 * oh * ow * g.out * taps);
#else
      (void)before;
#endif
      s::detail::gemm::narrow_nt_dispatch<T, s::default_arch>(oh * ow, g.out, taps, T(1), patches.data(), taps, w.data(),
                                                             taps, T(0), reference.data(), g.out,
                                                             std::make_index_sequence<W - 1>{});
      CHECK(y == reference);
      // The kernels' gradient for errors d at the outputs, added to what dw holds.
      const auto d = random_vector<T>(oh * ow * g.out, rng);
      std::vector<T> dw(g.out * taps, T(1)), errors(g.out * oh * s::correlate_error_pitch<T>(ow));
      s::correlate_narrow_gradient<T>(g.out, g.channels, g.kernel, d.data(), g.out, planes.data(), rows, pitch, oh, ow,
                                      dw.data(), taps, errors.data());
      double worst_gradient = 0;
      for (std::size_t o = 0; o < g.out; ++o)
        for (std::size_t t = 0; t < taps; ++t) {
          double exact = 1;
          for (std::size_t p = 0; p < oh * ow; ++p) exact += double(d[p * g.out + o]) * double(patches[p * taps + t]);
          worst_gradient = std::max(worst_gradient, std::abs(exact - double(dw[o * taps + t])));
        }
      CHECK(worst_gradient <= tolerance<T>(oh * ow, 0.25 * double(oh * ow)));
      double worst = 0;
      for (std::size_t p = 0; p < oh * ow; ++p)
        for (std::size_t o = 0; o < g.out; ++o) {
          double exact = 0;
          for (std::size_t t = 0; t < taps; ++t) exact += double(patches[p * taps + t]) * double(w[o * taps + t]);
          worst = std::max(worst, std::abs(exact - double(y[p * g.out + o])));
        }
      CHECK(worst <= tolerance<T>(taps, 0.25 * double(taps)));
    }
#if PNN_HAS_EXCEPTIONS
    std::vector<T> buffer(4096, T(0));
    CHECK_THROWS_AS(s::correlate_narrow<T>(W, 1, 3, buffer.data(), 9, buffer.data(), 10, 64, 8, 8, buffer.data(), W),
                    pnn::error);
    CHECK_THROWS_AS(s::correlate_narrow<T>(2, 1, 3, buffer.data(), 9, buffer.data(), 10, 8, 8, 8, buffer.data(), 2),
                    pnn::error);
    CHECK_THROWS_AS(s::correlate_narrow_gradient<T>(W, 1, 3, buffer.data(), W, buffer.data(), 10, 64, 8, 8,
                                                    buffer.data(), 9, buffer.data()),
                    pnn::error);
    CHECK_THROWS_AS(s::correlate_narrow_gradient<T>(2, 1, 3, buffer.data(), 2, buffer.data(), 9, 64, 8, 8, buffer.data(),
                                                    9, buffer.data()),
                    pnn::error);
#endif
  }
}

TEMPLATE_TEST_CASE("correlate_wide sums every patch against one or two registers of kernels, and its kernel "
                   "gradient every position's errors against the image",
                   "[simd][blas][conv]", float, double) {
  using T = TestType;
  constexpr std::size_t W = s::lanes<T>;
  if constexpr (W > 1) {
    struct geometry {
      std::size_t out, channels, kernel, stride, height, width;  // the image's padding included
    };
    // Rows of 10 (blocks of 5), 8 (two registers: blocks of 4), 9 and 7 (the last block moved
    // back over the one before), 2 (one by one); stride 2; one tap.
    const geometry cases[] = {{W, 6, 5, 1, 14, 14}, {2 * W, 3, 3, 2, 13, 17}, {W, 2, 3, 1, 6, 11},
                              {2 * W, 2, 2, 1, 4, 8},  {W, 1, 1, 1, 3, 5},    {W, 3, 2, 1, 3, 3}};
    lcg rng{11};
    for (const auto& g : cases) {
      CAPTURE(g.out, g.channels, g.kernel, g.stride);
      REQUIRE(s::wide_correlation<T>(g.out));
      const std::size_t oh = (g.height - g.kernel) / g.stride + 1, ow = (g.width - g.kernel) / g.stride + 1;
      const std::size_t taps = g.kernel * g.kernel * g.channels, pitch = g.width * g.channels;
      const auto image = random_vector<T>(g.height * pitch, rng);
      const auto wt = random_vector<T>(taps * g.out, rng);
      std::vector<T> y(oh * ow * g.out, T(-7));
      s::correlate_wide<T>(g.out, g.channels, g.kernel, g.stride, wt.data(), image.data(), pitch, oh, ow, y.data());
      double worst = 0;
      for (std::size_t oy = 0; oy < oh; ++oy)
        for (std::size_t ox = 0; ox < ow; ++ox)
          for (std::size_t o = 0; o < g.out; ++o) {
            double exact = 0;
            for (std::size_t ky = 0; ky < g.kernel; ++ky)
              for (std::size_t kx = 0; kx < g.kernel; ++kx)
                for (std::size_t c = 0; c < g.channels; ++c)
                  exact += double(wt[((ky * g.kernel + kx) * g.channels + c) * g.out + o]) *
                           double(image[(oy * g.stride + ky) * pitch + (ox * g.stride + kx) * g.channels + c]);
            worst = std::max(worst, std::abs(exact - double(y[(oy * ow + ox) * g.out + o])));
          }
      CHECK(worst <= tolerance<T>(taps, 0.25 * double(taps)));
      // The transposed kernels' gradient for errors d at the outputs, added to what dwt holds:
      // kernel rows of 30 taps in blocks (15 or 6), of 9 (blocks of 4 and one tap), 6, 4 and 1.
      const auto d = random_vector<T>(oh * ow * g.out, rng);
      std::vector<T> dwt(taps * g.out, T(1));
      const auto before = s::kernel_work_on_this_thread();
      s::correlate_wide_gradient<T>(g.out, g.channels, g.kernel, g.stride, d.data(), image.data(), pitch, oh, ow,
                                    dwt.data());
#if PNN_COUNT_KERNEL_WORK
      CHECK((s::kernel_work_on_this_thread() - before).flops == 2 * oh * ow * g.out * taps);
#else
      (void)before;
#endif
      double worst_gradient = 0;
      for (std::size_t ky = 0; ky < g.kernel; ++ky)
        for (std::size_t kx = 0; kx < g.kernel; ++kx)
          for (std::size_t c = 0; c < g.channels; ++c)
            for (std::size_t o = 0; o < g.out; ++o) {
              const std::size_t t = (ky * g.kernel + kx) * g.channels + c;
              double exact = 1;
              for (std::size_t oy = 0; oy < oh; ++oy)
                for (std::size_t ox = 0; ox < ow; ++ox)
                  exact += double(d[(oy * ow + ox) * g.out + o]) *
                           double(image[(oy * g.stride + ky) * pitch + (ox * g.stride + kx) * g.channels + c]);
              worst_gradient = std::max(worst_gradient, std::abs(exact - double(dwt[t * g.out + o])));
            }
      CHECK(worst_gradient <= tolerance<T>(oh * ow, 0.25 * double(oh * ow)));
    }
    CHECK_FALSE(s::wide_correlation<T>(W - 1));
    CHECK_FALSE(s::wide_correlation<T>(3 * W));
#if PNN_HAS_EXCEPTIONS
    std::vector<T> buffer(4096, T(0));
    CHECK_THROWS_AS(s::correlate_wide<T>(W + 1, 1, 3, 1, buffer.data(), buffer.data(), 10, 4, 4, buffer.data()),
                    pnn::error);
    CHECK_THROWS_AS(s::correlate_wide<T>(W, 1, 3, 1, buffer.data(), buffer.data(), 5, 4, 4, buffer.data()), pnn::error);
    CHECK_THROWS_AS(s::correlate_wide_gradient<T>(W - 1, 1, 3, 1, buffer.data(), buffer.data(), 10, 4, 4, buffer.data()),
                    pnn::error);
    CHECK_THROWS_AS(s::correlate_wide_gradient<T>(W, 1, 3, 1, buffer.data(), buffer.data(), 5, 4, 4, buffer.data()),
                    pnn::error);
#endif
  }
}

#if PNN_HAS_EXCEPTIONS
TEST_CASE("blas kernels reject null operands with non-zero sizes", "[simd][blas]") {
  std::vector<float> v(8, 1.0f);
  CHECK_THROWS_AS(s::dot<float>(3, nullptr, v.data()), pnn::error);
  CHECK_THROWS_AS(s::axpy<float>(3, 1.0f, v.data(), nullptr), pnn::error);
  CHECK_THROWS_AS(s::gemv<float>(2, 2, 1.0f, nullptr, 2, v.data(), 0.0f, v.data()), pnn::error);
  CHECK_THROWS_AS(s::gemv_t<float>(2, 3, 1.0f, v.data(), 2, v.data(), 0.0f, v.data()), pnn::error);
  CHECK_THROWS_AS(s::ger<float>(2, 2, 1.0f, v.data(), nullptr, v.data(), 2), pnn::error);
  CHECK_THROWS_AS(s::bias_map<float>(2, 2, nullptr, 2, nullptr, cube_scalar{}), pnn::error);
  CHECK_THROWS_AS(s::bias_map_into<float>(2, 2, v.data(), 2, nullptr, cube_scalar{}, nullptr, 2), pnn::error);
  CHECK_THROWS_AS(s::bias_map_into<float>(2, 3, v.data(), 2, nullptr, cube_scalar{}, v.data(), 3), pnn::error);
  CHECK_THROWS_AS(s::times_derivative<float>(3, v.data(), nullptr, v.data(), pnn::act::tanh{}, v.data()), pnn::error);
  CHECK(s::sum<float>(0, nullptr) == 0.0f);
}
#endif

}  // namespace tests_kernels_blas
