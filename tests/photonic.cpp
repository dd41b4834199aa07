// SPDX-License-Identifier: MIT
// The photonic substrate `physics::mzi_mesh` (W = U Σ V†) as a pnn tile, its in-situ adjoint
// programming, detection, and the optical activations.
#include <catch2/catch.hpp>

#include <cmath>
#include <complex>
#include <vector>

#include <xtensor/xview.hpp>

#include <pnn/pnn.hpp>
#include <pnn/nn/optical_activation.hpp>
#include <pnn/physics/mzi_mesh.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_photonic {

using namespace pnn;
using mesh_d = physics::basic_mzi_mesh<double>;
using tile_d = mesh_d::tile<dynamic, dynamic>;

namespace {

std::vector<double> randn(std::size_t n, std::uint64_t s) {
  rng g(s);
  std::vector<double> v(n);
  for (auto& x : v) x = g.normal_double();
  return v;
}

tile_d make_tile(std::size_t in, std::size_t out, const mesh_d::params& p = {}, std::uint64_t s = 1) {
  tile_d t;
  t.set_params(p);
  t.resize(in, out);
  rng g(s);
  t.prepare(g);
  const auto w = randn(in * out, s + 10), b = randn(out, s + 20);
  t.set_weights(w.data(), b.data(), g);
  return t;
}

// y = x Wᵀ
std::vector<double> matmul_t(const std::vector<double>& x, const double* w, std::size_t n, std::size_t in, std::size_t out) {
  std::vector<double> y(n * out, 0.0);
  for (std::size_t s = 0; s < n; ++s)
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t i = 0; i < in; ++i) y[s * out + j] += x[s * in + i] * w[j * in + i];
  return y;
}

}  // namespace

TEST_CASE("mzi_mesh tiles realise W = U Sigma V^dagger for square and padded shapes", "[photonic]") {
  for (auto [in, out] : {std::pair<std::size_t, std::size_t>{4, 4}, {7, 3}, {3, 6}, {1, 1}})
    for (auto topo : {physics::mesh_topology::clements, physics::mesh_topology::reck}) {
      mesh_d::params p;
      p.topology = topo;
      tile_d t = make_tile(in, out, p, in * 10 + out);
      const auto w = randn(in * out, in * 10 + out + 10);
      std::vector<double> eff(in * out);
      t.effective_weights(eff.data());
      for (std::size_t i = 0; i < w.size(); ++i) CHECK(eff[i] == Approx(w[i]).margin(1e-10));
      CHECK(t.modes() == std::max(in, out));
      // read (matrix path) and reciprocal read against the dense products
      const std::size_t n = 5;
      const auto x = randn(n * in, 3), dy = randn(n * out, 4);
      std::vector<double> y(n * out), dx(n * in);
      rng g(1);
      t.read(x.data(), n, y.data(), g);
      const auto ref = matmul_t(x, w.data(), n, in, out);
      for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == Approx(ref[i]).margin(1e-10));
      t.read_transposed(dy.data(), n, dx.data(), g);
      for (std::size_t s = 0; s < n; ++s)
        for (std::size_t i = 0; i < in; ++i) {
          double r = 0;
          for (std::size_t j = 0; j < out; ++j) r += dy[s * out + j] * w[j * in + i];
          CHECK(dx[s * in + i] == Approx(r).margin(1e-10));
        }
    }
}

TEST_CASE("field propagation through the meshes equals the realised matrix", "[photonic]") {
  mesh_d::params p;
  p.imperfections.coupler_sigma = 0.05;
  p.imperfections.insertion_loss_db = 0.1;
  p.imperfections.crosstalk = 0.02;
  tile_d t = make_tile(6, 4, p, 7);
  const auto x = randn(6, 5), dy = randn(4, 6);
  std::vector<double> y_field(4), y_mat(4), dx_field(6), dx_mat(6);
  rng g(2);
  t.read(x.data(), 1, y_field.data(), g);  // batch 1 < In and no cached matrix: propagates fields
  t.read_transposed(dy.data(), 1, dx_field.data(), g);
  std::vector<double> eff(24);
  t.effective_weights(eff.data());
  t.read(x.data(), 1, y_mat.data(), g);  // cached now: matrix path
  t.read_transposed(dy.data(), 1, dx_mat.data(), g);
  for (std::size_t j = 0; j < 4; ++j) CHECK(y_field[j] == Approx(y_mat[j]).margin(1e-12));
  for (std::size_t i = 0; i < 6; ++i) CHECK(dx_field[i] == Approx(dx_mat[i]).margin(1e-12));
  // the imperfect chip no longer computes the nominal weights
  double dev = 0;
  for (std::size_t i = 0; i < 24; ++i) dev = std::max(dev, std::abs(eff[i] - t.weight_data()[i]));
  CHECK(dev > 1e-3);
}

