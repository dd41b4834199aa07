// SPDX-License-Identifier: MIT
// The shared machinery of every rule runner: build the benchmark network on the chosen
// substrate (an MLP of 1 or 2 hidden layers, or LeNet-5), train it with `pnn::train`, and turn
// the history into a row.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <span>
#include <stdexcept>
#include <utility>
#include <string>

#include <xtensor/xview.hpp>

#include "bench.hpp"

#include <pnn/learn/transfer_compound.hpp>
#include <pnn/physics/scattering.hpp>
#if PNN_HAS_DIFFRACTIVE
#include <pnn/physics/diffractive.hpp>
#endif

namespace pnn_bench {

using pnn::dynamic;

template <class Tile>
inline constexpr bool has_update_granularity = requires(const Tile& t) { t.update_granularity(); };

/// True when some layer of `Net` programs in whole device steps (a pulsed crossbar).
template <class Net>
constexpr bool programs_in_steps() {
  bool any = false;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((any = any || has_update_granularity<typename Net::template layer_type<I>::tile_type>), ...);
  }(std::make_index_sequence<Net::num_layers>{});
  return any;
}

/// Learning rates of the analog updates (`--crossbar-update` other than mixed_precision), the
/// same for every rule: they replace the rule's own optimiser on pulsed layers, whose rates are
/// tuned for digital arithmetic. Chosen for backprop on the crossbar by validation accuracy
/// (`--tune`'s split: the last 2000 of the 20000 training images, 3 epochs) over η ∈ {0.025 … 0.4}
/// and fast rates ∈ {0.025 … 6}: one pair serves all four compounds within a point of each one's
/// best (`--crossbar-lr`, `--fast-lr` and `--tune` change them).
inline constexpr float pulsed_sgd_lr = 0.02f;     ///< plain pulse trains: η
inline constexpr float transfer_eta = 0.05f;      ///< transfer compounds: η (transfer rate and digital parts)
inline constexpr float transfer_fast_lr = 1.5f;   ///< transfer compounds: rate onto the fast array

/// \brief The optimiser of a rule on a network of pulsed crossbars, chosen at run time by
/// `--crossbar-update` (one instantiation per rule serves every choice):
/// * `mixed_precision`: `optim::mixed_precision` around the rule's own optimiser — updates
///   accumulate digitally and whole device pulses are transferred (aihwkit's mixed-precision
///   compound; the default, because plain pulse trains plateau on soft-bounds devices);
/// * `sgd`: plain stochastic pulse trains of the factored estimate, `optim::sgd`;
/// * `tiki_taka`, `ttv2`, `c_ttv2`, `agad`: `optim::transfer_compound` with that preset.
template <class Opt>
struct crossbar_optimizer {
  static constexpr const char* name = "crossbar_optimizer";
  enum class kind { mixed_precision, sgd, transfer };
  kind which = kind::mixed_precision;
  pnn::optim::mixed_precision<Opt> mixed{};
  pnn::optim::sgd pulsed{};
  pnn::optim::transfer_compound transfer{};

  template <class Net>
  struct state {
    typename pnn::optim::mixed_precision<Opt>::template state<Net> mixed{};
    pnn::optim::sgd::state<Net> pulsed{};
    pnn::optim::transfer_compound::state<Net> transfer{};
    template <class V>
    void visit_state(V& v) {
      {
        auto g = v.scope("mixed_precision");
        mixed.visit_state(v);
      }
      {
        auto g = v.scope("sgd");
        pulsed.visit_state(v);
      }
      auto g = v.scope("transfer");
      transfer.visit_state(v);
    }
  };

  [[nodiscard]] bool keeps_factors() const noexcept { return which == kind::sgd; }
  void validate() const {
    if (which == kind::mixed_precision) mixed.validate();
    else if (which == kind::sgd) pulsed.validate();
    else transfer.validate();
  }
  template <class Net>
  void prepare_state(const Net& net, state<Net>& s) const {
    if (which == kind::transfer) transfer.prepare_state(net, s.transfer);
  }
  template <class Net>
  void apply(pnn::gradients<Net>& g, state<Net>& s, const Net& net) const {
    if (which == kind::mixed_precision) mixed.apply(g, s.mixed, net);
    else if (which == kind::sgd) pulsed.apply(g, s.pulsed, net);
    else transfer.apply(g, s.transfer, net);
  }
};

/// True for the names `--crossbar-update` accepts.
inline bool is_crossbar_update(const std::string& u) {
  return u == "mixed_precision" || u == "sgd" || u == "tiki_taka" || u == "ttv2" || u == "c_ttv2" || u == "agad";
}

/// The transfer algorithm `--crossbar-update` names (`tiki_taka`, `ttv2`, `c_ttv2`, `agad`).
inline pnn::optim::transfer_algorithm transfer_algorithm_of(const std::string& u) {
  using a = pnn::optim::transfer_algorithm;
  if (u == "tiki_taka") return a::tiki_taka;
  if (u == "ttv2") return a::ttv2;
  if (u == "agad") return a::agad;
  return a::c_ttv2;
}

/// The optimiser a rule runs with on `Net`: on pulsed crossbars, `crossbar_optimizer` around it
/// (`--crossbar-update`); elsewhere `o` itself.
template <class Net, class Opt>
auto on_substrate(const config& cfg, Opt o) {
  if constexpr (requires { o.weight_decay; })
    if (cfg.weight_decay > 0) o.weight_decay = float(cfg.weight_decay);
  if constexpr (programs_in_steps<Net>()) {
    crossbar_optimizer<Opt> c;
    c.mixed.inner = std::move(o);
    const float scale = float(cfg.lr_scale);
    const auto or_default = [](double given, float fallback) { return given > 0 ? float(given) : fallback; };
    if (cfg.crossbar_update == "sgd") {
      c.which = crossbar_optimizer<Opt>::kind::sgd;
      c.pulsed.learning_rate = or_default(cfg.crossbar_lr, pulsed_sgd_lr) * scale;
    } else if (cfg.crossbar_update != "mixed_precision") {
      c.which = crossbar_optimizer<Opt>::kind::transfer;
      c.transfer = pnn::optim::transfer_compound::preset(transfer_algorithm_of(cfg.crossbar_update));
      c.transfer.learning_rate = or_default(cfg.crossbar_lr, transfer_eta) * scale;
      c.transfer.fast_lr = or_default(cfg.fast_lr, transfer_fast_lr) * scale;
      if (cfg.chop_prob >= 0 && (c.transfer.algorithm == pnn::optim::transfer_algorithm::c_ttv2 ||
                                 c.transfer.algorithm == pnn::optim::transfer_algorithm::agad))
        c.transfer.in_chop_prob = float(cfg.chop_prob);
      c.transfer.seed = cfg.seed;
      c.transfer.engine = cfg.engine;
    }
    // The rule's schedule (cosine in every runner) carries over to the analog updates: on η of
    // plain pulse trains, on the transfer rate of the compounds (their fast rate stays fixed).
    if constexpr (requires { c.mixed.inner.lr_schedule; }) {
      c.pulsed.lr_schedule = c.mixed.inner.lr_schedule;
      c.transfer.lr_schedule = c.mixed.inner.lr_schedule;
    }
    return c;
  } else {
    return o;
  }
}
template <class Net, class Opt>
using on_substrate_t = decltype(on_substrate<Net>(std::declval<const config&>(), std::declval<Opt>()));

