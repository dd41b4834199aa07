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
#include <mutex>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "bench.hpp"

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
  static const std::vector<std::string> s{"digital", "crossbar", "crossbar_variation", "mzi", "resistor"};
  return s;
}
const std::vector<std::string>& known_rules() {
  static const std::vector<std::string> r{"in_silico",          "backprop",          "physics_aware",
                                          "feedback_alignment", "direct_feedback_alignment",
                                          "equilibrium_propagation", "coupled_learning", "forward_gradient",
                                          "weight_perturbation", "node_perturbation", "spsa", "forward_forward"};
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
                 {"train_joules_by_kind",
                  {{"array", e.train.array},
                   {"converters", e.train.converters},
                   {"programming", e.train.programming},
                   {"optical", e.train.optical},
                   {"resistive", e.train.resistive},
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
  return j;
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

std::string markdown_table(const std::vector<result>& rows) {
  std::string s =
      "| rule | substrate | noise | epochs | test accuracy | train time | samples/s | alignment angle | energy / training sample | energy / inference |\n"
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    std::string rule = r.rule + (r.sweep ? " (" + r.sweep->param + "=" + fmt("%g", r.sweep->value) + ")" : "");
    if (r.skipped) {
      s += "| " + rule + " | " + r.substrate + " | — | — | skipped: " + *r.skipped + " | | | | | |\n";
      continue;
    }
    s += "| " + rule + " | " + r.substrate + " | " + r.noise + " | " + std::to_string(r.epochs) + " | " +
         (r.seeds > 1 ? fmt("%.2f", 100 * r.test_accuracy) + fmt(" ± %.2f %%", 100 * r.test_accuracy_std)
                      : fmt("%.2f %%", 100 * r.test_accuracy)) +
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
                  "train_latency_seconds_per_sample,physical_passes_per_sample,pulses_per_sample,digital_flops_per_sample\n";
  for (const auto& r : rows)
    s += r.rule + "," + r.substrate + "," + r.noise + "," + std::to_string(r.epochs) + "," +
         fmt("%.6f", r.test_accuracy) + "," + fmt("%.3f", r.train_seconds) + "," + fmt("%.1f", r.samples_per_second) +
         "," + (r.alignment_angle_deg ? fmt("%.3f", *r.alignment_angle_deg) : "") + "," +
         (r.sweep ? r.sweep->param : "") + "," + (r.sweep ? fmt("%g", r.sweep->value) : "") + "," +
         (r.skipped ? "\"" + *r.skipped + "\"" : "") + "," + (r.skipped ? "" : fmt("%.3f", r.eval_seconds)) +
         (r.skipped ? std::string(",,,,,,")
                    : "," + fmt("%.4g", r.energy.train_joules_per_sample) + "," + fmt("%.4g", r.energy.inference_joules_per_sample) +
                          "," + fmt("%.4g", r.energy.train_latency_per_sample) + "," +
                          fmt("%.4g", r.energy.physical_passes_per_sample) + "," + fmt("%.4g", r.energy.pulses_per_sample) +
                          "," + fmt("%.4g", r.energy.digital_flops_per_sample)) +
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
    e.train.digital = mean([](const result& r) { return r.energy.train.digital; });
    e.train.latency = mean([](const result& r) { return r.energy.train.latency; });
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
  if (!sweep_data.empty()) {
    std::string p = term + "900,600\nset output '" + (dir / "noise_sweep.png").string() +
                    "'\nunset style\nset xtics norotate\nset key outside right\nset grid\nset xlabel '" +
                    rows.front().sweep->param + "'\nset ylabel 'test accuracy (%)'\nset style data linespoints\nplot ";
    int j = 0;
    for (const auto& [label, d] : sweep_data) {
      const auto f = dir / ("sweep_" + std::to_string(j) + ".dat");
      write_file_atomically(f, d);
      p += std::string(j++ ? ", " : "") + "'" + f.string() + "' using 1:2 lw 2 title '" + label + "'";
    }
    script += p + "\n";
  }
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

int run(int argc, char** argv) {
  config cfg;
  // The defaults are the main job's comparison: every landed rule on the three electronic
  // substrates, 3 epochs on the first 20000 training images, all cores.
  std::string rules = "all", substrates = "digital,crossbar,crossbar_variation", hidden = "256", sweep_spec, json_path,
              csv_path, plot_dir, data_dir;
  std::string epochs_s = "3", batch_s = "64", limit_s = "20000", seed_s = "1", seeds_s = "1",
              threads_s = std::to_string(std::max(1U, std::thread::hardware_concurrency()));
  CLI::App app{"pnn-bench: every learning rule x substrate on Fashion-MNIST"};
  app.add_option("--rules", rules, "comma-separated rules, or 'all'");
  app.add_option("--substrates", substrates, "comma-separated: digital, crossbar, crossbar_variation, mzi, resistor (default: the first three)");
  app.add_option("--epochs", epochs_s, "epochs per run (default 3)");
  app.add_option("--batch", batch_s, "mini-batch size (default 64)");
  app.add_option("--hidden", hidden, "comma-separated hidden sizes (default 256)");
  app.add_option("--train-limit", limit_s, "train on the first N training samples only (default 20000; 0: all)");
  app.add_option("--seed", seed_s, "seed of every random draw (default 1)");
  app.add_option("--seeds", seeds_s,
                 "runs per pair with seeds --seed ... --seed + N - 1; rows give the mean and standard deviation (default 1)");
  app.add_option("--threads", threads_s, "runs trained concurrently (default: all cores)");
  app.add_option("--json", json_path, "write results as JSON");
  app.add_option("--csv", csv_path, "write results as CSV");
  app.add_option("--plot-dir", plot_dir, "write PNG figures (gnuplot) here");
  app.add_option("--sweep", sweep_spec, "PARAM=v1,v2,... with PARAM in read_noise, variation, dac_bits, adc_bits");
  app.add_option("--data-dir", data_dir, "Fashion-MNIST directory (default $PNN_DATA_DIR or Debian's)");
  app.add_option("--fa-feedback", cfg.fa_feedback, "random | sign")->check(CLI::IsMember({"random", "sign"}));
  app.add_option("--ep-estimator", cfg.ep_estimator, "one_sided | random_sign | centered | holomorphic")
      ->check(CLI::IsMember({"one_sided", "random_sign", "centered", "holomorphic"}));
  std::string ep_beta_s = "0.4", ep_noise_s = "0", ep_average_s = "5";
  app.add_option("--ep-update", cfg.ep_update,
                 "energy-based rules: alternating (even/odd layers, T 15, K 5; default) | synchronous (T 30, K 10, "
                 "the prototypical form; the same states)")
      ->check(CLI::IsMember({"synchronous", "alternating"}));
  app.add_option("--ep-beta", ep_beta_s, "nudging strength of equilibrium propagation (default 0.4)");
  app.add_option("--ep-noise", ep_noise_s, "neuron noise sd of equilibrium propagation's relaxations (default 0)");
  app.add_option("--ep-average", ep_average_s,
                 "energy-based rules measure each phase as the mean of its last N steps (default 5)");
  app.add_option("--fg-mode", cfg.fg_mode, "activity | weight")->check(CLI::IsMember({"activity", "weight"}));
  app.add_option("--ff-goodness", cfg.ff_goodness, "energy | cosine")->check(CLI::IsMember({"energy", "cosine"}));
  app.add_option("--perturbation", cfg.perturbation, "spsa | code_multiplexed")->check(CLI::IsMember({"spsa", "code_multiplexed"}));
  bool tune = false;
  app.add_flag("--tune", tune,
               "choose each run's learning-rate scale from {0.5, 1, 2} on a validation split (the last tenth of the "
               "training set, at least 100 images), then train on the whole training set and test");
  const std::vector<double> tune_grid{0.5, 1.0, 2.0};
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
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 2;
  }

  if (digital_energy == "gpu") cfg.energy = pnn::energy_model::gpu();
  std::optional<std::string> sweep_param;
  std::vector<double> sweep_values;
  std::size_t seeds = 1;
  try {
    cfg.epochs = parse_count(epochs_s, "--epochs", 1, 1e5);
    cfg.batch = parse_count(batch_s, "--batch", 1, 1e6);
    cfg.train_limit = parse_count(limit_s, "--train-limit", 0, 1e9);
    cfg.seed = parse_count(seed_s, "--seed", 0, 9007199254740992.0);  // 2^53: every value exact
    seeds = parse_count(seeds_s, "--seeds", 1, 100);
    cfg.threads = parse_count(threads_s, "--threads", 1, 1024);
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
      static const std::vector<std::string> params{"read_noise", "variation", "dac_bits", "adc_bits"};
      if (std::find(params.begin(), params.end(), *sweep_param) == params.end())
        throw usage_error("--sweep: unknown parameter '" + *sweep_param + "'");
      const bool bits = *sweep_param == "dac_bits" || *sweep_param == "adc_bits";
      for (const auto& v : split_list(sweep_spec.substr(eq + 1))) {
        // Every value is checked here, so a bad one stops the run instead of becoming a skipped row.
        if (bits) {
          sweep_values.push_back(double(parse_count(v, "--sweep " + *sweep_param, 1, 24)));
        } else {
          const double x = parse_number(v, "--sweep " + *sweep_param);
          if (x < 0) throw usage_error("--sweep " + *sweep_param + ": '" + v + "' must be non-negative");
          sweep_values.push_back(x);
        }
      }
      if (sweep_values.empty()) throw usage_error("--sweep: no values");
    }
  } catch (const usage_error& e) {
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 2;
  }

  pnn::data::split d;
  try {
    d = data_dir.empty() ? pnn::data::fashion_mnist() : pnn::data::fashion_mnist(data_dir);
  } catch (const pnn::error& e) {
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 1;
  }
  if (cfg.train_limit > 0 && cfg.train_limit < d.train.size()) d.train = pnn::data::subset(d.train, 0, cfg.train_limit);

  struct job {
    std::string rule, substrate;
    std::optional<sweep_point> sweep;
    std::uint64_t seed = 0;
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
        for (std::size_t k = 0; k < seeds; ++k) jobs.push_back({r, s, p, cfg.seed + k});
    }
  std::vector<result> rows(jobs.size());
  std::atomic<std::size_t> next{0};
  std::mutex io;
  auto worker = [&] {
    for (std::size_t i; (i = next++) < jobs.size();) {
      const auto& j = jobs[i];
      result r;
      auto it = registry().find(j.rule);
      if (it == registry().end()) {
        r = skipped(j.rule, j.substrate, "rule has not landed in this build");
      } else {
        try {
          config c = cfg;
          c.seed = j.seed;
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
              const result rv = it->second(t, j.substrate, held, j.sweep);
              record["validation_accuracy"].push_back(rv.test_accuracy);
              if (rv.test_accuracy > best) {
                best = rv.test_accuracy;
                c.lr_scale = scale;
              }
            }
            record["chosen"] = c.lr_scale;
            r = it->second(c, j.substrate, d, j.sweep);
            r.settings["tuning"] = record;
          } else {
            r = it->second(c, j.substrate, d, j.sweep);
          }
        } catch (const skip& e) {
          r = skipped(j.rule, j.substrate, e.what());
        } catch (const std::exception& e) {
          r = skipped(j.rule, j.substrate, std::string("failed: ") + e.what());
        }
      }
      r.sweep = j.sweep;
      if (!r.skipped) r.per_seed = {{j.seed, r.test_accuracy}};
      {
        std::lock_guard<std::mutex> lock(io);
        if (r.skipped)
          std::fprintf(stderr, "pnn-bench: %s on %s skipped: %s\n", r.rule.c_str(), r.substrate.c_str(), r.skipped->c_str());
        else
          std::fprintf(stderr, "pnn-bench: %s on %s: %.2f %% in %.1f s\n", r.rule.c_str(), r.substrate.c_str(),
                       100 * r.test_accuracy, r.train_seconds);
      }
      rows[i] = std::move(r);
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < std::min(cfg.threads, jobs.size()); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  rows = mean_over_seeds(rows, seeds);

  std::cout << markdown_table(rows) << std::flush;
  nlohmann::json out{{"dataset", d.train.name}, {"results", nlohmann::json::array()}};
  for (const auto& r : rows) out["results"].push_back(to_json(r));
  try {
    if (!json_path.empty()) write_file_atomically(json_path, out.dump(2) + "\n");
    if (!csv_path.empty()) write_file_atomically(csv_path, csv(rows));
    if (!plot_dir.empty()) plots(rows, plot_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace pnn_bench

int main(int argc, char** argv) { return pnn_bench::run(argc, argv); }
