#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs pnn's benchmarks against OpenBLAS on its fastest kernel for this processor.

OpenBLAS picks its kernel (core type) once, when it loads; on a processor newer than the
installed OpenBLAS its detection may pick a slow generic kernel. This launcher times OpenBLAS's
single-threaded SGEMM (`BM_gemm_openblas/256/256/256`, median of 3) with OPENBLAS_CORETYPE
unset (its own detection) and set to each candidate, skips candidates this processor cannot run,
prints the ranking, and re-executes the benchmark binary with the fastest — the choice is also in
the report's context (`openblas_core`).

    python3 tools/bench_best_openblas.py build/release/benchmarks/pnn_benchmarks [benchmark flags]
"""
import json
import os
import subprocess
import sys

CANDIDATES = [None, "SkylakeX", "Cooperlake", "Haswell", "Zen", "Sandybridge"]
PROBE = "^BM_gemm_openblas/256/256/256$"


def probe(binary, core):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if core is not None:
        env["OPENBLAS_CORETYPE"] = core
    try:
        out = subprocess.run([binary, f"--benchmark_filter={PROBE}", "--benchmark_min_time=0.2",
                              "--benchmark_repetitions=3", "--benchmark_format=json"],
                             env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None, None  # an instruction set this processor lacks ends the probe (SIGILL)
    report = json.loads(out)
    name = report.get("context", {}).get("openblas_core", core or "detected")
    medians = [b["items_per_second"] for b in report.get("benchmarks", [])
               if b.get("aggregate_name") == "median"]
    return (medians[0] if medians else None), name


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    binary, rest = sys.argv[1], sys.argv[2:]
    results = []
    for core in CANDIDATES:
        rate, name = probe(binary, core)
        label = f"{'detected' if core is None else core} ({name})" if name else (core or "detected")
        if rate is None:
            print(f"bench_best_openblas: {label}: cannot run here", file=sys.stderr)
            continue
        print(f"bench_best_openblas: {label}: {rate / 1e9:.1f} GFLOP/s", file=sys.stderr)
        results.append((rate, core))
    if not results:
        print("bench_best_openblas: no OpenBLAS probe ran (built without OpenBLAS?); running as is", file=sys.stderr)
        os.execv(binary, [binary] + rest)
    rate, core = max(results, key=lambda r: r[0])
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if core is not None:
        env["OPENBLAS_CORETYPE"] = core
    print(f"bench_best_openblas: using {core or 'its own detection'} ({rate / 1e9:.1f} GFLOP/s)", file=sys.stderr)
    os.execve(binary, [binary] + rest, env)


if __name__ == "__main__":
    sys.exit(main())
