// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::scattering_medium`: coherent light through a fixed scattering medium (a
/// multimode fibre, a diffuser), the data and trainable phases side by side on one spatial light
/// modulator, speckle intensities on a camera — a broken-isomorphism physical layer.
///
/// The medium is a complex transmission matrix `A` (Out × N) between N input modes (SLM pixels)
/// and Out output modes (camera pixels); the physics does not compute a product of the data with
/// trainable weights. The SLM shows `N = In + K` phases: the data, `x_i ↦ exp(i·d·x_i)` (d =
/// `data_phase`, π for inputs in [0, 1]), and K trainable control phases `θ_k` (the parameters
/// enter as part of the input, as in the multimode-fibre demonstration of physical local learning,
/// Momeni et al. 2023). The camera records
///
///   y_j = g · |Σ_m A_jm u_m|²,  u = (e^{i d x}, e^{i θ}),
///
/// With `mask::on_data` the phases are overlaid on the data pixels instead, `u_i = e^{i(d x_i +
/// θ_i)}` (N = In): a phase mask in front of the medium, which turns the fixed map `A` into
/// `A·diag(e^{iθ})` — a trainable transform, where control pixels beside the data only add a
/// reference field `c_j(θ)` that interferes with the data's fixed speckle (`|d_j|² + |c_j|² +
/// 2 Re d_j c_j*`).
/// with shot noise when `photons > 0`: the camera counts `Poisson(photons · |E_j|²)` and
/// reports `g · counts / photons` (unbiased, variance `g² |E_j|² / photons`).
///
/// **The medium.** `medium::gaussian` draws `A_jm ~ CN(0, 1/N)` independently (the statistics of
/// a strongly scattering medium's transmission matrix, Popoff et al. 2010; Rayleigh speckle of
/// mean intensity 1 at every camera pixel); `medium::unitary` draws an Out × N block of a
/// Haar-random unitary (a lossless medium: with Out = N, `Σ_j |E_j|² = N` for every input).
/// `prepare` draws it (it is the physical instance, like a crossbar's device variation); a
/// measured matrix is set with `set_transmission`.
///
/// **Gradients.** With `a_j = ∂L/∂E_j* = g δ_j E_j`, the adjoint `b = Aᴴ a` gives
/// `∂L/∂θ_k = −2 Im(b*_{In+k} u_{In+k})` and `∂L/∂x_i = −2 d Im(b*_i u_i)` — what a model of the
/// medium (its measured matrix) predicts. Perturbative rules need no model at all: they write θ
/// and measure. With `train_mask = false` the control phases are configuration, not parameters
/// (the frozen-physics baseline: only the bias, and the layers after the medium, learn).
///
/// The parameters, in the layout of `get_parameters`: θ (K beside the data, In on it; radians;
/// absent when the mask is frozen), then the digital bias b (Out). The read is nonlinear in x, so the tile takes
/// estimates as factors and learns in its own parameters; it has no W (`set_weights` and
/// `effective_weights` are absent).
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/core/threads.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/simd/gemm.hpp>
#include <pnn/simd/random.hpp>
#include <pnn/simd/work.hpp>

namespace pnn::physics {

/// Scattering media with values of type `T` between layers; fields in `T` precision.
template <class T = float>
struct basic_scattering_medium {
  using value_type = T;
  static constexpr const char* name = "scattering";

  /// How `prepare` draws the transmission matrix.
  enum class medium {
    gaussian,  ///< i.i.d. circular Gaussian entries of variance 1/N (strong scattering)
    unitary,   ///< a block of a Haar-random unitary (lossless)
  };

  /// Where the trainable phases sit on the SLM.
  enum class mask {
    beside_data,  ///< K control pixels of their own beside the data pixels (N = In + K)
    on_data,      ///< one phase added to each data pixel's, `d·x_i + θ_i` (N = In, K = In)
  };

  /// The SLM, the medium and the camera.
  struct params {
    std::size_t control_pixels = 256;        ///< K: trainable SLM phases beside the data (`beside_data`)
    mask placement = mask::beside_data;      ///< where the trainable phases sit
    double data_phase = std::numbers::pi;    ///< d: data value x shown as the phase d·x, rad
    medium kind = medium::gaussian;          ///< statistics of the drawn matrix
    double output_gain = 1.0;                ///< g: y = g · intensity
    double photons = 0;                      ///< mean photons at unit intensity (shot noise); 0: none
    double initial_phase = std::numbers::pi; ///< `prepare` draws θ uniform in ±this, rad
    bool train_mask = true;                  ///< false: θ is configuration (the frozen baseline)

    /// \pre data_phase, gain > 0; photons, initial_phase ≥ 0; all finite; K ≤ 2²⁰ (else `pnn::error`).
    void validate() const {
      auto finite = [](double v) { return std::isfinite(v); };
      PNN_EXPECTS(control_pixels <= (std::size_t{1} << 20), "physics::scattering_medium: control_pixels must be at most 2^20");
      PNN_EXPECTS(data_phase > 0 && finite(data_phase), "physics::scattering_medium: data_phase must be positive and finite");
      PNN_EXPECTS(output_gain > 0 && finite(output_gain),
                  "physics::scattering_medium: output_gain must be positive and finite");
      PNN_EXPECTS(photons >= 0 && finite(photons), "physics::scattering_medium: photons must be >= 0 and finite");
      PNN_EXPECTS(initial_phase >= 0 && finite(initial_phase),
                  "physics::scattering_medium: initial_phase must be >= 0 and finite");
    }
  };

