// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::crossbar<Device>`: a memristive crossbar read through its periphery (DAC,
/// output noise, ADC, noise and bound management) and programmed with pulses (docs/physics.md).
///
/// Weights are in normalised units (aihwkit's convention): each `w` is a differential pair
/// `w = (G⁺ − G⁻)/g_ref`, `G± ∈ [g_min, g_max]`, `g_ref = (g_max − g_min)/w_range` where
/// `w_range = max(|w_min|, w_max)` is the device's nominal weight range; `conductances()` reports
/// the pair in µS. A read computes `W x` as Ohm's and Kirchhoff's laws do, through aihwkit's
/// "IO parameters": noise management scales each input vector by its abs-max, the DAC clips and
/// quantises it, output noise is added to the analogue result, the ADC clips and quantises it,
/// and bound management re-reads saturated vectors with half the input scale. `read_transposed`
/// drives the columns and senses the rows (`Wᵀ y`, the backward pass).
///
/// `program` realises a rule's update with the device physics: stochastic pulse trains from the
/// batch's outer-product factors (Gokmen & Vlasov 2016; aihwkit's default) or deterministic
/// pulse counts `round(|ΔW|/dw_min)` from the dense update — the path of `optim::mixed_precision`,
/// the digital accumulator that transfers whole steps (what saturating soft-bounds devices need,
/// since every pulse pair of a noisy train pulls a soft-bounds weight towards its symmetry point
/// and acts as weight decay of strength ∝ lr·E|x δ|/w_max). The pulsed update is bit-parallel:
/// each row/column draws its `BL` slot bits as one `uint32` (eight masks per AVX2 register of
/// Philox words: one word per slot for short trains, 16 words for all 32 slots by a
/// binary-expansion AND/OR construction for long ones), and the coincidences of row `i` and column `j` are `popcount(x_mask & d_mask)`, found
/// through per-slot bitsets of the active rows so that only elements that receive pulses are
/// visited.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <span>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/noise/quantize.hpp>
#include <pnn/physics/devices.hpp>
#include <pnn/physics/pcm_inference.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/gemm.hpp>
#include <pnn/simd/random.hpp>
#include <pnn/simd/work.hpp>

namespace pnn::physics {

/// Noise management: how the input vector is scaled before the DAC (aihwkit `NoiseManagementType`).
enum class io_noise_management {
  none,    ///< inputs go to the DAC as they are
  abs_max  ///< each input vector is divided by its max |x| and the output multiplied back
};

/// Bound management: what happens when an output saturates the ADC (aihwkit `BoundManagementType`).
enum class io_bound_management {
  none,      ///< saturated outputs stay clipped
  iterative  ///< re-read the vector with half the input scale, up to `max_bound_iterations` times
};

/// How `program` turns an update into pulses.
enum class update_mode {
  deterministic_pulses,  ///< n = round(|ΔW|/dw_min) pulses per element from the dense update
  stochastic_pulses  ///< stochastic pulse trains from the factored update (aihwkit default)
};
// Mixed precision (a digital accumulator transferring whole steps) is a learning decision, not
// device physics: `optim::mixed_precision` around the rule's optimiser, which hands the crossbar
// whole-step updates that it fires as pulse counts.

/// Periphery of one read direction (aihwkit's IO parameters). Units: inputs and outputs in
/// normalised units (inputs of the DAC in [−inp_bound, inp_bound], outputs of the array in units
/// of w·x).
struct io_params {
  bool is_perfect = false;  ///< true: no DAC, ADC, output noise, bounds or management (exact GEMM)
  float inp_bound = 1.0f;   ///< DAC range [−inp_bound, inp_bound], > 0
  unsigned inp_res = 7;     ///< DAC resolution in bits, [1, 24]: 2^bits − 1 levels
  float out_bound = 12.0f;  ///< ADC range [−out_bound, out_bound], > 0
  unsigned out_res = 9;     ///< ADC resolution in bits, [1, 24]
  float out_noise = 0.06f;  ///< σ of additive Gaussian output noise before the ADC, ≥ 0
  /// σ of additive Gaussian weight noise drawn anew for every read, relative to the tile's
  /// max|w| (hardware-aware training; aihwkit `w_noise`), ≥ 0. Applies even when `is_perfect`.
  float w_noise = 0.0f;
  io_noise_management noise_management = io_noise_management::abs_max;
  io_bound_management bound_management = io_bound_management::iterative;
  unsigned max_bound_iterations = 5;  ///< halvings tried by iterative bound management
  /// First-order IR drop (0 = off): the drive of input line i is reduced by
  /// `ir_drop·(i + 1)/N·mean_k|x_k|` (lines far from the driver lose more, in proportion to
  /// the total drive), a linearisation of the wire-resistance drop in the spirit of aihwkit's
  /// forward IR-drop model. ≥ 0.
  float ir_drop = 0.0f;

