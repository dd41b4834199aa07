// SPDX-License-Identifier: MIT
// The substrate protocol at run time: every shipped substrate passes `check_substrate`, the
// checker catches the faults it exists for, perturbative rules train in a tile's own parameter
// space (MZI phases), a detection mode without a correct transposed read is refused, and a
// minimal user substrate (tests/static/minimal_substrate.hpp) trains through every rule family.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <pnn/pnn.hpp>
#include <pnn/nn/check_substrate.hpp>

#include "static/minimal_substrate.hpp"

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_substrate {

using namespace pnn;

namespace {

template <class S>
void require_conformant(const typename S::params& p = {}, substrate_check_options o = {}) {
  const substrate_check_report r = check_substrate<S>(p, o);
  INFO(S::name << ": " << r.summary() << "read error " << r.read_error << ", vjp error " << r.vjp_error
               << ", program error " << r.program_error);
  CHECK(r.passed());
  CHECK(r.perturbation_effect > 0);
}

template <class T = double>
xt::xtensor<T, 2> uniform_batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s, 3);
  xt::xtensor<T, 2> x({n, k});
  for (auto& v : x) v = static_cast<T>(2 * g.uniform_double() - 1);
  return x;
}

// Three Gaussian blobs in 4 dimensions: 200 training and 100 test samples.
std::pair<data::dataset, data::dataset> blobs() {
  rng gd(9);
  const data::dataset all = data::gaussian_blobs(300, 4, 3, gd, 0.4f);
  auto part = [&](std::size_t from, std::size_t to, const char* name) {
    return data::dataset{xt::view(all.inputs, xt::range(from, to), xt::all()),
                         xt::view(all.targets, xt::range(from, to), xt::all()), xt::view(all.labels, xt::range(from, to)),
                         name};
  };
  return {part(0, 200, "train"), part(200, 300, "test")};
}

}  // namespace

TEST_CASE("every shipped substrate passes check_substrate", "[substrate]") {
  require_conformant<physics::digital>();
  require_conformant<physics::basic_digital<double>>();
  require_conformant<physics::affine_black_box<double>>();
  require_conformant<user::gained_crossbar>();
  {
    physics::crossbar<physics::devices::ideal>::params p;
    p.forward.is_perfect = p.backward.is_perfect = true;
    require_conformant<physics::crossbar<physics::devices::ideal>>(p);
  }
  {  // pulsed devices without variation realise an update to within dw_min/2 per element
    physics::crossbar<physics::devices::constant_step>::params p;
    p.forward.is_perfect = p.backward.is_perfect = true;
    p.update = physics::update_mode::deterministic_pulses;
    p.device.dw_min_dtod = p.device.dw_min_std = p.device.up_down_dtod = 0;
    p.device.w_min_dtod = p.device.w_max_dtod = 0;
    // max|ΔW| = 0.05 · 0.3 = 0.015; dw_min/2 = 0.0005 is 3.3 % of it.
    require_conformant<physics::crossbar<physics::devices::constant_step>>(p, {.program_tolerance = 0.04});
  }
  require_conformant<physics::basic_mzi_mesh<double>>();
  {  // intensity detection: a nonlinear read whose VJP (read_vjp) is checked against finite
     // differences; no dense re-programming
    physics::basic_mzi_mesh<double>::params p;
    p.detect = physics::detection::intensity;
    const auto r = check_substrate<physics::basic_mzi_mesh<double>>(p, {.linear = false, .program_tolerance = -1});
    INFO(r.summary() << "vjp error " << r.vjp_error);
    CHECK(r.passed());
    CHECK(r.vjp_error >= 0);
    CHECK(r.vjp_error < 1e-6);
  }
  require_conformant<physics::oscillator_box<double>>({}, {.linear = false});
  // A resistor network cannot realise a negative weight, so `program(ΔW)` (re-deployment) is
  // exact only inside the realisable set: its check is skipped, the rest is checked.
  require_conformant<physics::basic_resistor_substrate<double>>({}, {.program_tolerance = -1});
}

