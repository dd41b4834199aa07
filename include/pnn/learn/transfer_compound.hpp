// SPDX-License-Identifier: MIT
/// \file
/// \brief `optim::transfer_compound`: analog in-memory training by transfer between two arrays —
/// Tiki-Taka v1 and v2, chopped TTv2 and AGAD (docs/rules.md, "Transfer compounds: Tiki-Taka, chopped TTv2, AGAD").
///
/// Plain pulsed SGD writes every sample's gradient straight onto the weights' devices; on
/// asymmetric devices each up/down pulse pair then drags a weight towards the device's symmetry
/// point, which acts as a weight decay that stops training early. The transfer family gives
/// the gradient its own array: the pulses of every sample go to a *fast* array `A` (same device
/// type, its own devices), and the visible weights `C` — what forward and backward reads see —
/// are changed only by occasional transfers of `A`'s columns, read through the periphery with
/// one-hot inputs (Gokmen & Haensch 2020). `A` then integrates the gradient like a leaky
/// accumulator whose leak (the asymmetry's pull to the symmetry point) is harmless, because `C`
/// only sees its low-passed output.
///
/// * **Tiki-Taka v1** (`tiki_taka`): each read column `v` is pulsed onto `C` at once,
///   `C[:, j] += λ v` (stochastic pulse trains of the one-hot input and `v`).
/// * **Tiki-Taka v2** (`ttv2`, Gokmen 2021): reads accumulate in a digital buffer `H` (in units
///   of `A`'s `dw_min`), `H[:, j] += λ v / (θ·dw_min)`, and an element fires
///   `n = trunc(H)` (at most `transfer_bl`) whole pulses onto `C` when `|H| ≥ 1`; the buffer
///   then keeps `momentum·H` (or loses `(1 − momentum)·n` when `forget_buffer` is off).
/// * **Chopped TTv2** (`c_ttv2`, Rasch et al. 2024): as v2, with an input chopper `c_j = ±1`
///   per column. The gradient is written onto `A` with `c ⊙ x`, and the read is multiplied by
///   `c_j` again, so a constant offset of `A` (a symmetry point that is not at zero) changes
///   sign with the chopper and averages out of `H`. After each read, column `j`'s chopper
///   flips with probability `in_chop_prob`.
/// * **AGAD** (`agad`, Rasch et al. 2024): chopped, with regular chopper periods of
///   `round(1/in_chop_prob)` reads per column and a *dynamic reference*: at each chopper switch
///   the column's read is stored digitally as `p_j`, and the buffer integrates `c_j (v − p_j)`,
///   the change of `A` since the switch. No symmetry-point calibration is needed. (aihwkit
///   references the mean of the previous period with tail weighting; pnn uses the read at the
///   switch.)
///
/// `tiki_taka`, `ttv2` and `c_ttv2` subtract a reference array `R` from every read of `A`:
/// before training, `A`'s devices are driven with `zero_shift_pairs` up/down pulse pairs so
/// that each settles at its own symmetry point, and `R` is set to those values (zero-shifting,
/// Kim et al. 2020), so `A − R` is zero where the devices are symmetric. (`R` is subtracted
/// after the read's ADC, not as an analogue current.)
///
/// Units: learning rates are in normalised weight units per unit gradient, as `optim::sgd`'s;
/// `transfer_every` counts vector updates (rows of the estimate's factors: samples, or a
/// convolution's patches). Layers whose tile is not a pulsed crossbar (digital layers, ideal
/// devices) and every bias are trained by plain SGD at `learning_rate`. The rule's estimate is
/// written onto `A` from its factors by stochastic pulse trains; an estimate without factors
/// (perturbative rules) by stochastically rounded whole pulses. The digital buffers, their size
/// and precision are reported by `buffer_floats` (32-bit floats).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/nn/gradients.hpp>

