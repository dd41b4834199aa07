#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The project's two entry points (README "Quick start"); both are idempotent and install what
# they need from Debian's packages when it is missing.
#   bash run.sh bench [pnn-bench flags]   the main job: the learning-rule benchmark on Fashion-MNIST
#   bash run.sh test                      the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

packages=(cmake g++ make xtensor-dev libxsimd-dev xtl-dev catch2 libbenchmark-dev doxygen graphviz zlib1g-dev
          dataset-fashion-mnist libeigen3-dev libopenblas-dev libcli11-dev nlohmann-json3-dev gnuplot-nox ccache)
# What only the test command needs: the other compilers and targets the library claims.
# Open MPI: pnn-bench's distributed sweeps, tested under mpirun.
test_packages=(clang libclang-rt-14-dev libomp-14-dev g++-aarch64-linux-gnu gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib python3
               libopenmpi-dev openmpi-bin)

install_missing() {  # install_missing [extra packages...]
  local missing=()
  for p in "${packages[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "run.sh: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

jobs=$(nproc 2>/dev/null || echo 2)

# Warnings become errors only where CI asks for it (CI=true): a user's build never fails on a
# warning that a newer or different compiler adds.
werror=OFF
[ "${CI:-}" = true ] && werror=ON
# ccache, when present, keeps a rebuild of unchanged sources cheap, also from another clone.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=$PWD CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  # Units built with debug info (the sanitizer build's line tables) would otherwise hash the
  # clone's own directory and never hit from another clone; their line tables keep relative
  # paths under CCACHE_BASEDIR either way.
  export CCACHE_NOHASHDIR=true
fi

build() {  # build PRESET [targets...]
  local preset=$1; shift
  cmake --preset "$preset" -DPNN_WARNINGS_AS_ERRORS=$werror "${launcher[@]}" >/dev/null
  if (($#)); then cmake --build --preset "$preset" -j "$jobs" --target "$@"
  else cmake --build --preset "$preset" -j "$jobs"; fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  bench)
    install_missing
    # Build output goes to stderr: stdout carries only pnn-bench's table.
    build release pnn-bench >&2
    # Without flags: the default comparison, with its JSON, CSV and figures under results/.
    if (($# == 0)); then set -- --seeds 3 --scorecard --json results/pnn-bench.json --csv results/pnn-bench.csv --plot-dir results/plots; fi
    exec ./build/release/tools/pnn-bench "$@"
    ;;
  test)
    install_missing "${test_packages[@]}"
    start=$SECONDS
    # Every reference to a file of the repository resolves inside it.
    python3 tools/check_doc_refs.py
    python3 tools/check_layers.py
    # g++: the suite, every SIMD level (run where this processor can), aarch64 and Cortex-M4
    # cross-compiles, the examples' claims.
    build release
    echo "run.sh: g++ build done after $((SECONDS - start)) s"
    ctest --preset release -j "$jobs"
    # The exported package works from an install prefix: install, then build a consumer.
    prefix=$(mktemp -d)
    trap 'rm -rf "$prefix"' EXIT
    cmake --install build/release --prefix "$prefix" >/dev/null
    cmake -S tests/consumer -B "$prefix/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$prefix/consumer-build" -j "$jobs" >/dev/null
    "$prefix/consumer-build/pnn_consumer"
    # API documentation builds without warnings.
    cmake --build --preset release --target docs
    echo "run.sh: g++ checks done after $((SECONDS - start)) s"
    # Clang, the other compiler we support, with AddressSanitizer and UndefinedBehaviorSanitizer
    # (assertions on): the whole suite and the examples again (not the optical ones labelled "long",
    # whose physics the suite covers); and ThreadSanitizer on the
    # multi-threaded paths (concurrent reads, kernels' thread teams) in the same build.
    build sanitize
    echo "run.sh: sanitizer build done after $((SECONDS - start)) s"
    ctest --preset sanitize -j "$jobs"
    # Untrusted-input readers under libFuzzer with ASan + UBSan, from the committed corpora.
    bash tools/fuzz.sh 20 build/fuzz
    echo "run.sh: all checks passed in $((SECONDS - start)) s"
    ;;
  *)
    echo "usage: bash run.sh bench [pnn-bench flags] | bash run.sh test" >&2
    exit 2
    ;;
esac
