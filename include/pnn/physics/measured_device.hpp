// SPDX-License-Identifier: MIT
/// \file
/// \brief Devices from measured pulse-response (LTP/LTD) data: the tabulated step law
/// `law::measured`, a CSV reader and writer, a fitter of the closed-form laws, and a generator.
///
/// A pulse-response measurement fires identical programming pulses at a device and reads its
/// conductance after each: a potentiation (up) sweep from the low end of its range and a
/// depression (down) sweep from the high end, for several devices and possibly several cycles.
/// This header turns such data into `physics::devices` models (docs/physics.md, "Measured devices").
///
/// **File format** (`load_pulse_response`, `save_pulse_response`): UTF-8 CSV, one reading per row.
///
///     # lines starting with '#' and blank lines are ignored anywhere
///     device,direction,pulse,conductance_uS
///     d0,up,0,10.0312
///     d0,up,1,10.0871
///     ...
///
/// or, with several up/down cycles per device, the header `device,cycle,direction,pulse,
/// conductance_uS` and a cycle number 0, 1, … in the second column. `device` is any label without
/// a comma; `direction` is `up` (potentiation) or `down` (depression); `pulse` counts the pulses
/// fired in that sweep before the reading, so every sweep (one device, cycle and direction) starts
/// at 0 and goes up by one row by row (rows of different sweeps may interleave);
/// `conductance_uS` is the conductance in µS (finite, ≥ 0). Every sweep needs at least
/// `min_sweep_points` readings and every device an up and a down sweep. Each defect is a
/// `pnn::error` naming the file, the line and the problem; nothing is returned partially.
///
/// **Fit** (`fit_pulse_response`): conductance maps linearly onto normalised weight
/// (`conductance_map`): by default the range of the mean measured response onto
/// `[−w_max, w_max]` (`fit_options::w_max`, 0.6 as devices.hpp's default), so `w = 0` is the middle
/// of the measured range; pass the calibration in `fit_options::map` when it is known (aihwkit's
/// presets put `w = 0` at the symmetry point). A sweep of readings `w₀ … w_N` gives N steps
/// `Δw_k = ±(w_{k+1} − w_k)` at `w_k`; a step that ends on the device's lowest or highest reading
/// was cut short by a hard bound and is left out of the step fits (`clipped_steps`). Per device
/// and direction two closed forms are fitted to the steps:
/// * soft bounds, `Δw_up = dw_up (1 − w/b_max)`, a straight line `a + c·w` (`dw_up = a`,
///   `b_max = −a/c`; down likewise with `b_min`), by linear regression;
/// * the power law `Δw_up = A (b_max − w)^γ_up` (pow_step; `γ` per direction shared by all
///   devices, `A` and the bound per device; nested one-dimensional searches, `A` in closed form).
///
/// Both minimise the plain sum of squared step residuals (a weighted fit, natural for noise
/// proportional to the step, would make the two SSEs incomparable), and the one with the lower
/// BIC (n ln(SSE/n) + k ln n over the steps) gives the reported
/// parameters. Cycle-to-cycle noise `dw_min_std` is the spread of `Δw/Δŵ − 1` around the fitted
/// curve (steps whose fitted size is below `min_relative_step` of the device's step at `w = 0`
/// are left out: there the ratio is noise over nearly nothing). Device-to-device spreads invert
/// devices.hpp's draw: `dw_min_dtod = sd(dw_up + dw_down)/(2 dw_min)`,
/// `up_down_dtod = sd(dw_up − dw_down)/(2 dw_min)`, `w_max_dtod = sd(b_max)/w_max` over the
/// devices, each variance less the devices' own estimation variance where it is known (soft
/// bounds: from the regression). Bounds extrapolated from sweeps that stop far from them are
/// uncertain; each device's measured extremes are reported beside them (`device_estimate`).
///
/// **Tabulated law** (`law::measured`), model-free: one table of (w, relative step) per
/// direction, linearly interpolated and clamped at its ends; the step at `w` is the cell's
/// `dw_up`/`dw_down` (device-to-device variation as for every pulsed device) times the table's
/// value at `w` stretched to the cell's bounds. The fitter builds it from every step, relative to
/// its device's step at `w = 0` and at the weight stretched from the device's measured extremes
/// onto their mean, averaged in `table_points` bins; each device's step at `w = 0` is the
/// least-squares scale of its steps onto the table, and the two are refined in turn. Its bounds
/// are the measured extremes.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <pnn/core/error.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/physics/devices.hpp>

namespace pnn::physics::devices {

namespace law {

/// One point of a tabulated step law: at weight `w` (normalised units) the step is `step` times
/// the cell's step at the reference point `w = 0`.
struct table_point {
  float w = 0;
  float step = 1;
};

/// \brief Step law tabulated from measured data: per direction a list of (w, relative step)
/// points, sorted by `w`, linearly interpolated and held constant beyond its ends.
///
/// Up step at `w`: `c.dw_up · t_up(w')`, down: `c.dw_down · t_down(w')`, clipped at zero, with
/// `w'` the weight stretched so that the cell's own bounds land on the nominal ones
/// (`w' = w·w_max/b_max` above zero, `w·w_min/b_min` below; `scale_with_bounds`): a device
/// drawn with a narrower range follows the same curve over it, as soft bounds do. The tables are
/// relative to the step at `w = 0` (the fitter makes `t(0) = 1`), so `dw_min`, `up_down` and
/// their device-to-device spreads mean what they mean for the closed-form laws. The default
/// (one point of 1 each way) is a constant step.
struct measured {
  static constexpr const char* name = "measured";
  static constexpr bool has_pair = false;
  std::vector<table_point> up_table{{0.0f, 1.0f}};    ///< relative up step over w, w strictly increasing
  std::vector<table_point> down_table{{0.0f, 1.0f}};  ///< relative down-step magnitude over w
  bool scale_with_bounds = true;  ///< stretch w to each cell's own bounds (false: absolute w)

  /// Rejects empty, unsorted, non-finite or negative tables, and tables without a positive step
  /// at `w = 0`.
  void validate() const {
    check(up_table);
    check(down_table);
  }
  /// Table value at `w` (interpolated, clamped at the ends, ≥ 0).
  [[nodiscard]] static float interpolate(const std::vector<table_point>& t, float w) noexcept {
    if (t.empty()) return 0.0f;
    if (!(w > t.front().w)) return std::max(t.front().step, 0.0f);  // NaN too: never past the ends
    if (w >= t.back().w) return std::max(t.back().step, 0.0f);
    const auto hi = std::upper_bound(t.begin(), t.end(), w, [](float v, const table_point& p) { return v < p.w; });
    const auto lo = hi - 1;
    const float f = (w - lo->w) / (hi->w - lo->w);
    return std::max(lo->step + f * (hi->step - lo->step), 0.0f);
  }
  /// Step sizes at `w` for a cell `c` of a model with nominal bounds `w_min < 0 < w_max`.
  [[nodiscard]] float up(float w, const device_cell& c, float w_min, float w_max) const noexcept {
    return c.dw_up * interpolate(up_table, stretch(w, c, w_min, w_max));
  }
  [[nodiscard]] float down(float w, const device_cell& c, float w_min, float w_max) const noexcept {
    return c.dw_down * interpolate(down_table, stretch(w, c, w_min, w_max));
  }

