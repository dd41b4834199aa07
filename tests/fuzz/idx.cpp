// SPDX-License-Identifier: MIT
// libFuzzer target: the IDX reader (plain and gzip, detected by content) on arbitrary bytes.
// Every input must either load or throw pnn::error; anything else (a crash, a sanitizer report,
// another exception, an allocation beyond libFuzzer's limit) is a finding.
// Built and run by tools/fuzz.sh (Clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

#include <pnn/core/error.hpp>
#include <pnn/data/idx.hpp>

namespace {
// The reader takes a path: each input goes through one file per process, in memory where the
// system has a RAM file system.
const std::string& scratch_path() {
  static const std::string p = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/pnn_fuzz_idx_" +
                               std::to_string(static_cast<long>(getpid()));
  return p;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(scratch_path().c_str(), "wb");
  if (f == nullptr) return 0;
  if (size != 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const pnn::data::idx_array a = pnn::data::load_idx(scratch_path());
    std::size_t n = 1;
    for (const std::size_t d : a.shape) n *= d;
    // What loaded is what the header announced.
    if (std::visit([](const auto& v) { return v.size(); }, a.values) != n) __builtin_trap();
  } catch (const pnn::error&) {
  }
  return 0;
}
