// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::resistor_substrate`: a layer that is a resistor network (Stern et al., PRX
/// 2021) under the substrate protocol — its parameters are conductances, its updates are
/// conductance steps measured on the network.
///
/// A tile holds a `physics::resistor_network` whose source nodes are the layer's inputs (volts)
/// and whose output nodes, followed by a voltage amplifier of gain `output_gain`, are the
/// layer's outputs. The network is linear, so a read is `y = G·T(k)·x` with the transfer matrix
/// `T(k)` of the current conductances (built once per programming from `In` settled states).
/// There is no offset (a bias is a source held at a constant voltage: feed a constant input).
/// It starts as `resistor_network::single_stage`
/// (each output a conductance-weighted mean of the inputs: weights in `[0, G)`, rows summing
/// below `G` — a resistor network cannot make a negative weight); `set_network` installs any
/// other graph with `In` sources and `Out` outputs, hidden nodes included.
///
/// Its trainable parameters are the conductances: the perturbative rules perturb
/// conductances, and every rule's update reaches them in conductance space — coupled learning
/// contrasts the free and clamped states' voltage drops; a rule that estimates `∂L/∂W` as an
/// outer product `s·δᵀh` (backprop, FA, DFA, PAT) is mapped to `∂L/∂k` by the adjoint state, a
/// second measurement on the same network (`parameter_gradient`), before the optimiser, so
/// momentum and Adam keep their moments per resistor. Conductances stop at `k_min`.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/core/state_format.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/physics/resistor_network.hpp>
#include <pnn/simd/gemm.hpp>
#include <pnn/simd/work.hpp>

namespace pnn::physics {

/// Resistor-network layers with values of type `T` between layers (the network is solved in
/// double precision).
template <class T = float>
struct basic_resistor_substrate {
  using value_type = T;
  static constexpr const char* name = "resistor_network";

  /// Physical parameters of every layer's network.
  struct params {
    double k_min = 1e-3;        ///< smallest programmable conductance (µS), > 0
    double k_nominal = 1.0;     ///< conductance scale of a deployed layer (µS), ≥ k_min
    double output_gain = 1.0;   ///< voltage gain of each output amplifier (V/V), > 0

    /// \pre the bounds above (else `pnn::error`).
    void validate() const {
      PNN_EXPECTS(k_min > 0 && std::isfinite(k_min), "physics::resistor_substrate: k_min must be > 0 and finite");
      PNN_EXPECTS(k_nominal >= k_min && std::isfinite(k_nominal),
                  "physics::resistor_substrate: k_nominal must be >= k_min and finite");
      PNN_EXPECTS(output_gain > 0 && std::isfinite(output_gain),
                  "physics::resistor_substrate: output_gain must be > 0 and finite");
    }
  };

  /// One layer: a resistor network and its transfer matrix.
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = T;
    /// Updates of `∂L/∂W = s·δᵀh` keep their factors: the adjoint mapping to conductances
    /// needs the inputs and output errors, not the dense matrix.
    static constexpr bool uses_update_factors = true;
    /// The transposed product `dy·G·T` is computed from the measured transfer matrix: the
    /// layer's read noise does not apply to it.
    static constexpr bool computes_transposed_exactly = true;

    /// Every update is learnt in conductance space (`tile_hooks::learns_in_parameter_space`).
    [[nodiscard]] bool learns_in_parameter_space() const noexcept { return true; }

    /// Applies parameters; an existing network keeps its conductances (raised to `k_min`).
    void set_params(const params& p) {
      p.validate();
      p_ = p;
      if (in_ > 0) rebuild(custom_ ? net_.parameters() : resistor_network::params{p_.k_min});
    }
    [[nodiscard]] const params& parameters() const noexcept { return p_; }

    /// A single-stage network of `in` inputs and `out` outputs at `k_nominal`.
    void resize(std::size_t in, std::size_t out) {
      PNN_EXPECTS((In == dynamic || in == In) && (Out == dynamic || out == Out),
                  "physics::resistor_substrate: size differs from the tile's fixed extents");
      in_ = in;
      out_ = out;
      custom_ = false;
      net_ = resistor_network::single_stage(in, out, p_.k_nominal, {p_.k_min});
      b_.assign(out, T(0));
      refresh();
    }
    [[nodiscard]] std::size_t in_size() const noexcept { return in_; }
    [[nodiscard]] std::size_t out_size() const noexcept { return out_; }

    /// Installs a network of any topology. \pre `g` has `in_size()` sources and `out_size()`
    /// outputs (else `pnn::error`, nothing changed).
    void set_network(resistor_network g) {
      if (g.num_inputs() != in_ || g.num_outputs() != out_)
        throw_error("physics::resistor_substrate::set_network: the network has " + std::to_string(g.num_inputs()) +
                    " sources and " + std::to_string(g.num_outputs()) + " outputs, the layer " + std::to_string(in_) +
                    " inputs and " + std::to_string(out_) + " outputs");
      net_ = std::move(g);
      custom_ = true;
      refresh();
    }
    /// The layer's resistor network (conductances, topology, settled states).
    [[nodiscard]] const resistor_network& network() const noexcept { return net_; }