  /// Rejects bad parameters with a clear error.
  void validate() const {
    PNN_EXPECTS(noise::valid_quantizer_bits(inp_res) && noise::valid_quantizer_bits(out_res),
                "crossbar io_params: inp_res and out_res must be in [1, 24] bits");
    PNN_EXPECTS(inp_bound > 0 && out_bound > 0 && std::isfinite(inp_bound) && std::isfinite(out_bound),
                "crossbar io_params: inp_bound and out_bound must be positive and finite");
    PNN_EXPECTS(out_noise >= 0 && w_noise >= 0 && ir_drop >= 0,
                "crossbar io_params: out_noise, w_noise and ir_drop must be >= 0");
    // Abs-max noise management divides each input vector by its max |x|, so the DAC sees values
    // in [−1, 1]: any other range clips (< 1) or wastes levels (> 1) of every vector.
    PNN_EXPECTS(is_perfect || noise_management != io_noise_management::abs_max || inp_bound == 1.0f,
                "crossbar io_params: abs-max noise management needs inp_bound = 1");
    PNN_EXPECTS(is_perfect || bound_management != io_bound_management::iterative ||
                    (max_bound_iterations >= 1 && max_bound_iterations <= 20),
                "crossbar io_params: iterative bound management needs max_bound_iterations in [1, 20]");
  }
  /// Ideal periphery: infinite resolution, no noise, no bounds.
  [[nodiscard]] static io_params ideal() noexcept {
    io_params p;
    p.is_perfect = true;
    p.out_noise = 0;
    return p;
  }
};

/// \brief A memristive crossbar substrate whose devices follow `Device` (a `physics::devices`
/// model). `crossbar<devices::ideal>` with `params::ideal()` equals `physics::digital`.
template <crossbar_device Device>
struct crossbar {
  using value_type = float;
  using device_type = Device;
  static constexpr const char* name = "crossbar";

  /// Periphery, update and device parameters (aihwkit's `SingleRPUConfig` in one aggregate).
  struct params {
    io_params forward{};  ///< forward read periphery
    /// Backward (transposed) read periphery; aihwkit reads backwards without bound management.
    io_params backward{.bound_management = io_bound_management::none};
    update_mode update = update_mode::stochastic_pulses;
    unsigned desired_bl = 31;          ///< bit-line length BL: pulse slots per update, [1, 32]
    bool update_management = true;     ///< balance row/column probabilities (A·B fixed)
    /// Shorten BL to ⌈lr·x_max·δ_max/dw_min⌉ when that is smaller; needs `update_management`.
    /// With both, row and column probabilities stay ≤ 1 unless even `desired_bl` slots are too few
    /// (lr·x_max·δ_max > dw_min·desired_bl), where both are clipped at 1 and the update falls short.
    bool update_bl_management = true;
    float g_min = 0.0f;                ///< conductance of w = 0 on each device, µS, ≥ 0
    float g_max = 25.0f;               ///< conductance at the nominal weight range, µS, > g_min
    /// Largest physical array, in input lines (W's columns) and output lines (W's rows): a
    /// larger layer is split into a grid of arrays whose outputs are summed digitally, each
    /// with its own periphery (aihwkit's `max_input_size`/`max_output_size`). ≥ 1.
    std::size_t max_input_size = 512;
    std::size_t max_output_size = 512;  ///< see `max_input_size`
    Device device{};

    /// Rejects bad parameters with a clear error.
    void validate() const {
      forward.validate();
      backward.validate();
      PNN_EXPECTS(desired_bl >= 1 && desired_bl <= 32, "crossbar params: desired_bl must be in [1, 32]");
      // BL management sizes BL for the product of the row and column probabilities; without
      // update management one of them can then exceed 1 and would be clipped, biasing the update
      // (aihwkit uses the two together).
      PNN_EXPECTS(!update_bl_management || update_management,
                  "crossbar params: update_bl_management needs update_management (else pulse probabilities exceed 1)");
      PNN_EXPECTS(g_min >= 0 && g_min < g_max && std::isfinite(g_max), "crossbar params: need 0 <= g_min < g_max");
      PNN_EXPECTS(max_input_size >= 1 && max_output_size >= 1,
                  "crossbar params: max_input_size and max_output_size (the physical array) must be >= 1");
      device.validate();
    }
    /// Ideal periphery both ways (no DAC/ADC, noise or bounds); the update stays the device's.
    [[nodiscard]] static params ideal() {
      params p;
      p.forward = io_params::ideal();
      p.backward = io_params::ideal();
      return p;
    }
  };

  /// One layer's crossbar: weights `W` (Out × In, normalised units), digital bias, per-device
  /// parameters and, after `program_inference`, the PCM inference state.
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = float;
    static constexpr std::size_t in_extent = In;
    static constexpr std::size_t out_extent = Out;
    static constexpr bool is_pulsed = Device::is_pulsed;
    /// Pulsed devices are driven by the factors of a batch update (stochastic pulse trains).
    static constexpr bool uses_update_factors = Device::is_pulsed;

    tile() = default;
    /// A tile with parameters `p` (validated).
    explicit tile(const params& p) { set_params(p); }

    /// Sets the shape (dynamic extents) and zeroes weights, bias and device state.
    void resize(std::size_t in, std::size_t out) {
      weight_.resize(out, in);
      bias_.resize(1, out);
      if constexpr (is_pulsed) {
        cells_.resize(out, 4 * in);
        aux_.resize(out, in);
      }
      inference_.clear();
    }
    /// Physical arrays the layer occupies: ⌈In/max_input_size⌉ · ⌈Out/max_output_size⌉.
    [[nodiscard]] std::size_t physical_arrays() const noexcept {
      const std::size_t a = (in_size() + params_.max_input_size - 1) / params_.max_input_size;
      return a * ((out_size() + params_.max_output_size - 1) / params_.max_output_size);
    }
    [[nodiscard]] std::size_t in_size() const noexcept { return weight_.cols(); }
    [[nodiscard]] std::size_t out_size() const noexcept { return weight_.rows(); }

    /// Replaces the parameters (validated first; nothing changes on error). Device parameters
    /// take effect for variation at the next `prepare`.
    void set_params(const params& p) {
      p.validate();
      params_ = p;
    }
    [[nodiscard]] const params& parameters() const noexcept { return params_; }

