// SPDX-License-Identifier: MIT
/// \file
/// \brief Vector and matrix-vector kernels (BLAS levels 1 and 2) and fused element-wise maps.
///
/// What a layer needs besides GEMM: single-sample products (`gemv`, `gemv_t`), the rank-1
/// update of an online weight change (`ger`), reductions for norms, losses and checks, fused
/// bias-and-activation passes (`bias_map`, `bias_map_into`) and the backward `times_derivative`,
/// each touching a value once. All are written once over `pack<T, Arch>`, so they run on every
/// xsimd architecture and our `scalar` one. Functors vectorise when they offer a pack call
/// (`pack_function`, `pack_derivative`); otherwise their scalar call runs per element.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <pnn/core/config.hpp>
#include <pnn/core/error.hpp>
#include <pnn/simd/arch.hpp>
#include <pnn/simd/work.hpp>

namespace pnn::simd {

/// An element-wise function with a scalar call `T f(T) const`.
template <class F, class T>
concept scalar_function = requires(const F& f, T x) {
  { f(x) } -> std::convertible_to<T>;
};

/// An element-wise function that also maps a whole register: `pack<T, Arch> f(pack<T, Arch>) const`.
template <class F, class T, class Arch>
concept pack_function = requires(const F& f, pack<T, Arch> p) {
  { f(p) } -> std::same_as<pack<T, Arch>>;
};

/// True when `map`/`bias_map` run `F` a register at a time on `Arch`. The scalar arch always
/// uses the scalar call: a one-lane pack call would only add a wrapper around it.
template <class F, class T, class Arch>
concept vectorised_function = (!is_scalar_arch<Arch>) && pack_function<F, T, Arch>;

/// Σ x(i)·y(i).
/// \pre x, y are not null when n > 0.
template <class T, class Arch = default_arch>
T dot(std::size_t n, const T* x, const T* y) {
  PNN_EXPECTS(n == 0 || (x != nullptr && y != nullptr), "dot: null vector");
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  // Four accumulators hide the FMA latency; one would make the loop latency-bound.
  P s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0));
  std::size_t i = 0;
  for (const std::size_t i_end = n - n % (4 * W); i < i_end; i += 4 * W) {
    s0 = simd::fma(P::load_unaligned(x + i), P::load_unaligned(y + i), s0);
    s1 = simd::fma(P::load_unaligned(x + i + W), P::load_unaligned(y + i + W), s1);
    s2 = simd::fma(P::load_unaligned(x + i + 2 * W), P::load_unaligned(y + i + 2 * W), s2);
    s3 = simd::fma(P::load_unaligned(x + i + 3 * W), P::load_unaligned(y + i + 3 * W), s3);
  }
  for (const std::size_t i_end = n - n % W; i < i_end; i += W) s0 = simd::fma(P::load_unaligned(x + i), P::load_unaligned(y + i), s0);
  T s = simd::reduce_add((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

/// Σ x(i).
/// \pre x is not null when n > 0.
template <class T, class Arch = default_arch>
T sum(std::size_t n, const T* x) {
  PNN_EXPECTS(n == 0 || x != nullptr, "sum: null vector");
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  P s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0));
  std::size_t i = 0;
  for (const std::size_t i_end = n - n % (4 * W); i < i_end; i += 4 * W) {
    s0 += P::load_unaligned(x + i);
    s1 += P::load_unaligned(x + i + W);
    s2 += P::load_unaligned(x + i + 2 * W);
    s3 += P::load_unaligned(x + i + 3 * W);
  }
  for (const std::size_t i_end = n - n % W; i < i_end; i += W) s0 += P::load_unaligned(x + i);
  T s = simd::reduce_add((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += x[i];
  return s;
}

/// Σ x(i)², the squared Euclidean norm.
/// \pre x is not null when n > 0.
template <class T, class Arch = default_arch>
T sum_squares(std::size_t n, const T* x) {
  PNN_EXPECTS(n == 0 || x != nullptr, "sum_squares: null vector");
  return dot<T, Arch>(n, x, x);
}

/// Σ |x(i)|, the 1-norm.
/// \pre x is not null when n > 0.
template <class T, class Arch = default_arch>
T abs_sum(std::size_t n, const T* x) {
  PNN_EXPECTS(n == 0 || x != nullptr, "abs_sum: null vector");
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  P s0(T(0)), s1(T(0));
  std::size_t i = 0;
  for (const std::size_t i_end = n - n % (2 * W); i < i_end; i += 2 * W) {
    s0 += simd::abs(P::load_unaligned(x + i));
    s1 += simd::abs(P::load_unaligned(x + i + W));
  }
  for (const std::size_t i_end = n - n % W; i < i_end; i += W) s0 += simd::abs(P::load_unaligned(x + i));
  T s = simd::reduce_add(s0 + s1);
  for (; i < n; ++i) s += x[i] < T(0) ? -x[i] : x[i];
  return s;
}

/// y(i) += |x(i)|.
/// \pre x, y are not null when n > 0 and do not overlap.
template <class T, class Arch = default_arch>
void add_abs(std::size_t n, const T* x, T* y) {
  PNN_EXPECTS(n == 0 || (x != nullptr && y != nullptr), "add_abs: null vector");
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  std::size_t i = 0;
  for (const std::size_t i_end = n - n % W; i < i_end; i += W)
    (P::load_unaligned(y + i) + simd::abs(P::load_unaligned(x + i))).store_unaligned(y + i);
  for (; i < n; ++i) y[i] += x[i] < T(0) ? -x[i] : x[i];
}

/// Σ w(i)·x(i)², a weighted squared norm (e.g. the power Σ G·u² a drive dissipates in
/// conductances G).
/// \pre x, w are not null when n > 0.
template <class T, class Arch = default_arch>
T weighted_sum_squares(std::size_t n, const T* x, const T* w) {
  PNN_EXPECTS(n == 0 || (x != nullptr && w != nullptr), "weighted_sum_squares: null vector");
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  P s0(T(0)), s1(T(0));
  std::size_t i = 0;
  for (const std::size_t i_end = n - n % (2 * W); i < i_end; i += 2 * W) {
    const P x0 = P::load_unaligned(x + i), x1 = P::load_unaligned(x + i + W);
    s0 = simd::fma(x0 * x0, P::load_unaligned(w + i), s0);
    s1 = simd::fma(x1 * x1, P::load_unaligned(w + i + W), s1);
  }
  for (const std::size_t i_end = n - n % W; i < i_end; i += W) {
    const P x0 = P::load_unaligned(x + i);
    s0 = simd::fma(x0 * x0, P::load_unaligned(w + i), s0);
  }
  T s = simd::reduce_add(s0 + s1);
  for (; i < n; ++i) s += w[i] * x[i] * x[i];
  return s;
}

/// max |x(i)|, the infinity norm; 0 for an empty vector.
/// \pre x is not null when n > 0.
template <class T, class Arch = default_arch>
T abs_max(std::size_t n, const T* x) {
  PNN_EXPECTS(n == 0 || x != nullptr, "abs_max: null vector");
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  P m0(T(0)), m1(T(0));
  std::size_t i = 0;
  for (const std::size_t i_end = n - n % (2 * W); i < i_end; i += 2 * W) {
    m0 = simd::max(m0, simd::abs(P::load_unaligned(x + i)));
    m1 = simd::max(m1, simd::abs(P::load_unaligned(x + i + W)));
  }
  for (const std::size_t i_end = n - n % W; i < i_end; i += W) m0 = simd::max(m0, simd::abs(P::load_unaligned(x + i)));
  T m = simd::reduce_max(simd::max(m0, m1));
  for (; i < n; ++i) {
    const T a = x[i] < T(0) ? -x[i] : x[i];
    m = a > m ? a : m;
  }
  return m;
}

/// max |x(i)| over n values, or +∞ when one is not finite, in one pass (x − x is 0 exactly for
/// finite x): a finiteness check and the bound that rules out overflow of what is formed from
/// x, for the price of reading x once. 0 for an empty vector.
/// \pre x is not null when n > 0.
template <class T, class Arch = default_arch>
double finite_abs_max(std::size_t n, const T* x) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  P nan_sum(T(0)), m0(T(0)), m1(T(0));
  std::size_t i = 0;
  for (const std::size_t end = n - n % (2 * W); i < end; i += 2 * W) {
    const P a = P::load_unaligned(x + i), b = P::load_unaligned(x + i + W);
    nan_sum += (a - a) + (b - b);
    m0 = simd::max(m0, simd::abs(a));
    m1 = simd::max(m1, simd::abs(b));
  }
  for (const std::size_t end = n - n % W; i < end; i += W) {
    const P a = P::load_unaligned(x + i);
    nan_sum += a - a;
    m0 = simd::max(m0, simd::abs(a));
  }
  T tail = simd::reduce_add(nan_sum);
  T m = simd::reduce_max(simd::max(m0, m1));
  for (; i < n; ++i) {
    tail += x[i] - x[i];
    const T a = x[i] < T(0) ? -x[i] : x[i];
    m = a > m ? a : m;
  }
  return tail == T(0) ? double(m) : HUGE_VAL;
}

/// y += alpha·x.
/// \pre x, y are not null when n > 0; they do not overlap unless equal.
template <class T, class Arch = default_arch>
void axpy(std::size_t n, std::type_identity_t<T> alpha, const T* x, T* y) {
  PNN_EXPECTS(n == 0 || (x != nullptr && y != nullptr), "axpy: null vector");
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  const P va(alpha);
  std::size_t i = 0;
  for (const std::size_t i_end = n - n % (2 * W); i < i_end; i += 2 * W) {
    const P r0 = simd::fma(va, P::load_unaligned(x + i), P::load_unaligned(y + i));
    const P r1 = simd::fma(va, P::load_unaligned(x + i + W), P::load_unaligned(y + i + W));
    r0.store_unaligned(y + i);
    r1.store_unaligned(y + i + W);
  }
  for (const std::size_t i_end = n - n % W; i < i_end; i += W) simd::fma(va, P::load_unaligned(x + i), P::load_unaligned(y + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];
}

/// x *= alpha. alpha == 0 writes zeros without reading x (x may hold NaN).
/// \pre x is not null when n > 0.
template <class T, class Arch = default_arch>
void scale(std::size_t n, std::type_identity_t<T> alpha, T* x) {
  PNN_EXPECTS(n == 0 || x != nullptr, "scale: null vector");
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  std::size_t i = 0;
  if (alpha == T(0)) {
    const P zero(T(0));
    for (const std::size_t i_end = n - n % W; i < i_end; i += W) zero.store_unaligned(x + i);
    for (; i < n; ++i) x[i] = T(0);
    return;
  }
  const P va(alpha);
  for (const std::size_t i_end = n - n % W; i < i_end; i += W) (va * P::load_unaligned(x + i)).store_unaligned(x + i);
  for (; i < n; ++i) x[i] *= alpha;
}

/// y(M) = alpha·A·x + beta·y, A row-major M×N with row stride `lda`, x of length N. With
/// beta == 0, y is overwritten and never read.
/// \pre A, x, y are not null where the sizes make them read or written; lda ≥ N.
/// \pre y does not overlap A or x.
template <class T, class Arch = default_arch>
void gemv(std::size_t M, std::size_t N, std::type_identity_t<T> alpha, const T* A, std::size_t lda, const T* x,
          std::type_identity_t<T> beta, T* y) {
  PNN_EXPECTS(M == 0 || y != nullptr, "gemv: y is null");
  PNN_EXPECTS(M == 0 || N == 0 || (A != nullptr && x != nullptr), "gemv: A or x is null");
  PNN_EXPECTS(M == 0 || lda >= N, "gemv: lda is smaller than a row of A");
  detail::count_kernel_work(2 * std::uint64_t(M) * N, std::uint64_t(M) * N + N + (beta == T(0) ? M : 2 * M), sizeof(T));
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  auto finish = [&](std::size_t i, T s) { y[i] = beta == T(0) ? alpha * s : alpha * s + beta * y[i]; };
  if (N == 0) {
    for (std::size_t i = 0; i < M; ++i) finish(i, T(0));
    return;
  }
  std::size_t i = 0;
  // Four rows at a time share each load of x.
  for (const std::size_t i_end = M - M % 4; i < i_end; i += 4) {
    const T* a0 = A + i * lda;
    const T* a1 = a0 + lda;
    const T* a2 = a1 + lda;
    const T* a3 = a2 + lda;
    P s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0));
    std::size_t j = 0;
    for (const std::size_t j_end = N - N % W; j < j_end; j += W) {
      const P xv = P::load_unaligned(x + j);
      s0 = simd::fma(P::load_unaligned(a0 + j), xv, s0);
      s1 = simd::fma(P::load_unaligned(a1 + j), xv, s1);
      s2 = simd::fma(P::load_unaligned(a2 + j), xv, s2);
      s3 = simd::fma(P::load_unaligned(a3 + j), xv, s3);
    }
    T r0 = simd::reduce_add(s0), r1 = simd::reduce_add(s1), r2 = simd::reduce_add(s2), r3 = simd::reduce_add(s3);
    for (; j < N; ++j) {
      r0 += a0[j] * x[j];
      r1 += a1[j] * x[j];
      r2 += a2[j] * x[j];
      r3 += a3[j] * x[j];
    }
    finish(i, r0);
    finish(i + 1, r1);
    finish(i + 2, r2);
    finish(i + 3, r3);
  }
  for (; i < M; ++i) finish(i, dot<T, Arch>(N, A + i * lda, x));
}

