// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::diffractive`: a diffractive optical network (D2NN, Lin et al., Science 2018)
/// as a layer — an input image on a coherent field, phase masks with free-space propagation
/// between them by the angular-spectrum method, intensity integrated over detector regions —
/// with fabrication imperfections, trained through the adjoint field.
///
/// Needs Eigen's FFT module (Debian `libeigen3-dev`, `unsupported/Eigen/FFT`, MPL-2.0 with the
/// BSD-licensed KissFFT inside): an optional dependency of this header only. CMake's
/// `pnn::diffractive` target adds its include path; nothing else in pnn includes it.
///
/// **Geometry.** An `N × N` grid of pitch `dx` (m). A sample `x` (In = s² values, an s × s image,
/// row-major) is the real amplitude of the field in the input plane, each value upsampled to
/// `u × u` pixels and centred. The field then crosses `M` masks, each after a distance `z`:
///
///   u ← P_z u,  u ← t_k ⊙ u  (k = 1 … M),  u ← P_z u,  y_j = g · Σ_{p ∈ D_j} |u_p|²,
///
/// with `P_z u = F⁻¹[H · F u]`, `H(f_x, f_y) = exp(i 2π z √(1/λ² − f_x² − f_y²))` (the
/// angular-spectrum transfer function, exact for the scalar field; evanescent components,
/// `f_x² + f_y² > 1/λ²`, decay as `exp(−2π z √(f² − 1/λ²))`), and `D_j` the j-th of `Out` square
/// detector regions laid out in rows in the central half of the output plane. The FFT makes the
/// window periodic: the grid must be large enough that light leaving it is negligible (the
/// default puts the input in the central half). Without loss (all spatial frequencies
/// propagating, `dx ≥ λ/√2`) every `P_z` and mask is unitary, and `Σ|u|²` is conserved. For long
/// gaps `band_limit` drops the frequencies whose transfer-function phase the grid undersamples
/// (Matsushima & Shimobaba 2009); `P_z` then loses that light.
///
/// **Masks.** `t_k = α_k exp(i ψ_k)`, `ψ_k = Q(φ_k) + ε_k`: the designed phases `φ_k` (trainable
/// unless the masks are amplitude-only), quantised to `phase_levels` levels in [0, 2π) (`Q`, a
/// fabrication or SLM limit; 0 = continuous) plus a static per-pixel phase error
/// `ε_k ~ N(0, phase_error²)` (thickness error). `α_k = 1` for phase masks (`modulation::phase`,
/// Lin et al.'s phase-only D2NN); amplitude (`modulation::amplitude`, φ fixed at 0) and complex
/// masks (`modulation::complex`, both) transmit `α_k = σ(θ_k) ∈ (0, 1)`, a passive absorber
/// parameterised by its logit θ_k. Each mask sits laterally displaced by a static offset `s_k` (pixels, each axis drawn
/// uniformly in ±`misalignment`): the field is carried into each mask's own frame by the Fourier
/// shift theorem, `H_k = H · exp(i 2π f·(s_k − s_{k−1}) dx)`, exact for sub-pixel shifts and
/// free (the input and detector planes are the reference, `s_0 = s_{M+1} = 0`). Detector noise:
/// `y_j += N(0, detector_noise²)` per read.
///
/// **Gradients.** With `a = ∂L/∂u*` (so `dL = 2 Re Σ a* du`): at the detector `a_p = g δ_j u_p`
/// for `p ∈ D_j`; through a propagation `a ← P_z^H a` (`H` conjugated); at mask k
/// `∂L/∂φ_k = −2 Im(a* ⊙ v_k)` (v_k the field leaving the mask), for an absorbing mask
/// `∂L/∂θ_k = 2 (1 − α_k) Re(a* ⊙ v_k)` (since `∂t/∂θ = (1 − α) t`), and `a ← t_k* ⊙ a`; at the input
/// `∂L/∂x_i = 2 Σ_{p ∈ pixel i} Re a_p`. That is backpropagation through the physics by the
/// adjoint field — which in situ is a backward-propagating beam (Zhou et al., Photonics Research
/// 2020). The derivative through `Q` is taken as 1 (straight through): quantisation has zero
/// derivative almost everywhere, and the quantised masks are what the light sees.
///
/// The parameters, in the layout of `get_parameters`: φ (M × N × N, radians, row-major per
/// mask; not for amplitude masks), then θ (M × N × N logits; amplitude and complex masks), then
/// the digital bias b (Out) the layer adds to `y`. The read is nonlinear in `x`
/// (intensity), so the tile takes estimates as their factors `(h, δ)` and learns in its own
/// parameters (`learns_in_parameter_space`); it has no weight matrix, so it offers neither
/// `set_weights` nor `effective_weights` (a `parameterised_tile` need not).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <unsupported/Eigen/FFT>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/core/threads.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/simd/work.hpp>