  /// One medium between an SLM of In + K pixels and Out camera pixels.
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = T;
    using complex = std::complex<T>;
    static constexpr std::size_t in_extent = In;
    static constexpr std::size_t out_extent = Out;
    /// The read is nonlinear in x: estimates reach the tile as factors (h, δ).
    static constexpr bool uses_update_factors = true;
    static constexpr bool needs_update_factors = true;

    /// Every estimate is learnt in θ and b.
    [[nodiscard]] bool learns_in_parameter_space() const noexcept { return true; }

    /// \pre `p.validate()`. A shaped tile with a different K (or mask mode) is reshaped: θ = 0,
    /// the medium is kept only when its width N is unchanged.
    void set_params(const params& p) {
      p.validate();
      const std::size_t k_old = p_.control_pixels;
      const mask m_old = p_.placement;
      p_ = p;
      if (out_ > 0 && (p.control_pixels != k_old || p.placement != m_old)) {
        theta_.assign(controls(), 0.0);
        a_re_.assign(out_ * modes(), T(0));
        a_im_.assign(out_ * modes(), T(0));
      }
    }
    [[nodiscard]] const params& parameters() const noexcept { return p_; }

    /// Shapes the tile: θ = 0, b = 0, A = 0 (`prepare` draws A and θ). \pre in, out ≥ 1.
    void resize(std::size_t in, std::size_t out) {
      PNN_EXPECTS((In == dynamic || in == In) && (Out == dynamic || out == Out),
                  "physics::scattering_medium: size differs from the tile's fixed extent");
      PNN_EXPECTS(in >= 1 && out >= 1, "physics::scattering_medium: needs at least one input and one camera pixel");
      in_ = in;
      out_ = out;
      b_.assign(out, T(0));
      theta_.assign(controls(), 0.0);
      a_re_.assign(out * modes(), T(0));
      a_im_.assign(out * modes(), T(0));
    }
    [[nodiscard]] std::size_t in_size() const noexcept { return in_; }
    [[nodiscard]] std::size_t out_size() const noexcept { return out_; }
    /// N, the SLM pixels (input modes): In + K beside the data, In on it.
    [[nodiscard]] std::size_t modes() const noexcept {
      return in_ + (p_.placement == mask::beside_data ? p_.control_pixels : 0);
    }
    /// The number of control phases θ: K beside the data, In on it.
    [[nodiscard]] std::size_t controls() const noexcept {
      return p_.placement == mask::beside_data ? p_.control_pixels : in_;
    }

    /// Draws the medium (`kind`) and the control phases uniform in ±`initial_phase`.
    void prepare(rng& g) {
      rng gm = g.split(0x5ca7), gp = g.split(0x5ca8);
      const std::size_t n = modes();
      if (p_.kind == medium::gaussian) {
        const double sd = std::sqrt(0.5 / double(n));
        for (std::size_t q = 0; q < a_re_.size(); ++q) {
          a_re_[q] = T(sd * gm.normal_double());
          a_im_[q] = T(sd * gm.normal_double());
        }
      } else {
        haar_block(gm);
      }
      for (double& a : theta_) a = p_.initial_phase * (2 * gp.uniform_double() - 1);
    }

    /// \brief Sets a measured transmission matrix: `re_im` holds Out × N complex values,
    /// row-major, each as (real, imaginary) — e.g. a NumPy array of shape (Out, N, 2) read with
    /// `pnn::io::load_npy`. \pre Out·N·2 finite values (else `pnn::error`; the tile is unchanged).
    void set_transmission(std::span<const double> re_im) {
      if (re_im.size() != 2 * out_ * modes())
        throw_error("physics::scattering_medium::set_transmission: expected " + std::to_string(out_) + " x " +
                    std::to_string(modes()) + " complex values (" + std::to_string(2 * out_ * modes()) +
                    " doubles), got " + std::to_string(re_im.size()) + " doubles");
      for (const double v : re_im)
        PNN_EXPECTS(std::isfinite(v), "physics::scattering_medium::set_transmission: the matrix is not finite");
      for (std::size_t q = 0; q < a_re_.size(); ++q) {
        a_re_[q] = T(re_im[2 * q]);
        a_im_[q] = T(re_im[2 * q + 1]);
      }
    }
    /// The transmission matrix entry (j, m).
    [[nodiscard]] complex transmission(std::size_t j, std::size_t m) const {
      PNN_EXPECTS(j < out_ && m < modes(), "physics::scattering_medium::transmission: index out of range");
      return {a_re_[j * modes() + m], a_im_[j * modes() + m]};
    }

    /// One camera frame per sample: `y(n × Out)` (the layer adds b). Samples run on the kernels'
    /// thread team, each with its own stream.
    void read(const T* x, std::size_t n, T* y, rng& g) const {
      ensure_shaped();
      const simd::kernel_work_pause simulated;
      for_shards(n, [&](scratch& s, std::size_t r) {
        field(x + r * in_, s);
        rng gr = g.split(r);
        camera(s, gr, y + r * out_);
      });
      report(n, 0);
    }

