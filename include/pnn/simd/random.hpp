// SPDX-License-Identifier: MIT
/// \file
/// \brief Vectorised bulk sampling over a `pnn::rng` stream: uniform, normal, Rademacher,
/// Bernoulli and Poisson fills, with the Philox rounds themselves run eight blocks at a time.
///
/// Counter contract (the same on every architecture, SIMD or scalar): a call starts at block
/// `g.counter()`, sample i is derived from block `g.counter() + i / s` only, where s is the
/// number of samples per block listed with each function, and on return the counter has moved
/// past the ceil(n / s) blocks used (words buffered by `rng::next_u32` are dropped). So a fill
/// depends on (seed, stream, counter at entry, n) only, and a fill of n followed by a fill of m
/// equals one fill of n + m whenever s divides n. Within a block, the layout is the one the
/// scalar `rng` draws use: fresh `rng`s give the same uniforms through `rng::uniform()` and
/// `fill_uniform`.
///
/// On AVX2 the Philox rounds run on eight blocks per register with `_mm256_mul_epu32` on the
/// even and odd lanes; elsewhere (SSE/NEON, or `pnn::simd::scalar`) a portable loop computes the
/// same words. A stream whose engine is `rng_engine::ars` runs its AES rounds on VAES (four
/// blocks a register, with AVX-512), AES-NI (one), or the portable `ars4x32`, again the same
/// words. Box–Muller uses both of its outputs (r cos θ and r sin θ).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <pnn/core/config.hpp>
#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/simd/arch.hpp>

#if !defined(PNN_NO_SIMD) && defined(__AVX2__)
#include <immintrin.h>
#define PNN_DETAIL_RNG_AVX2 1
#else
#define PNN_DETAIL_RNG_AVX2 0
#endif
#if PNN_DETAIL_RNG_AVX2 && defined(__AVX512F__) && defined(__AVX512DQ__)
#define PNN_DETAIL_RNG_AVX512 1
#else
#define PNN_DETAIL_RNG_AVX512 0
#endif
// ARS on AES instructions: AES-NI rounds one block per register; VAES with AVX-512 four.
#if !defined(PNN_NO_SIMD) && defined(__AES__) && defined(__SSE2__)
#include <immintrin.h>
#define PNN_DETAIL_RNG_AESNI 1
#else
#define PNN_DETAIL_RNG_AESNI 0
#endif
#if PNN_DETAIL_RNG_AESNI && PNN_DETAIL_RNG_AVX512 && defined(__VAES__)
#define PNN_DETAIL_RNG_VAES512 1
#else
#define PNN_DETAIL_RNG_VAES512 0
#endif

namespace pnn {
namespace detail {

/// True when the Philox rounds for `Arch` run on AVX2 registers.
template <class Arch>
inline constexpr bool rng_avx2 = PNN_DETAIL_RNG_AVX2 != 0 && !simd::is_scalar_arch<Arch>;
/// True when they run on AVX-512 registers (sixteen blocks each), for an `Arch` that wide.
template <class Arch>
inline constexpr bool rng_avx512 = PNN_DETAIL_RNG_AVX512 != 0 && rng_avx2<Arch> && simd::lanes<float, Arch> >= 16;

/// Blocks per group: two registers of counters, whose Philox rounds interleave (sixteen blocks
/// on AVX2, 32 on AVX-512), and at least sixteen.
template <class Arch>
inline constexpr std::size_t rng_group = 2 * simd::lanes<float, Arch> > 16 ? 2 * simd::lanes<float, Arch> : 16;

/// Eight consecutive Philox blocks, word-major: rows[w * stride + b] = word w of block ctr + b.
inline void philox8_portable(std::array<std::uint32_t, 2> key, std::uint64_t ctr, std::uint64_t stream,
                             std::uint32_t* rows, std::size_t stride) noexcept {
  for (std::size_t b = 0; b < 8; ++b) {
    const auto w = philox4x32::generate(philox_counter(ctr + b, stream), key);
    for (std::size_t k = 0; k < 4; ++k) rows[k * stride + b] = w[k];
  }
}

#if PNN_DETAIL_RNG_AVX2
/// Philox4x32-10 of eight blocks per register, word w of the blocks in x[w].
///
/// `_mm256_mul_epu32` multiplies only the low 32 bits of each 64-bit lane into a full 64-bit
/// product. So the even blocks (0, 2, 4, 6) and the odd ones (shifted down) run as two
/// independent halves whose upper 32 bits are left as garbage: the product's low half is the
/// `lo` word in place, its high half one shift away, and garbage in the upper halves never
/// reaches a low half (xor and the multiplier ignore it). The halves are re-interleaved once at
/// the end instead of blending after every multiplication. Group g holds blocks ctr + 8g ..
/// ctr + 8g + 7. The rounds of N groups run interleaved (`philox_avx2<N>`): one group's rounds form a
/// dependency chain (multiply, shift, xor: about six cycles a round), so a single group leaves
/// the multipliers idle; two or more independent groups fill them.
template <std::size_t N>
PNN_ALWAYS_INLINE void philox_avx2(std::array<std::uint32_t, 2> key, std::uint64_t ctr, std::uint64_t stream,
                                   __m256i (&x)[N][4]) noexcept {
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i c2 = _mm256_set1_epi32(static_cast<int>(lo32(stream)));
  const __m256i c3 = _mm256_set1_epi32(static_cast<int>(hi32(stream)));
  __m256i e[N][4], o[N][4];
  PNN_UNROLL
  for (std::size_t g = 0; g < N; ++g) {
    const std::uint64_t cg = ctr + 8 * g;
    const __m256i base = _mm256_set1_epi32(static_cast<int>(lo32(cg)));
    const __m256i c0 = _mm256_add_epi32(base, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    // Carry into the high word where the low word wrapped (unsigned c0 < base, via the sign flip).
    const __m256i wrapped = _mm256_cmpgt_epi32(_mm256_xor_si256(base, sign), _mm256_xor_si256(c0, sign));
    const __m256i c1 = _mm256_sub_epi32(_mm256_set1_epi32(static_cast<int>(hi32(cg))), wrapped);
    e[g][0] = c0;
    e[g][1] = c1;
    e[g][2] = c2;
    e[g][3] = c3;
    o[g][0] = _mm256_srli_epi64(c0, 32);
    o[g][1] = _mm256_srli_epi64(c1, 32);
    o[g][2] = c2;
    o[g][3] = c3;
  }
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(philox4x32::multiplier0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(philox4x32::multiplier1));
  std::uint32_t k0 = key[0];
  std::uint32_t k1 = key[1];
  PNN_UNROLL
  for (int r = 0; r < philox4x32::rounds; ++r) {
    if (r != 0) {
      k0 += philox4x32::weyl0;
      k1 += philox4x32::weyl1;
    }
    const __m256i kk0 = _mm256_set1_epi32(static_cast<int>(k0));
    const __m256i kk1 = _mm256_set1_epi32(static_cast<int>(k1));
    PNN_UNROLL
    for (std::size_t g = 0; g < N; ++g) {
      const __m256i pe0 = _mm256_mul_epu32(e[g][0], m0);
      const __m256i pe1 = _mm256_mul_epu32(e[g][2], m1);
      const __m256i po0 = _mm256_mul_epu32(o[g][0], m0);
      const __m256i po1 = _mm256_mul_epu32(o[g][2], m1);
      e[g][0] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pe1, 32), e[g][1]), kk0);
      e[g][1] = pe1;
      e[g][2] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pe0, 32), e[g][3]), kk1);
      e[g][3] = pe0;
      o[g][0] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(po1, 32), o[g][1]), kk0);
      o[g][1] = po1;
      o[g][2] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(po0, 32), o[g][3]), kk1);
      o[g][3] = po0;
    }
  }
  PNN_UNROLL
  for (std::size_t g = 0; g < N; ++g)
    PNN_UNROLL
    for (std::size_t w = 0; w < 4; ++w) x[g][w] = _mm256_blend_epi32(e[g][w], _mm256_slli_epi64(o[g][w], 32), 0xAA);
}

