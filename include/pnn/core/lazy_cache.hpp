// SPDX-License-Identifier: MIT
/// \file
/// \brief `detail::lazy_cache_flag`: the validity flag of a cache that `const` reads fill on
/// demand, safe when several threads read at once.
///
/// A tile may keep derived state that is expensive to build and not always needed (an MZI
/// mesh's realised matrix, built only for batches large enough to amortise it). Reads are
/// `const` and may run concurrently, so the first reader that needs the cache fills it under a
/// lock while the others wait; afterwards a read costs one atomic load. Non-const changes of
/// the owner (programming) invalidate it and are not concurrent with reads.
#pragma once

#include <atomic>
#include <mutex>

namespace pnn::detail {

class lazy_cache_flag {
 public:
  lazy_cache_flag() = default;
  explicit lazy_cache_flag(bool valid) noexcept : valid_(valid) {}
  // Copies carry the value (the owner copies the cache itself) and get a lock of their own.
  lazy_cache_flag(const lazy_cache_flag& o) noexcept : valid_(o.valid()) {}
  lazy_cache_flag& operator=(const lazy_cache_flag& o) noexcept {
    valid_.store(o.valid(), std::memory_order_release);
    return *this;
  }

  [[nodiscard]] bool valid() const noexcept { return valid_.load(std::memory_order_acquire); }
  /// The cache no longer matches its owner (call from non-const changes only).
  void invalidate() noexcept { valid_.store(false, std::memory_order_release); }
  /// The owner filled the cache itself (from a non-const change).
  void set_valid() noexcept { valid_.store(true, std::memory_order_release); }

  /// Runs `fill` once if the cache is stale; concurrent callers wait for the one that fills.
  template <class Fill>
  void ensure(Fill&& fill) const {
    if (valid()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (valid_.load(std::memory_order_relaxed)) return;
    fill();
    valid_.store(true, std::memory_order_release);
  }

 private:
  mutable std::atomic<bool> valid_{false};
  mutable std::mutex mutex_{};
};

}  // namespace pnn::detail
