// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::quantum_circuit`: a parameterised quantum circuit as a layer — angle-encoded
/// inputs, layers of single-qubit rotations and a ring of controlled-Z gates, read out as the
/// expectation values ⟨Z_q⟩ of each qubit from a finite number of shots — simulated exactly on a
/// small state vector, and trained by the parameter-shift rule (Mitarai et al., PRA 2018;
/// Schuld et al., PRA 2019).
///
/// The tile has one qubit per output (`Out` ≤ 12). A sample `x` sets the encoding angles
/// `φ = W x` (W: Out × In, computed by the control electronics; trainable), and the circuit is
///
///   |0…0⟩ → for l = 0 … L−1: [RY(φ_q) on every qubit, if l = 0 or `reupload`]
///                             RZ(θ_{l,q,0}) RY(θ_{l,q,1}) on every qubit, CZ ring
///         → measure every qubit in the Z basis,
///
/// with `RY(a) = exp(−i a Y/2)`, `RZ(a) = exp(−i a Z/2)`; the CZ ring couples q and q+1 (and the
/// last with the first for more than two qubits). Re-uploading the encoding in every layer
/// (data re-uploading, Pérez-Salinas et al., Quantum 2020) makes the outputs trigonometric
/// polynomials of degree L in each angle rather than of degree 1. The layer adds a digital bias
/// to the measured ⟨Z_q⟩ ∈ [−1, 1].
///
/// Every rotation is `exp(−i a P/2)` with a Pauli `P`, so the exact derivative of any expectation
/// with respect to its angle is `[E(a + π/2) − E(a − π/2)] / 2`: two executions of the same
/// circuit with shifted settings, which is how the hardware itself is differentiated.
/// `parameter_gradient` (every rule's estimate of this layer) and `read_vjp` (the gradient
/// handed to the layer below) are computed that way, execution by execution, each measured with
/// the same finite number of shots as a read. `shots = 0` returns the exact expectations (the
/// limit of infinitely many shots).
///
/// The parameters, in the layout of `get_parameters`: W (Out × In, row-major), θ (L × Out × 2,
/// `θ_{l,q,0}` the RZ and `θ_{l,q,1}` the RY angle of qubit q in layer l), b (Out). The read is
/// not linear in `x`, so a weight-space estimate is only meaningful as its factors `(h, δ)`:
/// the tile asks for them (`uses_update_factors`) and maps them to the gradient in its
/// parameters by parameter shift (`learns_in_parameter_space`). `effective_weights` reports W
/// (the encoding map; what a linear twin of the layer can know), `set_weights` writes W and b and
/// keeps θ.
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/core/state_format.hpp>
#include <pnn/core/threads.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/simd/work.hpp>

namespace pnn::physics {

namespace quantum {

/// The largest register the state-vector simulator holds (2¹² amplitudes per sample).
inline constexpr std::size_t max_qubits = 12;

/// \brief A pure state of `n` qubits: 2ⁿ complex amplitudes, qubit q being bit q of the basis
/// index. Gates act in place; they are unitary, so the norm stays 1 up to rounding.
class state_vector {
 public:
  using amplitude = std::complex<double>;

  /// |0…0⟩ on `qubits` qubits. \pre 1 ≤ qubits ≤ `max_qubits` (else `pnn::error`).
  explicit state_vector(std::size_t qubits = 1) { reset(qubits); }

  /// Back to |0…0⟩, on `qubits` qubits.
  void reset(std::size_t qubits) {
    PNN_EXPECTS(qubits >= 1 && qubits <= max_qubits,
                "quantum::state_vector: the register must hold 1 to 12 qubits (2^12 amplitudes per sample)");
    n_ = qubits;
    a_.assign(std::size_t{1} << qubits, amplitude(0));
    a_[0] = 1;
  }
  /// Back to |0…0⟩.
  void reset() {
    std::fill(a_.begin(), a_.end(), amplitude(0));
    a_[0] = 1;
  }

  [[nodiscard]] std::size_t qubits() const noexcept { return n_; }
  [[nodiscard]] std::size_t size() const noexcept { return a_.size(); }
  [[nodiscard]] const amplitude* data() const noexcept { return a_.data(); }
  [[nodiscard]] amplitude* data() noexcept { return a_.data(); }