/// 4×8 transpose: from four registers indexed by block (a[b], b[b], c[b], d[b]) to the
/// block-major order a0 b0 c0 d0 a1 b1 ... in o[0..3].
PNN_ALWAYS_INLINE void transpose4x8(__m256 a, __m256 b, __m256 c, __m256 d, __m256 (&o)[4]) noexcept {
  const __m256 t0 = _mm256_unpacklo_ps(a, b);  // a0 b0 a1 b1 | a4 b4 a5 b5
  const __m256 t1 = _mm256_unpackhi_ps(a, b);  // a2 b2 a3 b3 | a6 b6 a7 b7
  const __m256 t2 = _mm256_unpacklo_ps(c, d);
  const __m256 t3 = _mm256_unpackhi_ps(c, d);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);  // blocks 0 | 4
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);  // blocks 1 | 5
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);  // blocks 2 | 6
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);  // blocks 3 | 7
  o[0] = _mm256_permute2f128_ps(u0, u1, 0x20);
  o[1] = _mm256_permute2f128_ps(u2, u3, 0x20);
  o[2] = _mm256_permute2f128_ps(u0, u1, 0x31);
  o[3] = _mm256_permute2f128_ps(u2, u3, 0x31);
}

PNN_ALWAYS_INLINE __m256 fmadd8(__m256 a, __m256 b, __m256 c) noexcept {
#if defined(__FMA__)
  return _mm256_fmadd_ps(a, b, c);
#else
  return _mm256_add_ps(_mm256_mul_ps(a, b), c);
#endif
}

/// r = √(−2 ln u) for u = u01f(w) on eight lanes: ln u = e·ln 2 + ln m with m ∈ [√½, √2).
PNN_ALWAYS_INLINE __m256 box_muller_radius8(__m256i w) noexcept {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 u = _mm256_sub_ps(_mm256_set1_ps(2.0f), _mm256_castsi256_ps(_mm256_or_si256(
                                                          _mm256_srli_epi32(w, 9), _mm256_set1_epi32(0x3F800000))));
  const __m256i bits = _mm256_castps_si256(u);
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
  __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F800000)));
  const __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
  m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
  e = _mm256_sub_epi32(e, _mm256_castps_si256(big));  // mask is −1 where m was halved
  // ln(1 + t) = t·Q(t) on t ∈ [√½ − 1, √2 − 1): our least-squares fit of degree 8 for relative
  // error (3e-8, below float rounding); a polynomial keeps the division off the critical path.
  const __m256 t = _mm256_sub_ps(m, one);
  __m256 q = fmadd8(t, _mm256_set1_ps(8.512234464e-02f), _mm256_set1_ps(-1.425844454e-01f));
  q = fmadd8(q, t, _mm256_set1_ps(1.498023681e-01f));
  q = fmadd8(q, t, _mm256_set1_ps(-1.657972454e-01f));
  q = fmadd8(q, t, _mm256_set1_ps(1.995582851e-01f));
  q = fmadd8(q, t, _mm256_set1_ps(-2.500127191e-01f));
  q = fmadd8(q, t, _mm256_set1_ps(3.333419429e-01f));
  q = fmadd8(q, t, _mm256_set1_ps(-4.999999732e-01f));
  q = fmadd8(q, t, _mm256_set1_ps(9.999999741e-01f));
  const __m256 ef = _mm256_cvtepi32_ps(e);
  // ln 2 in two parts so that e·ln 2 (|e| ≤ 23) stays exact in the high part.
  __m256 ln_u = fmadd8(ef, _mm256_set1_ps(0.693145752f), _mm256_mul_ps(t, q));
  ln_u = fmadd8(ef, _mm256_set1_ps(1.42860682e-06f), ln_u);
  return _mm256_sqrt_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), ln_u), _mm256_setzero_ps()));
}

/// cos θ and sin θ for θ = 2π·u01f(w) on eight lanes, reduced exactly in integers: with
/// m = w >> 9, θ = 2π − φ, φ = 2π m / 2²³ = q·π/2 + ρ, quadrant q = (w + 2²⁹) >> 30 and
/// ρ ∈ [−π/4, π/4) from the sign-extended low 30 bits of w. Taylor polynomials of sin (to ρ⁹)
/// and cos (to ρ¹⁰) are within 2e-9 on that interval; the quadrant swaps and negates them.
PNN_ALWAYS_INLINE void box_muller_angle8(__m256i w, __m256& cos_t, __m256& sin_t) noexcept {
  const __m256i q = _mm256_srli_epi32(_mm256_add_epi32(w, _mm256_set1_epi32(1 << 29)), 30);
  const __m256i rho_int = _mm256_srai_epi32(_mm256_slli_epi32(w, 2), 11);
  const __m256 rho = _mm256_mul_ps(_mm256_cvtepi32_ps(rho_int), _mm256_set1_ps(7.49014057e-07f));  // 2π / 2²³
  const __m256 r2 = _mm256_mul_ps(rho, rho);
  __m256 sp = fmadd8(r2, _mm256_set1_ps(1.0f / 362880), _mm256_set1_ps(-1.0f / 5040));
  sp = fmadd8(sp, r2, _mm256_set1_ps(1.0f / 120));
  sp = fmadd8(sp, r2, _mm256_set1_ps(-1.0f / 6));
  sp = _mm256_mul_ps(sp, r2);
  const __m256 sn = fmadd8(sp, rho, rho);
  __m256 cp = fmadd8(r2, _mm256_set1_ps(-1.0f / 3628800), _mm256_set1_ps(1.0f / 40320));
  cp = fmadd8(cp, r2, _mm256_set1_ps(-1.0f / 720));
  cp = fmadd8(cp, r2, _mm256_set1_ps(1.0f / 24));
  cp = fmadd8(cp, r2, _mm256_set1_ps(-0.5f));
  const __m256 cs = fmadd8(cp, r2, _mm256_set1_ps(1.0f));
  const __m256 swap = _mm256_castsi256_ps(_mm256_slli_epi32(q, 31));
  const __m256 c0 = _mm256_blendv_ps(cs, sn, swap);
  const __m256 s0 = _mm256_blendv_ps(sn, cs, swap);
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  // cos φ is negated in quadrants 1, 2; sin θ = −sin φ is negated back in quadrants 2, 3.
  const __m256i cos_sign = _mm256_and_si256(_mm256_slli_epi32(_mm256_add_epi32(q, _mm256_set1_epi32(1)), 30), sign);
  const __m256i sin_sign = _mm256_andnot_si256(_mm256_slli_epi32(q, 30), sign);
  cos_t = _mm256_xor_ps(c0, _mm256_castsi256_ps(cos_sign));
  sin_t = _mm256_xor_ps(s0, _mm256_castsi256_ps(sin_sign));
}

