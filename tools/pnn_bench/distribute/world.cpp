// SPDX-License-Identifier: MIT
// The ranks of a distributed pnn-bench sweep (see world.hpp). Built with PNN_WITH_MPI=1 and
// linked against MPI where the build found it; without it every step is local.
#include "world.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#if PNN_WITH_MPI
#include <mpi.h>

#include "tree_allreduce.hpp"
#endif

namespace pnn_bench::distribute {

#if PNN_WITH_MPI
namespace {
constexpr int tag_request = 71, tag_reply = 72;

// Launched by mpirun (Open MPI, PMIx) or a PMI launcher (MPICH, Slurm's srun): only then does
// MPI start, so that the tool run by hand never needs a launcher or a singleton daemon.
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

// Open MPI picks its point-to-point layer (PML) by probing the network fabrics it was built
// for, which costs 0.2 s of a 0.43 s start-up on a 2-core VM. When every rank is on this node
// that probe finds nothing to use, so unless the user chose a PML (`--mca pml`, which mpirun
// passes on as OMPI_MCA_pml) pnn-bench asks for ob1, whose shared-memory transport is what a
// one-node job uses anyway. Other MPIs ignore the variable.
void prefer_shared_memory_on_one_node() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (size != nullptr && local != nullptr && std::strcmp(size, local) == 0 && std::getenv("OMPI_MCA_pml") == nullptr)
    setenv("OMPI_MCA_pml", "ob1", 0);
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw std::runtime_error(std::string("MPI: ") + what + " failed");
}

// Waits for every rank without spinning: a rank that finished its share must not take a core
// from a rank that is still training on the same node (Open MPI's blocking calls busy-poll).
void quiet_barrier() {
  MPI_Request req;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &req), "MPI_Ibarrier");
  for (int done = 0;;) {
    check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}
}  // namespace

struct world::impl {
  bool started = false;
  std::mutex mpi;          // one MPI call at a time per process (MPI_THREAD_SERIALIZED)
  std::thread dispatcher;  // rank 0: answers the other ranks' requests for runs
};

world::world(int& argc, char**& argv) : impl_(std::make_unique<impl>()) {
  if (!launched_by_mpi()) return;
  prefer_shared_memory_on_one_node();
  int provided = 0;
  check(MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  impl_->started = true;
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    impl_->started = false;
    throw std::runtime_error("MPI: this MPI library gives no MPI_THREAD_SERIALIZED; pnn-bench needs it");
  }
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  MPI_Comm node;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  check(MPI_Comm_size(node, &local_size_), "MPI_Comm_size");
  MPI_Comm_free(&node);
}

world::~world() {
  if (impl_->dispatcher.joinable()) impl_->dispatcher.join();
  if (impl_->started) MPI_Finalize();
}

bool world::mpi_built() noexcept { return true; }

