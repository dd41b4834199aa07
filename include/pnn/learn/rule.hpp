// SPDX-License-Identifier: MIT
/// \file
/// \brief What every learning rule shares: the rule concept, batch checks, per-network cached
/// state, and programming an update onto the substrates.
///
/// A learning rule computes an update estimate (`estimate`), and `step` shapes it with the
/// rule's optimiser and hands it to each layer's substrate (`program`), which applies what the
/// device physics allows (docs/architecture.md, "Estimate, step, program").
#pragma once

#include <any>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/core/rng.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/nn/loss.hpp>
#include <pnn/physics/parameters.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/gemm.hpp>

namespace pnn {

/// What `step` reports about the batch it trained on (measured before the update).
struct step_result {
  double loss = 0;          ///< batch-mean loss
  std::size_t correct = 0;  ///< samples whose output argmax equals the target's argmax
  std::size_t count = 0;    ///< batch size
};

/// \brief What `train` and every caller need of a learning rule for network `Net` and loss `Loss`:
/// `estimate(net, x, target, loss, rng)` returns the update estimate `gradients<Net>` and leaves
/// the network unchanged; `step(net, x, target, loss, rng)` estimates, applies the rule's
/// optimiser and programs the result, returning the batch's `step_result`. `x` and `target` are
/// batches (n × inputs, n × outputs) of the network's value type. Every shipped rule models it
/// (tests/static/concepts.cpp); a type that does not is rejected by `train` with this concept's
/// name in the error.
template <class Rule, class Net, class Loss>
concept learning_rule = requires(Rule& rule, Net& net, const xt::xtensor<typename Net::value_type, 2>& batch,
                                 const Loss& loss, rng& g) {
  { rule.estimate(net, batch, batch, loss, g) } -> std::same_as<gradients<Net>>;
  { rule.step(net, batch, batch, loss, g) } -> std::convertible_to<step_result>;
};

/// Programs `update` (to subtract) onto every layer's substrate; layer `i` draws write noise
/// from `g.split(i)`. A layer update in the tile's own parameter space (`parameter_space`: the
/// perturbative rules on an MZI mesh) steps those parameters (`step_tile_parameters`); any
/// other goes to the tile's `program`, which realises the dense `ΔW` as its physics allows.
template <class Net>
void program(Net& net, const gradients<Net>& update, rng& g) {
  net.for_each_layer([&](auto& l, std::size_t i) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    if constexpr (updates_in_parameter_space<tile_t>) {
      if (update[i].parameter_space) {
        PNN_EXPECTS(update[i].parameter.size() == l.tile.parameter_count(),
                    "pnn::program: parameter-space update does not match the tile's parameter count");
        step_tile_parameters(l.tile, update[i].parameter.data());
        return;
      }
    }
    rng gl = g.split(i);
    l.tile.program(update[i], gl);
  });
}

namespace detail {

/// A batch and its targets as contiguous row-major matrices, checked against the network's
/// extents and for finiteness. A batch that already is an `xt::xtensor<T, 2>` is used in place.
template <class T>
struct checked_batch {
  const T* x = nullptr;
  const T* target = nullptr;
  std::size_t n = 0;
  xt::xtensor<T, 2> x_copy{}, target_copy{};
  /// max |x| over the batch, found by its finiteness check; negative when not found (a
  /// converted copy).
  double x_abs_max = -1;
};

/// \brief A batch its writer checked while writing it: `pnn::train` copies the next batch on a
/// team thread in the gaps of the current step and finds each piece's max |x| as it goes, so
/// the step that trains on it need not read its 200 KB again on the calling thread (one core
/// reading what the other just wrote: 3 % of a two-thread MLP step). Trusted by `check_batch`
/// only for the address and element count it names, on the thread that set it, and only while
/// its `vouch_for_batch` lives; a batch with a non-finite value is never vouched for, so the
/// ordinary check finds it and names it.
struct vouched_batch {
  const void* data = nullptr;
  std::size_t size = 0;
  double abs_max = -1;  ///< max |x| over the batch; finite and ≥ 0 whenever `data` is set
};

/// This thread's vouched batch (none: null `data`).
inline vouched_batch& vouched_on_this_thread() noexcept {
  static thread_local vouched_batch v;
  return v;
}

/// Vouches for `size` values at `data`, whose max |x| is `abs_max` (finite), on this thread
/// until destroyed. An `abs_max` that is negative or not finite vouches for nothing.
class vouch_for_batch {
 public:
  vouch_for_batch(const void* data, std::size_t size, double abs_max) noexcept : saved_(vouched_on_this_thread()) {
    if (abs_max >= 0 && abs_max < HUGE_VAL) vouched_on_this_thread() = {data, size, abs_max};
    else vouched_on_this_thread() = {};
  }
  ~vouch_for_batch() { vouched_on_this_thread() = saved_; }
  vouch_for_batch(const vouch_for_batch&) = delete;
  vouch_for_batch& operator=(const vouch_for_batch&) = delete;

