// SPDX-License-Identifier: MIT
/// \file
/// \brief `learn::feedback_alignment` (Lillicrap et al. 2016) and its sign-symmetry variant
/// (Liao et al. 2016), with the feedback projection as a policy (`feedback::digital`,
/// `feedback::substrate<S, Noise>`).
///
/// FA replaces the transposed weights of the backward pass by fixed matrices `B_l` of the shape
/// of `W_lᵀ`: `δ_L = ∂L/∂a_L`, `δ_l = (B_{l+1} δ_{l+1}) ⊙ f′(a_l)`, `ĝ_W = δ_l h_{l−1}ᵀ`,
/// `ĝ_b = δ_l` (batch-averaged through the loss). The forward pass runs through each layer's
/// substrate and noise (`forward_trace`), the update is a batch of outer products (factored for
/// crossbars), and `W` is never read transposed: FA trains every substrate with a forward read.
/// The sign-symmetry variant uses `B_l = c·sign(W_l)ᵀ`, recomputed from the current (effective)
/// weights at every step. docs/rules.md, "Feedback alignment".
///
/// Scaling of `B` (our choice, documented): every entry has standard deviation
/// `gain · √(2 / (rows + cols))` — Glorot's scale for a matrix of `B`'s shape, which for FA is
/// exactly the scale `pnn::dense` draws `W` with (tanh, sigmoid, identity layers), so `Bᵀ δ` and
/// `Wᵀ δ` start with the same magnitude; a convolution's feedback kernel uses the convolution's
/// fans `√(2 / (k²·C_in + k²·C_out))`, the scale `pnn::conv2d` draws its kernel with. Uniform (default, `±gain·√(6/(rows+cols))`) or normal
/// entries; sign symmetry uses the same standard deviation as its constant `c`.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/backward.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/skeleton.hpp>
#include <pnn/nn/activation.hpp>
#include <pnn/nn/conv.hpp>
#include <pnn/nn/dense.hpp>
#include <pnn/nn/state.hpp>
#include <pnn/noise/none.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/digital.hpp>
#include <pnn/simd/gemm.hpp>
#include <pnn/simd/random.hpp>

namespace pnn::feedback {

/// Exact digital feedback projection: `out = δ Bᵀ` is one GEMM (the default policy).
struct digital {
  static constexpr const char* name = "digital";

  /// One feedback matrix `B` (rows × cols, row-major) and its projection.
  template <class T>
  class projection {
   public:
    using value_type = T;
    /// Takes the policy's run-time configuration (none for the digital projection).
    void configure(const digital&) noexcept {}
    /// Programs `B` (rows × cols, copied).
    void set(const T* b, std::size_t r, std::size_t c, rng&) {
      if (b_.shape()[0] != r || b_.shape()[1] != c) b_.resize({r, c});
      std::copy(b, b + r * c, b_.data());
    }
    /// `out (n × rows) = delta (n × cols) · Bᵀ`, i.e. `B δ` for every sample.
    void project(const T* delta, std::size_t n, T* out, rng&) const {
      simd::gemm_nt<T>(n, rows(), cols(), T(1), delta, cols(), b_.data(), cols(), T(0), out, rows());
    }
    [[nodiscard]] std::size_t rows() const noexcept { return b_.shape()[0]; }
    [[nodiscard]] std::size_t cols() const noexcept { return b_.shape()[1]; }
    /// The programmed `B` (rows × cols).
    [[nodiscard]] const T* matrix() const noexcept { return b_.data(); }
    /// Checkpoint contents (pnn/core/state_format.hpp): `B`.
    template <class V>
    void visit_state(V& v) {
      v("matrix", b_);
    }

