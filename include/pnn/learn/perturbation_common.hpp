// SPDX-License-Identifier: MIT
/// \file
/// \brief What the perturbative rules share: access to every tile's parameters as one flat
/// vector (save, perturb, restore bit for bit), the forward-only state and the clean pass.
///
/// The parameters are the tiles' own (`pnn::get_tile_parameters`/`set_tile_parameters`: W and
/// b of a crossbar or digital tile, the phases and attenuators of an MZI mesh), so weight
/// perturbation and SPSA perturb what the hardware lets one perturb on every substrate.
/// docs/rules.md, "Forward-mode and perturbative local learning".
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/digital.hpp>
#include <pnn/physics/parameters.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/random.hpp>

namespace pnn::learn {

/// Finite-difference scheme of a perturbative estimate.
enum class finite_difference {
  forward,  ///< `[L(θ + σu) − L(θ)]/σ`: one extra pass per perturbation, bias O(σ)
  central   ///< `[L(θ + σu) − L(θ − σu)]/(2σ)`: two passes, bias O(σ²)
};

namespace perturb_detail {

/// True when every layer's tile exposes its parameters (a dense W, or its own parameter space).
template <class Net>
constexpr bool accessible_layers() {
  bool ok = true;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((ok = ok && parameter_accessible_tile<typename Net::template layer_type<I>::tile_type>), ...);
  }(std::make_index_sequence<Net::num_layers>{});
  return ok;
}

/// True when some layer's tile has a parameter space of its own (then the flat vectors are
/// `double`, so that its parameters save and restore exactly).
template <class Net>
constexpr bool any_parameter_space() {
  bool any = false;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((any = any || updates_in_parameter_space<typename Net::template layer_type<I>::tile_type>), ...);
  }(std::make_index_sequence<Net::num_layers>{});
  return any;
}

/// Element type of the flat parameter vectors: the network's value type when every tile's
/// parameters are W and b (the fast path, as exact as the weights), `double` otherwise.
template <class Net>
using flat_t = std::conditional_t<any_parameter_space<Net>(), double, typename Net::value_type>;

/// Number of trainable parameters of `net` (each tile's, in its own space).
template <class Net>
std::size_t parameter_count(const Net& net) {
  std::size_t c = 0;
  net.for_each_layer([&](const auto& l, std::size_t) { c += tile_parameter_count(l.tile); });
  return c;
}

/// Copies all parameters into `saved` (flat, layer after layer, each in its tile's layout).
template <class Net, class V>
void save(Net& net, std::vector<V>& saved) {
  saved.resize(parameter_count(net));
  std::size_t off = 0;
  net.for_each_layer([&](auto& l, std::size_t) {
    get_tile_parameters(l.tile, saved.data() + off);
    off += tile_parameter_count(l.tile);
  });
}

/// Writes `θ = saved + s · dir` into the tiles, in one pass for tiles whose parameters are W and
/// b; tiles with their own parameter space go through `work` and `set_parameters`.
template <class Net, class V>
void write(Net& net, const std::vector<V>& saved, const V* dir, V s, std::vector<V>& work) {
  std::size_t off = 0;
  net.for_each_layer([&](auto& l, std::size_t) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    using T = typename tile_t::value_type;
    const std::size_t np = tile_parameter_count(l.tile);
    const V* b = saved.data() + off;
    const V* d = dir + off;
    if constexpr (parameterised_tile<tile_t>) {
      work.resize(np);
      for (std::size_t k = 0; k < np; ++k) work[k] = b[k] + s * d[k];
      set_tile_parameters(l.tile, work.data());
    } else {
      pnn::detail::require_writable_parameters(l.tile);
      const std::size_t nw = l.tile.out_size() * l.tile.in_size();
      T* w = l.tile.weight_data();
      T* bias = l.tile.bias_data();
      for (std::size_t k = 0; k < nw; ++k) w[k] = static_cast<T>(b[k] + s * d[k]);
      for (std::size_t j = 0; j < l.tile.out_size(); ++j) bias[j] = static_cast<T>(b[nw + j] + s * d[nw + j]);
      // A physical tile programs every device to its perturbed value (physics/parameters.hpp).
      if constexpr (requires { l.tile.report_parameter_writes(std::uint64_t{}); }) l.tile.report_parameter_writes(nw);
    }
    off += np;
  });
}

/// Restores the saved parameters bit for bit.
template <class Net, class V>
void restore(Net& net, const std::vector<V>& saved) {
  std::size_t off = 0;
  net.for_each_layer([&](auto& l, std::size_t) {
    set_tile_parameters(l.tile, saved.data() + off);
    off += tile_parameter_count(l.tile);
  });
}

