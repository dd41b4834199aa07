// SPDX-License-Identifier: MIT
// Data-parallel training of one network over MPI ranks: Fashion-MNIST, 784-256-10 backprop
// (tanh, plain SGD, η 0.05), global batch 256 cut into 8 micro-shards; each rank estimates its
// shards (pnn/train/data_parallel.hpp) and the ranks finish the same fixed reduction tree, so
// every rank programs the same update and 1, 2 or 4 ranks train bitwise the same weights. One
// thread per rank.
// Exchange: `dense` reduces every layer's update (recursive halving, then doubling: 2·(R−1)/R
// of an estimate sent per rank); `factored` gathers every layer's factors (h, δ: batch ×
// (In + Out) values) and each rank forms the updates itself; `auto` gathers the factors of the
// layers where that moves fewer values (parallel::factor_layers). All three give the same
// weights.
// Prints the training throughput (samples/s, evaluation excluded), the values each rank
// received per step, the test accuracy and a hash of the weights. Claim, checked (exit status 1
// when it fails): test accuracy at least 70 %.
// Usage: mpirun -np R data_parallel_mpi [epochs = 1] [train limit = 60000] [hidden = 256]
//        [batch = 256] [shards = 8] [exchange = dense|factored|auto] [data dir]
//        (R a power of two ≤ shards)
#include <mpi.h>

#include <pnn/pnn.hpp>
#include <pnn/train/data_parallel.hpp>

#include "../../tools/pnn_bench/distribute/tree_allreduce.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

using namespace pnn;

using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                      dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;

namespace {
// Every rank's factor records, concatenated in rank order (= shard order). Returns the number
// of values received from the other ranks.
std::size_t gather_records(const std::vector<float>& mine, std::vector<float>& all, int ranks) {
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(ranks)), offsets(static_cast<std::size_t>(ranks));
  MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::size_t total = 0;
  for (int r = 0; r < ranks; ++r) {
    offsets[std::size_t(r)] = static_cast<int>(total);
    total += std::size_t(counts[std::size_t(r)]);
  }
  all.resize(total);
  MPI_Allgatherv(mine.data(), count, MPI_FLOAT, all.data(), counts.data(), offsets.data(), MPI_FLOAT, MPI_COMM_WORLD);
  return total - mine.size();
}

std::uint64_t fnv1a(const net_t& net) {
  std::uint64_t h = 1469598103934665603ULL;
  net.for_each_layer([&](const auto& l, std::size_t) {
    const auto eat = [&](const float* p, std::size_t n) {
      const auto* b = reinterpret_cast<const unsigned char*>(p);
      for (std::size_t i = 0; i < n * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ULL;
    };
    eat(l.tile.weight_data(), l.out_size() * l.in_size());
    eat(l.tile.bias_data(), l.out_size());
  });
  return h;
}
}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  int status = 0;
  try {
    const std::size_t epochs = argc > 1 ? std::stoul(argv[1]) : 1;
    const std::size_t limit = argc > 2 ? std::stoul(argv[2]) : 60000;
    const std::size_t hidden = argc > 3 ? std::stoul(argv[3]) : 256;
    const std::size_t batch = argc > 4 ? std::stoul(argv[4]) : 256;
    const parallel::shard_plan plan{argc > 5 ? std::stoul(argv[5]) : 8, std::size_t(ranks), std::size_t(rank)};
    plan.validate();  // every rank refuses an impossible plan the same way
    const std::string exchange = argc > 6 ? argv[6] : "dense";
    if (exchange != "dense" && exchange != "factored" && exchange != "auto")
      throw std::invalid_argument("exchange '" + exchange + "' is not dense, factored or auto");
    set_num_threads(1);
    data::split fm = argc > 7 ? data::fashion_mnist(argv[7]) : data::fashion_mnist();
    fm.train = data::take(fm.train, limit);

    net_t net({784, hidden, 10}, seed{42});
    learn::backprop<> rule{{.optimizer = {.learning_rate = 0.05f}}};
    auto state = rule.make_state(net);
    const loss::softmax_cross_entropy loss;
    const std::size_t n = fm.train.size();
    parallel::layer_mask<net_t> as_factors{};
    if (exchange == "factored") as_factors.fill(true);
    if (exchange == "auto") as_factors = parallel::factor_layers(net, batch);
    std::size_t received = 0, steps = 0;
    // Kept across steps: a fresh weight-sized update every step would cost page faults.
    gradients<net_t> update(net);
    std::vector<float> records;
    std::vector<std::size_t> order(n);
    double seconds = 0;
    std::size_t samples = 0;
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
      // The same shuffle on every rank: one stream per epoch.
      std::iota(order.begin(), order.end(), std::size_t{0});
      rng gs = rng(7).split(epoch);
      for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[gs.next_u64() % i]);
      MPI_Barrier(MPI_COMM_WORLD);
      const double start = MPI_Wtime();
      xt::xtensor<float, 2> x, t;
      for (std::size_t b = 0, step = 0; b < n; b += batch, ++step) {
        const std::size_t rows = std::min(batch, n - b);
        x.resize({rows, 784});
        t.resize({rows, 10});
        for (std::size_t r = 0; r < rows; ++r) {
          std::memcpy(&x(r, 0), &fm.train.inputs(order[b + r], 0), 784 * sizeof(float));
          std::memcpy(&t(r, 0), &fm.train.targets(order[b + r], 0), 10 * sizeof(float));
        }
        const rng g = rng(11).split(epoch).split(step);
        auto part = parallel::estimate_part(rule, net, state, x, t, loss, g, plan, as_factors);
        std::vector<float> flat = parallel::flatten(part.node, as_factors);
        received += pnn_bench::distribute::tree_allreduce(std::span<float>(flat), net_t::num_layers, rank, ranks);
        received += gather_records(part.factors, records, ranks);
        parallel::unflatten<net_t>(flat, update, as_factors);
        parallel::combine_factors<net_t>(update, records, net, rows, plan.shards, as_factors);
        rng gp = g.split(1u << 20);
        parallel::apply_update(rule, net, state, update, gp);
        samples += rows;
        ++steps;
      }
      seconds += MPI_Wtime() - start;
    }
    double slowest = seconds;
    MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    // Every rank holds the same network: rank 0 tests it.
    if (rank == 0) {
      const double accuracy = evaluate(net, loss, fm.test).accuracy;
      std::printf("ranks %d, %s exchange: %.0f samples/s, %.1f kB received per rank and step, test accuracy %.2f %%, "
                  "weights %016llx\n",
                  ranks, exchange.c_str(), double(samples) / slowest,
                  steps == 0 ? 0.0 : 4e-3 * double(received) / double(steps), 100 * accuracy,
                  static_cast<unsigned long long>(fnv1a(net)));
      std::printf("claim: test accuracy at least 70 %%: %s\n", accuracy >= 0.70 ? "holds" : "FAILS");
      status = accuracy >= 0.70 ? 0 : 1;
    }
    // Each rank's own hash: a rank whose network differed would show here.
    const std::uint64_t mine = fnv1a(net);
    std::vector<std::uint64_t> all(static_cast<std::size_t>(ranks));
    MPI_Gather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rank == 0)
      for (int r = 1; r < ranks; ++r)
        if (all[std::size_t(r)] != mine) {
          std::printf("rank %d holds other weights\n", r);
          status = 1;
        }
  } catch (const std::exception& e) {
    if (rank == 0) std::fprintf(stderr, "data_parallel_mpi: %s\n", e.what());
    status = 2;
  }
  MPI_Finalize();
  return status;
}
