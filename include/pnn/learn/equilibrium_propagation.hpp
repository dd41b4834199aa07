/// \file
/// \brief `learn::equilibrium_propagation`: the layered network read as an energy model, trained
/// by contrasting a free and a nudged relaxation (Scellier & Bengio 2017; Laborieux et al. 2021).
///
/// Energy (RULES.md, EP): with states `s_l` of the hard-sigmoid layers (`ρ(s) = clip(s, 0, 1)`)
/// and the input `x` clamped,
/// `E(s) = ½ Σ_l ‖s_l‖² − Σ_l ρ(s_l)·(W_l ρ(s_{l−1}) + b_l)`, `s_{−1} = x`, `F = E + β C`.
/// The states of hard-sigmoid units are kept in the box `[0, 1]` (where `ρ(s) = s`), so the
/// gradient dynamics is projected gradient descent `s ← clip(s − ε ∂F/∂s, 0, 1)` (Scellier &
/// Bengio clip after each step) and its fixed points are those of the fixed-point form
/// `s_l ← ρ(W_l ρ(s_{l−1}) + W_{l+1}ᵀ ρ(s_{l+1}) + b_l − β ∂C/∂s_l)`, which is the gradient form
/// with `ε = 1`. Both are synchronous: every layer is updated from the previous sweep's states.
///
/// Two kinds of output layer are accepted (checked at compile time, see `energy_network`):
/// * `act::hard_sigmoid`: the output is a state of the energy model and the cost `C` (the
///   loss passed to `estimate`, e.g. `loss::mse` → `½‖s_out − y‖²`) acts on it directly;
/// * `act::identity`: a *readout* outside the energy model (the cross-entropy readout of
///   Laborieux et al. 2021): `ŷ = W_L s_{L−1} + b_L`, `C = loss(ŷ, y)`, nudging the last hidden
///   layer by `−β W_Lᵀ ∂C/∂ŷ`. The readout's own gradient is exact, `∂C/∂W_L` at the free state
///   (the free equilibrium does not depend on the readout, so this is `dL/dW_L`).
/// Every other layer must be `act::hard_sigmoid`; every layer above the first must be readable
/// transposed (`transposable_tile`): the relaxation drives each layer with its substrate's
/// forward read `W ρ(s)` and transposed read `Wᵀ ρ(s)`, through the layer's noise policy (input
/// stage on the driving values, output stage on the read-out, in both directions), so EP runs
/// on a noisy crossbar as it would on hardware. The input drive `W_0 x + b_0` is read once per
/// batch.
///
/// Update (`ĝ` estimates the gradient of the loss; the optimiser's step subtracts `η ĝ`):
/// `ĝ_{W_l} = −(1/β)[ρ(s_l^β) ρ(s_{l−1}^β)ᵀ − ρ(s_l^0) ρ(s_{l−1}^0)ᵀ]` (one-sided, bias O(β)),
/// centered `ĝ = −(1/2β)[… (+β) − … (−β)]` (bias O(β²)), averaged over the batch. Both nudged
/// phases of the centered estimator relax as one batch of 2n rows; the first layer's update is
/// one outer product of the state difference with the clamped input, the others one outer
/// product of the concatenated 2n-row batch, and both are kept in factored form for crossbars.
///
/// Holomorphic EP (Laborieux & Zenke 2022) uses N complex nudges `β_k = |β| e^{2πik/N}` and
/// `ĝ = (1/(N|β|)) Re Σ_k e^{−2πik/N} ∂E/∂θ(s_{β_k})`, the Cauchy-integral derivative, bias
/// O(β^N). There is no real N-point formula identical to it for N > 2, so it relaxes complex
/// states: the affine drive is continued as is, and the hard sigmoid by its active branch
/// (identity where the real part is inside (0, 1), the constant 0 or 1 outside), which is the
/// analytic continuation of the real equilibrium `s(β)` as long as no unit changes between
/// clipped and linear on the circle `|β_k| = |β|`. The nudges of N = 2 are `±β` with zero
/// imaginary parts, so N = 2 reproduces the centered estimate. Needs `loss::mse` (a cost with a
/// holomorphic gradient).
#pragma once

#include <algorithm>
#include <any>
#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/optim.hpp>
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

