// SPDX-License-Identifier: MIT
/// \file
/// \brief The layered network read as an energy model, and its relaxation: what the energy-based
/// rules (`equilibrium_propagation`, `coupled_learning`) share.
///
/// Energy (docs/rules.md): with states `s_l` of the hard-sigmoid layers (`ρ(s) = clip(s, 0, 1)`)
/// and the input `x` clamped,
/// `E(s) = ½ Σ_l ‖s_l‖² − Σ_l ρ(s_l)·(W_l ρ(s_{l−1}) + b_l)`, `s_{−1} = x`, `F = E + β C`.
/// The states of hard-sigmoid units are kept in the box `[0, 1]` (where `ρ(s) = s`), so the
/// gradient dynamics is projected gradient descent `s ← clip(s − ε ∂F/∂s, 0, 1)` (Scellier &
/// Bengio clip after each step) and its fixed points are those of the fixed-point form
/// `s_l ← ρ(W_l ρ(s_{l−1}) + W_{l+1}ᵀ ρ(s_{l+1}) + b_l − β ∂C/∂s_l)`, which is the gradient form
/// with `ε = 1`.
///
/// Order of the updates within a step (`ep_update_order`): *synchronous*, every layer from the
/// previous step's states (the prototypical form), or *alternating*, the even-indexed layers
/// first and then the odd-indexed ones from the new even states (Scellier et al. 2023's
/// asynchronous updates; red–black Gauss–Seidel). A layered network is bipartite (layer `l`
/// couples only to `l ± 1`), so the synchronous iteration is two interleaved copies of the
/// alternating one: T alternating steps reach the state of 2T synchronous ones at the cost of
/// T. In the fixed-point form each alternating half-step is the exact minimiser of `E` over
/// the layers it updates (their energy is a separable box-constrained quadratic), so the free
/// energy never increases.
///
/// Every sample relaxes on its own: with a tolerance, a sample stops once its own residual is
/// below it (so the batch's root-mean residual is then below it too), and the phase ends when
/// every sample has stopped or after its step budget. With state noise, the states a phase
/// hands on can be time averages over its last steps (`relax_options::average`): each neuron
/// low-pass filters its own state, as an integrating read-out on hardware does.
///
/// Two kinds of output layer are accepted (checked at compile time, see `energy_network`):
/// * `act::hard_sigmoid`: the output is a state of the energy model and the cost `C` (the
///   loss passed to the rule, e.g. `loss::mse` → `½‖s_out − y‖²`) acts on it directly;
/// * `act::identity`: a *readout* outside the energy model (the cross-entropy readout of
///   Laborieux et al. 2021): `ŷ = W_L s_{L−1} + b_L`, `C = loss(ŷ, y)`, nudging the last hidden
///   layer by `−β W_Lᵀ ∂C/∂ŷ`.
/// Every other layer must be `act::hard_sigmoid`; every layer above the first must be readable
/// transposed (`transposable_tile`): the relaxation drives each layer with its substrate's
/// forward read `W ρ(s)` and transposed read `Wᵀ ρ(s)`, through the layer's noise policy (input
/// stage on the driving values, output stage on the read-out, in both directions), so the
/// relaxation runs on a noisy crossbar as it would on hardware. The input drive `W_0 x + b_0` is
/// read once per batch.
///
/// A state layer may be a convolution (`conv2d`, Laborieux et al. 2021's convolutional EP): its
/// states are the pooled image `s_l` and its term of the energy is `−ρ(s_l)·P(K_l ∗ ρ(s_{l−1}) +
/// b_l)`, the pooling `P` taken *before* the nonlinearity. The drive up is `P(K ∗ ρ(s) + b)`
/// (`conv2d::pooled_read`), the drive down is the gradient of that term, `K_lᵀ ∗ P*(ρ(s_l))`: the
/// transposed read of every patch after the pooling's adjoint `P*` (`conv2d::unpool`), which
/// spreads a state over its window (average) or hands it to the window's maximum (max pooling,
/// where the term is piecewise bilinear and `P*` is its exact gradient between ties). The
/// contrastive update of `K_l` is then one outer product per patch of the routed states and the
/// patches, each phase routed by the maxima of its own states. For a nondecreasing `f` the
/// max-pooled drive gives the same value as the feed-forward layer's `pool(f(a))`.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/nn/activation.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/nn/loss.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/simd/arch.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/gemm.hpp>
#include <pnn/simd/random.hpp>
#include <pnn/simd/relax.hpp>

