// SPDX-License-Identifier: MIT
/// \file
/// \brief Batch forward passes over xtensor: the face of a network to users and to training.
///
/// `forward(net, x)` maps a batch (n × inputs, any xtensor expression) to outputs. Training rules
/// use `forward_trace`, which records every layer's pre-activation `a_l` and output `h_l` as the
/// physics produced them (with its noise): the measured activations backward passes use.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <string>

#include <xtensor/xtensor.hpp>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/nn/dynamic_storage.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/simd/arch.hpp>

namespace pnn {

/// What one batch forward pass recorded: `a[l]` and `h[l]` are layer `l`'s pre-activation and
/// output (n × Out, row-major; a convolution's `a[l]` holds every position before pooling,
/// n × `pre_activation_size()`); `input` points at the batch that drove layer 0 (not copied: it
/// must outlive the trace's use).
template <class Net>
struct trace {
  using value_type = typename Net::value_type;
  const value_type* input = nullptr;
  std::array<xt::xtensor<value_type, 2>, Net::num_layers> h{};
  std::array<xt::xtensor<value_type, 2>, Net::num_layers> a{};
  xt::xtensor<value_type, 1> scratch{};
  std::size_t batch = 0;

  /// The values that drove layer `l` (n × In): the batch for layer 0, else layer `l−1`'s output.
  const value_type* input_of(std::size_t l) const noexcept { return l == 0 ? input : h[l - 1].data(); }
  /// The network's output (n × outputs).
  const xt::xtensor<value_type, 2>& output() const noexcept { return h[Net::num_layers - 1]; }
};

namespace detail {
/// Values of a layer's pre-activation per sample: its outputs, or a convolution's outputs at
/// every position before pooling.
template <class Layer>
constexpr std::size_t pre_activation_size(const Layer& l) noexcept {
  if constexpr (requires { l.pre_activation_size(); }) return l.pre_activation_size();
  else return l.out_size();
}

template <class L>
inline constexpr bool is_convolution_v = requires { L::pre_activation_extent; };
template <class Net>
struct dense_only_impl;
template <class... L>
struct dense_only_impl<network<L...>> : std::bool_constant<(!is_convolution_v<L> && ...)> {};
/// True when every layer of `Net` is dense: what the rules that do not yet run on
/// convolutions (`conv2d`) check, with a message.
template <class Net>
inline constexpr bool dense_only = dense_only_impl<Net>::value;

template <class T>
void resize_if_needed(xt::xtensor<T, 2>& m, std::size_t r, std::size_t c) {
  if (m.shape()[0] != r || m.shape()[1] != c) m.resize({r, c});
}

/// True when all `n` values are finite. `x − x` is 0 for finite x and NaN otherwise, so one
/// vectorised pass answers; the slow search runs only to name the first offender.
template <class T>
bool all_finite(const T* p, std::size_t n) noexcept {
  using P = simd::pack<T, simd::default_arch>;
  constexpr std::size_t W = P::size;
  // Four sums: one would chain every addition on the last (latency-bound, 4× slower; every
  // step checks its batch).
  P a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
  std::size_t i = 0;
  for (const std::size_t i_end = n - n % (4 * W); i < i_end; i += 4 * W) {
    const P v0 = P::load_unaligned(p + i), v1 = P::load_unaligned(p + i + W);
    const P v2 = P::load_unaligned(p + i + 2 * W), v3 = P::load_unaligned(p + i + 3 * W);
    a0 += v0 - v0;
    a1 += v1 - v1;
    a2 += v2 - v2;
    a3 += v3 - v3;
  }
  for (const std::size_t i_end = n - n % W; i < i_end; i += W) {
    const P v = P::load_unaligned(p + i);
    a0 += v - v;
  }
  T tail = simd::reduce_add((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) tail += p[i] - p[i];
  return tail == T(0);
}

/// Rejects non-finite values in a batch, naming the argument.
template <class T>
void require_finite(const T* p, std::size_t n, const char* what) {
  if (all_finite(p, n)) return;
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i]))
      throw_error(std::string(what) + ": contains NaN or Inf at flat index " + std::to_string(i));
}

