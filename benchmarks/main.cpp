// SPDX-License-Identifier: MIT
// The benchmark binary's entry point: Google Benchmark's, plus the OpenBLAS kernel in the
// report's context, since every OpenBLAS ratio depends on which core type it loaded
// (tools/bench_best_openblas.py picks the fastest).
#include <benchmark/benchmark.h>

#if PNN_HAVE_OPENBLAS
#include <cblas.h>
#endif

int main(int argc, char** argv) {
#if PNN_HAVE_OPENBLAS
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