namespace pnn::physics {

namespace optics {

/// \brief A 2-D discrete Fourier transform on an `n × n` row-major complex grid: 1-D transforms
/// of the rows, then of the columns (Eigen's FFT, any `n`). `inverse` includes the 1/n² factor,
/// so `inverse(forward(a)) = a`. Holds plan and scratch: one per thread.
template <class R>
class fft2 {
 public:
  using complex = std::complex<R>;
  /// \pre n ≥ 1.
  explicit fft2(std::size_t n) : n_(n), in_(n), out_(n) {
    PNN_EXPECTS(n >= 1, "optics::fft2: the grid needs at least one point per side");
  }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// `a ← F a` (unnormalised, e^{−i2π kn/N}).
  void forward(complex* a) { transform(a, false); }
  /// `a ← F⁻¹ a` (with 1/n²).
  void inverse(complex* a) { transform(a, true); }

 private:
  void transform(complex* a, bool inv) {
    const auto n = static_cast<Eigen::Index>(n_);
    for (std::size_t r = 0; r < n_; ++r) {
      std::copy(a + r * n_, a + (r + 1) * n_, in_.begin());
      if (inv) fft_.inv(a + r * n_, in_.data(), n);
      else fft_.fwd(a + r * n_, in_.data(), n);
    }
    for (std::size_t c = 0; c < n_; ++c) {
      for (std::size_t r = 0; r < n_; ++r) in_[r] = a[r * n_ + c];
      if (inv) fft_.inv(out_.data(), in_.data(), n);
      else fft_.fwd(out_.data(), in_.data(), n);
      for (std::size_t r = 0; r < n_; ++r) a[r * n_ + c] = out_[r];
    }
  }

  std::size_t n_;
  Eigen::FFT<R> fft_{};
  std::vector<complex> in_, out_;
};

/// Spatial frequency (cycles per metre) of FFT bin `k` on `n` points of pitch `dx`: bins above
/// n/2 are the negative frequencies.
[[nodiscard]] inline double frequency(std::size_t k, std::size_t n, double dx) noexcept {
  const double kk = k < (n + 1) / 2 ? double(k) : double(k) - double(n);
  return kk / (double(n) * dx);
}

/// \brief The angular-spectrum transfer function of free space over distance `z` (m), on an
/// `n × n` grid of pitch `dx` (m) at wavelength `lambda` (m), times the Fourier shift
/// `exp(i 2π (f_x s_x + f_y s_y) dx)` that carries the field `s` pixels into a displaced frame
/// (`u(x + s dx)`). Row index = y, column = x.
///
/// With `band_limit`, frequencies with `|f_x|` or `|f_y|` above
/// `f_limit = 1 / (λ √((2 Δf z)² + 1))`, `Δf = 1/(n dx)`, are dropped (Matsushima & Shimobaba
/// 2009): there the phase `2π z √(1/λ² − f²)` turns faster between frequency samples than the
/// grid can represent, so its samples alias into spurious light far from where it belongs. At long
/// distances (`z > n dx² / λ`, roughly) this is what makes the unlimited function wrong; the light
/// dropped is what travels at angles that leave the window within `z` anyway.
/// \pre n ≥ 1, dx, lambda > 0, z ≥ 0.
template <class R>
std::vector<std::complex<R>> transfer_function(std::size_t n, double dx, double lambda, double z, double sx = 0,
                                               double sy = 0, bool band_limit = false) {
  PNN_EXPECTS(n >= 1 && dx > 0 && lambda > 0 && z >= 0 && std::isfinite(dx) && std::isfinite(lambda) &&
                  std::isfinite(z) && std::isfinite(sx) && std::isfinite(sy),
              "optics::transfer_function: needs n >= 1, pitch and wavelength > 0, distance >= 0, finite shifts");
  std::vector<std::complex<R>> h(n * n);
  const double k2 = 1.0 / (lambda * lambda), two_pi = 2 * std::numbers::pi;
  const double twice_df_z = 2 * z / (double(n) * dx);
  const double f_limit = band_limit ? 1.0 / (lambda * std::sqrt(twice_df_z * twice_df_z + 1)) : HUGE_VAL;
  for (std::size_t r = 0; r < n; ++r) {
    const double fy = frequency(r, n, dx);
    for (std::size_t c = 0; c < n; ++c) {
      const double fx = frequency(c, n, dx);
      if (std::abs(fx) > f_limit || std::abs(fy) > f_limit) {
        h[r * n + c] = std::complex<R>(0, 0);
        continue;
      }
      const double q = k2 - fx * fx - fy * fy;
      const double shift = two_pi * (fx * sx + fy * sy) * dx;
      std::complex<double> v = q >= 0 ? std::polar(1.0, two_pi * z * std::sqrt(q))
                                      : std::complex<double>(std::exp(-two_pi * z * std::sqrt(-q)), 0.0);
      v *= std::polar(1.0, shift);
      h[r * n + c] = std::complex<R>(R(v.real()), R(v.imag()));
    }
  }
  return h;
}

/// `u ← F⁻¹[h · F u]` (h conjugated when `adjoint`, which gives `P^H`).
template <class R>
void propagate(fft2<R>& f, const std::complex<R>* h, std::complex<R>* u, bool adjoint = false) {
  const std::size_t m = f.size() * f.size();
  f.forward(u);
  if (adjoint)
    for (std::size_t p = 0; p < m; ++p) u[p] *= std::conj(h[p]);
  else
    for (std::size_t p = 0; p < m; ++p) u[p] *= h[p];
  f.inverse(u);
}

}  // namespace optics

/// What a diffractive mask modulates.
enum class modulation {
  phase,      ///< `t = exp(iψ)`: lossless phase masks (Lin et al.'s D2NN)
  amplitude,  ///< `t = σ(θ)`: absorbing masks of uniform thickness
  complex,    ///< `t = σ(θ) exp(iψ)`: both, two parameters per pixel
};

/// Diffractive optical networks with values of type `T` between layers; fields in `T` precision.
template <class T = float>
struct basic_diffractive {
  using value_type = T;
  static constexpr const char* name = "diffractive";

