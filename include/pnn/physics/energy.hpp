// SPDX-License-Identifier: MIT
/// \file
/// \brief Energy and latency of what a network's physics did: `pnn::energy_model` turns counted
/// events (`physical_events`, physics/cost.hpp) and digital work (`simd::kernel_work`) into
/// joules and seconds (docs/physics.md, "Energy and latency").
///
/// Every term is a product of a count the simulation measured and a per-event cost the user
/// can override; the defaults are order-of-magnitude values from the literature cited with each
/// field. They are estimates for comparing rules and substrates under stated assumptions, not
/// predictions for a particular chip: the periphery that dominates real systems (drivers,
/// sense amplifiers, routing, control) is outside every term except the converters.
#pragma once

#include <cstdint>

#include <pnn/core/error.hpp>
#include <pnn/physics/cost.hpp>
#include <pnn/simd/work.hpp>

namespace pnn {

/// Per-event energies (J) and durations (s) of each substrate's physics and of digital work.
struct energy_model {
  // ---- crossbar arrays -------------------------------------------------------------------
  /// V: full-scale read voltage on a line (`|u| = 1`); reads of resistive memories use 0.1–0.3 V
  /// to stay below switching thresholds.
  double read_voltage = 0.2;
  /// s: integration time of one vector read (tens of ns in published RRAM/PCM macros).
  double read_time = 10e-9;
  /// J per conversion step: DAC energy per conversion is `dac_fom · 2^bits` (Walden's figure of
  /// merit); published current-steering/relaxation DACs reach about 1 fJ/step.
  double dac_fom = 1e-15;
  /// J per conversion step for the ADC (`adc_fom · 2^bits`); SAR ADCs of the last decade span
  /// about 1–50 fJ/step (Murmann's ADC survey); 10 fJ is a mid value.
  double adc_fom = 10e-15;
  /// s per conversion (one ADC per column, all converting in parallel after a read).
  double adc_time = 10e-9;
  /// J per programming pulse (SET/RESET): metal-oxide RRAM switches with about 0.1–10 pJ
  /// (Wong et al., Proc. IEEE 2012); 1 pJ assumed.
  double pulse_energy = 1e-12;
  /// s per pulse slot; every device of the array can receive its pulse in the same slot.
  double pulse_time = 10e-9;

  // ---- photonic meshes -------------------------------------------------------------------
  /// J per mode and vector for light generation, modulation and detection with its ADC:
  /// about 1 pJ per channel at GHz symbol rates (laser wall-plug losses included), assumed.
  double optical_channel_energy = 1e-12;
  /// W held per thermo-optic element (phase shifter or attenuator): heaters need about 10–30 mW
  /// for a π shift (Harris et al., Optica 2018); half of 20 mW on average.
  double holding_power = 10e-3;
  /// s per vector through a mesh (1 GHz modulation).
  double symbol_time = 1e-9;
  /// J per phase or attenuator setting (a DAC write of the heater's drive), assumed.
  double phase_write_energy = 1e-12;

  // ---- resistor networks ---------------------------------------------------------------------
  /// V per unit of a source value: a network driven with inputs `x` has sources `x · source_voltage`.
  double source_voltage = 1.0;
  /// s the network is held at each settled state (settling plus sensing), assumed.
  double settle_time = 1e-6;
  /// J per conductance written (an update pulse on a variable resistor), assumed as `pulse_energy`.
  double conductance_write_energy = 1e-12;

  // ---- quantum circuits ----------------------------------------------------------------------
  /// s per shot: qubit reset, gates and dispersive readout of a superconducting processor,
  /// dominated by the wait for the qubits to relax or by active reset (about 1–300 µs per shot
  /// on published devices; Krantz et al., Appl. Phys. Rev. 2019); 100 µs assumed.
  double shot_time = 100e-6;
  /// W drawn while shots run: a dilution refrigerator with its compressor, and the room-temperature
  /// control electronics, about 10–25 kW for today's processors (assumed 20 kW, charged per shot
  /// as `quantum_power · shot_time`; exact expectations, `shots = 0`, are not charged).
  double quantum_power = 20e3;

  // ---- spin-torque oscillators ------------------------------------------------------------------
  /// W drawn by one oscillator while it runs: its DC current through the junction, I²R with a few
  /// mA through tens of ohms (Romera et al. 2018 drive vortex oscillators with 6–8 mA), about
  /// 2 mW assumed.
  double oscillator_power = 2e-3;
  /// s per time unit of the oscillator model (1/Γ, the amplitude relaxation time): tens to
  /// hundreds of ns for vortex oscillators; 50 ns assumed.
  double oscillator_time_unit = 50e-9;

  // ---- digital work ------------------------------------------------------------------------
  /// J per FLOP of digital arithmetic. Default: a 45 nm FP32 multiply (3.7 pJ) and add
  /// (0.9 pJ) per two FLOPs (Horowitz, ISSCC 2014), arithmetic only. `gpu()` uses a datacentre
  /// GPU's board power over its peak FP32 rate instead.
  double flop_energy = 2.3e-12;
  /// J per byte moved by digital kernels: a 32-bit read from an 8 KB SRAM costs about 10 pJ at
  /// 45 nm (Horowitz, ISSCC 2014), 2.5 pJ per byte.
  double byte_energy = 2.5e-12;
  /// FLOP/s of the digital processor, for latency.
  double flop_rate = 1e11;