namespace {
// Faults the checker exists for: a transposed read that is not the read's VJP, and a tile whose
// reads ignore the parameters a perturbative rule writes (what the MZI tile did before it
// exposed its phases).
template <int Fault>
struct faulty {
  using value_type = double;
  static constexpr const char* name = "faulty";
  struct params {};
  template <std::size_t In, std::size_t Out>
  class tile : public physics::basic_digital<double>::tile<In, Out> {
    using base = physics::basic_digital<double>::tile<In, Out>;

   public:
    void read(const double* x, std::size_t n, double* y, rng& g) const {
      if constexpr (Fault == 1) base::read(x, n, y, g);
      else {  // computes with a copy taken at set_weights
        for (std::size_t r = 0; r < n; ++r)
          for (std::size_t j = 0; j < this->out_size(); ++j) {
            double s = 0;
            for (std::size_t i = 0; i < this->in_size(); ++i) s += frozen_[j * this->in_size() + i] * x[r * this->in_size() + i];
            y[r * this->out_size() + j] = s;
          }
      }
    }
    void read_transposed(const double* dy, std::size_t n, double* dx, rng& g) const {
      base::read_transposed(dy, n, dx, g);
      if constexpr (Fault == 1)
        for (std::size_t k = 0; k < n * this->in_size(); ++k) dx[k] *= 1.5;
    }
    void set_weights(const double* w, const double* b, rng& g) {
      base::set_weights(w, b, g);
      frozen_.assign(w, w + this->in_size() * this->out_size());
    }
    void effective_weights(double* w) const { std::copy(frozen_.begin(), frozen_.end(), w); }

   private:
    std::vector<double> frozen_{};
  };
};
}  // namespace

TEST_CASE("check_substrate reports a wrong transposed read and parameters that change nothing", "[substrate]") {
  const auto wrong_vjp = check_substrate<faulty<1>>();
  CHECK_FALSE(wrong_vjp.passed());
  CHECK(wrong_vjp.summary().find("vector-Jacobian") != std::string::npos);
  CHECK(wrong_vjp.vjp_error > 0.1);

  const auto frozen = check_substrate<faulty<2>>({}, {.program_tolerance = -1});
  CHECK_FALSE(frozen.passed());
  CHECK(frozen.summary().find("does not change what the tile reads") != std::string::npos);
  CHECK(frozen.perturbation_effect == 0);
}

TEST_CASE("the MZI mesh's parameters are its phases, attenuators and bias, restored exactly", "[substrate][photonic]") {
  physics::basic_mzi_mesh<double>::tile<dynamic, dynamic> t;
  t.resize(4, 3);
  rng g(5);
  t.prepare(g);
  // N = 4 modes: 6 MZIs per Clements mesh, θ and φ each, a 4-phase screen, per mesh; 4 σ; 3 b.
  CHECK(t.parameter_count() == 2 * (2 * 6 + 4) + 4 + 3);
  CHECK(tile_parameter_count(t) == t.parameter_count());
  std::vector<double> p(t.parameter_count()), q(p.size());
  t.get_parameters(p.data());
  CHECK(p[0] == t.u_mesh().theta()[0]);
  std::vector<double> moved(p);
  moved[0] += 0.3;
  t.set_parameters(moved.data());
  CHECK(t.u_mesh().theta()[0] == moved[0]);
  t.set_parameters(p.data());
  t.get_parameters(q.data());
  CHECK(q == p);
  // An attenuator cannot transmit less than nothing: σ written below 0 is realised as 0.
  const std::size_t sigma0 = 2 * (2 * 6 + 4);
  std::vector<double> dark(p);
  dark[sigma0] = -0.5;
  t.set_parameters(dark.data());
  CHECK(t.sigma()[0] == 0.0);
  t.set_parameters(p.data());
  physics::mzi_mesh_gradients step;  // an in-situ step past zero transmission stops there too
  step.u.assign(6, 4);
  step.v.assign(6, 4);
  step.sigma.assign(4, 0.0);
  step.sigma[0] = t.sigma()[0] + 1.0;
  t.program_phases(step);
  CHECK(t.sigma()[0] == 0.0);
  t.set_parameters(p.data());
  moved[1] = std::nan("");
  CHECK_THROWS_WITH(t.set_parameters(moved.data()), Catch::Contains("not finite"));
  t.get_parameters(q.data());
  CHECK(q == p);
}

