// SPDX-License-Identifier: MIT
/// \file
/// \brief Threads inside one run: `pnn::set_num_threads` and the fork–join the kernels share.
///
/// Kernels split their outputs between the threads of a team, and compute every output with
/// the same arithmetic in the same order whatever the split (a GEMM splits C at whole register
/// tiles; a sum over the batch is never split); so the same inputs give bitwise the same results
/// on 1, 2 or 16 threads (tests/threads.cpp). The threads come from OpenMP when the translation unit is built with
/// `PNN_WITH_OPENMP=1` and OpenMP enabled (CMake: link `pnn::openmp`); otherwise everything runs
/// on the calling thread and this header costs nothing. The embedded path never includes it.
///
/// No oversubscription: teams of all callers together hold at most one thread per core (a
/// single team may be as large as asked when it runs alone). A
/// kernel called while the other callers' teams hold the cores (a caller that runs threads of
/// its own, as pnn-bench does with concurrent runs), or from inside a parallel region, runs on
/// its calling thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#if defined(PNN_WITH_OPENMP) && PNN_WITH_OPENMP && defined(_OPENMP)
#include <omp.h>
#define PNN_DETAIL_OPENMP 1
#else
#define PNN_DETAIL_OPENMP 0
#endif

namespace pnn {

namespace detail {
/// The requested thread count; 0 means the default.
inline std::atomic<unsigned>& requested_threads() noexcept {
  static std::atomic<unsigned> n{0};
  return n;
}
/// Threads working in kernels' teams right now, across all callers.
inline std::atomic<std::size_t>& threads_in_teams() noexcept {
  static std::atomic<std::size_t> busy{0};
  return busy;
}
}  // namespace detail

/// True when this build can run kernels on several threads (OpenMP enabled).
inline constexpr bool threads_available = PNN_DETAIL_OPENMP != 0;

/// Sets the threads one kernel call may use (≥ 1); 0 restores the default — OpenMP's
/// (`OMP_NUM_THREADS`, else every core) where threads are available, 1 otherwise. Results do
/// not depend on it, only speed.
inline void set_num_threads(unsigned n) noexcept { detail::requested_threads().store(n, std::memory_order_relaxed); }

/// The threads one kernel call may use (1 without OpenMP).
[[nodiscard]] inline unsigned num_threads() noexcept {
#if PNN_DETAIL_OPENMP
  const unsigned n = detail::requested_threads().load(std::memory_order_relaxed);
  return n != 0 ? n : static_cast<unsigned>(omp_get_max_threads());
#else
  return 1;
#endif
}

namespace detail {
/// Calls `f(t, team)` once for every t in [0, team) — on a team of up to `max_team` (and
/// `num_threads()`) threads when one is free, else `f(0, 1)` on the calling thread. `f` splits
/// its work by `t` and `team`, into disjoint outputs, and must not throw. Callers keep results
/// independent of `team` by computing every output the same way in any split.
template <class F>
void parallel_team(std::size_t max_team, F&& f) noexcept {
#if PNN_DETAIL_OPENMP
  const std::size_t want = max_team < num_threads() ? max_team : num_threads();
  if (want > 1 && !omp_in_parallel()) {
    static const std::size_t cores = static_cast<std::size_t>(omp_get_num_procs());
    auto& busy = threads_in_teams();
    // A team asked for explicitly may exceed the cores when it runs alone.
    auto fits = [&](std::size_t held) { return held == 0 || held + want <= cores; };
    std::size_t held = busy.load(std::memory_order_relaxed);
    while (fits(held) &&
           !busy.compare_exchange_weak(held, held + want, std::memory_order_acquire, std::memory_order_relaxed)) {
    }
    if (fits(held)) {
#pragma omp parallel num_threads(static_cast<int>(want))
      f(static_cast<std::size_t>(omp_get_thread_num()), static_cast<std::size_t>(omp_get_num_threads()));
      busy.fetch_sub(want, std::memory_order_release);
      return;
    }
  }
#else
  (void)max_team;
#endif
  f(std::size_t{0}, std::size_t{1});
}

/// The `t`-th of `team` ranges splitting [0, n) at multiples of `unit`: [begin, end).
[[nodiscard]] constexpr std::pair<std::size_t, std::size_t> team_range(std::size_t n, std::size_t unit, std::size_t t,
                                                                       std::size_t team) noexcept {
  const std::size_t units = (n + unit - 1) / unit;
  const std::size_t per = (units + team - 1) / team;
  const std::size_t b = t * per * unit, e = (t + 1) * per * unit;
  return {b < n ? b : n, e < n ? e : n};
}

/// \brief Which chunks of a team's work are taken: each thread first takes its own share
/// (`team_range`) in order, then what the others have not reached yet, from their far end.
/// Threads that run at different speeds (a core shared with another tenant, a core that
/// holds less of the data in its cache) then end together, and the chunks mostly stay with the
/// thread — the core — that had them on the last call. Whichever thread takes a chunk, the
/// caller computes it the same way, so results do not depend on the team.
class chunk_claims {
 public:
  /// The most claims one team shares (64 words of 64 bits on the caller's stack); more chunks
  /// than that are claimed in equal runs of consecutive chunks.
  static constexpr std::size_t capacity = 64 * 64;

  explicit chunk_claims(std::size_t count) noexcept
      : count_(count), run_(count > capacity ? (count + capacity - 1) / capacity : 1) {}

  /// Calls `f(chunk)` for each chunk this thread (`t` of `team`) takes.
  template <class F>
  void run(std::size_t t, std::size_t team, F&& f) noexcept {
    const std::size_t units = (count_ + run_ - 1) / run_;
    const auto each = [&](std::size_t u) {
      if (!claim(u)) return;
      for (std::size_t i = u * run_; i < count_ && i < (u + 1) * run_; ++i) f(i);
    };
    const auto [b, e] = ::pnn::detail::team_range(units, 1, t, team);
    for (std::size_t u = b; u < e; ++u) each(u);
    for (std::size_t s = 1; s < team; ++s) {
      const auto [ob, oe] = ::pnn::detail::team_range(units, 1, (t + s) % team, team);
      for (std::size_t u = oe; u-- > ob;) each(u);
    }
  }

 private:
  bool claim(std::size_t i) noexcept {
    const std::uint64_t bit = std::uint64_t(1) << (i % 64);
    return (taken_[i / 64].fetch_or(bit, std::memory_order_relaxed) & bit) == 0;
  }
  std::size_t count_, run_;
  std::atomic<std::uint64_t> taken_[capacity / 64] = {};
};

/// \brief Calls `f(scratch, r)` for every sample r in [0, n): samples in fixed shards of
/// `shard` consecutive samples, shards claimed by the thread team (`chunk_claims`), one
/// `scratch = make()` per thread. A caller that sums per-shard partials in shard order gets
/// the same result for any thread count (what the simulated substrates do for their
/// gradients). `f` must not throw.
template <class Make, class F>
void for_sample_shards(std::size_t n, std::size_t shard, Make&& make, F&& f) noexcept {
  const std::size_t shards = (n + shard - 1) / shard;
  chunk_claims claims(shards);
  parallel_team(shards, [&](std::size_t t, std::size_t team) {
    auto scratch = make();
    claims.run(t, team, [&](std::size_t k) {
      for (std::size_t r = k * shard; r < n && r < (k + 1) * shard; ++r) f(scratch, r);
    });
  });
}

}  // namespace detail

}  // namespace pnn
