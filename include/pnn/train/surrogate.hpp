// SPDX-License-Identifier: MIT
/// \file
/// \brief Learned digital twins: an MLP surrogate of a black-box layer fitted from measured
/// (input, parameter) → output pairs, and `surrogate_twin`, which physics-aware training
/// back-propagates through (Wright et al., Nature 2022, Methods "Digital models").
///
/// The reference fits ~10⁴ measurements with an MLP of two hidden ReLU layers of 100 units on
/// normalised outputs. `mlp_surrogate` is that network (two hidden ReLU layers, any widths),
/// trained with Adam on standardised inputs and outputs, with a held-out validation split whose
/// normalised RMS error (1 = predicting the mean) is reported. Its Jacobian-vector products are
/// back-propagation through the surrogate network. `fit_surrogate(layer, …)` measures a layer
/// and fits it, seeing the layer either through all its parameters (`surrogate_input::parameters`:
/// features `(x, W, b)`, for small boxes) or through its affine drive
/// (`surrogate_input::drive`: features `u = W x + b`, for physics driven by `W x + b` like
/// `physics::coupled_oscillators`: then ∂/∂W, ∂/∂x follow from the chain rule exactly). On a
/// `pnn::conv2d` the surrogate models one patch read of the kernel array from its drive
/// `u_p = K x_p + b`, and its Jacobian acts at every position.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/state_format.hpp>
#include <pnn/data/dataset.hpp>
#include <pnn/learn/backprop.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/physics_aware.hpp>
#include <pnn/physics/digital.hpp>
#include <pnn/simd/gemm.hpp>
#include <pnn/train/train.hpp>

namespace pnn::learn {

/// How a surrogate sees a dense black-box layer.
enum class surrogate_input {
  parameters,  ///< features (x, W, b): In + Out·In + Out values per sample
  drive,       ///< features u = W x + b: Out values per sample (the box depends on W x + b only)
};

/// Settings of a surrogate fit. Defaults follow the reference (two hidden layers of 100).
struct surrogate_options {
  std::size_t hidden1 = 100;           ///< units of the first hidden ReLU layer
  std::size_t hidden2 = 100;           ///< units of the second hidden ReLU layer
  std::size_t epochs = 100;            ///< Adam epochs over the training split
  std::size_t batch = 64;              ///< mini-batch size
  float learning_rate = 1e-3f;         ///< Adam step size
  double validation_fraction = 0.2;    ///< share of the samples held out for validation
  std::uint64_t seed = 0;              ///< initial weights, shuffling, sampling
  // Sampling of measurements by fit_surrogate (N(0, sd²) per value):
  std::size_t samples = 10000;         ///< measurements taken
  surrogate_input input = surrogate_input::parameters;
  double input_sd = 1.0;               ///< x (parameters mode)
  double weight_sd = 1.0;              ///< W (parameters mode)
  double bias_sd = 0.1;                ///< b (parameters mode)
  double drive_sd = 1.0;               ///< u (drive mode)
};

/// Fit quality of a surrogate, in normalised RMS error (RMS of (ŷ − y)/σ_y over all outputs;
/// 1 is the error of predicting the mean).
struct surrogate_report {
  double train_error = 0;
  double validation_error = 0;
  std::size_t train_samples = 0;
  std::size_t validation_samples = 0;
};

/// An MLP `features → hidden1 → hidden2 → outputs` (ReLU) on standardised inputs and outputs.
class mlp_surrogate {
 public:
  using network_type = network<dense<dynamic, dynamic, physics::digital, noise::none, act::relu>,
                               dense<dynamic, dynamic, physics::digital, noise::none, act::relu>,
                               dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;

