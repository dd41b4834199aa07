// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::mzi_mesh`, the photonic substrate realising `W = U Σ V†` with two unitary MZI
/// meshes (physics/unitary_mesh.hpp) and a line of attenuators (docs/physics.md, "Weight
/// tiles").
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
#include <utility>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/lazy_cache.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/core/state_format.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/mzi.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/physics/photonic_noise.hpp>
#include <pnn/physics/unitary_mesh.hpp>
#include <pnn/simd/gemm.hpp>
#include <pnn/simd/svd.hpp>
#include <pnn/simd/work.hpp>

namespace pnn::physics {

/// How `program(update)` realises a weight-space update on the mesh.
enum class mesh_programming {
  /// In situ via re-programming: target `W − ΔW`, SVD, Clements/Reck decomposition (exact on
  /// an ideal mesh; O(N³) per update).
  reprogram,
  /// In situ adjoint: the mesh learns in phase space. Every rule's weight-space estimate is
  /// mapped there before the optimiser, `∂L/∂θ = Jᵀ ∂L/∂W` (J = ∂Re W/∂θ), with the fields and
  /// adjoint fields of the mesh (Hughes et al. 2018), so the optimiser's learning rate and
  /// moments act on phases; a dense `ΔW` given to `program` directly is mapped alike. Uses the
  /// update's
  /// factors `(h, δ)` when present (O(n N²)), else probes with the `In` unit inputs (O(In N²)).
  adjoint
};

/// Phase-space gradients (or steps) of an `mzi_mesh` tile: both meshes and the Σ line.
struct mzi_mesh_gradients {
  mesh_phase_gradients u{};  ///< output mesh U
  mesh_phase_gradients v{};  ///< input mesh V†
  std::vector<double> sigma{};  ///< attenuator amplitudes Σ
};

/// \brief The photonic substrate: each layer's weights `W = U Σ V†` are two unitary MZI meshes
/// and a line of attenuators (Shen et al. 2017), read by coherent or intensity detection.
///
/// Values between layers are real (`T`): a layer's inputs are encoded as real field amplitudes
/// on the first `In` of `N = max(In, Out)` modes (the others dark), and the first `Out` output
/// modes are detected. Coherent detection (default) returns `Re(E)` (homodyne against a
/// reference: linear, sign kept, so `act::tanh` etc. apply); intensity detection returns
/// `R·|E|²`. The attenuator amplitudes `σ_i` may exceed 1: read them as attenuation `σ_i/σ_max`
/// followed by a detector gain `σ_max`. Reads use the mesh's realised matrix (exactly what the
/// linear optics computes, built once per programming) unless per-read phase noise is on, in
/// which case every read propagates the batch through freshly perturbed meshes.
/// \tparam T value type between layers (float, or double for checks)
/// \tparam C MZI phase convention
template <class T = float, mzi::convention C = mzi::default_convention>
struct basic_mzi_mesh {
  using value_type = T;
  static constexpr const char* name = "mzi_mesh";

  /// Mesh, detection, programming and imperfection parameters.
  struct params {
    mesh_topology topology = mesh_topology::clements;
    detection detect = detection::coherent;
    double responsivity = 1.0;  ///< R (A/W) of the intensity detector
    mesh_programming programming = mesh_programming::reprogram;
    photonic_imperfections imperfections{};
    detection_noise detector{};

    /// \pre responsivity > 0, valid imperfections and detector noise.
    void validate() const {
      PNN_EXPECTS(responsivity > 0 && std::isfinite(responsivity), "physics::mzi_mesh: responsivity must be > 0");
      imperfections.validate();
      detector.validate();
    }
  };

  /// One layer: meshes V† (input side), Σ, U (output side); nominal W and bias kept in sync.
  template <std::size_t In, std::size_t Out>
  class tile {
   public:
    using value_type = T;
    using mesh_type = unitary_mesh<C>;
    static constexpr std::size_t in_extent = In;
    static constexpr std::size_t out_extent = Out;
    /// Adjoint programming drives the mesh with the update's factors `(h, δ)`.
    static constexpr bool uses_update_factors = true;