/// The benchmark architecture on substrate `S` with noise `N`, hidden activation `A` and output
/// activation `O`.
template <class S, class N, class A, class O>
struct mlp {
  using one_hidden = pnn::network<pnn::dense<dynamic, dynamic, S, N, A>, pnn::dense<dynamic, dynamic, S, N, O>>;
  using two_hidden = pnn::network<pnn::dense<dynamic, dynamic, S, N, A>, pnn::dense<dynamic, dynamic, S, N, A>,
                                  pnn::dense<dynamic, dynamic, S, N, O>>;
};

/// The MLP with `D` hidden layers of activation `A` (the scaling study's deep networks).
template <class S, class N, class A, class O, std::size_t D>
struct deep_mlp {
  template <std::size_t>
  using hidden = pnn::dense<dynamic, dynamic, S, N, A>;
  template <std::size_t... I>
  static auto make(std::index_sequence<I...>) -> pnn::network<hidden<I>..., pnn::dense<dynamic, dynamic, S, N, O>>;
  using type = decltype(make(std::make_index_sequence<D>{}));
};

/// LeNet-5 (LeCun et al. 1998, as aihwkit's and BioTorch's benchmarks use it) for 28 × 28 × 1
/// images: conv 6@5×5 (padding 2) → max-pool 2 → conv 16@5×5 → max-pool 2 → 120 → 84 → 10.
/// Every layer, the convolutions' kernel arrays included, lies on substrate `S` with noise `N`.
template <class S, class N, class A, class O>
using lenet5 = pnn::network<pnn::conv2d<pnn::conv_shape<28, 28, 1, 6, 5, 1, 2>, S, N, A, pnn::pool::max<2>>,
                            pnn::conv2d<pnn::conv_shape<14, 14, 6, 16, 5>, S, N, A, pnn::pool::max<2>>,
                            pnn::dense<400, 120, S, N, A>, pnn::dense<120, 84, S, N, A>, pnn::dense<84, 10, S, N, O>>;

/// The convolutional energy network of `--model convnet-ep` (after Laborieux et al. 2021's
/// MNIST network, narrowed to fit a CPU budget) for 28 × 28 × 1 images: conv 16@5×5 → max-pool 2
/// → conv 32@5×5 → max-pool 2 → 10. Under EP and coupled learning every layer is a state of the
/// energy model (hard sigmoid, pooled before the nonlinearity); backprop trains the same
/// architecture feed-forward with its own activations, as the reference for the gap.
template <class S, class N, class A, class O>
using convnet_ep = pnn::network<pnn::conv2d<pnn::conv_shape<28, 28, 1, 16, 5>, S, N, A, pnn::pool::max<2>>,
                                pnn::conv2d<pnn::conv_shape<12, 12, 16, 32, 5>, S, N, A, pnn::pool::max<2>>,
                                pnn::dense<512, 10, S, N, O>>;

/// Which convolutional models (`--model`) a rule builds: a mask of these bits.
enum conv_models : unsigned {
  no_conv = 0,
  with_lenet5 = 1,
  with_convnet_ep = 2,
  without_quantum = 4,
  black_box_rule = 8,
  without_w = 16,  ///< the rule trains physics without W (`diffractive`, `scattering`)
};

/// Builds the network for `cfg.model` and `cfg.hidden` and calls `f(net)`. `Models`: the
/// convolutional models the rule builds (`with_network` has rejected the others).
template <class S, class N, class A, class O, unsigned Models, class F, class... Configs>
result with_depth(const config& cfg, std::size_t inputs, std::size_t outputs, F&& f, const Configs&... configs) {
  const pnn::seed s{cfg.seed, cfg.engine};
  if (cfg.model == "lenet5" || cfg.model == "convnet-ep") {
    if (inputs != 784 || outputs != 10) throw skip("--model " + cfg.model + " needs 28 x 28 images and 10 classes");
    if constexpr ((Models & with_lenet5) != 0) {
      if (cfg.model == "lenet5") {
        lenet5<S, N, A, O> net(s, configs...);
        return f(net);
      }
    }
    if constexpr ((Models & with_convnet_ep) != 0) {
      if (cfg.model == "convnet-ep") {
        convnet_ep<S, N, A, O> net(s, configs...);
        return f(net);
      }
    }
    throw skip("--model " + cfg.model + ": this rule does not run on this convolutional model");
  }
  if (cfg.hidden.size() == 1) {
    typename mlp<S, N, A, O>::one_hidden net({inputs, cfg.hidden[0], outputs}, s, configs...);
    return f(net);
  }
  if (cfg.hidden.size() == 2) {
    typename mlp<S, N, A, O>::two_hidden net({inputs, cfg.hidden[0], cfg.hidden[1], outputs}, s, configs...);
    return f(net);
  }
  if (cfg.hidden.size() == 4 || cfg.hidden.size() == 8) {
    // Deep networks (`--sweep depth=4,8`) are instantiated on the ideal digital substrate only:
    // each depth is a network type per rule, and the question they answer — does a rule keep
    // up with backprop as depth grows — is asked first without the physics.
    if constexpr (std::is_same_v<S, pnn::physics::digital> && std::is_same_v<N, pnn::noise::none>) {
      std::vector<std::size_t> sizes{inputs};
      sizes.insert(sizes.end(), cfg.hidden.begin(), cfg.hidden.end());
      sizes.push_back(outputs);
      auto build = [&](auto net) {
        net.initialize(sizes.data(), s);
        return f(net);
      };
      if (cfg.hidden.size() == 4) return build(typename deep_mlp<S, N, A, O, 4>::type{});
      return build(typename deep_mlp<S, N, A, O, 8>::type{});
    } else {
      throw skip("depth 4 and 8 are instantiated on the digital substrate only");
    }
  }
  throw skip("--hidden supports one or two hidden layers (--sweep depth also 4 and 8, on digital)");
}

/// The `quantum` substrate's model: qubits (one per circuit output) and shots per execution.
inline constexpr std::size_t quantum_qubits = 4;
inline constexpr std::size_t quantum_shots = 1000;
/// What the `quantum` rows train (the table's noise column and the JSON's "noise").
inline constexpr const char* quantum_model_description =
    "shots 1000 (digital encoder 784-4, 4-qubit circuit with 2 re-uploading layers, digital readout 4-10)";

/// The `spintronic` substrate's model: oscillators in the layer.
inline constexpr std::size_t spintronic_oscillators = 16;
/// What the `spintronic` rows train.
inline constexpr const char* spintronic_model_description =
    "frequency spread 0.2, coupling spread 0.1, thermal 0.02 (16 spin-torque oscillators driven by W x + b, "
    "digital readout 16-10)";

