// SPDX-License-Identifier: MIT
// Feedback alignment, direct feedback alignment and sign symmetry: theory checks against
// backprop (double precision), seeding of B, physical feedback projections, forward-only
// substrates, the alignment diagnostics, and bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <pnn/learn/direct_feedback_alignment.hpp>
#include <pnn/learn/feedback_alignment.hpp>
#include <pnn/noise/noise.hpp>
#include <pnn/physics/crossbar.hpp>
#include <pnn/pnn.hpp>
#include <pnn/train/alignment.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_feedback_alignment {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using hidden_t = dense<dynamic, dynamic, dd, noise::none, act::tanh>;
using out_t = dense<dynamic, dynamic, dd, noise::none, act::identity>;
using net2_t = network<hidden_t, out_t>;
using net3_t = network<hidden_t, hidden_t, out_t>;

xt::xtensor<double, 2> random_batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = g.normal_double();
  return x;
}

xt::xtensor<double, 2> one_hot_targets(std::size_t n, std::size_t k) {
  xt::xtensor<double, 2> t = xt::zeros<double>({n, k});
  for (std::size_t i = 0; i < n; ++i) t(i, (i * 7 + 1) % k) = 1;
  return t;
}

// W_l (Out × In) of a network as a matrix.
template <class Net>
xt::xtensor<double, 2> weights(const Net& net, std::size_t l) {
  xt::xtensor<double, 2> w;
  net.for_each_layer([&](const auto& ly, std::size_t i) {
    if (i != l) return;
    w.resize({ly.out_size(), ly.in_size()});
    std::copy(ly.tile.weight_data(), ly.tile.weight_data() + w.size(), w.data());
  });
  return w;
}

xt::xtensor<double, 2> transposed(const xt::xtensor<double, 2>& m) { return xt::transpose(m); }

bool same(const xt::xtensor<double, 2>& a, const xt::xtensor<double, 2>& b) { return a == b; }

// Per layer, not per network: GCC 12 at -O3 misreads a network-wide `gradients<Net>` indexed in a
// loop as out of bounds (-Warray-bounds), so callers pick the layer.
double max_diff(const layer_gradient<double>& a, const layer_gradient<double>& b) {
  double d = 0;
  for (std::size_t k = 0; k < a.weight.size(); ++k)
    d = std::max(d, std::abs(a.weight.data()[k] - b.weight.data()[k]));
  for (std::size_t k = 0; k < a.bias.size(); ++k)
    d = std::max(d, std::abs(a.bias.data()[k] - b.bias.data()[k]));
  return d;
}

double max_abs(const layer_gradient<double>& a) {
  double d = 0;
  for (std::size_t k = 0; k < a.weight.size(); ++k) d = std::max(d, std::abs(a.weight.data()[k]));
  return d;
}

// Gaussian read noise on the values driving a read and on its output (a stand-in for any
// noise policy with both stages).
struct test_noise {
  static constexpr unsigned stages = noise::input_stage | noise::output_stage;
  double sigma_in = 0.0;
  double sigma_out = 0.0;
  void input(double* x, std::size_t n, rng& g) const {
    if (sigma_in > 0) add_normal<double>(g, x, n, sigma_in);
  }
  void output(double* y, std::size_t n, rng& g) const {
    if (sigma_out > 0) add_normal<double>(g, y, n, sigma_out);
  }
};
static_assert(has_input_stage<test_noise, double> && has_output_stage<test_noise, double>);

// A substrate that can only be read forward (like a one-way optical stage): backprop cannot
// train it, FA and DFA can.
struct forward_only {
  using value_type = double;
  [[maybe_unused]] static constexpr const char* name = "forward_only";
  struct params {};
  template <std::size_t In, std::size_t Out>
  class tile : public dd::tile<In, Out> {
   public:
    void read_transposed(const double*, std::size_t, double*, rng&) const = delete;
  };
};
static_assert(substrate<forward_only> && !transposed_readable<forward_only>);