 private:
  vouched_batch saved_;
};

// `abs_max`, where given, receives max |values| of a batch used in place: the finiteness check
// finds it in the same pass (the bound of a deferred update that borrows the batch needs it),
// or its writer found it (`vouched_batch`).
template <class T, class E>
const T* batch_pointer(const xt::xexpression<E>& e, std::size_t cols, const char* what, xt::xtensor<T, 2>& copy,
                       std::size_t& rows, double* abs_max = nullptr) {
  if constexpr (std::is_same_v<E, xt::xtensor<T, 2>>) {
    const auto& m = e.derived_cast();
    if (m.shape()[1] != cols)
      throw_error(std::string(what) + ": expected rows of " + std::to_string(cols) + " values, got " +
                  std::to_string(m.shape()[1]));
    if (const vouched_batch& v = vouched_on_this_thread();
        abs_max != nullptr && v.data != nullptr && v.data == static_cast<const void*>(m.data()) && v.size == m.size()) {
      *abs_max = v.abs_max;
    } else if (abs_max != nullptr) {
      *abs_max = simd::finite_abs_max<T>(m.size(), m.data());
      if (*abs_max == HUGE_VAL) require_finite(m.data(), m.size(), what);  // names the first offender
    } else {
      require_finite(m.data(), m.size(), what);
    }
    rows = m.shape()[0];
    return m.data();
  } else {
    copy = as_batch<T>(e, cols, what);
    rows = copy.shape()[0];
    return copy.data();
  }
}

template <class Net, class X, class Y>
checked_batch<typename Net::value_type> check_batch(const Net& net, const xt::xexpression<X>& x,
                                                    const xt::xexpression<Y>& target, const char* rule) {
  using T = typename Net::value_type;
  checked_batch<T> b;
  std::size_t tn = 0;
  // Names for the error messages, without a heap string per step (and without the temporary
  // strings GCC 12 misreads as out of bounds once this is inlined deep enough).
  char x_name[128], target_name[128];
  std::snprintf(x_name, sizeof x_name, "%s: x", rule);
  std::snprintf(target_name, sizeof target_name, "%s: target", rule);
  b.x = batch_pointer<T>(x, net.input_size(), x_name, b.x_copy, b.n, &b.x_abs_max);
  b.target = batch_pointer<T>(target, net.output_size(), target_name, b.target_copy, tn);
  if (tn != b.n)
    throw_error(std::string(rule) + ": x has " + std::to_string(b.n) + " rows but target has " + std::to_string(tn));
  if (b.n == 0) throw_error(std::string(rule) + ": empty batch");
  return b;
}

/// Number of rows whose argmax agrees between `y` and `t` (both n × k).
template <class T>
std::size_t count_correct(const T* y, const T* t, std::size_t n, std::size_t k) {
  std::size_t c = 0;
  for (std::size_t r = 0; r < n; ++r) {
    std::size_t ay = 0, at = 0;
    for (std::size_t j = 1; j < k; ++j) {
      if (y[r * k + j] > y[r * k + ay]) ay = j;
      if (t[r * k + j] > t[r * k + at]) at = j;
    }
    c += (ay == at) ? 1U : 0U;
  }
  return c;
}

/// Typed per-network state kept by a rule across steps (buffers, optimiser state). Rules are
/// not templated on the network, so the state is created for the concrete type on first use.
template <class State>
State& cached(std::any& slot) {
  if (auto* s = std::any_cast<State>(&slot)) return *s;
  slot = State{};
  return *std::any_cast<State>(&slot);
}

/// True when a deferred (factor-only) update of one layer is finite once formed: finite factors,
/// scale and bias, and a bound `|s| · n · max|δ| · max|h|` on every entry that does not overflow.
template <class T>
bool deferred_update_finite(const layer_gradient<T>& g) {
  if (!std::isfinite(double(g.factor_scale)) || !all_finite(g.bias.data(), g.bias.size())) return false;
  // One pass over each factor gives both its finiteness and its bound (the input is a whole
  // batch: reading it twice was a percent of a backprop step).
  const double delta_max = simd::finite_abs_max<T>(g.delta.size(), g.delta.data());
  const double input_max = g.borrowed_input != nullptr && g.borrowed_abs_max >= 0
                               ? g.borrowed_abs_max
                               : simd::finite_abs_max<T>(g.factor_input_size(), g.factor_input());
  if (delta_max == HUGE_VAL || input_max == HUGE_VAL) return false;
  const double bound = std::abs(double(g.factor_scale)) * double(g.delta.shape()[0]) * delta_max * input_max;
  return bound < double(std::numeric_limits<T>::max());
}

/// The first layer whose update (or estimate) holds NaN or Inf, or `num_layers` when none does.
template <class Net>
std::size_t first_non_finite_layer(const gradients<Net>& g) {
  for (std::size_t i = 0; i < Net::num_layers; ++i) {
    const bool ok = g[i].deferred() ? deferred_update_finite(g[i])
                                    : all_finite(g[i].weight.data(), g[i].weight.size()) &&
                                          all_finite(g[i].bias.data(), g[i].bias.size()) &&
                                          all_finite(g[i].parameter.data(), g[i].parameter.size());
    if (!ok) return i;
  }
  return Net::num_layers;
}

/// Rejects a non-finite update before it reaches the substrate (a diverging rule is reported,
/// not propagated into the weights).
template <class Net>
void require_finite_update(const gradients<Net>& g, const char* rule) {
  if (const std::size_t i = first_non_finite_layer(g); i < Net::num_layers)
    throw_error(std::string(rule) + ": update of layer " + std::to_string(i) +
                " is not finite (the rule diverged); the network was left unchanged");
}

/// A tile that programs a factored update `W ← W − s·δᵀh` itself, exactly (the digital
/// substrate: one rank-n GEMM into `W`), so a rule's `step` need not form the dense product.
template <class Tile>
concept outer_product_programmable = tile_hooks::programs_outer_products<Tile>;

/// Before a rule estimates: with `programming` (the rule's `step`), marks the layers whose dense
/// update may be deferred — their tile programs outer products and the optimiser only rescales
/// updates (`keeps_factors()`: `optim::sgd` without weight decay). Without it (`estimate`),
/// every update is formed. With `lend_inputs` (a rule whose layer inputs outlive the
/// programming), a deferred layer whose tile `reads_borrowed_factors` borrows its `h`.
template <class Grad, class Net, class Optimizer>
void defer_dense_updates(Grad& g, const Net& net, const Optimizer& opt, bool programming, bool lend_inputs = false) {
  bool keeps = false;
  if constexpr (requires { { opt.keeps_factors() } -> std::convertible_to<bool>; }) keeps = opt.keeps_factors();
  net.for_each_layer([&](const auto& l, std::size_t i) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    g[i].defer = programming && keeps && outer_product_programmable<tile_t>;
    g[i].borrow_input = g[i].defer && lend_inputs && tile_hooks::reads_borrowed_factors<tile_t>;
    g[i].borrowed_input = nullptr;
  });
}