 private:
  [[nodiscard]] float stretch(float w, const device_cell& c, float w_min, float w_max) const noexcept {
    if (!scale_with_bounds) return w;
    if (w >= 0) return c.b_max > 0 ? w * (w_max / c.b_max) : w_max;
    return c.b_min < 0 ? w * (w_min / c.b_min) : w_min;
  }
  static void check(const std::vector<table_point>& t) {
    PNN_EXPECTS(!t.empty(), "devices::measured: a step table is empty (need at least one (w, step) point per direction)");
    for (std::size_t k = 0; k < t.size(); ++k) {
      PNN_EXPECTS(std::isfinite(t[k].w) && std::isfinite(t[k].step),
                  "devices::measured: a step table holds a non-finite w or step");
      PNN_EXPECTS(t[k].step >= 0, "devices::measured: a step table holds a negative step (steps are magnitudes)");
      PNN_EXPECTS(k == 0 || t[k].w > t[k - 1].w, "devices::measured: a step table is not sorted by strictly increasing w");
    }
    PNN_EXPECTS(interpolate(t, 0.0f) > 0, "devices::measured: a step table has no positive step at the reference point w = 0");
  }
};

}  // namespace law

/// Pulsed device with a step law tabulated from measurements (`fit_pulse_response` builds one).
using measured = pulsed<law::measured>;

}  // namespace pnn::physics::devices

namespace pnn::physics {
static_assert(pulsed_device<devices::measured>);
}  // namespace pnn::physics

namespace pnn::physics::devices {

/// Direction of a sweep: potentiation (`up`, conductance rises) or depression (`down`).
enum class pulse_direction : std::uint8_t { up = 0, down = 1 };

/// One sweep: the conductance read before the first pulse and after each of its pulses.
struct pulse_sweep {
  std::string device{};                            ///< device label
  std::size_t cycle = 0;                           ///< up/down cycle of that device, 0, 1, …
  pulse_direction direction = pulse_direction::up;
  std::vector<double> conductance_uS{};            ///< reading k after k pulses, µS
  std::size_t line = 0;                            ///< file line of its first row (0: not from a file)

  /// Equal data (the line it came from does not count).
  friend bool operator==(const pulse_sweep& a, const pulse_sweep& b) {
    return a.device == b.device && a.cycle == b.cycle && a.direction == b.direction &&
           a.conductance_uS == b.conductance_uS;
  }
};

/// A pulse-response data set: sweeps in the order their first rows appear.
struct pulse_response {
  std::vector<pulse_sweep> sweeps{};
  std::string source{};  ///< the file it was read from (for messages); empty when built in memory

  /// Device labels in order of first appearance.
  [[nodiscard]] std::vector<std::string> devices() const {
    std::vector<std::string> out;
    for (const auto& s : sweeps)
      if (std::find(out.begin(), out.end(), s.device) == out.end()) out.push_back(s.device);
    return out;
  }
  friend bool operator==(const pulse_response& a, const pulse_response& b) { return a.sweeps == b.sweeps; }
};

/// Fewest readings of a sweep (two steps: a slope needs two points, a fit a third).
inline constexpr std::size_t min_sweep_points = 3;

namespace measured_detail {

[[noreturn]] inline void fail(const std::string& what) {
#if PNN_HAS_EXCEPTIONS
  ::pnn::throw_error(what);
#else
  if (::pnn::detail::g_violation_handler != nullptr) ::pnn::detail::g_violation_handler(what.c_str(), "", 0);
  ::pnn::detail::trap();
#endif
}

inline const char* direction_name(pulse_direction d) noexcept { return d == pulse_direction::up ? "up" : "down"; }

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

inline std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t p = line.find(',');
    out.push_back(trim(line.substr(0, p)));
    if (p == std::string_view::npos) return out;
    line.remove_prefix(p + 1);
  }
}

inline std::string where(const pulse_response& r, std::size_t line) {
  std::string s = r.source.empty() ? std::string("pulse response: ") : "'" + r.source + "': ";
  if (line != 0) s += "line " + std::to_string(line) + ": ";
  return s;
}

inline std::string sweep_name(const pulse_sweep& s) {
  return std::string("the '") + direction_name(s.direction) + "' sweep of device '" + s.device + "' (cycle " +
         std::to_string(s.cycle) + ")";
}

/// Structural checks shared by the reader, the writer and the fitter.
inline void check_response(const pulse_response& r, const std::string& who) {
  if (r.sweeps.empty()) fail(who + where(r, 0) + "no data rows (need an up and a down sweep per device)");
  for (const auto& s : r.sweeps) {
    if (s.device.empty() || s.device.find_first_of(",\n\r") != std::string::npos)
      fail(who + where(r, s.line) + "device label '" + s.device + "' is empty or holds a comma or line break");
    if (s.conductance_uS.size() < min_sweep_points)
      fail(who + where(r, s.line) + sweep_name(s) + " has " + std::to_string(s.conductance_uS.size()) +
           " readings; a sweep needs at least " + std::to_string(min_sweep_points));
    for (const double g : s.conductance_uS)
      if (!std::isfinite(g) || g < 0)
        fail(who + where(r, s.line) + sweep_name(s) + " holds a non-finite or negative conductance");
  }
  for (const auto& label : r.devices()) {
    bool has[2] = {false, false};
    std::size_t line = 0;
    for (const auto& s : r.sweeps) {
      if (s.device != label) continue;
      has[std::size_t(s.direction)] = true;
      if (line == 0) line = s.line;
    }
    if (!has[0] || !has[1])
      fail(who + where(r, line) + "device '" + label + "' has only '" + (has[0] ? "up" : "down") +
           "' sweeps; every device needs an up and a down sweep");
  }
}

inline std::string format_double(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

}  // namespace measured_detail