TEST_CASE("weight perturbation on an MZI mesh estimates the phase-space gradient", "[substrate][photonic][theory]") {
  // Averaged over many directions, ĝ = E[(∇L·u) u] = ∇_θ L: compared with central finite
  // differences of the loss in each phase, attenuator and bias.
  using mesh = physics::basic_mzi_mesh<double>;
  using net_t = network<dense<dynamic, dynamic, mesh, noise::none, act::identity>>;
  net_t net({3, 2}, seed{3});
  const auto x = uniform_batch(6, 3, 1);
  const auto t = uniform_batch(6, 2, 2);
  const loss::mse mse{};
  auto& tile = layer<0>(net).tile;
  const std::size_t np = tile.parameter_count();
  std::vector<double> theta(np), fd(np);
  tile.get_parameters(theta.data());
  rng g0(1);
  auto loss_at = [&](const std::vector<double>& p) {
    tile.set_parameters(p.data());
    const auto y = pnn::forward(net, x, g0);
    return double(mse.value(y.data(), t.data(), 6, 2));
  };
  for (std::size_t k = 0; k < np; ++k) {
    auto a = theta, b = theta;
    a[k] += 1e-5;
    b[k] -= 1e-5;
    fd[k] = (loss_at(a) - loss_at(b)) / 2e-5;
  }
  tile.set_parameters(theta.data());

  learn::weight_perturbation<> wp{{.sigma = 1e-4, .num_perturbations = 4000}};
  rng g(7);
  const auto est = wp.estimate(net, x, t, mse, g);
  REQUIRE(est[0].parameter_space);
  REQUIRE(est[0].parameter.size() == np);
  double dot = 0, na = 0, nb = 0;
  for (std::size_t k = 0; k < np; ++k) {
    dot += est[0].parameter(k) * fd[k];
    na += est[0].parameter(k) * est[0].parameter(k);
    nb += fd[k] * fd[k];
  }
  const double cos = dot / std::sqrt(na * nb);
  INFO("cosine to the finite-difference phase gradient " << cos << ", norms " << std::sqrt(na) << " vs " << std::sqrt(nb));
  CHECK(cos > 0.95);
  CHECK(std::sqrt(na) == Approx(std::sqrt(nb)).epsilon(0.15));
  std::vector<double> after(np);
  tile.get_parameters(after.data());
  CHECK(after == theta);  // estimate leaves the phases bit for bit

  // Backprop's weight-space gradient mapped into phase space by the tile (adjoint fields) is
  // the same gradient, and the alignment diagnostic measures the estimate against it there.
  learn::backprop<> bp;
  rng gb(1);
  const auto ref = bp.estimate(net, x, t, mse, gb);
  REQUIRE(ref[0].factored);
  std::vector<double> mapped(np);
  tile.parameter_gradient(ref[0].input.data(), ref[0].delta.data(), 6, ref[0].factor_scale, ref[0].bias.data(),
                          mapped.data(), gb);
  for (std::size_t k = 0; k < np; ++k) CHECK(mapped[k] == Approx(fd[k]).margin(1e-6));
  rng ga(7);
  const auto angles = alignment_angles(net, wp, x, t, mse, ga);
  INFO("alignment of the phase-space estimate " << angles[0] << " deg");
  CHECK(angles[0] < 20.0);
}