   private:
    xt::xtensor<T, 2> b_{};
  };
};

/// Feedback projection computed by a physical tile: each `B` is programmed into one tile of
/// substrate `S` and `B δ` is that tile's forward read through noise policy `Noise` — how DFA's
/// random projection runs in hardware (an optical scattering medium or a crossbar).
/// \tparam S     any substrate with a forward read whose tiles accept `set_weights(w, b, rng&)`
/// \tparam Noise any noise policy (its input/output stages apply to every feedback read)
/// The tile draws its per-device state (`prepare`, noise `prepare`) once, when `B` is first
/// programmed for a shape; the physics parameters and the noise policy are run-time values.
template <pnn::substrate S, noise_policy Noise = noise::none>
struct substrate {
  static constexpr const char* name = "substrate";
  typename S::params physics{};  ///< applied with `set_params` where the tile has it
  Noise noise{};                 ///< the read noise of the feedback tiles

  template <class T>
  class projection {
    using layer_type = dense<dynamic, dynamic, S, Noise, act::identity>;
    using tile_type = typename layer_type::tile_type;
    static_assert(std::is_same_v<T, typename S::value_type>,
                  "feedback::substrate: the feedback substrate's value_type must be the network's");
    static_assert(requires(tile_type& t, const T* w, rng& g) { t.set_weights(w, w, g); },
                  "feedback::substrate: the substrate's tile must offer set_weights(w, b, rng&) to hold B");

   public:
    using value_type = T;
    /// Takes the policy's physics parameters and noise; the next `set` redraws the tile's
    /// per-device state for them.
    void configure(const substrate& p) {
      layer_.noise = p.noise;
      tile_hooks::configure(layer_.tile, p.physics);
      prepared_ = false;
    }
    /// Programs `B` (rows × cols) into the tile (in = cols, out = rows), zero bias.
    void set(const T* b, std::size_t r, std::size_t c, rng& g) {
      if (b_.shape()[0] != r || b_.shape()[1] != c || !prepared_) {
        rng gi = g.split(0);
        layer_.initialize(c, r, gi);  // shape and per-device state; weights overwritten below
        b_.resize({r, c});
        zero_.resize({r});
        zero_.fill(T(0));
        prepared_ = true;
      }
      std::copy(b, b + r * c, b_.data());
      rng gw = g.split(1);
      layer_.tile.set_weights(b_.data(), zero_.data(), gw);
    }
    /// `out (n × rows) ≈ delta (n × cols) · Bᵀ` as the tile reads it, with its noise.
    void project(const T* delta, std::size_t n, T* out, rng& g) const {
      T* s = nullptr;
      if constexpr (layer_type::has_input_noise) {
        static thread_local std::vector<T> scratch;  // per thread: const projections may run concurrently
        if (scratch.size() < n * cols()) scratch.resize(n * cols());
        s = scratch.data();
      }
      layer_.forward(delta, n, out, out, g, s);
    }
    [[nodiscard]] std::size_t rows() const noexcept { return b_.shape()[0]; }
    [[nodiscard]] std::size_t cols() const noexcept { return b_.shape()[1]; }
    /// The `B` that was programmed (the tile may realise it imperfectly).
    [[nodiscard]] const T* matrix() const noexcept { return b_.data(); }
    /// The tile holding `B` (for inspection).
    [[nodiscard]] const layer_type& layer() const noexcept { return layer_; }
    /// Checkpoint contents (pnn/core/state_format.hpp): `B` and the feedback tile's state.
    /// The tile's shape comes from `B`'s: a rule's `make_state(net)` and `kept_state_for(net)`
    /// program every projection for `net` first, so a load into them finds the shapes it needs.
    template <class V>
    void visit_state(V& v) {
      v("matrix", b_);
      v("prepared", prepared_);
      auto g = v.scope("tile");
      ::pnn::detail::visit_layer_state(layer_, v);
    }