/// \brief Reads a pulse-response CSV file (format in this header's description).
///
/// \throws pnn::error naming the file, the line and the defect: missing or unreadable file, no
/// or a foreign header, a row with too few or too many fields, a direction other than up/down, a
/// pulse or cycle that is not a non-negative integer, a conductance that is not a number, not
/// finite or negative, pulse numbers that do not start at 0 or skip, a sweep with fewer than
/// `min_sweep_points` readings, a device with only one direction.
[[nodiscard]] inline pulse_response load_pulse_response(const std::string& path) {
  using namespace measured_detail;
  const std::string who = "pnn::physics::devices::load_pulse_response: ";
  const std::string file = "'" + path + "': ";
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) fail(who + file + "no such file");
  if (std::filesystem::is_directory(st)) fail(who + file + "is a directory, not a pulse-response file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(who + file + "cannot open");
  static constexpr std::string_view header4 = "device,direction,pulse,conductance_uS";
  static constexpr std::string_view header5 = "device,cycle,direction,pulse,conductance_uS";
  pulse_response r;
  r.source = path;
  std::map<std::tuple<std::string, std::size_t, int>, std::size_t> index;
  std::string raw;
  std::size_t line = 0, fields = 0;
  auto bad = [&](const std::string& what) { fail(who + file + "line " + std::to_string(line) + ": " + what); };
  auto integer = [&](std::string_view f, const char* what) {
    std::size_t v = 0;
    const auto res = std::from_chars(f.data(), f.data() + f.size(), v);
    if (f.empty() || res.ec != std::errc{} || res.ptr != f.data() + f.size())
      bad(std::string(what) + " '" + std::string(f) + "' is not a non-negative integer");
    return v;
  };
  while (std::getline(in, raw)) {
    ++line;
    std::string_view l = trim(raw);
    if (line == 1 && l.substr(0, 3) == "\xEF\xBB\xBF") l.remove_prefix(3);  // UTF-8 byte-order mark
    if (l.empty() || l.front() == '#') continue;
    const auto f = split_fields(l);
    if (fields == 0) {
      std::string norm;
      for (const auto field : f) norm += (norm.empty() ? "" : ",") + std::string(field);
      if (norm == header4) fields = 4;
      else if (norm == header5) fields = 5;
      else {
        std::string shown(l.substr(0, 80));  // printable ASCII only: a binary file's bytes become '?'
        for (char& ch : shown)
          if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
        bad("not a pulse-response file: the header is '" + shown + "', expected '" +
            std::string(header4) + "' or '" + std::string(header5) + "'");
      }
      continue;
    }
    if (f.size() != fields)
      bad("expected " + std::to_string(fields) + " fields (" + std::string(fields == 4 ? header4 : header5) +
          "), found " + std::to_string(f.size()) + " (truncated or malformed row)");
    const std::string device(f[0]);
    if (device.empty()) bad("empty device label");
    const std::size_t cycle = fields == 5 ? integer(f[1], "cycle") : 0;
    const std::string_view dir = f[fields - 3];
    if (dir != "up" && dir != "down") bad("direction must be 'up' or 'down', found '" + std::string(dir) + "'");
    const auto direction = dir == "up" ? pulse_direction::up : pulse_direction::down;
    const std::size_t pulse = integer(f[fields - 2], "pulse");
    const std::string_view gs = f[fields - 1];
    double g = 0;
    const auto res = std::from_chars(gs.data(), gs.data() + gs.size(), g);
    if (gs.empty() || res.ec == std::errc::invalid_argument || res.ptr != gs.data() + gs.size())
      bad("conductance_uS '" + std::string(gs) + "' is not a number");
    if (res.ec == std::errc::result_out_of_range || !std::isfinite(g))
      bad("conductance_uS '" + std::string(gs) + "' is not finite");
    if (g < 0) bad("conductance_uS " + std::string(gs) + " is negative (a conductance is >= 0)");
    const auto key = std::make_tuple(device, cycle, int(direction));
    auto it = index.find(key);
    if (it == index.end()) {
      if (pulse != 0)
        bad("pulse " + std::to_string(pulse) + " starts the '" + std::string(dir) + "' sweep of device '" + device +
            "' (cycle " + std::to_string(cycle) + "); a sweep starts at pulse 0");
      it = index.emplace(key, r.sweeps.size()).first;
      r.sweeps.push_back({device, cycle, direction, {}, line});
    }
    pulse_sweep& s = r.sweeps[it->second];
    if (pulse != s.conductance_uS.size())
      bad("pulse " + std::to_string(pulse) + " follows pulse " + std::to_string(s.conductance_uS.size() - 1) +
          " in " + sweep_name(s) + ": pulse numbers must be consecutive");
    s.conductance_uS.push_back(g);
  }
  if (in.bad()) fail(who + file + "read error");
  if (fields == 0)
    fail(who + file + (line == 0 ? "file is empty" : "no header") + ", expected the header '" + std::string(header4) +
         "'");
  check_response(r, who);
  return r;
}