/// y(N) = alpha·Aᵀ·x + beta·y, A row-major M×N with row stride `lda`, x of length M: the
/// backward pass of one sample through a layer. With beta == 0, y is overwritten and never read.
/// \pre A, x, y are not null where the sizes make them read or written; lda ≥ N.
/// \pre y does not overlap A or x.
template <class T, class Arch = default_arch>
void gemv_t(std::size_t M, std::size_t N, std::type_identity_t<T> alpha, const T* A, std::size_t lda, const T* x,
            std::type_identity_t<T> beta, T* y) {
  PNN_EXPECTS(N == 0 || y != nullptr, "gemv_t: y is null");
  PNN_EXPECTS(M == 0 || N == 0 || (A != nullptr && x != nullptr), "gemv_t: A or x is null");
  PNN_EXPECTS(M == 0 || lda >= N, "gemv_t: lda is smaller than a row of A");
  detail::count_kernel_work(2 * std::uint64_t(M) * N, std::uint64_t(M) * N + M + (beta == T(0) ? N : 2 * N), sizeof(T));
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  if (beta != T(1)) scale<T, Arch>(N, beta, y);
  if (N == 0) return;
  std::size_t i = 0;
  // Four rows per pass over y: a quarter of the loads and stores of y that one row would cost.
  for (const std::size_t i_end = M - M % 4; i < i_end; i += 4) {
    const T* a0 = A + i * lda;
    const T* a1 = a0 + lda;
    const T* a2 = a1 + lda;
    const T* a3 = a2 + lda;
    const T c0 = alpha * x[i], c1 = alpha * x[i + 1], c2 = alpha * x[i + 2], c3 = alpha * x[i + 3];
    const P v0(c0), v1(c1), v2(c2), v3(c3);
    std::size_t j = 0;
    for (const std::size_t j_end = N - N % W; j < j_end; j += W) {
      P acc = P::load_unaligned(y + j);
      acc = simd::fma(v0, P::load_unaligned(a0 + j), acc);
      acc = simd::fma(v1, P::load_unaligned(a1 + j), acc);
      acc = simd::fma(v2, P::load_unaligned(a2 + j), acc);
      acc = simd::fma(v3, P::load_unaligned(a3 + j), acc);
      acc.store_unaligned(y + j);
    }
    for (; j < N; ++j) y[j] += c0 * a0[j] + c1 * a1[j] + c2 * a2[j] + c3 * a3[j];
  }
  for (; i < M; ++i) axpy<T, Arch>(N, alpha * x[i], A + i * lda, y);
}

