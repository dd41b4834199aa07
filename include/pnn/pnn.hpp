// SPDX-License-Identifier: MIT
/// \file
/// \brief Everything pnn offers: substrates, noise, layers, learning rules, training, data, I/O.
#pragma once

#include <pnn/embedded.hpp>

#include <pnn/data/dataset.hpp>
#include <pnn/data/fashion_mnist.hpp>
#include <pnn/data/idx.hpp>
#include <pnn/data/synthetic.hpp>
#include <pnn/learn/backprop.hpp>
#include <pnn/learn/coupled_learning.hpp>
#include <pnn/learn/direct_feedback_alignment.hpp>
#include <pnn/learn/equilibrium_propagation.hpp>
#include <pnn/learn/feedback_alignment.hpp>
#include <pnn/learn/forward_forward.hpp>
#include <pnn/learn/forward_gradient.hpp>
#include <pnn/train/in_silico.hpp>
#include <pnn/learn/optim.hpp>
#include <pnn/learn/perturbation.hpp>
#include <pnn/learn/physics_aware.hpp>
#include <pnn/learn/composed_rule.hpp>
#include <pnn/train/surrogate.hpp>
#include <pnn/physics/black_box.hpp>
#include <pnn/nn/check_substrate.hpp>
#include <pnn/physics/oscillators.hpp>
#include <pnn/physics/parameters.hpp>
#include <pnn/learn/rule.hpp>
#include <pnn/learn/check_gradients.hpp>
#include <pnn/nn/dynamic_storage.hpp>
#include <pnn/nn/forward.hpp>
#include <pnn/nn/gradients.hpp>
#include <pnn/nn/init.hpp>
#include <pnn/nn/optical_activation.hpp>
#include <pnn/noise/mismatch.hpp>
#include <pnn/noise/noise.hpp>
#include <pnn/physics/crossbar.hpp>
#include <pnn/physics/devices.hpp>
#include <pnn/physics/mzi.hpp>
#include <pnn/physics/mzi_mesh.hpp>
#include <pnn/physics/pcm_inference.hpp>
#include <pnn/physics/photonic_noise.hpp>
#include <pnn/physics/resistor_network.hpp>
#include <pnn/simd/random.hpp>
#include <pnn/train/alignment.hpp>
#include <pnn/train/callbacks.hpp>
#include <pnn/train/train.hpp>
