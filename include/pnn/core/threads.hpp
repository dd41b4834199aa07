// SPDX-License-Identifier: MIT
/// \file
/// \brief Threads inside one run: `pnn::set_num_threads` and the fork–join the kernels share.
///
/// Kernels split their outputs between the threads of a team, and compute every output with
/// the same arithmetic in the same order whatever the split (a GEMM splits C at whole register
/// tiles; a sum over the batch is never split); so the same inputs give bitwise the same results
/// on 1, 2 or 16 threads (tests/threads.cpp). Threads are available when the translation unit is
/// built with `PNN_WITH_OPENMP=1` and OpenMP enabled (CMake: link `pnn::openmp`): OpenMP gives
/// the default count and says when the caller is already inside a parallel region; the team's
/// threads are this header's own (`thread_team`), kept per calling thread, because a training
/// step forks a team several times and an OpenMP fork–join cost about 3 µs each against
/// 1 µs here. Otherwise everything runs on the calling thread and this header costs nothing
/// (the embedded path compiles it so, without threads).
///
/// No oversubscription: teams of all callers together hold at most one thread per core (a
/// single team may be as large as asked when it runs alone). A
/// kernel called while the other callers' teams hold the cores (a caller that runs threads of
/// its own, as pnn-bench does with concurrent runs), or from inside a parallel region or a
/// team's thread, runs on its calling thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#if defined(PNN_WITH_OPENMP) && PNN_WITH_OPENMP && defined(_OPENMP)
#include <omp.h>
#define PNN_DETAIL_OPENMP 1
#include <thread>
#include <vector>
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
/// \brief Work a team's idle threads may run while their caller goes on (the next batch's
/// copy during a training step), in pieces: `f(i)` for each i in [0, pieces), each once, by
/// whichever thread claims it. `thread_team::post` offers it; an idle thread runs pieces until
/// none is left or its caller forks a team — so the task fills the gaps between the caller's
/// teams instead of delaying them — and `thread_team::wait` runs what is left on the caller,
/// returning once every piece has run. `f` must not throw, nor outlive its task.
class side_task {
 public:
  template <class F>
  side_task(F& f, std::size_t pieces) noexcept
      : fn_([](void* c, std::size_t i) noexcept { (*static_cast<F*>(c))(i); }), ctx_(&f), pieces_(pieces) {}
  side_task(const side_task&) = delete;
  side_task& operator=(const side_task&) = delete;

  /// Claims and runs one piece; false when none is left to claim.
  bool run_one() noexcept {
    const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= pieces_) return false;
    fn_(ctx_, i);
    finished_.fetch_add(1, std::memory_order_release);
    return true;
  }
  /// True once every piece has run.
  [[nodiscard]] bool done() const noexcept { return finished_.load(std::memory_order_acquire) == pieces_; }

 private:
  friend class thread_team;
  void (*fn_)(void*, std::size_t) noexcept;
  void* ctx_;
  std::size_t pieces_;
  bool offered_ = false;  // to a team's threads, by `thread_team::post`
  std::atomic<std::size_t> next_{0}, finished_{0};
};

#if PNN_DETAIL_OPENMP
/// Waits a moment without leaving the core: a team's threads hand work to each other in well
/// under a microsecond this way, where sleeping would cost a system call each.
inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Pauses a waiting thread spins before it yields or sleeps: about 0.1–1 ms, longer than the
/// gaps between a training step's teams, short enough that an idle caller's threads soon stop
/// taking cores from others.
inline constexpr unsigned spin_limit = 1u << 14;

/// Waits until `done()`: spinning first (hand-offs take well under a microsecond), then
/// yielding the core, so that a thread that waits long does not keep it from others.
template <class Done>
void spin_until(Done&& done) noexcept {
  for (unsigned spins = 0; !done(); ++spins)
    if (spins < spin_limit) spin_pause();
    else std::this_thread::yield();
}

/// \brief The threads that join one calling thread's teams: created on its first team, kept
/// until it exits, spinning between teams for a while and then sleeping. A team is the
/// caller (t = 0) and the first `team − 1` of them. Between teams an idle thread runs a posted
/// `side_task`. Each calling thread has its own, so concurrent callers never wait on each other
/// (the core accounting of `parallel_team` keeps their teams within the cores).
class thread_team {
 public:
  /// The calling thread's team threads.
  static thread_team& of_this_thread() {
    static thread_local thread_team t;
    return t;
  }
  /// True on a team's threads and on a caller while its team runs: a kernel called there (a
  /// side task's, or one inside a kernel's share) runs on its calling thread alone.
  static bool& in_team() noexcept {
    static thread_local bool in = false;
    return in;
  }

  thread_team() = default;
  thread_team(const thread_team&) = delete;
  thread_team& operator=(const thread_team&) = delete;
  ~thread_team() {
    stop_.store(true);
    wake_.fetch_add(1);
    wake_.notify_all();
    for (auto& w : threads_) w.join();
  }