/// A(M×N) += alpha·x·yᵀ, the rank-1 (outer-product) update of one sample's weight change.
/// \pre A, x, y are not null where the sizes make them read or written; lda ≥ N.
/// \pre A does not overlap x or y.
template <class T, class Arch = default_arch>
void ger(std::size_t M, std::size_t N, std::type_identity_t<T> alpha, const T* x, const T* y, T* A,
         std::size_t lda) {
  PNN_EXPECTS(M == 0 || N == 0 || (A != nullptr && x != nullptr && y != nullptr), "ger: null operand");
  PNN_EXPECTS(M == 0 || lda >= N, "ger: lda is smaller than a row of A");
  if (N == 0) return;
  detail::count_kernel_work(2 * std::uint64_t(M) * N, 2 * std::uint64_t(M) * N + M + N, sizeof(T));
  for (std::size_t i = 0; i < M; ++i) axpy<T, Arch>(N, alpha * x[i], y, A + i * lda);
}

/// y(i) = f(x(i)). y may equal x (in place); otherwise they do not overlap.
/// \pre x, y are not null when n > 0.
template <class T, class Arch = default_arch, scalar_function<T> F>
void map(std::size_t n, const T* x, T* y, const F& f) {
  PNN_EXPECTS(n == 0 || (x != nullptr && y != nullptr), "map: null vector");
  std::size_t i = 0;
  if constexpr (vectorised_function<F, T, Arch>) {
    using P = pack<T, Arch>;
    // The bound is computed once: with `i + W <= n` GCC 12 mis-derives a trip count when n is
    // a compile-time constant and warns (-Waggressive-loop-optimizations).
    const std::size_t vec_end = n - n % P::size;
    for (; i < vec_end; i += P::size) f(P::load_unaligned(x + i)).store_unaligned(y + i);
  }
  for (; i < n; ++i) y[i] = static_cast<T>(f(x[i]));
}

/// An activation whose derivative also takes whole registers, by its own declaration
/// (`F::derivative_on_packs`; a template that merely accepts a pack may call `std::` functions
/// that do not): `pack<T, Arch> f.derivative(pack<T, Arch> a, pack<T, Arch> h) const`.
template <class F, class T, class Arch>
concept pack_derivative = (!is_scalar_arch<Arch>) && requires(const F& f, pack<T, Arch> p) {
  requires F::derivative_on_packs;
  { f.derivative(p, p) } -> std::same_as<pack<T, Arch>>;
};

/// delta(i) = dy(i)·f′(a(i), h(i)): the error at a pre-activation from the error at its output,
/// with the activation's derivative from the recorded pre-activation `a` and output `h`.
/// Register at a time where the derivative takes packs (`pack_derivative`). delta may equal dy.
/// \pre the pointers are not null when n > 0.
template <class T, class Arch = default_arch, class F>
void times_derivative(std::size_t n, const T* dy, const T* a, const T* h, const F& f, T* delta) {
  PNN_EXPECTS(n == 0 || (dy != nullptr && a != nullptr && h != nullptr && delta != nullptr),
              "times_derivative: null vector");
  std::size_t i = 0;
  if constexpr (pack_derivative<F, T, Arch>) {
    using P = pack<T, Arch>;
    for (const std::size_t end = n - n % P::size; i < end; i += P::size)
      (P::load_unaligned(dy + i) * f.derivative(P::load_unaligned(a + i), P::load_unaligned(h + i)))
          .store_unaligned(delta + i);
  }
  for (; i < n; ++i) delta[i] = dy[i] * static_cast<T>(f.derivative(a[i], h[i]));
}

/// C(i, j) += bias(j) and H(i, j) = f(C(i, j)) over M×N row-major blocks (row strides `ldc`,
/// `ldh`): a layer's pre-activation and output from its GEMM in one pass, as training records
/// both. A null `bias` means no bias. H does not overlap C.
/// \pre C and H are not null when M·N > 0; ldc, ldh ≥ N.
template <class T, class Arch = default_arch, scalar_function<T> F>
void bias_map_into(std::size_t M, std::size_t N, T* C, std::size_t ldc, const T* bias, const F& f, T* H,
                   std::size_t ldh) {
  PNN_EXPECTS(M == 0 || N == 0 || (C != nullptr && H != nullptr), "bias_map_into: null matrix");
  PNN_EXPECTS(M == 0 || (ldc >= N && ldh >= N), "bias_map_into: a row stride is smaller than a row");
  for (std::size_t i = 0; i < M; ++i) {
    T* ci = C + i * ldc;
    T* hi = H + i * ldh;
    std::size_t j = 0;
    if constexpr (vectorised_function<F, T, Arch>) {
      using P = pack<T, Arch>;
      constexpr std::size_t W = P::size;
      for (const std::size_t j_end = N - N % W; j < j_end; j += W) {
        P a = P::load_unaligned(ci + j);
        if (bias != nullptr) {
          a = a + P::load_unaligned(bias + j);
          a.store_unaligned(ci + j);
        }
        f(a).store_unaligned(hi + j);
      }
    }
    for (; j < N; ++j) {
      if (bias != nullptr) ci[j] = ci[j] + bias[j];
      hi[j] = static_cast<T>(f(ci[j]));
    }
  }
}

