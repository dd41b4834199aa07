// SPDX-License-Identifier: MIT
/// \file
/// \brief Gradient-alignment diagnostics: per-layer angle between a rule's estimate and
/// backprop's, and an epoch callback that logs it during training.
///
/// The angle `∠(ĝ_rule, ĝ_bp)` per layer (weights and bias together) is the diagnostic of the
/// feedback-alignment literature (Lillicrap et al. 2016, Fig. 2; Nøkland 2016): 90° is no
/// alignment, 0° is backprop's direction. Both estimates are taken on the same network with the
/// same random stream, so on a noisy substrate they see the same forward noise; the rule's
/// estimate includes whatever noise its own reads add. Where the rule estimates in a tile's own
/// parameter space (a perturbative rule on an MZI mesh), backprop's gradient is mapped into that
/// space by the tile (`parameter_gradient`) and the angle is taken there; a tile that cannot map
/// it gives NaN for that layer.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/rng.hpp>
#include <pnn/learn/backprop.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/train/train.hpp>

namespace pnn {

/// Per-layer angles (degrees) between `rule`'s estimate and backprop's on the batch
/// (`x`: n × inputs, `target`: n × outputs). Both estimates draw from copies of `g`.
/// \pre `net`'s layers above the first can be read transposed (the backprop reference needs
/// `Wᵀ δ`); shapes as for `estimate` (else `pnn::error`).
template <class Net, class Rule, class X, class Y, class Loss>
[[nodiscard]] std::vector<double> alignment_angles(Net& net, Rule& rule, const xt::xexpression<X>& x,
                                                   const xt::xexpression<Y>& target, const Loss& loss, rng& g) {
  rng gr = g, gb = g;
  const gradients<Net> est = rule.estimate(net, x, target, loss, gr);
  learn::backprop<> reference;
  const gradients<Net> bp = reference.estimate(net, x, target, loss, gb);
  std::vector<double> angles(Net::num_layers);
  net.for_each_layer([&](const auto& l, std::size_t i) {
    if (est[i].parameter_space == bp[i].parameter_space) {
      angles[i] = angle_degrees(est, bp, i);
      return;
    }
    angles[i] = std::nan("");
    // An estimate in the tile's own parameter space (a mesh's phases) is compared with
    // backprop's gradient mapped there, when the tile can map it.
    if constexpr (requires(double* o) {
                    l.tile.parameter_gradient(bp[i].input.data(), bp[i].delta.data(), std::size_t{}, 1.0,
                                              bp[i].bias.data(), o, g);
                  }) {
      if (!est[i].parameter_space || !bp[i].factored) return;
      std::vector<double> mapped(l.tile.parameter_count());
      rng gm = g.split(0xa1167 + i);
      l.tile.parameter_gradient(bp[i].input.data(), bp[i].delta.data(), bp[i].input.shape()[0],
                                double(bp[i].factor_scale), bp[i].bias.data(), mapped.data(), gm);
      double dot = 0, na = 0, nb = 0;
      for (std::size_t k = 0; k < mapped.size(); ++k) {
        const double a = double(est[i].parameter.data()[k]);
        dot += a * mapped[k];
        na += a * a;
        nb += mapped[k] * mapped[k];
      }
      if (na > 0 && nb > 0) angles[i] = std::acos(std::clamp(dot / std::sqrt(na * nb), -1.0, 1.0)) * 180.0 / std::numbers::pi;
    }
  });
  return angles;
}

/// Mean of the angles of the hidden layers (all but the last); NaN for a single-layer network.
[[nodiscard]] inline double mean_hidden_angle(const std::vector<double>& angles) {
  if (angles.size() < 2) return std::nan("");
  double s = 0;
  for (std::size_t i = 0; i + 1 < angles.size(); ++i) s += angles[i];
  return s / double(angles.size() - 1);
}

/// An epoch callback that measures the alignment of `rule` with backprop on a fixed probe batch
/// after every epoch and stores `alignment_deg_layer<i>` (one per layer) and
/// `alignment_deg_mean_hidden` in `epoch_metrics::extra` (so `csv_log`/`json_log` record them).
/// `net` and `rule` are held by reference and must outlive the callback; the probe is copied
/// (take it from the training set, never the test set). Noise of epoch `e` is drawn from
/// stream `e` of `seed`. \pre the probe matches the network (else `pnn::error`, thrown here).
template <class Net, class Rule, class X, class Y, class Loss>
[[nodiscard]] epoch_callback alignment_monitor(Net& net, Rule& rule, const xt::xexpression<X>& probe_x,
                                               const xt::xexpression<Y>& probe_target, Loss loss,
                                               std::uint64_t seed_value = 0xa11) {
  using T = typename Net::value_type;
  struct probe {
    xt::xtensor<T, 2> x, t;
  };
  auto p = std::make_shared<probe>();
  p->x = detail::as_batch<T>(probe_x, net.input_size(), "pnn::alignment_monitor: probe x");
  p->t = detail::as_batch<T>(probe_target, net.output_size(), "pnn::alignment_monitor: probe target");
  if (p->x.shape()[0] != p->t.shape()[0] || p->x.shape()[0] == 0)
    throw_error("pnn::alignment_monitor: the probe needs as many targets as inputs, and at least one sample");
  return [&net, &rule, p, loss, seed_value](epoch_metrics& m) {
    rng g = rng(seed_value, 0xa119).split(m.epoch);
    const auto angles = alignment_angles(net, rule, p->x, p->t, loss, g);
    for (std::size_t i = 0; i < angles.size(); ++i) m.extra["alignment_deg_layer" + std::to_string(i)] = angles[i];
    if (angles.size() > 1) m.extra["alignment_deg_mean_hidden"] = mean_hidden_angle(angles);
    return true;
  };
}

}  // namespace pnn