#if PNN_HAS_DIFFRACTIVE
/// The `diffractive` substrate's model: a five-mask phase-only D2NN on a 64 × 64 grid (0.75 mm
/// light, 0.4 mm pixels, 1 cm between planes), ten detector regions whose powers × 50 are the
/// logits (the gain chosen on a validation split, images 50000–50999 of the training set, among
/// 20, 50 and 100 for backprop at its bench learning rate). `fabricated`: the physical
/// stack (8 phase levels, 0.5-pixel misalignment per axis, detector noise 0.05); otherwise the
/// ideal design the in-silico twin trains.
inline pnn::physics::diffractive::params diffractive_params(bool fabricated) {
  pnn::physics::diffractive::params p{.grid = 64, .masks = 5, .distance = 10e-3, .output_gain = 50};
  if (fabricated) {
    p.phase_levels = 8;
    p.misalignment = 0.5;
    p.detector_noise = 0.05;
  }
  return p;
}
using d2nn = pnn::network<pnn::dense<dynamic, dynamic, pnn::physics::diffractive, pnn::noise::none, pnn::act::identity>>;
#endif
/// What the `diffractive` rows train.
inline constexpr const char* diffractive_model_description =
    "8 phase levels, misalignment 0.5 px, detector noise 0.05 (D2NN: 5 phase masks on 64 x 64, 10 detectors)";

/// The `scattering` substrate's model: the image on an SLM with a trainable phase mask overlaid
/// (one phase per pixel), a Gaussian medium onto 16 camera pixels with shot noise, a digital
/// readout 16 → 10. Few camera pixels make the readout the bottleneck, the regime in which what
/// the physics sends to the camera matters (with 64 pixels the frozen medium's random features
/// leave less to gain).
inline constexpr std::size_t scattering_camera = 16;
inline constexpr double scattering_photons = 1000;
/// What the `scattering` rows train.
inline constexpr const char* scattering_model_description =
    "shot noise 1000 photons (784-pixel SLM with a phase mask on the data, Gaussian medium, 16 camera pixels, "
    "digital readout 16-10)";
/// `physical`: with shot noise (the twin of the in-silico workflow has none); `train_mask`:
/// false for `scattering_frozen`, the baseline whose control phases stay as drawn.
inline pnn::physics::scattering_medium::params scattering_params(bool physical, bool train_mask) {
  return {.placement = pnn::physics::scattering_medium::mask::on_data,
          .photons = physical ? scattering_photons : 0.0,
          .train_mask = train_mask};
}
using scattering_net =
    pnn::network<pnn::dense<dynamic, dynamic, pnn::physics::scattering_medium, pnn::noise::none, pnn::act::identity>,
                 pnn::dense<dynamic, dynamic, pnn::physics::digital, pnn::noise::none, pnn::act::identity>>;

/// The twin the in-silico workflow trains for `physical`: the same architecture on the ideal
/// digital substrate, or for a diffractive stack (no W to deploy) the same stack with ideal masks,
/// for a scattering medium a medium without shot noise whose matrix `calibrate_twin` then
/// measures from the physical one.
template <class Physical>
auto make_twin(const config& cfg, const Physical& physical) {
  if constexpr (std::is_same_v<Physical, scattering_net>) {
    const bool train_mask = pnn::layer<0>(physical).tile.parameters().train_mask;
    return scattering_net({physical.input_size(), scattering_camera, physical.output_size()},
                          pnn::seed{cfg.seed, cfg.engine}, scattering_params(false, train_mask));
  } else
#if PNN_HAS_DIFFRACTIVE
  if constexpr (std::is_same_v<Physical, d2nn>) {
    return d2nn({physical.input_size(), physical.output_size()}, pnn::seed{cfg.seed, cfg.engine},
                diffractive_params(false));
  } else
#endif
  {
    using twin_t = pnn::rebind_t<Physical, pnn::physics::digital>;
    const auto sizes = physical.sizes();
    twin_t twin;
    twin.initialize(sizes.data(), pnn::seed{cfg.seed, cfg.engine});
    return twin;
  }
}

/// What calibrating a twin measured: the physical events (charged to the run) and the settings
/// entries that describe it.
struct twin_calibration {
  pnn::physical_events events{};
  nlohmann::json settings = nlohmann::json::object();
};

/// A scattering medium's twin learns its transmission matrix from camera frames of the physical
/// medium (`physics::fit_transmission`: 8·N random SLM patterns, shot noise and all) before it is
/// trained, as a lab calibrates: the twin never reads the drawn matrix. Other twins: nothing.
template <class Physical, class Twin>
twin_calibration calibrate_twin(const config& cfg, Physical& physical, Twin& twin) {
  twin_calibration c;
  if constexpr (std::is_same_v<Physical, scattering_net>) {
    pnn::cost_counter frames;
    pnn::attach_cost_counter(physical, &frames);
    pnn::rng g(cfg.seed, 0xca1b, cfg.engine);
    const auto fit = pnn::physics::fit_transmission(pnn::layer<0>(physical).tile, pnn::layer<0>(twin).tile, {}, g);
    pnn::attach_cost_counter(physical, nullptr);
    c.events = frames.totals();
    c.settings["twin_calibration"] = "transmission matrix fitted to " + std::to_string(fit.frames) +
                                     " camera frames of random SLM patterns (intensity-only phase retrieval, " +
                                     std::to_string(fit.iterations) + " steps), judged on " +
                                     std::to_string(fit.held_out) + " more";
    c.settings["twin_calibration_error"] = fit.relative_error;
  }
  (void)cfg, (void)physical, (void)twin;
  return c;
}