  /// Fits `y ≈ f(z)` from rows of `z` (N × features) and `y` (N × outputs); the last
  /// `validation_fraction` of a seeded shuffle is held out.
  /// \pre N ≥ 2, same row counts, finite values (else `pnn::error`).
  surrogate_report fit(const xt::xtensor<double, 2>& z, const xt::xtensor<double, 2>& y,
                       const surrogate_options& o = {}) {
    const std::size_t n = z.shape()[0], d = z.shape()[1], k = y.shape()[1];
    if (n < 2 || y.shape()[0] != n || d == 0 || k == 0)
      throw_error("learn::mlp_surrogate::fit: need at least 2 samples with matching rows (got " + std::to_string(n) +
                  " inputs, " + std::to_string(y.shape()[0]) + " outputs)");
    pnn::detail::require_finite(z.data(), z.size(), "learn::mlp_surrogate::fit: z");
    pnn::detail::require_finite(y.data(), y.size(), "learn::mlp_surrogate::fit: y");
    PNN_EXPECTS(o.validation_fraction >= 0 && o.validation_fraction < 1,
                "learn::mlp_surrogate::fit: validation_fraction must lie in [0, 1)");
    standardise(z, mu_z_, sd_z_);
    standardise(y, mu_y_, sd_y_);
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    rng g(o.seed, 0x5u);
    for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[g.uniform_int(static_cast<std::uint32_t>(i + 1))]);
    const auto n_val = static_cast<std::size_t>(double(n) * o.validation_fraction);
    const std::size_t n_train = n - n_val;
    data::dataset tr = make_set(z, y, order, 0, n_train), va = make_set(z, y, order, n_train, n);
    net_ = network_type({d, o.hidden1, o.hidden2, k}, seed{o.seed});
    // A cosine decay of the step size to 1 % settles the fit far better than a constant one.
    const std::size_t steps = o.epochs * ((n_train + o.batch - 1) / std::max<std::size_t>(o.batch, 1));
    backprop<optim::adam> rule{{.optimizer = {.learning_rate = o.learning_rate,
                                              .lr_schedule = {.type = optim::schedule::kind::cosine,
                                                              .total_steps = steps,
                                                              .min_factor = 0.01}}}};
    train(net_, rule, loss::mse{}, tr, {.epochs = o.epochs, .batch = o.batch, .seed = o.seed, .progress = progress_mode::never});
    report_ = {rms(tr), n_val > 0 ? rms(va) : 0.0, n_train, n_val};
    return report_;
  }

  /// The last fit's report.
  [[nodiscard]] const surrogate_report& report() const noexcept { return report_; }
  [[nodiscard]] std::size_t features() const noexcept { return mu_z_.size(); }
  [[nodiscard]] std::size_t outputs() const noexcept { return mu_y_.size(); }

