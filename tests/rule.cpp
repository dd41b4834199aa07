// SPDX-License-Identifier: MIT
// What every rule's step shares (learn/rule.hpp): the deferred update — on the digital
// substrate with plain SGD, `step` programs the factored update as one GEMM into W without
// forming the dense estimate — must program exactly what the dense path programs, fall back to
// the dense path when the optimiser does more than rescale, and still reject a diverging update.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <pnn/pnn.hpp>
#include <pnn/learn/equilibrium_propagation.hpp>
#include "static/readout_rule.hpp"

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_rule {

using namespace pnn;

namespace {
using dd = physics::basic_digital<double>;
using tanh_d = dense<dynamic, dynamic, dd, noise::none, act::tanh>;
using out_d = dense<dynamic, dynamic, dd, noise::none, act::identity>;
using hs_d = dense<dynamic, dynamic, dd, noise::none, act::hard_sigmoid>;

xt::xtensor<double, 2> batch(std::size_t n, std::size_t k, std::uint64_t s, double lo = -1, double hi = 1) {
  rng g(s, 9);
  xt::xtensor<double, 2> x({n, k});
  for (auto& v : x) v = lo + (hi - lo) * g.uniform_double();
  return x;
}

template <class Net>
std::pair<const double*, const double*> parameters_of(const Net& net, std::size_t i) {
  std::pair<const double*, const double*> r{nullptr, nullptr};
  net.for_each_layer([&](const auto& l, std::size_t k) {
    if (k == i) r = {l.tile.weight_data(), l.tile.bias_data()};
  });
  return r;
}

// `after` must equal `before − lr·(ĝ + decay·W_before)` layer by layer.
template <class Net>
void check_programmed(const Net& before, const Net& after, const gradients<Net>& est, double lr, double decay = 0) {
  before.for_each_layer([&](const auto& lb, std::size_t i) {
    const double* wb = lb.tile.weight_data();
    const double* bb = lb.tile.bias_data();
    const auto [wa, ba] = parameters_of(after, i);
    double worst = 0;
    for (std::size_t k = 0; k < lb.in_size() * lb.out_size(); ++k) {
      const double expected = wb[k] - lr * (est[i].weight.data()[k] + decay * wb[k]);
      worst = std::max(worst, std::abs(wa[k] - expected));
    }
    for (std::size_t j = 0; j < lb.out_size(); ++j)
      worst = std::max(worst, std::abs(ba[j] - (bb[j] - lr * est[i].bias(j))));
    INFO("layer " << i << " worst deviation " << worst);
    CHECK(worst < 1e-13);
  });
}

// Same rng for estimate and step: the two see the same relaxation or projection.
template <class Net, class Rule, class Loss>
void check_rule(Net net, Rule rule, const Loss& loss, const xt::xtensor<double, 2>& x, const xt::xtensor<double, 2>& t,
                double lr, double decay = 0) {
  const Net before = net;
  rng g1(7), g2(7);
  const auto est = rule.estimate(net, x, t, loss, g1);
  (void)rule.step(net, x, t, loss, g2);
  check_programmed(before, net, est, lr, decay);
}
}  // namespace

TEST_CASE("a deferred SGD step programs exactly the dense update", "[rule][deferred]") {
  const auto x = batch(6, 5, 1);
  const auto t = batch(6, 3, 2);
  const double lr = double(0.05f);
  using mlp = network<tanh_d, tanh_d, out_d>;
  check_rule(mlp({5, 8, 7, 3}, seed{3}), learn::backprop<>({.optimizer = {.learning_rate = 0.05f}}), loss::mse{}, x, t,
             lr);
  check_rule(mlp({5, 8, 7, 3}, seed{4}), learn::feedback_alignment<>({.optimizer = {.learning_rate = 0.05f}}),
             loss::softmax_cross_entropy{}, x, t, lr);
  check_rule(mlp({5, 8, 7, 3}, seed{5}), learn::direct_feedback_alignment<>({.optimizer = {.learning_rate = 0.05f}}),
             loss::mse{}, x, t, lr);
  // Per-layer rates with a schedule: every layer keeps its own factor.
  const optim::sgd per_layer{.learning_rate = 0.1f, .layer_learning_rates = {0.05f, 0.05f, 0.05f}};
  check_rule(mlp({5, 8, 7, 3}, seed{6}), learn::backprop<>({.optimizer = per_layer}), loss::mse{}, x, t, lr);

  using energy = network<hs_d, hs_d>;
  const auto xp = batch(6, 5, 3, 0, 1);
  const auto tp = batch(6, 3, 4, 0, 1);
  for (auto e : {learn::ep_estimator::centered, learn::ep_estimator::one_sided}) {
    learn::equilibrium_propagation<> ep({.optimizer = {.learning_rate = 0.05f}, .estimator = e});
    check_rule(energy({5, 8, 3}, seed{7}), ep, loss::mse{}, xp, tp, lr);
  }
  check_rule(energy({5, 8, 3}, seed{8}), learn::coupled_learning<>({.optimizer = {.learning_rate = 0.05f}}),
             loss::mse{}, xp, tp, lr);
}

TEST_CASE("weight decay and momentum keep the dense path", "[rule][deferred]") {
  const auto x = batch(6, 5, 1);
  const auto t = batch(6, 3, 2);
  using mlp = network<tanh_d, out_d>;
  check_rule(mlp({5, 8, 3}, seed{3}), learn::backprop<>({.optimizer = {.learning_rate = 0.05f, .weight_decay = 0.01f}}),
             loss::mse{}, x, t, double(0.05f), double(0.01f));
  // First momentum step: v = ĝ, update = η ĝ.
  check_rule(mlp({5, 8, 3}, seed{4}), learn::backprop<optim::momentum>({.optimizer = {.learning_rate = 0.05f}}),
             loss::mse{}, x, t, double(0.05f));
}

namespace {
// `steps` backprop steps of a 5-8-3 MLP on fresh batches with optimiser `opt`; the network and
// whether the last step took the one-pass path (`apply_in_place` keeps a bound of the state).
template <class Net, class Opt>
std::pair<Net, bool> train_steps(Opt opt, bool in_place, std::size_t steps) {
  Net net({5, 8, 3}, seed{4});
  opt.in_place = in_place;
  learn::backprop<Opt> rule({.optimizer = opt});
  using T = typename Net::value_type;
  for (std::size_t k = 0; k < steps; ++k) {
    const xt::xtensor<T, 2> x = xt::cast<T>(batch(6, 5, 10 + k)), t = xt::cast<T>(batch(6, 3, 50 + k));
    rng g(k);
    (void)rule.step(net, x, t, loss::mse{}, g);
  }
  const auto& st = rule.kept_state_for(net).opt;
  if constexpr (std::is_same_v<Opt, optim::momentum>) return {net, st.velocity_bound >= 0};
  else return {net, st.m_bound >= 0};
}

template <class Net>
double max_weight_difference(const Net& a, const Net& b) {
  double worst = 0;
  a.for_each_layer([&](const auto& la, std::size_t i) {
    b.for_each_layer([&](const auto& lb, std::size_t j) {
      if (i != j) return;
      for (std::size_t k = 0; k < la.in_size() * la.out_size(); ++k)
        worst = std::max(worst, double(std::abs(la.tile.weight_data()[k] - lb.tile.weight_data()[k])));
      for (std::size_t k = 0; k < la.out_size(); ++k)
        worst = std::max(worst, double(std::abs(la.tile.bias_data()[k] - lb.tile.bias_data()[k])));
    });
  });
  return worst;
}
}  // namespace

TEST_CASE("momentum and Adam update weights in memory in one pass, as the separate passes do", "[rule][in_place]") {
  using mlp = network<tanh_d, out_d>;
  using tanh_f = dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>;
  using out_f = dense<dynamic, dynamic, physics::digital, noise::none, act::identity>;
  using mlp_f = network<tanh_f, out_f>;
  const optim::schedule cosine{.type = optim::schedule::kind::cosine, .total_steps = 30, .min_factor = 0.1};
  const auto compare = [](auto opt, const char* what) {
    INFO(what);
    const auto [fused, took] = train_steps<mlp>(opt, true, 25);
    const auto [separate, took_separate] = train_steps<mlp>(opt, false, 25);
    CHECK(took);
    CHECK_FALSE(took_separate);
    CHECK(max_weight_difference(fused, separate) == 0.0);  // the same arithmetic, the same rounding
    CHECK(max_weight_difference(fused, mlp({5, 8, 3}, seed{4})) > 1e-3);  // and it did train
    const auto [ff, took_f] = train_steps<mlp_f>(opt, true, 25);
    const auto [sf, took_sf] = train_steps<mlp_f>(opt, false, 25);
    CHECK(took_f);
    CHECK(max_weight_difference(ff, sf) == 0.0);
  };
  compare(optim::momentum{.learning_rate = 0.05f, .momentum = 0.9f}, "momentum");
  compare(optim::momentum{.learning_rate = 0.05f, .momentum = 0.8f, .nesterov = true}, "nesterov");
  compare(optim::momentum{.learning_rate = 0.1f, .lr_schedule = cosine, .layer_learning_rates = {0.05f, 0.02f}},
          "per-layer rates on a cosine schedule");
  compare(optim::adam{.learning_rate = 0.01f}, "adam");
  compare(optim::adam{.learning_rate = 0.02f, .beta1 = 0.8f, .lr_schedule = cosine}, "adam on a cosine schedule");
  // Weight decay reads W into the estimate first: the separate passes remain.
  CHECK_FALSE(train_steps<mlp>(optim::momentum{.weight_decay = 0.01f}, true, 2).second);
  CHECK_FALSE(train_steps<mlp>(optim::adam{.weight_decay = 0.01f}, true, 2).second);
}

TEST_CASE("an in-place update that could overflow takes the checked path and changes nothing",
          "[rule][in_place][errors]") {
  using mlp = network<out_d, out_d>;
  // As below: finite factors whose update overflows once formed. The bound (rate × |ĝ|) rules
  // out the one-pass path, so the update is formed, found not finite, and never programmed.
  const xt::xtensor<double, 2> x = batch(6, 5, 1) * 1e150;
  const auto t = batch(6, 3, 2);
  for (int which = 0; which < 2; ++which) {
    mlp net({5, 8, 3}, seed{3});
    const mlp before = net;
    rng g(1);
    if (which == 0) {
      learn::backprop<optim::momentum> rule({.optimizer = {.learning_rate = std::numeric_limits<float>::max()}});
      CHECK_THROWS_WITH(rule.step(net, x, t, loss::mse{}, g), Catch::Contains("not finite"));
    } else {
      learn::backprop<optim::adam> rule({.optimizer = {.learning_rate = std::numeric_limits<float>::max()}});
      CHECK_THROWS_WITH(rule.step(net, x, t, loss::mse{}, g), Catch::Contains("not finite"));
    }
    CHECK(max_weight_difference(net, before) == 0.0);
  }
}

TEST_CASE("backprop's deferred step reads its inputs in place, also from a converted batch, and lets go after",
          "[rule][deferred]") {
  using mlp = network<tanh_d, out_d>;
  // Values a float holds exactly, so that the float batch converts to the same doubles.
  xt::xtensor<float, 2> xf({6, 5});
  for (std::size_t k = 0; k < xf.size(); ++k) xf.data()[k] = float(int(k % 13) - 6) / 8.0f;
  const xt::xtensor<double, 2> xd = xt::cast<double>(xf);
  const auto t = batch(6, 3, 2);
  mlp lent({5, 8, 3}, seed{3});
  mlp converted = lent, copied = lent;
  learn::backprop<> rule({.optimizer = {.learning_rate = 0.05f}});
  rng g1(7), g2(7), g3(7);
  (void)rule.step(lent, xd, t, loss::mse{}, g1);  // the batch itself is lent
  const auto& kept = rule.kept_state_for(lent).grad;
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(kept[i].deferred());
    CHECK(kept[i].input.size() == 0);          // h was read where it lay, never copied
    CHECK(kept[i].borrowed_input == nullptr);  // and the borrow ended with the step
    CHECK_FALSE(kept[i].borrow_input);
  }
  // A float batch is converted into the checked batch's own copy, which must outlive the
  // programming that reads it.
  (void)rule.step(converted, xf, t, loss::mse{}, g2);
  // The same update with every factor copied (the estimate's dense form, programmed by hand).
  const auto est = learn::backprop<>({.optimizer = {.learning_rate = 0.05f}}).estimate(copied, xd, t, loss::mse{}, g3);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto [wl, bl] = parameters_of(lent, i);
    const auto [wc, bc] = parameters_of(converted, i);
    const std::size_t nw = i == 0 ? 40 : 24, nb = i == 0 ? 8 : 3;
    CHECK(std::equal(wl, wl + nw, wc));
    CHECK(std::equal(bl, bl + nb, bc));
  }
  check_programmed(copied, lent, est, double(0.05f));
}

