// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::digital`: the ideal reference substrate, `y = W x` computed exactly.
///
/// The substrate every other one is compared against and the default digital twin (docs/physics.md,
/// "Digital"). Its tile owns the weights `W` (Out × In, row-major) and the bias `b`; a read is one GEMM
/// through our kernels and programming subtracts the update exactly.
#pragma once

#include <cstddef>
#include <span>

#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/gemm.hpp>

namespace pnn::physics {

/// Ideal digital substrate with value type `T` (`float` for speed, `double` for checks).
template <class T>
struct basic_digital {
  using value_type = T;
  static constexpr const char* name = "digital";

  /// The digital substrate has no physical parameters.
  struct params {};

  /// One layer's worth of digital weights: `W` (Out × In) and `b` (Out).
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = T;
    static constexpr std::size_t in_extent = In;
    static constexpr std::size_t out_extent = Out;
    /// `program` applies a factored update `s·δᵀh` itself, as one GEMM into `W`.
    static constexpr bool programs_outer_products = true;
    /// `program` reads a deferred update's `h` through `factor_input()` (it may be lent).
    static constexpr bool reads_borrowed_factors = true;
    /// Reads are exactly `x Wᵀ` and `dy W` with `W = weight_data()` (rules may fuse them).
    static constexpr bool reads_exactly = true;
    /// `dy W` is computed digitally: a noise policy's read periphery applies to forward reads only.
    static constexpr bool computes_transposed_exactly = true;

    /// Sets the shape (dynamic extents) and zeroes the parameters.
    void resize(std::size_t in, std::size_t out) {
      weight_.resize(out, in);
      bias_.resize(1, out);
    }
    [[nodiscard]] constexpr std::size_t in_size() const noexcept { return weight_.cols(); }
    [[nodiscard]] constexpr std::size_t out_size() const noexcept { return weight_.rows(); }

    /// `y(n × Out) = x(n × In) Wᵀ`, exact. The bias is added by the layer.
    void read(const T* x, std::size_t n, T* y, rng&) const {
      simd::gemm_nt<T>(n, out_size(), in_size(), T(1), x, in_size(), weight_.data(), in_size(), T(0), y,
                       out_size());
    }
    /// The forward read with the layer's bias and activation as its epilogue: `a = x Wᵀ + b`,
    /// `h = f(a)` (h may be a: only f kept), bitwise what `read` followed by the layer's pass
    /// computes (`simd::gemm_nt_bias_map`). A null `bias` means none.
    template <class F>
    void read_bias_map(const T* x, std::size_t n, const T* bias, const F& f, T* a, T* h) const {
      simd::gemm_nt_bias_map<T>(n, out_size(), in_size(), x, in_size(), weight_.data(), in_size(), bias, f, a,
                                out_size(), h, out_size());
    }
    /// Transposed read `dx(n × In) = dy(n × Out) W`, exact.
    void read_transposed(const T* dy, std::size_t n, T* dx, rng&) const {
      simd::gemm_nn<T>(n, in_size(), out_size(), T(1), dy, out_size(), weight_.data(), in_size(), T(0), dx,
                       in_size());
    }

    /// Programs an update: `W ← W − ΔW`, `b ← b − Δb` exactly. `U` is a layer update with
    /// `weight_data()`/`bias_data()` of this tile's shape; a deferred one (`update.deferred()`,
    /// `ΔW = s·δᵀh` held as its factors) is applied as one GEMM `W ← W − s·δᵀh`.
    template <class U>
    void program(const U& update, rng&) {
      if constexpr (requires { update.deferred(); }) {
        if (update.deferred()) {
          const std::size_t n = update.delta.shape()[0];
          simd::gemm_tn<T>(out_size(), in_size(), n, -update.factor_scale, update.delta.data(), out_size(),
                           update.factor_input(), in_size(), T(1), weight_.data(), in_size());
          simd::axpy<T>(out_size(), T(-1), update.bias_data(), bias_.data());
          return;
        }
      }
      simd::axpy<T>(weight_.size(), T(-1), update.weight_data(), weight_.data());
      simd::axpy<T>(out_size(), T(-1), update.bias_data(), bias_.data());
    }
    /// Writes target weights and bias directly (in-silico deployment onto an ideal substrate).
    void set_weights(const T* w, const T* b, rng&) {
      for (std::size_t i = 0; i < weight_.size(); ++i) weight_.data()[i] = w[i];
      for (std::size_t j = 0; j < out_size(); ++j) bias_.data()[j] = b[j];
    }
    /// The weights the tile computes with (for the digital substrate: exactly `W`).
    void effective_weights(T* w) const {
      for (std::size_t i = 0; i < weight_.size(); ++i) w[i] = weight_.data()[i];
    }

    [[nodiscard]] constexpr T* weight_data() noexcept { return weight_.data(); }
    [[nodiscard]] constexpr const T* weight_data() const noexcept { return weight_.data(); }
    [[nodiscard]] constexpr T* bias_data() noexcept { return bias_.data(); }
    [[nodiscard]] constexpr const T* bias_data() const noexcept { return bias_.data(); }

      /// Checkpoint contents (pnn/core/state_format.hpp): the weights and the bias.
    template <class V>
    void visit_state(V& v) {
      v("weight", std::span<T>(weight_.data(), weight_.size()));
      v("bias", std::span<T>(bias_.data(), bias_.size()));
    }

 private:
    matrix_storage<T, Out, In> weight_{};
    matrix_storage<T, 1, Out> bias_{};
  };
};

/// The ideal digital substrate in single precision (the usual twin and reference).
using digital = basic_digital<float>;

}  // namespace pnn::physics