/// C(i, j) = f(C(i, j) + bias(j)) over an M×N row-major block with row stride `ldc`: the fused
/// bias and activation after a layer's GEMM, one pass over the outputs instead of two. A null
/// `bias` means no bias.
/// \pre C is not null when M·N > 0; ldc ≥ N.
template <class T, class Arch = default_arch, scalar_function<T> F>
void bias_map(std::size_t M, std::size_t N, T* C, std::size_t ldc, const T* bias, const F& f) {
  PNN_EXPECTS(M == 0 || N == 0 || C != nullptr, "bias_map: C is null");
  PNN_EXPECTS(M == 0 || ldc >= N, "bias_map: ldc is smaller than a row of C");
  for (std::size_t i = 0; i < M; ++i) {
    T* ci = C + i * ldc;
    std::size_t j = 0;
    if constexpr (vectorised_function<F, T, Arch>) {
      using P = pack<T, Arch>;
      constexpr std::size_t W = P::size;
      if (bias != nullptr) {
        for (const std::size_t j_end = N - N % W; j < j_end; j += W) f(P::load_unaligned(ci + j) + P::load_unaligned(bias + j)).store_unaligned(ci + j);
      } else {
        for (const std::size_t j_end = N - N % W; j < j_end; j += W) f(P::load_unaligned(ci + j)).store_unaligned(ci + j);
      }
    }
    if (bias != nullptr) {
      for (; j < N; ++j) ci[j] = static_cast<T>(f(ci[j] + bias[j]));
    } else {
      for (; j < N; ++j) ci[j] = static_cast<T>(f(ci[j]));
    }
  }
}

/// Row pitch `correlate_narrow` needs for planes whose correlation has `out_width` columns with
/// a `kernel`-wide kernel: whole registers (up to two at a time) are read past the last column.
template <class T, class Arch = default_arch>
[[nodiscard]] constexpr std::size_t correlate_pitch(std::size_t out_width, std::size_t kernel) noexcept {
  constexpr std::size_t step = 2 * pack<T, Arch>::size;
  return (out_width + step - 1) / step * step + kernel - 1;
}

namespace detail {
template <std::size_t Out, std::size_t Blocks, class T, class Arch>
void correlate_narrow_fixed(std::size_t channels, std::size_t kernel, const T* w, std::size_t ldw, const T* planes,
                            std::size_t plane_rows, std::size_t pitch, std::size_t oh, std::size_t ow, T* y,
                            std::size_t ldy) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size, span = Blocks * W;
  alignas(PNN_ALIGNMENT) T out[Out * span];
  for (std::size_t oy = 0; oy < oh; ++oy)
    for (std::size_t x0 = 0; x0 < ow; x0 += span) {
      P acc[Out][Blocks];
      PNN_UNROLL
      for (std::size_t o = 0; o < Out; ++o)
        PNN_UNROLL
        for (std::size_t b = 0; b < Blocks; ++b) acc[o][b] = P(T(0));
      // The taps in (ky, kx, c) order, the order of a patch row: each sum is the one a
      // product of the unfolded patches with the kernels forms, FMA by FMA.
      std::size_t tap = 0;
      for (std::size_t ky = 0; ky < kernel; ++ky)
        for (std::size_t kx = 0; kx < kernel; ++kx)
          for (std::size_t c = 0; c < channels; ++c, ++tap) {
            const T* src = planes + (c * plane_rows + oy + ky) * pitch + x0 + kx;
            P v[Blocks];
            PNN_UNROLL
            for (std::size_t b = 0; b < Blocks; ++b) v[b] = P::load_unaligned(src + b * W);
            PNN_UNROLL
            for (std::size_t o = 0; o < Out; ++o) {
              const P wo(w[o * ldw + tap]);
              PNN_UNROLL
              for (std::size_t b = 0; b < Blocks; ++b) acc[o][b] = simd::fma(wo, v[b], acc[o][b]);
            }
          }
      PNN_UNROLL
      for (std::size_t o = 0; o < Out; ++o)
        PNN_UNROLL
        for (std::size_t b = 0; b < Blocks; ++b) acc[o][b].store_aligned(out + o * span + b * W);
      const std::size_t cols = ow - x0 < span ? ow - x0 : span;
      for (std::size_t j = 0; j < cols; ++j) {
        T* yj = y + (oy * ow + x0 + j) * ldy;
        PNN_UNROLL
        for (std::size_t o = 0; o < Out; ++o) yj[o] = out[o * span + j];
      }
    }
}

template <class T, class Arch, std::size_t... O>
void correlate_narrow_dispatch(std::size_t out, std::size_t channels, std::size_t kernel, const T* w, std::size_t ldw,
                               const T* planes, std::size_t plane_rows, std::size_t pitch, std::size_t oh,
                               std::size_t ow, T* y, std::size_t ldy, std::index_sequence<O...>) noexcept {
  constexpr std::size_t W = pack<T, Arch>::size;
  const auto run_if = [&](auto width) {
    constexpr std::size_t N = decltype(width)::value;
    if (out != N) return false;
    // Two registers of columns per output while the accumulators leave room for the loads.
    if constexpr (2 * N <= 12) {
      if (ow > W) {
        correlate_narrow_fixed<N, 2, T, Arch>(channels, kernel, w, ldw, planes, plane_rows, pitch, oh, ow, y, ldy);
        return true;
      }
    }
    correlate_narrow_fixed<N, 1, T, Arch>(channels, kernel, w, ldw, planes, plane_rows, pitch, oh, ow, y, ldy);
    return true;
  };
  (void)(run_if(std::integral_constant<std::size_t, O + 1>{}) || ...);
}
}  // namespace detail

/// \brief Stride-1 cross-correlation of `channels` zero-padded planes with `out` kernels,
/// fewer than a register has lanes, read from the planes rather than from unfolded patches.
///
/// `y(p, o) = Σ_{ky,kx,c} w(o, (ky·kernel + kx)·channels + c) · planes(c, oy + ky, ox + kx)` at
/// every position `p = oy·ow + ox`, into `y` (oh·ow × out, row stride `ldy`); `w` is out ×
/// kernel²·channels (row stride `ldw`), a convolution's kernel matrix. Lanes run over ox, and
/// each sum runs over the taps in (ky, kx, c) order by FMA from zero: the sum `narrow_nt` forms
/// for the same patch row, so a convolution may use either and every output is the same value
/// in any split of samples or rows.
/// \pre 1 ≤ out < lanes; `planes` holds `channels` planes of `plane_rows` ≥ oh + kernel − 1 rows
/// of `pitch` ≥ `correlate_pitch(ow, kernel)` values.
template <class T, class Arch = default_arch>
void correlate_narrow(std::size_t out, std::size_t channels, std::size_t kernel, const T* w, std::size_t ldw,
                      const T* planes, std::size_t plane_rows, std::size_t pitch, std::size_t oh, std::size_t ow, T* y,
                      std::size_t ldy) {
  constexpr std::size_t W = pack<T, Arch>::size;
  PNN_EXPECTS(out >= 1 && out < W, "correlate_narrow: needs fewer kernels than a register has lanes");
  const bool fits = plane_rows + 1 >= oh + kernel && pitch >= correlate_pitch<T, Arch>(ow, kernel);
  PNN_EXPECTS(fits, "correlate_narrow: planes too small for the correlation");
  const std::uint64_t taps = std::uint64_t(kernel) * kernel * channels, outputs = std::uint64_t(oh) * ow * out;
  detail::count_kernel_work(2 * outputs * taps, std::uint64_t(channels) * plane_rows * pitch + out * taps + outputs,
                            sizeof(T));
  if constexpr (W > 1)
    detail::correlate_narrow_dispatch<T, Arch>(out, channels, kernel, w, ldw, planes, plane_rows, pitch, oh, ow, y,
                                               ldy, std::make_index_sequence<W - 1>{});
}

