// SPDX-License-Identifier: MIT
/// \file
/// \brief Row-major matrix products (GEMM), packed and register-blocked, for any `Arch`.
///
/// Dense layers spend nearly all their time in three products: the forward pass `A·B` (`gemm_nn`),
/// a forward pass against weights stored output-major `A·Bᵀ` (`gemm_nt`), and the weight gradient
/// `δᵀ·h` (`gemm_tn`). They share one driver written once over `pack<T, Arch>`: blocks of the
/// operands are copied ("packed") into contiguous, aligned panels sized for the caches, and a
/// micro-kernel keeps an `mr × nr` tile of C in registers while it streams those panels. The
/// transposition only changes how a block is packed, so the micro-kernel is the same for all three.
///
/// Packing buffers are `static thread_local` arrays, never the heap; they exist only where the
/// target has an operating system (`PNN_GEMM_PACKING`). Elsewhere (firmware, freestanding
/// builds), and for a single row of A, an unpacked direct path runs instead. Skinny products,
/// where packing costs as much as the product itself (`A·Bᵀ` with few columns, such as a
/// layer's 10 outputs; `A·B` with a short K, such as that layer's transposed read), run
/// unpacked register-blocked kernels: blocks of dot products, or broadcast-and-FMA tiles that
/// read B in place.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <tuple>
#include <type_traits>
#include <utility>

#include <pnn/core/config.hpp>
#include <pnn/core/error.hpp>
#include <pnn/core/threads.hpp>
#include <pnn/simd/arch.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/work.hpp>

/// \def PNN_GEMM_PACKING
/// 1 when GEMM may use its packed path, whose `static thread_local` buffers take about 0.75 MiB
/// per element type and thread. Defaults to 1 on hosted targets with an operating system; a
/// microcontroller (newlib is "hosted" too) gets 0, and with it no large static buffers.
#ifndef PNN_GEMM_PACKING
#if PNN_HOSTED && (defined(__linux__) || defined(_WIN32) || defined(__APPLE__) || defined(__unix__))
#define PNN_GEMM_PACKING 1
#else
#define PNN_GEMM_PACKING 0
#endif
#endif

// The micro-kernel's tile must live in registers, which needs its fixed-count loops fully
// unrolled at every optimisation level, not only at -O3.
#ifndef PNN_DETAIL_UNROLL
#if defined(__GNUC__) && !defined(__clang__)
#define PNN_DETAIL_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define PNN_DETAIL_UNROLL _Pragma("unroll")
#else
#define PNN_DETAIL_UNROLL
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PNN_DETAIL_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#else
#define PNN_DETAIL_PREFETCH_W(p) ((void)0)
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define PNN_DETAIL_UNROLL_K _Pragma("GCC unroll 4")
#elif defined(__clang__)
#define PNN_DETAIL_UNROLL_K _Pragma("unroll 4")
#else
#define PNN_DETAIL_UNROLL_K
#endif

// Packing gathers that run across rows (B of A·Bᵀ, A of A·Bᵀ and A·B) use AVX's in-register
// 8×8 transpose where it is available, on AVX-512 too (xsimd 8 offers no portable one).
#if !defined(PNN_NO_SIMD) && defined(__AVX__) && (defined(__x86_64__) || defined(__i386__))
#define PNN_DETAIL_GEMM_AVX_TRANSPOSE 1
#include <immintrin.h>
#else
#define PNN_DETAIL_GEMM_AVX_TRANSPOSE 0
#endif

namespace pnn::simd {

namespace detail::gemm {

/// Which operand is read transposed; a property of the public entry point.
enum class layout { nn, nt, tn };

/// Which algorithm runs: chosen by size (`automatic`), or forced (tests cover all everywhere).
/// `skinny` is the unpacked register-blocked path for products with a short side;
/// `weight_rows` the packed kernels over chunks of a weight matrix's rows that a team takes in
/// turn (`row_chunks`; where it cannot run, `packed` runs instead).
enum class path { automatic, direct, packed, skinny, weight_rows };

/// What `run` does to each finished block of C (all rows, columns [j0, j1)): nothing, for a
/// plain product; a layer's bias and activation for `gemm_nt_bias_map`.
struct no_epilogue {
  static constexpr bool active = false;
  void operator()(std::size_t, std::size_t) const noexcept {}
};

/// `gemm_nt_bias_map`'s epilogue: C += bias and H = f(C) on columns [j0, j1) of all m rows
/// (`bias_map` when H is C).
template <class T, class Arch, class F>
struct bias_map_epilogue {
  static constexpr bool active = true;
  std::size_t m;
  T* c;
  std::size_t ldc;
  const T* bias;
  const F& f;
  T* h;
  std::size_t ldh;
  void operator()(std::size_t j0, std::size_t j1) const noexcept {
    if (m == 0 || j1 <= j0) return;
    const T* b = bias != nullptr ? bias + j0 : nullptr;
    if (h == c) bias_map<T, Arch>(m, j1 - j0, c + j0, ldc, b, f);
    else bias_map_into<T, Arch>(m, j1 - j0, c + j0, ldc, b, f, h + j0, ldh);
  }
};

/// Register and cache blocking for `T` on `Arch`.
template <class T, class Arch>
struct blocking {
  static constexpr std::size_t lanes = pack<T, Arch>::size;
  static constexpr bool vector = lanes > 1;
  // 6 rows × 2 registers = 12 accumulators, leaving 4 of AVX2's 16 registers for the two B
  // loads and the A broadcast; the scalar arch gets a 4×4 tile of plain values.
  static constexpr std::size_t mr = vector ? 6 : 4;
  static constexpr std::size_t nv = vector ? 2 : 4;
  static constexpr std::size_t nr = nv * lanes;
  // A kc×nr panel of B (16 KiB for float) stays in the 32 KiB L1d while mr×kc panels of A stream
  // past it from L2; an mc×kc block of A takes half of the 512 KiB L2; a kc×nc block of B
  // takes a fraction of L3, so that other threads' blocks fit beside it.
  static constexpr std::size_t kc = 256;
  static constexpr std::size_t mc = (256 * 1024 / (kc * sizeof(T))) / mr * mr;
  static constexpr std::size_t nc = (512 * 1024 / (kc * sizeof(T))) / nr * nr;
};

template <layout L>
inline constexpr bool a_transposed = (L == layout::tn);
template <layout L>
inline constexpr bool b_transposed = (L == layout::nt);

/// Element (i, k) of the logical M×K operand A.
template <bool Trans, class T>
PNN_ALWAYS_INLINE const T& at(const T* a, std::size_t lda, std::size_t i, std::size_t k) noexcept {
  if constexpr (Trans) {
    return a[k * lda + i];
  } else {
    return a[i * lda + k];
  }
}

/// C(m×n) = beta·C, where beta == 0 overwrites without reading (C may hold NaN).
template <class T, class Arch>
void scale_c(std::size_t m, std::size_t n, T beta, T* c, std::size_t ldc) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  if (beta == T(1)) return;
  const P vb(beta);
  for (std::size_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    std::size_t j = 0;
    if (beta == T(0)) {
      const P zero(T(0));
      for (const std::size_t j_end = n - n % W; j < j_end; j += W) zero.store_unaligned(ci + j);
      for (; j < n; ++j) ci[j] = T(0);
    } else {
      for (const std::size_t j_end = n - n % W; j < j_end; j += W) (vb * P::load_unaligned(ci + j)).store_unaligned(ci + j);
      for (; j < n; ++j) ci[j] *= beta;
    }
  }
}

/// y(n) += a·x(n), vectorised; the direct path's inner loop.
template <class T, class Arch>
PNN_ALWAYS_INLINE void axpy_row(std::size_t n, T a, const T* PNN_RESTRICT x, T* PNN_RESTRICT y) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  const P va(a);
  std::size_t j = 0;
  for (const std::size_t j_end = n - n % (2 * W); j < j_end; j += 2 * W) {
    simd::fma(va, P::load_unaligned(x + j), P::load_unaligned(y + j)).store_unaligned(y + j);
    simd::fma(va, P::load_unaligned(x + j + W), P::load_unaligned(y + j + W)).store_unaligned(y + j + W);
  }
  for (const std::size_t j_end = n - n % W; j < j_end; j += W) simd::fma(va, P::load_unaligned(x + j), P::load_unaligned(y + j)).store_unaligned(y + j);
  for (; j < n; ++j) y[j] += a * x[j];
}