  /// Calls `f(t, team)` for every t in [0, team): t = 0 here, the others on this caller's
  /// threads; returns when all have returned. Falls back to `f(0, 1)` if a thread cannot be
  /// started.
  template <class F>
  void run(std::size_t team, F& f) noexcept {
    try {
      while (threads_.size() + 1 < team) {
        const std::size_t me = threads_.size() + 1;
        const std::uint64_t seen = job_.load();
        threads_.emplace_back([this, me, seen] { work(me, seen); });
      }
    } catch (...) {
      if (threads_.empty()) return f(std::size_t{0}, std::size_t{1});
      team = threads_.size() + 1;
    }
    fn_ = [](void* c, std::size_t t, std::size_t n) noexcept { (*static_cast<F*>(c))(t, n); };
    ctx_ = const_cast<void*>(static_cast<const void*>(&f));
    team_ = team;
    done_.store(0, std::memory_order_relaxed);
    job_.fetch_add(1);  // seq_cst: ordered before the check of sleepers below
    wake_.fetch_add(1);
    if (sleepers_.load() > 0) wake_.notify_all();
    in_team() = true;
    f(std::size_t{0}, team);
    in_team() = false;
    const std::size_t others = threads_.size();
    spin_until([&] { return done_.load(std::memory_order_acquire) == others; });
  }

  /// Offers `s` to this caller's idle threads; without any, it waits for `wait`.
  /// \pre No other task this caller posted is still waiting for its `wait` (one slot).
  void post(side_task& s) noexcept {
    if (threads_.empty() || num_threads() < 2) return;
    s.offered_ = true;
    side_.store(&s);
    wake_.fetch_add(1);
    if (sleepers_.load() > 0) wake_.notify_all();
  }
  /// Returns once every piece of `s` has run, running here those no thread has claimed.
  void wait(side_task& s) noexcept {
    if (s.offered_) side_.store(nullptr);  // seq_cst: a thread that has not seen `s` yet never will
    while (s.run_one()) {
    }
    // The pieces' threads are done with them, and none holds `s` any more (it may be destroyed).
    if (s.offered_) spin_until([&] { return s.done() && side_users_.load() == 0; });
  }

 private:
  void work(std::size_t me, std::uint64_t seen) noexcept {
    in_team() = true;
    for (;;) {
      unsigned spins = 0;
      for (;;) {
        if (stop_.load(std::memory_order_relaxed)) return;
        if (job_.load(std::memory_order_acquire) != seen) break;
        if (side_.load(std::memory_order_relaxed) != nullptr && take_side_pieces(seen)) {
          spins = 0;
          continue;
        }
        if (++spins < spin_limit) {
          spin_pause();
          continue;
        }
        // Sleep until the next job, side task or stop; the checks are repeated after
        // announcing it, so a `run` that missed the announcement is seen here.
        sleepers_.fetch_add(1);
        const std::uint32_t w = wake_.load();
        if (job_.load() == seen && side_.load() == nullptr && !stop_.load()) wake_.wait(w);
        sleepers_.fetch_sub(1);
        spins = 0;
      }
      seen = job_.load(std::memory_order_acquire);
      if (me < team_) fn_(ctx_, me, team_);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  // Runs pieces of the posted side task until none is left or the caller forks a team; true
  // if it ran any. `side_users_` tells `wait` a thread may still hold the task.
  bool take_side_pieces(std::uint64_t seen) noexcept {
    bool ran = false;
    side_users_.fetch_add(1);  // seq_cst, before reading side_ (see `wait`)
    if (side_task* s = side_.load()) {
      while (job_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed) && s->run_one())
        ran = true;
      // Every piece claimed: nothing more to offer (only `s` or null can be there meanwhile).
      if (s->next_.load(std::memory_order_relaxed) >= s->pieces_) side_.compare_exchange_strong(s, nullptr);
    }
    side_users_.fetch_sub(1, std::memory_order_release);
    return ran;
  }

  std::vector<std::thread> threads_;
  void (*fn_)(void*, std::size_t, std::size_t) noexcept = nullptr;
  void* ctx_ = nullptr;
  std::size_t team_ = 1;
  std::atomic<std::uint64_t> job_{0};
  std::atomic<std::uint32_t> wake_{0};
  std::atomic<std::uint32_t> sleepers_{0};
  std::atomic<std::size_t> done_{0};
  std::atomic<side_task*> side_{nullptr};
  std::atomic<std::size_t> side_users_{0};
  std::atomic<bool> stop_{false};
};

#else
/// Without threads there is no team: a posted side task runs on the caller, at `wait`.
class thread_team {
 public:
  static thread_team& of_this_thread() noexcept {
    static thread_team t;
    return t;
  }
  void post(side_task&) noexcept {}
  void wait(side_task& s) noexcept {
    while (s.run_one()) {
    }
  }
};
#endif

/// Calls `f(t, team)` once for every t in [0, team) — on a team of up to `max_team` (and
/// `num_threads()`) threads when one is free, else `f(0, 1)` on the calling thread. `f` splits
/// its work by `t` and `team`, into disjoint outputs, and must not throw. Callers keep results
/// independent of `team` by computing every output the same way in any split.
template <class F>
void parallel_team(std::size_t max_team, F&& f) noexcept {
#if PNN_DETAIL_OPENMP
  const std::size_t want = max_team < num_threads() ? max_team : num_threads();
  if (want > 1 && !omp_in_parallel() && !thread_team::in_team()) {
    static const std::size_t cores = static_cast<std::size_t>(omp_get_num_procs());
    auto& busy = threads_in_teams();
    // A team asked for explicitly may exceed the cores when it runs alone.
    auto fits = [&](std::size_t held) { return held == 0 || held + want <= cores; };
    std::size_t held = busy.load(std::memory_order_relaxed);
    while (fits(held) &&
           !busy.compare_exchange_weak(held, held + want, std::memory_order_acquire, std::memory_order_relaxed)) {
    }
    if (fits(held)) {
      thread_team::of_this_thread().run(want, f);
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
