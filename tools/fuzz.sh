#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets of tests/fuzz/ with Clang under AddressSanitizer and
# UndefinedBehaviorSanitizer and runs each for SECONDS (default 60) from its committed seed
# corpus (tests/fuzz/corpus/<target>/). A crash, sanitizer report or leak fails the run and leaves
# the input as OUT/crash-*; add it to the corpus once fixed, so it stays a regression test.
#   bash tools/fuzz.sh [SECONDS] [OUT]
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
out=${2:-$src/build/fuzz}
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$src/include")
targets=(idx checkpoint bench_args)
# The targets compile side by side, then run one after another.
pids=()
for target in "${targets[@]}"; do
  extra=()
  [ "$target" = idx ] && extra=(-DPNN_HAS_ZLIB=1 -lz)
  [ "$target" = bench_args ] && extra=(-pthread)
  clang++ "${flags[@]}" "$src/tests/fuzz/$target.cpp" "${extra[@]}" -o "$out/fuzz_$target" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || { echo "fuzz.sh: a fuzz target failed to compile" >&2; exit 1; }; done
for target in "${targets[@]}"; do
  # Work on a copy: what the fuzzer adds stays out of the repository.
  corpus="$out/corpus_$target"
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp "$src/tests/fuzz/corpus/$target/"* "$corpus/" 2>/dev/null || true
  echo "fuzz.sh: $target for $seconds s" >&2
  PNN_FUZZ_SEED_DIR="$corpus" "$out/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$out/" "$corpus" 2>"$out/fuzz_$target.log" ||
    { tail -n 60 "$out/fuzz_$target.log" >&2; echo "fuzz.sh: $target found a failure (input in $out/)" >&2; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$out/fuzz_$target.log" | sed "s/^/fuzz.sh: $target /" >&2
done
