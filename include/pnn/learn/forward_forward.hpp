// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::forward_forward`: layer-local contrastive learning on positive and negative
/// (wrong-label) inputs — Hinton's forward-forward (2022) and the cosine goodness of Physical
/// Local Learning (Momeni et al. 2023).
///
/// Each layer `l` is trained on its own goodness loss
/// `ℓ = softplus(α(θ − g(h⁺))) + softplus(α(g(h⁻) − θ))`, where `h⁺` is its output for the
/// input with the correct label embedded and `h⁻` for a wrong label; the next layer sees the
/// length-normalised output, and no gradient crosses a layer boundary. A sample is classified by
/// the label whose embedding gives the highest goodness summed over the trained layers except
/// the first, as Hinton does (the first layer sees the label pixels directly and mostly scores
/// them; with one trained layer it is scored; `score_first_layer` restores the full sum).
///
/// A layer whose parameters sit inside the physics, with no W (a scattering medium's phase mask,
/// a diffractive stack), has no local outer-product gradient: by default it is trained by
/// measuring its goodness loss at antithetic perturbations of its parameters (SPSA on the
/// layer's own loss, Spall 1992), with nothing but forward reads of that layer — the model-free
/// local learning of Momeni et al. 2023; `physics_gradient = model` takes the layer's
/// adjoint instead.
/// docs/rules.md, "Forward-forward", theory check 9.
#pragma once

#include <algorithm>
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
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/simd/blas.hpp>

namespace pnn::learn {

/// The goodness of a layer's output `h` (width d).
enum class ff_goodness {
  energy,  ///< `g = (1/d) Σ_j h_j²`: Hinton's sum of squares, divided by the width so one θ fits all layers
  cosine   ///< `g = cos(h, 𝟙) = Σ_j h_j / (√d ‖h‖)`: insensitive to the layer's unknown gain (PhyLL-style)
};

/// How a trained layer without W (its parameters inside the physics) gets its local gradient.
enum class ff_physics_gradient {
  perturbation,  ///< measured: goodness loss at ±c·Δ_k of the layer's parameters, no model needed
  model          ///< the tile's adjoint (`parameter_gradient`: a model of the physics, e.g. a measured matrix)
};

/// \brief Forward-forward training with optimiser `Optimizer`.
///
/// Label embedding (Hinton's MNIST setup): the first `num_classes` input values are overwritten
/// by the one-hot label, so inputs must tolerate losing them (Fashion-MNIST's corner pixels are
/// background). The negative input of each sample carries a label drawn uniformly among the
/// wrong ones. Inputs to layer `l > 0` are `h_{l−1}` scaled to unit root-mean-square (the length
/// normalisation that hides the previous layer's goodness).
///
/// Physical Local Learning: list the layers that are fixed physical transforms in
/// `fixed_layers`; they run forward (through their substrate and noise) but are neither trained
/// nor scored, so each block is "fixed physical transform + trainable map", trained with
/// `goodness = cosine`.
///
/// Interface notes. `estimate`/`step` take a loss for uniformity but ignore it: the rule's loss
/// is its goodness loss (reported as `step_result::loss`, summed over trained layers). The
/// network's output argmax means nothing here, so `pnn::evaluate` does not measure a
/// forward-forward network: use `forward_forward::evaluate(net, dataset)`; `step_result::correct`
/// counts the batch's samples classified right by goodness (`predict`, costs `num_classes`
/// forward passes) or, with `step_accuracy = false`, those whose positive goodness exceeds their
/// negative's.
template <class Optimizer = optim::sgd>
class forward_forward : public rule_skeleton<forward_forward<Optimizer>> {
  friend class rule_skeleton<forward_forward>;

  template <class T>
  struct buffers {
    xt::xtensor<T, 1> in{}, a{}, h{}, scratch{};
  };