TEST_CASE("a diverging deferred update is rejected and changes nothing", "[rule][deferred][errors]") {
  using mlp = network<out_d, out_d>;  // linear, so that no saturated unit zeroes the error
  mlp net({5, 8, 3}, seed{3});
  const mlp before = net;
  // Huge inputs and the largest finite rate (an infinite one is a parameter error): the first
  // layer's update (rate × error 1e150 × input 1e150) overflows once formed, though its factors,
  // the forward pass and the loss (1e300) stay finite.
  const xt::xtensor<double, 2> x = batch(6, 5, 1) * 1e150;
  const auto t = batch(6, 3, 2);
  learn::backprop<> rule({.optimizer = {.learning_rate = std::numeric_limits<float>::max()}});
  rng g(1);
  CHECK_THROWS_WITH(rule.step(net, x, t, loss::mse{}, g), Catch::Contains("not finite"));
  // The update borrowed the batch; the failed step let go of it too.
  for (std::size_t i = 0; i < 2; ++i) CHECK(rule.kept_state_for(net).grad[i].borrowed_input == nullptr);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto [wa, ba] = parameters_of(net, i);
    const auto [wb, bb] = parameters_of(before, i);
    CHECK(std::equal(wa, wa + (i == 0 ? 40 : 24), wb));
    CHECK(std::equal(ba, ba + (i == 0 ? 8 : 3), bb));
  }
  // One layer, so that only the update that borrows the batch can overflow: its bound takes
  // max |x| from the batch's finiteness check, and must still reject it.
  using single = network<out_d>;
  single one({5, 3}, seed{3});
  const single one_before = one;
  rng g1(1);
  CHECK_THROWS_WITH(rule.step(one, x, t, loss::mse{}, g1), Catch::Contains("not finite"));
  const auto [wa, ba] = parameters_of(one, 0);
  const auto [wb, bb] = parameters_of(one_before, 0);
  CHECK(std::equal(wa, wa + 15, wb));
  CHECK(std::equal(ba, ba + 3, bb));
  // Moderate inputs pass the same bound and are programmed.
  const xt::xtensor<double, 2> small = batch(6, 5, 1);
  learn::backprop<> mild({.optimizer = {.learning_rate = 0.1f}});
  CHECK_NOTHROW(mild.step(one, small, t, loss::mse{}, g1));
  CHECK_FALSE(std::equal(wa, wa + 15, wb));
}

