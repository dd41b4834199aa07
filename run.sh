#!/usr/bin/env bash
# The project's two entry points (README "Quick start"); both are idempotent and install what
# they need from Debian's packages when it is missing.
#   bash run.sh bench [pnn-bench flags]   the main job: the learning-rule benchmark on Fashion-MNIST
#   bash run.sh test                      the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

packages=(cmake g++ make xtensor-dev libxsimd-dev xtl-dev catch2 libbenchmark-dev doxygen graphviz zlib1g-dev
          dataset-fashion-mnist libopenblas-dev gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib
          libcli11-dev nlohmann-json3-dev gnuplot-nox)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
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

build() {  # build PRESET [targets...]
  local preset=$1; shift
  cmake --preset "$preset" >/dev/null
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
    if (($# == 0)); then set -- --json results/pnn-bench.json --csv results/pnn-bench.csv --plot-dir results/plots; fi
    exec ./build/release/tools/pnn-bench "$@"
    ;;
  test)
    install_missing
    build release
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
    echo "run.sh: all checks passed"
    ;;
  *)
    echo "usage: bash run.sh bench [pnn-bench flags] | bash run.sh test" >&2
    exit 2
    ;;
esac
