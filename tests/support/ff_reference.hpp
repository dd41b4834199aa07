// SPDX-License-Identifier: MIT
// A layer's forward-forward goodness loss written out from its definition, the reference the
// rule's local updates are checked against by finite differences.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace pnn_test {

/// Layer `li`'s loss `softplus(α(θ − g⁺)) + softplus(α(g⁻ − θ))`, batch mean, for two classes
/// (so the negative carries the other label): the one-hot label overwrites the first two
/// inputs, the layers below run in turn with each output scaled to unit root-mean-square, and
/// layer `li`'s goodness is the energy `Σh²/d` or the cosine with the all-ones vector.
/// `read(layer, input, n, h)` writes the layer's output `h` (n × out_size) for `n` inputs: the
/// caller decides how much of the library the reference trusts.
template <class Net, class Read>
double ff_local_loss(const Net& net, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t, std::size_t li,
                     bool cosine_goodness, double theta, double alpha, Read read) {
  const std::size_t n = x.shape()[0], in = x.shape()[1];
  double total = 0;
  for (int sign = 0; sign < 2; ++sign) {
    std::vector<double> cur(x.begin(), x.end());
    for (std::size_t r = 0; r < n; ++r) {
      const std::size_t y = t(r, 0) > 0.5 ? 0 : 1;
      const std::size_t lab = sign == 0 ? y : 1 - y;
      cur[r * in + 0] = lab == 0 ? 1 : 0;
      cur[r * in + 1] = lab == 1 ? 1 : 0;
    }
    bool done = false;
    net.for_each_layer([&](const auto& l, std::size_t i) {
      if (done) return;
      const std::size_t d = l.out_size();
      std::vector<double> h(n * d);
      read(l, cur, n, h);
      for (std::size_t r = 0; r < n; ++r) {
        double ss = 0, sum = 0;
        for (std::size_t j = 0; j < d; ++j) ss += h[r * d + j] * h[r * d + j], sum += h[r * d + j];
        if (i == li) {
          const double g = cosine_goodness ? sum / std::sqrt(double(d) * ss) : ss / double(d);
          const double z = sign == 0 ? alpha * (theta - g) : alpha * (g - theta);
          total += std::log1p(std::exp(z)) / double(n);
        }
        for (std::size_t j = 0; j < d; ++j) h[r * d + j] *= std::sqrt(double(d) / ss);
      }
      done = i == li;
      cur = std::move(h);
    });
  }
  return total;
}

}  // namespace pnn_test
