// SPDX-License-Identifier: MIT
// Crossbar benchmarks on a 256×784 tile with a batch of 64 (issue 4): forward reads with ideal and
// aihwkit-default periphery, the pulsed update (stochastic pulse trains, constant-step device with
// default variations, BL 31, lr 0.01) and the plain float rank update it replaces.
//
// The update's factors are those of a real backprop step of the 784-256-10 MLP on Fashion-MNIST
// (or random data of the same shape): the pulse count, and so the cost of any pulsed update,
// scales with lr·Σ|x||δ|/dw_min, so made-up factors would measure a different workload.
#include "common.hpp"

#include <map>

#include <pnn/learn/transfer_compound.hpp>
#include <pnn/physics/crossbar.hpp>

namespace {

using cs_xbar = pnn::physics::crossbar<pnn::physics::devices::constant_step>;
using ideal_xbar = pnn::physics::crossbar<pnn::physics::devices::ideal>;
using cs_net = pnn::network<pnn::dense<pnn::dynamic, pnn::dynamic, cs_xbar, pnn::noise::none, pnn::act::tanh>,
                            pnn::dense<pnn::dynamic, pnn::dynamic, cs_xbar, pnn::noise::none, pnn::act::identity>>;

constexpr std::size_t in = 784, out = 256, batch = 64;

// Layer 0's factored update of one backprop step, scaled by lr = 0.01 (sgd).
const pnn::layer_gradient<float>& first_layer_update(float delta_gain) {
  static std::map<float, pnn::layer_gradient<float>> cache;
  auto it = cache.find(delta_gain);
  if (it != cache.end()) return it->second;
  bench::batch64 b;
  cs_net net({784, 256, 10}, pnn::seed{42});
  pnn::learn::backprop<> rule;
  pnn::rng g(1);
  auto grad = rule.estimate(net, b.x, b.t, pnn::loss::softmax_cross_entropy{}, g);
  auto u = grad[0];
  u.scale(0.01f);
  u.delta *= delta_gain;
  u.weight *= delta_gain;
  return cache.emplace(delta_gain, std::move(u)).first->second;
}

template <class Tile>
void fill_weights(Tile& t) {
  t.resize(in, out);
  pnn::rng g(3);
  pnn::fill_uniform(g, t.weight_data(), in * out, -0.07f, 0.07f);
  t.prepare(g);
}

void pulsed(benchmark::State& state, bool bl_management, float delta_gain) {
  cs_xbar::params p;
  p.update_bl_management = bl_management;
  cs_xbar::tile<pnn::dynamic, pnn::dynamic> t(p);
  fill_weights(t);
  const auto& u = first_layer_update(delta_gain);
  pnn::rng g(5);
  std::uint64_t k = 0;
  for (auto _ : state) {
    pnn::rng gk = g.split(k++);
    t.program(u, gk);
    benchmark::DoNotOptimize(t.weight_data());
  }
}

void BM_crossbar_update_pulsed(benchmark::State& state) { pulsed(state, true, 1.0f); }
void BM_crossbar_update_pulsed_fixed_bl31(benchmark::State& state) { pulsed(state, false, 1.0f); }
// Deltas 64× larger (per-sample instead of batch-mean scale): 64× more pulses.
void BM_crossbar_update_pulsed_x64(benchmark::State& state) { pulsed(state, true, 64.0f); }

// A transfer compound's whole update of the same tile and step (issue 20): the factors pulsed
// onto the fast array A (fast_lr 1: the same pulse trains as BM_crossbar_update_pulsed), 64 column
// reads of A through the periphery (one per sample), the digital buffer, and C's whole pulses.
void transfer(benchmark::State& state, pnn::optim::transfer_algorithm a) {
  using one_layer = pnn::network<pnn::dense<pnn::dynamic, pnn::dynamic, cs_xbar, pnn::noise::none, pnn::act::identity>>;
  one_layer net({in, out}, pnn::seed{3});
  fill_weights(pnn::layer<0>(net).tile);
  auto opt = pnn::optim::transfer_compound::preset(a);
  opt.fast_lr = 1.0f;  // the estimate below already carries lr 0.01
  opt.learning_rate = 0.01f;
  opt.zero_shift_pairs = 100;
  pnn::optim::transfer_compound::state<one_layer> st;
  opt.prepare_state(net, st);
  const auto& u = first_layer_update(1.0f);
  pnn::gradients<one_layer> g(net);
  pnn::rng gr(5);
  std::uint64_t k = 0;
  for (auto _ : state) {
    g[0].input = u.input;
    g[0].delta = u.delta;
    g[0].factor_scale = u.factor_scale;
    g[0].factored = true;
    opt.apply(g, st, net);
    pnn::rng gk = gr.split(k++);
    pnn::program(net, g, gk);
    benchmark::DoNotOptimize(pnn::layer<0>(net).tile.weight_data());
  }
}
void BM_crossbar_update_ttv2(benchmark::State& state) { transfer(state, pnn::optim::transfer_algorithm::ttv2); }
void BM_crossbar_update_c_ttv2(benchmark::State& state) { transfer(state, pnn::optim::transfer_algorithm::c_ttv2); }

void BM_crossbar_update_float(benchmark::State& state) {
  const auto& u = first_layer_update(1.0f);
  pnn::physics::digital::tile<pnn::dynamic, pnn::dynamic> t;
  t.resize(in, out);
  xt::xtensor<float, 2> dw({out, in});
  for (auto _ : state) {
    pnn::simd::gemm_tn<float>(out, in, batch, u.factor_scale, u.delta.data(), out, u.input.data(), in, 0.0f,
                              dw.data(), in);
    pnn::simd::axpy<float>(dw.size(), -1.0f, dw.data(), t.weight_data());
    benchmark::DoNotOptimize(t.weight_data());
  }
}

template <class Tile>
void forward(benchmark::State& state, Tile& t) {
  bench::batch64 b;
  xt::xtensor<float, 2> y({batch, out});
  pnn::rng g(7);
  std::uint64_t k = 0;
  const auto mark = bench::work_mark();
  for (auto _ : state) {
    pnn::rng gk = g.split(k++);
    t.read(b.x.data(), batch, y.data(), gk);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(batch));
  bench::report_roofline(state, mark, double(state.iterations()) * double(batch));
}

void BM_crossbar_forward_ideal(benchmark::State& state) {
  ideal_xbar::tile<pnn::dynamic, pnn::dynamic> t(ideal_xbar::params::ideal());
  fill_weights(t);
  forward(state, t);
}

void BM_crossbar_forward_io(benchmark::State& state) {
  ideal_xbar::tile<pnn::dynamic, pnn::dynamic> t;  // 7-bit DAC, 9-bit ADC, out noise 0.06
  fill_weights(t);
  forward(state, t);
}

// Cost accounting is a branch per read when no counter is attached (BM_crossbar_forward_io);
// attached, each read also sums the drive Σ G u² over its cells. The ratio of the two is what
// counting costs.
void BM_crossbar_forward_io_counted(benchmark::State& state) {
  ideal_xbar::tile<pnn::dynamic, pnn::dynamic> t;
  fill_weights(t);
  pnn::cost_counter c;
  t.attach_cost_counter(&c);
  forward(state, t);
  benchmark::DoNotOptimize(c.totals());
}

void BM_crossbar_backward_io(benchmark::State& state) {
  ideal_xbar::tile<pnn::dynamic, pnn::dynamic> t;
  fill_weights(t);
  const auto& u = first_layer_update(1.0f);
  xt::xtensor<float, 2> dx({batch, in});
  pnn::rng g(7);
  std::uint64_t k = 0;
  for (auto _ : state) {
    pnn::rng gk = g.split(k++);
    t.read_transposed(u.delta.data(), batch, dx.data(), gk);
    benchmark::DoNotOptimize(dx.data());
  }
}

}  // namespace

BENCHMARK(BM_crossbar_update_pulsed)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_crossbar_update_pulsed_fixed_bl31)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_crossbar_update_pulsed_x64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_crossbar_update_ttv2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_crossbar_update_c_ttv2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_crossbar_update_float)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_crossbar_forward_ideal)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_crossbar_forward_io)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_crossbar_forward_io_counted)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_crossbar_backward_io)->Unit(benchmark::kMicrosecond);
