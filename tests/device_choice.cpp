// SPDX-License-Identifier: MIT
// Devices chosen at run time (`devices::any_of`, `devices::selectable`): a crossbar on a chosen
// model programs, zero-shifts, deploys and reads its conductances bit for bit as the crossbar
// on that model's own type; names map to models, and bad names or files are clear errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/pnn.hpp>
#include <pnn/physics/device_choice.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_device_choice {

using namespace pnn;
namespace dev = physics::devices;

namespace {

// A factored batch update ΔW = s·δᵀh, as a rule hands it to `tile::program`.
struct factored_update {
  bool factored = true;
  xt::xtensor<float, 2> input, delta;
  double factor_scale = 0.05;
  std::vector<float> dense, bias;
  const float* weight_data() const { return dense.data(); }
  const float* bias_data() const { return bias.data(); }
};

factored_update random_update(std::size_t n, std::size_t in, std::size_t out, std::uint64_t s) {
  rng g(s);
  factored_update u;
  u.input = xt::zeros<float>({n, in});
  u.delta = xt::zeros<float>({n, out});
  for (auto& v : u.input) v = g.normal();
  for (auto& v : u.delta) v = g.normal();
  u.dense.assign(in * out, 0.0f);
  for (std::size_t j = 0; j < out; ++j)
    for (std::size_t i = 0; i < in; ++i)
      for (std::size_t b = 0; b < n; ++b) u.dense[j * in + i] += float(u.factor_scale) * u.delta(b, j) * u.input(b, i);
  u.bias.assign(out, 0.0f);
  return u;
}

// Runs the same operations on a tile of `crossbar<Concrete>` and one of `crossbar<selectable>`
// holding `d`, and compares weights, cells and conductances exactly.
template <class Concrete>
void same_as_concrete(const Concrete& d) {
  using xa = physics::crossbar<Concrete>;
  using xs = physics::crossbar<dev::selectable>;
  typename xa::params pa;
  typename xs::params ps;
  pa.device = d;
  ps.device = d;
  typename xa::template tile<dynamic, dynamic> ta(pa);
  typename xs::template tile<dynamic, dynamic> ts(ps);
  const std::size_t in = 40, out = 12;
  ta.resize(in, out);
  ts.resize(in, out);
  rng g0(3), g1(3);
  ta.prepare(g0);
  ts.prepare(g1);
  CHECK(ta.update_granularity() == ts.update_granularity());
  CHECK(ta.g_ref() == ts.g_ref());
  const auto u = random_update(8, in, out, 11);
  for (std::uint64_t step = 0; step < 5; ++step) {
    rng ga(100 + step), gs(100 + step);
    ta.program(u, ga);
    ts.program(u, gs);
  }
  auto dense = u;
  dense.factored = false;  // whole pulse counts from the dense update
  rng ga(9), gs(9);
  ta.program(dense, ga);
  ts.program(dense, gs);
  ta.apply_pulse_pairs(30, ga);
  ts.apply_pulse_pairs(30, gs);
  std::size_t differ = 0, moved = 0;
  for (std::size_t e = 0; e < in * out; ++e) {
    differ += ta.weight_data()[e] != ts.weight_data()[e];
    moved += ta.weight_data()[e] != 0.0f;
    const auto ca = ta.cell(e), cs = ts.cell(e);
    differ += ca.dw_up != cs.dw_up || ca.b_max != cs.b_max;
  }
  std::vector<float> gpa(in * out), gma(in * out), gps(in * out), gms(in * out);
  ta.conductances(gpa.data(), gma.data());
  ts.conductances(gps.data(), gms.data());
  CHECK(gpa == gps);
  CHECK(gma == gms);
  CHECK(differ == 0);
  CHECK(moved > in * out / 2);  // the updates did reach the devices
  // Deployment writes and reads back through the chosen model's bounds.
  std::vector<float> target(in * out, 0.3f), b(out, 0.0f);
  ta.set_weights(target.data(), b.data(), ga);
  ts.set_weights(target.data(), b.data(), gs);
  CHECK(std::equal(ta.weight_data(), ta.weight_data() + in * out, ts.weight_data()));
}

}  // namespace

TEST_CASE("a crossbar on a device chosen at run time equals the crossbar on that device's type", "[device_choice]") {
  SECTION("soft bounds") { same_as_concrete(dev::soft_bounds{.up_down = 0.1f}); }
  SECTION("constant step") { same_as_concrete(dev::constant_step{}); }
  SECTION("exp step") { same_as_concrete(dev::exp_step{}); }
  SECTION("pow step") { same_as_concrete(dev::pow_step{.law = {.gamma_up = 2.0f, .gamma_down = 0.7f}}); }
  SECTION("PCM pair with refresh") { same_as_concrete(dev::pcm_preset()); }
}

TEST_CASE("device names choose models; unknown names and bad files are clear errors", "[device_choice]") {
  CHECK(std::string(dev::device_from_name("soft_bounds").model_name()) == "soft_bounds");
  CHECK(std::string(dev::device_from_name("constant_step").model_name()) == "constant_step");
  CHECK(std::string(dev::device_from_name("linear_step").model_name()) == "linear_step");
  CHECK(std::string(dev::device_from_name("exp_step").model_name()) == "exp_step");
  CHECK(std::string(dev::device_from_name("pow_step").model_name()) == "pow_step");
  const auto p = dev::device_from_name("pcm");
  CHECK(std::string(p.model_name()) == "pcm");
  CHECK(p.pair());
  CHECK_FALSE(dev::device_from_name("soft_bounds").pair());
  CHECK(p.step_size() == dev::pcm_preset().dw_min);
  CHECK_THROWS_WITH(dev::device_from_name("softbounds"), Catch::Contains("unknown device 'softbounds'") &&
                                                              Catch::Contains("measured:FILE.csv"));
  CHECK_THROWS_WITH(dev::device_from_name("measured:"), Catch::Contains("needs a pulse-response file"));
  CHECK_THROWS_WITH(dev::device_from_name("measured:/nonexistent/x.csv"), Catch::Contains("no such file"));

  const char* root = std::getenv("PNN_SOURCE_DIR");
  if (root == nullptr) return;
  const std::string file = std::string(root) + "/examples/data/devices/reram_sb.csv";
  const auto m = dev::device_from_name("measured:" + file);
  CHECK(std::string(m.model_name()) == "measured");
  CHECK_FALSE(m.pair());
  // The chosen model is the fitted table: its step is the data's step at w = 0.
  const auto fit = dev::fit_pulse_response(dev::load_pulse_response(file));
  CHECK(m.step_size() == fit.table.dw_min);
  // A crossbar on the measured device prepares and trains like one on its own type.
  same_as_concrete(fit.table);
}

TEST_CASE("a chosen device's parameters are validated with the crossbar's", "[device_choice]") {
  using xs = physics::crossbar<dev::selectable>;
  xs::params p;
  auto bad = dev::pcm_preset();
  bad.dw_min = -1.0f;
  p.device = bad;
  using tile_t = xs::tile<dynamic, dynamic>;
  CHECK_THROWS_WITH(tile_t(p), Catch::Contains("dw_min must be > 0"));
  tile_t t;
  CHECK_THROWS(t.set_params(p));
  CHECK(std::string(t.parameters().device.model_name()) == "soft_bounds");  // unchanged
}

}  // namespace tests_device_choice