namespace pnn::optim {

/// Which member of the transfer family `transfer_compound` runs.
enum class transfer_algorithm {
  tiki_taka,  ///< Tiki-Taka v1: read columns pulsed onto C at once (Gokmen & Haensch 2020)
  ttv2,       ///< Tiki-Taka v2: a digital buffer between A and C (Gokmen 2021)
  c_ttv2,     ///< chopped TTv2: random input choppers (Rasch et al. 2024)
  agad        ///< AGAD: regular choppers and a dynamic reference (Rasch et al. 2024)
};

/// The algorithm's name as pnn-bench and the docs spell it (`tiki_taka`, `ttv2`, `c_ttv2`, `agad`).
[[nodiscard]] inline const char* to_string(transfer_algorithm a) noexcept {
  switch (a) {
    case transfer_algorithm::tiki_taka: return "tiki_taka";
    case transfer_algorithm::ttv2: return "ttv2";
    case transfer_algorithm::c_ttv2: return "c_ttv2";
    case transfer_algorithm::agad: return "agad";
  }
  return "?";
}

namespace detail {

/// A tile that can host the fast array of a transfer compound: a pulsed crossbar tile that can
/// be copied (a second array of the same devices), re-drawn, pulsed, read and zero-shifted.
template <class Tile>
concept transfer_tile = Tile::is_pulsed && std::copy_constructible<Tile> &&
    requires(Tile& t, const Tile& ct, const layer_gradient<float>& u, rng& g, const float* x, float* y, std::size_t n) {
      t.program(u, g);
      ct.read(x, n, y, g);
      t.prepare(g);
      t.apply_pulse_pairs(n, g);
      { ct.update_granularity() } -> std::convertible_to<double>;
      { t.weight_data() } -> std::same_as<float*>;
      { ct.in_size() } -> std::convertible_to<std::size_t>;
      { ct.out_size() } -> std::convertible_to<std::size_t>;
      t.attach_cost_counter(ct.attached_cost_counter());
    };

/// What a layer without a pulsed tile keeps: nothing.
struct no_transfer_state {
  template <class V>
  void visit_state(V&) {}
};

/// One pulsed layer's compound: the fast array and the digital side of the transfer.
template <class Tile>
struct transfer_layer_state {
  std::optional<Tile> fast{};        ///< A: the array the gradient is pulsed onto
  std::vector<float> reference{};    ///< R (Out × In): the symmetry points A was zero-shifted to
  std::vector<float> buffer{};       ///< H (Out × In), in units of A's dw_min (TTv2 family)
  std::vector<float> dynamic_ref{};  ///< p (Out × In): AGAD's read at each column's last switch
  std::vector<std::uint8_t> chopper_negative{};  ///< per column: chopper c_j = −1
  std::vector<std::uint32_t> column_reads{};     ///< per column: reads since the start
  std::uint64_t next_column = 0;     ///< the column the next transfer reads
  std::uint64_t vector_updates = 0;  ///< rows of factors written onto A so far
  std::uint64_t transfers = 0;       ///< columns read and transferred so far
  layer_gradient<float> scratch{};   ///< the update programmed onto A (reused)

