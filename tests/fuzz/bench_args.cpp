// SPDX-License-Identifier: MIT
// libFuzzer target: pnn-bench's command line. The input is split at newlines into arguments
// (at most 32) and run with --dry-run, which stops after every flag is checked. Each input must
// end in a clean exit code with at most a message — an uncaught exception, a crash or a sanitizer
// report is a finding. The rule families' sources are not linked, so named rules pass the name
// check and `--rules all` selects none. Built and run by tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#define main pnn_bench_program_main
#include "../../tools/pnn_bench/main.cpp"
#undef main
#include "../../tools/pnn_bench/distribute/world.cpp"  // built without MPI: one process

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"pnn-bench"};
  std::string cur;
  for (std::size_t i = 0; i < size && args.size() < 33; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == '\n') {
      args.push_back(cur);
      cur.clear();
    } else if (c != '\0') {
      cur.push_back(c);
    }
  }
  if (!cur.empty() && args.size() < 33) args.push_back(cur);
  args.emplace_back("--dry-run");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  static int no_argc = 0;
  static char** no_argv = nullptr;
  static pnn_bench::distribute::world one_process(no_argc, no_argv);
  const int rc = pnn_bench::run(static_cast<int>(args.size()), argv.data(), one_process);
  if (rc != 0 && rc != 1 && rc != 2) __builtin_trap();  // an exit code the documentation does not give
  return 0;
}