    /// \brief Calibration frames: shows `n` arbitrary SLM patterns, `phases` (n × N, rad, every
    /// pixel — data and control alike; θ and x play no part), and records `y(n × Out)`,
    /// `g·|A e^{i·phase}|²`, with the shot noise and per-sample streams of `read`. This is how a
    /// lab measures its medium (`fit_transmission`); the frames count as reads.
    /// \pre finite phases (else `pnn::error`; y is unchanged).
    void probe(const double* phases, std::size_t n, T* y, rng& g) const {
      ensure_shaped();
      const std::size_t m = modes();
      for (std::size_t q = 0; q < n * m; ++q)
        PNN_EXPECTS(std::isfinite(phases[q]), "physics::scattering_medium::probe: the SLM phases are not finite");
      const simd::kernel_work_pause simulated;
      for_shards(n, [&](scratch& s, std::size_t r) {
        for (std::size_t q = 0; q < m; ++q) {
          s.u_re[q] = T(std::cos(phases[r * m + q]));
          s.u_im[q] = T(std::sin(phases[r * m + q]));
        }
        propagate(s);
        rng gr = g.split(r);
        camera(s, gr, y + r * out_);
      });
      report(n, 0);
    }

    /// No transposed read: the camera measures intensity. \throws pnn::error always.
    void read_transposed(const T*, std::size_t, T*, rng&) const {
      throw_error("physics::scattering_medium::read_transposed: the camera measures intensity, so the read has no "
                  "transposed form; read_vjp (the adjoint through the measured matrix) is its vector-Jacobian "
                  "product (backprop uses it)");
    }

    /// The vector–Jacobian product at inputs `x`: `dx_i = −2 d Im(b*_i u_i)`, `b = Aᴴ (g δ ⊙ E)`.
    void read_vjp(const T* x, const T* dy, std::size_t n, T* dx, rng&) const {
      ensure_shaped();
      const simd::kernel_work_pause simulated;
      for_shards(n, [&](scratch& s, std::size_t r) {
        field(x + r * in_, s);
        adjoint(dy + r * out_, s);
        for (std::size_t i = 0; i < in_; ++i)
          dx[r * in_ + i] = T(-2 * p_.data_phase * (double(s.b_re[i]) * double(s.u_im[i]) -
                                                    double(s.b_im[i]) * double(s.u_re[i])));
      });
      report(0, n);
    }

    /// \brief `∂L/∂(θ, b)` for `L = s·Σ_r δ_r·y_r(h_r)` in the layout of `get_parameters`, through
    /// the matrix (one forward and one adjoint product per sample), summed in fixed shards of 8
    /// samples in order: bitwise the same for any thread count.
    void parameter_gradient(const T* h, const T* delta, std::size_t n, double s, const T* bias_grad, double* out,
                            rng&) const {
      ensure_shaped();
      const simd::kernel_work_pause simulated;
      const std::size_t k = p_.train_mask ? controls() : 0, shards = (n + shard - 1) / shard;
      std::vector<double> part(shards * k, 0.0);
      if (k > 0)
        for_shards(n, [&](scratch& sc, std::size_t r) {
          field(h + r * in_, sc);
          adjoint(delta + r * out_, sc);
          double* d = part.data() + (r / shard) * k;
          for (std::size_t q = 0; q < k; ++q) {
            const std::size_t m = pixel(q);
            d[q] += -2 * s * (double(sc.b_re[m]) * double(sc.u_im[m]) - double(sc.b_im[m]) * double(sc.u_re[m]));
          }
        });
      std::fill(out, out + parameter_count(), 0.0);
      for (std::size_t c = 0; c < shards; ++c)
        for (std::size_t q = 0; q < k; ++q) out[q] += part[c * k + q];
      for (std::size_t j = 0; j < out_; ++j) out[k + j] = bias_grad ? double(bias_grad[j]) : 0.0;
      if (k > 0) report(0, n);
    }

    /// No W: updates reach θ and b in parameter space. \throws pnn::error always.
    template <class U>
    void program(const U&, rng&) {
      throw_error("physics::scattering_medium::program: a scattering medium has no weight matrix; updates reach its "
                  "control phases in parameter space (map_to_tile_parameters / step_tile_parameters)");
    }
    [[nodiscard]] T* bias_data() noexcept { return b_.data(); }
    [[nodiscard]] const T* bias_data() const noexcept { return b_.data(); }