/// Σ x(k)·y(k), vectorised with two accumulators to hide the FMA latency.
template <class T, class Arch>
PNN_ALWAYS_INLINE T dot_row(std::size_t n, const T* x, const T* y) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  P s0(T(0)), s1(T(0));
  std::size_t k = 0;
  for (const std::size_t k_end = n - n % (2 * W); k < k_end; k += 2 * W) {
    s0 = simd::fma(P::load_unaligned(x + k), P::load_unaligned(y + k), s0);
    s1 = simd::fma(P::load_unaligned(x + k + W), P::load_unaligned(y + k + W), s1);
  }
  for (const std::size_t k_end = n - n % W; k < k_end; k += W) s0 = simd::fma(P::load_unaligned(x + k), P::load_unaligned(y + k), s0);
  T s = simd::reduce_add(s0 + s1);
  for (; k < n; ++k) s += x[k] * y[k];
  return s;
}

/// Longest K `narrow_nt` takes: its transposed block (K × W values) lives on the stack.
inline constexpr std::size_t narrow_max_k = 256;

/// `A·Bᵀ` with fewer columns `N` than a vector has lanes (a convolution's few kernels against
/// its many patches): `Bᵀ` is laid out once as k vectors whose first N lanes hold one row of
/// `Bᵀ`, and each row of C is one accumulator updated by an FMA of a broadcast element of A per
/// k; R rows run together so that their independent FMAs hide the latency. Every C(i, j) is
/// the sum over k in order, whatever the row's block, so any split of the rows gives the same C.
/// \pre k ≤ narrow_max_k.
template <std::size_t N, class T, class Arch>
void narrow_nt(std::size_t m, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb,
               T beta, T* c, std::size_t ldc) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  constexpr std::size_t R = 8;
  alignas(PNN_ALIGNMENT) T bt[narrow_max_k * W];
  for (std::size_t p = 0; p < k; ++p)
    for (std::size_t j = 0; j < W; ++j) bt[p * W + j] = j < N ? b[j * ldb + p] : T(0);
  alignas(PNN_ALIGNMENT) T out[R * W];
  const auto finish = [&](std::size_t i, std::size_t rows) {
    for (std::size_t r = 0; r < rows; ++r) {
      T* cr = c + (i + r) * ldc;
      for (std::size_t j = 0; j < N; ++j) {
        const T s = alpha * out[r * W + j];
        cr[j] = beta == T(0) ? s : s + beta * cr[j];
      }
    }
  };
  std::size_t i = 0;
  for (; i + R <= m; i += R) {
    P acc[R];
    for (std::size_t r = 0; r < R; ++r) acc[r] = P(T(0));
    const T* ai = a + i * lda;
    for (std::size_t p = 0; p < k; ++p) {
      const P bv = P::load_aligned(bt + p * W);
      for (std::size_t r = 0; r < R; ++r) acc[r] = simd::fma(P(ai[r * lda + p]), bv, acc[r]);
    }
    for (std::size_t r = 0; r < R; ++r) acc[r].store_aligned(out + r * W);
    finish(i, R);
  }
  for (; i < m; ++i) {
    P acc(T(0));
    const T* ai = a + i * lda;
    for (std::size_t p = 0; p < k; ++p) acc = simd::fma(P(ai[p]), P::load_aligned(bt + p * W), acc);
    acc.store_aligned(out);
    finish(i, 1);
  }
}

/// Calls `narrow_nt<N>` for the run-time `n` (1 ≤ n < W).
template <class T, class Arch, std::size_t... N>
void narrow_nt_dispatch(std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
                        const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc,
                        std::index_sequence<N...>) noexcept {
  const auto run_if = [&](auto width) {
    if (n != width) return false;
    narrow_nt<decltype(width)::value, T, Arch>(m, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return true;
  };
  (void)(run_if(std::integral_constant<std::size_t, N + 1>{}) || ...);
}

/// The unpacked path: row-wise updates of C (nn, tn) or dot products (nt; with fewer columns
/// than lanes and at least a vector's worth of rows, `narrow_nt`). No heap buffers.
template <layout Lay, class T, class Arch>
void direct(std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b,
            std::size_t ldb, T beta, T* c, std::size_t ldc) noexcept {
  constexpr std::size_t W = pack<T, Arch>::size;
  if constexpr (Lay == layout::nt && W > 1) {
    if (n < W && m >= W && k <= narrow_max_k) {
      narrow_nt_dispatch<T, Arch>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, std::make_index_sequence<W - 1>{});
      return;
    }
  }
  if constexpr (Lay == layout::nt) {
    for (std::size_t i = 0; i < m; ++i) {
      const T* ai = a + i * lda;
      T* ci = c + i * ldc;
      for (std::size_t j = 0; j < n; ++j) {
        const T s = alpha * dot_row<T, Arch>(k, ai, b + j * ldb);
        ci[j] = beta == T(0) ? s : s + beta * ci[j];
      }
    }
  } else {
    scale_c<T, Arch>(m, n, beta, c, ldc);
    for (std::size_t i = 0; i < m; ++i) {
      T* ci = c + i * ldc;
      for (std::size_t p = 0; p < k; ++p) {
        axpy_row<T, Arch>(n, alpha * at<a_transposed<Lay>>(a, lda, i, p), b + p * ldb, ci);
      }
    }
  }
}

/// Pins a loaded vector to a register. GCC otherwise folds a load that feeds several FMAs into
/// each of them as a memory operand, which turns the skinny kernels' shared loads into one load
/// per FMA and makes them load-bound.
template <class P>
PNN_ALWAYS_INLINE void keep_in_register([[maybe_unused]] P& v) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
  if constexpr (requires { v.data; }) asm("" : "+x"(v.data));
#endif
}

