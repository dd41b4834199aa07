// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::check_substrate<S>()`: the conformance test a new substrate runs before any rule
/// trusts it — what the concepts cannot see at compile time, measured on one tile.
///
/// The concepts (`pnn::substrate`) check that the members exist; this checks that they mean
/// what the rules assume: reads are deterministic for a given random stream, the transposed read
/// is the vector–Jacobian product of the read (central finite differences), `program` applies
/// the update it is given and `effective_weights` reports what reads compute, and the parameters
/// a perturbative rule writes change the reads and restore exactly. Each shipped substrate passes
/// it in the suite (tests/substrate.cpp); docs/guide.md shows it on a user's substrate.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/nn/dynamic_storage.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/parameters.hpp>

namespace pnn {

/// What `check_substrate` exercises and how closely (defaults in brackets).
struct substrate_check_options {
  std::size_t in = 5;             ///< tile inputs [5]
  std::size_t out = 4;            ///< tile outputs [4]
  std::size_t batch = 3;          ///< rows per read [3]
  std::uint64_t seed = 1;         ///< stream of every draw [1]
  double weight_scale = 0.3;      ///< target weights uniform in ±scale [0.3]
  /// Reads are `x Wₑᵀ` with `Wₑ = effective_weights()`: check it (false for a nonlinear physics).
  bool linear = true;
  /// Relative tolerance of the read, VJP and restore comparisons [1e-4, float-safe].
  double tolerance = 1e-4;
  /// Relative tolerance of `program`: `max|ΔWₑ + ΔW| / max|ΔW|` (devices that quantise or
  /// saturate need more; a negative value skips the check; skipped for a tile without W) [1e-4].
  double program_tolerance = 1e-4;
  double finite_difference_step = 1e-3;  ///< ε of the VJP check (input units) [1e-3]
  /// Check the VJP (`read_vjp`, else `read_transposed`) where the tile has one (false for a
  /// configuration that refuses to be read backwards) [true].
  bool check_transposed = true;
};

/// What `check_substrate` measured; `passed()` when `failures` is empty.
struct substrate_check_report {
  std::vector<std::string> failures{};
  double read_error = 0;           ///< max |read − x Wₑᵀ| / max |read| (linear only)
  double vjp_error = -1;           ///< |⟨Wᵀdy, v⟩ − FD| / scale; −1 without a transposed read
  double program_error = -1;       ///< see `substrate_check_options::program_tolerance`
  double perturbation_effect = 0;  ///< max |read change| after a parameter perturbation
  [[nodiscard]] bool passed() const noexcept { return failures.empty(); }
  /// All failures, one per line (empty when passed).
  [[nodiscard]] std::string summary() const {
    std::string s;
    for (const auto& f : failures) s += f + "\n";
    return s;
  }
};

namespace detail {
template <class T>
double max_abs(const std::vector<T>& v) {
  double m = 0;
  for (const T& x : v) m = std::max(m, std::abs(double(x)));
  return m;
}
template <class T>
double max_abs_diff(const std::vector<T>& a, const std::vector<T>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}
}  // namespace detail

/// \brief Runs the conformance checks on a dynamic tile of substrate `S` configured with `p`
/// (through `set_params` where the tile has it) and returns what it measured.
/// \pre `S` models `pnn::substrate`; `o.in`, `o.out`, `o.batch` ≥ 1.
template <substrate S>
[[nodiscard]] substrate_check_report check_substrate(const typename S::params& p = {},
                                                     const substrate_check_options& o = {}) {
  using tile_t = typename S::template tile<dynamic, dynamic>;
  using T = typename tile_t::value_type;
  PNN_EXPECTS(o.in >= 1 && o.out >= 1 && o.batch >= 1, "check_substrate: in, out and batch must be at least 1");
  substrate_check_report rep;
  auto fail = [&](std::string what) { rep.failures.push_back(std::string(S::name) + ": " + std::move(what)); };
  rng g(o.seed, 0xC4EC);

  tile_t t{};
  if constexpr (requires { t.set_params(p); }) t.set_params(p);
  t.resize(o.in, o.out);
  if (t.in_size() != o.in || t.out_size() != o.out) {
    fail("resize(" + std::to_string(o.in) + ", " + std::to_string(o.out) + ") gave a " +
         std::to_string(t.out_size()) + " x " + std::to_string(t.in_size()) + " tile");
    return rep;
  }
  const std::size_t nw = o.in * o.out, n = o.batch;
  std::vector<T> w(nw), b(o.out), x(n * o.in), dy(n * o.out), v(n * o.in);
  for (auto& e : w) e = T(o.weight_scale * (2 * g.uniform_double() - 1));
  for (auto& e : b) e = T(0.1 * (2 * g.uniform_double() - 1));
  for (auto& e : x) e = T(2 * g.uniform_double() - 1);
  for (auto& e : dy) e = T(2 * g.uniform_double() - 1);
  for (auto& e : v) e = T(2 * g.uniform_double() - 1);
  if constexpr (requires { t.prepare(g); }) {
    rng gp = g.split(1);
    t.prepare(gp);
  }
  // A tile without W (a diffractive stack) is checked with the parameters `prepare` drew.
  constexpr bool has_w = deployable_tile<tile_t>;
  if constexpr (has_w) {
    rng gs = g.split(2);
    t.set_weights(w.data(), b.data(), gs);
  } else if (o.linear) {
    fail("the tile has no effective_weights(), so a linear read cannot be checked (set linear = false)");
  }

  auto read = [&](const tile_t& tile, const std::vector<T>& in, std::uint64_t stream) {
    std::vector<T> y(n * o.out);
    rng gr(o.seed, stream);
    tile.read(in.data(), n, y.data(), gr);
    return y;
  };

  // Deterministic for a fixed stream.
  const std::vector<T> y0 = read(t, x, 7), y1 = read(t, x, 7);
  if (y0 != y1) fail("two reads with the same random stream differ (reads must draw only from the rng they get)");
  const double yscale = std::max(detail::max_abs(y0), 1e-30);

  // Reads compute with the weights the tile reports.
  std::vector<T> we(nw);
  if constexpr (has_w) t.effective_weights(we.data());
  if (has_w && o.linear) {
    std::vector<T> ref(n * o.out, T(0));
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t j = 0; j < o.out; ++j) {
        double s = 0;
        for (std::size_t i = 0; i < o.in; ++i) s += double(x[r * o.in + i]) * double(we[j * o.in + i]);
        ref[r * o.out + j] = T(s);
      }
    rep.read_error = detail::max_abs_diff(y0, ref) / yscale;
    if (!(rep.read_error <= o.tolerance))
      fail("read differs from x * effective_weights()^T by " + std::to_string(rep.read_error) + " (relative)");
  }

