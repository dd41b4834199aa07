// SPDX-License-Identifier: MIT
/// \file
/// \brief The cost hook of the substrate protocol: where a tile reports what its physics did —
/// vectors read, multiply–accumulates, converter operations, programming pulses, parameter
/// writes — for energy and latency accounting to build on.
///
/// A tile that reports holds a `cost_counter*` (null by default) set through
/// `tile_hooks::attach_cost_counter`; every read or programming call adds its event counts to
/// it when attached. Unattached, the hook is one predictable branch per batch call (no counting,
/// no atomic access), so a network that does not count pays nothing measurable. The counter
/// is atomic: `const` reads running on several threads may report into one counter at once.
/// Events are counts, not joules: models of energy per event (per conversion from the bit
/// count, per pulse, per read from the conductances) are applied to them separately.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <pnn/physics/concepts.hpp>

namespace pnn {

/// Events of a tile's physics: counts (dimensionless) and the two sums an energy model needs
/// from the physical state (`array_drive`, `dissipation`).
struct physical_events {
  std::uint64_t reads = 0;             ///< vectors applied forward (rows of a batch)
  std::uint64_t transposed_reads = 0;  ///< vectors applied backwards (columns driven, rows sensed)
  std::uint64_t macs = 0;              ///< analog multiply–accumulates, In·Out per vector
  std::uint64_t dac_conversions = 0;   ///< input values converted to the analog domain
  std::uint64_t adc_conversions = 0;   ///< output values digitised
  std::uint64_t pulses = 0;            ///< programming pulses fired at devices
  std::uint64_t parameter_writes = 0;  ///< parameters set to a value (phases, conductances)
  std::uint64_t dac_levels = 0;        ///< Σ 2^bits over DAC conversions (Walden's conversion steps)
  std::uint64_t adc_levels = 0;        ///< Σ 2^bits over ADC conversions
  std::uint64_t pulse_slots = 0;       ///< time slots of programming (all devices of an array pulse in parallel)
  std::uint64_t array_vectors = 0;     ///< vectors read on a crossbar array (either direction, re-reads included)
  std::uint64_t optical_vectors = 0;   ///< vectors sent through a photonic mesh (either direction)
  std::uint64_t optical_channels = 0;  ///< Σ modes over those vectors (each modulated and detected)
  std::uint64_t held_element_vectors = 0;  ///< Σ over those vectors of the thermo-optic elements held
  std::uint64_t settled_vectors = 0;   ///< vectors a resistor network settled on
  std::uint64_t circuit_executions = 0;  ///< quantum circuit executions (reads and parameter-shift runs)
  std::uint64_t circuit_shots = 0;       ///< Σ shots over those executions (0 for exact expectations)
  double array_drive = 0;  ///< µS: Σ over crossbar vectors of Σ_cells G·u², u = drive / full-scale read voltage
  double dissipation = 0;  ///< µW: Σ over settled vectors of the power Σ_e k_e ΔV_e² (per volt² of source)
  double oscillator_time = 0;      ///< Σ over reads of oscillators × run time (time units of the oscillator model)
  double oscillator_run_time = 0;  ///< Σ over reads of the run time (the oscillators of a read run together)

