# SPDX-License-Identifier: MIT
# A compile-fail test: SOURCE (relative to SOURCE_DIR) must not compile, the diagnostics must
# contain EXPECT and stay under MAX_BYTES (a readable error, not a template backtrace). Paths are
# relative so the size does not depend on where the repository lives.
foreach(v COMPILER SOURCE_DIR SOURCE EXPECT MAX_BYTES)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "expect_compile_failure: ${v} is not set")
  endif()
endforeach()
set(include_flags -Iinclude)
foreach(d IN LISTS INCLUDE_DIRS)
  if(NOT d STREQUAL "/usr/include")  # a system directory named again breaks libstdc++'s include_next
    list(APPEND include_flags -isystem ${d})
  endif()
endforeach()
execute_process(COMMAND ${COMPILER} -std=c++20 ${include_flags} -fsyntax-only ${SOURCE}
  WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(diag "${out}${err}")
string(LENGTH "${diag}" bytes)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must not")
endif()
string(FIND "${diag}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${SOURCE}: the diagnostics do not name '${EXPECT}':\n${diag}")
endif()
if(bytes GREATER MAX_BYTES)
  message(FATAL_ERROR "${SOURCE}: ${bytes} bytes of diagnostics (limit ${MAX_BYTES}):\n${diag}")
endif()
message(STATUS "${SOURCE}: rejected in ${bytes} bytes, naming '${EXPECT}'")
