// SPDX-License-Identifier: MIT
/// \file
/// \brief Losses (`pnn::loss`): the batch-mean cost of outputs `y` against targets `t`.
///
/// Every loss returns the mean over the batch and writes `∂L/∂y` (so a batch gradient is already
/// averaged). Outputs and targets are row-major `n × k`.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>

#include <pnn/simd/math.hpp>

namespace pnn::loss {

/// Mean squared error, `L = (1/n) Σ_n ½‖y_n − t_n‖²`; `∂L/∂y = (y − t)/n`.
struct mse {
  static constexpr const char* name = "mse";
  /// Loss value only.
  template <class T>
  T value(const T* y, const T* t, std::size_t n, std::size_t k) const noexcept {
    double s = 0;
    for (std::size_t i = 0; i < n * k; ++i) {
      const double d = double(y[i]) - double(t[i]);
      s += d * d;
    }
    return static_cast<T>(0.5 * s / double(n));
  }
  /// Loss value, and `∂L/∂y` into `dy`.
  template <class T>
  T gradient(const T* y, const T* t, std::size_t n, std::size_t k, T* dy) const noexcept {
    const T inv = T(1) / static_cast<T>(n);
    for (std::size_t i = 0; i < n * k; ++i) dy[i] = (y[i] - t[i]) * inv;
    return value(y, t, n, k);
  }
};

/// Softmax cross-entropy on logits, `L = −(1/n) Σ_n Σ_k t_nk log softmax(y_n)_k`, computed with
/// the max subtracted (stable for any logits); `∂L/∂y = (softmax(y) − t)/n`.
struct softmax_cross_entropy {
  static constexpr const char* name = "softmax_cross_entropy";
  template <class T>
  T value(const T* y, const T* t, std::size_t n, std::size_t k) const noexcept {
    return run(y, t, n, k, static_cast<T*>(nullptr));
  }
  template <class T>
  T gradient(const T* y, const T* t, std::size_t n, std::size_t k, T* dy) const noexcept {
    return run(y, t, n, k, dy);
  }

 private:
  // Values of a block of rows whose exponentials go register by register: 2 KB of doubles.
  static constexpr std::size_t block_values = 256;

  template <class T>
  static T run(const T* y, const T* t, std::size_t n, std::size_t k, T* dy) noexcept {
    // One exponential per logit dominated the step of a small classifier's head (640 calls of
    // std::exp, ~13 k cycles, for a batch of 64 × 10 classes — as long as the 784-256-10 MLP's
    // backward product); a register of them costs about what one call did. The scalar build
    // (and the embedded path, with its small stack) goes row by row.
    if constexpr (simd::is_scalar_arch<simd::default_arch>) return run_rows(y, t, n, k, dy);
    else return k <= block_values ? run_blocks(y, t, n, k, dy) : run_rows(y, t, n, k, dy);
  }