   private:
    layer_type layer_{};
    xt::xtensor<T, 2> b_{};
    xt::xtensor<T, 1> zero_{};
    bool prepared_ = false;
  };
};

/// A feedback policy: for value type `T`, a `projection<T>` that is configured from the policy,
/// programmed with `B` and computes `δ Bᵀ`.
template <class F, class T>
concept policy = std::is_default_constructible_v<F> &&
                 requires(typename F::template projection<T>& p, const typename F::template projection<T>& cp,
                          const F& f, const T* b, T* out, std::size_t n, rng& g) {
                   p.configure(f);
                   p.set(b, n, n, g);
                   cp.project(b, n, out, g);
                   { cp.rows() } -> std::convertible_to<std::size_t>;
                   { cp.cols() } -> std::convertible_to<std::size_t>;
                   { cp.matrix() } -> std::convertible_to<const T*>;
                 };

static_assert(policy<digital, float> && policy<digital, double>);
static_assert(policy<substrate<pnn::physics::digital>, float>);
static_assert(policy<substrate<pnn::physics::basic_digital<double>>, double>);

}  // namespace pnn::feedback

namespace pnn::learn {

/// Where the feedback matrices come from.
enum class feedback_kind {
  random,        ///< fixed random `B`, drawn once per network shape from `feedback_seed`
  sign_symmetry  ///< `B_l = c·sign(W_l)ᵀ`, refreshed from the current weights every step (FA only)
};

/// Distribution of the entries of a random `B` (both with std `gain·√(2/(rows+cols))`).
enum class feedback_distribution { uniform, normal };

}  // namespace pnn::learn

namespace pnn::detail {

/// FA and DFA share everything but the backward walk; `Direct` selects DFA.
template <class Optimizer, class Feedback, bool Direct>
class feedback_rule : public learn::rule_skeleton<feedback_rule<Optimizer, Feedback, Direct>> {
  friend class learn::rule_skeleton<feedback_rule>;

  template <class Net>
  using projection_t = typename Feedback::template projection<typename Net::value_type>;

 public:
  static constexpr const char* name = Direct ? "direct_feedback_alignment" : "feedback_alignment";
  static constexpr bool factored_updates = true;
  /// The updates' inputs are the checked batch and the forward trace, unchanged until the step
  /// has programmed them (as backprop's).
  static constexpr bool lends_layer_inputs = true;

  /// Rule parameters. `feedback_gain` scales `B`'s standard deviation relative to Glorot's
  /// `√(2/(rows+cols))`; the same `feedback_seed` gives the same `B` for the same shape.
  struct params {
    Optimizer optimizer{};
    learn::feedback_kind feedback = learn::feedback_kind::random;
    learn::feedback_distribution distribution = learn::feedback_distribution::uniform;
    double feedback_gain = 1.0;
    std::uint64_t feedback_seed = 1;
    Feedback projection{};  ///< the feedback policy's run-time configuration
  };

  feedback_rule() = default;
  explicit feedback_rule(params p) : params_(std::move(p)) {}

  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }

  /// Per-network state: the feedback projections (drawn on first use for the network's shape),
  /// the forward trace, the estimate, the optimiser's state and scratch.
  template <class Net>
  struct state {
    static_assert(feedback::policy<Feedback, typename Net::value_type>,
                  "feedback_alignment: Feedback must be a feedback policy (feedback::digital, feedback::substrate<S, N>)");
    trace<Net> tr{};
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    xt::xtensor<typename Net::value_type, 2> dy{}, delta{}, next{}, w{}, b{}, error{};
    std::array<projection_t<Net>, Net::num_layers> fb{};
    /// Checkpoint contents (pnn/core/state_format.hpp): the optimiser's state and the feedback
    /// matrices (and their devices, on a feedback substrate).
    template <class V>
    void visit_state(V& vis) {
      {
        auto g = vis.scope("optimizer");
        opt.visit_state(vis);
      }
      for (std::size_t l = 0; l < fb.size(); ++l) {
        auto g = vis.scope("feedback", l);
        fb[l].visit_state(vis);
      }
    }
  };