  /// Applies the 2 × 2 unitary `[[m00, m01], [m10, m11]]` to qubit `q`.
  void apply(std::size_t q, amplitude m00, amplitude m01, amplitude m10, amplitude m11) {
    check(q);
    const std::size_t bit = std::size_t{1} << q;
    for (std::size_t block = 0; block < a_.size(); block += 2 * bit)
      for (std::size_t i = block; i < block + bit; ++i) {
        const amplitude a0 = a_[i], a1 = a_[i + bit];
        a_[i] = m00 * a0 + m01 * a1;
        a_[i + bit] = m10 * a0 + m11 * a1;
      }
  }
  /// RX(a) = exp(−i a X/2) on qubit `q`.
  void rx(std::size_t q, double a) {
    const double c = std::cos(a / 2), s = std::sin(a / 2);
    apply(q, c, amplitude(0, -s), amplitude(0, -s), c);
  }
  /// RY(a) = exp(−i a Y/2) on qubit `q` (real: keeps real amplitudes real).
  void ry(std::size_t q, double a) {
    const double c = std::cos(a / 2), s = std::sin(a / 2);
    const std::size_t bit = std::size_t{1} << q;
    check(q);
    for (std::size_t block = 0; block < a_.size(); block += 2 * bit)
      for (std::size_t i = block; i < block + bit; ++i) {
        const amplitude a0 = a_[i], a1 = a_[i + bit];
        a_[i] = c * a0 - s * a1;
        a_[i + bit] = s * a0 + c * a1;
      }
  }
  /// RZ(a) = exp(−i a Z/2) on qubit `q`: a phase e^{∓ia/2} on the |0⟩ / |1⟩ halves.
  void rz(std::size_t q, double a) {
    check(q);
    const amplitude p0(std::cos(a / 2), -std::sin(a / 2)), p1 = std::conj(p0);
    const std::size_t bit = std::size_t{1} << q;
    for (std::size_t i = 0; i < a_.size(); ++i) a_[i] *= (i & bit) ? p1 : p0;
  }
  /// Controlled Z between qubits `q` and `r` (symmetric): −1 on basis states with both bits set.
  void cz(std::size_t q, std::size_t r) {
    check(q);
    check(r);
    PNN_EXPECTS(q != r, "quantum::state_vector::cz: the two qubits must differ");
    const std::size_t both = (std::size_t{1} << q) | (std::size_t{1} << r);
    for (std::size_t i = 0; i < a_.size(); ++i)
      if ((i & both) == both) a_[i] = -a_[i];
  }
  /// CNOT with control `c` and target `t`.
  void cnot(std::size_t c, std::size_t t) {
    check(c);
    check(t);
    PNN_EXPECTS(c != t, "quantum::state_vector::cnot: control and target must differ");
    const std::size_t cb = std::size_t{1} << c, tb = std::size_t{1} << t;
    for (std::size_t i = 0; i < a_.size(); ++i)
      if ((i & cb) && !(i & tb)) std::swap(a_[i], a_[i | tb]);
  }

  /// ⟨Z_q⟩ = Σ_i |a_i|² (1 − 2·bit_q(i)), exactly.
  [[nodiscard]] double expectation_z(std::size_t q) const {
    check(q);
    const std::size_t bit = std::size_t{1} << q;
    double e = 0;
    for (std::size_t i = 0; i < a_.size(); ++i) e += (i & bit) ? -std::norm(a_[i]) : std::norm(a_[i]);
    return e;
  }
  /// Σ_i |a_i|² (1 for a state; gates preserve it).
  [[nodiscard]] double norm_squared() const {
    double s = 0;
    for (const amplitude& x : a_) s += std::norm(x);
    return s;
  }

