// SPDX-License-Identifier: MIT
/// \file
/// \brief `simd::relax_rows`: one step of the hard-sigmoid state dynamics of a layered energy
/// model on a block of rows — the inner loop of every equilibrium-propagation and coupled-
/// learning relaxation (learn/energy_model.hpp).
///
/// Fixed-point form `s ← ρ(d)` or gradient form `s ← ρ(s + ε(d − s))`, `ρ` the clip to [0, 1],
/// with the residual `Σ (s − ρ(d))²` accumulated per row for the stopping test.
#pragma once

#include <algorithm>
#include <cstddef>

#include <pnn/simd/arch.hpp>
#include <pnn/simd/math.hpp>

namespace pnn::simd {

/// `s ← step(base + bias + c·extra + noise)` over `rows × w` states (row stride `w`), skipping
/// the rows whose `active` flag is 0 (a null `active`: all rows). Adds each row's
/// `Σ (s − ρ(drive))²` to `row_r2[r]`, and to `bad` a sum that is non-zero only when a drive
/// was not finite.
template <bool Extra, bool Noise, bool FixedPoint, class T, class Arch = simd::default_arch>
void relax_rows(std::size_t rows, std::size_t w, T* s, const T* base, const T* bias, const T* extra, T c,
                const T* noise, T eps, const unsigned char* active, double* row_r2, double& bad) {
  using P = simd::pack<T, Arch>;
  constexpr std::size_t W = P::size;
  const P zero(T(0)), one(T(1)), pc(c), pe(eps);
  P nan_acc(T(0));
  T nan_s = T(0);
  for (std::size_t r = 0; r < rows; ++r) {
    if (active != nullptr && active[r] == 0) continue;
    T* sr = s + r * w;
    const T* br = base + r * w;
    // Two accumulators, alternating by vector: with one, the loop waits on the latency of the
    // residual's FMA chain instead of its loads.
    P acc[2] = {P(T(0)), P(T(0))};
    T acc_s = T(0);
    auto update = [&](std::size_t j, std::size_t u) {
      P d = P::load_unaligned(br + j);
      if (bias != nullptr) d = d + P::load_unaligned(bias + j);
      if constexpr (Extra) d = simd::fma(pc, P::load_unaligned(extra + r * w + j), d);
      if constexpr (Noise) d = d + P::load_unaligned(noise + r * w + j);
      const P old = P::load_unaligned(sr + j);
      const P target = simd::min(simd::max(d, zero), one);
      const P diff = old - target;
      acc[u] = simd::fma(diff, diff, acc[u]);
      nan_acc = nan_acc + (d - d);
      if constexpr (FixedPoint) {
        target.store_unaligned(sr + j);
      } else {
        const P next = simd::fma(pe, d - old, old);
        simd::min(simd::max(next, zero), one).store_unaligned(sr + j);
      }
    };
    std::size_t j = 0;
    for (const std::size_t j_end = w - w % (2 * W); j < j_end; j += 2 * W) {
      update(j, 0);
      update(j + W, 1);
    }
    for (const std::size_t j_end = w - w % W; j < j_end; j += W) update(j, 0);
    for (; j < w; ++j) {
      T d = br[j];
      if (bias != nullptr) d += bias[j];
      if constexpr (Extra) d += c * extra[r * w + j];
      if constexpr (Noise) d += noise[r * w + j];
      const T old = sr[j];
      const T target = std::min(std::max(d, T(0)), T(1));
      acc_s += (old - target) * (old - target);
      nan_s += d - d;
      if constexpr (FixedPoint) {
        sr[j] = target;
      } else {
        sr[j] = std::min(std::max(old + eps * (d - old), T(0)), T(1));
      }
    }
    row_r2[r] += double(simd::reduce_add(acc[0] + acc[1])) + double(acc_s);
  }
  bad += double(simd::reduce_add(nan_acc)) + double(nan_s);
}

template <class T>
void relax_rows_dispatch(bool extra, bool noise, bool fixed_point, std::size_t rows, std::size_t w, T* s,
                         const T* base, const T* bias, const T* ex, T c, const T* nz, T eps,
                         const unsigned char* active, double* row_r2, double& bad) {
  const int code = (extra ? 4 : 0) + (noise ? 2 : 0) + (fixed_point ? 1 : 0);
  switch (code) {
    case 0: relax_rows<false, false, false>(rows, w, s, base, bias, ex, c, nz, eps, active, row_r2, bad); break;
    case 1: relax_rows<false, false, true>(rows, w, s, base, bias, ex, c, nz, eps, active, row_r2, bad); break;
    case 2: relax_rows<false, true, false>(rows, w, s, base, bias, ex, c, nz, eps, active, row_r2, bad); break;
    case 3: relax_rows<false, true, true>(rows, w, s, base, bias, ex, c, nz, eps, active, row_r2, bad); break;
    case 4: relax_rows<true, false, false>(rows, w, s, base, bias, ex, c, nz, eps, active, row_r2, bad); break;
    case 5: relax_rows<true, false, true>(rows, w, s, base, bias, ex, c, nz, eps, active, row_r2, bad); break;
    case 6: relax_rows<true, true, false>(rows, w, s, base, bias, ex, c, nz, eps, active, row_r2, bad); break;
    default: relax_rows<true, true, true>(rows, w, s, base, bias, ex, c, nz, eps, active, row_r2, bad); break;
  }
}

}  // namespace pnn::simd