/// Row pitch of the transposed errors `correlate_narrow_gradient` keeps: `ow` rounded up to
/// whole registers.
template <class T, class Arch = default_arch>
[[nodiscard]] constexpr std::size_t correlate_error_pitch(std::size_t out_width) noexcept {
  constexpr std::size_t W = pack<T, Arch>::size;
  return (out_width + W - 1) / W * W;
}

namespace detail {
template <std::size_t Out, class T, class Arch>
void correlate_narrow_gradient_fixed(std::size_t channels, std::size_t kernel, const T* d, std::size_t ldd,
                                     const T* planes, std::size_t plane_rows, std::size_t pitch, std::size_t oh,
                                     std::size_t ow, T* dw, std::size_t ldw, T* errors) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  // Taps per pass: their accumulators take about 24 of AVX-512's 32 registers, 10 of 16
  // elsewhere, leaving room for the errors' registers.
  constexpr std::size_t budget = sizeof(P) >= 64 ? 24 : 10;
  constexpr std::size_t Taps = budget / Out < 1 ? 1 : budget / Out < 4 ? budget / Out : 4;
  const std::size_t ep = correlate_error_pitch<T, Arch>(ow), taps = kernel * kernel * channels;
  // The errors laid out as planes, one per kernel, zero past the last column: lanes run
  // over ox, as they do over the image's planes. Position by position, each position's Out
  // errors read together and stored to the Out planes (one strided read per value cost twice
  // as long).
  for (std::size_t oy = 0; oy < oh; ++oy) {
    T* row = errors + oy * ep;
    for (std::size_t ox = 0; ox < ow; ++ox) {
      const T* dp = d + (oy * ow + ox) * ldd;
      PNN_UNROLL
      for (std::size_t o = 0; o < Out; ++o) row[o * oh * ep + ox] = dp[o];
    }
    for (std::size_t o = 0; o < Out; ++o)
      for (std::size_t ox = ow; ox < ep; ++ox) row[o * oh * ep + ox] = T(0);
  }
  for (std::size_t t0 = 0; t0 < taps; t0 += Taps) {
    const std::size_t nt = taps - t0 < Taps ? taps - t0 : Taps;
    std::size_t offset[Taps];  // where tap t0 + j starts in the planes
    PNN_UNROLL
    for (std::size_t j = 0; j < Taps; ++j) {
      const std::size_t t = t0 + (j < nt ? j : 0), c = t % channels, kx = (t / channels) % kernel,
                        ky = t / channels / kernel;
      offset[j] = (c * plane_rows + ky) * pitch + kx;
    }
    P acc[Taps][Out];
    PNN_UNROLL
    for (std::size_t j = 0; j < Taps; ++j)
      PNN_UNROLL
      for (std::size_t o = 0; o < Out; ++o) acc[j][o] = P(T(0));
    for (std::size_t oy = 0; oy < oh; ++oy)
      for (std::size_t x0 = 0; x0 < ep; x0 += W) {
        P e[Out];
        PNN_UNROLL
        for (std::size_t o = 0; o < Out; ++o) e[o] = P::load_unaligned(errors + (o * oh + oy) * ep + x0);
        PNN_UNROLL
        for (std::size_t j = 0; j < Taps; ++j) {
          const P v = P::load_unaligned(planes + offset[j] + oy * pitch + x0);
          PNN_UNROLL
          for (std::size_t o = 0; o < Out; ++o) acc[j][o] = simd::fma(e[o], v, acc[j][o]);
        }
      }
    for (std::size_t j = 0; j < nt; ++j)
      PNN_UNROLL
      for (std::size_t o = 0; o < Out; ++o) dw[o * ldw + t0 + j] += simd::reduce_add(acc[j][o]);
  }
}

template <class T, class Arch, std::size_t... O>
void correlate_narrow_gradient_dispatch(std::size_t out, std::size_t channels, std::size_t kernel, const T* d,
                                        std::size_t ldd, const T* planes, std::size_t plane_rows, std::size_t pitch,
                                        std::size_t oh, std::size_t ow, T* dw, std::size_t ldw, T* errors,
                                        std::index_sequence<O...>) noexcept {
  const auto run_if = [&](auto width) {
    if (out != decltype(width)::value) return false;
    correlate_narrow_gradient_fixed<decltype(width)::value, T, Arch>(channels, kernel, d, ldd, planes, plane_rows, pitch,
                                                                     oh, ow, dw, ldw, errors);
    return true;
  };
  (void)(run_if(std::integral_constant<std::size_t, O + 1>{}) || ...);
}
}  // namespace detail

/// \brief The kernels' gradient of `correlate_narrow` for one image: adds
/// `Σ_{oy,ox} d(oy·ow + ox, o) · planes(c, oy + ky, ox + kx)` to `dw(o, (ky·kernel + kx)·channels + c)`.
///
/// `d` holds the errors at the correlation's outputs (oh·ow × out, row stride `ldd`), `dw` the
/// kernels' gradient (out × kernel²·channels, row stride `ldw`), and `errors` is scratch for
/// out × oh × `correlate_error_pitch(ow)` values. Lanes run over ox;
/// each entry's sum is formed in a fixed order, so a caller adding images in a fixed order gets
/// the same gradient however it splits the images between threads.
/// \pre 1 ≤ out < lanes; the planes as for `correlate_narrow`, `pitch` ≥ `correlate_error_pitch(ow)`
/// + kernel − 1.
template <class T, class Arch = default_arch>
void correlate_narrow_gradient(std::size_t out, std::size_t channels, std::size_t kernel, const T* d, std::size_t ldd,
                               const T* planes, std::size_t plane_rows, std::size_t pitch, std::size_t oh,
                               std::size_t ow, T* dw, std::size_t ldw, T* errors) {
  constexpr std::size_t W = pack<T, Arch>::size;
  PNN_EXPECTS(out >= 1 && out < W, "correlate_narrow_gradient: needs fewer kernels than a register has lanes");
  const bool fits = plane_rows + 1 >= oh + kernel && pitch + 1 >= correlate_error_pitch<T, Arch>(ow) + kernel;
  PNN_EXPECTS(fits, "correlate_narrow_gradient: planes too small for the correlation");
  const std::uint64_t taps = std::uint64_t(kernel) * kernel * channels, outputs = std::uint64_t(oh) * ow * out;
  detail::count_kernel_work(2 * outputs * taps, std::uint64_t(channels) * plane_rows * pitch + outputs + 2 * out * taps,
                            sizeof(T));
  if constexpr (W > 1)
    detail::correlate_narrow_gradient_dispatch<T, Arch>(out, channels, kernel, d, ldd, planes, plane_rows, pitch, oh,
                                                        ow, dw, ldw, errors, std::make_index_sequence<W - 1>{});
}

