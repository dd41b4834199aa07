// SPDX-License-Identifier: MIT
// pnn-bench runners for `backprop` (run on the substrate itself) and `in_silico` (train the
// digital twin, program it onto the substrate, evaluate there).
#include "drive.hpp"

namespace pnn_bench {
// A namespace per file, not an anonymous one: the rules files are compiled in batches.
namespace rules_backprop {

constexpr float backprop_lr = 0.02f;
constexpr float backprop_momentum = 0.9f;

template <class Net>
auto make_backprop(const config& cfg, const pnn::data::split& d) {
  const std::size_t steps = cfg.epochs * ((d.train.size() + cfg.batch - 1) / cfg.batch);
  using opt = on_substrate_t<Net, pnn::optim::momentum>;
  return pnn::learn::backprop<opt>{{.optimizer = on_substrate<Net>(cfg, pnn::optim::momentum{
      .learning_rate = backprop_lr * float(cfg.lr_scale),
      .momentum = backprop_momentum,
      .lr_schedule = {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}})}};
}

result run_backprop(const config& cfg, const std::string& substrate, const pnn::data::split& d,
                    const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "backprop";
  r.substrate = substrate;
  r.sweep = sweep;
  return with_network<pnn::act::tanh, pnn::act::identity, with_lenet5 | with_convnet_ep | without_w>(cfg, substrate, d, sweep, r.noise, [&](auto& net) {
    using net_t = std::remove_cvref_t<decltype(net)>;
    auto rule = make_backprop<net_t>(cfg, d);
    r.settings = optimizer_settings("momentum", backprop_lr * cfg.lr_scale, backprop_momentum);
    r.settings["lr_schedule"] = "cosine";
    r.settings["activation"] = "tanh";
    return train_and_measure(cfg, d, net, rule, r, false);
  });
}

result run_in_silico(const config& cfg, const std::string& substrate, const pnn::data::split& d,
                     const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "in_silico";
  r.substrate = substrate;
  r.sweep = sweep;
  return with_network<pnn::act::tanh, pnn::act::identity, with_lenet5 | black_box_rule | without_w>(cfg, substrate, d, sweep, r.noise, [&](auto& physical) {
    // The twin: the same architecture on the ideal digital substrate, or the same physics
    // without its imperfections where there is no W to deploy (`make_twin`).
    auto twin = make_twin(cfg, physical);
    using twin_t = decltype(twin);
    // A twin of the same physics (a diffractive stack, a scattering medium) is a simulation on
    // a computer: its light is not charged. Its simulation's arithmetic is not counted either
    // (the optics kernels do not report work), which the settings say.
    constexpr bool simulated_twin =
        !std::is_same_v<twin_t, pnn::rebind_t<std::remove_cvref_t<decltype(physical)>, pnn::physics::digital>>;
    r.simulated_physics = simulated_twin;
    {
      auto rule = make_backprop<twin_t>(cfg, d);
      r.settings = optimizer_settings("momentum", backprop_lr * cfg.lr_scale, backprop_momentum);
      r.settings["workflow"] = "train digital twin with backprop, program onto the substrate, evaluate there";
      const twin_calibration calibration = calibrate_twin(cfg, physical, twin);
      r.settings.update(calibration.settings);
      if (simulated_twin)
        r.settings["twin_cost"] = "the twin simulates the same physics; its simulated light is not charged and the "
                                  "simulation's own arithmetic is not counted";
      result t = train_and_measure(cfg, d, twin, rule, r, false);
      // The physical system sees no training sample: all epochs are the twin's, and the
      // deployment's programming is charged to the training energy.
      t.physical_epochs = 0;
      t.twin_epochs = t.epochs;
      pnn::physical_events programmed = deploy_counted(cfg, twin, physical);
      programmed += calibration.events;  // the camera frames that measured the twin's medium
      const pnn::energy_estimate dep = pnn::estimate_energy(programmed, {}, cfg.energy);
      auto& en = t.energy;
      en.deployment_joules = dep.total();
      en.train.programming += dep.programming;
      en.train.array += dep.array;
      en.train.converters += dep.converters;
      en.train.latency += dep.latency;
      const double samples = double(d.train.size() * t.epochs);
      en.train_joules_per_sample = en.train.total() / samples;
      en.train_latency_per_sample = en.train.latency / samples;
      const auto e = pnn::evaluate(physical, pnn::loss::softmax_cross_entropy{}, d.test);
      t.test_accuracy = e.accuracy;
      t.settings["twin_test_accuracy"] = t.history.back()["test_accuracy"];
      t.history.back()["test_accuracy"] = e.accuracy;
      en.inference_joules_per_sample = inference_energy(cfg, d, physical, pnn::loss::softmax_cross_entropy{});
      feedforward_accuracy ff;
      measure_drift(cfg, d, physical, t, pnn::loss::softmax_cross_entropy{}, ff, t.epochs);
      return t;
    }
  });
}

const bool registered = add_rule("backprop", run_backprop) && add_rule("in_silico", run_in_silico);

}  // namespace rules_backprop
}  // namespace pnn_bench