TEST_CASE("a batch its writer vouched for is not read again, and a non-finite one never is vouched for",
          "[rule][train][errors]") {
  using mlp = network<tanh_d, out_d>;
  const mlp net({5, 8, 3}, seed{3});
  xt::xtensor<double, 2> x = batch(6, 5, 1);
  const auto t = batch(6, 3, 2);
  double actual = 0;
  for (const double v : x) actual = std::max(actual, std::abs(v));
  REQUIRE(actual > 0);
  const auto checked_max = [&] { return detail::check_batch(net, x, t, "test").x_abs_max; };
  CHECK(checked_max() == actual);
  {
    // Trusted for exactly this address and size, while the vouch lives.
    const detail::vouch_for_batch v(x.data(), x.size(), 123.0);
    CHECK(checked_max() == 123.0);
    {
      const detail::vouch_for_batch other(x.data(), x.size() - 1, 7.0);  // another batch
      CHECK(checked_max() == actual);
    }
    CHECK(checked_max() == 123.0);  // the outer vouch is back
  }
  CHECK(checked_max() == actual);
  for (const double bad : {HUGE_VAL, std::numeric_limits<double>::quiet_NaN(), -1.0}) {
    const detail::vouch_for_batch v(x.data(), x.size(), bad);  // vouches for nothing
    CHECK(checked_max() == actual);
  }
  // A vouch is no licence: a batch holding NaN that was not vouched for is still named.
  x(4, 2) = std::numeric_limits<double>::quiet_NaN();
  {
    const detail::vouch_for_batch v(x.data(), x.size() - 1, 1.0);
    CHECK_THROWS_WITH(checked_max(), Catch::Contains("test: x: contains NaN or Inf at flat index 22"));
  }

  // pnn::train vouches for each batch it copied while the step before ran, from the pieces'
  // own checks: a non-finite sample in a later batch (copied that way) is found by the step
  // and named as before, the batches before it trained.
  for (const std::size_t bad_sample : {std::size_t{1}, std::size_t{13}, std::size_t{22}}) {
    INFO("non-finite sample " << bad_sample);
    rng gd(4);
    auto d = data::gaussian_blobs(24, 5, 3, gd);
    d.inputs(bad_sample, 3) = std::numeric_limits<float>::infinity();
    using float_mlp = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                              dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
    float_mlp fnet({5, 8, 3}, seed{3});
    learn::backprop<> rule({.optimizer = {.learning_rate = 0.05f}});
    const std::string batch_no = std::to_string(bad_sample / 4 + 1);
    CHECK_THROWS_WITH(train(fnet, rule, loss::mse{}, d,
                            {.epochs = 1, .batch = 4, .shuffle = false, .progress = progress_mode::never}),
                      Catch::Contains("epoch 1, batch " + batch_no + " of 6") &&
                          Catch::Contains("backprop: x: contains NaN or Inf at flat index " +
                                          std::to_string((bad_sample % 4) * 5 + 3)));
  }
}

