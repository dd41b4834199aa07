// SPDX-License-Identifier: MIT
// The transfer compounds (Tiki-Taka v1/v2, chopped TTv2, AGAD): zero-shifting onto the devices'
// symmetry points, each algorithm's transfer arithmetic against hand-computed values, the
// choppers' and the dynamic reference's cancellation of a fast-array offset, training on
// asymmetric soft-bounds devices, and parameter checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <pnn/pnn.hpp>
#include <pnn/learn/transfer_compound.hpp>
#include <pnn/physics/crossbar.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_transfer_compound {

using namespace pnn;

namespace {

using sb = physics::devices::soft_bounds;
using cs = physics::devices::constant_step;

// One layer In → Out on a crossbar with ideal periphery and noiseless, identical devices.
template <class Dev>
struct one_layer {
  using xbar = physics::crossbar<Dev>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  static net_t make(std::size_t in, std::size_t out, Dev d) {
    typename xbar::params p = xbar::params::ideal();
    p.device = d;
    return net_t({in, out}, seed{1}, p);
  }
};

constexpr cs quiet_constant{.dw_min = 0.001f, .dw_min_dtod = 0, .dw_min_std = 0, .up_down_dtod = 0,
                            .w_min = -1.0f, .w_max = 1.0f, .w_min_dtod = 0, .w_max_dtod = 0};

// A zero estimate of one sample (no pulses reach A; one vector update is counted).
template <class Net>
gradients<Net> zero_estimate(const Net& net) {
  gradients<Net> g(net);
  const std::size_t in = layer<0>(net).in_size(), out = layer<0>(net).out_size();
  g[0].input = xt::zeros<float>({std::size_t{1}, in});
  g[0].delta = xt::zeros<float>({std::size_t{1}, out});
  g[0].factor_scale = 1.0f;
  g[0].factored = true;
  return g;
}

template <class State>
float* fast_weights(State& s) {
  return std::get<0>(s.layers).fast->weight_data();
}

}  // namespace

TEST_CASE("zero-shifting: up/down pulse pairs settle soft-bounds devices at their symmetry point", "[transfer]") {
  // w* solves Δw_up(1 − w/b_max) = Δw_down(1 − w/b_min); one pair's fixed point differs by O(dw_min²).
  using xbar = physics::crossbar<sb>;
  xbar::params p;
  p.device = sb{.dw_min = 0.002f, .dw_min_dtod = 0.3f, .dw_min_std = 0, .up_down = 0.2f, .up_down_dtod = 0.05f};
  xbar::tile<dynamic, dynamic> t(p);
  t.resize(12, 5);
  rng g(7);
  t.prepare(g);
  rng gz(8);
  t.apply_pulse_pairs(4000, gz);
  double worst = 0, spread = 0;
  for (std::size_t e = 0; e < 60; ++e) {
    const auto c = t.cell(e);
    const double up = c.dw_up, dn = c.dw_down;
    const double w_star = (up - dn) / (up / c.b_max - dn / c.b_min);
    worst = std::max(worst, std::abs(double(t.weight_data()[e]) - w_star));
    spread = std::max(spread, std::abs(w_star));
  }
  INFO("largest |w - w*| " << worst << ", largest |w*| " << spread);
  CHECK(spread > 0.05);         // the asymmetry puts the symmetry points well away from zero
  CHECK(worst < 2 * 0.002 * 1.6);  // within about one step of the device
}

TEST_CASE("Tiki-Taka v1 pulses each read column of A onto C with rate transfer_lr * eta", "[transfer]") {
  auto net = one_layer<cs>::make(3, 2, quiet_constant);
  using net_t = decltype(net);
  auto opt = optim::transfer_compound::preset(optim::transfer_algorithm::tiki_taka);
  opt.zero_shift = false;
  opt.learning_rate = 0.1f;
  opt.transfer_lr = 2.0f;
  optim::transfer_compound::state<net_t> s;
  opt.prepare_state(net, s);
  float* a = fast_weights(s);
  const float A[6] = {0.3f, -0.1f, 0.05f, -0.2f, 0.4f, 0.0f};  // Out × In
  std::copy(A, A + 6, a);
  for (std::size_t col = 0; col < 4; ++col) {
    auto g = zero_estimate(net);
    g[0].bias(0) = 1.0f;
    opt.apply(g, s, net);
    const std::size_t j = col % 3;  // columns are read in turn, wrapping around
    CHECK(g[0].factored);
    CHECK(g[0].bias(0) == Approx(0.1f));  // biases: SGD at eta
    REQUIRE(g[0].input.shape()[0] == 1);
    CHECK(g[0].input(0, j) == 1.0f);
    CHECK(g[0].factor_scale == Approx(-0.2f));
    for (std::size_t o = 0; o < 2; ++o) {
      CHECK(g[0].delta(0, o) == Approx(A[o * 3 + j]));
      for (std::size_t i = 0; i < 3; ++i) CHECK(g[0].weight(o, i) == Approx(i == j ? -0.2f * A[o * 3 + j] : 0.0f));
    }
  }
  CHECK(std::get<0>(s.layers).transfers == 4);
}

