// SPDX-License-Identifier: MIT
// The crossbar_variation mismatch: column gains act on forward read-outs only and belong to the
// width they were drawn for, and rules that drive tiles themselves (equilibrium propagation) see
// the static weight variation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_mismatch {

using namespace pnn;

namespace {
// The message of the pnn::error `f` throws ("(no error)" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const pnn::error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("column_gain scales output columns, not transposed read-outs", "[noise][mismatch]") {
  noise::column_gain cg{.sigma = 0.1};
  rng g(3);
  cg.prepare(4, 3, g);
  REQUIRE(cg.state.gain.size() == 3);
  // k_j = 1 + σ ξ_j, ξ_j the stream's standard normals in column order.
  rng gr(3);
  for (std::size_t j = 0; j < 3; ++j) CHECK(cg.state.gain[j] == Approx(1.0 + 0.1 * gr.normal_double()).epsilon(1e-6));
  // A 2 × 3 read-out (the shaped hook a layer calls): column j of every row times k_j.
  const std::vector<float> y0{0.5f, -1.0f, 2.0f, 0.25f, 3.0f, -0.75f};
  std::vector<float> y = y0;
  cg.output(y.data(), 2, 3, g);
  for (std::size_t i = 0; i < 6; ++i) CHECK(y[i] == Approx(y0[i] * cg.state.gain[i % 3]));
  // The flat hook carries no shape: one row of the prepared width.
  std::vector<float> row(y0.begin(), y0.begin() + 3);
  cg.output(row.data(), row.size(), g);
  for (std::size_t j = 0; j < 3; ++j) CHECK(row[j] == Approx(y0[j] * cg.state.gain[j]));
  y = y0;
  CHECK_THROWS_WITH(cg.output(y.data(), y.size(), g), Catch::Contains("pass rows and width"));
  CHECK(y == y0);
  // A layer's read applies the gains to its columns, in a chain too.
  dense<dynamic, dynamic, physics::digital, noise::crossbar_mismatch> l;
  l.noise = noise::crossbar_variation_mismatch(0.0, 0.2, 0.0);
  rng gl(5);
  l.initialize(2, 3, gl);
  const auto& k = l.noise.get<1>().state.gain;
  const float x[4] = {0.5f, -1.0f, 1.5f, 0.25f};
  float out[6];
  l.read(x, 2, out, gl);
  const float* w = l.tile.weight_data();
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t j = 0; j < 3; ++j)
      CHECK(out[r * 3 + j] == Approx(k[j] * (double(w[j * 2]) * x[r * 2] + double(w[j * 2 + 1]) * x[r * 2 + 1])));
  std::vector<float> xt(8, 1.0f);
  cg.output_transposed(xt.data(), xt.size(), g);
  for (float v : xt) CHECK(v == 1.0f);
  CHECK_THROWS_AS(noise::column_gain{.sigma = -1.0}.validate(), pnn::error);
  noise::column_gain unprepared;
  CHECK_THROWS_WITH(unprepared.output(y.data(), 2, 3, g), Catch::Contains("prepare() was not called"));
}

