// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::forward_gradient`: gradient estimates from forward-mode directional derivatives.
///
/// Weight-perturbed (Baydin et al. 2022): draw a tangent `v ~ N(0, I)` over all parameters,
/// propagate tangents alongside the forward pass (forward-mode AD, no backward pass) to get the
/// directional derivative `d = ∇L·v`, and use `ĝ = d v` — unbiased, `E‖ĝ‖² = (n+2)‖∇L‖²`.
/// Activity-perturbed (Ren et al. 2022): perturb each layer's pre-activations `z_l` with
/// `u ~ N(0, I)` (one per sample), `ĝ_z = (∇_z L·u) u` per sample, `ĝ_W = ĝ_zᵀ x_{l−1}` — the
/// variance grows with the layer's width instead of the parameter count. Optional local losses
/// (a fixed random readout per hidden layer) shorten every tangent path to one layer.
/// docs/rules.md, "Forward gradient".
#pragma once

#include <algorithm>
#include <array>
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
#include <pnn/simd/gemm.hpp>
#include <pnn/simd/random.hpp>

namespace pnn::learn {

/// What `forward_gradient` perturbs.
enum class forward_gradient_mode {
  activity,  ///< pre-activations of each layer, one tangent per sample (Ren et al. 2022)
  weight     ///< all parameters at once, one tangent per step (Baydin et al. 2022)
};

/// \brief Forward-gradient learning with optimiser `Optimizer`.
///
/// What is physical: the forward pass (activities `a_l`, `h_l`, with the layer's noise) and the
/// propagation of activity tangents between layers, `ȧ_{l+1} = ḣ_l W_{l+1}ᵀ`, which is a forward
/// read of the tile driven by the tangent (`tile.read`, as a dual-number pass through the same
/// hardware would do). The activation's derivative `f′(a_l)` is evaluated at the measured
/// activities. What is digital: the random tangents, the weight-tangent term `x_{l−1} V_lᵀ` of the
/// weight mode (V is not programmed onto the device), the fixed local readouts and the loss
/// derivative `∂L/∂y` at the output. Every tangent has its own counter-based stream, split by
/// (tangent, layer) from the step's `rng`, so a step is reproducible and the tangents could run in
/// parallel.
///
/// On a `conv2d` the activities are every position's pre-activation before pooling, a tangent
/// reaches the layer above as a read of its patches, pooling passes on its linearisation
/// (`conv2d::activation_tangent`: the window's maximum, or its mean), and a weight tangent is a
/// tangent of the kernel matrix, read through every patch.
template <class Optimizer = optim::sgd>
class forward_gradient : public rule_skeleton<forward_gradient<Optimizer>> {
  friend class rule_skeleton<forward_gradient>;

 public:
  static constexpr const char* name = "forward_gradient";
  /// Runs on `pnn::conv2d` layers: activity tangents at every position's pre-activation,
  /// weight tangents of the kernel matrix, carried through pooling as its linearisation.
  static constexpr bool runs_on_convolutions = true;

  /// Rule parameters (defaults in brackets).
  struct params {
    Optimizer optimizer{};
    /// Which variable is perturbed [activity].
    forward_gradient_mode mode = forward_gradient_mode::activity;
    /// Tangents drawn per step, their estimates averaged [1]. \pre ≥ 1.
    std::size_t num_tangents = 1;
    /// Train each hidden layer on its own local loss: the step's loss applied to `h_l R_lᵀ`, with
    /// `R_l` a fixed Gaussian readout (outputs × width, entries N(0, 1/width)) drawn once from
    /// `readout_seed`. The output layer keeps the global loss [false].
    bool local_losses = false;
    std::uint64_t readout_seed = 0x7265616430757400ULL;
  };

  forward_gradient() = default;
  explicit forward_gradient(params p) : params_(std::move(p)) {}

  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// Per-network state: the forward trace, the estimate and the tangent, the optimiser's
  /// state, the local readouts and scratch. Tangents come from the `rng` of `estimate`/`step`.
  template <class Net>
  struct state {
    using T = typename Net::value_type;
    trace<Net> tr{};
    gradients<Net> grad{}, tangent{};
    typename Optimizer::template state<Net> opt{};
    xt::xtensor<T, 2> dy{};
    std::array<xt::xtensor<T, 2>, Net::num_layers> readout{}, local_dy{};
    xt::xtensor<T, 1> ta{}, th{}, u{}, delta{}, y{}, d{};
    std::uint64_t readout_key = 0;
    bool readout_ready = false;
    /// Checkpoint contents (pnn/core/state_format.hpp): the optimiser's state and the local
    /// losses' fixed random readouts.
    template <class V>
    void visit_state(V& vis) {
      {
        auto g = vis.scope("optimizer");
        opt.visit_state(vis);
      }
      vis("readout_key", readout_key);
      vis("readout_ready", readout_ready);
      for (std::size_t l = 0; l < readout.size(); ++l) {
        auto g = vis.scope("readout", l);
        vis("matrix", readout[l]);
      }
    }
  };