TEST_CASE("reprogramming realises W - dW exactly on an ideal mesh", "[photonic]") {
  tile_d t = make_tile(5, 3);
  const std::vector<double> w0(t.weight_data(), t.weight_data() + 15), b0(t.bias_data(), t.bias_data() + 3);
  layer_gradient<double> up;
  up.weight = xt::xtensor<double, 2>({3, 5});
  up.bias = xt::xtensor<double, 1>::from_shape({3});  // ({3}) would be one element holding 3
  const auto d = randn(15, 77);
  for (std::size_t i = 0; i < 15; ++i) up.weight.data()[i] = 0.1 * d[i];
  for (std::size_t j = 0; j < 3; ++j) up.bias.data()[j] = 0.5;
  rng g(1);
  t.program(up, g);
  std::vector<double> eff(15);
  t.effective_weights(eff.data());
  for (std::size_t i = 0; i < 15; ++i) CHECK(eff[i] == Approx(w0[i] - 0.1 * d[i]).margin(1e-10));
  for (std::size_t j = 0; j < 3; ++j) CHECK(t.bias_data()[j] == Approx(b0[j] - 0.5));
}

TEST_CASE("tile adjoint phase gradients equal finite differences (coherent and intensity)", "[photonic]") {
  for (auto det : {physics::detection::coherent, physics::detection::intensity}) {
    mesh_d::params p;
    p.detect = det;
    p.responsivity = 0.8;
    p.imperfections.coupler_sigma = 0.03;
    p.imperfections.crosstalk = 0.02;
    p.imperfections.insertion_loss_db = 0.1;
    // square: a zero-padded W programs some phases to exactly 0, where heaters wrap (2π ≡ 0)
    // and, with crosstalk, the neighbours see the jump, so finite differences straddle it
    tile_d t = make_tile(4, 4, p, 5);
    const std::size_t n = 3;
    const auto x = randn(n * 4, 8), dy = randn(n * 4, 9);
    physics::mzi_mesh_gradients gr;
    rng g(1);
    t.adjoint_phase_gradients(x.data(), dy.data(), n, gr, g);
    auto loss = [&](const tile_d& tt) {
      std::vector<double> y(n * 4);
      rng gg(1);
      tt.read(x.data(), n, y.data(), gg);
      double l = 0;
      for (std::size_t i = 0; i < y.size(); ++i) l += dy[i] * y[i];
      return l;
    };
    const double h = 1e-6;
    auto zero_like = [&] {
      physics::mzi_mesh_gradients z = gr;
      for (auto* m : {&z.u, &z.v}) m->assign(m->theta.size(), m->screen.size());
      z.sigma.assign(z.sigma.size(), 0.0);
      return z;
    };
    auto fd = [&](auto pick) {
      tile_d a = t, b = t;
      auto s = zero_like();
      pick(s) = -h;  // program_phases subtracts the step
      a.program_phases(s);
      pick(s) = h;
      b.program_phases(s);
      return (loss(a) - loss(b)) / (2 * h);
    };
    for (std::size_t k = 0; k < gr.u.theta.size(); ++k) {
      CHECK(gr.u.theta[k] == Approx(fd([&](auto& s) -> double& { return s.u.theta[k]; })).margin(1e-6));
      CHECK(gr.v.phi[k] == Approx(fd([&](auto& s) -> double& { return s.v.phi[k]; })).margin(1e-6));
    }
    for (std::size_t m = 0; m < gr.sigma.size(); ++m) {
      CHECK(gr.sigma[m] == Approx(fd([&](auto& s) -> double& { return s.sigma[m]; })).margin(1e-6));
      CHECK(gr.v.screen[m] == Approx(fd([&](auto& s) -> double& { return s.v.screen[m]; })).margin(1e-6));
      CHECK(gr.u.screen[m] == Approx(fd([&](auto& s) -> double& { return s.u.screen[m]; })).margin(1e-6));
    }
  }
}

TEST_CASE("intensity detection reads R |W x|^2", "[photonic]") {
  mesh_d::params p;
  p.detect = physics::detection::intensity;
  p.responsivity = 0.5;
  tile_d t = make_tile(3, 2, p, 3);
  const auto w = randn(6, 13);
  const auto x = randn(6, 4);
  std::vector<double> y(4);
  rng g(1);
  t.read(x.data(), 2, y.data(), g);
  const auto ref = matmul_t(x, w.data(), 2, 3, 2);
  for (std::size_t i = 0; i < 4; ++i) CHECK(y[i] == Approx(0.5 * ref[i] * ref[i]).margin(1e-10));
}