    /// θ (K, when trained) then b (Out).
    [[nodiscard]] std::size_t parameter_count() const noexcept {
      return (p_.train_mask ? theta_.size() : 0) + out_;
    }
    void get_parameters(double* p) const {
      const std::size_t k = p_.train_mask ? theta_.size() : 0;
      std::copy(theta_.begin(), theta_.begin() + std::ptrdiff_t(k), p);
      for (std::size_t j = 0; j < out_; ++j) p[k + j] = double(b_[j]);
    }
    /// \pre `parameter_count()` finite values (else `pnn::error`; the tile is unchanged).
    void set_parameters(const double* p) {
      const std::size_t k = p_.train_mask ? theta_.size() : 0;
      for (std::size_t q = 0; q < parameter_count(); ++q)
        PNN_EXPECTS(std::isfinite(p[q]), "physics::scattering_medium::set_parameters: parameters are not finite");
      std::copy(p, p + k, theta_.begin());
      for (std::size_t j = 0; j < out_; ++j) b_[j] = T(p[k + j]);
      cost_.report([&] { return physical_events{.parameter_writes = k}; });
    }
    /// The control phases θ (K), trained or not.
    [[nodiscard]] std::span<const double> control_phases() const noexcept { return theta_; }

    /// Checkpoint contents: θ, b and the medium (part of the instance).
    template <class V>
    void visit_state(V& v) {
      v("control_phase", std::span<double>(theta_));
      v("bias", std::span<T>(b_));
      v("transmission_re", std::span<T>(a_re_));
      v("transmission_im", std::span<T>(a_im_));
    }

    /// Reports camera frames (reads) and adjoint products (`transposed_reads`) as optical
    /// vectors with N + Out channels (SLM pixels and camera pixels), and phase writes.
    void attach_cost_counter(cost_counter* c) noexcept { cost_.attach(c); }

   private:
    static constexpr std::size_t shard = 8;

    struct scratch {
      std::vector<T> u_re, u_im, e_re, e_im, b_re, b_im;
    };

    void ensure_shaped() const {
      PNN_EXPECTS(out_ > 0, "physics::scattering_medium: the tile is not shaped (resize)");
    }

    template <class F>
    void for_shards(std::size_t n, F&& f) const {
      const std::size_t m = modes();
      pnn::detail::for_sample_shards(
          n, shard, [&] { return scratch{std::vector<T>(m), std::vector<T>(m), std::vector<T>(out_),
                                         std::vector<T>(out_), std::vector<T>(m), std::vector<T>(m)}; },
          f);
    }

    /// The SLM pixel control phase q sits on.
    [[nodiscard]] std::size_t pixel(std::size_t q) const noexcept {
      return p_.placement == mask::beside_data ? in_ + q : q;
    }

    /// The SLM field u and the camera field E = A u of one sample.
    void field(const T* x, scratch& s) const {
      const std::size_t m = modes();
      const bool on = p_.placement == mask::on_data;
      for (std::size_t i = 0; i < in_; ++i) {
        const double a = p_.data_phase * double(x[i]) + (on ? theta_[i] : 0.0);
        s.u_re[i] = T(std::cos(a));
        s.u_im[i] = T(std::sin(a));
      }
      for (std::size_t q = 0; q < m - in_; ++q) {
        s.u_re[in_ + q] = T(std::cos(theta_[q]));
        s.u_im[in_ + q] = T(std::sin(theta_[q]));
      }
      propagate(s);
    }

    /// E = A u for the SLM field u in `s`.
    void propagate(scratch& s) const {
      const std::size_t m = modes();
      for (std::size_t j = 0; j < out_; ++j) {
        const T* ar = a_re_.data() + j * m;
        const T* ai = a_im_.data() + j * m;
        T re = 0, im = 0;
        for (std::size_t q = 0; q < m; ++q) {
          re += ar[q] * s.u_re[q] - ai[q] * s.u_im[q];
          im += ar[q] * s.u_im[q] + ai[q] * s.u_re[q];
        }
        s.e_re[j] = re;
        s.e_im[j] = im;
      }
    }

    /// The camera frame `y(Out)` of the field E in `s`: `g·|E|²`, or `g·Poisson(photons·|E|²)/photons`.
    void camera(const scratch& s, rng& gr, T* y) const {
      for (std::size_t j = 0; j < out_; ++j) {
        const double i = double(std::norm(complex(s.e_re[j], s.e_im[j])));
        double v = i;
        if (p_.photons > 0) {
          double counts = 0;
          pnn::fill_poisson(gr, &counts, 1, p_.photons * i);
          v = counts / p_.photons;
        }
        y[j] = T(p_.output_gain * v);
      }
    }

    /// b = Aᴴ (g δ ⊙ E) from the sample's E in `s`.
    void adjoint(const T* dy, scratch& s) const {
      const std::size_t m = modes();
      std::fill(s.b_re.begin(), s.b_re.end(), T(0));
      std::fill(s.b_im.begin(), s.b_im.end(), T(0));
      for (std::size_t j = 0; j < out_; ++j) {
        const T w = T(p_.output_gain) * dy[j];
        const T are = w * s.e_re[j], aim = w * s.e_im[j];
        const T* ar = a_re_.data() + j * m;
        const T* ai = a_im_.data() + j * m;
        for (std::size_t q = 0; q < m; ++q) {  // conj(A_jq) · a_j
          s.b_re[q] += ar[q] * are + ai[q] * aim;
          s.b_im[q] += ar[q] * aim - ai[q] * are;
        }
      }
    }

