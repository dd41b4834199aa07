// SPDX-License-Identifier: MIT
/// \file
/// \brief Epoch callbacks: CSV and JSON metrics logs (rewritten atomically) and early stopping.
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/train/train.hpp>

namespace pnn {

namespace detail {
/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees a
/// half-written log.
inline void write_atomically(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw_error("pnn: cannot write '" + tmp.string() + "'");
    f << text;
    if (!f.flush()) throw_error("pnn: write failed for '" + tmp.string() + "'");
  }
  std::filesystem::rename(tmp, path);
}

inline std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace detail

/// Logs every epoch's metrics as CSV (one row per epoch; columns for every `extra` value seen in
/// the first epoch). The file is rewritten after each epoch.
inline epoch_callback csv_log(std::filesystem::path path) {
  auto rows = std::make_shared<std::vector<epoch_metrics>>();
  return [path = std::move(path), rows](epoch_metrics& m) {
    rows->push_back(m);
    std::string s = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds,samples_per_second";
    for (const auto& [k, v] : rows->front().extra) {
      s += ',';
      s += k;
    }
    s += "\n";
    for (const auto& r : *rows) {
      s += std::to_string(r.epoch) + "," + detail::number(r.train_loss) + "," + detail::number(r.train_accuracy) +
           "," + detail::number(r.test_loss) + "," + detail::number(r.test_accuracy) + "," +
           detail::number(r.seconds) + "," + detail::number(r.samples_per_second);
      for (const auto& [k, v] : rows->front().extra) {
        auto it = r.extra.find(k);
        s += ',';
        if (it != r.extra.end()) s += detail::number(it->second);
      }
      s += "\n";
    }
    detail::write_atomically(path, s);
    return true;
  };
}

/// Logs every epoch's metrics as a JSON array of objects (non-finite values as `null`).
inline epoch_callback json_log(std::filesystem::path path) {
  auto rows = std::make_shared<std::vector<epoch_metrics>>();
  return [path = std::move(path), rows](epoch_metrics& m) {
    rows->push_back(m);
    std::string s = "[\n";
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const auto& r = (*rows)[i];
      s += "  {\"epoch\": " + std::to_string(r.epoch) + ", \"train_loss\": " + detail::number(r.train_loss) +
           ", \"train_accuracy\": " + detail::number(r.train_accuracy) + ", \"test_loss\": " +
           detail::number(r.test_loss) + ", \"test_accuracy\": " + detail::number(r.test_accuracy) +
           ", \"seconds\": " + detail::number(r.seconds) + ", \"samples_per_second\": " +
           detail::number(r.samples_per_second);
      for (const auto& [k, v] : r.extra) s += ", \"" + k + "\": " + detail::number(v);
      s += i + 1 == rows->size() ? "}\n" : "},\n";
    }
    s += "]\n";
    detail::write_atomically(path, s);
    return true;
  };
}

/// Stops training when the monitored metric has not improved by `min_delta` for `patience`
/// epochs. Monitors test accuracy when it is available, else the training loss.
inline epoch_callback early_stopping(std::size_t patience, double min_delta = 0.0) {
  struct state {
    double best = -std::numeric_limits<double>::infinity();
    std::size_t waited = 0;
  };
  auto s = std::make_shared<state>();
  return [s, patience, min_delta](epoch_metrics& m) {
    const double score = std::isfinite(m.test_accuracy) ? m.test_accuracy : -m.train_loss;
    if (score > s->best + min_delta) {
      s->best = score;
      s->waited = 0;
      return true;
    }
    return ++s->waited < patience;
  };
}

}  // namespace pnn