  physical_events& operator+=(const physical_events& o) noexcept {
    reads += o.reads;
    transposed_reads += o.transposed_reads;
    macs += o.macs;
    dac_conversions += o.dac_conversions;
    adc_conversions += o.adc_conversions;
    pulses += o.pulses;
    parameter_writes += o.parameter_writes;
    dac_levels += o.dac_levels;
    adc_levels += o.adc_levels;
    pulse_slots += o.pulse_slots;
    array_vectors += o.array_vectors;
    optical_vectors += o.optical_vectors;
    optical_channels += o.optical_channels;
    held_element_vectors += o.held_element_vectors;
    settled_vectors += o.settled_vectors;
    circuit_executions += o.circuit_executions;
    circuit_shots += o.circuit_shots;
    array_drive += o.array_drive;
    dissipation += o.dissipation;
    oscillator_time += o.oscillator_time;
    oscillator_run_time += o.oscillator_run_time;
    return *this;
  }
  /// The events between two readings of a counter (`later - earlier`).
  [[nodiscard]] friend physical_events operator-(physical_events a, const physical_events& b) noexcept {
    a.reads -= b.reads;
    a.transposed_reads -= b.transposed_reads;
    a.macs -= b.macs;
    a.dac_conversions -= b.dac_conversions;
    a.adc_conversions -= b.adc_conversions;
    a.pulses -= b.pulses;
    a.parameter_writes -= b.parameter_writes;
    a.dac_levels -= b.dac_levels;
    a.adc_levels -= b.adc_levels;
    a.pulse_slots -= b.pulse_slots;
    a.array_vectors -= b.array_vectors;
    a.optical_vectors -= b.optical_vectors;
    a.optical_channels -= b.optical_channels;
    a.held_element_vectors -= b.held_element_vectors;
    a.settled_vectors -= b.settled_vectors;
    a.circuit_executions -= b.circuit_executions;
    a.circuit_shots -= b.circuit_shots;
    a.array_drive -= b.array_drive;
    a.dissipation -= b.dissipation;
    a.oscillator_time -= b.oscillator_time;
    a.oscillator_run_time -= b.oscillator_run_time;
    return a;
  }
  friend bool operator==(const physical_events&, const physical_events&) = default;
};

/// A thread-safe sum of `physical_events` that tiles report into.
class cost_counter {
 public:
  /// Adds one call's events (relaxed atomics: totals are read after the work is done).
  void add(const physical_events& e) noexcept {
    for (std::size_t i = 0; i < counts; ++i) add(count_[i], e.*count_fields[i]);
    add(drive_, e.array_drive);
    add(dissipation_, e.dissipation);
    add(oscillator_time_, e.oscillator_time);
    add(oscillator_run_time_, e.oscillator_run_time);
  }
  /// The events counted since construction or the last `reset`.
  [[nodiscard]] physical_events totals() const noexcept {
    physical_events e;
    for (std::size_t i = 0; i < counts; ++i) e.*count_fields[i] = count_[i].load(std::memory_order_relaxed);
    e.array_drive = drive_.load(std::memory_order_relaxed);
    e.dissipation = dissipation_.load(std::memory_order_relaxed);
    e.oscillator_time = oscillator_time_.load(std::memory_order_relaxed);
    e.oscillator_run_time = oscillator_run_time_.load(std::memory_order_relaxed);
    return e;
  }
  void reset() noexcept {
    for (auto& a : count_) a.store(0, std::memory_order_relaxed);
    drive_.store(0, std::memory_order_relaxed);
    dissipation_.store(0, std::memory_order_relaxed);
    oscillator_time_.store(0, std::memory_order_relaxed);
    oscillator_run_time_.store(0, std::memory_order_relaxed);
  }

 private:
  static constexpr std::size_t counts = 17;
  static constexpr std::uint64_t physical_events::* count_fields[counts] = {
      &physical_events::reads,           &physical_events::transposed_reads,  &physical_events::macs,
      &physical_events::dac_conversions, &physical_events::adc_conversions,   &physical_events::pulses,
      &physical_events::parameter_writes, &physical_events::dac_levels,       &physical_events::adc_levels,
      &physical_events::pulse_slots,     &physical_events::optical_vectors,   &physical_events::optical_channels,
      &physical_events::held_element_vectors, &physical_events::settled_vectors, &physical_events::array_vectors,
      &physical_events::circuit_executions, &physical_events::circuit_shots};
  static void add(std::atomic<std::uint64_t>& a, std::uint64_t v) noexcept {
    if (v != 0) a.fetch_add(v, std::memory_order_relaxed);
  }
  static void add(std::atomic<double>& a, double v) noexcept {
    if (v != 0) a.fetch_add(v, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> count_[counts]{};
  std::atomic<double> drive_{0}, dissipation_{0}, oscillator_time_{0}, oscillator_run_time_{0};
};

/// The member a reporting tile embeds: a pointer to the attached counter (none by default)
/// that copies of the tile share, and `report`, which does nothing when unattached.
class cost_report {
 public:
  void attach(cost_counter* c) noexcept { counter_ = c; }
  [[nodiscard]] cost_counter* counter() const noexcept { return counter_; }
  /// Adds the events `make()` describes, built only when a counter is attached.
  template <class Make>
  void report(Make&& make) const {
    if (counter_ != nullptr) [[unlikely]]
      counter_->add(make());
  }

 private:
  cost_counter* counter_ = nullptr;
};

/// Attaches `c` to the tile of every layer of `net` that reports its physical events (null
/// detaches); returns how many layers report. Layers that read through a copy of their tile
/// (weights-stage noise) refresh the copy, so it reports too.
template <class Net>
std::size_t attach_cost_counter(Net& net, cost_counter* c) {
  std::size_t reporting = 0;
  net.for_each_layer([&](auto& l, std::size_t) {
    if (tile_hooks::attach_cost_counter(l.tile, c)) ++reporting;
    if constexpr (requires { l.refresh_effective_tile(); }) l.refresh_effective_tile();
  });
  return reporting;
}

}  // namespace pnn