#if PNN_DETAIL_RNG_AVX512
/// `philox_avx2` on AVX-512 registers: N groups of sixteen blocks (group g: ctr + 16g ..
/// ctr + 16g + 15), word w of group g in x[g][w]; the same even/odd halves.
template <std::size_t N>
PNN_ALWAYS_INLINE void philox_avx512(std::array<std::uint32_t, 2> key, std::uint64_t ctr, std::uint64_t stream,
                                     __m512i (&x)[N][4]) noexcept {
  const __m512i c2 = _mm512_set1_epi32(static_cast<int>(lo32(stream)));
  const __m512i c3 = _mm512_set1_epi32(static_cast<int>(hi32(stream)));
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i e[N][4], o[N][4];
  PNN_UNROLL
  for (std::size_t g = 0; g < N; ++g) {
    const std::uint64_t cg = ctr + 16 * g;
    const __m512i base = _mm512_set1_epi32(static_cast<int>(lo32(cg)));
    const __m512i c0 = _mm512_add_epi32(base, lanes);
    // Carry into the high word where the low word wrapped (unsigned c0 < base).
    const __mmask16 wrapped = _mm512_cmplt_epu32_mask(c0, base);
    const __m512i hi = _mm512_set1_epi32(static_cast<int>(hi32(cg)));
    const __m512i c1 = _mm512_mask_add_epi32(hi, wrapped, hi, _mm512_set1_epi32(1));
    e[g][0] = c0;
    e[g][1] = c1;
    e[g][2] = c2;
    e[g][3] = c3;
    o[g][0] = _mm512_srli_epi64(c0, 32);
    o[g][1] = _mm512_srli_epi64(c1, 32);
    o[g][2] = c2;
    o[g][3] = c3;
  }
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(philox4x32::multiplier0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(philox4x32::multiplier1));
  std::uint32_t k0 = key[0];
  std::uint32_t k1 = key[1];
  PNN_UNROLL
  for (int r = 0; r < philox4x32::rounds; ++r) {
    if (r != 0) {
      k0 += philox4x32::weyl0;
      k1 += philox4x32::weyl1;
    }
    const __m512i kk0 = _mm512_set1_epi32(static_cast<int>(k0));
    const __m512i kk1 = _mm512_set1_epi32(static_cast<int>(k1));
    PNN_UNROLL
    for (std::size_t g = 0; g < N; ++g) {
      const __m512i pe0 = _mm512_mul_epu32(e[g][0], m0);
      const __m512i pe1 = _mm512_mul_epu32(e[g][2], m1);
      const __m512i po0 = _mm512_mul_epu32(o[g][0], m0);
      const __m512i po1 = _mm512_mul_epu32(o[g][2], m1);
      // xor of three operands in one instruction (0x96: a ^ b ^ c)
      e[g][0] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(pe1, 32), e[g][1], kk0, 0x96);
      e[g][1] = pe1;
      e[g][2] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(pe0, 32), e[g][3], kk1, 0x96);
      e[g][3] = pe0;
      o[g][0] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(po1, 32), o[g][1], kk0, 0x96);
      o[g][1] = po1;
      o[g][2] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(po0, 32), o[g][3], kk1, 0x96);
      o[g][3] = po0;
    }
  }
  PNN_UNROLL
  for (std::size_t g = 0; g < N; ++g)
    PNN_UNROLL
    for (std::size_t w = 0; w < 4; ++w)
      x[g][w] = _mm512_mask_blend_epi32(__mmask16(0xAAAA), e[g][w], _mm512_slli_epi64(o[g][w], 32));
}

/// 4×16 transpose to block-major order (a0 b0 c0 d0 a1 b1 ...): 4×4 transposes inside each
/// 128-bit lane, then a 4×4 transpose of the lanes.
PNN_ALWAYS_INLINE void transpose4x16(__m512 a, __m512 b, __m512 c, __m512 d, __m512 (&o)[4]) noexcept {
  const __m512 t0 = _mm512_unpacklo_ps(a, b);
  const __m512 t1 = _mm512_unpackhi_ps(a, b);
  const __m512 t2 = _mm512_unpacklo_ps(c, d);
  const __m512 t3 = _mm512_unpackhi_ps(c, d);
  const __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44);  // blocks 0 | 4 | 8 | 12
  const __m512 u1 = _mm512_shuffle_ps(t0, t2, 0xEE);  // blocks 1 | 5 | 9 | 13
  const __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44);
  const __m512 u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
  const __m512 v0 = _mm512_shuffle_f32x4(u0, u1, 0x44);
  const __m512 v1 = _mm512_shuffle_f32x4(u2, u3, 0x44);
  const __m512 v2 = _mm512_shuffle_f32x4(u0, u1, 0xEE);
  const __m512 v3 = _mm512_shuffle_f32x4(u2, u3, 0xEE);
  o[0] = _mm512_shuffle_f32x4(v0, v1, 0x88);
  o[1] = _mm512_shuffle_f32x4(v0, v1, 0xDD);
  o[2] = _mm512_shuffle_f32x4(v2, v3, 0x88);
  o[3] = _mm512_shuffle_f32x4(v2, v3, 0xDD);
}

/// Sixteen normals z stored as shift + scale·z, or added as scale·z (`Add`).
template <bool Add>
PNN_ALWAYS_INLINE void store_normals16(float* d, __m512 z, __m512 scale, float shift) noexcept {
  const __m512 base = Add ? _mm512_loadu_ps(d) : _mm512_set1_ps(shift);
  _mm512_storeu_ps(d, _mm512_fmadd_ps(scale, z, base));
}

/// `box_muller_radius8` on sixteen lanes (the same operations).
PNN_ALWAYS_INLINE __m512 box_muller_radius16(__m512i w) noexcept {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 u = _mm512_sub_ps(_mm512_set1_ps(2.0f), _mm512_castsi512_ps(_mm512_or_si512(
                                                          _mm512_srli_epi32(w, 9), _mm512_set1_epi32(0x3F800000))));
  const __m512i bits = _mm512_castps_si512(u);
  __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127));
  __m512 m = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)), _mm512_set1_epi32(0x3F800000)));
  const __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
  m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
  e = _mm512_mask_add_epi32(e, big, e, _mm512_set1_epi32(1));
  const __m512 t = _mm512_sub_ps(m, one);
  __m512 q = _mm512_fmadd_ps(t, _mm512_set1_ps(8.512234464e-02f), _mm512_set1_ps(-1.425844454e-01f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.498023681e-01f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.657972454e-01f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.995582851e-01f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-2.500127191e-01f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(3.333419429e-01f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-4.999999732e-01f));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(9.999999741e-01f));
  const __m512 ef = _mm512_cvtepi32_ps(e);
  __m512 ln_u = _mm512_fmadd_ps(ef, _mm512_set1_ps(0.693145752f), _mm512_mul_ps(t, q));
  ln_u = _mm512_fmadd_ps(ef, _mm512_set1_ps(1.42860682e-06f), ln_u);
  return _mm512_sqrt_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), ln_u), _mm512_setzero_ps()));
}

/// `box_muller_angle8` on sixteen lanes (the same operations).
PNN_ALWAYS_INLINE void box_muller_angle16(__m512i w, __m512& cos_t, __m512& sin_t) noexcept {
  const __m512i q = _mm512_srli_epi32(_mm512_add_epi32(w, _mm512_set1_epi32(1 << 29)), 30);
  const __m512i rho_int = _mm512_srai_epi32(_mm512_slli_epi32(w, 2), 11);
  const __m512 rho = _mm512_mul_ps(_mm512_cvtepi32_ps(rho_int), _mm512_set1_ps(7.49014057e-07f));
  const __m512 r2 = _mm512_mul_ps(rho, rho);
  __m512 sp = _mm512_fmadd_ps(r2, _mm512_set1_ps(1.0f / 362880), _mm512_set1_ps(-1.0f / 5040));
  sp = _mm512_fmadd_ps(sp, r2, _mm512_set1_ps(1.0f / 120));
  sp = _mm512_fmadd_ps(sp, r2, _mm512_set1_ps(-1.0f / 6));
  sp = _mm512_mul_ps(sp, r2);
  const __m512 sn = _mm512_fmadd_ps(sp, rho, rho);
  __m512 cp = _mm512_fmadd_ps(r2, _mm512_set1_ps(-1.0f / 3628800), _mm512_set1_ps(1.0f / 40320));
  cp = _mm512_fmadd_ps(cp, r2, _mm512_set1_ps(-1.0f / 720));
  cp = _mm512_fmadd_ps(cp, r2, _mm512_set1_ps(1.0f / 24));
  cp = _mm512_fmadd_ps(cp, r2, _mm512_set1_ps(-0.5f));
  const __m512 cs = _mm512_fmadd_ps(cp, r2, _mm512_set1_ps(1.0f));
  const __mmask16 swap = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
  const __m512 c0 = _mm512_mask_blend_ps(swap, cs, sn);
  const __m512 s0 = _mm512_mask_blend_ps(swap, sn, cs);
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512i cos_sign = _mm512_and_si512(_mm512_slli_epi32(_mm512_add_epi32(q, _mm512_set1_epi32(1)), 30), sign);
  const __m512i sin_sign = _mm512_andnot_si512(_mm512_slli_epi32(q, 30), sign);
  cos_t = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(c0), cos_sign));
  sin_t = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s0), sin_sign));
}
#endif  // PNN_DETAIL_RNG_AVX512
#endif  // PNN_DETAIL_RNG_AVX2

