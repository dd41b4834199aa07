#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compiles (without linking or running) the translation units that instantiate pnn's SIMD code
# with another target's compiler, e.g. aarch64-linux-gnu-g++ for Arm NEON. Only the header-only
# dependencies are made visible to it (a folder of links), never the host's own system headers.
#   cross_check.sh COMPILER OUT_DIR WERROR(ON|OFF) "INCLUDE_DIRS" SOURCE... [-- FLAGS...]
set -euo pipefail
cxx=${1:?compiler}; out=${2:?build dir}; werror=${3:?ON or OFF}; deps=${4:?dependency include dirs}
shift 4
sources=(); flags=()
while (($#)); do
  if [ "$1" = -- ]; then shift; flags=("$@"); break; fi
  sources+=("$1"); shift
done
command -v "$cxx" >/dev/null || { echo "error: $cxx not found" >&2; exit 1; }
mkdir -p "$out/include"
# Each dependency's top-level folders (xtensor/, xtl/, xsimd/, catch2/) linked into one place.
for dir in $deps; do
  for name in xtensor xtl xsimd catch2; do
    [ -d "$dir/$name" ] && ln -sfn "$dir/$name" "$out/include/$name"
  done
done
src_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
common=(-std=c++20 -O1 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I"$src_root/include" -isystem "$out/include")
[ "$werror" = ON ] && common+=(-Werror)
# ccache, when present (run.sh sets its base directory to the clone), makes an unchanged unit
# free in the next run: these units otherwise cost CI ~160 s every time.
launcher=()
command -v ccache >/dev/null && launcher=(ccache)
echo "cross_check: $("$cxx" --version | head -n 1); ${#sources[@]} units; flags: ${flags[*]:-none}"
status=0
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc 2>/dev/null || echo 2)" -I{} \
  sh -c 'f="$1"; shift; o="$0/$(basename "$f").o"; "$@" -c "$f" -o "$o" || { echo "FAILED: $f" >&2; exit 1; }' \
  "$out" {} "${launcher[@]}" "$cxx" "${common[@]}" "${flags[@]}" || status=1
if ((status)); then echo "cross_check: some units failed to compile" >&2; exit 1; fi
echo "cross_check: all units compiled"
