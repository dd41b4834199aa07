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

/// Events of a tile's physics, as counts (dimensionless).
struct physical_events {
  std::uint64_t reads = 0;             ///< vectors applied forward (rows of a batch)
  std::uint64_t transposed_reads = 0;  ///< vectors applied backwards (columns driven, rows sensed)
  std::uint64_t macs = 0;              ///< analog multiply–accumulates, In·Out per vector
  std::uint64_t dac_conversions = 0;   ///< input values converted to the analog domain
  std::uint64_t adc_conversions = 0;   ///< output values digitised
  std::uint64_t pulses = 0;            ///< programming pulses fired at devices
  std::uint64_t parameter_writes = 0;  ///< parameters set to a value (phases, conductances)

  physical_events& operator+=(const physical_events& o) noexcept {
    reads += o.reads;
    transposed_reads += o.transposed_reads;
    macs += o.macs;
    dac_conversions += o.dac_conversions;
    adc_conversions += o.adc_conversions;
    pulses += o.pulses;
    parameter_writes += o.parameter_writes;
    return *this;
  }
  friend bool operator==(const physical_events&, const physical_events&) = default;
};

/// A thread-safe sum of `physical_events` that tiles report into.
class cost_counter {
 public:
  /// Adds one call's events (relaxed atomics: totals are read after the work is done).
  void add(const physical_events& e) noexcept {
    add(reads_, e.reads);
    add(transposed_reads_, e.transposed_reads);
    add(macs_, e.macs);
    add(dac_, e.dac_conversions);
    add(adc_, e.adc_conversions);
    add(pulses_, e.pulses);
    add(writes_, e.parameter_writes);
  }
  /// The events counted since construction or the last `reset`.
  [[nodiscard]] physical_events totals() const noexcept {
    return {reads_.load(std::memory_order_relaxed),  transposed_reads_.load(std::memory_order_relaxed),
            macs_.load(std::memory_order_relaxed),   dac_.load(std::memory_order_relaxed),
            adc_.load(std::memory_order_relaxed),    pulses_.load(std::memory_order_relaxed),
            writes_.load(std::memory_order_relaxed)};
  }
  void reset() noexcept {
    for (auto* a : {&reads_, &transposed_reads_, &macs_, &dac_, &adc_, &pulses_, &writes_})
      a->store(0, std::memory_order_relaxed);
  }

 private:
  static void add(std::atomic<std::uint64_t>& a, std::uint64_t v) noexcept {
    if (v != 0) a.fetch_add(v, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> reads_{0}, transposed_reads_{0}, macs_{0}, dac_{0}, adc_{0}, pulses_{0}, writes_{0};
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