/// G blocks from ctr, word-major: rows[w * G + b]. `rows` is 32-byte aligned.
template <class Arch, std::size_t G>
PNN_ALWAYS_INLINE void philox_rows(std::array<std::uint32_t, 2> key, std::uint64_t ctr, std::uint64_t stream,
                                   std::uint32_t* rows) noexcept {
#if PNN_DETAIL_RNG_AVX512
  if constexpr (rng_avx512<Arch> && G % 16 == 0) {
    __m512i x[G / 16][4];
    philox_avx512<G / 16>(key, ctr, stream, x);
    for (std::size_t j = 0; j < G / 16; ++j)
      for (std::size_t k = 0; k < 4; ++k)
        _mm512_storeu_si512(reinterpret_cast<void*>(rows + k * G + 16 * j), x[j][k]);
    return;
  }
#endif
#if PNN_DETAIL_RNG_AVX2
  if constexpr (rng_avx2<Arch>) {
    __m256i x[G / 8][4];
    philox_avx2<G / 8>(key, ctr, stream, x);
    for (std::size_t j = 0; j < G / 8; ++j)
      for (std::size_t k = 0; k < 4; ++k)
        _mm256_store_si256(reinterpret_cast<__m256i*>(rows + k * G + 8 * j), x[j][k]);
    return;
  }
#endif
  for (std::size_t j = 0; j < G; j += 8) philox8_portable(key, ctr + j, stream, rows + j, G);
}

/// G blocks from ctr, block-major (the order scalar draws use): words[4 b + w].
template <class Arch, std::size_t G>
PNN_ALWAYS_INLINE void philox_words(std::array<std::uint32_t, 2> key, std::uint64_t ctr, std::uint64_t stream,
                                    std::uint32_t* words) noexcept {
#if PNN_DETAIL_RNG_AVX512
  if constexpr (rng_avx512<Arch> && G % 16 == 0) {
    __m512i x[G / 16][4];
    philox_avx512<G / 16>(key, ctr, stream, x);
    for (std::size_t j = 0; j < G / 16; ++j) {
      __m512 o[4];
      transpose4x16(_mm512_castsi512_ps(x[j][0]), _mm512_castsi512_ps(x[j][1]), _mm512_castsi512_ps(x[j][2]),
                    _mm512_castsi512_ps(x[j][3]), o);
      for (std::size_t k = 0; k < 4; ++k) _mm512_storeu_ps(reinterpret_cast<float*>(words + 64 * j + 16 * k), o[k]);
    }
    return;
  }
#endif
#if PNN_DETAIL_RNG_AVX2
  if constexpr (rng_avx2<Arch>) {
    __m256i x[G / 8][4];
    philox_avx2<G / 8>(key, ctr, stream, x);
    for (std::size_t j = 0; j < G / 8; ++j) {
      __m256 o[4];
      transpose4x8(_mm256_castsi256_ps(x[j][0]), _mm256_castsi256_ps(x[j][1]), _mm256_castsi256_ps(x[j][2]),
                   _mm256_castsi256_ps(x[j][3]), o);
      for (std::size_t k = 0; k < 4; ++k)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + 32 * j + 8 * k), _mm256_castps_si256(o[k]));
    }
    return;
  }
#endif
  for (std::size_t j = 0; j < G; j += 8) {
    for (std::size_t b = 0; b < 8; ++b) {
      const auto w = philox4x32::generate(philox_counter(ctr + j + b, stream), key);
      for (std::size_t k = 0; k < 4; ++k) words[4 * (j + b) + k] = w[k];
    }
  }
}

// ---- ARS blocks -------------------------------------------------------------------------------

using ars_schedule = std::array<std::array<std::uint32_t, 4>, ars4x32::rounds + 1>;

/// Where a bulk fill draws its blocks from: the stream's keys, stream id and engine. ARS's
/// round keys are expanded here, once per fill, not once per group of blocks.
struct block_stream {
  std::array<std::uint32_t, 2> key;  ///< Philox key of the seed
  std::uint64_t stream;
  rng_engine engine;
  ars_schedule rk;  ///< ARS round keys of the seed (engine == ars only)
};
inline block_stream stream_of(const rng& g) noexcept {
  block_stream s{philox_key(g.seed_value()), g.stream(), g.engine(), {}};
  if (s.engine == rng_engine::ars) s.rk = ars4x32::round_keys(ars_key(g.seed_value()));
  return s;
}

#if PNN_DETAIL_RNG_AESNI
/// ARS of N consecutive blocks from ctr, one block per register (AES-NI). The N chains are
/// independent, so the rounds' four-cycle latency is hidden from N ≈ 8 on.
template <std::size_t N>
PNN_ALWAYS_INLINE void ars_aesni(const ars_schedule& rk, std::uint64_t ctr, std::uint64_t stream,
                                 __m128i (&x)[N]) noexcept {
  __m128i k[ars4x32::rounds + 1];
  for (std::size_t r = 0; r <= ars4x32::rounds; ++r) k[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rk[r].data()));
  PNN_UNROLL
  for (std::size_t b = 0; b < N; ++b)
    x[b] = _mm_xor_si128(_mm_set_epi64x(static_cast<long long>(stream), static_cast<long long>(ctr + b)), k[0]);
  PNN_UNROLL
  for (std::size_t r = 1; r < ars4x32::rounds; ++r)
    PNN_UNROLL
    for (std::size_t b = 0; b < N; ++b) x[b] = _mm_aesenc_si128(x[b], k[r]);
  PNN_UNROLL
  for (std::size_t b = 0; b < N; ++b) x[b] = _mm_aesenclast_si128(x[b], k[ars4x32::rounds]);
}
#endif

#if PNN_DETAIL_RNG_VAES512
/// The round keys of `rk` broadcast to all four 128-bit lanes.
PNN_ALWAYS_INLINE void ars_vaes512_keys(const ars_schedule& rk, __m512i (&k)[ars4x32::rounds + 1]) noexcept {
  for (std::size_t r = 0; r <= ars4x32::rounds; ++r)
    k[r] = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rk[r].data())));
}

/// The counters (block, stream) of blocks ctr .. ctr + 3, one per 128-bit lane as two 64-bit
/// words, so a block's carry into the high word of its counter is free.
PNN_ALWAYS_INLINE __m512i ars_vaes512_counters(std::uint64_t ctr, std::uint64_t stream) noexcept {
  const auto st = static_cast<long long>(stream);
  const auto c = static_cast<long long>(ctr);
  return _mm512_set_epi64(st, c + 3, st, c + 2, st, c + 1, st, c);
}

/// ARS of the 4N blocks whose counters start at `cj` (which moves on by 4N blocks), four
/// blocks per register (VAES): register j holds blocks 4j .. 4j + 3, each 128-bit lane one
/// block, so its sixteen words are already in the order scalar draws use.
template <std::size_t N>
PNN_ALWAYS_INLINE void ars_vaes512_blocks(const __m512i (&k)[ars4x32::rounds + 1], __m512i& cj,
                                          __m512i (&x)[N]) noexcept {
  const __m512i step = _mm512_set_epi64(0, 4, 0, 4, 0, 4, 0, 4);
  PNN_UNROLL
  for (std::size_t j = 0; j < N; ++j) {
    x[j] = _mm512_xor_si512(cj, k[0]);
    cj = _mm512_add_epi64(cj, step);
  }
  PNN_UNROLL
  for (std::size_t r = 1; r < ars4x32::rounds; ++r)
    PNN_UNROLL
    for (std::size_t j = 0; j < N; ++j) x[j] = _mm512_aesenc_epi128(x[j], k[r]);
  PNN_UNROLL
  for (std::size_t j = 0; j < N; ++j) x[j] = _mm512_aesenclast_epi128(x[j], k[ars4x32::rounds]);
}

/// ARS of 4N consecutive blocks from ctr (see ars_vaes512_blocks).
template <std::size_t N>
PNN_ALWAYS_INLINE void ars_vaes512(const ars_schedule& rk, std::uint64_t ctr, std::uint64_t stream,
                                   __m512i (&x)[N]) noexcept {
  __m512i k[ars4x32::rounds + 1];
  ars_vaes512_keys(rk, k);
  __m512i cj = ars_vaes512_counters(ctr, stream);
  ars_vaes512_blocks<N>(k, cj, x);
}