TEST_CASE("column_gain refuses a read-out of another width than it was prepared for", "[noise][mismatch]") {
  noise::column_gain cg{.sigma = 0.1};
  rng g(3);
  cg.prepare(3, 2, g);  // two columns
  // A 2 × 4 read-out: 4 is a multiple of 2, which the old flat check accepted silently.
  const std::vector<float> y0{1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> y = y0;
  using Catch::Contains;
  CHECK_THAT(error_of([&] { cg.output(y.data(), 2, 4, g); }),
             Contains("column_gain") && Contains("width 4") && Contains("2 column gains"));
  CHECK(y == y0);  // nothing changed
  CHECK_THAT(error_of([&] { cg.output(y.data(), 4, 1, g); }), Contains("width 1") && Contains("2 column gains"));
  CHECK(y == y0);
  // Through a chain and through a layer: the gains of a 2-wide layer on a 4-wide one.
  auto chain = noise::crossbar_variation_mismatch(0.3, 0.1, 0.02);
  chain.get<1>() = cg;
  CHECK_THAT(error_of([&] { chain.output(y.data(), 2, 4, g); }),
             Contains("column_gain") && Contains("width 4") && Contains("2 column gains"));
  using layer_t = dense<dynamic, dynamic, physics::digital, noise::column_gain>;
  layer_t wide, narrow;
  wide.initialize(3, 4, g);
  narrow.initialize(3, 2, g);
  wide.noise = narrow.noise;
  const std::vector<float> x(6, 0.5f);
  CHECK_THAT(error_of([&] { wide.read(x.data(), 2, y.data(), g); }),
             Contains("column_gain") && Contains("width 4") && Contains("2 column gains"));
  layer_t ok;
  ok.initialize(3, 4, g);
  CHECK_NOTHROW(ok.read(x.data(), 2, y.data(), g));
}

namespace {
using mat = std::vector<std::vector<double>>;

// Centered EP (synchronous fixed-point relaxation, docs/rules.md) of a two-layer hard-sigmoid
// network whose layer l reads forwards with `fwd[l]` and whose output layer reads backwards with
// `bwd` (Out × In, used transposed): free phase of T steps from 0, nudged phases at ±β of K steps
// from the free state, cost ½‖s₁ − t‖² per sample. Returns ĝ_W for both layers.
std::array<mat, 2> reference_ep(const std::array<mat, 2>& fwd, const mat& bwd,
                                const std::array<std::vector<double>, 2>& b, const mat& x, const mat& t, double beta,
                                int T, int K) {
  const std::size_t n = x.size(), h = fwd[0].size(), k = fwd[1].size(), in = x[0].size();
  auto clip = [](double v) { return std::clamp(v, 0.0, 1.0); };
  auto relax = [&](mat s0, mat s1, double bt, int steps) {
    for (int st = 0; st < steps; ++st) {
      mat a0(n, std::vector<double>(h)), a1(n, std::vector<double>(k));
      for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t j = 0; j < h; ++j) {
          double d = b[0][j];
          for (std::size_t i = 0; i < in; ++i) d += fwd[0][j][i] * x[r][i];
          for (std::size_t q = 0; q < k; ++q) d += bwd[q][j] * s1[r][q];
          a0[r][j] = clip(d);
        }
        for (std::size_t q = 0; q < k; ++q) {
          double d = b[1][q] - bt * (s1[r][q] - t[r][q]);
          for (std::size_t j = 0; j < h; ++j) d += fwd[1][q][j] * s0[r][j];
          a1[r][q] = clip(d);
        }
      }
      s0 = a0;
      s1 = a1;
    }
    return std::pair{s0, s1};
  };
  const auto [f0, f1] = relax(mat(n, std::vector<double>(h, 0.0)), mat(n, std::vector<double>(k, 0.0)), 0.0, T);
  const auto [p0, p1] = relax(f0, f1, beta, K);
  const auto [m0, m1] = relax(f0, f1, -beta, K);
  const double scale = -1.0 / (2 * beta * double(n));
  std::array<mat, 2> g{mat(h, std::vector<double>(in, 0.0)), mat(k, std::vector<double>(h, 0.0))};
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t j = 0; j < h; ++j)
      for (std::size_t i = 0; i < in; ++i) g[0][j][i] += scale * (p0[r][j] - m0[r][j]) * x[r][i];
    for (std::size_t q = 0; q < k; ++q)
      for (std::size_t j = 0; j < h; ++j) g[1][q][j] += scale * (p1[r][q] * p0[r][j] - m1[r][q] * m0[r][j]);
  }
  return g;
}
}  // namespace