namespace detail {
template <std::size_t Vectors, class T, class Arch>
void correlate_wide_fixed(std::size_t channels, std::size_t kernel, std::size_t stride, const T* wt, const T* image,
                          std::size_t row_pitch, std::size_t oh, std::size_t ow, T* y) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size, out = Vectors * W;
  const std::size_t run = kernel * channels;  // a kernel row's taps lie together in the image
  for (std::size_t oy = 0; oy < oh; ++oy) {
    std::size_t ox = 0;
    const auto block = [&](auto rows) {
      constexpr std::size_t Rb = decltype(rows)::value;
      P acc[Rb][Vectors];
      PNN_UNROLL
      for (std::size_t r = 0; r < Rb; ++r)
        PNN_UNROLL
        for (std::size_t v = 0; v < Vectors; ++v) acc[r][v] = P(T(0));
      for (std::size_t ky = 0; ky < kernel; ++ky) {
        const T* src = image + (oy * stride + ky) * row_pitch + ox * stride * channels;
        const T* wk = wt + ky * run * out;
        for (std::size_t j = 0; j < run; ++j) {
          P wv[Vectors];
          PNN_UNROLL
          for (std::size_t v = 0; v < Vectors; ++v) wv[v] = P::load_unaligned(wk + j * out + v * W);
          PNN_UNROLL
          for (std::size_t r = 0; r < Rb; ++r) {
            const P b(src[r * stride * channels + j]);
            PNN_UNROLL
            for (std::size_t v = 0; v < Vectors; ++v) acc[r][v] = simd::fma(b, wv[v], acc[r][v]);
          }
        }
      }
      PNN_UNROLL
      for (std::size_t r = 0; r < Rb; ++r)
        PNN_UNROLL
        for (std::size_t v = 0; v < Vectors; ++v) acc[r][v].store_unaligned(y + (oy * ow + ox + r) * out + v * W);
    };
    // Positions in flight: up to 8 (6 with two registers of kernels) accumulators per
    // register of kernels, with the kernels' registers and one broadcast beside them. A row
    // is cut into equal blocks where a block size divides it; otherwise the last block is
    // moved back to end at the row's end, recomputing a few positions with the same sums.
    const auto row = [&](auto rows) {
      constexpr std::size_t R = decltype(rows)::value;
      for (; ox + R <= ow; ox += R) block(rows);
      if (ox < ow && ow >= R) {
        ox = ow - R;
        block(rows);
        ox = ow;
      }
      for (; ox < ow; ++ox) block(std::integral_constant<std::size_t, 1>{});
    };
    if constexpr (Vectors == 1) {
      // With 32 registers (AVX-512) up to 12 positions: eight or more accumulators keep both
      // FMA pipes busy through their latency, and a 10-wide row (LeNet-5's second
      // convolution) then runs as one block instead of two of five.
      if constexpr (sizeof(P) >= 64) {
        if (ow % 12 == 0 || ow % 10 == 0 || ow % 9 == 0) {
          if (ow % 12 == 0) row(std::integral_constant<std::size_t, 12>{});
          else if (ow % 10 == 0) row(std::integral_constant<std::size_t, 10>{});
          else row(std::integral_constant<std::size_t, 9>{});
          continue;
        }
      }
      if (ow % 8 == 0 || ow % 7 == 0 || ow % 6 == 0 || ow % 5 == 0) {
        if (ow % 8 == 0) row(std::integral_constant<std::size_t, 8>{});
        else if (ow % 7 == 0) row(std::integral_constant<std::size_t, 7>{});
        else if (ow % 6 == 0) row(std::integral_constant<std::size_t, 6>{});
        else row(std::integral_constant<std::size_t, 5>{});
        continue;
      }
      row(std::integral_constant<std::size_t, 8>{});
    } else {
      if (ow % 6 == 0) row(std::integral_constant<std::size_t, 6>{});
      else if (ow % 5 == 0) row(std::integral_constant<std::size_t, 5>{});
      else if (ow % 4 == 0) row(std::integral_constant<std::size_t, 4>{});
      else row(std::integral_constant<std::size_t, 6>{});
    }
  }
}
}  // namespace detail

/// \brief Cross-correlation of a zero-padded image with one or two registers' worth of
/// kernels, read from the image rather than from unfolded patches.
///
/// `y(p, o) = Σ_{ky,kx,c} wt((ky·kernel + kx)·channels + c, o) · image(oy·stride + ky, ox·stride + kx, c)`
/// at every position `p = oy·ow + ox`, into `y` (oh·ow × out, dense rows). `image` is (y, x, c)
/// with `row_pitch` values per row, its padding included; `wt` is the kernel matrix transposed
/// (kernel²·channels × out, dense rows). Lanes run over the kernels and each sum runs over the
/// taps in (ky, kx, c) order by FMA from zero, so every output is the same value in any split of
/// positions or images.
/// \pre out is one or two registers' lanes (`wide_correlation(out)`); the image holds
/// (oh − 1)·stride + kernel rows of at least ((ow − 1)·stride + kernel)·channels values.
template <class T, class Arch = default_arch>
void correlate_wide(std::size_t out, std::size_t channels, std::size_t kernel, std::size_t stride, const T* wt,
                    const T* image, std::size_t row_pitch, std::size_t oh, std::size_t ow, T* y) {
  constexpr std::size_t W = pack<T, Arch>::size;
  PNN_EXPECTS(W > 1 && (out == W || out == 2 * W), "correlate_wide: needs one or two registers' worth of kernels");
  PNN_EXPECTS(row_pitch >= ((ow - 1) * stride + kernel) * channels, "correlate_wide: image rows too short");
  const std::uint64_t taps = std::uint64_t(kernel) * kernel * channels, outputs = std::uint64_t(oh) * ow * out;
  detail::count_kernel_work(2 * outputs * taps, ((oh - 1) * stride + kernel) * std::uint64_t(row_pitch) + out * taps + outputs,
                            sizeof(T));
  if (out == W)
    detail::correlate_wide_fixed<1, T, Arch>(channels, kernel, stride, wt, image, row_pitch, oh, ow, y);
  else
    detail::correlate_wide_fixed<2, T, Arch>(channels, kernel, stride, wt, image, row_pitch, oh, ow, y);
}

