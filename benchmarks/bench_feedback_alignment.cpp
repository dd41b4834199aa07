// SPDX-License-Identifier: MIT
// Feedback alignment and direct feedback alignment on the 784-256-10 MLP (tanh, digital,
// batch 64): one training epoch and one step, measured exactly as BM_train_epoch_backprop and
// BM_train_step_backprop in bench_network.cpp (build both into one binary to compare). FA and
// DFA do backprop's GEMM count (FA: δ Bᵀ instead of δ W; DFA: e Bᵀ from the 10 outputs), so the
// target is an epoch within 1.1× of backprop's.
#include "common.hpp"

#include <pnn/learn/direct_feedback_alignment.hpp>
#include <pnn/learn/feedback_alignment.hpp>

namespace {
using namespace pnn;

void BM_train_epoch_fa(benchmark::State& state) {
  bench::train_epoch(state, bench::make_mlp(), learn::feedback_alignment<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_epoch_fa)->Unit(benchmark::kMillisecond);

void BM_train_epoch_dfa(benchmark::State& state) {
  bench::train_epoch(state, bench::make_mlp(),
                     learn::direct_feedback_alignment<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_epoch_dfa)->Unit(benchmark::kMillisecond);

void BM_train_step_fa(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(), learn::feedback_alignment<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_step_fa);

void BM_train_step_dfa(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(),
                    learn::direct_feedback_alignment<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_step_dfa);

// Sign symmetry adds an O(In·Out) sign-and-transpose of W per step to FA.
void BM_train_step_fa_sign_symmetry(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(),
                    learn::feedback_alignment<>{{.optimizer = {.learning_rate = 0.01f},
                                                 .feedback = learn::feedback_kind::sign_symmetry}});
}
BENCHMARK(BM_train_step_fa_sign_symmetry);
}  // namespace