/// Dispatches on the substrate name: `f(net)` gets the network built on it; `noise` receives
/// the name of the substrate's noise configuration for the table. `Models`: the convolutional
/// models the rule builds (`conv_models`), on digital and crossbar substrates; `without_quantum`
/// for rules that cannot run on the quantum substrate's network (it is then not instantiated);
/// `black_box_rule` for the rules that train a black box (no derivative of its physics needed),
/// the only ones the spintronic substrate's network is built for; `without_w` for those
/// that train physics without W (the diffractive stack, the scattering medium).
template <class A, class O = pnn::act::identity, unsigned Models = no_conv, class F>
result with_network(const config& cfg, const std::string& substrate, const pnn::data::split& d,
                    const std::optional<sweep_point>& sweep, std::string& noise, F&& f) {
  const std::size_t in = d.train.features(), out = d.train.outputs();
  if (cfg.model != "mlp") {
    if ((Models & (with_lenet5 | with_convnet_ep)) == 0)
      throw skip("--model " + cfg.model + ": this rule does not run on convolutional layers yet");
    if (cfg.model == "lenet5" && (Models & with_lenet5) == 0)
      throw skip("--model lenet5: this rule trains the convolutional energy network instead (--model convnet-ep)");
    if (cfg.model == "convnet-ep" && (Models & with_convnet_ep) == 0)
      throw skip("--model convnet-ep: the energy network runs under equilibrium_propagation, coupled_learning and "
                 "backprop (their reference)");
    if (cfg.hardware_condition) throw skip("the scorecard's conditions run on the MLP (--model mlp)");
    if (sweep && (sweep->param == "hidden" || sweep->param == "depth"))
      throw skip("--sweep " + sweep->param + " changes the MLP; it does not apply to --model " + cfg.model);
    if (substrate != "digital" && substrate != "crossbar" && substrate != "crossbar_variation")
      throw skip("--model " + cfg.model + " runs on digital, crossbar and crossbar_variation");
  }
  // One crossbar type for every device `--device` names (`devices::selectable`): the device is
  // chosen at run time and dispatched once per array operation, so no rule is compiled twice.
  using xbar = pnn::physics::crossbar<pnn::physics::devices::selectable>;
  const auto xbar_params = [&] {
    typename xbar::params p;
    p.device = device_model(cfg);
    return p;
  };
  if (cfg.hardware_condition) {
    // The scorecard's robustness runs: the substrate with one more non-ideality, present while
    // training and testing (static draws are part of the network, fixed by its seed).
    const condition& c = *cfg.hardware_condition;
    if (sweep) throw skip("a scorecard condition does not combine with --sweep");
    auto with = [&](pnn::noise::crossbar_mismatch m) {
      if (c.kind == "variation") std::get<0>(m.members).multiplicative = c.value;
      else std::get<2>(m.members).sigma = c.value;
      return m;
    };
    char amount[32];
    std::snprintf(amount, sizeof amount, "%g", c.value);
    const std::string what = (c.kind == "variation" ? "variation σ " : "read noise σ ") + std::string(amount);
    if (substrate == "digital") {
      noise = what;
      return with_depth<pnn::physics::digital, pnn::noise::crossbar_mismatch, A, O, no_conv>(
          cfg, in, out, f, with(pnn::noise::crossbar_variation_mismatch(0, 0, 0)));
    }
    if (substrate == "crossbar") {
      noise = "default_io+" + what;
      return with_depth<xbar, pnn::noise::crossbar_mismatch, A, O, no_conv>(cfg, in, out, f, xbar_params(),
                                                                 with(pnn::noise::crossbar_variation_mismatch(0, 0, 0)));
    }
    if (substrate == "crossbar_variation") {
      noise = "default_io+mismatch(" + what + ")";
      return with_depth<xbar, pnn::noise::crossbar_mismatch, A, O, no_conv>(cfg, in, out, f, xbar_params(),
                                                                 with(pnn::noise::crossbar_variation_mismatch()));
    }
    throw skip("the scorecard's variation and read-noise conditions are defined on digital and crossbar substrates");
  }
  if (substrate == "digital") {
    if (sweep) throw skip("sweeping '" + sweep->param + "' needs a physical substrate (crossbar, crossbar_variation)");
    noise = "none";
    return with_depth<pnn::physics::digital, pnn::noise::none, A, O, Models>(cfg, in, out, f);
  }
  if (substrate == "crossbar" || substrate == "crossbar_variation") {
    // `--device` (soft bounds by default), aihwkit's default IO. Every rule's optimiser is
    // wrapped in `crossbar_optimizer` on these networks (`on_substrate`, `--crossbar-update`).
    typename xbar::params p = xbar_params();
    auto m = pnn::noise::crossbar_variation_mismatch();
    const bool mismatched = substrate == "crossbar_variation";
    if (sweep) {
      const double v = sweep->value;
      auto bits = [&](const char* what) {
        if (v < 1 || v > 24 || v != std::floor(v)) throw skip(std::string(what) + " must be an integer in [1, 24]");
        return static_cast<unsigned>(v);
      };
      if (sweep->param == "read_noise") {
        if (v < 0) throw skip("read_noise must be >= 0");
        if (mismatched) std::get<2>(m.members).sigma = v;
        else p.forward.out_noise = p.backward.out_noise = static_cast<float>(v);
      } else if (sweep->param == "variation") {
        if (v < 0) throw skip("variation must be >= 0");
        if (mismatched) std::get<0>(m.members).multiplicative = v;
        else p.device.visit([&](auto& dev) { dev.dw_min_dtod = static_cast<float>(v); });
      } else if (sweep->param == "dac_bits") {
        p.forward.inp_res = p.backward.inp_res = bits("dac_bits");
      } else if (sweep->param == "adc_bits") {
        p.forward.out_res = p.backward.out_res = bits("adc_bits");
      }
    }
    if (!mismatched) {
      noise = "default_io";  // update: mixed precision (see above)
      return with_depth<xbar, pnn::noise::none, A, O, Models>(cfg, in, out, f, p);
    }
    noise = "default_io+mismatch";
    if (sweep) noise = "default_io+mismatch(swept)";
    return with_depth<xbar, pnn::noise::crossbar_mismatch, A, O, Models>(cfg, in, out, f, p, m);
  }
  if (substrate == "mzi") {
    // A digital encoder (784 → first hidden width) feeds MZI-mesh layers (W = U Σ V†, Clements
    // meshes, coherent detection) trained in situ by adjoint phase steps: a 784-mode mesh per
    // layer would cost seconds per step (issue 10's note), as photonic Fashion-MNIST work does.
    if (sweep) throw skip("sweeps on mzi are not defined (use examples/photonic_fashion_mnist for phase noise)");
    using mzi = pnn::physics::mzi_mesh;
    typename mzi::params p;
    p.programming = pnn::physics::mesh_programming::adjoint;
    noise = "none (digital encoder, MZI layers)";
    const pnn::seed s{cfg.seed, cfg.engine};
    using enc = pnn::dense<dynamic, dynamic, pnn::physics::digital, pnn::noise::none, A>;
    if (cfg.hidden.size() == 1) {
      pnn::network<enc, pnn::dense<dynamic, dynamic, mzi, pnn::noise::none, O>> net({in, cfg.hidden[0], out}, s, p);
      return f(net);
    }
    if (cfg.hidden.size() == 2) {
      pnn::network<enc, pnn::dense<dynamic, dynamic, mzi, pnn::noise::none, A>, pnn::dense<dynamic, dynamic, mzi, pnn::noise::none, O>>
          net({in, cfg.hidden[0], cfg.hidden[1], out}, s, p);
      return f(net);
    }
    throw skip("--hidden supports one or two hidden layers");
  }
  if (substrate == "resistor") {
    // A digital encoder (784 → hidden) feeds a resistor-network output layer (Stern et al.):
    // each output node is a conductance-weighted mean of the hidden voltages, amplified ×8 (a
    // resistor cannot make a negative weight; the amplifier sets the logits' range). Every
    // rule's update reaches it in conductance space (the adjoint state); perturbative rules
    // perturb conductances.
    if (sweep) throw skip("sweeps on resistor are not defined");
    if (cfg.hidden.size() != 1) throw skip("--hidden: the resistor substrate takes one hidden layer");
    using rsub = pnn::physics::resistor_substrate;
    typename rsub::params p;
    p.output_gain = 8.0;
    noise = "none (digital encoder, resistor output layer)";
    using enc = pnn::dense<dynamic, dynamic, pnn::physics::digital, pnn::noise::none, A>;
    pnn::network<enc, pnn::dense<dynamic, dynamic, rsub, pnn::noise::none, O>> net({in, cfg.hidden[0], out},
                                                                                 pnn::seed{cfg.seed, cfg.engine}, p);
    return f(net);
  }
  if (substrate == "quantum") {
    // The 784-pixel task does not fit a qubit register: a digital encoder (784 → 4) sets the
    // encoding angles of a 4-qubit circuit (2 re-uploading layers, 1000 shots per execution),
    // whose ⟨Z⟩ feed a digital readout (4 → 10). Gradients through the circuit, and into its
    // angles, come from parameter-shifted executions (`physics::quantum_circuit`).
    if (sweep) throw skip("sweeps on quantum are not defined");
    if constexpr ((Models & without_quantum) != 0) {
      throw skip("energy-based rules relax through transposed reads, which a quantum circuit does not have");
    } else {
    using qc = pnn::physics::quantum_circuit;
    noise = quantum_model_description;
    using enc = pnn::dense<dynamic, dynamic, pnn::physics::digital, pnn::noise::none, A>;
    using circuit = pnn::dense<dynamic, dynamic, qc, pnn::noise::none, pnn::act::identity>;
    using readout = pnn::dense<dynamic, dynamic, pnn::physics::digital, pnn::noise::none, O>;
    pnn::network<enc, circuit, readout> net({in, quantum_qubits, quantum_qubits, out}, pnn::seed{cfg.seed, cfg.engine},
                                            typename qc::params{.layers = 2, .shots = quantum_shots});
    return f(net);
    }
  }
  if (substrate == "spintronic") {
    // 16 coupled spin-torque oscillators driven by the currents I_dc + W x + b (a black box: the
    // library has no derivative of it), their mean powers read by a digital layer (16 → 10).
    // The physical instance differs from the model the twin assumes (a linear layer): spread
    // natural frequencies and couplings, thermal noise.
    if (sweep) throw skip("sweeps on spintronic are not defined");
    if constexpr ((Models & black_box_rule) == 0) {
      throw skip("needs the derivative of the oscillator layer, a black box: physics_aware, in_silico, "
                 "weight_perturbation and spsa train it");
    } else {
      using box = pnn::physics::spintronic_box<float>;
      noise = spintronic_model_description;
      const pnn::physics::spin_torque_oscillators<float> physical{
          .frequency_spread = 0.2, .coupling_spread = 0.1, .thermal_noise = 0.02, .seed = cfg.seed};
      using oscillators = pnn::dense<dynamic, dynamic, box, pnn::noise::none, pnn::act::identity>;
      using readout = pnn::dense<dynamic, dynamic, pnn::physics::digital, pnn::noise::none, O>;
      pnn::network<oscillators, readout> net({in, spintronic_oscillators, out}, pnn::seed{cfg.seed, cfg.engine},
                                             typename box::params{.model = physical});
      return f(net);
    }
  }
  if (substrate == "scattering" || substrate == "scattering_frozen") {
    // Broken isomorphism: the image on an SLM with a trainable phase mask, a fixed scattering
    // medium, 16 camera pixels, a digital readout. `scattering_frozen` keeps the
    // phases as drawn (only the readout and biases learn): the baseline that training the
    // physics must beat.
    if (sweep) throw skip("sweeps on scattering are not defined");
    if constexpr ((Models & without_w) == 0) {
      throw skip("the medium has no W: backprop (through the measured matrix), in_silico, physics_aware, hybrid, "
                 "weight_perturbation, spsa and forward_forward train it");
    } else {
      const bool train_mask = substrate == "scattering";
      noise = std::string(scattering_model_description) + (train_mask ? "" : ", control phases frozen");
      scattering_net net({in, scattering_camera, out}, pnn::seed{cfg.seed, cfg.engine},
                         scattering_params(true, train_mask));
      return f(net);
    }
  }
  if (substrate == "diffractive") {
    // A D2NN on the whole image: the 28 x 28 picture is the field's amplitude, five phase masks
    // shape it, ten detector regions are the class scores (+ a digital bias). No hidden layers.
    if (sweep) throw skip("sweeps on diffractive are not defined");
#if PNN_HAS_DIFFRACTIVE
    if constexpr ((Models & without_w) == 0) {
      throw skip("the D2NN is one physical layer with no W: backprop (adjoint field), in_silico, physics_aware, "
                 "weight_perturbation, spsa and forward_forward train it");
    } else {
      noise = diffractive_model_description;
      d2nn net({in, out}, pnn::seed{cfg.seed, cfg.engine}, diffractive_params(true));
      return f(net);
    }
#else
    throw skip("this build has no Eigen3 (libeigen3-dev), which physics::diffractive needs");
#endif
  }
  throw skip("substrate '" + substrate + "' has not landed in this build");
}