TEST_CASE("weight perturbation and SPSA train an MZI mesh in phase space, intensity detection included",
          "[substrate][photonic]") {
  using mesh = physics::basic_mzi_mesh<double>;
  using net_t = network<dense<dynamic, dynamic, mesh, noise::none, act::identity>>;
  const auto x = uniform_batch(32, 4, 3);
  // A target the mesh can realise: another mesh's reads of the same inputs.
  for (auto det : {physics::detection::coherent, physics::detection::intensity}) {
    mesh::params p;
    p.detect = det;
    net_t teacher({4, 3}, seed{11}, p);
    rng gt(0);
    const xt::xtensor<double, 2> t = pnn::forward(teacher, x, gt);
    for (int rule = 0; rule < 2; ++rule) {
      net_t net({4, 3}, seed{2}, p);
      rng g(4);
      double first = 0, last = 0;
      auto run = [&](auto& r) {
        for (int k = 0; k < 300; ++k) {
          rng gk = g.split(std::uint64_t(k));
          const double l = r.step(net, x, t, loss::mse{}, gk).loss;
          if (k == 0) first = l;
          last = l;
        }
      };
      if (rule == 0) {
        learn::weight_perturbation<optim::adam> wp{{.optimizer = {.learning_rate = 0.02f}, .sigma = 1e-3, .num_perturbations = 4}};
        run(wp);
      } else {
        learn::spsa<optim::adam> sp{{.optimizer = {.learning_rate = 0.02f}, .c = 1e-3, .num_perturbations = 4}};
        run(sp);
      }
      INFO((det == physics::detection::coherent ? "coherent" : "intensity") << (rule == 0 ? " wp " : " spsa ")
                                                                             << first << " -> " << last);
      CHECK(last < 0.3 * first);
    }
  }
}

TEST_CASE("backprop through an intensity-detected mesh uses its true VJP; a linear formula is refused",
          "[substrate][photonic][theory]") {
  using mesh = physics::basic_mzi_mesh<double>;
  using net_t = network<dense<dynamic, dynamic, physics::basic_digital<double>, noise::none, act::tanh>,
                        dense<dynamic, dynamic, mesh, noise::none, act::identity>>;
  mesh::params p;
  p.detect = physics::detection::intensity;
  p.programming = physics::mesh_programming::adjoint;
  net_t net({3, 4, 2}, seed{1}, p);
  const auto x = uniform_batch(8, 3, 1);
  const xt::xtensor<double, 2> t = uniform_batch(8, 2, 2) * 0.2 + 0.3;  // intensities are >= 0
  const loss::mse mse{};
  // The digital layer's gradient passes through the mesh's VJP: equal to finite differences.
  learn::backprop<> bp;
  rng g(1);
  const auto est = bp.estimate(net, x, t, mse, g);
  auto& w0 = layer<0>(net).tile;
  double worst = 0;
  for (std::size_t k = 0; k < 12; ++k) {
    const double keep = w0.weight_data()[k];
    rng g0(0);
    w0.weight_data()[k] = keep + 1e-6;
    const double up = mse.value(pnn::forward(net, x, g0).data(), t.data(), 8, 2);
    w0.weight_data()[k] = keep - 1e-6;
    const double down = mse.value(pnn::forward(net, x, g0).data(), t.data(), 8, 2);
    w0.weight_data()[k] = keep;
    worst = std::max(worst, std::abs(est[0].weight.data()[k] - (up - down) / 2e-6));
  }
  INFO("worst deviation from finite differences " << worst);
  CHECK(worst < 1e-7);
  // Trained end to end: adjoint phase steps from the factors, the VJP below.
  const double first = bp.step(net, x, t, mse, g).loss;
  double last = first;
  // Plain SGD keeps the update a product s·δᵀh, which the mesh maps to phase steps exactly; an
  // elementwise optimiser (Adam) would hand it a dense ΔW, which it refuses under intensity.
  learn::backprop<> sgd{{.optimizer = {.learning_rate = 0.1f}}};
  for (int k = 0; k < 300; ++k) {
    rng gk = g.split(std::uint64_t(k));
    last = sgd.step(net, x, t, mse, gk).loss;
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.3 * first);

  // Re-programming W - dW, and the bare transposed read, have no meaning under intensity detection.
  mesh::params q = p;
  q.programming = physics::mesh_programming::reprogram;
  net_t other({3, 4, 2}, seed{1}, q);
  std::vector<double> before(layer<1>(other).tile.parameter_count()), after(before.size());
  layer<1>(other).tile.get_parameters(before.data());
  CHECK_THROWS_WITH(bp.step(other, x, t, mse, g), Catch::Contains("intensity detection"));
  layer<1>(other).tile.get_parameters(after.data());
  CHECK(after == before);
  std::vector<double> dy(8 * 2, 1.0), dx(8 * 4);
  CHECK_THROWS_WITH(layer<1>(other).tile.read_transposed(dy.data(), 8, dx.data(), g), Catch::Contains("read_vjp"));
}