// A digital tile that asks for the factored form of updates (as a crossbar's pulse trains do).
struct factored_digital {
  using value_type = double;
  [[maybe_unused]] static constexpr const char* name = "factored_digital";
  struct params {};
  template <std::size_t In, std::size_t Out>
  class tile : public dd::tile<In, Out> {
   public:
    static constexpr bool uses_update_factors = true;
  };
};
}  // namespace

TEST_CASE("FA with B = W^T is exactly backprop", "[feedback_alignment][theory]") {
  net3_t net({5, 7, 6, 4}, seed{3});
  const auto x = random_batch(9, 5, 11);
  const auto t = one_hot_targets(9, 4);
  learn::feedback_alignment<> fa;
  fa.set_feedback(net, 1, transposed(weights(net, 1)));
  fa.set_feedback(net, 2, transposed(weights(net, 2)));
  learn::backprop<> bp;
  rng g1(5), g2(5);
  const auto a = fa.estimate(net, x, t, loss::softmax_cross_entropy{}, g1);
  const auto b = bp.estimate(net, x, t, loss::softmax_cross_entropy{}, g2);
  for (std::size_t l = 0; l < 3; ++l) {
    INFO("layer " << l);
    CHECK(max_abs(b[l]) > 1e-3);
    CHECK(max_diff(a[l], b[l]) < 1e-12);
  }
}

TEST_CASE("DFA with one hidden layer and B_0 = W_1^T is exactly backprop", "[feedback_alignment][theory]") {
  net2_t net({6, 8, 3}, seed{4});
  const auto x = random_batch(7, 6, 12);
  const auto t = random_batch(7, 3, 13);
  learn::direct_feedback_alignment<> dfa;
  dfa.set_feedback(net, 0, transposed(weights(net, 1)));
  learn::backprop<> bp;
  rng g1(6), g2(6);
  const auto a = dfa.estimate(net, x, t, loss::mse{}, g1);
  const auto b = bp.estimate(net, x, t, loss::mse{}, g2);
  for (std::size_t l = 0; l < 2; ++l) {
    INFO("layer " << l);
    CHECK(max_abs(b[l]) > 1e-3);
    CHECK(max_diff(a[l], b[l]) < 1e-12);
  }
}

TEST_CASE("with random B, FA and DFA update the output layer as backprop and the hidden layers differently",
          "[feedback_alignment][theory]") {
  net3_t net({5, 7, 6, 4}, seed{7});
  const auto x = random_batch(8, 5, 21);
  const auto t = one_hot_targets(8, 4);
  learn::backprop<> bp;
  learn::feedback_alignment<> fa;
  learn::direct_feedback_alignment<> dfa;
  rng g(9);
  rng g1 = g, g2 = g, g3 = g;
  const auto b = bp.estimate(net, x, t, loss::softmax_cross_entropy{}, g1);
  const auto f = fa.estimate(net, x, t, loss::softmax_cross_entropy{}, g2);
  const auto d = dfa.estimate(net, x, t, loss::softmax_cross_entropy{}, g3);
  CHECK(max_diff(f[2], b[2]) < 1e-14);
  CHECK(max_diff(d[2], b[2]) < 1e-14);
  for (std::size_t l = 0; l < 2; ++l) {
    CHECK(max_diff(f[l], b[l]) > 1e-4);
    CHECK(max_diff(d[l], b[l]) > 1e-4);
  }
  // DFA's penultimate layer sees e through B_1 (6 × 4), FA's through B_2 (6 × 4): different
  // draws of the same shape give different updates.
  CHECK(max_diff(f[1], d[1]) > 1e-6);
}

