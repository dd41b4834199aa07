// SPDX-License-Identifier: MIT
// Forward-only rules on the 784-256-10 MLP, batch 64, one `step` each (bench::train_step).
// Build together with bench_network.cpp (which has BM_train_step_backprop) and compare each
// rule's time per step with backprop's from the same run:
//   g++ ... benchmarks/bench_network.cpp benchmarks/bench_forward_rules.cpp benchmarks/main.cpp
// PyTorch reference (forward-mode AD, same shape): activity-perturbed ≈ 103 k samples/s,
// weight-perturbed ≈ 44 k samples/s.
#include "common.hpp"

#include <pnn/learn/forward_forward.hpp>
#include <pnn/learn/forward_gradient.hpp>
#include <pnn/learn/perturbation.hpp>

namespace {
using namespace pnn;

void BM_train_step_forward_gradient_activity(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(),
                    learn::forward_gradient<>{{.optimizer = {.learning_rate = 0.01f},
                                               .mode = learn::forward_gradient_mode::activity}});
}
BENCHMARK(BM_train_step_forward_gradient_activity);

void BM_train_step_forward_gradient_weight(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(),
                    learn::forward_gradient<>{{.optimizer = {.learning_rate = 1e-4f},
                                               .mode = learn::forward_gradient_mode::weight}});
}
BENCHMARK(BM_train_step_forward_gradient_weight);

void BM_train_step_weight_perturbation(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(), learn::weight_perturbation<>{{.optimizer = {.learning_rate = 1e-4f}}});
}
BENCHMARK(BM_train_step_weight_perturbation);

void BM_train_step_spsa(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(), learn::spsa<optim::spsa_gain>{{.optimizer = {.a = 1e-4f}}});
}
BENCHMARK(BM_train_step_spsa);

void BM_train_step_node_perturbation(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(), learn::node_perturbation<>{{.optimizer = {.learning_rate = 1e-3f}}});
}
BENCHMARK(BM_train_step_node_perturbation);

// The rule's own cost: `step_accuracy = false` counts g⁺ > g⁻ instead of classifying the batch
// (which costs 10 more forward passes, measured separately below).
void BM_train_step_forward_forward(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(),
                    learn::forward_forward<>{{.optimizer = {.learning_rate = 0.01f}, .step_accuracy = false}});
}
BENCHMARK(BM_train_step_forward_forward);

void BM_train_step_forward_forward_classify(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(), learn::forward_forward<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_step_forward_forward_classify);
}  // namespace