TEST_CASE("a backprop step does exactly the matrix work of its layers: no first-layer dx, no extra products",
          "[rule][work]") {
#if PNN_COUNT_KERNEL_WORK
  // 5-4-3, batch 6: forward 2n(5·4 + 4·3), weight gradients the same again, and the input
  // gradient of the output layer only, 2n·4·3 (the first layer's dx is never needed).
  network<tanh_d, out_d> net({5, 4, 3}, seed{2});
  xt::xtensor<double, 2> x = xt::ones<double>({6, 5}) * 0.3, t = xt::zeros<double>({6, 3});
  for (std::size_t i = 0; i < 6; ++i) t(i, i % 3) = 1;
  learn::backprop<> rule{{.optimizer = {.learning_rate = 0.1f}}};
  rng g(1);
  rule.step(net, x, t, loss::softmax_cross_entropy{}, g);  // first step: buffers settle
  const auto w0 = simd::kernel_work_on_this_thread();
  rule.step(net, x, t, loss::softmax_cross_entropy{}, g);
  const auto w = simd::kernel_work_on_this_thread() - w0;
  CHECK(w.flops == 2 * 6 * (20 + 12) * 2 + 2 * 6 * 12);
#endif
}

static_assert(learning_rule<user::readout<>, network<tanh_d, out_d>, loss::mse>);