/// One `R × C` block of dot products `C(i, j) = alpha · A(i, :)·B(j, :) + beta · C(i, j)` (the
/// `A·Bᵀ` layout): both operands are read along contiguous rows, R rows of A against C rows of B
/// at once, so that each loaded vector feeds several FMAs and no operand is packed.
template <std::size_t R, std::size_t C, class T, class Arch>
PNN_ALWAYS_INLINE void dot_tile(std::size_t k, T alpha, const T* PNN_RESTRICT a, std::size_t lda,
                                const T* PNN_RESTRICT b, std::size_t ldb, T beta, T* PNN_RESTRICT c,
                                std::size_t ldc) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  P acc[R][C];
  PNN_DETAIL_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    PNN_DETAIL_UNROLL
    for (std::size_t j = 0; j < C; ++j) acc[r][j] = P(T(0));
  }
  std::size_t p = 0;
  for (const std::size_t p_end = k - k % W; p < p_end; p += W) {
    P bv[C];
    PNN_DETAIL_UNROLL
    for (std::size_t j = 0; j < C; ++j) {
      bv[j] = P::load_unaligned(b + j * ldb + p);
      if constexpr (R > 1) keep_in_register(bv[j]);
    }
    PNN_DETAIL_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      P av = P::load_unaligned(a + r * lda + p);
      if constexpr (C > 1) keep_in_register(av);
      PNN_DETAIL_UNROLL
      for (std::size_t j = 0; j < C; ++j) acc[r][j] = simd::fma(av, bv[j], acc[r][j]);
    }
  }
  PNN_DETAIL_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    PNN_DETAIL_UNROLL
    for (std::size_t j = 0; j < C; ++j) {
      T sum = simd::reduce_add(acc[r][j]);
      for (std::size_t q = p; q < k; ++q) sum += a[r * lda + q] * b[j * ldb + q];
      T& out = c[r * ldc + j];
      out = beta == T(0) ? alpha * sum : alpha * sum + beta * out;
    }
  }
}

/// The rows [i, i + R) of `A·Bᵀ` against all N rows of B, in column groups of 3, 2 or 1.
template <std::size_t R, class T, class Arch>
void dot_rows(std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb,
              T beta, T* c, std::size_t ldc) noexcept {
  std::size_t j = 0;
  while (j < n) {
    // 4 columns left go as 2 + 2, not 3 + 1: a single column leaves the loads unshared.
    const std::size_t left = n - j;
    if (left == 1) {
      dot_tile<R, 1, T, Arch>(k, alpha, a, lda, b + j * ldb, ldb, beta, c + j, ldc);
      j += 1;
    } else if (left == 2 || left == 4) {
      dot_tile<R, 2, T, Arch>(k, alpha, a, lda, b + j * ldb, ldb, beta, c + j, ldc);
      j += 2;
    } else {
      dot_tile<R, 3, T, Arch>(k, alpha, a, lda, b + j * ldb, ldb, beta, c + j, ldc);
      j += 3;
    }
  }
}

/// One `R × V·W` block of `C = alpha · A·B + beta · C` with every k-step's B row loaded straight
/// from B and A(i, p) broadcast from A: the micro-kernel's arithmetic without the packing, for
/// products whose K is too short for packing to pay off.
template <std::size_t R, std::size_t V, bool TransA, class T, class Arch>
PNN_ALWAYS_INLINE void axpy_tile(std::size_t k, T alpha, const T* PNN_RESTRICT a, std::size_t lda,
                                 const T* PNN_RESTRICT b, std::size_t ldb, T beta, T* PNN_RESTRICT c,
                                 std::size_t ldc) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  P acc[R][V];
  PNN_DETAIL_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < V; ++v) acc[r][v] = P(T(0));
  }
  for (std::size_t p = 0; p < k; ++p) {
    P bv[V];
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < V; ++v) {
      bv[v] = P::load_unaligned(b + p * ldb + v * W);
      if constexpr (R > 1) keep_in_register(bv[v]);
    }
    PNN_DETAIL_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      const P ar(at<TransA>(a, lda, r, p));
      PNN_DETAIL_UNROLL
      for (std::size_t v = 0; v < V; ++v) acc[r][v] = simd::fma(ar, bv[v], acc[r][v]);
    }
  }
  const P va(alpha);
  PNN_DETAIL_UNROLL
  for (std::size_t r = 0; r < R; ++r) {
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < V; ++v) {
      T* cij = c + r * ldc + v * W;
      if (beta == T(0)) {
        // With K this short, scaling by alpha == 1 would cost a tenth of the tile's arithmetic.
        (alpha == T(1) ? acc[r][v] : va * acc[r][v]).store_unaligned(cij);
      } else {
        simd::fma(va, acc[r][v], P(beta) * P::load_unaligned(cij)).store_unaligned(cij);
      }
    }
  }
}

/// The rows [i, i + R) of `A·B` (A read transposed for `tn`): whole vectors of C in groups of
/// 3, 2 or 1, then the last `N mod W` columns one by one.
template <std::size_t R, bool TransA, class T, class Arch>
void axpy_rows(std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb,
               T beta, T* c, std::size_t ldc) noexcept {
  constexpr std::size_t W = pack<T, Arch>::size;
  std::size_t j = 0;
  for (const std::size_t j_end = n - n % (3 * W); j < j_end; j += 3 * W)
    axpy_tile<R, 3, TransA, T, Arch>(k, alpha, a, lda, b + j, ldb, beta, c + j, ldc);
  const std::size_t whole = (n - j) / W;
  if (whole == 2) {
    axpy_tile<R, 2, TransA, T, Arch>(k, alpha, a, lda, b + j, ldb, beta, c + j, ldc);
    j += 2 * W;
  } else if (whole == 1) {
    axpy_tile<R, 1, TransA, T, Arch>(k, alpha, a, lda, b + j, ldb, beta, c + j, ldc);
    j += W;
  }
  for (; j < n; ++j) {
    for (std::size_t r = 0; r < R; ++r) {
      T sum = T(0);
      for (std::size_t p = 0; p < k; ++p) sum += at<TransA>(a, lda, r, p) * b[p * ldb + j];
      T& out = c[r * ldc + j];
      out = beta == T(0) ? alpha * sum : alpha * sum + beta * out;
    }
  }
}

/// The skinny path: unpacked, register-blocked kernels over blocks of 4 rows of C (then the last
/// 1–3 rows). `A·Bᵀ` runs as blocks of dot products (best for few columns), `A·B` and `Aᵀ·B` as
/// broadcast-and-FMA tiles reading B in place (best for a short K). No buffers at all.
template <layout Lay, class T, class Arch>
void skinny(std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b,
            std::size_t ldb, T beta, T* c, std::size_t ldc) noexcept {
  constexpr std::size_t R = 4;
  constexpr bool TA = a_transposed<Lay>;
  // Row i of A starts at a + i·lda, or (transposed) at column i: a + i.
  const std::size_t row_step = TA ? 1 : lda;
  std::size_t i = 0;
  auto rows = [&]<std::size_t Rows>(std::integral_constant<std::size_t, Rows>) {
    if constexpr (Lay == layout::nt) {
      dot_rows<Rows, T, Arch>(n, k, alpha, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc);
    } else {
      axpy_rows<Rows, TA, T, Arch>(n, k, alpha, a + i * row_step, lda, b, ldb, beta, c + i * ldc, ldc);
    }
  };
  for (const std::size_t i_end = m - m % R; i < i_end; i += R) rows(std::integral_constant<std::size_t, R>{});
  switch (m - i) {
    case 3: rows(std::integral_constant<std::size_t, 3>{}); break;
    case 2: rows(std::integral_constant<std::size_t, 2>{}); break;
    case 1: rows(std::integral_constant<std::size_t, 1>{}); break;
    default: break;
  }
}

