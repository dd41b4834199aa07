// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::node_perturbation`: loss differences under perturbations injected at each
/// layer's pre-activations (Williams 1992; Fiete & Seung 2006; docs/rules.md).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/perturbation_common.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/random.hpp>
#include <algorithm>

namespace pnn::learn {

/// Directions along which `node_perturbation` perturbs a layer's pre-activations.
enum class node_directions {
  gaussian,   ///< `u ~ N(0, I)` per sample, `num_perturbations` of them averaged
  coordinate  ///< one unit at a time (`u = e_j` for every sample): a finite-difference ∂L/∂z
};

/// \brief Node perturbation: perturb a layer's pre-activations `z_l` by `σu`, measure each
/// sample's loss change with forward passes only, `ĝ_z = (ΔL/σ) u` (batch-mean scaled),
/// `ĝ_W = ĝ_zᵀ x_{l−1}`, `ĝ_b = Σ_n ĝ_z` (Williams 1992; Fiete & Seung 2006; docs/rules.md).
///
/// Each layer is perturbed in passes of its own; the layers below keep the activities of the
/// step's clean pass and the layers above run forward through their substrate and noise. The
/// perturbation is a signal injected at the node (before the activation), so the tile's
/// parameters are never touched. With `directions = coordinate` and small σ, `ĝ_z` is a
/// finite-difference `∂L/∂z`, and the update equals backprop's up to O(σ²).
///
/// On a `conv2d` the nodes are every position's pre-activation before pooling (n ×
/// `pre_activation_size`), the perturbed values go through the activation and pooling as a
/// read would, and `ĝ_K` sums `ĝ_z`'s outer products with the patches (`layer_update`).
template <class Optimizer = optim::sgd>
class node_perturbation : public rule_skeleton<node_perturbation<Optimizer>> {
  friend class rule_skeleton<node_perturbation>;

 public:
  static constexpr const char* name = "node_perturbation";
  /// Runs on `pnn::conv2d` layers (their pre-activations are perturbed at every position).
  static constexpr bool runs_on_convolutions = true;
  using optimizer_type = Optimizer;
  /// Per-network state: the traces, flat parameter vectors and buffers of the passes, the
  /// estimate and the optimiser's state.
  template <class Net>
  using state = perturb_detail::state<Net, Optimizer>;

  /// Rule parameters (defaults in brackets).
  struct params {
    Optimizer optimizer{};
    double sigma = 1e-3;                 ///< perturbation size σ (pre-activation units) [1e-3], > 0
    std::size_t num_perturbations = 1;   ///< Gaussian directions averaged per layer [1], ≥ 1
    finite_difference difference = finite_difference::central;  ///< [central]
    node_directions directions = node_directions::gaussian;     ///< [gaussian]
  };

  node_perturbation() = default;
  explicit node_perturbation(params p) : params_(std::move(p)) {}
  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

 private:
  template <class Net>
  void validate(const Net&) const {
    check_params();
  }

  void check_params() const {
    PNN_EXPECTS(params_.sigma > 0 && std::isfinite(params_.sigma), "learn::node_perturbation: sigma must be > 0");
    PNN_EXPECTS(params_.num_perturbations >= 1, "learn::node_perturbation: num_perturbations must be at least 1");
  }