 public:
  static constexpr const char* name = "forward_forward";
  /// Runs on `pnn::conv2d` layers: a convolution's goodness is that of its whole (pooled)
  /// output, its error goes back through the pooling to every position, and its kernel's update
  /// sums the outer products with the patches.
  static constexpr bool runs_on_convolutions = true;

  /// Rule parameters (defaults in brackets).
  struct params {
    Optimizer optimizer{};
    ff_goodness goodness = ff_goodness::energy;  ///< [energy]
    double threshold = 0.5;     ///< θ [0.5]
    double sharpness = 4.0;     ///< α, the logistic's slope in g [4], > 0
    std::size_t num_classes = 0;  ///< labels embedded; 0: the network's output size [0]
    double label_scale = 1.0;     ///< value of the embedded one-hot label's hot pixel [1]
    bool step_accuracy = true;    ///< classify the batch in `step` (true) or count g⁺ > g⁻ [true]
    std::vector<std::size_t> fixed_layers{};  ///< untrained physical transforms (PhyLL) [none]
    /// Add the first trained layer's goodness to the prediction score [false: Hinton 2022 leaves
    /// it out whenever another trained layer exists].
    bool score_first_layer = false;
    /// Local gradient of trained layers without W [perturbation].
    ff_physics_gradient physics_gradient = ff_physics_gradient::perturbation;
    /// c: perturbation size of such a layer's parameters, in their units (rad for phases) [0.05], > 0.
    double perturbation = 0.05;
    /// K: antithetic direction pairs per estimate of such a layer [8], ≥ 1.
    std::size_t num_perturbations = 8;
  };

  forward_forward() = default;
  explicit forward_forward(params p) : params_(std::move(p)) {}
  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// Per-network state: the estimate, the optimiser's state and the layer-local buffers. The
  /// skeleton's `estimate`/`step` take one-hot labels as `target` (n × outputs); the wrong
  /// labels and forward noise come from `g`; `loss` is ignored.
  template <class Net>
  struct state {
    using T = typename Net::value_type;
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    buffers<T> buf{};
    std::vector<T> x2{}, dh{}, delta{}, gpos{}, gneg{}, pa{}, ph{};
    std::vector<double> saved{}, direction{}, probe{};
    std::vector<std::size_t> labels{}, predicted{};
    /// Checkpoint contents (pnn/core/state_format.hpp): the optimiser's state.
    template <class V>
    void visit_state(V& vis) {
      auto g = vis.scope("optimizer");
      opt.visit_state(vis);
    }
  };

  /// Goodness of every candidate label for each of `n` inputs `x` (n × inputs, label pixels
  /// are overwritten in a copy): `scores` gets n × classes totals over the scored layers (the
  /// trained ones, without the first unless it is the only one or `score_first_layer`).
  template <class Net>
  void scores(const Net& net, const typename Net::value_type* x, std::size_t n, typename Net::value_type* out,
              rng& g) const {
    using T = typename Net::value_type;
    const std::size_t k = classes(net);
    std::vector<T> xe(x, x + n * net.input_size());
    std::vector<T> gsum(n);
    buffers<T> buf;
    const std::size_t skipped = unscored_layer(Net::num_layers);
    for (std::size_t c = 0; c < k; ++c) {
      for (std::size_t r = 0; r < n; ++r) embed(xe.data() + r * net.input_size(), k, c);
      std::fill(gsum.begin(), gsum.end(), T(0));
      rng gc = g.split(c);
      layerwise(net, xe.data(), n, buf, gc, [&](const auto&, std::size_t i, const T*, const T*, const T* h, std::size_t d) {
        if (is_fixed(i) || i == skipped) return;
        for (std::size_t r = 0; r < n; ++r) gsum[r] += goodness(h + r * d, d);
      });
      for (std::size_t r = 0; r < n; ++r) out[r * k + c] = gsum[r];
    }
  }