/// \brief Writes `r` as a pulse-response CSV file that `load_pulse_response` reads back equal:
/// readings in their shortest round-trip decimal form, the cycle column only when some sweep has
/// a cycle other than 0. Each line of `comment` becomes a leading `# ` line (provenance).
/// \throws pnn::error when `r` is not a valid response or the file cannot be written.
inline void save_pulse_response(const pulse_response& r, const std::string& path, const std::string& comment = {}) {
  using namespace measured_detail;
  const std::string who = "pnn::physics::devices::save_pulse_response: ";
  check_response(r, who);
  const bool cycles = std::any_of(r.sweeps.begin(), r.sweeps.end(), [](const pulse_sweep& s) { return s.cycle != 0; });
  std::string out;
  for (std::size_t p = 0; p < comment.size();) {
    const std::size_t e = std::min(comment.find('\n', p), comment.size());
    out += "# " + comment.substr(p, e - p) + "\n";
    p = e + 1;
  }
  out += cycles ? "device,cycle,direction,pulse,conductance_uS\n" : "device,direction,pulse,conductance_uS\n";
  for (const auto& s : r.sweeps) {
    const std::string head = s.device + "," + (cycles ? std::to_string(s.cycle) + "," : "") + direction_name(s.direction) + ",";
    for (std::size_t k = 0; k < s.conductance_uS.size(); ++k)
      out += head + std::to_string(k) + "," + format_double(s.conductance_uS[k]) + "\n";
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail(who + "'" + path + "': cannot open for writing");
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
  f.close();
  if (!f) fail(who + "'" + path + "': write failed");
}

/// \brief Linear map between one device's conductance (µS) and normalised weight: `w_min ↦ g_min`,
/// `w_max ↦ g_max`, slope `g_ref = (g_max − g_min)/(w_max − w_min)` µS per weight unit.
struct conductance_map {
  double g_min = 10.0;  ///< µS at w_min
  double g_max = 30.0;  ///< µS at w_max
  double w_min = -0.6;  ///< normalised weight at g_min
  double w_max = 0.6;   ///< normalised weight at g_max

  void validate() const {
    PNN_EXPECTS(std::isfinite(g_min) && std::isfinite(g_max) && g_max > g_min,
                "devices::conductance_map: need finite g_min < g_max");
    PNN_EXPECTS(std::isfinite(w_min) && std::isfinite(w_max) && w_max > w_min,
                "devices::conductance_map: need finite w_min < w_max");
  }
  [[nodiscard]] double slope() const noexcept { return (g_max - g_min) / (w_max - w_min); }
  [[nodiscard]] double to_weight(double g) const noexcept { return w_min + (g - g_min) / slope(); }
  [[nodiscard]] double to_conductance(double w) const noexcept { return g_min + (w - w_min) * slope(); }
};

/// Options of `simulate_pulse_response`.
struct simulate_options {
  double g_min_uS = 10.0;        ///< conductance of the model's nominal w_min (µS)
  double g_max_uS = 30.0;        ///< conductance of the model's nominal w_max (µS)
  std::size_t cycles = 1;        ///< up/down cycles per device (cycle column when > 1)
  double resolution_uS = 1e-4;   ///< readings rounded to this (an instrument's resolution); 0: exact
  std::vector<device_cell>* cells = nullptr;  ///< receives each device's drawn parameters (checks)
};

/// The conductance map `simulate_pulse_response` uses for `d`: nominal bounds onto [g_min, g_max].
template <class Device>
[[nodiscard]] conductance_map simulation_map(const Device& d, const simulate_options& o = {}) {
  return {o.g_min_uS, o.g_max_uS, double(d.w_min), double(d.w_max)};
}

/// A pulsed device with one weight per cell (not a pair) and nominal bounds: what a single-device
/// pulse-response measurement can characterise.
template <class D>
concept single_pulsed_device = pulsed_device<D> && !D::has_pair && requires(const D& d) {
  { d.w_min } -> std::convertible_to<float>;
  { d.w_max } -> std::convertible_to<float>;
};

/// \brief Pulse-response data of `devices` devices of model `d`, as a measurement would give it.
///
/// Each device draws its own parameters (`d.draw_cell`), then per cycle sweeps up from its own
/// `b_min` with `pulses` pulses, then down from its own `b_max` with `pulses` pulses, every pulse
/// with the model's cycle-to-cycle noise. Readings are `simulation_map(d, o).to_conductance(w)`
/// rounded to `o.resolution_uS`; labels are "0", "1", …. Device `i` uses stream `g.split(i)`.
/// \throws pnn::error for invalid parameters, fewer than 2 pulses, or a reading below 0 µS
/// (raise `g_min_uS`).
template <single_pulsed_device Device>
[[nodiscard]] pulse_response simulate_pulse_response(const Device& d, std::size_t devices, std::size_t pulses, rng& g,
                                                     const simulate_options& o = {}) {
  d.validate();
  const conductance_map map = simulation_map(d, o);
  map.validate();
  PNN_EXPECTS(devices >= 1 && pulses + 1 >= min_sweep_points && o.cycles >= 1,
              "devices::simulate_pulse_response: need devices >= 1, pulses >= 2, cycles >= 1");
  PNN_EXPECTS(o.resolution_uS >= 0 && std::isfinite(o.resolution_uS),
              "devices::simulate_pulse_response: resolution_uS must be finite and >= 0");
  // Rounding to 1/N µS as round(g·N)/N gives the double nearest the decimal reading (a short CSV
  // field); round(g/res)·res would not (8.681000000000001).
  const double per_uS = o.resolution_uS > 0 ? 1.0 / o.resolution_uS : 0.0;
  const bool whole = per_uS > 0 && std::abs(per_uS - std::round(per_uS)) < 1e-9 * per_uS;
  pulse_response r;
  if (o.cells != nullptr) o.cells->clear();
  for (std::size_t i = 0; i < devices; ++i) {
    rng gd = g.split(i);
    const device_cell c = d.draw_cell(gd);
    if (o.cells != nullptr) o.cells->push_back(c);
    for (std::size_t cy = 0; cy < o.cycles; ++cy) {
      for (const bool up : {true, false}) {
        pulse_sweep s{std::to_string(i), cy, up ? pulse_direction::up : pulse_direction::down, {}, 0};
        float w = 0, aux = 0;
        d.write(w, aux, up ? c.b_min : c.b_max, c);
        auto read = [&] {
          double gv = map.to_conductance(double(w));
          if (whole) gv = std::round(gv * std::round(per_uS)) / std::round(per_uS);
          else if (o.resolution_uS > 0) gv = std::round(gv / o.resolution_uS) * o.resolution_uS;
          if (gv < 0)
            measured_detail::fail("devices::simulate_pulse_response: device " + std::to_string(i) + " reads " +
                                  std::to_string(gv) + " uS at w = " + std::to_string(w) +
                                  "; raise g_min_uS so that every device bound maps to a conductance >= 0");
          s.conductance_uS.push_back(gv);
        };
        read();
        for (std::size_t k = 0; k < pulses; ++k) {
          d.pulse(w, aux, up, c, gd.normal());
          read();
        }
        r.sweeps.push_back(std::move(s));
      }
    }
  }
  return r;
}

/// The closed forms `fit_pulse_response` compares.
enum class fit_model : std::uint8_t {
  soft,  ///< soft bounds, Δw = dw (1 − w/b): a straight line in w per device and direction
  power  ///< pow step, Δw = A |b − w|^γ: γ per direction shared by all devices
};

/// Options of `fit_pulse_response`.
struct fit_options {
  /// Half-width of the weight range onto which the mean measured conductance range maps (when
  /// `map` is not given): `[G_lo, G_hi] ↦ [−w_max, w_max]`.
  float w_max = 0.6f;
  std::optional<conductance_map> map{};  ///< known calibration; overrides the measured-range map
  std::size_t table_points = 24;         ///< bins of the tabulated law per direction, ≥ 2
  /// Steps whose fitted size is below this fraction of the device's step at w = 0 are left out of
  /// the cycle-to-cycle noise estimate.
  float min_relative_step = 0.2f;
};

/// How well one closed form describes the data.
struct model_quality {
  double step_r2 = 0;    ///< R² of the fitted step Δŵ(w) against every measured step
  double step_rms = 0;   ///< RMS step residual (normalised weight units)
  double curve_r2 = 0;   ///< R² of each device's noise-free fitted sweep against its measured sweeps
  double curve_rms = 0;  ///< RMS of that sweep residual (weight units)
  double bic = 0;        ///< n ln(SSE/n) + k ln n over the steps (lower is better)
};

/// The common pulsed-device parameters one closed form gives, at the reference point w = 0.
struct model_fit {
  float dw_min = 0, up_down = 0, dw_min_dtod = 0, up_down_dtod = 0, dw_min_std = 0;
  float w_min = 0, w_max = 0, w_min_dtod = 0, w_max_dtod = 0;
  float gamma_up = 1, gamma_down = 1;  ///< pow_step exponents (1 for soft bounds)
  model_quality quality{};
};

/// One device's own estimates (from the better closed form).
struct device_estimate {
  std::string label{};
  double dw_up = 0, dw_down = 0;  ///< steps at w = 0
  double b_min = 0, b_max = 0;    ///< bounds where the fitted steps vanish
  double w_lo = 0, w_hi = 0;      ///< lowest and highest measured weight
};

/// \brief Result of `fit_pulse_response`: parameters, fit quality and ready-made devices.
struct device_fit {
  conductance_map map{};  ///< conductance ↔ weight used
  std::size_t devices = 0, sweeps = 0;
  std::size_t steps = 0;          ///< steps fitted
  std::size_t clipped_steps = 0;  ///< steps ending on a device's measured extreme (a hard bound), not fitted
  fit_model best = fit_model::soft;  ///< the closed form with the lower BIC
  // The better closed form's parameters at the reference point w = 0 (see `model_fit`).
  float dw_min = 0, up_down = 0, dw_min_dtod = 0, up_down_dtod = 0, dw_min_std = 0;
  float w_min = 0, w_max = 0, w_min_dtod = 0, w_max_dtod = 0;
  float gamma_up = 1, gamma_down = 1;  ///< pow-step exponents (from the pow-step fit)
  model_fit soft_fit{}, pow_fit{};     ///< each closed form's parameters and quality
  model_fit table_fit{};  ///< the tabulated device's parameters and quality (model-free)
  std::vector<device_estimate> per_device{};
  devices::soft_bounds soft{};   ///< soft-bounds device with the fitted parameters
  devices::pow_step power{};     ///< pow-step device (its dw_min is the step at the far bound)
  devices::measured table{};     ///< tabulated device: mean measured response, measured extremes as bounds
  std::vector<std::string> warnings{};  ///< fits that needed a fallback
};

namespace measured_detail {

struct steps {
  std::vector<double> x, s;  // weight before the pulse, step in the sweep's direction
};

struct line_fit {
  double a = 0, c = 0, se_a = 0;
  double var_bound = 0;  // delta-method variance of the zero crossing −a/c
};

/// Weighted least-squares line `s = a + c·x` (weights `om`, empty: all 1) with the standard
/// errors of `a` and of the zero crossing `−a/c`.
inline line_fit weighted_line(const steps& d, const std::vector<double>& om) {
  const std::size_t n = d.x.size();
  auto wt = [&](std::size_t k) { return om.empty() ? 1.0 : om[k]; };
  double sw = 0, mx = 0, ms = 0;
  for (std::size_t k = 0; k < n; ++k) sw += wt(k), mx += wt(k) * d.x[k], ms += wt(k) * d.s[k];
  mx /= sw, ms /= sw;
  double sxx = 0, sxs = 0;
  for (std::size_t k = 0; k < n; ++k) sxx += wt(k) * (d.x[k] - mx) * (d.x[k] - mx), sxs += wt(k) * (d.x[k] - mx) * (d.s[k] - ms);
  line_fit f;
  f.c = sxx > 0 ? sxs / sxx : 0.0;
  f.a = ms - f.c * mx;
  double sse = 0;
  for (std::size_t k = 0; k < n; ++k) sse += wt(k) * (d.s[k] - f.a - f.c * d.x[k]) * (d.s[k] - f.a - f.c * d.x[k]);
  const double s2 = n > 2 ? sse / double(n - 2) : 0.0;  // variance at unit weight
  const double va = s2 * (1.0 / sw + (sxx > 0 ? mx * mx / sxx : 0.0));
  f.se_a = std::sqrt(va);
  if (sxx > 0 && f.c != 0) {
    // b = −a/c: var(b) ≈ var(a)/c² + a² var(c)/c⁴ − 2a cov(a, c)/c³, cov(a, c) = −x̄ s²/Sxx.
    const double vc = s2 / sxx, cov = -mx * s2 / sxx;
    f.var_bound = std::max(va / (f.c * f.c) + f.a * f.a * vc / std::pow(f.c, 4) - 2 * f.a * cov / std::pow(f.c, 3), 0.0);
  }
  return f;
}

/// One device's tabulated step: `ref · t(x')`, `x'` the weight stretched from the device's
/// measured extremes [lo, hi] onto the mean ones [m_lo, m_hi] (law::measured's stretch).
struct table_model {
  const std::vector<law::table_point>* t = nullptr;
  double ref = 0, lo = -1, hi = 1, m_lo = -1, m_hi = 1;
  [[nodiscard]] double stretch(double x) const noexcept {
    return x >= 0 ? (hi > 0 ? x * m_hi / hi : m_hi) : (lo < 0 ? x * m_lo / lo : m_lo);
  }
  [[nodiscard]] double shape(double x) const noexcept { return law::measured::interpolate(*t, float(stretch(x))); }
};

/// One device's fitted step in one direction: soft (a + c·w), power (A·max(σ(b − w), 0)^γ) or
/// tabulated.
struct dir_model {
  bool power = false;
  double a = 0, c = 0, A = 0, b = 0, gamma = 1, sigma = 1;
  table_model table{};
  [[nodiscard]] double operator()(double x) const {
    if (table.t != nullptr) return table.ref * table.shape(x);
    if (!power) return std::max(a + c * x, 0.0);
    const double u = sigma * (b - x);
    return u > 0 ? A * std::pow(u, gamma) : 0.0;
  }
};

/// SSE of the power law with bound `b` and exponent `gam`, `A` in closed form.
inline double pow_sse(const steps& d, double b, double gam, double sigma, double& A) {
  double sh = 0, hh = 0, ss = 0;
  for (std::size_t k = 0; k < d.x.size(); ++k) {
    const double u = sigma * (b - d.x[k]);
    const double h = u > 0 ? std::exp(gam * std::log(u)) : 0.0;
    sh += d.s[k] * h, hh += h * h, ss += d.s[k] * d.s[k];
  }
  A = hh > 0 ? std::max(sh / hh, 0.0) : 0.0;
  return ss - 2 * A * sh + A * A * hh;
}

/// Argmin of `f` on [lo, hi]: a grid of `n` points, then golden-section search around the best.
template <class F>
double minimize(F f, double lo, double hi, int n, int iters) {
  int best = 0;
  double fb = std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) {
    const double v = f(lo + (hi - lo) * i / (n - 1));
    if (v < fb) fb = v, best = i;
  }
  double a = lo + (hi - lo) * std::max(best - 1, 0) / (n - 1), b = lo + (hi - lo) * std::min(best + 1, n - 1) / (n - 1);
  const double r = 0.5 * (std::sqrt(5.0) - 1);
  double x1 = b - r * (b - a), x2 = a + r * (b - a), f1 = f(x1), f2 = f(x2);
  for (int k = 0; k < iters; ++k) {
    if (f1 < f2) b = x2, x2 = x1, f2 = f1, x1 = b - r * (b - a), f1 = f(x1);
    else a = x1, x1 = x2, f1 = f2, x2 = a + r * (b - a), f2 = f(x2);
  }
  const double xm = 0.5 * (a + b);
  return f(xm) <= fb ? xm : lo + (hi - lo) * best / (n - 1);
}

/// Best bound of the power law at exponent `gam`: b = extreme + σ·span·e^t, t searched in log.
inline dir_model fit_pow_bound(const steps& d, double gam, double sigma, double span, double& sse) {
  const double extreme = sigma > 0 ? *std::max_element(d.x.begin(), d.x.end()) : *std::min_element(d.x.begin(), d.x.end());
  double A = 0;
  auto bound = [&](double t) { return extreme + sigma * span * std::exp(t); };
  const double t = minimize([&](double tt) { return pow_sse(d, bound(tt), gam, sigma, A); }, std::log(1e-3), std::log(4.0), 12, 18);
  dir_model m{true, 0, 0, 0, bound(t), gam, sigma};
  sse = pow_sse(d, m.b, gam, sigma, m.A);
  return m;
}

struct device_data {
  std::string label;
  steps dir[2];
  std::vector<std::vector<double>> curves[2];  // measured sweeps in weight units
  double lo = 0, hi = 0;                        // measured extremes
};

inline double mean(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}
inline double variance(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (const double x : v) s += (x - m) * (x - m);
  return s / double(v.size() - 1);
}

/// Common parameters from per-device reference steps (with their estimation variances) and
/// bounds, inverting devices.hpp's device-to-device draw.
/// `est_var`, `var_bmin`, `var_bmax`: each device's estimation variance of dw_up + dw_down (and
/// of dw_up − dw_down, the same to first order) and of its bounds, taken off the spreads; empty
/// when unknown.
inline void common_parameters(const std::vector<double>& up, const std::vector<double>& down,
                              const std::vector<double>& est_var, const std::vector<double>& bmin,
                              const std::vector<double>& bmax, model_fit& f,
                              const std::vector<double>& var_bmin = {}, const std::vector<double>& var_bmax = {}) {
  const double u = mean(up), v = mean(down), dw = std::max(u, v);
  std::vector<double> sum(up.size()), diff(up.size());
  for (std::size_t i = 0; i < up.size(); ++i) sum[i] = up[i] + down[i], diff[i] = up[i] - down[i];
  const double ev = mean(est_var);
  f.dw_min = float(dw);
  f.up_down = float((u - v) / dw);
  f.dw_min_dtod = float(std::sqrt(std::max(variance(sum) - (up.size() > 1 ? ev : 0.0), 0.0)) / (2 * dw));
  f.up_down_dtod = float(std::sqrt(std::max(variance(diff) - (up.size() > 1 ? ev : 0.0), 0.0)) / (2 * dw));
  f.w_min = float(mean(bmin));
  f.w_max = float(mean(bmax));
  const bool several = up.size() > 1;
  f.w_min_dtod = float(std::sqrt(std::max(variance(bmin) - (several ? mean(var_bmin) : 0.0), 0.0)) / std::abs(mean(bmin)));
  f.w_max_dtod = float(std::sqrt(std::max(variance(bmax) - (several ? mean(var_bmax) : 0.0), 0.0)) / std::abs(mean(bmax)));
}

/// Step and curve quality, BIC, and the cycle-to-cycle spread of one model's per-device fits.
inline void assess(const std::vector<device_data>& data, const std::vector<std::array<dir_model, 2>>& m,
                   const std::vector<std::array<double, 2>>& bounds, std::size_t params, float min_rel, model_fit& f) {
  double sse = 0, sum[2] = {0, 0}, sum2[2] = {0, 0}, n[2] = {0, 0};
  double csse = 0, cs = 0, cs2 = 0, cn = 0, r2sum = 0, rn = 0, rsum = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    for (int dir = 0; dir < 2; ++dir) {
      const steps& st = data[i].dir[dir];
      const dir_model& mod = m[i][std::size_t(dir)];
      const double ref = mod(0.0);
      for (std::size_t k = 0; k < st.x.size(); ++k) {
        const double p = mod(st.x[k]);
        sse += (st.s[k] - p) * (st.s[k] - p);
        sum[dir] += st.s[k], sum2[dir] += st.s[k] * st.s[k], n[dir] += 1;
        if (p >= double(min_rel) * ref && p > 0) {
          const double r = st.s[k] / p - 1;
          rsum += r, r2sum += r * r, rn += 1;
        }
      }
      for (const auto& curve : data[i].curves[dir]) {
        double w = curve[0];
        for (std::size_t k = 1; k < curve.size(); ++k) {
          w = dir == 0 ? std::min(w + mod(w), bounds[i][1]) : std::max(w - mod(w), bounds[i][0]);
          csse += (curve[k] - w) * (curve[k] - w);
          cs += curve[k], cs2 += curve[k] * curve[k], cn += 1;
        }
      }
    }
  }
  const double sst = sum2[0] - sum[0] * sum[0] / n[0] + sum2[1] - sum[1] * sum[1] / n[1];
  const double nt = n[0] + n[1];
  f.quality.step_r2 = sst > 0 ? 1 - sse / sst : 0.0;
  f.quality.step_rms = std::sqrt(sse / nt);
  f.quality.curve_r2 = 1 - csse / std::max(cs2 - cs * cs / cn, 1e-300);
  f.quality.curve_rms = std::sqrt(csse / cn);
  f.quality.bic = nt * std::log(std::max(sse, 1e-300) / nt) + double(params) * std::log(nt);
  f.dw_min_std = rn > 1 ? float(std::sqrt(std::max(r2sum / rn - (rsum / rn) * (rsum / rn), 0.0) * rn / (rn - 1))) : 0.0f;
}

}  // namespace measured_detail

