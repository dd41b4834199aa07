// SPDX-License-Identifier: MIT
// pnn-bench runner for `physics_aware`: physics-aware training (Wright et al. 2022) on the
// substrate. As in practical PNN work it starts from the in-silico deployment (the digital twin
// trained with backprop for the same number of epochs, programmed onto the substrate) and then
// trains `epochs` epochs with the forward pass on the substrate and the backward pass through
// the digital twin at the measured activations. Reported time covers the PAT epochs only.
// Where the physics has no W (a diffractive stack, a scattering medium) the twin is the same
// physics without its imperfections (`make_twin`), holding the parameters as programmed.
#include "drive.hpp"

#include <pnn/learn/physics_aware.hpp>
#include <pnn/train/surrogate.hpp>

namespace pnn_bench {
// A namespace per file, not an anonymous one: the rules files are compiled in batches.
namespace rules_physics_aware {

constexpr float twin_lr = 0.02f, pat_lr = 0.005f, momentum = 0.9f;

result run_physics_aware(const config& cfg, const std::string& substrate, const pnn::data::split& d,
                         const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "physics_aware";
  r.substrate = substrate;
  r.sweep = sweep;
  return with_network<pnn::act::tanh, pnn::act::identity, with_lenet5 | black_box_rule | without_w>(cfg, substrate, d, sweep, r.noise, [&](auto& physical) {
    using physical_t = std::remove_cvref_t<decltype(physical)>;
    auto twin = make_twin(cfg, physical);
    using twin_t = decltype(twin);
    const twin_calibration calibration = calibrate_twin(cfg, physical, twin);  // before the twin trains
    const std::size_t steps = cfg.epochs * ((d.train.size() + cfg.batch - 1) / cfg.batch);
    pnn::learn::backprop<pnn::optim::momentum> bp{{.optimizer = {
        .learning_rate = twin_lr,
        .momentum = momentum,
        .lr_schedule = {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}}}};
    const pnn::simd::kernel_work twin0 = pnn::simd::kernel_work_on_this_thread();
    // Under --data-parallel the ranks share the twin's training as they share the physical
    // training: each estimates its part of every batch, and every rank ends with the same twin.
    pnn::train(twin, bp, pnn::loss::softmax_cross_entropy{}, d.train,
               {.epochs = cfg.epochs, .batch = cfg.batch, .seed = cfg.seed, .engine = cfg.engine,
                .progress = pnn::progress_mode::never, .data_parallel = cfg.data_parallel});
    r.pretraining_work = pnn::simd::kernel_work_on_this_thread() - twin0;  // charged to this run's energy
    r.pretraining_events = deploy_counted(cfg, twin, physical);  // its programming, charged too
    r.pretraining_events += calibration.events;                   // and the frames that measured it
    if (cfg.sum_over_ranks) {
      // Over several ranks: the twin's work is the sum of the ranks' parts, and every rank
      // programmed (and calibrated) its own replica.
      pnn::epoch_metrics shared{};
      shared.events = r.pretraining_events;
      shared.digital_work = r.pretraining_work;
      cfg.sum_over_ranks(shared);
      r.pretraining_events = shared.events;
      r.pretraining_work = shared.digital_work;
    }
    const auto opt = on_substrate<physical_t>(cfg, pnn::optim::momentum{
        .learning_rate = pat_lr * float(cfg.lr_scale),
        .momentum = momentum,
        .lr_schedule = {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}});
    r.settings = optimizer_settings("momentum", pat_lr * cfg.lr_scale, momentum);
    r.settings.update(calibration.settings);
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
    if constexpr (!pnn::deployable_tile<first_tile>) {
      // No W: the twin is the same physics without its imperfections, mirroring the programmed
      // parameters before every estimate; the estimate reaches them through its adjoint.
      if constexpr (requires { pnn::layer<0>(twin).tile.set_offset(0, 0.0, 0.0); }) {
        // A diffractive stack is measured after assembly: the twin takes each mask's lateral
        // offset as measured, to ±0.1 px (the in-silico design was made before, without them).
        // Without it the ideal model is too far from a stack misaligned by half a pixel for its
        // gradient to help (docs/rules.md, "Physics-aware training").
        pnn::rng gm(cfg.seed, 0x0ff5e7, cfg.engine);
        const auto& measured = pnn::layer<0>(physical).tile;
        for (std::size_t k = 0; k < measured.parameters().masks; ++k) {
          const auto o = measured.offset(k);
          pnn::layer<0>(twin).tile.set_offset(k, o[0] + 0.1 * (2 * gm.uniform_double() - 1),
                                              o[1] + 0.1 * (2 * gm.uniform_double() - 1));
        }
        r.settings["twin_calibration"] = "each mask's lateral offset as measured after assembly, to +-0.1 px";
      }
      using twin_rule = pnn::learn::network_twin<twin_t>;
      pnn::learn::physics_aware<on_substrate_t<physical_t, pnn::optim::momentum>, twin_rule> pat{
          twin_rule{std::move(twin)}, opt};
      r.settings["init"] = "in_silico deployment (twin: backprop, momentum, lr 0.02, same epochs)";
      r.settings["twin_epochs"] = cfg.epochs;
      r.settings["twin"] = "the same physics without its imperfections (ideal masks and alignment, no noise; a "
                           "medium's matrix as measured), holding the parameters as programmed";
      r.settings["twin_cost"] = "the twin simulates the same physics; its simulated light is not charged and the "
                                "simulation's own arithmetic is not counted";
      r.settings["jacobian_point"] = "measured_inputs";
      result out = train_and_measure(cfg, d, physical, pat, r, true);
      out.twin_epochs = cfg.epochs;
      return out;
    } else {
      pnn::learn::physics_aware<on_substrate_t<physical_t, pnn::optim::momentum>> pat{{.optimizer = opt}};
      r.settings["init"] = "in_silico deployment (twin: backprop, momentum, lr 0.02, same epochs)";
      r.settings["twin_epochs"] = cfg.epochs;  // their digital work is in this run's energy
      r.settings["twin"] = "ideal digital network of the same shape, mirroring the nominal (model) weights";
      r.settings["jacobian_point"] = "measured_inputs";
      result out = train_and_measure(cfg, d, physical, pat, r, true);
      out.twin_epochs = cfg.epochs;
      return out;
    }
  });
}

const bool registered = add_rule("physics_aware", run_physics_aware);

}  // namespace rules_physics_aware
}  // namespace pnn_bench