  template <class V>
  void visit_state(V& v) {
    if (fast.has_value()) {
      auto g = v.scope("fast");
      fast->visit_state(v);
    }
    v("reference", reference);
    v("buffer", buffer);
    v("dynamic_reference", dynamic_ref);
    v("chopper_negative", chopper_negative);
    v("column_reads", column_reads);
    v("next_column", next_column);
    v("vector_updates", vector_updates);
    v("transfers", transfers);
  }
};

template <class Layer>
using transfer_slot_t = std::conditional_t<transfer_tile<typename Layer::tile_type>,
                                           transfer_layer_state<typename Layer::tile_type>, no_transfer_state>;

template <class Net, class = std::make_index_sequence<Net::num_layers>>
struct transfer_slots;
template <class Net, std::size_t... I>
struct transfer_slots<Net, std::index_sequence<I...>> {
  using type = std::tuple<transfer_slot_t<typename Net::template layer_type<I>>...>;
};

}  // namespace detail

/// \brief Tiki-Taka v1/v2, chopped TTv2 and AGAD as an optimiser (see the file comment).
///
/// Parameters are an aggregate; `transfer_compound::preset(a)` gives each algorithm's
/// defaults (aihwkit's where it has them). Use it as a rule's optimiser on a network of
/// pulsed crossbars: `learn::backprop<optim::transfer_compound>{{.optimizer =
/// optim::transfer_compound::preset(optim::transfer_algorithm::c_ttv2)}}`.
struct transfer_compound {
  static constexpr const char* name = "transfer_compound";
  transfer_algorithm algorithm = transfer_algorithm::c_ttv2;
  /// η: the SGD rate of digital layers and biases; the transfer rate is `transfer_lr·η(k)`
  /// (aihwkit's `scale_transfer_lr`), so a schedule on η slows the transfer. ≥ 0.
  float learning_rate = 0.1f;
  schedule lr_schedule{};
  /// Rate of the gradient written onto A (absolute, not scheduled: aihwkit's chopped default). > 0.
  float fast_lr = 0.1f;
  float transfer_lr = 1.0f;     ///< relative transfer rate λ/η, ≥ 0
  float transfer_every = 1.0f;  ///< vector updates per column transfer, > 0
  unsigned transfer_bl = 1;     ///< buffered: most pulses per device and transfer, [1, 32]
  float thres_scale = 1.0f;     ///< buffered: the buffer threshold in units of A's dw_min, > 0
  float buffer_momentum = 0.0f; ///< buffered: fraction of H kept after a transfer, [0, 1)
  bool forget_buffer = true;    ///< buffered: H ← momentum·H after a transfer (else H −= (1−momentum)·n)
  /// c_ttv2: probability that a column's chopper flips after its read; agad: 1/period. [0, 1].
  float in_chop_prob = 0.1f;
  bool zero_shift = true;              ///< calibrate R to A's symmetry points (not used by agad)
  std::size_t zero_shift_pairs = 1000; ///< up/down pulse pairs of the calibration, ≥ 1
  std::uint64_t seed = 0x7a7a;         ///< draws of A's devices, its pulse trains and the choppers
  rng_engine engine = rng_engine::philox;  ///< the generator of those draws

  /// Each algorithm with its defaults: Tiki-Taka v1 transfers with λ = η, the buffered ones
  /// fire one pulse per transfer (aihwkit's `transfer_update.desired_bl = 1`); c-TTv2 flips
  /// choppers with probability 0.1, AGAD every 10 reads and without zero-shifting.
  [[nodiscard]] static transfer_compound preset(transfer_algorithm a) {
    transfer_compound t;
    t.algorithm = a;
    if (a == transfer_algorithm::tiki_taka || a == transfer_algorithm::ttv2) t.in_chop_prob = 0.0f;
    if (a == transfer_algorithm::agad) t.zero_shift = false;
    return t;
  }

  template <class Net>
  struct state {
    std::size_t step = 0;
    typename detail::transfer_slots<Net>::type layers{};
    /// Checkpoint contents (pnn/core/state_format.hpp): every fast array's devices and state,
    /// buffers, references, choppers and counters.
    template <class V>
    void visit_state(V& v) {
      v("step", step);
      std::apply(
          [&](auto&... slot) {
            std::size_t i = 0;
            ((
                 [&] {
                   auto g = v.scope("layer", i++);
                   slot.visit_state(v);
                 }()),
             ...);
          },
          layers);
    }
  };

  /// Never keeps factors in the rule's sense: the update to C is formed here.
  [[nodiscard]] bool keeps_factors() const noexcept { return false; }