/// Ends every borrow of `g` (`layer_gradient::borrowed_input`): the lent inputs are not the
/// estimate's to keep once the step has programmed it, or has failed to.
template <class Grad>
void end_borrows(Grad& g) noexcept {
  for (std::size_t i = 0; i < Grad::num_layers; ++i) {
    g[i].borrow_input = false;
    g[i].borrowed_input = nullptr;
    g[i].borrowed_abs_max = -1;
  }
}

/// Hands the checked batch's max |x| to the deferred updates that borrowed the batch itself, so
/// their bound does not read it again.
template <class Grad, class T>
void note_batch_bound(Grad& g, const checked_batch<T>& b) noexcept {
  if (b.x_abs_max < 0) return;
  for (std::size_t i = 0; i < Grad::num_layers; ++i)
    if (g[i].borrowed_input == b.x) g[i].borrowed_abs_max = b.x_abs_max;
}

/// Maps layer `i`'s weight-space estimate `gi` into the parameters of `t` (`parameter_gradient`):
/// from the estimate's factors `s·δᵀh` where it kept them, else by probing with the `In` unit
/// inputs (`Σ_i ΔW[:, i]·(∂y(e_i)/∂θ)` is `⟨ΔW, ∂W/∂θ⟩`, exact for a read linear in its input).
/// `t` is the layer's own tile, or a model of it with the same parameter layout (a twin of the
/// same physics without its imperfections: physics-aware training maps through the model, never
/// through physics nobody measured).
template <class Tile, class T>
void map_layer_to_parameters(const Tile& t, layer_gradient<T>& gi, std::size_t i, rng& gl) {
  const std::size_t in = t.in_size(), out = t.out_size();
  if (gi.parameter.size() != t.parameter_count()) gi.parameter.resize({t.parameter_count()});
  std::vector<double> theta(t.parameter_count());
  if (gi.factored && gi.input.size() > 0) {
    t.parameter_gradient(gi.input.data(), gi.delta.data(), gi.input.shape()[0], double(gi.factor_scale),
                         gi.bias.data(), theta.data(), gl);
  } else {
    PNN_EXPECTS(!gi.deferred(), "pnn::map_to_tile_parameters: a deferred update has no dense form to map");
    // The identity probes below recover ∂L/∂θ only when the read is linear in x; a tile
    // whose read is not (a quantum circuit) must receive the estimate's factors.
    if constexpr (requires { requires Tile::needs_update_factors; })
      throw_error("pnn::map_to_tile_parameters: layer " + std::to_string(i) +
                  " reads nonlinearly in its input and can map only a factored estimate (h, delta) into its "
                  "parameters; this rule produced a dense weight update");
    std::vector<T> eye(in * in, T(0)), probe(in * out);
    for (std::size_t j = 0; j < in; ++j) eye[j * in + j] = T(1);
    for (std::size_t o = 0; o < out; ++o)
      for (std::size_t j = 0; j < in; ++j) probe[j * out + o] = gi.weight.data()[o * in + j];
    t.parameter_gradient(eye.data(), probe.data(), in, 1.0, gi.bias.data(), theta.data(), gl);
  }
  for (std::size_t k = 0; k < theta.size(); ++k) gi.parameter.data()[k] = static_cast<T>(theta[k]);
  gi.weight.fill(T(0));
  gi.bias.fill(T(0));
  gi.factored = false;
  gi.parameter_space = true;
}