TEST_CASE("feedback matrices: shape, scale, same seed same B, different seed different B", "[feedback_alignment]") {
  net3_t net({30, 200, 100, 10}, seed{1});
  learn::feedback_alignment<> a{{.feedback_seed = 5}}, b{{.feedback_seed = 5}}, c{{.feedback_seed = 6}};
  const auto ba = a.feedback_matrix(net, 1);
  REQUIRE(ba.shape()[0] == 200);
  REQUIRE(ba.shape()[1] == 100);
  CHECK(a.feedback_matrix(net, 2).shape()[0] == 100);
  CHECK(a.feedback_matrix(net, 2).shape()[1] == 10);
  CHECK(same(ba, b.feedback_matrix(net, 1)));
  CHECK(same(a.feedback_matrix(net, 2), b.feedback_matrix(net, 2)));
  CHECK(!same(ba, c.feedback_matrix(net, 1)));
  // Glorot scale: std √(2/(200+100)), uniform within ±√3 std.
  const double sd = std::sqrt(2.0 / 300.0);
  const double emp = std::sqrt(double(xt::mean(ba * ba)()));
  const double amax = double(xt::amax(xt::abs(ba))());
  CHECK(emp == Approx(sd).epsilon(0.03));
  CHECK(amax <= std::sqrt(3.0) * sd + 1e-12);
  // Normal entries with a gain.
  learn::feedback_alignment<> n{{.distribution = learn::feedback_distribution::normal, .feedback_gain = 2.0}};
  const auto bn = n.feedback_matrix(net, 1);
  const double emp_n = std::sqrt(double(xt::mean(bn * bn)()));
  const double amax_n = double(xt::amax(xt::abs(bn))());
  CHECK(emp_n == Approx(2 * sd).epsilon(0.03));
  CHECK(amax_n > std::sqrt(3.0) * 2 * sd);
  // DFA: B_l is Out_l × n_out for the hidden layers; reproducible too.
  learn::direct_feedback_alignment<> d1{{.feedback_seed = 5}}, d2{{.feedback_seed = 5}};
  const auto bd = d1.feedback_matrix(net, 0);
  CHECK(bd.shape()[0] == 200);
  CHECK(bd.shape()[1] == 10);
  CHECK(same(bd, d2.feedback_matrix(net, 0)));
  CHECK(d1.feedback_matrix(net, 1).shape()[0] == 100);
  // B stays fixed while training.
  const auto x = random_batch(16, 30, 3);
  const auto t = one_hot_targets(16, 10);
  rng g(1);
  a.step(net, x, t, loss::softmax_cross_entropy{}, g);
  CHECK(same(a.feedback_matrix(net, 1), ba));
}

TEST_CASE("sign symmetry uses c * sign(W)^T, refreshed from the current weights", "[feedback_alignment]") {
  net3_t net({5, 7, 6, 4}, seed{8});
  learn::feedback_alignment<> ss{{.feedback = learn::feedback_kind::sign_symmetry}};
  const auto check_signs = [&] {
    for (std::size_t l = 1; l < 3; ++l) {
      const auto w = weights(net, l);
      const auto b = ss.feedback_matrix(net, l);
      const double c = std::sqrt(2.0 / double(w.shape()[0] + w.shape()[1]));
      REQUIRE(b.shape()[0] == w.shape()[1]);
      for (std::size_t i = 0; i < b.shape()[0]; ++i)
        for (std::size_t o = 0; o < b.shape()[1]; ++o) REQUIRE(b(i, o) == (w(o, i) > 0 ? c : -c));
    }
  };
  check_signs();
  layer<1>(net).tile.weight_data()[3] *= -1;
  const auto x = random_batch(6, 5, 1);
  const auto t = one_hot_targets(6, 4);
  rng g(2);
  (void)ss.estimate(net, x, t, loss::softmax_cross_entropy{}, g);
  check_signs();
  // And it trains: loss falls on a fixed batch.
  double first = 0, last = 0;
  learn::feedback_alignment<optim::sgd> tr{{.optimizer = {.learning_rate = 0.1f},
                                            .feedback = learn::feedback_kind::sign_symmetry}};
  for (int k = 0; k < 60; ++k) {
    rng gk = g.split(std::uint64_t(k));
    const double v = tr.step(net, x, t, loss::softmax_cross_entropy{}, gk).loss;
    (k == 0 ? first : last) = v;
  }
  CHECK(last < 0.5 * first);
  CHECK_THROWS_AS(ss.set_feedback(net, 1, transposed(weights(net, 1))), pnn::error);
}