TEST_CASE("perturbative rules refuse a crossbar programmed for inference", "[substrate][crossbar]") {
  using xbar = physics::crossbar<physics::devices::pcm>;
  using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
  net_t net({3, 2}, seed{1});
  rng g(2);
  layer<0>(net).tile.program_inference({}, g);
  xt::xtensor<float, 2> x({4, 3}), t({4, 2});
  x.fill(0.5f);
  t.fill(0.1f);
  learn::spsa<> sp;
  CHECK_THROWS_WITH(sp.step(net, x, t, loss::mse{}, g), Catch::Contains("clear_inference"));
}

TEST_CASE("a minimal user substrate trains through network, train and every rule family", "[substrate]") {
  // user::gained_crossbar has only the protocol's required members and a transposed read.
  using hidden = dense<dynamic, dynamic, user::gained_crossbar, noise::none, act::tanh>;
  using output = dense<dynamic, dynamic, user::gained_crossbar, noise::none, act::identity>;
  using net_t = network<hidden, output>;
  const auto sets = blobs();  // not a structured binding: clang 14 cannot capture one in a lambda
  const data::dataset& train_set = sets.first;
  const data::dataset& test_set = sets.second;
  const loss::softmax_cross_entropy ce{};
  const train_options opt{.epochs = 15, .batch = 20, .seed = 1, .progress = progress_mode::never};
  auto accuracy_after = [&](auto rule) {
    net_t net({4, 16, 3}, seed{1});
    train(net, rule, ce, train_set, opt);
    return evaluate(net, ce, test_set).accuracy;
  };
  const double untrained = [&] {
    net_t net({4, 16, 3}, seed{1});
    return evaluate(net, ce, test_set).accuracy;
  }();
  const double bp = accuracy_after(learn::backprop<optim::adam>{{.optimizer = {.learning_rate = 0.02f}}});
  const double pat = accuracy_after(learn::physics_aware<optim::adam>{{.optimizer = {.learning_rate = 0.02f}}});
  const double fa = accuracy_after(learn::feedback_alignment<optim::adam>{{.optimizer = {.learning_rate = 0.02f}}});
  const double dfa = accuracy_after(learn::direct_feedback_alignment<optim::adam>{{.optimizer = {.learning_rate = 0.02f}}});
  const double wp = accuracy_after(
      learn::weight_perturbation<optim::adam>{{.optimizer = {.learning_rate = 0.02f}, .sigma = 1e-3, .num_perturbations = 4}});
  const double np = accuracy_after(
      learn::node_perturbation<optim::adam>{{.optimizer = {.learning_rate = 0.02f}, .sigma = 1e-3, .num_perturbations = 2}});
  const double sp = accuracy_after(
      learn::spsa<optim::adam>{{.optimizer = {.learning_rate = 0.02f}, .c = 1e-3, .num_perturbations = 4}});
  INFO("untrained " << untrained << ", backprop " << bp << ", physics_aware " << pat << ", FA " << fa << ", DFA " << dfa
                    << ", WP " << wp << ", NP " << np << ", SPSA " << sp);
  for (double a : {bp, pat, fa, dfa, wp, np, sp}) CHECK(a > std::max(0.8, untrained + 0.2));

  // In silico: train a digital twin, deploy it onto the user's tiles.
  network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
          dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>
      twin({4, 16, 3}, seed{1});
  net_t physical({4, 16, 3}, seed{2});
  learn::backprop<optim::adam> rule{{.optimizer = {.learning_rate = 0.02f}}};
  const auto r = in_silico(twin, physical, rule, ce, train_set, test_set, opt);
  INFO("twin " << r.twin.accuracy << ", deployed " << r.deployed.accuracy);
  CHECK(r.deployed.accuracy == Approx(r.twin.accuracy).margin(1e-9));
  CHECK(r.deployed.accuracy > 0.8);
}

