# SPDX-License-Identifier: MIT
# pnn_add_batches(TARGET NAME BATCH_SIZE SOURCE...): compiles SOURCEs as TARGET's sources in
# batches of BATCH_SIZE files (0: one batch), each batch a generated unit that includes its files.
#
# Why not CMake's UNITY_BUILD: its units include the sources by absolute path, so a clone at
# another path compiles different text and never hits ccache. These units include them by a path
# relative to the unit itself, which is the same in every clone (ccache's CCACHE_BASEDIR makes
# the rest of the command line relative). Files of one batch must not collide: each of ours keeps
# its helpers in a namespace of its own.
function(pnn_add_batches target name batch_size)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/batches)
  set(sources ${ARGN})
  list(LENGTH sources n)
  if(batch_size EQUAL 0)
    set(batch_size ${n})
  endif()
  set(content "")
  set(in_batch 0)
  set(batch 0)
  foreach(src IN LISTS sources)
    file(RELATIVE_PATH rel ${dir} ${src})
    string(APPEND content "#include \"${rel}\"\n")
    math(EXPR in_batch "${in_batch} + 1")
    if(in_batch EQUAL batch_size)
      file(CONFIGURE OUTPUT ${dir}/${name}_${batch}.cpp CONTENT "${content}" @ONLY)
      target_sources(${target} PRIVATE ${dir}/${name}_${batch}.cpp)
      set(content "")
      set(in_batch 0)
      math(EXPR batch "${batch} + 1")
    endif()
  endforeach()
  if(in_batch GREATER 0)
    file(CONFIGURE OUTPUT ${dir}/${name}_${batch}.cpp CONTENT "${content}" @ONLY)
    target_sources(${target} PRIVATE ${dir}/${name}_${batch}.cpp)
  endif()
endfunction()