TEST_CASE("the feedback projection runs on a noisy physical tile", "[feedback_alignment][physics]") {
  using noisy_fb = feedback::substrate<dd, test_noise>;
  net3_t net({5, 7, 6, 4}, seed{2});
  const auto x = random_batch(8, 5, 4);
  const auto t = one_hot_targets(8, 4);
  learn::feedback_alignment<> ideal;
  learn::feedback_alignment<optim::sgd, noisy_fb> silent, noisy{{.optimizer = {.learning_rate = 0.1f}, .projection = {.noise = {.sigma_out = 0.05}}}};
  learn::direct_feedback_alignment<optim::sgd, noisy_fb> dnoisy{
      {.optimizer = {.learning_rate = 0.1f}, .projection = {.noise = {0.02, 0.05}}}};
  rng g(3);
  rng g1 = g, g2 = g, g3 = g, g4 = g;
  const auto a = ideal.estimate(net, x, t, loss::softmax_cross_entropy{}, g1);
  const auto b = silent.estimate(net, x, t, loss::softmax_cross_entropy{}, g2);
  const auto c = noisy.estimate(net, x, t, loss::softmax_cross_entropy{}, g3);
  const auto c2 = noisy.estimate(net, x, t, loss::softmax_cross_entropy{}, g4);
  // Same seed, no noise: the tile reproduces the digital projection exactly.
  CHECK(same(silent.feedback_matrix(net, 1), ideal.feedback_matrix(net, 1)));
  for (std::size_t l = 0; l < 3; ++l) CHECK(max_diff(a[l], b[l]) < 1e-12);
  // Read noise perturbs the hidden updates only, reproducibly for the same stream.
  CHECK(max_diff(a[2], c[2]) < 1e-14);
  CHECK(max_diff(a[1], c[1]) > 1e-6);
  CHECK(max_diff(a[0], c[0]) > 1e-6);
  for (std::size_t l = 0; l < 3; ++l) CHECK(max_diff(c[l], c2[l]) == 0.0);
  // Training through the noisy projections still lowers the loss.
  auto net2 = net;
  double f0 = 0, f1 = 0, d0 = 0, d1 = 0;
  for (int k = 0; k < 200; ++k) {
    rng gk = g.split(std::uint64_t(k));
    rng gk2 = gk;
    const double vf = noisy.step(net, x, t, loss::softmax_cross_entropy{}, gk).loss;
    const double vd = dnoisy.step(net2, x, t, loss::softmax_cross_entropy{}, gk2).loss;
    (k == 0 ? f0 : f1) = vf;
    (k == 0 ? d0 : d1) = vd;
  }
  INFO("FA " << f0 << " -> " << f1 << ", DFA " << d0 << " -> " << d1);
  CHECK(f1 < 0.5 * f0);
  CHECK(d1 < 0.5 * d0);
}

TEST_CASE("FA and DFA train substrates without a transposed read, noisy layers, factored updates",
          "[feedback_alignment][physics]") {
  using fo_hidden = dense<dynamic, dynamic, forward_only, test_noise, act::tanh>;
  using fo_out = dense<dynamic, dynamic, forward_only, test_noise, act::identity>;
  network<fo_hidden, fo_hidden, fo_out> net({5, 8, 6, 3}, seed{5}, test_noise{0.01, 0.01});
  const auto x = random_batch(12, 5, 8);
  const auto t = one_hot_targets(12, 3);
  learn::feedback_alignment<optim::momentum> fa{{.optimizer = {.learning_rate = 0.05f}}};
  learn::direct_feedback_alignment<optim::momentum> dfa{{.optimizer = {.learning_rate = 0.05f}}};
  auto net2 = net;
  rng g(4);
  double f0 = 0, f1 = 0, d0 = 0, d1 = 0;
  for (int k = 0; k < 100; ++k) {
    rng gk = g.split(std::uint64_t(k));
    rng gk2 = gk;
    const double vf = fa.step(net, x, t, loss::softmax_cross_entropy{}, gk).loss;
    const double vd = dfa.step(net2, x, t, loss::softmax_cross_entropy{}, gk2).loss;
    (k == 0 ? f0 : f1) = vf;
    (k == 0 ? d0 : d1) = vd;
  }
  CHECK(f1 < 0.5 * f0);
  CHECK(d1 < 0.5 * d0);

  // A tile that wants factors gets (h, δ, s) with s·δᵀh equal to the dense update.
  using fd_hidden = dense<dynamic, dynamic, factored_digital, noise::none, act::tanh>;
  using fd_out = dense<dynamic, dynamic, factored_digital, noise::none, act::identity>;
  network<fd_hidden, fd_out> fnet({5, 7, 3}, seed{6});
  rng gf(1);
  const auto est = fa.estimate(fnet, x, t, loss::softmax_cross_entropy{}, gf);
  for (std::size_t l = 0; l < 2; ++l) {
    REQUIRE(est[l].factored);
    const auto& dl = est[l].delta;
    const auto& hl = est[l].input;
    double d = 0;
    for (std::size_t o = 0; o < dl.shape()[1]; ++o)
      for (std::size_t i = 0; i < hl.shape()[1]; ++i) {
        double p = 0;
        for (std::size_t r = 0; r < dl.shape()[0]; ++r) p += dl(r, o) * hl(r, i);
        d = std::max(d, std::abs(est[l].factor_scale * p - est[l].weight(o, i)));
      }
    CHECK(d < 1e-12);
  }
}

