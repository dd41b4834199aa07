// SPDX-License-Identifier: MIT
/// \file
/// \brief Work counters of the matrix kernels: floating-point operations and compulsory memory
/// traffic, per thread — what a roofline divides by time.
///
/// Every GEMM, GEMV and rank-1 update adds its arithmetic (2 FLOP per multiply–add, the
/// convention of BLAS benchmarks) and the bytes of its operands read once and its result written
/// once (plus read once when it accumulates): the traffic a cache of unlimited size would still
/// move. Element-wise passes (activations, optimisers, noise) are not counted: their FLOPs are
/// few and their cost is memory traffic, which a benchmark sees as the gap between the counted
/// work and the time. So `flops / seconds` of a training step, compared with the same binary's
/// GEMM rate, says how close the step comes to the machine's limit (benchmarks/common.hpp).
///
/// One add per kernel call, on a `thread_local` counter (no contention between threads; a
/// multi-threaded caller sums its threads' counts). `PNN_COUNT_KERNEL_WORK=0` removes the
/// counting; it defaults to 0 where there is no operating system (firmware), as thread-local
/// storage may not exist there. Simulated physics pauses the count (`kernel_work_pause`).
#pragma once

#include <cstddef>
#include <cstdint>

#include <pnn/core/config.hpp>

/// \def PNN_COUNT_KERNEL_WORK
/// 1 when the matrix kernels count their work (`pnn::simd::kernel_work_on_this_thread`).
#ifndef PNN_COUNT_KERNEL_WORK
#if PNN_HOSTED && (defined(__linux__) || defined(_WIN32) || defined(__APPLE__) || defined(__unix__))
#define PNN_COUNT_KERNEL_WORK 1
#else
#define PNN_COUNT_KERNEL_WORK 0
#endif
#endif

namespace pnn::simd {

/// Work done by matrix kernels: FLOPs (2 per multiply–add) and compulsory bytes moved.
struct kernel_work {
  std::uint64_t flops = 0;  ///< floating-point operations
  std::uint64_t bytes = 0;  ///< operands read once, results written once (read too when accumulated)

  /// The work done between two readings (`later - earlier`).
  [[nodiscard]] friend constexpr kernel_work operator-(const kernel_work& a, const kernel_work& b) noexcept {
    return {a.flops - b.flops, a.bytes - b.bytes};
  }
};

#if PNN_COUNT_KERNEL_WORK
namespace detail {
inline kernel_work& thread_kernel_work() noexcept {
  static thread_local kernel_work w;
  return w;
}
}  // namespace detail
#endif

/// The work the calling thread's matrix kernels have done since it started (zero when counting
/// is compiled out). Take the difference of two readings to measure a region.
[[nodiscard]] inline kernel_work kernel_work_on_this_thread() noexcept {
#if PNN_COUNT_KERNEL_WORK
  return detail::thread_kernel_work();
#else
  return {};
#endif
}

/// \brief While it lives, the calling thread's kernels do not count: the matrix products that
/// *simulate* a physical substrate (a crossbar's read, a mesh's fields, a network's settling)
/// are not digital work of the trained system, and each such tile holds one of these around its
/// simulation so that the counter keeps only what would run on digital hardware (digital
/// layers, a rule's gradients, twins). Restores the count it found.
class kernel_work_pause {
 public:
  kernel_work_pause() noexcept : saved_(kernel_work_on_this_thread()) {}
  ~kernel_work_pause() {
#if PNN_COUNT_KERNEL_WORK
    detail::thread_kernel_work() = saved_;
#endif
  }
  kernel_work_pause(const kernel_work_pause&) = delete;
  kernel_work_pause& operator=(const kernel_work_pause&) = delete;

 private:
  kernel_work saved_;
};

namespace detail {
/// Adds one kernel call's work: `flops`, and `elements` values of `bytes_per_element` each.
PNN_ALWAYS_INLINE void count_kernel_work([[maybe_unused]] std::uint64_t flops, [[maybe_unused]] std::uint64_t elements,
                                         [[maybe_unused]] std::size_t bytes_per_element) noexcept {
#if PNN_COUNT_KERNEL_WORK
  kernel_work& w = thread_kernel_work();
  w.flops += flops;
  w.bytes += elements * bytes_per_element;
#endif
}
}  // namespace detail

}  // namespace pnn::simd