    /// Under adjoint programming the mesh learns in phase space
    /// (`tile_hooks::learns_in_parameter_space`): rules' estimates reach the optimiser as phase
    /// gradients (`parameter_gradient`).
    [[nodiscard]] bool learns_in_parameter_space() const noexcept { return p_.programming == mesh_programming::adjoint; }

    /// Applies parameters; static imperfections are (re)drawn if the tile is already prepared.
    void set_params(const params& p) {
      p.validate();
      const bool redraw = modes_ > 0 && prepared_;
      const bool new_topology = p.topology != p_.topology;
      p_ = p;
      if (modes_ > 0 && new_topology) {
        u_.resize(modes_, p_.topology);
        v_.resize(modes_, p_.topology);
        if (prepared_) decompose(w_.data());
      }
      if (redraw) draw_imperfections();
      invalidate();
    }
    [[nodiscard]] const params& parameters() const noexcept { return p_; }

    /// Shapes the tile (N = max(in, out) modes), programs W = 0.
    void resize(std::size_t in, std::size_t out) {
      PNN_EXPECTS(in > 0 && out > 0, "physics::mzi_mesh: extents must be positive");
      PNN_EXPECTS((In == dynamic || in == In) && (Out == dynamic || out == Out),
                  "physics::mzi_mesh: size differs from the tile's fixed extent");
      in_ = in;
      out_ = out;
      modes_ = std::max(in, out);
      w_.assign(in * out, T(0));
      b_.assign(out, T(0));
      u_.resize(modes_, p_.topology);
      v_.resize(modes_, p_.topology);
      sigma_.assign(modes_, 0.0);
      nominal_valid_.set_valid();
      prepared_ = false;
      invalidate();
    }
    [[nodiscard]] std::size_t in_size() const noexcept { return in_; }
    [[nodiscard]] std::size_t out_size() const noexcept { return out_; }
    /// Number of waveguide modes N of each mesh.
    [[nodiscard]] std::size_t modes() const noexcept { return modes_; }

    /// After the layer drew its initial weights: draws the static imperfections and programs
    /// those weights onto the meshes.
    void prepare(rng& g) {
      static_rng_ = g.split(0x6d7a69);
      prepared_ = true;
      draw_imperfections();
      decompose(w_.data());
    }

    /// Reports every read (vectors, and `N²` complex MACs per vector through the meshes) and
    /// every phase or attenuator setting programmed into `c` (`tile_hooks::attach_cost_counter`).
    void attach_cost_counter(cost_counter* c) noexcept { cost_.attach(c); }

    /// One batch of `n` vectors through the mesh: `N` modes modulated and detected per vector,
    /// every programmable element (phases, attenuators) held while the light passes.
    [[nodiscard]] physical_events optical_events(std::size_t n, bool transposed) const noexcept {
      physical_events e;
      (transposed ? e.transposed_reads : e.reads) = n;
      e.macs = n * modes_ * modes_;
      e.optical_vectors = n;
      e.optical_channels = n * modes_;
      e.held_element_vectors = n * (parameter_count() - out_);
      return e;
    }

    /// `y(n × Out)` = detection of `U Σ V† x` for real inputs `x(n × In)`; bias not included.
    void read(const T* x, std::size_t n, T* y, rng& g) const {
      if (n == 0) return;
      const simd::kernel_work_pause simulated;  // the mesh's optics, not digital work
      cost_.report([&] { return optical_events(n, false); });
      if (use_matrix(n)) {
        ensure_effective();
        simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, weff_re_.data(), in_, T(0), y, out_);
        if (p_.detect == detection::intensity) {
          static thread_local std::vector<T> im;  // per thread: const reads may run concurrently
          im.resize(n * out_);
          simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, weff_im_.data(), in_, T(0), im.data(), out_);
          const T r = T(p_.responsivity);
          for (std::size_t i = 0; i < n * out_; ++i) y[i] = r * (y[i] * y[i] + im[i] * im[i]);
        }
      } else {
        field_batch<double> f;
        load(f, x, n, in_);
        rng gn = g.split(0);
        propagate(f, &gn, false);
        for (std::size_t s = 0; s < n; ++s)
          for (std::size_t j = 0; j < out_; ++j) {
            const double re = f.re[j * n + s], im = f.im[j * n + s];
            y[s * out_ + j] = p_.detect == detection::coherent ? T(re) : T(p_.responsivity * (re * re + im * im));
          }
      }
      if (p_.detector.active()) {
        rng gd = g.split(1);
        p_.detector.apply(y, n * out_, gd);
      }
    }