  // Rows in blocks of up to `block_values` logits: e_j = exp(y_j − m) and softmax_j = e_j / z
  // for a block a register at a time, each row's sums in order. Every y of a block is read
  // before its dy is written, so dy may be y.
  template <class T>
  static T run_blocks(const T* y, const T* t, std::size_t n, std::size_t k, T* dy) noexcept {
    using P = simd::pack<double, simd::default_arch>;
    constexpr std::size_t W = P::size;
    // exp is 0 in double below it; clamped there, the vector exp's exponent stays within an
    // integer (logits of 1e300 once made it convert -3.5e300, undefined behaviour).
    constexpr double lowest = -746.0;
    alignas(64) double e[block_values + W], z_of[block_values + W];
    T m[block_values];
    double total = 0;
    const double inv = 1.0 / double(n);
    const std::size_t rows_per_block = block_values / k;
    for (std::size_t r0 = 0; r0 < n; r0 += rows_per_block) {
      const std::size_t rows = n - r0 < rows_per_block ? n - r0 : rows_per_block;
      const std::size_t count = rows * k;
      const T* yb = y + r0 * k;
      const T* tb = t + r0 * k;
      bool numbers = true;  // no NaN among the block's differences
      for (std::size_t r = 0; r < rows; ++r) {
        const T* yr = yb + r * k;
        T mr = yr[0];
        for (std::size_t j = 1; j < k; ++j) mr = yr[j] > mr ? yr[j] : mr;
        m[r] = mr;
        for (std::size_t j = 0; j < k; ++j) {
          const double d = double(yr[j] - mr);
          numbers = numbers && d == d;
          e[r * k + j] = d < lowest ? lowest : d;
        }
      }
      if (!numbers) {  // NaN logits: std::exp carries the NaN into the loss and the gradient
        total += rows_total(yb, tb, rows, k, inv, dy == nullptr ? nullptr : dy + r0 * k);
        continue;
      }
      // Whole registers to the block's end (padded), so that each value is computed by the same
      // code wherever its row falls: the gradient does not depend on the batch's size.
      const std::size_t padded = (count + W - 1) / W * W;
      for (std::size_t i = count; i < padded; ++i) e[i] = 0, z_of[i] = 1;
      for (std::size_t i = 0; i < padded; i += W) pnn::detail::exp_any(P::load_aligned(e + i)).store_aligned(e + i);
      for (std::size_t r = 0; r < rows; ++r) {
        double z = 0, t_dot = 0, t_sum = 0;
        for (std::size_t j = 0; j < k; ++j) {
          z += e[r * k + j];
          const T tj = tb[r * k + j];
          if (tj != T(0)) {
            t_dot += double(tj) * (double(yb[r * k + j]) - double(m[r]));
            t_sum += double(tj);
          }
        }
        total -= t_dot - t_sum * std::log(z);
        for (std::size_t j = 0; j < k; ++j) z_of[r * k + j] = z;
      }
      if (dy == nullptr) continue;
      // A quotient, not e_j · (1/z): a product followed by − t_j could be fused into one FMA in
      // some inlined copies and not in others, and two builds of one network (fixed and run-time
      // extents) must train bit for bit alike.
      for (std::size_t i = 0; i < padded; i += W) (P::load_aligned(e + i) / P::load_aligned(z_of + i)).store_aligned(e + i);
      for (std::size_t i = 0; i < count; ++i) dy[r0 * k + i] = static_cast<T>((e[i] - double(tb[i])) * inv);
    }
    return static_cast<T>(total * inv);
  }

  // Row by row, each exponential by `std::exp`. Every y_j of a row is read before its dy is
  // written, so dy may be y.
  template <class T>
  static T run_rows(const T* y, const T* t, std::size_t n, std::size_t k, T* dy) noexcept {
    const double inv = 1.0 / double(n);
    return static_cast<T>(rows_total(y, t, n, k, inv, dy) * inv);
  }

  // −Σ t_j log softmax_j summed over `rows` rows, each gradient (softmax_j − t_j)·inv into `dy`
  // unless null.
  template <class T>
  static double rows_total(const T* y, const T* t, std::size_t rows, std::size_t k, double inv, T* dy) noexcept {
    double total = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* yr = y + r * k;
      const T* tr = t + r * k;
      T m = yr[0];
      for (std::size_t j = 1; j < k; ++j) m = yr[j] > m ? yr[j] : m;
      // Each exponential once where a row fits the buffer (any classifier's): e_j = exp(y_j − m)
      // is kept in double and softmax_j = e_j / z, and −Σ t_j log softmax_j is
      // −(Σ t_j (y_j − m) − Σ t_j · log z).
      constexpr std::size_t kept = 32;
      double e[kept];
      double z = 0, t_dot = 0, t_sum = 0;
      for (std::size_t j = 0; j < k; ++j) {
        const double ej = std::exp(double(yr[j] - m));
        if (j < kept) e[j] = ej;
        z += ej;
        if (tr[j] != T(0)) {
          t_dot += double(tr[j]) * (double(yr[j]) - double(m));
          t_sum += double(tr[j]);
        }
      }
      const double log_z = std::log(z);
      total -= t_dot - t_sum * log_z;
      if (dy == nullptr) continue;
      for (std::size_t j = 0; j < k; ++j) {
        // (The quotient: see `run_blocks`.)
        const double p = j < kept ? e[j] / z : std::exp(double(yr[j] - m) - log_z);
        dy[r * k + j] = static_cast<T>((p - double(tr[j])) * inv);
      }
    }
    return total;
  }
};

}  // namespace pnn::loss

namespace pnn {
/// What a loss provides: a batch-mean value, and the value with `∂L/∂y`.
template <class L, class T = float>
concept loss_function = requires(const L& l, const T* y, const T* t, T* dy, std::size_t n) {
  { l.value(y, t, n, n) } -> std::convertible_to<T>;
  { l.gradient(y, t, n, n, dy) } -> std::convertible_to<T>;
};
static_assert(loss_function<loss::mse> && loss_function<loss::softmax_cross_entropy, double>);
}  // namespace pnn