    /// `y = G·T(k)·x` for `x` (n × In, volts) into `y` (n × Out): the settled output voltages,
    /// amplified.
    void read(const T* x, std::size_t n, T* y, rng&) const {
      const simd::kernel_work_pause simulated;  // the network's settling, not digital work
      cost_.report([&] {
        // The power each settled state dissipates, Σ_e k_e ΔV_e² (µW), from its free state.
        const std::size_t nodes = net_.num_nodes();
        std::vector<double> vs(n * in_), v(n * nodes);
        for (std::size_t k = 0; k < n * in_; ++k) vs[k] = double(x[k]);
        net_.free_state(vs.data(), n, v.data());
        double p = 0;
        for (std::size_t r = 0; r < n; ++r) p += 2 * net_.power(v.data() + r * nodes);
        return physical_events{.reads = n, .macs = n * net_.num_edges(), .settled_vectors = n, .dissipation = p};
      });
      simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, w_.data(), in_, T(0), y, out_);
    }
    /// `dx = dy·G·T(k)`: the VJP of the read (computed from the realised weights: a digital
    /// model's work, counted as such).
    void read_transposed(const T* dy, std::size_t n, T* dx, rng&) const {
      simd::gemm_nn<T>(n, in_, out_, T(1), dy, out_, w_.data(), in_, T(0), dx, in_);
    }

    /// The realised weights `G·T(k)` (Out × In).
    void effective_weights(T* w) const { std::copy(w_.begin(), w_.end(), w); }
    /// Always zero: the network has no offset.
    [[nodiscard]] const T* bias_data() const noexcept { return b_.data(); }

    /// \brief Deploys target weights on the single-stage network as closely as resistors can:
    /// `k_oi ∝ max(w_oi, 0)`, each output's load taking the rest, rows scaled to sum below `G`
    /// (a negative weight becomes the smallest conductance). `b` cannot be realised (no offset)
    /// and is not used. Every conductance written is reported to an attached cost counter.
    /// \pre the tile holds its single-stage network (a custom topology has no such inverse:
    ///      `pnn::error`); finite `w`, `b`.
    void set_weights(const T* w, const T* b, rng&) {
      PNN_EXPECTS(!custom_, "physics::resistor_substrate::set_weights: weights can be deployed only on the single-stage "
                            "network; train a custom topology in its conductances");
      for (std::size_t k = 0; k < in_ * out_; ++k)
        PNN_EXPECTS(std::isfinite(double(w[k])), "physics::resistor_substrate::set_weights: weights are not finite");
      const double total = p_.k_nominal * double(in_ + 1);  // Σ of an output's conductances
      std::vector<double> k = net_.conductances();
      for (std::size_t o = 0; o < out_; ++o) {
        double* row = k.data() + o * (in_ + 1);
        double sum = 0;
        for (std::size_t i = 0; i < in_; ++i) {
          row[i] = std::max(double(w[o * in_ + i]) / p_.output_gain, 0.0) * total;
          sum += row[i];
        }
        const double room = total - p_.k_min * double(in_ + 1);  // keep the load at ≥ k_min
        if (sum > room) {
          for (std::size_t i = 0; i < in_; ++i) row[i] *= room / sum;
          sum = room;
        }
        double realised = 0;
        for (std::size_t i = 0; i < in_; ++i) realised += row[i] = std::max(row[i], p_.k_min);
        row[in_] = std::max(total - realised, p_.k_min);
      }
      net_.set_conductances(k);
      cost_.report([&] { return physical_events{.parameter_writes = net_.num_edges()}; });
      (void)b;
      refresh();
    }

    /// Realises a dense `ΔW` by re-deploying `G·T − ΔW` (`set_weights`; `Δb` has nothing to act on).
    /// Rules reach a resistor layer in conductance space instead (see the file comment); this
    /// is what direct callers of `pnn::program` get. \pre as `set_weights`.
    template <class U>
    void program(const U& update, rng& g) {
      const simd::kernel_work_pause simulated;
      std::vector<T> target(w_);
      const T* dw = update.weight_data();
      for (std::size_t k = 0; k < target.size(); ++k) target[k] -= dw[k];
      set_weights(target.data(), b_.data(), g);
    }