  /// True when layer `l` of an `L`-layer network has a feedback matrix: FA feeds layer `l`'s
  /// delta down through `B_l` (`l ≥ 1`); DFA projects the output error into layer `l < L−1`.
  [[nodiscard]] static constexpr bool has_feedback(std::size_t l, std::size_t num_layers) noexcept {
    return Direct ? l + 1 < num_layers : (l >= 1 && l < num_layers);
  }

  /// Shape (rows, cols) of layer `l`'s `B`: FA `In_l × Out_l` (the shape of `W_lᵀ`; for a
  /// convolution the kernel matrix's transpose, one feedback kernel shared over positions as
  /// BioTorch does), DFA `Out_l × n_out` (a convolution's flattened output).
  template <class Net>
  [[nodiscard]] static std::pair<std::size_t, std::size_t> feedback_shape(const Net& net, std::size_t l) {
    std::pair<std::size_t, std::size_t> r{0, 0};
    net.for_each_layer([&](const auto& ly, std::size_t i) {
      if (i == l)
        r = Direct ? std::pair{ly.out_size(), net.output_size()} : std::pair{ly.tile.in_size(), ly.tile.out_size()};
    });
    return r;
  }

  /// Layer `l`'s feedback matrix for `net` (rows × cols, see `feedback_shape`), drawn first if
  /// it was not yet. \pre `has_feedback(l, Net::num_layers)`.
  template <class Net>
  [[nodiscard]] xt::xtensor<typename Net::value_type, 2> feedback_matrix(const Net& net, std::size_t l) {
    return feedback_matrix(net, this->template kept_state<Net>(), l);
  }
  /// As above, for a caller-owned state (`make_state`).
  template <class Net>
  [[nodiscard]] xt::xtensor<typename Net::value_type, 2> feedback_matrix(const Net& net, state<Net>& s, std::size_t l) {
    check_params();
    check_feedback_layer<Net>(l, "feedback_matrix");
    ensure_feedback(net, s);
    const auto& p = s.fb[l];
    xt::xtensor<typename Net::value_type, 2> m = xt::xtensor<typename Net::value_type, 2>::from_shape({p.rows(), p.cols()});
    std::copy(p.matrix(), p.matrix() + m.size(), m.data());
    return m;
  }

  /// Sets layer `l`'s feedback matrix explicitly (theory checks: FA with `B = Wᵀ` is backprop).
  /// It stays until set again or the network's shape changes.
  /// \pre `has_feedback(l, Net::num_layers)`, `b` has `feedback_shape(net, l)` and is finite,
  /// the rule uses random (not sign-symmetric) feedback.
  template <class Net, class E>
  void set_feedback(const Net& net, std::size_t l, const xt::xexpression<E>& b) {
    set_feedback(net, this->template kept_state<Net>(), l, b);
  }
  /// As above, for a caller-owned state (`make_state`).
  template <class Net, class E>
  void set_feedback(const Net& net, state<Net>& s, std::size_t l, const xt::xexpression<E>& b) {
    using T = typename Net::value_type;
    check_params();
    check_feedback_layer<Net>(l, "set_feedback");
    if (params_.feedback == learn::feedback_kind::sign_symmetry)
      throw_error(std::string(name) + ": set_feedback: the sign-symmetry variant derives B from W at every step");
    const auto& e = b.derived_cast();
    const auto [rows, cols] = feedback_shape(net, l);
    if (e.dimension() != 2 || e.shape()[0] != rows || e.shape()[1] != cols)
      throw_error(std::string(name) + ": set_feedback: layer " + std::to_string(l) + " needs a " +
                  std::to_string(rows) + " x " + std::to_string(cols) + " matrix");
    xt::xtensor<T, 2> m = xt::cast<T>(e);
    require_finite(m.data(), m.size(), (std::string(name) + ": set_feedback: B").c_str());
    s.fb[l].configure(params_.projection);
    rng g = feedback_rng(l);
    s.fb[l].set(m.data(), rows, cols, g);
  }

 private:
  template <class Net>
  void validate(const Net&) const {
    check_params();
  }

