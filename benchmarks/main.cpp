// SPDX-License-Identifier: MIT
// The benchmark binary's entry point: Google Benchmark's, plus the OpenBLAS kernel in the
// report's context, since every OpenBLAS ratio depends on which core type it loaded
// (tools/bench_best_openblas.py picks the fastest).
#include <benchmark/benchmark.h>

#include <pnn/core/threads.hpp>

#if PNN_HAVE_OPENBLAS
#include <cblas.h>
#endif

int main(int argc, char** argv) {
  // One core, like the single-threaded anchors (OpenBLAS, PyTorch with one thread); the
  // benchmarks with a "threads" argument set their own count.
  pnn::set_num_threads(1);
#if PNN_HAVE_OPENBLAS
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