/// lo + scale·u of sixteen words, u ∈ (0, 1] as `u01f`.
PNN_ALWAYS_INLINE __m512 u01_vaes512(__m512i x, __m512 vlo, __m512 vscale) noexcept {
  const __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_srli_epi32(x, 9), _mm512_set1_epi32(0x3F800000)));
  return _mm512_add_ps(vlo, _mm512_mul_ps(vscale, _mm512_sub_ps(_mm512_set1_ps(2.0f), m)));
}

/// 128·runs uniform floats from ARS blocks ctr, ctr + 1, … in one loop: the round keys stay in
/// registers from run to run (a call per group reloads them), eight registers in flight to
/// cover the AES rounds' latency on two pipes.
inline void ars_uniform_runs_vaes512(const block_stream& s, std::uint64_t ctr, float* dst, std::size_t runs,
                                     float lo, float scale) noexcept {
  constexpr std::size_t N = 8;
  __m512i k[ars4x32::rounds + 1];
  ars_vaes512_keys(s.rk, k);
  __m512i cj = ars_vaes512_counters(ctr, s.stream);
  const __m512 vlo = _mm512_set1_ps(lo), vscale = _mm512_set1_ps(scale);
  for (std::size_t r = 0; r < runs; ++r, dst += 16 * N) {
    __m512i x[N];
    ars_vaes512_blocks<N>(k, cj, x);
    PNN_UNROLL
    for (std::size_t j = 0; j < N; ++j) _mm512_storeu_ps(dst + 16 * j, u01_vaes512(x[j], vlo, vscale));
  }
}
#endif

/// G ARS blocks from ctr, block-major: words[4 b + w].
template <class Arch, std::size_t G>
PNN_ALWAYS_INLINE void ars_words(const ars_schedule& rk, std::uint64_t ctr, std::uint64_t stream,
                                 std::uint32_t* words) noexcept {
#if PNN_DETAIL_RNG_VAES512
  if constexpr (rng_avx512<Arch> && G % 4 == 0) {
    __m512i x[G / 4];
    ars_vaes512<G / 4>(rk, ctr, stream, x);
    for (std::size_t j = 0; j < G / 4; ++j) _mm512_storeu_si512(reinterpret_cast<void*>(words + 16 * j), x[j]);
    return;
  }
#endif
#if PNN_DETAIL_RNG_AESNI
  if constexpr (!simd::is_scalar_arch<Arch> && G % 8 == 0) {
    for (std::size_t j = 0; j < G; j += 8) {
      __m128i x[8];
      ars_aesni<8>(rk, ctr + j, stream, x);
      for (std::size_t b = 0; b < 8; ++b) _mm_storeu_si128(reinterpret_cast<__m128i*>(words + 4 * (j + b)), x[b]);
    }
    return;
  }
#endif
  for (std::size_t b = 0; b < G; ++b) {
    const auto w = ars4x32::encrypt(philox_counter(ctr + b, stream), rk);
    for (std::size_t k = 0; k < 4; ++k) words[4 * b + k] = w[k];
  }
}

/// G blocks of either engine from ctr, block-major: words[4 b + w].
template <class Arch, std::size_t G>
PNN_ALWAYS_INLINE void block_words(const block_stream& s, std::uint64_t ctr, std::uint32_t* words) noexcept {
  if (s.engine == rng_engine::ars) ars_words<Arch, G>(s.rk, ctr, s.stream, words);
  else philox_words<Arch, G>(s.key, ctr, s.stream, words);
}

/// G blocks of either engine from ctr, word-major: rows[w * G + b]. `rows` is 32-byte aligned.
template <class Arch, std::size_t G>
PNN_ALWAYS_INLINE void block_rows(const block_stream& s, std::uint64_t ctr, std::uint32_t* rows) noexcept {
  if (s.engine == rng_engine::ars) {
    alignas(64) std::uint32_t words[4 * G];
    ars_words<Arch, G>(s.rk, ctr, s.stream, words);
    for (std::size_t b = 0; b < G; ++b)
      for (std::size_t w = 0; w < 4; ++w) rows[w * G + b] = words[4 * b + w];
  } else {
    philox_rows<Arch, G>(s.key, ctr, s.stream, rows);
  }
}

// ---- the math each architecture spells differently ----------------------------------------

template <class T>
PNN_ALWAYS_INLINE simd::scalar_pack<T> log_of(simd::scalar_pack<T> x) noexcept { return {std::log(x.v)}; }
template <class T>
PNN_ALWAYS_INLINE simd::scalar_pack<T> sqrt_of(simd::scalar_pack<T> x) noexcept { return {std::sqrt(x.v)}; }
template <class T>
PNN_ALWAYS_INLINE void sincos_of(simd::scalar_pack<T> x, simd::scalar_pack<T>& s, simd::scalar_pack<T>& c) noexcept {
  s = {std::sin(x.v)};
  c = {std::cos(x.v)};
}
#if !defined(PNN_NO_SIMD)
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> log_of(const xsimd::batch<T, A>& x) noexcept { return xsimd::log(x); }
template <class T, class A>
PNN_ALWAYS_INLINE xsimd::batch<T, A> sqrt_of(const xsimd::batch<T, A>& x) noexcept { return xsimd::sqrt(x); }
template <class T, class A>
PNN_ALWAYS_INLINE void sincos_of(const xsimd::batch<T, A>& x, xsimd::batch<T, A>& s, xsimd::batch<T, A>& c) noexcept {
  auto sc = xsimd::sincos(x);
  s = sc.first;
  c = sc.second;
}
#endif

/// `u01f` on a register of words at p (the same bits as the scalar conversion).
template <class Arch>
PNN_ALWAYS_INLINE simd::pack<float, Arch> u01_pack(const std::uint32_t* p) noexcept {
#if !defined(PNN_NO_SIMD)
  if constexpr (!simd::is_scalar_arch<Arch>) {
    using ub = xsimd::batch<std::uint32_t, Arch>;
    using fb = xsimd::batch<float, Arch>;
    const ub mantissa = (ub::load_unaligned(p) >> 9) | ub(0x3F800000u);
    return fb(2.0f) - xsimd::bitwise_cast<fb>(mantissa);
  } else
#endif
  {
    return {u01f(*p)};
  }
}

/// (0, 1) from one word, for the Poisson samplers: (w + ½)·2⁻³².
constexpr double u01_open(std::uint32_t w) noexcept { return (static_cast<double>(w) + 0.5) * 0x1p-32; }

/// Runs `group(ctr, dst)` over whole groups of `per_group` samples, then once more on a
/// scratch buffer for the tail, and moves `g` past the ceil(n / per_block) blocks used.
/// With `CopyIn` the tail buffer first receives the caller's values (for in-place updates).
template <class T, std::size_t PerGroup, std::size_t PerBlock, bool CopyIn, class Group>
PNN_ALWAYS_INLINE void for_each_group(rng& g, T* out, std::size_t n, Group&& group) {
  if (n == 0) return;
  const std::uint64_t c0 = g.counter();
  std::uint64_t c = c0;
  std::size_t i = 0;
  for (; n - i >= PerGroup; i += PerGroup, c += PerGroup / PerBlock) group(c, out + i);
  if (i < n) {
    alignas(64) T tmp[PerGroup] = {};
    if constexpr (CopyIn) std::copy(out + i, out + n, tmp);
    group(c, tmp);
    std::copy(tmp, tmp + (n - i), out + i);
  }
  g.set_counter(c0 + static_cast<std::uint64_t>(n / PerBlock) + (n % PerBlock != 0 ? 1u : 0u));
}

// ---- per-group kernels ------------------------------------------------------------------------