TEST_CASE("phase noise per read and detector noise perturb reads reproducibly", "[photonic]") {
  mesh_d::params p;
  p.imperfections.phase_noise_sigma = 0.05;
  p.detector.shot_photons_per_unit = 1e4;
  tile_d t = make_tile(4, 4, p, 3);
  const auto x = randn(8, 4);
  std::vector<double> y1(8), y2(8), y3(8);
  rng g1(5), g2(5), g3(6);
  t.read(x.data(), 2, y1.data(), g1);
  t.read(x.data(), 2, y2.data(), g2);
  t.read(x.data(), 2, y3.data(), g3);
  CHECK(y1 == y2);
  CHECK(y1 != y3);
  const auto w = randn(16, 13);
  const auto ref = matmul_t(x, w.data(), 2, 4, 4);
  // Over many reads the noise averages out to the programmed product up to its second-order
  // attenuation (E[e^{iε}] = e^{−σ²/2} per shifter, about 1 % here), and each read departs from
  // it by an amount of the order of σ·|y|: present, and small.
  const std::size_t reads = 400;
  std::vector<double> mean(8, 0.0), sq(8, 0.0), y(8);
  for (std::size_t k = 0; k < reads; ++k) {
    rng gk(100, k);
    t.read(x.data(), 2, y.data(), gk);
    for (std::size_t i = 0; i < 8; ++i) {
      mean[i] += y[i] / double(reads);
      sq[i] += y[i] * y[i] / double(reads);
    }
  }
  double scale = 0;
  for (double v : ref) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < 8; ++i) {
    const double sd = std::sqrt(std::max(sq[i] - mean[i] * mean[i], 0.0));
    INFO("output " << i << ": ref " << ref[i] << ", mean " << mean[i] << ", sd " << sd);
    CHECK(std::abs(mean[i] - ref[i]) < 0.03 * scale + 4 * sd / std::sqrt(double(reads)));
    CHECK(sd > 0.002 * scale);
    CHECK(sd < 0.2 * scale);
  }
}

TEST_CASE("mzi_mesh networks train with backprop, by reprogramming and by adjoint phase steps", "[photonic]") {
  using net_t = network<dense<dynamic, dynamic, physics::mzi_mesh, noise::none, act::tanh>,
                        dense<dynamic, dynamic, physics::mzi_mesh, noise::none, act::identity>>;
  rng gd(3);
  auto train = data::teacher_student(256, 8, 4, gd);
  for (auto mode : {physics::mesh_programming::reprogram, physics::mesh_programming::adjoint}) {
    physics::mzi_mesh::params p;
    p.programming = mode;
    net_t net({8, 12, 4}, seed{1}, p);
    learn::backprop<> rule{{.optimizer = {.learning_rate = 0.05f}}};
    rng g(1);
    double first = 0, last = 0;
    for (int epoch = 0; epoch < 15; ++epoch) {
      double sum = 0;
      for (std::size_t b = 0; b < 256; b += 32) {
        auto x = xt::view(train.inputs, xt::range(b, b + 32), xt::all());
        auto y = xt::view(train.targets, xt::range(b, b + 32), xt::all());
        sum += rule.step(net, x, y, loss::mse{}, g).loss;
      }
      if (epoch == 0) first = sum;
      last = sum;
    }
    INFO("mode " << int(mode) << " first " << first << " last " << last);
    CHECK(last < 0.5 * first);
  }
}

TEST_CASE("optical activations: values and derivatives", "[photonic]") {
  const act::square_law sq{.responsivity = 0.7f};
  const act::saturable_absorber sa{};
  const act::electro_optic eo{};
  CHECK(sq(std::complex<double>(1, 2)) == Approx(0.7 * 5));
  const double h = 1e-6;
  for (double a : {-1.3, -0.4, 0.0, 0.2, 0.9, 2.1}) {
    CHECK(sq.derivative(a, 0.0) == Approx((sq(a + h) - sq(a - h)) / (2 * h)).margin(1e-6));
    CHECK(sa.derivative(a, 0.0) == Approx((sa(a + h) - sa(a - h)) / (2 * h)).margin(1e-6));
    CHECK(eo.derivative(a, 0.0) == Approx((eo(a + h) - eo(a - h)) / (2 * h)).margin(1e-6));
    // the real form is the complex activation up to its unit-modulus phase factor
    CHECK(std::abs(eo(std::complex<double>(a, 0))) == Approx(std::abs(eo(a))).margin(1e-6));
  }
  // saturable absorber: transmission grows with intensity towards 1
  CHECK(sa(0.1) / 0.1 < sa(3.0) / 3.0);
  CHECK(sa(100.0) / 100.0 == Approx(1.0).margin(1e-3));
  // the layer applies them over SIMD packs
  std::vector<float> v{-1, -0.5f, 0, 0.5f, 1, 1.5f, 2, 2.5f, 3}, o(9);
  simd::map<float>(v.size(), v.data(), o.data(), eo);
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(o[i] == Approx(eo(v[i])).margin(1e-5));
}

TEST_CASE("mzi_mesh rejects bad parameters and weights", "[photonic]") {
  tile_d t;
  mesh_d::params p;
  p.responsivity = -1;
  CHECK_THROWS_AS(t.set_params(p), pnn::error);
  p = {};
  p.imperfections.insertion_loss_db = -0.2;
  CHECK_THROWS_WITH(t.set_params(p), Catch::Contains("loss"));
  CHECK_THROWS_AS(t.resize(0, 3), pnn::error);
  tile_d ok = make_tile(3, 2);
  std::vector<double> w(6, 0.1), b(2, 0.0);
  w[3] = std::nan("");
  rng g(1);
  const std::vector<double> before(ok.weight_data(), ok.weight_data() + 6);
  CHECK_THROWS_WITH(ok.set_weights(w.data(), b.data(), g), Catch::Contains("finite"));
  CHECK(std::vector<double>(ok.weight_data(), ok.weight_data() + 6) == before);
}

}  // namespace tests_photonic