#if PNN_GEMM_PACKING

/// The per-thread packing buffers of one element type and architecture.
template <class T, class Arch>
struct buffers {
  using blk = blocking<T, Arch>;
  static T* a() noexcept {
    alignas(PNN_ALIGNMENT) static thread_local T buf[blk::mc * blk::kc];
    return buf;
  }
  static T* b() noexcept {
    alignas(PNN_ALIGNMENT) static thread_local T buf[blk::kc * blk::nc];
    return buf;
  }
};

#if PNN_DETAIL_GEMM_AVX_TRANSPOSE
/// Transposes the 8×8 float block held in r[0..7] (one row per register) in place: unpack,
/// shuffle, lane swap.
PNN_ALWAYS_INLINE void transpose_8x8(__m256 (&r)[8]) noexcept {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/// `dst[q·ldd + i] = src[i·lds + q]` for an 8×8 float block.
PNN_ALWAYS_INLINE void transpose_8x8(const float* src, std::size_t lds, float* dst, std::size_t ldd) noexcept {
  __m256 r[8];
  PNN_DETAIL_UNROLL
  for (std::size_t i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  transpose_8x8(r);
  PNN_DETAIL_UNROLL
  for (std::size_t q = 0; q < 8; ++q) _mm256_storeu_ps(dst + q * ldd, r[q]);
}

/// `dst[q·6 + i] = src[i·lds + q]` for 6 rows and 8 columns: eight k-steps of one 6-row panel
/// of A (the micro-kernel's mr = 6 on AVX and AVX-512).
PNN_ALWAYS_INLINE void transpose_6x8(const float* src, std::size_t lds, float* dst) noexcept {
  __m256 r[8];
  PNN_DETAIL_UNROLL
  for (std::size_t i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  r[6] = r[7] = _mm256_setzero_ps();
  transpose_8x8(r);
  PNN_DETAIL_UNROLL
  for (std::size_t q = 0; q < 8; ++q) {
    _mm_storeu_ps(dst + q * 6, _mm256_castps256_ps128(r[q]));
    _mm_storel_pi(reinterpret_cast<__m64*>(dst + q * 6 + 4), _mm256_extractf128_ps(r[q], 1));
  }
}
#endif

/// Copies the mc×kc block of logical A starting at `a` into mr-row panels, k-major inside a
/// panel, zero-padding the last panel so that the micro-kernel never needs a row count.
template <bool Trans, class T, class Arch>
void pack_a(std::size_t mc, std::size_t kc, const T* a, std::size_t lda, T* PNN_RESTRICT buf) noexcept {
  constexpr std::size_t MR = blocking<T, Arch>::mr;
  for (std::size_t i0 = 0; i0 < mc; i0 += MR) {
    const std::size_t rows = mc - i0 < MR ? mc - i0 : MR;
    if (rows == MR) {
      if constexpr (Trans) {
        for (std::size_t p = 0; p < kc; ++p) {
          const T* src = a + p * lda + i0;
          PNN_DETAIL_UNROLL
          for (std::size_t i = 0; i < MR; ++i) buf[i] = src[i];
          buf += MR;
        }
      } else {
        const T* src = a + i0 * lda;
        std::size_t p = 0;
#if PNN_DETAIL_GEMM_AVX_TRANSPOSE
        if constexpr (std::is_same_v<T, float> && MR == 6) {
          // Row-major A (A·Bᵀ, A·B) gathers a column of 6 rows per k; transposing 6×8 blocks
          // in registers packs it 2.6× faster than element by element.
          for (const std::size_t p_end = kc - kc % 8; p < p_end; p += 8) {
            transpose_6x8(src + p, lda, buf);
            buf += 8 * MR;
          }
        }
#endif
        for (; p < kc; ++p) {
          PNN_DETAIL_UNROLL
          for (std::size_t i = 0; i < MR; ++i) buf[i] = src[i * lda + p];
          buf += MR;
        }
      }
    } else {
      for (std::size_t p = 0; p < kc; ++p) {
        for (std::size_t i = 0; i < MR; ++i) buf[i] = i < rows ? at<Trans>(a, lda, i0 + i, p) : T(0);
        buf += MR;
      }
    }
  }
}


/// Copies the kc×nc block of logical B into nr-column panels, k-major inside a panel,
/// zero-padding the last panel.
template <bool Trans, class T, class Arch>
void pack_b(std::size_t kc, std::size_t nc, const T* b, std::size_t ldb, T* PNN_RESTRICT buf) noexcept {
  using P = pack<T, Arch>;
  constexpr std::size_t W = P::size;
  constexpr std::size_t NR = blocking<T, Arch>::nr;
  for (std::size_t j0 = 0; j0 < nc; j0 += NR) {
    const std::size_t cols = nc - j0 < NR ? nc - j0 : NR;
    if (cols == NR) {
      if constexpr (Trans) {
        // B is stored N×K: each packed row gathers one element from nr stored rows.
        const T* src = b + j0 * ldb;
        std::size_t p = 0;
#if PNN_DETAIL_GEMM_AVX_TRANSPOSE
        if constexpr (std::is_same_v<T, float> && NR % 8 == 0) {
          // 8×8 blocks transposed in registers (AVX's, also on AVX-512): the element-wise
          // gather costs as much as a fifth of a 64×256×784 forward product.
          for (const std::size_t p_end = kc - kc % 8; p < p_end; p += 8) {
            PNN_DETAIL_UNROLL
            for (std::size_t g = 0; g < NR; g += 8) transpose_8x8(src + g * ldb + p, ldb, buf + p * NR + g, NR);
          }
          buf += p * NR;
        }
#endif
        for (; p < kc; ++p) {
          PNN_DETAIL_UNROLL
          for (std::size_t j = 0; j < NR; ++j) buf[j] = src[j * ldb + p];
          buf += NR;
        }
      } else {
        const T* src = b + j0;
        for (std::size_t p = 0; p < kc; ++p) {
          PNN_DETAIL_UNROLL
          for (std::size_t v = 0; v < NR; v += W) P::load_unaligned(src + v).store_aligned(buf + v);
          src += ldb;
          buf += NR;
        }
      }
    } else {
      for (std::size_t p = 0; p < kc; ++p) {
        for (std::size_t j = 0; j < NR; ++j) {
          buf[j] = j < cols ? (Trans ? b[(j0 + j) * ldb + p] : b[p * ldb + j0 + j]) : T(0);
        }
        buf += NR;
      }
    }
  }
}

/// C(m×n) = alpha·(packed A panel · packed B panel) + beta·C for one mr×nr tile, m ≤ mr,
/// n ≤ nr. beta == 0 writes C without reading it.
template <class T, class Arch>
void micro_kernel(std::size_t kc, const T* PNN_RESTRICT ap, const T* PNN_RESTRICT bp, T alpha, T beta, T* c,
                  std::size_t ldc, std::size_t m, std::size_t n) noexcept {
  using P = pack<T, Arch>;
  using blk = blocking<T, Arch>;
  constexpr std::size_t W = P::size;
  constexpr std::size_t MR = blk::mr;
  constexpr std::size_t NV = blk::nv;
  constexpr std::size_t NR = blk::nr;

  P acc[MR][NV];
  PNN_DETAIL_UNROLL
  for (std::size_t i = 0; i < MR; ++i) {
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < NV; ++v) acc[i][v] = P(T(0));
  }
  // C's tile is needed only at the end; asking for it now hides its miss behind the k loop.
  // Every line of each row: with AVX-512 a row of the tile spans two or three lines, and a
  // weight update (beta = 1) on two threads measured 9 % slower asking for the first alone.
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; j += 64 / sizeof(T)) PNN_DETAIL_PREFETCH_W(c + i * ldc + j);
    PNN_DETAIL_PREFETCH_W(c + i * ldc + n - 1);
  }
  PNN_DETAIL_UNROLL_K
  for (std::size_t p = 0; p < kc; ++p) {
    P bv[NV];
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < NV; ++v) bv[v] = P::load_aligned(bp + v * W);
    PNN_DETAIL_UNROLL
    for (std::size_t i = 0; i < MR; ++i) {
      const P ai(ap[i]);
      PNN_DETAIL_UNROLL
      for (std::size_t v = 0; v < NV; ++v) acc[i][v] = simd::fma(ai, bv[v], acc[i][v]);
    }
    ap += MR;
    bp += NR;
  }

  const P va(alpha);
  if (m == MR && n == NR) {
    if (beta == T(0)) {
      PNN_DETAIL_UNROLL
      for (std::size_t i = 0; i < MR; ++i) {
        PNN_DETAIL_UNROLL
        for (std::size_t v = 0; v < NV; ++v) (va * acc[i][v]).store_unaligned(c + i * ldc + v * W);
      }
    } else if (beta == T(1)) {
      PNN_DETAIL_UNROLL
      for (std::size_t i = 0; i < MR; ++i) {
        PNN_DETAIL_UNROLL
        for (std::size_t v = 0; v < NV; ++v) {
          T* cij = c + i * ldc + v * W;
          simd::fma(va, acc[i][v], P::load_unaligned(cij)).store_unaligned(cij);
        }
      }
    } else {
      const P vb(beta);
      PNN_DETAIL_UNROLL
      for (std::size_t i = 0; i < MR; ++i) {
        PNN_DETAIL_UNROLL
        for (std::size_t v = 0; v < NV; ++v) {
          T* cij = c + i * ldc + v * W;
          simd::fma(va, acc[i][v], vb * P::load_unaligned(cij)).store_unaligned(cij);
        }
      }
    }
    return;
  }
  // An edge tile goes through a scratch tile so that C is touched only inside its bounds.
  alignas(PNN_ALIGNMENT) T tile[MR * NR];
  PNN_DETAIL_UNROLL
  for (std::size_t i = 0; i < MR; ++i) {
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < NV; ++v) (va * acc[i][v]).store_aligned(tile + i * NR + v * W);
  }
  for (std::size_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    const T* ti = tile + i * NR;
    if (beta == T(0)) {
      for (std::size_t j = 0; j < n; ++j) ci[j] = ti[j];
    } else {
      for (std::size_t j = 0; j < n; ++j) ci[j] = ti[j] + beta * ci[j];
    }
  }
}

