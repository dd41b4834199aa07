// SPDX-License-Identifier: MIT
/// \file
/// \brief Counter-based random numbers: the Philox4x32-10 and ARS-7 bijections, `pnn::seed` and `pnn::rng`.
///
/// Why counter-based: a sample is a pure function of (seed, stream, counter), so it does not
/// depend on how many threads run, in which order streams are visited, or how much another
/// stream has drawn. pnn derives every stream it needs by splitting, e.g.
/// `rng.split(layer).split(step)`, and this is what makes training bitwise reproducible.
///
/// std only (no xsimd, no heap, no iostream): it builds for a Cortex-M4 with `-fno-exceptions`.
/// The vectorised bulk samplers over these streams are in `pnn/simd/random.hpp`.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace pnn {

/// \brief The Philox4x32-10 counter-based bijection (Salmon, Moraes, Dror & Shaw, "Parallel
/// random numbers: as easy as 1, 2, 3", SC 2011).
///
/// Ten rounds of two 32×32→64-bit multiplications with a Weyl sequence on the key; passes
/// BigCrush for any counter sequence. Known-answer tests against Random123's `kat_vectors` are
/// in tests/rng.cpp.
struct philox4x32 {
  static constexpr std::uint32_t multiplier0 = 0xD2511F53u;  ///< multiplies counter word 0
  static constexpr std::uint32_t multiplier1 = 0xCD9E8D57u;  ///< multiplies counter word 2
  static constexpr std::uint32_t weyl0 = 0x9E3779B9u;        ///< key word 0 increment (golden ratio)
  static constexpr std::uint32_t weyl1 = 0xBB67AE85u;        ///< key word 1 increment (√3 − 1)
  static constexpr int rounds = 10;

  /// \brief One 128-bit output block for `counter` under `key`.
  static constexpr std::array<std::uint32_t, 4> generate(std::array<std::uint32_t, 4> counter,
                                                         std::array<std::uint32_t, 2> key) noexcept {
    for (int r = 0; r < rounds; ++r) {
      // The key schedule bumps before every round but the first.
      if (r != 0) {
        key[0] += weyl0;
        key[1] += weyl1;
      }
      const std::uint64_t p0 = std::uint64_t{multiplier0} * counter[0];
      const std::uint64_t p1 = std::uint64_t{multiplier1} * counter[2];
      counter = {static_cast<std::uint32_t>(p1 >> 32) ^ counter[1] ^ key[0], static_cast<std::uint32_t>(p1),
                 static_cast<std::uint32_t>(p0 >> 32) ^ counter[3] ^ key[1], static_cast<std::uint32_t>(p0)};
    }
    return counter;
  }
};