  /// \pre rates and thresholds in the ranges above (else `pnn::error` naming the parameter).
  void validate() const {
    const char* o = "optim::transfer_compound";
    if (!(learning_rate >= 0 && std::isfinite(learning_rate))) detail::parameter_error(o, "learning_rate must be >= 0 and finite");
    if (!(fast_lr > 0 && std::isfinite(fast_lr))) detail::parameter_error(o, "fast_lr must be > 0 and finite");
    if (!(transfer_lr >= 0 && std::isfinite(transfer_lr))) detail::parameter_error(o, "transfer_lr must be >= 0 and finite");
    if (!(transfer_every > 0 && std::isfinite(transfer_every))) detail::parameter_error(o, "transfer_every must be > 0 and finite");
    if (transfer_bl < 1 || transfer_bl > 32) detail::parameter_error(o, "transfer_bl must be in [1, 32]");
    if (!(thres_scale > 0 && std::isfinite(thres_scale))) detail::parameter_error(o, "thres_scale must be > 0 and finite");
    if (!(buffer_momentum >= 0 && buffer_momentum < 1)) detail::parameter_error(o, "buffer_momentum must be in [0, 1)");
    if (!(in_chop_prob >= 0 && in_chop_prob <= 1)) detail::parameter_error(o, "in_chop_prob must be in [0, 1]");
    if (algorithm == transfer_algorithm::agad && !(in_chop_prob > 0))
      detail::parameter_error(o, "agad needs in_chop_prob > 0 (its chopper period is 1/in_chop_prob reads)");
    if (zero_shift && algorithm != transfer_algorithm::agad && zero_shift_pairs == 0)
      detail::parameter_error(o, "zero_shift_pairs must be >= 1 when zero_shift is on");
    lr_schedule.validate(o);
  }

  /// Creates every pulsed layer's fast array (own devices, zero-shifted) for `net`; idempotent.
  /// Called by the rules' `make_state`/`kept_state_for`, so a checkpoint can be loaded into a
  /// fresh state, and by `apply` on first use.
  template <class Net>
  void prepare_state(const Net& net, state<Net>& s) const {
    net.for_each_layer([&](const auto& l, std::size_t i) {
      using L = std::remove_cvref_t<decltype(l)>;
      if constexpr (detail::transfer_tile<typename L::tile_type>) prepare_layer(l.tile, i, slot_of<Net>(s, i, l));
    });
  }

  /// Digital layers and biases: SGD at η. Pulsed layers: the estimate is pulsed onto A, due
  /// columns of A are read, and `g` becomes the update of C (whole pulses or, for v1, the
  /// transfer's factors) for the rule to program.
  template <class Net>
  void apply(gradients<Net>& g, state<Net>& s, const Net& net) const {
    using T = typename Net::value_type;
    const double eta = double(learning_rate) * lr_schedule.factor(s.step);
    const std::size_t step = s.step++;
    net.for_each_layer([&](const auto& l, std::size_t i) {
      using L = std::remove_cvref_t<decltype(l)>;
      if constexpr (detail::transfer_tile<typename L::tile_type>) {
        static_assert(std::is_same_v<T, float>, "optim::transfer_compound: pulsed crossbars hold float weights");
        if (!g[i].parameter_space) {
          auto& ls = slot_of<Net>(s, i, l);
          prepare_layer(l.tile, i, ls);
          transfer_layer(l.tile, g[i], ls, eta, rng(seed, 0x7ace, engine).split(i).split(step));
          return;
        }
      }
      g[i].scale(static_cast<T>(eta));
    });
  }

  /// Digital floats the compound keeps for `net` beyond the weights: H, R and AGAD's p per
  /// pulsed layer (whichever the algorithm uses), 32-bit each.
  template <class Net>
  [[nodiscard]] std::size_t buffer_floats(const Net& net) const {
    std::size_t n = 0;
    net.for_each_layer([&](const auto& l, std::size_t) {
      using L = std::remove_cvref_t<decltype(l)>;
      if constexpr (detail::transfer_tile<typename L::tile_type>) {
        const std::size_t e = l.tile.in_size() * l.tile.out_size();
        if (buffered()) n += e;
        if (uses_reference()) n += e;
        if (algorithm == transfer_algorithm::agad) n += e;
      }
    });
    return n;
  }