namespace pnn::learn {
/// How a relaxation moves the states.
enum class ep_dynamics {
  fixed_point,  ///< `s ← ρ(drive)`: the gradient form with ε = 1
  gradient      ///< projected gradient descent `s ← clip(s − ε ∂F/∂s, 0, 1)`
};

/// The order of the layer updates within one relaxation step (see the file comment).
enum class ep_update_order {
  synchronous,  ///< every layer from the previous step's states
  alternating   ///< even-indexed layers first, then odd-indexed ones from the new even states
};

/// What the last relaxations of an energy-based rule did: steps taken (by the slowest sample),
/// the fixed-point residual `‖s − ρ(s − ∂F/∂s)‖` (root mean over the batch of each sample's
/// Euclidean norm at its last step, measured at the state that step started from; alternating:
/// each layer's part at the state its half-step started from) and the energy `F` (batch mean)
/// at the final state.
struct relaxation_report {
  std::size_t free_steps = 0;
  std::size_t nudged_steps = 0;
  double free_residual = 0;
  double nudged_residual = 0;
  double free_energy = 0;
  double nudged_energy = 0;
  std::vector<double> free_energy_trace{};    ///< `F` after each free step, when recorded
  std::vector<double> nudged_energy_trace{};  ///< `F` after each nudged step, when recorded
};

namespace energy_detail {

/// Checkpoint contents of an energy-based rule's state (EP, coupled learning): the optimiser's
/// state and the free phase kept for a persistent start (pnn/core/state_format.hpp).
template <class State, class V>
void visit_rule_state(State& s, V& vis) {
  {
    auto g = vis.scope("optimizer");
    s.opt.visit_state(vis);
  }
  vis("have_free", s.have_free);
  for (std::size_t l = 0; l < s.free.size(); ++l) {
    auto g = vis.scope("free", l);
    vis("state", s.free[l]);
  }
}

template <class Net>
struct ep_traits {
  static constexpr bool is_network = false;
};

template <class... L>
struct ep_traits<network<L...>> {
  static constexpr bool is_network = true;
  using tuple = std::tuple<L...>;
  static constexpr std::size_t num_layers = sizeof...(L);
  using last = std::tuple_element_t<num_layers - 1, tuple>;
  static constexpr bool output_is_state = std::is_same_v<typename last::activation_type, act::hard_sigmoid>;
  static constexpr bool output_is_readout = std::is_same_v<typename last::activation_type, act::identity>;
  /// Layers whose outputs are states of the energy model.
  static constexpr std::size_t num_states = output_is_state ? num_layers : num_layers - 1;

  template <std::size_t... I>
  static constexpr bool hidden_ok(std::index_sequence<I...>) {
    return ((I + 1 == num_layers ||
             std::is_same_v<typename std::tuple_element_t<I, tuple>::activation_type, act::hard_sigmoid>) &&
            ...);
  }
  template <std::size_t... I>
  static constexpr bool transposable_ok(std::index_sequence<I...>) {
    return ((I == 0 || transposable_tile<typename std::tuple_element_t<I, tuple>::tile_type>) && ...);
  }
  static constexpr bool hidden_hard_sigmoid = hidden_ok(std::index_sequence_for<L...>{});
  static constexpr bool output_ok = output_is_state || (output_is_readout && num_layers >= 2);
  /// A readout is a dense layer: a convolution's outputs are states of the energy model.
  static constexpr bool readout_dense = output_is_state || !pnn::detail::is_convolution_v<last>;
  /// Some layer is a convolution (`conv2d`): its drive is pooled before the nonlinearity.
  static constexpr bool has_convolution = (pnn::detail::is_convolution_v<L> || ...);
  static constexpr bool transposable = transposable_ok(std::index_sequence_for<L...>{});
};

}  // namespace energy_detail

/// A `network` that energy-based rules can read as an energy model: every layer but the last is
/// `act::hard_sigmoid`, the last is `act::hard_sigmoid` (an output state) or `act::identity` (a
/// readout, with at least one hidden layer), and every layer above the first can be read
/// transposed.
template <class Net>
concept energy_network = energy_detail::ep_traits<Net>::is_network && energy_detail::ep_traits<Net>::hidden_hard_sigmoid &&
                         energy_detail::ep_traits<Net>::output_ok && energy_detail::ep_traits<Net>::transposable &&
                         energy_detail::ep_traits<Net>::readout_dense;

namespace energy_detail {

/// Spells out which `energy_network` condition `Net` misses, one readable message each.
template <class Net>
constexpr void require_energy_network() {
  using tr = ep_traits<Net>;
  static_assert(tr::is_network, "energy-based rules (equilibrium_propagation, coupled_learning) need a pnn::network");
  if constexpr (tr::is_network) {
    static_assert(tr::hidden_hard_sigmoid,
                  "energy-based rules (equilibrium_propagation, coupled_learning) need act::hard_sigmoid on every "
                  "layer but the last: the energy model's neurons are ρ(s) = clip(s, 0, 1)");
    static_assert(tr::output_ok,
                  "energy-based rules need the last layer to be act::hard_sigmoid (an output state of the energy "
                  "model) or act::identity (a readout above at least one hard_sigmoid layer)");
    static_assert(tr::readout_dense,
                  "energy-based rules read a convolution's outputs as states of the energy model: the identity "
                  "readout above them must be a pnn::dense layer");
    static_assert(tr::transposable,
                  "energy-based rules relax the network with the transposed read W^T rho(s) of every layer above "
                  "the first: their substrate's tile must offer read_transposed (pnn::transposable_tile)");
  }
}

/// A layer whose forward read is a deterministic function of its input (exact digital tile, no
/// noise stage): a read taken from the current states can be reused instead of read again.
template <class Layer>
inline constexpr bool deterministic_read =
    tile_hooks::reads_exactly<typename Layer::tile_type> && !Layer::has_input_noise && !Layer::has_output_noise;

/// Which nudge a relaxation applies.
enum class nudge_kind {
  none,   ///< free phase, β = 0
  cost,   ///< EP: `F = E + β C`
  clamp   ///< coupled learning: the output state is held where it was set
};

/// Options of one relaxation.
struct relax_options {
  std::size_t steps = 0;     ///< most steps; each sample may stop earlier on `tolerance`
  double epsilon = 1;        ///< step of the gradient dynamics
  bool fixed_point = true;   ///< fixed-point form instead of the gradient dynamics
  bool alternating = false;  ///< even layers first, then odd ones (else synchronous)
  double tolerance = 0;      ///< a sample stops once its residual is below it (0: never)
  double state_noise = 0;    ///< sd of Gaussian noise on every drive at every step
  std::size_t average = 1;   ///< hand on the mean state over the last `average` steps
  bool record = false;       ///< record `F` after every step
};

/// Outcome of one relaxation.
struct relax_outcome {
  std::size_t steps = 0;
  double residual = 0;
  double energy = 0;
  std::vector<double> trace{};
};

/// The relaxation engine shared by the energy-based rules: buffers for one network type and
/// the free, nudged and clamped phases, all on whole batches through the substrates' reads.
template <class Net>
class energy_relaxation {
 public:
  using T = typename Net::value_type;
  using traits = ep_traits<Net>;
  static constexpr std::size_t L = Net::num_layers;
  static constexpr std::size_t S = traits::num_states;
  static constexpr bool readout = !traits::output_is_state;
  using matrix = xt::xtensor<T, 2>;