TEST_CASE("a user rule on the skeleton: readout training equals backprop's output layer and trains",
          "[rule][composed]") {
  using net_t = network<tanh_d, out_d>;
  net_t net({4, 12, 3}, seed{2});
  const auto x = batch(16, 4, 1);
  const auto t = batch(16, 3, 2);
  user::readout<> readout{{.optimizer = {.learning_rate = 0.125f}}};
  learn::backprop<> bp;
  rng g1(5), g2(5);
  const auto est = readout.estimate(net, x, t, loss::mse{}, g1);
  const auto ref = bp.estimate(net, x, t, loss::mse{}, g2);
  // Theory: the readout estimate is backprop's for the output layer and zero below it.
  for (std::size_t k = 0; k < ref[1].weight.size(); ++k) CHECK(est[1].weight.data()[k] == Approx(ref[1].weight.data()[k]).margin(1e-14));
  for (std::size_t k = 0; k < ref[1].bias.size(); ++k) CHECK(est[1].bias(k) == Approx(ref[1].bias(k)).margin(1e-14));
  CHECK(std::all_of(est[0].weight.begin(), est[0].weight.end(), [](double v) { return v == 0; }));

  // The skeleton's step: optimiser, then programming; the layer below never moves.
  const net_t before = net;
  check_rule(net, readout, loss::mse{}, x, t, 0.125);
  const std::vector<double> hidden(layer<0>(net).tile.weight_data(), layer<0>(net).tile.weight_data() + 48);
  rng g(3);
  const double first = readout.step(net, x, t, loss::mse{}, g).loss;
  double last = first;
  for (int k = 0; k < 300; ++k) {
    rng gk = g.split(std::uint64_t(k));
    last = readout.step(net, x, t, loss::mse{}, gk).loss;
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.5 * first);
  CHECK(std::equal(hidden.begin(), hidden.end(), layer<0>(net).tile.weight_data()));

  // Typed state owned by the caller gives the same step as the rule's own cache.
  net_t a = before, b = before;
  user::readout<optim::adam> r1{{.optimizer = {.learning_rate = 0.01f}}}, r2 = r1;
  auto state = r2.make_state(b);
  for (int k = 0; k < 3; ++k) {
    rng ga{std::uint64_t(k)}, gb{std::uint64_t(k)};
    r1.step(a, x, t, loss::mse{}, ga);
    r2.step(b, state, x, t, loss::mse{}, gb);
  }
  CHECK(std::equal(layer<1>(a).tile.weight_data(), layer<1>(a).tile.weight_data() + 36, layer<1>(b).tile.weight_data()));

  // A bad batch is refused before anything changes.
  auto bad = x;
  bad(0, 0) = std::nan("");
  const net_t kept = b;
  CHECK_THROWS_WITH(r2.step(b, state, bad, t, loss::mse{}, g), Catch::Contains("readout"));
  CHECK(std::equal(layer<1>(b).tile.weight_data(), layer<1>(b).tile.weight_data() + 36, layer<1>(kept).tile.weight_data()));
}