    /// Reports every read (vectors, MACs, and DAC/ADC conversions unless the periphery is
    /// perfect; re-reads of bound management included) and every pulse fired into `c`
    /// (`tile_hooks::attach_cost_counter`; null detaches).
    void attach_cost_counter(cost_counter* c) noexcept { cost_.attach(c); }
    /// The counter reads and pulses are reported to (null when none is attached): a compound
    /// update's extra arrays report to the same one (`optim::transfer_compound`).
    [[nodiscard]] cost_counter* attached_cost_counter() const noexcept { return cost_.counter(); }
    /// Reports `n` devices written to a value (a perturbative rule setting W through
    /// `set_tile_parameters`): one programming slot, `n` parameter writes.
    void report_parameter_writes(std::uint64_t n) const {
      cost_.report([&] { return physical_events{.parameter_writes = n, .pulse_slots = 1}; });
    }

    /// The nominal step of one pulse (`device.dw_min`) for pulsed devices, 0 otherwise
    /// (`tile_hooks::update_granularity`, used by `optim::mixed_precision`).
    [[nodiscard]] double update_granularity() const noexcept {
      if constexpr (is_pulsed) return with_device([](const auto& d) { return double(d.dw_min); });
      else return 0.0;
    }

    /// Draws every device's own parameters (device-to-device variation) and clips the current
    /// weights into the devices' bounds. Called by the layer after it drew initial weights.
    void prepare(rng& g) {
      if constexpr (is_pulsed) {
        with_device([&](const auto& d) {
          const std::size_t n = weight_.size();
          for (std::size_t e = 0; e < n; ++e) {
            const devices::device_cell c = d.draw_cell(g);
            float* ce = cells_.data() + 4 * e;
            ce[0] = c.dw_up;
            ce[1] = c.dw_down;
            ce[2] = c.b_min;
            ce[3] = c.b_max;
            d.write(weight_.data()[e], aux_.data()[e], weight_.data()[e], c);
          }
        });
      }
      inference_.clear();
    }

    /// `y(n × Out) = x(n × In) Wᵀ` through the forward periphery. The bias is added by the layer.
    void read(const float* x, std::size_t n, float* y, rng& g) const {
      mvm<false>(params_.forward, x, n, y, g);
    }
    /// `dx(n × In) = dy(n × Out) W` through the backward periphery (drive columns, sense rows).
    void read_transposed(const float* dy, std::size_t n, float* dx, rng& g) const {
      mvm<true>(params_.backward, dy, n, dx, g);
    }

    /// Programs an update (to subtract): `W ← W − ΔW` as the device allows, `b ← b − Δb`
    /// digitally. A factored update (`factored`, `input` h, `delta` δ, `factor_scale` s with
    /// `ΔW = s·δᵀh`) drives stochastic pulse trains; otherwise, or in deterministic mode,
    /// `round(|ΔW|/dw_min)` pulses per element (whole-step updates from `optim::mixed_precision`
    /// fire exactly their count). Clears any inference programming.
    template <class U>
    void program(const U& update, rng& g) {
      const simd::kernel_work_pause simulated;  // the array's physics, not digital work
      const float* db = update.bias_data();
      for (std::size_t j = 0; j < out_size(); ++j) bias_.data()[j] -= db[j];
      if constexpr (!is_pulsed) {
        simd::axpy<float>(weight_.size(), -1.0f, update.weight_data(), weight_.data());
      } else {
        bool done = false;
        if constexpr (requires {
                        update.factored;
                        update.input.data();
                        update.delta.data();
                        update.factor_scale;
                      }) {
          if (update.factored && params_.update == update_mode::stochastic_pulses) {
            const std::size_t n = update.input.shape()[0];
            PNN_EXPECTS(update.input.size() == n * in_size() && update.delta.size() == n * out_size(),
                        "crossbar::program: factors do not match the tile's shape");
            pulse_trains(update.input.data(), update.delta.data(), n, static_cast<float>(update.factor_scale), g);
            done = true;
          }
        }
        if (!done) {
          pulse_counts(update.weight_data(), g);
        }
      }
      inference_.clear();
    }

    /// Drives every device with `pairs` alternating up/down pulses (cycle-to-cycle noise
    /// included). An asymmetric device then settles where its up and down steps are equal — its
    /// symmetry point, `w* = (Δw_up − Δw_down)/(Δw_up/b_max − Δw_down/b_min)` for soft bounds —
    /// which is how a reference array is calibrated for Tiki-Taka training ("zero-shifting",
    /// Kim et al. 2020). All devices are pulsed in parallel: `2·pairs` pulse slots. No effect
    /// on ideal devices. Clears any inference programming.
    void apply_pulse_pairs(std::size_t pairs, rng& g) {
      if constexpr (is_pulsed) {
        const simd::kernel_work_pause simulated;
        with_device([&](const auto& d) {
          normal_source ns(g.split(0x5e7));
          for (std::size_t e = 0; e < weight_.size(); ++e) {
            const devices::device_cell c = cell(e);
            float& w = weight_.data()[e];
            float& a = aux_.data()[e];
            for (std::size_t p = 0; p < pairs; ++p) {
              d.pulse(w, a, true, c, ns.next());
              d.pulse(w, a, false, c, ns.next());
            }
          }
        });
        cost_.report([&] {
          return physical_events{.pulses = 2 * pairs * weight_.size(), .pulse_slots = 2 * pairs};
        });
      } else {
        (void)pairs, (void)g;
      }
      inference_.clear();
    }