/// Mean over hidden layers of the angle (degrees) between `rule`'s estimate and backprop's on a
/// probe batch of the same network (the library's alignment diagnostics).
template <class Net, class Rule>
double alignment_angle(Net& net, Rule& rule, const xt::xtensor<float, 2>& x, const xt::xtensor<float, 2>& t) {
  pnn::rng g(0xa11);
  return pnn::mean_hidden_angle(pnn::alignment_angles(net, rule, x, t, pnn::loss::softmax_cross_entropy{}, g));
}

/// Test accuracy by the network's feed-forward output (the default evaluator).
struct feedforward_accuracy {
  template <class Net>
  double operator()(const Net&, const pnn::data::dataset&, std::size_t) const {
    return std::nan("");  // pnn::train evaluates it itself (train_options::test)
  }
  static constexpr bool builtin = true;
};

/// Energy per inference of `net` as the rule's network infers (a feed-forward pass, or a free
/// relaxation): the evaluator on 256 test images with a counter attached.
template <class Net, class Loss, class Eval = feedforward_accuracy>
double inference_energy(const config& cfg, const pnn::data::split& d, Net& net, const Loss& loss, Eval eval = {},
                        std::size_t epoch = 0) {
  const pnn::data::dataset probe = pnn::data::subset(d.test, 0, std::min<std::size_t>(256, d.test.size()));
  pnn::cost_counter counter;
  pnn::attach_cost_counter(net, &counter);
  const pnn::simd::kernel_work w0 = pnn::simd::kernel_work_on_this_thread();
  constexpr bool builtin_eval = requires { Eval::builtin; };
  if constexpr (builtin_eval) (void)pnn::evaluate(net, loss, probe);
  else (void)eval(net, probe, epoch);
  const pnn::simd::kernel_work iw = pnn::simd::kernel_work_on_this_thread() - w0;
  pnn::attach_cost_counter(net, nullptr);
  return pnn::estimate_energy(counter.totals(), iw, cfg.energy).total() / double(probe.size());
}