  /// \brief Estimates every ⟨Z_q⟩ (q < `out`) from `shots` measurements in the Z basis: each
  /// shot draws a basis state with probability |a_i|² (one uniform, inverted through the
  /// cumulative distribution), and ⟨Z_q⟩ is the mean of (−1)^bit_q over the shots. The
  /// estimates of different qubits come from the same shots, so their correlations are kept.
  /// \pre shots ≥ 1, out ≤ qubits().
  void sample_z(std::size_t shots, std::size_t out, double* z, rng& g) const {
    PNN_EXPECTS(shots >= 1 && out <= n_, "quantum::state_vector::sample_z: shots >= 1 and out <= qubits");
    std::vector<double> cdf(a_.size());
    double acc = 0;
    for (std::size_t i = 0; i < a_.size(); ++i) cdf[i] = acc += std::norm(a_[i]);
    std::vector<std::size_t> ones(out, 0);
    for (std::size_t s = 0; s < shots; ++s) {
      const double u = g.uniform_double() * acc;
      std::size_t i = std::size_t(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
      if (i >= a_.size()) i = a_.size() - 1;
      for (std::size_t q = 0; q < out; ++q) ones[q] += (i >> q) & 1u;
    }
    for (std::size_t q = 0; q < out; ++q) z[q] = 1.0 - 2.0 * double(ones[q]) / double(shots);
  }

 private:
  void check(std::size_t q) const { PNN_EXPECTS(q < n_, "quantum::state_vector: qubit index out of range"); }

  std::size_t n_ = 0;
  std::vector<amplitude> a_{};
};

}  // namespace quantum

/// Parameterised quantum circuits (one qubit per output) with values of type `T` between layers;
/// the state is simulated in double precision.
template <class T = float>
struct basic_quantum_circuit {
  using value_type = T;
  static constexpr const char* name = "quantum_circuit";

  /// The circuit's shape and measurement.
  struct params {
    std::size_t layers = 2;    ///< L: rotation-and-entangler layers, ≥ 1
    bool reupload = true;      ///< encode φ = W x before every layer (else before the first only)
    std::size_t shots = 0;     ///< measurements per execution; 0: exact expectations
    /// \pre 1 ≤ layers ≤ 64 (else `pnn::error`).
    void validate() const {
      PNN_EXPECTS(layers >= 1 && layers <= 64, "physics::quantum_circuit: layers must be in [1, 64]");
      PNN_EXPECTS(shots <= (std::size_t{1} << 30), "physics::quantum_circuit: shots must be at most 2^30");
    }
  };

  /// One layer's circuit: encoding map W, rotation angles θ, digital bias b.
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = T;
    static constexpr std::size_t in_extent = In;
    static constexpr std::size_t out_extent = Out;
    /// The read is nonlinear in x: estimates reach the tile as factors (h, δ), which
    /// `parameter_gradient` maps into the circuit's parameters by parameter shift.
    static constexpr bool uses_update_factors = true;
    /// A dense weight-space estimate cannot be mapped (see `map_to_tile_parameters`).
    static constexpr bool needs_update_factors = true;
    static_assert(Out == dynamic || (Out >= 1 && Out <= quantum::max_qubits),
                  "physics::quantum_circuit: one qubit per output, and the simulator holds at most 12 qubits");

    /// Every estimate is learnt in the circuit's parameters (W, θ, b).
    [[nodiscard]] bool learns_in_parameter_space() const noexcept { return true; }

    void set_params(const params& p) {
      p.validate();
      p_ = p;
      if (out_ > 0) theta_.resize(p_.layers * out_ * 2, 0.0);
    }
    [[nodiscard]] const params& parameters() const noexcept { return p_; }

    /// Shapes the tile: W = 0, θ = 0, b = 0. \pre in ≥ 1, 1 ≤ out ≤ 12.
    void resize(std::size_t in, std::size_t out) {
      PNN_EXPECTS(in >= 1 && out >= 1 && out <= quantum::max_qubits,
                  "physics::quantum_circuit: needs at least one input and 1 to 12 outputs (one qubit per output)");
      PNN_EXPECTS((In == dynamic || in == In) && (Out == dynamic || out == Out),
                  "physics::quantum_circuit: size differs from the tile's fixed extent");
      in_ = in;
      out_ = out;
      w_.assign(in * out, 0.0);
      b_.assign(out, T(0));
      theta_.assign(p_.layers * out * 2, 0.0);
    }
    [[nodiscard]] std::size_t in_size() const noexcept { return in_; }
    [[nodiscard]] std::size_t out_size() const noexcept { return out_; }
    [[nodiscard]] std::size_t qubits() const noexcept { return out_; }

    /// Draws the rotation angles uniformly in [−π, π) (W comes from the layer's initialiser).
    void prepare(rng& g) {
      rng gt = g.split(0x9a7e);
      for (double& a : theta_) a = std::numbers::pi * (2 * gt.uniform_double() - 1);
    }

