// SPDX-License-Identifier: MIT
// Networks as types, forward passes, backprop against finite differences, optimisers and the
// training loop's reproducibility.
#include <catch2/catch.hpp>

#include <pnn/pnn.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_network {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;

template <class A>
using hidden_d = dense<dynamic, dynamic, dd, noise::none, A>;
using out_d = dense<dynamic, dynamic, dd, noise::none, act::identity>;

xt::xtensor<double, 2> random_batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = g.normal_double();
  return x;
}

xt::xtensor<double, 2> one_hot_targets(std::size_t n, std::size_t k) {
  xt::xtensor<double, 2> t = xt::zeros<double>({n, k});
  for (std::size_t i = 0; i < n; ++i) t(i, (i * 7) % k) = 1;
  return t;
}

template <class Net, class Loss>
void check_fd(Net& net, std::size_t n, const Loss& loss, std::uint64_t s) {
  auto x = random_batch(n, net.input_size(), s);
  xt::xtensor<double, 2> t = std::is_same_v<Loss, loss::mse> ? random_batch(n, net.output_size(), s + 1)
                                                             : one_hot_targets(n, net.output_size());
  const auto r = check_gradients(net, x, t, loss);
  INFO("max relative error " << r.max_error);
  CHECK(r.max_error < 1e-6);
}

template <class A>
void check_all_depths(std::uint64_t s) {
  {
    network<hidden_d<A>> n1({5, 4}, seed{s});
    check_fd(n1, 6, loss::mse{}, s);
  }
  {
    network<hidden_d<A>, out_d> n2({5, 7, 3}, seed{s});
    check_fd(n2, 6, loss::mse{}, s);
    check_fd(n2, 6, loss::softmax_cross_entropy{}, s);
  }
  {
    network<hidden_d<A>, hidden_d<A>, out_d> n3({4, 6, 5, 3}, seed{s});
    check_fd(n3, 5, loss::softmax_cross_entropy{}, s);
  }
  {
    network<hidden_d<A>, hidden_d<A>, hidden_d<A>, out_d> n4({3, 5, 6, 4, 2}, seed{s});
    check_fd(n4, 4, loss::mse{}, s);
    check_fd(n4, 4, loss::softmax_cross_entropy{}, s);
  }
}
}  // namespace

TEST_CASE("backprop equals central finite differences for 1-4 layers, every activation, both losses",
          "[backprop][theory]") {
  check_all_depths<act::identity>(1);
  check_all_depths<act::tanh>(2);
  check_all_depths<act::sigmoid>(3);
  check_all_depths<act::relu>(4);
  // hard_sigmoid: pre-activations well inside (0, 1) where the kink is far from ±ε.
  network<hidden_d<act::hard_sigmoid>, out_d> n({4, 6, 3}, seed{5});
  layer<0>(n).tile.bias_data()[0] = 0.5;
  auto x = random_batch(5, 4, 9) * 0.05;
  auto t = one_hot_targets(5, 3);
  for (std::size_t j = 0; j < 6; ++j) layer<0>(n).tile.bias_data()[j] = 0.5;
  CHECK(check_gradients(n, x, t, loss::softmax_cross_entropy{}).max_error < 1e-6);
}