  /// Geometry, detection and fabrication imperfections (defaults: Lin et al.'s 0.4 THz setup,
  /// 0.75 mm wavelength, 0.4 mm pixels, 3 cm between layers).
  struct params {
    std::size_t grid = 64;         ///< N, grid points per side (the simulated window)
    std::size_t masks = 5;         ///< M, phase masks (diffractive layers), ≥ 1
    double wavelength = 0.75e-3;   ///< λ, m
    double pixel_pitch = 0.4e-3;   ///< dx, m (mask pixels and the grid)
    double distance = 30e-3;       ///< z, m: input → mask 1, between masks, last mask → detectors
    std::size_t upsample = 0;      ///< u, grid pixels per input value and axis; 0: ⌊N / (2s)⌋ (≥ 1)
    std::size_t detector_size = 0; ///< detector side in pixels; 0: half the detector cell
    double output_gain = 1.0;      ///< g: y = g · detected power (arbitrary units of |x|²)
    double initial_phase = std::numbers::pi;  ///< `prepare` draws φ uniform in ±this, rad
    std::size_t phase_levels = 0;  ///< mask phase quantisation levels in [0, 2π); 0: continuous
    double phase_error = 0;        ///< σ of the static per-pixel phase error ε, rad
    double misalignment = 0;       ///< each mask's offset per axis uniform in ±this, pixels
    double detector_noise = 0;     ///< σ of additive detector noise per read, units of y
    modulation mask = modulation::phase;  ///< what the masks modulate
    double initial_logit = 2.0;    ///< `prepare` draws amplitude logits θ uniform in ±this
    /// Band-limit each propagation's transfer function (`optics::transfer_function`) [false]:
    /// needed for long gaps, `z ≳ N dx² / λ`; it drops light that leaves the window.
    bool band_limit = false;

    /// \pre grid in [4, 1024], masks in [1, 64], λ, dx, z > 0 and finite, gain > 0, the σs and
    /// offsets ≥ 0 and finite, phase_levels ≠ 1 (else `pnn::error` naming the field).
    void validate() const {
      PNN_EXPECTS(grid >= 4 && grid <= 1024, "physics::diffractive: grid must be in [4, 1024]");
      PNN_EXPECTS(masks >= 1 && masks <= 64, "physics::diffractive: masks must be in [1, 64]");
      auto positive = [](double v) { return v > 0 && std::isfinite(v); };
      auto nonnegative = [](double v) { return v >= 0 && std::isfinite(v); };
      PNN_EXPECTS(positive(wavelength), "physics::diffractive: wavelength must be positive and finite");
      PNN_EXPECTS(positive(pixel_pitch), "physics::diffractive: pixel_pitch must be positive and finite");
      PNN_EXPECTS(positive(distance), "physics::diffractive: distance must be positive and finite");
      PNN_EXPECTS(positive(output_gain), "physics::diffractive: output_gain must be positive and finite");
      PNN_EXPECTS(nonnegative(initial_phase), "physics::diffractive: initial_phase must be >= 0 and finite");
      PNN_EXPECTS(phase_levels != 1, "physics::diffractive: phase_levels must be 0 (continuous) or at least 2");
      PNN_EXPECTS(nonnegative(phase_error), "physics::diffractive: phase_error (sigma) must be >= 0 and finite");
      PNN_EXPECTS(nonnegative(misalignment), "physics::diffractive: misalignment must be >= 0 and finite");
      PNN_EXPECTS(nonnegative(detector_noise), "physics::diffractive: detector_noise (sigma) must be >= 0 and finite");
      PNN_EXPECTS(nonnegative(initial_logit), "physics::diffractive: initial_logit must be >= 0 and finite");
      PNN_EXPECTS(mask == modulation::phase || mask == modulation::amplitude || mask == modulation::complex,
                  "physics::diffractive: mask must be modulation::phase, amplitude or complex");
    }
  };

