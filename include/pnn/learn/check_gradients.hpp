// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::check_gradients`: compares backprop with central finite differences.
///
/// The public numerical-gradient checker (dlib's `test_layer`, for whole networks): perturb each
/// parameter by ±ε, difference the loss, and compare with the backprop estimate. Run it on a
/// noiseless network in `double` (`physics::basic_digital<double>`), where agreement to 1e-6 or
/// better is expected.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <pnn/learn/backprop.hpp>

namespace pnn {

/// Settings of `check_gradients`.
struct gradient_check_options {
  double epsilon = 1e-6;              ///< finite-difference step (parameter units)
  std::size_t max_per_layer = 0;      ///< check at most this many weights per layer (0: all)
  std::uint64_t seed = 0;             ///< picks the checked subset
};

/// Outcome of `check_gradients`: relative error `‖g_bp − g_fd‖ / max(‖g_bp‖, ‖g_fd‖)` per layer.
struct gradient_check_result {
  std::vector<double> layer_error;
  double max_error = 0;
};

/// Finite-difference check of backprop through `net` on the batch `(x, target)`.
/// \pre `net` is deterministic (noise-free) and its tiles expose `weight_data()`/`bias_data()`.
template <class Net, class X, class Y, class Loss>
gradient_check_result check_gradients(Net& net, const xt::xexpression<X>& x, const xt::xexpression<Y>& target,
                                      const Loss& loss, gradient_check_options opt = {}) {
  using T = typename Net::value_type;
  learn::backprop<> bp;
  rng g(opt.seed);
  const gradients<Net> exact = bp.estimate(net, x, target, loss, g);
  auto b = detail::check_batch(net, x, target, "pnn::check_gradients");
  auto loss_at = [&] {
    rng gf(opt.seed);
    trace<Net> tr;
    forward_trace(net, b.x, b.n, tr, gf);
    return double(loss.value(tr.output().data(), b.target, b.n, net.output_size()));
  };
  gradient_check_result res;
  rng pick(opt.seed, 7);
  net.for_each_layer([&](auto& l, std::size_t li) {
    double num = 0, den_a = 0, den_b = 0;
    auto probe = [&](T* p, std::size_t count, const T* g_exact) {
      std::vector<std::size_t> idx(count);
      for (std::size_t k = 0; k < count; ++k) idx[k] = k;
      if (opt.max_per_layer != 0 && opt.max_per_layer < count) {
        for (std::size_t k = 0; k < opt.max_per_layer; ++k)
          std::swap(idx[k], idx[k + pick.uniform_int(static_cast<std::uint32_t>(count - k))]);
        idx.resize(opt.max_per_layer);
      }
      for (std::size_t k : idx) {
        const T keep = p[k];
        p[k] = static_cast<T>(double(keep) + opt.epsilon);
        const double up = loss_at();
        p[k] = static_cast<T>(double(keep) - opt.epsilon);
        const double down = loss_at();
        p[k] = keep;
        const double fd = (up - down) / (2 * opt.epsilon);
        const double e = double(g_exact[k]);
        num += (fd - e) * (fd - e);
        den_a += fd * fd;
        den_b += e * e;
      }
    };
    probe(l.tile.weight_data(), exact[li].weight.size(), exact[li].weight.data());
    probe(l.tile.bias_data(), exact[li].bias.size(), exact[li].bias.data());
    const double den = std::sqrt(std::max(den_a, den_b));
    const double err = den == 0 ? std::sqrt(num) : std::sqrt(num) / den;
    res.layer_error.push_back(err);
    res.max_error = std::max(res.max_error, err);
  });
  return res;
}

}  // namespace pnn
