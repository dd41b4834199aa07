// SPDX-License-Identifier: MIT
// pnn-bench: trains the same architecture under each selected learning rule and substrate on
// Fashion-MNIST and prints a Markdown table (optionally JSON, CSV and gnuplot figures).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <numeric>
#include <span>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "bench.hpp"
#include "distribute/world.hpp"

namespace pnn_bench {

std::map<std::string, runner>& registry() {
  static std::map<std::string, runner> r;
  return r;
}
bool add_rule(const std::string& name, runner r) {
  registry()[name] = std::move(r);
  return true;
}
const std::vector<std::string>& known_substrates() {
  static const std::vector<std::string> s{"digital", "crossbar", "crossbar_variation", "mzi", "resistor", "quantum", "spintronic", "diffractive",
                                          "scattering", "scattering_frozen"};
  return s;
}
const std::vector<std::string>& known_rules() {
  static const std::vector<std::string> r{"in_silico",          "backprop",          "physics_aware",
                                          "feedback_alignment", "direct_feedback_alignment",
                                          "equilibrium_propagation", "coupled_learning", "forward_gradient",
                                          "weight_perturbation", "node_perturbation", "spsa", "forward_forward",
                                          "hybrid"};
  return r;
}

namespace {

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

double parse_number(const std::string& s, const std::string& what) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || s.empty() || !std::isfinite(v)) throw usage_error(what + ": '" + s + "' is not a number");
  return v;
}

nlohmann::json to_json(const result& r) {
  if (r.skipped) return {{"rule", r.rule}, {"substrate", r.substrate}, {"skipped", *r.skipped}};
  nlohmann::json j{{"rule", r.rule},
                   {"substrate", r.substrate},
                   {"noise", r.noise},
                   {"epochs", r.epochs},
                   {"physical_epochs", r.physical_epochs},
                   {"twin_epochs", r.twin_epochs},
                   {"test_accuracy", r.test_accuracy},
                   {"untrained_accuracy", r.untrained_accuracy},
                   {"train_seconds", r.train_seconds},
                   {"samples_per_second", r.samples_per_second},
                   {"eval_seconds", r.eval_seconds},
                   {"alignment_angle_deg", nullptr},
                   {"settings", r.settings},
                   {"sweep", nullptr},
                   {"history", r.history}};
  const auto& e = r.energy;
  j["energy"] = {{"train_joules_per_sample", e.train_joules_per_sample},
                 {"inference_joules_per_sample", e.inference_joules_per_sample},
                 {"train_latency_seconds_per_sample", e.train_latency_per_sample},
                 {"physical_passes_per_sample", e.physical_passes_per_sample},
                 {"pulses_per_sample", e.pulses_per_sample},
                 {"digital_flops_per_sample", e.digital_flops_per_sample},
                 {"deployment_joules", e.deployment_joules},
                 {"train_joules_by_kind",
                  {{"array", e.train.array},
                   {"converters", e.train.converters},
                   {"programming", e.train.programming},
                   {"optical", e.train.optical},
                   {"resistive", e.train.resistive},
                   {"quantum", e.train.quantum},
                   {"oscillators", e.train.oscillators},
                   {"digital", e.train.digital}}}};
  if (r.alignment_angle_deg) j["alignment_angle_deg"] = *r.alignment_angle_deg;
  j["seeds"] = r.seeds;
  j["test_accuracy_std"] = r.test_accuracy_std;
  if (!r.per_seed.empty()) {
    nlohmann::json ps = nlohmann::json::array();
    for (const auto& [seed, acc] : r.per_seed) ps.push_back({{"seed", seed}, {"test_accuracy", acc}});
    j["per_seed"] = ps;
  }
  if (r.sweep) j["sweep"] = {{"param", r.sweep->param}, {"value", r.sweep->value}};
  if (r.gap_to_backprop) j["gap_to_backprop"] = *r.gap_to_backprop;
  if (r.hardware_condition) j["hardware_condition"] = {{"kind", r.hardware_condition->kind}, {"sigma", r.hardware_condition->value}};
  if (!r.drift.empty()) {
    nlohmann::json dj = nlohmann::json::array();
    for (const auto& p : r.drift)
      dj.push_back({{"seconds", p.seconds}, {"compensated", p.compensated}, {"test_accuracy", p.accuracy}});
    j["pcm_drift"] = dj;
  }
  return j;
}

// A finished run as `--checkpoint-dir` keeps it: its JSON row plus what the row leaves out but
// the aggregation over seeds reads (the energy model's latency).
nlohmann::json to_checkpoint_json(const result& r) {
  nlohmann::json j = to_json(r);
  if (!r.skipped) j["checkpoint"] = {{"train_latency", r.energy.train.latency}};
  return j;
}

// The inverse of `to_checkpoint_json`: a run restored from `--checkpoint-dir` prints and writes
// exactly what the run did.
result from_checkpoint_json(const nlohmann::json& j) {
  result r;
  r.rule = j.at("rule").get<std::string>();
  r.substrate = j.at("substrate").get<std::string>();
  if (j.contains("skipped")) {
    r.skipped = j.at("skipped").get<std::string>();
    return r;
  }
  auto num = [](const nlohmann::json& v) { return v.is_null() ? std::nan("") : v.get<double>(); };
  r.noise = j.at("noise").get<std::string>();
  r.epochs = j.at("epochs").get<std::size_t>();
  r.physical_epochs = j.at("physical_epochs").get<std::size_t>();
  r.twin_epochs = j.at("twin_epochs").get<std::size_t>();
  r.test_accuracy = num(j.at("test_accuracy"));
  r.untrained_accuracy = num(j.at("untrained_accuracy"));
  r.train_seconds = num(j.at("train_seconds"));
  r.samples_per_second = num(j.at("samples_per_second"));
  r.eval_seconds = num(j.at("eval_seconds"));
  if (!j.at("alignment_angle_deg").is_null()) r.alignment_angle_deg = num(j.at("alignment_angle_deg"));
  r.settings = j.at("settings");
  r.history = j.at("history");
  const auto& e = j.at("energy");
  r.energy.train_joules_per_sample = num(e.at("train_joules_per_sample"));
  r.energy.inference_joules_per_sample = num(e.at("inference_joules_per_sample"));
  r.energy.train_latency_per_sample = num(e.at("train_latency_seconds_per_sample"));
  r.energy.physical_passes_per_sample = num(e.at("physical_passes_per_sample"));
  r.energy.pulses_per_sample = num(e.at("pulses_per_sample"));
  r.energy.digital_flops_per_sample = num(e.at("digital_flops_per_sample"));
  r.energy.deployment_joules = num(e.at("deployment_joules"));
  const auto& k = e.at("train_joules_by_kind");
  r.energy.train.array = num(k.at("array"));
  r.energy.train.converters = num(k.at("converters"));
  r.energy.train.programming = num(k.at("programming"));
  r.energy.train.optical = num(k.at("optical"));
  r.energy.train.resistive = num(k.at("resistive"));
  r.energy.train.quantum = num(k.at("quantum"));
  r.energy.train.oscillators = num(k.at("oscillators"));
  r.energy.train.digital = num(k.at("digital"));
  r.energy.train.latency = num(j.at("checkpoint").at("train_latency"));
  r.seeds = j.at("seeds").get<std::size_t>();
  r.test_accuracy_std = num(j.at("test_accuracy_std"));
  if (j.contains("per_seed"))
    for (const auto& p : j.at("per_seed")) r.per_seed.emplace_back(p.at("seed").get<std::uint64_t>(), num(p.at("test_accuracy")));
  if (!j.at("sweep").is_null()) r.sweep = sweep_point{j.at("sweep").at("param").get<std::string>(), num(j.at("sweep").at("value"))};
  if (j.contains("gap_to_backprop")) r.gap_to_backprop = num(j.at("gap_to_backprop"));
  if (j.contains("hardware_condition"))
    r.hardware_condition = condition{j.at("hardware_condition").at("kind").get<std::string>(), num(j.at("hardware_condition").at("sigma"))};
  if (j.contains("pcm_drift"))
    for (const auto& p : j.at("pcm_drift"))
      r.drift.push_back({num(p.at("seconds")), p.at("compensated").get<bool>(), num(p.at("test_accuracy"))});
  return r;
}

void write_file_atomically(const std::filesystem::path& p, const std::string& text) {
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  const auto tmp = std::filesystem::path(p.string() + ".tmp");
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    if (!f.flush()) throw std::runtime_error("cannot write '" + p.string() + "'");
  }
  std::filesystem::rename(tmp, p);
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// A whole number in [lo, hi]. A negative value must not wrap around into a huge count.
std::size_t parse_count(const std::string& s, const std::string& what, double lo, double hi) {
  const double v = parse_number(s, what);
  if (v != std::floor(v) || v < lo || v > hi)
    throw usage_error(what + ": '" + s + "' must be a whole number in [" + fmt("%.0f", lo) + ", " + fmt("%.0f", hi) + "]");
  return static_cast<std::size_t>(v);
}

// An energy with its SI prefix: 3.2 µJ, 410 nJ.
std::string joules(double j) {
  if (!(j > 0)) return "0 J";
  static const std::pair<double, const char*> units[] = {{1, "J"}, {1e-3, "mJ"}, {1e-6, "µJ"}, {1e-9, "nJ"}, {1e-12, "pJ"}};
  for (const auto& [scale, name] : units)
    if (j >= scale) return fmt("%.3g ", j / scale) + name;
  return fmt("%.3g fJ", j / 1e-15);
}