namespace detail {

/// Multiplication in GF(2⁸) modulo the AES polynomial x⁸ + x⁴ + x³ + x + 1.
constexpr std::uint8_t gf256_mul(std::uint8_t a, std::uint8_t b) noexcept {
  std::uint8_t p = 0;
  for (int i = 0; i < 8; ++i) {
    if ((b & 1u) != 0) p = static_cast<std::uint8_t>(p ^ a);
    const bool carry = (a & 0x80u) != 0;
    a = static_cast<std::uint8_t>(a << 1);
    if (carry) a = static_cast<std::uint8_t>(a ^ 0x1Bu);
    b = static_cast<std::uint8_t>(b >> 1);
  }
  return p;
}

/// The AES S-box (FIPS-197 §5.1.1), derived rather than tabulated: the multiplicative inverse
/// in GF(2⁸) (x²⁵⁴, with 0 ↦ 0) followed by the affine map b ⊕ rotl(b,1..4) ⊕ 0x63.
constexpr std::array<std::uint8_t, 256> make_aes_sbox() noexcept {
  std::array<std::uint8_t, 256> s{};
  for (unsigned x = 0; x < 256; ++x) {
    std::uint8_t inv = 1, base = static_cast<std::uint8_t>(x);
    for (unsigned e = 254; e != 0; e >>= 1) {  // square and multiply
      if ((e & 1u) != 0) inv = gf256_mul(inv, base);
      base = gf256_mul(base, base);
    }
    if (x == 0) inv = 0;
    const auto rotl = [](std::uint8_t v, int k) { return static_cast<std::uint8_t>((v << k) | (v >> (8 - k))); };
    s[x] = static_cast<std::uint8_t>(inv ^ rotl(inv, 1) ^ rotl(inv, 2) ^ rotl(inv, 3) ^ rotl(inv, 4) ^ 0x63u);
  }
  return s;
}
inline constexpr std::array<std::uint8_t, 256> aes_sbox = make_aes_sbox();

/// One AES encryption round on a state of four little-endian column words, exactly what x86's
/// `aesenc` (`Last`: `aesenclast`, no MixColumns) computes: SubBytes, ShiftRows, MixColumns,
/// then the round key xored in. Byte r of word c is row r of column c.
template <bool Last>
constexpr std::array<std::uint32_t, 4> aes_round(const std::array<std::uint32_t, 4>& s,
                                                 const std::array<std::uint32_t, 4>& k) noexcept {
  const auto byte = [&](std::size_t row, std::size_t col) {
    return aes_sbox[(s[col % 4] >> (8 * row)) & 0xFFu];  // SubBytes
  };
  std::array<std::uint32_t, 4> out{};
  for (std::size_t c = 0; c < 4; ++c) {
    // ShiftRows: row r of column c comes from column c + r.
    const std::uint8_t a0 = byte(0, c), a1 = byte(1, c + 1), a2 = byte(2, c + 2), a3 = byte(3, c + 3);
    std::uint8_t b0 = a0, b1 = a1, b2 = a2, b3 = a3;
    if constexpr (!Last) {  // MixColumns: the circulant (2 3 1 1) over GF(2⁸)
      b0 = static_cast<std::uint8_t>(gf256_mul(a0, 2) ^ gf256_mul(a1, 3) ^ a2 ^ a3);
      b1 = static_cast<std::uint8_t>(a0 ^ gf256_mul(a1, 2) ^ gf256_mul(a2, 3) ^ a3);
      b2 = static_cast<std::uint8_t>(a0 ^ a1 ^ gf256_mul(a2, 2) ^ gf256_mul(a3, 3));
      b3 = static_cast<std::uint8_t>(gf256_mul(a0, 3) ^ a1 ^ a2 ^ gf256_mul(a3, 2));
    }
    out[c] = (std::uint32_t{b0} | (std::uint32_t{b1} << 8) | (std::uint32_t{b2} << 16) | (std::uint32_t{b3} << 24)) ^ k[c];
  }
  return out;
}

}  // namespace detail

/// \brief The ARS-R counter-based bijection (AES round functions under a Weyl key schedule;
/// Salmon, Moraes, Dror & Shaw, SC 2011), as Random123's `ars4x32_R`.
///
/// The counter is xored with the key, then R − 1 full AES rounds and a last round run with the
/// key bumped by the Weyl constants (64-bit lanes) before each. With AES instructions (x86
/// AES-NI/VAES) a round is one instruction on 1, 2 or 4 blocks, so it is the fastest
/// counter-based generator pnn has; this constexpr form is the portable definition that every
/// vectorised path must reproduce bit for bit, and it is slow (S-box lookups), so prefer Philox
/// on cores without AES instructions. Seven rounds (Random123's default; five pass BigCrush).
/// Known-answer tests against Random123's `kat_vectors` (ten rounds) are in tests/rng.cpp.
struct ars4x32 {
  static constexpr std::uint64_t weyl0 = 0x9E3779B97F4A7C15ull;  ///< key lane 0 increment (golden ratio)
  static constexpr std::uint64_t weyl1 = 0xBB67AE8584CAA73Bull;  ///< key lane 1 increment (√3 − 1)
  static constexpr int rounds = 7;