    /// An Out × N block of a Haar-random unitary of size max(Out, N): Gram–Schmidt on the
    /// columns of a complex Gaussian matrix (Mezzadri 2007: QR with the phases of R's diagonal
    /// divided out is Haar; Gram–Schmidt gives that R directly).
    void haar_block(rng& g) {
      const std::size_t m = modes(), d = std::max(m, out_);
      std::vector<std::complex<double>> q(d * d);  // column-major: column c at q[c * d]
      for (auto& v : q) v = {g.normal_double(), g.normal_double()};
      for (std::size_t c = 0; c < d; ++c) {
        std::complex<double>* col = q.data() + c * d;
        for (int pass = 0; pass < 2; ++pass)  // twice: orthogonal to rounding
          for (std::size_t p = 0; p < c; ++p) {
            const std::complex<double>* prev = q.data() + p * d;
            std::complex<double> dot = 0;
            for (std::size_t r = 0; r < d; ++r) dot += std::conj(prev[r]) * col[r];
            for (std::size_t r = 0; r < d; ++r) col[r] -= dot * prev[r];
          }
        double norm = 0;
        for (std::size_t r = 0; r < d; ++r) norm += std::norm(col[r]);
        norm = std::sqrt(norm);
        for (std::size_t r = 0; r < d; ++r) col[r] /= norm;
      }
      for (std::size_t j = 0; j < out_; ++j)
        for (std::size_t c = 0; c < m; ++c) {
          a_re_[j * m + c] = T(q[c * d + j].real());
          a_im_[j * m + c] = T(q[c * d + j].imag());
        }
    }

    void report(std::size_t reads, std::size_t adjoint) const {
      cost_.report([&] {
        const std::size_t frames = reads + adjoint;
        return physical_events{.reads = reads,
                               .transposed_reads = adjoint,
                               .optical_vectors = frames,
                               .optical_channels = frames * (modes() + out_)};
      });
    }

    params p_{};
    std::size_t in_ = 0, out_ = 0;
    std::vector<double> theta_{};
    std::vector<T> a_re_{}, a_im_{};
    std::vector<T> b_{};
    cost_report cost_{};
  };
};

/// Scattering media on `float` values and fields.
using scattering_medium = basic_scattering_medium<float>;

static_assert(substrate<scattering_medium> && parameterised_tile<scattering_medium::tile<4, 2>>);

/// What `fit_transmission` did, and how well the fitted matrix predicts frames it never saw.
struct transmission_fit {
  std::size_t frames = 0;      ///< calibration frames fitted (M)
  std::size_t held_out = 0;    ///< further frames, measured only to judge the fit
  std::size_t iterations = 0;  ///< descent steps taken
  double training_error = 0;   ///< relative intensity error on the fitted frames
  double relative_error = 0;   ///< on the held-out frames: `sqrt(Σ(ŷ − y)² / Σ y²)`
};

/// How `fit_transmission` measures and fits.
struct transmission_fit_params {
  std::size_t frames = 0;             ///< fitted frames M; 0: 8·N (\pre 0 or ≥ 4·N)
  std::size_t held_out = 0;           ///< frames only for the report; 0: max(1, M/8)
  std::size_t power_iterations = 20;  ///< of the spectral initialisation
  std::size_t iterations = 100;       ///< descent steps, at most
  double tolerance = 0;               ///< stop once the fitted frames' relative error is at most this
  std::uint64_t seed = 1;             ///< streams `g.split(seed)` (patterns), `seed + 1` (noise), `seed + 2`

  /// \pre iterations ≥ 1; tolerance ≥ 0 and finite (else `pnn::error`).
  void validate() const {
    PNN_EXPECTS(iterations >= 1, "physics::fit_transmission: iterations must be at least 1");
    PNN_EXPECTS(tolerance >= 0 && std::isfinite(tolerance),
                "physics::fit_transmission: tolerance must be >= 0 and finite");
  }
};

namespace detail {
/// Frames of unit-modulus SLM fields as one real matrix `[cos φ | sin φ]` (M × 2N) against an
/// Out × N complex matrix; products as real GEMMs over the stacked re/im parts.
struct intensity_model {
  std::size_t frames, modes, out;
  const double* u;  // M × 2N

  /// `e(M × 2·Out) = [Re | Im] (U Âᵀ)` for `a` (Out × N complex, interleaved re, im).
  void forward(const std::vector<double>& a, std::vector<double>& stacked, double* e) const {
    // Rows j and Out + j of `stacked` give Re and Im of E_·j: Re = U_re a_re − U_im a_im,
    // Im = U_re a_im + U_im a_re.
    const std::size_t n = modes;
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t q = 0; q < n; ++q) {
        const double re = a[2 * (j * n + q)], im = a[2 * (j * n + q) + 1];
        stacked[j * 2 * n + q] = re;
        stacked[j * 2 * n + n + q] = -im;
        stacked[(out + j) * 2 * n + q] = im;
        stacked[(out + j) * 2 * n + n + q] = re;
      }
    simd::gemm_nt<double>(frames, 2 * out, 2 * n, 1.0, u, 2 * n, stacked.data(), 2 * n, 0.0, e, 2 * out);
  }

