// SPDX-License-Identifier: MIT
/// \file
/// \brief `parallel::estimate_part` and `parallel::combine_parts`: one training step spread over
/// processes, with bitwise the same update whatever their number.
///
/// Data-parallel training gives each process a part of every global batch and combines the
/// parts' estimates (with MPI, an all-reduce). Floating-point addition is not associative, so a
/// reduction whose order follows the number of processes gives weights that drift apart with
/// it. Here the batch is always cut into the same `shards` micro-shards, whatever the number of
/// processes, and their estimates are summed in one fixed binary tree (`tree_sum`): with
/// power-of-two counts, the shards of one part form a subtree, so a part's node is computed
/// alone, and the parts' nodes are finished by the top of the same tree. One process, two or
/// four: the same additions in the same order, the same update to the last bit (tests/
/// data_parallel.cpp). Transport is the caller's (MPI, threads, files): `flatten` and
/// `unflatten` turn an estimate into one array of `value_type` and back.
///
/// The combined update is the mean of the shards' estimates weighted by their rows, which for
/// the rules whose estimate is a mean over samples (backprop, FA, DFA, the layer-local rules) is
/// the whole batch's estimate up to rounding. Rules that draw one perturbation per batch draw
/// one per shard instead (each from its shard's stream `g.split(k)`, the same on every
/// process). Every process then programs the same update with the same stream
/// (`apply_update`), so physical substrates with write noise stay identical too.
///
/// A layer whose update is a batch of outer products (`ĝ_W = s · δᵀh`: backprop, FA, DFA, EP
/// on a dense layer) may travel as its factors instead: n rows of `(h, δ)` are n·(In + Out)
/// values against In·Out for the dense update, fewer when n < 2·In·Out/(In + Out) once the
/// all-reduce's factor 2 is counted (`factor_layers`). `estimate_part` with a layer mask keeps
/// those layers' factors per shard in one array (`part_estimate::factors`); the processes
/// gather every part's array, and `combine_factors` forms each shard's dense update from its
/// factors with the very operations the rule would have used, then sums the shards in the same
/// tree: bitwise the update of the dense exchange, for any number of processes. The price is
/// compute: every process forms `δᵀh` for the whole batch of those layers, not for its part.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/gemm.hpp>

namespace pnn::parallel {

/// How a global batch is cut and which shards one process computes: `shards` micro-shards, of
/// which part `part` of `parts` owns the aligned block `[part·shards/parts, (part+1)·shards/parts)`.
/// \pre `shards` and `parts` are powers of two, `parts ≤ shards`, `part < parts` (`validate`).
struct shard_plan {
  std::size_t shards = 8;  ///< micro-shards per global batch, the same on every process count
  std::size_t parts = 1;   ///< processes sharing the batch
  std::size_t part = 0;    ///< this process

