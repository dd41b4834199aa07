// SPDX-License-Identifier: MIT
// Runs a test program only where this processor can execute the instruction set it was compiled
// for, and otherwise exits 77, which ctest reports as "skipped" (SKIP_RETURN_CODE). Compiled for
// the baseline of the host so that it runs everywhere itself.
//
//   run_if_cpu_supports LEVEL PROGRAM [ARGS...]     LEVEL: scalar | x86-64-v2 | x86-64-v3 | x86-64-v4
#include <cstdio>
#include <cstring>

#include <unistd.h>

namespace {

bool supports(const char* level) {
  if (std::strcmp(level, "scalar") == 0) return true;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("ssse3") &&
                  __builtin_cpu_supports("popcnt");
  const bool v3 = v2 && __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") &&
                  __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512cd");
  if (std::strcmp(level, "x86-64-v2") == 0) return v2;
  if (std::strcmp(level, "x86-64-v3") == 0) return v3;
  if (std::strcmp(level, "x86-64-v4") == 0) return v4;
#endif
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: run_if_cpu_supports LEVEL PROGRAM [ARGS...]\n");
    return 2;
  }
  if (!supports(argv[1])) {
    std::printf("skipped: this processor cannot run %s code (it was compiled, not run)\n", argv[1]);
    return 77;
  }
  execv(argv[2], argv + 2);
  std::perror(argv[2]);
  return 127;
}