    /// Executes the circuit once per sample: `y(n × Out)` = the measured ⟨Z_q⟩ (the layer adds b).
    /// Samples run on the kernels' thread team (`pnn::set_num_threads`), each from its own
    /// stream, so the result does not depend on the thread count.
    void read(const T* x, std::size_t n, T* y, rng& g) const {
      const simd::kernel_work_pause simulated;  // the state vector stands for the hardware
      for_samples(n, [&](quantum::state_vector& sv, std::size_t r) {
        std::vector<double> phi(out_), z(out_);
        encode(x + r * in_, phi.data());
        rng gr = g.split(r);
        execute(sv, phi.data(), no_shift, 0.0, z.data(), gr);
        for (std::size_t q = 0; q < out_; ++q) y[r * out_ + q] = T(z[q]);
      });
      report(n, n);
    }

    /// No input-independent transposed read exists: the circuit is nonlinear in `x`.
    /// \throws pnn::error always, saying what to use (`read_vjp`, which backprop calls).
    void read_transposed(const T*, std::size_t, T*, rng&) const {
      throw_error("physics::quantum_circuit::read_transposed: a circuit's read is nonlinear in its input, so it has no "
                  "transposed read; read_vjp (parameter shift of the encoding angles) is the vector-Jacobian product "
                  "(backprop uses it); energy-based rules cannot relax through a circuit");
    }

    /// \brief The vector–Jacobian product at inputs `x`: `dx = Wᵀ g`, `g_q = Σ_j dy_j ∂⟨Z_j⟩/∂φ_q`,
    /// each derivative by parameter shift (two executions per encoding gate of qubit q, so
    /// 2·L executions per qubit with re-uploading, 2 without).
    void read_vjp(const T* x, const T* dy, std::size_t n, T* dx, rng& g) const {
      const simd::kernel_work_pause simulated;
      const std::size_t uploads = encodings();
      for_samples(n, [&](quantum::state_vector& sv, std::size_t r) {
        std::vector<double> phi(out_), gphi(out_);
        encode(x + r * in_, phi.data());
        rng gr = g.split(r);
        std::uint64_t e = 0;
        for (std::size_t q = 0; q < out_; ++q) {
          double d = 0;
          for (std::size_t u = 0; u < uploads; ++u) d += shifted(sv, phi.data(), encoding_gate(u, q), dy + r * out_, gr, e);
          gphi[q] = d;
        }
        for (std::size_t i = 0; i < in_; ++i) {
          double s = 0;
          for (std::size_t q = 0; q < out_; ++q) s += w_[q * in_ + i] * gphi[q];
          dx[r * in_ + i] = T(s);
        }
      });
      report(2 * n * out_ * uploads);
    }

    /// \brief `∂L/∂(W, θ, b)` for `L = s·Σ_r δ_r·y_r(h_r)` (inputs `h` n × In, output gradients
    /// `δ` n × Out) in the layout of `get_parameters`, by parameter shift: two executions per
    /// rotation gate and sample; `∂L/∂W_qi = Σ_r (∂L/∂φ_q) h_ri`; the bias part is `bias_grad`.
    /// Samples run on the thread team; their contributions are summed in sample order, so the
    /// result is bitwise the same for any thread count.
    void parameter_gradient(const T* h, const T* delta, std::size_t n, double s, const T* bias_grad, double* out,
                            rng& g) const {
      const simd::kernel_work_pause simulated;
      const std::size_t nw = in_ * out_, nt = theta_.size(), np = nw + nt;
      const std::size_t uploads = encodings();
      std::vector<double> per(n * np, 0.0);  // each sample's contribution, reduced below in order
      for_samples(n, [&](quantum::state_vector& sv, std::size_t r) {
        std::vector<double> phi(out_);
        double* pr = per.data() + r * np;
        encode(h + r * in_, phi.data());
        rng gr = g.split(r);
        std::uint64_t e = 0;
        for (std::size_t q = 0; q < out_; ++q) {
          double d = 0;
          for (std::size_t u = 0; u < uploads; ++u) d += shifted(sv, phi.data(), encoding_gate(u, q), delta + r * out_, gr, e);
          for (std::size_t i = 0; i < in_; ++i) pr[q * in_ + i] = s * d * double(h[r * in_ + i]);
        }
        for (std::size_t k = 0; k < nt; ++k) pr[nw + k] = s * shifted(sv, phi.data(), theta_gate(k), delta + r * out_, gr, e);
      });
      std::fill(out, out + parameter_count(), 0.0);
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t k = 0; k < np; ++k) out[k] += per[r * np + k];
      for (std::size_t j = 0; j < out_; ++j) out[np + j] = bias_grad ? double(bias_grad[j]) : 0.0;
      report(2 * n * (out_ * uploads + nt));
    }