int world::broadcast(int value) const {
  if (size_ == 1) return value;
  check(MPI_Bcast(&value, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return value;
}

void world::broadcast(std::string& text) const {
  if (size_ == 1) return;
  std::uint64_t n = text.size();
  check(MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  text.resize(static_cast<std::size_t>(n));
  // In pieces below 2 GiB: MPI counts in int.
  constexpr std::uint64_t piece = std::uint64_t{1} << 30;
  for (std::uint64_t at = 0; at < n; at += piece)
    check(MPI_Bcast(text.data() + at, static_cast<int>(std::min(piece, n - at)), MPI_CHAR, 0, MPI_COMM_WORLD),
          "MPI_Bcast");
}

void world::start_jobs(std::size_t jobs, std::size_t local_workers) {
  jobs_ = jobs;
  next_ = 0;
  if (size_ == 1) return;
  // Rank 0 answers one "none left" per worker of the other ranks, then stops.
  const std::uint64_t mine = rank_ == 0 ? 0 : local_workers;
  std::uint64_t remote = 0;
  check(MPI_Reduce(&mine, &remote, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD), "MPI_Reduce");
  if (rank_ != 0) return;
  impl_->dispatcher = std::thread([this, remote] {
    // Polls rather than blocks: a blocking receive would spin on a core rank 0's own runs need.
    // Every wake-up also takes that core from rank 0's runs, so an idle dispatcher backs off
    // from 1 ms to 16 ms between polls: a request waits at most that long, once per run of the
    // asking worker.
    auto pause = std::chrono::milliseconds(1);
    for (std::uint64_t finished = 0; finished < remote;) {
      int flag = 0;
      MPI_Status st;
      {
        std::lock_guard<std::mutex> lock(impl_->mpi);
        MPI_Iprobe(MPI_ANY_SOURCE, tag_request, MPI_COMM_WORLD, &flag, &st);
        if (flag) {
          MPI_Recv(nullptr, 0, MPI_BYTE, st.MPI_SOURCE, tag_request, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          const std::uint64_t i = next_++;
          MPI_Send(&i, 1, MPI_UINT64_T, st.MPI_SOURCE, tag_reply, MPI_COMM_WORLD);
          if (i >= jobs_) ++finished;
        }
      }
      if (flag) {
        pause = std::chrono::milliseconds(1);
      } else {
        std::this_thread::sleep_for(pause);
        pause = std::min(2 * pause, std::chrono::milliseconds(16));
      }
    }
  });
}

std::size_t world::next_job() {
  if (rank_ == 0) return next_++;
  // The request and its reply under one lock: the reply that arrives is this thread's
  // (messages between two ranks with one tag never overtake each other).
  std::lock_guard<std::mutex> lock(impl_->mpi);
  std::uint64_t i = 0;
  check(MPI_Send(nullptr, 0, MPI_BYTE, 0, tag_request, MPI_COMM_WORLD), "MPI_Send");
  check(MPI_Recv(&i, 1, MPI_UINT64_T, 0, tag_reply, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
  return static_cast<std::size_t>(i);
}

void world::finish_jobs() {
  if (size_ == 1) return;
  if (impl_->dispatcher.joinable()) impl_->dispatcher.join();
  quiet_barrier();
}

void world::sum_in_tree(std::span<float> v) const {
  if (size_ > 1) tree_allreduce(v, 0, rank_, size_);
}
void world::sum_in_tree(std::span<double> v) const {
  if (size_ > 1) tree_allreduce(v, 0, rank_, size_);
}
namespace {
// Each rank's offset in a gathered buffer from the ranks' counts; the total. MPI counts are int.
std::size_t offsets_of(const std::vector<int>& counts, std::vector<int>& offsets, const char* what) {
  offsets.resize(counts.size());
  std::size_t total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    offsets[r] = static_cast<int>(total);
    total += static_cast<std::size_t>(counts[r]);
    if (total > static_cast<std::size_t>(INT32_MAX)) throw std::runtime_error(std::string("MPI: the ") + what + " exceed 2^31");
  }
  return total;
}

template <class T>
void all_gather_values(std::span<const T> mine, std::vector<T>& all, int ranks, MPI_Datatype type) {
  if (mine.size() > static_cast<std::size_t>(INT32_MAX)) throw std::runtime_error("MPI: a rank's records exceed 2^31 values");
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(ranks)), offsets;
  check(MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  all.resize(offsets_of(counts, offsets, "records' values"));
  check(MPI_Allgatherv(mine.data(), count, type, all.data(), counts.data(), offsets.data(), type, MPI_COMM_WORLD),
        "MPI_Allgatherv");
}
}  // namespace

void world::all_gather(std::span<const float> mine, std::vector<float>& all) const {
  if (size_ == 1) all.assign(mine.begin(), mine.end());
  else all_gather_values(mine, all, size_, MPI_FLOAT);
}
void world::all_gather(std::span<const double> mine, std::vector<double>& all) const {
  if (size_ == 1) all.assign(mine.begin(), mine.end());
  else all_gather_values(mine, all, size_, MPI_DOUBLE);
}

void world::sum(std::span<std::uint64_t> v) const {
  if (size_ > 1 && !v.empty())
    check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
}
void world::sum(std::span<double> v) const {
  if (size_ > 1 && !v.empty())
    check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
}

std::vector<std::pair<std::size_t, std::string>> world::gather(
    const std::vector<std::pair<std::size_t, std::string>>& mine) const {
  if (size_ == 1) return mine;
  // One buffer per rank: for each pair its index and length (8 bytes each), then the text.
  std::string buf;
  for (const auto& [i, text] : mine) {
    const std::uint64_t head[2] = {i, text.size()};
    buf.append(reinterpret_cast<const char*>(head), sizeof head);
    buf += text;
  }
  if (buf.size() > static_cast<std::size_t>(INT32_MAX)) throw std::runtime_error("MPI: a rank's results exceed 2 GiB");
  const int len = static_cast<int>(buf.size());
  std::vector<int> lens(rank_ == 0 ? static_cast<std::size_t>(size_) : 0), offsets(lens.size());
  check(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  std::string all;
  if (rank_ == 0) all.resize(offsets_of(lens, offsets, "results' bytes"));
  check(MPI_Gatherv(buf.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, 0, MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::pair<std::size_t, std::string>> out;
  for (std::size_t p = 0; p + 16 <= all.size();) {
    std::uint64_t head[2];
    std::memcpy(head, all.data() + p, sizeof head);
    p += sizeof head;
    out.emplace_back(static_cast<std::size_t>(head[0]), all.substr(p, static_cast<std::size_t>(head[1])));
    p += static_cast<std::size_t>(head[1]);
  }
  return out;
}

#else  // one process: every step is local

struct world::impl {};

world::world(int&, char**&) : impl_(std::make_unique<impl>()) {}
world::~world() = default;
bool world::mpi_built() noexcept { return false; }
int world::broadcast(int value) const { return value; }
void world::broadcast(std::string&) const {}
void world::start_jobs(std::size_t jobs, std::size_t) {
  jobs_ = jobs;
  next_ = 0;
}
std::size_t world::next_job() { return next_++; }
void world::finish_jobs() {}
void world::sum_in_tree(std::span<float>) const {}
void world::sum_in_tree(std::span<double>) const {}
void world::all_gather(std::span<const float> mine, std::vector<float>& all) const { all.assign(mine.begin(), mine.end()); }
void world::all_gather(std::span<const double> mine, std::vector<double>& all) const {
  all.assign(mine.begin(), mine.end());
}
void world::sum(std::span<std::uint64_t>) const {}
void world::sum(std::span<double>) const {}
std::vector<std::pair<std::size_t, std::string>> world::gather(
    const std::vector<std::pair<std::size_t, std::string>>& mine) const {
  return mine;
}

#endif

}  // namespace pnn_bench::distribute