  /// The label with the highest total goodness for each of `n` inputs (into `labels`).
  template <class Net>
  void predict(const Net& net, const typename Net::value_type* x, std::size_t n, std::size_t* labels, rng& g) const {
    using T = typename Net::value_type;
    const std::size_t k = classes(net);
    std::vector<T> sc(n * k);
    scores(net, x, n, sc.data(), g);
    for (std::size_t r = 0; r < n; ++r)
      labels[r] = std::size_t(std::max_element(sc.begin() + std::ptrdiff_t(r * k), sc.begin() + std::ptrdiff_t((r + 1) * k)) -
                              (sc.begin() + std::ptrdiff_t(r * k)));
  }

  /// Classification accuracy of a forward-forward network on a data set (anything with
  /// `inputs` and one-hot `targets` matrices, e.g. `data::dataset`), in batches of `batch`.
  template <class Net, class Dataset>
  double evaluate(const Net& net, const Dataset& set, std::size_t batch = 1000) const {
    rng g(net.initial_seed().value, 0xff0e);
    return evaluate(net, set, g, batch);
  }
  /// `evaluate` with forward noise from `g`.
  template <class Net, class Dataset>
  double evaluate(const Net& net, const Dataset& set, rng& g, std::size_t batch = 1000) const {
    using T = typename Net::value_type;
    PNN_EXPECTS(batch > 0, "learn::forward_forward::evaluate: batch must be positive");
    const std::size_t n = set.inputs.shape()[0];
    if (n == 0) return 0.0;
    if (set.inputs.shape()[1] != net.input_size() || set.targets.shape()[1] != net.output_size())
      throw_error("learn::forward_forward::evaluate: data set does not match the network's input/output sizes");
    const std::size_t in = net.input_size(), k = classes(net), kt = set.targets.shape()[1];
    std::vector<T> xb;
    std::vector<std::size_t> lab;
    std::size_t correct = 0;
    for (std::size_t first = 0, bi = 0; first < n; first += batch, ++bi) {
      const std::size_t m = std::min(batch, n - first);
      xb.resize(m * in);
      for (std::size_t q = 0; q < m * in; ++q) xb[q] = static_cast<T>(set.inputs.data()[first * in + q]);
      lab.resize(m);
      rng gb = g.split(bi);
      predict(net, xb.data(), m, lab.data(), gb);
      for (std::size_t r = 0; r < m; ++r) correct += (lab[r] == label_of(set.targets.data() + (first + r) * kt, k)) ? 1U : 0U;
    }
    return double(correct) / double(n);
  }

  /// Goodness of one layer output `h` of width `d` under the configured measure.
  template <class T>
  [[nodiscard]] T goodness(const T* h, std::size_t d) const noexcept {
    const double ss = double(simd::sum_squares<T>(d, h));
    if (params_.goodness == ff_goodness::energy) return static_cast<T>(ss / double(d));
    const double norm = std::sqrt(ss);
    if (norm == 0) return T(0);
    return static_cast<T>(double(simd::sum<T>(d, h)) / (std::sqrt(double(d)) * norm));
  }

 private:
  template <class Net>
  std::size_t classes(const Net& net) const {
    const std::size_t k = params_.num_classes == 0 ? net.output_size() : params_.num_classes;
    PNN_EXPECTS(k >= 2 && k <= net.input_size(),
                "learn::forward_forward: need 2 <= num_classes <= input size (labels are embedded in the input)");
    return k;
  }
  // The trained layer left out of prediction scores: the first one when another is trained
  // (Hinton 2022), none otherwise (num_layers: no layer has that index).
  [[nodiscard]] std::size_t unscored_layer(std::size_t num_layers) const noexcept {
    if (params_.score_first_layer) return num_layers;
    std::size_t first = num_layers, trained = 0;
    for (std::size_t i = 0; i < num_layers; ++i)
      if (!is_fixed(i)) {
        if (first == num_layers) first = i;
        ++trained;
      }
    return trained >= 2 ? first : num_layers;
  }
  bool is_fixed(std::size_t i) const noexcept {
    return std::find(params_.fixed_layers.begin(), params_.fixed_layers.end(), i) != params_.fixed_layers.end();
  }
  template <class T>
  void embed(T* row, std::size_t k, std::size_t c) const {
    for (std::size_t j = 0; j < k; ++j) row[j] = j == c ? static_cast<T>(params_.label_scale) : T(0);
  }
  template <class T>
  static std::size_t label_of(const T* t, std::size_t k) {
    std::size_t a = 0;
    for (std::size_t j = 1; j < k; ++j)
      if (t[j] > t[a]) a = j;
    return a;
  }