  /// Predictions for rows of `z` (n × features) into `y` (n × outputs).
  template <class T>
  void predict(const T* z, std::size_t n, T* y) const {
    xt::xtensor<float, 2> zn = normalised(z, n);
    rng g(0);
    const auto out = forward(net_, zn, g);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t j = 0; j < outputs(); ++j)
        y[r * outputs() + j] = static_cast<T>(double(out(r, j)) * sd_y_[j] + mu_y_[j]);
  }

  /// Vector-Jacobian product at rows `z`: `gz(n × features) = gyᵀ ∂f/∂z` for `gy` (n × outputs),
  /// by back-propagation through the surrogate network.
  template <class T>
  void vjp(const T* z, std::size_t n, const T* gy, T* gz) {
    PNN_EXPECTS(features() > 0, "learn::mlp_surrogate: fit the surrogate before using it");
    zn_ = normalised(z, n);
    rng g(0);
    forward_trace(net_, zn_.data(), n, tr_, g);
    const std::size_t k = outputs();
    pnn::detail::resize_if_needed(up_, n, k);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t j = 0; j < k; ++j) up_(r, j) = static_cast<float>(double(gy[r * k + j]) * sd_y_[j]);
    back<2>(n);
    back<1>(n);
    back<0>(n);
    const std::size_t d = features();
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = 0; c < d; ++c) gz[r * d + c] = static_cast<T>(double(up_(r, c)) / sd_z_[c]);
  }

  /// Checkpoint contents (pnn/core/state_format.hpp): the sizes, the standardisation, the fit
  /// report and the network's weights. The file decides the sizes, so a default-constructed
  /// surrogate loads any fit; sizes, scales and weights are checked (finite, σ > 0) before the
  /// surrogate changes.
  template <class V>
  void visit_state(V& v) {
    constexpr std::size_t L = network_type::num_layers;
    std::array<std::uint64_t, L + 1> dims{};  // features, hidden1, hidden2, outputs (all 0: not fitted)
    if constexpr (!V::loading) {
      dims[0] = features();
      if (dims[0] > 0) net_.for_each_layer([&](const auto& l, std::size_t i) { dims[i + 1] = l.out_size(); });
    }
    v("sizes", std::span<std::uint64_t>(dims), state_scratch);
    if constexpr (V::loading) {
      const bool none = dims[0] == 0, all = std::all_of(dims.begin(), dims.end(), [](auto d) { return d > 0; });
      const bool plausible = std::all_of(dims.begin(), dims.end(), [](auto d) { return d <= (std::uint64_t{1} << 16); });
      if (!plausible || !(none || all)) {
        v.reject("sizes", "are not those of a surrogate (all zero, or all positive and at most 65536)");
        dims.fill(0);
      }
    }
    const auto size = [](std::uint64_t d) { return static_cast<std::size_t>(d); };
    std::vector<double> mu_z(size(dims[0])), sd_z(size(dims[0])), mu_y(size(dims[L])), sd_y(size(dims[L]));
    std::array<std::vector<float>, L> w, b;
    for (std::size_t i = 0; i < L; ++i) {
      w[i].resize(size(dims[i + 1] * dims[i]));
      b[i].resize(size(dims[i + 1]));
    }
    if constexpr (!V::loading) {
      mu_z = mu_z_, sd_z = sd_z_, mu_y = mu_y_, sd_y = sd_y_;
      if (dims[0] > 0)
        net_.for_each_layer([&](const auto& l, std::size_t i) {
          std::copy(l.tile.weight_data(), l.tile.weight_data() + w[i].size(), w[i].begin());
          std::copy(l.tile.bias_data(), l.tile.bias_data() + b[i].size(), b[i].begin());
        });
    }
    v("mu_z", std::span<double>(mu_z), state_scratch);
    v("sd_z", std::span<double>(sd_z), state_scratch);
    v("mu_y", std::span<double>(mu_y), state_scratch);
    v("sd_y", std::span<double>(sd_y), state_scratch);
    for (std::size_t i = 0; i < L; ++i) {
      auto g = v.scope("layer", i);
      v("weight", std::span<float>(w[i]), state_scratch);
      v("bias", std::span<float>(b[i]), state_scratch);
      if constexpr (V::loading) {
        if (!pnn::detail::all_finite(w[i].data(), w[i].size()) || !pnn::detail::all_finite(b[i].data(), b[i].size()))
          v.reject("weight", "are not finite");
      }
    }
    v("train_error", report_.train_error);
    v("validation_error", report_.validation_error);
    v("train_samples", report_.train_samples);
    v("validation_samples", report_.validation_samples);
    if constexpr (V::loading) {
      for (const auto* m : {&mu_z, &mu_y})
        if (!pnn::detail::all_finite(m->data(), m->size())) v.reject(m == &mu_z ? "mu_z" : "mu_y", "are not finite");
      for (const auto* sd : {&sd_z, &sd_y})
        if (!std::all_of(sd->begin(), sd->end(), [](double x) { return x > 0 && std::isfinite(x); }))
          v.reject(sd == &sd_z ? "sd_z" : "sd_y", "are not positive and finite");
      if (v.applying()) {
        mu_z_ = std::move(mu_z), sd_z_ = std::move(sd_z), mu_y_ = std::move(mu_y), sd_y_ = std::move(sd_y);
        net_ = dims[0] == 0 ? network_type{}
                            : network_type({size(dims[0]), size(dims[1]), size(dims[2]), size(dims[3])}, seed{0});
        rng g(0);
        if (dims[0] > 0)
          net_.for_each_layer([&](auto& l, std::size_t i) { l.tile.set_weights(w[i].data(), b[i].data(), g); });
      }
    }
  }

 private:
  static void standardise(const xt::xtensor<double, 2>& m, std::vector<double>& mu, std::vector<double>& sd) {
    const std::size_t n = m.shape()[0], c = m.shape()[1];
    mu.assign(c, 0.0);
    sd.assign(c, 0.0);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t j = 0; j < c; ++j) mu[j] += m(r, j) / double(n);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t j = 0; j < c; ++j) sd[j] += (m(r, j) - mu[j]) * (m(r, j) - mu[j]) / double(n);
    for (auto& s : sd) s = s > 0 ? std::sqrt(s) : 1.0;  // a constant column stays constant
  }
  template <class T>
  xt::xtensor<float, 2> normalised(const T* z, std::size_t n) const {
    const std::size_t d = features();
    xt::xtensor<float, 2> zn({n, d});
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = 0; c < d; ++c) zn(r, c) = static_cast<float>((double(z[r * d + c]) - mu_z_[c]) / sd_z_[c]);
    return zn;
  }
  data::dataset make_set(const xt::xtensor<double, 2>& z, const xt::xtensor<double, 2>& y,
                         const std::vector<std::size_t>& order, std::size_t first, std::size_t last) const {
    data::dataset s;
    const std::size_t d = z.shape()[1], k = y.shape()[1];
    s.inputs.resize({last - first, d});
    s.targets.resize({last - first, k});
    for (std::size_t i = first; i < last; ++i) {
      for (std::size_t c = 0; c < d; ++c) s.inputs(i - first, c) = static_cast<float>((z(order[i], c) - mu_z_[c]) / sd_z_[c]);
      for (std::size_t j = 0; j < k; ++j) s.targets(i - first, j) = static_cast<float>((y(order[i], j) - mu_y_[j]) / sd_y_[j]);
    }
    s.name = "surrogate measurements";
    return s;
  }
  double rms(const data::dataset& s) const {
    rng g(0);
    const auto out = forward(net_, s.inputs, g);
    double e = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
      const double dlt = double(out.data()[i]) - double(s.targets.data()[i]);
      e += dlt * dlt;
    }
    return std::sqrt(e / double(out.size()));
  }
  // One layer down: `up_` holds ∂L/∂h_I on entry and ∂L/∂h_{I−1} (or ∂L/∂z) on exit.
  template <std::size_t I>
  void back(std::size_t n) {
    const auto& l = layer<I>(net_);
    pnn::detail::resize_if_needed(delta_, n, l.out_size());
    pnn::detail::times_derivative(l, up_.data(), tr_.a[I].data(), tr_.h[I].data(), delta_.size(), delta_.data());
    pnn::detail::resize_if_needed(up_, n, l.in_size());
    rng g(0);
    l.backward_read_at(tr_.input_of(I), delta_.data(), n, up_.data(), g);
  }

  network_type net_{};
  std::vector<double> mu_z_{}, sd_z_{}, mu_y_{}, sd_y_{};
  surrogate_report report_{};
  trace<network_type> tr_{};
  xt::xtensor<float, 2> zn_{}, up_{}, delta_{};
};

