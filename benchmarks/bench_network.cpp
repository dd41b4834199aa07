// SPDX-License-Identifier: MIT
// Zero overhead of the composed network (784-256-10, tanh, digital, noise::none, batch 64)
// against a hand-written loop over the same kernels, backprop's epoch throughput, and the
// softmax cross-entropy of the output layer against one std::exp per logit.
#include "common.hpp"

#include <cmath>
#include <cstdint>

namespace {
using namespace pnn;

constexpr std::size_t n = 64, d_in = 784, d_h = 256, d_out = 10;

// The hand-written side: the same parameters, the same kernels, no library structure.
struct handwritten {
  xt::xtensor<float, 2> w1, w2, a1, h1, a2, dy, d1, dh, g1, g2;
  xt::xtensor<float, 1> b1, b2, gb1, gb2;
  explicit handwritten(const bench::mlp_t& net) {
    w1 = xt::adapt(layer<0>(net).tile.weight_data(), d_h * d_in, xt::no_ownership(), std::array<std::size_t, 2>{d_h, d_in});
    w2 = xt::adapt(layer<1>(net).tile.weight_data(), d_out * d_h, xt::no_ownership(), std::array<std::size_t, 2>{d_out, d_h});
    b1 = xt::zeros<float>({d_h});
    b2 = xt::zeros<float>({d_out});
    a1.resize({n, d_h}); h1.resize({n, d_h}); a2.resize({n, d_out}); dy.resize({n, d_out});
    d1.resize({n, d_h}); dh.resize({n, d_h}); g1.resize({d_h, d_in}); g2.resize({d_out, d_h});
    gb1.resize({d_h}); gb2.resize({d_out});
  }
  void forward(const float* x) {
    simd::gemm_nt<float>(n, d_h, d_in, 1.f, x, d_in, w1.data(), d_in, 0.f, a1.data(), d_h);
    simd::bias_map<float>(n, d_h, a1.data(), d_h, b1.data(), act::identity{});
    simd::map<float>(n * d_h, a1.data(), h1.data(), act::tanh{});
    simd::gemm_nt<float>(n, d_out, d_h, 1.f, h1.data(), d_h, w2.data(), d_h, 0.f, a2.data(), d_out);
    simd::bias_map<float>(n, d_out, a2.data(), d_out, b2.data(), act::identity{});
  }
  float step(const float* x, const float* t, float lr) {
    forward(x);
    const float l = loss::softmax_cross_entropy{}.gradient(a2.data(), t, n, d_out, dy.data());
    simd::gemm_tn<float>(d_out, d_h, n, 1.f, dy.data(), d_out, h1.data(), d_h, 0.f, g2.data(), d_h);
    gb2.fill(0.f);
    for (std::size_t r = 0; r < n; ++r) simd::axpy<float>(d_out, 1.f, dy.data() + r * d_out, gb2.data());
    simd::gemm_nn<float>(n, d_h, d_out, 1.f, dy.data(), d_out, w2.data(), d_h, 0.f, dh.data(), d_h);
    for (std::size_t k = 0; k < n * d_h; ++k) d1.data()[k] = dh.data()[k] * (1.f - h1.data()[k] * h1.data()[k]);
    simd::gemm_tn<float>(d_h, d_in, n, 1.f, d1.data(), d_h, x, d_in, 0.f, g1.data(), d_in);
    gb1.fill(0.f);
    for (std::size_t r = 0; r < n; ++r) simd::axpy<float>(d_h, 1.f, d1.data() + r * d_h, gb1.data());
    simd::axpy<float>(g1.size(), -lr, g1.data(), w1.data());
    simd::axpy<float>(gb1.size(), -lr, gb1.data(), b1.data());
    simd::axpy<float>(g2.size(), -lr, g2.data(), w2.data());
    simd::axpy<float>(gb2.size(), -lr, gb2.data(), b2.data());
    return l;
  }
};

void BM_forward_composed(benchmark::State& state) {
  auto net = bench::make_mlp();
  bench::batch64 b;
  trace<bench::mlp_t> tr;
  rng g(1);
  const auto mark = bench::work_mark();
  for (auto _ : state) {
    forward_trace(net, b.x.data(), n, tr, g);
    benchmark::DoNotOptimize(tr.output().data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  bench::report_roofline(state, mark, double(state.iterations()) * double(n));
}
BENCHMARK(BM_forward_composed);

void BM_forward_handwritten(benchmark::State& state) {
  auto net = bench::make_mlp();
  bench::batch64 b;
  handwritten h(net);
  const auto mark = bench::work_mark();
  for (auto _ : state) {
    h.forward(b.x.data());
    benchmark::DoNotOptimize(h.a2.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  bench::report_roofline(state, mark, double(state.iterations()) * double(n));
}
BENCHMARK(BM_forward_handwritten);

void BM_train_step_composed(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(), learn::backprop<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_step_composed);

void BM_train_step_handwritten(benchmark::State& state) {
  auto net = bench::make_mlp();
  bench::batch64 b;
  handwritten h(net);
  const auto mark = bench::work_mark();
  for (auto _ : state) benchmark::DoNotOptimize(h.step(b.x.data(), b.t.data(), 0.01f));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  bench::report_roofline(state, mark, double(state.iterations()) * double(n));
}
BENCHMARK(BM_train_step_handwritten);

void BM_train_step_backprop(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(), learn::backprop<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_step_backprop);

// Momentum and Adam on the digital MLP, with the optimiser's state update and the write into W
// as one pass (in_place:1, the default) or as separate passes over the 784×256 estimate
// (in_place:0: apply, finiteness check, program), in the same binary.
void BM_train_step_backprop_momentum(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(),
                    learn::backprop<optim::momentum>{
                        {.optimizer = {.learning_rate = 0.01f, .momentum = 0.9f, .in_place = state.range(0) != 0}}});
}
BENCHMARK(BM_train_step_backprop_momentum)->ArgName("in_place")->Arg(0)->Arg(1);

void BM_train_step_backprop_adam(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(),
                    learn::backprop<optim::adam>{{.optimizer = {.learning_rate = 0.001f, .in_place = state.range(0) != 0}}});
}
BENCHMARK(BM_train_step_backprop_adam)->ArgName("in_place")->Arg(0)->Arg(1);

// Whole epoch. The counted FLOP per sample (2 per multiply-add) should read forward and weight
// gradient for both layers, input gradient for the output layer only (backprop never forms the
// first layer's dx): 4·784·256 + 6·256·10 ≈ 0.82 MFLOP.
// The argument is the thread count inside the run (pnn::set_num_threads; one run, not Google
// Benchmark's Threads(), which would run copies side by side). The GEMMs split C between the
// threads; the weights are bitwise those of one thread (tests/threads.cpp).
void BM_train_epoch_backprop(benchmark::State& state) {
  pnn::set_num_threads(static_cast<unsigned>(state.range(0)));
  bench::train_epoch(state, bench::make_mlp(), learn::backprop<>{{.optimizer = {.learning_rate = 0.01f}}});
  pnn::set_num_threads(1);
  state.counters["threads"] = pnn::threads_available ? double(state.range(0)) : 1.0;  // used
}
BENCHMARK(BM_train_epoch_backprop)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);
}  // namespace

namespace {
// LeNet-5 (conv 6@5×5 pad 2, max-pool 2, conv 16@5×5, max-pool 2, 120, 84, 10; tanh; digital)
// trained by backprop, one epoch of 60000 images at batch 64: the convolutions read every patch
// through their kernel tile, which on this exact digital tile means correlating the kernels
// with the images directly (no unfolded patches; docs/guide.md). Compare with benchmarks/reference/lenet5_pytorch.py
// on the same machine (one thread). The argument is the thread count inside the run.
// Per sample ≈ 2·(6·25·784 + 16·150·100 + 400·120 + 120·84 + 84·10) ≈ 0.86 MFLOP forward; the
// backward pass adds the weight gradients and every input gradient but the first layer's.
using lenet5_t = network<conv2d<conv_shape<28, 28, 1, 6, 5, 1, 2>, physics::digital, noise::none, act::tanh, pool::max<2>>,
                         conv2d<conv_shape<14, 14, 6, 16, 5>, physics::digital, noise::none, act::tanh, pool::max<2>>,
                         dense<400, 120, physics::digital, noise::none, act::tanh>,
                         dense<120, 84, physics::digital, noise::none, act::tanh>,
                         dense<84, 10, physics::digital, noise::none, act::identity>>;

void BM_train_epoch_lenet5_backprop(benchmark::State& state) {
  pnn::set_num_threads(static_cast<unsigned>(state.range(0)));
  bench::train_epoch(state, lenet5_t(seed{42}), learn::backprop<>{{.optimizer = {.learning_rate = 0.01f}}});
  pnn::set_num_threads(1);
  state.counters["threads"] = pnn::threads_available ? double(state.range(0)) : 1.0;
}
BENCHMARK(BM_train_epoch_lenet5_backprop)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// The same LeNet-5 with both convolutions' geometry given at run time (`pnn::dynamic`): what
// the loops over correlation, pooling and error routing lose without compile-time bounds.
using any_conv = conv_shape<dynamic, dynamic, dynamic, dynamic, dynamic, dynamic, dynamic>;
using lenet5_dynamic_t = network<conv2d<any_conv, physics::digital, noise::none, act::tanh, pool::max<2>>,
                                 conv2d<any_conv, physics::digital, noise::none, act::tanh, pool::max<2>>,
                                 dense<400, 120, physics::digital, noise::none, act::tanh>,
                                 dense<120, 84, physics::digital, noise::none, act::tanh>,
                                 dense<84, 10, physics::digital, noise::none, act::identity>>;

void BM_train_epoch_lenet5_backprop_dynamic(benchmark::State& state) {
  lenet5_dynamic_t net({784, 1176, 400, 120, 84, 10}, seed{42},
                       at_layer<0>(conv_geometry{.height = 28, .width = 28, .in_channels = 1, .out_channels = 6,
                                                 .kernel = 5, .stride = 1, .padding = 2}),
                       at_layer<1>(conv_geometry{.height = 14, .width = 14, .in_channels = 6, .out_channels = 16,
                                                 .kernel = 5, .stride = 1, .padding = 0}));
  bench::train_epoch(state, std::move(net), learn::backprop<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_epoch_lenet5_backprop_dynamic)->Unit(benchmark::kMillisecond);

// The loss of a step's head (64 × 10 logits, one-hot targets), serial on the calling thread of
// every step: pnn's softmax cross-entropy against the same arithmetic with one std::exp per
// logit (items: logits per second).
struct logits {
  std::vector<float> y = std::vector<float>(n * d_out), t = std::vector<float>(n * d_out, 0.f),
                     dy = std::vector<float>(n * d_out);
  logits() {
    std::uint32_t s = 2024u;
    for (auto& v : y) {
      s = s * 1664525u + 1013904223u;
      v = static_cast<float>(s >> 8) * (8.0f / 16777216.0f) - 4.0f;
    }
    for (std::size_t r = 0; r < n; ++r) t[r * d_out + r % d_out] = 1.f;
  }
};

void BM_softmax_cross_entropy_pnn(benchmark::State& state) {
  logits b;
  for (auto _ : state) {
    benchmark::DoNotOptimize(loss::softmax_cross_entropy{}.gradient(b.y.data(), b.t.data(), n, d_out, b.dy.data()));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n * d_out));
}
BENCHMARK(BM_softmax_cross_entropy_pnn);

void BM_softmax_cross_entropy_std_exp(benchmark::State& state) {
  logits b;
  for (auto _ : state) {
    double total = 0;
    for (std::size_t r = 0; r < n; ++r) {
      const float* yr = b.y.data() + r * d_out;
      const float* tr = b.t.data() + r * d_out;
      const float m = *std::max_element(yr, yr + d_out);
      double e[d_out], z = 0, t_dot = 0, t_sum = 0;
      for (std::size_t j = 0; j < d_out; ++j) {
        e[j] = std::exp(double(yr[j] - m));
        z += e[j];
        t_dot += double(tr[j]) * (double(yr[j]) - double(m));
        t_sum += double(tr[j]);
      }
      total -= t_dot - t_sum * std::log(z);
      for (std::size_t j = 0; j < d_out; ++j) b.dy[r * d_out + j] = float((e[j] / z - double(tr[j])) / double(n));
    }
    benchmark::DoNotOptimize(total);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n * d_out));
}
BENCHMARK(BM_softmax_cross_entropy_std_exp);
}  // namespace
