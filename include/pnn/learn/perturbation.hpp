// SPDX-License-Identifier: MIT
/// \file
/// \brief The perturbative rules, which need nothing but forward passes of the physical network:
/// `learn::weight_perturbation`, `learn::node_perturbation`, `learn::spsa` (with multiplexed
/// gradient descent) and SPSA's step-size gain `optim::spsa_gain`, one header each.
///
/// Each rule perturbs what the hardware lets one perturb — the tile's own parameters (W and b of
/// a crossbar or digital tile, the phases and attenuators of an MZI mesh; restored bit for bit)
/// or a layer's pre-activations (an injected signal) — runs the network forward through its
/// substrate and noise, and turns loss differences into an update estimate. No transposed read,
/// no model of the physics: they work on every substrate, a black box included.
#pragma once

#include <pnn/learn/node_perturbation.hpp>
#include <pnn/learn/spsa.hpp>
#include <pnn/learn/weight_perturbation.hpp>