/// A fitted surrogate of one black-box layer (dense, or a convolution's patch read) and how it
/// sees the layer.
struct layer_surrogate {
  mlp_surrogate model{};
  surrogate_input input = surrogate_input::parameters;

  /// Checkpoint contents: how the surrogate sees the layer, and the model.
  template <class V>
  void visit_state(V& v) {
    std::array<std::uint8_t, 1> kind{static_cast<std::uint8_t>(input)};
    v("input", std::span<std::uint8_t>(kind), state_scratch);
    if constexpr (V::loading) {
      if (kind[0] > static_cast<std::uint8_t>(surrogate_input::drive)) v.reject("input", "is not a surrogate_input");
      if (v.applying()) input = static_cast<surrogate_input>(kind[0]);
    }
    auto g = v.scope("model");
    model.visit_state(v);
  }
};

/// Measures a layer `l` (through a copy: its callable, noise and all) at `o.samples` random
/// points and fits a surrogate of its pre-activation output. A `pnn::conv2d` is measured per
/// patch read: its drive surrogate maps one read's `u = K x_p + b` (channels values) to that
/// read's pre-activation, each measurement averaging the reads of one blank frame at `u = b`.
/// \pre `l`'s tile takes `set_weights`; for a convolution `o.input == surrogate_input::drive`
///      (else `pnn::error`).
template <class Layer>
layer_surrogate fit_surrogate(const Layer& l, const surrogate_options& o, surrogate_report* report = nullptr) {
  using T = typename Layer::value_type;
  PNN_EXPECTS(o.samples >= 2, "learn::fit_surrogate: need at least 2 samples");
  if constexpr (pnn::detail::is_convolution_v<Layer>) {
    // One measurement: a blank image through a zero kernel with the drive as bias, so every
    // patch read sees u = b; the positions' reads are averaged (one frame, P reads of the box).
    PNN_EXPECTS(o.input == surrogate_input::drive,
                "learn::fit_surrogate: a convolution's surrogate sees each patch read's drive (surrogate_input::drive)");
    const std::size_t channels = l.channels(), positions = l.positions();
    const std::size_t ns = o.samples;
    Layer box = l;
    xt::xtensor<double, 2> z({ns, channels}), y({ns, channels});
    std::vector<T> x(l.in_size(), T(0)), w(channels * l.kernel_inputs(), T(0)), b(channels),
        a(positions * channels), h(l.out_size());
    rng g(o.seed, 0x5a3u);
    for (std::size_t s = 0; s < ns; ++s) {
      rng gs = g.split(s);
      for (std::size_t j = 0; j < channels; ++j) {
        b[j] = static_cast<T>(o.drive_sd * gs.normal_double());
        z(s, j) = double(b[j]);
      }
      box.tile.set_weights(w.data(), b.data(), gs);
      rng gr = gs.split(1);
      box.forward(x.data(), 1, a.data(), h.data(), gr);
      for (std::size_t j = 0; j < channels; ++j) {
        double m = 0;
        for (std::size_t q = 0; q < positions; ++q) m += double(a[q * channels + j]);
        y(s, j) = m / double(positions);
      }
    }
    layer_surrogate r;
    r.input = surrogate_input::drive;
    const surrogate_report rep = r.model.fit(z, y, o);
    if (report != nullptr) *report = rep;
    return r;
  } else {
    const std::size_t in = l.in_size(), out = l.out_size(), ns = o.samples;
    const bool drive = o.input == surrogate_input::drive;
    const std::size_t d = drive ? out : in + in * out + out;
    Layer box = l;
    xt::xtensor<double, 2> z({ns, d}), y({ns, out});
    std::vector<T> x(in), w(in * out), b(out), a(out), h(out), scratch(in);
    rng g(o.seed, 0x5a3u);
    for (std::size_t s = 0; s < ns; ++s) {
      rng gs = g.split(s);
      if (drive) {  // u = b with W = 0, x = 0
        std::fill(x.begin(), x.end(), T(0));
        std::fill(w.begin(), w.end(), T(0));
        for (std::size_t j = 0; j < out; ++j) b[j] = static_cast<T>(o.drive_sd * gs.normal_double());
        for (std::size_t j = 0; j < out; ++j) z(s, j) = double(b[j]);
      } else {
        for (auto& v : x) v = static_cast<T>(o.input_sd * gs.normal_double());
        for (auto& v : w) v = static_cast<T>(o.weight_sd * gs.normal_double());
        for (auto& v : b) v = static_cast<T>(o.bias_sd * gs.normal_double());
        std::size_t c = 0;
        for (auto v : x) z(s, c++) = double(v);
        for (auto v : w) z(s, c++) = double(v);
        for (auto v : b) z(s, c++) = double(v);
      }
      box.tile.set_weights(w.data(), b.data(), gs);
      rng gr = gs.split(1);
      box.forward(x.data(), 1, a.data(), h.data(), gr, scratch.data());
      for (std::size_t j = 0; j < out; ++j) y(s, j) = double(a[j]);
    }
    layer_surrogate r;
    r.input = o.input;
    const surrogate_report rep = r.model.fit(z, y, o);
    if (report != nullptr) *report = rep;
    return r;
  }
}