/// Energy of the training run (its events and digital work, and any twin trained before it)
/// and of inference (the run's evaluator on 256 test images with a counter attached), per sample.
template <class Net, class Loss, class Eval>
void measure_energy(const config& cfg, const pnn::data::split& d, Net& net, const pnn::history& h, result& r,
                    const Loss& loss, Eval& eval) {
  pnn::physical_events events = r.pretraining_events;
  pnn::simd::kernel_work work = r.pretraining_work;
  for (const auto& m : h) {
    if (!r.simulated_physics) events += m.events;
    work.flops += m.digital_work.flops;
    work.bytes += m.digital_work.bytes;
  }
  const double samples = double(d.train.size() * h.size());
  auto& e = r.energy;
  e.train = pnn::estimate_energy(events, work, cfg.energy);
  e.train_joules_per_sample = e.train.total() / samples;
  e.train_latency_per_sample = e.train.latency / samples;
  e.physical_passes_per_sample = double(events.reads + events.transposed_reads) / samples;
  e.pulses_per_sample = double(events.pulses) / samples;
  e.digital_flops_per_sample = double(work.flops) / samples;
  e.inference_joules_per_sample = inference_energy(cfg, d, net, loss, eval, h.size());
  e.deployment_joules = pnn::estimate_energy(r.pretraining_events, {}, cfg.energy).total();
}

/// Programs `twin`'s weights onto `physical` (`pnn::deploy`) and returns what the substrate
/// did (one write of every device): the programming cost of a deployment.
template <class Twin, class Physical>
pnn::physical_events deploy_counted(const config& cfg, const Twin& twin, Physical& physical) {
  pnn::cost_counter counter;
  pnn::attach_cost_counter(physical, &counter);
  pnn::rng g(cfg.seed, 0xde9, cfg.engine);
  pnn::deploy(twin, physical, g);
  pnn::attach_cost_counter(physical, nullptr);
  return counter.totals();
}

template <class Tile>
inline constexpr bool has_pcm_inference =
    requires(Tile& t, const pnn::physics::pcm_inference_params& p, pnn::rng& g) { t.program_inference(p, g); };

/// True when every layer of `Net` is an array that can be programmed for PCM inference.
template <class Net>
constexpr bool pcm_deployable() {
  bool all = true;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((all = all && has_pcm_inference<typename Net::template layer_type<I>::tile_type>), ...);
  }(std::make_index_sequence<Net::num_layers>{});
  return all;
}

/// The scorecard's drift columns: the trained network's effective weights (what its reads
/// compute with, static variation included) are programmed onto PCM conductance pairs behind
/// the same periphery — aihwkit's PCM inference model (docs/physics.md, "PCM inference"):
/// programming noise, drift ν per device, 1/f read noise — and tested 1 day and 1 year after
/// programming, without and with global drift compensation. The same read-noise draws serve
/// both, so the difference is the compensation's alone. Substrates of other physics get none.
template <class Net, class Loss, class Eval>
void measure_drift(const config& cfg, const pnn::data::split& d, const Net& net, result& r, const Loss& loss,
                   Eval& eval, std::size_t epoch) {
  if constexpr (pcm_deployable<Net>()) {
    if (!cfg.drift) return;
    using substrate_t = typename Net::template layer_type<0>::substrate_type;
    using plain_t = pnn::rebind_t<Net, substrate_t, pnn::noise::none>;
    plain_t pcm;
    const auto sizes = net.sizes();
    pcm.initialize(sizes.data(), pnn::seed{cfg.seed, cfg.engine});
    std::vector<float> w;
    net.for_each_layer([&](const auto& l, std::size_t i) {
      pcm.for_each_layer([&](auto& pl, std::size_t j) {
        if (i != j) return;
        w.resize(l.tile.in_size() * l.tile.out_size());
        l.with_read_tile([&](const auto& t) { t.effective_weights(w.data()); });
        pl.tile.set_params(l.tile.parameters());
        std::copy(w.begin(), w.end(), pl.tile.weight_data());
        std::copy(l.tile.bias_data(), l.tile.bias_data() + l.tile.out_size(), pl.tile.bias_data());
      });
    });
    pnn::rng gp(cfg.seed, 0x9c3, cfg.engine);
    pnn::physics::program_inference(pcm, pnn::physics::pcm_inference_params{}, gp);
    constexpr bool builtin_eval = requires { Eval::builtin; };
    std::size_t k = 0;
    for (const double seconds : {86400.0, 365.25 * 86400.0}) {
      ++k;
      for (const bool compensated : {false, true}) {
        pnn::physics::set_drift_compensation(pcm, compensated);
        pnn::rng gt(cfg.seed, 0x71e0 + k, cfg.engine);
        pnn::physics::set_time(pcm, seconds, gt);
        double acc = 0;
        if constexpr (builtin_eval) acc = pnn::evaluate(pcm, loss, d.test).accuracy;
        else acc = eval(pcm, d.test, epoch);
        r.drift.push_back({seconds, compensated, acc});
      }
    }
  } else {
    (void)cfg, (void)d, (void)net, (void)r, (void)loss, (void)eval, (void)epoch;
  }
}

/// One epoch's metrics as `--checkpoint-dir` keeps them (every field, events and work included).
inline nlohmann::json epoch_to_json(const pnn::epoch_metrics& m) {
  const auto& e = m.events;
  return {{"epoch", m.epoch}, {"train_loss", m.train_loss}, {"train_accuracy", m.train_accuracy},
          {"test_loss", m.test_loss}, {"test_accuracy", m.test_accuracy}, {"seconds", m.seconds},
          {"samples_per_second", m.samples_per_second}, {"eval_seconds", m.eval_seconds}, {"extra", m.extra},
          {"flops", m.digital_work.flops}, {"bytes", m.digital_work.bytes},
          {"events", {e.reads, e.transposed_reads, e.macs, e.dac_conversions, e.adc_conversions, e.pulses,
                      e.parameter_writes, e.dac_levels, e.adc_levels, e.pulse_slots, e.array_vectors, e.optical_vectors,
                      e.optical_channels, e.held_element_vectors, e.settled_vectors, e.circuit_executions,
                      e.circuit_shots}},
          {"array_drive", e.array_drive}, {"dissipation", e.dissipation}, {"oscillator_time", e.oscillator_time},
          {"oscillator_run_time", e.oscillator_run_time}};
}
inline pnn::epoch_metrics epoch_from_json(const nlohmann::json& j) {
  auto num = [](const nlohmann::json& v) { return v.is_null() ? std::nan("") : v.get<double>(); };
  pnn::epoch_metrics m;
  m.epoch = j.at("epoch").get<std::size_t>();
  m.train_loss = num(j.at("train_loss"));
  m.train_accuracy = num(j.at("train_accuracy"));
  m.test_loss = num(j.at("test_loss"));
  m.test_accuracy = num(j.at("test_accuracy"));
  m.seconds = num(j.at("seconds"));
  m.samples_per_second = num(j.at("samples_per_second"));
  m.eval_seconds = num(j.at("eval_seconds"));
  m.extra = j.at("extra").get<std::map<std::string, double>>();
  m.digital_work = {j.at("flops").get<std::uint64_t>(), j.at("bytes").get<std::uint64_t>()};
  const auto v = j.at("events").get<std::vector<std::uint64_t>>();
  if (v.size() != 17) throw std::runtime_error("checkpoint: events of another version");
  auto& e = m.events;
  std::uint64_t* f[] = {&e.reads, &e.transposed_reads, &e.macs, &e.dac_conversions, &e.adc_conversions, &e.pulses,
                        &e.parameter_writes, &e.dac_levels, &e.adc_levels, &e.pulse_slots, &e.array_vectors,
                        &e.optical_vectors, &e.optical_channels, &e.held_element_vectors, &e.settled_vectors,
                        &e.circuit_executions, &e.circuit_shots};
  for (std::size_t k = 0; k < 17; ++k) *f[k] = v[k];
  e.array_drive = num(j.at("array_drive"));
  e.dissipation = num(j.at("dissipation"));
  e.oscillator_time = num(j.at("oscillator_time"));
  e.oscillator_run_time = num(j.at("oscillator_run_time"));
  return m;
}

