// SPDX-License-Identifier: MIT
/// \file
/// \brief `detail::jacobi_svd`: the real SVD of a small square matrix by one-sided Jacobi
/// (Hestenes) rotations in double — what a photonic tile needs to turn a target `W` into
/// `U Σ Vᵀ` before decomposing the unitaries into phases.
///
/// Sweeps until the columns are orthogonal to working precision (at most 80 sweeps), O(N³) per
/// sweep: meant for tile-sized N (up to a few hundred), not for bulk linear algebra.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace pnn::detail {

/// \brief Real SVD `A = U diag(s) Vᵀ` of an N × N row-major matrix by one-sided Jacobi
/// (Hestenes) rotations in double; singular values in [0, ∞), U and V orthogonal (columns of U
/// for zero singular values completed to an orthonormal basis).
inline void jacobi_svd(std::size_t n, const double* a_rows, std::vector<double>& u, std::vector<double>& s,
                       std::vector<double>& v) {
  std::vector<double> a(n * n), vc(n * n, 0.0);  // column-major copies: column j at [j·n]
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) a[j * n + i] = a_rows[i * n + j];
  for (std::size_t j = 0; j < n; ++j) vc[j * n + j] = 1;
  for (int sweep = 0; sweep < 80; ++sweep) {
    double off = 0;
    for (std::size_t p = 0; p + 1 < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        double* ap = &a[p * n];
        double* aq = &a[q * n];
        double alpha = 0, beta = 0, gamma = 0;
        for (std::size_t i = 0; i < n; ++i) {
          alpha += ap[i] * ap[i];
          beta += aq[i] * aq[i];
          gamma += ap[i] * aq[i];
        }
        if (alpha == 0 || beta == 0 || std::abs(gamma) <= 1e-15 * std::sqrt(alpha * beta)) continue;
        off = std::max(off, std::abs(gamma) / std::sqrt(alpha * beta));
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::abs(zeta) + std::sqrt(1 + zeta * zeta));
        const double c = 1 / std::sqrt(1 + t * t), sn = c * t;
        for (std::size_t i = 0; i < n; ++i) {
          const double x = ap[i], y = aq[i];
          ap[i] = c * x - sn * y;
          aq[i] = sn * x + c * y;
        }
        double* vp = &vc[p * n];
        double* vq = &vc[q * n];
        for (std::size_t i = 0; i < n; ++i) {
          const double x = vp[i], y = vq[i];
          vp[i] = c * x - sn * y;
          vq[i] = sn * x + c * y;
        }
      }
    if (off < 1e-14) break;
  }
  s.assign(n, 0.0);
  double smax = 0;
  for (std::size_t j = 0; j < n; ++j) {
    double nr = 0;
    for (std::size_t i = 0; i < n; ++i) nr += a[j * n + i] * a[j * n + i];
    s[j] = std::sqrt(nr);
    smax = std::max(smax, s[j]);
  }
  std::vector<double> uc(n * n, 0.0);
  std::vector<bool> ok(n, false);
  for (std::size_t j = 0; j < n; ++j)
    if (s[j] > 1e-13 * std::max(smax, 1e-300) && s[j] > 0) {
      for (std::size_t i = 0; i < n; ++i) uc[j * n + i] = a[j * n + i] / s[j];
      ok[j] = true;
    } else {
      s[j] = 0;
    }
  std::size_t e = 0;  // complete the basis with Gram–Schmidt on unit vectors
  for (std::size_t j = 0; j < n; ++j) {
    if (ok[j]) continue;
    for (; e < n; ++e) {
      std::vector<double> cand(n, 0.0);
      cand[e] = 1;
      for (int pass = 0; pass < 2; ++pass)
        for (std::size_t k = 0; k < n; ++k) {
          if (!ok[k]) continue;
          double d = 0;
          for (std::size_t i = 0; i < n; ++i) d += uc[k * n + i] * cand[i];
          for (std::size_t i = 0; i < n; ++i) cand[i] -= d * uc[k * n + i];
        }
      double nr = 0;
      for (double x : cand) nr += x * x;
      nr = std::sqrt(nr);
      if (nr > 0.5) {
        for (std::size_t i = 0; i < n; ++i) uc[j * n + i] = cand[i] / nr;
        ok[j] = true;
        ++e;
        break;
      }
    }
  }
  u.assign(n * n, 0.0);
  v.assign(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      u[i * n + j] = uc[j * n + i];
      v[i * n + j] = vc[j * n + i];
    }
}

}  // namespace pnn::detail
