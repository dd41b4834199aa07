// SPDX-License-Identifier: MIT
// Threads inside one run (include/pnn/core/threads.hpp): the same inputs give bitwise the same
// GEMM products and the same trained weights on 1, 2 and 3 threads, and kernels called from
// threads of the caller's own stay correct.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_threads {

using namespace pnn;

namespace {

// Restores the default thread count when a test ends, however it ends.
struct thread_setting_guard {
  ~thread_setting_guard() { set_num_threads(0); }
};

template <class T>
std::vector<T> filled(std::size_t n, std::uint64_t seed) {
  std::vector<T> v(n);
  rng g(seed);
  for (auto& x : v) x = T(g.normal());
  return v;
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// C = A·op(B) for one layout at the current thread count, from C's prior contents (beta 0.5).
template <class T>
std::vector<T> product(char layout, std::size_t m, std::size_t n, std::size_t k) {
  const auto a = filled<T>(m * k, 1), b = filled<T>(k * n, 2);
  auto c = filled<T>(m * n, 3);
  if (layout == 'n') simd::gemm_nn<T>(m, n, k, T(1.25), a.data(), k, b.data(), n, T(0.5), c.data(), n);
  if (layout == 't') simd::gemm_nt<T>(m, n, k, T(1.25), a.data(), k, b.data(), k, T(0.5), c.data(), n);
  if (layout == 'a') simd::gemm_tn<T>(m, n, k, T(1.25), a.data(), m, b.data(), n, T(0.5), c.data(), n);
  return c;
}

}  // namespace

TEST_CASE("set_num_threads sets how many threads a kernel may use", "[threads]") {
  thread_setting_guard restore;
  set_num_threads(3);
  CHECK(num_threads() == (threads_available ? 3U : 1U));
  set_num_threads(1);
  CHECK(num_threads() == 1U);
  set_num_threads(0);  // the default: OpenMP's, or 1 without it
  CHECK(num_threads() >= 1U);
}

TEST_CASE("a kernel's team has the threads asked for, and one thread without OpenMP", "[threads]") {
  thread_setting_guard restore;
  for (unsigned t : {1U, 2U, 3U}) {
    set_num_threads(t);
    std::vector<int> seen(8, 0);
    std::size_t team_size = 0;
    detail::parallel_team(8, [&](std::size_t i, std::size_t team) noexcept {
      seen[i] = 1;
      if (i == 0) team_size = team;  // one writer: equal values from several threads still race
    });
    const std::size_t expected = threads_available ? t : 1;
    CHECK(team_size == expected);
    for (std::size_t i = 0; i < 8; ++i) CHECK(seen[i] == (i < expected ? 1 : 0));
  }
  // The split covers [0, n) once, at multiples of the unit.
  for (std::size_t team : {1U, 2U, 3U, 5U}) {
    std::size_t covered = 0, last_end = 0;
    for (std::size_t t = 0; t < team; ++t) {
      const auto [b, e] = detail::team_range(1000, 16, t, team);
      if (b == e) continue;
      CHECK(b == last_end);
      CHECK(b % 16 == 0);
      covered += e - b;
      last_end = e;
    }
    CHECK(covered == 1000);
  }
}

TEST_CASE("GEMM gives bitwise the same product on 1, 2 and 3 threads", "[threads][gemm]") {
  thread_setting_guard restore;
  if (!threads_available) WARN("built without OpenMP: every thread count runs on the calling thread");
  // The MLP's three products, a shape with ragged tiles, a single row (split by columns), a
  // narrow A·Bᵀ (split by rows), a short-K product (the skinny path), and Aᵀ·B with too few
  // rows to split by rows (split by columns instead); ragged weight-row chunks (a batch of 50
  // through 250 rows of W, an update of 130 rows) that the threads take in turn.
  struct shape {
    char layout;
    std::size_t m, n, k;
  };
  const shape shapes[] = {{'t', 64, 256, 784}, {'a', 256, 784, 64}, {'n', 64, 784, 256}, {'n', 37, 333, 129},
                          {'t', 1, 1000, 500},  {'t', 300, 20, 500},  {'a', 300, 640, 16}, {'n', 97, 71, 1000},
                          {'a', 8, 2000, 300}, {'t', 50, 250, 300}, {'a', 130, 300, 100}};
  for (const auto& s : shapes) {
    INFO(s.layout << " " << s.m << "x" << s.n << "x" << s.k);
    set_num_threads(1);
    const auto one_f = product<float>(s.layout, s.m, s.n, s.k);
    const auto one_d = product<double>(s.layout, s.m, s.n, s.k);
    for (unsigned t : {2U, 3U}) {
      set_num_threads(t);
      CHECK(bitwise_equal(product<float>(s.layout, s.m, s.n, s.k), one_f));
      CHECK(bitwise_equal(product<double>(s.layout, s.m, s.n, s.k), one_d));
    }
  }
}

TEST_CASE("training gives bitwise the same weights on 1, 2 and 3 threads", "[threads][train]") {
  thread_setting_guard restore;
  rng g(11);
  // Batch 128 through 256 inputs and 256 hidden units: each product is large enough to split.
  const data::dataset d = data::gaussian_blobs(512, 256, 10, g, 0.8f);
  using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                        dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
  auto trained = [&](unsigned threads) {
    set_num_threads(threads);
    net_t net({256, 256, 10}, seed{3});
    learn::backprop<optim::momentum> bp{{.optimizer = {.learning_rate = 0.05f, .momentum = 0.9f}}};
    (void)train(net, bp, loss::softmax_cross_entropy{}, d,
                {.epochs = 2, .batch = 128, .seed = 5, .progress = progress_mode::never});
    std::vector<float> w;
    net.for_each_layer([&](const auto& l, std::size_t) {
      const float* p = l.tile.weight_data();
      w.insert(w.end(), p, p + l.in_size() * l.out_size());
      w.insert(w.end(), l.tile.bias_data(), l.tile.bias_data() + l.out_size());
    });
    return w;
  };
  const auto one = trained(1);
  CHECK(bitwise_equal(trained(2), one));
  CHECK(bitwise_equal(trained(3), one));
}

TEST_CASE("a posted side task's pieces run once each: on an idle team thread, else on the caller", "[threads]") {
  thread_setting_guard restore;
  set_num_threads(2);
  auto& team = detail::thread_team::of_this_thread();
  detail::parallel_team(2, [](std::size_t, std::size_t) noexcept {});  // the caller's team exists now
  const auto caller = std::this_thread::get_id();
  constexpr std::size_t pieces = 4;
  for (int rep = 0; rep < 200; ++rep) {
    std::array<int, pieces> runs{};
    std::array<std::thread::id, pieces> ran_on{};
    std::array<std::size_t, pieces> inner{};
    // Records only: Catch2's assertions are for the test's own thread.
    auto work = [&](std::size_t i) noexcept {
      ++runs[i];
      ran_on[i] = std::this_thread::get_id();
      // A kernel inside a side task on a team thread runs there alone.
      detail::parallel_team(2, [&](std::size_t, std::size_t n) noexcept { inner[i] = n; });
    };
    detail::side_task task(work, pieces);
    team.post(task);
    if (rep % 2 == 0 && threads_available) {
      // Left alone, an idle team thread takes every piece (it spins, or is woken by the post).
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (!task.done() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    } else if (rep % 2 == 1) {
      // A team forked meanwhile still gets all its threads, before, between or after pieces.
      std::atomic<std::size_t> members{0};
      detail::parallel_team(2, [&](std::size_t, std::size_t) noexcept { members.fetch_add(1); });
      CHECK(members.load() == (threads_available ? 2U : 1U));
    }
    team.wait(task);
    CHECK(task.done());
    for (std::size_t i = 0; i < pieces; ++i) {
      CHECK(runs[i] == 1);
      if (ran_on[i] != caller) CHECK(inner[i] == 1);
      if (rep % 2 == 0) CHECK((ran_on[i] != caller) == threads_available);
    }
  }
  // With one thread asked for, the caller runs them all at `wait`.
  set_num_threads(1);
  int runs = 0;
  auto work = [&](std::size_t) noexcept { ++runs; };
  detail::side_task task(work, 3);
  team.post(task);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(runs == 0);
  team.wait(task);
  CHECK(runs == 3);
}

TEST_CASE("a team forked during a side task gets its thread after the piece it is running", "[threads]") {
  if (!threads_available) {
    WARN("built without OpenMP: no team threads");
    return;
  }
  thread_setting_guard restore;
  set_num_threads(2);
  // Piece i runs once gate i + 1 is open. The team thread takes piece 0, maybe piece 1, and
  // must leave pieces 2.. (still shut) to join the team forked meanwhile: taking piece 2 first
  // would keep the team waiting until the 2 s bail-out. A new caller, so that its team has
  // exactly one thread besides it (the test thread's may have more from earlier tests).
  constexpr std::size_t pieces = 6;
  std::atomic<std::size_t> gate{0};
  std::array<std::atomic<int>, pieces> runs{};
  std::atomic<bool> timed_out{false};
  std::size_t members = 0;
  bool done_after_team = true;
  std::thread caller([&] {
    auto& team = detail::thread_team::of_this_thread();
    detail::parallel_team(2, [](std::size_t, std::size_t) noexcept {});
    auto work = [&](std::size_t i) noexcept {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (gate.load() <= i)
        if (std::chrono::steady_clock::now() > until) {
          timed_out = true;
          break;
        }
      runs[i].fetch_add(1);
    };
    detail::side_task task(work, pieces);
    team.post(task);
    gate = 1;
    while (runs[0].load() == 0) std::this_thread::yield();
    std::atomic<std::size_t> joined{0};
    detail::parallel_team(2, [&](std::size_t t, std::size_t) noexcept {
      joined.fetch_add(1);
      if (t == 0) gate = 2;  // lets the team thread finish piece 1 if it took it
    });
    members = joined.load();
    done_after_team = task.done();
    gate = pieces;
    team.wait(task);
  });
  caller.join();
  CHECK(members == 2U);
  CHECK_FALSE(timed_out.load());
  CHECK_FALSE(done_after_team);
  for (const auto& r : runs) CHECK(r.load() == 1);
}

TEST_CASE("training on threads copies each next batch during the step and trains on a plain loop's batches",
          "[threads][train]") {
  thread_setting_guard restore;
  rng g(12);
  // 300 samples in batches of 64: the last batch is short (44), so the copy resizes a buffer.
  const data::dataset d = data::gaussian_blobs(300, 24, 4, g, 0.8f);
  using net_t = network<dense<24, 32, physics::digital, noise::none, act::tanh>,
                        dense<32, 4, physics::digital, noise::none, act::identity>>;
  auto weights = [](const net_t& net) {
    std::vector<float> w;
    net.for_each_layer([&](const auto& l, std::size_t) {
      w.insert(w.end(), l.tile.weight_data(), l.tile.weight_data() + l.in_size() * l.out_size());
      w.insert(w.end(), l.tile.bias_data(), l.tile.bias_data() + l.out_size());
    });
    return w;
  };
  learn::backprop<> bp{{.optimizer = {.learning_rate = 0.05f}}};
  // The plain loop: batches in order (no shuffle), each step's generator as `train` derives it.
  net_t plain(seed{3});
  const rng root(5, 0x7a1, rng_engine::philox);
  for (std::size_t e = 1; e <= 2; ++e)
    for (std::size_t b = 0, first = 0; first < d.size(); ++b, first += 64) {
      const std::size_t count = std::min<std::size_t>(64, d.size() - first);
      const xt::xtensor<float, 2> x = xt::view(d.inputs, xt::range(first, first + count), xt::all());
      const xt::xtensor<float, 2> t = xt::view(d.targets, xt::range(first, first + count), xt::all());
      rng gb = root.split(e).split(b + 1);
      (void)bp.step(plain, x, t, loss::softmax_cross_entropy{}, gb);
    }
  for (unsigned threads : {1U, 2U}) {
    set_num_threads(threads);
    detail::parallel_team(2, [](std::size_t, std::size_t) noexcept {});  // a team thread to copy
    net_t net(seed{3});
    learn::backprop<> rule{{.optimizer = {.learning_rate = 0.05f}}};
    (void)train(net, rule, loss::softmax_cross_entropy{}, d,
                {.epochs = 2, .batch = 64, .seed = 5, .shuffle = false, .progress = progress_mode::never});
    INFO(threads << " threads");
    CHECK(bitwise_equal(weights(net), weights(plain)));
  }
}

TEST_CASE("run-time sized weights start on a cache line", "[threads][storage]") {
  // Threads update a weight matrix in slabs of rows; rows that start mid-line would make every
  // vector access touch two lines (docs/architecture.md, "Threads").
  network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
          dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>
      net({784, 256, 10}, seed{1});
  net.for_each_layer([](const auto& l, std::size_t) {
    CHECK(reinterpret_cast<std::uintptr_t>(l.tile.weight_data()) % PNN_ALIGNMENT == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(l.tile.bias_data()) % PNN_ALIGNMENT == 0);
  });
  auto copy = net;
  copy.for_each_layer([](const auto& l, std::size_t) {
    CHECK(reinterpret_cast<std::uintptr_t>(l.tile.weight_data()) % PNN_ALIGNMENT == 0);
  });
}

TEST_CASE("claimed chunks are each taken once, by whichever thread gets there first", "[threads]") {
  // Threads of the caller's own race for the claims, with or without OpenMP; counts past the
  // claim words' capacity are claimed in runs of consecutive chunks.
  for (const std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, detail::chunk_claims::capacity,
                                  detail::chunk_claims::capacity + 1, std::size_t{10000}}) {
    for (const std::size_t team : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{5}}) {
      detail::chunk_claims claims(count);
      std::vector<std::atomic<int>> taken(count);
      std::vector<std::size_t> per_thread(team, 0);
      std::vector<std::thread> threads;
      for (std::size_t t = 0; t < team; ++t)
        threads.emplace_back([&, t] {
          claims.run(t, team, [&](std::size_t chunk) {
            taken[chunk].fetch_add(1, std::memory_order_relaxed);
            ++per_thread[t];
          });
        });
      for (auto& th : threads) th.join();
      std::size_t twice = 0, missed = 0, total = 0;
      for (auto& c : taken) {
        twice += c.load() > 1 ? 1 : 0;
        missed += c.load() == 0 ? 1 : 0;
      }
      for (const std::size_t n : per_thread) total += n;
      CHECK(twice == 0);
      CHECK(missed == 0);
      CHECK(total == count);
    }
  }
  // A thread alone takes every chunk, its own share first and then the others' from their far
  // end: the order a slowed thread's work is taken over in.
  detail::chunk_claims claims(6);
  std::vector<std::size_t> order;
  claims.run(0, 2, [&](std::size_t c) { order.push_back(c); });
  CHECK(order == std::vector<std::size_t>{0, 1, 2, 5, 4, 3});
}

TEST_CASE("kernels called from the caller's own threads share one team and stay exact", "[threads][gemm]") {
  thread_setting_guard restore;
  set_num_threads(1);
  const auto expected = product<float>('t', 64, 256, 784);
  set_num_threads(2);
  // Two callers at once: one gets the team, the other runs on its own thread; both exact.
  std::vector<float> r1, r2;
  std::thread a([&] {
    for (int i = 0; i < 20; ++i) r1 = product<float>('t', 64, 256, 784);
  });
  std::thread b([&] {
    for (int i = 0; i < 20; ++i) r2 = product<float>('t', 64, 256, 784);
  });
  a.join();
  b.join();
  CHECK(bitwise_equal(r1, expected));
  CHECK(bitwise_equal(r2, expected));
}

}  // namespace tests_threads