/// Splits `total` into the fewest blocks of at most `cap`, of nearly equal size rounded up to a
/// multiple of `unit`: 256 rows with mc = 252 become 132 + 124, not 252 + 4.
constexpr std::size_t balanced_block(std::size_t total, std::size_t cap, std::size_t unit) noexcept {
  const std::size_t count = (total + cap - 1) / cap;
  const std::size_t even = (total + count - 1) / count;
  const std::size_t rounded = (even + unit - 1) / unit * unit;
  return rounded < cap ? rounded : cap;
}

/// The packed path: loops over cache blocks of B (nc×kc, in L3), of A (mc×kc, in L2), then
/// register tiles.
template <layout Lay, class T, class Arch>
void packed(std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b,
            std::size_t ldb, T beta, T* c, std::size_t ldc) noexcept {
  using blk = blocking<T, Arch>;
  constexpr bool TA = a_transposed<Lay>;
  constexpr bool TB = b_transposed<Lay>;
  constexpr std::size_t MR = blk::mr;
  constexpr std::size_t NR = blk::nr;
  const std::size_t kcb = balanced_block(k, blk::kc, 1);
  const std::size_t mcb = balanced_block(m, blk::mc, MR);
  const std::size_t ncb = balanced_block(n, blk::nc, NR);
  T* const abuf = buffers<T, Arch>::a();
  T* const bbuf = buffers<T, Arch>::b();

  for (std::size_t jc = 0; jc < n; jc += ncb) {
    const std::size_t nc = n - jc < ncb ? n - jc : ncb;
    for (std::size_t pc = 0; pc < k; pc += kcb) {
      const std::size_t kc = k - pc < kcb ? k - pc : kcb;
      // Only the first pass over k applies the caller's beta; later ones accumulate.
      const T beta_k = pc == 0 ? beta : T(1);
      pack_b<TB, T, Arch>(kc, nc, TB ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, bbuf);
      for (std::size_t ic = 0; ic < m; ic += mcb) {
        const std::size_t mc = m - ic < mcb ? m - ic : mcb;
        pack_a<TA, T, Arch>(mc, kc, TA ? a + pc * lda + ic : a + ic * lda + pc, lda, abuf);
        for (std::size_t jr = 0; jr < nc; jr += NR) {
          const std::size_t nn = nc - jr < NR ? nc - jr : NR;
          const T* bp = bbuf + jr * kc;
          for (std::size_t ir = 0; ir < mc; ir += MR) {
            const std::size_t mm = mc - ir < MR ? mc - ir : MR;
            micro_kernel<T, Arch>(kc, abuf + ir * kc, bp, alpha, beta_k, c + (ic + ir) * ldc + jc + jr, ldc, mm,
                                  nn);
          }
        }
      }
    }
  }
}

using ::pnn::detail::chunk_claims;