  /// `grad(Out × N complex) = Σ_m c_mj conj(u_mn)` for `c` (M × 2·Out as from `forward`).
  void backward(const double* c, std::vector<double>& stacked, std::vector<double>& grad) const {
    const std::size_t n = modes;
    simd::gemm_tn<double>(2 * out, 2 * n, frames, 1.0, c, 2 * out, u, 2 * n, 0.0, stacked.data(), 2 * n);
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t q = 0; q < n; ++q) {
        const double rr = stacked[j * 2 * n + q], ri = stacked[j * 2 * n + n + q];
        const double ir = stacked[(out + j) * 2 * n + q], ii = stacked[(out + j) * 2 * n + n + q];
        grad[2 * (j * n + q)] = rr + ii;
        grad[2 * (j * n + q) + 1] = ir - ri;
      }
  }
};

/// The real t minimising `Σ_k q_k t^k` (k ≤ 4, q₄ ≥ 0): the best of the real roots of its
/// derivative (Cardano, three roots by the trigonometric form), 0 when the quartic is flat.
inline double quartic_argmin(const double (&q)[5]) {
  auto value = [&](double t) { return (((q[4] * t + q[3]) * t + q[2]) * t + q[1]) * t + q[0]; };
  if (!(q[4] > 0)) return q[2] > 0 ? -q[1] / (2 * q[2]) : 0.0;
  // t³ + b t² + c t + d = 0, the derivative over 4 q₄; t = s − b/3 gives s³ + P s + Q = 0.
  const double b = 3 * q[3] / (4 * q[4]), c = 2 * q[2] / (4 * q[4]), d = q[1] / (4 * q[4]);
  const double pp = c - b * b / 3, qq = 2 * b * b * b / 27 - b * c / 3 + d;
  const double disc = qq * qq / 4 + pp * pp * pp / 27;
  double roots[3];
  std::size_t count = 0;
  if (disc >= 0) {
    const double sq = std::sqrt(disc);
    roots[count++] = std::cbrt(-qq / 2 + sq) + std::cbrt(-qq / 2 - sq) - b / 3;
  } else {
    const double r = 2 * std::sqrt(-pp / 3);
    const double phi = std::acos(std::clamp(3 * qq / (pp * r), -1.0, 1.0)) / 3;
    for (int k = 0; k < 3; ++k) roots[count++] = r * std::cos(phi - 2 * std::numbers::pi * k / 3) - b / 3;
  }
  double best = 0, best_value = value(0);
  for (std::size_t k = 0; k < count; ++k) {
    double t = roots[k];
    for (int pass = 0; pass < 2; ++pass) {  // Newton polish: Cardano loses digits to cancellation
      const double d1 = ((4 * q[4] * t + 3 * q[3]) * t + 2 * q[2]) * t + q[1];
      const double d2 = (12 * q[4] * t + 6 * q[3]) * t + 2 * q[2];
      if (d2 > 0) t -= d1 / d2;
    }
    if (std::isfinite(t) && value(t) < best_value) {
      best = t;
      best_value = value(t);
    }
  }
  return best;
}
}  // namespace detail

/// \brief Measures a medium's transmission matrix from camera frames alone, and sets it on a twin.
///
/// A calibration as a lab does it (the transmission matrix of Popoff et al. 2010), but without
/// their phase-stepped reference field: `physical.probe` shows M + M_h SLM patterns of phases
/// uniform in [0, 2π), noise and all — the fit's only access to the physical medium. Each row
/// Â_j of the Out × N matrix is then an intensity-only phase retrieval,
/// `min Σ_m (g |Â_j·u_m|² − y_mj)²` (g: the twin's `output_gain`; y in the camera's units), by
/// Wirtinger flow (Candès, Li & Soltanolkotabi 2015): a spectral initialisation (the leading
/// eigenvector of `(1/M) Σ_m (y_mj − ȳ_j) conj(u_m) u_mᵀ` by power iteration, scaled to the norm
/// `sqrt(ȳ_j / g)` that random phases give), then descent along the Wirtinger gradient. The
/// descent takes conjugate directions and, since the loss along a line is a quartic, its exact
/// minimiser: no step size to tune, no divergence, and several times fewer steps than a fixed
/// step size needs. It stops after `iterations` steps, at `tolerance`, or once a step gains less
/// than 10⁻⁶ of the loss (the noise floor: further steps would fit the noise). All rows go at
/// once, each product a real GEMM over stacked real and imaginary parts. The M_h held-out frames
/// only judge the result (`relative_error`, with the twin's precision).
///
/// The camera cannot see a global phase per row, `|e^{iφ_j} Â_j·u|² = |Â_j·u|²`, so Â is A only
/// up to `diag(e^{iφ_j})`. A twin does not care: its reads are intensities, and in its adjoint
/// `b = Âᴴ (g δ ⊙ Ê)` each row's conjugate meets that row's own field, so the phases cancel and
/// `∂L/∂θ`, `∂L/∂x` are those of A.
///
/// Cost: about `16·(power_iterations + iterations)·M·N·Out` flops (two complex products per
/// step) and `16·(M + M_h)·N` bytes for the patterns.
///
/// \pre both tiles shaped, with the same in and out sizes, modes N and mask placement; `frames`
/// 0 or ≥ 4·N — a frame gives each row one real equation, and it takes 4N − 4 generic ones to fix
/// N complex values up to a phase (Conca et al. 2015; the default 8·N is the margin the descent
/// wants); `p.validate()`. Else `pnn::error`, and the twin is unchanged.
template <class Physical, class Twin>
  requires requires(const Physical& ph, Twin& tw, const double* phases, typename Physical::value_type* y, rng& g,
                    std::span<const double> a) {
    ph.probe(phases, std::size_t{}, y, g);
    tw.set_transmission(a);
    { tw.modes() } -> std::convertible_to<std::size_t>;
    { double(tw.parameters().output_gain) };
  }