  /// The forward-mode directional derivative `∇L·v` of the batch loss along a given parameter
  /// tangent `v` (shaped like `net`'s parameters): one forward pass with tangents carried
  /// alongside, no backward pass. The primitive of the weight mode, public for checks.
  template <class Net, class X, class Y, class Loss>
  double directional_derivative(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                                const Loss& loss, const gradients<Net>& v, rng& g) {
    auto b = pnn::detail::check_batch(net, x, target, name);
    auto& s = this->template kept_state<Net>();
    forward_pass(net, b, loss, g, s);
    s.tangent.ensure_shape(net);
    for (std::size_t i = 0; i < Net::num_layers; ++i) {
      PNN_EXPECTS(v[i].weight.size() == s.tangent[i].weight.size() && v[i].bias.size() == s.tangent[i].bias.size(),
                  "learn::forward_gradient::directional_derivative: tangent not shaped like the network");
      std::copy(v[i].weight.begin(), v[i].weight.end(), s.tangent[i].weight.begin());
      std::copy(v[i].bias.begin(), v[i].bias.end(), s.tangent[i].bias.begin());
    }
    rng gt = g.split(2);
    return joint_pass(net, b.n, gt, s, false);
  }

 private:
  template <class Net>
  void validate(const Net&) const {
    check_params();
  }

  void check_params() const {
    PNN_EXPECTS(params_.num_tangents >= 1, "learn::forward_gradient: num_tangents must be at least 1");
  }

  // The measured forward pass, ∂L/∂y, and the tangent buffers.
  template <class Net, class Loss>
  step_result forward_pass(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss,
                           rng& g, state<Net>& s) {
    using T = typename Net::value_type;
    const std::size_t n = b.n, k = net.output_size();
    rng gf = g.split(1);
    forward_trace(net, b.x, n, s.tr, gf);
    pnn::detail::require_finite_forward(s.tr, name);
    pnn::detail::resize_if_needed(s.dy, n, k);
    step_result r;
    r.loss = double(loss.gradient(s.tr.output().data(), b.target, n, k, s.dy.data()));
    r.correct = pnn::detail::count_correct<T>(s.tr.output().data(), b.target, n, k);
    r.count = n;

    std::size_t widest = k;
    net.for_each_layer([&](const auto& l, std::size_t) {
      widest = std::max({widest, l.in_size(), l.out_size(), pnn::detail::pre_activation_size(l)});
    });
    for (auto* v : {&s.ta, &s.th, &s.u, &s.delta, &s.y})
      if (v->size() < n * widest) v->resize({n * widest});
    if (s.d.size() < n) s.d.resize({n});
    return r;
  }

  template <class Net, class Loss>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s, rule_pass) {
    const std::size_t n = b.n;
    const step_result r = forward_pass(net, b, loss, g, s);
    if (params_.local_losses) prepare_local(net, b, loss, s);

    rng gt = g.split(2);
    if (params_.mode == forward_gradient_mode::activity) {
      s.grad.ensure_shape(net);
      net.for_each_layer([&](const auto& l, std::size_t i) { activity_layer(net, l, i, n, gt, s); });
    } else if (params_.local_losses) {
      s.grad.reshape(net);
      s.tangent.ensure_shape(net);
      net.for_each_layer([&](const auto& l, std::size_t i) { weight_layer(net, l, i, n, gt, s); });
    } else {
      s.grad.reshape(net);
      s.tangent.ensure_shape(net);
      weight_joint(net, n, gt, s);
    }
    return r;
  }