TEST_CASE("alignment angles fall well below 90 degrees on a teacher-student task", "[feedback_alignment][alignment]") {
  rng gd(17);
  const auto task = data::teacher_student(512, 12, 4, gd, 16);
  net2_t net({12, 32, 4}, seed{9});
  learn::feedback_alignment<optim::momentum> fa{{.optimizer = {.learning_rate = 0.02f}, .feedback_seed = 3}};
  const auto probe_x = xt::xtensor<double, 2>(xt::cast<double>(task.inputs));
  const auto probe_t = xt::xtensor<double, 2>(xt::cast<double>(task.targets));
  rng gp(1);
  const auto before = alignment_angles(net, fa, probe_x, probe_t, loss::mse{}, gp);
  CHECK(before[1] < 1e-4);  // the output layer learns as backprop
  const auto hist = train(net, fa, loss::mse{}, task,
                          {.epochs = 30, .batch = 16, .seed = 2, .progress = progress_mode::never,
                           .callbacks = {alignment_monitor(net, fa, probe_x, probe_t, loss::mse{})}});
  REQUIRE(hist.size() == 30);
  const auto& last = hist.back().extra;
  REQUIRE(last.count("alignment_deg_layer0") == 1);
  REQUIRE(last.count("alignment_deg_layer1") == 1);
  REQUIRE(last.count("alignment_deg_mean_hidden") == 1);
  INFO("hidden angle before " << before[0] << ", after " << last.at("alignment_deg_layer0"));
  CHECK(before[0] > 70.0);
  CHECK(last.at("alignment_deg_layer0") < 60.0);
  CHECK(last.at("alignment_deg_mean_hidden") == last.at("alignment_deg_layer0"));
  CHECK(last.at("alignment_deg_layer1") < 1e-3);
  CHECK(hist.back().train_loss < 0.5 * hist.front().train_loss);
}

TEST_CASE("the monitor's mean hidden angle averages every hidden layer, not only the first",
          "[feedback_alignment][alignment]") {
  // Two hidden layers, so the mean is over two different angles (with one it restates layer 0).
  rng gd(17);
  const auto task = data::teacher_student(256, 5, 4, gd, 8);
  net3_t net({5, 7, 6, 4}, seed{9});
  learn::feedback_alignment<> fa{{.optimizer = {.learning_rate = 0.02f}, .feedback_seed = 3}};
  const auto probe_x = xt::xtensor<double, 2>(xt::cast<double>(task.inputs));
  const auto probe_t = xt::xtensor<double, 2>(xt::cast<double>(task.targets));
  const auto hist = train(net, fa, loss::mse{}, task,
                          {.epochs = 1, .batch = 16, .seed = 2, .progress = progress_mode::never,
                           .callbacks = {alignment_monitor(net, fa, probe_x, probe_t, loss::mse{})}});
  const auto& m = hist.back().extra;
  const double a0 = m.at("alignment_deg_layer0"), a1 = m.at("alignment_deg_layer1");
  INFO("hidden angles " << a0 << ", " << a1);
  REQUIRE(std::abs(a0 - a1) > 1.0);
  CHECK(m.at("alignment_deg_mean_hidden") == Approx(0.5 * (a0 + a1)).epsilon(1e-12));
  CHECK(m.at("alignment_deg_layer2") < 1e-3);  // the output layer learns as backprop
}

