// SPDX-License-Identifier: MIT
/// \file
/// \brief `physics::coupled_oscillators`: a chain of coupled Duffing oscillators as a
/// black-box layer — the example physical system of physics-aware training (Wright et al.,
/// Nature 2022, the simulated coupled-oscillator PNN).
///
/// Oscillator `i` of a layer with `Out` outputs is driven by a constant force `u_i = (W x + b)_i`
/// from rest and obeys
///   ẍ_i = u_i − ω₀² x_i − γ ẋ_i − s·β x_i³ + κ_i (x_{i+1} − x_i) + κ_{i−1} (x_{i−1} − x_i),
/// integrated with classical RK4 for `duration` in `steps` steps; the layer's outputs are the
/// final displacements x_i(T) (dimensionless units: time in 1/ω₀). The sim-to-real gap is
/// explicit: `nonlinearity_scale` s (1 for the model), a static relative spread
/// `coupling_noise` of each link κ_i = κ (1 + σ_c ξ_i) (ξ_i ~ N(0, 1), drawn once from `seed`
/// and the link index), and per-read additive `input_noise` on the drive. The model instance
/// has none of them; the "physical" instance is the same type with them set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <pnn/core/rng.hpp>
#include <pnn/physics/black_box.hpp>

namespace pnn::physics {

/// Coupled Duffing oscillators driven by `W x + b`; a `black_box` callable.
template <class T = float>
struct coupled_oscillators {
  double omega0 = 1.0;              ///< ω₀, natural angular frequency (1/time unit)
  double damping = 0.2;             ///< γ, linear damping rate (1/time unit)
  double nonlinearity = 0.5;        ///< β, cubic (Duffing) stiffness
  double coupling = 0.5;            ///< κ, nearest-neighbour spring constant of the chain
  double duration = 2.0;            ///< T, integration time (time units)
  std::size_t steps = 20;           ///< RK4 steps over T (dt = T / steps)
  double nonlinearity_scale = 1.0;  ///< s, gap: actual β / model β (1 = model)
  double coupling_noise = 0.0;      ///< σ_c, gap: static relative spread of each link
  double input_noise = 0.0;         ///< σ_in, gap: additive noise on each drive, per read
  std::uint64_t seed = 0;           ///< stream of the static link spread

  /// The coupling of link i (between oscillators i and i + 1), with its static spread.
  [[nodiscard]] double link(std::size_t i) const {
    if (coupling_noise == 0.0) return coupling;
    rng g(seed, 0x05C111A7ULL);
    rng gi = g.split(i);
    return coupling * (1.0 + coupling_noise * gi.normal_double());
  }

  /// Final displacements of the `c.out` oscillators for each sample of the batch.
  std::vector<T> operator()(const black_box_call<T>& c, rng& g) const {
    PNN_EXPECTS(steps > 0 && duration > 0, "physics::coupled_oscillators: steps and duration must be positive");
    const std::size_t m = c.out;
    std::vector<double> k(m > 0 ? m - 1 : 0);
    for (std::size_t i = 0; i + 1 < m; ++i) k[i] = link(i);
    std::vector<T> out(c.n * m);
    std::vector<double> u(m), x(m), v(m), kx[4], kv[4], xs(m), vs(m);
    for (auto& a : kx) a.resize(m);
    for (auto& a : kv) a.resize(m);
    const double w2 = omega0 * omega0, beta = nonlinearity * nonlinearity_scale, dt = duration / double(steps);
    // Acceleration of every oscillator at state (p, q) into `acc`.
    auto accel = [&](const std::vector<double>& p, const std::vector<double>& q, std::vector<double>& acc) {
      for (std::size_t i = 0; i < m; ++i) {
        double a = u[i] - w2 * p[i] - damping * q[i] - beta * p[i] * p[i] * p[i];
        if (i + 1 < m) a += k[i] * (p[i + 1] - p[i]);
        if (i > 0) a += k[i - 1] * (p[i - 1] - p[i]);
        acc[i] = a;
      }
    };
    for (std::size_t r = 0; r < c.n; ++r) {
      for (std::size_t i = 0; i < m; ++i) {
        double s = double(c.bias[i]);
        for (std::size_t j = 0; j < c.in; ++j) s += double(c.weight[i * c.in + j]) * double(c.x[r * c.in + j]);
        if (input_noise > 0) s += input_noise * g.normal_double();
        u[i] = s;
        x[i] = 0;
        v[i] = 0;
      }
      for (std::size_t st = 0; st < steps; ++st) {
        static constexpr double stage[4] = {0.0, 0.5, 0.5, 1.0};
        for (int q = 0; q < 4; ++q) {
          if (q == 0) {
            xs = x;
            vs = v;
          } else {
            for (std::size_t i = 0; i < m; ++i) {
              xs[i] = x[i] + stage[q] * dt * kx[q - 1][i];
              vs[i] = v[i] + stage[q] * dt * kv[q - 1][i];
            }
          }
          kx[q] = vs;
          accel(xs, vs, kv[q]);
        }
        for (std::size_t i = 0; i < m; ++i) {
          x[i] += dt / 6.0 * (kx[0][i] + 2 * kx[1][i] + 2 * kx[2][i] + kx[3][i]);
          v[i] += dt / 6.0 * (kv[0][i] + 2 * kv[1][i] + 2 * kv[2][i] + kv[3][i]);
        }
      }
      for (std::size_t i = 0; i < m; ++i) out[r * m + i] = static_cast<T>(x[i]);
    }
    return out;
  }
};

/// The oscillator layer as a substrate: `dense<In, Out, oscillator_box<>>`.
template <class T = float>
using oscillator_box = black_box<coupled_oscillators<T>, T>;

static_assert(substrate<oscillator_box<float>> && !transposed_readable<oscillator_box<double>>);

}  // namespace pnn::physics