  /// The R + 1 round keys of `key`: the key itself, then R Weyl steps in two 64-bit lanes.
  template <int R = rounds>
  static constexpr std::array<std::array<std::uint32_t, 4>, R + 1> round_keys(std::array<std::uint32_t, 4> key) noexcept {
    std::array<std::array<std::uint32_t, 4>, R + 1> rk{};
    std::uint64_t lane0 = (std::uint64_t{key[1]} << 32) | key[0];
    std::uint64_t lane1 = (std::uint64_t{key[3]} << 32) | key[2];
    for (int r = 0; r <= R; ++r) {
      rk[static_cast<std::size_t>(r)] = {static_cast<std::uint32_t>(lane0), static_cast<std::uint32_t>(lane0 >> 32),
                                         static_cast<std::uint32_t>(lane1), static_cast<std::uint32_t>(lane1 >> 32)};
      lane0 += weyl0;
      lane1 += weyl1;
    }
    return rk;
  }

  /// \brief One 128-bit output block for `counter` under `key` with R rounds (1 ≤ R ≤ 10).
  template <int R = rounds>
  static constexpr std::array<std::uint32_t, 4> generate(std::array<std::uint32_t, 4> counter,
                                                         std::array<std::uint32_t, 4> key) noexcept {
    static_assert(R >= 1 && R <= 10, "ars4x32: 1 to 10 rounds");
    return encrypt<R>(counter, round_keys<R>(key));
  }

  /// \brief `generate` with the round keys already expanded (bulk fills expand them once).
  template <int R = rounds>
  static constexpr std::array<std::uint32_t, 4> encrypt(std::array<std::uint32_t, 4> counter,
                                                        const std::array<std::array<std::uint32_t, 4>, R + 1>& rk) noexcept {
    for (std::size_t w = 0; w < 4; ++w) counter[w] ^= rk[0][w];
    for (std::size_t r = 1; r < static_cast<std::size_t>(R); ++r) counter = detail::aes_round<false>(counter, rk[r]);
    return detail::aes_round<true>(counter, rk[static_cast<std::size_t>(R)]);
  }
};

/// \brief Which counter-based bijection turns (seed, stream, counter) into random bits.
///
/// `philox` (the default) is fast everywhere, SIMD or scalar. `ars` is about twice as fast
/// where the core has AES instructions (x86 with AES-NI, VAES for four blocks a register) and
/// several times slower without them. Both give the same stream on every architecture; they
/// give different streams from each other, so the engine is part of what a seed means.
enum class rng_engine : std::uint8_t {
  philox,  ///< Philox4x32-10
  ars,     ///< ARS-7 (AES rounds)
};

/// \brief A 64-bit seed, a type of its own so that `net_t net{seed{42}}` cannot be confused
/// with a size or a count; `engine` picks the generator of every stream derived from it.
struct seed {
  std::uint64_t value = 0;
  rng_engine engine = rng_engine::philox;
};