// Equal budgets made visible: "3" for a rule trained on the substrate alone, "0 + 3 twin" for
// one whose epochs were all spent on a digital twin, "3 + 3 twin" for one that starts from it.
std::string epochs_cell(const result& r) {
  if (r.twin_epochs == 0) return std::to_string(r.physical_epochs);
  return std::to_string(r.physical_epochs) + " + " + std::to_string(r.twin_epochs) + " twin";
}

// A duration with its SI prefix: 2.1 µs, 310 ns.
std::string seconds_si(double t) {
  if (!(t > 0)) return "0 s";
  static const std::pair<double, const char*> units[] = {{1, "s"}, {1e-3, "ms"}, {1e-6, "µs"}, {1e-9, "ns"}};
  for (const auto& [scale, name] : units)
    if (t >= scale) return fmt("%.3g ", t / scale) + name;
  return fmt("%.3g ps", t / 1e-12);
}

std::string markdown_table(const std::vector<result>& rows) {
  std::string s =
      "| rule | substrate | noise | epochs (physical + twin) | test accuracy | train time | samples/s | alignment angle | energy / training sample | energy / inference |\n"
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    std::string rule = r.rule + (r.sweep ? " (" + r.sweep->param + "=" + fmt("%g", r.sweep->value) + ")" : "");
    if (r.skipped) {
      s += "| " + rule + " | " + r.substrate + " | — | — | skipped: " + *r.skipped + " | | | | | |\n";
      continue;
    }
    s += "| " + rule + " | " + r.substrate + " | " + r.noise + " | " + epochs_cell(r) + " | " +
         (r.seeds > 1 ? fmt("%.2f", 100 * r.test_accuracy) + fmt(" ± %.2f %%", 100 * r.test_accuracy_std)
                      : fmt("%.2f %%", 100 * r.test_accuracy)) +
         (r.gap_to_backprop ? fmt(" (%+.2f vs backprop)", 100 * *r.gap_to_backprop) : std::string()) +
         " | " + fmt("%.1f s", r.train_seconds) + " | " +
         fmt("%.0f", r.samples_per_second) + " | " +
         (r.alignment_angle_deg ? fmt("%.1f°", *r.alignment_angle_deg) : std::string("—")) + " | " +
         joules(r.energy.train_joules_per_sample) + " | " + joules(r.energy.inference_joules_per_sample) + " |\n";
  }
  return s;
}

std::string csv(const std::vector<result>& rows) {
  std::string s = "rule,substrate,noise,epochs,test_accuracy,train_seconds,samples_per_second,alignment_angle_deg,"
                  "sweep_param,sweep_value,skipped,eval_seconds,train_joules_per_sample,inference_joules_per_sample,"
                  "train_latency_seconds_per_sample,physical_passes_per_sample,pulses_per_sample,digital_flops_per_sample,"
                  "physical_epochs,twin_epochs,deployment_joules\n";
  for (const auto& r : rows)
    s += r.rule + "," + r.substrate + "," + r.noise + "," + std::to_string(r.epochs) + "," +
         fmt("%.6f", r.test_accuracy) + "," + fmt("%.3f", r.train_seconds) + "," + fmt("%.1f", r.samples_per_second) +
         "," + (r.alignment_angle_deg ? fmt("%.3f", *r.alignment_angle_deg) : "") + "," +
         (r.sweep ? r.sweep->param : "") + "," + (r.sweep ? fmt("%g", r.sweep->value) : "") + "," +
         (r.skipped ? "\"" + *r.skipped + "\"" : "") + "," + (r.skipped ? "" : fmt("%.3f", r.eval_seconds)) +
         (r.skipped ? std::string(",,,,,,,,,")
                    : "," + fmt("%.4g", r.energy.train_joules_per_sample) + "," + fmt("%.4g", r.energy.inference_joules_per_sample) +
                          "," + fmt("%.4g", r.energy.train_latency_per_sample) + "," +
                          fmt("%.4g", r.energy.physical_passes_per_sample) + "," + fmt("%.4g", r.energy.pulses_per_sample) +
                          "," + fmt("%.4g", r.energy.digital_flops_per_sample) + "," + std::to_string(r.physical_epochs) +
                          "," + std::to_string(r.twin_epochs) + "," + fmt("%.4g", r.energy.deployment_joules)) +
         "\n";
  return s;
}

// One row per `seeds` consecutive runs: means of every measurement (per epoch for the
// history), the accuracy's sample standard deviation, and each run's accuracy. A row is
// skipped if any of its runs was.
std::vector<result> mean_over_seeds(const std::vector<result>& runs, std::size_t seeds) {
  if (seeds <= 1) return runs;
  std::vector<result> rows;
  for (std::size_t first = 0; first < runs.size(); first += seeds) {
    const std::size_t n = std::min(seeds, runs.size() - first);
    result m = runs[first];
    for (std::size_t k = 0; k < n; ++k)
      if (runs[first + k].skipped) m = runs[first + k];
    m.seeds = n;
    if (m.skipped) {
      rows.push_back(m);
      continue;
    }
    auto mean = [&](auto get) {
      double acc = 0;
      for (std::size_t k = 0; k < n; ++k) acc += get(runs[first + k]);
      return acc / double(n);
    };
    m.test_accuracy = mean([](const result& r) { return r.test_accuracy; });
    double var = 0;
    m.per_seed.clear();
    for (std::size_t k = 0; k < n; ++k) {
      const double dev = runs[first + k].test_accuracy - m.test_accuracy;
      var += dev * dev;
      m.per_seed.push_back(runs[first + k].per_seed.at(0));
    }
    m.test_accuracy_std = n > 1 ? std::sqrt(var / double(n - 1)) : 0.0;
    if (m.settings.contains("tuning")) {
      // Every seed chooses its own scale: keep each choice beside the first seed's record.
      nlohmann::json per_seed = nlohmann::json::array();
      for (std::size_t k = 0; k < n; ++k) {
        const auto& t = runs[first + k].settings.at("tuning");
        per_seed.push_back({{"seed", runs[first + k].per_seed.at(0).first},
                            {"validation_accuracy", t.at("validation_accuracy")},
                            {"chosen", t.at("chosen")}});
      }
      m.settings["tuning_per_seed"] = per_seed;
    }
    m.untrained_accuracy = mean([](const result& r) { return r.untrained_accuracy; });
    m.train_seconds = mean([](const result& r) { return r.train_seconds; });
    m.samples_per_second = mean([](const result& r) { return r.samples_per_second; });
    m.eval_seconds = mean([](const result& r) { return r.eval_seconds; });
    if (m.alignment_angle_deg) m.alignment_angle_deg = mean([](const result& r) { return r.alignment_angle_deg.value_or(0.0); });
    auto& e = m.energy;
    e.train_joules_per_sample = mean([](const result& r) { return r.energy.train_joules_per_sample; });
    e.inference_joules_per_sample = mean([](const result& r) { return r.energy.inference_joules_per_sample; });
    e.train_latency_per_sample = mean([](const result& r) { return r.energy.train_latency_per_sample; });
    e.physical_passes_per_sample = mean([](const result& r) { return r.energy.physical_passes_per_sample; });
    e.pulses_per_sample = mean([](const result& r) { return r.energy.pulses_per_sample; });
    e.digital_flops_per_sample = mean([](const result& r) { return r.energy.digital_flops_per_sample; });
    e.train.array = mean([](const result& r) { return r.energy.train.array; });
    e.train.converters = mean([](const result& r) { return r.energy.train.converters; });
    e.train.programming = mean([](const result& r) { return r.energy.train.programming; });
    e.train.optical = mean([](const result& r) { return r.energy.train.optical; });
    e.train.resistive = mean([](const result& r) { return r.energy.train.resistive; });
    e.train.quantum = mean([](const result& r) { return r.energy.train.quantum; });
    e.train.oscillators = mean([](const result& r) { return r.energy.train.oscillators; });
    e.train.digital = mean([](const result& r) { return r.energy.train.digital; });
    e.train.latency = mean([](const result& r) { return r.energy.train.latency; });
    e.deployment_joules = mean([](const result& r) { return r.energy.deployment_joules; });
    for (std::size_t p = 0; p < m.drift.size(); ++p)
      m.drift[p].accuracy = mean([&](const result& r) { return r.drift.at(p).accuracy; });
    // Per-epoch means of the curves (every run has the same epochs).
    for (std::size_t ep = 0; ep < m.history.size(); ++ep)
      for (const char* key : {"train_loss", "test_accuracy", "seconds", "eval_seconds"}) {
        double acc = 0;
        for (std::size_t k = 0; k < n; ++k) acc += runs[first + k].history.at(ep).at(key).get<double>();
        m.history[ep][key] = acc / double(n);
      }
    rows.push_back(std::move(m));
  }
  return rows;
}