/// 4G uniform floats lo + scale·u, u ∈ (0, 1]: sample 4b + w from word w of block b.
template <class Arch>
PNN_ALWAYS_INLINE void uniform_group(const block_stream& s, std::uint64_t ctr, float* dst, float lo,
                                     float scale) noexcept {
  constexpr std::size_t G = rng_group<Arch>;
  using P = simd::pack<float, Arch>;
  const auto key = s.key;
  const std::uint64_t stream = s.stream;
  if (s.engine == rng_engine::ars) {
#if PNN_DETAIL_RNG_VAES512
    if constexpr (rng_avx512<Arch> && G % 4 == 0) {
      // ARS blocks come out in block order: convert and store, no transpose.
      __m512i x[G / 4];
      ars_vaes512<G / 4>(s.rk, ctr, stream, x);
      const __m512 vlo = _mm512_set1_ps(lo), vscale = _mm512_set1_ps(scale);
      PNN_UNROLL
      for (std::size_t j = 0; j < G / 4; ++j) _mm512_storeu_ps(dst + 16 * j, u01_vaes512(x[j], vlo, vscale));
      return;
    }
#endif
    alignas(64) std::uint32_t words[4 * G];
    ars_words<Arch, G>(s.rk, ctr, stream, words);
    for (std::size_t i = 0; i < 4 * G; i += P::size)
      (P(lo) + P(scale) * u01_pack<Arch>(words + i)).store_unaligned(dst + i);
    return;
  }
#if PNN_DETAIL_RNG_AVX512
  if constexpr (rng_avx512<Arch> && G % 16 == 0) {
    __m512i x[G / 16][4];
    philox_avx512<G / 16>(key, ctr, stream, x);
    const __m512 vlo = _mm512_set1_ps(lo), vscale = _mm512_set1_ps(scale), two = _mm512_set1_ps(2.0f);
    const __m512i exponent = _mm512_set1_epi32(0x3F800000);
    PNN_UNROLL
    for (std::size_t j = 0; j < G / 16; ++j) {
      __m512 u[4];
      PNN_UNROLL
      for (std::size_t w = 0; w < 4; ++w) {
        const __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_srli_epi32(x[j][w], 9), exponent));
        u[w] = _mm512_add_ps(vlo, _mm512_mul_ps(vscale, _mm512_sub_ps(two, m)));
      }
      __m512 o[4];
      transpose4x16(u[0], u[1], u[2], u[3], o);
      PNN_UNROLL
      for (std::size_t k = 0; k < 4; ++k) _mm512_storeu_ps(dst + 64 * j + 16 * k, o[k]);
    }
    return;
  }
#endif
#if PNN_DETAIL_RNG_AVX2
  if constexpr (rng_avx2<Arch>) {
    // Converted in registers, then transposed to block order: no round trip through memory.
    __m256i x[G / 8][4];
    philox_avx2<G / 8>(key, ctr, stream, x);
    const __m256 vlo = _mm256_set1_ps(lo), vscale = _mm256_set1_ps(scale), two = _mm256_set1_ps(2.0f);
    const __m256i exponent = _mm256_set1_epi32(0x3F800000);
    PNN_UNROLL
    for (std::size_t j = 0; j < G / 8; ++j) {
      __m256 u[4];
      PNN_UNROLL
      for (std::size_t w = 0; w < 4; ++w) {
        const __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_srli_epi32(x[j][w], 9), exponent));
        u[w] = _mm256_add_ps(vlo, _mm256_mul_ps(vscale, _mm256_sub_ps(two, m)));
      }
      __m256 o[4];
      transpose4x8(u[0], u[1], u[2], u[3], o);
      PNN_UNROLL
      for (std::size_t k = 0; k < 4; ++k) _mm256_storeu_ps(dst + 32 * j + 8 * k, o[k]);
    }
    return;
  }
#endif
  alignas(64) std::uint32_t words[4 * G];
  philox_words<Arch, G>(key, ctr, stream, words);
  for (std::size_t i = 0; i < 4 * G; i += P::size) (P(lo) + P(scale) * u01_pack<Arch>(words + i)).store_unaligned(dst + i);
}

/// 2G uniform doubles: sample 2b + h from words 2h, 2h + 1 of block b.
template <class Arch>
PNN_ALWAYS_INLINE void uniform_group(const block_stream& s, std::uint64_t ctr, double* dst, double lo,
                                     double scale) noexcept {
  constexpr std::size_t G = rng_group<Arch>;
  alignas(64) std::uint32_t words[4 * G];
  block_words<Arch, G>(s, ctr, words);
  for (std::size_t i = 0; i < 2 * G; ++i) dst[i] = lo + scale * u01d(words[2 * i], words[2 * i + 1]);
}

/// 4G normal floats: block b gives r·cos θ, r·sin θ from words (0, 1) and again from (2, 3),
/// r = √(−2 ln u₀), θ = 2π u₁. `Add`: dst += scale·z; otherwise dst = shift + scale·z.
template <class Arch, bool Add>
PNN_ALWAYS_INLINE void normal_group(const block_stream& s, std::uint64_t ctr, float* dst, float shift,
                                    float scale) noexcept {
  constexpr std::size_t G = rng_group<Arch>;
  using P = simd::pack<float, Arch>;
  const bool ars = s.engine == rng_engine::ars;
#if PNN_DETAIL_RNG_VAES512
  if constexpr (rng_avx512<Arch> && G % 8 == 0) {
    if (ars) {
      // Blocks come in block order (w0 w1 w2 w3 per block): gather the radius words (even
      // lanes) and angle words (odd lanes) of eight blocks, and interleave r cos θ, r sin θ back.
      __m512i x[G / 4];
      ars_vaes512<G / 4>(s.rk, ctr, s.stream, x);
      const __m512 sc = _mm512_set1_ps(scale);
      const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
      const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
      PNN_UNROLL
      for (std::size_t j = 0; j < G / 4; j += 2) {
        const __m512 r = box_muller_radius16(_mm512_permutex2var_epi32(x[j], even, x[j + 1]));
        __m512 c, sn;
        box_muller_angle16(_mm512_permutex2var_epi32(x[j], odd, x[j + 1]), c, sn);
        const __m512 rc = _mm512_mul_ps(r, c), rs = _mm512_mul_ps(r, sn);
        const __m512 o[2] = {_mm512_permutex2var_ps(rc, first, rs), _mm512_permutex2var_ps(rc, second, rs)};
        store_normals16<Add>(dst + 16 * j, o[0], sc, shift);
        store_normals16<Add>(dst + 16 * j + 16, o[1], sc, shift);
      }
      return;
    }
  }
#endif
  // Without VAES, ARS blocks go through memory once, word-major, and then take the same
  // register Box–Muller as Philox's.
  alignas(64) std::uint32_t rows[4 * G];
  if (ars) block_rows<Arch, G>(s, ctr, rows);
#if PNN_DETAIL_RNG_AVX512
  if constexpr (rng_avx512<Arch> && G % 16 == 0) {
    // All in registers, sixteen blocks a register.
    const __m512 sc = _mm512_set1_ps(scale);
    __m512i x[G / 16][4];
    if (ars) {
      for (std::size_t j = 0; j < G / 16; ++j)
        for (std::size_t k = 0; k < 4; ++k) x[j][k] = _mm512_load_si512(rows + k * G + 16 * j);
    } else {
      philox_avx512<G / 16>(s.key, ctr, s.stream, x);
    }
    PNN_UNROLL
    for (std::size_t j = 0; j < G / 16; ++j) {
      __m512 z[4];
      PNN_UNROLL
      for (std::size_t h = 0; h < 4; h += 2) {
        const __m512 r = box_muller_radius16(x[j][h]);
        __m512 c, sn;
        box_muller_angle16(x[j][h + 1], c, sn);
        z[h] = _mm512_mul_ps(r, c);
        z[h + 1] = _mm512_mul_ps(r, sn);
      }
      __m512 o[4];
      transpose4x16(z[0], z[1], z[2], z[3], o);
      PNN_UNROLL
      for (std::size_t k = 0; k < 4; ++k) store_normals16<Add>(dst + 64 * j + 16 * k, o[k], sc, shift);
    }
    return;
  }
#endif
#if PNN_DETAIL_RNG_AVX2
  if constexpr (rng_avx2<Arch>) {
    // All in registers, eight blocks at a time (also under AVX-512, where a group is 16 blocks:
    // the register path beats generic log/sincos by far): Philox, Box–Muller, transpose to
    // block order, scale, store.
    const __m256 sc = _mm256_set1_ps(scale);
    __m256i x[G / 8][4];
    if (ars) {
      for (std::size_t j = 0; j < G / 8; ++j)
        for (std::size_t k = 0; k < 4; ++k)
          x[j][k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(rows + k * G + 8 * j));
    } else {
      philox_avx2<G / 8>(s.key, ctr, s.stream, x);
    }
    PNN_UNROLL
    for (std::size_t j = 0; j < G; j += 8) {
      __m256 z[4];
      PNN_UNROLL
      for (std::size_t h = 0; h < 4; h += 2) {
        const __m256 r = box_muller_radius8(x[j / 8][h]);
        __m256 c, sn;
        box_muller_angle8(x[j / 8][h + 1], c, sn);
        z[h] = _mm256_mul_ps(r, c);
        z[h + 1] = _mm256_mul_ps(r, sn);
      }
      __m256 o[4];
      transpose4x8(z[0], z[1], z[2], z[3], o);
      float* d = dst + 4 * j;
      for (std::size_t k = 0; k < 4; ++k) {
        const __m256 base = Add ? _mm256_loadu_ps(d + 8 * k) : _mm256_set1_ps(shift);
        _mm256_storeu_ps(d + 8 * k, fmadd8(sc, o[k], base));
      }
    }
    return;
  }
#endif
  if (!ars) philox_rows<Arch, G>(s.key, ctr, s.stream, rows);
  alignas(64) float z[4 * G];
  for (std::size_t j = 0; j < G; j += P::size) {
    for (std::size_t h = 0; h < 4; h += 2) {
      const P r = sqrt_of(P(-2.0f) * log_of(u01_pack<Arch>(rows + h * G + j)));
      P sn, c;
      sincos_of(P(two_pi_f) * u01_pack<Arch>(rows + (h + 1) * G + j), sn, c);
      (r * c).store_aligned(z + h * G + j);
      (r * sn).store_aligned(z + (h + 1) * G + j);
    }
  }
  for (std::size_t b = 0; b < G; ++b)
    for (std::size_t w = 0; w < 4; ++w) {
      float& d = dst[4 * b + w];
      d = (Add ? d : shift) + scale * z[w * G + b];
    }
}