    /// The conductances (edge order, µS).
    [[nodiscard]] std::size_t parameter_count() const noexcept { return net_.num_edges(); }
    void get_parameters(double* p) const {
      for (const auto& e : net_.edges()) *p++ = e.conductance;
    }
    /// Checkpoint contents (pnn/core/state_format.hpp): the conductances (the graph and the
    /// periphery are configuration). A load programs them as `set_parameters` does.
    template <class V>
    void visit_state(V& v) {
      std::vector<double> k(parameter_count());
      if constexpr (!V::loading) get_parameters(k.data());
      v("conductances", std::span<double>(k), state_scratch);
      if constexpr (V::loading) {
        for (const double x : k)
          if (!std::isfinite(x)) {
            v.reject("conductances", "are not finite");
            break;
          }
        if (v.applying()) set_parameters(k.data());
      }
    }
    /// Writes the conductances (a value below `k_min` is programmed as `k_min`).
    /// \pre finite values (else `pnn::error`, nothing changed).
    void set_parameters(const double* p) {
      const std::size_t ne = net_.num_edges();
      for (std::size_t k = 0; k < ne; ++k)
        PNN_EXPECTS(std::isfinite(p[k]), "physics::resistor_substrate::set_parameters: parameters are not finite");
      std::vector<double> k(p, p + ne);
      const double k_min = net_.parameters().k_min;
      for (double& v : k) v = std::max(v, k_min);
      net_.set_conductances(k);
      cost_.report([&] { return physical_events{.parameter_writes = ne}; });
      refresh();
    }

    /// Reports every read (vectors; one current per resistor and vector counted as a MAC) and
    /// every conductance written into `c` (`tile_hooks::attach_cost_counter`). The transposed
    /// product is computed, not measured, and is not counted.
    void attach_cost_counter(cost_counter* c) noexcept { cost_.attach(c); }

    /// \brief `∂L/∂θ` for `L = s·Σ_r δ_r·y_r` (inputs `h` n × In, output gradients `δ` n × Out)
    /// in the layout of `get_parameters` (`bias_grad` has nothing to act on): per resistor
    /// `−s·Σ_r ΔV_e(h_r)·ΔU_e(G δ_r)` with the free state `V` and the adjoint state `U`
    /// (currents `G δ_r` injected at the outputs, `resistor_network::adjoint_state`).
    void parameter_gradient(const T* h, const T* delta, std::size_t n, double s, const T*, double* out, rng&) const {
      const simd::kernel_work_pause simulated;  // two measured states per sample
      const std::size_t nodes = net_.num_nodes();
      std::vector<double> vs(n * in_), cur(n * out_), v(n * nodes), u(n * nodes);
      for (std::size_t k = 0; k < n * in_; ++k) vs[k] = double(h[k]);
      for (std::size_t k = 0; k < n * out_; ++k) cur[k] = p_.output_gain * double(delta[k]);
      net_.free_state(vs.data(), n, v.data());
      net_.adjoint_state(cur.data(), n, u.data());
      cost_.report([&] {
        double p = 0;
        for (std::size_t r = 0; r < n; ++r) p += 2 * (net_.power(v.data() + r * nodes) + net_.power(u.data() + r * nodes));
        return physical_events{.settled_vectors = 2 * n, .dissipation = p};
      });
      const auto& es = net_.edges();
      for (std::size_t e = 0; e < es.size(); ++e) {
        double acc = 0;
        for (std::size_t r = 0; r < n; ++r) {
          const double* vr = v.data() + r * nodes;
          const double* ur = u.data() + r * nodes;
          acc += (vr[es[e].from] - vr[es[e].to]) * (ur[es[e].from] - ur[es[e].to]);
        }
        out[e] = -s * acc;
      }
    }

   private:
    void rebuild(resistor_network::params np) {
      auto k = net_.conductances();
      for (double& v : k) v = std::max(v, np.k_min);
      // Same topology, new limits: rebuilt through the validating constructor.
      std::vector<resistor_network::edge> es = net_.edges();
      for (std::size_t e = 0; e < es.size(); ++e) es[e].conductance = k[e];
      net_ = resistor_network(net_.num_nodes(), std::move(es), net_.source_nodes(), net_.output_nodes(),
                              net_.ground_nodes(), np);
      refresh();
    }

    // The transfer matrix from `In` settled states with one source at 1 V, the others at 0 V.
    void refresh() {
      const std::size_t nodes = net_.num_nodes();
      std::vector<double> eye(in_ * in_, 0.0), v(in_ * nodes), y(in_ * out_);
      for (std::size_t i = 0; i < in_; ++i) eye[i * in_ + i] = 1.0;
      net_.free_state(eye.data(), in_, v.data());
      net_.outputs(v.data(), in_, y.data());
      w_.resize(out_ * in_);
      for (std::size_t i = 0; i < in_; ++i)
        for (std::size_t o = 0; o < out_; ++o) w_[o * in_ + i] = static_cast<T>(p_.output_gain * y[i * out_ + o]);
    }

    params p_{};
    std::size_t in_ = 0, out_ = 0;
    bool custom_ = false;
    resistor_network net_{};
    std::vector<T> w_{}, b_{};  // b_: the zero offsets the layer adds
    cost_report cost_{};
  };
};

/// Resistor-network layers between `float` values.
using resistor_substrate = basic_resistor_substrate<float>;

static_assert(substrate<resistor_substrate> && transposed_readable<resistor_substrate>);
static_assert(!dense_tile<resistor_substrate::tile<3, 2>>, "its parameters are conductances, not W");

/// A tile whose physics is a resistor network (what coupled learning trains natively).
template <class Tile>
concept resistor_tile = requires(const Tile& t) {
  { t.network() } -> std::convertible_to<const resistor_network&>;
};

}  // namespace pnn::physics