    /// Realises a dense update on the encoding map and the bias: `W ← W − ΔW`, `b ← b − Δb`
    /// (θ unchanged). Rules reach the circuit in its parameters instead (see the file comment).
    template <class U>
    void program(const U& update, rng&) {
      const T* dw = update.weight_data();
      const T* db = update.bias_data();
      for (std::size_t k = 0; k < w_.size(); ++k) w_[k] -= double(dw[k]);
      for (std::size_t j = 0; j < out_; ++j) b_[j] -= db[j];
    }
    /// Sets W and b (θ is kept). \pre finite values (else `pnn::error`; the tile is unchanged).
    void set_weights(const T* w, const T* b, rng&) {
      for (std::size_t k = 0; k < w_.size(); ++k)
        PNN_EXPECTS(std::isfinite(double(w[k])), "physics::quantum_circuit::set_weights: weights are not finite");
      for (std::size_t j = 0; j < out_; ++j)
        PNN_EXPECTS(std::isfinite(double(b[j])), "physics::quantum_circuit::set_weights: bias is not finite");
      for (std::size_t k = 0; k < w_.size(); ++k) w_[k] = double(w[k]);
      for (std::size_t j = 0; j < out_; ++j) b_[j] = b[j];
    }
    /// The encoding map W (Out × In): what a linear model of the layer can know.
    void effective_weights(T* w) const {
      for (std::size_t k = 0; k < w_.size(); ++k) w[k] = T(w_[k]);
    }
    [[nodiscard]] T* bias_data() noexcept { return b_.data(); }
    [[nodiscard]] const T* bias_data() const noexcept { return b_.data(); }

    /// W, θ and b: `Out·In + 2·L·Out + Out` values.
    [[nodiscard]] std::size_t parameter_count() const noexcept { return w_.size() + theta_.size() + out_; }
    void get_parameters(double* p) const {
      std::copy(w_.begin(), w_.end(), p);
      std::copy(theta_.begin(), theta_.end(), p + w_.size());
      for (std::size_t j = 0; j < out_; ++j) p[w_.size() + theta_.size() + j] = double(b_[j]);
    }
    /// \pre `parameter_count()` finite values (else `pnn::error`; the tile is unchanged).
    void set_parameters(const double* p) {
      for (std::size_t k = 0; k < parameter_count(); ++k)
        PNN_EXPECTS(std::isfinite(p[k]), "physics::quantum_circuit::set_parameters: parameters are not finite");
      std::copy(p, p + w_.size(), w_.begin());
      std::copy(p + w_.size(), p + w_.size() + theta_.size(), theta_.begin());
      for (std::size_t j = 0; j < out_; ++j) b_[j] = T(p[w_.size() + theta_.size() + j]);
    }
    /// The rotation angles θ (L × Out × 2).
    [[nodiscard]] std::span<const double> angles() const noexcept { return theta_; }

    /// Checkpoint contents: W, θ and b.
    template <class V>
    void visit_state(V& v) {
      v("weight", std::span<double>(w_));
      v("theta", std::span<double>(theta_));
      v("bias", std::span<T>(b_));
    }

    /// Reports circuit executions and shots into `c` (`tile_hooks::attach_cost_counter`); with
    /// exact expectations (`shots = 0`) only executions are counted.
    void attach_cost_counter(cost_counter* c) noexcept { cost_.attach(c); }

   private:
    static constexpr std::size_t no_shift = static_cast<std::size_t>(-1);
    static constexpr double half_pi = std::numbers::pi / 2;