// Learning curves (one panel per substrate), time per epoch and (with --sweep) accuracy against
// the swept parameter, as PNG through gnuplot. Data and script stay beside the figures so they
// can be re-plotted.
void plots(const std::vector<result>& rows, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const std::string term = "set terminal pngcairo noenhanced size ";
  std::vector<std::string> substrates;
  std::map<std::string, std::string> panels;  // substrate -> plot command
  std::map<std::string, std::size_t> rule_index;
  std::string times;
  std::map<std::string, std::string> sweep_data;
  int k = 0;
  for (const auto& r : rows) {
    if (r.skipped) continue;
    if (!r.sweep) {
      const auto f = dir / ("curve_" + std::to_string(k++) + ".dat");
      std::string d;
      for (const auto& h : r.history)
        d += std::to_string(h["epoch"].get<std::size_t>()) + " " + fmt("%.4f", 100 * h["test_accuracy"].get<double>()) + "\n";
      write_file_atomically(f, d);
      if (!panels.count(r.substrate)) substrates.push_back(r.substrate);
      auto& p = panels[r.substrate];
      // A colour, a marker and a dash pattern per rule, the same in every panel: twelve rules
      // stay apart on screen and in grey print.
      auto [it, fresh] = rule_index.try_emplace(r.rule, rule_index.size());
      const std::size_t ri = it->second;
      p += std::string(p.empty() ? "plot " : ", ") + "'" + f.string() + "' using 1:2 with linespoints lw 2 lc " +
           std::to_string(1 + ri) + " pt " + std::to_string(1 + ri % 13) + " dt " + std::to_string(1 + ri % 5) +
           " title '" + r.rule + "'";
      times += "\"" + r.rule + " / " + r.substrate + "\" " +
               fmt("%.3f", r.train_seconds / double(std::max<std::size_t>(1, r.epochs))) + "\n";
    } else {
      sweep_data[r.rule + " / " + r.substrate] += fmt("%g", r.sweep->value) + " " + fmt("%.4f", 100 * r.test_accuracy) + "\n";
    }
  }
  std::string script;
  if (!substrates.empty()) {
    const std::size_t n = substrates.size();
    script += term + std::to_string(560 * n) + ",620\nset output '" + (dir / "learning_curves.png").string() +
              "'\nset multiplot layout 1," + std::to_string(n) +
              "\nset xlabel 'epoch'\nset ylabel 'test accuracy (%)'\nset grid\nset key bottom right font ',8'\nset xtics 1\n";
    for (const auto& s : substrates) script += "set title '" + s + "'\n" + panels[s] + "\n";
    script += "unset multiplot\n";
    write_file_atomically(dir / "epoch_time.dat", times);
    script += term + "1100,650\nset output '" + (dir / "epoch_time.png").string() +
              "'\nunset title\nset style data histograms\nset style fill solid 0.8\nset boxwidth 0.8\n"
              "set xtics rotate by -60 font ',8'\nset ylabel 'seconds per epoch'\nunset xlabel\nset key off\nplot '" +
              (dir / "epoch_time.dat").string() + "' using 2:xtic(1)\n";
  }
  // One line per rule × substrate against the swept value: `series` label → "x y" lines.
  auto against_sweep = [&](const std::map<std::string, std::string>& series, const char* png, const char* prefix,
                           const char* ylabel) {
    if (series.empty()) return;
    std::string p = term + "900,600\nset output '" + (dir / png).string() +
                    "'\nunset style\nset xtics norotate\nset key outside right\nset grid\nset xlabel '" +
                    rows.front().sweep->param + "'\nset ylabel '" + ylabel + "'\nset style data linespoints\nplot ";
    int j = 0;
    for (const auto& [label, d] : series) {
      const auto f = dir / (prefix + std::to_string(j) + ".dat");
      write_file_atomically(f, d);
      p += std::string(j++ ? ", " : "") + "'" + f.string() + "' using 1:2 lw 2 title '" + label + "'";
    }
    script += p + "\n";
  };
  against_sweep(sweep_data, "noise_sweep.png", "sweep_", "test accuracy (%)");
  // The scaling study: gap to backprop against width or depth.
  std::map<std::string, std::string> gap_data;
  for (const auto& r : rows)
    if (r.gap_to_backprop)
      gap_data[r.rule + " / " + r.substrate] += fmt("%g", r.sweep->value) + " " + fmt("%.4f", 100 * *r.gap_to_backprop) + "\n";
  against_sweep(gap_data, "gap_to_backprop.png", "gap_", "test accuracy minus backprop (points)");
  // Accuracy against training energy: one point per rule × substrate, a colour and a marker
  // per rule, a label per substrate, log energy axis.
  std::map<std::string, std::string> energy_points;
  std::vector<std::string> energy_rules;
  for (const auto& r : rows) {
    if (r.skipped || r.sweep || !(r.energy.train_joules_per_sample > 0)) continue;
    if (!energy_points.count(r.rule)) energy_rules.push_back(r.rule);
    energy_points[r.rule] += fmt("%.6g", r.energy.train_joules_per_sample) + " " + fmt("%.4f", 100 * r.test_accuracy) +
                             " " + r.substrate + " " + fmt("%.4f", 100 * r.test_accuracy_std) + "\n";
  }
  if (!energy_rules.empty()) {
    std::string p = term + "1000,650\nset output '" + (dir / "accuracy_vs_energy.png").string() +
                    "'\nunset style\nset xtics norotate\nset logscale x\nset format x '%.0e'\nset grid\n"
                    "set key outside right font ',9'\nset xlabel 'training energy per sample (J)'\n"
                    "set ylabel 'test accuracy (%)'\nplot ";
    int j = 0;
    for (const auto& rule : energy_rules) {
      const auto f = dir / ("energy_" + std::to_string(j) + ".dat");
      write_file_atomically(f, energy_points[rule]);
      // Error bars: the standard deviation over seeds (zero with one seed).
      p += std::string(j ? ", " : "") + "'" + f.string() + "' using 1:2:4 with yerrorbars pt " + std::to_string(1 + j % 13) +
           " ps 1.6 lc " + std::to_string(1 + j) + " title '" + rule + "', '" + f.string() +
           "' using 1:2:3 with labels offset 0.8,0.4 font ',7' notitle";
      ++j;
    }
    script += p + "\nunset logscale x\nset format x '%g'\n";
  }
  // Final accuracy as a rule × substrate heat map, each cell labelled (skipped pairs blank).
  std::vector<std::string> hm_rules, hm_substrates;
  std::map<std::pair<std::string, std::string>, double> hm;
  for (const auto& r : rows) {
    if (r.sweep) continue;
    if (std::find(hm_rules.begin(), hm_rules.end(), r.rule) == hm_rules.end()) hm_rules.push_back(r.rule);
    if (std::find(hm_substrates.begin(), hm_substrates.end(), r.substrate) == hm_substrates.end())
      hm_substrates.push_back(r.substrate);
    if (!r.skipped) hm[{r.rule, r.substrate}] = 100 * r.test_accuracy;
  }
  if (!hm.empty()) {
    std::string cells, labels;
    for (std::size_t i = 0; i < hm_rules.size(); ++i) {
      for (std::size_t c = 0; c < hm_substrates.size(); ++c) {
        const auto it = hm.find({hm_rules[i], hm_substrates[c]});
        cells += std::string(c ? " " : "") + (it == hm.end() ? std::string("NaN") : fmt("%.2f", it->second));
        if (it != hm.end()) labels += std::to_string(c) + " " + std::to_string(i) + " " + fmt("%.1f", it->second) + "\n";
      }
      cells += "\n";
    }
    write_file_atomically(dir / "heatmap.dat", cells);
    write_file_atomically(dir / "heatmap_labels.dat", labels);
    std::string xt, yt;
    for (std::size_t c = 0; c < hm_substrates.size(); ++c) xt += std::string(c ? ", " : "") + "'" + hm_substrates[c] + "' " + std::to_string(c);
    for (std::size_t i = 0; i < hm_rules.size(); ++i) yt += std::string(i ? ", " : "") + "'" + hm_rules[i] + "' " + std::to_string(i);
    script += term + std::to_string(380 + 150 * hm_substrates.size()) + "," + std::to_string(160 + 40 * hm_rules.size()) +
              "\nset output '" + (dir / "accuracy_heatmap.png").string() +
              "'\nunset logscale\nunset key\nunset grid\nunset xlabel\nunset ylabel\nset title 'test accuracy (%)'\n"
              "set xtics (" + xt + ") norotate\nset ytics (" + yt + ")\nset yrange [" +
              std::to_string(hm_rules.size()) + "-0.5:-0.5]\nset xrange [-0.5:" + std::to_string(hm_substrates.size()) +
              "-0.5]\nset palette defined (0 '#ffffff', 1 '#9ecae1', 2 '#3182bd')\nplot '" + (dir / "heatmap.dat").string() +
              "' matrix with image, '" + (dir / "heatmap_labels.dat").string() +
              "' using 1:2:3 with labels font ',9' tc rgb 'black'\nset yrange [*:*]\nset xrange [*:*]\nunset title\n";
  }
  if (script.empty()) return;
  write_file_atomically(dir / "plots.gp", script);
  const std::string cmd = "gnuplot '" + (dir / "plots.gp").string() + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0)
    std::fprintf(stderr, "pnn-bench: gnuplot failed or is missing; data and script are in %s\n", dir.c_str());
}

// The scaling study (`--sweep hidden|depth`): each rule's accuracy minus backprop's on the same
// substrate and network shape.
void add_gap_to_backprop(std::vector<result>& rows) {
  for (auto& r : rows) {
    if (r.skipped || !r.sweep || (r.sweep->param != "hidden" && r.sweep->param != "depth") || r.rule == "backprop")
      continue;
    for (const auto& b : rows)
      if (b.rule == "backprop" && !b.skipped && b.substrate == r.substrate && b.sweep && b.sweep->param == r.sweep->param &&
          b.sweep->value == r.sweep->value)
        r.gap_to_backprop = r.test_accuracy - b.test_accuracy;
  }
}

// The scorecard (`--scorecard`): the review's criteria for a training method side by side, per
// rule × substrate — what it needs from the hardware, what it costs, and how its accuracy holds
// up under variation, read noise and drift.

