// SPDX-License-Identifier: MIT
// pnn-bench runner for `physics_aware`: physics-aware training (Wright et al. 2022) on the
// substrate. As in practical PNN work it starts from the in-silico deployment (the digital twin
// trained with backprop for the same number of epochs, programmed onto the substrate) and then
// trains `epochs` epochs with the forward pass on the substrate and the backward pass through
// the digital twin at the measured activations. Reported time covers the PAT epochs only.
#include "drive.hpp"

#include <pnn/learn/physics_aware.hpp>
#include <pnn/train/surrogate.hpp>

namespace pnn_bench {
namespace {

constexpr float twin_lr = 0.02f, pat_lr = 0.005f, momentum = 0.9f;

result run_physics_aware(const config& cfg, const std::string& substrate, const pnn::data::split& d,
                         const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "physics_aware";
  r.substrate = substrate;
  r.sweep = sweep;
  return with_network<pnn::act::tanh, pnn::act::identity, with_lenet5 | black_box_rule>(cfg, substrate, d, sweep, r.noise, [&](auto& physical) {
    using physical_t = std::remove_cvref_t<decltype(physical)>;
    using twin_t = pnn::rebind_t<physical_t, pnn::physics::digital>;
    const auto sizes = physical.sizes();
    twin_t twin;
    twin.initialize(sizes.data(), pnn::seed{cfg.seed, cfg.engine});
    const std::size_t steps = cfg.epochs * ((d.train.size() + cfg.batch - 1) / cfg.batch);
    pnn::learn::backprop<pnn::optim::momentum> bp{{.optimizer = {
        .learning_rate = twin_lr,
        .momentum = momentum,
        .lr_schedule = {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}}}};
    const pnn::simd::kernel_work twin0 = pnn::simd::kernel_work_on_this_thread();
    pnn::train(twin, bp, pnn::loss::softmax_cross_entropy{}, d.train,
               {.epochs = cfg.epochs, .batch = cfg.batch, .seed = cfg.seed, .engine = cfg.engine, .progress = pnn::progress_mode::never});
    r.pretraining_work = pnn::simd::kernel_work_on_this_thread() - twin0;  // charged to this run's energy
    r.pretraining_events = deploy_counted(cfg, twin, physical);  // its programming, charged too
    const auto opt = on_substrate<physical_t>(cfg, pnn::optim::momentum{
        .learning_rate = pat_lr * float(cfg.lr_scale),
        .momentum = momentum,
        .lr_schedule = {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}});
    r.settings = optimizer_settings("momentum", pat_lr * cfg.lr_scale, momentum);
    using first_tile = typename physical_t::template layer_type<0>::tile_type;
    if constexpr (requires(const first_tile& t) { t.model(); }) {
      // A black-box first layer (the spintronic substrate): a linear twin of oscillators is a
      // poor model, so the backward pass goes through a learned one — an MLP fitted to 4000
      // measurements of the layer at random drives u = W x + b — whose measurements and fit are
      // charged to the run.
      pnn::cost_counter fit_events;
      pnn::attach_cost_counter(physical, &fit_events);
      const pnn::simd::kernel_work fit0 = pnn::simd::kernel_work_on_this_thread();
      pnn::learn::surrogate_report rep;
      auto s = pnn::learn::fit_surrogate(pnn::layer<0>(physical),
                                         {.hidden1 = 64, .hidden2 = 64, .epochs = 40, .batch = 32,
                                          .learning_rate = 1e-2f, .seed = cfg.seed, .samples = 4000,
                                          .input = pnn::learn::surrogate_input::drive, .drive_sd = 1.5},
                                         &rep);
      const pnn::simd::kernel_work fit_work = pnn::simd::kernel_work_on_this_thread() - fit0;
      pnn::attach_cost_counter(physical, nullptr);
      r.pretraining_work.flops += fit_work.flops;
      r.pretraining_work.bytes += fit_work.bytes;
      r.pretraining_events += fit_events.totals();
      pnn::learn::surrogate_twin learned;
      learned.set(0, std::move(s));
      pnn::learn::physics_aware<on_substrate_t<physical_t, pnn::optim::momentum>, pnn::learn::surrogate_twin> pat{
          std::move(learned), opt};
      r.settings["init"] = "in_silico deployment (twin: backprop, momentum, lr 0.02, same epochs)";
      r.settings["twin_epochs"] = cfg.epochs;
      r.settings["twin"] =
          "learned surrogate of the black-box layer (MLP 64-64 on its drive W x + b, 4000 measurements), digital "
          "readout";
      r.settings["twin_validation_error"] = rep.validation_error;
      r.settings["jacobian_point"] = "measured_inputs";
      result out = train_and_measure(cfg, d, physical, pat, r, true);
      out.twin_epochs = cfg.epochs;
      return out;
    }
    pnn::learn::physics_aware<on_substrate_t<physical_t, pnn::optim::momentum>> pat{{.optimizer = opt}};
    r.settings["init"] = "in_silico deployment (twin: backprop, momentum, lr 0.02, same epochs)";
    r.settings["twin_epochs"] = cfg.epochs;  // their digital work is in this run's energy
    r.settings["twin"] = "ideal digital network of the same shape, mirroring the nominal (model) weights";
    r.settings["jacobian_point"] = "measured_inputs";
    result out = train_and_measure(cfg, d, physical, pat, r, true);
    out.twin_epochs = cfg.epochs;
    return out;
  });
}

const bool registered = add_rule("physics_aware", run_physics_aware);

}  // namespace
}  // namespace pnn_bench