    [[nodiscard]] std::size_t encodings() const noexcept { return p_.reupload ? p_.layers : 1; }
    /// Rotation gates per layer: Out encodings (where encoded) and 2·Out variational.
    [[nodiscard]] std::size_t layer_start(std::size_t l) const noexcept {
      return p_.reupload ? l * 3 * out_ : (l == 0 ? 0 : 3 * out_ + (l - 1) * 2 * out_);
    }
    [[nodiscard]] std::size_t encoding_gate(std::size_t upload, std::size_t q) const noexcept {
      return layer_start(upload) + q;
    }
    [[nodiscard]] std::size_t theta_gate(std::size_t k) const noexcept {
      const std::size_t l = k / (2 * out_), rest = k % (2 * out_);
      const bool encoded = p_.reupload || l == 0;
      return layer_start(l) + (encoded ? out_ : 0) + rest;
    }

    /// Calls `f(state, r)` for every sample r in [0, n) on the kernels' thread team, one state
    /// vector per thread.
    template <class F>
    void for_samples(std::size_t n, F&& f) const {
      pnn::detail::parallel_team(n, [&](std::size_t t, std::size_t team) {
        const auto [b, e] = pnn::detail::team_range(n, 1, t, team);
        if (b >= e) return;
        quantum::state_vector sv(out_);
        for (std::size_t r = b; r < e; ++r) f(sv, r);
      });
    }

    /// Σ_j w_j ∂⟨Z_j⟩/∂a for rotation gate `gate` by parameter shift: two executions, streams
    /// `e` and `e + 1` of `g` (e advances by two).
    double shifted(quantum::state_vector& sv, const double* phi, std::size_t gate, const T* w, rng& g,
                   std::uint64_t& e) const {
      std::vector<double> zp(out_), zm(out_);
      rng gp = g.split(e++), gm = g.split(e++);
      execute(sv, phi, gate, half_pi, zp.data(), gp);
      execute(sv, phi, gate, -half_pi, zm.data(), gm);
      double d = 0;
      for (std::size_t j = 0; j < out_; ++j) d += double(w[j]) * (zp[j] - zm[j]) / 2;
      return d;
    }

    void encode(const T* x, double* phi) const {
      for (std::size_t q = 0; q < out_; ++q) {
        double s = 0;
        for (std::size_t i = 0; i < in_; ++i) s += w_[q * in_ + i] * double(x[i]);
        phi[q] = s;
      }
    }

    /// One execution with rotation gate `shifted` (in circuit order) offset by `shift`.
    void execute(quantum::state_vector& sv, const double* phi, std::size_t shifted, double shift, double* z,
                 rng& g) const {
      sv.reset();
      std::size_t gate = 0;
      auto angle = [&](double a) { return gate++ == shifted ? a + shift : a; };
      for (std::size_t l = 0; l < p_.layers; ++l) {
        if (l == 0 || p_.reupload)
          for (std::size_t q = 0; q < out_; ++q) sv.ry(q, angle(phi[q]));
        const double* th = theta_.data() + l * 2 * out_;
        for (std::size_t q = 0; q < out_; ++q) {
          sv.rz(q, angle(th[2 * q]));
          sv.ry(q, angle(th[2 * q + 1]));
        }
        if (out_ >= 2) {
          for (std::size_t q = 0; q + 1 < out_; ++q) sv.cz(q, q + 1);
          if (out_ > 2) sv.cz(out_ - 1, 0);
        }
      }
      // The gate index must run in the order of layer_start/theta_gate: RZ then RY per qubit.
      if (p_.shots == 0)
        for (std::size_t q = 0; q < out_; ++q) z[q] = sv.expectation_z(q);
      else
        sv.sample_z(p_.shots, out_, z, g);
    }

    /// Counts executions and shots; `reads` only for forward reads (the shifted executions
    /// of a gradient are not reads of the layer). Angle settings are digital control values and
    /// are not charged.
    void report(std::size_t executions, std::size_t reads = 0) const {
      cost_.report([&] {
        return physical_events{.reads = reads, .circuit_executions = executions, .circuit_shots = executions * p_.shots};
      });
    }

    params p_{};
    std::size_t in_ = 0, out_ = 0;
    std::vector<double> w_{};
    std::vector<double> theta_{};
    std::vector<T> b_{};
    cost_report cost_{};
  };
};

/// Parameterised quantum circuits on `float` values between layers.
using quantum_circuit = basic_quantum_circuit<float>;

static_assert(substrate<quantum_circuit> && parameterised_tile<quantum_circuit::tile<3, 2>>);

}  // namespace pnn::physics