/// A twin whose layers are learned surrogates where given and the ideal digital layer
/// (`digital_twin`) elsewhere. Layer `i`'s surrogate replaces `f_m` of that layer: its
/// Jacobians with respect to the input and the parameters come from back-propagation through
/// the surrogate, evaluated at the measured input and the current parameters.
struct surrogate_twin {
  static constexpr const char* name = "surrogate_twin";
  std::vector<std::optional<layer_surrogate>> layers{};  ///< index = layer; empty: digital

  /// Uses `s` for layer `i`.
  void set(std::size_t i, layer_surrogate s) {
    if (layers.size() <= i) layers.resize(i + 1);
    layers[i] = std::move(s);
  }

  /// Checkpoint contents: which layers have a surrogate, and each surrogate. The twin lives in
  /// the rule's parameters, not its state: save it as a part of its own,
  /// `io::save_parts(path, state_part{"network", net}, state_part{"rule", rule.kept_state_for(net)},
  /// state_part{"twin", rule.twin()})`; a default-constructed twin loads it.
  template <class V>
  void visit_state(V& v) {
    std::array<std::uint64_t, 1> count{layers.size()};
    v("layers", std::span<std::uint64_t>(count), state_scratch);
    if constexpr (V::loading) {
      if (count[0] > 4096) {
        v.reject("layers", "is implausibly large");
        count[0] = 0;
      }
    }
    std::vector<std::uint8_t> present(static_cast<std::size_t>(count[0]));
    if constexpr (!V::loading)
      for (std::size_t i = 0; i < layers.size(); ++i) present[i] = layers[i].has_value() ? 1 : 0;
    v("present", std::span<std::uint8_t>(present), state_scratch);
    // Loading fills copies, which replace the surrogates only in the applying pass.
    std::vector<std::optional<layer_surrogate>> loaded;
    if constexpr (V::loading) {
      loaded.resize(present.size());
      for (std::size_t i = 0; i < present.size(); ++i) {
        if (present[i] > 1) v.reject("present", "is not a list of booleans");
        if (present[i] == 1) loaded[i].emplace();
      }
    }
    auto& ls = [&]() -> std::vector<std::optional<layer_surrogate>>& {
      if constexpr (V::loading) return loaded;
      else return layers;
    }();
    for (std::size_t i = 0; i < ls.size(); ++i)
      if (ls[i].has_value()) {
        auto g = v.scope("surrogate", i);
        ls[i]->visit_state(v);
      }
    if constexpr (V::loading)
      if (v.applying()) layers = std::move(loaded);
  }