    /// Reciprocal read `dx(n × In) = dy(n × Out) Re(W)`: light sent backwards through U, Σ,
    /// V† (the mesh is reciprocal, so `Wᵀ` is physically available): the vector–Jacobian product
    /// of a coherent read.
    /// \pre coherent detection (else `pnn::error`): under intensity detection `y = R|Wx|²` the
    /// vector–Jacobian product depends on `x`, so no transposed read is correct: `read_vjp`
    /// computes it at the layer's input (backprop uses it).
    void read_transposed(const T* dy, std::size_t n, T* dx, rng& g) const {
      PNN_EXPECTS(p_.detect == detection::coherent,
                  "physics::mzi_mesh::read_transposed: intensity detection (y = R|Wx|^2) has no input-independent "
                  "transposed read; use read_vjp (backprop does), or train the mesh in its parameter space "
                  "(weight_perturbation, spsa)");
      if (n == 0) return;
      const simd::kernel_work_pause simulated;
      cost_.report([&] { return optical_events(n, true); });
      if (use_matrix(n)) {
        ensure_effective();
        simd::gemm_nn<T>(n, in_, out_, T(1), dy, out_, weff_re_.data(), in_, T(0), dx, in_);
        return;
      }
      field_batch<double> f;
      load(f, dy, n, out_);
      rng gn = g.split(2);
      rng gu = gn.split(0), gv = gn.split(1);
      const bool noisy = p_.imperfections.has_call_noise();
      const mesh_realisation ru = u_.realise(noisy ? &gu : nullptr), rv = v_.realise(noisy ? &gv : nullptr);
      u_.transposed(f, ru);
      scale_rows(f, sigma_);
      v_.transposed(f, rv);
      for (std::size_t s = 0; s < n; ++s)
        for (std::size_t i = 0; i < in_; ++i) dx[s * in_ + i] = T(f.re[i * n + s]);
    }