  /// Reads the clamped input's drive `W_0 x + b_0` once for the batch.
  void begin_batch(const Net& net, const T* x, std::size_t n, rng& g) {
    n_ = n;
    x_ = x;
    const auto& l0 = layer<0>(net);
    pnn::detail::resize_if_needed(drive0_, n, l0.out_size());
    rng g0 = g.split(0xd1);
    drive_forward(l0, 0, x, n, drive0_.data(), g0);
    if constexpr (!pnn::detail::is_convolution_v<std::remove_cvref_t<decltype(l0)>>)
      simd::bias_map<T>(n, l0.out_size(), drive0_.data(), l0.out_size(), l0.tile.bias_data(), act::identity{});
  }

  [[nodiscard]] std::size_t batch() const noexcept { return n_; }
  [[nodiscard]] const T* input() const noexcept { return x_; }

  /// Shapes `s[l]` (l < S) to `rows × width_l` and zeroes it.
  void zero_states(const Net& net, std::array<matrix, L>& s, std::size_t rows) const {
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i < S) {
        pnn::detail::resize_if_needed(s[i], rows, l.out_size());
        s[i].fill(T(0));
      }
    });
  }

  /// Relaxes `s` (rows = halves · n; half h nudged by `betas[h]`) for up to `o.steps` steps.
  /// With `nudge_kind::clamp` the output state is held as given. With `mean`, its rows
  /// [0, m) receive the states averaged over the last `o.average` steps of the budget (a
  /// sample that stopped early contributes its final state to the steps it skipped).
  template <class Loss>
  relax_outcome relax(const Net& net, std::array<matrix, L>& s, const std::vector<double>& betas, nudge_kind kind,
                      const relax_options& o, const Loss& loss, const T* target, rng& g, const char* rule,
                      const char* phase, std::array<matrix, L>* mean = nullptr) {
    const std::size_t n = n_, halves = betas.size(), m = n * halves;
    shape_buffers(net, m);
    relax_outcome out;
    const bool nudging = kind == nudge_kind::cost;
    const std::size_t passes = o.alternating ? 2 : 1;
    row_r2_.assign(m, 0.0);
    last_r2_.assign(m, 0.0);
    active_.assign(m, 1);
    std::size_t running = m;
    const double tol2 = o.tolerance * o.tolerance;
    const std::size_t window = std::max<std::size_t>(1, std::min(o.average, o.steps));
    const std::size_t first_averaged = o.steps - window;
    std::size_t averaged = 0;
    if (mean != nullptr) {
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i >= S) return;
        grow((*mean)[i], m, l.out_size());
        std::fill((*mean)[i].data(), (*mean)[i].data() + m * l.out_size(), T(0));
      });
    }
    if constexpr (traits::has_convolution) {
      // Alternating: a layer's state may be driven back through a max-pooling convolution
      // above it before that convolution has read the current states; record its windows'
      // maxima first.
      if (o.alternating)
        net.for_each_layer([&](const auto& l, std::size_t i) {
          using layer_t = std::remove_cvref_t<decltype(l)>;
          if constexpr (max_pooling<layer_t>)
            if (i >= 1 && i < S) {
              rng gp = g.split(0xa9 + i);
              drive_forward(l, i, s[i - 1].data(), m, fwd_[i].data(), gp);
            }
        });
    }
    for (std::size_t step = 0; step < o.steps; ++step) {
      rng gs = g.split(step);
      std::fill(row_r2_.begin(), row_r2_.end(), 0.0);
      double bad = 0;
      for (std::size_t pass = 0; pass < passes; ++pass) {
        // Synchronous: one pass, every layer from the previous step's states. Alternating:
        // pass 0 updates the even layers, pass 1 the odd ones from the new even states. Each
        // read happens once per step either way, with the same stream.
        auto updated = [&](std::size_t i) { return passes == 1 || i % 2 == pass; };
        net.for_each_layer([&](const auto& l, std::size_t i) {
          if (i >= 1 && i < S) {
            if (updated(i)) {
              rng gf = gs.split(4 * i);
              drive_forward(l, i, s[i - 1].data(), m, fwd_[i].data(), gf);
            }
            if (updated(i - 1)) {
              rng gb = gs.split(4 * i + 1);
              drive_backward(l, i, s[i].data(), m, back_[i - 1].data(), gb);
            }
          }
          if constexpr (readout) {
            if (i == L - 1 && nudging && updated(S - 1)) {
              rng gf = gs.split(4 * i);
              readout_forward(l, s[S - 1].data(), m, gf);
              for (std::size_t h = 0; h < halves; ++h)
                loss.gradient(yhat_.data() + h * n * l.out_size(), target, n, l.out_size(),
                              dy_.data() + h * n * l.out_size());
              rng gb = gs.split(4 * i + 1);
              read_backward(l, dy_.data(), m, nudge_.data(), gb);
            }
          }
        });
        if constexpr (!readout) {
          if (nudging && updated(S - 1)) {
            const std::size_t k = net.output_size();
            for (std::size_t h = 0; h < halves; ++h)
              loss.gradient(s[S - 1].data() + h * n * k, target, n, k, nudge_.data() + h * n * k);
          }
        }
        net.for_each_layer([&](const auto& l, std::size_t i) {
          if (i >= S || !updated(i)) return;
          if (kind == nudge_kind::clamp && i == S - 1) return;
          const std::size_t w = l.out_size();
          T* noise = nullptr;
          if (o.state_noise > 0) {
            rng gn = gs.split(4 * i + 2);
            fill_normal(gn, noise_.data(), m * w, T(0), static_cast<T>(o.state_noise));
            noise = noise_.data();
          }
          const T* bias = i == 0 ? nullptr : state_bias(l);
          for (std::size_t h = 0; h < halves; ++h) {
            const std::size_t off = h * n * w;
            const T* base = i == 0 ? drive0_.data() : fwd_[i].data() + off;
            const T* extra = nullptr;
            T c = T(1);
            if (i + 1 < S) {
              extra = back_[i].data() + off;
            } else if (nudging) {
              extra = nudge_.data() + off;
              c = static_cast<T>(-betas[h] * double(n));  // per-sample ∂C/∂s from the batch-mean gradient
            }
            simd::relax_rows_dispatch<T>(extra != nullptr, noise != nullptr, o.fixed_point, n, w, s[i].data() + off, base,
                                   bias, extra, c, noise == nullptr ? nullptr : noise + off,
                                   static_cast<T>(o.epsilon), active_.data() + h * n, row_r2_.data() + h * n, bad);
          }
        });
      }
      double r2 = 0;
      for (std::size_t r = 0; r < m; ++r) r2 += row_r2_[r];
      if (!std::isfinite(r2) || !std::isfinite(bad) || bad != 0)
        throw_error(std::string(rule) + ": the " + phase + " phase diverged at step " + std::to_string(step + 1) +
                    " (non-finite drive); the network was left unchanged");
      out.steps = step + 1;
      for (std::size_t r = 0; r < m; ++r) {
        if (active_[r] == 0) continue;
        last_r2_[r] = row_r2_[r];
        if (tol2 > 0 && row_r2_[r] < tol2) {
          active_[r] = 0;
          --running;
        }
      }
      if (mean != nullptr && step >= first_averaged) {
        accumulate_states(net, s, *mean, m, T(1));
        ++averaged;
      }
      if (o.record) out.trace.push_back(energy(net, s, betas, kind, loss, target, gs.split(0xe7), o.alternating));
      if (running == 0) break;
    }
    if (mean != nullptr) {
      // The steps a stopped phase skipped would have left its states where they are.
      if (averaged < window) accumulate_states(net, s, *mean, m, static_cast<T>(window - averaged));
      const T inv = static_cast<T>(1.0 / double(window));
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i < S) simd::scale<T>(m * l.out_size(), inv, (*mean)[i].data());
      });
    }
    double r2 = 0;
    for (std::size_t r = 0; r < m; ++r) r2 += last_r2_[r];
    out.residual = std::sqrt(r2 / double(m));
    out.energy = o.record && !out.trace.empty() ? out.trace.back()
                                                : energy(net, s, betas, kind, loss, target, g.split(0xe7e7), o.alternating);
    if (!std::isfinite(out.energy))
      throw_error(std::string(rule) + ": the " + phase + " phase diverged (non-finite energy); the network was left "
                                                         "unchanged");
    return out;
  }

  /// Holomorphic relaxation of complex states `zr + i zi` (rows = N · n, block h nudged by
  /// `β_h = br[h] + i bi[h]`) under the MSE cost, the hard sigmoid continued by its active branch.
  void relax_complex(const Net& net, std::array<matrix, L>& zr, std::array<matrix, L>& zi, const std::vector<double>& br,
                     const std::vector<double>& bi, const relax_options& o, const T* target, rng& g, const char* rule,
                     relax_outcome& out) {
    if constexpr (traits::has_convolution)
      throw_error(std::string(rule) + ": the holomorphic estimator does not run on convolutional energy networks "
                                      "(a max-pooled drive has no complex continuation); use the centered estimator");
    const std::size_t n = n_, halves = br.size(), m = n * halves;
    shape_buffers(net, m);
    grow_all(net, m);
    for (std::size_t step = 0; step < o.steps; ++step) {
      rng gs = g.split(step);
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i >= 1 && i < S) {
          rng gf = gs.split(4 * i), gb = gs.split(4 * i + 1);
          read_forward(l, zr[i - 1].data(), m, fwd_[i].data(), gf);
          read_forward(l, zi[i - 1].data(), m, fwd_im_[i].data(), gf);
          read_backward(l, zr[i].data(), m, back_[i - 1].data(), gb);
          read_backward(l, zi[i].data(), m, back_im_[i - 1].data(), gb);
        }
        if constexpr (readout) {
          if (i == L - 1) {
            const std::size_t k = l.out_size();
            rng gf = gs.split(4 * i), gb = gs.split(4 * i + 1);
            readout_forward(l, zr[S - 1].data(), m, gf);
            grow(dy_im_, m, k);
            read_forward(l, zi[S - 1].data(), m, dy_im_.data(), gf);
            for (std::size_t r = 0; r < m; ++r)
              for (std::size_t j = 0; j < k; ++j) dy_(r, j) = yhat_(r, j) - target[(r % n) * k + j];
            read_backward(l, dy_.data(), m, nudge_.data(), gb);
            read_backward(l, dy_im_.data(), m, nudge_im_.data(), gb);
          }
        }
      });
      if constexpr (!readout) {
        const std::size_t k = net.output_size();
        for (std::size_t r = 0; r < m; ++r)
          for (std::size_t j = 0; j < k; ++j) {
            nudge_(r, j) = zr[S - 1](r, j) - target[(r % n) * k + j];
            nudge_im_(r, j) = zi[S - 1](r, j);
          }
      }
      double r2 = 0, bad = 0;
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i >= S) return;
        const std::size_t w = l.out_size();
        const T* bias = l.tile.bias_data();
        const T eps = static_cast<T>(o.epsilon);
        for (std::size_t r = 0; r < m; ++r) {
          const std::size_t h = r / n;
          const T bre = static_cast<T>(br[h]), bim = static_cast<T>(bi[h]);
          for (std::size_t j = 0; j < w; ++j) {
            T dr = i == 0 ? drive0_(r % n, j) : fwd_[i](r, j) + bias[j];
            T di = i == 0 ? T(0) : fwd_im_[i](r, j);
            if (i + 1 < S) {
              dr += back_[i](r, j);
              di += back_im_[i](r, j);
            } else {  // −β ∂C/∂s with complex β and per-sample MSE gradient
              const T er = nudge_(r, j), ei = nudge_im_(r, j);
              dr -= bre * er - bim * ei;
              di -= bre * ei + bim * er;
            }
            bad += double(dr - dr) + double(di - di);
            T& xr = zr[i](r, j);
            T& xi = zi[i](r, j);
            T tr = dr, ti = di;
            if (!(tr > T(0) && tr < T(1))) {
              tr = tr <= T(0) ? T(0) : T(1);
              ti = T(0);
            }
            r2 += double((xr - tr) * (xr - tr) + (xi - ti) * (xi - ti));
            T ur = xr + eps * (dr - xr), ui = xi + eps * (di - xi);
            if (o.fixed_point) {
              ur = dr;
              ui = di;
            }
            if (!(ur > T(0) && ur < T(1))) {
              ur = ur <= T(0) ? T(0) : T(1);
              ui = T(0);
            }
            xr = ur;
            xi = ui;
          }
        }
      });
      if (!std::isfinite(r2) || bad != 0)
        throw_error(std::string(rule) + ": the holomorphic nudged phase diverged at step " + std::to_string(step + 1) +
                    " (non-finite drive); the network was left unchanged");
      out.steps = step + 1;
      out.residual = std::sqrt(r2 / double(m));
      if (o.tolerance > 0 && out.residual < o.tolerance) break;
    }
  }

  /// Batch-mean `F = E + β C` of the states `s` (each half with its β; clamp: `F = E`).
  template <class Loss>
  /// `odd_reads_current`: the odd layers' last forward reads were taken from the current states
  /// (true after an alternating step), so a layer whose read is deterministic reuses its read.
  double energy(const Net& net, const std::array<matrix, L>& s, const std::vector<double>& betas, nudge_kind kind,
                const Loss& loss, const T* target, rng g, bool odd_reads_current = false) {
    const std::size_t n = n_, halves = betas.size(), m = n * halves;
    shape_buffers(net, m);
    double e = 0;
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i < S) {
        const std::size_t w = l.out_size();
        using layer_t = std::remove_cvref_t<decltype(l)>;
        if (i >= 1 && !(odd_reads_current && i % 2 == 1 && deterministic_read<layer_t>)) {
          rng gf = g.split(4 * i);
          drive_forward(l, i, s[i - 1].data(), m, fwd_[i].data(), gf);
        }
        const T* bias = i == 0 ? nullptr : state_bias(l);
        // Per row Σ s (½ s − d) in registers of T (two sums, to hide the FMA latency), added up
        // in double across rows.
        using P = simd::pack<T, simd::default_arch>;
        constexpr std::size_t V = P::size;
        const P half(T(0.5));
        for (std::size_t r = 0; r < m; ++r) {
          const T* sr = s[i].data() + r * w;
          const T* dr = i == 0 ? drive0_.data() + (r % n) * w : fwd_[i].data() + r * w;
          P acc[2] = {P(T(0)), P(T(0))};
          std::size_t j = 0;
          auto term = [&](std::size_t q) {
            P d = P::load_unaligned(dr + q);
            if (bias != nullptr) d = d + P::load_unaligned(bias + q);
            const P sv = P::load_unaligned(sr + q);
            return sv * simd::fma(half, sv, P(T(0)) - d);
          };
          for (const std::size_t j_end = w - w % (2 * V); j < j_end; j += 2 * V) {
            acc[0] += term(j);
            acc[1] += term(j + V);
          }
          for (const std::size_t j_end = w - w % V; j < j_end; j += V) acc[0] += term(j);
          double row = double(simd::reduce_add(acc[0] + acc[1]));
          for (; j < w; ++j) {
            const double d = double(dr[j]) + (bias == nullptr ? 0.0 : double(bias[j]));
            row += 0.5 * double(sr[j]) * double(sr[j]) - double(sr[j]) * d;
          }
          e += row;
        }
      }
    });
    e /= double(m);
    if (kind == nudge_kind::cost) {
      const std::size_t k = net.output_size();
      const T* y = nullptr;
      if constexpr (readout) {
        rng gf = g.split(4 * (L - 1));
        readout_forward(layer<L - 1>(net), s[S - 1].data(), m, gf);
        y = yhat_.data();
      } else {
        y = s[S - 1].data();
      }
      for (std::size_t h = 0; h < halves; ++h)
        e += betas[h] * double(loss.value(y + h * n * k, target, n, k)) / double(halves);
    }
    return e;
  }

  /// The network's output at states `s` (first `n` rows): the output state, or the readout.
  void output(const Net& net, const std::array<matrix, L>& s, matrix& y, rng& g) {
    const std::size_t k = net.output_size();
    pnn::detail::resize_if_needed(y, n_, k);
    if constexpr (readout) {
      rng gf = g.split(0x07);
      readout_forward(layer<L - 1>(net), s[S - 1].data(), n_, gf);
      std::copy(yhat_.data(), yhat_.data() + n_ * k, y.data());
    } else {
      std::copy(s[S - 1].data(), s[S - 1].data() + n_ * k, y.data());
    }
  }

  /// `ŷ = W_L s + b_L` for `m` rows into the readout buffer.
  template <class Layer>
  void readout_forward(const Layer& l, const T* s, std::size_t m, rng& g) {
    if (yhat_.shape()[0] < m || yhat_.shape()[1] != l.out_size()) yhat_.resize({m, l.out_size()});
    read_forward(l, s, m, yhat_.data(), g);
    simd::bias_map<T>(m, l.out_size(), yhat_.data(), l.out_size(), l.tile.bias_data(), act::identity{});
  }
  [[nodiscard]] const matrix& readout_values() const noexcept { return yhat_; }

  /// Forward read of a layer through its noise policy, `y = noise_out(W noise_in(x))`: the
  /// layer's own `read`, so the relaxation sees exactly what a feed-forward pass sees.
  template <class Layer>
  void read_forward(const Layer& l, const T* x, std::size_t m, T* y, rng& g) {
    if constexpr (Layer::has_input_noise) ensure_scratch(m * l.in_size());
    l.read(x, m, y, g, Layer::has_input_noise ? scratch_.data() : nullptr);
  }
  /// Transposed read, the layer's `read_transposed`: noisy where the substrate's transposed read
  /// is physical, as it is for backprop.
  template <class Layer>
  void read_backward(const Layer& l, const T* y, std::size_t m, T* x, rng& g) {
    if constexpr (Layer::has_input_noise) ensure_scratch(m * l.out_size());
    l.read_transposed(y, m, x, g, Layer::has_input_noise ? scratch_.data() : nullptr);
  }

  /// Drive of state layer `i` from the states below it (`x`, m rows) into `y`: the forward read,
  /// or for a convolution its biased reads pooled before the nonlinearity (`conv2d::pooled_read`,
  /// which records a max pool's windows for the drive back down).
  template <class Layer>
  void drive_forward(const Layer& l, std::size_t i, const T* x, std::size_t m, T* y, rng& g) {
    if constexpr (pnn::detail::is_convolution_v<Layer>) {
      std::uint32_t* am = nullptr;
      if constexpr (Layer::max_pooled) {
        argmax_[i].resize(m * l.out_size());
        am = argmax_[i].data();
      }
      l.pooled_read(x, m, y, g, am);
    } else {
      read_forward(l, x, m, y, g);
    }
  }
  /// Drive of the states below layer `i` from its states `y` (m rows) into `x`: the transposed
  /// read, or for a convolution the adjoint of its pooling (to the maxima the last drive up
  /// recorded) and the transposed read of every patch, summed back over the image.
  template <class Layer>
  void drive_backward(const Layer& l, std::size_t i, const T* y, std::size_t m, T* x, rng& g) {
    if constexpr (pnn::detail::is_convolution_v<Layer>) {
      if (routed_.size() < m * l.pre_activation_size()) routed_.resize({m * l.pre_activation_size()});
      l.unpool(y, m, Layer::max_pooled ? argmax_[i].data() : nullptr, routed_.data());
      l.backward_read_at(nullptr, routed_.data(), m, x, g);
    } else {
      read_backward(l, y, m, x, g);
    }
  }
  /// The gradient factors of a state layer's weights: `delta` (rows × out_size, the states'
  /// contrast) routed to the convolution's positions as the drive back down routes them, at the
  /// windows' maxima of the inputs `x` (rows × in_size) — read again here, since the phases end
  /// at different states. `nullptr` for a dense layer, whose factors are `delta` itself.
  template <class Layer>
  const T* route_contrast(const Layer& l, std::size_t i, const T* x, const T* delta, std::size_t rows, rng& g) {
    if constexpr (pnn::detail::is_convolution_v<Layer>) {
      if constexpr (Layer::max_pooled) {
        if (i > 0 || argmax_[0].size() != rows * l.out_size()) {  // layer 0's windows are the input's
          if (pooled_.size() < rows * l.out_size()) pooled_.resize({rows * l.out_size()});
          drive_forward(l, i, x, rows, pooled_.data(), g);
        }
      }
      if (routed_.size() < rows * l.pre_activation_size()) routed_.resize({rows * l.pre_activation_size()});
      l.unpool(delta, rows, Layer::max_pooled ? argmax_[i].data() : nullptr, routed_.data());
      return routed_.data();
    } else {
      (void)l, (void)i, (void)x, (void)delta, (void)rows, (void)g;
      return nullptr;
    }
  }

  /// Shapes the per-row buffers for `m` rows.
  void shape_buffers(const Net& net, std::size_t m) {
    std::size_t widest = 0;
    net.for_each_layer([&](const auto& l, std::size_t i) {
      widest = std::max({widest, l.out_size(), l.in_size()});
      if (i < S) {
        grow(fwd_[i], m, l.out_size());
        grow(back_[i], m, l.out_size());
      }
    });
    const std::size_t k = net.output_size();
    if constexpr (readout) {
      grow(yhat_, m, k);
      grow(dy_, m, k);
      grow(nudge_, m, layer<L - 1>(net).in_size());
    } else {
      grow(nudge_, m, k);
    }
    if (noise_.size() < m * widest) noise_.resize({m * widest});
  }

 private:
  void grow_all(const Net& net, std::size_t m) {
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i < S) {
        grow(fwd_im_[i], m, l.out_size());
        grow(back_im_[i], m, l.out_size());
      }
    });
    grow(nudge_im_, m, nudge_.shape()[1]);
  }
  /// `acc[i] += c · s[i]` over the first `m` rows of every state layer.
  void accumulate_states(const Net& net, const std::array<matrix, L>& s, std::array<matrix, L>& acc, std::size_t m,
                         T c) const {
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i < S) simd::axpy<T>(m * l.out_size(), c, s[i].data(), acc[i].data());
    });
  }
  static void grow(matrix& a, std::size_t rows, std::size_t cols) {
    if (a.shape()[0] < rows || a.shape()[1] != cols) a.resize({rows, cols});
  }
  void ensure_scratch(std::size_t count) {
    if (scratch_.size() < count) scratch_.resize({count});
  }
  template <class Layer>
  static constexpr bool max_pooling = [] {
    if constexpr (pnn::detail::is_convolution_v<Layer>) return Layer::max_pooled;
    else return false;
  }();
  /// The bias a state layer's update adds to its drive: a convolution's is inside its drive.
  template <class Layer>
  static const T* state_bias(const Layer& l) noexcept {
    if constexpr (pnn::detail::is_convolution_v<Layer>) return nullptr;
    else return l.tile.bias_data();
  }

  std::size_t n_ = 0;
  const T* x_ = nullptr;
  matrix drive0_{};
  std::array<matrix, L> fwd_{}, back_{}, fwd_im_{}, back_im_{};
  matrix yhat_{}, dy_{}, nudge_{}, dy_im_{}, nudge_im_{};
  xt::xtensor<T, 1> noise_{}, scratch_{}, routed_{}, pooled_{};
  std::array<std::vector<std::uint32_t>, L> argmax_{};  // max-pooling convolutions' windows, per row
  std::vector<double> row_r2_{}, last_r2_{};
  std::vector<unsigned char> active_{};
};