  /// The digital baseline of a datacentre GPU: 400 W over 19.5 TFLOP/s of FP32 (an A100's data
  /// sheet) is about 20 pJ per FLOP, memory and idle power included; bytes are then not
  /// charged again.
  [[nodiscard]] static energy_model gpu() {
    energy_model m;
    m.flop_energy = 400.0 / 19.5e12;
    m.byte_energy = 0;
    m.flop_rate = 19.5e12;
    return m;
  }

  /// Rejects negative or non-finite values with a clear error.
  void validate() const {
    for (double v : {read_voltage, read_time, dac_fom, adc_fom, adc_time, pulse_energy, pulse_time,
                     optical_channel_energy, holding_power, symbol_time, phase_write_energy, source_voltage, settle_time,
                     conductance_write_energy, shot_time, quantum_power, oscillator_power, oscillator_time_unit,
                     flop_energy, byte_energy})
      PNN_EXPECTS(v >= 0 && v < 1e300, "energy_model: every energy, time and voltage must be finite and >= 0");
    PNN_EXPECTS(flop_rate > 0 && flop_rate < 1e300, "energy_model: flop_rate must be finite and > 0");
  }
};

/// Energy (J) by where it is spent, and the latency (s) of the events taken one after another.
struct energy_estimate {
  double array = 0;       ///< crossbar cells during reads: V²·Σ G u²·t_read
  double converters = 0;  ///< DACs and ADCs: FOM·Σ 2^bits
  double programming = 0; ///< pulses, conductance and phase writes
  double optical = 0;     ///< light per channel, and heaters held while light passes
  double resistive = 0;   ///< power dissipated in resistor networks while settled
  double quantum = 0;     ///< quantum circuits: the cryostat's and control's power over the shots
  double oscillators = 0; ///< spin-torque oscillators: DC power over their running time
  double digital = 0;     ///< digital FLOPs and bytes (digital layers, gradients, twins)
  double latency = 0;     ///< s: reads, conversions, pulse slots, settling and digital time in sequence

  [[nodiscard]] double total() const noexcept { return array + converters + programming + optical + resistive + quantum + oscillators + digital;
  }
};

/// \brief The energy and latency of `events` and digital `work` under `m`.
///
/// Crossbars: `V_read²·Σ G u²·t_read` in the cells (µS → S), `FOM·2^bits` per conversion,
/// `pulse_energy` per pulse and `pulse_time` per slot. Meshes: `optical_channel_energy` per mode
/// and vector, `holding_power·symbol_time` per element and vector, `phase_write_energy` per
/// setting. Resistor networks: `dissipation·V_source²·settle_time` (µW → W). Quantum circuits:
/// `quantum_power·shot_time` per shot, `shot_time` of latency per shot. Spin-torque oscillators:
/// `oscillator_power·oscillator_time_unit` per oscillator and time unit run, the run time as
/// latency. Digital:
/// `flop_energy` per FLOP and `byte_energy` per byte. Latency: crossbar vectors take
/// `read_time + adc_time`, mesh vectors `symbol_time`, settled states `settle_time`, pulses
/// `pulse_time` per slot, digital work `flops / flop_rate` — no overlap between them assumed.
/// \pre `m.validate()` passes (else `pnn::error`).
[[nodiscard]] inline energy_estimate estimate_energy(const physical_events& e, const simd::kernel_work& work,
                                                     const energy_model& m) {
  m.validate();
  energy_estimate r;
  const double v2 = m.read_voltage * m.read_voltage;
  r.array = v2 * e.array_drive * 1e-6 * m.read_time;
  r.converters = m.dac_fom * double(e.dac_levels) + m.adc_fom * double(e.adc_levels);
  // Parameter writes are phases on meshes and conductances on resistor networks; a network
  // holds one kind, so they are charged by which kind of reads it made.
  const double write_energy = e.optical_vectors > 0 ? m.phase_write_energy : m.conductance_write_energy;
  r.programming = m.pulse_energy * double(e.pulses) + write_energy * double(e.parameter_writes);
  r.optical = m.optical_channel_energy * double(e.optical_channels) +
              m.holding_power * m.symbol_time * double(e.held_element_vectors);
  r.resistive = e.dissipation * 1e-6 * m.source_voltage * m.source_voltage * m.settle_time;
  r.quantum = m.quantum_power * m.shot_time * double(e.circuit_shots);
  r.oscillators = m.oscillator_power * m.oscillator_time_unit * e.oscillator_time;
  r.digital = m.flop_energy * double(work.flops) + m.byte_energy * double(work.bytes);
  r.latency = double(e.array_vectors) * (m.read_time + m.adc_time) + double(e.optical_vectors) * m.symbol_time +
              double(e.settled_vectors) * m.settle_time + double(e.circuit_shots) * m.shot_time +
              e.oscillator_run_time * m.oscillator_time_unit +
              double(e.pulse_slots) * m.pulse_time +
              double(work.flops) / m.flop_rate;
  return r;
}

}  // namespace pnn