  // Runs `rows` inputs through the layers, each fed the RMS-normalised output of the one below;
  // calls `f(layer, i, input, a, h, width)` per layer.
  // `Net` may be const (scoring) or not (training: a layer without W is perturbed in place).
  template <class Net, class T, class F>
  static void layerwise(Net& net, const T* x, std::size_t rows, buffers<T>& buf, rng& g, F&& f) {
    std::size_t widest = 0;
    net.for_each_layer([&](const auto& l, std::size_t) {
      widest = std::max({widest, l.in_size(), l.out_size(), pnn::detail::pre_activation_size(l)});
    });
    for (auto* v : {&buf.in, &buf.a, &buf.h, &buf.scratch})
      if (v->size() < rows * widest) v->resize({rows * widest});
    // Each layer's input is kept until its update is formed: `in` holds it, `h` the output.
    const T* cur = x;
    net.for_each_layer([&](auto& l, std::size_t i) {
      using L = std::remove_cvref_t<decltype(l)>;
      const std::size_t d = l.out_size();
      T* scratch = L::has_input_noise ? buf.scratch.data() : nullptr;
      rng gl = g.split(i);
      l.forward(cur, rows, buf.a.data(), buf.h.data(), gl, scratch);
      f(l, i, cur, buf.a.data(), buf.h.data(), d);
      // Normalise into `in` for the next layer.
      for (std::size_t r = 0; r < rows; ++r) {
        const T* hr = buf.h.data() + r * d;
        T* o = buf.in.data() + r * d;
        const double ss = double(simd::sum_squares<T>(d, hr));
        const T s = ss > 0 ? static_cast<T>(std::sqrt(double(d) / ss)) : T(0);
        for (std::size_t j = 0; j < d; ++j) o[j] = s * hr[j];
      }
      cur = buf.in.data();
    });
  }

  [[gnu::cold, gnu::noinline]] static void bad_fixed_layer(std::size_t i, std::size_t layers) {
    std::string m("learn::forward_forward: fixed_layers names layer ");
    m.append(std::to_string(i)).append(" of a ").append(std::to_string(layers)).append("-layer network");
    throw_error(m);
  }

  static double softplus(double z) noexcept { return z > 30 ? z : std::log1p(std::exp(z)); }

  // The softplus argument of a row with goodness g: α(θ − g) for a positive, α(g − θ) for a negative.
  [[nodiscard]] double margin(double g, bool positive) const noexcept {
    return positive ? params_.sharpness * (params_.threshold - g) : params_.sharpness * (g - params_.threshold);
  }

  // The layer's goodness loss over rows 0…n−1 (positive) and n…2n−1 (negative), batch mean;
  // adds each row's goodness to `gpos`/`gneg` when given.
  template <class T>
  double goodness_loss(const T* h, std::size_t n, std::size_t d, T* gpos = nullptr, T* gneg = nullptr) const {
    double total = 0;
    for (std::size_t r = 0; r < 2 * n; ++r) {
      const T gr = goodness(h + r * d, d);
      if (gpos != nullptr) (r < n ? gpos[r] : gneg[r - n]) += gr;
      total += softplus(margin(double(gr), r < n));
    }
    return total / double(n);
  }