/// \brief Fits pulse-response data: common pulsed-device parameters, soft-bounds and pow-step
/// closed forms with their quality, and the tabulated `devices::measured` (method in this
/// header's description; docs/physics.md, "Measured devices").
///
/// Reported parameters are the better closed form's; `table_fit` holds the tabulated device's
/// (model-free). Spreads are 0 for a single device. A closed-form device whose fitted parameters
/// would not validate is reported in `warnings`.
/// \throws pnn::error for a structurally invalid response (as `load_pulse_response` checks), a
/// measured range of zero width, invalid options, or fitted bounds or steps that do not make a
/// device (the reference point `w = 0` outside the fitted bounds, a non-positive step at it).
[[nodiscard]] inline device_fit fit_pulse_response(const pulse_response& r, const fit_options& opt = {}) {
  using namespace measured_detail;
  const std::string who = "pnn::physics::devices::fit_pulse_response: ";
  check_response(r, who);
  PNN_EXPECTS(opt.w_max > 0 && std::isfinite(opt.w_max), "devices::fit_pulse_response: w_max must be > 0");
  PNN_EXPECTS(opt.table_points >= 2 && opt.table_points <= 4096, "devices::fit_pulse_response: table_points must lie in [2, 4096]");
  PNN_EXPECTS(opt.min_relative_step >= 0 && opt.min_relative_step < 1,
              "devices::fit_pulse_response: min_relative_step must lie in [0, 1)");
  device_fit out;
  // Conductance → weight: the calibration, or the mean response's range onto [−w_max, w_max].
  if (opt.map) {
    opt.map->validate();
    out.map = *opt.map;
  } else {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int dir = 0; dir < 2; ++dir) {
      std::vector<double> sum, cnt;
      for (const auto& s : r.sweeps) {
        if (int(s.direction) != dir) continue;
        if (sum.size() < s.conductance_uS.size()) sum.resize(s.conductance_uS.size()), cnt.resize(s.conductance_uS.size());
        for (std::size_t k = 0; k < s.conductance_uS.size(); ++k) sum[k] += s.conductance_uS[k], cnt[k] += 1;
      }
      for (std::size_t k = 0; k < sum.size(); ++k) lo = std::min(lo, sum[k] / cnt[k]), hi = std::max(hi, sum[k] / cnt[k]);
    }
    if (!(hi > lo)) fail(who + where(r, 0) + "the mean conductance does not change: no range to map onto weights");
    out.map = {lo, hi, -double(opt.w_max), double(opt.w_max)};
  }
  // Steps per device and direction, cycles pooled.
  const auto labels = r.devices();
  std::vector<device_data> data(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    data[i].label = labels[i];
    data[i].lo = std::numeric_limits<double>::infinity();
    data[i].hi = -data[i].lo;
  }
  for (const auto& s : r.sweeps) {
    device_data& d = data[std::size_t(std::find(labels.begin(), labels.end(), s.device) - labels.begin())];
    std::vector<double> w(s.conductance_uS.size());
    for (std::size_t k = 0; k < w.size(); ++k) {
      w[k] = out.map.to_weight(s.conductance_uS[k]);
      d.lo = std::min(d.lo, w[k]), d.hi = std::max(d.hi, w[k]);
    }
    d.curves[int(s.direction)].push_back(std::move(w));
    ++out.sweeps;
  }
  for (const auto& d : data)
    if (!(d.hi > d.lo)) fail(who + where(r, 0) + "device '" + d.label + "' never changes its conductance");
  // A step that ends on the device's measured extreme was cut short by a hard bound, not by the
  // step law: it stays in the sweeps (curve quality) but not in the step fits.
  for (auto& d : data) {
    for (int dir = 0; dir < 2; ++dir) {
      const double sign = dir == 0 ? 1.0 : -1.0;
      for (const auto& w : d.curves[dir]) {
        for (std::size_t k = 0; k + 1 < w.size(); ++k) {
          if (dir == 0 ? w[k + 1] >= d.hi : w[k + 1] <= d.lo) {
            ++out.clipped_steps;
            continue;
          }
          d.dir[dir].x.push_back(w[k]);
          d.dir[dir].s.push_back(sign * (w[k + 1] - w[k]));
          ++out.steps;
        }
      }
      if (d.dir[dir].x.size() < 2)
        fail(who + where(r, 0) + "device '" + d.label + "' has fewer than 2 '" + (dir == 0 ? "up" : "down") +
             "' steps before its measured extreme: nothing to fit");
    }
  }
  out.devices = data.size();
  const std::size_t nd = data.size();

  auto fallback_bound = [&](const device_data& d, double sigma) {
    return sigma * 10.0 * std::max({std::abs(d.lo), std::abs(d.hi), 1e-12});
  };
  // Soft bounds: a straight line per device and direction.
  std::vector<std::array<measured_detail::dir_model, 2>> soft_m(nd), pow_m(nd);
  std::vector<std::array<double, 2>> soft_b(nd), pow_b(nd);
  std::vector<double> s_up(nd), s_down(nd), s_var(nd), s_bmin(nd), s_bmax(nd), s_vbmin(nd), s_vbmax(nd);
  for (std::size_t i = 0; i < nd; ++i) {
    for (int dir = 0; dir < 2; ++dir) {
      const line_fit lf = weighted_line(data[i].dir[dir], {});
      soft_m[i][std::size_t(dir)] = {false, lf.a, lf.c, 0, 0, 1, dir == 0 ? 1.0 : -1.0};
      const double sigma = dir == 0 ? 1.0 : -1.0;
      double b = -lf.a / lf.c, vb = lf.var_bound;
      if (!(lf.a > 0) || !(sigma * b > 0) || !std::isfinite(b)) {
        out.warnings.push_back("soft bounds: the " + std::string(dir == 0 ? "up" : "down") + " steps of device '" +
                               data[i].label + "' do not shrink towards a bound; bound set to 10x the measured range");
        b = fallback_bound(data[i], sigma);
        vb = 0;
      }
      soft_b[i][std::size_t(dir == 0 ? 1 : 0)] = b;
      (dir == 0 ? s_vbmax : s_vbmin)[i] = vb;
      (dir == 0 ? s_up : s_down)[i] = lf.a;
      s_var[i] += lf.se_a * lf.se_a;
    }
    s_bmin[i] = soft_b[i][0];
    s_bmax[i] = soft_b[i][1];
  }
  common_parameters(s_up, s_down, s_var, s_bmin, s_bmax, out.soft_fit, s_vbmin, s_vbmax);
  assess(data, soft_m, soft_b, 4 * nd, opt.min_relative_step, out.soft_fit);

  // Power law: γ per direction shared by every device, bound and prefactor per device.
  for (int dir = 0; dir < 2; ++dir) {
    const double sigma = dir == 0 ? 1.0 : -1.0;
    auto total = [&](double lg) {
      double t = 0, e = 0;
      for (std::size_t i = 0; i < nd; ++i) {
        (void)fit_pow_bound(data[i].dir[dir], std::exp(lg), sigma, data[i].hi - data[i].lo, e);
        t += e;
      }
      return t;
    };
    const double gam = std::exp(minimize(total, std::log(0.05), std::log(8.0), 14, 16));
    for (std::size_t i = 0; i < nd; ++i) {
      double e = 0;
      pow_m[i][std::size_t(dir)] = fit_pow_bound(data[i].dir[dir], gam, sigma, data[i].hi - data[i].lo, e);
      pow_b[i][std::size_t(dir == 0 ? 1 : 0)] = pow_m[i][std::size_t(dir)].b;
    }
    (dir == 0 ? out.pow_fit.gamma_up : out.pow_fit.gamma_down) = float(gam);
  }
  std::vector<double> p_up(nd), p_down(nd), p_bmin(nd), p_bmax(nd), p_pre_up(nd), p_pre_down(nd), none(nd, 0.0);
  for (std::size_t i = 0; i < nd; ++i) {
    p_up[i] = pow_m[i][0](0.0);
    p_down[i] = pow_m[i][1](0.0);
    p_bmin[i] = pow_b[i][0];
    p_bmax[i] = pow_b[i][1];
    // pow_step's own dw: the step at the far bound, A·(b_max − b_min)^γ.
    p_pre_up[i] = pow_m[i][0].A * std::pow(p_bmax[i] - p_bmin[i], pow_m[i][0].gamma);
    p_pre_down[i] = pow_m[i][1].A * std::pow(p_bmax[i] - p_bmin[i], pow_m[i][1].gamma);
  }
  const float gu = out.pow_fit.gamma_up, gd = out.pow_fit.gamma_down;
  common_parameters(p_up, p_down, none, p_bmin, p_bmax, out.pow_fit);
  out.pow_fit.gamma_up = gu, out.pow_fit.gamma_down = gd;
  assess(data, pow_m, pow_b, 4 * nd + 2, opt.min_relative_step, out.pow_fit);

  out.best = out.pow_fit.quality.bic < out.soft_fit.quality.bic ? fit_model::power : fit_model::soft;
  const bool use_pow = out.best == fit_model::power;
  const model_fit& b = use_pow ? out.pow_fit : out.soft_fit;
  if (!(b.dw_min > 0))
    fail(who + where(r, 0) + "the fitted step at the reference point w = 0 is not positive");
  if (!(b.w_min < 0 && b.w_max > 0) || !(b.up_down > -1 && b.up_down < 1))
    fail(who + where(r, 0) + "the fitted bounds [" + std::to_string(b.w_min) + ", " + std::to_string(b.w_max) +
         "] or steps do not make a device around w = 0 (up_down " + std::to_string(b.up_down) +
         "); choose a conductance map whose w = 0 lies inside the measured range");
  out.dw_min = b.dw_min, out.up_down = b.up_down, out.dw_min_dtod = b.dw_min_dtod, out.up_down_dtod = b.up_down_dtod;
  out.dw_min_std = b.dw_min_std, out.w_min = b.w_min, out.w_max = b.w_max;
  out.w_min_dtod = b.w_min_dtod, out.w_max_dtod = b.w_max_dtod;
  out.gamma_up = out.pow_fit.gamma_up, out.gamma_down = out.pow_fit.gamma_down;
  const auto& ref_up = use_pow ? p_up : s_up;
  const auto& ref_down = use_pow ? p_down : s_down;
  for (std::size_t i = 0; i < nd; ++i)
    out.per_device.push_back({data[i].label, ref_up[i], ref_down[i], use_pow ? p_bmin[i] : s_bmin[i],
                              use_pow ? p_bmax[i] : s_bmax[i], data[i].lo, data[i].hi});

  const model_fit& sf = out.soft_fit;
  out.soft = {.dw_min = sf.dw_min, .dw_min_dtod = sf.dw_min_dtod, .dw_min_std = sf.dw_min_std, .up_down = sf.up_down,
              .up_down_dtod = sf.up_down_dtod, .w_min = sf.w_min, .w_max = sf.w_max, .w_min_dtod = sf.w_min_dtod,
              .w_max_dtod = sf.w_max_dtod};
  {
    model_fit pre;
    common_parameters(p_pre_up, p_pre_down, none, p_bmin, p_bmax, pre);
    const model_fit& pf = out.pow_fit;
    out.power = {.dw_min = pre.dw_min, .dw_min_dtod = pre.dw_min_dtod, .dw_min_std = pf.dw_min_std,
                 .up_down = pre.up_down, .up_down_dtod = pre.up_down_dtod, .w_min = pf.w_min, .w_max = pf.w_max,
                 .w_min_dtod = pf.w_min_dtod, .w_max_dtod = pf.w_max_dtod,
                 .law = {.gamma_up = pf.gamma_up, .gamma_down = pf.gamma_down}};
  }

  auto check_device = [&](const auto& d, const char* what) {
    if (!(d.dw_min > 0 && d.w_min < 0 && d.w_max > 0 && d.up_down > -1 && d.up_down < 1))
      out.warnings.push_back(std::string(what) + ": the fitted parameters do not make a valid device (dw_min " +
                             std::to_string(d.dw_min) + ", bounds [" + std::to_string(d.w_min) + ", " +
                             std::to_string(d.w_max) + "], up_down " + std::to_string(d.up_down) + ")");
  };
  check_device(out.soft, "soft bounds");
  check_device(out.power, "pow step");

  // Tabulated law, model-free: the steps of every device, relative to its own step at w = 0 and
  // at the weight stretched from its measured extremes onto their mean, averaged in bins; each
  // device's step at w = 0 is then the least-squares scale of its steps onto the table, and the
  // two are refined in turn (three rounds, from the closed form's steps at w = 0).
  std::vector<double> lo(nd), hi(nd);
  for (std::size_t i = 0; i < nd; ++i) lo[i] = data[i].lo, hi[i] = data[i].hi;
  const double m_lo = mean(lo), m_hi = mean(hi);
  if (!(m_lo < 0 && m_hi > 0))
    fail(who + where(r, 0) + "the measured range [" + std::to_string(m_lo) + ", " + std::to_string(m_hi) +
         "] does not contain the reference point w = 0");
  std::vector<law::table_point> tab[2];
  std::vector<double> t_ref[2] = {ref_up, ref_down}, t_var(nd, 0.0);
  std::vector<std::array<dir_model, 2>> tab_m(nd);
  std::vector<std::array<double, 2>> tab_b(nd);
  for (std::size_t i = 0; i < nd; ++i) {
    tab_b[i] = {lo[i], hi[i]};
    for (std::size_t dir = 0; dir < 2; ++dir) tab_m[i][dir].table = {&tab[dir], 0.0, lo[i], hi[i], m_lo, m_hi};
  }
  for (int round = 0; round < 3; ++round) {
    std::fill(t_var.begin(), t_var.end(), 0.0);
    for (std::size_t dir = 0; dir < 2; ++dir) {
      std::vector<double> xs, ss;
      for (std::size_t i = 0; i < nd; ++i) {
        const double ref = t_ref[dir][i];
        if (!(ref > 0)) continue;
        const steps& st = data[i].dir[dir];
        for (std::size_t k = 0; k < st.x.size(); ++k) {
          xs.push_back(tab_m[i][dir].table.stretch(st.x[k]));
          ss.push_back(st.s[k] / ref);
        }
      }
      if (xs.empty()) fail(who + where(r, 0) + "no device has a positive step at w = 0");
      const double x0 = *std::min_element(xs.begin(), xs.end()), x1 = *std::max_element(xs.begin(), xs.end());
      const std::size_t nb = opt.table_points;
      std::vector<double> bx(nb, 0.0), bs(nb, 0.0), bn(nb, 0.0);
      for (std::size_t k = 0; k < xs.size(); ++k) {
        const auto j = std::min(nb - 1, std::size_t(double(nb) * (xs[k] - x0) / std::max(x1 - x0, 1e-300)));
        bx[j] += xs[k], bs[j] += ss[k], bn[j] += 1;
      }
      tab[dir].clear();
      for (std::size_t j = 0; j < nb; ++j)
        if (bn[j] >= 3) tab[dir].push_back({float(bx[j] / bn[j]), float(std::max(bs[j] / bn[j], 0.0))});
      if (tab[dir].empty()) tab[dir].push_back({0.0f, 1.0f});
      const float at0 = law::measured::interpolate(tab[dir], 0.0f);
      if (!(at0 > 0))
        fail(who + where(r, 0) + "the mean measured " + (dir == 0 ? "up" : "down") + " step at w = 0 is not positive");
      for (auto& p : tab[dir]) p.step /= at0;
      for (std::size_t i = 0; i < nd; ++i) {
        const steps& st = data[i].dir[dir];
        table_model& tm = tab_m[i][dir].table;
        double st_ = 0, tt = 0;
        for (std::size_t k = 0; k < st.x.size(); ++k) {
          const double v = tm.shape(st.x[k]);
          st_ += st.s[k] * v, tt += v * v;
        }
        tm.ref = t_ref[dir][i] = tt > 0 ? st_ / tt : 0.0;
        double sse = 0;
        for (std::size_t k = 0; k < st.x.size(); ++k) sse += std::pow(st.s[k] - tm.ref * tm.shape(st.x[k]), 2);
        t_var[i] += tt > 0 && st.x.size() > 1 ? sse / double(st.x.size() - 1) / tt : 0.0;
      }
    }
  }
  for (std::size_t dir = 0; dir < 2; ++dir)
    if (tab[dir].front().w > 0 || tab[dir].back().w < 0)
      out.warnings.push_back(std::string("tabulated: the ") + (dir == 0 ? "up" : "down") +
                             " steps were not measured around w = 0; the table's reference step is held from its "
                             "nearest point, w = " + std::to_string(tab[dir].front().w > 0 ? tab[dir].front().w : tab[dir].back().w));
  common_parameters(t_ref[0], t_ref[1], t_var, lo, hi, out.table_fit);
  assess(data, tab_m, tab_b, 2 * nd + 4 * opt.table_points, opt.min_relative_step, out.table_fit);
  const model_fit& tf = out.table_fit;
  if (!(tf.dw_min > 0 && tf.up_down > -1 && tf.up_down < 1))
    fail(who + where(r, 0) + "the tabulated steps at w = 0 do not make a device (dw_min " + std::to_string(tf.dw_min) +
         ", up_down " + std::to_string(tf.up_down) + ")");
  out.table = {.dw_min = tf.dw_min, .dw_min_dtod = tf.dw_min_dtod, .dw_min_std = tf.dw_min_std, .up_down = tf.up_down,
               .up_down_dtod = tf.up_down_dtod, .w_min = tf.w_min, .w_max = tf.w_max, .w_min_dtod = tf.w_min_dtod,
               .w_max_dtod = tf.w_max_dtod, .law = {.up_table = std::move(tab[0]), .down_table = std::move(tab[1])}};
  if (nd < 2) out.warnings.push_back("one device: device-to-device spreads are 0");
  return out;
}

}  // namespace pnn::physics::devices