  // Fixed readouts (drawn once per network shape) and the local losses' output gradients.
  template <class Net, class Loss>
  void prepare_local(const Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss,
                     state<Net>& s) {
    using T = typename Net::value_type;
    const std::size_t n = b.n, k = net.output_size();
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i + 1 == Net::num_layers) return;
      auto& r = s.readout[i];
      if (!s.readout_ready || s.readout_key != params_.readout_seed || r.shape()[0] != k ||
          r.shape()[1] != l.out_size()) {
        r.resize({k, l.out_size()});
        rng gr = rng(params_.readout_seed).split(i);
        fill_normal<T>(gr, r.data(), r.size(), T(0), static_cast<T>(1.0 / std::sqrt(double(l.out_size()))));
      }
      pnn::detail::resize_if_needed(s.local_dy[i], n, k);
      simd::gemm_nt<T>(n, k, l.out_size(), T(1), s.tr.h[i].data(), l.out_size(), r.data(), l.out_size(), T(0),
                       s.y.data(), k);
      loss.gradient(s.y.data(), b.target, n, k, s.local_dy[i].data());
    });
    s.readout_ready = true;
    s.readout_key = params_.readout_seed;
  }

  // ȧ = ẋ Wᵀ: a tangent `xdot` (n × in) read through layer l's tile, as the measured pass
  // reads its input (every patch, for a convolution), into `adot` (n × pre-activation).
  template <class Layer, class T>
  static void read_tangent(const Layer& l, const T* xdot, std::size_t n, T* adot, rng& g) {
    if constexpr (pnn::detail::is_convolution_v<Layer>) {
      auto& patches = pnn::detail::patch_scratch<T>();
      patches.resize(n * l.positions() * l.kernel_inputs());
      l.patches(xdot, n, patches.data());
      l.with_read_tile([&](const auto& t) { t.read(patches.data(), n * l.positions(), adot, g); });
    } else {
      l.with_read_tile([&](const auto& t) { t.read(xdot, n, adot, g); });
    }
  }

  // ḣ from ȧ at the recorded a and h: f′(a) ⊙ ȧ, and for a convolution then its pooling's
  // linearisation.
  template <class Layer, class T>
  static void output_tangent(const Layer& l, const T* adot, const T* a, const T* h, std::size_t n, T* hdot) {
    if constexpr (requires { l.activation_tangent(adot, a, h, n, hdot); }) l.activation_tangent(adot, a, h, n, hdot);
    else pnn::detail::times_derivative(l, adot, a, h, n * l.out_size(), hdot);
  }

  // Per-sample directional derivatives d_n of layer `first`'s loss, given the tangent of its
  // output ḣ_first (n × out) in s.th: through the local readout, or forward through the layers
  // above by tile reads.
  template <class Net>
  void finish_tangent(const Net& net, std::size_t first, std::size_t n, rng& g, state<Net>& s) const {
    using T = typename Net::value_type;
    const std::size_t k = net.output_size();
    const T* dy = nullptr;
    const T* ydot = nullptr;
    if (params_.local_losses && first + 1 < Net::num_layers) {
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i != first) return;
        simd::gemm_nt<T>(n, k, l.out_size(), T(1), s.th.data(), l.out_size(), s.readout[i].data(), l.out_size(),
                         T(0), s.y.data(), k);
      });
      dy = s.local_dy[first].data();
      ydot = s.y.data();
    } else {
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i <= first) return;
        rng gl = g.split(i);
        read_tangent(l, s.th.data(), n, s.ta.data(), gl);
        output_tangent(l, s.ta.data(), s.tr.a[i].data(), s.tr.h[i].data(), n, s.th.data());
      });
      dy = s.dy.data();
      ydot = s.th.data();
    }
    for (std::size_t r = 0; r < n; ++r) s.d.data()[r] = simd::dot<T>(k, dy + r * k, ydot + r * k);
  }

  template <class Net, class Layer>
  void activity_layer(const Net& net, const Layer& l, std::size_t i, std::size_t n, rng& gt, state<Net>& s) const {
    using T = typename Net::value_type;
    const std::size_t out = pnn::detail::pre_activation_size(l);  // the perturbed activities per sample
    const std::size_t K = params_.num_tangents;
    std::fill(s.delta.data(), s.delta.data() + n * out, T(0));
    for (std::size_t t = 0; t < K; ++t) {
      rng gk = gt.split(t).split(i);
      rng gu = gk.split(0);
      fill_normal<T>(gu, s.u.data(), n * out);
      output_tangent(l, s.u.data(), s.tr.a[i].data(), s.tr.h[i].data(), n, s.th.data());
      rng gp = gk.split(1);
      finish_tangent(net, i, n, gp, s);
      for (std::size_t r = 0; r < n; ++r)
        simd::axpy<T>(out, s.d.data()[r] / static_cast<T>(K), s.u.data() + r * out, s.delta.data() + r * out);
    }
    pnn::detail::layer_update(l, s.tr.input_of(i), s.delta.data(), n, T(1), s.grad[i]);
  }

  // ȧ_i += x_{i−1} V_iᵀ + v_b,i for the weight tangent of layer i (drawn into s.tangent[i]); for
  // a convolution every patch of x_{i−1} is a row.
  template <class Net, class Layer>
  static void add_weight_tangent(const Layer& l, std::size_t i, std::size_t n, rng& gk, state<Net>& s, bool add,
                                 bool draw = true) {
    using T = typename Net::value_type;
    auto& v = s.tangent[i];
    if (draw) {
      rng gw = gk.split(0);
      fill_normal<T>(gw, v.weight.data(), v.weight.size());
      rng gb = gk.split(1);
      fill_normal<T>(gb, v.bias.data(), v.bias.size());
    }
    const T* x = s.tr.input_of(i);
    std::size_t rows = n, in = l.in_size(), out = l.out_size();
    if constexpr (pnn::detail::is_convolution_v<Layer>) {
      auto& patches = pnn::detail::patch_scratch<T>();
      rows = n * l.positions();
      in = l.kernel_inputs();
      out = l.channels();
      patches.resize(rows * in);
      l.patches(x, n, patches.data());
      x = patches.data();
    }
    simd::gemm_nt<T>(rows, out, in, T(1), x, in, v.weight.data(), in, add ? T(1) : T(0), s.ta.data(), out);
    for (std::size_t r = 0; r < rows; ++r) simd::axpy<T>(out, T(1), v.bias.data(), s.ta.data() + r * out);
  }

  // Weight tangent on layer i only, through its local loss (or the layers above).
  template <class Net, class Layer>
  void weight_layer(const Net& net, const Layer& l, std::size_t i, std::size_t n, rng& gt, state<Net>& s) const {
    using T = typename Net::value_type;
    const std::size_t K = params_.num_tangents;
    for (std::size_t t = 0; t < K; ++t) {
      rng gk = gt.split(t).split(i);
      add_weight_tangent<Net>(l, i, n, gk, s, false);
      output_tangent(l, s.ta.data(), s.tr.a[i].data(), s.tr.h[i].data(), n, s.th.data());
      rng gp = gk.split(2);
      finish_tangent(net, i, n, gp, s);
      const T d = static_cast<T>(simd::sum<T>(n, s.d.data()) / static_cast<T>(K));
      simd::axpy<T>(s.grad[i].weight.size(), d, s.tangent[i].weight.data(), s.grad[i].weight.data());
      simd::axpy<T>(s.grad[i].bias.size(), d, s.tangent[i].bias.data(), s.grad[i].bias.data());
    }
  }

  // One tangent over all parameters: ȧ_i = ḣ_{i−1} W_iᵀ + x_{i−1} V_iᵀ + v_b,i; returns
  // d = Σ_n ∂L/∂y · ẏ (drawing the tangent into s.tangent when `draw`).
  template <class Net>
  static double joint_pass(const Net& net, std::size_t n, rng& gtt, state<Net>& s, bool draw) {
    using T = typename Net::value_type;
    const std::size_t k = net.output_size();
    net.for_each_layer([&](const auto& l, std::size_t i) {
      rng gk = gtt.split(i);
      if (i > 0) {
        rng gl = gk.split(2);
        read_tangent(l, s.th.data(), n, s.ta.data(), gl);
      }
      add_weight_tangent<Net>(l, i, n, gk, s, i > 0, draw);
      output_tangent(l, s.ta.data(), s.tr.a[i].data(), s.tr.h[i].data(), n, s.th.data());
    });
    return double(simd::dot<T>(n * k, s.dy.data(), s.th.data()));
  }

  template <class Net>
  void weight_joint(const Net& net, std::size_t n, rng& gt, state<Net>& s) const {
    using T = typename Net::value_type;
    const std::size_t K = params_.num_tangents;
    for (std::size_t t = 0; t < K; ++t) {
      rng gtt = gt.split(t);
      const T d = static_cast<T>(joint_pass(net, n, gtt, s, true) / double(K));
      for (std::size_t i = 0; i < Net::num_layers; ++i) {
        simd::axpy<T>(s.grad[i].weight.size(), d, s.tangent[i].weight.data(), s.grad[i].weight.data());
        simd::axpy<T>(s.grad[i].bias.size(), d, s.tangent[i].bias.data(), s.grad[i].bias.data());
      }
    }
  }

  params params_{};
};

}  // namespace pnn::learn