/// 2G normal doubles: block b gives r·cos θ, r·sin θ from the 53-bit uniforms of words (0, 1)
/// and (2, 3).
template <class Arch, bool Add>
PNN_ALWAYS_INLINE void normal_group(const block_stream& src, std::uint64_t ctr, double* dst, double shift,
                                    double scale) noexcept {
  constexpr std::size_t G = rng_group<Arch>;
  using P = simd::pack<double, Arch>;
  alignas(64) std::uint32_t words[4 * G];
  block_words<Arch, G>(src, ctr, words);
  alignas(64) double u[G];
  alignas(64) double t[G];
  for (std::size_t b = 0; b < G; ++b) {
    u[b] = u01d(words[4 * b], words[4 * b + 1]);
    t[b] = u01d(words[4 * b + 2], words[4 * b + 3]);
  }
  for (std::size_t j = 0; j < G; j += P::size) {
    const P r = sqrt_of(P(-2.0) * log_of(P::load_aligned(u + j)));
    P s, c;
    sincos_of(P(two_pi_d) * P::load_aligned(t + j), s, c);
    (r * c).store_aligned(u + j);
    (r * s).store_aligned(t + j);
  }
  for (std::size_t b = 0; b < G; ++b) {
    double& d0 = dst[2 * b];
    double& d1 = dst[2 * b + 1];
    d0 = (Add ? d0 : shift) + scale * u[b];
    d1 = (Add ? d1 : shift) + scale * t[b];
  }
}

/// log k! for integral k ≥ 0: a table below 10, Stirling's series with three corrections above
/// (error < 1e-12). Our own, because std::lgamma writes the global `signgam` (a data race).
inline double log_factorial(double k) noexcept {
  constexpr double table[10] = {0.0, 0.0, 0.693147180559945, 1.7917594692280554, 3.178053830347945,
                                4.787491742782047, 6.579251212010102, 8.525161361065415, 10.604602902745249,
                                12.801827480081467};
  if (k < 10.0) return table[static_cast<int>(k)];
  const double x = k + 1.0;
  const double r = 1.0 / x;
  const double r2 = r * r;
  return (x - 0.5) * std::log(x) - x + 0.91893853320467274178 + r * (1.0 / 12 - r2 * (1.0 / 360 - r2 / 1260));
}

/// Per-call constants of the Poisson sampler for one λ.
struct poisson_plan {
  double lambda = 0;
  bool rejection = false;  // PTRS for λ ≥ 10, inversion below
  double exp_neg = 1;      // e^−λ (inversion)
  double log_lambda = 0, a = 0, b = 0, vr = 0, log_invalpha = 0;

  explicit poisson_plan(double lam) noexcept : lambda(lam), rejection(lam >= 10.0) {
    if (!rejection) {
      exp_neg = std::exp(-lam);
      return;
    }
    // Hörmann, "The transformed rejection method for generating Poisson random variables",
    // Insurance: Mathematics and Economics 12 (1993), algorithm PTRS.
    const double sl = std::sqrt(lam);
    log_lambda = std::log(lam);
    b = 0.931 + 2.53 * sl;
    a = -0.059 + 0.02483 * b;
    log_invalpha = std::log(1.1239 + 1.1328 / (b - 3.4));
    vr = 0.9277 - 3.6224 / (b - 2.0);
  }

  /// Inversion: walk the CDF from 0 until it reaches u ∈ (0, 1]; one uniform, exact.
  double invert(double u) const noexcept {
    double k = 0;
    double p = exp_neg;
    double f = p;
    while (u > f) {
      k += 1.0;
      p *= lambda / k;
      const double next = f + p;
      if (next == f) break;  // rounding left the CDF just below u ≈ 1: stop at the tail
      f = next;
    }
    return k;
  }

  /// One PTRS attempt with u, v ∈ (0, 1); true and k on acceptance.
  bool attempt(double u, double v, double& k) const noexcept {
    const double us = 0.5 - std::fabs(u - 0.5);
    const double kk = std::floor((2.0 * a / us + b) * (u - 0.5) + lambda + 0.43);
    if (us >= 0.07 && v <= vr) {
      k = kk;
      return true;
    }
    if (kk < 0.0 || (us < 0.013 && v > us)) return false;
    if (std::log(v) + log_invalpha - std::log(a / (us * us) + b) <= -lambda + kk * log_lambda - log_factorial(kk)) {
      k = kk;
      return true;
    }
    return false;
  }

  /// The sample of block `words` (block number `block` of `g`'s stream). PTRS tries the two
  /// word pairs of its block, then (rarely) draws from a spill stream keyed by the block number,
  /// so the result still depends on that block alone.
  double sample(const std::uint32_t* words, const rng& g, std::uint64_t block) const noexcept {
    if (!rejection) return invert(u01d(words[0], words[1]));
    double k = 0;
    if (attempt(u01_open(words[0]), u01_open(words[1]), k)) return k;
    if (attempt(u01_open(words[2]), u01_open(words[3]), k)) return k;
    rng spill = g.split(0x706F6973736F6E00ull);  // "poisson\0"
    spill.set_counter(block << 16);
    for (int i = 0; i < (1 << 16); ++i) {
      const auto w = spill.next_block();
      if (attempt(u01_open(w[0]), u01_open(w[1]), k)) return k;
      if (attempt(u01_open(w[2]), u01_open(w[3]), k)) return k;
    }
    return std::floor(lambda);  // unreachable in practice: 2¹⁷ rejections in a row
  }
};

template <class T>
inline constexpr bool is_sample_type = std::is_same_v<T, float> || std::is_same_v<T, double>;

}  // namespace detail