TEST_CASE("softmax cross-entropy equals its definition for rows of any width, soft targets, and in place",
          "[loss][theory]") {
  // Widths within the blocks of 256 logits whose exponentials go a register at a time, and
  // past them (row by row, with a buffer of 32 exponentials and recomputation beyond); 61 rows
  // of 10 classes make blocks of 25, 25 and 11 rows.
  for (const std::size_t k : {std::size_t{1}, std::size_t{3}, std::size_t{10}, std::size_t{32}, std::size_t{33},
                              std::size_t{70}, std::size_t{256}, std::size_t{257}})
  for (const std::size_t n : {std::size_t{4}, std::size_t{61}}) {
    const xt::xtensor<double, 2> y = random_batch(n, k, 40 + k + n) * 5.0;
    xt::xtensor<double, 2> t = xt::zeros<double>({n, k});
    for (std::size_t r = 0; r < n; ++r) {
      // Two rows one-hot, two smoothed (all classes weighted, summing to 1).
      if (r % 2 == 0) {
        t(r, (r * 5) % k) = 1;
      } else {
        for (std::size_t j = 0; j < k; ++j) t(r, j) = 0.1 / double(k);
        t(r, (r * 3) % k) += 0.9;
      }
    }
    long double want = 0;
    xt::xtensor<double, 2> want_dy({n, k});
    for (std::size_t r = 0; r < n; ++r) {
      long double z = 0;
      for (std::size_t j = 0; j < k; ++j) z += std::exp(static_cast<long double>(y(r, j)));
      for (std::size_t j = 0; j < k; ++j) {
        const long double p = std::exp(static_cast<long double>(y(r, j))) / z;
        want -= static_cast<long double>(t(r, j)) * std::log(p);
        want_dy(r, j) = static_cast<double>((p - static_cast<long double>(t(r, j))) / static_cast<long double>(n));
      }
    }
    want /= static_cast<long double>(n);
    const loss::softmax_cross_entropy ce;
    xt::xtensor<double, 2> dy({n, k});
    const double v = ce.gradient(y.data(), t.data(), n, k, dy.data());
    INFO("k=" << k << " n=" << n);
    CHECK(std::abs(v - static_cast<double>(want)) <= 1e-13 * (1.0 + std::abs(static_cast<double>(want))));
    CHECK(std::abs(ce.value(y.data(), t.data(), n, k) - v) <= 1e-15 * (1.0 + std::abs(v)));
    CHECK(xt::allclose(dy, want_dy, 1e-12, 1e-15));
    // The gradient written over its own logits.
    auto in_place = y;
    CHECK(ce.gradient(in_place.data(), t.data(), n, k, in_place.data()) == v);
    const bool same_gradient = in_place == dy;
    CHECK(same_gradient);
    // A row's gradient does not depend on where it falls in the batch (nor in a block): the
    // rows reversed give the same values, bit for bit, in double and in float.
    xt::xtensor<double, 2> y_rev = y, t_rev = t, dy_rev({n, k});
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t j = 0; j < k; ++j) y_rev(n - 1 - r, j) = y(r, j), t_rev(n - 1 - r, j) = t(r, j);
    (void)ce.gradient(y_rev.data(), t_rev.data(), n, k, dy_rev.data());
    const xt::xtensor<float, 2> yf = xt::cast<float>(y), tf = xt::cast<float>(t), yf_rev = xt::cast<float>(y_rev),
                                tf_rev = xt::cast<float>(t_rev);
    xt::xtensor<float, 2> dyf({n, k}), dyf_rev({n, k});
    (void)ce.gradient(yf.data(), tf.data(), n, k, dyf.data());
    (void)ce.gradient(yf_rev.data(), tf_rev.data(), n, k, dyf_rev.data());
    bool same_rows = true;
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t j = 0; j < k; ++j)
        same_rows = same_rows && dy_rev(n - 1 - r, j) == dy(r, j) && dyf_rev(n - 1 - r, j) == dyf(r, j);
    CHECK(same_rows);
  }
}

TEST_CASE("softmax cross-entropy of extreme logits: vanishing classes give 0, NaN is carried", "[loss]") {
  // Differences far below exp's range (−2e300) and an infinite one in float, in rows of every
  // block position; then a NaN, which must reach the loss and its row's gradient.
  const std::size_t n = 30, k = 10;
  xt::xtensor<double, 2> y = xt::zeros<double>({n, k}), t = xt::zeros<double>({n, k});
  for (std::size_t r = 0; r < n; ++r) {
    y(r, r % k) = 1e300;
    y(r, (r + 1) % k) = -1e300;
    t(r, r % k) = 1;
  }
  const loss::softmax_cross_entropy ce;
  xt::xtensor<double, 2> dy({n, k});
  CHECK(ce.gradient(y.data(), t.data(), n, k, dy.data()) == 0.0);
  CHECK(xt::all(xt::equal(dy, 0.0)));
  xt::xtensor<float, 2> yf = xt::cast<float>(xt::clip(y, -3e38, 3e38)), tf = xt::cast<float>(t), dyf({n, k});
  CHECK(ce.gradient(yf.data(), tf.data(), n, k, dyf.data()) == 0.0f);
  CHECK(xt::all(xt::equal(dyf, 0.0f)));
  y(27, 4) = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::isnan(ce.gradient(y.data(), t.data(), n, k, dy.data())));
  CHECK(std::isnan(dy(27, 4)));
  CHECK(dy(0, 1) == 0.0);
}