  // ĝ = (1/K) Σ_k (ℓ(θ + cΔ_k) − ℓ(θ − cΔ_k)) / (2c) · Δ_k, Δ_k Rademacher, for a layer whose
  // parameters sit inside the physics: each ℓ is measured by reading the layer at its recorded
  // input (2K reads of this layer alone). E[ĝ] = ∇ℓ + O(c²). The parameters are restored
  // exactly (saved in double).
  template <class Layer, class T, class Net>
  void perturbation_estimate(Layer& l, const T* input, std::size_t n, buffers<T>& buf, rng& g, state<Net>& s,
                             layer_gradient<T>& gi) const {
    const std::size_t p = l.tile.parameter_count(), d = l.out_size(), rows = 2 * n;
    const double c = params_.perturbation;
    s.saved.resize(p);
    s.probe.resize(p);
    s.direction.resize(p);
    l.tile.get_parameters(s.saved.data());
    s.pa.resize(rows * pnn::detail::pre_activation_size(l));
    s.ph.resize(rows * d);
    T* scratch = Layer::has_input_noise ? buf.scratch.data() : nullptr;
    gi.weight.fill(T(0));
    gi.bias.fill(T(0));
    gi.factored = false;
    gi.parameter.fill(T(0));
    const std::size_t k_max = params_.num_perturbations;
    for (std::size_t k = 0; k < k_max; ++k) {
      rng gk = g.split(k);
      rng gd = gk.split(0);
      for (double& v : s.direction) v = (gd.next_u32() & 1U) ? 1.0 : -1.0;
      double loss[2];
      for (int side = 0; side < 2; ++side) {
        const double sgn = side == 0 ? c : -c;
        for (std::size_t q = 0; q < p; ++q) s.probe[q] = s.saved[q] + sgn * s.direction[q];
        l.tile.set_parameters(s.probe.data());
        rng gr = gk.split(std::uint64_t(1 + side));
        l.forward(input, rows, s.pa.data(), s.ph.data(), gr, scratch);
        loss[side] = goodness_loss(s.ph.data(), n, d);
      }
      const double scale = (loss[0] - loss[1]) / (2 * c * double(k_max));
      for (std::size_t q = 0; q < p; ++q) gi.parameter.data()[q] += static_cast<T>(scale * s.direction[q]);
    }
    l.tile.set_parameters(s.saved.data());
    gi.parameter_space = true;
  }
  static double logistic(double z) noexcept { return 1.0 / (1.0 + std::exp(-z)); }