/// What a rule needs: a model of the hardware, and which physical passes.
struct rule_needs {
  const char* model;
  const char* passes;
};
rule_needs needs_of(const std::string& rule) {
  static const std::map<std::string, rule_needs> n{
      {"in_silico", {"twin", "none: programs the twin's weights"}},
      {"backprop", {"none", "forward + transposed reads"}},
      {"physics_aware", {"twin", "forward; backward through the twin"}},
      {"feedback_alignment", {"none", "forward; fixed random feedback"}},
      {"direct_feedback_alignment", {"none", "forward; fixed random feedback"}},
      {"equilibrium_propagation", {"none", "free + nudged relaxations"}},
      {"coupled_learning", {"none", "free + clamped relaxations"}},
      {"forward_gradient", {"none", "forward with tangents"}},
      {"weight_perturbation", {"none", "forward only"}},
      {"node_perturbation", {"none", "forward only"}},
      {"spsa", {"none", "forward only"}},
      {"forward_forward", {"none", "forward only"}}};
  const auto it = n.find(rule);
  return it == n.end() ? rule_needs{"?", "?"} : it->second;
}

const std::vector<condition>& scorecard_conditions() {
  static const std::vector<condition> c{
      {"variation", 0.1}, {"variation", 0.3}, {"read_noise", 0.02}, {"read_noise", 0.05}, {"read_noise", 0.1}};
  return c;
}
constexpr double one_day = 86400.0, one_year = 365.25 * 86400.0;

struct scorecard_entry {
  const result* clean = nullptr;
  std::vector<const result*> under;  ///< one per scorecard condition; null where not run
};

std::vector<scorecard_entry> build_scorecard(const std::vector<result>& clean, const std::vector<result>& conditioned) {
  std::vector<scorecard_entry> out;
  for (const auto& r : clean) {
    if (r.sweep) continue;
    scorecard_entry e{&r, std::vector<const result*>(scorecard_conditions().size(), nullptr)};
    for (const auto& c : conditioned)
      for (std::size_t k = 0; k < scorecard_conditions().size(); ++k) {
        const auto& want = scorecard_conditions()[k];
        if (c.rule == r.rule && c.substrate == r.substrate && c.hardware_condition &&
            c.hardware_condition->kind == want.kind && c.hardware_condition->value == want.value)
          e.under[k] = &c;
      }
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<double> drift_accuracy(const result& r, double seconds, bool compensated) {
  for (const auto& p : r.drift)
    if (p.seconds == seconds && p.compensated == compensated) return p.accuracy;
  return std::nullopt;
}

std::string accuracy_cell(const result* r) {
  if (!r) return "—";
  if (r->skipped) return "skipped";
  return fmt("%.1f", 100 * r->test_accuracy) + (r->seeds > 1 ? fmt(" ± %.1f", 100 * r->test_accuracy_std) : "");
}

std::string scorecard_table(const std::vector<scorecard_entry>& card) {
  std::string s =
      "| rule | substrate | model | physical passes | epochs (physical + twin) | clean accuracy | energy / training "
      "sample | latency / training sample | energy / inference | variation 0.1 | variation 0.3 | read noise 0.02 | "
      "read noise 0.05 | read noise 0.1 | PCM drift 1 day (raw / compensated) | PCM drift 1 year (raw / compensated) |\n"
      "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& e : card) {
    const result& r = *e.clean;
    const rule_needs n = needs_of(r.rule);
    s += "| " + r.rule + " | " + r.substrate + " | " + n.model + " | " + n.passes + " | ";
    if (r.skipped) {
      s += "— | skipped: " + *r.skipped + " | | | | | | | | | | |\n";
      continue;
    }
    s += epochs_cell(r) + " | " + accuracy_cell(&r) + " | " + joules(r.energy.train_joules_per_sample) + " | " +
         seconds_si(r.energy.train_latency_per_sample) + " | " + joules(r.energy.inference_joules_per_sample) + " | ";
    for (const result* c : e.under) s += accuracy_cell(c) + " | ";
    for (const double t : {one_day, one_year}) {
      const auto raw = drift_accuracy(r, t, false), comp = drift_accuracy(r, t, true);
      s += (raw && comp ? fmt("%.1f", 100 * *raw) + fmt(" / %.1f", 100 * *comp) : std::string("—")) + " | ";
    }
    s.pop_back();
    s += "\n";
  }
  return s;
}

nlohmann::json scorecard_json(const std::vector<scorecard_entry>& card) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : card) {
    const result& r = *e.clean;
    const rule_needs n = needs_of(r.rule);
    nlohmann::json j{{"rule", r.rule}, {"substrate", r.substrate}, {"model", n.model}, {"physical_passes", n.passes}};
    if (r.skipped) {
      j["skipped"] = *r.skipped;
      out.push_back(j);
      continue;
    }
    j["physical_epochs"] = r.physical_epochs;
    j["twin_epochs"] = r.twin_epochs;
    j["clean"] = {{"test_accuracy", r.test_accuracy}, {"test_accuracy_std", r.test_accuracy_std}, {"seeds", r.seeds}};
    j["train_joules_per_sample"] = r.energy.train_joules_per_sample;
    j["train_latency_seconds_per_sample"] = r.energy.train_latency_per_sample;
    j["inference_joules_per_sample"] = r.energy.inference_joules_per_sample;
    j["conditions"] = nlohmann::json::array();
    for (std::size_t k = 0; k < e.under.size(); ++k) {
      const auto& want = scorecard_conditions()[k];
      nlohmann::json c{{"kind", want.kind}, {"sigma", want.value}};
      if (!e.under[k]) c["test_accuracy"] = nullptr;
      else if (e.under[k]->skipped) c["skipped"] = *e.under[k]->skipped;
      else {
        c["test_accuracy"] = e.under[k]->test_accuracy;
        c["test_accuracy_std"] = e.under[k]->test_accuracy_std;
        c["seeds"] = e.under[k]->seeds;
      }
      j["conditions"].push_back(c);
    }
    if (r.drift.empty()) {
      j["pcm_drift"] = nullptr;  // the substrate has no PCM drift model
    } else {
      j["pcm_drift"] = nlohmann::json::array();
      for (const auto& p : r.drift)
        j["pcm_drift"].push_back({{"seconds", p.seconds}, {"compensated", p.compensated}, {"test_accuracy", p.accuracy}});
    }
    out.push_back(j);
  }
  return out;
}

// The scorecard as one figure: a heat map of test accuracy, one row per rule × substrate and
// one column per condition (blank where it does not apply).
void scorecard_plot(const std::vector<scorecard_entry>& card, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const std::vector<std::string> columns{"clean", "var 0.1", "var 0.3", "read 0.02", "read 0.05", "read 0.1",
                                         "1 day", "1 day comp.", "1 year", "1 year comp."};
  std::string cells, labels, yt;
  std::size_t row = 0;
  for (const auto& e : card) {
    const result& r = *e.clean;
    if (r.skipped) continue;
    std::vector<std::optional<double>> v{r.test_accuracy};
    for (const result* c : e.under) v.push_back(c && !c->skipped ? std::optional<double>(c->test_accuracy) : std::nullopt);
    for (const double t : {one_day, one_year})
      for (const bool comp : {false, true}) v.push_back(drift_accuracy(r, t, comp));
    for (std::size_t c = 0; c < v.size(); ++c) {
      cells += std::string(c ? " " : "") + (v[c] ? fmt("%.2f", 100 * *v[c]) : std::string("NaN"));
      if (v[c]) labels += std::to_string(c) + " " + std::to_string(row) + " " + fmt("%.1f", 100 * *v[c]) + "\n";
    }
    cells += "\n";
    yt += std::string(row ? ", " : "") + "'" + r.rule + " @ " + r.substrate + "' " + std::to_string(row);
    ++row;
  }
  if (row == 0) return;
  write_file_atomically(dir / "scorecard.dat", cells);
  write_file_atomically(dir / "scorecard_labels.dat", labels);
  std::string xt;
  for (std::size_t c = 0; c < columns.size(); ++c) xt += std::string(c ? ", " : "") + "'" + columns[c] + "' " + std::to_string(c);
  const std::string script =
      "set terminal pngcairo noenhanced size 1300," + std::to_string(160 + 26 * row) + "\nset output '" +
      (dir / "scorecard.png").string() +
      "'\nunset key\nset title 'test accuracy (%): trained and tested under each condition; PCM drift of the trained network'\n"
      "set xtics (" + xt + ") norotate font ',9'\nset ytics (" + yt + ") font ',9'\nset yrange [" + std::to_string(row) +
      "-0.5:-0.5]\nset xrange [-0.5:" + std::to_string(columns.size()) +
      "-0.5]\nset cbrange [10:90]\nset palette defined (0 '#de2d26', 0.5 '#fee08b', 1 '#1a9850')\nplot '" +
      (dir / "scorecard.dat").string() + "' matrix with image, '" + (dir / "scorecard_labels.dat").string() +
      "' using 1:2:3 with labels font ',8' tc rgb 'black'\n";
  write_file_atomically(dir / "scorecard.gp", script);
  const std::string cmd = "gnuplot '" + (dir / "scorecard.gp").string() + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0)
    std::fprintf(stderr, "pnn-bench: gnuplot failed or is missing; the scorecard's data and script are in %s\n", dir.c_str());
}