  void check_params() const {
    if (!(std::isfinite(params_.feedback_gain) && params_.feedback_gain > 0))
      throw_error(std::string(name) + ": feedback_gain must be positive and finite, got " +
                  std::to_string(params_.feedback_gain));
    if (Direct && params_.feedback == learn::feedback_kind::sign_symmetry)
      throw_error(std::string(name) +
                  ": sign-symmetric feedback has no meaning for DFA (B_l maps the output error, not layer l+1's "
                  "delta); use learn::feedback_alignment");
  }

  template <class Net>
  static void check_feedback_layer(std::size_t l, const char* what) {
    if (!has_feedback(l, Net::num_layers))
      throw_error(std::string(name) + ": " + what + ": layer " + std::to_string(l) + " of " +
                  std::to_string(Net::num_layers) + " has no feedback matrix" +
                  (Direct ? " (DFA: only hidden layers 0 .. L-2)" : " (FA: layers 1 .. L-1)"));
  }

  [[nodiscard]] rng feedback_rng(std::size_t l) const noexcept {
    return rng(params_.feedback_seed, 0xfeedbac).split(l);
  }

  static double glorot_sd(std::size_t rows, std::size_t cols) { return std::sqrt(2.0 / double(rows + cols)); }

  // What `make_state` and `kept_state_for` call: draws and programs every B for `net`, so a
  // fresh state has the shapes a checkpoint holds (a load into it then replaces them).
  template <class Net>
  void prepare_state(const Net& net, state<Net>& s) const {
    ensure_feedback(net, s);
  }

  // Draws (or, for sign symmetry, recomputes) every feedback matrix whose shape does not match
  // `net` yet. Randomness depends on (feedback_seed, layer) only.
  template <class Net>
  void ensure_feedback(const Net& net, state<Net>& s) const {
    using T = typename Net::value_type;
    const bool sign = params_.feedback == learn::feedback_kind::sign_symmetry;
    net.for_each_layer([&](const auto& ly, std::size_t l) {
      if (!has_feedback(l, Net::num_layers)) return;
      const auto [rows, cols] = feedback_shape(net, l);
      auto& p = s.fb[l];
      const bool fresh = p.rows() != rows || p.cols() != cols;
      if (!sign && !fresh) return;
      // A convolution's kernel is drawn with the convolution's fans (k²·C_in, k²·C_out): FA's
      // feedback kernel gets the same scale, as a dense layer's B gets its W's.
      using layer_t = std::remove_cvref_t<decltype(ly)>;
      double sd = params_.feedback_gain * glorot_sd(rows, cols);
      if constexpr (is_conv_v<layer_t>)
        if (!Direct) {
          const std::size_t k2 = ly.geometry().kernel * ly.geometry().kernel;
          sd = params_.feedback_gain * glorot_sd(ly.kernel_inputs(), k2 * ly.channels());
        }
      detail::resize_if_needed(s.b, rows, cols);
      rng g = feedback_rng(l);
      if (sign) {
        sign_of_transpose(ly, static_cast<T>(sd), s.w, s.b);
      } else if (params_.distribution == learn::feedback_distribution::uniform) {
        const T lim = static_cast<T>(std::sqrt(3.0) * sd);
        rng gd = g.split(2);
        fill_uniform<T>(gd, s.b.data(), s.b.size(), -lim, lim);
      } else {
        rng gd = g.split(2);
        fill_normal<T>(gd, s.b.data(), s.b.size(), T(0), static_cast<T>(sd));
      }
      if (fresh) p.configure(params_.projection);
      p.set(s.b.data(), rows, cols, g);
    });
  }