namespace pnn::learn {

/// How EP turns the two (or more) relaxations into an update estimate.
enum class ep_estimator {
  one_sided,    ///< free phase and one nudged phase at +β; bias O(β)
  random_sign,  ///< one-sided with the sign of β drawn per batch; bias O(β) averages out
  centered,     ///< nudged phases at +β and −β; bias O(β²)
  holomorphic   ///< N complex nudges β e^{2πik/N}; bias O(β^N), N = 2 equals centered
};

/// How a relaxation moves the states.
enum class ep_dynamics {
  fixed_point,  ///< `s ← ρ(drive)`: the gradient form with ε = 1
  gradient      ///< projected gradient descent `s ← clip(s − ε ∂F/∂s, 0, 1)`
};

/// What the last relaxations of an energy-based rule did: steps taken, the fixed-point residual
/// `‖s − ρ(s − ∂F/∂s)‖` (root mean over the batch of each sample's Euclidean norm, measured at
/// the state the last step started from) and the energy `F` (batch mean) at the final state.
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

/// Loss and accuracy at the free equilibrium (`equilibrium_propagation::evaluate`).
struct equilibrium_metrics {
  double loss = 0;
  double accuracy = 0;
};

namespace energy_detail {

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
  static constexpr bool transposable = transposable_ok(std::index_sequence_for<L...>{});
};

}  // namespace energy_detail

/// A `network` that energy-based rules can read as an energy model: every layer but the last is
/// `act::hard_sigmoid`, the last is `act::hard_sigmoid` (an output state) or `act::identity` (a
/// readout, with at least one hidden layer), and every layer above the first can be read
/// transposed.
template <class Net>
concept energy_network = energy_detail::ep_traits<Net>::is_network && energy_detail::ep_traits<Net>::hidden_hard_sigmoid &&
                         energy_detail::ep_traits<Net>::output_ok && energy_detail::ep_traits<Net>::transposable;

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
    static_assert(tr::transposable,
                  "energy-based rules relax the network with the transposed read W^T rho(s) of every layer above "
                  "the first: their substrate's tile must offer read_transposed (pnn::transposable_tile)");
  }
}

/// Which nudge a relaxation applies.
enum class nudge_kind {
  none,   ///< free phase, β = 0
  cost,   ///< EP: `F = E + β C`
  clamp   ///< coupled learning: the output state is held where it was set
};

/// Options of one relaxation.
struct relax_options {
  std::size_t steps = 0;
  double epsilon = 1;
  bool fixed_point = true;
  double tolerance = 0;
  double state_noise = 0;
  bool record = false;
};

/// Outcome of one relaxation.
struct relax_outcome {
  std::size_t steps = 0;
  double residual = 0;
  double energy = 0;
  std::vector<double> trace{};
};

/// `s ← step(base + bias + c·extra + noise)` over `rows × w` states, returning in `r2` the sum
/// of `(s − ρ(drive))²` and in `bad` a sum that is non-zero only when a drive was not finite.
template <bool Extra, bool Noise, bool FixedPoint, class T, class Arch = simd::default_arch>
void relax_rows(std::size_t rows, std::size_t w, T* s, const T* base, const T* bias, const T* extra, T c,
                const T* noise, T eps, double& r2, double& bad) {
  using P = simd::pack<T, Arch>;
  constexpr std::size_t W = P::size;
  const P zero(T(0)), one(T(1)), pc(c), pe(eps);
  // Two sets of accumulators, alternating by vector: with one, the loop waits on the latency
  // of the residual's FMA chain instead of its loads.
  P acc[2] = {P(T(0)), P(T(0))}, nan_acc[2] = {P(T(0)), P(T(0))};
  T acc_s = T(0), nan_s = T(0);
  auto update = [&](std::size_t r, T* sr, const T* br, std::size_t j, std::size_t u) {
    P d = P::load_unaligned(br + j);
    if (bias != nullptr) d = d + P::load_unaligned(bias + j);
    if constexpr (Extra) d = simd::fma(pc, P::load_unaligned(extra + r * w + j), d);
    if constexpr (Noise) d = d + P::load_unaligned(noise + r * w + j);
    const P old = P::load_unaligned(sr + j);
    const P target = simd::min(simd::max(d, zero), one);
    const P diff = old - target;
    acc[u] = simd::fma(diff, diff, acc[u]);
    nan_acc[u] = nan_acc[u] + (d - d);
    if constexpr (FixedPoint) {
      target.store_unaligned(sr + j);
    } else {
      const P next = simd::fma(pe, d - old, old);
      simd::min(simd::max(next, zero), one).store_unaligned(sr + j);
    }
  };
  for (std::size_t r = 0; r < rows; ++r) {
    T* sr = s + r * w;
    const T* br = base + r * w;
    std::size_t j = 0;
    for (const std::size_t j_end = w - w % (2 * W); j < j_end; j += 2 * W) {
      update(r, sr, br, j, 0);
      update(r, sr, br, j + W, 1);
    }
    for (const std::size_t j_end = w - w % W; j < j_end; j += W) update(r, sr, br, j, 0);
    for (; j < w; ++j) {
      T d = br[j];
      if (bias != nullptr) d += bias[j];
      if constexpr (Extra) d += c * extra[r * w + j];
      if constexpr (Noise) d += noise[r * w + j];
      const T old = sr[j];
      const T target = std::min(std::max(d, T(0)), T(1));
      acc_s += (old - target) * (old - target);
      nan_s += d - d;
      if constexpr (FixedPoint) {
        sr[j] = target;
      } else {
        sr[j] = std::min(std::max(old + eps * (d - old), T(0)), T(1));
      }
    }
  }
  r2 += double(simd::reduce_add(acc[0] + acc[1])) + double(acc_s);
  bad += double(simd::reduce_add(nan_acc[0] + nan_acc[1])) + double(nan_s);
}