TEST_CASE("a resistor-network layer learns in its conductances under every rule family", "[substrate][resistor]") {
  // A digital tanh encoder feeds a resistor-network output layer (gain 4): every rule's
  // estimate reaches the layer as conductance gradients (the adjoint state), perturbative rules
  // perturb conductances, and the optimiser's state lives per resistor.
  using rsub = physics::resistor_substrate;
  using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                        dense<dynamic, dynamic, rsub, noise::none, act::identity>>;
  rsub::params rp;
  rp.output_gain = 4.0;
  const auto sets = blobs();  // not a structured binding: clang 14 cannot capture one in a lambda
  const data::dataset& train_set = sets.first;
  const data::dataset& test_set = sets.second;
  const loss::softmax_cross_entropy ce{};

  // One SGD step moves the conductances by exactly −η·∂L/∂k, the mapped backprop gradient, and
  // stops a conductance that would go below k_min there (a deployed negative weight sits at it).
  {
    net_t net({4, 8, 3}, seed{1}, rp);
    const xt::xtensor<float, 2> x = xt::view(train_set.inputs, xt::range(0, 16), xt::all());
    const xt::xtensor<float, 2> t = xt::view(train_set.targets, xt::range(0, 16), xt::all());
    learn::backprop<> bp{{.optimizer = {.learning_rate = 0.5f}}};
    rng g(3);
    const auto est = bp.estimate(net, x, t, ce, g);
    auto& tile = layer<1>(net).tile;
    std::vector<double> grad(tile.parameter_count()), k0(tile.parameter_count()), k1(tile.parameter_count());
    tile.parameter_gradient(est[1].input.data(), est[1].delta.data(), 16, est[1].factor_scale, est[1].bias.data(),
                            grad.data(), g);
    tile.get_parameters(k0.data());
    (void)bp.step(net, x, t, ce, g);
    tile.get_parameters(k1.data());
    double err = 0, ref = 0;
    const double k_min = tile.network().parameters().k_min;
    std::size_t at_bound = 0;
    for (std::size_t e = 0; e < k0.size(); ++e) {
      const double expected = std::max(k0[e] - 0.5 * grad[e], k_min);
      at_bound += expected == k_min;
      err = std::max(err, std::abs(k1[e] - expected));
      ref = std::max(ref, std::abs(0.5 * grad[e]));
    }
    INFO(at_bound << " of " << k0.size() << " conductances stopped at k_min");
    CHECK(at_bound < k0.size());
    INFO("max step error " << err << " of " << ref);
    CHECK(ref > 0);
    CHECK(err < 1e-5 * ref);
  }

  const train_options opt{.epochs = 15, .batch = 20, .seed = 1, .progress = progress_mode::never};
  auto accuracy_after = [&](auto rule) {
    net_t net({4, 16, 3}, seed{1}, rp);
    train(net, rule, ce, train_set, opt);
    const auto& rn = layer<1>(net).tile.network();
    for (double k : rn.conductances()) REQUIRE(k >= rn.parameters().k_min);
    return evaluate(net, ce, test_set).accuracy;
  };
  const double untrained = [&] {
    net_t net({4, 16, 3}, seed{1}, rp);
    return evaluate(net, ce, test_set).accuracy;
  }();
  using optim::adam;
  const double bp = accuracy_after(learn::backprop<adam>{{.optimizer = {.learning_rate = 0.02f}}});
  const double pat = accuracy_after(learn::physics_aware<adam>{{.optimizer = {.learning_rate = 0.02f}}});
  const double fa = accuracy_after(learn::feedback_alignment<adam>{{.optimizer = {.learning_rate = 0.02f}}});
  const double dfa = accuracy_after(learn::direct_feedback_alignment<adam>{{.optimizer = {.learning_rate = 0.02f}}});
  const double wp = accuracy_after(
      learn::weight_perturbation<adam>{{.optimizer = {.learning_rate = 0.02f}, .sigma = 1e-3, .num_perturbations = 4}});
  const double sp =
      accuracy_after(learn::spsa<adam>{{.optimizer = {.learning_rate = 0.02f}, .c = 1e-3, .num_perturbations = 4}});
  INFO("untrained " << untrained << ", backprop " << bp << ", physics_aware " << pat << ", FA " << fa << ", DFA " << dfa
                    << ", WP " << wp << ", SPSA " << sp);
  for (double a : {bp, pat, fa, dfa, wp, sp}) CHECK(a > std::max(0.8, untrained + 0.2));
}