namespace detail {

/// splitmix64's finaliser: a bijection on 64 bits with full avalanche. Used to derive stream ids.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Child stream id: bijective in `id` for a fixed parent (distinct children never collide) and
/// not symmetric, so split(a).split(b) and split(b).split(a) are different streams.
constexpr std::uint64_t split_stream(std::uint64_t parent, std::uint64_t id) noexcept {
  return mix64(mix64(parent + 0x9E3779B97F4A7C15ull) ^ id);
}

constexpr std::uint32_t lo32(std::uint64_t x) noexcept { return static_cast<std::uint32_t>(x); }
constexpr std::uint32_t hi32(std::uint64_t x) noexcept { return static_cast<std::uint32_t>(x >> 32); }

/// The Philox counter of block `block` of `stream`: (block lo, block hi, stream lo, stream hi).
constexpr std::array<std::uint32_t, 4> philox_counter(std::uint64_t block, std::uint64_t stream) noexcept {
  return {lo32(block), hi32(block), lo32(stream), hi32(stream)};
}
/// The Philox key of a 64-bit seed: (seed lo, seed hi).
constexpr std::array<std::uint32_t, 2> philox_key(std::uint64_t s) noexcept { return {lo32(s), hi32(s)}; }
/// The ARS key of a 64-bit seed: (seed lo, seed hi, 0, 0); the counter is laid out as Philox's.
constexpr std::array<std::uint32_t, 4> ars_key(std::uint64_t s) noexcept { return {lo32(s), hi32(s), 0u, 0u}; }

/// 32 random bits → float in (0, 1]: the top 23 bits become the mantissa of a number in [1, 2),
/// and 2 − x (exact, Sterbenz) maps [1, 2) onto (0, 1]. Never 0, so log() is always finite; the
/// smallest value is 2⁻²³, which bounds a Box–Muller normal to |z| ≤ 5.65.
constexpr float u01f(std::uint32_t w) noexcept {
  return 2.0f - std::bit_cast<float>((w >> 9) | 0x3F800000u);
}

/// 64 random bits (two words) → double in (0, 1] with 53-bit resolution: (k + 1)·2⁻⁵³, k < 2⁵³.
/// Every step is exact in double arithmetic.
constexpr double u01d(std::uint32_t a, std::uint32_t b) noexcept {
  const std::uint64_t k = ((std::uint64_t{a} << 32) | b) >> 11;
  return static_cast<double>(k + 1) * 0x1p-53;
}

inline constexpr float two_pi_f = 6.28318530717958647692f;
inline constexpr double two_pi_d = 6.28318530717958647692;

}  // namespace detail

/// \brief A counter-based random stream: block `c` of stream `s` under seed `k` is
/// `philox4x32::generate({c lo, c hi, s lo, s hi}, {k lo, k hi})`, or with the `ars` engine
/// `ars4x32::generate({c lo, c hi, s lo, s hi}, {k lo, k hi, 0, 0})`.
///
/// A sample's value depends only on (seed, stream, counter), never on thread count or on the
/// order in which different streams are used. Independent streams come from `split(id)`, which
/// does not depend on how far this stream has advanced, so `rng.split(layer).split(step)` names
/// the same numbers in every run. Scalar draws (`next_u32`, `uniform`, `normal`, ...) consume the
/// words of consecutive blocks in order (w0, w1, w2, w3 of block c, then block c + 1, ...), which
/// is the same order the bulk samplers of `pnn/simd/random.hpp` use, so a fresh stream gives the
/// same uniforms through either. `set_counter` drops any buffered words.
///
/// Small (about 48 bytes), trivially copyable, no heap: copy it to fork a state, split it to
/// derive an independent stream.
class rng {
 public:
  /// Seed 0, stream 0, counter 0.
  constexpr rng() noexcept = default;
  /// Stream `stream_id` of seed `s` under the seed's engine, counter 0.
  constexpr explicit rng(seed s, std::uint64_t stream_id = 0) noexcept
      : seed_(s.value), stream_(stream_id), engine_(s.engine) {}
  /// Stream `stream_id` of seed `s`, counter 0.
  constexpr explicit rng(std::uint64_t s, std::uint64_t stream_id = 0, rng_engine e = rng_engine::philox) noexcept
      : seed_(s), stream_(stream_id), engine_(e) {}

  /// \brief An independent child stream: same seed and engine, stream = mix(stream, id),
  /// counter 0. Depends on (seed, stream, id) only, not on this stream's counter; distinct ids
  /// give distinct streams, and split(a).split(b) differs from split(b).split(a).
  [[nodiscard]] constexpr rng split(std::uint64_t id) const noexcept {
    return rng(seed_, detail::split_stream(stream_, id), engine_);
  }
  /// The same (seed, stream) at counter 0 under engine `e`.
  [[nodiscard]] constexpr rng with_engine(rng_engine e) const noexcept { return rng(seed_, stream_, e); }

  constexpr std::uint64_t seed_value() const noexcept { return seed_; }  ///< the 64-bit key
  constexpr rng_engine engine() const noexcept { return engine_; }       ///< the bijection in use
  constexpr std::uint64_t stream() const noexcept { return stream_; }    ///< the stream id
  constexpr std::uint64_t counter() const noexcept { return counter_; }  ///< the next block to draw
  /// Moves to block `c`; words buffered from an earlier block and a cached normal are dropped,
  /// so what follows depends on (seed, stream, c) only.
  constexpr void set_counter(std::uint64_t c) noexcept {
    counter_ = c;
    pos_ = 4;
    has_spare_f_ = false;
    has_spare_d_ = false;
  }