namespace detail {
// `correlate_wide_gradient` for `Taps` taps of one kernel row at a time: each position's errors
// (one register per `Vectors`) are loaded once and multiplied by every tap's broadcast image
// value into that tap's accumulators, which stay in registers across all the positions.
template <std::size_t Vectors, std::size_t Taps, class T, class Arch>
void correlate_wide_gradient_taps(std::size_t channels, std::size_t stride, const T* d, const T* image,
                                  std::size_t row_pitch, std::size_t oh, std::size_t ow, std::size_t ky,
                                  std::size_t j0, T* dwt, std::size_t run) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size, out = Vectors * W;
  T* dk = dwt + (ky * run + j0) * out;
  P acc[Taps][Vectors];
  PNN_UNROLL
  for (std::size_t j = 0; j < Taps; ++j)
    PNN_UNROLL
    for (std::size_t v = 0; v < Vectors; ++v) acc[j][v] = P::load_unaligned(dk + j * out + v * W);
  for (std::size_t oy = 0; oy < oh; ++oy) {
    const T* src = image + (oy * stride + ky) * row_pitch + j0;
    const T* dp = d + oy * ow * out;
    for (std::size_t ox = 0; ox < ow; ++ox) {
      P e[Vectors];
      PNN_UNROLL
      for (std::size_t v = 0; v < Vectors; ++v) e[v] = P::load_unaligned(dp + ox * out + v * W);
      const T* sx = src + ox * stride * channels;
      PNN_UNROLL
      for (std::size_t j = 0; j < Taps; ++j) {
        const P b(sx[j]);
        PNN_UNROLL
        for (std::size_t v = 0; v < Vectors; ++v) acc[j][v] = simd::fma(b, e[v], acc[j][v]);
      }
    }
  }
  PNN_UNROLL
  for (std::size_t j = 0; j < Taps; ++j)
    PNN_UNROLL
    for (std::size_t v = 0; v < Vectors; ++v) acc[j][v].store_unaligned(dk + j * out + v * W);
}

template <std::size_t Vectors, class T, class Arch>
void correlate_wide_gradient_fixed(std::size_t channels, std::size_t kernel, std::size_t stride, const T* d,
                                   const T* image, std::size_t row_pitch, std::size_t oh, std::size_t ow,
                                   T* dwt) noexcept {
  const std::size_t run = kernel * channels;  // a kernel row's taps lie together in the image
  // Taps in flight: as many accumulators as the registers hold beside the errors and one
  // broadcast (32 registers on AVX-512, 16 below), in blocks that divide a kernel row where one
  // does (LeNet-5's second convolution: 5 × 6 = 30 taps, two blocks of 15); a remainder goes
  // one tap at a time.
  const auto rows = [&](auto taps) {
    constexpr std::size_t Tb = decltype(taps)::value;
    for (std::size_t ky = 0; ky < kernel; ++ky) {
      std::size_t j = 0;
      for (; j + Tb <= run; j += Tb)
        correlate_wide_gradient_taps<Vectors, Tb, T, Arch>(channels, stride, d, image, row_pitch, oh, ow, ky, j, dwt, run);
      for (; j < run; ++j)
        correlate_wide_gradient_taps<Vectors, 1, T, Arch>(channels, stride, d, image, row_pitch, oh, ow, ky, j, dwt, run);
    }
  };
  using Pk = pack<T, Arch>;
  if constexpr (Vectors == 1 && sizeof(Pk) >= 64) {
    if (run % 15 == 0) rows(std::integral_constant<std::size_t, 15>{});
    else if (run % 12 == 0) rows(std::integral_constant<std::size_t, 12>{});
    else if (run % 10 == 0) rows(std::integral_constant<std::size_t, 10>{});
    else rows(std::integral_constant<std::size_t, 8>{});
  } else {
    if (run % 6 == 0) rows(std::integral_constant<std::size_t, 6>{});
    else if (run % 5 == 0) rows(std::integral_constant<std::size_t, 5>{});
    else rows(std::integral_constant<std::size_t, 4>{});
  }
}
}  // namespace detail

/// \brief The kernel gradient of `correlate_wide`, read from the image rather than from
/// unfolded patches: `dwt(t, o) += Σ_p d(p, o) · image(p's window at tap t)`.
///
/// `dwt` (kernel²·channels × out, dense rows) is the gradient of the transposed kernel matrix
/// that `correlate_wide` reads, accumulated in place; `d` (oh·ow × out, dense rows) holds the
/// errors at every position, and `image` is laid out as for `correlate_wide`. Each sum runs over
/// the positions in order by FMA onto what `dwt` held, so a sum over images, one image after
/// another, gives the same value in any split of whole images between threads.
/// \pre out is one or two registers' lanes (`wide_correlation(out)`); the image as for
/// `correlate_wide`.
template <class T, class Arch = default_arch>
void correlate_wide_gradient(std::size_t out, std::size_t channels, std::size_t kernel, std::size_t stride,
                             const T* d, const T* image, std::size_t row_pitch, std::size_t oh, std::size_t ow,
                             T* dwt) {
  constexpr std::size_t W = pack<T, Arch>::size;
  PNN_EXPECTS(W > 1 && (out == W || out == 2 * W),
              "correlate_wide_gradient: needs one or two registers' worth of kernels");
  PNN_EXPECTS(row_pitch >= ((ow - 1) * stride + kernel) * channels, "correlate_wide_gradient: image rows too short");
  const std::uint64_t taps = std::uint64_t(kernel) * kernel * channels, outputs = std::uint64_t(oh) * ow * out;
  detail::count_kernel_work(2 * outputs * taps,
                            ((oh - 1) * stride + kernel) * std::uint64_t(row_pitch) + 2 * out * taps + outputs, sizeof(T));
  if (out == W)
    detail::correlate_wide_gradient_fixed<1, T, Arch>(channels, kernel, stride, d, image, row_pitch, oh, ow, dwt);
  else
    detail::correlate_wide_gradient_fixed<2, T, Arch>(channels, kernel, stride, d, image, row_pitch, oh, ow, dwt);
}

namespace detail {
template <std::size_t V, class T, class Arch>
void correlate_adjoint_fixed(std::size_t out, std::size_t channels, std::size_t kernel, std::size_t stride,
                             const T* kp, const T* d, std::size_t oh, std::size_t ow, T* image, std::size_t row_pitch,
                             T* scratch) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size, VW = V * W;
  // Each position's segment of a kernel row sits between a register of zeros on either side,
  // so a register that straddles the segment's ends reads zeros there.
  constexpr std::size_t line = VW + 2 * W;
  // Positions per block: their accumulators and the kernels' registers within 32 registers
  // (16 below AVX-512).
  constexpr std::size_t budget = sizeof(P) >= 64 ? 30 : 14;
  constexpr std::size_t R = (budget - V - 1) / V < 1 ? 1 : (budget - V - 1) / V > 12 ? 12 : (budget - V - 1) / V;
  const std::size_t run = kernel * channels, step = stride * channels, span = (ow - 1) * step + run;
  for (std::size_t oy = 0; oy < oh; ++oy) {
    const T* drow = d + oy * ow * out;
    // First every kernel row's products for this row of positions, then their sums into the
    // image: the sums read the products a kernel row later, after their stores have left.
    for (std::size_t ky = 0; ky < kernel; ++ky) {
      const T* kk = kp + ky * out * VW;
      T* sk = scratch + ky * ow * line + W;
      const auto block = [&](std::size_t ox, auto rows) {
        constexpr std::size_t Rb = decltype(rows)::value;
        P acc[Rb][V];
        PNN_UNROLL
        for (std::size_t r = 0; r < Rb; ++r)
          PNN_UNROLL
          for (std::size_t v = 0; v < V; ++v) acc[r][v] = P(T(0));
        for (std::size_t o = 0; o < out; ++o) {
          P kv[V];
          PNN_UNROLL
          for (std::size_t v = 0; v < V; ++v) kv[v] = P::load_unaligned(kk + o * VW + v * W);
          PNN_UNROLL
          for (std::size_t r = 0; r < Rb; ++r) {
            const P b(drow[(ox + r) * out + o]);
            PNN_UNROLL
            for (std::size_t v = 0; v < V; ++v) acc[r][v] = simd::fma(b, kv[v], acc[r][v]);
          }
        }
        PNN_UNROLL
        for (std::size_t r = 0; r < Rb; ++r)
          PNN_UNROLL
          for (std::size_t v = 0; v < V; ++v) acc[r][v].store_unaligned(sk + (ox + r) * line + v * W);
      };
      // The widest block the registers allow that is no wider than the row; a last partial
      // block moves back to end at the row's end (its positions' products are stored again,
      // the same values).
      const auto blocks = [&](auto rows) {
        constexpr std::size_t Rb = decltype(rows)::value;
        std::size_t ox = 0;
        for (; ox + Rb <= ow; ox += Rb) block(ox, rows);
        if (ox < ow) block(ow - Rb, rows);
      };
      const auto widest = [&]<std::size_t... c>(std::index_sequence<c...>) {
        constexpr std::size_t widths[] = {12, 10, 8, 6, 5, 4, 3, 2, 1};
        (void)((widths[c] <= R && widths[c] <= ow ? (blocks(std::integral_constant<std::size_t, widths[c]>{}), true)
                                                  : false) ||
               ...);
      };
      widest(std::make_index_sequence<9>{});
    }
    for (std::size_t ky = 0; ky < kernel; ++ky) {
      const T* sk = scratch + ky * ow * line + W;
      T* dst = image + (oy * stride + ky) * row_pitch;
      for (std::size_t j0 = 0; j0 < span; j0 += W) {
        // Positions whose taps [ox·step, ox·step + run) meet [j0, j0 + W), in order of ox.
        const std::size_t first = j0 < run ? 0 : (j0 - run) / step + 1;
        const std::size_t last = (j0 + W - 1) / step < ow - 1 ? (j0 + W - 1) / step : ow - 1;
        P sum = P::load_unaligned(dst + j0);
        for (std::size_t ox = first; ox <= last; ++ox)
          sum += P::load_unaligned(sk + ox * line + j0 - ox * step);
        sum.store_unaligned(dst + j0);
      }
    }
  }
}
}  // namespace detail