TEST_CASE("TTv2 accumulates reads in a buffer and fires whole pulses when it crosses the threshold", "[transfer]") {
  auto net = one_layer<cs>::make(1, 2, quiet_constant);
  using net_t = decltype(net);
  auto opt = optim::transfer_compound::preset(optim::transfer_algorithm::ttv2);
  opt.zero_shift = false;
  opt.learning_rate = 0.1f;  // λ/(θ dw_min) = 100 buffer units per unit read
  optim::transfer_compound::state<net_t> s;
  opt.prepare_state(net, s);
  float* a = fast_weights(s);
  a[0] = 0.003f;    // +0.3 per read: fires +1 at the 4th read
  a[1] = -0.0015f;  // −0.15 per read: fires −1 at the 7th read
  std::vector<int> fired0, fired1;
  for (int k = 1; k <= 8; ++k) {
    auto g = zero_estimate(net);
    opt.apply(g, s, net);
    CHECK_FALSE(g[0].factored);
    if (g[0].weight(0, 0) != 0) {
      fired0.push_back(k);
      CHECK(g[0].weight(0, 0) == Approx(-0.001f));
    }
    if (g[0].weight(1, 0) != 0) {
      fired1.push_back(k);
      CHECK(g[0].weight(1, 0) == Approx(0.001f));
    }
  }
  CHECK(fired0 == std::vector<int>{4, 8});  // the buffer is forgotten after each transfer
  CHECK(fired1 == std::vector<int>{7});
  const auto& buf = std::get<0>(s.layers).buffer;
  CHECK(buf[0] == Approx(0.0f).margin(1e-5));
  CHECK(buf[1] == Approx(-0.15f).margin(1e-5));
  // The pulses reach C through the rule's programming: whole device steps.
  auto g = zero_estimate(net);
  for (int k = 0; k < 4; ++k) {
    g = zero_estimate(net);
    opt.apply(g, s, net);
  }
  const float before = layer<0>(net).tile.weight_data()[0];
  rng gp(3);
  program(net, g, gp);
  CHECK(layer<0>(net).tile.weight_data()[0] == Approx(before + 0.001f));
}

TEST_CASE("choppers and AGAD's dynamic reference keep a constant offset of A out of C", "[transfer]") {
  // A holds an offset and receives no gradient: TTv2 transfers the offset into C, c-TTv2 with
  // a chopper flipping at every read and AGAD (after its first period) transfer nothing.
  auto pulses_into_c = [](optim::transfer_algorithm alg, float chop) {
    auto net = one_layer<cs>::make(2, 3, quiet_constant);
    using net_t = decltype(net);
    auto opt = optim::transfer_compound::preset(alg);
    opt.zero_shift = false;
    opt.learning_rate = 0.1f;
    opt.in_chop_prob = chop;
    optim::transfer_compound::state<net_t> s;
    opt.prepare_state(net, s);
    float* a = fast_weights(s);
    for (std::size_t e = 0; e < 6; ++e) a[e] = 0.0025f * float(e % 3 + 1) * (e % 2 ? -1.0f : 1.0f);
    double late = 0;
    for (int k = 0; k < 200; ++k) {
      auto g = zero_estimate(net);
      opt.apply(g, s, net);
      if (k >= 40)
        for (float w : g[0].weight) late += std::abs(w) / 0.001;
    }
    return late;
  };
  CHECK(pulses_into_c(optim::transfer_algorithm::ttv2, 0.0f) > 100);
  CHECK(pulses_into_c(optim::transfer_algorithm::c_ttv2, 1.0f) == 0);
  CHECK(pulses_into_c(optim::transfer_algorithm::agad, 0.1f) == 0);
}

