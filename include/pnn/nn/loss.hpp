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
  template <class T>
  static T run(const T* y, const T* t, std::size_t n, std::size_t k, T* dy) noexcept {
    double total = 0;
    const double inv = 1.0 / double(n);
    for (std::size_t r = 0; r < n; ++r) {
      const T* yr = y + r * k;
      const T* tr = t + r * k;
      T m = yr[0];
      for (std::size_t j = 1; j < k; ++j) m = yr[j] > m ? yr[j] : m;
      // Each exponential once where a row fits the buffer (any classifier's): e_j = exp(y_j − m)
      // is kept in double and softmax_j = e_j / z, and −Σ t_j log softmax_j is
      // −(Σ t_j (y_j − m) − Σ t_j · log z). Every y_j is read before dy is written, so dy may be y.
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
        // A quotient, not e_j · (1/z): a product followed by − t_j could be fused into one FMA
        // in some inlined copies and not in others, and two builds of one network (fixed and
        // run-time extents) must train bit for bit alike.
        const double p = j < kept ? e[j] / z : std::exp(double(yr[j] - m) - log_z);
        dy[r * k + j] = static_cast<T>((p - double(tr[j])) * inv);
      }
    }
    return static_cast<T>(total * inv);
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