    /// Writes target weights (clipped into each device's bounds) and bias directly: a
    /// deployment, reported as one write of every device (`report_parameter_writes`).
    void set_weights(const float* w, const float* b, rng&) {
      if constexpr (is_pulsed) {
        with_device([&](const auto& d) {
          for (std::size_t e = 0; e < weight_.size(); ++e) d.write(weight_.data()[e], aux_.data()[e], w[e], cell(e));
        });
      } else {
        std::copy(w, w + weight_.size(), weight_.data());
      }
      for (std::size_t j = 0; j < out_size(); ++j) bias_.data()[j] = b[j];
      inference_.clear();
      report_parameter_writes(weight_.size());
    }
    /// The weights reads use: the programmed (drifted) ones after `program_inference`/`set_time`.
    void effective_weights(float* w) const {
      const float* src = active_weights();
      const float s = inference_.programmed() ? inference_.output_scale() : 1.0f;
      for (std::size_t e = 0; e < weight_.size(); ++e) w[e] = src[e] * s;
    }

    [[nodiscard]] float* weight_data() noexcept { return weight_.data(); }
    [[nodiscard]] const float* weight_data() const noexcept { return weight_.data(); }
    [[nodiscard]] float* bias_data() noexcept { return bias_.data(); }
    [[nodiscard]] const float* bias_data() const noexcept { return bias_.data(); }

    /// Reference conductance: `w = (G⁺ − G⁻)/g_ref`, µS per weight unit.
    [[nodiscard]] float g_ref() const noexcept {
      return (params_.g_max - params_.g_min) / params_.device.weight_range();
    }
    /// The pair of conductances (µS) of every weight, Out × In each.
    void conductances(float* g_plus, float* g_minus) const {
      const float r = g_ref(), g0 = params_.g_min;
      const bool pair = pair_devices();
      for (std::size_t e = 0; e < weight_.size(); ++e) {
        const float w = weight_.data()[e];
        float gp = std::max(w, 0.0f), gm = std::max(-w, 0.0f);
        if (pair) {
          gm = aux_.data()[e];
          gp = w + gm;
        }
        g_plus[e] = g0 + r * gp;
        g_minus[e] = g0 + r * gm;
      }
    }
    /// Writes every pair of conductances (µS, Out × In each), as a measured or externally trained
    /// state is loaded onto an array: `w = (G⁺ − G⁻)/g_ref` after each device is clipped into its
    /// own range (`[g_min, g_min + g_ref·b_max]` for `G⁺`, `[g_min, g_min − g_ref·b_min]` for `G⁻`).
    /// Pair devices (PCM) keep both conductances as written; single bipolar devices hold only their
    /// difference. Clears any inference programming.
    /// \pre every value finite and ≥ g_min; otherwise `pnn::error` and nothing changes.
    void set_conductances(const float* g_plus, const float* g_minus) {
      const std::size_t n = weight_.size();
      const float r = g_ref(), g0 = params_.g_min;
      const bool pair = pair_devices();
      for (std::size_t e = 0; e < n; ++e)
        PNN_EXPECTS(std::isfinite(g_plus[e]) && std::isfinite(g_minus[e]) && g_plus[e] >= g0 && g_minus[e] >= g0,
                    "crossbar::set_conductances: conductances must be finite and >= g_min (µS)");
      for (std::size_t e = 0; e < n; ++e) {
        float gp = (g_plus[e] - g0) / r, gm = (g_minus[e] - g0) / r;
        if constexpr (is_pulsed) {
          const devices::device_cell c = cell(e);
          if (pair) {
            gp = std::min(gp, c.b_max);
            gm = std::min(gm, -c.b_min);
            weight_.data()[e] = gp - gm;
            aux_.data()[e] = gm;
          } else {
            weight_.data()[e] = std::clamp(gp - gm, c.b_min, c.b_max);
          }
        } else {
          weight_.data()[e] = gp - gm;
        }
      }
      inference_.clear();
    }
    /// Device `e`'s own parameters (row-major index `j·In + i`).
    [[nodiscard]] devices::device_cell cell(std::size_t e) const noexcept
      requires is_pulsed
    {
      const float* ce = cells_.data() + 4 * e;
      return {ce[0], ce[1], ce[2], ce[3]};
    }

    /// Programs the current weights onto PCM conductance pairs for inference (docs/physics.md,
    /// "PCM inference"); reads then use the programmed weights at time `t₀`.
    void program_inference(const pcm_inference_params& p, rng& g) { inference_.program(weight_.data(), weight_.size(), p, g); }
    /// Evaluates the programmed tile `seconds` (≥ 0) after its reference read, `seconds + t₀`
    /// after programming (drift, 1/f read noise, drift compensation).
    /// \pre `program_inference` was called.
    void set_time(double seconds, rng& g) { inference_.set_time(seconds, g); }
    /// Global drift compensation on/off (applies at the next `set_time`).
    void set_drift_compensation(bool on) noexcept { inference_.set_drift_compensation(on); }
    /// Back to reading the trained weights.
    void clear_inference() noexcept { inference_.clear(); }
    [[nodiscard]] const pcm_inference_state& inference() const noexcept { return inference_; }

    /// Checkpoint contents (pnn/core/state_format.hpp): the weights and bias; for pulsed
    /// devices each device's drawn parameters (step sizes, bounds) and the pair's state; and the
    /// programmed PCM inference state. The device model's parameters are configuration: a
    /// checkpoint is loaded into a crossbar built with the same ones.
    template <class V>
    void visit_state(V& v) {
      v("weight", std::span<float>(weight_.data(), weight_.size()));
      v("bias", std::span<float>(bias_.data(), bias_.size()));
      if constexpr (is_pulsed) {
        v("cells", std::span<float>(cells_.data(), cells_.size()));
        v("pair_state", std::span<float>(aux_.data(), aux_.size()));
      }
      auto g = v.scope("pcm_inference");
      inference_.visit_state(v);
    }
   private:
    [[nodiscard]] const float* active_weights() const noexcept {
      return inference_.programmed() ? inference_.weights() : weight_.data();
    }

