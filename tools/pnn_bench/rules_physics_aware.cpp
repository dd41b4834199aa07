// SPDX-License-Identifier: MIT
// pnn-bench runner for `physics_aware`: physics-aware training (Wright et al. 2022) on the
// substrate. As in practical PNN work it starts from the in-silico deployment (the digital twin
// trained with backprop for the same number of epochs, programmed onto the substrate) and then
// trains `epochs` epochs with the forward pass on the substrate and the backward pass through
// the digital twin at the measured activations. Reported time covers the PAT epochs only.
#include "drive.hpp"

namespace pnn_bench {
namespace {

constexpr float twin_lr = 0.02f, pat_lr = 0.005f, momentum = 0.9f;

result run_physics_aware(const config& cfg, const std::string& substrate, const pnn::data::split& d,
                         const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "physics_aware";
  r.substrate = substrate;
  r.sweep = sweep;
  return with_network<pnn::act::tanh, pnn::act::identity, with_lenet5>(cfg, substrate, d, sweep, r.noise, [&](auto& physical) {
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
    pnn::learn::physics_aware<on_substrate_t<physical_t, pnn::optim::momentum>> pat{
        {.optimizer = on_substrate<physical_t>(cfg, pnn::optim::momentum{
             .learning_rate = pat_lr * float(cfg.lr_scale),
             .momentum = momentum,
             .lr_schedule = {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}})}};
    r.settings = optimizer_settings("momentum", pat_lr * cfg.lr_scale, momentum);
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
