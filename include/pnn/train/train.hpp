// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::train` and `pnn::evaluate`: the training loop, metrics and callbacks.
///
/// `train` shuffles with the counter-based RNG, cuts mini-batches, calls the rule's `step`, and
/// reports per-epoch metrics. Every random draw (shuffle order, forward noise, write noise)
/// comes from a stream addressed by (seed, epoch, batch): the same seed gives bitwise-identical
/// weights, whatever else runs.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include <xtensor/xtensor.hpp>

#include <pnn/core/threads.hpp>
#include <pnn/data/dataset.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/work.hpp>
#include <pnn/train/data_parallel.hpp>

namespace pnn {

/// Metrics of one epoch. `extra` holds named values added by callbacks (alignment angles, …).
struct epoch_metrics {
  std::size_t epoch = 0;  ///< 1-based
  double train_loss = 0;
  double train_accuracy = 0;
  double test_loss = std::nan("");
  double test_accuracy = std::nan("");
  double seconds = 0;  ///< training time of the epoch (evaluation excluded)
  double samples_per_second = 0;  ///< training throughput: samples / `seconds`
  double eval_seconds = 0;  ///< time of the test-set evaluation after the epoch (`train_options::test`)
  /// What the epoch's training steps did physically (with `train_options::cost`; evaluation not included).
  physical_events events{};
  /// The matrix kernels' digital work of the epoch's training steps (digital layers, gradients,
  /// twins; simulated physics excluded, simd/work.hpp) on the calling thread.
  simd::kernel_work digital_work{};
  std::map<std::string, double> extra{};
};

/// Per-epoch metrics of a training run.
using history = std::vector<epoch_metrics>;

/// Called after every epoch with its metrics (which it may extend); returning `false` stops.
using epoch_callback = std::function<bool(epoch_metrics&)>;

/// When to draw a progress bar on stderr.
enum class progress_mode { automatic, always, never };

/// \brief Data-parallel steps of `train` (pnn/train/data_parallel.hpp): each batch is cut into
/// `shards` fixed micro-shards, this process estimates its part of them, `sum_float` or
/// `sum_double` (by the network's value type) sums every part's node in the fixed tree, and every
/// process programs the same update. Same seed, batch and `shards` ⇒ bitwise the same weights on
/// 1, 2 or 4 processes. It is not bitwise the plain step's training (whole-batch estimate): the
/// sum over shards rounds differently, and perturbative rules draw one perturbation per shard.
///
/// The sum must replace the span, on every part, with the parts' spans summed pairwise in the
/// tree `parallel::tree_sum` follows: parts 2j and 2j+1 first, then pairs of pairs (with MPI: a
/// recursive-halving all-reduce whose pairs follow the part numbers; tools/pnn_bench/distribute).
/// The span holds the node (`parallel::flatten`) and then the part's summed loss and correct
/// count and a failure flag. Physical substrates: every process programs its own replica, so a cost counter on each
/// counts that replica's reads of its part and its programming.
///
/// `factored`: the layers whose update is an outer product that moves fewer values as its
/// factors than dense (`parallel::factor_layers` at the batch's factor rows: the batch, twice it
/// for a rule that declares `factor_rows_per_sample = 2`, as EP's two phases) leave the sum;
/// every part's factor records (`parallel::estimate_part`'s `factors`) are gathered with
/// `gather_float`/`gather_double` and formed on every part by `parallel::combine_factors`, in
/// the same tree: bitwise the dense exchange's weights, with fewer values moved. A rule whose
/// estimate is not a product of factors (perturbative rules) sends its formed update inside
/// its records, more values than the sum: such rules (no `factored_updates`) keep the dense
/// exchange whatever `factored` says.
struct data_parallel_options {
  std::size_t shards = 0;  ///< micro-shards per batch (a power of two); 0: the plain `rule.step`
  std::size_t parts = 1;   ///< processes sharing each batch (a power of two, ≤ shards)
  std::size_t part = 0;    ///< this process
  std::function<void(std::span<float>)> sum_float{};    ///< the all-reduce for float networks (parts > 1)
  std::function<void(std::span<double>)> sum_double{};  ///< the all-reduce for double networks (parts > 1)
  bool factored = false;  ///< gather the factors of the layers that move fewer values so [false]
  /// The all-gather of factor records for float networks (parts > 1 and `factored`): every
  /// part's `mine`, concatenated in part order, into `all` on every part (lengths may differ).
  std::function<void(std::span<const float> mine, std::vector<float>& all)> gather_float{};
  /// `gather_float` for double networks.
  std::function<void(std::span<const double> mine, std::vector<double>& all)> gather_double{};
};

/// The layers that a data-parallel step with `factored` exchanges as factor records, for a
/// batch of `rows` samples: `parallel::factor_layers` at the rule's factor rows (the batch;
/// twice it for a rule declaring `factor_rows_per_sample = 2`, as EP's two phases), none for a
/// rule without `factored_updates`. The same on every process: shapes and the batch decide.
template <class Rule, class Net>
[[nodiscard]] parallel::layer_mask<Net> factored_exchange_layers(const Net& net, std::size_t rows) {
  if constexpr (requires { requires Rule::factored_updates; }) {
    std::size_t per_sample = 1;
    if constexpr (requires { Rule::factor_rows_per_sample; }) per_sample = std::size_t(Rule::factor_rows_per_sample);
    return parallel::factor_layers(net, rows * per_sample);
  } else {
    return {};
  }
}

/// Settings of `train`.
struct train_options {
  std::size_t epochs = 10;
  /// The first epoch to run (1-based): a run resumed from a checkpoint written after epoch k
  /// sets `first_epoch = k + 1` and draws the same shuffles and noise as the uninterrupted run.
  std::size_t first_epoch = 1;
  std::size_t batch = 64;
  std::uint64_t seed = 0;
  /// The generator of every stream training draws (shuffles, noise, pulses, perturbations):
  /// `ars` is faster on cores with AES instructions; the two give different streams.
  rng_engine engine = rng_engine::philox;
  bool shuffle = true;
  const data::dataset* test = nullptr;  ///< evaluated after each epoch when set
  std::size_t eval_batch = 1000;
  progress_mode progress = progress_mode::automatic;  ///< automatic: a bar only on a terminal
  bool log = false;                                   ///< a line per epoch on stderr
  std::vector<epoch_callback> callbacks{};
  /// When set, attached to the network's tiles for the training steps only (detached for
  /// evaluation and callbacks); each epoch's events land in `epoch_metrics::events`.
  cost_counter* cost = nullptr;
  /// Data-parallel steps (off by default): `data_parallel_options`.
  data_parallel_options data_parallel{};
};

/// Loss and accuracy of a network on a data set.
struct evaluation {
  double loss = 0;
  double accuracy = 0;
};

namespace detail {
/// Copies batch rows [r0, r1) — data set rows `order[first + r0 .. first + r1)` of `src` — into
/// the same rows of `dst`, which has them.
template <class T>
void copy_rows(const xt::xtensor<float, 2>& src, const std::vector<std::size_t>& order, std::size_t first,
               std::size_t r0, std::size_t r1, xt::xtensor<T, 2>& dst) noexcept {
  const std::size_t cols = src.shape()[1];
  // Ask for rows a few ahead while this one is copied, so the copy does not wait on memory
  // one row at a time.
  constexpr std::size_t ahead = 4;
  for (std::size_t q = r0 + 1; q < r0 + ahead && q < r1; ++q)
    for (std::size_t c = 0; c < cols; c += 64 / sizeof(float)) __builtin_prefetch(src.data() + order[first + q] * cols + c);
  for (std::size_t r = r0; r < r1; ++r) {
    if (r + ahead < r1) {
      const float* next = src.data() + order[first + r + ahead] * cols;
      for (std::size_t c = 0; c < cols; c += 64 / sizeof(float)) __builtin_prefetch(next + c);
    }
    const float* s = src.data() + order[first + r] * cols;
    T* d = dst.data() + r * cols;
    // GCC 12 leaves the element loop scalar at -O2 (it would need an alias check): memcpy
    // copies a 784-value row 2–4× faster, a tenth of a backprop step of the 784-256-10 MLP.
    if constexpr (std::is_same_v<T, float>)
      std::memcpy(d, s, cols * sizeof(float));
    else
      for (std::size_t c = 0; c < cols; ++c) d[c] = static_cast<T>(s[c]);
  }
}

/// Copies rows `order[first .. first + count)` of `src` into `dst` (count × cols). A large batch
/// is split between the kernels' threads by rows: the copy waits on memory (shuffled rows are
/// scattered over the data set), and each thread then holds half the batch in its own cache,
/// so the next product's threads pull equal shares from each other instead of all from one.
template <class T>
void gather_rows(const xt::xtensor<float, 2>& src, const std::vector<std::size_t>& order, std::size_t first,
                 std::size_t count, xt::xtensor<T, 2>& dst) {
  const std::size_t cols = src.shape()[1];
  if (dst.shape()[0] != count || dst.shape()[1] != cols) dst.resize({count, cols});
  // A thread gets at least ~16 rows of 784 values: less is not worth waking it.
  const std::size_t max_team = count * cols / 12544;
  ::pnn::detail::parallel_team(max_team, [&](std::size_t t, std::size_t team) noexcept {
    const auto [r0, r1] = ::pnn::detail::team_range(count, 1, t, team);
    if (r0 < r1) copy_rows(src, order, first, r0, r1, dst);
  });
}

/// Reusable buffers of data-parallel steps: the transported array and the combined update.
template <class Net>
struct data_parallel_buffers {
  std::vector<typename Net::value_type> flat, factors, records;
  gradients<Net> update;
  bool shaped = false;
};

/// One data-parallel step (`data_parallel_options`): this part's estimate, the sum over parts,
/// the update programmed as `step` would program it (write noise from `g.split(2^20)`).
template <class Net, class Rule, class Loss>
step_result data_parallel_step(Net& net, Rule& rule, const Loss& loss, const xt::xtensor<typename Net::value_type, 2>& x,
                               const xt::xtensor<typename Net::value_type, 2>& t, const rng& g,
                               const data_parallel_options& dp, data_parallel_buffers<Net>& buf) {
  using T = typename Net::value_type;
  if constexpr (!requires { rule.kept_state_for(net); }) {
    throw_error(std::string("pnn::train: rule '") + std::string(Rule::name) +
                "' keeps no state to estimate with, so it cannot take data-parallel steps");
  } else {
    auto& s = rule.kept_state_for(net);
    const parallel::shard_plan plan{dp.shards, dp.parts, dp.part};
    if (!buf.shaped) {
      buf.update = gradients<Net>(net);
      buf.shaped = true;
    }
    auto& flat = buf.flat;
    const std::size_t n = x.shape()[0];
    // The same on every part: it depends on the network's shape and the batch only.
    const parallel::layer_mask<Net> as_factors =
        dp.factored ? factored_exchange_layers<Rule>(net, n) : parallel::layer_mask<Net>{};
    // A part whose shards fail (a NaN in its rows) still takes part in the sum, with a flag,
    // so that no other process waits for it forever; then every part refuses the step (before
    // the gather, which every part then skips alike).
    std::string failure;
    try {
      double loss_sum = 0;
      std::size_t correct = 0;
      buf.factors.clear();
      const auto& node =
          parallel::detail::estimate_part_in_tree(rule, net, s, x, t, loss, g, plan, as_factors, buf.factors, loss_sum, correct);
      parallel::flatten_into(node, flat, as_factors);
      flat.push_back(T(loss_sum));
      flat.push_back(T(correct));
      flat.push_back(T(0));
    } catch (const pnn::error& e) {
      failure = e.what();
      buf.factors.clear();
      flat.assign(parallel::flat_size(buf.update, as_factors) + 3, T(0));
      flat.back() = T(1);
    }
    if (dp.parts > 1) {
      if constexpr (std::is_same_v<T, float>) dp.sum_float(std::span<float>(flat));
      else dp.sum_double(std::span<double>(flat));
    }
    if (!failure.empty()) throw_error(failure);
    if (flat.back() != T(0))
      throw_error("data-parallel step: another part's estimate failed (its process reports why); no part programs this update");
    parallel::unflatten<Net>(std::span<const T>(flat).first(flat.size() - 3), buf.update, as_factors);
    if (std::find(as_factors.begin(), as_factors.end(), true) != as_factors.end()) {
      std::span<const T> records(buf.factors);
      if (dp.parts > 1) {
        if constexpr (std::is_same_v<T, float>) dp.gather_float(std::span<const float>(buf.factors), buf.records);
        else dp.gather_double(std::span<const double>(buf.factors), buf.records);
        records = std::span<const T>(buf.records);
      }
      parallel::combine_factors<Net>(buf.update, records, net, n, dp.shards, as_factors);
    }
    rng gp = g.split(std::uint64_t(1) << 20);
    parallel::apply_update(rule, net, s, buf.update, gp);
    const double correct = double(flat[flat.size() - 2]);
    return {double(flat[flat.size() - 3]) / double(n), correct > 0 ? static_cast<std::size_t>(correct + 0.5) : 0, n};
  }
}

inline void draw_progress(std::size_t epoch, std::size_t epochs, std::size_t done, std::size_t total, double loss) {
  const int width = 30;
  const int filled = total == 0 ? width : static_cast<int>(double(width) * double(done) / double(total));
  std::fprintf(stderr, "\repoch %zu/%zu [", epoch, epochs);
  for (int i = 0; i < width; ++i) std::fputc(i < filled ? '=' : ' ', stderr);
  std::fprintf(stderr, "] %zu/%zu loss %.4f", done, total, loss);
  std::fflush(stderr);
}
}  // namespace detail

/// Loss and accuracy of `net` on `set`, in batches of `batch`; forward noise from `g`.
template <class Net, class Loss>
evaluation evaluate(const Net& net, const Loss& loss, const data::dataset& set, rng& g, std::size_t batch = 1000) {
  using T = typename Net::value_type;
  PNN_EXPECTS(batch > 0, "pnn::evaluate: batch must be positive");
  if (set.features() != net.input_size() || set.outputs() != net.output_size())
    throw_error("pnn::evaluate: data set '" + set.name + "' has " + std::to_string(set.features()) + " inputs and " +
                std::to_string(set.outputs()) + " outputs; the network has " + std::to_string(net.input_size()) +
                " and " + std::to_string(net.output_size()));
  evaluation e;
  if (set.size() == 0) return e;
  double total = 0;
  std::size_t correct = 0;
  std::vector<std::size_t> order(set.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  xt::xtensor<T, 2> xb, tb;
  for (std::size_t first = 0, k = 0; first < set.size(); first += batch, ++k) {
    const std::size_t count = std::min(batch, set.size() - first);
    detail::gather_rows(set.inputs, order, first, count, xb);
    detail::gather_rows(set.targets, order, first, count, tb);
    rng gb = g.split(k);
    auto y = forward(net, xb, gb);
    total += double(loss.value(y.data(), tb.data(), count, net.output_size())) * double(count);
    correct += detail::count_correct<T>(y.data(), tb.data(), count, net.output_size());
  }
  e.loss = total / double(set.size());
  e.accuracy = double(correct) / double(set.size());
  return e;
}

/// `evaluate` with noise drawn from the network's own seed.
template <class Net, class Loss>
evaluation evaluate(const Net& net, const Loss& loss, const data::dataset& set, std::size_t batch = 1000) {
  rng g(net.initial_seed(), 0xe7a1);
  return evaluate(net, loss, set, g, batch);
}

/// Trains `net` with `rule` on `set` for `opt.epochs` epochs of mini-batches.
/// \pre `set` matches the network's input and output sizes; `opt.batch > 0`.
template <class Net, class Rule, class Loss>
  requires learning_rule<Rule, Net, Loss>
history train(Net& net, Rule& rule, const Loss& loss, const data::dataset& set, const train_options& opt = {}) {
  using T = typename Net::value_type;
  if (opt.batch == 0) throw_error("pnn::train: batch must be positive");
  if (opt.first_epoch == 0) throw_error("pnn::train: first_epoch is 1-based and must be positive");
  if (set.size() == 0) throw_error("pnn::train: empty training set '" + set.name + "'");
  if (set.features() != net.input_size() || set.outputs() != net.output_size())
    throw_error("pnn::train: data set '" + set.name + "' has " + std::to_string(set.features()) + " inputs and " +
                std::to_string(set.outputs()) + " outputs; the network has " + std::to_string(net.input_size()) +
                " and " + std::to_string(net.output_size()));
  const data_parallel_options& dp = opt.data_parallel;
  if (dp.shards != 0) {
    parallel::shard_plan{dp.shards, dp.parts, dp.part}.validate();
    const bool has_sum = std::is_same_v<T, float> ? bool(dp.sum_float) : bool(dp.sum_double);
    if (dp.parts > 1 && !has_sum)
      throw_error("pnn::train: data-parallel steps over " + std::to_string(dp.parts) + " parts need data_parallel." +
                  (std::is_same_v<T, float> ? "sum_float" : "sum_double") + ", the all-reduce between them");
    const bool has_gather = std::is_same_v<T, float> ? bool(dp.gather_float) : bool(dp.gather_double);
    if (dp.parts > 1 && dp.factored && !has_gather)
      throw_error("pnn::train: a factored exchange over " + std::to_string(dp.parts) + " parts needs data_parallel." +
                  (std::is_same_v<T, float> ? "gather_float" : "gather_double") + ", the all-gather of factor records");
  } else if (dp.parts != 1) {
    throw_error("pnn::train: data_parallel.parts = " + std::to_string(dp.parts) + " without shards; set data_parallel.shards");
  }
  detail::data_parallel_buffers<Net> dp_buffers;
  const bool bar = opt.progress == progress_mode::always ||
                   (opt.progress == progress_mode::automatic && ::isatty(STDERR_FILENO) == 1);
  history h;
  std::vector<std::size_t> order(set.size());
  // Two batches: while a step trains on one, an idle thread of the kernels' team copies the
  // next into the other (`detail::side_task`); the copy waits on memory, for a tenth of a
  // one-thread step of the 784-256-10 MLP.
  std::array<xt::xtensor<T, 2>, 2> xbs, tbs;
  // max |x| of each piece of a copied batch (+∞: not finite; none for the epoch's first batch,
  // gathered before its step), so that its step need not check it again (`vouch_for_batch`).
  std::array<std::vector<double>, 2> piece_max;
  const rng root(opt.seed, 0x7a1, opt.engine);
  for (std::size_t epoch = opt.first_epoch; epoch <= opt.epochs; ++epoch) {
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (opt.shuffle) {
      rng gs = root.split(epoch).split(0);
      for (std::size_t i = order.size() - 1; i > 0; --i)
        std::swap(order[i], order[gs.uniform_int(static_cast<std::uint32_t>(i + 1))]);
    }
    epoch_metrics m;
    m.epoch = epoch;
    double loss_sum = 0;
    std::size_t correct = 0, seen = 0;
    const std::size_t batches = (set.size() + opt.batch - 1) / opt.batch;
    physical_events events0{};
    // Detached again however the epoch ends: a throwing step must not leave the tiles pointing
    // at a counter the caller may destroy.
    struct attachment {
      Net* net = nullptr;
      ~attachment() {
        if (net != nullptr) attach_cost_counter(*net, nullptr);
      }
    } attached;
    if (opt.cost != nullptr) {
      attach_cost_counter(net, opt.cost);
      attached.net = &net;
      events0 = opt.cost->totals();
    }
    const simd::kernel_work work0 = simd::kernel_work_on_this_thread();
    const auto t0 = std::chrono::steady_clock::now();
    const auto batch_rows = [&](std::size_t b) { return std::min(opt.batch, set.size() - b * opt.batch); };
    if (batches > 0) {
      detail::gather_rows(set.inputs, order, 0, batch_rows(0), xbs[0]);
      detail::gather_rows(set.targets, order, 0, batch_rows(0), tbs[0]);
    }
    for (std::size_t b = 0; b < batches; ++b) {
      const std::size_t first = b * opt.batch;
      const std::size_t count = batch_rows(b);
      const auto& xb = xbs[b % 2];
      const auto& tb = tbs[b % 2];
      // The next batch, sized here (the copy then allocates nothing and cannot throw); the
      // guard waits for it also when the step throws.
      const bool more = b + 1 < batches;
      auto& xn = xbs[(b + 1) % 2];
      auto& tn = tbs[(b + 1) % 2];
      if (more) {
        detail::resize_if_needed(xn, batch_rows(b + 1), set.inputs.shape()[1]);
        detail::resize_if_needed(tn, batch_rows(b + 1), set.targets.shape()[1]);
      }
      // In pieces of 8 rows (25 KB of Fashion-MNIST), so that a team forked by the step waits
      // at most one piece for the thread copying; the rest is copied between the step's teams.
      constexpr std::size_t piece_rows = 8;
      const std::size_t next_rows = more ? batch_rows(b + 1) : 0;
      const std::size_t next_pieces = (next_rows + piece_rows - 1) / piece_rows;
      auto& next_max = piece_max[(b + 1) % 2];
      next_max.assign(next_pieces, HUGE_VAL);  // sized before the copy: it allocates nothing
      auto copy_next = [&](std::size_t piece) noexcept {
        const std::size_t r0 = piece * piece_rows, r1 = std::min(r0 + piece_rows, next_rows);
        detail::copy_rows(set.inputs, order, first + opt.batch, r0, r1, xn);
        detail::copy_rows(set.targets, order, first + opt.batch, r0, r1, tn);
        // The piece is still in this core's cache: checking it here spares the step a pass
        // over the whole batch on the other core.
        const std::size_t cols = xn.shape()[1];
        next_max[piece] = simd::finite_abs_max<T>((r1 - r0) * cols, xn.data() + r0 * cols);
      };
      detail::side_task next(copy_next, next_pieces);
      struct next_batch {
        detail::side_task& task;
        detail::thread_team& team = detail::thread_team::of_this_thread();
        explicit next_batch(detail::side_task& t) noexcept : task(t) { team.post(task); }
        ~next_batch() { team.wait(task); }
        next_batch(const next_batch&) = delete;
        next_batch& operator=(const next_batch&) = delete;
      } const copying(next);
      rng gb = root.split(epoch).split(b + 1);
      double batch_max = b == 0 ? -1.0 : 0.0;  // the first was gathered unchecked
      if (b != 0)
        for (const double v : piece_max[b % 2]) batch_max = std::max(batch_max, v);
      const detail::vouch_for_batch vouched(xb.data(), xb.size(), batch_max);
      step_result r;
      try {
        r = dp.shards != 0 ? detail::data_parallel_step(net, rule, loss, xb, tb, gb, dp, dp_buffers)
                           : rule.step(net, xb, tb, loss, gb);
      } catch (const pnn::error& e) {
        // Which step failed is known only here; the rule has already said which layer and why.
        throw_error("pnn::train: epoch " + std::to_string(epoch) + ", batch " + std::to_string(b + 1) + " of " +
                    std::to_string(batches) + " (samples " + std::to_string(first) + "-" +
                    std::to_string(first + count - 1) + " in shuffled order): " + e.what());
      }
      loss_sum += r.loss * double(r.count);
      correct += r.correct;
      seen += r.count;
      if (bar && (b % 16 == 0 || b + 1 == batches))
        detail::draw_progress(epoch, opt.epochs, seen, set.size(), loss_sum / double(seen));
    }
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    m.samples_per_second = m.seconds > 0 ? double(seen) / m.seconds : 0;
    m.digital_work = simd::kernel_work_on_this_thread() - work0;
    if (opt.cost != nullptr) {
      m.events = opt.cost->totals() - events0;
      attach_cost_counter(net, nullptr);
      attached.net = nullptr;
    }
    m.train_loss = loss_sum / double(seen);
    m.train_accuracy = double(correct) / double(seen);
    if (opt.test != nullptr) {
      rng ge = root.split(epoch).split(0xe7a1);
      const auto te = std::chrono::steady_clock::now();
      const evaluation e = evaluate(net, loss, *opt.test, ge, opt.eval_batch);
      m.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - te).count();
      m.test_loss = e.loss;
      m.test_accuracy = e.accuracy;
    }
    if (bar) std::fputc('\n', stderr);
    bool go_on = true;
    for (const auto& cb : opt.callbacks) go_on = cb(m) && go_on;
    if (opt.log || (!bar && opt.progress == progress_mode::always))
      std::fprintf(stderr, "epoch %zu: train loss %.4f acc %.4f test acc %.4f (%.1f s, %.0f samples/s)\n", epoch,
                   m.train_loss, m.train_accuracy, m.test_accuracy, m.seconds, m.samples_per_second);
    h.push_back(std::move(m));
    if (!go_on) break;
  }
  return h;
}

}  // namespace pnn