  /// Throws `pnn::error` for an impossible plan.
  void validate() const {
    const auto pow2 = [](std::size_t v) { return v != 0 && (v & (v - 1)) == 0; };
    if (!pow2(shards)) throw_error("parallel::shard_plan: shards = " + std::to_string(shards) + " must be a power of two");
    if (!pow2(parts)) throw_error("parallel::shard_plan: parts = " + std::to_string(parts) + " must be a power of two");
    if (parts > shards)
      throw_error("parallel::shard_plan: " + std::to_string(parts) + " parts cannot share " + std::to_string(shards) +
                  " shards; give at least as many shards as processes");
    if (part >= parts)
      throw_error("parallel::shard_plan: part " + std::to_string(part) + " of " + std::to_string(parts) + " does not exist");
  }
  /// The first shard of this part.
  [[nodiscard]] std::size_t first_shard() const noexcept { return part * (shards / parts); }
  /// The shards of this part.
  [[nodiscard]] std::size_t shards_per_part() const noexcept { return shards / parts; }
};

/// Rows `[begin, end)` of shard `k` of a batch of `n` rows: the first `n mod shards` shards hold
/// one row more; shards beyond `n` rows are empty.
[[nodiscard]] inline std::pair<std::size_t, std::size_t> shard_rows(std::size_t n, std::size_t shards,
                                                                    std::size_t k) noexcept {
  const std::size_t base = n / shards, extra = n % shards;
  const std::size_t begin = k * base + std::min(k, extra);
  return {begin, begin + base + (k < extra ? 1 : 0)};
}

/// Sums `items` in place in a fixed binary tree: adjacent pairs first (`items[0] += items[1]`,
/// `items[2] += items[3]`, …), then pairs of pairs, until the sum is in `items[0]`. For a
/// power-of-two count, the sum of an aligned block of `2^j` items is a node of the tree over
/// all of them, computed by exactly the same additions.
template <class G>
void tree_sum(std::span<G> items) {
  for (std::size_t stride = 1; stride < items.size(); stride *= 2)
    for (std::size_t i = 0; i + stride < items.size(); i += 2 * stride) items[i] += items[i + stride];
}

/// This process's node of the step's reduction tree: for each of its shards `k`, the rule's
/// estimate on the shard's rows of `x` and `target` (with stream `g.split(k)`), weighted by the
/// shard's share of the batch's rows, summed by `tree_sum`. Nothing is programmed.
/// \pre `plan` valid; `x` (n × inputs) and `target` (n × outputs) with the same n ≥ 1, finite
/// (the rule checks each shard and throws `pnn::error`).
template <class Rule, class Net, class State, class Loss>
[[nodiscard]] gradients<Net> estimate_part(Rule& rule, Net& net, State& s, const xt::xtensor<typename Net::value_type, 2>& x,
                                           const xt::xtensor<typename Net::value_type, 2>& target, const Loss& loss,
                                           const rng& g, const shard_plan& plan);

/// The step's update from every part's node (`nodes[p]` from part `p`): the top of the same
/// tree. Every process that holds all nodes gets the same update, bit for bit.
/// \pre `nodes` non-empty, a power-of-two count, all shaped like one network.
template <class Net>
[[nodiscard]] gradients<Net> combine_parts(std::vector<gradients<Net>> nodes) {
  if (nodes.empty() || (nodes.size() & (nodes.size() - 1)) != 0)
    throw_error("parallel::combine_parts: " + std::to_string(nodes.size()) + " parts; give a power of two");
  tree_sum(std::span<gradients<Net>>(nodes));
  return std::move(nodes.front());
}

/// Programs a combined update as the rule's `step` would: the rule's optimiser shapes it (with
/// `s`'s optimiser state), a non-finite update is refused with the network unchanged, and each
/// layer's substrate programs it with write noise from `g`. Every process calls it with the same
/// update and stream, so their networks stay identical.
template <class Rule, class Net, class State>
void apply_update(Rule& rule, Net& net, State& s, gradients<Net>& update, rng& g) {
  ::pnn::detail::finish_step(net, update, rule.parameters().optimizer, s.opt, g, Rule::name);
}

/// One flag per layer of `Net`: which layers travel as factors (`factor_layers`).
template <class Net>
using layer_mask = std::array<bool, Net::num_layers>;

/// Every layer's weight and bias estimates, then every layer's parameter-space estimate, then
/// one flag per layer (1: the estimate is in the tile's parameter space), in one array for
/// transport between processes. Layers set in `skip` (those that travel as factors) are left
/// out, weights, bias and parameters; their flag stays.
template <class Net>
[[nodiscard]] std::vector<typename Net::value_type> flatten(const gradients<Net>& grad, const layer_mask<Net>& skip = {});

/// `flatten` into `out`, whose storage is reused (a step's transport buffer).
template <class Net>
void flatten_into(const gradients<Net>& grad, std::vector<typename Net::value_type>& out, const layer_mask<Net>& skip = {}) {
  out.clear();
  for (std::size_t i = 0; i < Net::num_layers; ++i) {
    if (skip[i]) continue;
    const auto& l = grad.layers[i];
    out.insert(out.end(), l.weight.data(), l.weight.data() + l.weight.size());
    out.insert(out.end(), l.bias.data(), l.bias.data() + l.bias.size());
  }
  for (std::size_t i = 0; i < Net::num_layers; ++i)
    if (!skip[i]) out.insert(out.end(), grad.layers[i].parameter.data(), grad.layers[i].parameter.data() + grad.layers[i].parameter.size());
  for (const auto& l : grad.layers) out.push_back(l.parameter_space ? 1 : 0);
}

/// The number of values `flatten(grad, skip)` gives, without forming them.
template <class Net>
[[nodiscard]] std::size_t flat_size(const gradients<Net>& grad, const layer_mask<Net>& skip = {}) noexcept {
  std::size_t need = Net::num_layers;
  for (std::size_t i = 0; i < Net::num_layers; ++i)
    if (!skip[i]) need += grad.layers[i].weight.size() + grad.layers[i].bias.size() + grad.layers[i].parameter.size();
  return need;
}

template <class Net>
std::vector<typename Net::value_type> flatten(const gradients<Net>& grad, const layer_mask<Net>& skip) {
  std::vector<typename Net::value_type> out;
  flatten_into(grad, out, skip);
  return out;
}

/// The inverse of `flatten` (with the same `skip`) into `into`, which is shaped like the
/// sender's network (e.g. `gradients<Net>(net)`); skipped layers are not touched.
/// \throws pnn::error when `flat` has another length.
template <class Net>
void unflatten(std::span<const typename Net::value_type> flat, gradients<Net>& into, const layer_mask<Net>& skip = {}) {
  const std::size_t need = flat_size(into, skip);
  if (flat.size() != need)
    throw_error("parallel::unflatten: " + std::to_string(flat.size()) + " values for an estimate of " + std::to_string(need) +
                "; the sender's network has another shape");
  std::size_t at = 0;
  const auto take = [&](auto& a) {
    if (a.size() != 0) std::memcpy(a.data(), flat.data() + at, a.size() * sizeof(typename Net::value_type));
    at += a.size();
  };
  for (std::size_t i = 0; i < Net::num_layers; ++i) {
    if (skip[i]) continue;
    take(into.layers[i].weight);
    take(into.layers[i].bias);
    into.layers[i].factored = false;
  }
  for (std::size_t i = 0; i < Net::num_layers; ++i)
    if (!skip[i]) take(into.layers[i].parameter);
  for (auto& l : into.layers) l.parameter_space = flat[at++] != 0;
}

/// The layers of `net` that move fewer values as factors than as a dense update, for a global
/// batch whose factors have `rows` rows (the batch for backprop, FA and DFA; twice it for EP's
/// two phases): dense layers whose tile has no parameters of its own, with
/// rows·(In + Out) < 2·In·Out. Per process and step, gathering everyone's factors receives
/// (P−1)/P of the batch's factors; the dense all-reduce (halving, then doubling) sends
/// 2·(P−1)/P of the update, so the comparison does not depend on P (tools/comm_model.py).
template <class Net>
[[nodiscard]] layer_mask<Net> factor_layers(const Net& net, std::size_t rows) {
  layer_mask<Net> m{};
  net.for_each_layer([&](const auto& l, std::size_t i) {
    using layer_t = std::remove_cvref_t<decltype(l)>;
    if constexpr (!requires { layer_t::pre_activation_extent; } && !parameterised_tile<typename layer_t::tile_type>) {
      const double in = double(l.tile.in_size()), out = double(l.tile.out_size());
      m[i] = double(rows) * (in + out) < 2 * in * out;
    }
  });
  return m;
}

/// A part's estimate ready for transport: `node`, this part's node of the reduction tree for
/// the layers that travel dense (the layers in the mask have an empty weight and a zero bias
/// there; `combine_factors` fills them), and `factors`, one
/// record per shard of the part and layer in the mask (read by `combine_factors`).
template <class Net>
struct part_estimate {
  gradients<Net> node;
  std::vector<typename Net::value_type> factors;
  /// The part's rows' summed loss and correct count, before the update (the step's metrics
  /// are the sums over parts, divided by the batch's rows); 0 for a rule that does not report
  /// them with its estimate.
  double loss_sum = 0;
  std::size_t correct = 0;
};

namespace detail {
// A factor record: kind (1: factors, 0: a dense update, for an estimate that came back formed),
// the shard's rows of the batch, the factors' rows, scale, then for factors the bias (Out),
// h (rows × In) and δ (rows × Out); for a dense update its weight (Out × In) and bias (Out).
// Bias, weight and scale are the rule's, before the shard's share of the batch is applied, so
// that the receiver makes the same operations.
template <class T>
void append_record(std::vector<T>& out, const layer_gradient<T>& l, std::size_t shard_rows) {
  if (!l.parameter_space && l.parameter.size() != 0)
    for (std::size_t k = 0; k < l.parameter.size(); ++k)
      if (l.parameter.data()[k] != T(0))
        throw_error("parallel::estimate_part: a layer with tile parameters cannot travel as factors; leave it out of the mask");
  if (l.parameter_space) throw_error("parallel::estimate_part: a parameter-space estimate cannot travel as factors");
  if (l.deferred()) {
    const std::size_t rows = l.input.shape()[0];
    if (double(rows) > double(std::numeric_limits<T>::max()) || rows > (std::size_t(1) << std::numeric_limits<T>::digits))
      throw_error("parallel::estimate_part: " + std::to_string(rows) + " rows of factors do not fit a record");
    out.push_back(T(1));
    out.push_back(T(shard_rows));
    out.push_back(T(rows));
    out.push_back(l.factor_scale);
    out.insert(out.end(), l.bias.data(), l.bias.data() + l.bias.size());
    out.insert(out.end(), l.input.data(), l.input.data() + l.input.size());
    out.insert(out.end(), l.delta.data(), l.delta.data() + l.delta.size());
  } else {
    out.push_back(T(0));
    out.push_back(T(shard_rows));
    out.push_back(T(0));
    out.push_back(T(0));
    out.insert(out.end(), l.weight.data(), l.weight.data() + l.weight.size());
    out.insert(out.end(), l.bias.data(), l.bias.data() + l.bias.size());
  }
}
}  // namespace detail

namespace detail {
// The buffers of a part's reduction tree, streamed: shard k's scaled estimate is pushed, and
// while the two newest nodes are at the same level they are added (the earlier += the later),
// which for a power-of-two count makes exactly `tree_sum`'s additions with log₂(count) + 1
// buffers. Kept per thread between steps, so that no weight-sized array is allocated per shard.
template <class Net>
struct part_tree {
  std::vector<gradients<Net>> nodes;
  std::vector<std::size_t> levels;
  std::size_t used = 0;

