// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::gradients<Net>`: a learning rule's per-layer update estimate, with alignment.
///
/// A rule's `estimate` fills one `layer_gradient` per layer: the dense weight update `ĝ_W`
/// (Out × In) and bias update `ĝ_b`. Where the estimate is a batch of outer products
/// (`ĝ_W = s · Σ_n δ_n h_nᵀ`, as for backprop, FA, DFA, EP) it also carries the factors
/// `(h, δ, s)`, because a crossbar's stochastic pulse trains are driven by the factors, not by
/// their product (docs/architecture.md). `cosine(a, b)` gives the alignment between two estimates.
///
/// A layer whose tile has parameters of its own (`parameterised_tile`: an MZI mesh's phases
/// and attenuators) also carries `parameter`, an estimate in that space; a rule that estimates
/// there (the perturbative rules) sets `parameter_space`, and the tile's `program` then steps
/// its own parameters instead of realising a dense `ΔW`. Optimisers treat `parameter` like the
/// weights (elementwise state), so Adam runs in phase space on a mesh.
///
/// Inside a rule's `step`, an update that is about to be programmed onto a substrate that
/// applies outer products itself (`physics::digital`: one rank-n GEMM into `W`) through an
/// optimiser that only rescales it (`optim::sgd`) may be *deferred*: only the factors are kept
/// and the dense `ĝ_W` is never formed, which saves the passes over the weight-sized update
/// (form, scale, check, subtract) that otherwise cost as much as the product itself. An
/// estimate a rule returns from `estimate` is never deferred; `estimate_factors` defers the
/// layers its caller asks for, to move factors between processes (pnn/train/data_parallel.hpp).
/// Where the rule's layer inputs outlive the programming (backprop: the checked batch and the
/// forward trace) and the tile reads them through `factor_input()`, a deferred update *borrows*
/// `h` instead of copying it — for the 784-256 MLP a copy of the whole batch, a tenth of a
/// two-thread step — and the borrow ends with the step.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/simd/blas.hpp>

namespace pnn {

/// One layer's update estimate, shaped like the layer's tile (a convolution's kernel matrix).
template <class T>
struct layer_gradient {
  xt::xtensor<T, 2> weight{};  ///< ĝ_W, Out × In (row-major, like the tile's W)
  xt::xtensor<T, 1> bias{};    ///< ĝ_b, Out
  /// Factored form, valid when `factored`: `weight == factor_scale · deltaᵀ · input`.
  xt::xtensor<T, 2> input{};  ///< h_{l−1}, n × In
  xt::xtensor<T, 2> delta{};  ///< δ_l, n × Out
  T factor_scale = T(0);
  bool factored = false;
  /// Set by a rule's `step` before it estimates: form only the factors, not `weight` (see the
  /// file comment). Honoured by `detail::outer_product_update`.
  bool defer = false;
  /// Set with `defer` by a rule's `step` where the layer's input outlives the programming and
  /// the tile reads `factor_input()`: a deferred update then points at `h` (`borrowed_input`)
  /// instead of copying it into `input`. Honoured by `detail::outer_product_update`.
  bool borrow_input = false;
  /// The deferred update's `h` (n × In, row-major) while borrowed; null otherwise, and after the
  /// step that borrowed it.
  const T* borrowed_input = nullptr;
  std::size_t borrowed_columns = 0;  ///< In, the columns of a borrowed `h`
  /// max |h| of a borrowed `h` where the lender already knows it (the checked batch, whose
  /// finiteness check found it), so the bound on the update need not read `h` again;
  /// negative when unknown.
  double borrowed_abs_max = -1;
  /// The estimate in the tile's own parameter space (`parameter_count()` values, the order of
  /// `get_parameters`); empty for tiles whose parameters are W and b.
  xt::xtensor<T, 1> parameter{};
  /// True when the update is `parameter` (then `weight`/`bias` are zero and unused).
  bool parameter_space = false;

  /// True when `weight` was not formed and the update is `factor_scale · deltaᵀ · input`.
  [[nodiscard]] bool deferred() const noexcept { return defer && factored; }
  /// The factored form's `h`: borrowed, or `input`'s.
  [[nodiscard]] const T* factor_input() const noexcept { return borrowed_input != nullptr ? borrowed_input : input.data(); }
  /// Values in `factor_input()`: n × In (n = `delta`'s rows).
  [[nodiscard]] std::size_t factor_input_size() const noexcept {
    return borrowed_input != nullptr ? delta.shape()[0] * borrowed_columns : input.size();
  }

