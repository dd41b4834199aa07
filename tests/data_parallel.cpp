// SPDX-License-Identifier: MIT
// Data-parallel steps (pnn/train/data_parallel.hpp): the update of a global batch is bitwise the
// same computed by 1, 2 or 4 processes (simulated here in one; tests/pnn_bench.cpp runs real
// ones under mpirun), it is the whole batch's estimate up to rounding, networks trained this way
// stay identical on every process (a noisy crossbar included), and bad input is refused.
#include <catch2/catch.hpp>

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pnn/physics/crossbar.hpp>
#include <pnn/pnn.hpp>
#include <pnn/train/data_parallel.hpp>

// Each test file keeps its helpers in its own namespace: the suite is compiled in batches.
namespace tests_data_parallel {

using namespace pnn;

namespace {
template <class T>
xt::xtensor<T, 2> random_batch(std::size_t n, std::size_t k, std::uint64_t s) {
  rng g(s);
  xt::xtensor<T, 2> x({n, k});
  for (auto& v : x) v = T(g.normal_double());
  return x;
}

template <class T>
xt::xtensor<T, 2> one_hot_targets(std::size_t n, std::size_t k) {
  xt::xtensor<T, 2> t = xt::zeros<T>({n, k});
  for (std::size_t i = 0; i < n; ++i) t(i, (i * 7 + 1) % k) = 1;
  return t;
}

template <class Net>
std::vector<typename Net::value_type> all_weights(const Net& net) {
  std::vector<typename Net::value_type> w;
  net.for_each_layer([&](const auto& l, std::size_t) {
    w.insert(w.end(), l.tile.weight_data(), l.tile.weight_data() + l.out_size() * l.in_size());
    w.insert(w.end(), l.tile.bias_data(), l.tile.bias_data() + l.out_size());
  });
  return w;
}

// The update of one global batch as `parts` processes compute it: each its node, sent as a
// flat array, every node combined at the receiver.
template <class Rule, class Net, class Loss>
std::vector<typename Net::value_type> update_over(std::size_t parts, Rule& rule, Net& net,
                                                  const xt::xtensor<typename Net::value_type, 2>& x,
                                                  const xt::xtensor<typename Net::value_type, 2>& t, const Loss& loss,
                                                  std::size_t shards) {
  auto s = rule.make_state(net);
  std::vector<gradients<Net>> nodes;
  for (std::size_t p = 0; p < parts; ++p) {
    const auto node = parallel::estimate_part(rule, net, s, x, t, loss, rng(9), {shards, parts, p});
    gradients<Net> received(net);
    const auto flat = parallel::flatten(node);
    parallel::unflatten<Net>(flat, received);
    nodes.push_back(received);
  }
  return parallel::flatten(parallel::combine_parts(std::move(nodes)));
}
}  // namespace

TEST_CASE("data-parallel: a global batch's update is bitwise the same on 1, 2 and 4 processes", "[data_parallel]") {
  using hidden_t = dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>;
  using out_t = dense<dynamic, dynamic, physics::digital, noise::none, act::identity>;
  network<hidden_t, hidden_t, out_t> net({12, 16, 16, 4}, seed{3});
  // 37 rows: uneven shards (5 and 4 rows), so the weights of the tree are not all equal.
  const auto x = random_batch<float>(37, 12, 1);
  const auto t = one_hot_targets<float>(37, 4);
  const auto check = [&](auto rule) {
    const auto one = update_over(1, rule, net, x, t, loss::softmax_cross_entropy{}, 8);
    const auto two = update_over(2, rule, net, x, t, loss::softmax_cross_entropy{}, 8);
    const auto four = update_over(4, rule, net, x, t, loss::softmax_cross_entropy{}, 8);
    const auto eight = update_over(8, rule, net, x, t, loss::softmax_cross_entropy{}, 8);
    INFO(decltype(rule)::name);
    REQUIRE(one.size() == two.size());
    CHECK(one == two);
    CHECK(one == four);
    CHECK(one == eight);
    // Another cut is another sum: the shards, not the processes, fix the rounding.
    const auto other = update_over(1, rule, net, x, t, loss::softmax_cross_entropy{}, 4);
    double diff = 0, scale = 0;
    for (std::size_t k = 0; k < one.size(); ++k) {
      diff = std::max(diff, double(std::abs(one[k] - other[k])));
      scale = std::max(scale, double(std::abs(one[k])));
    }
    CHECK(diff < 1e-5 * scale);
  };
  check(learn::backprop<>{});
  check(learn::feedback_alignment<>{});
  check(learn::direct_feedback_alignment<>{});
}

namespace {
// As `update_over`, with the layers in `mask` exchanged as factors: each process's node (the
// other layers) and records; every receiver gets all nodes and all records.
template <class Rule, class Net, class Loss>
std::vector<typename Net::value_type> factored_update_over(std::size_t parts, Rule& rule, Net& net,
                                                           const xt::xtensor<typename Net::value_type, 2>& x,
                                                           const xt::xtensor<typename Net::value_type, 2>& t,
                                                           const Loss& loss, std::size_t shards,
                                                           const parallel::layer_mask<Net>& mask,
                                                           std::size_t* record_values = nullptr) {
  auto s = rule.make_state(net);
  std::vector<gradients<Net>> nodes;
  std::vector<typename Net::value_type> records;
  for (std::size_t p = 0; p < parts; ++p) {
    const auto part = parallel::estimate_part(rule, net, s, x, t, loss, rng(9), {shards, parts, p}, mask);
    gradients<Net> received(net);
    parallel::unflatten<Net>(parallel::flatten(part.node, mask), received, mask);
    nodes.push_back(received);
    records.insert(records.end(), part.factors.begin(), part.factors.end());
  }
  if (record_values != nullptr) *record_values = records.size();
  auto update = parallel::combine_parts(std::move(nodes));
  parallel::combine_factors<Net>(update, records, net, x.shape()[0], shards, mask);
  return parallel::flatten(update);
}
}  // namespace

TEST_CASE("data-parallel: layers exchanged as factors give bitwise the dense exchange's update", "[data_parallel]") {
  using hidden_t = dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>;
  using out_t = dense<dynamic, dynamic, physics::digital, noise::none, act::identity>;
  using net_t = network<hidden_t, hidden_t, out_t>;
  net_t net({64, 48, 16, 4}, seed{3});
  // Gathering 37 rows of factors moves fewer values than reducing the dense update where
  // 37 < 2·In·Out/(In + Out): the first layer (54.9), not the others (24 and 6.4).
  const auto x = random_batch<float>(37, 64, 1);
  const auto t = one_hot_targets<float>(37, 4);
  const auto chosen = parallel::factor_layers(net, 37);
  CHECK(chosen == parallel::layer_mask<net_t>{true, false, false});
  CHECK(parallel::factor_layers(net, 64) == parallel::layer_mask<net_t>{false, false, false});
  const loss::softmax_cross_entropy loss;
  const auto check = [&](auto rule) {
    INFO(decltype(rule)::name);
    const auto dense = update_over(1, rule, net, x, t, loss, 8);
    for (const auto& mask : {chosen, parallel::layer_mask<net_t>{true, true, true}, parallel::layer_mask<net_t>{false, true, false}})
      for (std::size_t parts : {1u, 2u, 4u, 8u}) {
        INFO(parts << " parts, mask " << mask[0] << mask[1] << mask[2]);
        std::size_t values = 0;
        CHECK(factored_update_over(parts, rule, net, x, t, loss, 8, mask, &values) == dense);
        // Records carry the factors, not the dense update: 37 rows of (In + Out) per layer, and
        // per shard a header of 4 values and the bias.
        std::size_t expect = 0;
        const std::size_t sizes[] = {64, 48, 16, 4};
        for (std::size_t i = 0; i < 3; ++i)
          if (mask[i]) expect += 8 * (4 + sizes[i + 1]) + 37 * (sizes[i] + sizes[i + 1]);
        CHECK(values == expect);
      }
  };
  check(learn::backprop<>{});
  check(learn::feedback_alignment<>{});
  check(learn::direct_feedback_alignment<>{});

  SECTION("a batch smaller than the shard count: empty shards, some parts without records") {
    const xt::xtensor<float, 2> x5 = xt::view(x, xt::range(0, 5), xt::all());
    const xt::xtensor<float, 2> t5 = xt::view(t, xt::range(0, 5), xt::all());
    learn::backprop<> bp;
    const auto dense = update_over(1, bp, net, x5, t5, loss, 8);
    for (std::size_t parts : {1u, 2u, 4u, 8u}) {
      INFO(parts << " parts");
      CHECK(factored_update_over(parts, bp, net, x5, t5, loss, 8, chosen) == dense);
    }
  }
  SECTION("a rule without factored updates sends its formed updates in the records, with the same result") {
    learn::node_perturbation<> np;
    const auto dense = update_over(2, np, net, x, t, loss, 8);
    std::size_t values = 0;
    CHECK(factored_update_over(2, np, net, x, t, loss, 8, chosen, &values) == dense);
    CHECK(values == 8 * (4 + 64 * 48 + 48));
  }
  SECTION("training on factors keeps the weights of training on dense updates") {
    const auto train = [&](bool factors) {
      net_t n({64, 48, 16, 4}, seed{4});
      learn::backprop<optim::momentum> rule{{.optimizer = {.learning_rate = 0.05f, .momentum = 0.9f}}};
      auto s = rule.make_state(n);
      for (std::size_t step = 0; step < 6; ++step) {
        const rng g = rng(30).split(step);
        gradients<net_t> update(n);
        if (factors) {
          auto part = parallel::estimate_part(rule, n, s, x, t, loss, g, {8, 1, 0}, chosen);
          update = std::move(part.node);
          parallel::combine_factors<net_t>(update, part.factors, n, 37, 8, chosen);
        } else {
          update = parallel::estimate_part(rule, n, s, x, t, loss, g, {8, 1, 0});
        }
        rng gp = g.split(1u << 20);
        parallel::apply_update(rule, n, s, update, gp);
      }
      return all_weights(n);
    };
    CHECK(train(true) == train(false));
  }
  SECTION("truncated, overlong and foreign records are refused") {
    learn::backprop<> bp;
    auto s = bp.make_state(net);
    const auto part = parallel::estimate_part(bp, net, s, x, t, loss, rng(9), {8, 1, 0}, chosen);
    gradients<net_t> update = part.node;
    auto short_records = part.factors;
    short_records.pop_back();
    CHECK_THROWS_WITH(parallel::combine_factors<net_t>(update, short_records, net, 37, 8, chosen),
                      Catch::Contains("end early"));
    auto long_records = part.factors;
    long_records.push_back(0.f);
    CHECK_THROWS_WITH(parallel::combine_factors<net_t>(update, long_records, net, 37, 8, chosen),
                      Catch::Contains("left over"));
    // Another batch size reads the records at the wrong places.
    CHECK_THROWS_WITH(parallel::combine_factors<net_t>(update, part.factors, net, 36, 8, chosen),
                      Catch::Contains("rows here"));
    CHECK_THROWS_WITH(parallel::combine_factors<net_t>(update, part.factors, net, 37, 6, chosen),
                      Catch::Contains("power of two"));
    auto bad_kind = part.factors;
    bad_kind[0] = 7.f;
    CHECK_THROWS_WITH(parallel::combine_factors<net_t>(update, bad_kind, net, 37, 8, chosen), Catch::Contains("unknown kind"));
  }
}

TEST_CASE("data-parallel: the combined update is the whole batch's estimate (double)", "[data_parallel]") {
  using dd = physics::basic_digital<double>;
  using hidden_t = dense<dynamic, dynamic, dd, noise::none, act::tanh>;
  using out_t = dense<dynamic, dynamic, dd, noise::none, act::identity>;
  network<hidden_t, out_t> net({10, 14, 3}, seed{5});
  const auto x = random_batch<double>(29, 10, 2);
  const auto t = one_hot_targets<double>(29, 3);
  learn::backprop<> bp;
  rng g(4);
  const auto whole = parallel::flatten(bp.estimate(net, x, t, loss::softmax_cross_entropy{}, g));
  for (std::size_t parts : {1u, 2u, 4u}) {
    const auto split = update_over(parts, bp, net, x, t, loss::softmax_cross_entropy{}, 16);  // 13 shards of 2 rows, 3 empty
    REQUIRE(split.size() == whole.size());
    double diff = 0, scale = 0;
    for (std::size_t k = 0; k < whole.size(); ++k) {
      diff = std::max(diff, std::abs(split[k] - whole[k]));
      scale = std::max(scale, std::abs(whole[k]));
    }
    INFO(parts << " parts: max difference " << diff << " of " << scale);
    CHECK(scale > 0.01);
    CHECK(diff < 1e-14 * scale);
  }
}

TEST_CASE("data-parallel training keeps every process's network identical, a noisy crossbar's too",
          "[data_parallel][crossbar]") {
  const auto run = [](auto make_net, auto rule, std::size_t processes) {
    using net_t = decltype(make_net());
    std::vector<net_t> nets;
    std::vector<decltype(rule)> rules(processes, rule);
    std::vector<decltype(rule.make_state(make_net()))> states;
    for (std::size_t p = 0; p < processes; ++p) {
      nets.push_back(make_net());
      states.push_back(rules[p].make_state(nets[p]));
    }
    rng gd(11);
    const auto d = data::gaussian_blobs(256, 8, 3, gd);
    const loss::softmax_cross_entropy loss;
    const double before = evaluate(nets[0], loss, d).loss;
    for (std::size_t step = 0; step < 24; ++step) {
      const std::size_t b = (step % 8) * 32;
      const xt::xtensor<float, 2> x = xt::view(d.inputs, xt::range(b, b + 32), xt::all());
      const xt::xtensor<float, 2> t = xt::view(d.targets, xt::range(b, b + 32), xt::all());
      const rng g = rng(100).split(step);
      // Each process its node; every process receives all of them and programs the same update.
      std::vector<std::vector<float>> sent;
      for (std::size_t p = 0; p < processes; ++p)
        sent.push_back(parallel::flatten(parallel::estimate_part(rules[p], nets[p], states[p], x, t, loss, g, {8, processes, p})));
      for (std::size_t p = 0; p < processes; ++p) {
        std::vector<gradients<net_t>> nodes;
        for (const auto& f : sent) {
          gradients<net_t> node(nets[p]);
          parallel::unflatten<net_t>(f, node);
          nodes.push_back(std::move(node));
        }
        auto update = parallel::combine_parts(std::move(nodes));
        rng gp = g.split(1u << 20);
        parallel::apply_update(rules[p], nets[p], states[p], update, gp);
      }
    }
    for (std::size_t p = 1; p < processes; ++p) CHECK(all_weights(nets[p]) == all_weights(nets[0]));
    const double after = evaluate(nets[0], loss, d).loss;
    INFO(processes << " processes: loss " << before << " -> " << after);
    CHECK(after < 0.7 * before);
    return all_weights(nets[0]);
  };
  SECTION("digital, momentum") {
    using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                          dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
    const auto make = [] { return net_t({8, 16, 3}, seed{2}); };
    const learn::backprop<optim::momentum> rule{{.optimizer = {.learning_rate = 0.05f, .momentum = 0.9f}}};
    const auto one = run(make, rule, 1);
    CHECK(run(make, rule, 2) == one);
    CHECK(run(make, rule, 4) == one);
  }
  SECTION("soft-bounds crossbar with read noise and pulse trains") {
    using xbar = physics::crossbar<physics::devices::soft_bounds>;
    using net_t = network<dense<dynamic, dynamic, xbar, noise::none, act::tanh>,
                          dense<dynamic, dynamic, xbar, noise::none, act::identity>>;
    const auto make = [] { return net_t({8, 16, 3}, seed{2}); };
    const learn::backprop<> rule{{.optimizer = {.learning_rate = 0.1f}}};
    const auto one = run(make, rule, 1);
    CHECK(run(make, rule, 2) == one);
    CHECK(run(make, rule, 4) == one);
  }
}

TEST_CASE("data-parallel: impossible plans, mismatched batches and foreign arrays are refused", "[data_parallel][errors]") {
  using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                        dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
  net_t net({4, 5, 2}, seed{1});
  learn::backprop<> bp;
  auto s = bp.make_state(net);
  const auto x = random_batch<float>(8, 4, 1);
  const auto t = one_hot_targets<float>(8, 2);
  const loss::softmax_cross_entropy loss;
  const auto before = all_weights(net);
  CHECK_THROWS_WITH(parallel::estimate_part(bp, net, s, x, t, loss, rng(1), {6, 1, 0}), Catch::Contains("power of two"));
  CHECK_THROWS_WITH(parallel::estimate_part(bp, net, s, x, t, loss, rng(1), {8, 3, 0}), Catch::Contains("power of two"));
  CHECK_THROWS_WITH(parallel::estimate_part(bp, net, s, x, t, loss, rng(1), {4, 8, 0}), Catch::Contains("at least as many shards"));
  CHECK_THROWS_WITH(parallel::estimate_part(bp, net, s, x, t, loss, rng(1), {8, 2, 2}), Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(parallel::estimate_part(bp, net, s, x, one_hot_targets<float>(7, 2), loss, rng(1), {8, 1, 0}),
                    Catch::Contains("target rows"));
  xt::xtensor<float, 2> bad = x;
  bad(3, 1) = std::nanf("");
  CHECK_THROWS(parallel::estimate_part(bp, net, s, bad, t, loss, rng(1), {8, 1, 0}));
  std::vector<gradients<net_t>> three(3, gradients<net_t>(net));
  CHECK_THROWS_WITH(parallel::combine_parts(three), Catch::Contains("power of two"));
  auto flat = parallel::flatten(gradients<net_t>(net));
  CHECK(parallel::flat_size(gradients<net_t>(net)) == flat.size());
  parallel::layer_mask<net_t> first{};
  first[0] = true;
  CHECK(parallel::flat_size(gradients<net_t>(net), first) == parallel::flatten(gradients<net_t>(net), first).size());
  flat.pop_back();
  gradients<net_t> into(net);
  CHECK_THROWS_WITH(parallel::unflatten<net_t>(flat, into), Catch::Contains("another shape"));
  CHECK(all_weights(net) == before);
  // Shards of an uneven batch cover it once, in order.
  std::size_t next = 0;
  for (std::size_t k = 0; k < 8; ++k) {
    const auto [b, e] = parallel::shard_rows(37, 8, k);
    CHECK(b == next);
    CHECK(e - b == (k < 5 ? 5u : 4u));
    next = e;
  }
  CHECK(next == 37);
}

namespace {
// Runs the data-parallel example (examples/mpi/data_parallel.cpp) on `ranks` MPI ranks; its
// stdout, or why it failed. Empty launcher: the build has no MPI.
struct launched {
  int status = -1;
  std::string out;
};
launched launch_example(int ranks, const std::string& args) {
  const char* mpiexec = std::getenv("PNN_MPIEXEC");
  const char* exe = std::getenv("PNN_DATA_PARALLEL_EXE");
  const auto out = std::filesystem::temp_directory_path() / "pnn_data_parallel_out.txt";
  // Open MPI's flags: CI runs as root, with more ranks than its two cores.
  const std::string cmd = std::string(mpiexec) + " --allow-run-as-root --oversubscribe -np " + std::to_string(ranks) +
                          " " + exe + " " + args + " > " + out.string() + " 2>&1";
  launched r;
  r.status = std::system(cmd.c_str());
  std::ifstream f(out);
  r.out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return r;
}
}  // namespace

TEST_CASE("data-parallel under mpirun: 1, 2 and 4 ranks train bitwise the same weights", "[data_parallel][mpi][slow]") {
  const char* mpiexec = std::getenv("PNN_MPIEXEC");
  const char* exe = std::getenv("PNN_DATA_PARALLEL_EXE");
  if (mpiexec == nullptr || exe == nullptr || *mpiexec == '\0' || *exe == '\0') {
    SUCCEED("built without MPI: no data-parallel example to launch");
    return;
  }
  // 3 epochs of 8192 images, 64 hidden units, global batch 256 in 8 shards: 96 steps. The
  // dense exchange and the gathered factors give the same weights too.
  const std::string args = "3 8192 64 256 8";
  std::string hash;
  for (const char* exchange : {"dense", "factored"}) {
    for (int ranks : {1, 2, 4}) {
      const auto r = launch_example(ranks, args + " " + exchange);
      INFO(ranks << " ranks, " << exchange << " exchange: " << r.out);
      REQUIRE(r.status == 0);
      const auto at = r.out.find("weights ");
      REQUIRE(at != std::string::npos);
      const std::string h = r.out.substr(at + 8, 16);
      if (hash.empty()) hash = h;
      CHECK(h == hash);
      CHECK(r.out.find("other weights") == std::string::npos);
    }
  }
  const auto unknown = launch_example(2, args + " sparse");
  INFO(unknown.out);
  CHECK(unknown.status != 0);
  CHECK(unknown.out.find("not dense, factored or auto") != std::string::npos);
  // Three ranks cannot share a power-of-two tree: refused with a message, on every rank alike.
  const auto r = launch_example(3, args);
  INFO(r.out);
  CHECK(r.status != 0);
  CHECK(r.out.find("power of two") != std::string::npos);
}

namespace {
// An all-reduce between the threads of one test, standing in for MPI: every part posts its
// array, each sums all of them in `tree_sum`'s tree, and none posts again before all have read.
template <class T>
struct thread_bus {
  explicit thread_bus(std::size_t parts) : slots(parts), sync(std::ptrdiff_t(parts)) {}
  std::vector<std::vector<T>> slots;
  std::barrier<> sync;
  void sum(std::size_t part, std::span<T> v) {
    slots[part].assign(v.begin(), v.end());
    sync.arrive_and_wait();
    std::vector<std::vector<T>> local = slots;
    for (std::size_t stride = 1; stride < local.size(); stride *= 2)
      for (std::size_t i = 0; i + stride < local.size(); i += 2 * stride)
        for (std::size_t k = 0; k < local[i].size(); ++k) local[i][k] += local[i + stride][k];
    std::copy(local[0].begin(), local[0].end(), v.begin());
    sync.arrive_and_wait();
  }
  // Every part's `mine`, concatenated in part order, into `all` (an all-gather).
  std::size_t gathers = 0;
  void gather(std::size_t part, std::span<const T> mine, std::vector<T>& all) {
    slots[part].assign(mine.begin(), mine.end());
    sync.arrive_and_wait();
    all.clear();
    for (const auto& v : slots) all.insert(all.end(), v.begin(), v.end());
    if (part == 0) ++gathers;
    sync.arrive_and_wait();
  }
};

struct parts_setup {
  std::size_t epochs = 2, batch = 40;
  bool factored = false;
  std::size_t* gathers = nullptr;  ///< the all-gathers made, when set
};

// `train` with data-parallel steps on `parts` threads, each its own network and rule (as MPI
// ranks hold theirs); returns every part's weights and histories.
template <class MakeNet, class Rule>
auto train_on_parts(MakeNet make_net, const Rule& rule, const data::dataset& set, std::size_t parts, std::size_t shards,
                    std::size_t corrupt_part = ~std::size_t{0}, parts_setup setup = {}) {
  using net_t = decltype(make_net());
  using T = typename net_t::value_type;
  thread_bus<T> bus(parts);
  std::vector<net_t> nets;
  std::vector<Rule> rules(parts, rule);
  for (std::size_t p = 0; p < parts; ++p) nets.push_back(make_net());
  std::vector<history> hist(parts);
  std::vector<std::string> errors(parts);
  std::vector<std::thread> team;
  for (std::size_t p = 0; p < parts; ++p)
    team.emplace_back([&, p] {
      train_options opt{.epochs = setup.epochs, .batch = setup.batch, .seed = 3, .progress = progress_mode::never};
      opt.data_parallel.shards = shards;
      opt.data_parallel.parts = parts;
      opt.data_parallel.part = p;
      opt.data_parallel.factored = setup.factored;
      if constexpr (std::is_same_v<T, float>) {
        opt.data_parallel.sum_float = [&bus, p](std::span<float> v) { bus.sum(p, v); };
        opt.data_parallel.gather_float = [&bus, p](std::span<const float> v, std::vector<float>& all) { bus.gather(p, v, all); };
      } else {
        opt.data_parallel.sum_double = [&bus, p](std::span<double> v) { bus.sum(p, v); };
        opt.data_parallel.gather_double = [&bus, p](std::span<const double> v, std::vector<double>& all) {
          bus.gather(p, v, all);
        };
      }
      try {
        if (p == corrupt_part) {
          // What this part reads of the batch is poisoned; the others' rows are clean.
          data::dataset bad = set;
          bad.inputs.fill(std::nanf(""));
          hist[p] = train(nets[p], rules[p], loss::softmax_cross_entropy{}, bad, opt);
        } else {
          hist[p] = train(nets[p], rules[p], loss::softmax_cross_entropy{}, set, opt);
        }
      } catch (const pnn::error& e) {
        errors[p] = e.what();
      }
    });
  for (auto& t : team) t.join();
  if (setup.gathers != nullptr) *setup.gathers = bus.gathers;
  std::vector<std::vector<T>> weights;
  for (const auto& n : nets) weights.push_back(all_weights(n));
  return std::tuple{weights, hist, errors};
}
}  // namespace

TEST_CASE("pnn::train with data-parallel steps gives bitwise the same weights on 1, 2 and 4 parts",
          "[data_parallel][train]") {
  set_num_threads(1);
  rng gd(21);
  const auto d = data::gaussian_blobs(200, 6, 3, gd);  // 5 batches of 40 rows, 8 shards of 5
  using hidden_t = dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>;
  using out_t = dense<dynamic, dynamic, physics::digital, noise::none, act::identity>;
  using net_t = network<hidden_t, out_t>;
  const auto make_net = [] { return net_t({6, 12, 3}, seed{8}); };
  const auto check_rule = [&](const auto& rule, const char* name) {
    INFO(name);
    const auto [w1, h1, e1] = train_on_parts(make_net, rule, d, 1, 8);
    REQUIRE(e1[0].empty());
    // Training happened: the weights moved and the loss fell.
    CHECK(w1[0] != all_weights(make_net()));
    CHECK(h1[0][1].train_loss < h1[0][0].train_loss);
    CHECK(h1[0][0].train_accuracy > 0);
    for (std::size_t parts : {2u, 4u}) {
      const auto [w, h, e] = train_on_parts(make_net, rule, d, parts, 8);
      for (std::size_t p = 0; p < parts; ++p) {
        INFO(parts << " parts, part " << p);
        REQUIRE(e[p].empty());
        CHECK(w[p] == w1[0]);  // bitwise, on every part
        CHECK(h[p][1].train_loss == Approx(h1[0][1].train_loss).epsilon(1e-5));
        CHECK(h[p][1].train_accuracy == h1[0][1].train_accuracy);
      }
    }
  };
  check_rule(learn::backprop<optim::momentum>{{.optimizer = {.learning_rate = 0.1f, .momentum = 0.9f}}}, "backprop");
  check_rule(learn::feedback_alignment<>{{.optimizer = {.learning_rate = 0.1f}}}, "feedback_alignment");
  check_rule(learn::node_perturbation<>{}, "node_perturbation (one perturbation per shard)");

  // The data-parallel step is the whole batch's step up to rounding: against plain steps,
  // one step of backprop in double moves the weights the same way.
  {
    using dd = physics::basic_digital<double>;
    using net_d = network<dense<dynamic, dynamic, dd, noise::none, act::tanh>, dense<dynamic, dynamic, dd, noise::none, act::identity>>;
    data::dataset dd40 = data::take(d, 40);
    net_d plain({6, 12, 3}, seed{8}), sharded({6, 12, 3}, seed{8});
    learn::backprop<> a{{.optimizer = {.learning_rate = 0.1f}}}, b = a;
    train_options opt{.epochs = 1, .batch = 40, .seed = 3, .progress = progress_mode::never};
    train(plain, a, loss::softmax_cross_entropy{}, dd40, opt);
    opt.data_parallel.shards = 8;
    train(sharded, b, loss::softmax_cross_entropy{}, dd40, opt);
    const auto wp = all_weights(plain), ws = all_weights(sharded), w0 = all_weights(net_d({6, 12, 3}, seed{8}));
    double diff = 0, moved = 0;
    for (std::size_t k = 0; k < wp.size(); ++k) {
      diff = std::max(diff, std::abs(wp[k] - ws[k]));
      moved = std::max(moved, std::abs(wp[k] - w0[k]));
    }
    CHECK(moved > 1e-3);
    CHECK(diff < 1e-12 * moved);
  }
}

TEST_CASE("pnn::train's factored exchange gives bitwise the dense exchange's weights, moving the wide layer's factors",
          "[data_parallel][train]") {
  set_num_threads(1);
  rng gd(23);
  const auto d = data::gaussian_blobs(96, 64, 3, gd);  // batches of 8 rows, one per shard
  using hidden_t = dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>;
  using out_t = dense<dynamic, dynamic, physics::digital, noise::none, act::identity>;
  using net_t = network<hidden_t, out_t>;
  const auto make_net = [] { return net_t({64, 48, 3}, seed{9}); };
  // At 8 rows the 64→48 layer's factors (8·112 values) are fewer than its update (2·64·48
  // counted both ways), the 48→3 layer's are not; EP's two phases double its rows.
  const auto mask = parallel::factor_layers(make_net(), 8);
  CHECK(mask[0]);
  CHECK(!mask[1]);
  const auto check_rule = [&](const auto& rule, const char* name, bool gathers_factors) {
    INFO(name);
    const parts_setup dense_setup{.epochs = 1, .batch = 8};
    const auto [w1, h1, e1] = train_on_parts(make_net, rule, d, 1, 8, ~std::size_t{0}, dense_setup);
    REQUIRE(e1[0].empty());
    CHECK(w1[0] != all_weights(make_net()));
    for (std::size_t parts : {1u, 2u, 4u}) {
      std::size_t gathers = 0;
      const parts_setup factored{.epochs = 1, .batch = 8, .factored = true, .gathers = &gathers};
      const auto [w, h, e] = train_on_parts(make_net, rule, d, parts, 8, ~std::size_t{0}, factored);
      for (std::size_t p = 0; p < parts; ++p) {
        INFO(parts << " parts, part " << p);
        REQUIRE(e[p].empty());
        CHECK(w[p] == w1[0]);  // bitwise the dense exchange's weights, on every part
        CHECK(h[p][0].train_accuracy == h1[0][0].train_accuracy);
      }
      // One gather per step (12 batches) when there are other parts to gather from.
      CHECK(gathers == (parts > 1 && gathers_factors ? 12u : 0u));
    }
  };
  check_rule(learn::backprop<optim::momentum>{{.optimizer = {.learning_rate = 0.1f, .momentum = 0.9f}}}, "backprop", true);
  check_rule(learn::feedback_alignment<>{{.optimizer = {.learning_rate = 0.1f}}}, "feedback_alignment", true);
  // No factored updates: the dense exchange, whatever `factored` says.
  check_rule(learn::node_perturbation<>{}, "node_perturbation", false);
}

TEST_CASE("pnn::train's data-parallel steps refuse bad plans and fail together on bad rows", "[data_parallel][train]") {
  set_num_threads(1);
  rng gd(21);
  const auto d = data::gaussian_blobs(80, 6, 3, gd);
  using net_t = network<dense<dynamic, dynamic, physics::digital, noise::none, act::tanh>,
                        dense<dynamic, dynamic, physics::digital, noise::none, act::identity>>;
  const auto make_net = [] { return net_t({6, 12, 3}, seed{8}); };
  learn::backprop<> bp;
  {
    net_t net = make_net();
    const auto before = all_weights(net);
    train_options opt{.epochs = 1, .batch = 40, .progress = progress_mode::never};
    opt.data_parallel.shards = 6;
    CHECK_THROWS_WITH(train(net, bp, loss::softmax_cross_entropy{}, d, opt), Catch::Contains("power of two"));
    opt.data_parallel.shards = 8;
    opt.data_parallel.parts = 2;
    CHECK_THROWS_WITH(train(net, bp, loss::softmax_cross_entropy{}, d, opt), Catch::Contains("sum_float"));
    opt.data_parallel.sum_float = [](std::span<float>) {};
    opt.data_parallel.factored = true;
    CHECK_THROWS_WITH(train(net, bp, loss::softmax_cross_entropy{}, d, opt), Catch::Contains("gather_float"));
    opt.data_parallel.factored = false;
    opt.data_parallel.sum_float = nullptr;
    opt.data_parallel.parts = 16;
    CHECK_THROWS_WITH(train(net, bp, loss::softmax_cross_entropy{}, d, opt), Catch::Contains("cannot share"));
    opt.data_parallel.shards = 0;
    opt.data_parallel.parts = 2;
    CHECK_THROWS_WITH(train(net, bp, loss::softmax_cross_entropy{}, d, opt), Catch::Contains("without shards"));
    CHECK(all_weights(net) == before);
  }
  // NaN rows reach only part 1's shards: it says why, part 0 hears that another part failed,
  // neither hangs, and no part programs the step.
  const auto [w, h, e] = train_on_parts(make_net, bp, d, 2, 8, 1);
  CHECK_THAT(e[1], Catch::Contains("not finite") || Catch::Contains("NaN"));
  CHECK_THAT(e[0], Catch::Contains("another part's estimate failed"));
  CHECK(w[0] == all_weights(make_net()));
  CHECK(w[1] == all_weights(make_net()));
  // The same with the factored exchange, at a batch where the first layer travels as factors:
  // the failure is known from the sum, so no part waits in the gather.
  const auto wide = [] { return net_t({64, 48, 3}, seed{8}); };
  rng gw(22);
  const auto dw = data::gaussian_blobs(16, 64, 3, gw);
  std::size_t gathers = 0;
  const auto [wf, hf, ef] = train_on_parts(wide, bp, dw, 2, 8, 1, {.epochs = 1, .batch = 8, .factored = true, .gathers = &gathers});
  CHECK_THAT(ef[1], Catch::Contains("not finite") || Catch::Contains("NaN"));
  CHECK_THAT(ef[0], Catch::Contains("another part's estimate failed"));
  CHECK(gathers == 0);
  CHECK(wf[0] == all_weights(wide()));
}

}  // namespace tests_data_parallel