/// Networks whose every substrate declares its state (every shipped one does; a user substrate may not).
template <class Tile>
inline constexpr bool tile_checkpointable = requires(Tile& t, pnn::detail::state_writer& w) { t.visit_state(w); };
template <class Net>
inline constexpr bool tiles_checkpointable = false;
template <class... L>
inline constexpr bool tiles_checkpointable<pnn::network<L...>> = (tile_checkpointable<typename L::tile_type> && ...);

/// `--checkpoint-dir` for one training run: after every epoch the network and the rule's state go
/// to `<stem>.epoch<k>.pnn`, then `<stem>.progress.json` (written atomically, last) names it with
/// the epochs' metrics; a later run of the same job resumes from there bit for bit (the training
/// loop draws by (seed, epoch, batch)). A rule without a kept state (`kept_state_for`) is not
/// checkpointed mid-run: it is re-run whole.
///
/// In a data-parallel run rank 0 alone reads and writes the files; what it read reaches every
/// rank (`share_from_root`), which all decode the same bytes, so every rank resumes from the
/// same epoch or none does, and no rank waits for another that started over.
template <class Net, class Rule>
struct epoch_checkpoints {
  std::string stem;
  std::function<void(std::string&)> share_from_root{};
  bool writer = true;
  std::vector<pnn::epoch_metrics> done{};
  double untrained_accuracy = 0;
  static constexpr bool possible = [] {
    if constexpr (requires(Rule& r, Net& n) { r.kept_state_for(n); }) {
      using state_t = std::remove_cvref_t<decltype(std::declval<Rule&>().kept_state_for(std::declval<Net&>()))>;
      return tiles_checkpointable<Net> && requires(state_t& st, pnn::detail::state_writer& w) { st.visit_state(w); };
    } else {
      return false;
    }
  }();

  /// Loads the last checkpoint if there is one; true when the run resumes. Nothing changes
  /// when it returns false.
  bool resume(Net& net, Rule& rule) {
    if constexpr (possible) {
      namespace fs = std::filesystem;
      if (stem.empty()) return false;
      const std::string progress = stem + ".progress.json";
      auto read_text = [](const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        if (!f) throw std::runtime_error("cannot open '" + path + "'");
        return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      };
      std::string text, state, why;
      if (writer) {
        try {
          if (fs::exists(progress)) {
            text = read_text(progress);
            state = read_text(nlohmann::json::parse(text).at("state").get<std::string>());
          }
        } catch (const std::exception& e) {
          why = e.what();
        }
      }
      if (share_from_root) {
        share_from_root(text);
        share_from_root(state);
        share_from_root(why);
      }
      try {
        if (!why.empty()) throw std::runtime_error(why);
        if (text.empty()) return false;
        // Everything read and checked before the network or the rule changes.
        const nlohmann::json j = nlohmann::json::parse(text);
        std::vector<pnn::epoch_metrics> epochs;
        for (const auto& e : j.at("epochs")) epochs.push_back(epoch_from_json(e));
        const double untrained = j.at("untrained_accuracy").get<double>();
        const auto* bytes = reinterpret_cast<const std::byte*>(state.data());
        pnn::io::from_bytes(std::span<const std::byte>(bytes, state.size()),
                            "pnn::io::load: '" + j.at("state").get<std::string>() + "'",
                            pnn::state_part{"network", net}, pnn::state_part{"rule", rule.kept_state_for(net)});
        done = std::move(epochs);
        untrained_accuracy = untrained;
        if (writer) std::fprintf(stderr, "pnn-bench: %s: resumes after epoch %zu\n", progress.c_str(), done.size());
        return true;
      } catch (const std::exception& e) {
        if (writer) std::fprintf(stderr, "pnn-bench: %s: not resumed (%s); the run starts over\n", progress.c_str(), e.what());
        return false;
      }
    } else {
      (void)net, (void)rule;
      return false;
    }
  }

  /// Saves after an epoch: the new state file, then the progress that names it, then the old
  /// state file is removed. A kill at any moment leaves a progress file naming a complete state.
  /// Every rank keeps the epoch's metrics; only the writer touches files.
  void save(const Net& net, Rule& rule, const pnn::epoch_metrics& m) {
    if constexpr (possible) {
      done.push_back(m);
      if (!writer) return;
      const std::string state = stem + ".epoch" + std::to_string(m.epoch) + ".pnn";
      pnn::io::save(net, rule.kept_state_for(net), state);
      nlohmann::json j{{"state", state}, {"untrained_accuracy", untrained_accuracy}, {"epochs", nlohmann::json::array()}};
      for (const auto& e : done) j["epochs"].push_back(epoch_to_json(e));
      const std::string progress = stem + ".progress.json", tmp = progress + ".tmp";
      {
        std::ofstream f(tmp, std::ios::trunc);
        f << j.dump() << "\n";
        if (!f.flush()) throw std::runtime_error("cannot write '" + tmp + "'");
      }
      std::filesystem::rename(tmp, progress);
      if (m.epoch > 1) std::filesystem::remove(stem + ".epoch" + std::to_string(m.epoch - 1) + ".pnn");
    } else {
      (void)net, (void)rule, (void)m;
    }
  }
};