    // One read direction: y(n × m) = x(n × k)·op(W) through the periphery `io`.
    // Scratch of one read. Each thread has its own, so const reads of one tile are safe from
    // several threads at once (tests/substrate.cpp, "concurrent reads").
    struct read_workspace {
      std::vector<float> xs{}, xs_row{}, scale{}, wn{};
    };
    static read_workspace& workspace() {
      static thread_local read_workspace w;
      return w;
    }

    // One read direction: y(n × m) = x(n × k)·op(W) through the periphery `io`. A layer larger
    // than one physical array (`max_input_size` × `max_output_size`) is read as a grid of arrays:
    // each block of W gets its slice of the inputs through its own DACs, noise and bound
    // management and its own ADCs, and the blocks' outputs are summed digitally (aihwkit's and
    // CrossSim's mapping of large layers). A layer that fits is one block and draws exactly the
    // streams it always did.
    template <bool Transposed>
    void mvm(const io_params& io, const float* x, std::size_t n, float* y, rng& g) const {
      const simd::kernel_work_pause simulated;  // the array's physics, not digital work
      const std::size_t k = Transposed ? out_size() : in_size();
      const std::size_t m = Transposed ? in_size() : out_size();
      const std::size_t kc = std::min(k, Transposed ? params_.max_output_size : params_.max_input_size);
      const std::size_t mc = std::min(m, Transposed ? params_.max_input_size : params_.max_output_size);
      const float* W = active_weights();
      read_workspace& ws = workspace();
      if (io.w_noise > 0) {
        ws.wn.assign(W, W + weight_.size());
        rng gw = g.split(0x77);
        add_normal(gw, ws.wn.data(), ws.wn.size(), io.w_noise * simd::abs_max<float>(ws.wn.size(), W));
        W = ws.wn.data();
      }
      if (kc == k && mc == m) {
        read_block<Transposed>(io, W, x, k, n, 0, k, 0, m, y, g, true);
        return;
      }
      std::vector<float> part(n * mc);
      std::fill(y, y + n * m, 0.0f);
      std::size_t b = 0;
      for (std::size_t k0 = 0; k0 < k; k0 += kc) {
        for (std::size_t m0 = 0; m0 < m; m0 += mc, ++b) {
          const std::size_t kb = std::min(kc, k - k0), mb = std::min(mc, m - m0);
          rng gb = g.split(0xb10c).split(b);
          read_block<Transposed>(io, W, x + k0, k, n, k0, kb, m0, mb, part.data(), gb, b == 0);
          for (std::size_t r = 0; r < n; ++r) simd::axpy<float>(mb, 1.0f, part.data() + r * mb, y + r * m + m0);
        }
      }
    }

    // One physical array: the block of W whose input lines are [k0, k0 + kb) and output lines
    // [m0, m0 + mb) of this read direction, driven by `x` (n rows of stride `ldx`, already
    // offset to k0), writing y (n × mb). `first`: this block reports the read itself (passes
    // and array vectors are counted once per layer read: the arrays work in parallel).
    template <bool Transposed>
    void read_block(const io_params& io, const float* W, const float* x, std::size_t ldx, std::size_t n, std::size_t k0,
                    std::size_t k, std::size_t m0, std::size_t m, float* y, rng& g, bool first) const {
      read_workspace& ws = workspace();
      // Array energy needs Σ G·u² over the driven cells: each input line's total conductance
      // over this block's devices, computed only when a cost counter listens.
      const bool counting = cost_.counter() != nullptr;
      std::vector<float> line;
      double drive = 0;
      if (counting) line = line_conductance(Transposed, k0, k, m0, m);
      auto add_drive = [&](const float* u, std::size_t rows, std::size_t ld) {
        if (!counting) return;
        for (std::size_t r = 0; r < rows; ++r) drive += double(simd::weighted_sum_squares<float>(k, u + r * ld, line.data()));
      };
      // The block of W: rows [m0, m0 + m) × columns [k0, k0 + k) forwards (C = x·Wᵀ), rows
      // [k0, k0 + k) × columns [m0, m0 + m) transposed (C = dy·W).
      const float* Wb = Transposed ? W + k0 * in_size() + m0 : W + m0 * in_size() + k0;
      auto multiply = [&](const float* a, std::size_t lda, std::size_t rows, float* out) {
        if constexpr (Transposed)
          simd::gemm_nn<float>(rows, m, k, 1.0f, a, lda, Wb, in_size(), 0.0f, out, m);
        else
          simd::gemm_nt<float>(rows, m, k, 1.0f, a, lda, Wb, in_size(), 0.0f, out, m);
      };
      const float post = inference_.programmed() ? inference_.output_scale() : 1.0f;
      std::uint64_t rereads = 0;  // vectors re-read by bound management
      auto report = [&] {
        cost_.report([&] {
          physical_events e;
          const std::uint64_t passes = (first ? n : 0) + rereads;
          (Transposed ? e.transposed_reads : e.reads) = passes;
          e.macs = (n + rereads) * k * m;
          e.array_vectors = passes;
          if (!io.is_perfect) {
            e.dac_conversions = (n + rereads) * k;
            e.adc_conversions = (n + rereads) * m;
            e.dac_levels = e.dac_conversions << io.inp_res;
            e.adc_levels = e.adc_conversions << io.out_res;
          }
          e.array_drive = drive;
          return e;
        });
      };
      if (io.is_perfect) {
        add_drive(x, n, ldx);
        report();
        multiply(x, ldx, n, y);
        if (post != 1.0f) simd::scale<float>(n * m, post, y);
        return;
      }
      ws.xs.resize(n * k);
      ws.scale.resize(n);
      for (std::size_t r = 0; r < n; ++r) {
        float s = 1.0f;
        if (io.noise_management == io_noise_management::abs_max) s = simd::abs_max<float>(k, x + r * ldx);
        ws.scale[r] = s;
        prepare_input(io, x + r * ldx, k, s, ws.xs.data() + r * k);
      }
      add_drive(ws.xs.data(), n, k);
      multiply(ws.xs.data(), k, n, y);
      rng gn = g.split(0);
      add_normal(gn, y, n * m, io.out_noise);
      for (std::size_t r = 0; r < n; ++r) {
        float* yr = y + r * m;
        float s = ws.scale[r];
        if (s == 0) {  // an all-zero input reads zero (aihwkit skips such vectors)
          std::fill(yr, yr + m, 0.0f);
          continue;
        }
        if (io.bound_management == io_bound_management::iterative) {
          rng gb = g.split(1).split(r);
          for (unsigned it = 0; it < io.max_bound_iterations && saturated(yr, m, io.out_bound); ++it) {
            s *= 2.0f;
            ws.xs_row.resize(k);
            prepare_input(io, x + r * ldx, k, s, ws.xs_row.data());
            add_drive(ws.xs_row.data(), 1, k);
            multiply(ws.xs_row.data(), k, 1, yr);
            add_normal(gb, yr, m, io.out_noise);
            ++rereads;
          }
        }
        noise::quantize_symmetric<float>(yr, m, io.out_bound, io.out_res);
        simd::scale<float>(m, s * post, yr);
      }
      report();
    }