/// Rows of the weight matrix in one chunk of a weight update on the `weight_rows` path: 2
/// register tiles, so that 256 rows make 22 chunks and two threads that run at different
/// speeds end together — with 4 tiles' 11 chunks of ~12 µs, one thread of the 784-256 layer's
/// update waited 3–11 µs for the other's last chunk (measured; 7 µs of a 200 µs step on
/// average). The chunk's tiles start at multiples of `mr` as before, so results are unchanged.
template <class T, class Arch>
inline constexpr std::size_t chunk_rows = 2 * blocking<T, Arch>::mr;
/// Rows of W in one register tile of the forward product's kernel (`weight_rows_kernel`): 8 with
/// AVX-512's 32 registers (16 accumulators, two loads of the batch and a broadcast), the packed
/// kernel's mr with AVX2's 16. Each element's sum is the same whatever the tile's height.
template <class T, class Arch>
inline constexpr std::size_t forward_tile_rows = blocking<T, Arch>::lanes * sizeof(T) >= 64 ? 8 : blocking<T, Arch>::mr;
/// Rows of W in one chunk of a forward product: two register tiles, and a whole vector of C's
/// row, so that an epilogue's vectors and scalar tail fall where a pass over whole rows puts
/// them (16 rows on AVX-512, 24 on AVX2). On AVX-512 the 784-256 layer's 256 rows make 16
/// chunks: two threads get 128 rows each, where the 6-row tile's 48-row chunks left them 144
/// and 112 (a fifth of the forward product waiting, measured).
template <class T, class Arch>
inline constexpr std::size_t forward_chunk_rows = std::lcm(2 * forward_tile_rows<T, Arch>, blocking<T, Arch>::lanes);

/// Whether the `weight_rows` path can run an m×n×k product: Aᵀ·B (a weight update: C = W) with
/// one pass over k (k ≤ kc) and all of B packed in one buffer; A·Bᵀ (a forward pass against
/// W = B) in float with AVX, all of A packed in one buffer.
template <layout Lay, class T, class Arch>
constexpr bool weight_rows_fit(std::size_t m, std::size_t n, std::size_t k) noexcept {
  using blk = blocking<T, Arch>;
  constexpr std::size_t NR = blk::nr;
  if constexpr (!blk::vector) {
    return false;
  } else if constexpr (Lay == layout::tn) {
    return k <= blk::kc && (n + NR - 1) / NR * NR * k <= blk::kc * blk::nc;
  } else if constexpr (Lay == layout::nt && PNN_DETAIL_GEMM_AVX_TRANSPOSE && std::is_same_v<T, float>) {
    const std::size_t mp = (m + NR - 1) / NR * NR;
    return mp * k <= blk::kc * blk::nc && forward_chunk_rows<T, Arch> * mp <= blk::mc * blk::kc;
  } else {
    return false;
  }
}

#if PNN_DETAIL_GEMM_AVX_TRANSPOSE
/// One `forward_tile_rows` × nr tile of Cᵀ = W·Aᵀ for the forward pass: its rows of W are
/// broadcast straight from memory (row stride `ldw`; rows past `m` repeat row 0 and are
/// computed but never copied out), the panel of Aᵀ is packed. The tile goes to the scratch `ct` (row stride `ldt`) with
/// the packed path's full-tile rule, so each element rounds as there.
template <class T, class Arch>
void weight_rows_kernel(std::size_t kc, const T* w, std::size_t ldw, std::size_t m, const T* PNN_RESTRICT bp,
                        T alpha, T beta, T* PNN_RESTRICT ct, std::size_t ldt) noexcept {
  using P = pack<T, Arch>;
  using blk = blocking<T, Arch>;
  constexpr std::size_t W = P::size;
  constexpr std::size_t MR = forward_tile_rows<T, Arch>;
  constexpr std::size_t NV = blk::nv;
  constexpr std::size_t NR = blk::nr;
  const T* wr[MR];
  PNN_DETAIL_UNROLL
  for (std::size_t i = 0; i < MR; ++i) wr[i] = w + (i < m ? i : 0) * ldw;
  P acc[MR][NV];
  PNN_DETAIL_UNROLL
  for (std::size_t i = 0; i < MR; ++i) {
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < NV; ++v) acc[i][v] = P(T(0));
  }
  PNN_DETAIL_UNROLL_K
  for (std::size_t p = 0; p < kc; ++p) {
    P bv[NV];
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < NV; ++v) bv[v] = P::load_aligned(bp + v * W);
    PNN_DETAIL_UNROLL
    for (std::size_t i = 0; i < MR; ++i) {
      const P wi(wr[i][p]);
      PNN_DETAIL_UNROLL
      for (std::size_t v = 0; v < NV; ++v) acc[i][v] = simd::fma(wi, bv[v], acc[i][v]);
    }
    bp += NR;
  }
  const P va(alpha), vb(beta);
  PNN_DETAIL_UNROLL
  for (std::size_t i = 0; i < MR; ++i) {
    PNN_DETAIL_UNROLL
    for (std::size_t v = 0; v < NV; ++v) {
      T* t = ct + i * ldt + v * W;
      if (beta == T(0)) (va * acc[i][v]).store_aligned(t);
      else if (beta == T(1)) simd::fma(va, acc[i][v], P::load_aligned(t)).store_aligned(t);
      else simd::fma(va, acc[i][v], vb * P::load_aligned(t)).store_aligned(t);
    }
  }
}

/// `dst[i·ldd + q] = src[q·lds + i]` for i < rows, q < cols: 8×8 blocks in registers, the
/// ragged edges element by element.
inline void transpose_block(std::size_t rows, std::size_t cols, const float* src, std::size_t lds, float* dst,
                            std::size_t ldd) noexcept {
  const std::size_t r8 = rows - rows % 8, c8 = cols - cols % 8;
  for (std::size_t q = 0; q < c8; q += 8)
    for (std::size_t i = 0; i < r8; i += 8) transpose_8x8(src + q * lds + i, lds, dst + i * ldd + q, ldd);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t q = i < r8 ? c8 : 0; q < cols; ++q) dst[i * ldd + q] = src[q * lds + i];
  }
}
#endif

