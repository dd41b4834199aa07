// SPDX-License-Identifier: MIT
/// \file
/// \brief The fixed-extent subset of pnn for firmware: standard library + xsimd only.
///
/// No xtensor, no heap, usable with `-fno-exceptions -fno-rtti`: fixed-extent networks of
/// `dense` layers with their kernels, activations, losses and the counter-based RNG.
#pragma once

#include <pnn/core/config.hpp>
#include <pnn/core/error.hpp>
#include <pnn/core/extents.hpp>
#include <pnn/core/fixed_storage.hpp>
#include <pnn/core/rng.hpp>
#include <pnn/core/state_format.hpp>
#include <pnn/nn/activation.hpp>
#include <pnn/nn/dense.hpp>
#include <pnn/nn/loss.hpp>
#include <pnn/nn/network.hpp>
#include <pnn/nn/state.hpp>
#include <pnn/noise/none.hpp>
#include <pnn/physics/concepts.hpp>
#include <pnn/physics/digital.hpp>
#include <pnn/simd/arch.hpp>
#include <pnn/simd/blas.hpp>
#include <pnn/simd/gemm.hpp>
