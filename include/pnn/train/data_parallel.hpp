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
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/nn/gradients.hpp>

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
                                           const rng& g, const shard_plan& plan) {
  using T = typename Net::value_type;
  plan.validate();
  const std::size_t n = x.shape()[0];
  if (n == 0 || target.shape()[0] != n)
    throw_error("parallel::estimate_part: " + std::to_string(n) + " input rows and " + std::to_string(target.shape()[0]) +
                " target rows; give the same number, at least one");
  std::vector<gradients<Net>> nodes;
  nodes.reserve(plan.shards_per_part());
  for (std::size_t j = 0; j < plan.shards_per_part(); ++j) {
    const std::size_t k = plan.first_shard() + j;
    const auto [begin, end] = shard_rows(n, plan.shards, k);
    if (begin == end) {
      nodes.emplace_back(net);  // an empty shard adds zero, in its place in the tree
      continue;
    }
    const xt::xtensor<T, 2> xs = xt::view(x, xt::range(begin, end), xt::all());
    const xt::xtensor<T, 2> ts = xt::view(target, xt::range(begin, end), xt::all());
    rng gk = g.split(k);
    nodes.push_back(rule.estimate(net, s, xs, ts, loss, gk));
    nodes.back() *= T(end - begin) / T(n);
  }
  tree_sum(std::span<gradients<Net>>(nodes));
  return std::move(nodes.front());
}

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

/// Every layer's weight and bias estimates, then every layer's parameter-space estimate, then
/// one flag per layer (1: the estimate is in the tile's parameter space), in one array for
/// transport between processes.
template <class Net>
[[nodiscard]] std::vector<typename Net::value_type> flatten(const gradients<Net>& grad) {
  std::vector<typename Net::value_type> out;
  for (const auto& l : grad.layers) {
    out.insert(out.end(), l.weight.data(), l.weight.data() + l.weight.size());
    out.insert(out.end(), l.bias.data(), l.bias.data() + l.bias.size());
  }
  for (const auto& l : grad.layers) out.insert(out.end(), l.parameter.data(), l.parameter.data() + l.parameter.size());
  for (const auto& l : grad.layers) out.push_back(l.parameter_space ? 1 : 0);
  return out;
}

/// The inverse of `flatten` into `into`, which is shaped like the sender's network (e.g.
/// `gradients<Net>(net)`). \throws pnn::error when `flat` has another length.
template <class Net>
void unflatten(std::span<const typename Net::value_type> flat, gradients<Net>& into) {
  std::size_t need = Net::num_layers;
  for (const auto& l : into.layers) need += l.weight.size() + l.bias.size() + l.parameter.size();
  if (flat.size() != need)
    throw_error("parallel::unflatten: " + std::to_string(flat.size()) + " values for an estimate of " + std::to_string(need) +
                "; the sender's network has another shape");
  std::size_t at = 0;
  const auto take = [&](auto& a) {
    if (a.size() != 0) std::memcpy(a.data(), flat.data() + at, a.size() * sizeof(typename Net::value_type));
    at += a.size();
  };
  for (auto& l : into.layers) {
    take(l.weight);
    take(l.bias);
    l.factored = false;
  }
  for (auto& l : into.layers) take(l.parameter);
  for (auto& l : into.layers) l.parameter_space = flat[at++] != 0;
}

}  // namespace pnn::parallel