TEST_CASE("fixed and dynamic extents compute the same network", "[network]") {
  using fixed_t = network<dense<6, 5, physics::basic_digital<double>, noise::none, act::tanh>,
                          dense<5, 3, physics::basic_digital<double>, noise::none, act::identity>>;
  using dyn_t = network<hidden_d<act::tanh>, out_d>;
  STATIC_REQUIRE(fixed_t::num_layers == 2);
  STATIC_REQUIRE(fixed_t::is_static);
  STATIC_REQUIRE(!dyn_t::is_static);
  fixed_t f{seed{11}};
  dyn_t d({6, 5, 3}, seed{11});
  auto x = random_batch(4, 6, 3);
  auto yd = forward(d, x);
  auto yf = forward(f, x);
  REQUIRE(yd.shape()[0] == 4);
  REQUIRE(yd.shape()[1] == 3);
  CHECK(xt::allclose(yd, yf, 1e-14, 1e-14));
  // single-sample embedded path agrees with the batch path
  for (std::size_t r = 0; r < 4; ++r) {
    std::array<double, 6> xs{};
    for (std::size_t c = 0; c < 6; ++c) xs[c] = x(r, c);
    const auto ys = f(xs);
    for (std::size_t c = 0; c < 3; ++c) CHECK(ys[c] == Approx(yf(r, c)).epsilon(1e-12));
  }
  CHECK(layer<1>(f).out_size() == 3);
}

TEST_CASE("forward rejects wrong shapes and non-finite inputs with a clear error", "[network][errors]") {
  network<hidden_d<act::tanh>, out_d> net({4, 3, 2}, seed{1});
  xt::xtensor<double, 2> wrong({2, 5}, 0.0);
  CHECK_THROWS_WITH(forward(net, wrong), Catch::Contains("expected rows of 4"));
  xt::xtensor<double, 2> bad({2, 4}, 0.0);
  bad(1, 2) = std::nan("");
  CHECK_THROWS_WITH(forward(net, bad), Catch::Contains("NaN"));
  learn::backprop<> bp;
  rng g(1);
  xt::xtensor<double, 2> t({3, 2}, 0.0);
  xt::xtensor<double, 2> x({2, 4}, 0.0);
  CHECK_THROWS_WITH(bp.estimate(net, x, t, loss::mse{}, g), Catch::Contains("target has 3"));
  const auto before = layer<0>(net).tile.weight_data()[0];
  CHECK_THROWS_AS(bp.step(net, bad, xt::xtensor<double, 2>({2, 2}, 0.0), loss::mse{}, g), pnn::error);
  CHECK(layer<0>(net).tile.weight_data()[0] == before);  // nothing changed
  CHECK_THROWS_AS((network<hidden_d<act::tanh>, out_d>({4, 3}, seed{1})), pnn::error);
  CHECK_THROWS_AS((network<hidden_d<act::tanh>, out_d>({4, 0, 2}, seed{1})), pnn::error);
}

TEST_CASE("gradients arithmetic and cosine", "[gradients]") {
  using net_t = network<hidden_d<act::tanh>, out_d>;
  net_t net({3, 4, 2}, seed{3});
  learn::backprop<> bp;
  rng g(2);
  auto x = random_batch(8, 3, 5);
  auto t = random_batch(8, 2, 6);
  auto a = bp.estimate(net, x, t, loss::mse{}, g);
  CHECK(cosine(a, a) == Approx(1.0));
  CHECK(cosine(a, a * -2.0) == Approx(-1.0));
  auto z = a - a;
  CHECK(z.norm() == 0.0);
  CHECK(cosine(a, z) == 0.0);
  auto s = a + a;
  CHECK(s.norm() == Approx(2 * a.norm()));
  CHECK(angle_degrees(a, a, 0) == Approx(0.0).margin(1e-6));
  CHECK(angle_degrees(a, a * -1.0, 1) == Approx(180.0));
}

