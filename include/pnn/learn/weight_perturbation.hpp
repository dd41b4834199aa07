// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::weight_perturbation`: finite differences of the loss along random directions in
/// every tile's own parameters (Jabri & Flower 1992; docs/rules.md, "Weight perturbation").
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

namespace pnn::learn {

/// \brief Weight perturbation: `ĝ = [(L(θ+σu) − L(θ−σu))/(2σ)] u` (central) or
/// `[(L(θ+σu) − L(θ))/σ] u` (forward), `u ~ N(0, I)` over all parameters, averaged over
/// `num_perturbations` directions (Jabri & Flower 1992; docs/rules.md, "Weight perturbation").
///
/// Unbiased up to the finite-difference bias, O(σ²) central and O(σ) forward; its variance grows
/// with the parameter count, which is what makes it slow on large networks. The parameters are
/// the tiles' own (W and b, or a mesh's phases; `pnn::set_tile_parameters`), restored from a
/// saved copy.
template <class Optimizer = optim::sgd>
class weight_perturbation : public rule_skeleton<weight_perturbation<Optimizer>> {
  friend class rule_skeleton<weight_perturbation>;

 public:
  static constexpr const char* name = "weight_perturbation";
  using optimizer_type = Optimizer;
  /// Per-network state: the traces, flat parameter vectors and buffers of the passes, the
  /// estimate and the optimiser's state.
  template <class Net>
  using state = perturb_detail::state<Net, Optimizer>;

  /// Rule parameters (defaults in brackets).
  struct params {
    Optimizer optimizer{};
    double sigma = 1e-3;                       ///< perturbation size σ (parameter units) [1e-3], > 0
    std::size_t num_perturbations = 1;         ///< directions averaged per step [1], ≥ 1
    finite_difference difference = finite_difference::central;  ///< [central]
  };

  weight_perturbation() = default;
  explicit weight_perturbation(params p) : params_(std::move(p)) {}
  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  // `estimate`/`step` (learn::rule_skeleton): perturbation directions and forward noise from
  // `g`; the network's parameters are unchanged by `estimate` (bit for bit).

 private:
  template <class Net>
  void validate(const Net&) const {
    check_params();
  }

  void check_params() const {
    PNN_EXPECTS(params_.sigma > 0 && std::isfinite(params_.sigma), "learn::weight_perturbation: sigma must be > 0");
    PNN_EXPECTS(params_.num_perturbations >= 1, "learn::weight_perturbation: num_perturbations must be at least 1");
  }

  template <class Net, class Loss, class S>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  S& s, rule_pass) {
    static_assert(perturb_detail::accessible_layers<Net>(),
                  "learn::weight_perturbation needs tiles whose parameters can be written (weight_data() or "
                  "get_parameters/set_parameters)");
    rng g0 = g.split(1);
    const step_result r = perturb_detail::clean_pass(net, b, loss, s.tr, g0, name);
    s.grad.reshape(net);
    using V = perturb_detail::flat_t<Net>;
    const std::size_t P = params_.num_perturbations;
    const V sigma = static_cast<V>(params_.sigma);
    {
      perturb_detail::parameter_guard<Net> guard(net, s.saved);
      s.dir.resize(s.saved.size());
      for (std::size_t p = 0; p < P; ++p) {
        rng gu = g.split(2).split(p);
        fill_normal<V>(gu, s.dir.data(), s.dir.size());
        perturb_detail::write(net, s.saved, s.dir.data(), sigma, s.work);
        rng gplus = g.split(3).split(2 * p);
        const double lp = perturb_detail::batch_loss(net, b.x, b.target, b.n, loss, s.tp, gplus);
        double coef = 0;
        if (params_.difference == finite_difference::central) {
          perturb_detail::write(net, s.saved, s.dir.data(), -sigma, s.work);
          rng gminus = g.split(3).split(2 * p + 1);
          const double lm = perturb_detail::batch_loss(net, b.x, b.target, b.n, loss, s.tp, gminus);
          coef = (lp - lm) / (2 * params_.sigma);
        } else {
          coef = (lp - r.loss) / params_.sigma;
        }
        perturb_detail::accumulate(net, s.grad, s.dir.data(), static_cast<V>(coef / double(P)));
      }
    }
    return r;
  }

  params params_{};
};

}  // namespace pnn::learn
