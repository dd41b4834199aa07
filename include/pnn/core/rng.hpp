// SPDX-License-Identifier: MIT
/// \file
/// \brief Counter-based random numbers: the Philox4x32-10 bijection, `pnn::seed` and `pnn::rng`.
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

/// \brief A 64-bit seed, a type of its own so that `net_t net{seed{42}}` cannot be confused
/// with a size or a count.
struct seed {
  std::uint64_t value = 0;
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
/// `philox4x32::generate({c lo, c hi, s lo, s hi}, {k lo, k hi})`.
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
  /// Stream `stream_id` of seed `s`, counter 0.
  constexpr explicit rng(seed s, std::uint64_t stream_id = 0) noexcept : seed_(s.value), stream_(stream_id) {}
  /// Stream `stream_id` of seed `s`, counter 0.
  constexpr explicit rng(std::uint64_t s, std::uint64_t stream_id = 0) noexcept : seed_(s), stream_(stream_id) {}

  /// \brief An independent child stream: same seed, stream = mix(stream, id), counter 0.
  /// Depends on (seed, stream, id) only, not on this stream's counter; distinct ids give
  /// distinct streams, and split(a).split(b) differs from split(b).split(a).
  [[nodiscard]] constexpr rng split(std::uint64_t id) const noexcept {
    return rng(seed_, detail::split_stream(stream_, id));
  }

  constexpr std::uint64_t seed_value() const noexcept { return seed_; }  ///< the 64-bit Philox key
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
    return philox4x32::generate(detail::philox_counter(counter_++, stream_), detail::philox_key(seed_));
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
  bool has_spare_f_ = false;
  bool has_spare_d_ = false;
  float spare_f_ = 0.0f;
  double spare_d_ = 0.0;
};

}  // namespace pnn