/// Evaluates `e` into a contiguous row-major (n × cols) matrix, checking shape and finiteness.
template <class T, class E>
xt::xtensor<T, 2> as_batch(const xt::xexpression<E>& e, std::size_t cols, const char* what) {
  const auto& d = e.derived_cast();
  xt::xtensor<T, 2> m;
  if (d.dimension() == 1) {
    if (d.shape()[0] != cols)
      throw_error(std::string(what) + ": expected " + std::to_string(cols) + " values, got " +
                  std::to_string(d.shape()[0]));
    m.resize({std::size_t{1}, cols});
    std::size_t i = 0;
    for (auto v : d) m.data()[i++] = static_cast<T>(v);
  } else if (d.dimension() == 2) {
    if (d.shape()[1] != cols)
      throw_error(std::string(what) + ": expected rows of " + std::to_string(cols) + " values, got " +
                  std::to_string(d.shape()[1]));
    m = xt::cast<T>(d);
  } else {
    throw_error(std::string(what) + ": expected a 1-D sample or a 2-D batch");
  }
  require_finite(m.data(), m.size(), what);
  return m;
}
}  // namespace detail

/// Runs a batch through `net`, recording every layer into `tr`.
/// \pre `x` points to `n × net.input_size()` finite values.
template <class Net>
void forward_trace(const Net& net, const typename Net::value_type* x, std::size_t n, trace<Net>& tr, rng& g) {
  using T = typename Net::value_type;
  tr.batch = n;
  tr.input = x;
  std::size_t widest = 0;
  net.for_each_layer([&](const auto& l, std::size_t) { widest = std::max(widest, l.in_size()); });
  net.for_each_layer([&](const auto& l, std::size_t i) {
    using L = std::remove_cvref_t<decltype(l)>;
    detail::resize_if_needed(tr.a[i], n, detail::pre_activation_size(l));
    detail::resize_if_needed(tr.h[i], n, l.out_size());
    T* scratch = nullptr;
    if constexpr (L::has_input_noise) {
      if (tr.scratch.size() < n * widest) tr.scratch.resize({n * widest});
      scratch = tr.scratch.data();
    }
    rng gl = g.split(i);
    l.forward(tr.input_of(i), n, tr.a[i].data(), tr.h[i].data(), gl, scratch);
  });
}

namespace detail {
/// Rejects a recorded forward pass whose output is not finite, naming the first layer whose
/// physics (or activation) produced NaN or Inf and the sample, so that a diverging substrate is
/// reported where it diverged rather than as a non-finite update of some layer further down.
/// Only the output (n × outputs) is scanned on the normal path; the layers only on failure.
/// \pre `tr` was filled by `forward_trace` from finite inputs.
template <class Net>
void require_finite_forward(const trace<Net>& tr, const char* rule) {
  const auto& y = tr.output();
  if (all_finite(y.data(), y.size())) return;
  for (std::size_t l = 0; l < Net::num_layers; ++l) {
    const auto& h = tr.h[l];
    if (all_finite(h.data(), h.size())) continue;
    std::size_t at = 0;
    while (at < h.size() && std::isfinite(h.data()[at])) ++at;
    const std::size_t width = h.shape()[1];
    const auto& a = tr.a[l];
    const bool drive_finite = all_finite(a.data(), a.size());
    throw_error(std::string(rule) + ": the forward pass gave NaN or Inf in the output of layer " + std::to_string(l) +
                " (sample " + std::to_string(at / width) + " of the batch, unit " + std::to_string(at % width) + "; " +
                (drive_finite ? "its pre-activation was finite, so the activation overflowed"
                              : "already in its pre-activation, so the substrate's read diverged") +
                "); the network was left unchanged");
  }
}
}  // namespace detail

/// Outputs of `net` for a batch `x` (n × inputs) or a single sample (inputs), with forward
/// noise drawn from `g`. Throws `pnn::error` on a wrong shape or non-finite input.
template <class Net, class E>
xt::xtensor<typename Net::value_type, 2> forward(const Net& net, const xt::xexpression<E>& x, rng& g) {
  using T = typename Net::value_type;
  auto xb = detail::as_batch<T>(x, net.input_size(), "pnn::forward: x");
  const std::size_t n = xb.shape()[0];
  xt::xtensor<T, 2> cur = std::move(xb);
  xt::xtensor<T, 2> next;
  xt::xtensor<T, 1> scratch;
  net.for_each_layer([&](const auto& l, std::size_t i) {
    using L = std::remove_cvref_t<decltype(l)>;
    next.resize({n, l.out_size()});
    T* s = nullptr;
    if constexpr (L::has_input_noise) {
      scratch.resize({n * l.in_size()});
      s = scratch.data();
    }
    rng gl = g.split(i);
    l.forward(cur.data(), n, next.data(), next.data(), gl, s);
    std::swap(cur, next);
  });
  return cur;
}

/// `forward` with noise drawn from the network's own seed (stream 0).
template <class Net, class E>
xt::xtensor<typename Net::value_type, 2> forward(const Net& net, const xt::xexpression<E>& x) {
  rng g(net.initial_seed());
  return forward(net, x, g);
}

}  // namespace pnn