TEST_CASE("optim::mixed_precision transfers whole device steps and keeps the remainder", "[rule][optim][crossbar]") {
  // Constant-step devices without variation: every transferred update is n·dw_min, the
  // accumulator keeps |χ| < dw_min, and χ plus everything transferred is the inner optimiser's
  // total update (nothing is lost, nothing invented).
  using xbar = physics::crossbar<physics::devices::constant_step>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  xbar::params p;
  p.forward.is_perfect = p.backward.is_perfect = true;
  p.device.dw_min_dtod = p.device.dw_min_std = p.device.up_down_dtod = 0;
  p.device.w_min_dtod = p.device.w_max_dtod = 0;
  net_t net({5, 3}, seed{1}, p);
  const double q = p.device.dw_min;
  CHECK(tile_hooks::update_granularity(layer<0>(net).tile) == q);
  CHECK(tile_hooks::update_granularity(physics::digital::tile<2, 2>{}) == 0.0);

  optim::mixed_precision<optim::sgd> mp{.inner = {.learning_rate = 0.01f}};
  auto st_mp = decltype(mp)::state<net_t>{};
  optim::sgd plain{.learning_rate = 0.01f};
  auto st_plain = optim::sgd::state<net_t>{};
  rng g(2);
  std::vector<double> transferred(15, 0.0), requested(15, 0.0);
  for (int k = 0; k < 40; ++k) {
    gradients<net_t> est(net);
    fill_normal<float>(g, est[0].weight.data(), 15, 0.0f, 0.3f);
    gradients<net_t> ref = est;
    plain.apply(ref, st_plain, net);
    mp.apply(est, st_mp, net);
    for (std::size_t e = 0; e < 15; ++e) {
      const double u = est[0].weight.data()[e];
      CHECK(std::abs(u / q - std::round(u / q)) < 1e-3);  // whole steps only
      transferred[e] += u;
      requested[e] += ref[0].weight.data()[e];
      CHECK(std::abs(st_mp.chi[0][e]) < q);
    }
  }
  for (std::size_t e = 0; e < 15; ++e) CHECK(transferred[e] + st_mp.chi[0][e] == Approx(requested[e]).margin(1e-6));
  // A digital layer passes through unchanged.
  using dnet = network<dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
  dnet dn({5, 3}, seed{1});
  gradients<dnet> a(dn), b(dn);
  fill_normal<float>(g, a[0].weight.data(), 15);
  b = a;
  auto s1 = optim::mixed_precision<optim::sgd>::state<dnet>{};
  auto s2 = optim::sgd::state<dnet>{};
  optim::mixed_precision<optim::sgd>{.inner = {.learning_rate = 0.01f}}.apply(a, s1, dn);
  optim::sgd{.learning_rate = 0.01f}.apply(b, s2, dn);
  for (std::size_t e = 0; e < 15; ++e) CHECK(a[0].weight.data()[e] == b[0].weight.data()[e]);
}

}  // namespace tests_rule