/// \brief Fills out[0, n) with uniform samples in (lo, hi] (up to rounding of lo + (hi − lo)·u).
/// Samples per block: 4 (float, one word each) or 2 (double, 53 bits from two words). Bitwise
/// identical on every architecture for the default bounds.
/// \pre out != nullptr or n == 0; lo <= hi.
template <class T, class Arch = simd::default_arch>
void fill_uniform(rng& g, T* out, std::size_t n, std::type_identity_t<T> lo = T(0), std::type_identity_t<T> hi = T(1)) {
  static_assert(detail::is_sample_type<T>, "fill_uniform: T must be float or double");
  PNN_EXPECTS(out != nullptr || n == 0, "fill_uniform: out is null");
  PNN_EXPECTS(lo <= hi, "fill_uniform: lo must not exceed hi");
  constexpr std::size_t G = detail::rng_group<Arch>;
  constexpr std::size_t per_block = std::is_same_v<T, float> ? 4 : 2;
  const detail::block_stream src = detail::stream_of(g);
  const T scale = hi - lo;
#if PNN_DETAIL_RNG_VAES512
  if constexpr (std::is_same_v<T, float> && detail::rng_avx512<Arch>) {
    // Whole runs of 32 blocks in one loop; the rest below continues the same stream.
    if (src.engine == rng_engine::ars && n >= 128) {
      const std::size_t runs = n / 128;
      detail::ars_uniform_runs_vaes512(src, g.counter(), out, runs, lo, scale);
      g.set_counter(g.counter() + 32 * runs);
      out += 128 * runs;
      n -= 128 * runs;
    }
  }
#endif
  detail::for_each_group<T, per_block * G, per_block, false>(g, out, n, [&](std::uint64_t c, T* dst) {
    detail::uniform_group<Arch>(src, c, dst, lo, scale);
  });
}

/// \brief Fills out[0, n) with N(mean, stddev²) samples (Box–Muller, both outputs used).
/// Samples per block: 4 (float) or 2 (double). Float samples are bounded by |z| ≤ 5.65 (the
/// smallest uniform is 2⁻²³); double ones by |z| ≤ 8.57.
/// \pre out != nullptr or n == 0; stddev >= 0.
template <class T, class Arch = simd::default_arch>
void fill_normal(rng& g, T* out, std::size_t n, std::type_identity_t<T> mean = T(0),
                 std::type_identity_t<T> stddev = T(1)) {
  static_assert(detail::is_sample_type<T>, "fill_normal: T must be float or double");
  PNN_EXPECTS(out != nullptr || n == 0, "fill_normal: out is null");
  PNN_EXPECTS(stddev >= T(0), "fill_normal: stddev must be >= 0");
  constexpr std::size_t G = detail::rng_group<Arch>;
  constexpr std::size_t per_block = std::is_same_v<T, float> ? 4 : 2;
  const detail::block_stream src = detail::stream_of(g);
  detail::for_each_group<T, per_block * G, per_block, false>(g, out, n, [&](std::uint64_t c, T* dst) {
    detail::normal_group<Arch, false>(src, c, dst, mean, stddev);
  });
}

/// \brief inout[i] += stddev·z_i with z_i ~ N(0, 1), fused (read noise on a vector of outputs).
/// Uses the same z_i, block for block, as `fill_normal`.
/// \pre inout != nullptr or n == 0; stddev >= 0.
template <class T, class Arch = simd::default_arch>
void add_normal(rng& g, T* inout, std::size_t n, std::type_identity_t<T> stddev) {
  static_assert(detail::is_sample_type<T>, "add_normal: T must be float or double");
  PNN_EXPECTS(inout != nullptr || n == 0, "add_normal: inout is null");
  PNN_EXPECTS(stddev >= T(0), "add_normal: stddev must be >= 0");
  constexpr std::size_t G = detail::rng_group<Arch>;
  constexpr std::size_t per_block = std::is_same_v<T, float> ? 4 : 2;
  const detail::block_stream src = detail::stream_of(g);
  detail::for_each_group<T, per_block * G, per_block, true>(g, inout, n, [&](std::uint64_t c, T* dst) {
    detail::normal_group<Arch, true>(src, c, dst, T(0), stddev);
  });
}

/// \brief Fills out[0, n) with ±1, each with probability ½ (the sign bit of one word).
/// Samples per block: 4.
/// \pre out != nullptr or n == 0.
template <class T, class Arch = simd::default_arch>
void fill_rademacher(rng& g, T* out, std::size_t n) {
  static_assert(detail::is_sample_type<T>, "fill_rademacher: T must be float or double");
  PNN_EXPECTS(out != nullptr || n == 0, "fill_rademacher: out is null");
  constexpr std::size_t G = detail::rng_group<Arch>;
  const detail::block_stream src = detail::stream_of(g);
  detail::for_each_group<T, 4 * G, 4, false>(g, out, n, [&](std::uint64_t c, T* dst) {
    alignas(64) std::uint32_t words[4 * G];
    detail::block_words<Arch, G>(src, c, words);
    for (std::size_t i = 0; i < 4 * G; ++i) dst[i] = (words[i] & 0x80000000u) != 0 ? T(-1) : T(1);
  });
}

/// \brief Fills out[0, n) with 1 with probability p, else 0 (1 exactly when the uniform u ∈ (0, 1]
/// of the sample is ≤ p, so p = 0 never and p = 1 always gives 1). Samples per block: 4 (float)
/// or 2 (double).
/// \pre out != nullptr or n == 0; 0 <= p <= 1.
template <class T, class Arch = simd::default_arch>
void fill_bernoulli(rng& g, T* out, std::size_t n, std::type_identity_t<T> p) {
  static_assert(detail::is_sample_type<T>, "fill_bernoulli: T must be float or double");
  PNN_EXPECTS(out != nullptr || n == 0, "fill_bernoulli: out is null");
  PNN_EXPECTS(p >= T(0) && p <= T(1), "fill_bernoulli: p must be in [0, 1]");
  constexpr std::size_t G = detail::rng_group<Arch>;
  constexpr std::size_t per_block = std::is_same_v<T, float> ? 4 : 2;
  const detail::block_stream src = detail::stream_of(g);
  detail::for_each_group<T, per_block * G, per_block, false>(g, out, n, [&](std::uint64_t c, T* dst) {
    alignas(64) std::uint32_t words[4 * G];
    detail::block_words<Arch, G>(src, c, words);
    if constexpr (std::is_same_v<T, float>) {
      for (std::size_t i = 0; i < 4 * G; ++i) dst[i] = detail::u01f(words[i]) <= p ? 1.0f : 0.0f;
    } else {
      for (std::size_t i = 0; i < 2 * G; ++i) dst[i] = detail::u01d(words[2 * i], words[2 * i + 1]) <= p ? 1.0 : 0.0;
    }
  });
}

/// \brief Fills out[0, n) with Poisson(λ) counts stored as T. Exact: inversion (one 53-bit
/// uniform, O(λ) steps) for λ < 10, Hörmann's transformed rejection PTRS (1993) for λ ≥ 10.
/// Samples per block: 1 (a rejected PTRS sample draws further blocks from a spill stream that
/// is keyed by its own block, so the counter contract still holds).
/// \pre out != nullptr or n == 0; λ >= 0 and finite.
template <class T, class Arch = simd::default_arch>
void fill_poisson(rng& g, T* out, std::size_t n, std::type_identity_t<T> lambda) {
  static_assert(detail::is_sample_type<T>, "fill_poisson: T must be float or double");
  PNN_EXPECTS(out != nullptr || n == 0, "fill_poisson: out is null");
  PNN_EXPECTS(lambda >= T(0) && lambda <= std::numeric_limits<T>::max(), "fill_poisson: lambda must be finite and >= 0");
  constexpr std::size_t G = detail::rng_group<Arch>;
  const detail::block_stream src = detail::stream_of(g);
  const detail::poisson_plan plan(static_cast<double>(lambda));
  const rng parent = g;
  detail::for_each_group<T, G, 1, false>(g, out, n, [&](std::uint64_t c, T* dst) {
    alignas(64) std::uint32_t words[4 * G];
    detail::block_words<Arch, G>(src, c, words);
    for (std::size_t b = 0; b < G; ++b) dst[b] = static_cast<T>(plan.sample(words + 4 * b, parent, c + b));
  });
}

}  // namespace pnn