// A run's expected cost relative to backprop on the digital 784-256-10 MLP with the same epochs
// and data: the network's multiply-accumulates per sample times a factor for the rule and one
// for the substrate. The factors are rounded from runs of every pair at pnn-bench's default
// recipes on a 2-core AMD EPYC VM (the perturbative rules and forward-forward make several passes
// per sample, the energy-based ones relax; the photonic and quantum substrates simulate fields
// and amplitudes). They only order the hand-out of runs, longest first, and never change a
// result, so a rough figure is enough; an unknown name counts as 1.
double relative_run_cost(const std::string& rule, const std::string& substrate, const std::string& model,
                         const std::vector<std::size_t>& hidden) {
  static const std::map<std::string, double> by_rule{
      {"equilibrium_propagation", 2}, {"coupled_learning", 2}, {"forward_forward", 3.5},
      {"spsa", 3.5},  {"weight_perturbation", 3.5},  {"hybrid", 4.5}};
  static const std::map<std::string, double> by_substrate{
      {"crossbar", 2.5},    {"crossbar_variation", 2.8}, {"resistor", 6},   {"scattering", 14},
      {"scattering_frozen", 14}, {"spintronic", 28},     {"quantum", 35}, {"mzi", 60}, {"diffractive", 300}};
  const auto factor = [](const std::map<std::string, double>& m, const std::string& k) {
    const auto it = m.find(k);
    return it == m.end() ? 1.0 : it->second;
  };
  // The substrates with their own models ignore --model and --hidden.
  const bool own_model = substrate == "quantum" || substrate == "spintronic" || substrate == "diffractive" ||
                         substrate.starts_with("scattering");
  double network = 1;
  if (model == "mlp" && !own_model && !hidden.empty()) {
    double macs = 784.0 * double(hidden.front()) + 10.0 * double(hidden.back());
    for (std::size_t k = 1; k < hidden.size(); ++k) macs += double(hidden[k - 1]) * double(hidden[k]);
    network = macs / (784.0 * 256 + 256 * 10);
  }
  return network * factor(by_rule, rule) * factor(by_substrate, substrate);
}

// --data-parallel: an epoch's physical events and digital work of every rank's replica,
// summed (each rank counted its reads of its part and its own programming).
void sum_over_ranks(const distribute::world& world, pnn::epoch_metrics& m) {
  static_assert(sizeof(pnn::physical_events) == 21 * 8, "a field was added to physical_events: sum it here too");
  {
    auto& e = m.events;
    std::uint64_t* const u[] = {&e.reads, &e.transposed_reads, &e.macs, &e.dac_conversions, &e.adc_conversions,
                                &e.pulses, &e.parameter_writes, &e.dac_levels, &e.adc_levels, &e.pulse_slots,
                                &e.array_vectors, &e.optical_vectors, &e.optical_channels, &e.held_element_vectors,
                                &e.settled_vectors, &e.circuit_executions, &e.circuit_shots, &m.digital_work.flops,
                                &m.digital_work.bytes};
    double* const f[] = {&e.array_drive, &e.dissipation, &e.oscillator_time, &e.oscillator_run_time};
    std::vector<std::uint64_t> uv;
    for (auto* p : u) uv.push_back(*p);
    std::vector<double> fv;
    for (auto* p : f) fv.push_back(*p);
    world.sum(std::span<std::uint64_t>(uv));
    world.sum(std::span<double>(fv));
    for (std::size_t k = 0; k < uv.size(); ++k) *u[k] = uv[k];
    for (std::size_t k = 0; k < fv.size(); ++k) *f[k] = fv[k];
  }
}