/// Trains `net` with `rule` and fills `r`'s measurements; `align` adds the alignment angle.
/// `Eval` measures test accuracy where a rule's network computes its output another way
/// (equilibrium propagation: at the free equilibrium).
template <class Net, class Rule, class Loss = pnn::loss::softmax_cross_entropy, class Eval = feedforward_accuracy>
result train_and_measure(const config& cfg, const pnn::data::split& d, Net& net, Rule& rule, result r, bool align,
                         const Loss& loss = {}, Eval eval = {}) {
  // The alignment angle is a mean over hidden layers: a one-layer network (the D2NN) has none.
  if constexpr (Net::num_layers < 2) align = false;
  if constexpr (programs_in_steps<Net>()) {
    r.settings["crossbar_update"] = cfg.crossbar_update;
    const auto& dev = device_model(cfg);
    dev.visit([&](const auto& m) {
      r.settings["device"] = {{"name", cfg.device}, {"model", dev.model_name()}, {"dw_min", m.dw_min},
                              {"dw_min_dtod", m.dw_min_dtod}, {"dw_min_std", m.dw_min_std}, {"up_down", m.up_down},
                              {"w_min", m.w_min}, {"w_max", m.w_max}, {"pair", dev.pair()}};
    });
    if (cfg.crossbar_update == "mixed_precision") {
      r.settings["update_transfer"] = "mixed_precision (digital accumulator, whole dw_min pulses)";
    } else if (cfg.crossbar_update == "sgd") {
      r.settings["update_transfer"] = "stochastic pulse trains of every estimate (plain pulsed SGD)";
      r.settings["crossbar_lr"] = rule.parameters().optimizer.pulsed.learning_rate;
    } else {
      const auto& t = rule.parameters().optimizer.transfer;
      r.settings["update_transfer"] = std::string("transfer compound ") + pnn::optim::to_string(t.algorithm) +
                                      " (fast array + transfers of its columns)";
      r.settings["transfer"] = {{"learning_rate", t.learning_rate}, {"fast_lr", t.fast_lr},
                                {"transfer_lr", t.transfer_lr},     {"transfer_every", t.transfer_every},
                                {"in_chop_prob", t.in_chop_prob},   {"zero_shift", t.zero_shift},
                                {"buffer_floats", t.buffer_floats(net)}, {"buffer_precision_bits", 32}};
    }
  }
  const std::size_t probe = std::min<std::size_t>(256, d.train.size());
  const xt::xtensor<float, 2> px = xt::view(d.train.inputs, xt::range(0, probe), xt::all());
  const xt::xtensor<float, 2> pt = xt::view(d.train.targets, xt::range(0, probe), xt::all());
  constexpr bool builtin_eval = requires { Eval::builtin; };
  pnn::train_options opt{.epochs = cfg.epochs, .batch = cfg.batch, .seed = cfg.seed, .engine = cfg.engine,
                         .test = builtin_eval ? &d.test : nullptr, .progress = pnn::progress_mode::never};
  // Evaluation and probes are timed apart from training: samples/s is training throughput.
  auto timed = [](pnn::epoch_metrics& m, auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    m.eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  if constexpr (!builtin_eval)
    opt.callbacks.push_back([&](pnn::epoch_metrics& m) {
      timed(m, [&] { m.test_accuracy = eval(net, d.test, m.epoch); });
      return true;
    });
  if (align)
    opt.callbacks.push_back([&](pnn::epoch_metrics& m) {
      timed(m, [&] { m.extra["alignment_angle_deg"] = alignment_angle(net, rule, px, pt); });
      return true;
    });
  epoch_checkpoints<Net, Rule> ckpt{cfg.checkpoint_stem, cfg.share_from_root, cfg.writes_checkpoints};
  const bool checkpointing = !cfg.checkpoint_stem.empty() && epoch_checkpoints<Net, Rule>::possible;
  if (checkpointing && ckpt.resume(net, rule)) {
    r.untrained_accuracy = ckpt.untrained_accuracy;
    opt.first_epoch = ckpt.done.size() + 1;
  } else {
    if constexpr (builtin_eval) r.untrained_accuracy = pnn::evaluate(net, loss, d.test).accuracy;
    else r.untrained_accuracy = eval(net, d.test, std::size_t{0});
    ckpt.untrained_accuracy = r.untrained_accuracy;
  }
  // Every rank's replica's events, summed once per epoch (before the checkpoint keeps them).
  if (cfg.sum_over_ranks)
    opt.callbacks.push_back([&](pnn::epoch_metrics& m) {
      cfg.sum_over_ranks(m);
      return true;
    });
  if (checkpointing)
    opt.callbacks.push_back([&](pnn::epoch_metrics& m) {  // last: the metrics are complete
      ckpt.save(net, rule, m);
      return true;
    });
  pnn::cost_counter counter;
  opt.cost = &counter;
  r.settings["lr_scale"] = cfg.lr_scale;
  if (cfg.weight_decay > 0) r.settings["weight_decay"] = cfg.weight_decay;
  opt.data_parallel = cfg.data_parallel;
  if (cfg.data_parallel.shards != 0)
    r.settings["data_parallel"] = {{"ranks", cfg.data_parallel.parts}, {"shards", cfg.data_parallel.shards},
                                   {"exchange", cfg.data_parallel.factored ? "factored" : "dense"},
                                   {"energy", "every rank's replica: its reads of its part, and its programming"}};
  if (cfg.data_parallel.shards != 0 && cfg.data_parallel.factored) {
    // The layers whose factors travel instead of their update (a full batch's; a short last
    // batch may differ).
    const auto m = pnn::factored_exchange_layers<Rule>(net, cfg.batch);
    auto layers = nlohmann::json::array();
    for (std::size_t i = 0; i < m.size(); ++i)
      if (m[i]) layers.push_back(i);
    r.settings["data_parallel"]["factor_layers"] = std::move(layers);
  }
  auto h = opt.first_epoch <= opt.epochs ? pnn::train(net, rule, loss, d.train, opt) : pnn::history{};
  if (checkpointing) h = ckpt.done;
  r.epochs = h.size();
  r.physical_epochs = h.size();
  for (const auto& m : h) {
    r.train_seconds += m.seconds;
    r.eval_seconds += m.eval_seconds;
    nlohmann::json row{{"epoch", m.epoch}, {"train_loss", m.train_loss}, {"test_accuracy", m.test_accuracy},
                       {"seconds", m.seconds}, {"eval_seconds", m.eval_seconds}};
    if (auto it = m.extra.find("alignment_angle_deg"); it != m.extra.end()) row["alignment_angle_deg"] = it->second;
    r.history.push_back(row);
  }
  r.test_accuracy = h.back().test_accuracy;
  r.samples_per_second = r.train_seconds > 0 ? double(d.train.size() * h.size()) / r.train_seconds : 0;
  if (align) r.alignment_angle_deg = h.back().extra.at("alignment_angle_deg");
  measure_energy(cfg, d, net, h, r, loss, eval);
  measure_drift(cfg, d, net, r, loss, eval, h.size());
  return r;
}

/// The optimiser settings every runner records.
inline nlohmann::json optimizer_settings(const char* name, double lr, double momentum = 0) {
  nlohmann::json j{{"optimizer", name}, {"learning_rate", lr}};
  if (momentum != 0) j["momentum"] = momentum;
  return j;
}

}  // namespace pnn_bench