  /// One diffractive stack: M masks between an s × s input and Out detector regions.
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = T;
    using complex = std::complex<T>;
    static constexpr std::size_t in_extent = In;
    static constexpr std::size_t out_extent = Out;
    /// The read is nonlinear in x: estimates reach the tile as factors (h, δ), which
    /// `parameter_gradient` maps into the mask phases through the adjoint field.
    static constexpr bool uses_update_factors = true;
    static constexpr bool needs_update_factors = true;

    /// Every estimate is learnt in the mask phases (and the bias).
    [[nodiscard]] bool learns_in_parameter_space() const noexcept { return true; }

    /// \pre `p.validate()`; a shaped tile keeps its phases when the grid and mask count agree
    /// (else they are reset to 0).
    void set_params(const params& p) {
      p.validate();
      placement pl;
      if (out_ > 0) pl = layout(p, side_, out_);  // throws before anything changes
      const bool same_shape = p.grid == p_.grid && p.masks == p_.masks && p.mask == p_.mask;
      p_ = p;
      if (!same_shape) {
        phi_.assign(p_.masks * p_.grid * p_.grid, 0.0);
        theta_.assign(absorbs() ? phi_.size() : 0, 0.0);
        error_.assign(phi_.size(), 0.0);
        offsets_.assign(2 * p_.masks, 0.0);
      }
      if (out_ > 0) {
        apply(std::move(pl));
        realise();
      }
    }
    [[nodiscard]] const params& parameters() const noexcept { return p_; }

    /// Shapes the tile: φ = 0, θ = 0, b = 0, no imperfection yet (`prepare` draws the phases and them).
    /// \pre in is a square s² with u·s ≤ N (u the upsampling); 1 ≤ out and the detectors fit.
    void resize(std::size_t in, std::size_t out) {
      PNN_EXPECTS((In == dynamic || in == In) && (Out == dynamic || out == Out),
                  "physics::diffractive: size differs from the tile's fixed extent");
      PNN_EXPECTS(in >= 1 && out >= 1, "physics::diffractive: needs at least one input and one detector");
      const auto s = static_cast<std::size_t>(std::llround(std::sqrt(double(in))));
      if (s * s != in)
        throw_error("physics::diffractive: the input must be a square image (In = s * s values, got " +
                    std::to_string(in) + ")");
      placement pl = layout(p_, s, out);  // throws before anything changes
      in_ = in;
      out_ = out;
      side_ = s;
      b_.assign(out, T(0));
      phi_.assign(p_.masks * p_.grid * p_.grid, 0.0);
      theta_.assign(absorbs() ? phi_.size() : 0, 0.0);
      error_.assign(phi_.size(), 0.0);
      offsets_.assign(2 * p_.masks, 0.0);
      apply(std::move(pl));
      realise();
    }
    [[nodiscard]] std::size_t in_size() const noexcept { return in_; }
    [[nodiscard]] std::size_t out_size() const noexcept { return out_; }
    [[nodiscard]] std::size_t grid() const noexcept { return p_.grid; }
    /// Grid pixels per input value and axis.
    [[nodiscard]] std::size_t upsampling() const noexcept { return up_; }
    /// Detector j's region: first row, first column, side (pixels).
    [[nodiscard]] std::array<std::size_t, 3> detector(std::size_t j) const {
      PNN_EXPECTS(j < out_, "physics::diffractive::detector: index out of range");
      return {det_[2 * j], det_[2 * j + 1], det_side_};
    }