  // b (In × Out) = c · sign(W)ᵀ from the weights the tile currently computes with.
  template <class Layer, class T>
  static void sign_of_transpose(const Layer& ly, T c, xt::xtensor<T, 2>& w, xt::xtensor<T, 2>& b) {
    const std::size_t in = ly.tile.in_size(), out = ly.tile.out_size();
    detail::resize_if_needed(w, out, in);
    ly.tile.effective_weights(w.data());  // part of every substrate's protocol
    const T* wp = w.data();
    for (std::size_t o = 0; o < out; ++o)
      for (std::size_t i = 0; i < in; ++i) {
        const T v = wp[o * in + i];
        b.data()[i * out + o] = v > T(0) ? c : (v < T(0) ? -c : T(0));
      }
  }

  template <class Net, class Loss>
  step_result run(Net& net, const checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s, rule_pass) {
    using T = typename Net::value_type;
    ensure_feedback(net, s);
    rng gf = g.split(1);
    forward_trace(net, b.x, b.n, s.tr, gf);
    require_finite_forward(s.tr, name);
    const std::size_t k = net.output_size();
    resize_if_needed(s.dy, b.n, k);
    step_result r;
    r.loss = double(loss.gradient(s.tr.output().data(), b.target, b.n, k, s.dy.data()));
    r.correct = count_correct<T>(s.tr.output().data(), b.target, b.n, k);
    r.count = b.n;
    s.grad.ensure_shape(net);
    rng gb = g.split(2);
    // The chain rule with the error carried down by the feedback projections: FA projects
    // layer i's delta through B_i; DFA projects the output layer's delta (kept from the top
    // layer) through B_{i−1} straight into layer i−1.
    chain_rule_backward(net, s.tr, s.dy, s.delta, s.next, s.grad,
                        [&](auto ic, const auto& ly, const T* d, std::size_t n, T* down) {
                          constexpr std::size_t i = decltype(ic)::value;
                          if constexpr (Direct) {
                            if constexpr (i + 1 == Net::num_layers) {
                              resize_if_needed(s.error, n, net.output_size());
                              std::copy(d, d + s.error.size(), s.error.data());
                            }
                            rng gl = gb.split(i - 1);
                            s.fb[i - 1].project(s.error.data(), n, down, gl);
                          } else if constexpr (is_conv_v<std::remove_cvref_t<decltype(ly)>>) {
                            // One feedback kernel for every position, like the forward kernel.
                            rng gl = gb.split(i);
                            ly.carry_through_patches(d, n, down, [&](const T* dp, std::size_t rows, T* out) {
                              s.fb[i].project(dp, rows, out, gl);
                            });
                          } else {
                            (void)ly;
                            rng gl = gb.split(i);
                            s.fb[i].project(d, n, down, gl);
                          }
                        });
    return r;
  }

  params params_{};
};

}  // namespace pnn::detail

namespace pnn::learn {

/// Feedback alignment (Lillicrap et al., Nat. Commun. 2016): backprop with the transposed
/// weights replaced by fixed random matrices `B_l` (shape of `W_lᵀ`), or by `c·sign(W_l)ᵀ` with
/// `.feedback = feedback_kind::sign_symmetry` (Liao, Leibo & Poggio 2016). The output layer's
/// update is backprop's. Needs only forward reads of the substrates; the projection `B δ` runs
/// through the `Feedback` policy (exact GEMM by default).
///
/// ```cpp
/// learn::feedback_alignment<optim::momentum> rule{{.optimizer = {.learning_rate = 0.01f}, .feedback_seed = 7}};
/// ```
/// The feedback matrices are drawn on the first `estimate`/`step` for the network's shape and
/// kept with the rule's per-network state (for the network type it was last used with);
/// `feedback_matrix(net, l)` reads and `set_feedback(net, l, B)` replaces them. The feedback
/// policy's configuration (`params.projection`) is applied when a `B` is drawn or set.
template <class Optimizer = optim::sgd, class Feedback = feedback::digital>
class feedback_alignment : public detail::feedback_rule<Optimizer, Feedback, false> {
  using base = detail::feedback_rule<Optimizer, Feedback, false>;

 public:
  using params = typename base::params;
  using base::base;
};

}  // namespace pnn::learn