template <class T>
void relax_rows_dispatch(bool extra, bool noise, bool fixed_point, std::size_t rows, std::size_t w, T* s,
                         const T* base, const T* bias, const T* ex, T c, const T* nz, T eps, double& r2, double& bad) {
  const int code = (extra ? 4 : 0) + (noise ? 2 : 0) + (fixed_point ? 1 : 0);
  switch (code) {
    case 0: relax_rows<false, false, false>(rows, w, s, base, bias, ex, c, nz, eps, r2, bad); break;
    case 1: relax_rows<false, false, true>(rows, w, s, base, bias, ex, c, nz, eps, r2, bad); break;
    case 2: relax_rows<false, true, false>(rows, w, s, base, bias, ex, c, nz, eps, r2, bad); break;
    case 3: relax_rows<false, true, true>(rows, w, s, base, bias, ex, c, nz, eps, r2, bad); break;
    case 4: relax_rows<true, false, false>(rows, w, s, base, bias, ex, c, nz, eps, r2, bad); break;
    case 5: relax_rows<true, false, true>(rows, w, s, base, bias, ex, c, nz, eps, r2, bad); break;
    case 6: relax_rows<true, true, false>(rows, w, s, base, bias, ex, c, nz, eps, r2, bad); break;
    default: relax_rows<true, true, true>(rows, w, s, base, bias, ex, c, nz, eps, r2, bad); break;
  }
}

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
    read_forward(l0, x, n, drive0_.data(), g0);
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
  /// With `nudge_kind::clamp` the output state is held as given.
  template <class Loss>
  relax_outcome relax(const Net& net, std::array<matrix, L>& s, const std::vector<double>& betas, nudge_kind kind,
                      const relax_options& o, const Loss& loss, const T* target, rng& g, const char* rule,
                      const char* phase) {
    const std::size_t n = n_, halves = betas.size(), m = n * halves;
    shape_buffers(net, m);
    relax_outcome out;
    const bool nudging = kind == nudge_kind::cost;
    for (std::size_t step = 0; step < o.steps; ++step) {
      rng gs = g.split(step);
      // Every read uses the states of the previous sweep (synchronous update).
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i >= 1 && i < S) {
          rng gf = gs.split(4 * i);
          read_forward(l, s[i - 1].data(), m, fwd_[i].data(), gf);
          rng gb = gs.split(4 * i + 1);
          read_backward(l, s[i].data(), m, back_[i - 1].data(), gb);
        }
        if constexpr (readout) {
          if (i == L - 1 && nudging) {
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
        if (nudging) {
          const std::size_t k = net.output_size();
          for (std::size_t h = 0; h < halves; ++h)
            loss.gradient(s[S - 1].data() + h * n * k, target, n, k, nudge_.data() + h * n * k);
        }
      }
      double r2 = 0, bad = 0;
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i >= S) return;
        if (kind == nudge_kind::clamp && i == S - 1) return;
        const std::size_t w = l.out_size();
        T* noise = nullptr;
        if (o.state_noise > 0) {
          rng gn = gs.split(4 * i + 2);
          fill_normal(gn, noise_.data(), m * w, T(0), static_cast<T>(o.state_noise));
          noise = noise_.data();
        }
        const T* bias = i == 0 ? nullptr : l.tile.bias_data();
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
          relax_rows_dispatch<T>(extra != nullptr, noise != nullptr, o.fixed_point, n, w, s[i].data() + off, base,
                                 bias, extra, c, noise == nullptr ? nullptr : noise + off,
                                 static_cast<T>(o.epsilon), r2, bad);
        }
      });
      if (!std::isfinite(r2) || !std::isfinite(bad) || bad != 0)
        throw_error(std::string(rule) + ": the " + phase + " phase diverged at step " + std::to_string(step + 1) +
                    " (non-finite drive); the network was left unchanged");
      out.steps = step + 1;
      out.residual = std::sqrt(r2 / double(m));
      if (o.record) out.trace.push_back(energy(net, s, betas, kind, loss, target, gs.split(0xe7)));
      if (o.tolerance > 0 && out.residual < o.tolerance) break;
    }
    out.energy = o.record && !out.trace.empty() ? out.trace.back()
                                                : energy(net, s, betas, kind, loss, target, g.split(0xe7e7));
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
  double energy(const Net& net, const std::array<matrix, L>& s, const std::vector<double>& betas, nudge_kind kind,
                const Loss& loss, const T* target, rng g) {
    const std::size_t n = n_, halves = betas.size(), m = n * halves;
    shape_buffers(net, m);
    double e = 0;
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i < S) {
        const std::size_t w = l.out_size();
        if (i >= 1) {
          rng gf = g.split(4 * i);
          read_forward(l, s[i - 1].data(), m, fwd_[i].data(), gf);
        }
        const T* bias = l.tile.bias_data();
        // Four partial sums: one running sum would chain every term's addition on the last
        // (latency-bound, this loop cost as much as a tenth of the relaxation's reads).
        auto term = [&](const T* sr, const T* dr, std::size_t j) {
          const double d = double(dr[j]) + (i == 0 ? 0.0 : double(bias[j]));
          return 0.5 * double(sr[j]) * double(sr[j]) - double(sr[j]) * d;
        };
        for (std::size_t r = 0; r < m; ++r) {
          const T* sr = s[i].data() + r * w;
          const T* dr = i == 0 ? drive0_.data() + (r % n) * w : fwd_[i].data() + r * w;
          double acc[4] = {0, 0, 0, 0};
          std::size_t j = 0;
          for (const std::size_t j_end = w - w % 4; j < j_end; j += 4) {
            acc[0] += term(sr, dr, j);
            acc[1] += term(sr, dr, j + 1);
            acc[2] += term(sr, dr, j + 2);
            acc[3] += term(sr, dr, j + 3);
          }
          for (; j < w; ++j) acc[0] += term(sr, dr, j);
          e += (acc[0] + acc[1]) + (acc[2] + acc[3]);
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

  /// Forward read of a layer through its noise policy: `y = noise_out(W noise_in(x))`.
  template <class Layer>
  void read_forward(const Layer& l, const T* x, std::size_t m, T* y, rng& g) {
    const T* drive = x;
    if constexpr (Layer::has_input_noise) {
      ensure_scratch(m * l.in_size());
      std::copy(x, x + m * l.in_size(), scratch_.data());
      rng gi = g.split(0);
      l.noise.input(scratch_.data(), m * l.in_size(), gi);
      drive = scratch_.data();
    }
    rng gr = g.split(1);
    l.read_tile().read(drive, m, y, gr);
    if constexpr (Layer::has_output_noise) {
      rng go = g.split(2);
      l.noise.output(y, m * l.out_size(), go);
    }
  }
  /// Transposed read through the same noise stages: `x = noise_out(noise_in(y) W)`.
  template <class Layer>
  void read_backward(const Layer& l, const T* y, std::size_t m, T* x, rng& g) {
    const T* drive = y;
    if constexpr (Layer::has_input_noise) {
      ensure_scratch(m * l.out_size());
      std::copy(y, y + m * l.out_size(), scratch_.data());
      rng gi = g.split(0);
      l.noise.input(scratch_.data(), m * l.out_size(), gi);
      drive = scratch_.data();
    }
    rng gr = g.split(3);
    l.read_tile().read_transposed(drive, m, x, gr);
    if constexpr (Layer::has_output_noise) {
      rng go = g.split(2);
      // Policies tied to the output columns (column gains) say how they act on row read-outs.
      if constexpr (requires { l.noise.output_transposed(x, m * l.in_size(), go); })
        l.noise.output_transposed(x, m * l.in_size(), go);
      else
        l.noise.output(x, m * l.in_size(), go);
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
  static void grow(matrix& a, std::size_t rows, std::size_t cols) {
    if (a.shape()[0] < rows || a.shape()[1] != cols) a.resize({rows, cols});
  }
  void ensure_scratch(std::size_t count) {
    if (scratch_.size() < count) scratch_.resize({count});
  }

  std::size_t n_ = 0;
  const T* x_ = nullptr;
  matrix drive0_{};
  std::array<matrix, L> fwd_{}, back_{}, fwd_im_{}, back_im_{};
  matrix yhat_{}, dy_{}, nudge_{}, dy_im_{}, nudge_im_{};
  xt::xtensor<T, 1> noise_{}, scratch_{};
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
template <class Net>
void contrast_update(const Net& net, std::array<xt::xtensor<typename Net::value_type, 2>, Net::num_layers>& nudged,
                     xt::xtensor<typename Net::value_type, 2>& delta0, xt::xtensor<typename Net::value_type, 2>& cat_delta,
                     gradients<Net>& grad, const typename Net::value_type* x, std::size_t n,
                     typename Net::value_type scale) {
  using T = typename Net::value_type;
  constexpr std::size_t S = ep_traits<Net>::num_states;
  net.for_each_layer([&](const auto& l, std::size_t i) {
    if (i >= S) return;
    const std::size_t w = l.out_size();
    const T* top = nudged[i].data();
    const T* bottom = top + n * w;
    if (i == 0) {
      pnn::detail::resize_if_needed(delta0, n, w);
      for (std::size_t e = 0; e < n * w; ++e) delta0.data()[e] = top[e] - bottom[e];
      pnn::detail::outer_product_update(l, x, delta0.data(), n, l.in_size(), w, scale, grad[i]);
    } else {
      stack_rows(top, bottom, T(-1), n, w, cat_delta);
      pnn::detail::outer_product_update(l, nudged[i - 1].data(), cat_delta.data(), 2 * n, l.in_size(), w, scale,
                                        grad[i]);
    }
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
  if (!(tolerance >= 0)) throw_error(std::string(rule) + ": tolerance must be non-negative");
}

}  // namespace energy_detail

/// Equilibrium propagation with optimiser `Optimizer` (see the file comment for the model).
/// \tparam Optimizer `optim::sgd` (default; `layer_learning_rates` and `lr_schedule` give the
///         usual per-layer rates with cosine decay), `optim::momentum`, `optim::adam`.
template <class Optimizer = optim::sgd>
class equilibrium_propagation {
 public:
  static constexpr const char* name = "equilibrium_propagation";

  /// Estimator parameters (defaults: the prototypical setting of Laborieux et al. 2021 on an
  /// MLP, β 0.2, T 30, K 10, centered) and the optimiser.
  struct params {
    Optimizer optimizer{};
    double beta = 0.2;                 ///< nudging strength β (≠ 0); hEP: the radius |β|
    std::size_t free_steps = 30;       ///< T: most steps of the free phase
    std::size_t nudged_steps = 10;     ///< K: most steps of each nudged phase
    double epsilon = 0.5;              ///< step ε of the gradient dynamics (> 0)
    double tolerance = 0;              ///< stop a phase once the residual is below it (0: run all steps)
    ep_estimator estimator = ep_estimator::centered;
    std::size_t holomorphic_points = 4;  ///< N of the holomorphic estimator (≥ 2)
    ep_dynamics dynamics = ep_dynamics::fixed_point;
    bool persistent = false;     ///< start the free phase from the last free state (same batch size) instead of 0
    double state_noise = 0;      ///< sd of Gaussian neuron noise added to every drive at every step
    bool record_energy = false;  ///< record `F` after every step in `last_report()` (costs a read per layer)
  };

  /// Default parameters.
  equilibrium_propagation() = default;
  /// \pre `p.beta` finite and non-zero, `free_steps`, `nudged_steps` ≥ 1, `epsilon` > 0,
  ///      `tolerance` ≥ 0, `holomorphic_points` ≥ 2, `state_noise` ≥ 0 (else `pnn::error`).
  explicit equilibrium_propagation(params p) : params_(std::move(p)) { check(params_); }

  [[nodiscard]] params& parameters() noexcept { return params_; }
  [[nodiscard]] const params& parameters() const noexcept { return params_; }
  /// Residuals, energies and steps of the last estimate's relaxations.
  [[nodiscard]] const relaxation_report& last_report() const noexcept { return report_; }

  /// The EP estimate `ĝ` of `loss`'s gradient on the batch (`x`: n × inputs, `target`: n × outputs).
  template <class Net, class X, class Y, class Loss>
  gradients<Net> estimate(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                          const Loss& loss, rng& g) {
    energy_detail::require_energy_network<Net>();
    check(params_);
    auto& s = pnn::detail::cached<state<Net>>(cache_);
    auto b = pnn::detail::check_batch(net, x, target, name);
    run(net, b, loss, g, s);
    return s.grad;
  }

  /// Estimate, shape with the optimiser, program the substrates. Returns the batch's loss and
  /// accuracy at the free equilibrium (before the update).
  template <class Net, class X, class Y, class Loss>
  step_result step(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target, const Loss& loss,
                   rng& g) {
    energy_detail::require_energy_network<Net>();
    check(params_);
    auto& s = pnn::detail::cached<state<Net>>(cache_);
    auto b = pnn::detail::check_batch(net, x, target, name);
    step_result r = run(net, b, loss, g, s);
    params_.optimizer.apply(s.grad, s.opt, net);
    pnn::detail::require_finite_update(s.grad, name);
    rng gp = g.split(0x9e3779b97f4a7c15ULL);
    program(net, s.grad, gp);
    return r;
  }

  /// The network's prediction at the free equilibrium (T steps from 0, or to tolerance): the
  /// output state, or the readout. This is how an EP network computes; `pnn::forward` is its
  /// feed-forward pass (no feedback), which differs.
  template <class Net, class X>
  xt::xtensor<typename Net::value_type, 2> predict(const Net& net, const xt::xexpression<X>& x, rng& g) {
    energy_detail::require_energy_network<Net>();
    check(params_);
    using T = typename Net::value_type;
    auto& s = pnn::detail::cached<state<Net>>(cache_);
    auto xb = pnn::detail::as_batch<T>(x, net.input_size(), "equilibrium_propagation::predict: x");
    const std::size_t n = xb.shape()[0];
    s.engine.begin_batch(net, xb.data(), n, g);
    std::array<xt::xtensor<T, 2>, Net::num_layers> st{};
    s.engine.zero_states(net, st, n);
    rng gf = g.split(1);
    s.engine.relax(net, st, {0.0}, energy_detail::nudge_kind::none, free_options(), loss::mse{}, static_cast<const T*>(nullptr),
                   gf, name, "free");
    xt::xtensor<T, 2> y;
    s.engine.output(net, st, y, g);
    return y;
  }

  /// Loss and accuracy of `net` on a data set at the free equilibrium, in batches of `batch`.
  /// `Set` is a `data::dataset` (float `inputs` and `targets`, row per sample).
  template <class Net, class Loss, class Set>
  equilibrium_metrics evaluate(const Net& net, const Loss& loss, const Set& set, rng& g, std::size_t batch = 1000) {
    using T = typename Net::value_type;
    PNN_EXPECTS(batch > 0, "equilibrium_propagation::evaluate: batch must be positive");
    equilibrium_metrics e;
    const std::size_t count_all = set.inputs.shape()[0], in = net.input_size(), k = net.output_size();
    if (count_all == 0) return e;
    if (set.inputs.shape()[1] != in || set.targets.shape()[1] != k)
      throw_error("equilibrium_propagation::evaluate: the data set does not match the network's extents");
    double total = 0;
    std::size_t correct = 0;
    xt::xtensor<T, 2> xb, tb;
    for (std::size_t first = 0, c = 0; first < count_all; first += batch, ++c) {
      const std::size_t count = std::min(batch, count_all - first);
      xb.resize({count, in});
      tb.resize({count, k});
      std::copy(set.inputs.data() + first * in, set.inputs.data() + (first + count) * in, xb.data());
      std::copy(set.targets.data() + first * k, set.targets.data() + (first + count) * k, tb.data());
      rng gb = g.split(c);
      auto y = predict(net, xb, gb);
      total += double(loss.value(y.data(), tb.data(), count, k)) * double(count);
      correct += pnn::detail::count_correct<T>(y.data(), tb.data(), count, k);
    }
    e.loss = total / double(count_all);
    e.accuracy = double(correct) / double(count_all);
    return e;
  }

 private:
  template <class Net>
  struct state {
    using T = typename Net::value_type;
    energy_detail::energy_relaxation<Net> engine{};
    std::array<xt::xtensor<T, 2>, Net::num_layers> free{}, nudged{}, imag{};
    xt::xtensor<T, 2> delta0{}, cat_in{}, cat_delta{}, dy{};
    gradients<Net> grad{};
    typename Optimizer::template state<Net> opt{};
    bool have_free = false;
  };

  static void check(const params& p) {
    if (!(p.beta != 0) || !std::isfinite(p.beta))
      throw_error("equilibrium_propagation: beta must be finite and non-zero (β = 0 gives no learning signal)");
    energy_detail::check_relaxation_params(name, p.free_steps, p.nudged_steps, p.epsilon, p.tolerance);
    if (p.estimator == ep_estimator::holomorphic && p.holomorphic_points < 2)
      throw_error("equilibrium_propagation: holomorphic_points (N) must be at least 2");
    if (!(p.state_noise >= 0)) throw_error("equilibrium_propagation: state_noise must be non-negative");
  }

  [[nodiscard]] energy_detail::relax_options free_options() const {
    return {.steps = params_.free_steps,
            .epsilon = params_.dynamics == ep_dynamics::fixed_point ? 1.0 : params_.epsilon,
            .fixed_point = params_.dynamics == ep_dynamics::fixed_point,
            .tolerance = params_.tolerance,
            .state_noise = params_.state_noise,
            .record = params_.record_energy};
  }
  [[nodiscard]] energy_detail::relax_options nudged_options() const {
    auto o = free_options();
    o.steps = params_.nudged_steps;
    return o;
  }

  template <class Net, class Loss>
  step_result run(Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, const Loss& loss, rng& g,
                  state<Net>& s) {
    using T = typename Net::value_type;
    using tr = energy_detail::ep_traits<Net>;
    constexpr std::size_t S = tr::num_states;
    constexpr std::size_t L = Net::num_layers;
    const std::size_t n = b.n, k = net.output_size();
    const bool holo = params_.estimator == ep_estimator::holomorphic;
    if (holo && !std::is_same_v<Loss, loss::mse>)
      throw_error("equilibrium_propagation: the holomorphic estimator needs loss::mse (a cost whose gradient "
                  "continues to complex states)");
    relaxation_report rep;
    s.engine.begin_batch(net, b.x, n, g);

    // Free phase.
    if (!(params_.persistent && s.have_free && s.free[0].shape()[0] == n)) s.engine.zero_states(net, s.free, n);
    s.have_free = false;
    rng gfree = g.split(1);
    auto fo = s.engine.relax(net, s.free, {0.0}, energy_detail::nudge_kind::none, free_options(), loss, b.target, gfree, name,
                             "free");
    rep.free_steps = fo.steps;
    rep.free_residual = fo.residual;
    rep.free_energy = fo.energy;
    rep.free_energy_trace = std::move(fo.trace);

    // Loss, accuracy and (readout) the exact readout gradient at the free equilibrium.
    step_result r;
    const T* y = nullptr;
    if constexpr (!tr::output_is_state) {
      rng gy = g.split(2);
      s.engine.readout_forward(layer<L - 1>(net), s.free[S - 1].data(), n, gy);
      y = s.engine.readout_values().data();
    } else {
      y = s.free[S - 1].data();
    }
    pnn::detail::resize_if_needed(s.dy, n, k);
    r.loss = double(loss.gradient(y, b.target, n, k, s.dy.data()));
    r.correct = pnn::detail::count_correct<T>(y, b.target, n, k);
    r.count = n;
    s.grad.ensure_shape(net);
    if constexpr (!tr::output_is_state) {
      const auto& lr = layer<L - 1>(net);
      pnn::detail::outer_product_update(lr, s.free[S - 1].data(), s.dy.data(), n, lr.in_size(), lr.out_size(), T(1),
                                        s.grad[L - 1]);
    }

    if (holo) {
      run_holomorphic(net, b, g, s, rep);
    } else {
      // Nudged phase(s), from the free fixed point, as one batch of `halves · n` rows.
      double beta = params_.beta;
      if (params_.estimator == ep_estimator::random_sign) {
        rng gsgn = g.split(3);
        if (gsgn.uniform_double() < 0.5) beta = -beta;
      }
      const bool centered = params_.estimator == ep_estimator::centered;
      const std::vector<double> betas = centered ? std::vector<double>{beta, -beta} : std::vector<double>{beta};
      net.for_each_layer([&](const auto& l, std::size_t i) {
        if (i >= S) return;
        const std::size_t w = l.out_size();
        // Rows [0, n): the +β phase; rows [n, 2n): the −β phase (centered) or the free state
        // (one-sided: the engine relaxes only the first `betas.size() · n` rows).
        pnn::detail::resize_if_needed(s.nudged[i], 2 * n, w);
        std::copy(s.free[i].data(), s.free[i].data() + n * w, s.nudged[i].data());
        std::copy(s.free[i].data(), s.free[i].data() + n * w, s.nudged[i].data() + n * w);
      });
      rng gn = g.split(4);
      auto no = s.engine.relax(net, s.nudged, betas, energy_detail::nudge_kind::cost, nudged_options(), loss, b.target, gn,
                               name, "nudged");
      rep.nudged_steps = no.steps;
      rep.nudged_residual = no.residual;
      rep.nudged_energy = no.energy;
      rep.nudged_energy_trace = std::move(no.trace);
      const T scale = static_cast<T>(-1.0 / ((centered ? 2.0 : 1.0) * beta * double(n)));
      energy_detail::contrast_update(net, s.nudged, s.delta0, s.cat_delta, s.grad, b.x, n, scale);
    }
    report_ = std::move(rep);
    s.have_free = true;
    return r;
  }

  // Holomorphic EP: N complex nudged phases from the free state, relaxed as one batch of N·n
  // complex rows (real and imaginary parts read separately through the real substrate).
  template <class Net>
  void run_holomorphic(const Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b, rng& g, state<Net>& s,
                       relaxation_report& rep) {
    using T = typename Net::value_type;
    constexpr std::size_t S = energy_detail::ep_traits<Net>::num_states;
    const std::size_t n = b.n, N = params_.holomorphic_points;
    const double radius = std::abs(params_.beta);
    // cos/sin of 2πk/N, exact on quarter turns so that N = 2 and N = 4 nudge along the axes.
    std::vector<double> cs(N), sn(N), br(N), bi(N);
    for (std::size_t k = 0; k < N; ++k) {
      if ((4 * k) % N == 0) {
        const std::size_t q = (4 * k) / N;
        const double c4[4] = {1, 0, -1, 0}, s4[4] = {0, 1, 0, -1};
        cs[k] = c4[q % 4];
        sn[k] = s4[q % 4];
      } else {
        const double phi = 2 * std::numbers::pi * double(k) / double(N);
        cs[k] = std::cos(phi);
        sn[k] = std::sin(phi);
      }
      br[k] = radius * cs[k];
      bi[k] = radius * sn[k];
    }
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i >= S) return;
      const std::size_t w = l.out_size();
      pnn::detail::resize_if_needed(s.nudged[i], N * n, w);
      pnn::detail::resize_if_needed(s.imag[i], N * n, w);
      for (std::size_t k = 0; k < N; ++k) std::copy(s.free[i].data(), s.free[i].data() + n * w, s.nudged[i].data() + k * n * w);
      s.imag[i].fill(T(0));
    });
    energy_detail::relax_outcome no;
    rng gn = g.split(4);
    s.engine.relax_complex(net, s.nudged, s.imag, br, bi, nudged_options(), b.target, gn, name, no);
    rep.nudged_steps = no.steps;
    rep.nudged_residual = no.residual;
    rep.nudged_energy = 0;  // F of complex states is not reported
    // ĝ = −(1/(N r n)) Re Σ_k c̄_k z_l z_{l−1}ᵀ with c̄_k = e^{−2πik/N}:
    // Re(c̄ z_l z_{l−1}ᵀ) = Re(c̄ z_l) Re(z_{l−1})ᵀ − Im(c̄ z_l) Im(z_{l−1})ᵀ.
    const T scale = static_cast<T>(-1.0 / (double(N) * radius * double(n)));
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (i >= S) return;
      const std::size_t w = l.out_size();
      const std::size_t rows = N * n;
      pnn::detail::resize_if_needed(s.cat_delta, 2 * rows, w);
      for (std::size_t r = 0; r < rows; ++r) {
        const T c = static_cast<T>(cs[r / n]), sk = static_cast<T>(sn[r / n]);
        for (std::size_t j = 0; j < w; ++j) {
          const T zr = s.nudged[i](r, j), zi = s.imag[i](r, j);
          s.cat_delta(r, j) = c * zr + sk * zi;           // Re(c̄ z)
          s.cat_delta(rows + r, j) = -(c * zi - sk * zr);  // −Im(c̄ z)
        }
      }
      if (i == 0) {
        pnn::detail::resize_if_needed(s.delta0, n, w);
        s.delta0.fill(T(0));
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t j = 0; j < w; ++j) s.delta0(r % n, j) += s.cat_delta(r, j);
        pnn::detail::outer_product_update(l, b.x, s.delta0.data(), n, l.in_size(), w, scale, s.grad[i]);
      } else {
        const std::size_t in = l.in_size();
        pnn::detail::resize_if_needed(s.cat_in, 2 * rows, in);
        std::copy(s.nudged[i - 1].data(), s.nudged[i - 1].data() + rows * in, s.cat_in.data());
        std::copy(s.imag[i - 1].data(), s.imag[i - 1].data() + rows * in, s.cat_in.data() + rows * in);
        pnn::detail::outer_product_update(l, s.cat_in.data(), s.cat_delta.data(), 2 * rows, in, w, scale, s.grad[i]);
      }
    });
  }

  params params_{};
  relaxation_report report_{};
  std::any cache_{};
};

}  // namespace pnn::learn