  /// The block at `counter()`, then advances the counter by one (does not touch buffered words).
  constexpr std::array<std::uint32_t, 4> next_block() noexcept {
    const auto ctr = detail::philox_counter(counter_++, stream_);
    if (engine_ == rng_engine::ars) return ars4x32::generate(ctr, detail::ars_key(seed_));
    return philox4x32::generate(ctr, detail::philox_key(seed_));
  }

  /// 32 random bits: the next unused word of the current block, drawing a new block when needed.
  constexpr std::uint32_t next_u32() noexcept {
    if (pos_ >= 4) {
      buf_ = next_block();
      pos_ = 0;
    }
    return buf_[pos_++];
  }

  /// 64 random bits from two consecutive words (first word = high half).
  constexpr std::uint64_t next_u64() noexcept {
    const std::uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }

  /// Uniform float in (0, 1] (never 0: safe for log), 2⁻²³ resolution; one word.
  constexpr float uniform() noexcept { return detail::u01f(next_u32()); }
  /// Uniform double in (0, 1], 53-bit resolution; two words.
  constexpr double uniform_double() noexcept {
    const std::uint32_t a = next_u32();
    return detail::u01d(a, next_u32());
  }

  /// \brief Standard normal float by Box–Muller: two words give r·cos θ (returned) and r·sin θ
  /// (kept for the next call), r = √(−2 ln u₀), θ = 2π u₁.
  float normal() noexcept {
    if (has_spare_f_) {
      has_spare_f_ = false;
      return spare_f_;
    }
    const float u = uniform();
    const float theta = detail::two_pi_f * uniform();
    const float r = std::sqrt(-2.0f * std::log(u));
    spare_f_ = r * std::sin(theta);
    has_spare_f_ = true;
    return r * std::cos(theta);
  }
  /// Standard normal double by Box–Muller from two 53-bit uniforms (four words for two samples).
  double normal_double() noexcept {
    if (has_spare_d_) {
      has_spare_d_ = false;
      return spare_d_;
    }
    const double u = uniform_double();
    const double theta = detail::two_pi_d * uniform_double();
    const double r = std::sqrt(-2.0 * std::log(u));
    spare_d_ = r * std::sin(theta);
    has_spare_d_ = true;
    return r * std::cos(theta);
  }

  /// \brief Uniform integer in [0, n), exactly unbiased (Lemire, "Fast random integer generation
  /// in an interval", ACM TOMACS 2019): one multiplication, a rare rejection.
  /// \pre n > 0 (for n == 0 it returns 0).
  constexpr std::uint32_t uniform_int(std::uint32_t n) noexcept {
    std::uint64_t m = std::uint64_t{next_u32()} * n;
    auto low = static_cast<std::uint32_t>(m);
    if (low < n) {
      // 2³² mod n: products whose low word falls below it would over-represent some results.
      const std::uint32_t threshold = static_cast<std::uint32_t>(0u - n) % n;
      while (low < threshold) {
        m = std::uint64_t{next_u32()} * n;
        low = static_cast<std::uint32_t>(m);
      }
    }
    return static_cast<std::uint32_t>(m >> 32);
  }

  friend constexpr bool operator==(const rng&, const rng&) noexcept = default;

 private:
  std::uint64_t seed_ = 0;
  std::uint64_t stream_ = 0;
  std::uint64_t counter_ = 0;
  std::array<std::uint32_t, 4> buf_{};
  std::uint32_t pos_ = 4;  // next word of buf_ to hand out; 4 = empty
  rng_engine engine_ = rng_engine::philox;
  bool has_spare_f_ = false;
  bool has_spare_d_ = false;
  float spare_f_ = 0.0f;
  double spare_d_ = 0.0;
};

}  // namespace pnn