    /// Draws the designed phases uniform in ±`initial_phase` (amplitude masks: none), the
    /// amplitude logits uniform in ±`initial_logit`, and the fabrication state: per-pixel phase
    /// errors and per-mask offsets (independent streams, so changing one σ leaves the other
    /// draws as they were).
    void prepare(rng& g) {
      rng gp = g.split(0xd1ff), ge = g.split(0xd1fe), go = g.split(0xd1fd), ga = g.split(0xd1fc);
      if (p_.mask != modulation::amplitude)
        for (double& a : phi_) a = p_.initial_phase * (2 * gp.uniform_double() - 1);
      for (double& a : theta_) a = p_.initial_logit * (2 * ga.uniform_double() - 1);
      for (double& e : error_) e = p_.phase_error > 0 ? p_.phase_error * ge.normal_double() : 0.0;
      for (double& o : offsets_) o = p_.misalignment * (2 * go.uniform_double() - 1);
      realise();
    }

    /// Sets mask `k`'s lateral offset (pixels along x = columns and y = rows), replacing the drawn
    /// one: a measured or deliberate misalignment. \pre k < masks, finite offsets.
    void set_offset(std::size_t k, double sx, double sy) {
      PNN_EXPECTS(k < p_.masks && std::isfinite(sx) && std::isfinite(sy),
                  "physics::diffractive::set_offset: mask index out of range or offset not finite");
      offsets_[2 * k] = sx;
      offsets_[2 * k + 1] = sy;
      realise();
    }
    /// Mask `k`'s offset (x, y), pixels.
    [[nodiscard]] std::array<double, 2> offset(std::size_t k) const {
      PNN_EXPECTS(k < p_.masks, "physics::diffractive::offset: mask index out of range");
      return {offsets_[2 * k], offsets_[2 * k + 1]};
    }

    /// One pass of light per sample: `y(n × Out)` = g · detected powers (+ detector noise; the
    /// layer adds b). Samples run on the kernels' thread team, each from its own stream.
    void read(const T* x, std::size_t n, T* y, rng& g) const {
      ensure_realised();
      const simd::kernel_work_pause simulated;  // the FFTs stand for the light
      for_shards(n, [&](workspace& w, std::size_t r) {
        forward(w, x + r * in_, false);
        detect(w.field.data(), y + r * out_);
        if (p_.detector_noise > 0) {
          rng gr = g.split(r);
          for (std::size_t j = 0; j < out_; ++j) y[r * out_ + j] += T(p_.detector_noise * gr.normal_double());
        }
      });
      report(n, 0);
    }

    /// No input-independent transposed read exists (the detectors measure intensity).
    /// \throws pnn::error always, naming `read_vjp`.
    void read_transposed(const T*, std::size_t, T*, rng&) const {
      throw_error("physics::diffractive::read_transposed: detection is quadratic in the field, so the read has no "
                  "transposed form; read_vjp (the adjoint field at the input) is its vector-Jacobian product "
                  "(backprop uses it); energy-based rules cannot relax through it");
    }

    /// The vector–Jacobian product at inputs `x`: `dx_i = 2 Σ_{p ∈ pixel i} Re a_p`, the adjoint
    /// field propagated back to the input plane.
    void read_vjp(const T* x, const T* dy, std::size_t n, T* dx, rng&) const {
      ensure_realised();
      const simd::kernel_work_pause simulated;
      for_shards(n, [&](workspace& w, std::size_t r) {
        forward(w, x + r * in_, true);
        backward(w, dy + r * out_, nullptr, 1.0);
        input_gradient(w.field.data(), dx + r * in_);
      });
      report(n, n);
    }

    /// \brief `∂L/∂(φ, b)` for `L = s·Σ_r δ_r·y_r(h_r)` (inputs `h` n × In, output gradients `δ`
    /// n × Out) in the layout of `get_parameters`, by the adjoint field: one forward and one
    /// backward pass per sample. Samples are summed in fixed shards of 4 in sample order, so the
    /// result is bitwise the same for any thread count.
    void parameter_gradient(const T* h, const T* delta, std::size_t n, double s, const T* bias_grad, double* out,
                            rng&) const {
      ensure_realised();
      const simd::kernel_work_pause simulated;
      const std::size_t np = mask_parameter_count(), shards = (n + shard - 1) / shard;
      std::vector<double> part(shards * np, 0.0);
      for_shards(n, [&](workspace& w, std::size_t r) {
        forward(w, h + r * in_, true);
        backward(w, delta + r * out_, part.data() + (r / shard) * np, s);
      });
      std::fill(out, out + parameter_count(), 0.0);
      for (std::size_t k = 0; k < shards; ++k)
        for (std::size_t q = 0; q < np; ++q) out[q] += part[k * np + q];
      for (std::size_t j = 0; j < out_; ++j) out[np + j] = bias_grad ? double(bias_grad[j]) : 0.0;
      report(n, n);
    }

