// SPDX-License-Identifier: MIT
/// \file
/// \brief Build configuration: exceptions on/off, hosted/freestanding, and the precondition macro.
///
/// Detected from the compiler so that the same headers serve firmware built with
/// `-fno-exceptions -fno-rtti` and HPC code built with exceptions.
#pragma once

/// \def PNN_HAS_EXCEPTIONS
/// 1 when the translation unit is compiled with exceptions and `PNN_NO_EXCEPTIONS` is not defined.
#if defined(__cpp_exceptions) && !defined(PNN_NO_EXCEPTIONS)
#define PNN_HAS_EXCEPTIONS 1
#else
#define PNN_HAS_EXCEPTIONS 0
#endif

/// \def PNN_HOSTED
/// 1 on a hosted implementation (`__STDC_HOSTED__`), 0 on a freestanding one.
#ifndef PNN_HOSTED
#if defined(__STDC_HOSTED__) && __STDC_HOSTED__
#define PNN_HOSTED 1
#else
#define PNN_HOSTED 0
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PNN_LIKELY(x) __builtin_expect(!!(x), 1)
#define PNN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PNN_RESTRICT __restrict__
#define PNN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PNN_LIKELY(x) (x)
#define PNN_UNLIKELY(x) (x)
#define PNN_RESTRICT
#define PNN_ALWAYS_INLINE inline
#endif

// Fully unrolls a short loop over register arrays, so that they stay in registers (GCC's -O2
// does not peel loops; Clang reads the same pragma).
#if defined(__clang__) || defined(__GNUC__)
#define PNN_UNROLL _Pragma("GCC unroll 16")
#else
#define PNN_UNROLL
#endif

/// Cache-line alignment used for fixed storage and packing buffers (bytes).
#define PNN_ALIGNMENT 64
