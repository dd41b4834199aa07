// SPDX-License-Identifier: MIT
// A device model from measured pulse-response data: load LTP/LTD sweeps (CSV, format in
// include/pnn/physics/measured_device.hpp), fit them, print the parameters and how well soft
// bounds, a power law and the tabulated response describe the data, then train a one-layer
// crossbar of the tabulated device (`physics::crossbar<devices::measured>`) on Gaussian blobs.
// Without a calibration the fit maps the measured conductance range onto [-0.6, 0.6]; give the
// conductances of w_min and w_max to fit in the units of a known model (the example data map
// their preset's nominal bounds onto [10, 30] uS, examples/data/devices/README.md).
// Claim, checked (exit status 1 when it fails): the better fit has curve R2 >= 0.99, and the
// crossbar of the tabulated device reaches 90 % test accuracy.
// Usage: measured_device [data = examples/data/devices/reram_sb.csv] [w_min w_max at 10, 30 uS]
#include <pnn/pnn.hpp>
#include <pnn/physics/measured_device.hpp>

#include <cstdio>
#include <string>

using namespace pnn;
namespace dev = physics::devices;

using xbar = physics::crossbar<dev::measured>;
using net_t = network<dense<8, 4, xbar, noise::none, act::identity>>;

namespace {
void print(const char* name, const dev::model_fit& m) {
  std::printf("%-12s dw_min %.5f  up_down %+.3f  bounds [%+.3f, %+.3f]  dw_min_std %.3f  dtod: dw %.3f, bounds "
              "%.3f/%.3f  R2 step %.3f curve %.4f  (rms %.4f)\n",
              name, m.dw_min, m.up_down, m.w_min, m.w_max, m.dw_min_std, m.dw_min_dtod, m.w_min_dtod, m.w_max_dtod,
              m.quality.step_r2, m.quality.curve_r2, m.quality.curve_rms);
}
}  // namespace

int main(int argc, char** argv) try {
  const std::string path = argc > 1 ? argv[1] : "examples/data/devices/reram_sb.csv";
  dev::fit_options opt;
  if (argc > 3) opt.map = dev::conductance_map{10.0, 30.0, std::stod(argv[2]), std::stod(argv[3])};
  const dev::pulse_response data = dev::load_pulse_response(path);
  const dev::device_fit fit = dev::fit_pulse_response(data, opt);
  std::printf("%s: %zu devices, %zu sweeps, %zu steps fitted (%zu ended on a hard bound); %.3f..%.3f uS -> %.3f..%.3f\n",
              path.c_str(), fit.devices, fit.sweeps, fit.steps, fit.clipped_steps, fit.map.g_min, fit.map.g_max,
              fit.map.w_min, fit.map.w_max);
  print("soft bounds", fit.soft_fit);
  print("pow step", fit.pow_fit);
  std::printf("%-12s gamma_up %.3f  gamma_down %.3f\n", "", fit.gamma_up, fit.gamma_down);
  print("tabulated", fit.table_fit);
  std::printf("better closed form (BIC): %s\n", fit.best == dev::fit_model::soft ? "soft bounds" : "pow step");
  for (const auto& w : fit.warnings) std::printf("warning: %s\n", w.c_str());
  std::printf("tabulated up step (w, relative):");
  for (std::size_t k = 0; k < fit.table.law.up_table.size(); k += 4)
    std::printf(" (%.2f, %.2f)", fit.table.law.up_table[k].w, fit.table.law.up_table[k].step);
  std::printf("\n");

  // One crossbar layer whose devices follow the measured response, trained with backprop.
  xbar::params p;
  p.device = fit.table;
  p.update = physics::update_mode::deterministic_pulses;  // mixed precision: whole steps only
  net_t net(seed{3}, p);
  rng g(11);
  const data::dataset train_set = data::gaussian_blobs(2000, 8, 4, g, 0.8f);
  const data::dataset test_set = data::gaussian_blobs(1000, 8, 4, g, 0.8f);
  learn::backprop<optim::mixed_precision<optim::sgd>> rule{{.optimizer = {.inner = {.learning_rate = 0.05f}}}};
  const auto hist = train(net, rule, loss::softmax_cross_entropy{}, train_set,
                          {.epochs = 5, .batch = 16, .seed = 1, .test = &test_set, .progress = progress_mode::never});
  for (const auto& m : hist)
    std::printf("epoch %zu  loss %.3f  test accuracy %.1f %%\n", m.epoch, m.train_loss, 100 * m.test_accuracy);

  const double r2 = std::max(fit.soft_fit.quality.curve_r2, fit.pow_fit.quality.curve_r2);
  const bool holds = r2 >= 0.99 && hist.back().test_accuracy >= 0.9;
  std::printf("claim: curve R2 of the better fit %.4f >= 0.99 and crossbar test accuracy %.1f %% >= 90 %%: %s\n", r2,
              100 * hist.back().test_accuracy, holds ? "holds" : "FAILS");
  return holds ? 0 : 1;
} catch (const pnn::error& e) {
  std::fprintf(stderr, "measured_device: %s\n", e.what());
  return 1;
}