TEST_CASE("zero-shifted reference: A at its symmetry points reads as zero", "[transfer]") {
  sb d{.dw_min = 0.002f, .dw_min_std = 0, .up_down = 0.3f, .up_down_dtod = 0};
  auto net = one_layer<sb>::make(4, 3, d);
  using net_t = decltype(net);
  auto opt = optim::transfer_compound::preset(optim::transfer_algorithm::ttv2);
  opt.zero_shift_pairs = 2000;
  optim::transfer_compound::state<net_t> s;
  opt.prepare_state(net, s);
  const auto& ref = std::get<0>(s.layers).reference;
  REQUIRE(ref.size() == 12);
  double m = 0;
  for (float r : ref) m += std::abs(r);
  CHECK(m / 12 > 0.05);  // the asymmetry moved the symmetry points off zero
  for (int k = 0; k < 50; ++k) {
    auto g = zero_estimate(net);
    opt.apply(g, s, net);
    for (float w : g[0].weight) CHECK(w == 0.0f);
  }
  CHECK(opt.buffer_floats(net) == 24);  // H and R, 12 each
}

TEST_CASE("transfer compounds train backprop on asymmetric soft-bounds crossbars", "[transfer][training]") {
  using xbar = physics::crossbar<sb>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::tanh>,
                        dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  rng gd(1);
  const auto d = data::gaussian_blobs(384, 8, 3, gd);
  xbar::params p;
  p.device = sb{.up_down = 0.1f};
  for (auto alg : {optim::transfer_algorithm::tiki_taka, optim::transfer_algorithm::ttv2,
                   optim::transfer_algorithm::c_ttv2, optim::transfer_algorithm::agad}) {
    net_t net({8, 16, 3}, seed{2}, p);
    auto opt = optim::transfer_compound::preset(alg);
    opt.zero_shift_pairs = 300;
    opt.fast_lr = 0.5f;  // the chopped rules need a fast array that moves within a chopper period
    learn::backprop<optim::transfer_compound> rule{{.optimizer = opt}};
    const double before = evaluate(net, loss::softmax_cross_entropy{}, d).loss;
    train(net, rule, loss::softmax_cross_entropy{}, d, {.epochs = 12, .batch = 16, .seed = 3, .progress = progress_mode::never});
    const auto after = evaluate(net, loss::softmax_cross_entropy{}, d);
    INFO(optim::to_string(alg) << ": loss " << before << " -> " << after.loss << ", accuracy " << after.accuracy);
    CHECK(after.loss < 0.6 * before);
    CHECK(after.accuracy > 0.8);
  }
}

TEST_CASE("transfer compound parameters are checked before anything changes", "[transfer]") {
  auto net = one_layer<cs>::make(3, 2, quiet_constant);
  using net_t = decltype(net);
  const std::vector<float> w0(layer<0>(net).tile.weight_data(), layer<0>(net).tile.weight_data() + 6);
  auto bad = [&](auto edit, const char* what) {
    auto opt = optim::transfer_compound::preset(optim::transfer_algorithm::c_ttv2);
    edit(opt);
    learn::backprop<optim::transfer_compound> rule{{.optimizer = opt}};
    auto st = rule.make_state(net);
    xt::xtensor<float, 2> x = xt::ones<float>({std::size_t{2}, std::size_t{3}}), t = xt::zeros<float>({std::size_t{2}, std::size_t{2}});
    rng g(1);
    CHECK_THROWS_WITH(rule.step(net, st, x, t, loss::mse{}, g), Catch::Contains(what));
    CHECK(std::equal(w0.begin(), w0.end(), layer<0>(net).tile.weight_data()));
  };
  bad([](auto& o) { o.fast_lr = 0; }, "fast_lr");
  bad([](auto& o) { o.learning_rate = -1; }, "learning_rate");
  bad([](auto& o) { o.transfer_every = 0; }, "transfer_every");
  bad([](auto& o) { o.transfer_bl = 0; }, "transfer_bl");
  bad([](auto& o) { o.thres_scale = std::nanf(""); }, "thres_scale");
  bad([](auto& o) { o.buffer_momentum = 1; }, "buffer_momentum");
  bad([](auto& o) { o.in_chop_prob = 1.5f; }, "in_chop_prob");
  bad([](auto& o) { o.algorithm = optim::transfer_algorithm::agad, o.in_chop_prob = 0; }, "agad");
  bad([](auto& o) { o.zero_shift_pairs = 0; }, "zero_shift_pairs");
  (void)sizeof(net_t);
}

}  // namespace tests_transfer_compound
