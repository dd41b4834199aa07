// SPDX-License-Identifier: MIT
// Physics-aware training's step cost against backprop's on the same 784-256-10 digital network
// (batch 64). With a digital physical network PAT does the same work as backprop plus the
// per-step mirror of the parameters into its twin; the ratio to BM_train_step_backprop
// (bench_network.cpp, built into the same binary) is that overhead.
#include "common.hpp"

#include <pnn/learn/physics_aware.hpp>

namespace {

void BM_train_step_physics_aware(benchmark::State& state) {
  bench::train_step(state, bench::make_mlp(), pnn::learn::physics_aware<>{{.optimizer = {.learning_rate = 0.01f}}});
}
BENCHMARK(BM_train_step_physics_aware);

}  // namespace