 private:
  [[nodiscard]] bool buffered() const noexcept { return algorithm != transfer_algorithm::tiki_taka; }
  [[nodiscard]] bool chopped() const noexcept {
    return algorithm == transfer_algorithm::c_ttv2 || algorithm == transfer_algorithm::agad;
  }
  [[nodiscard]] bool uses_reference() const noexcept { return zero_shift && algorithm != transfer_algorithm::agad; }

  template <class Net, class Layer>
  static auto& slot_of(state<Net>& s, std::size_t i, const Layer&) {
    auto* found = static_cast<detail::transfer_layer_state<typename Layer::tile_type>*>(nullptr);
    std::size_t k = 0;
    std::apply(
        [&](auto&... slot) {
          (
              [&] {
                using S = std::remove_cvref_t<decltype(slot)>;
                if constexpr (std::is_same_v<S, detail::transfer_layer_state<typename Layer::tile_type>>)
                  if (k == i) found = &slot;
                ++k;
              }(),
              ...);
        },
        s.layers);
    return *found;
  }

  template <class Tile>
  void prepare_layer(const Tile& c, std::size_t i, detail::transfer_layer_state<Tile>& ls) const {
    if (ls.fast.has_value()) return;
    const std::size_t in = c.in_size(), out = c.out_size(), n = in * out;
    rng g(seed, 0xfa57, engine);
    g = g.split(i);
    Tile a = c;  // the same periphery and device model; its own devices follow
    // The gradient reaches A as pulse trains of its factors, whatever C's update mode.
    if constexpr (requires { a.set_params(a.parameters()); a.parameters().update = decltype(a.parameters().update)::stochastic_pulses; }) {
      auto p = a.parameters();
      p.update = decltype(p.update)::stochastic_pulses;
      a.set_params(p);
    }
    std::fill(a.weight_data(), a.weight_data() + n, 0.0f);
    rng gd = g.split(0);
    a.prepare(gd);
    ls.reference.assign(uses_reference() ? n : 0, 0.0f);
    if (uses_reference()) {
      rng gz = g.split(1);
      a.apply_pulse_pairs(zero_shift_pairs, gz);
      std::copy(a.weight_data(), a.weight_data() + n, ls.reference.begin());
    }
    ls.buffer.assign(buffered() ? n : 0, 0.0f);
    ls.dynamic_ref.assign(algorithm == transfer_algorithm::agad ? n : 0, 0.0f);
    ls.chopper_negative.assign(chopped() ? in : 0, std::uint8_t{0});
    ls.column_reads.assign(algorithm == transfer_algorithm::agad ? in : 0, 0u);
    ls.fast.emplace(std::move(a));
  }

  // Pulses the estimate onto A (chopped), reads the due columns and turns them into C's update.
  template <class Tile>
  void transfer_layer(const Tile& c, layer_gradient<float>& g, detail::transfer_layer_state<Tile>& ls, double eta,
                      rng gr) const {
    Tile& a = *ls.fast;
    a.attach_cost_counter(c.attached_cost_counter());
    const std::size_t in = c.in_size(), out = c.out_size();
    const float dw = static_cast<float>(a.update_granularity());
    auto& u = ls.scratch;
    if (u.bias.size() != out) u.bias = xt::zeros<float>({out});
    std::size_t rows = 1;
    if (g.factored && g.input.size() > 0) {
      rows = g.input.shape()[0];
      u.input = g.input;
      u.delta = g.delta;
      if (chopped())
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t j = 0; j < in; ++j)
            if (ls.chopper_negative[j] != 0) u.input(r, j) = -u.input(r, j);
      u.factor_scale = fast_lr * g.factor_scale;
      u.factored = true;
      u.weight.resize({0, 0});
    } else {
      // No factors (a perturbative estimate): whole pulses, rounded stochastically so that the
      // expected change is the estimate's.
      u.weight.resize({out, in});
      rng gs = gr.split(3);
      for (std::size_t o = 0; o < out; ++o)
        for (std::size_t j = 0; j < in; ++j) {
          const float want = fast_lr * g.weight(o, j) * ((chopped() && ls.chopper_negative[j] != 0) ? -1.0f : 1.0f) / dw;
          const float lo = std::floor(want);
          u.weight(o, j) = (lo + (gs.uniform() < want - lo ? 1.0f : 0.0f)) * dw;
        }
      u.factored = false;
    }
    rng ga = gr.split(1);
    a.program(u, ga);