/// Maps every weight-space estimate of a layer that learns in its own parameters
/// (`tile_hooks::learns_in_parameter_space`) into them (`map_layer_to_parameters`, through
/// the layer's own tile) unless a rule mapped it already (`parameter_space`: physics-aware
/// training maps through its twin). Afterwards the optimiser shapes the update in that space.
template <class Net>
void map_to_tile_parameters(const Net& net, gradients<Net>& grad, rng& g) {
  net.for_each_layer([&](const auto& l, std::size_t i) {
    using tile_t = typename std::remove_cvref_t<decltype(l)>::tile_type;
    if constexpr (tile_hooks::maps_parameter_gradients<tile_t> && parameterised_tile<tile_t>) {
      auto& gi = grad[i];
      if (gi.parameter_space || !tile_hooks::learns_in_parameter_space(l.tile)) return;
      rng gl = g.split(0x70a ^ i);
      detail::map_layer_to_parameters(l.tile, gi, i, gl);
    }
  });
}

/// The end of every rule's `step`: check the optimiser's parameters, map estimates of layers
/// that learn in their own parameters there, shape the estimate with the optimiser, reject a
/// non-finite update, and program it onto the substrates (write noise from
/// `g.split(golden ratio)`). A bad parameter throws before the optimiser state or the network
/// change. A non-finite estimate leaves the optimiser's state as it was too (moments holding a
/// NaN would poison every later step): a state that is a plain value (a step counter) is put
/// back; one with moments sees the estimate checked before it changes. Only an optimiser that
/// itself overflows a finite estimate (an absurd learning rate) leaves its moments changed.
template <class Net, class Optimizer, class OptState>
void finish_step(Net& net, gradients<Net>& grad, const Optimizer& opt, OptState& st, rng& g, const char* rule) {
  if constexpr (requires { opt.validate(); }) opt.validate();
  map_to_tile_parameters(net, grad, g);
  if constexpr (std::is_trivially_copyable_v<OptState>) {
    const OptState before = st;
    opt.apply(grad, st, net);
    if (first_non_finite_layer(grad) < Net::num_layers) {
      st = before;
      require_finite_update(grad, rule);  // throws, naming the layer
    }
  } else {
    // Weights in memory (digital): the optimiser may update its moments and W in one pass. The
    // estimate's finiteness check also gives the bound that pass needs to rule out overflow.
    bool in_memory = false;
    if constexpr (requires { opt.apply_in_place(grad, st, net, 0.0); })
      in_memory = ::pnn::optim::detail::updates_in_memory(net, grad);
    const double bound = in_memory ? ::pnn::optim::detail::state_abs_max(grad) : 0.0;
    // (Finite by the bound's pass when in memory; the search names the layer otherwise.)
    if (const std::size_t i = in_memory && bound < HUGE_VAL ? Net::num_layers : first_non_finite_layer(grad);
        i < Net::num_layers)
      throw_error(std::string(rule) + ": the estimate of layer " + std::to_string(i) +
                  " is not finite (the rule diverged); the network and the optimiser's state were left unchanged");
    if constexpr (requires { opt.apply_in_place(grad, st, net, 0.0); })
      if (in_memory && opt.apply_in_place(grad, st, net, bound)) return;
    opt.apply(grad, st, net);
    require_finite_update(grad, rule);
  }
  rng gp = g.split(0x9e3779b97f4a7c15ULL);
  program(net, grad, gp);
}