TEST_CASE("bad input is rejected before anything changes", "[feedback_alignment][errors]") {
  net3_t net({5, 7, 6, 4}, seed{3});
  const auto w0 = weights(net, 0);
  learn::feedback_alignment<> fa;
  learn::direct_feedback_alignment<> dfa;
  rng g(1);
  auto x = random_batch(4, 5, 1);
  const auto t = one_hot_targets(4, 4);
  const auto ce = loss::softmax_cross_entropy{};
  CHECK_THROWS_AS(fa.step(net, random_batch(4, 6, 1), t, ce, g), pnn::error);
  CHECK_THROWS_AS(dfa.step(net, x, one_hot_targets(4, 3), ce, g), pnn::error);
  CHECK_THROWS_AS(fa.estimate(net, x, one_hot_targets(3, 4), ce, g), pnn::error);
  x(1, 2) = std::nan("");
  CHECK_THROWS_AS(fa.step(net, x, t, ce, g), pnn::error);
  CHECK_THROWS_AS(dfa.step(net, x, t, ce, g), pnn::error);
  CHECK(same(weights(net, 0), w0));
  // Feedback matrices: wrong layer, wrong shape, non-finite.
  CHECK_THROWS_AS(fa.set_feedback(net, 0, xt::xtensor<double, 2>::from_shape({5, 7})), pnn::error);
  CHECK_THROWS_AS(fa.set_feedback(net, 3, xt::xtensor<double, 2>::from_shape({6, 4})), pnn::error);
  CHECK_THROWS_AS(dfa.set_feedback(net, 2, xt::xtensor<double, 2>::from_shape({4, 4})), pnn::error);
  CHECK_THROWS_AS(fa.set_feedback(net, 1, xt::xtensor<double, 2>(xt::zeros<double>({6, 7}))), pnn::error);
  CHECK_THROWS_AS(dfa.feedback_matrix(net, 2), pnn::error);
  xt::xtensor<double, 2> bad = xt::zeros<double>({7, 6});
  bad(0, 0) = std::numeric_limits<double>::infinity();
  const auto before = fa.feedback_matrix(net, 1);
  CHECK_THROWS_AS(fa.set_feedback(net, 1, bad), pnn::error);
  CHECK(same(fa.feedback_matrix(net, 1), before));
  // Parameters.
  learn::feedback_alignment<> zero_gain{{.feedback_gain = 0.0}};
  CHECK_THROWS_AS(zero_gain.step(net, random_batch(4, 5, 1), t, ce, g), pnn::error);
  learn::direct_feedback_alignment<> dss{{.feedback = learn::feedback_kind::sign_symmetry}};
  CHECK_THROWS_AS(dss.step(net, random_batch(4, 5, 1), t, ce, g), pnn::error);
  CHECK(same(weights(net, 0), w0));
  // A diverging update is reported and not programmed.
  network<out_t> lin({5, 4}, seed{1});
  const auto wl = weights(lin, 0);
  learn::feedback_alignment<> huge{{.optimizer = {.learning_rate = 1e38f}}};
  const xt::xtensor<double, 2> xs = random_batch(4, 5, 2) * 1e300;
  CHECK_THROWS_AS(huge.step(lin, xs, t, ce, g), pnn::error);
  CHECK(same(weights(lin, 0), wl));
  // The monitor checks its probe at construction.
  CHECK_THROWS_AS(alignment_monitor(net, fa, random_batch(4, 6, 1), t, ce), pnn::error);
  CHECK_THROWS_AS(alignment_monitor(net, fa, random_batch(3, 5, 1), t, ce), pnn::error);
}