    // Σ over the devices each input line drives of G⁺ + G⁻ (µS), within one array: input lines
    // [k0, k0 + k) and output lines [m0, m0 + m) of the read direction (columns of W forwards,
    // rows when the columns are driven). Per pair G⁺ + G⁻ = 2 g_min + g_ref·|w| (pair devices:
    // 2 g_min + g_ref·(w + 2 G⁻-state)), summed in one pass without forming the conductances, so
    // that counting costs a small fraction of the read it prices.
    std::vector<float> line_conductance(bool transposed, std::size_t k0, std::size_t k, std::size_t m0,
                                        std::size_t m) const {
      const std::size_t in = in_size();
      std::vector<float> line(k, 0.0f);
      const float* w = weight_.data();
      const bool pair = pair_devices();
      // Rows j of W (outputs forwards, inputs transposed) and the column range [c0, c0 + cn).
      const std::size_t j0 = transposed ? k0 : m0, jn = transposed ? k : m;
      const std::size_t c0 = transposed ? m0 : k0, cn = transposed ? m : k;
      for (std::size_t j = j0; j < j0 + jn; ++j) {
        const float* wj = w + j * in + c0;
        if (pair) {
          const float* aj = aux_.data() + j * in + c0;
          if (transposed) {
            line[j - j0] = simd::sum<float>(cn, wj) + 2.0f * simd::sum<float>(cn, aj);
          } else {
            simd::axpy<float>(cn, 1.0f, wj, line.data());
            simd::axpy<float>(cn, 2.0f, aj, line.data());
          }
        } else if (transposed) {
          line[j - j0] = simd::abs_sum<float>(cn, wj);
        } else {
          simd::add_abs<float>(cn, wj, line.data());
        }
      }
      const float r = g_ref(), lines = float(m);
      for (float& l : line) l = 2.0f * params_.g_min * lines + r * l;
      return line;
    }

    // Calls `f` with the device model: the chosen one of a run-time choice (`devices::any_of`:
    // one dispatch per array operation, so pulse loops run on the concrete model), else the model.
    template <class F>
    decltype(auto) with_device(F&& f) const {
      if constexpr (device_choice<Device>) return params_.device.visit(std::forward<F>(f));
      else return std::forward<F>(f)(params_.device);
    }
    // True when each weight is a pair of one-sided devices, w = G⁺ − G⁻ with G⁻'s state in aux_.
    [[nodiscard]] bool pair_devices() const noexcept {
      if constexpr (!Device::has_pair) return false;
      else if constexpr (device_choice<Device>) return params_.device.pair();
      else return true;
    }

    // Scales one input vector by 1/s, applies the first-order IR drop and the DAC.
    static void prepare_input(const io_params& io, const float* x, std::size_t k, float s, float* out) {
      const float inv = s > 0 ? 1.0f / s : 0.0f;
      std::copy(x, x + k, out);
      simd::scale<float>(k, inv, out);  // vectorised; -O2 leaves a copying scalar loop as it is
      noise::quantize_symmetric<float>(out, k, io.inp_bound, io.inp_res);
      if (io.ir_drop > 0) {
        double drive = 0;
        for (std::size_t i = 0; i < k; ++i) drive += std::abs(double(out[i]));
        const float c = static_cast<float>(double(io.ir_drop) * drive / double(k) / double(k));
        for (std::size_t i = 0; i < k; ++i) out[i] *= std::max(1.0f - c * static_cast<float>(i + 1), 0.0f);
      }
    }

    static bool saturated(const float* y, std::size_t m, float bound) noexcept {
      return simd::abs_max<float>(m, y) >= bound;
    }