/// The `weight_rows` path, run by every thread `t` of a team with the same `claims`: each thread
/// packs the batch-side operand (B = the layer's inputs of Aᵀ·B, A = the batch of A·Bᵀ) into
/// its own buffer — sharing one packed copy costs more (measured) than it saves: the team must
/// wait for its last thread to arrive, and reads the copy from another core's cache — then
/// takes chunks of the weight matrix's rows until none is left. Work goes to whichever
/// thread is free — the static halves of `packed` leave one core waiting whenever the other is
/// slowed — while every element is computed by the same kernel in the same order whichever
/// thread takes its chunk, so the result does not depend on the team. Aᵀ·B gives bitwise the
/// product of `packed` (the same tiles); A·Bᵀ, computed as Cᵀ = B·Aᵀ so that W is read in place
/// instead of repacked on every call, gives it too for alpha = 1 (the forward pass).
/// Chunks are `CH` rows (a multiple of the kernel's tile height); a forward product calls
/// `epi(r0, r1)` on each chunk's columns of C once they are final (an update has no epilogue).
/// \pre weight_rows_fit<Lay, T, Arch>(m, n, k).
template <layout Lay, class T, class Arch, class Epi>
void weight_rows(std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b,
                 std::size_t ldb, T beta, T* c, std::size_t ldc, chunk_claims& claims, std::size_t t,
                 std::size_t team, std::size_t CH, const Epi& epi) noexcept {
  using blk = blocking<T, Arch>;
  constexpr std::size_t MR = blk::mr;
  constexpr std::size_t NR = blk::nr;
  T* const abuf = buffers<T, Arch>::a();
  T* const bbuf = buffers<T, Arch>::b();
  if constexpr (Lay == layout::tn) {
    pack_b<false, T, Arch>(k, n, b, ldb, bbuf);
    claims.run(t, team, [&](std::size_t chunk) {
      const std::size_t i0 = chunk * CH;
      const std::size_t mc = m - i0 < CH ? m - i0 : CH;
      pack_a<true, T, Arch>(mc, k, a + i0, lda, abuf);
      for (std::size_t jr = 0; jr < n; jr += NR) {
        const std::size_t nn = n - jr < NR ? n - jr : NR;
        for (std::size_t ir = 0; ir < mc; ir += MR) {
          const std::size_t mm = mc - ir < MR ? mc - ir : MR;
          micro_kernel<T, Arch>(k, abuf + ir * k, bbuf + jr * k, alpha, beta, c + (i0 + ir) * ldc + jr, ldc, mm, nn);
        }
      }
    });
  } else {
#if PNN_DETAIL_GEMM_AVX_TRANSPOSE
    if constexpr (Lay == layout::nt && std::is_same_v<T, float>) {
      // C (m×n) = alpha·A·Bᵀ + beta·C as Cᵀ = B·Aᵀ: the rows of Cᵀ are the rows of W = B.
      const std::size_t mp = (m + NR - 1) / NR * NR;
      const std::size_t kcb = balanced_block(k, blk::kc, 1);
      for (std::size_t pc = 0; pc < k; pc += kcb)
        pack_b<true, T, Arch>(k - pc < kcb ? k - pc : kcb, m, a + pc, lda, bbuf + pc * mp);
      T* const ct = abuf;  // CH × mp, this chunk's rows of Cᵀ
      claims.run(t, team, [&](std::size_t chunk) {
        const std::size_t r0 = chunk * CH;
        const std::size_t cr = n - r0 < CH ? n - r0 : CH;
        if (beta != T(0)) transpose_block(cr, m, c + r0, ldc, ct, mp);
        for (std::size_t pc = 0; pc < k; pc += kcb) {
          const std::size_t kc = k - pc < kcb ? k - pc : kcb;
          const T beta_k = pc == 0 ? beta : T(1);
          for (std::size_t ir = 0; ir < cr; ir += forward_tile_rows<T, Arch>)
            for (std::size_t jr = 0; jr < mp; jr += NR)
              weight_rows_kernel<T, Arch>(kc, b + (r0 + ir) * ldb + pc, ldb, cr - ir, bbuf + pc * mp + jr * kc, alpha,
                                          beta_k, ct + ir * mp + jr, mp);
        }
        transpose_block(m, cr, ct, mp, c + r0, ldc);
        epi(r0, r0 + cr);  // while the chunk's columns of C are still in this core's cache
      });
      return;
    }
#endif
    (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
    (void)claims, (void)t, (void)team, (void)abuf, (void)bbuf, (void)CH, (void)epi;
  }
}

#endif  // PNN_GEMM_PACKING

/// The path `automatic` takes for an m×n×k product.
template <layout Lay, class T, class Arch>
constexpr path choose(std::size_t m, std::size_t n, std::size_t k) noexcept {
  using blk = blocking<T, Arch>;
  // Measured on AVX2 (float): packing pays off from 8×8×8 up, except for a single row (a
  // GEMV), for A·Bᵀ with few columns (up to 4 vectors' worth: blocks of dot products run at
  // 65–80 GFLOP/s where the packed path, padding N to its 16-wide tile, gets 27–50), and for a
  // K of at most 2 vectors' worth in A·B and Aᵀ·B (the packing costs as much as the product).
  // The skinny kernels stream all of B once per 4 rows of A, so B must stay in L2 (half of
  // 512 KiB); beyond that the packed path's cache blocking wins.
  constexpr std::size_t W = blk::lanes;
  const bool b_fits = n * k <= 256 * 1024 / sizeof(T);
  const bool skinny_nt = Lay == layout::nt && n <= 4 * W && k >= 2 * W && b_fits;
  const bool skinny_k = Lay != layout::nt && k <= 2 * W && n >= W && b_fits;
  if (m == 1 || (Lay == layout::nt && n < W && !skinny_nt)) return path::direct;
  if (blk::vector && (skinny_nt || skinny_k)) return path::skinny;
#if PNN_GEMM_PACKING
  // A weight update with enough rows for a team to share (8 register tiles or more), and a
  // forward pass of a batch of up to 4 register tiles' width through a weight matrix with as
  // many rows: there, repacking all of W on every call costs more (measured 9 % of the
  // 64×256×784 product on AVX-512) than packing the batch and transposing the result back.
  constexpr std::size_t CH = 4 * blk::mr;
  if (weight_rows_fit<Lay, T, Arch>(m, n, k) &&
      ((Lay == layout::tn && m >= 2 * CH) || (Lay == layout::nt && m >= 8 && m <= 4 * blk::nr && n >= 2 * CH)))
    return path::weight_rows;
  return path::packed;
#else
  return path::direct;
#endif
}

/// Checks the preconditions shared by the entry points and dispatches; `epi` then runs on every
/// block of C once it is final (on whole chunks inside the `weight_rows` team, else on all of C).
template <layout Lay, class T, class Arch, class Epi = no_epilogue>
void run(path how, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b,
         std::size_t ldb, T beta, T* c, std::size_t ldc, const Epi& epi = {}) {
  PNN_EXPECTS(m == 0 || n == 0 || c != nullptr, "gemm: C is null");
  PNN_EXPECTS(m == 0 || k == 0 || a != nullptr, "gemm: A is null");
  PNN_EXPECTS(n == 0 || k == 0 || b != nullptr, "gemm: B is null");
  PNN_EXPECTS(m == 0 || lda >= (a_transposed<Lay> ? m : k), "gemm: lda is smaller than a row of A");
  PNN_EXPECTS(n == 0 || ldb >= (b_transposed<Lay> ? k : n), "gemm: ldb is smaller than a row of B");
  PNN_EXPECTS(m == 0 || ldc >= n, "gemm: ldc is smaller than a row of C");
  if (m == 0 || n == 0) return;
  // BLAS semantics: with nothing to add, A and B are not read (NaN in them does not leak).
  if (k == 0 || alpha == T(0)) {
    scale_c<T, Arch>(m, n, beta, c, ldc);
    epi(0, n);
    return;
  }
  ::pnn::simd::detail::count_kernel_work(2 * std::uint64_t(m) * n * k,
                                         std::uint64_t(m) * k + std::uint64_t(k) * n + (beta == T(0) ? 1 : 2) * std::uint64_t(m) * n,
                                         sizeof(T));
  if (how == path::automatic) how = choose<Lay, T, Arch>(m, n, k);
  if (how == path::weight_rows) {
#if PNN_GEMM_PACKING
    if (weight_rows_fit<Lay, T, Arch>(m, n, k)) {
      const std::size_t ch = Lay == layout::tn ? chunk_rows<T, Arch> : forward_chunk_rows<T, Arch>;
      const std::size_t chunks = ((Lay == layout::tn ? m : n) + ch - 1) / ch;
      const auto by_work = static_cast<std::size_t>(2.0 * double(m) * double(n) * double(k) / 2e6);
      chunk_claims claims(chunks);
      ::pnn::detail::parallel_team(by_work < chunks ? by_work : chunks, [&](std::size_t t, std::size_t team) noexcept {
        weight_rows<Lay, T, Arch>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, claims, t, team, ch, epi);
      });
      if constexpr (Lay == layout::tn) epi(0, n);
      return;
    }
#endif
    how = PNN_GEMM_PACKING ? path::packed : path::direct;
  }
  // Threads split C into column slabs (row slabs where it is narrow) at whole register tiles:
  // every element is then summed by the same kernel in the same order as without the split, so
  // the result does not depend on the thread count. A thread gets at least ~2 MFLOP.
  using blk = blocking<T, Arch>;
  const std::size_t unit_n = how == path::packed ? blk::nr : blk::lanes;
  const std::size_t unit_m = how == path::packed ? blk::mr : how == path::skinny ? 4 : 1;
  const std::size_t max_team = static_cast<std::size_t>(2.0 * double(m) * double(n) * double(k) / 2e6);
  // Aᵀ·B is a weight update (C = W, out × in) whose forward pass A·Bᵀ splits W by rows (its
  // outputs): splitting the update by rows too keeps each core on the rows it holds in cache.
  constexpr bool rows_first = Lay == layout::tn;
  ::pnn::detail::parallel_team(max_team, [&](std::size_t t, std::size_t team) noexcept {
    std::size_t i0 = 0, i1 = m, j0 = 0, j1 = n;
    if (team > 1) {
      if (rows_first ? m < team * unit_m : n >= team * unit_n) std::tie(j0, j1) = ::pnn::detail::team_range(n, unit_n, t, team);
      else std::tie(i0, i1) = ::pnn::detail::team_range(m, unit_m, t, team);
    }
    if (i0 >= i1 || j0 >= j1) return;
    const T* as = a_transposed<Lay> ? a + i0 : a + i0 * lda;
    const T* bs = b_transposed<Lay> ? b + j0 * ldb : b + j0;
    T* cs = c + i0 * ldc + j0;
    const std::size_t ms = i1 - i0, ns = j1 - j0;
    if (how == path::skinny) {
      skinny<Lay, T, Arch>(ms, ns, k, alpha, as, lda, bs, ldb, beta, cs, ldc);
      return;
    }
#if PNN_GEMM_PACKING
    if (how == path::packed) {
      packed<Lay, T, Arch>(ms, ns, k, alpha, as, lda, bs, ldb, beta, cs, ldc);
      return;
    }
#endif
    direct<Lay, T, Arch>(ms, ns, k, alpha, as, lda, bs, ldb, beta, cs, ldc);
  });
  epi(0, n);
}

}  // namespace detail::gemm