  // Per-sample losses of the network with layer `first`'s pre-activations replaced by
  // `a_first + s u` (into `out`, n values).
  template <class Net, class Loss, class S>
  void perturbed_losses(const Net& net, std::size_t first, const typename Net::value_type* target, std::size_t n,
                        const Loss& loss, typename Net::value_type sc, S& s, rng& g, typename Net::value_type* out) {
    using T = typename Net::value_type;
    const std::size_t k = net.output_size();
    const T* cur = nullptr;
    net.for_each_layer([&](const auto& l, std::size_t i) {
      using L = std::remove_cvref_t<decltype(l)>;
      if (i < first) return;
      const std::size_t m = n * pnn::detail::pre_activation_size(l);
      T* a = (i % 2 == 0) ? s.a.data() : s.a2.data();
      T* h = (i % 2 == 0) ? s.h.data() : s.h2.data();
      if (i == first) {
        const T* a0 = s.tr.a[i].data();
        const T* u = s.u.data();
        for (std::size_t q = 0; q < m; ++q) a[q] = a0[q] + sc * u[q];
        if constexpr (requires { l.activate(a, n, h); }) l.activate(a, n, h);  // a convolution: f, then pooling
        else simd::map<T>(m, a, h, l.activation);
      } else {
        T* scratch = L::has_input_noise ? s.scratch.data() : nullptr;
        rng gl = g.split(i);
        l.forward(cur, n, a, h, gl, scratch);
      }
      cur = h;
    });
    for (std::size_t r = 0; r < n; ++r) out[r] = loss.value(cur + r * k, target + r * k, std::size_t{1}, k);
  }

  template <class Net, class Loss, class S>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  S& s, rule_pass) {
    using T = typename Net::value_type;
    const std::size_t n = b.n, k = net.output_size();
    rng g0 = g.split(1);
    const step_result r = perturb_detail::clean_pass(net, b, loss, s.tr, g0, name);
    s.grad.ensure_shape(net);
    std::size_t widest = k;
    net.for_each_layer([&](const auto& l, std::size_t) {
      widest = std::max({widest, l.in_size(), l.out_size(), pnn::detail::pre_activation_size(l)});
    });
    for (auto* v : {&s.a, &s.h, &s.a2, &s.h2, &s.scratch, &s.u, &s.delta})
      if (v->size() < n * widest) v->resize({n * widest});
    for (auto* v : {&s.base, &s.lp, &s.lm})
      if (v->size() < n) v->resize({n});
    const T* y0 = s.tr.output().data();
    for (std::size_t q = 0; q < n; ++q) s.base.data()[q] = loss.value(y0 + q * k, b.target + q * k, std::size_t{1}, k);
    const bool central = params_.difference == finite_difference::central;
    const T sigma = static_cast<T>(params_.sigma);
    net.for_each_layer([&](const auto& l, std::size_t i) {
      const std::size_t out = pnn::detail::pre_activation_size(l);  // the perturbed nodes per sample
      std::fill(s.delta.data(), s.delta.data() + n * out, T(0));
      const bool coord = params_.directions == node_directions::coordinate;
      const std::size_t P = coord ? out : params_.num_perturbations;
      const double avg = coord ? 1.0 : 1.0 / double(P);
      for (std::size_t p = 0; p < P; ++p) {
        if (coord) {
          std::fill(s.u.data(), s.u.data() + n * out, T(0));
          for (std::size_t q = 0; q < n; ++q) s.u.data()[q * out + p] = T(1);
        } else {
          rng gu = g.split(2).split(i).split(p);
          fill_normal<T>(gu, s.u.data(), n * out);
        }
        rng gplus = g.split(3).split(i).split(2 * p);
        perturbed_losses(net, i, b.target, n, loss, sigma, s, gplus, s.lp.data());
        if (central) {
          rng gminus = g.split(3).split(i).split(2 * p + 1);
          perturbed_losses(net, i, b.target, n, loss, -sigma, s, gminus, s.lm.data());
        }
        for (std::size_t q = 0; q < n; ++q) {
          const double dl = central ? (double(s.lp.data()[q]) - double(s.lm.data()[q])) / (2 * params_.sigma)
                                    : (double(s.lp.data()[q]) - double(s.base.data()[q])) / params_.sigma;
          // Batch-mean loss: ∂L/∂z_n = (1/n) ∂L_n/∂z_n.
          const T c = static_cast<T>(dl * avg / double(n));
          if (coord) s.delta.data()[q * out + p] += c;
          else simd::axpy<T>(out, c, s.u.data() + q * out, s.delta.data() + q * out);
        }
      }
      pnn::detail::layer_update(l, s.tr.input_of(i), s.delta.data(), n, T(1), s.grad[i]);
    });
    return r;
  }

  params params_{};
};

}  // namespace pnn::learn