namespace {

// Runs `read(g)` from four threads at once, each repeating it with its own seeds, and compares
// every result with the same read done serially: a shared scratch buffer or a cache filled by
// two readers at once shows up as a mismatch.
template <class Read>
void check_concurrent_reads(Read read) {
  constexpr std::size_t threads = 4, repeats = 24;
  std::vector<std::vector<float>> serial(threads * repeats), parallel(threads * repeats);
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (std::size_t r = 0; r < repeats; ++r) {
        rng g{t + 1, r};
        parallel[t * repeats + r] = read(g);
      }
    });
  for (auto& th : pool) th.join();
  for (std::size_t t = 0; t < threads; ++t)
    for (std::size_t r = 0; r < repeats; ++r) {
      rng g{t + 1, r};
      serial[t * repeats + r] = read(g);
    }
  for (std::size_t k = 0; k < serial.size(); ++k) REQUIRE(parallel[k] == serial[k]);
}

template <class Net>
std::vector<float> read_forward(const Net& net, const xt::xtensor<float, 2>& x, rng& g) {
  const auto y = forward(net, x, g);
  return {y.begin(), y.end()};
}

}  // namespace

TEST_CASE("const reads are safe from several threads at once", "[substrate][concurrent]") {
  SECTION("crossbar periphery (per-thread read workspace), forward and transposed") {
    using xbar = physics::crossbar<physics::devices::constant_step>;
    using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::tanh>,
                          dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
    const net_t net({24, 16, 6}, seed{2});  // default io: noise and bound management, w_noise off
    const auto x = uniform_batch<float>(32, 24, 1);
    check_concurrent_reads([&](rng& g) { return read_forward(net, x, g); });
    const auto& l = layer<1>(net);
    const auto dy = uniform_batch<float>(32, 6, 2);
    check_concurrent_reads([&](rng& g) {
      std::vector<float> dx(32 * 16);
      l.backward_read_at(nullptr, dy.data(), 32, dx.data(), g);
      return dx;
    });
  }
  SECTION("a weights-stage noise policy (the layer's effective-tile copy)") {
    using net_t = network<dense<dynamic, dynamic, physics::digital, noise::variation, act::tanh>>;
    const net_t net({20, 12}, seed{3}, physics::digital::params{}, noise::variation{.multiplicative = 0.1});
    const auto x = uniform_batch<float>(16, 20, 3);
    check_concurrent_reads([&](rng& g) { return read_forward(net, x, g); });
  }
  SECTION("an MZI mesh filling its realised-matrix cache on first use") {
    for (const auto det : {physics::detection::coherent, physics::detection::intensity}) {
      using net_t = network<dense<dynamic, dynamic, physics::mzi_mesh, noise::none, act::identity>>;
      physics::mzi_mesh::params p;
      p.detect = det;
      const net_t programmed({10, 8}, seed{4}, p);
      const auto x = uniform_batch<float>(16, 10, 4);  // n ≥ In: reads use the realised matrix
      const net_t fresh = programmed;         // its cache is still empty: the threads race to fill it
      check_concurrent_reads([&](rng& g) { return read_forward(fresh, x, g); });
    }
  }
}

}  // namespace tests_substrate