/// C(M×N) = alpha·A·B + beta·C, all row-major: A is M×K with row stride `lda`, B is K×N with
/// row stride `ldb`, C has row stride `ldc`. With beta == 0, C is overwritten and never read.
/// \pre A, B, C are not null where the sizes make them read or written.
/// \pre lda ≥ K, ldb ≥ N, ldc ≥ N.
/// \pre C does not overlap A or B.
template <class T, class Arch = default_arch>
void gemm_nn(std::size_t M, std::size_t N, std::size_t K, std::type_identity_t<T> alpha, const T* A,
             std::size_t lda, const T* B, std::size_t ldb, std::type_identity_t<T> beta, T* C, std::size_t ldc) {
  detail::gemm::run<detail::gemm::layout::nn, T, Arch>(detail::gemm::path::automatic, M, N, K, alpha, A, lda, B,
                                                        ldb, beta, C, ldc);
}

/// C(M×N) = alpha·A·Bᵀ + beta·C, row-major: A is M×K (`lda`), B is N×K (`ldb`). This is a
/// forward pass against weights stored one output per row.
/// \pre A, B, C are not null where the sizes make them read or written.
/// \pre lda ≥ K, ldb ≥ K, ldc ≥ N.
/// \pre C does not overlap A or B.
template <class T, class Arch = default_arch>
void gemm_nt(std::size_t M, std::size_t N, std::size_t K, std::type_identity_t<T> alpha, const T* A,
             std::size_t lda, const T* B, std::size_t ldb, std::type_identity_t<T> beta, T* C, std::size_t ldc) {
  detail::gemm::run<detail::gemm::layout::nt, T, Arch>(detail::gemm::path::automatic, M, N, K, alpha, A, lda, B,
                                                        ldb, beta, C, ldc);
}

/// \brief A layer's forward pass with its bias and activation as the product's epilogue:
/// C(M×N) = A·Bᵀ, then C(i, j) += bias(j) and H(i, j) = f(C(i, j)) — what `gemm_nt` followed
/// by `bias_map_into` computes, bit for bit, without a second pass over C. Where the product
/// runs on chunks of B's rows (`weight_rows`: a batch of up to 4 register tiles' width), each
/// chunk's columns get their bias and activation from the thread that computed them while
/// they are still in its cache. H == C (with ldh == ldc) keeps only f(C + bias), as
/// `bias_map` does. A null `bias` means none.
/// \pre As `gemm_nt` (alpha 1, beta 0); H is not null when M·N > 0; ldh ≥ N; H == C or H
/// overlaps neither C, A nor B.
template <class T, class Arch = default_arch, scalar_function<T> F>
void gemm_nt_bias_map(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                      std::size_t ldb, const T* bias, const F& f, T* C, std::size_t ldc, T* H, std::size_t ldh) {
  PNN_EXPECTS(M == 0 || N == 0 || H != nullptr, "gemm_nt_bias_map: H is null");
  PNN_EXPECTS(M == 0 || ldh >= N, "gemm_nt_bias_map: ldh is smaller than a row of H");
  PNN_EXPECTS(H != C || ldh == ldc, "gemm_nt_bias_map: H == C needs ldh == ldc");
  detail::gemm::run<detail::gemm::layout::nt, T, Arch>(detail::gemm::path::automatic, M, N, K, T(1), A, lda, B, ldb,
                                                        T(0), C, ldc,
                                                        detail::gemm::bias_map_epilogue<T, Arch, F>{M, C, ldc, bias, f, H, ldh});
}

/// C(M×N) = alpha·Aᵀ·B + beta·C, row-major: A is K×M (`lda`), B is K×N (`ldb`). This is the
/// rank-K update of a weight gradient, ΔW = δᵀ·h summed over a batch of K samples.
/// \pre A, B, C are not null where the sizes make them read or written.
/// \pre lda ≥ M, ldb ≥ N, ldc ≥ N.
/// \pre C does not overlap A or B.
template <class T, class Arch = default_arch>
void gemm_tn(std::size_t M, std::size_t N, std::size_t K, std::type_identity_t<T> alpha, const T* A,
             std::size_t lda, const T* B, std::size_t ldb, std::type_identity_t<T> beta, T* C, std::size_t ldc) {
  detail::gemm::run<detail::gemm::layout::tn, T, Arch>(detail::gemm::path::automatic, M, N, K, alpha, A, lda, B,
                                                        ldb, beta, C, ldc);
}

}  // namespace pnn::simd