/// Registers a kernel row's taps take in `correlate_adjoint` (0 when it does not apply).
template <class T, class Arch = default_arch>
[[nodiscard]] constexpr std::size_t correlate_adjoint_registers(std::size_t kernel, std::size_t channels) noexcept {
  constexpr std::size_t W = pack<T, Arch>::size;
  const std::size_t v = (kernel * channels + W - 1) / W;
  return W > 1 && v <= 5 ? v : 0;
}

/// Row pitch of the image `correlate_adjoint` accumulates into: at least `min_pitch`, and room
/// for whole registers past a row's last tap.
template <class T, class Arch = default_arch>
[[nodiscard]] constexpr std::size_t correlate_adjoint_pitch(std::size_t min_pitch, std::size_t kernel,
                                                            std::size_t channels, std::size_t stride,
                                                            std::size_t ow) noexcept {
  constexpr std::size_t W = pack<T, Arch>::size;
  const std::size_t span = (ow - 1) * stride * channels + kernel * channels;
  const std::size_t need = (span + W - 1) / W * W;
  return need > min_pitch ? need : min_pitch;
}

/// Values of the scratch `correlate_adjoint` needs.
template <class T, class Arch = default_arch>
[[nodiscard]] constexpr std::size_t correlate_adjoint_scratch(std::size_t kernel, std::size_t channels,
                                                              std::size_t ow) noexcept {
  constexpr std::size_t W = pack<T, Arch>::size;
  return kernel * ow * ((correlate_adjoint_registers<T, Arch>(kernel, channels) + 2) * W);
}

/// \brief The adjoint of a convolution's read for one image, without patches: every
/// position's errors carried back through the kernels and summed into the image they read.
///
/// `image(oy·stride + ky, ox·stride + kx, c) += Σ_o d(oy·ow + ox, o) · k(o, (ky·kernel + kx)·channels + c)`
/// for every position and tap. `kp` holds the kernels by kernel row, each row's taps padded
/// with zeros to whole registers: `kp((ky·out + o)·V·W + j) = k(o, ky·kernel·channels + j)` for
/// `j < kernel·channels`, 0 beyond, with `V = correlate_adjoint_registers(kernel, channels)`.
/// `image` is (y, x, c) with `row_pitch` values per row, the padding included. Lanes run over a
/// kernel row's taps; each position's products sum over `o` from zero by FMA, and each image
/// value then adds its positions' products in order of position: the same value in any split
/// of images.
/// \pre `correlate_adjoint_registers(kernel, channels)` > 0; `row_pitch` ≥
/// `correlate_adjoint_pitch(...)`; the image has (oh − 1)·stride + kernel rows; `scratch` has
/// `correlate_adjoint_scratch(kernel, channels, ow)` values, its first and last register of
/// every line zero (`scratch` zeroed once suffices: those lanes are never written).
template <class T, class Arch = default_arch>
void correlate_adjoint(std::size_t out, std::size_t channels, std::size_t kernel, std::size_t stride, const T* kp,
                       const T* d, std::size_t oh, std::size_t ow, T* image, std::size_t row_pitch, T* scratch) {
  const std::size_t v = correlate_adjoint_registers<T, Arch>(kernel, channels);
  PNN_EXPECTS(v > 0, "correlate_adjoint: a kernel row takes more than five registers");
  PNN_EXPECTS((row_pitch >= correlate_adjoint_pitch<T, Arch>(0, kernel, channels, stride, ow)),
              "correlate_adjoint: image rows too short");
  const std::uint64_t taps = std::uint64_t(kernel) * kernel * channels, positions = std::uint64_t(oh) * ow;
  detail::count_kernel_work(2 * positions * out * taps,
                            positions * out + out * taps + ((oh - 1) * stride + kernel) * std::uint64_t(row_pitch),
                            sizeof(T));
  switch (v) {
    case 1: detail::correlate_adjoint_fixed<1, T, Arch>(out, channels, kernel, stride, kp, d, oh, ow, image, row_pitch, scratch); break;
    case 2: detail::correlate_adjoint_fixed<2, T, Arch>(out, channels, kernel, stride, kp, d, oh, ow, image, row_pitch, scratch); break;
    case 3: detail::correlate_adjoint_fixed<3, T, Arch>(out, channels, kernel, stride, kp, d, oh, ow, image, row_pitch, scratch); break;
    case 4: detail::correlate_adjoint_fixed<4, T, Arch>(out, channels, kernel, stride, kp, d, oh, ow, image, row_pitch, scratch); break;
    default: detail::correlate_adjoint_fixed<5, T, Arch>(out, channels, kernel, stride, kp, d, oh, ow, image, row_pitch, scratch); break;
  }
}

/// True when `correlate_wide` takes `out` kernels: one or two registers' lanes (never on the
/// scalar architecture, whose one lane gains nothing over the patches' product).
template <class T, class Arch = default_arch>
[[nodiscard]] constexpr bool wide_correlation(std::size_t out) noexcept {
  constexpr std::size_t W = pack<T, Arch>::size;
  return W > 1 && (out == W || out == 2 * W);
}

}  // namespace pnn::simd