int run(int argc, char** argv, distribute::world& world) {
  config cfg;
  // The defaults are the main job's comparison: every landed rule on the three electronic
  // substrates, 3 epochs on the first 20000 training images, all cores.
  std::string rules = "all", substrates = "digital,crossbar,crossbar_variation", hidden = "256", sweep_spec, json_path,
              csv_path, plot_dir, data_dir, checkpoint_dir;
  std::string epochs_s = "3", batch_s = "64", limit_s = "20000", test_limit_s = "0", seed_s = "1", seeds_s = "1",
              threads_s = std::to_string(std::max(1U, std::thread::hardware_concurrency()));
  CLI::App app{"pnn-bench: every learning rule x substrate on Fashion-MNIST"};
  app.add_option("--rules", rules, "comma-separated rules, or 'all'");
  app.add_option("--substrates", substrates, "comma-separated: digital, crossbar, crossbar_variation, mzi, resistor, quantum, spintronic, diffractive, "
                 "scattering, scattering_frozen (default: "
                 "the first three; quantum trains its own model: a digital encoder 784-4, a 4-qubit circuit, a digital "
                 "readout 4-10; spintronic: 16 coupled spin-torque oscillators driven by W x + b, a digital readout "
                 "16-10, trained by the rules that need no derivative of the oscillators; diffractive: a D2NN, 5 phase masks on a "
                 "64 x 64 grid and 10 detector regions on the whole image, fabricated with 8 phase levels and 0.5-pixel "
                 "misalignment, trained by backprop (adjoint field), in_silico, physics_aware (twin: the ideal stack with the "
                 "measured mask offsets), weight_perturbation, spsa and forward_forward (masks by perturbation); "
                 "scattering: the image on an SLM with a trainable phase mask, a Gaussian scattering medium, 16 camera "
                 "pixels with shot noise, a digital readout 16-10, trained by the same rules and hybrid (the twins of "
                 "in_silico and physics_aware learn the medium from camera frames); scattering_frozen: the same "
                 "with the mask frozen)");
  app.add_option("--epochs", epochs_s, "epochs per run (default 3)");
  app.add_option("--batch", batch_s, "mini-batch size (default 64)");
  app.add_option("--hidden", hidden, "comma-separated hidden sizes (default 256)");
  app.add_option("--model", cfg.model,
                 "mlp (784 -> --hidden -> 10; default) | lenet5 (conv 6@5x5, max-pool, conv 16@5x5, max-pool, 120, 84, "
                 "10; the convolutions' kernels on the substrate too) | convnet-ep (conv 16@5x5, max-pool, conv 32@5x5, "
                 "max-pool, 10: the convolutional energy network of equilibrium_propagation and coupled_learning, "
                 "backprop as their reference)")
      ->check(CLI::IsMember({"mlp", "lenet5", "convnet-ep"}));
  app.add_option("--train-limit", limit_s, "train on the first N training samples only (default 20000; 0: all)");
  app.add_option("--test-limit", test_limit_s,
                 "score on the first N test images only (default 0: all 10000): a quick look, not a figure to report");
  app.add_option("--seed", seed_s, "seed of every random draw (default 1)");
  app.add_option("--seeds", seeds_s,
                 "runs per pair with seeds --seed ... --seed + N - 1; rows give the mean and standard deviation (default 1)");
  app.add_option("--threads", threads_s, "cores used in total (default: all cores)");
  std::string threads_per_run_s = "1";
  app.add_option("--threads-per-run", threads_per_run_s,
                 "threads inside each run (kernels; needs an OpenMP build); --threads / this many runs train "
                 "concurrently (default 1). Results do not depend on it");
  bool data_parallel = false;
  std::string shards_s = "8";
  app.add_flag("--data-parallel", data_parallel,
               "under mpirun: every rank trains every run together, each estimating its part of each batch's "
               "--shards micro-shards (a power-of-two number of ranks, at most --shards); the same results on 1, 2 "
               "or 4 ranks. Without it, mpirun shares the runs out between the ranks");
  app.add_option("--shards", shards_s, "micro-shards per batch with --data-parallel (a power of two; default 8)");
  std::string exchange = "dense";
  app.add_option("--exchange", exchange,
                 "with --data-parallel: dense (every layer's update summed over ranks; default) | factored (the layers "
                 "whose outer-product factors are fewer values than their update travel as factors, gathered from every "
                 "rank; the same weights, bit for bit)")
      ->check(CLI::IsMember({"dense", "factored"}));
  app.add_option("--json", json_path, "write results as JSON");
  app.add_option("--csv", csv_path, "write results as CSV");
  app.add_option("--plot-dir", plot_dir, "write PNG figures (gnuplot) here");
  app.add_option("--checkpoint-dir", checkpoint_dir,
                 "keep each finished run and each run's state after every epoch here; the same command run again "
                 "(after a crash or kill) resumes and writes the same results");
  app.add_option("--sweep", sweep_spec,
                 "PARAM=v1,v2,... with PARAM in read_noise, variation, dac_bits, adc_bits (noise), hidden (width of "
                 "every hidden layer) or depth (hidden layers of the first --hidden width: 1 or 2; 4 and 8 on digital)");
  app.add_option("--data-dir", data_dir, "Fashion-MNIST directory (default $PNN_DATA_DIR or Debian's)");
  app.add_option("--fa-feedback", cfg.fa_feedback, "random | sign")->check(CLI::IsMember({"random", "sign"}));
  app.add_option("--fa-optimizer", cfg.fa_optimizer,
                 "feedback_alignment's optimiser: momentum (0.9, lr 0.05; default) | adam (lr 0.001); both with "
                 "cosine decay and scaled by --tune")
      ->check(CLI::IsMember({"momentum", "adam"}));
  app.add_option("--fa-distribution", cfg.fa_distribution,
                 "law of the random feedback of feedback_alignment and direct_feedback_alignment: uniform (default) | "
                 "normal (the same variance, Glorot's)")
      ->check(CLI::IsMember({"uniform", "normal"}));
  app.add_option("--ep-estimator", cfg.ep_estimator, "one_sided | random_sign | centered | holomorphic")
      ->check(CLI::IsMember({"one_sided", "random_sign", "centered", "holomorphic"}));
  std::string ep_beta_s = "0.4", ep_noise_s = "0", ep_average_s = "5";
  app.add_option("--ep-update", cfg.ep_update,
                 "energy-based rules: alternating (even/odd layers, T 15, K 5; default) | synchronous (T 30, K 10, "
                 "the prototypical form; the same states)")
      ->check(CLI::IsMember({"synchronous", "alternating"}));
  std::string weight_decay_s = "0";
  app.add_option("--weight-decay", weight_decay_s,
                 "L2 weight decay of the rules' optimisers (SGD, momentum, Adam; not SPSA's gain sequence) "
                 "(default 0)");
  app.add_option("--ep-beta", ep_beta_s, "nudging strength of equilibrium propagation (default 0.4)");
  app.add_option("--ep-noise", ep_noise_s, "neuron noise sd of equilibrium propagation's relaxations (default 0)");
  app.add_option("--ep-average", ep_average_s,
                 "energy-based rules measure each phase as the mean of its last N steps (default 5)");
  app.add_option("--fg-mode", cfg.fg_mode, "activity | weight")->check(CLI::IsMember({"activity", "weight"}));
  app.add_option("--ff-goodness", cfg.ff_goodness, "energy | cosine")->check(CLI::IsMember({"energy", "cosine"}));
  app.add_option("--crossbar-update", cfg.crossbar_update,
                 "how updates reach pulsed crossbars: mixed_precision (default: digital accumulator, whole pulses) | "
                 "sgd (plain stochastic pulse trains) | tiki_taka | ttv2 | c_ttv2 | agad (transfer compounds)")
      ->check(CLI::IsMember({"mixed_precision", "sgd", "tiki_taka", "ttv2", "c_ttv2", "agad"}));
  app.add_option("--device", cfg.device,
                 "pulsed device of the crossbar substrates: soft_bounds (default) | constant_step | linear_step | "
                 "exp_step | pow_step | pcm (aihwkit-like PCM pair with refresh) | measured:FILE.csv (fitted from "
                 "pulse-response data; examples/data/devices)");
  std::string rng_s = "philox";
  app.add_option("--rng", rng_s,
                 "generator of every random stream (weights, shuffles, noise, pulses, perturbations): philox (default) | "
                 "ars (AES rounds: faster on cores with AES-NI/VAES, slower without; a different stream)")
      ->check(CLI::IsMember({"philox", "ars"}));
  std::string crossbar_lr_s, fast_lr_s, chop_prob_s;
  app.add_option("--crossbar-lr", crossbar_lr_s,
                 "learning rate of --crossbar-update sgd and of the transfer compounds (their eta; default 0.02 / 0.05)");
  app.add_option("--fast-lr", fast_lr_s, "transfer compounds: rate of the gradient written onto the fast array (default 1.5)");
  app.add_option("--chop-prob", chop_prob_s, "c_ttv2: chopper flip probability per read; agad: 1/period (default 0.1)");
  app.add_option("--perturbation", cfg.perturbation, "spsa | code_multiplexed")->check(CLI::IsMember({"spsa", "code_multiplexed"}));
  bool tune = false, scorecard = false, dry_run = false;
  std::string scorecard_seeds_s = "1";
  app.add_flag("--scorecard", scorecard,
               "also train and test every pair under static variation (0.1, 0.3) and read noise (0.02, 0.05, 0.1), "
               "and test crossbar-trained networks after PCM drift (1 day, 1 year, without/with compensation); "
               "prints the scorecard and adds it to the JSON and figures");
  app.add_option("--scorecard-seeds", scorecard_seeds_s,
                 "seeds of each scorecard condition run, from --seed (default 1)");
  app.add_flag("--dry-run", dry_run, "check the flags, say how many runs they make, and exit without loading data");
  app.add_flag("--tune", tune,
               "choose each run's learning-rate scale from --tune-grid on a validation split (the last tenth of the "
               "training set, at least 100 images), then train on the whole training set and test");
  std::string tune_grid_s = "0.5,1,2";
  app.add_option("--tune-grid", tune_grid_s,
                 "the learning-rate scales --tune tries, comma-separated, each in (0, 100] (default 0.5,1,2)");
  std::vector<double> tune_grid;
  std::string digital_energy = "cpu";
  app.add_option("--digital-energy", digital_energy,
                 "energy of digital work: cpu (45 nm arithmetic and SRAM, Horowitz 2014; default) | gpu (a datacentre "
                 "GPU's board power over its peak FP32 rate)")
      ->check(CLI::IsMember({"cpu", "gpu"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (world.root()) std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 2;
  }

  if (digital_energy == "gpu") cfg.energy = pnn::energy_model::gpu();
  std::optional<std::string> sweep_param;
  std::vector<double> sweep_values;
  std::size_t seeds = 1, scorecard_seeds = 1, threads_per_run = 1, test_limit = 0;
  try {
    cfg.epochs = parse_count(epochs_s, "--epochs", 1, 1e5);
    cfg.batch = parse_count(batch_s, "--batch", 1, 1e6);
    cfg.train_limit = parse_count(limit_s, "--train-limit", 0, 1e9);
    test_limit = parse_count(test_limit_s, "--test-limit", 0, 1e9);
    cfg.seed = parse_count(seed_s, "--seed", 0, 9007199254740992.0);  // 2^53: every value exact
    seeds = parse_count(seeds_s, "--seeds", 1, 100);
    scorecard_seeds = parse_count(scorecard_seeds_s, "--scorecard-seeds", 1, 100);
    if (scorecard && sweep_spec.size()) throw usage_error("--scorecard does not combine with --sweep");
    if (app.count("--tune-grid") != 0 && !tune) throw usage_error("--tune-grid needs --tune");
    for (const auto& v : split_list(tune_grid_s)) {
      const double x = parse_number(v, "--tune-grid");
      if (!(x > 0 && x <= 100)) throw usage_error("--tune-grid: '" + v + "' must lie in (0, 100]");
      if (std::find(tune_grid.begin(), tune_grid.end(), x) != tune_grid.end())
        throw usage_error("--tune-grid: '" + v + "' is given twice");
      tune_grid.push_back(x);
    }
    if (tune_grid.empty()) throw usage_error("--tune-grid: no values");
    cfg.drift = scorecard;
    cfg.threads = parse_count(threads_s, "--threads", 1, 1024);
    threads_per_run = parse_count(threads_per_run_s, "--threads-per-run", 1, 1024);
    if (threads_per_run > cfg.threads) throw usage_error("--threads-per-run must not exceed --threads");
    if (data_parallel) {
      const std::size_t shards = parse_count(shards_s, "--shards", 1, 65536);
      const std::size_t ranks = static_cast<std::size_t>(world.size());
      if ((shards & (shards - 1)) != 0) throw usage_error("--shards must be a power of two");
      if ((ranks & (ranks - 1)) != 0 || ranks > shards)
        throw usage_error("--data-parallel needs a power-of-two number of ranks, at most --shards (" +
                          std::to_string(shards) + "); mpirun gave " + std::to_string(ranks));
      if (shards > cfg.batch) throw usage_error("--shards must not exceed --batch");
      cfg.data_parallel.shards = shards;
      cfg.data_parallel.parts = ranks;
      cfg.data_parallel.part = static_cast<std::size_t>(world.rank());
      cfg.data_parallel.sum_float = [&world](std::span<float> v) { world.sum_in_tree(v); };
      cfg.data_parallel.sum_double = [&world](std::span<double> v) { world.sum_in_tree(v); };
      cfg.data_parallel.factored = exchange == "factored";
      cfg.data_parallel.gather_float = [&world](std::span<const float> mine, std::vector<float>& all) {
        world.all_gather(mine, all);
      };
      cfg.data_parallel.gather_double = [&world](std::span<const double> mine, std::vector<double>& all) {
        world.all_gather(mine, all);
      };
      if (ranks > 1) {
        cfg.sum_over_ranks = [&world](pnn::epoch_metrics& m) { sum_over_ranks(world, m); };
        cfg.share_from_root = [&world](std::string& text) { world.broadcast(text); };
        cfg.writes_checkpoints = world.root();
      }
    } else if (app.count("--shards") != 0) {
      throw usage_error("--shards needs --data-parallel");
    } else if (app.count("--exchange") != 0) {
      throw usage_error("--exchange needs --data-parallel");
    }
    if (!crossbar_lr_s.empty() && (cfg.crossbar_lr = parse_number(crossbar_lr_s, "--crossbar-lr")) <= 0)
      throw usage_error("--crossbar-lr must be positive");
    if (!fast_lr_s.empty() && (cfg.fast_lr = parse_number(fast_lr_s, "--fast-lr")) <= 0)
      throw usage_error("--fast-lr must be positive");
    cfg.engine = rng_s == "ars" ? pnn::rng_engine::ars : pnn::rng_engine::philox;
    try {
      (void)device_model(cfg);  // an unknown name or a bad file stops here, before any data loads
    } catch (const pnn::error& e) {
      throw usage_error(std::string("--device: ") + e.what());
    }
    if (!chop_prob_s.empty()) {
      cfg.chop_prob = parse_number(chop_prob_s, "--chop-prob");
      if (!(cfg.chop_prob > 0 && cfg.chop_prob <= 1)) throw usage_error("--chop-prob must lie in (0, 1]");
    }
    cfg.weight_decay = parse_number(weight_decay_s, "--weight-decay");
    if (!(cfg.weight_decay >= 0 && cfg.weight_decay < 1))
      throw usage_error("--weight-decay must lie in [0, 1)");
    cfg.ep_beta = parse_number(ep_beta_s, "--ep-beta");
    cfg.ep_noise = parse_number(ep_noise_s, "--ep-noise");
    const double ep_average = parse_number(ep_average_s, "--ep-average");
    if (cfg.ep_beta == 0) throw usage_error("--ep-beta must be non-zero");
    if (cfg.ep_noise < 0) throw usage_error("--ep-noise must be non-negative");
    if (cfg.ep_noise > 0 && cfg.ep_estimator == "holomorphic")
      throw usage_error("--ep-noise: the holomorphic estimator has no noisy complex relaxation; use another estimator");
    if (ep_average < 1 || ep_average > (cfg.ep_update == "alternating" ? 5 : 10) || ep_average != std::floor(ep_average))
      throw usage_error("--ep-average must be a whole number between 1 and the nudged steps (10; alternating: 5)");
    cfg.ep_average = static_cast<std::size_t>(ep_average);
    cfg.hidden.clear();
    for (const auto& h : split_list(hidden)) cfg.hidden.push_back(parse_count(h, "--hidden", 1, 1e5));
    if (cfg.hidden.empty() || cfg.hidden.size() > 2) throw usage_error("--hidden: give one or two hidden sizes");
    cfg.rules = rules == "all" ? std::vector<std::string>{} : split_list(rules);
    if (rules == "all")
      for (const auto& r : known_rules())
        if (registry().count(r)) cfg.rules.push_back(r);
    for (const auto& r : cfg.rules)
      if (std::find(known_rules().begin(), known_rules().end(), r) == known_rules().end())
        throw usage_error("unknown rule '" + r + "'");
    cfg.substrates = split_list(substrates);
    for (const auto& s : cfg.substrates)
      if (std::find(known_substrates().begin(), known_substrates().end(), s) == known_substrates().end())
        throw usage_error("unknown substrate '" + s + "'");
    if (cfg.rules.empty() || cfg.substrates.empty()) throw usage_error("no rule or substrate selected");
    if (!sweep_spec.empty()) {
      const auto eq = sweep_spec.find('=');
      if (eq == std::string::npos) throw usage_error("--sweep: expected PARAM=v1,v2,...");
      sweep_param = sweep_spec.substr(0, eq);
      static const std::vector<std::string> params{"read_noise", "variation", "dac_bits", "adc_bits", "hidden", "depth"};
      if (std::find(params.begin(), params.end(), *sweep_param) == params.end())
        throw usage_error("--sweep: unknown parameter '" + *sweep_param + "'");
      const bool bits = *sweep_param == "dac_bits" || *sweep_param == "adc_bits";
      for (const auto& v : split_list(sweep_spec.substr(eq + 1))) {
        // Every value is checked here, so a bad one stops the run instead of becoming a skipped row.
        if (bits) {
          sweep_values.push_back(double(parse_count(v, "--sweep " + *sweep_param, 1, 24)));
        } else if (*sweep_param == "hidden") {
          sweep_values.push_back(double(parse_count(v, "--sweep hidden", 1, 1e5)));
        } else if (*sweep_param == "depth") {
          // The networks pnn-bench instantiates have 1 or 2 hidden layers, and 4 or 8 on digital.
          const double depth = double(parse_count(v, "--sweep depth", 1, 8));
          if (depth != 1 && depth != 2 && depth != 4 && depth != 8)
            throw usage_error("--sweep depth: '" + v + "' must be 1, 2, 4 or 8 hidden layers");
          sweep_values.push_back(depth);
        } else {
          const double x = parse_number(v, "--sweep " + *sweep_param);
          if (x < 0) throw usage_error("--sweep " + *sweep_param + ": '" + v + "' must be non-negative");
          sweep_values.push_back(x);
        }
      }
      if (sweep_values.empty()) throw usage_error("--sweep: no values");
    }
  } catch (const usage_error& e) {
    // Every rank parses the same flags and fails the same way; one says so.
    if (world.root()) std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 2;
  }
  struct job {
    std::string rule, substrate;
    std::optional<sweep_point> sweep;
    std::uint64_t seed = 0;
    std::optional<condition> hardware_condition;
  };
  // Seeds innermost: the runs of one row are consecutive.
  std::vector<job> jobs;
  for (const auto& r : cfg.rules)
    for (const auto& s : cfg.substrates) {
      std::vector<std::optional<sweep_point>> points;
      if (sweep_param)
        for (double v : sweep_values) points.push_back(sweep_point{*sweep_param, v});
      else
        points.push_back(std::nullopt);
      for (const auto& p : points)
        for (std::size_t k = 0; k < seeds; ++k) jobs.push_back({r, s, p, cfg.seed + k, std::nullopt});
    }
  const std::size_t clean_jobs = jobs.size();
  if (scorecard)
    for (const auto& r : cfg.rules)
      for (const auto& s : cfg.substrates)
        for (const auto& c : scorecard_conditions())
          for (std::size_t k = 0; k < scorecard_seeds; ++k) jobs.push_back({r, s, std::nullopt, cfg.seed + k, c});
  // A shape sweep changes the network's hidden layers, not the substrate's noise.
  const auto shape_sweep = [](const job& j) { return j.sweep && (j.sweep->param == "hidden" || j.sweep->param == "depth"); };
  const auto hidden_of = [&](const job& j) {
    if (!shape_sweep(j)) return cfg.hidden;
    const auto v = static_cast<std::size_t>(j.sweep->value);
    return j.sweep->param == "hidden" ? std::vector<std::size_t>(cfg.hidden.size(), v)
                                      : std::vector<std::size_t>(v, cfg.hidden.front());
  };
  // The order runs are handed out in when several train at once (threads or ranks): the longest
  // expected first, so that the last runs handed out are short and no worker waits long at the
  // end for another's (longest-processing-time first). Results keep the grid's order.
  std::vector<std::size_t> longest_first(jobs.size());
  std::iota(longest_first.begin(), longest_first.end(), std::size_t{0});
  {
    std::vector<double> cost(jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i)
      cost[i] = relative_run_cost(jobs[i].rule, jobs[i].substrate, cfg.model, hidden_of(jobs[i]));
    std::stable_sort(longest_first.begin(), longest_first.end(), [&](std::size_t a, std::size_t b) { return cost[a] > cost[b]; });
  }
  if (dry_run) {
    if (!world.root()) return 0;
    const std::size_t points = sweep_param ? sweep_values.size() : 1;
    std::printf("pnn-bench: the flags are valid: %zu rule(s) x %zu substrate(s) x %zu point(s) x %zu seed(s)%s = %zu runs\n",
                cfg.rules.size(), cfg.substrates.size(), points, seeds, scorecard ? " + scorecard" : "", jobs.size());
    // The order in which several workers (threads or ranks) take the grid's rows.
    std::string order;
    for (const std::size_t i : longest_first) {
      const job& j = jobs[i];
      if (i >= clean_jobs) continue;  // the scorecard's conditions repeat the rows
      if (j.seed != cfg.seed) continue;  // one entry per row
      if (!order.empty()) order += ", ";
      order += j.rule + " on " + j.substrate;
      if (j.sweep) order += " (" + j.sweep->param + " " + fmt("%g", j.sweep->value) + ")";
    }
    std::printf("pnn-bench: runs training at once are handed out longest expected first: %s\n", order.c_str());
    return 0;
  }

  pnn::data::split d;
  try {
    // With --train-limit the images past it are never decompressed (each MPI rank loads the
    // data itself, so this is part of every rank's start-up).
    const std::filesystem::path dir = data_dir.empty() ? pnn::data::default_dir() : std::filesystem::path(data_dir);
    d = cfg.train_limit > 0 ? pnn::data::fashion_mnist(dir, cfg.train_limit) : pnn::data::fashion_mnist(dir);
  } catch (const pnn::error& e) {
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 1;
  }
  if (cfg.train_limit > 0 && cfg.train_limit < d.train.size()) d.train = pnn::data::subset(d.train, 0, cfg.train_limit);
  // Scoring a trained network on all 10,000 test images can cost more than training it on a few
  // hundred (a relaxation per image for the energy-based rules): quick runs score on fewer.
  if (test_limit > 0 && test_limit < d.test.size()) d.test = pnn::data::subset(d.test, 0, test_limit);

  // --checkpoint-dir: the directory belongs to one command (flags that change results; output
  // paths and thread counts do not), so that a resumed run never mixes in another's results.
  const std::filesystem::path ckpt_dir = checkpoint_dir;
  if (!checkpoint_dir.empty()) {
    std::string command;
    for (int a = 1; a < argc; ++a) {
      const std::string s = argv[a];
      bool drop = false;
      for (const char* f : {"--checkpoint-dir", "--json", "--csv", "--plot-dir", "--threads"}) {
        if (s == f) {
          ++a;
          drop = true;
        } else if (s.rfind(std::string(f) + "=", 0) == 0) {
          drop = true;
        }
      }
      if (!drop) command += s + "\n";
    }
    // A data-parallel run's energy counts every rank's replica: its runs resume on as many ranks.
    if (data_parallel) command += "(ranks " + std::to_string(world.size()) + ")\n";
    // Rank 0 alone reads and writes command.txt (the directory is shared between ranks); every
    // rank follows its decision.
    int status = 0;
    if (world.root()) {
      try {
        std::filesystem::create_directories(ckpt_dir);
        const auto cmd_file = ckpt_dir / "command.txt";
        if (std::filesystem::exists(cmd_file)) {
          std::ifstream f(cmd_file);
          const std::string kept((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
          if (kept != command) {
            std::fprintf(stderr,
                         "pnn-bench: --checkpoint-dir '%s' holds the runs of another command; give a new directory "
                         "or remove it\n",
                         checkpoint_dir.c_str());
            status = 2;
          }
        } else {
          write_file_atomically(cmd_file, command);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "pnn-bench: --checkpoint-dir '%s': %s\n", checkpoint_dir.c_str(), e.what());
        status = 2;
      }
    }
    if (world.broadcast(status) != 0) return 2;
  }
  auto run_file = [&](std::size_t i) { return ckpt_dir / ("run-" + std::to_string(i) + ".json"); };
  std::vector<result> rows(jobs.size());
  std::vector<char> ran_here(jobs.size(), 0);  // the runs this rank trained or restored
  std::mutex io;
  // Under mpirun, run lines say which rank trained them.
  const std::string on_rank = world.size() > 1 ? " [rank " + std::to_string(world.rank()) + "]" : "";
  // --data-parallel: every rank trains every run, in order, together with the others.
  std::size_t next_in_order = 0;
  const auto next_job = [&] { return data_parallel ? next_in_order++ : world.next_job(); };
  const bool speaks = !data_parallel || world.root();  // one line per run, not one per rank
  const bool writes_runs = !data_parallel || world.root();  // rank 0 keeps a data-parallel run's files
  // The grid's order for one worker (and a data-parallel run); longest first for several.
  std::vector<std::size_t> hand_out(jobs.size());
  std::iota(hand_out.begin(), hand_out.end(), std::size_t{0});
  auto worker = [&] {
    for (std::size_t k; (k = next_job()) < jobs.size();) {
      const std::size_t i = hand_out[k];
      ran_here[i] = 1;
      const auto& j = jobs[i];
      if (!checkpoint_dir.empty()) {
        // A data-parallel run is restored on every rank or trained on every rank: rank 0 reads
        // the file and the others decode its text.
        std::string text;
        if (writes_runs && std::filesystem::exists(run_file(i))) {
          std::ifstream f(run_file(i));
          text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        }
        if (data_parallel) world.broadcast(text);
        if (!text.empty()) {
          try {
            rows[i] = from_checkpoint_json(nlohmann::json::parse(text));
            if (speaks) {
              std::lock_guard<std::mutex> lock(io);
              std::fprintf(stderr, "pnn-bench: %s on %s: restored from %s%s\n", rows[i].rule.c_str(),
                           rows[i].substrate.c_str(), run_file(i).c_str(), on_rank.c_str());
            }
            continue;
          } catch (const std::exception& e) {
            if (speaks) {
              std::lock_guard<std::mutex> lock(io);
              std::fprintf(stderr, "pnn-bench: %s unreadable (%s); the run starts over\n", run_file(i).c_str(),
                           e.what());
            }
          }
        }
      }
      result r;
      auto it = registry().find(j.rule);
      if (it == registry().end()) {
        r = skipped(j.rule, j.substrate, "rule has not landed in this build");
      } else {
        try {
          config c = cfg;
          c.seed = j.seed;
          c.hardware_condition = j.hardware_condition;
          // A shape sweep changes the network, not the substrate's noise: the runner sees none.
          std::optional<sweep_point> noise_sweep = j.sweep;
          c.hidden = hidden_of(j);
          if (shape_sweep(j)) noise_sweep.reset();
          if (j.hardware_condition) c.drift = false;  // drift is measured on the clean runs
          if (tune) {
            // Select the learning-rate scale on a validation split held out from the training
            // set (its last tenth); the test set is not seen until the final run.
            const std::size_t n = d.train.size();
            const std::size_t v = std::max<std::size_t>(n / 10, std::min<std::size_t>(100, n / 2));
            const pnn::data::split held{pnn::data::subset(d.train, 0, n - v), pnn::data::subset(d.train, n - v, v)};
            nlohmann::json record{{"parameter", "lr_scale"}, {"grid", tune_grid}, {"validation_samples", v},
                                  {"training_samples", n - v}, {"validation_accuracy", nlohmann::json::array()}};
            double best = -1;
            for (double scale : tune_grid) {
              config t = c;
              t.lr_scale = scale;
              const result rv = it->second(t, j.substrate, held, noise_sweep);
              record["validation_accuracy"].push_back(rv.test_accuracy);
              if (rv.test_accuracy > best) {
                best = rv.test_accuracy;
                c.lr_scale = scale;
              }
            }
            record["chosen"] = c.lr_scale;
            if (!checkpoint_dir.empty()) c.checkpoint_stem = (ckpt_dir / ("run-" + std::to_string(i))).string();
            r = it->second(c, j.substrate, d, noise_sweep);
            r.settings["tuning"] = record;
          } else {
            if (!checkpoint_dir.empty()) c.checkpoint_stem = (ckpt_dir / ("run-" + std::to_string(i))).string();
            r = it->second(c, j.substrate, d, noise_sweep);
          }
        } catch (const skip& e) {
          r = skipped(j.rule, j.substrate, e.what());
        } catch (const std::exception& e) {
          r = skipped(j.rule, j.substrate, std::string("failed: ") + e.what());
        }
      }
      r.sweep = j.sweep;
      // The quantum, spintronic and diffractive substrates train their own models (drive.hpp),
      // whatever --model says.
      if (!r.skipped)
        r.settings["model"] = j.substrate == "quantum"       ? std::string("quantum-hybrid")
                              : j.substrate == "spintronic"  ? std::string("spintronic-oscillators")
                              : j.substrate == "diffractive" ? std::string("diffractive-d2nn")
                              : j.substrate.starts_with("scattering") ? std::string("scattering-medium")
                                                             : cfg.model;
      r.hardware_condition = j.hardware_condition;
      if (!r.skipped) r.per_seed = {{j.seed, r.test_accuracy}};
      if (speaks) {
        std::lock_guard<std::mutex> lock(io);
        if (r.skipped)
          std::fprintf(stderr, "pnn-bench: %s on %s skipped: %s%s\n", r.rule.c_str(), r.substrate.c_str(),
                       r.skipped->c_str(), on_rank.c_str());
        else
          std::fprintf(stderr, "pnn-bench: %s on %s%s: %.2f %% in %.1f s%s\n", r.rule.c_str(), r.substrate.c_str(),
                       r.hardware_condition ? (" (" + r.noise + ")").c_str() : "", 100 * r.test_accuracy, r.train_seconds,
                       on_rank.c_str());
      }
      if (!checkpoint_dir.empty() && writes_runs) {
        // The finished run, then its epoch checkpoints go: a kill in between re-reads the run.
        try {
          write_file_atomically(run_file(i), to_checkpoint_json(r).dump() + "\n");
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(io);
          std::fprintf(stderr, "pnn-bench: cannot keep %s: %s\n", run_file(i).c_str(), e.what());
        }
        const std::string stem = "run-" + std::to_string(i) + ".";
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(ckpt_dir, ec)) {
          const std::string name = e.path().filename().string();
          if (name.rfind(stem, 0) == 0 && name != run_file(i).filename().string()) std::filesystem::remove(e.path(), ec);
        }
      }
      rows[i] = std::move(r);
    }
  };
  std::vector<std::thread> pool;
  // Kernels of one run use `threads_per_run` threads; that many fewer runs train at once.
  // Under mpirun, --threads counts the cores of all ranks together; without it, each rank takes
  // its share of its node's cores.
  pnn::set_num_threads(static_cast<unsigned>(threads_per_run));
  std::size_t cores = cfg.threads;
  if (world.size() > 1)
    cores = app.count("--threads") ? std::max<std::size_t>(1, cfg.threads / std::size_t(world.size()))
                                   : std::max<std::size_t>(1, cfg.threads / std::size_t(world.local_size()));
  const std::size_t concurrent = std::max<std::size_t>(1, cores / threads_per_run);
  if (data_parallel) {
    // One run at a time, on every rank in step, with the rank's cores inside it.
    if (world.size() > 1) pnn::set_num_threads(static_cast<unsigned>(cores));
    worker();
    if (!world.root()) return 0;  // rank 0 holds every run's result
  } else {
    // Every worker asks until it hears "none left", so each rank starts as many as it will use.
    const std::size_t workers = std::min(concurrent, std::max<std::size_t>(1, jobs.size()));
    if (workers * std::size_t(world.size()) > 1) hand_out = longest_first;
    world.start_jobs(jobs.size(), workers);
    for (std::size_t t = 1; t < workers; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    world.finish_jobs();
  }
  if (world.size() > 1 && !data_parallel) {
    // The finished runs travel to rank 0 as checkpoints do (the same JSON restores exactly), and
    // rank 0 alone prints and writes: one table, one JSON/CSV, one set of figures.
    std::vector<std::pair<std::size_t, std::string>> mine;
    for (std::size_t i = 0; i < jobs.size(); ++i)
      if (ran_here[i] && !world.root()) mine.emplace_back(i, to_checkpoint_json(rows[i]).dump());
    const auto all = world.gather(mine);
    if (!world.root()) return 0;
    for (const auto& [i, text] : all) rows.at(i) = from_checkpoint_json(nlohmann::json::parse(text));
  }
  const std::vector<result> conditioned =
      mean_over_seeds(std::vector<result>(rows.begin() + std::ptrdiff_t(clean_jobs), rows.end()), scorecard_seeds);
  rows.resize(clean_jobs);
  rows = mean_over_seeds(rows, seeds);
  add_gap_to_backprop(rows);

  std::cout << markdown_table(rows) << std::flush;
  nlohmann::json out{{"dataset", d.train.name}, {"model", cfg.model}, {"crossbar_update", cfg.crossbar_update},
                     {"device", cfg.device}, {"rng", rng_s}, {"train_samples", d.train.size()},
                     {"test_samples", d.test.size()}, {"results", nlohmann::json::array()}};
  for (const auto& r : rows) out["results"].push_back(to_json(r));
  std::vector<scorecard_entry> card;
  if (scorecard) {
    card = build_scorecard(rows, conditioned);
    std::cout << "\n" << scorecard_table(card) << std::flush;
    out["scorecard"] = scorecard_json(card);
    out["scorecard_runs"] = nlohmann::json::array();
    for (const auto& r : conditioned) out["scorecard_runs"].push_back(to_json(r));
  }
  try {
    if (!json_path.empty()) write_file_atomically(json_path, out.dump(2) + "\n");
    if (!csv_path.empty()) write_file_atomically(csv_path, csv(rows));
    if (!plot_dir.empty()) plots(rows, plot_dir);
    if (!plot_dir.empty() && scorecard) scorecard_plot(card, plot_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace pnn_bench

int main(int argc, char** argv) {
  try {
    // MPI starts here when mpirun launched this process, before any flag is read.
    pnn_bench::distribute::world world(argc, argv);
    return pnn_bench::run(argc, argv, world);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 1;
  }
}