/// `grad += s · flat` for the flat vector `flat` in the order of `save`: into `weight`, `bias`
/// for tiles whose parameters are W and b, into `parameter` (marked `parameter_space`) for the
/// others.
template <class Net, class V>
void accumulate(Net& net, gradients<Net>& grad, const V* flat, V s) {
  using T = typename Net::value_type;
  std::size_t off = 0;
  net.for_each_layer([&](auto& l, std::size_t i) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    auto& g = grad[i];
    if constexpr (updates_in_parameter_space<tile_t>) {
      const std::size_t np = l.tile.parameter_count();
      for (std::size_t k = 0; k < np; ++k) g.parameter.data()[k] += static_cast<T>(s * flat[off + k]);
      g.parameter_space = true;
      off += np;
    } else if constexpr (std::is_same_v<V, T>) {
      const std::size_t nw = l.tile.out_size() * l.tile.in_size();
      simd::axpy<T>(nw, s, flat + off, g.weight.data());
      simd::axpy<T>(l.tile.out_size(), s, flat + off + nw, g.bias.data());
      off += nw + l.tile.out_size();
    } else {
      const std::size_t nw = l.tile.out_size() * l.tile.in_size();
      for (std::size_t k = 0; k < nw; ++k) g.weight.data()[k] += static_cast<T>(s * flat[off + k]);
      off += nw;
      for (std::size_t j = 0; j < l.tile.out_size(); ++j) g.bias.data()[j] += static_cast<T>(s * flat[off + j]);
      off += l.tile.out_size();
    }
  });
}

/// Batch-mean loss of one forward pass of the physical network (with its noise, from `g`).
template <class Net, class Loss>
double batch_loss(const Net& net, const typename Net::value_type* x, const typename Net::value_type* t,
                  std::size_t n, const Loss& loss, trace<Net>& tr, rng& g) {
  forward_trace(net, x, n, tr, g);
  return double(loss.value(tr.output().data(), t, n, net.output_size()));
}

/// Saves the parameters on construction and restores them, exactly, when it goes out of scope
/// (also when a forward pass throws).
template <class Net>
struct parameter_guard {
  Net& net;
  std::vector<flat_t<Net>>& saved;
  parameter_guard(Net& n, std::vector<flat_t<Net>>& s) : net(n), saved(s) {
    // Refuse before saving, so that the restore in the destructor cannot throw.
    net.for_each_layer([](const auto& l, std::size_t) { pnn::detail::require_writable_parameters(l.tile); });
    save(net, saved);
  }
  ~parameter_guard() { restore(net, saved); }
  parameter_guard(const parameter_guard&) = delete;
  parameter_guard& operator=(const parameter_guard&) = delete;
};

/// Common shape of a forward-only rule's state.
template <class Net, class Optimizer>
struct state {
  using T = typename Net::value_type;
  trace<Net> tr{}, tp{};
  gradients<Net> grad{};
  typename Optimizer::template state<Net> opt{};
  std::vector<flat_t<Net>> saved{}, dir{}, codes{}, pert{}, work{};  ///< flat parameter vectors
  std::size_t estimates = 0;  ///< estimates made so far (SPSA's k)
  xt::xtensor<T, 1> a{}, h{}, a2{}, h2{}, scratch{}, u{}, delta{}, base{}, lp{}, lm{};
  /// Checkpoint contents (pnn/core/state_format.hpp): the optimiser's state and the number of
  /// estimates made (SPSA's perturbation-size clock).
  template <class V>
  void visit_state(V& vis) {
    {
      auto g = vis.scope("optimizer");
      opt.visit_state(vis);
    }
    vis("estimates", estimates);
  }
};

/// Clean forward pass: the loss and accuracy `step` reports (a non-finite output is an error
/// naming `rule` and the layer).
template <class Net, class Loss>
step_result clean_pass(const Net& net, const pnn::detail::checked_batch<typename Net::value_type>& b,
                       const Loss& loss, trace<Net>& tr, rng& g, const char* rule) {
  using T = typename Net::value_type;
  step_result r;
  r.loss = batch_loss(net, b.x, b.target, b.n, loss, tr, g);
  pnn::detail::require_finite_forward(tr, rule);
  r.correct = pnn::detail::count_correct<T>(tr.output().data(), b.target, b.n, net.output_size());
  r.count = b.n;
  return r;
}

}  // namespace perturb_detail

}  // namespace pnn::learn