/// `ĝ_W = scale · δᵀ h` and `ĝ_b = scale · Σ_n δ_n` for one layer, keeping the factors when the
/// layer's substrate can use them; a deferred layer (`g.defer`) keeps only the factors.
template <class Layer, class T>
void outer_product_update(const Layer&, const T* h, const T* delta, std::size_t n, std::size_t in,
                          std::size_t out, T scale, layer_gradient<T>& g) {
  for (std::size_t j = 0; j < out; ++j) g.bias.data()[j] = T(0);
  for (std::size_t r = 0; r < n; ++r) simd::axpy<T>(out, scale, delta + r * out, g.bias.data());
  auto keep_factors = [&](bool borrow) {
    g.borrowed_abs_max = -1;  // a lender says, after the estimate (`note_batch_bound`)
    if (borrow) {
      g.borrowed_input = h;
      g.borrowed_columns = in;
      if (g.input.size() != 0) g.input.resize({0, in});  // stale factors must not look valid
    } else {
      g.borrowed_input = nullptr;
      if (g.input.shape()[0] != n || g.input.shape()[1] != in) g.input.resize({n, in});
      std::copy(h, h + n * in, g.input.data());
    }
    if (delta != g.delta.data()) {  // else formed in place (`factor_delta_buffer`)
      if (g.delta.shape()[0] != n || g.delta.shape()[1] != out) g.delta.resize({n, out});
      std::copy(delta, delta + n * out, g.delta.data());
    }
    g.factor_scale = scale;
    g.factored = true;
  };
  if (g.defer) {
    keep_factors(g.borrow_input);
    return;
  }
  simd::gemm_tn<T>(out, in, n, scale, delta, out, h, in, T(0), g.weight.data(), in);
  g.factored = false;
  if constexpr (tile_hooks::uses_update_factors<typename Layer::tile_type>) keep_factors(false);
}

/// A layer whose update sums one outer product per patch (a convolution: every position's δ
/// times the patch it read), so that its factors are the patches, not its inputs.
template <class Layer, class T>
concept sums_over_patches = requires(const Layer& l, const T* x, std::size_t n, T* out) {
  l.positions();
  l.kernel_inputs();
  l.patches(x, n, out);
};

/// Where a deferred dense update (`g.defer`) keeps its δ (n × Out): `g.delta`, shaped, so that
/// δ formed there is not copied by `outer_product_update` (64 KB for a 256-unit layer and a
/// batch of 64, a pass over it and one more write of it on each step); null for a layer whose
/// update is formed (a convolution's never defers), whose δ the caller keeps elsewhere.
template <class Layer, class T>
T* factor_delta_buffer(const Layer& l, std::size_t n, layer_gradient<T>& g) {
  // Only an update that may defer keeps δ as a factor, and only a δ of the update's own shape
  // (one row of Out per sample, not one per position before pooling) can be kept as it is.
  if constexpr (sums_over_patches<Layer, T>) {
    return nullptr;
  } else {
    if (!g.defer || pre_activation_size(l) != l.out_size()) return nullptr;
    if (g.delta.shape()[0] != n || g.delta.shape()[1] != l.out_size()) g.delta.resize({n, l.out_size()});
    return g.delta.data();
  }
}