  gradients<Net>& push() {
    if (used == nodes.size()) {
      nodes.emplace_back();
      levels.push_back(0);
    }
    levels[used] = 0;
    return nodes[used++];
  }
  void settle() {
    while (used >= 2 && levels[used - 1] == levels[used - 2]) {
      nodes[used - 2] += nodes[used - 1];
      ++levels[used - 2];
      --used;
    }
  }
};

template <class Net>
part_tree<Net>& thread_part_tree() {
  thread_local part_tree<Net> tree;
  return tree;
}

// `into` = `share` · `e`'s dense estimate, in one pass per array (the same products as
// `gradients::operator*=` on a copy); masked layers are left empty with a zero bias, and no
// factors are kept (the node is summed, not programmed).
template <class Net, class T = typename Net::value_type>
void assign_scaled(gradients<Net>& into, const gradients<Net>& e, T share, const layer_mask<Net>& masked) {
  const auto scaled = [share](const auto& src, auto& dst) {
    if (dst.shape() != src.shape()) dst.resize(src.shape());
    const T* a = src.data();
    T* b = dst.data();
    for (std::size_t k = 0; k < src.size(); ++k) b[k] = a[k] * share;
  };
  for (std::size_t i = 0; i < Net::num_layers; ++i) {
    const auto& src = e.layers[i];
    auto& dst = into.layers[i];
    if (masked[i]) {
      if (dst.weight.size() != 0) dst.weight = xt::xtensor<T, 2>::from_shape({0, 0});
      if (dst.bias.shape() != src.bias.shape()) dst.bias.resize(src.bias.shape());
      dst.bias.fill(T(0));
      scaled(src.parameter, dst.parameter);
    } else {
      scaled(src.weight, dst.weight);
      scaled(src.bias, dst.bias);
      scaled(src.parameter, dst.parameter);
    }
    dst.parameter_space = src.parameter_space;
    dst.factored = false;
    dst.defer = false;
    dst.factor_scale = T(0);
  }
}

// Zero estimates shaped like `net` (masked layers empty): an empty shard's node.
template <class Net, class T = typename Net::value_type>
void assign_zero(gradients<Net>& into, const Net& net, const layer_mask<Net>& masked) {
  into.ensure_shape(net);
  for (std::size_t i = 0; i < Net::num_layers; ++i) {
    auto& l = into.layers[i];
    if (masked[i]) l.weight = xt::xtensor<T, 2>::from_shape({0, 0});
    l.weight.fill(T(0));
    l.bias.fill(T(0));
    l.parameter.fill(T(0));
    l.defer = false;
  }
}

// What `estimate_part` computes, with the node left in this thread's tree (valid until the
// thread's next call) and the records appended to `factors`.
template <class Rule, class Net, class State, class Loss>
const gradients<Net>& estimate_part_in_tree(Rule& rule, Net& net, State& s, const xt::xtensor<typename Net::value_type, 2>& x,
                                            const xt::xtensor<typename Net::value_type, 2>& target, const Loss& loss,
                                            const rng& g, const shard_plan& plan, const layer_mask<Net>& as_factors,
                                            std::vector<typename Net::value_type>& factors, double& loss_sum,
                                            std::size_t& correct) {
  using T = typename Net::value_type;
  plan.validate();
  const std::size_t n = x.shape()[0];
  if (n == 0 || target.shape()[0] != n)
    throw_error("parallel::estimate_part: " + std::to_string(n) + " input rows and " + std::to_string(target.shape()[0]) +
                " target rows; give the same number, at least one");
  auto& tree = thread_part_tree<Net>();
  tree.used = 0;
  xt::xtensor<T, 2> xs, ts;
  for (std::size_t j = 0; j < plan.shards_per_part(); ++j) {
    const std::size_t k = plan.first_shard() + j;
    // Plain variables, not a structured binding: the lambda below captures them (Clang 14
    // cannot capture a binding).
    const auto rows = shard_rows(n, plan.shards, k);
    const std::size_t begin = rows.first, end = rows.second;
    if (begin == end) {
      // An empty shard has no record (every process knows its rows) and adds zeros.
      assign_zero(tree.push(), net, as_factors);
      tree.settle();
      continue;
    }
    xs = xt::view(x, xt::range(begin, end), xt::all());
    ts = xt::view(target, xt::range(begin, end), xt::all());
    rng gk = g.split(k);
    const auto take = [&](const gradients<Net>& e) {
      for (std::size_t i = 0; i < Net::num_layers; ++i)
        if (as_factors[i]) append_record(factors, e.layers[i], end - begin);
      assign_scaled(tree.push(), e, T(end - begin) / T(n), as_factors);
      tree.settle();
    };
    if constexpr (requires(step_result* m) { rule.estimate_in_state(net, s, xs, ts, loss, gk, as_factors, m); }) {
      step_result m;
      take(rule.estimate_in_state(net, s, xs, ts, loss, gk, as_factors, &m));
      loss_sum += m.loss * double(m.count);
      correct += m.correct;
    } else {
      take(rule.estimate(net, s, xs, ts, loss, gk));
    }
  }
  PNN_EXPECTS(tree.used == 1, "parallel::estimate_part: the tree did not close");  // a power of two of shards per part
  return tree.nodes.front();
}
}  // namespace detail

/// `estimate_part`, with the layers in `as_factors` kept as factors per shard
/// (`part_estimate::factors`) instead of summed into the node; the rule's `estimate_factors`
/// leaves their dense update unformed. A rule without factored updates returns formed updates,
/// which then travel dense inside the records (correct, just no saving).
/// \pre as `estimate_part`; layers in `as_factors` have no tile parameters (`factor_layers`
/// never picks one; else `pnn::error`).
template <class Rule, class Net, class State, class Loss>
[[nodiscard]] part_estimate<Net> estimate_part(Rule& rule, Net& net, State& s, const xt::xtensor<typename Net::value_type, 2>& x,
                                               const xt::xtensor<typename Net::value_type, 2>& target, const Loss& loss,
                                               const rng& g, const shard_plan& plan, const layer_mask<Net>& as_factors) {
  part_estimate<Net> out;
  out.node = detail::estimate_part_in_tree(rule, net, s, x, target, loss, g, plan, as_factors, out.factors, out.loss_sum,
                                           out.correct);
  return out;
}

template <class Rule, class Net, class State, class Loss>
gradients<Net> estimate_part(Rule& rule, Net& net, State& s, const xt::xtensor<typename Net::value_type, 2>& x,
                             const xt::xtensor<typename Net::value_type, 2>& target, const Loss& loss, const rng& g,
                             const shard_plan& plan) {
  // No layer as factors: every estimate is formed, as by the rule's `estimate`.
  return estimate_part(rule, net, s, x, target, loss, g, plan, layer_mask<Net>{}).node;
}

/// The step's update of the layers in `as_factors`, written into `update` (whose other layers,
/// the dense exchange's result, are kept): for every shard of the batch of `n` rows in
/// `shards` micro-shards, its record from `records` (every part's `factors`, concatenated in
/// part order) is formed into the shard's dense update as the rule forms it (`s·δᵀh` by the
/// same GEMM), weighted by the shard's share, and the shards are summed in `tree_sum`'s tree:
/// the same bits as the dense exchange gives. `net` shapes the layers.
/// \throws pnn::error when `records` is truncated, too long, or of another network or batch.
template <class Net>
void combine_factors(gradients<Net>& update, std::span<const typename Net::value_type> records, const Net& net,
                     std::size_t n, std::size_t shards, const layer_mask<Net>& as_factors) {
  using T = typename Net::value_type;
  const auto fail = [](const std::string& why) {
    throw_error("parallel::combine_factors: " + why + " (the records come from another network, batch or mask)");
  };
  std::size_t at = 0;
  const auto read = [&](std::size_t count) {
    if (count > records.size() - at) fail("the records end early");
    const T* p = records.data() + at;
    at += count;
    return p;
  };
  if (shards == 0 || (shards & (shards - 1)) != 0 || n == 0)
    throw_error("parallel::combine_factors: " + std::to_string(shards) + " shards of " + std::to_string(n) +
                " rows; give a power of two and at least one row");
  std::array<std::size_t, Net::num_layers> outs{}, ins{};
  net.for_each_layer([&](const auto& layer, std::size_t i) {
    outs[i] = layer.tile.out_size();
    ins[i] = layer.tile.in_size();
  });
  // tree_sum's tree, summed as the shards arrive: after shard k, the two top nodes are added
  // (left += right) while they cover equal blocks, exactly the additions tree_sum makes, with
  // log₂(shards) + 1 buffers per layer instead of one per shard. The buffers are kept between
  // calls (per thread): fresh weight-sized allocations every step cost page faults.
  static thread_local std::array<std::vector<layer_gradient<T>>, Net::num_layers> stacks;
  std::array<std::size_t, Net::num_layers> depth{};
  const auto push = [&](std::size_t i) -> layer_gradient<T>& {
    auto& st = stacks[i];
    if (st.size() <= depth[i]) st.resize(depth[i] + 1);
    auto& l = st[depth[i]++];
    if (l.weight.shape()[0] != outs[i] || l.weight.shape()[1] != ins[i]) l.weight.resize({outs[i], ins[i]});
    if (l.bias.size() != outs[i]) l.bias.resize({outs[i]});
    return l;
  };
  const auto merge = [&](std::size_t i, std::size_t k) {
    // As gradients::operator+= does per layer.
    for (std::size_t c = k + 1; c % 2 == 0; c /= 2) {
      auto& left = stacks[i][depth[i] - 2];
      const auto& right = stacks[i][depth[i] - 1];
      simd::axpy<T>(left.weight.size(), T(1), right.weight.data(), left.weight.data());
      simd::axpy<T>(left.bias.size(), T(1), right.bias.data(), left.bias.data());
      --depth[i];
    }
  };
  for (std::size_t k = 0; k < shards; ++k) {
    const auto [begin, end] = shard_rows(n, shards, k);
    const T share = T(end - begin) / T(n);
    for (std::size_t i = 0; i < Net::num_layers; ++i) {
      if (!as_factors[i]) continue;
      auto& l = push(i);
      if (begin == end) {  // an empty shard adds zero, in its place in the tree
        l.weight.fill(T(0));
        l.bias.fill(T(0));
        merge(i, k);
        continue;
      }
      const T* head = read(4);
      const T kind = head[0], rows_t = head[2], scale = head[3];
      if (head[1] != T(end - begin)) {
        char got[32];
        std::snprintf(got, sizeof got, "%g", double(head[1]));
        fail("shard " + std::to_string(k) + " has " + std::to_string(end - begin) + " rows here, and a record for " +
             got + " rows");
      }
      if (kind == T(1)) {
        if (!(rows_t >= T(1)) || rows_t != std::floor(rows_t)) fail("a record has no rows");
        const auto rows = static_cast<std::size_t>(rows_t);
        std::copy_n(read(outs[i]), outs[i], l.bias.data());
        const T* h = read(rows * ins[i]);
        const T* d = read(rows * outs[i]);
        // The rule's own product (detail::outer_product_update), then the shard's share as
        // gradients::operator*= applies it on the dense path.
        simd::gemm_tn<T>(outs[i], ins[i], rows, scale, d, outs[i], h, ins[i], T(0), l.weight.data(), ins[i]);
      } else if (kind == T(0)) {
        std::copy_n(read(outs[i] * ins[i]), outs[i] * ins[i], l.weight.data());
        std::copy_n(read(outs[i]), outs[i], l.bias.data());
      } else {
        fail("a record of unknown kind");
      }
      simd::scale<T>(l.weight.size(), share, l.weight.data());
      simd::scale<T>(l.bias.size(), share, l.bias.data());
      merge(i, k);
    }
  }
  if (at != records.size()) fail(std::to_string(records.size() - at) + " values are left over");
  for (std::size_t i = 0; i < Net::num_layers; ++i) {
    if (!as_factors[i]) continue;
    auto& u = update.layers[i];
    auto& root = stacks[i][0];
    // Swapped, not moved: the stack keeps a buffer of the right shape for the next step.
    if (u.weight.shape() != root.weight.shape()) u.weight.resize({outs[i], ins[i]});
    if (u.bias.size() != outs[i]) u.bias.resize({outs[i]});
    std::swap(u.weight, root.weight);
    std::swap(u.bias, root.bias);
    u.defer = false;
    u.factored = false;
    u.parameter_space = false;
    if (u.parameter.size() != 0) u.parameter.fill(T(0));
  }
}

}  // namespace pnn::parallel
