// SPDX-License-Identifier: MIT
// The top of a data-parallel step's reduction tree over MPI ranks (pnn/train/data_parallel.hpp),
// shared by pnn-bench's --data-parallel and examples/mpi/data_parallel.cpp. Needs <mpi.h>: only
// MPI builds include it.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

namespace pnn_bench::distribute {

// The top of the reduction tree over ranks, bandwidth-optimal: recursive halving, then
// recursive doubling. At level j (partners r and r xor 2^j, nearest first, as the tree pairs
// them) both hold the same segment of their nodes; each keeps one half of it and adds the
// partner's copy of that half as (lower rank's) + (higher rank's), exactly the addition
// parallel::combine_parts makes there. After log₂ R levels each rank holds 1/R of the root;
// the doubling phase then gathers the segments back in reverse order. 2·(R−1)/R of an
// estimate is sent per rank (recursive doubling of whole nodes would send log₂ R of it).
// `v`: the flattened node, whose last `flags` values are the same on every rank (left as they
// are; 0: every value is summed). Every rank calls it with the same length. Returns the number
// of values received.
template <class T>
std::size_t tree_allreduce(std::span<T> v, std::size_t flags, int rank, int ranks, MPI_Comm comm = MPI_COMM_WORLD) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  const MPI_Datatype type = std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
  std::vector<T> in(v.size());
  const std::size_t n = v.size() - flags;
  std::size_t received = 0;
  struct level {
    std::size_t lo, hi;  // the segment before the level
    bool lower;          // this rank kept its first half
  };
  std::vector<level> kept;
  std::size_t lo = 0, hi = n;
  const auto exchange = [&](std::size_t send_lo, std::size_t send_hi, std::size_t recv_lo, std::size_t recv_hi,
                            int partner, int tag) {
    MPI_Sendrecv(v.data() + send_lo, static_cast<int>(send_hi - send_lo), type, partner, tag, in.data() + recv_lo,
                 static_cast<int>(recv_hi - recv_lo), type, partner, tag, comm, MPI_STATUS_IGNORE);
    received += recv_hi - recv_lo;
  };
  for (int stride = 1; stride < ranks; stride *= 2) {
    const int partner = rank ^ stride;
    const bool lower = rank < partner;
    const std::size_t mid = lo + (hi - lo) / 2;
    kept.push_back({lo, hi, lower});
    // The lower rank keeps the first half, the higher the second.
    if (lower) exchange(mid, hi, lo, mid, partner, stride);
    else exchange(lo, mid, mid, hi, partner, stride);
    if (lower) hi = mid;
    else lo = mid;
    for (std::size_t i = lo; i < hi; ++i) v[i] = lower ? v[i] + in[i] : in[i] + v[i];
  }
  for (int stride = ranks / 2; stride >= 1; stride /= 2) {
    const int partner = rank ^ stride;
    const level up = kept.back();
    kept.pop_back();
    // Send the reduced segment, receive the partner's: together they are the segment of the level above.
    const std::size_t olo = up.lower ? hi : up.lo, ohi = up.lower ? up.hi : lo;
    exchange(lo, hi, olo, ohi, partner, ranks + stride);
    std::copy(in.begin() + std::ptrdiff_t(olo), in.begin() + std::ptrdiff_t(ohi), v.begin() + std::ptrdiff_t(olo));
    lo = up.lo;
    hi = up.hi;
  }
  return received;
}

}  // namespace pnn_bench::distribute