  // The transposed read is the vector–Jacobian product of the read.
  if constexpr (transposable_tile<tile_t>) {
    if (o.check_transposed) {
    std::vector<T> dx(n * o.in);
    rng gt(o.seed, 9);
    // A nonlinear read's VJP depends on x: the tile's read_vjp where it has one.
    tile_hooks::read_vjp(t, x.data(), dy.data(), n, dx.data(), gt);
    const double eps = o.finite_difference_step;
    std::vector<T> xp(x), xm(x);
    for (std::size_t k = 0; k < x.size(); ++k) {
      xp[k] = T(double(x[k]) + eps * double(v[k]));
      xm[k] = T(double(x[k]) - eps * double(v[k]));
    }
    const std::vector<T> yp = read(t, xp, 7), ym = read(t, xm, 7);
    double fd = 0, vjp = 0, scale = 0;
    for (std::size_t k = 0; k < yp.size(); ++k) fd += double(dy[k]) * (double(yp[k]) - double(ym[k])) / (2 * eps);
    for (std::size_t k = 0; k < dx.size(); ++k) {
      vjp += double(dx[k]) * double(v[k]);
      scale += std::abs(double(dx[k]) * double(v[k]));
    }
    rep.vjp_error = std::abs(vjp - fd) / std::max(scale, 1e-30);
    if (!(rep.vjp_error <= std::max(o.tolerance, 1e-2)))
      fail("read_transposed/read_vjp is not the vector-Jacobian product of read: <dx, v> = " + std::to_string(vjp) +
           ", finite differences give " + std::to_string(fd));
    }
  }

  // `program` applies the update it is given (and effective_weights reports it).
  if (has_w && o.program_tolerance >= 0) {
    tile_t tp = t;
    std::vector<T> dw(nw), db(o.out, T(0));
    for (auto& e : dw) e = T(0.05 * o.weight_scale * (2 * g.uniform_double() - 1));
    struct dense_update {
      const T* w;
      const T* b;
      const T* weight_data() const noexcept { return w; }
      const T* bias_data() const noexcept { return b; }
    } u{dw.data(), db.data()};
    rng gu = g.split(3);
    if constexpr (has_w) {
    tp.program(u, gu);
    std::vector<T> after(nw);
    tp.effective_weights(after.data());
    double err = 0;
    for (std::size_t k = 0; k < nw; ++k) err = std::max(err, std::abs(double(after[k]) - double(we[k]) + double(dw[k])));
    rep.program_error = err / std::max(detail::max_abs(dw), 1e-30);
    if (!(rep.program_error <= o.program_tolerance))
      fail("program(update) changed effective_weights() by something else than -update (relative error " +
           std::to_string(rep.program_error) + ")");
    }
  }

  // Parameters a perturbative rule writes change the reads and restore exactly.
  {
    const std::size_t np = tile_parameter_count(t);
    std::vector<double> theta(np), moved(np), back(np);
    get_tile_parameters(t, theta.data());
    for (std::size_t k = 0; k < np; ++k) moved[k] = theta[k] + 0.05 * (2 * g.uniform_double() - 1);
    tile_t tp = t;
    set_tile_parameters(tp, moved.data());
    rep.perturbation_effect = detail::max_abs_diff(read(tp, x, 7), y0);
    if (!(rep.perturbation_effect > 0))
      fail("writing its parameters does not change what the tile reads (a perturbative rule would measure nothing)");
    set_tile_parameters(tp, theta.data());
    get_tile_parameters(tp, back.data());
    if (back != theta) fail("parameters written back do not read back bit for bit");
    if (read(tp, x, 7) != y0) fail("restoring the saved parameters does not restore the reads exactly");
  }
  return rep;
}

}  // namespace pnn
