// SPDX-License-Identifier: MIT
// pnn-bench runners for the feedback-alignment family: `feedback_alignment` (Lillicrap et al.
// 2016; `--fa-feedback sign` selects sign symmetry) and `direct_feedback_alignment` (Nøkland
// 2016). The learning rate (momentum 0.9, η 0.05, cosine decay) was chosen on a validation split
// of the training set (examples/fa_alignment.cpp). `--fa-optimizer adam` trains feedback
// alignment with Adam (η 10⁻³, the same decay) instead: its per-weight step size undoes the
// layer-to-layer mismatch in the scale of the estimates that random feedback leaves (on LeNet-5
// with Gaussian feedback, 86.4 → 87.1 % test accuracy; README, "LeNet-5: convolutions on the
// substrate"). `--fa-distribution normal` draws the random feedback of both rules from a
// Gaussian instead of a uniform law of the same variance.
#include "drive.hpp"

namespace pnn_bench {
// A namespace per file, not an anonymous one: the rules files are compiled in batches.
namespace rules_feedback {

constexpr float lr = 0.05f, mu = 0.9f;

constexpr float adam_lr = 1e-3f;

pnn::optim::schedule decay(const config& cfg, const pnn::data::split& d) {
  const std::size_t steps = cfg.epochs * ((d.train.size() + cfg.batch - 1) / cfg.batch);
  return {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps, .min_factor = 0.05};
}

pnn::optim::momentum recipe(const config& cfg, const pnn::data::split& d) {
  return {.learning_rate = lr * float(cfg.lr_scale), .momentum = mu, .lr_schedule = decay(cfg, d)};
}

pnn::optim::adam adam_recipe(const config& cfg, const pnn::data::split& d) {
  return {.learning_rate = adam_lr * float(cfg.lr_scale), .lr_schedule = decay(cfg, d)};
}

pnn::learn::feedback_distribution distribution(const config& cfg) {
  return cfg.fa_distribution == "normal" ? pnn::learn::feedback_distribution::normal
                                         : pnn::learn::feedback_distribution::uniform;
}

nlohmann::json settings(const config& cfg, const char* feedback, bool adam = false) {
  auto j = adam ? optimizer_settings("adam", adam_lr) : optimizer_settings("momentum", lr, mu);
  j["lr_schedule"] = "cosine";
  j["feedback"] = feedback;
  if (std::string(feedback) != "sign_symmetry") j["feedback_distribution"] = cfg.fa_distribution;
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
  const bool sign = cfg.fa_feedback == "sign", adam = cfg.fa_optimizer == "adam";
  const auto feedback = sign ? pnn::learn::feedback_kind::sign_symmetry : pnn::learn::feedback_kind::random;
  return with_network<pnn::act::tanh, pnn::act::identity, with_lenet5>(cfg, substrate, d, sweep, r.noise, [&](auto& net) {
    using net_t = std::remove_cvref_t<decltype(net)>;
    r.settings = settings(cfg, sign ? "sign_symmetry" : "random", adam);
    auto train_with = [&]<class Opt>(const Opt& opt) {
      pnn::learn::feedback_alignment<on_substrate_t<net_t, Opt>> rule{{.optimizer = on_substrate<net_t>(cfg, opt),
                                                                       .feedback = feedback,
                                                                       .distribution = distribution(cfg),
                                                                       .feedback_seed = 1}};
      return train_and_measure(cfg, d, net, rule, r, true);
    };
    return adam ? train_with(adam_recipe(cfg, d)) : train_with(recipe(cfg, d));
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
        {.optimizer = on_substrate<net_t>(cfg, recipe(cfg, d)), .distribution = distribution(cfg),
         .feedback_seed = 1}};
    r.settings = settings(cfg, "random");
    return train_and_measure(cfg, d, net, rule, r, true);
  });
}

const bool registered = add_rule("feedback_alignment", run_fa) && add_rule("direct_feedback_alignment", run_dfa);

}  // namespace rules_feedback
}  // namespace pnn_bench