/// `δ = dy ⊙ f′(a, h)` for a layer's activation.
template <class Layer, class T>
void times_derivative(const Layer& l, const T* dy, const T* a, const T* h, std::size_t count, T* delta) {
  simd::times_derivative<T>(count, dy, a, h, l.activation, delta);
}

/// The error at a layer's pre-activation from the error `dy` (n × Out) at its output, at the
/// recorded `a` and `h` of its trace: `dy ⊙ f′(a, h)` for a dense layer; for a convolution
/// also back through its pooling, into every position (n × `pre_activation_size`).
template <class Layer, class T>
void layer_delta(const Layer& l, const T* dy, const T* a, const T* h, std::size_t n, T* delta) {
  if constexpr (requires { l.output_delta(dy, a, h, n, delta); })
    l.output_delta(dy, a, h, n, delta);
  else
    times_derivative(l, dy, a, h, n * l.out_size(), delta);
}

/// This thread's buffer for a convolution's unfolded patches (n · positions × kernel inputs
/// values, megabytes for a batch). Its users — a kernel's update, a tangent read through the
/// kernel — each fill and finish with it before another starts, so one buffer per thread and
/// value type serves all of them.
template <class T>
std::vector<T>& patch_scratch() {
  static thread_local std::vector<T> buffer;
  return buffer;
}

/// A layer's update from its inputs `x` (n × In) and pre-activation errors `delta` (what
/// `layer_delta` gives): one outer product per sample for a dense layer; for a convolution one
/// per patch, `ĝ_K = scale · Σ_{s,p} δ_{s,p} x_{s,p}ᵀ` (the factors are the patches, which is
/// what a crossbar holding the kernel is pulsed with).
template <class Layer, class T>
void layer_update(const Layer& l, const T* x, const T* delta, std::size_t n, T scale, layer_gradient<T>& g) {
  if constexpr (sums_over_patches<Layer, T>) {
    // A kernel matrix is small and its factors (every patch) are large: forming the update
    // costs less than keeping the factors, so a convolution's update is never deferred.
    g.defer = false;
    if constexpr (!tile_hooks::uses_update_factors<typename Layer::tile_type> &&
                  requires { l.kernel_gradient(x, delta, n, scale, g.weight.data(), g.bias.data()); }) {
      // Nothing downstream needs the patches: the layer sums the update shard by shard.
      l.kernel_gradient(x, delta, n, scale, g.weight.data(), g.bias.data());
      g.factored = false;
      return;
    }
    auto& patch_buffer = patch_scratch<T>();
    patch_buffer.resize(n * l.positions() * l.kernel_inputs());
    l.patches(x, n, patch_buffer.data());
    outer_product_update(l, static_cast<const T*>(patch_buffer.data()), delta, n * l.positions(),
                         l.kernel_inputs(), l.tile.out_size(), scale, g);
  } else {
    outer_product_update(l, x, delta, n, l.in_size(), l.out_size(), scale, g);
  }
}

}  // namespace detail

/// A batch checked against a network (shape, finiteness): `x` (n × inputs) and `target`
/// (n × outputs) as contiguous row-major pointers, `n` ≥ 1. What a rule's estimator receives.
template <class T>
using checked_batch = detail::checked_batch<T>;

/// Number of rows whose argmax agrees between `y` and `t` (both n × k): a step's `correct`.
template <class T>
[[nodiscard]] std::size_t count_correct(const T* y, const T* t, std::size_t n, std::size_t k) {
  return detail::count_correct<T>(y, t, n, k);
}

/// Writes layer `l`'s update `ĝ_W = scale · δᵀh`, `ĝ_b = scale · Σ_n δ_n` into `g` (shaped like
/// the layer's tile), keeping the factors `(h, δ, scale)` where the layer's substrate programs
/// them (a crossbar's pulse trains, a mesh's adjoint phase steps). `h`: the layer's inputs
/// n × In, `delta`: ∂L/∂(pre-activation) n × Out (for a `conv2d`, n × `pre_activation_size`:
/// the sum then runs over every patch).
template <class Layer, class T>
void outer_product_update(const Layer& l, const T* h, const T* delta, std::size_t n, T scale,
                          layer_gradient<T>& g) {
  detail::layer_update(l, h, delta, n, scale, g);
}

}  // namespace pnn
