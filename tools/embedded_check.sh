#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cross-compiles the fixed-extent core for a Cortex-M4 (no exceptions, no RTTI, newlib-nano),
# prints the image size, and fails if malloc made it into the image.
set -euo pipefail
src=${1:?source dir}; out=${2:?build dir}
# -Werror only when the build asks for it (CI): a new compiler's warning must not stop a user.
werror=()
[ "${3:-OFF}" = ON ] && werror=(-Werror)
mkdir -p "$out"
arm-none-eabi-g++ -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -std=c++20 \
  -fno-exceptions -fno-rtti -Os -ffunction-sections -fdata-sections -Wall -Wextra "${werror[@]}" \
  -I"$src/include" "$src/examples/embedded/inference_16_8_4.cpp" \
  --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections -o "$out/inference_16_8_4.elf"
arm-none-eabi-size "$out/inference_16_8_4.elf"
if arm-none-eabi-nm "$out/inference_16_8_4.elf" | grep -qwE '_?malloc|_malloc_r'; then
  echo "error: malloc is linked into the embedded image" >&2
  arm-none-eabi-nm "$out/inference_16_8_4.elf" | grep -wE '_?malloc|_malloc_r' >&2
  exit 1
fi
echo "embedded image: no malloc"