/// `cat[0..rows)` = `a`, `cat[rows..2rows)` = `sign · b` (row-major, `w` columns).
template <class T>
void stack_rows(const T* a, const T* b, T sign, std::size_t rows, std::size_t w, xt::xtensor<T, 2>& cat) {
  pnn::detail::resize_if_needed(cat, 2 * rows, w);
  std::copy(a, a + rows * w, cat.data());
  T* lo = cat.data() + rows * w;
  for (std::size_t i = 0; i < rows * w; ++i) lo[i] = sign * b[i];
}

/// The contrastive update from a 2n-row buffer per state layer (top rows: the phase `a`, bottom
/// rows: the phase `b`): layer 0 gets `scale (s^a_0 − s^b_0)ᵀ x` (the input is clamped, so one
/// outer product of the state difference), layer l ≥ 1 gets `scale [s^a_l; −s^b_l]ᵀ [s^a_{l−1};
/// s^b_{l−1}]` (one outer product of the 2n-row batch). Both keep the factored form.
/// A convolution's factors are its patches and the contrast routed to its positions through the
/// pooling (`energy_relaxation::route_contrast`: the maxima of each phase's own inputs), the
/// gradient of `s_l · pool(K x + b)` with respect to `K`.
template <class Net>
void contrast_update(const Net& net, energy_relaxation<Net>& engine,
                     std::array<xt::xtensor<typename Net::value_type, 2>, Net::num_layers>& nudged,
                     xt::xtensor<typename Net::value_type, 2>& delta0, xt::xtensor<typename Net::value_type, 2>& cat_delta,
                     gradients<Net>& grad, const typename Net::value_type* x, std::size_t n,
                     typename Net::value_type scale, rng& g) {
  using T = typename Net::value_type;
  constexpr std::size_t S = ep_traits<Net>::num_states;
  net.for_each_layer([&](const auto& l, std::size_t i) {
    if (i >= S) return;
    const std::size_t w = l.out_size();
    const T* top = nudged[i].data();
    const T* bottom = top + n * w;
    const T* in = x;
    const T* delta = nullptr;
    std::size_t rows = n;
    if (i == 0) {
      pnn::detail::resize_if_needed(delta0, n, w);
      for (std::size_t e = 0; e < n * w; ++e) delta0.data()[e] = top[e] - bottom[e];
      delta = delta0.data();
    } else {
      stack_rows(top, bottom, T(-1), n, w, cat_delta);
      in = nudged[i - 1].data();
      delta = cat_delta.data();
      rows = 2 * n;
    }
    rng gr = g.split(0xc0 + i);
    if (const T* routed = engine.route_contrast(l, i, in, delta, rows, gr); routed != nullptr)
      pnn::detail::layer_update(l, in, routed, rows, scale, grad[i]);
    else
      pnn::detail::outer_product_update(l, in, delta, rows, l.in_size(), w, scale, grad[i]);
  });
}

/// Validates the parameters shared by the energy-based rules.
inline void check_relaxation_params(const char* rule, std::size_t free_steps, std::size_t nudged_steps,
                                    double epsilon, double tolerance) {
  if (free_steps == 0) throw_error(std::string(rule) + ": free_steps (T) must be at least 1");
  if (nudged_steps == 0) throw_error(std::string(rule) + ": nudged_steps (K) must be at least 1");
  if (!(epsilon > 0) || !std::isfinite(epsilon))
    throw_error(std::string(rule) + ": epsilon (the relaxation step) must be positive and finite, got " +
                std::to_string(epsilon));
  // +inf would stop every phase after one step: no relaxation at all, silently.
  if (!(tolerance >= 0) || !std::isfinite(tolerance))
    throw_error(std::string(rule) + ": tolerance must be non-negative and finite");
}

}  // namespace energy_detail

}  // namespace pnn::learn
