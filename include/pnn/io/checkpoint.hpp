// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::io::save` / `pnn::io::load`: checkpoints of a network (and of a learning rule's
/// state) in files — versioned, CRC-checked, written atomically.
///
/// The format is pnn/core/state_format.hpp's; this header adds files. A checkpoint holds
/// everything a run needs to continue bit for bit: weights and biases, a crossbar's per-device
/// parameters and pair states, noise policies' drawn devices (variation, stuck-at maps, drift
/// exponents) and clocks, and — with a rule's state — optimiser moments, step counters and the
/// rule's fixed random matrices. Writing goes to a temporary file in the same directory that is
/// renamed over the target once complete, so a crash never leaves a half-written checkpoint.
/// Reading checks the magic, version, CRC-32 and every entry against the destination before
/// anything changes; a foreign, truncated, corrupted or newer file is a `pnn::error` naming the
/// file and what differs.
///
/// Resuming a `pnn::train` run:
///
///     pnn::io::save(net, rule.kept_state_for(net), "run.pnn");      // after epoch k
///     // later, in a fresh process, with the same network type and configuration:
///     pnn::io::load(net, rule.kept_state_for(net), "run.pnn");
///     opt.first_epoch = k + 1;
///     pnn::train(net, rule, loss, data, opt);  // the same weights as an uninterrupted run
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#define PNN_IO_HAS_POSIX 1
#else
#define PNN_IO_HAS_POSIX 0
#endif

#include <pnn/core/error.hpp>
#include <pnn/core/state_format.hpp>
#include <pnn/nn/state.hpp>

namespace pnn::io {

namespace detail {

[[noreturn]] inline void file_error(const char* what, const std::string& path, std::string_view why) {
  throw_error(std::string("pnn::io::") + what + ": '" + path + "': " + std::string(why));
}

/// Writes `bytes` to `path` through a temporary file renamed over it (atomic on POSIX file
/// systems); the temporary is removed on every failure.
inline void write_file_atomically(const std::string& path, const std::vector<std::byte>& bytes, const char* who) {
#if PNN_IO_HAS_POSIX
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long>(::getpid()));
#else
  const std::string tmp = path + ".tmp";
#endif
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) file_error(who, path, std::string("cannot create a file there (") + std::strerror(errno) + ")");
  bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = std::fflush(f) == 0 && ok;
#if PNN_IO_HAS_POSIX
  ok = ::fsync(::fileno(f)) == 0 && ok;  // the data is on disk before the name points at it
#endif
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    file_error(who, path, "writing failed (disk full?); the previous file, if any, is unchanged");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    file_error(who, path, std::string("cannot replace the file (") + std::strerror(e) + ")");
  }
}

inline std::vector<std::byte> read_file(const std::string& path, const char* who) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) file_error(who, path, std::string("cannot open (") + std::strerror(errno) + ")");
  std::vector<std::byte> bytes;
  std::byte chunk[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(chunk, 1, sizeof(chunk), f)) != 0) bytes.insert(bytes.end(), chunk, chunk + got);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) file_error(who, path, "read error");
  return bytes;
}

}  // namespace detail

/// \brief The checkpoint of `parts` as bytes (what `save_parts` writes to a file).
template <class... Obj>
[[nodiscard]] std::vector<std::byte> to_bytes(const state_part<Obj>&... parts) {
  std::vector<std::byte> bytes(state_size(parts...));
  write_state(std::span<std::byte>(bytes), parts...);
  return bytes;
}

/// \brief Loads `parts` from checkpoint bytes; on failure a `pnn::error` beginning with
/// `where` and nothing changed.
template <class... Obj>
void from_bytes(std::span<const std::byte> bytes, const std::string& where, const state_part<Obj>&... parts) {
  const state_status st = read_state(bytes, parts...);
  if (!st.ok) throw_error(where + ": " + std::string(st.message()) + "; nothing was loaded");
}

/// \brief Saves any objects that declare their state (`visit_state`) under their roles.
template <class... Obj>
void save_parts(const std::string& path, const state_part<Obj>&... parts) {
  detail::write_file_atomically(path, to_bytes(parts...), "save");
}

/// \brief Loads objects saved by `save_parts` (each found by its role; other parts ignored).
/// \pre the file holds every role asked for, written from objects of the same types and shapes
/// (else `pnn::error` naming the file and the first difference; nothing changed).
template <class... Obj>
void load_parts(const std::string& path, const state_part<Obj>&... parts) {
  const std::vector<std::byte> bytes = detail::read_file(path, "load");
  from_bytes(std::span<const std::byte>(bytes), "pnn::io::load: '" + path + "'", parts...);
}

/// \brief Saves `net` (weights, device states, drawn variations, clocks) to `path`, atomically.
template <class Net>
  requires is_network_v<Net>
void save(const Net& net, const std::string& path) {
  save_parts(path, state_part{"network", net});
}

/// \brief Saves `net` and a learning rule's state for it (`rule.kept_state_for(net)` or a
/// `make_state`) to `path`, atomically: what a bit-exact resume needs.
template <class Net, class RuleState>
  requires is_network_v<Net>
void save(const Net& net, const RuleState& rule_state, const std::string& path) {
  save_parts(path, state_part{"network", net}, state_part{"rule", rule_state});
}

/// \brief Loads `net` from a checkpoint written by `save` for the same network type and shape.
/// \pre the file's network has `Net`'s type signature and extents (else `pnn::error` naming the
/// file and what differs; `net` unchanged).
template <class Net>
  requires is_network_v<Net>
void load(Net& net, const std::string& path) {
  load_parts(path, state_part{"network", net});
}

/// \brief Loads `net` and a rule's state saved together by `save(net, state, path)`; both or
/// neither change.
template <class Net, class RuleState>
  requires is_network_v<Net>
void load(Net& net, RuleState& rule_state, const std::string& path) {
  load_parts(path, state_part{"network", net}, state_part{"rule", rule_state});
}

}  // namespace pnn::io
