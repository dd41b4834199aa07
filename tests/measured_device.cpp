// SPDX-License-Identifier: MIT
// Devices from measured pulse-response data: the tabulated step law, the CSV reader and writer,
// the fitter (parameters of known devices recovered from their generated data), and a crossbar
// built on the tabulated device.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include <pnn/nn/dynamic_storage.hpp>  // crossbar.hpp's dynamic-extent tiles need it, and do not include it
#include <pnn/physics/crossbar.hpp>
#include <pnn/physics/measured_device.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_measured_device {

using namespace pnn;
using namespace pnn::physics;
using Catch::Matchers::Contains;

namespace {

namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("pnn_measured_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string write_text(const temp_dir& d, const std::string& name, const std::string& text) {
  const std::string p = d / name;
  std::ofstream f(p, std::ios::binary);
  f << text;
  REQUIRE(f.good());
  return p;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return s / double(v.size());
}
double sd(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (const double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

/// The population parameters of a set of drawn cells, by the inversion the fitter uses: what a
/// perfect per-device fit would report for this sample of devices.
struct sample_truth {
  double dw_min, up_down, dw_min_dtod, up_down_dtod, w_min, w_max, w_min_dtod, w_max_dtod;
};
sample_truth truth_of(const std::vector<devices::device_cell>& cells) {
  std::vector<double> up, down, sum, diff, lo, hi;
  for (const auto& c : cells) {
    up.push_back(c.dw_up), down.push_back(c.dw_down), lo.push_back(c.b_min), hi.push_back(c.b_max);
    sum.push_back(double(c.dw_up) + c.dw_down), diff.push_back(double(c.dw_up) - c.dw_down);
  }
  const double dw = std::max(mean(up), mean(down));
  return {dw, (mean(up) - mean(down)) / dw, sd(sum) / (2 * dw), sd(diff) / (2 * dw),
          mean(lo), mean(hi), sd(lo) / -mean(lo), sd(hi) / mean(hi)};
}

/// Mean weight after k pulses over the sweeps of one direction (weights through `map`).
std::vector<double> mean_sweep(const devices::pulse_response& r, devices::pulse_direction dir,
                               const devices::conductance_map& map) {
  std::vector<double> m;
  double n = 0;
  for (const auto& s : r.sweeps) {
    if (s.direction != dir) continue;
    m.resize(s.conductance_uS.size(), 0.0);
    for (std::size_t k = 0; k < m.size(); ++k) m[k] += map.to_weight(s.conductance_uS[k]);
    n += 1;
  }
  for (auto& v : m) v /= n;
  return m;
}

// A pulse-response table with the given rows under the standard header.
std::string csv(const std::string& rows) { return "device,direction,pulse,conductance_uS\n" + rows; }
const std::string good_down = "a,down,0,20\na,down,1,19.5\na,down,2,19.1\n";

}  // namespace

TEST_CASE("the tabulated law interpolates, clamps and scales with the cell", "[measured_device]") {
  const devices::measured d{.dw_min_std = 0,
                            .w_min = -0.5f,
                            .w_max = 0.5f,
                            .law = {.up_table = {{-0.5f, 2.0f}, {0.0f, 1.0f}, {0.5f, 0.0f}},
                                    .down_table = {{-0.5f, 0.0f}, {0.5f, 2.0f}}}};
  REQUIRE_NOTHROW(d.validate());
  const devices::device_cell nominal{0.01f, 0.02f, -0.5f, 0.5f};
  float aux = 0;
  CHECK(d.step(0.0f, aux, true, nominal) == Approx(0.01));
  CHECK(d.step(-0.25f, aux, true, nominal) == Approx(0.015));  // halfway between 2 and 1
  CHECK(d.step(-0.9f, aux, true, nominal) == Approx(0.02));    // clamped below the table
  CHECK(d.step(0.7f, aux, true, nominal) == 0.0f);             // clamped above: step 0
  CHECK(d.step(0.0f, aux, false, nominal) == Approx(0.02));
  CHECK(d.step(0.25f, aux, false, nominal) == Approx(0.03));
  // A cell with half the nominal upper bound follows the same curve over its own range.
  const devices::device_cell narrow{0.01f, 0.02f, -0.5f, 0.25f};
  CHECK(d.step(0.125f, aux, true, narrow) == Approx(d.step(0.25f, aux, true, nominal)));
  devices::measured absolute = d;
  absolute.law.scale_with_bounds = false;
  CHECK(absolute.step(0.125f, aux, true, narrow) == Approx(0.01 * 0.75));
  // A pulse never leaves the cell's bounds.
  float w = 0.49f;
  d.pulse(w, aux, true, devices::device_cell{1.0f, 1.0f, -0.5f, 0.5f}, 0.0f);
  CHECK(w <= 0.5f);
  CHECK_NOTHROW(devices::measured{}.validate());  // default: constant step
}

TEST_CASE("bad step tables are rejected with a clear error", "[measured_device]") {
  using T = std::vector<devices::law::table_point>;
  auto with_up = [](T t) { return devices::measured{.law = {.up_table = std::move(t)}}; };
  CHECK_THROWS_WITH(with_up({}).validate(), Contains("empty"));
  CHECK_THROWS_WITH(with_up({{0.1f, 1.0f}, {-0.1f, 1.0f}}).validate(), Contains("not sorted"));
  CHECK_THROWS_WITH(with_up({{0.0f, 1.0f}, {0.0f, 1.0f}}).validate(), Contains("not sorted"));
  CHECK_THROWS_WITH(with_up({{0.0f, std::numeric_limits<float>::quiet_NaN()}}).validate(), Contains("non-finite"));
  CHECK_THROWS_WITH(with_up({{std::numeric_limits<float>::infinity(), 1.0f}}).validate(), Contains("non-finite"));
  CHECK_THROWS_WITH(with_up({{-0.1f, 1.0f}, {0.1f, -0.5f}}).validate(), Contains("negative"));
  CHECK_THROWS_WITH(with_up({{0.0f, 0.0f}}).validate(), Contains("w = 0"));
  CHECK_THROWS_WITH((devices::measured{.law = {.down_table = {}}}.validate()), Contains("empty"));
}

TEST_CASE("fitting soft-bounds data recovers every parameter of the device", "[measured_device]") {
  // 40 devices x 200 pulses per sweep; dw_min 0.01 so that a sweep crosses most of the range.
  const devices::soft_bounds truth{.dw_min = 0.01f, .dw_min_dtod = 0.2f, .dw_min_std = 0.3f, .up_down = 0.1f,
                                   .up_down_dtod = 0.05f, .w_min = -0.6f, .w_max = 0.8f, .w_min_dtod = 0.15f,
                                   .w_max_dtod = 0.1f};
  std::vector<devices::device_cell> cells;
  const devices::simulate_options so{.cells = &cells};
  rng g(3);
  const auto data = devices::simulate_pulse_response(truth, 40, 200, g, so);
  const auto f = devices::fit_pulse_response(data, {.map = devices::simulation_map(truth, so)});
  REQUIRE(f.devices == 40);
  CHECK(f.sweeps == 80);
  CHECK(f.steps == 80 * 200);
  CHECK(f.best == devices::fit_model::soft);
  CHECK(f.warnings.empty());

  // Each device's own step and bounds (fit vs the drawn cell): RMS relative error.
  std::vector<double> e_up, e_down, e_hi, e_lo;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    e_up.push_back(f.per_device[i].dw_up / cells[i].dw_up - 1);
    e_down.push_back(f.per_device[i].dw_down / cells[i].dw_down - 1);
    e_hi.push_back(f.per_device[i].b_max / cells[i].b_max - 1);
    e_lo.push_back(f.per_device[i].b_min / cells[i].b_min - 1);
  }
  auto rms = [](const std::vector<double>& v) {
    double s = 0;
    for (const double x : v) s += x * x;
    return std::sqrt(s / double(v.size()));
  };
  INFO("per-device RMS relative error: dw_up " << rms(e_up) << ", dw_down " << rms(e_down) << ", b_max "
                                               << rms(e_hi) << ", b_min " << rms(e_lo));
  CHECK(rms(e_up) < 0.04);
  CHECK(rms(e_down) < 0.04);
  CHECK(rms(e_hi) < 0.06);
  CHECK(rms(e_lo) < 0.06);

  // Population parameters against this sample of devices (what the fitter can know) ...
  const sample_truth t = truth_of(cells);
  INFO("fit: dw_min " << f.dw_min << " up_down " << f.up_down << " dw_min_dtod " << f.dw_min_dtod << " up_down_dtod "
                      << f.up_down_dtod << " w [" << f.w_min << ", " << f.w_max << "] dtod " << f.w_min_dtod << ", "
                      << f.w_max_dtod << " dw_min_std " << f.dw_min_std);
  INFO("sample: dw_min " << t.dw_min << " up_down " << t.up_down << " dw_min_dtod " << t.dw_min_dtod
                         << " up_down_dtod " << t.up_down_dtod << " w [" << t.w_min << ", " << t.w_max << "] dtod "
                         << t.w_min_dtod << ", " << t.w_max_dtod);
  CHECK(f.dw_min == Approx(t.dw_min).epsilon(0.02));
  CHECK(f.up_down == Approx(t.up_down).margin(0.02));
  CHECK(f.dw_min_dtod == Approx(t.dw_min_dtod).epsilon(0.1));
  CHECK(f.up_down_dtod == Approx(t.up_down_dtod).margin(0.015));
  CHECK(f.w_min == Approx(t.w_min).epsilon(0.02));
  CHECK(f.w_max == Approx(t.w_max).epsilon(0.02));
  CHECK(f.w_min_dtod == Approx(t.w_min_dtod).epsilon(0.2));
  CHECK(f.w_max_dtod == Approx(t.w_max_dtod).epsilon(0.2));
  CHECK(f.dw_min_std == Approx(0.3).epsilon(0.03));  // cycle-to-cycle noise: thousands of steps
  // ... and against the nominal device (sampling of 40 devices included).
  CHECK(f.dw_min == Approx(truth.dw_min).epsilon(0.1));
  CHECK(f.up_down == Approx(truth.up_down).margin(0.05));
  CHECK(f.dw_min_dtod == Approx(truth.dw_min_dtod).epsilon(0.3));
  CHECK(f.w_min == Approx(truth.w_min).epsilon(0.06));
  CHECK(f.w_max == Approx(truth.w_max).epsilon(0.06));
  CHECK(f.w_min_dtod == Approx(truth.w_min_dtod).epsilon(0.35));
  CHECK(f.w_max_dtod == Approx(truth.w_max_dtod).epsilon(0.35));
  // The soft-bounds device carries them; the pow-step fit of soft data finds gamma near 1.
  CHECK(f.soft.dw_min == f.dw_min);
  CHECK(f.soft.w_max == f.w_max);
  CHECK_NOTHROW(f.soft.validate());
  CHECK_NOTHROW(f.power.validate());
  CHECK_NOTHROW(f.table.validate());
  CHECK(f.gamma_up == Approx(1.0).margin(0.1));
  CHECK(f.gamma_down == Approx(1.0).margin(0.1));
}

TEST_CASE("fitting pow-step data recovers the exponents and prefers the power law", "[measured_device]") {
  const devices::pow_step truth{.dw_min = 0.02f, .dw_min_dtod = 0.2f, .dw_min_std = 0.3f, .up_down = 0.0f,
                                .up_down_dtod = 0.02f, .w_min = -0.6f, .w_max = 0.6f, .w_min_dtod = 0.1f,
                                .w_max_dtod = 0.1f, .law = {.gamma_up = 2.0f, .gamma_down = 0.7f}};
  std::vector<devices::device_cell> cells;
  const devices::simulate_options so{.cells = &cells};
  rng g(5);
  const auto f = devices::fit_pulse_response(devices::simulate_pulse_response(truth, 20, 200, g, so),
                                             {.map = devices::simulation_map(truth, so)});
  INFO("gamma_up " << f.gamma_up << " gamma_down " << f.gamma_down << " pow dw_min " << f.power.dw_min << " bounds ["
                   << f.power.w_min << ", " << f.power.w_max << "] dw_min_std " << f.dw_min_std);
  CHECK(f.best == devices::fit_model::power);
  CHECK(f.gamma_up == Approx(2.0).margin(0.15));
  CHECK(f.gamma_down == Approx(0.7).margin(0.07));
  CHECK(f.power.law.gamma_up == f.gamma_up);
  const sample_truth t = truth_of(cells);
  CHECK(f.power.dw_min == Approx(t.dw_min).epsilon(0.06));  // pow_step's dw: the step at the far bound
  CHECK(f.power.w_min == Approx(t.w_min).epsilon(0.05));
  CHECK(f.power.w_max == Approx(t.w_max).epsilon(0.05));
  CHECK(f.dw_min_std == Approx(0.3).epsilon(0.06));
  // The reference-point step of a pow-step device: dw (b_max/(b_max − b_min))^γ_up for up.
  CHECK(f.dw_min == Approx(t.dw_min * std::max(std::pow(0.5, 2.0), std::pow(0.5, 0.7))).epsilon(0.08));
}

TEST_CASE("fit quality: R2 near 1 for the right model on clean data, lower for the wrong one", "[measured_device]") {
  const devices::soft_bounds clean{.dw_min = 0.01f, .dw_min_dtod = 0, .dw_min_std = 0, .up_down_dtod = 0,
                                   .w_min_dtod = 0, .w_max_dtod = 0};
  rng g(8);
  const auto fs_ = devices::fit_pulse_response(devices::simulate_pulse_response(clean, 3, 150, g),
                                               {.map = devices::simulation_map(clean)});
  INFO("soft data: soft R2 step " << fs_.soft_fit.quality.step_r2 << " curve " << fs_.soft_fit.quality.curve_r2
                                  << " rms " << fs_.soft_fit.quality.curve_rms);
  CHECK(fs_.soft_fit.quality.step_r2 > 0.999);
  CHECK(fs_.soft_fit.quality.curve_r2 > 0.9999);
  CHECK(fs_.soft_fit.quality.curve_rms < 1e-3);
  CHECK(fs_.dw_min_std < 0.01);
  CHECK(fs_.dw_min == Approx(0.01).epsilon(0.01));
  CHECK(fs_.w_max == Approx(0.6).epsilon(0.01));

  const devices::pow_step curved{.dw_min = 0.03f, .dw_min_dtod = 0, .dw_min_std = 0, .up_down_dtod = 0,
                                 .w_min_dtod = 0, .w_max_dtod = 0, .law = {.gamma_up = 2.5f, .gamma_down = 2.5f}};
  const auto fp = devices::fit_pulse_response(devices::simulate_pulse_response(curved, 3, 150, g),
                                              {.map = devices::simulation_map(curved)});
  const auto& qs = fp.soft_fit.quality;
  const auto& qp = fp.pow_fit.quality;
  INFO("pow data: soft R2 step " << qs.step_r2 << " curve " << qs.curve_r2 << "; pow R2 step " << qp.step_r2
                                 << " curve " << qp.curve_r2);
  CHECK(fp.best == devices::fit_model::power);
  CHECK(qp.step_r2 > 0.999);
  CHECK(qp.curve_r2 > 0.9999);
  CHECK(qs.step_r2 < 0.97);
  CHECK(qs.curve_r2 < qp.curve_r2);
  CHECK(qs.step_rms > 3 * qp.step_rms);
  CHECK(fp.gamma_up == Approx(2.5).margin(0.05));
}

TEST_CASE("the tabulated device reproduces the mean measured response", "[measured_device]") {
  // A curve neither closed form has: a linear step whose slope differs between the directions.
  const devices::linear_step truth{.dw_min = 0.008f, .dw_min_dtod = 0.1f, .dw_min_std = 0.2f, .up_down_dtod = 0.01f,
                                   .w_min_dtod = 0.05f, .w_max_dtod = 0.05f,
                                   .law = {.ls_decrease_up = 0.3f, .ls_decrease_down = 0.9f}};
  rng g(13);
  const auto data = devices::simulate_pulse_response(truth, 30, 200, g);
  const auto map = devices::simulation_map(truth);
  const auto f = devices::fit_pulse_response(data, {.map = map});
  REQUIRE_NOTHROW(f.table.validate());
  CHECK(devices::law::measured::interpolate(f.table.law.up_table, 0.0f) == Approx(1.0));
  // The table's nominal step follows the true device's closed form over the measured range.
  float aux = 0;
  const auto tc = f.table.nominal_cell();
  const auto dc = truth.nominal_cell();
  for (float w : {-0.5f, -0.25f, 0.0f, 0.25f, 0.5f}) {
    INFO("w = " << w);
    CHECK(f.table.step(w, aux, true, tc) == Approx(truth.step(w, aux, true, dc)).epsilon(0.06));
    CHECK(f.table.step(w, aux, false, tc) == Approx(truth.step(w, aux, false, dc)).epsilon(0.06));
  }
  // Data simulated from the tabulated device (its own device-to-device variation and noise)
  // has the measured mean sweeps.
  rng g2(14);
  const auto again = devices::simulate_pulse_response(f.table, 30, 200, g2, {.g_min_uS = 10, .g_max_uS = 30});
  const auto map2 = devices::simulation_map(f.table);
  for (const auto dir : {devices::pulse_direction::up, devices::pulse_direction::down}) {
    const auto a = mean_sweep(data, dir, map), b = mean_sweep(again, dir, map2);
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (std::size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(a[k] - b[k]));
    INFO("direction " << int(dir) << ": largest gap of the mean sweeps " << worst);
    CHECK(worst < 0.03 * (truth.w_max - truth.w_min));
  }
}

TEST_CASE("a crossbar of tabulated devices programs pulses by the table's steps", "[measured_device]") {
  const devices::soft_bounds truth{.dw_min = 0.01f, .dw_min_std = 0.2f};
  rng g(21);
  const auto f = devices::fit_pulse_response(devices::simulate_pulse_response(truth, 10, 150, g),
                                             {.map = devices::simulation_map(truth)});
  using xbar = crossbar<devices::measured>;
  // Exact check: no variation, no noise, deterministic pulse counts.
  xbar::params p = xbar::params::ideal();
  p.device = f.table;
  p.device.dw_min_dtod = p.device.dw_min_std = p.device.up_down_dtod = 0;
  p.device.w_min_dtod = p.device.w_max_dtod = 0;
  p.update = update_mode::deterministic_pulses;
  xbar::tile<dynamic, dynamic> t(p);
  t.resize(2, 1);
  std::fill(t.weight_data(), t.weight_data() + 2, 0.0f);
  t.prepare(g);
  struct dense_update {
    std::vector<float> w, b{0.0f};
    const float* weight_data() const { return w.data(); }
    const float* bias_data() const { return b.data(); }
  };
  const float dw = p.device.dw_min;
  t.program(dense_update{{-3 * dw, 2 * dw}}, g);  // 3 up pulses on the first, 2 down on the second
  const auto c = p.device.nominal_cell();
  float w0 = 0, w1 = 0, aux = 0;
  for (int k = 0; k < 3; ++k) w0 += p.device.step(w0, aux, true, c);
  for (int k = 0; k < 2; ++k) w1 -= p.device.step(w1, aux, false, c);
  CHECK(t.weight_data()[0] == Approx(w0).epsilon(1e-6));
  CHECK(t.weight_data()[1] == Approx(w1).epsilon(1e-6));
  CHECK(t.weight_data()[0] == Approx(3 * c.dw_up).epsilon(0.1));  // about the table's step at 0
  CHECK(t.weight_data()[1] == Approx(-2 * c.dw_down).epsilon(0.1));

  // With the fitted variation and stochastic pulse trains: the mean weight moves by about the
  // requested update.
  xbar::params q;
  q.device = f.table;
  xbar::tile<dynamic, dynamic> u(q);
  u.resize(64, 8);
  std::fill(u.weight_data(), u.weight_data() + 64 * 8, 0.0f);
  u.prepare(g);
  struct factored {
    xt::xtensor<float, 2> input, delta, weight;
    xt::xtensor<float, 1> bias = xt::zeros<float>({8});
    float factor_scale = 0.05f;
    bool factored = true;
    const float* weight_data() const { return weight.data(); }
    const float* bias_data() const { return bias.data(); }
  } up{xt::ones<float>({1, 64}), -xt::ones<float>({1, 8}), xt::zeros<float>({8, 64})};
  for (int k = 0; k < 4; ++k) u.program(up, g);  // ΔW = −0.05 each: W rises by about 0.2
  double m = 0;
  for (std::size_t e = 0; e < 64 * 8; ++e) m += u.weight_data()[e];
  m /= 64 * 8;
  INFO("mean weight after 4 updates of +0.05: " << m);
  CHECK(m == Approx(0.2).epsilon(0.25));
}

TEST_CASE("pulse-response CSV: save then load gives the same data", "[measured_device]") {
  temp_dir dir;
  rng g(2);
  const devices::soft_bounds d{.dw_min = 0.02f};
  for (std::size_t cycles : {std::size_t{1}, std::size_t{3}}) {
    const auto r = devices::simulate_pulse_response(d, 4, 30, g, {.cycles = cycles});
    const std::string path = dir / ("r" + std::to_string(cycles) + ".csv");
    devices::save_pulse_response(r, path, "generated by the measured-device test\nsoft bounds, defaults");
    const auto back = devices::load_pulse_response(path);
    CHECK(back == r);
    CHECK(back.source == path);
    CHECK(back.devices() == std::vector<std::string>{"0", "1", "2", "3"});
    CHECK(back.sweeps[1].line > back.sweeps[0].line);
    std::ifstream f(path);
    std::string first, second, third;
    std::getline(f, first), std::getline(f, second), std::getline(f, third);
    CHECK(first == "# generated by the measured-device test");
    CHECK(third == (cycles > 1 ? "device,cycle,direction,pulse,conductance_uS" : "device,direction,pulse,conductance_uS"));
  }
  // Exact doubles survive (shortest round-trip form), interleaved rows and CRLF are accepted.
  devices::pulse_response r;
  r.sweeps.push_back({"x", 0, devices::pulse_direction::up, {0.1, 1.0 / 3.0, 2.5e-7}, 0});
  r.sweeps.push_back({"x", 0, devices::pulse_direction::down, {7.0, 6.0, 5.0}, 0});
  devices::save_pulse_response(r, dir / "exact.csv");
  CHECK(devices::load_pulse_response(dir / "exact.csv") == r);
  const auto mixed = write_text(dir, "mixed.csv",
                                "\xEF\xBB\xBF# comment\r\ndevice, direction, pulse, conductance_uS\r\nx,up,0,0.1\r\n"
                                "x,down,0,7\r\n\r\nx,up,1,0.3333333333333333\r\nx,down,1,6\r\nx,up,2,2.5e-7\r\nx,down,2,5\r\n");
  auto m = devices::load_pulse_response(mixed);
  CHECK(m == r);
}

TEST_CASE("bad pulse-response files give an error naming the file, the line and the problem", "[measured_device]") {
  temp_dir dir;
  auto load = [&](const std::string& name, const std::string& text) {
    return devices::load_pulse_response(write_text(dir, name, text));
  };
  const std::string missing = dir / "missing.csv";
  CHECK_THROWS_WITH(devices::load_pulse_response(missing), Contains("missing.csv") && Contains("no such file"));
  CHECK_THROWS_WITH(devices::load_pulse_response(dir.path.string()), Contains("is a directory"));
  CHECK_THROWS_WITH(load("empty.csv", ""), Contains("empty.csv") && Contains("empty"));
  CHECK_THROWS_WITH(load("comments.csv", "# nothing\n\n"), Contains("no header"));
  CHECK_THROWS_WITH(load("foreign.csv", "epoch,loss,accuracy\n1,0.5,0.8\n"),
                    Contains("foreign.csv") && Contains("line 1") && Contains("not a pulse-response file"));
  CHECK_THROWS_WITH(load("binary.csv", std::string("\x1f\x8b\x08\0\0\x01", 6) + "\n"),
                    Contains("not a pulse-response file: the header is '???"));
  CHECK_THROWS_WITH(load("truncated.csv", csv("a,up,0,10\na,up,1\n")),
                    Contains("truncated.csv") && Contains("line 3") && Contains("expected 4 fields"));
  CHECK_THROWS_WITH(load("extra.csv", csv("a,up,0,10,3\n")), Contains("line 2") && Contains("found 5"));
  CHECK_THROWS_WITH(load("text.csv", csv("a,up,0,10\na,up,1,ten\n")),
                    Contains("line 3") && Contains("'ten' is not a number"));
  CHECK_THROWS_WITH(load("suffix.csv", csv("a,up,0,10uS\n")), Contains("line 2") && Contains("not a number"));
  CHECK_THROWS_WITH(load("nan.csv", csv("a,up,0,10\na,up,1,nan\n")), Contains("line 3") && Contains("not finite"));
  CHECK_THROWS_WITH(load("inf.csv", csv("a,up,0,inf\n")), Contains("line 2") && Contains("not finite"));
  CHECK_THROWS_WITH(load("huge.csv", csv("a,up,0,1e999\n")), Contains("line 2") && Contains("not finite"));
  CHECK_THROWS_WITH(load("negative.csv", csv("a,up,0,10\na,up,1,-0.5\n")), Contains("line 3") && Contains("negative"));
  CHECK_THROWS_WITH(load("direction.csv", csv("a,sideways,0,10\n")),
                    Contains("line 2") && Contains("direction must be 'up' or 'down'"));
  CHECK_THROWS_WITH(load("pulse.csv", csv("a,up,0,10\na,up,1.5,11\n")),
                    Contains("line 3") && Contains("not a non-negative integer"));
  CHECK_THROWS_WITH(load("minus.csv", csv("a,up,-1,10\n")), Contains("line 2") && Contains("not a non-negative integer"));
  CHECK_THROWS_WITH(load("gap.csv", csv("a,up,0,10\na,up,1,10.5\na,up,3,11\n")),
                    Contains("line 4") && Contains("pulse 3 follows pulse 1") && Contains("consecutive"));
  CHECK_THROWS_WITH(load("repeat.csv", csv("a,up,0,10\na,up,1,10.5\na,up,1,10.6\n")),
                    Contains("line 4") && Contains("consecutive"));
  CHECK_THROWS_WITH(load("start.csv", csv("a,up,1,10\n")), Contains("line 2") && Contains("starts at pulse 0"));
  CHECK_THROWS_WITH(load("label.csv", csv(",up,0,10\n")), Contains("line 2") && Contains("empty device label"));
  CHECK_THROWS_WITH(load("cycle.csv", "device,cycle,direction,pulse,conductance_uS\na,x,up,0,10\n"),
                    Contains("line 2") && Contains("cycle 'x'"));
  CHECK_THROWS_WITH(load("one_direction.csv", csv("a,up,0,10\na,up,1,10.5\na,up,2,10.9\n" + good_down +
                                                 "b,up,0,10\nb,up,1,10.4\nb,up,2,10.7\n")),
                    Contains("line 8") && Contains("device 'b' has only 'up' sweeps"));
  CHECK_THROWS_WITH(load("short.csv", csv("a,up,0,10\na,up,1,10.5\n" + good_down)),
                    Contains("line 2") && Contains("has 2 readings") && Contains("at least 3"));
  CHECK_THROWS_WITH(load("header_only.csv", csv("")), Contains("no data rows"));
  CHECK_NOTHROW(load("fine.csv", csv("a,up,0,10\na,up,1,10.5\na,up,2,10.9\n" + good_down)));
  // The fitter and the writer check data built in memory the same way.
  devices::pulse_response flat;
  flat.sweeps.push_back({"a", 0, devices::pulse_direction::up, {10, 10, 10}, 0});
  flat.sweeps.push_back({"a", 0, devices::pulse_direction::down, {10, 10, 10}, 0});
  CHECK_THROWS_WITH(devices::fit_pulse_response(flat), Contains("does not change"));
  devices::pulse_response one = flat;
  one.sweeps.pop_back();
  CHECK_THROWS_WITH(devices::fit_pulse_response(one), Contains("only 'up' sweeps"));
  CHECK_THROWS_WITH(devices::save_pulse_response(one, dir / "one.csv"), Contains("only 'up' sweeps"));
  CHECK_THROWS_WITH(devices::fit_pulse_response(flat, {.table_points = 1}), Contains("table_points"));
}

TEST_CASE("the example device data load and fit to their presets", "[measured_device]") {
  const char* src = std::getenv("PNN_SOURCE_DIR");
  if (src == nullptr) {
    WARN("PNN_SOURCE_DIR not set: example data not checked");
    return;
  }
  // examples/data/devices/README.md: each preset's nominal [w_min, w_max] maps onto [10, 30] µS;
  // four devices each, so the device-to-device spread (dw_min_dtod 0.1 to 0.3) moves the sample
  // mean step by up to ~30 %.
  struct expect {
    const char* file;
    double w_min, w_max, dw_min;
  };
  for (const expect e : {expect{"reram_sb.csv", -0.75, 1.25, 0.002}, expect{"ecram.csv", -0.8276, 1.1724, 0.002},
                         expect{"capacitor.csv", -1.0, 1.0, 0.005}}) {
    const std::string path = std::string(src) + "/examples/data/devices/" + e.file;
    REQUIRE(fs::file_size(path) <= 50 * 1024);
    const auto r = devices::load_pulse_response(path);
    CHECK(r.devices().size() == 4);
    const auto f = devices::fit_pulse_response(r, {.map = devices::conductance_map{10, 30, e.w_min, e.w_max}});
    INFO(e.file << ": dw_min " << f.dw_min << ", tabulated " << f.table.dw_min << "; curve R2 soft "
                << f.soft_fit.quality.curve_r2 << " pow " << f.pow_fit.quality.curve_r2 << " table "
                << f.table_fit.quality.curve_r2);
    CHECK(f.dw_min == Approx(e.dw_min).epsilon(0.35));
    CHECK(f.dw_min_std == Approx(0.3).epsilon(0.1));
    CHECK(std::max(f.soft_fit.quality.curve_r2, f.pow_fit.quality.curve_r2) > 0.99);
    CHECK(f.table_fit.quality.curve_r2 > 0.99);
    CHECK_NOTHROW(f.table.validate());
    CHECK_NOTHROW(devices::fit_pulse_response(r));  // the measured-range map works as well
  }
}

}  // namespace tests_measured_device