    /// A dense weight update has no meaning here (no W): rules reach the masks in their own
    /// parameters (`learns_in_parameter_space`). \throws pnn::error always.
    template <class U>
    void program(const U&, rng&) {
      throw_error("physics::diffractive::program: a diffractive stack has no weight matrix; updates reach its mask "
                  "phases in parameter space (map_to_tile_parameters / step_tile_parameters)");
    }
    [[nodiscard]] T* bias_data() noexcept { return b_.data(); }
    [[nodiscard]] const T* bias_data() const noexcept { return b_.data(); }

    /// φ (M·N², unless amplitude masks), θ (M·N², amplitude and complex masks), then b (Out).
    [[nodiscard]] std::size_t parameter_count() const noexcept { return mask_parameter_count() + out_; }
    void get_parameters(double* p) const {
      if (shapes_phase()) p = std::copy(phi_.begin(), phi_.end(), p);
      p = std::copy(theta_.begin(), theta_.end(), p);
      for (std::size_t j = 0; j < out_; ++j) p[j] = double(b_[j]);
    }
    /// Writes designed phases, amplitude logits and bias; the masks realise them (quantisation,
    /// errors). \pre `parameter_count()` finite values (else `pnn::error`; the tile is unchanged).
    void set_parameters(const double* p) {
      for (std::size_t k = 0; k < parameter_count(); ++k)
        PNN_EXPECTS(std::isfinite(p[k]), "physics::diffractive::set_parameters: parameters are not finite");
      if (shapes_phase()) {
        std::copy(p, p + phi_.size(), phi_.begin());
        p += phi_.size();
      }
      std::copy(p, p + theta_.size(), theta_.begin());
      p += theta_.size();
      for (std::size_t j = 0; j < out_; ++j) b_[j] = T(p[j]);
      realise();
      cost_.report([&] { return physical_events{.parameter_writes = mask_parameter_count()}; });
    }
    /// The designed phases φ (M × N × N; zero for amplitude masks).
    [[nodiscard]] std::span<const double> phases() const noexcept { return phi_; }
    /// The amplitude logits θ (M × N × N; empty for phase masks): mask k transmits σ(θ_k).
    [[nodiscard]] std::span<const double> amplitude_logits() const noexcept { return theta_; }
    /// The phase mask k the light sees, ψ_k = Q(φ_k) + ε_k (N × N, radians).
    [[nodiscard]] std::vector<double> realised_phase(std::size_t k) const {
      PNN_EXPECTS(k < p_.masks, "physics::diffractive::realised_phase: mask index out of range");
      std::vector<double> psi(p_.grid * p_.grid);
      for (std::size_t q = 0; q < psi.size(); ++q) psi[q] = realised(k * psi.size() + q);
      return psi;
    }

    /// \brief The field in the detector plane for one input (N × N, row-major): what a camera
    /// behind the stack would see (|u|²), for inspection and the physics tests.
    [[nodiscard]] std::vector<complex> output_field(const T* x) const {
      ensure_realised();
      workspace w(*this);
      forward(w, x, false);
      return w.field;
    }

    /// Checkpoint contents: φ, b and the fabrication state (errors and offsets are part of the
    /// instance, as a crossbar's device draws are).
    template <class V>
    void visit_state(V& v) {
      v("phase", std::span<double>(phi_));
      if (absorbs()) v("amplitude_logit", std::span<double>(theta_));
      v("bias", std::span<T>(b_));
      v("offsets", std::span<double>(offsets_));
      v("phase_error", std::span<double>(error_));
      if constexpr (V::loading) realise();
    }

    /// Reports frames of light (reads and adjoint passes, `optical_vectors`; input pixels and
    /// detectors as `optical_channels`) and mask pixel writes into `c`.
    void attach_cost_counter(cost_counter* c) noexcept { cost_.attach(c); }

   private:
    static constexpr std::size_t shard = 4;

    [[nodiscard]] bool shapes_phase() const noexcept { return p_.mask != modulation::amplitude; }
    [[nodiscard]] bool absorbs() const noexcept { return p_.mask != modulation::phase; }
    [[nodiscard]] std::size_t mask_parameter_count() const noexcept {
      return (shapes_phase() ? phi_.size() : 0) + theta_.size();
    }
    /// α of mask pixel q (1 for phase masks), cached by `realise`.
    [[nodiscard]] double transmitted_amplitude(std::size_t q) const { return alpha_.empty() ? 1.0 : alpha_[q]; }

    /// A thread's scratch: the FFT plan and the fields of one sample.
    struct workspace {
      explicit workspace(const tile& t)
          : fft(t.p_.grid), field(t.p_.grid * t.p_.grid), leaving(t.p_.masks * t.p_.grid * t.p_.grid) {}
      optics::fft2<T> fft;
      std::vector<complex> field;    ///< the current field
      std::vector<complex> leaving;  ///< per mask, the field leaving it (kept for the adjoint)
    };