    // Cycle-to-cycle noise for the pulses, drawn in vectorised blocks of a counter-based stream.
    struct normal_source {
      explicit normal_source(rng s) noexcept : g(s) {}
      rng g;
      float buf[256];
      std::size_t pos = 256;
      float next() {
        if (pos == 256) {
          fill_normal(g, buf, 256);
          pos = 0;
        }
        return buf[pos++];
      }
    };

    // Deterministic pulse counts from the dense update: n = round(|ΔW|/dw_min), applied one by one.
    void pulse_counts(const float* dw, rng& g) {
      std::uint64_t fired = 0, slots = 0;
      with_device([&](const auto& d) {
        const float inv = 1.0f / d.dw_min;
        normal_source ns(g.split(0x5ea));
        for (std::size_t e = 0; e < weight_.size(); ++e) {
          const float pulses = std::nearbyint(std::abs(dw[e]) * inv);
          if (pulses == 0) continue;
          slots = std::max(slots, std::uint64_t(pulses));
          const bool up = dw[e] < 0;  // the update is subtracted
          const devices::device_cell c = cell(e);
          float& w = weight_.data()[e];
          float& a = aux_.data()[e];
          for (float p = 0; p < pulses; p += 1.0f) d.pulse(w, a, up, c, ns.next());
          fired += std::uint64_t(pulses);
        }
      });
      // Every device receives its count in parallel: the update takes as many slots as the
      // largest count.
      cost_.report([&] { return physical_events{.pulses = fired, .pulse_slots = slots}; });
    }

    // Stochastic pulse trains (Gokmen & Vlasov 2016): per sample, row i fires each of BL slots
    // with probability A|x_i|, column j with B|δ_j|; every coincidence is one pulse of sign
    // −sign(s·x_i δ_j). A·B = |s|/(dw_min·BL), so E[Δw_ij] = −s·x_i δ_j to first order; update
    // management balances the largest row and column probabilities. A layer split over several
    // physical arrays (`max_input_size`, `max_output_size`) updates each array on its own, as
    // its own drivers would: its slices' x_max and δ_max set its BL and probabilities, and the
    // arrays pulse in parallel (a sample takes the longest train's slots).
    void pulse_trains(const float* h, const float* delta, std::size_t n, float s, rng& g) {
      if (s == 0) return;
      std::uint64_t fired = 0, slots = 0;
      with_device([&](const auto& d) {
        const std::size_t in = in_size(), out = out_size();
        const std::size_t in_blk = std::min(in, params_.max_input_size), out_blk = std::min(out, params_.max_output_size);
        const std::size_t blocks_in = (in + in_blk - 1) / in_blk, blocks_out = (out + out_blk - 1) / out_blk;
        const bool grid = blocks_in * blocks_out > 1;
        const float lr = std::abs(s);
        const bool s_neg = s < 0;
        px_.resize(in);
        pd_.resize(out);
        xm_.resize(in);
        dm_.resize(out);
        slots_.resize(32 * ((in_blk + 63) / 64));
        for (std::size_t b = 0; b < n; ++b) {
          const float* x = h + b * in;
          const float* dl = delta + b * out;
          const rng gs = g.split(b);
          unsigned sample_slots = 0;
          for (std::size_t bo = 0; bo < blocks_out; ++bo) {
            const std::size_t j0 = bo * out_blk, nj = std::min(out_blk, out - j0);
            const float dmax = simd::abs_max<float>(nj, dl + j0);
            if (dmax == 0) continue;
            for (std::size_t bi = 0; bi < blocks_in; ++bi) {
              const std::size_t i0 = bi * in_blk, ni = std::min(in_blk, in - i0);
              const float xmax = simd::abs_max<float>(ni, x + i0);
              if (xmax == 0) continue;
              unsigned bl = params_.desired_bl;
              if (params_.update_bl_management) {
                const double want = std::ceil(double(lr) * double(xmax) * double(dmax) / double(d.dw_min));
                bl = static_cast<unsigned>(std::clamp(want, 1.0, double(bl)));
              }
              sample_slots = std::max(sample_slots, bl);
              float A = std::sqrt(lr / (d.dw_min * static_cast<float>(bl))), B = A;
              if (params_.update_management) {
                const float r = std::sqrt(dmax / xmax);
                A *= r;
                B /= r;
              }
              for (std::size_t i = i0; i < i0 + ni; ++i) px_[i] = A * std::abs(x[i]);
              for (std::size_t j = j0; j < j0 + nj; ++j) pd_[j] = B * std::abs(dl[j]);
              // One array keeps the streams of the unsplit layer; a grid gives each array its own.
              const rng ga = grid ? gs.split(0xb10c).split(bo * blocks_in + bi) : gs;
              bernoulli_masks(ga.split(0), px_.data() + i0, ni, bl, xm_.data() + i0);
              bernoulli_masks(ga.split(1), pd_.data() + j0, nj, bl, dm_.data() + j0);
              const std::size_t words = (ni + 63) / 64;
              std::fill(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(bl * words), std::uint64_t{0});
              for (std::size_t k = 0; k < ni; ++k)
                for (std::uint32_t mk = xm_[i0 + k]; mk != 0; mk &= mk - 1)
                  slots_[std::size_t(std::countr_zero(mk)) * words + (k >> 6)] |= std::uint64_t{1} << (k & 63);
              normal_source ns(ga.split(2));
              for (std::size_t j = j0; j < j0 + nj; ++j) {
                const std::uint32_t dj = dm_[j];
                if (dj == 0) continue;
                const bool dneg = (dl[j] < 0) != s_neg;
                float* wrow = weight_.data() + j * in + i0;
                float* arow = aux_.data() + j * in + i0;
                const float* xa = x + i0;
                const std::size_t e0 = j * in + i0;
                for (std::size_t wd = 0; wd < words; ++wd) {
                  std::uint64_t touched = 0;
                  for (std::uint32_t mk = dj; mk != 0; mk &= mk - 1)
                    touched |= slots_[std::size_t(std::countr_zero(mk)) * words + wd];
                  for (; touched != 0; touched &= touched - 1) {
                    const std::size_t k = wd * 64 + std::size_t(std::countr_zero(touched));
                    const int count = std::popcount(xm_[i0 + k] & dj);
                    // ΔW_ij ∝ s·δ_j·x_i is subtracted: w goes up when that product is negative.
                    const bool up = (xa[k] < 0) != dneg;
                    const devices::device_cell c = cell(e0 + k);
                    for (int p = 0; p < count; ++p) d.pulse(wrow[k], arow[k], up, c, ns.next());
                    fired += std::uint64_t(count);
                  }
                }
              }
            }
          }
          slots += sample_slots;  // one train per sample, every array and device in parallel
        }
      });
      cost_.report([&] { return physical_events{.pulses = fired, .pulse_slots = slots}; });
    }