  template <class Net>
  void backward(const Net& physical, const trace<Net>& tr, const typename Net::value_type* dy, gradients<Net>& grad,
                rng& r) {
    auto& dt = digital_.for_network<Net>();
    dt.mirror(physical);
    twin_backward(physical, tr, dy, grad, [&](auto ic, const auto* up, auto& g, auto* down) {
      constexpr std::size_t i = decltype(ic)::value;
      if (i < layers.size() && layers[i].has_value()) surrogate_vjp(layer<i>(physical), tr, i, *layers[i], up, g, down);
      else dt.template layer_vjp<i>(physical, tr, up, g, down, r);
    });
  }

 private:
  template <class Layer, class Net, class T>
  void surrogate_vjp(const Layer& pl, const trace<Net>& tr, std::size_t i, layer_surrogate& s, const T* up,
                     layer_gradient<T>& g, T* down) {
    if constexpr (pnn::detail::is_convolution_v<Layer>) {
      convolution_vjp(pl, tr, i, s, up, g, down);
    } else {
      const std::size_t n = tr.batch, in = pl.in_size(), out = pl.out_size();
      const T* x = tr.input_of(i);
      std::vector<T> delta(n * out), w(in * out);
      pnn::detail::times_derivative(pl, up, tr.a[i].data(), tr.h[i].data(), n * out, delta.data());
      tile_hooks::model_weights(pl.tile, w.data());
      const T* b = pl.tile.bias_data();
      if (s.input == surrogate_input::drive) {
        PNN_EXPECTS(s.model.features() == out, "learn::surrogate_twin: drive surrogate does not match the layer");
        std::vector<T> u(n * out), gu(n * out);
        simd::gemm_nt<T>(n, out, in, T(1), x, in, w.data(), in, T(0), u.data(), out);
        for (std::size_t r = 0; r < n; ++r)
          for (std::size_t j = 0; j < out; ++j) u[r * out + j] += b[j];
        s.model.vjp(u.data(), n, delta.data(), gu.data());
        pnn::detail::outer_product_update(pl, x, gu.data(), n, in, out, T(1), g);
        if (down != nullptr) simd::gemm_nn<T>(n, in, out, T(1), gu.data(), out, w.data(), in, T(0), down, in);
      } else {
        const std::size_t d = in + in * out + out;
        PNN_EXPECTS(s.model.features() == d, "learn::surrogate_twin: parameter surrogate does not match the layer");
        std::vector<T> z(n * d), gz(n * d);
        for (std::size_t r = 0; r < n; ++r) {
          std::copy(x + r * in, x + (r + 1) * in, z.begin() + std::ptrdiff_t(r * d));
          std::copy(w.begin(), w.end(), z.begin() + std::ptrdiff_t(r * d + in));
          std::copy(b, b + out, z.begin() + std::ptrdiff_t(r * d + in + in * out));
        }
        s.model.vjp(z.data(), n, delta.data(), gz.data());
        std::fill(g.weight.begin(), g.weight.end(), T(0));
        std::fill(g.bias.begin(), g.bias.end(), T(0));
        g.factored = false;
        for (std::size_t r = 0; r < n; ++r) {
          const T* gr = gz.data() + r * d;
          for (std::size_t k = 0; k < in * out; ++k) g.weight.data()[k] += gr[in + k];
          for (std::size_t j = 0; j < out; ++j) g.bias.data()[j] += gr[in + in * out + j];
          if (down != nullptr) std::copy(gr, gr + in, down + r * in);
        }
      }
    }
  }

