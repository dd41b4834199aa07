// SPDX-License-Identifier: MIT
// pnn-bench internals: the run configuration, one result row, the registry of rule runners, and
// the substrate/network dispatch every rule shares.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <pnn/pnn.hpp>
#include <pnn/physics/device_choice.hpp>
#include <pnn/physics/energy.hpp>

namespace pnn_bench {

/// One swept parameter value (`--sweep PARAM=v1,v2,...`).
struct sweep_point {
  std::string param;
  double value = 0;
};

/// A hardware condition the scorecard trains *and* tests under, on top of the substrate's own
/// (`--scorecard`): static multiplicative device variation `w (1 + σ ξ)`, or Gaussian read noise
/// σ (of full scale 1) on every output.
struct condition {
  std::string kind;  ///< "variation" | "read_noise"
  double value = 0;  ///< σ
};

/// Everything the command line sets.
struct config {
  std::vector<std::string> rules;
  std::vector<std::string> substrates;
  std::size_t epochs = 3;
  std::size_t batch = 64;
  std::vector<std::size_t> hidden{256};
  /// `--model`: "mlp" (784 → hidden… → 10, `hidden`), "lenet5" or "convnet-ep" (`drive.hpp`).
  std::string model = "mlp";
  std::size_t train_limit = 0;
  std::uint64_t seed = 1;
  std::size_t threads = 1;
  std::string fa_feedback = "random";
  std::string fa_optimizer = "momentum";  ///< feedback_alignment's optimiser: momentum | adam
  std::string fa_distribution = "uniform";  ///< law of FA's and DFA's random feedback: uniform | normal
  std::string ep_estimator = "centered";
  // Energy-based rules: by default the robust setting (alternating updates, T 15, K 5 — the
  // states of the prototypical synchronous T 30, K 10 — β 0.4, each phase measured as the mean
  // of its last 5 steps), which keeps EP learning on the noisy crossbars.
  std::string ep_update = "alternating";  ///< synchronous (T 30, K 10) | alternating (T 15, K 5)
  double ep_beta = 0.4;
  double ep_noise = 0;         ///< neuron noise sd on every drive at every step
  std::size_t ep_average = 5;  ///< measure each phase as the mean of its last N steps
  std::string fg_mode = "activity";
  std::string ff_goodness = "energy";
  /// Per-event energies and times (docs/physics.md, "Energy and latency"); `--digital-energy`
  /// picks the digital part (45 nm arithmetic or a datacentre GPU).
  pnn::energy_model energy{};
  /// Every runner multiplies its learning rate(s) (SPSA: its gain `a`) by this: what `--tune`
  /// selects on a validation split.
  double lr_scale = 1.0;
  /// `--weight-decay`: L2 weight decay λ (the estimate gains λ·W before the optimiser shapes it)
  /// of every runner's optimiser that has one (SGD, momentum, Adam); 0: none (the default).
  double weight_decay = 0;
  std::string perturbation = "spsa";
  /// `--crossbar-update`: how updates reach pulsed crossbars — mixed_precision (a digital
  /// accumulator fires whole pulses), sgd (plain stochastic pulse trains), or a transfer
  /// compound: tiki_taka, ttv2, c_ttv2, agad (`drive.hpp`, `crossbar_optimizer`).
  std::string crossbar_update = "mixed_precision";
  /// `--device`: the pulsed device of the crossbar substrates (`devices::device_from_name`:
  /// soft_bounds, constant_step, linear_step, exp_step, pow_step, pcm, measured:FILE.csv).
  std::string device = "soft_bounds";
  /// `--rng`: the generator of every stream a run draws (weights, shuffles, noise, pulses,
  /// perturbations): philox (default) or ars (AES rounds; faster where the core has AES-NI).
  pnn::rng_engine engine = pnn::rng_engine::philox;
  double crossbar_lr = 0;  ///< `--crossbar-lr`: η of `sgd` and the transfer compounds (0: `drive.hpp`'s)
  double fast_lr = 0;      ///< `--fast-lr`: a transfer compound's rate onto the fast array (0: default)
  double chop_prob = -1;   ///< `--chop-prob`: c_ttv2/agad chopper probability (< 0: the preset's)
  /// Set on the scorecard's robustness runs: the condition trained and tested under.
  std::optional<condition> hardware_condition;
  /// `--scorecard`: evaluate the trained network after PCM drift (crossbar substrates).
  bool drift = false;
  /// `--checkpoint-dir`: where this run keeps its state after each epoch (files
  /// `<stem>.progress.json` and `<stem>.epoch<k>.pnn`); empty: no checkpoints.
  std::string checkpoint_stem;
  /// `--data-parallel`: every run is trained by all ranks together, each estimating its part of
  /// every batch's `--shards` micro-shards (`pnn::train_options::data_parallel`; shards 0: off).
  pnn::data_parallel_options data_parallel{};
  /// With `data_parallel` over several ranks: sums one epoch's physical events and digital
  /// work over the ranks' replicas (collective; every rank calls it after every epoch).
  std::function<void(pnn::epoch_metrics&)> sum_over_ranks{};
  /// With `data_parallel` over several ranks: rank 0's text on every rank (collective). Rank 0
  /// alone reads and writes `checkpoint_stem`'s files and hands what it read to the others, so
  /// every rank resumes from the same bytes (or none does) without a shared file system.
  std::function<void(std::string&)> share_from_root{};
  /// Whether this process writes `checkpoint_stem`'s files (false on ranks other than 0 of a
  /// data-parallel run).
  bool writes_checkpoints = true;
};

/// The device model `--device` names (`devices::device_from_name`: a closed-form model, the
/// PCM preset, or `measured:FILE.csv` fitted from pulse-response data), read and fitted once.
/// \throws pnn::error for an unknown name or a bad file.
inline const pnn::physics::devices::selectable& device_model(const config& cfg) {
  static std::mutex guard;
  static std::map<std::string, pnn::physics::devices::selectable> known;
  const std::lock_guard<std::mutex> lock(guard);
  auto it = known.find(cfg.device);
  if (it == known.end()) it = known.emplace(cfg.device, pnn::physics::devices::device_from_name(cfg.device)).first;
  return it->second;
}

/// Test accuracy of the trained network programmed onto PCM devices and read after drift.
struct drift_point {
  double seconds = 0;        ///< time after the reference read
  bool compensated = false;  ///< global drift compensation on
  double accuracy = 0;
};

/// One row of the table / one object of the JSON `results` array.
struct result {
  std::string rule, substrate, noise;
  std::size_t epochs = 0;
  /// Equal budgets: epochs of training samples the physical system saw, and epochs a digital
  /// twin trained before (or instead of) it (in_silico: 0 + N; physics_aware: N + N).
  std::size_t physical_epochs = 0, twin_epochs = 0;
  double test_accuracy = 0, train_seconds = 0, samples_per_second = 0;
  double eval_seconds = 0;  ///< test evaluations after the epochs (and alignment probes), not in samples/s
  /// Digital work done before the measured training (a twin trained first), charged to the run.
  pnn::simd::kernel_work pretraining_work{};
  /// Physical events before the measured training (programming a twin's weights onto the
  /// substrate), charged to the run.
  pnn::physical_events pretraining_events{};
  /// The network trained is a simulation of the physics (an in-silico twin of a diffractive stack
  /// or scattering medium), not the physics: its physical events are not charged.
  bool simulated_physics = false;
  /// Energy (J) and latency (s) per training sample, per inference, and what they count.
  struct energy_figures {
    double train_joules_per_sample = 0, inference_joules_per_sample = 0, train_latency_per_sample = 0;
    double physical_passes_per_sample = 0, pulses_per_sample = 0, digital_flops_per_sample = 0;
    pnn::energy_estimate train{};  ///< the whole training run, by where it is spent
    double deployment_joules = 0;  ///< of which: programming a twin's weights onto the substrate
  } energy{};
  /// With `--sweep hidden|depth`: test accuracy minus backprop's on the same substrate and
  /// sweep point (the scaling study's "gap to backprop"; absent for backprop itself).
  std::optional<double> gap_to_backprop;
  std::optional<condition> hardware_condition;  ///< the scorecard condition this run trained under
  std::vector<drift_point> drift{};             ///< `--scorecard` on crossbars: accuracy after PCM drift
  double untrained_accuracy = 0;  ///< test accuracy of the same network before training (the floor to beat)
  std::optional<double> alignment_angle_deg;
  nlohmann::json settings = nlohmann::json::object();
  std::optional<sweep_point> sweep;
  nlohmann::json history = nlohmann::json::array();
  std::optional<std::string> skipped;  ///< set when the pair cannot run: then only rule/substrate/skipped count
  /// With `--seeds N`: the row is the mean over N runs (seeds `--seed` … `--seed` + N − 1), and
  /// these are the spread and each run's accuracy.
  std::size_t seeds = 1;
  double test_accuracy_std = 0;
  std::vector<std::pair<std::uint64_t, double>> per_seed{};
};

/// A rule's runner: trains the benchmark architecture on one substrate and reports.
using runner = std::function<result(const config&, const std::string& substrate, const pnn::data::split&,
                                    const std::optional<sweep_point>&)>;

/// Rule name → runner. Rules register from their own translation units.
std::map<std::string, runner>& registry();
/// Registers `r` under `name` (used at static-initialisation time).
bool add_rule(const std::string& name, runner r);

/// The substrates pnn-bench knows, in table order.
const std::vector<std::string>& known_substrates();
/// The rules pnn-bench knows (the order), landed or not.
const std::vector<std::string>& known_rules();

/// Signals a (rule, substrate) pair that cannot run; the runner turns it into a `skipped` row.
struct skip : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A result that only says the pair was skipped and why.
inline result skipped(const std::string& rule, const std::string& substrate, const std::string& why) {
  result r;
  r.rule = rule;
  r.substrate = substrate;
  r.skipped = why;
  return r;
}

}  // namespace pnn_bench