transmission_fit fit_transmission(const Physical& physical, Twin& twin, const transmission_fit_params& p, rng& g) {
  p.validate();
  const std::size_t n = physical.modes(), out = physical.out_size();
  PNN_EXPECTS(out >= 1 && twin.out_size() >= 1, "physics::fit_transmission: both tiles must be shaped (resize)");
  if (twin.in_size() != physical.in_size() || twin.out_size() != out || twin.modes() != n ||
      int(twin.parameters().placement) != int(physical.parameters().placement))
    throw_error("physics::fit_transmission: the twin's sizes (in " + std::to_string(twin.in_size()) + ", out " +
                std::to_string(twin.out_size()) + ", modes " + std::to_string(twin.modes()) +
                ") or mask placement differ from the physical tile's (in " + std::to_string(physical.in_size()) +
                ", out " + std::to_string(out) + ", modes " + std::to_string(n) + ")");
  const std::size_t m = p.frames == 0 ? 8 * n : p.frames;
  if (m < 4 * n)
    throw_error("physics::fit_transmission: phase retrieval needs at least 4·N = " + std::to_string(4 * n) +
                " frames, got " + std::to_string(m));
  const std::size_t mh = p.held_out == 0 ? std::max<std::size_t>(1, m / 8) : p.held_out;
  const double gain = double(twin.parameters().output_gain);

  // Patterns and frames in chunks, so that only [cos | sin] of the patterns is held whole.
  using V = typename Physical::value_type;
  const std::size_t total = m + mh, chunk = 256;
  std::vector<double> u(total * 2 * n), y(total * out), phases(chunk * n);
  std::vector<V> frame(chunk * out);
  rng gp = g.split(p.seed), gn = g.split(p.seed + 1);
  for (std::size_t c0 = 0; c0 < total; c0 += chunk) {
    const std::size_t k = std::min(chunk, total - c0);
    for (std::size_t q = 0; q < k * n; ++q) phases[q] = 2 * std::numbers::pi * gp.uniform_double();
    rng gc = gn.split(c0 / chunk);  // probe's per-frame streams restart at 0 in every call
    physical.probe(phases.data(), k, frame.data(), gc);
    for (std::size_t r = 0; r < k; ++r) {
      double* ur = u.data() + (c0 + r) * 2 * n;
      for (std::size_t q = 0; q < n; ++q) {
        ur[q] = std::cos(phases[r * n + q]);
        ur[n + q] = std::sin(phases[r * n + q]);
      }
      for (std::size_t j = 0; j < out; ++j) y[(c0 + r) * out + j] = double(frame[r * out + j]);
    }
  }

  const detail::intensity_model fit{m, n, out, u.data()};
  std::vector<double> a(2 * out * n), grad(2 * out * n), stacked(4 * out * n), e(std::max(m, mh) * 2 * out),
      c(m * 2 * out);
  auto row_norms = [&](const std::vector<double>& v) {
    std::vector<double> s(out, 0.0);
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t q = 0; q < 2 * n; ++q) s[j] += v[2 * j * n + q] * v[2 * j * n + q];
    for (double& x : s) x = std::sqrt(x);
    return s;
  };

  // Spectral initialisation. With w = conj(u) of uniform phases, E[|wᴴz|² w wᴴ] = ‖z‖² I + z zᴴ −
  // diag|z|²: subtracting the mean intensity removes the identity, which would otherwise halve the
  // eigenvalue gap the power iteration converges by, and leaves A_j as the leading eigenvector.
  std::vector<double> mean(out, 0.0);
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t j = 0; j < out; ++j) mean[j] += y[r * out + j] / double(m);
  rng gi = g.split(p.seed + 2);
  for (double& v : a) v = gi.normal_double();
  for (std::size_t it = 0; it < p.power_iterations; ++it) {
    const auto norms = row_norms(a);
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t q = 0; q < 2 * n; ++q) a[2 * j * n + q] /= norms[j] > 0 ? norms[j] : 1.0;
    fit.forward(a, stacked, e.data());
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t j = 0; j < out; ++j) {
        const double w = (y[r * out + j] - mean[j]) / double(m);
        c[r * 2 * out + j] = w * e[r * 2 * out + j];
        c[r * 2 * out + out + j] = w * e[r * 2 * out + out + j];
      }
    fit.backward(c.data(), stacked, a);
  }
  {
    const auto norms = row_norms(a);
    for (std::size_t j = 0; j < out; ++j) {
      const double scale = norms[j] > 0 ? std::sqrt(std::max(mean[j], 0.0) / gain) / norms[j] : 0.0;
      for (std::size_t q = 0; q < 2 * n; ++q) a[2 * j * n + q] *= scale;
    }
  }

  // Descent: ∂L/∂Re Â + i ∂L/∂Im Â = 2 ∂L/∂Â* = 4g Σ_m (ŷ_mj − y_mj) E_mj conj(u_m) (over M, for
  // the mean), in Polak–Ribière conjugate directions D, restarted where they do not descend. Along
  // E(t) = E + t·U Dᵀ each row's loss is a quartic in t: the exact minimiser needs the one
  // product U Dᵀ, which also moves E, so a step costs two products in all.
  double y2 = 0;
  for (std::size_t q = 0; q < m * out; ++q) y2 += y[q] * y[q];
  transmission_fit rep{.frames = m, .held_out = mh};
  std::vector<double> dir(2 * out * n, 0.0), grad_old(2 * out * n, 0.0), f(m * 2 * out), res(m * out);
  fit.forward(a, stacked, e.data());
  double r2_old = 0;
  for (std::size_t it = 0;; ++it) {
    double r2 = 0;
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t j = 0; j < out; ++j) {
        const double er = e[r * 2 * out + j], ei = e[r * 2 * out + out + j];
        const double d = gain * (er * er + ei * ei) - y[r * out + j], w = 4 * gain * d / double(m);
        res[r * out + j] = d;
        r2 += d * d;
        c[r * 2 * out + j] = w * er;
        c[r * 2 * out + out + j] = w * ei;
      }
    rep.training_error = y2 > 0 ? std::sqrt(r2 / y2) : std::sqrt(r2);
    // Stalled (at the noise floor, or at rounding): further steps only fit the noise.
    const bool stalled = it > 0 && r2 >= r2_old * (1 - 1e-6);
    if (it == p.iterations || rep.training_error <= p.tolerance || stalled) break;
    r2_old = r2;
    fit.backward(c.data(), stacked, grad);
    for (std::size_t j = 0; j < out; ++j) {
      double gy = 0, go = 0, gd = 0;
      const std::size_t o = 2 * j * n;
      for (std::size_t q = o; q < o + 2 * n; ++q) {
        gy += grad[q] * (grad[q] - grad_old[q]);
        go += grad_old[q] * grad_old[q];
      }
      const double beta = it > 0 && go > 0 ? std::max(0.0, gy / go) : 0.0;
      for (std::size_t q = o; q < o + 2 * n; ++q) {
        dir[q] = -grad[q] + beta * dir[q];
        gd += grad[q] * dir[q];
      }
      if (gd >= 0)
        for (std::size_t q = o; q < o + 2 * n; ++q) dir[q] = -grad[q];
    }
    grad_old = grad;
    fit.forward(dir, stacked, f.data());
    for (std::size_t j = 0; j < out; ++j) {
      // res(t) = res + t·r1 + t²·s2 with r1 = 2g Re(E* F), s2 = g|F|²; L(t) = Σ res(t)² = Σ q_k t^k.
      double q[5] = {0, 0, 0, 0, 0};
      for (std::size_t r = 0; r < m; ++r) {
        const double er = e[r * 2 * out + j], ei = e[r * 2 * out + out + j];
        const double fr = f[r * 2 * out + j], fi = f[r * 2 * out + out + j];
        const double r0 = res[r * out + j], r1 = 2 * gain * (er * fr + ei * fi), s2 = gain * (fr * fr + fi * fi);
        q[0] += r0 * r0;
        q[1] += 2 * r0 * r1;
        q[2] += r1 * r1 + 2 * r0 * s2;
        q[3] += 2 * r1 * s2;
        q[4] += s2 * s2;
      }
      const double t = detail::quartic_argmin(q);
      for (std::size_t k = 2 * j * n; k < 2 * (j + 1) * n; ++k) a[k] += t * dir[k];
      for (std::size_t r = 0; r < m; ++r) {
        e[r * 2 * out + j] += t * f[r * 2 * out + j];
        e[r * 2 * out + out + j] += t * f[r * 2 * out + out + j];
      }
    }
    rep.iterations = it + 1;
  }
  for (const double v : a)
    PNN_EXPECTS(std::isfinite(v), "physics::fit_transmission: the fit is not finite (are the frames finite?)");

  twin.set_transmission(a);
  // Judge what the twin holds (its precision), on frames the fit never saw.
  for (std::size_t j = 0; j < out; ++j)
    for (std::size_t q = 0; q < n; ++q) {
      const auto t = twin.transmission(j, q);
      a[2 * (j * n + q)] = double(t.real());
      a[2 * (j * n + q) + 1] = double(t.imag());
    }
  const detail::intensity_model held{mh, n, out, u.data() + m * 2 * n};
  held.forward(a, stacked, e.data());
  double d2 = 0, h2 = 0;
  for (std::size_t r = 0; r < mh; ++r)
    for (std::size_t j = 0; j < out; ++j) {
      const double er = e[r * 2 * out + j], ei = e[r * 2 * out + out + j], yy = y[(m + r) * out + j];
      const double d = gain * (er * er + ei * ei) - yy;
      d2 += d * d;
      h2 += yy * yy;
    }
  rep.relative_error = h2 > 0 ? std::sqrt(d2 / h2) : std::sqrt(d2);
  return rep;
}

}  // namespace pnn::physics