TEST_CASE("equilibrium propagation reads through the static weight variation", "[equilibrium][mismatch]") {
  // What EP sees on a digital network with crossbar_mismatch (no read noise): every read uses the
  // effective weights W_eff = W ⊙ (1 + σ_m ξ) (the weights stage acts on the tile both ways), the
  // column gains K scale forward read-outs only (the digital tile's transposed read is exact and
  // skips the output stage), and the gains are static. So layer 0's drive is K₀ W_eff,0 x + b₀ and
  // layer 1 reads K₁ W_eff,1 forwards but W_eff,1ᵀ backwards.
  using hs = act::hard_sigmoid;
  using clean_t = network<dense<dynamic, dynamic, physics::digital, noise::none, hs>,
                          dense<dynamic, dynamic, physics::digital, noise::none, hs>>;
  using mism_t = network<dense<dynamic, dynamic, physics::digital, noise::crossbar_mismatch, hs>,
                         dense<dynamic, dynamic, physics::digital, noise::crossbar_mismatch, hs>>;
  const std::size_t n = 4, in = 6, hid = 5, out = 3;
  mism_t varied({in, hid, out}, seed{2}, noise::crossbar_variation_mismatch(0.3, 0.1, 0.0));
  init::uniform_fan_in(varied, seed{4});
  xt::xtensor<float, 2> x({n, in});
  rng g(1);
  for (auto& v : x) v = g.uniform();
  xt::xtensor<float, 2> t = xt::zeros<float>({n, out});
  for (std::size_t i = 0; i < n; ++i) t(i, i % out) = 1;
  const double beta = 0.2;
  learn::equilibrium_propagation<> ep({.beta = beta, .free_steps = 20, .nudged_steps = 5});

  // The effective weights and gains, from the stored draws and the documented formulas.
  auto effective = [&](const auto& l, bool gain) {
    const auto& var = l.noise.template get<0>();
    const auto& k = l.noise.template get<1>().state.gain;
    mat w(l.out_size(), std::vector<double>(l.in_size()));
    for (std::size_t j = 0; j < l.out_size(); ++j)
      for (std::size_t i = 0; i < l.in_size(); ++i) {
        const std::size_t e = j * l.in_size() + i;
        w[j][i] = double(l.tile.weight_data()[e]) * (1 + 0.3 * double(var.state.gain_xi[e])) * (gain ? double(k[j]) : 1.0);
      }
    return w;
  };
  auto bias = [](const auto& l) { return std::vector<double>(l.tile.bias_data(), l.tile.bias_data() + l.out_size()); };
  auto check_equal = [](const auto& got, const auto& want, std::size_t layer) {
    const auto& gw = got[layer].weight;
    for (std::size_t j = 0; j < gw.shape()[0]; ++j)
      for (std::size_t i = 0; i < gw.shape()[1]; ++i) {
        INFO("layer " << layer << " (" << j << ", " << i << ")");
        CHECK(double(gw(j, i)) == Approx(want(j, i)).margin(1e-6));
      }
  };

  SECTION("with the output layer's gains at 1, EP equals EP on the clean network of the effective weights") {
    // Layer 0's gains fold into its weights (its drive is only read forwards); layer 1's cannot
    // (see the next section), so they are set to 1 here.
    auto& k1 = layer<1>(varied).noise.get<1>().state.gain;
    std::fill(k1.begin(), k1.end(), 1.0f);
    clean_t clean({in, hid, out}, seed{2});
    const mat w0 = effective(layer<0>(varied), true), w1 = effective(layer<1>(varied), false);
    for (std::size_t j = 0; j < hid; ++j)
      for (std::size_t i = 0; i < in; ++i) layer<0>(clean).tile.weight_data()[j * in + i] = float(w0[j][i]);
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t i = 0; i < hid; ++i) layer<1>(clean).tile.weight_data()[j * hid + i] = float(w1[j][i]);
    std::copy_n(layer<0>(varied).tile.bias_data(), hid, layer<0>(clean).tile.bias_data());
    std::copy_n(layer<1>(varied).tile.bias_data(), out, layer<1>(clean).tile.bias_data());
    rng g1(5), g2(5);
    const auto a = ep.estimate(clean, x, t, loss::mse{}, g1);
    const auto b = ep.estimate(varied, x, t, loss::mse{}, g2);
    for (std::size_t l = 0; l < 2; ++l)
      check_equal(b, [&](std::size_t j, std::size_t i) { return double(a[l].weight(j, i)); }, l);
    // The variation matters: the clean network of the nominal weights estimates something else.
    clean_t nominal({in, hid, out}, seed{2});
    init::uniform_fan_in(nominal, seed{4});
    rng g3(5);
    const auto c = ep.estimate(nominal, x, t, loss::mse{}, g3);
    double diff = 0, scale = 0;
    for (std::size_t e = 0; e < c[0].weight.size(); ++e) {
      diff += std::abs(double(c[0].weight.data()[e]) - double(b[0].weight.data()[e]));
      scale += std::abs(double(b[0].weight.data()[e]));
    }
    CHECK(diff > 0.05 * scale);
  }

  SECTION("with output gains, EP relaxes the asymmetric reads K1 W_eff forwards and W_eff^T backwards") {
    // No clean network has a forward read K₁W and a backward read Wᵀ, so the reference is the
    // relaxation itself, computed here in double with exactly those reads.
    const auto& k1 = layer<1>(varied).noise.get<1>().state.gain;
    REQUIRE(std::abs(k1[0] - 1.0f) + std::abs(k1[1] - 1.0f) + std::abs(k1[2] - 1.0f) > 0.05f);
    mat xs(n, std::vector<double>(in)), ts(n, std::vector<double>(out));
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t i = 0; i < in; ++i) xs[r][i] = x(r, i);
      for (std::size_t q = 0; q < out; ++q) ts[r][q] = t(r, q);
    }
    const auto want = reference_ep({effective(layer<0>(varied), true), effective(layer<1>(varied), true)},
                                   effective(layer<1>(varied), false), {bias(layer<0>(varied)), bias(layer<1>(varied))},
                                   xs, ts, beta, 20, 5);
    rng g2(5);
    const auto b = ep.estimate(varied, x, t, loss::mse{}, g2);
    for (std::size_t l = 0; l < 2; ++l) check_equal(b, [&](std::size_t j, std::size_t i) { return want[l][j][i]; }, l);
    // The same relaxation with the gains on both read directions (a symmetric network) differs.
    const auto sym = reference_ep({effective(layer<0>(varied), true), effective(layer<1>(varied), true)},
                                  effective(layer<1>(varied), true),
                                  {bias(layer<0>(varied)), bias(layer<1>(varied))}, xs, ts, beta, 20, 5);
    double diff = 0;
    for (std::size_t j = 0; j < hid; ++j)
      for (std::size_t i = 0; i < in; ++i) diff += std::abs(sym[0][j][i] - want[0][j][i]);
    CHECK(diff > 1e-3);
  }
}

}  // namespace tests_mismatch
