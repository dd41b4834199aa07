// SPDX-License-Identifier: MIT
// pnn-bench runners for the energy-based rules: `equilibrium_propagation` (Scellier & Bengio
// 2017; the prototypical setting of Laborieux et al. 2021: β 0.2, T 30, K 10, layer rates
// (0.2, 0.1) with cosine decay) and `coupled_learning` (Stern et al. 2021) as the contrastive
// rule on the same layered hard-sigmoid network. Both are scored at the free equilibrium, which
// is how an energy network computes its output.
#include "drive.hpp"

namespace pnn_bench {
// A namespace per file, not an anonymous one: the rules files are compiled in batches.
namespace rules_energy {

using hs = pnn::act::hard_sigmoid;

pnn::learn::ep_estimator estimator_of(const std::string& s) {
  if (s == "one_sided") return pnn::learn::ep_estimator::one_sided;
  if (s == "random_sign") return pnn::learn::ep_estimator::random_sign;
  if (s == "holomorphic") return pnn::learn::ep_estimator::holomorphic;
  return pnn::learn::ep_estimator::centered;
}

pnn::optim::sgd layer_rates(const config& cfg, const pnn::data::split& d) {
  const std::size_t steps = cfg.epochs * ((d.train.size() + cfg.batch - 1) / cfg.batch);
  std::vector<float> rates{0.2f, 0.1f};
  if (cfg.hidden.size() == 2) rates = {0.4f, 0.2f, 0.1f};
  // The convolutional energy network: a kernel's estimate sums over every position it is read
  // at (576 and 64 per image), so its rates are lower than a dense layer's. Chosen by `--tune`
  // (validation split; 2 epochs of 10,000 images): scale 2 of (0.02, 0.05, 0.1) beat 1 and 0.5.
  if (cfg.model == "convnet-ep") rates = {0.04f, 0.1f, 0.2f};
  // The per-layer rates replace the global one, so `--tune`'s scale must reach them.
  for (float& r : rates) r *= float(cfg.lr_scale);
  return {.learning_rate = 0.1f * float(cfg.lr_scale),
          .lr_schedule = {.type = pnn::optim::schedule::kind::cosine, .total_steps = steps},
          .layer_learning_rates = rates};
}

// The prototypical setting (β 0.2, T 30, K 10, synchronous) or its alternating equivalent
// (T 15, K 5), with the command line's β, neuron noise and averaging.
template <class Opt = pnn::optim::sgd>
typename pnn::learn::equilibrium_propagation<Opt>::params ep_params(const config& cfg, Opt optimizer) {
  // The holomorphic estimator's complex relaxation is synchronous and measures final states.
  const bool holomorphic = cfg.ep_estimator == "holomorphic";
  const bool alternating = cfg.ep_update == "alternating" && !holomorphic;
  return {.optimizer = std::move(optimizer),
          .beta = cfg.ep_beta,
          .free_steps = alternating ? 15U : 30U,
          .nudged_steps = alternating ? 5U : 10U,
          .estimator = estimator_of(cfg.ep_estimator),
          .update_order = alternating ? pnn::learn::ep_update_order::alternating : pnn::learn::ep_update_order::synchronous,
          .state_noise = cfg.ep_noise,
          .average_steps = holomorphic ? 1U : cfg.ep_average};
}

// Accuracy at the free equilibrium of the relaxation the rule trains with (its steps, order,
// neuron noise and averaging): how the energy network computes its output.
struct equilibrium_accuracy {
  pnn::learn::equilibrium_propagation<>::params p;
  std::uint64_t seed;
  pnn::rng_engine engine = pnn::rng_engine::philox;
  template <class Net>
  double operator()(const Net& net, const pnn::data::dataset& test, std::size_t epoch) const {
    auto q = p;
    if (q.estimator == pnn::learn::ep_estimator::holomorphic) q.estimator = pnn::learn::ep_estimator::centered;
    pnn::learn::equilibrium_propagation<> free_phase(q);
    pnn::rng g(seed, 0xe9 + epoch, engine);
    return free_phase.evaluate(net, pnn::loss::mse{}, test, g).accuracy;
  }
};

result run_ep(const config& cfg, const std::string& substrate, const pnn::data::split& d,
              const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "equilibrium_propagation";
  r.substrate = substrate;
  r.sweep = sweep;
  return with_network<hs, hs, with_convnet_ep | without_quantum>(cfg, substrate, d, sweep, r.noise, [&](auto& net) {
    pnn::init::uniform_fan_in(net, pnn::seed{cfg.seed, cfg.engine});
    using net_t = std::remove_cvref_t<decltype(net)>;
    const auto p = ep_params(cfg, on_substrate<net_t>(cfg, layer_rates(cfg, d)));
    pnn::learn::equilibrium_propagation<on_substrate_t<net_t, pnn::optim::sgd>> rule(p);
    r.settings = {{"estimator", cfg.ep_estimator},
                  {"beta", p.beta},
                  {"free_steps", p.free_steps},
                  {"nudged_steps", p.nudged_steps},
                  {"dynamics", "fixed_point"},
                  {"update_order", p.update_order == pnn::learn::ep_update_order::alternating ? "alternating"
                                                                                               : "synchronous"},
                  {"state_noise", p.state_noise},
                  {"average_steps", p.average_steps},
                  {"optimizer", "sgd"},
                  {"layer_learning_rates", layer_rates(cfg, d).layer_learning_rates},
                  {"lr_schedule", "cosine"},
                  {"activation", "hard_sigmoid"},
                  {"loss", "mse"},
                  {"init", "uniform_fan_in"}};
    return train_and_measure(cfg, d, net, rule, r, false, pnn::loss::mse{},
                             equilibrium_accuracy{ep_params(cfg, layer_rates(cfg, d)), cfg.seed, cfg.engine});
  });
}

result run_coupled(const config& cfg, const std::string& substrate, const pnn::data::split& d,
                   const std::optional<sweep_point>& sweep) {
  result r;
  r.rule = "coupled_learning";
  r.substrate = substrate;
  r.sweep = sweep;
  return with_network<hs, hs, with_convnet_ep | without_quantum>(cfg, substrate, d, sweep, r.noise, [&](auto& net) {
    pnn::init::uniform_fan_in(net, pnn::seed{cfg.seed, cfg.engine});
    const bool alternating = cfg.ep_update == "alternating";
    using net_t = std::remove_cvref_t<decltype(net)>;
    pnn::learn::coupled_learning<on_substrate_t<net_t, pnn::optim::sgd>> rule(
        {.optimizer = on_substrate<net_t>(cfg, layer_rates(cfg, d)),
         .eta = 0.2,
         .free_steps = alternating ? 15U : 30U,
         .nudged_steps = alternating ? 5U : 10U,
         .update_order = alternating ? pnn::learn::ep_update_order::alternating : pnn::learn::ep_update_order::synchronous,
         .average_steps = cfg.ep_average});
    r.settings = {{"eta", 0.2},
                  {"free_steps", rule.parameters().free_steps},
                  {"clamped_steps", rule.parameters().nudged_steps},
                  {"update_order", cfg.ep_update},
                  {"average_steps", cfg.ep_average},
                  {"optimizer", "sgd"},
                  {"layer_learning_rates", layer_rates(cfg, d).layer_learning_rates},
                  {"lr_schedule", "cosine"},
                  {"activation", "hard_sigmoid"},
                  {"loss", "mse"},
                  {"init", "uniform_fan_in"}};
    // Scored at the noiseless free equilibrium of the same relaxation.
    auto p = ep_params(cfg, layer_rates(cfg, d));
    p.state_noise = 0;
    p.average_steps = 1;
    return train_and_measure(cfg, d, net, rule, r, false, pnn::loss::mse{}, equilibrium_accuracy{p, cfg.seed, cfg.engine});
  });
}

const bool registered = add_rule("equilibrium_propagation", run_ep) && add_rule("coupled_learning", run_coupled);

}  // namespace rules_energy
}  // namespace pnn_bench