TEST_CASE("optimisers reduce the loss on a regression task", "[optim]") {
  using net_t = network<hidden_d<act::tanh>, out_d>;
  auto x = random_batch(64, 3, 7);
  xt::xtensor<double, 2> t({64, 1});
  for (std::size_t i = 0; i < 64; ++i) t(i, 0) = std::sin(x(i, 0)) + 0.5 * x(i, 1) * x(i, 2);
  auto run = [&](auto rule) {
    net_t net({3, 16, 1}, seed{4});
    rng g(9);
    double first = 0, last = 0;
    for (int k = 0; k < 300; ++k) {
      rng gk = g.split(std::uint64_t(k));
      last = rule.step(net, x, t, loss::mse{}, gk).loss;
      if (k == 0) first = last;
    }
    return std::pair{first, last};
  };
  auto [s0, s1] = run(learn::backprop<optim::sgd>{{.optimizer = {.learning_rate = 0.1f}}});
  auto [m0, m1] = run(learn::backprop<optim::momentum>{{.optimizer = {.learning_rate = 0.05f, .momentum = 0.9f}}});
  auto [a0, a1] = run(learn::backprop<optim::adam>{{.optimizer = {.learning_rate = 0.01f}}});
  CHECK(s1 < 0.5 * s0);
  CHECK(m1 < 0.2 * m0);
  CHECK(a1 < 0.2 * a0);
  CHECK(m1 < s1);
}

TEST_CASE("learning-rate schedules", "[optim]") {
  optim::schedule c{.type = optim::schedule::kind::cosine, .total_steps = 100, .min_factor = 0.1};
  CHECK(c.factor(0) == Approx(1.0));
  CHECK(c.factor(50) == Approx(0.55));
  CHECK(c.factor(100) == Approx(0.1));
  CHECK(c.factor(1000) == Approx(0.1));
  optim::schedule e{.type = optim::schedule::kind::exponential, .gamma = 0.5, .step_size = 10};
  CHECK(e.factor(25) == Approx(0.25));
}

TEST_CASE("training is bitwise reproducible from the seed", "[train]") {
  using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                        dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
  data::dataset d;
  rng g(5);
  d.inputs.resize({200, 2});
  d.targets = xt::zeros<float>({200, 2});
  for (std::size_t i = 0; i < 200; ++i) {
    const float a = g.normal(), b = g.normal();
    d.inputs(i, 0) = a;
    d.inputs(i, 1) = b;
    d.targets(i, (a * b > 0) ? 1 : 0) = 1;
  }
  auto run = [&](std::uint64_t s) {
    net_t net({2, 16, 2}, seed{1});
    learn::backprop<optim::momentum> rule{{.optimizer = {.learning_rate = 0.05f, .momentum = 0.9f}}};
    auto h = train(net, rule, loss::softmax_cross_entropy{}, d,
                   {.epochs = 30, .batch = 16, .seed = s, .progress = progress_mode::never});
    return std::pair{net, h};
  };
  auto [n1, h1] = run(3);
  auto [n2, h2] = run(3);
  auto [n3, h3] = run(4);
  const auto& w1 = layer<0>(n1).tile;
  const auto& w2 = layer<0>(n2).tile;
  const auto& w3 = layer<0>(n3).tile;
  CHECK(std::equal(w1.weight_data(), w1.weight_data() + 32, w2.weight_data()));
  CHECK(!std::equal(w1.weight_data(), w1.weight_data() + 32, w3.weight_data()));
  CHECK(h1.back().train_loss == h2.back().train_loss);
  CHECK(h1.back().train_accuracy > 0.9);  // XOR-of-signs is learnt
}

TEST_CASE("early stopping and metric logs", "[train]") {
  using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
  data::dataset d;
  d.inputs = xt::ones<float>({8, 2});
  d.targets = xt::ones<float>({8, 1});
  net_t net({2, 1}, seed{1});
  learn::backprop<> rule{{.optimizer = {.learning_rate = 0.0f}}};  // no progress: stops after patience
  const auto dir = std::filesystem::temp_directory_path();
  auto h = train(net, rule, loss::mse{}, d,
                 {.epochs = 50,
                  .batch = 4,
                  .progress = progress_mode::never,
                  .callbacks = {early_stopping(3), csv_log(dir / "pnn_log.csv"), json_log(dir / "pnn_log.json")}});
  CHECK(h.size() == 4);
  std::ifstream csv(dir / "pnn_log.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header.rfind("epoch,train_loss", 0) == 0);
  std::ifstream js(dir / "pnn_log.json");
  std::string all((std::istreambuf_iterator<char>(js)), std::istreambuf_iterator<char>());
  CHECK(all.find("\"epoch\": 4") != std::string::npos);
  CHECK(all.find("\"test_accuracy\": null") != std::string::npos);
}

}  // namespace tests_network