  template <class Net, class Loss>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss&, rng& g,
                  state<Net>& s, rule_pass pass) {
    using T = typename Net::value_type;
    const bool classify = pass == rule_pass::step && params_.step_accuracy;
    PNN_EXPECTS(params_.sharpness > 0 && std::isfinite(params_.sharpness),
                "learn::forward_forward: sharpness must be > 0");
    PNN_EXPECTS(std::isfinite(params_.threshold), "learn::forward_forward: threshold must be finite");
    PNN_EXPECTS(params_.perturbation > 0 && std::isfinite(params_.perturbation),
                "learn::forward_forward: perturbation must be > 0 and finite");
    PNN_EXPECTS(params_.num_perturbations >= 1, "learn::forward_forward: num_perturbations must be >= 1");
    // A fixed layer that does not exist would silently train every layer.
    for (std::size_t i : params_.fixed_layers)
      if (i >= Net::num_layers) bad_fixed_layer(i, Net::num_layers);
    const std::size_t n = b.n, in = net.input_size(), kt = net.output_size();
    const std::size_t k = classes(net);
    // Positive rows 0…n−1, negative rows n…2n−1.
    s.x2.resize(2 * n * in);
    s.labels.resize(n);
    rng gneg = g.split(0);
    for (std::size_t r = 0; r < n; ++r) {
      const std::size_t y = label_of(b.target + r * kt, k);
      s.labels[r] = y;
      const std::size_t wrong = (y + 1 + gneg.uniform_int(static_cast<std::uint32_t>(k - 1))) % k;
      std::copy(b.x + r * in, b.x + (r + 1) * in, s.x2.data() + r * in);
      std::copy(b.x + r * in, b.x + (r + 1) * in, s.x2.data() + (n + r) * in);
      embed(s.x2.data() + r * in, k, y);
      embed(s.x2.data() + (n + r) * in, k, wrong);
    }
    s.grad.ensure_shape(net);
    s.gpos.assign(n, T(0));
    s.gneg.assign(n, T(0));
    const double alpha = params_.sharpness;
    double total = 0;
    rng gf = g.split(1), gp = g.split(3);
    layerwise(net, s.x2.data(), 2 * n, s.buf, gf,
              [&](auto& l, std::size_t i, const T* input, const T* a, const T* h, std::size_t d) {
                using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
                auto& gi = s.grad[i];
                if (is_fixed(i)) {
                  gi.weight.fill(T(0));
                  gi.bias.fill(T(0));
                  gi.factored = false;
                  return;
                }
                if constexpr (parameterised_tile<tile_t> && !deployable_tile<tile_t>) {
                  if (params_.physics_gradient == ff_physics_gradient::perturbation) {
                    // The statistics come from the unperturbed read.
                    total += goodness_loss(h, n, d, s.gpos.data(), s.gneg.data());
                    rng gl = gp.split(i);
                    perturbation_estimate(l, input, n, s.buf, gl, s, gi);
                    return;
                  }
                }
                s.dh.resize(2 * n * d);
                s.delta.resize(2 * n * pnn::detail::pre_activation_size(l));
                for (std::size_t r = 0; r < 2 * n; ++r) {
                  const bool pos = r < n;
                  const T* hr = h + r * d;
                  const double gr = double(goodness(hr, d));
                  (pos ? s.gpos[r] : s.gneg[r - n]) += static_cast<T>(gr);
                  const double z = margin(gr, pos);
                  total += softplus(z) / double(n);
                  // dℓ/dg: −α σ(z) for positives, +α σ(z) for negatives; batch mean.
                  const double dl_dg = (pos ? -alpha : alpha) * logistic(z) / double(n);
                  T* o = s.dh.data() + r * d;
                  if (params_.goodness == ff_goodness::energy) {
                    const T c = static_cast<T>(dl_dg * 2.0 / double(d));
                    for (std::size_t j = 0; j < d; ++j) o[j] = c * hr[j];
                  } else {
                    const double ss = double(simd::sum_squares<T>(d, hr));
                    const double norm = std::sqrt(ss);
                    if (norm == 0) {
                      std::fill(o, o + d, T(0));
                    } else {
                      const T c1 = static_cast<T>(dl_dg / (std::sqrt(double(d)) * norm));
                      const T c2 = static_cast<T>(dl_dg * gr / ss);
                      for (std::size_t j = 0; j < d; ++j) o[j] = c1 - c2 * hr[j];
                    }
                  }
                }
                // A convolution's error reaches every position through its pooling, and its
                // kernel's update sums over the patches.
                pnn::detail::layer_delta(l, s.dh.data(), a, h, 2 * n, s.delta.data());
                pnn::detail::layer_update(l, input, s.delta.data(), 2 * n, T(1), gi);
              });
    step_result r;
    r.loss = total;
    r.count = n;
    if (classify) {
      s.predicted.resize(n);
      rng gc = g.split(2);
      predict(net, b.x, n, s.predicted.data(), gc);
      for (std::size_t q = 0; q < n; ++q) r.correct += (s.predicted[q] == s.labels[q]) ? 1U : 0U;
    } else {
      for (std::size_t q = 0; q < n; ++q) r.correct += (s.gpos[q] > s.gneg[q]) ? 1U : 0U;
    }
    return r;
  }

  params params_{};
};

}  // namespace pnn::learn
