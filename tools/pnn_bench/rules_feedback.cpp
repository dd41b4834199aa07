// SPDX-License-Identifier: MIT
// pnn-bench runners for the feedback-alignment family: `feedback_alignment` (Lillicrap et al.
// 2016; `--fa-feedback sign` selects sign symmetry) and `direct_feedback_alignment` (Nøkland
// 2016). The learning rate (momentum 0.9, η 0.05, cosine decay) was chosen on a validation split
// of the training set (examples/fa_alignment.cpp).
#include "drive.hpp"

namespace pnn_bench {
// A namespace per file, not an anonymous one: the rules files are compiled in batches.
namespace rules_feedback {

constexpr float lr = 0.05f, mu = 0.9f;

pnn::optim::momentum recipe(const config& cfg, const pnn::data::split& d) {
  const std::size_t steps = cfg.epochs * ((d.train.size() + cfg.batch - 1) / cfg.batch);
  return {.learning_rate = lr * float(cfg.lr_scale),
          .momentum = mu,
          .lr_schedule = {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05}};
}

nlohmann::json settings(const char* feedback) {
  auto j = optimizer_settings("momentum", lr, mu);
  j["lr_schedule"] = "cosine";
  j["feedback"] = feedback;
  j["feedback_distribution"] = "uniform";
  j["feedback_scale"] = "glorot";
  j["feedback_seed"] = 1;
  j["projection"] = "digital";
  return j;
}

result run_fa(const config& cfg, const std::string& substrate, const pnn::data::split& d,
              const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "feedback_alignment";
  r.substrate = substrate;
  r.sweep = sweep;
  const bool sign = cfg.fa_feedback == "sign";
  return with_network<pnn::act::tanh, pnn::act::identity, with_lenet5>(cfg, substrate, d, sweep, r.noise, [&](auto& net) {
    using net_t = std::remove_cvref_t<decltype(net)>;
    pnn::learn::feedback_alignment<on_substrate_t<net_t, pnn::optim::momentum>> rule{
        {.optimizer = on_substrate<net_t>(cfg, recipe(cfg, d)),
         .feedback = sign ? pnn::learn::feedback_kind::sign_symmetry : pnn::learn::feedback_kind::random,
         .feedback_seed = 1}};
    r.settings = settings(sign ? "sign_symmetry" : "random");
    return train_and_measure(cfg, d, net, rule, r, true);
  });
}

result run_dfa(const config& cfg, const std::string& substrate, const pnn::data::split& d,
               const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "direct_feedback_alignment";
  r.substrate = substrate;
  r.sweep = sweep;
  return with_network<pnn::act::tanh, pnn::act::identity, with_lenet5>(cfg, substrate, d, sweep, r.noise, [&](auto& net) {
    using net_t = std::remove_cvref_t<decltype(net)>;
    pnn::learn::direct_feedback_alignment<on_substrate_t<net_t, pnn::optim::momentum>> rule{
        {.optimizer = on_substrate<net_t>(cfg, recipe(cfg, d)), .feedback_seed = 1}};
    r.settings = settings("random");
    return train_and_measure(cfg, d, net, rule, r, true);
  });
}

const bool registered = add_rule("feedback_alignment", run_fa) && add_rule("direct_feedback_alignment", run_dfa);

}  // namespace rules_feedback
}  // namespace pnn_bench