    /// Where the input and the detectors go on the grid.
    struct placement {
      std::size_t up = 1, det_side = 1;
      std::vector<std::size_t> det{};  ///< per detector: first row, first column
    };

    /// Places the input (upsampled, centred) and Out detector regions in rows of ⌈√Out⌉ cells
    /// over the central half; throws, changing nothing, when they do not fit.
    [[nodiscard]] static placement layout(const params& p, std::size_t side, std::size_t out) {
      const std::size_t n = p.grid;
      placement pl;
      pl.up = p.upsample > 0 ? p.upsample : std::max<std::size_t>(1, n / (2 * side));
      if (pl.up * side > n)
        throw_error("physics::diffractive: the upsampled input (" + std::to_string(pl.up * side) +
                    " pixels) does not fit the grid (" + std::to_string(n) + ")");
      const std::size_t cols = static_cast<std::size_t>(std::ceil(std::sqrt(double(out))));
      const std::size_t rows = (out + cols - 1) / cols;
      const std::size_t cell = (n / 2) / std::max(cols, rows);
      if (cell < 1)
        throw_error("physics::diffractive: " + std::to_string(out) +
                    " detectors do not fit the central half of a grid of " + std::to_string(n));
      pl.det_side = p.detector_size > 0 ? p.detector_size : std::max<std::size_t>(1, cell / 2);
      if (pl.det_side > cell)
        throw_error("physics::diffractive: detector_size exceeds the detector cell (" + std::to_string(cell) +
                    " pixels)");
      pl.det.assign(2 * out, 0);
      const std::size_t top = (n - rows * cell) / 2;
      for (std::size_t j = 0; j < out; ++j) {
        const std::size_t r = j / cols, c = j % cols;
        const std::size_t in_row = std::min(cols, out - r * cols);  // a short last row is centred
        const std::size_t left = (n - in_row * cell) / 2;
        pl.det[2 * j] = top + r * cell + (cell - pl.det_side) / 2;
        pl.det[2 * j + 1] = left + c * cell + (cell - pl.det_side) / 2;
      }
      return pl;
    }
    void apply(placement pl) {
      up_ = pl.up;
      det_side_ = pl.det_side;
      det_ = std::move(pl.det);
    }

    [[nodiscard]] double realised(std::size_t q) const {
      double a = phi_[q];
      if (p_.phase_levels >= 2) {
        const double step = 2 * std::numbers::pi / double(p_.phase_levels);
        a = step * std::round(a / step);
      }
      return a + error_[q];
    }

    /// Mask transmissions and the per-gap transfer functions from the current state.
    void realise() {
      const std::size_t n = p_.grid, m = n * n;
      trans_.resize(p_.masks * m);
      alpha_.resize(theta_.size());
      for (std::size_t q = 0; q < theta_.size(); ++q) alpha_[q] = 1.0 / (1.0 + std::exp(-theta_[q]));
      for (std::size_t q = 0; q < trans_.size(); ++q) {
        const double a = realised(q), alpha = transmitted_amplitude(q);
        trans_[q] = complex(T(alpha * std::cos(a)), T(alpha * std::sin(a)));
      }
      h_.resize((p_.masks + 1) * m);
      for (std::size_t k = 0; k <= p_.masks; ++k) {
        const double sx = (k < p_.masks ? offsets_[2 * k] : 0.0) - (k > 0 ? offsets_[2 * (k - 1)] : 0.0);
        const double sy = (k < p_.masks ? offsets_[2 * k + 1] : 0.0) - (k > 0 ? offsets_[2 * (k - 1) + 1] : 0.0);
        const auto hk = optics::transfer_function<T>(n, p_.pixel_pitch, p_.wavelength, p_.distance, sx, sy,
                                                     p_.band_limit);
        std::copy(hk.begin(), hk.end(), h_.begin() + std::ptrdiff_t(k * m));
      }
    }
    void ensure_realised() const {
      PNN_EXPECTS(out_ > 0, "physics::diffractive: the tile is not shaped (resize)");
    }

    /// Samples [0, n) in shards of `shard`, shards spread over the thread team; `f(w, r)` per sample.
    template <class F>
    void for_shards(std::size_t n, F&& f) const {
      pnn::detail::for_sample_shards(n, shard, [this] { return workspace(*this); }, f);
    }

    /// The input plane: x upsampled and centred (real amplitudes).
    void embed(const T* x, complex* u) const {
      const std::size_t n = p_.grid, a = up_ * side_, o = (n - a) / 2;
      std::fill(u, u + n * n, complex(0));
      for (std::size_t r = 0; r < a; ++r)
        for (std::size_t c = 0; c < a; ++c) u[(o + r) * n + o + c] = complex(x[(r / up_) * side_ + c / up_], T(0));
    }

