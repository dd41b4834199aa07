// SPDX-License-Identifier: MIT
// The reference gradient of the layered energy model, by implicit differentiation at the free
// equilibrium: what EP's and coupled learning's estimates must approach as beta, eta -> 0.
#pragma once

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <xtensor/xtensor.hpp>

#include <pnn/pnn.hpp>

namespace pnn_test {

using reference_energy_net =
    pnn::network<pnn::dense<pnn::dynamic, pnn::dynamic, pnn::physics::basic_digital<double>, pnn::noise::none,
                            pnn::act::hard_sigmoid>,
                 pnn::dense<pnn::dynamic, pnn::dynamic, pnn::physics::basic_digital<double>, pnn::noise::none,
                            pnn::act::hard_sigmoid>>;

// Solves A y = b (dense, partial pivoting); A is overwritten.
inline std::vector<double> solve(std::vector<double> a, std::vector<double> b, std::size_t d) {
  for (std::size_t c = 0; c < d; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < d; ++r)
      if (std::abs(a[r * d + c]) > std::abs(a[p * d + c])) p = r;
    for (std::size_t k = 0; k < d; ++k) std::swap(a[c * d + k], a[p * d + k]);
    std::swap(b[c], b[p]);
    for (std::size_t r = c + 1; r < d; ++r) {
      const double f = a[r * d + c] / a[c * d + c];
      for (std::size_t k = c; k < d; ++k) a[r * d + k] -= f * a[c * d + k];
      b[r] -= f * b[c];
    }
  }
  for (std::size_t c = d; c-- > 0;) {
    for (std::size_t k = c + 1; k < d; ++k) b[c] -= a[c * d + k] * b[k];
    b[c] /= a[c * d + c];
  }
  return b;
}

// The linear system of the free equilibrium of the 2-layer energy network: inside the linear
// region of ρ the energy is quadratic, with Hessian H = [[I, −W1ᵀ], [−W1, I]] over the states
// (hidden h, then outputs k), and the equilibrium of sample r solves H s = c_r,
// c_r = [W0 x_r + b0; b1].
struct linear_equilibrium {
  const reference_energy_net& net;
  std::size_t in, h, k, d;
  std::vector<double> hess;

  explicit linear_equilibrium(const reference_energy_net& n)
      : net(n),
        in(pnn::layer<0>(n).in_size()),
        h(pnn::layer<0>(n).out_size()),
        k(pnn::layer<1>(n).out_size()),
        d(h + k),
        hess(d * d, 0.0) {
    const double* w1 = pnn::layer<1>(n).tile.weight_data();
    for (std::size_t i = 0; i < d; ++i) hess[i * d + i] = 1;
    for (std::size_t o = 0; o < k; ++o)
      for (std::size_t j = 0; j < h; ++j) {
        hess[(h + o) * d + j] = -w1[o * h + j];
        hess[j * d + h + o] = -w1[o * h + j];
      }
  }
  // The free equilibrium of sample r of x, required to lie inside the linear region.
  [[nodiscard]] std::vector<double> state(const xt::xtensor<double, 2>& x, std::size_t r) const {
    const auto& l0 = pnn::layer<0>(net);
    const double* w0 = l0.tile.weight_data();
    std::vector<double> c(d);
    for (std::size_t j = 0; j < h; ++j) {
      c[j] = l0.tile.bias_data()[j];
      for (std::size_t i = 0; i < in; ++i) c[j] += w0[j * in + i] * x(r, i);
    }
    for (std::size_t o = 0; o < k; ++o) c[h + o] = pnn::layer<1>(net).tile.bias_data()[o];
    auto s = solve(hess, c, d);
    for (double v : s) {
      INFO("state " << v);
      REQUIRE((v > 0.02 && v < 0.98));  // inside the linear region
    }
    return s;
  }
};

// The output states (n × k) at the free equilibrium, solved directly.
inline xt::xtensor<double, 2> free_equilibrium_outputs(const reference_energy_net& net, const xt::xtensor<double, 2>& x) {
  const linear_equilibrium eq(net);
  const std::size_t n = x.shape()[0];
  xt::xtensor<double, 2> y({n, eq.k});
  for (std::size_t r = 0; r < n; ++r) {
    const auto s = eq.state(x, r);
    for (std::size_t o = 0; o < eq.k; ++o) y(r, o) = s[eq.h + o];
  }
  return y;
}

// dL/dθ of L = mean_n ½‖s_out − t‖² at the free equilibrium of the 2-layer energy network, by
// implicit differentiation: H λ = ∂C/∂s, ∇_θ = −λᵀ ∂²E/∂s∂θ.
inline pnn::gradients<reference_energy_net> implicit_gradient(const reference_energy_net& net,
                                                              const xt::xtensor<double, 2>& x,
                                                              const xt::xtensor<double, 2>& t) {
  const linear_equilibrium eq(net);
  const std::size_t in = eq.in, h = eq.h, k = eq.k, d = eq.d, n = x.shape()[0];
  pnn::gradients<reference_energy_net> g(net);
  for (std::size_t r = 0; r < n; ++r) {
    const auto s = eq.state(x, r);
    std::vector<double> dc(d, 0.0);
    for (std::size_t o = 0; o < k; ++o) dc[h + o] = s[h + o] - t(r, o);
    const auto lam = solve(eq.hess, dc, d);
    const double inv = 1.0 / double(n);
    for (std::size_t j = 0; j < h; ++j) {
      for (std::size_t i = 0; i < in; ++i) g[0].weight(j, i) += inv * lam[j] * x(r, i);
      g[0].bias(j) += inv * lam[j];
    }
    for (std::size_t o = 0; o < k; ++o) {
      for (std::size_t j = 0; j < h; ++j) g[1].weight(o, j) += inv * (lam[h + o] * s[j] + s[h + o] * lam[j]);
      g[1].bias(o) += inv * lam[h + o];
    }
  }
  return g;
}

}  // namespace pnn_test