  // A convolution's kernel array is read once per patch, so its surrogate models one read: the
  // box's pre-activation at a patch as a function of that read's drive u_p = K x_p + b
  // (channels values). The surrogate's Jacobian then acts at every position, and the chain
  // rule through u_p gives the kernel's update (one outer product per patch, as for the
  // physical layer) and the error at the input (Kᵀ per patch, summed over overlaps).
  template <class Layer, class Net, class T>
  void convolution_vjp(const Layer& pl, const trace<Net>& tr, std::size_t i, layer_surrogate& s, const T* up,
                       layer_gradient<T>& g, T* down) {
    const std::size_t positions = pl.positions(), channels = pl.channels(), k = pl.kernel_inputs();
    if (s.input != surrogate_input::drive)
      throw_error("learn::surrogate_twin: layer " + std::to_string(i) +
                  " is a convolution: its surrogate must see each patch read's drive (surrogate_input::drive)");
    PNN_EXPECTS(s.model.features() == channels && s.model.outputs() == channels,
                "learn::surrogate_twin: drive surrogate does not match the convolution's channels");
    const std::size_t n = tr.batch, rows = n * positions;
    const T* x = tr.input_of(i);
    std::vector<T> delta(rows * channels), w(channels * k), u(rows * channels), gu(rows * channels), p(rows * k);
    pnn::detail::layer_delta(pl, up, tr.a[i].data(), tr.h[i].data(), n, delta.data());
    tile_hooks::model_weights(pl.tile, w.data());
    const T* b = pl.tile.bias_data();
    pl.patches(x, n, p.data());
    simd::gemm_nt<T>(rows, channels, k, T(1), p.data(), k, w.data(), k, T(0), u.data(), channels);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < channels; ++j) u[r * channels + j] += b[j];
    s.model.vjp(u.data(), rows, delta.data(), gu.data());
    // The patches are at hand: the kernel's update is one outer product per patch read (what
    // layer_update would form after unfolding x again). Never deferred, as layer_update's.
    g.defer = false;
    pnn::detail::outer_product_update(pl, static_cast<const T*>(p.data()), gu.data(), rows, k, channels, T(1), g);
    if (down != nullptr)
      pl.carry_through_patches(gu.data(), n, down, [&](const T* d, std::size_t m, T* dp) {
        simd::gemm_nn<T>(m, k, channels, T(1), d, channels, w.data(), k, T(0), dp, k);
      });
  }

  digital_twin digital_{};
};

}  // namespace pnn::learn