    /// Input plane → detector plane in `w.field`; keeps each mask's outgoing field when `keep`.
    void forward(workspace& w, const T* x, bool keep) const {
      const std::size_t m = p_.grid * p_.grid;
      complex* u = w.field.data();
      embed(x, u);
      for (std::size_t k = 0; k < p_.masks; ++k) {
        optics::propagate(w.fft, h_.data() + k * m, u);
        const complex* t = trans_.data() + k * m;
        for (std::size_t p = 0; p < m; ++p) u[p] *= t[p];
        if (keep) std::copy(u, u + m, w.leaving.begin() + std::ptrdiff_t(k * m));
      }
      optics::propagate(w.fft, h_.data() + p_.masks * m, u);
    }

    void detect(const complex* u, T* y) const {
      const std::size_t n = p_.grid;
      for (std::size_t j = 0; j < out_; ++j) {
        double s = 0;
        for (std::size_t r = det_[2 * j]; r < det_[2 * j] + det_side_; ++r)
          for (std::size_t c = det_[2 * j + 1]; c < det_[2 * j + 1] + det_side_; ++c) s += std::norm(u[r * n + c]);
        y[j] = T(p_.output_gain * s);
      }
    }

    /// From `w.field` (the detector-plane field of `forward(…, true)`) back to the input plane:
    /// `w.field` ends as the adjoint there; adds `s·∂L/∂(φ, θ)` (the layout of the mask
    /// parameters) into `dphi` when not null.
    void backward(workspace& w, const T* dy, double* dphi, double s) const {
      const std::size_t n = p_.grid, m = n * n;
      complex* a = w.field.data();
      std::vector<complex> det(m, complex(0));
      for (std::size_t j = 0; j < out_; ++j) {
        const T gd = T(p_.output_gain * double(dy[j]));
        for (std::size_t r = det_[2 * j]; r < det_[2 * j] + det_side_; ++r)
          for (std::size_t c = det_[2 * j + 1]; c < det_[2 * j + 1] + det_side_; ++c) det[r * n + c] = gd * a[r * n + c];
      }
      std::copy(det.begin(), det.end(), a);
      optics::propagate(w.fft, h_.data() + p_.masks * m, a, true);
      for (std::size_t k = p_.masks; k-- > 0;) {
        const complex* v = w.leaving.data() + k * m;
        if (dphi && shapes_phase()) {
          double* d = dphi + k * m;
          for (std::size_t p = 0; p < m; ++p) d[p] += -2.0 * s * double((std::conj(a[p]) * v[p]).imag());
        }
        if (dphi && absorbs()) {
          double* d = dphi + (shapes_phase() ? phi_.size() : 0) + k * m;
          for (std::size_t p = 0; p < m; ++p)
            d[p] += 2.0 * s * (1.0 - transmitted_amplitude(k * m + p)) * double((std::conj(a[p]) * v[p]).real());
        }
        const complex* t = trans_.data() + k * m;
        for (std::size_t p = 0; p < m; ++p) a[p] *= std::conj(t[p]);
        optics::propagate(w.fft, h_.data() + k * m, a, true);
      }
    }

    void input_gradient(const complex* a, T* dx) const {
      const std::size_t n = p_.grid, o = (n - up_ * side_) / 2;
      std::fill(dx, dx + in_, T(0));
      for (std::size_t r = 0; r < up_ * side_; ++r)
        for (std::size_t c = 0; c < up_ * side_; ++c) dx[(r / up_) * side_ + c / up_] += T(2) * a[(o + r) * n + o + c].real();
    }

    /// Frames of light: forward reads and adjoint (backward-propagating) passes.
    void report(std::size_t reads, std::size_t adjoint) const {
      cost_.report([&] {
        const std::size_t frames = reads + adjoint;
        return physical_events{.reads = reads,
                               .transposed_reads = adjoint,
                               .optical_vectors = frames,
                               .optical_channels = frames * (in_ + out_)};
      });
    }

    params p_{};
    std::size_t in_ = 0, out_ = 0, side_ = 0, up_ = 1, det_side_ = 1;
    std::vector<std::size_t> det_{};
    std::vector<double> phi_{}, theta_{}, alpha_{}, error_{}, offsets_{};
    std::vector<complex> trans_{}, h_{};
    std::vector<T> b_{};
    cost_report cost_{};
  };
};

/// Diffractive optical networks on `float` values and fields.
using diffractive = basic_diffractive<float>;

static_assert(substrate<diffractive> && parameterised_tile<diffractive::tile<4, 2>>);

}  // namespace pnn::physics