  T* weight_data() noexcept { return weight.data(); }
  const T* weight_data() const noexcept { return weight.data(); }
  T* bias_data() noexcept { return bias.data(); }
  const T* bias_data() const noexcept { return bias.data(); }

  /// Multiplies the update by `s` (the factored form follows; a deferred `weight` is not formed
  /// and so not touched).
  void scale(T s) {
    if (!deferred()) simd::scale<T>(weight.size(), s, weight.data());
    simd::scale<T>(bias.size(), s, bias.data());
    simd::scale<T>(parameter.size(), s, parameter.data());
    factor_scale *= s;
  }
};

/// Per-layer update estimates of a network `Net`, with vector-space arithmetic.
template <class Net>
class gradients {
 public:
  using value_type = typename Net::value_type;
  static constexpr std::size_t num_layers = Net::num_layers;

  gradients() = default;
  /// Zero estimates shaped like `net`'s parameters.
  explicit gradients(const Net& net) { reshape(net); }

  /// Shapes every layer like `net` without clearing values that are about to be overwritten
  /// (the hot path of every rule).
  void ensure_shape(const Net& net) {
    net.for_each_layer([&](const auto& l, std::size_t i) {
      auto& g = layers[i];
      const std::size_t rows = l.tile.out_size(), cols = l.tile.in_size();
      if (g.weight.shape()[0] != rows || g.weight.shape()[1] != cols) g.weight.resize({rows, cols});
      if (g.bias.size() != rows) g.bias.resize({rows});
      shape_parameters(l, g);
      g.factored = false;
      g.borrowed_input = nullptr;
      g.borrowed_abs_max = -1;
      g.parameter_space = false;
    });
  }

  /// True when some layer's dense update was deferred (only its factors are held).
  [[nodiscard]] bool any_deferred() const noexcept {
    for (const auto& g : layers)
      if (g.deferred()) return true;
    return false;
  }

  /// Shapes every layer like `net`'s tiles (weights Out × In, bias Out) and zeroes it.
  void reshape(const Net& net) {
    net.for_each_layer([&](const auto& l, std::size_t i) {
      auto& g = layers[i];
      const std::size_t rows = l.tile.out_size(), cols = l.tile.in_size();
      if (g.weight.shape()[0] != rows || g.weight.shape()[1] != cols) g.weight.resize({rows, cols});
      if (g.bias.size() != rows) g.bias.resize({rows});
      shape_parameters(l, g);
      g.weight.fill(value_type(0));
      g.bias.fill(value_type(0));
      g.parameter.fill(value_type(0));
      g.factored = false;
      g.defer = false;
      g.borrow_input = false;
      g.borrowed_input = nullptr;
      g.borrowed_abs_max = -1;
      g.parameter_space = false;
    });
  }

  /// Checkpoint contents (pnn/core/state_format.hpp): each layer's weight, bias and parameter
  /// arrays (what optimisers keep as moments); factors are per-step scratch.
  template <class V>
  void visit_state(V& v) {
    for (std::size_t i = 0; i < num_layers; ++i) {
      auto g = v.scope("layer", i);
      v("weight", layers[i].weight);
      v("bias", layers[i].bias);
      v("parameter", layers[i].parameter);
    }
  }

  layer_gradient<value_type>& operator[](std::size_t i) noexcept { return layers[i]; }
  const layer_gradient<value_type>& operator[](std::size_t i) const noexcept { return layers[i]; }

  gradients& operator+=(const gradients& o) { return combine(o, value_type(1)); }
  gradients& operator-=(const gradients& o) { return combine(o, value_type(-1)); }
  gradients& operator*=(value_type s) {
    for (auto& g : layers) g.scale(s);
    return *this;
  }
  friend gradients operator+(gradients a, const gradients& b) { return a += b; }
  friend gradients operator-(gradients a, const gradients& b) { return a -= b; }
  friend gradients operator*(gradients a, value_type s) { return a *= s; }
  friend gradients operator*(value_type s, gradients a) { return a *= s; }

