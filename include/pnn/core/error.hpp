// SPDX-License-Identifier: MIT
/// \file
/// \brief `pnn::error`, the precondition handler and the `PNN_EXPECTS` macro.
///
/// A violated precondition must never become undefined behaviour. With exceptions it throws
/// `pnn::error`; without them (firmware) it calls a user-replaceable handler, which by default
/// traps. The handler receives a static message, the file and the line.
#pragma once

#include <pnn/core/config.hpp>

#if PNN_HAS_EXCEPTIONS
#include <stdexcept>
#include <string>
#endif

namespace pnn {

/// Signature of a precondition-violation handler. It must not return normally when exceptions
/// are off (the library's state after a violated precondition is not defined to continue).
using violation_handler = void (*)(const char* what, const char* file, int line);

namespace detail {
inline constinit violation_handler g_violation_handler = nullptr;
}  // namespace detail

/// Installs `h` as the handler called on a violated precondition; returns the previous one.
/// Passing `nullptr` restores the default (throw `pnn::error` with exceptions, trap without).
inline violation_handler set_violation_handler(violation_handler h) noexcept {
  violation_handler old = detail::g_violation_handler;
  detail::g_violation_handler = h;
  return old;
}

#if PNN_HAS_EXCEPTIONS
/// The one exception type pnn throws: bad input, violated precondition, unreadable file.
/// The message names the argument or file and what is wrong with it.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
#endif

namespace detail {
[[noreturn]] inline void trap() noexcept { __builtin_trap(); }

/// Reports a violated precondition through the installed handler, or throws / traps.
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  if (g_violation_handler != nullptr) g_violation_handler(what, file, line);
#if PNN_HAS_EXCEPTIONS
  throw ::pnn::error(what);
#else
  (void)file;
  (void)line;
  trap();
#endif
}
}  // namespace detail

#if PNN_HAS_EXCEPTIONS
/// Throws `pnn::error` with a composed message (hosted code paths only: files, shapes).
[[noreturn]] inline void throw_error(const std::string& what) {
  if (detail::g_violation_handler != nullptr) detail::g_violation_handler(what.c_str(), "", 0);
  throw error(what);
}
#endif

}  // namespace pnn

/// Checks a precondition; on failure reports `msg` (a string literal) through the handler.
#define PNN_EXPECTS(cond, msg)                                          \
  do {                                                                 \
    if (PNN_UNLIKELY(!(cond))) ::pnn::detail::fail(msg, __FILE__, __LINE__); \
  } while (false)