    // out[i] = BL slot bits, each 1 with probability min(p[i], 1). Eight masks at a time from
    // the words of eight Philox blocks (four words per block and call). Short trains (BL ≤ 12)
    // compare one word per slot with p·2³² (exact to 2⁻³²). Longer ones build all 32 slot bits
    // at once from 16 words by the binary expansion of p rounded to 16 bits,
    // P = Σ_b p_b 2^(b−16): m ← p_b ? m | r_b : m & r_b (b = 0 … 15) halves each bit's
    // probability and adds p_b/2, so every bit of m is an independent Bernoulli(P/2¹⁶).
    // Group k of eight masks uses blocks [32k, 32k + 32) of `g`'s stream, so the result does
    // not depend on which groups were skipped (all p = 0).
    static void bernoulli_masks(const rng& g, const float* p, std::size_t n, unsigned bl, std::uint32_t* out) {
      const ::pnn::detail::block_stream src = ::pnn::detail::stream_of(g);
      const std::uint32_t full = bl >= 32 ? ~std::uint32_t{0} : ((std::uint32_t{1} << bl) - 1u);
      const bool compare = bl <= 12;
      const std::size_t calls = compare ? (bl + 3) / 4 : 4;
      alignas(64) std::uint32_t rows[4][32];
      for (std::size_t i0 = 0; i0 < n; i0 += 8) {
        const std::size_t cnt = std::min<std::size_t>(8, n - i0);
        std::uint32_t P[8];
        std::uint32_t any = 0, all = 1;
        for (std::size_t l = 0; l < 8; ++l) {
          const float pl = l < cnt ? p[i0 + l] : 0.0f;
          // compare: threshold p·2³² (saturating); chain: p·2¹⁶ rounded; 2¹⁶ or more means always.
          if (compare) P[l] = pl >= 1.0f ? ~std::uint32_t{0} : static_cast<std::uint32_t>(double(pl) * 4294967296.0);
          else P[l] = pl >= 1.0f ? 65536u : static_cast<std::uint32_t>(pl * 65536.0f + 0.5f);
          any |= P[l];
          all &= (l >= cnt || pl >= 1.0f) ? 1u : 0u;
        }
        if (any == 0 || all != 0) {
          for (std::size_t l = 0; l < cnt; ++l) out[i0 + l] = any == 0 ? 0u : full;
          continue;
        }
        const std::uint64_t ctr = (i0 / 8) * 32;
        for (std::size_t c = 0; c < calls; ++c)
          ::pnn::detail::block_rows<simd::default_arch, 8>(src, ctr + 8 * c, rows[c]);
        std::uint32_t m[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (compare) {
          for (unsigned slot = 0; slot < bl; ++slot) {
            const std::uint32_t* r = &rows[slot / 4][(slot % 4) * 8];
            for (std::size_t l = 0; l < 8; ++l) m[l] |= static_cast<std::uint32_t>(r[l] < P[l]) << slot;
          }
          for (std::size_t l = 0; l < cnt; ++l) out[i0 + l] = p[i0 + l] >= 1.0f ? full : m[l];
        } else {
          for (unsigned bit = 0; bit < 16; ++bit) {
            const std::uint32_t* r = &rows[bit / 4][(bit % 4) * 8];
            for (std::size_t l = 0; l < 8; ++l) {
              const std::uint32_t sel = 0u - ((P[l] >> bit) & 1u);
              m[l] = (m[l] & r[l]) | (sel & (m[l] | r[l]));
            }
          }
          for (std::size_t l = 0; l < cnt; ++l) out[i0 + l] = P[l] >= 65536u ? full : (m[l] & full);
        }
      }
    }

    params params_{};
    matrix_storage<float, Out, In> weight_{};
    matrix_storage<float, 1, Out> bias_{};
    // Per-device parameters (dw_up, dw_down, b_min, b_max interleaved: one cache line per pulse)
    // and pair state (pulsed devices only; empty otherwise).
    static constexpr std::size_t cells_in = is_pulsed ? (In == dynamic ? dynamic : 4 * In) : 0;
    matrix_storage<float, (is_pulsed ? Out : 0), cells_in> cells_{};
    matrix_storage<float, (is_pulsed ? Out : 0), (is_pulsed ? In : 0)> aux_{};
    pcm_inference_state inference_{};
    // Scratch of updates (reads use a per-thread `read_workspace`).
    std::vector<float> px_{}, pd_{};
    cost_report cost_{};
    std::vector<std::uint32_t> xm_{}, dm_{};
    std::vector<std::uint64_t> slots_{};
  };
};

}  // namespace pnn::physics