TEST_CASE("FA and DFA train a noisy soft-bounds crossbar; DFA's projection can be a crossbar too",
          "[feedback_alignment][crossbar]") {
  using xbar = physics::crossbar<physics::devices::soft_bounds>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::tanh>,
                        dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  using xbar_feedback = feedback::substrate<physics::crossbar<physics::devices::ideal>>;
  rng gd(1);
  const auto d = data::gaussian_blobs(256, 8, 3, gd);
  const auto run = [&](auto rule) {
    net_t net({8, 16, 3}, seed{2});  // aihwkit's default periphery: DAC, ADC, output noise
    const double before = evaluate(net, loss::softmax_cross_entropy{}, d).loss;
    train(net, rule, loss::softmax_cross_entropy{}, d,
          {.epochs = 8, .batch = 16, .seed = 3, .progress = progress_mode::never});
    const auto after = evaluate(net, loss::softmax_cross_entropy{}, d);
    INFO(decltype(rule)::name << ": loss " << before << " -> " << after.loss << ", accuracy " << after.accuracy);
    CHECK(after.loss < 0.6 * before);
    CHECK(after.accuracy > 0.8);
  };
  run(learn::feedback_alignment<>{{.optimizer = {.learning_rate = 0.1f}}});
  run(learn::direct_feedback_alignment<>{{.optimizer = {.learning_rate = 0.1f}}});
  run(learn::direct_feedback_alignment<optim::sgd, xbar_feedback>{{.optimizer = {.learning_rate = 0.1f}}});
}

TEST_CASE("library noise policies: DAC/read/ADC layers, device variation in the feedback tile",
          "[feedback_alignment][noise]") {
  using reading = noise::chain<noise::dac<8>, noise::gaussian_read, noise::adc<8>>;
  using varied = noise::chain<noise::variation, noise::gaussian_read>;
  using fb_t = feedback::substrate<dd, varied>;
  using net_t = network<dense<dynamic, dynamic, dd, reading, act::tanh>, dense<dynamic, dynamic, dd, reading, act::identity>>;
  net_t net({5, 9, 3}, seed{4}, reading{{noise::dac<8>{}, noise::gaussian_read{.sigma = 0.02}, noise::adc<8>{}}});
  const auto x = random_batch(16, 5, 5);
  const auto t = one_hot_targets(16, 3);
  const varied cfg{{noise::variation{.multiplicative = 0.1}, noise::gaussian_read{.sigma = 0.0}}};
  learn::direct_feedback_alignment<optim::sgd, fb_t> a{{.optimizer = {.learning_rate = 0.1f}, .projection = {.noise = cfg}}};
  auto b = a;
  learn::direct_feedback_alignment<optim::sgd> ideal{{.optimizer = {.learning_rate = 0.1f}}};
  rng g(6);
  rng g1 = g, g2 = g, g3 = g;
  const auto ea = a.estimate(net, x, t, loss::softmax_cross_entropy{}, g1);
  const auto eb = b.estimate(net, x, t, loss::softmax_cross_entropy{}, g2);
  const auto ei = ideal.estimate(net, x, t, loss::softmax_cross_entropy{}, g3);
  // Same seed: the same B and the same per-device variation of the tile holding it.
  CHECK(max_diff(ea[0], eb[0]) == 0.0);
  // Variation makes the realised projection differ from the digital one; the output layer does not see it.
  CHECK(max_diff(ea[0], ei[0]) > 1e-6);
  CHECK(max_diff(ea[1], ei[1]) == 0.0);
  double first = 0, last = 0;
  for (int k = 0; k < 150; ++k) {
    rng gk = g.split(std::uint64_t(k));
    const double v = a.step(net, x, t, loss::softmax_cross_entropy{}, gk).loss;
    (k == 0 ? first : last) = v;
  }
  // The 8-bit ADC clips the logits, so the loss cannot fall as far as on an ideal read-out.
  CHECK(last < 0.8 * first);
}

}  // namespace tests_feedback_alignment