  /// Inner product over all layers' weights and biases (accumulated in double).
  [[nodiscard]] double dot(const gradients& o) const {
    double s = 0;
    for (std::size_t i = 0; i < num_layers; ++i) s += layer_dot(o, i);
    return s;
  }
  /// Inner product of layer `i`'s weights and bias with `o`'s.
  [[nodiscard]] double layer_dot(const gradients& o, std::size_t i) const {
    check_same_shape(layers[i], o.layers[i]);
    double s = 0;
    const auto& a = layers[i];
    const auto& b = o.layers[i];
    for (std::size_t k = 0; k < a.weight.size(); ++k) s += double(a.weight.data()[k]) * double(b.weight.data()[k]);
    for (std::size_t k = 0; k < a.bias.size(); ++k) s += double(a.bias.data()[k]) * double(b.bias.data()[k]);
    for (std::size_t k = 0; k < a.parameter.size(); ++k)
      s += double(a.parameter.data()[k]) * double(b.parameter.data()[k]);
    return s;
  }
  /// Euclidean norm over all layers.
  [[nodiscard]] double norm() const { return std::sqrt(dot(*this)); }

  std::array<layer_gradient<value_type>, num_layers> layers{};

 private:
  template <class Layer>
  static void shape_parameters(const Layer& l, layer_gradient<value_type>& g) {
    // Zeroed here, also on the hot path: weight-space rules never write it, and a stale or
    // uninitialised parameter part would reach the optimiser and the finiteness check.
    if constexpr (parameterised_tile<typename Layer::tile_type>) {
      const std::size_t p = l.tile.parameter_count();
      if (g.parameter.size() != p) g.parameter.resize({p});
      g.parameter.fill(value_type(0));
    }
  }
  // Takes the two layers, not an index: GCC 12 folds this function across networks of different
  // depth and then mis-reports an index into the other network's array (-Warray-bounds).
  static void check_same_shape(const layer_gradient<value_type>& a, const layer_gradient<value_type>& b) {
    PNN_EXPECTS(a.weight.size() == b.weight.size() && a.bias.size() == b.bias.size() &&
                    a.parameter.size() == b.parameter.size(),
                "pnn::gradients: estimates of different shapes");
    PNN_EXPECTS(a.parameter_space == b.parameter_space,
                "pnn::gradients: one estimate is in the tile's parameter space, the other in weight space");
    PNN_EXPECTS(!a.deferred() && !b.deferred(),
                "pnn::gradients: arithmetic on a deferred update (only a rule's step defers, to program it)");
  }
  gradients& combine(const gradients& o, value_type s) {
    for (std::size_t i = 0; i < num_layers; ++i) {
      check_same_shape(layers[i], o.layers[i]);
      simd::axpy<value_type>(layers[i].weight.size(), s, o.layers[i].weight.data(), layers[i].weight.data());
      simd::axpy<value_type>(layers[i].bias.size(), s, o.layers[i].bias.data(), layers[i].bias.data());
      simd::axpy<value_type>(layers[i].parameter.size(), s, o.layers[i].parameter.data(), layers[i].parameter.data());
      layers[i].factored = false;  // a sum of two factored updates is no longer one product
    }
    return *this;
  }
};

/// Cosine of the angle between two estimates over all layers (1: same direction). Zero when
/// either is zero.
template <class Net>
[[nodiscard]] double cosine(const gradients<Net>& a, const gradients<Net>& b) {
  const double na = a.norm(), nb = b.norm();
  return (na == 0 || nb == 0) ? 0.0 : a.dot(b) / (na * nb);
}

/// Cosine between layer `i` of two estimates.
template <class Net>
[[nodiscard]] double cosine(const gradients<Net>& a, const gradients<Net>& b, std::size_t i) {
  const double na = std::sqrt(a.layer_dot(a, i)), nb = std::sqrt(b.layer_dot(b, i));
  return (na == 0 || nb == 0) ? 0.0 : a.layer_dot(b, i) / (na * nb);
}

/// Angle in degrees between layer `i` of two estimates (the alignment angle of FA/DFA papers).
template <class Net>
[[nodiscard]] double angle_degrees(const gradients<Net>& a, const gradients<Net>& b, std::size_t i) {
  double c = cosine(a, b, i);
  c = c > 1 ? 1 : (c < -1 ? -1 : c);
  return std::acos(c) * 180.0 / std::numbers::pi;
}

}  // namespace pnn
