// SPDX-License-Identifier: MIT
// pnn-bench's ranks: one process, or the processes of `mpirun -np N pnn-bench ...` in a build
// with MPI (PNN_WITH_MPI). No MPI type appears here, so the rest of the tool compiles the same
// way with or without MPI and only world.cpp sees <mpi.h>.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace pnn_bench::distribute {

/// The processes one pnn-bench command runs on, and the few collective steps a distributed
/// sweep needs: agreeing on rank 0's decision, handing out runs one at a time, and collecting
/// the finished runs at rank 0.
///
/// MPI starts only when the process was launched by an MPI launcher (Open MPI's or a PMI
/// one sets the environment that says so); otherwise, and in builds without MPI, the world is
/// this one process and every call below is local. Construct exactly one, first thing in main.
class world {
 public:
  world(int& argc, char**& argv);
  ~world();
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  /// This process's rank in [0, size()).
  [[nodiscard]] int rank() const noexcept { return rank_; }
  /// The number of processes.
  [[nodiscard]] int size() const noexcept { return size_; }
  /// The processes on this node (this one included): they share its cores.
  [[nodiscard]] int local_size() const noexcept { return local_size_; }
  [[nodiscard]] bool root() const noexcept { return rank_ == 0; }
  /// Whether this build can distribute at all (PNN_WITH_MPI).
  [[nodiscard]] static bool mpi_built() noexcept;

  /// Rank 0's `value` on every rank (collective): a decision only rank 0 may take, such as
  /// whether a checkpoint directory belongs to this command, reaches every rank.
  [[nodiscard]] int broadcast(int value) const;
  /// Rank 0's `text` in `text` on every rank (collective): what rank 0 alone read from a
  /// checkpoint directory reaches the ranks that share its run.
  void broadcast(std::string& text) const;

  /// Starts handing out the indices 0 … jobs − 1, one per request, in order, to whichever
  /// worker asks first on any rank: runs differ in cost by 10×, so a static split would leave
  /// ranks idle (collective; `local_workers` threads of this rank will call next_job()).
  void start_jobs(std::size_t jobs, std::size_t local_workers);
  /// The next index to run, or a value ≥ jobs when none is left; safe from several threads.
  /// Each worker must keep asking until it gets the "none left" answer once.
  [[nodiscard]] std::size_t next_job();
  /// Ends the hand-out (collective; every worker of this rank has had its "none left").
  void finish_jobs();

  /// Every rank's `v` summed in the fixed reduction tree of data-parallel steps (ranks 2j and
  /// 2j+1 first, then pairs of pairs: tree_allreduce.hpp), the sum on every rank (collective;
  /// every rank passes the same length). `--data-parallel` passes it to `pnn::train`.
  void sum_in_tree(std::span<float> v) const;
  void sum_in_tree(std::span<double> v) const;
  /// Every rank's `mine`, concatenated in rank order, into `all` on every rank (collective;
  /// lengths may differ): the factor records of `--exchange factored`.
  void all_gather(std::span<const float> mine, std::vector<float>& all) const;
  void all_gather(std::span<const double> mine, std::vector<double>& all) const;
  /// Every rank's values summed element by element, on every rank (collective): the physical
  /// events and digital work of all ranks' replicas.
  void sum(std::span<std::uint64_t> v) const;
  void sum(std::span<double> v) const;

  /// Every rank's (index, text) pairs, in rank order, at rank 0; an empty list elsewhere
  /// (collective).
  [[nodiscard]] std::vector<std::pair<std::size_t, std::string>> gather(
      const std::vector<std::pair<std::size_t, std::string>>& mine) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  int rank_ = 0, size_ = 1, local_size_ = 1;
  std::size_t jobs_ = 0;
  std::atomic<std::size_t> next_{0};
};

}  // namespace pnn_bench::distribute