    // Columns due: one per `transfer_every` vector updates.
    const std::uint64_t before = ls.vector_updates;
    ls.vector_updates += rows;
    const auto due = static_cast<std::size_t>(std::floor(double(ls.vector_updates) / double(transfer_every)) -
                                              std::floor(double(before) / double(transfer_every)));
    const float lambda = static_cast<float>(double(transfer_lr) * eta);
    g.scale(static_cast<float>(eta));  // the bias: SGD; the weight part is replaced below
    g.weight.resize({out, in});
    g.weight.fill(0.0f);
    g.factored = false;
    if (due == 0 || lambda == 0.0f) return;

    std::vector<float> onehot(due * in, 0.0f), v(due * out);
    std::vector<std::size_t> column(due);
    for (std::size_t t = 0; t < due; ++t) {
      column[t] = static_cast<std::size_t>(ls.next_column++ % in);
      onehot[t * in + column[t]] = 1.0f;
    }
    rng gread = gr.split(2);
    a.read(onehot.data(), due, v.data(), gread);
    ls.transfers += due;
    rng gchop = gr.split(4);
    const std::size_t period = algorithm == transfer_algorithm::agad
                                   ? std::max<std::size_t>(2, static_cast<std::size_t>(std::lround(1.0 / double(in_chop_prob))))
                                   : 0;
    const float to_steps = lambda / (thres_scale * dw);
    for (std::size_t t = 0; t < due; ++t) {
      const std::size_t j = column[t];
      float* vt = v.data() + t * out;
      if (uses_reference())
        for (std::size_t o = 0; o < out; ++o) vt[o] -= ls.reference[o * in + j];
      const float chop = (chopped() && ls.chopper_negative[j] != 0) ? -1.0f : 1.0f;
      if (algorithm == transfer_algorithm::tiki_taka) {
        // C[:, j] += λ v, as factors of a one-hot input (the update is subtracted).
        for (std::size_t o = 0; o < out; ++o) g.weight(o, j) -= lambda * vt[o];
      } else {
        for (std::size_t o = 0; o < out; ++o) {
          const float read = algorithm == transfer_algorithm::agad ? vt[o] - ls.dynamic_ref[o * in + j] : vt[o];
          float& h = ls.buffer[o * in + j];
          h += to_steps * chop * read;
          if (std::abs(h) < 1.0f) continue;
          const float n = std::clamp(std::trunc(h), -float(transfer_bl), float(transfer_bl));
          g.weight(o, j) -= n * dw;  // n pulses up C (the update is subtracted)
          h = forget_buffer ? buffer_momentum * h : h - (1.0f - buffer_momentum) * n;
        }
      }
      if (algorithm == transfer_algorithm::c_ttv2) {
        if (in_chop_prob > 0 && gchop.uniform() < in_chop_prob) ls.chopper_negative[j] ^= 1u;
      } else if (algorithm == transfer_algorithm::agad) {
        if (++ls.column_reads[j] % period == 0) {
          ls.chopper_negative[j] ^= 1u;
          for (std::size_t o = 0; o < out; ++o) ls.dynamic_ref[o * in + j] = vt[o];
        }
      }
    }
    if (algorithm == transfer_algorithm::tiki_taka) {
      // Keep the factors (one-hot inputs, read columns) so that C is pulsed by trains.
      g.input.resize({due, in});
      std::copy(onehot.begin(), onehot.end(), g.input.begin());
      g.delta.resize({due, out});
      std::copy(v.begin(), v.end(), g.delta.begin());
      g.factor_scale = -lambda;
      g.factored = true;
    }
  }
};

}  // namespace pnn::optim