    /// \brief The vector–Jacobian product of `read` at inputs `x`: `dx = (∂y/∂x)ᵀ dy` (n × In).
    /// Coherent detection: the transposed read. Intensity detection, `y_j = R|E_j|²` with
    /// `E = W x`: `dx_i = 2R Σ_j dy_j (Re E_j Re W_ji + Im E_j Im W_ji)` — what backprop needs to
    /// pass gradients below an intensity-detected mesh (tests/substrate.cpp checks it against
    /// finite differences). Uses the realised matrix without per-read phase noise.
    void read_vjp(const T* x, const T* dy, std::size_t n, T* dx, rng& g) const {
      if (p_.detect == detection::coherent) {
        read_transposed(dy, n, dx, g);
        return;
      }
      if (n == 0) return;
      ensure_effective();
      std::vector<T> er(n * out_), ei(n * out_);
      simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, weff_re_.data(), in_, T(0), er.data(), out_);
      simd::gemm_nt<T>(n, out_, in_, T(1), x, in_, weff_im_.data(), in_, T(0), ei.data(), out_);
      const T two_r = T(2 * p_.responsivity);
      for (std::size_t k = 0; k < n * out_; ++k) {
        er[k] *= two_r * dy[k];
        ei[k] *= two_r * dy[k];
      }
      simd::gemm_nn<T>(n, in_, out_, T(1), er.data(), out_, weff_re_.data(), in_, T(0), dx, in_);
      simd::gemm_nn<T>(n, in_, out_, T(1), ei.data(), out_, weff_im_.data(), in_, T(1), dx, in_);
    }

    /// \brief Realises a weight-space update `ΔW` (and `Δb`, applied digitally). `reprogram`:
    /// decompose `W − ΔW`; `adjoint`: phase step `η Jᵀ ΔW` from mesh fields (see
    /// `mesh_programming`). `U` has `weight_data()`/`bias_data()` and optionally the factors.
    template <class U>
    void program(const U& update, rng& g) {
      const simd::kernel_work_pause simulated;
      const T* dw = update.weight_data();
      const T* db = update.bias_data();
      PNN_EXPECTS(all_finite_(dw, in_ * out_) && all_finite_(db, out_), "physics::mzi_mesh::program: update is not finite");
      if (p_.programming == mesh_programming::reprogram) {
        PNN_EXPECTS(p_.detect == detection::coherent,
                    "physics::mzi_mesh::program: a dense weight update cannot be re-programmed under intensity detection "
                    "(the layer is not W x); use adjoint programming or a parameter-space rule");
        sync_nominal();
        std::vector<T> target(w_);
        for (std::size_t i = 0; i < target.size(); ++i) target[i] -= dw[i];
        decompose(target.data());
      } else {
        mzi_mesh_gradients step;
        bool done = false;
        if constexpr (requires { update.factored; update.input; update.delta; update.factor_scale; }) {
          if (update.factored && update.input.size() > 0) {
            const std::size_t n = update.input.shape()[0];
            adjoint_phase_gradients(update.input.data(), update.delta.data(), n, step, g, double(update.factor_scale));
            done = true;
          }
        }
        PNN_EXPECTS(done || p_.detect == detection::coherent,
                    "physics::mzi_mesh::program: adjoint programming under intensity detection needs the update's "
                    "factors (h, delta)");
        if (!done) {  // probe with the unit inputs: Σ_j ΔW[:, j]·Re(W e_j) = <ΔW, Re W>
          std::vector<T> eye(in_ * in_, T(0)), probe(in_ * out_);
          for (std::size_t j = 0; j < in_; ++j) eye[j * in_ + j] = T(1);
          for (std::size_t o = 0; o < out_; ++o)
            for (std::size_t j = 0; j < in_; ++j) probe[j * out_ + o] = dw[o * in_ + j];
          adjoint_phase_gradients(eye.data(), probe.data(), in_, step, g, 1.0);
        }
        program_phases(step);
      }
      for (std::size_t j = 0; j < out_; ++j) b_[j] -= db[j];
    }

    /// \brief Adjoint phase gradients of `L = scale · Σ_s dy_s · y_s` (y the detected output of
    /// inputs x): forward fields, then `conj(∂L/∂E)` sent backwards through U, Σ, V†. With
    /// `dy = ∂L/∂y` of a loss this is `∂L/∂(phases, σ)` — what in-situ training measures.
    void adjoint_phase_gradients(const T* x, const T* dy, std::size_t n, mzi_mesh_gradients& out, rng& g,
                                 double scale = 1.0) const {
      field_batch<double> f;
      load(f, x, n, in_);
      const bool noisy = p_.imperfections.has_call_noise();
      rng gu = g.split(10), gv = g.split(11);
      const mesh_realisation rv = v_.realise(noisy ? &gv : nullptr), ru = u_.realise(noisy ? &gu : nullptr);
      v_.forward(f, rv);
      field_batch<double> z = f;  // V† output
      scale_rows(f, sigma_);
      u_.forward(f, ru);
      field_batch<double> adj;
      adj.assign(modes_, n);
      for (std::size_t s = 0; s < n; ++s)
        for (std::size_t j = 0; j < out_; ++j) {
          const double d = scale * double(dy[s * out_ + j]);
          if (p_.detect == detection::coherent) {
            adj.re[j * n + s] = d;
          } else {  // y = R|E|²: ∂L/∂E = 2 R d E, adjoint source conj of it
            adj.re[j * n + s] = 2 * p_.responsivity * d * f.re[j * n + s];
            adj.im[j * n + s] = -2 * p_.responsivity * d * f.im[j * n + s];
          }
        }
      u_.adjoint_gradients(ru, f, adj, out.u);
      out.sigma.assign(modes_, 0.0);
      for (std::size_t m = 0; m < modes_; ++m) {
        double s = 0;
        for (std::size_t j = 0; j < n; ++j) s += z.re[m * n + j] * adj.re[m * n + j] - z.im[m * n + j] * adj.im[m * n + j];
        out.sigma[m] = s;
      }
      scale_rows(adj, sigma_);
      v_.adjoint_gradients(rv, z, adj, out.v);
    }

    /// Subtracts a phase-space step from the nominal phases and attenuators (in-situ update);
    /// an attenuator amplitude stops at 0.
    void program_phases(const mzi_mesh_gradients& step) {
      PNN_EXPECTS(step.sigma.size() == modes_, "physics::mzi_mesh::program_phases: step has the wrong shape");
      u_.step_phases(step.u);
      v_.step_phases(step.v);
      // An attenuator transmits between nothing and everything: its amplitude stops at 0.
      for (std::size_t m = 0; m < modes_; ++m) sigma_[m] = std::max(sigma_[m] - step.sigma[m], 0.0);
      cost_.report([&] { return physical_events{.parameter_writes = parameter_count() - out_}; });
      nominal_valid_.invalidate();
      invalidate();
    }

    /// Number of trainable parameters: θ and φ of every MZI and the screen of both meshes, the
    /// N attenuators σ and the Out biases.
    [[nodiscard]] std::size_t parameter_count() const noexcept {
      return 2 * (2 * u_.num_mzis() + modes_) + modes_ + out_;
    }
    /// Checkpoint contents (pnn/core/state_format.hpp): the stream the static imperfections
    /// were drawn from and the programmed parameters (phases, attenuators, bias). A load draws
    /// the same imperfections again and programs the parameters, as the hardware would be.
    template <class V>
    void visit_state(V& v) {
      std::uint64_t seed = static_rng_.seed_value(), stream = static_rng_.stream();
      bool prepared = prepared_;
      v("static_seed", seed);
      v("static_stream", stream);
      v("prepared", prepared);
      std::vector<double> theta(parameter_count());
      if constexpr (!V::loading) get_parameters(theta.data());
      v("parameters", std::span<double>(theta), state_scratch);
      if constexpr (V::loading) {
        if (!all_finite_(theta.data(), theta.size())) v.reject("parameters", "are not finite");
        if (v.applying()) {
          static_rng_ = rng(seed, stream);
          prepared_ = prepared;
          if (prepared_) draw_imperfections();
          set_parameters(theta.data());
        }
      }
    }
    /// The parameters as one flat vector (rad for phases): U's θ, φ, screen; V†'s θ, φ, screen;
    /// σ; bias. Exact copies of the programmed values.
    void get_parameters(double* p) const {
      for (const mesh_type* m : {&u_, &v_})
        for (const auto* v : {&m->theta(), &m->phi(), &m->screen()}) p = std::copy(v->begin(), v->end(), p);
      p = std::copy(sigma_.begin(), sigma_.end(), p);
      for (std::size_t j = 0; j < out_; ++j) *p++ = double(b_[j]);
    }
    /// Programs the phases, attenuators and bias from `p` (the layout of `get_parameters`), as
    /// heater drives and attenuator settings would; reads then use them. Parameter-space
    /// updates (in-situ phase training by weight perturbation or SPSA) arrive through it. An
    /// attenuator amplitude below 0 is set to 0 (no transmission), as the device would; a
    /// negative sign is the phase screen's job.
    /// \pre `parameter_count()` finite values (else `pnn::error`; the tile is unchanged).
    void set_parameters(const double* p) {
      PNN_EXPECTS(all_finite_(p, parameter_count()), "physics::mzi_mesh::set_parameters: parameters are not finite");
      mzi_mesh_gradients v;
      const double* rest = unflatten(p, v);
      u_.set_phases(v.u.theta, v.u.phi, v.u.screen);
      v_.set_phases(v.v.theta, v.v.phi, v.v.screen);
      sigma_ = v.sigma;
      for (double& a : sigma_) a = std::max(a, 0.0);  // amplitudes below 0 are not an attenuator
      cost_.report([&] { return physical_events{.parameter_writes = parameter_count() - out_}; });
      for (std::size_t j = 0; j < out_; ++j) b_[j] = T(rest[j]);
      nominal_valid_.invalidate();
      invalidate();
    }

    /// \brief A weight-space gradient in this tile's parameter space: for `∂L/∂W = s·δᵀh` (its
    /// factors: inputs `h` n × In, output gradients `δ` n × Out) and `∂L/∂b = bias_grad`,
    /// writes `∂L/∂θ` in the layout of `get_parameters` (the adjoint phase gradients, then
    /// `bias_grad`). What a perturbative estimate in phase space is compared with.
    void parameter_gradient(const T* h, const T* delta, std::size_t n, double s, const T* bias_grad, double* out,
                            rng& g) const {
      const simd::kernel_work_pause simulated;  // measured with the mesh's own fields
      mzi_mesh_gradients pg;
      adjoint_phase_gradients(h, delta, n, pg, g, s);
      for (const mesh_phase_gradients* m : {&pg.u, &pg.v})
        for (const auto* v : {&m->theta, &m->phi, &m->screen}) out = std::copy(v->begin(), v->end(), out);
      out = std::copy(pg.sigma.begin(), pg.sigma.end(), out);
      for (std::size_t j = 0; j < out_; ++j) out[j] = double(bias_grad[j]);
    }

    /// Writes target weights (decomposed onto the meshes: in-silico deployment) and bias.
    void set_weights(const T* w, const T* b, rng&) {
      PNN_EXPECTS(all_finite_(w, in_ * out_) && all_finite_(b, out_), "physics::mzi_mesh::set_weights: weights are not finite");
      decompose(w);
      std::copy(b, b + out_, b_.begin());
    }
    /// The real weights the physical mesh realises (with its static imperfections).
    void effective_weights(T* w) const {
      ensure_effective();
      std::copy(weff_re_.begin(), weff_re_.end(), w);
    }
    /// The nominal weights `Re(U Σ V†)` of the programmed phases on an ideal mesh: what a model
    /// of the mesh knows without measuring its fabrication errors (what twins mirror).
    void nominal_weights(T* w) const {
      sync_nominal();
      std::copy(w_.begin(), w_.end(), w);
    }
    /// The nominal weights, as `nominal_weights`. Writing through the pointer takes effect at
    /// the next `prepare`/`set_weights`.
    [[nodiscard]] T* weight_data() {
      sync_nominal();
      return w_.data();
    }
    [[nodiscard]] const T* weight_data() const {
      sync_nominal();
      return w_.data();
    }
    [[nodiscard]] T* bias_data() noexcept { return b_.data(); }
    [[nodiscard]] const T* bias_data() const noexcept { return b_.data(); }

    [[nodiscard]] const mesh_type& u_mesh() const noexcept { return u_; }
    [[nodiscard]] const mesh_type& v_mesh() const noexcept { return v_; }
    [[nodiscard]] const std::vector<double>& sigma() const noexcept { return sigma_; }

   private:
    // Splits a flat parameter vector into phase and attenuator parts; returns the bias part.
    const double* unflatten(const double* p, mzi_mesh_gradients& out) const {
      for (auto [m, mesh] : {std::pair{&out.u, &u_}, std::pair{&out.v, &v_}}) {
        m->theta.assign(p, p + mesh->num_mzis());
        p += mesh->num_mzis();
        m->phi.assign(p, p + mesh->num_mzis());
        p += mesh->num_mzis();
        m->screen.assign(p, p + modes_);
        p += modes_;
      }
      out.sigma.assign(p, p + modes_);
      return p + modes_;
    }
    template <class V>
    static bool all_finite_(const V* p, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(double(p[i]))) return false;
      return true;
    }
    static void scale_rows(field_batch<double>& f, const std::vector<double>& s) {
      for (std::size_t m = 0; m < f.modes; ++m)
        for (std::size_t j = 0; j < f.n; ++j) {
          f.re[m * f.n + j] *= s[m];
          f.im[m * f.n + j] *= s[m];
        }
    }
    // Real rows (n × width) onto the first `width` modes of an N-mode planar batch.
    void load(field_batch<double>& f, const T* x, std::size_t n, std::size_t width) const {
      f.assign(modes_, n);
      for (std::size_t s = 0; s < n; ++s)
        for (std::size_t i = 0; i < width; ++i) f.re[i * n + s] = double(x[s * width + i]);
    }
    // V†, Σ, U; noise from `g` when per-read phase noise is on; `ideal` drops imperfections.
    void propagate(field_batch<double>& f, rng* g, bool ideal) const {
      const bool noisy = g != nullptr && p_.imperfections.has_call_noise();
      rng gv = noisy ? g->split(0) : rng{}, gu = noisy ? g->split(1) : rng{};
      v_.forward(f, v_.realise(noisy ? &gv : nullptr, ideal));
      scale_rows(f, sigma_);
      u_.forward(f, u_.realise(noisy ? &gu : nullptr, ideal));
    }
    [[nodiscard]] bool use_matrix(std::size_t n) const {
      return !p_.imperfections.has_call_noise() && (weff_valid_.valid() || n >= in_);
    }
    void invalidate() { weff_valid_.invalidate(); }
    // The realised matrix, by sending the In unit vectors through the meshes.
    void ensure_effective() const {
      weff_valid_.ensure([&] { matrix_of(false, weff_re_, &weff_im_); });
    }
    void sync_nominal() const {
      nominal_valid_.ensure([&] { matrix_of(true, w_, nullptr); });
    }
    void matrix_of(bool ideal, std::vector<T>& re, std::vector<T>* im) const {
      field_batch<double> f;
      f.assign(modes_, in_);
      for (std::size_t i = 0; i < in_; ++i) f.re[i * in_ + i] = 1;
      propagate(f, nullptr, ideal);
      re.resize(out_ * in_);
      if (im) im->resize(out_ * in_);
      for (std::size_t j = 0; j < out_; ++j)
        for (std::size_t i = 0; i < in_; ++i) {
          re[j * in_ + i] = T(f.re[j * in_ + i]);
          if (im) (*im)[j * in_ + i] = T(f.im[j * in_ + i]);
        }
    }
    void draw_imperfections() {
      rng gu = static_rng_.split(0), gv = static_rng_.split(1);
      u_.set_imperfections(p_.imperfections, gu);
      v_.set_imperfections(p_.imperfections, gv);
      invalidate();
    }
    // SVD of the zero-padded N × N target, then U and V† onto the meshes.
    void decompose(const T* w) {
      const std::size_t n = modes_;
      std::vector<double> a(n * n, 0.0), u, s, v;
      for (std::size_t j = 0; j < out_; ++j)
        for (std::size_t i = 0; i < in_; ++i) a[j * n + i] = double(w[j * in_ + i]);
      pnn::detail::jacobi_svd(n, a.data(), u, s, v);
      std::vector<mzi::cplx> uc(n * n), vh(n * n);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          uc[i * n + j] = u[i * n + j];
          vh[i * n + j] = v[j * n + i];
        }
      cost_.report([&] { return physical_events{.parameter_writes = parameter_count() - out_}; });
      u_.program(uc.data());
      v_.program(vh.data());
      sigma_ = s;
      if (w != w_.data()) std::copy(w, w + in_ * out_, w_.begin());
      nominal_valid_.set_valid();
      invalidate();
    }

    std::size_t in_ = 0, out_ = 0, modes_ = 0;
    params p_{};
    mesh_type u_{}, v_{};
    std::vector<double> sigma_{};
    mutable std::vector<T> w_{};
    std::vector<T> b_{};
    // Caches filled on demand by const reads, each behind its flag (safe for concurrent reads).
    mutable std::vector<T> weff_re_{}, weff_im_{};
    pnn::detail::lazy_cache_flag weff_valid_{false}, nominal_valid_{true};
    cost_report cost_{};
    bool prepared_ = false;
    rng static_rng_{};
  };
};

/// The photonic substrate in single precision with the convention of docs/physics.md, "MZI".
using mzi_mesh = basic_mzi_mesh<float>;

static_assert(substrate<mzi_mesh> && transposed_readable<mzi_mesh>);
static_assert(dense_tile<mzi_mesh::tile<3, 2>> && parameterised_tile<mzi_mesh::tile<3, 2>>);

}  // namespace pnn::physics
