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
        for (std::size_t j = 0; j < out_; ++j) {
          const double i = double(std::norm(complex(s.e_re[j], s.e_im[j])));
          double v = i;
          if (p_.photons > 0) {
            double counts = 0;
            pnn::fill_poisson(gr, &counts, 1, p_.photons * i);
            v = counts / p_.photons;
          }
          y[r * out_ + j] = T(p_.output_gain * v);
        }
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

}  // namespace pnn::physics
