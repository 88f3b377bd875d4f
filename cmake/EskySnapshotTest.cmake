# Regression tests resumed from a snapshot, for CTest (doc/testing-with-esky.md).
#
#   esky_add_snapshot_fixture(NAME <fixture>
#                             COMMAND <program> [<arg>...]
#                             AT <location> [HIT <n>]
#                             [WORKING_DIRECTORY <dir>] [DEPENDS <file>...]
#                             [LABELS <label>...])
#
# adds the test <fixture>.snapshot, the set-up of the CTest fixture <fixture>
# (FIXTURES_SETUP): it runs <program> under `esky snap` with /dev/null as its
# standard input and keeps a checkpoint of it taken at the <n>th hit (1 by
# default) of <location> (FILE:LINE, a function, or *ADDRESS). The next run
# reuses that checkpoint as long as `esky check` says it would resume (the
# program, its libraries and the files it has open are unchanged), COMMAND,
# AT, HIT and WORKING_DIRECTORY are what they were, and the DEPENDS files
# (data the set-up reads and closes, which esky cannot know about) have
# the same contents (SHA-256); otherwise it says why and takes it again.
#
#   esky_add_resumed_test(NAME <test> FIXTURE <fixture>
#                         [STDIN <file>] [EXPECTED_OUTPUT <file>]
#                         [EXIT_CODE <n>] [WILL_FAIL]
#                         [PASS_REGULAR_EXPRESSION <re>...]
#                         [FAIL_REGULAR_EXPRESSION <re>...]
#                         [LABELS <label>...])
#
# adds the test <test> (FIXTURES_REQUIRED <fixture>): `esky resume` of the
# fixture's checkpoint with <file> as standard input (/dev/null without
# STDIN). It passes when the program's exit status is <n> (0 by default)
# and, with EXPECTED_OUTPUT, its standard output is that file's contents
# byte for byte. The output is also printed, so the regular expressions
# and WILL_FAIL work as with any CTest test.
#
#   esky_add_snapshot_test(NAME <test> COMMAND <program> [<arg>...]
#                          AT <location> [HIT <n>] [WORKING_DIRECTORY <dir>]
#                          [DEPENDS <file>...]
#                          [STDIN <file>] [EXPECTED_OUTPUT <file>]
#                          [EXIT_CODE <n>] [WILL_FAIL]
#                          [PASS_REGULAR_EXPRESSION <re>...]
#                          [FAIL_REGULAR_EXPRESSION <re>...]
#                          [LABELS <label>...])
#
# is both in one test: take (or reuse) the snapshot, then resume it.
#
# <program> may be an executable target of the project. Relative STDIN and
# EXPECTED_OUTPUT files are in the current source directory. The
# checkpoints live in ${CMAKE_CURRENT_BINARY_DIR}/esky-snapshots/<name>/,
# the resumed tests' outputs in ${CMAKE_CURRENT_BINARY_DIR}/esky-tests/.
# Deleting esky-snapshots/<name> makes the next run take it again.
#
# The tests run `cmake -P` on esky-snapshot-driver.cmake, next to this file:
# no shell is needed.

# Each find_package(esky) says which esky to run (a project may find another
# one than a previous configure did).
if(DEFINED ESKY_EXECUTABLE)
  set_property(GLOBAL PROPERTY ESKY_SNAPSHOT_ESKY "${ESKY_EXECUTABLE}")
endif()

include_guard(GLOBAL)

if(CMAKE_VERSION VERSION_LESS 3.20)
  message(FATAL_ERROR "EskySnapshotTest needs CMake 3.20 or later (this is ${CMAKE_VERSION})")
endif()

set_property(GLOBAL PROPERTY ESKY_SNAPSHOT_DRIVER
  "${CMAKE_CURRENT_LIST_DIR}/esky-snapshot-driver.cmake")

# A CMake bracket argument holding value exactly, whatever brackets it has.
function(_esky_bracket out value)
  set(eq "=")
  while(value MATCHES "]${eq}]")
    string(APPEND eq "=")
  endwhile()
  set(${out} "[${eq}[${value}]${eq}]" PARENT_SCOPE)
endfunction()

# The driver script and esky, or a configure error naming the caller.
function(_esky_tools fn)
  get_property(driver GLOBAL PROPERTY ESKY_SNAPSHOT_DRIVER)
  get_property(esky GLOBAL PROPERTY ESKY_SNAPSHOT_ESKY)
  if(NOT esky)
    message(FATAL_ERROR "${fn}: ESKY_EXECUTABLE is not set: use find_package(esky)")
  endif()
  set(_esky_driver "${driver}" PARENT_SCOPE)
  set(_esky_esky "${esky}" PARENT_SCOPE)
endfunction()

function(_esky_check_name fn name)
  if(NOT name MATCHES "^[A-Za-z0-9_.+-]+$")
    message(FATAL_ERROR "${fn}: NAME '${name}': use letters, digits and _ . + - only "
      "(it names a directory)")
  endif()
endfunction()

# Writes the description of a snapshot (what to run, where to stop, where to
# keep it) to CMakeFiles/esky/<name>-<config>.cmake at generate time, with
# the program's target resolved, and returns that file's name (a generator
# expression, as add_test takes it). It is not kept with the snapshot, so
# that deleting esky-snapshots/<name> only makes the snapshot taken again.
function(_esky_snapshot_spec fn name out)
  cmake_parse_arguments(PARSE_ARGV 3 arg "" "AT;HIT;WORKING_DIRECTORY" "COMMAND;DEPENDS")
  if(NOT arg_COMMAND)
    message(FATAL_ERROR "${fn}(${name}): COMMAND is missing")
  endif()
  if(NOT DEFINED arg_AT OR arg_AT STREQUAL "")
    message(FATAL_ERROR "${fn}(${name}): AT is missing (FILE:LINE, a function or *ADDRESS)")
  endif()
  if(NOT DEFINED arg_HIT)
    set(arg_HIT 1)
  elseif(NOT arg_HIT MATCHES "^[1-9][0-9]*$")
    message(FATAL_ERROR "${fn}(${name}): HIT ${arg_HIT}: give a number, 1 or more")
  endif()
  if(NOT arg_WORKING_DIRECTORY)
    set(arg_WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
  endif()
  get_filename_component(arg_WORKING_DIRECTORY "${arg_WORKING_DIRECTORY}" ABSOLUTE
    BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")

  # A target's file, as add_test does with its COMMAND's first word.
  list(POP_FRONT arg_COMMAND program)
  if(TARGET "${program}")
    get_target_property(type "${program}" TYPE)
    if(type STREQUAL "EXECUTABLE")
      set(program "$<TARGET_FILE:${program}>")
    endif()
  endif()

  set(dir "${CMAKE_CURRENT_BINARY_DIR}/esky-snapshots/${name}")
  set(content "# ${fn}(${name}) in ${CMAKE_CURRENT_LIST_FILE}: generated, do not edit.\n")
  foreach(pair IN ITEMS "NAME=name" "EXECUTABLE=_esky_esky" "SNAPSHOT_DIR=dir" "AT=arg_AT"
                        "HIT=arg_HIT" "WORKING_DIRECTORY=arg_WORKING_DIRECTORY")
    string(REPLACE "=" ";" pair "${pair}")
    list(GET pair 0 key)
    list(GET pair 1 var)
    _esky_bracket(q "${${var}}")
    string(APPEND content "set(ESKY_${key} ${q})\n")
  endforeach()
  string(APPEND content "set(ESKY_DEPENDS")
  foreach(f IN LISTS arg_DEPENDS)
    get_filename_component(f "${f}" ABSOLUTE)
    _esky_bracket(q "${f}")
    string(APPEND content "\n    ${q}")
  endforeach()
  string(APPEND content ")\n")
  string(APPEND content "set(ESKY_COMMAND")
  foreach(word IN LISTS program arg_COMMAND)
    _esky_bracket(q "${word}")
    string(APPEND content "\n    ${q}")
  endforeach()
  string(APPEND content ")\n")
  set(spec "${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/esky/${name}-$<CONFIG>.cmake")
  file(GENERATE OUTPUT "${spec}" CONTENT "${content}")
  set(${out} "${spec}" PARENT_SCOPE)
endfunction()

# The driver's arguments of a resumed test, from the options of
# esky_add_resumed_test and esky_add_snapshot_test.
macro(_esky_resume_options fn)
  if(NOT DEFINED arg_EXIT_CODE)
    set(arg_EXIT_CODE 0)
  elseif(NOT arg_EXIT_CODE MATCHES "^[0-9]+$")
    message(FATAL_ERROR "${fn}(${arg_NAME}): EXIT_CODE ${arg_EXIT_CODE}: give a number")
  endif()
  foreach(_esky_f IN ITEMS STDIN EXPECTED_OUTPUT)
    if(arg_${_esky_f})
      get_filename_component(arg_${_esky_f} "${arg_${_esky_f}}" ABSOLUTE)
      if(NOT EXISTS "${arg_${_esky_f}}" AND NOT arg_${_esky_f} MATCHES "\\$<")
        message(FATAL_ERROR "${fn}(${arg_NAME}): ${_esky_f} ${arg_${_esky_f}}: no such file")
      endif()
    endif()
  endforeach()
  set(_esky_args
    "-DESKY_TEST=${arg_NAME}"
    "-DESKY_STDIN=${arg_STDIN}"
    "-DESKY_EXPECTED_OUTPUT=${arg_EXPECTED_OUTPUT}"
    "-DESKY_EXIT_CODE=${arg_EXIT_CODE}"
    "-DESKY_OUTPUT_FILE=${CMAKE_CURRENT_BINARY_DIR}/esky-tests/${arg_NAME}.stdout")
endmacro()

# The test properties given to esky_add_resumed_test or esky_add_snapshot_test,
# set one by one: a property's value may be a list.
macro(_esky_resume_properties test)
  if(arg_WILL_FAIL)
    set_tests_properties("${test}" PROPERTIES WILL_FAIL TRUE)
  endif()
  foreach(_esky_p IN ITEMS PASS_REGULAR_EXPRESSION FAIL_REGULAR_EXPRESSION LABELS)
    if(arg_${_esky_p})
      set_tests_properties("${test}" PROPERTIES ${_esky_p} "${arg_${_esky_p}}")
    endif()
  endforeach()
endmacro()

# The snapshot's description from the caller's parsed arguments (arg_NAME,
# arg_COMMAND, arg_AT, arg_HIT, arg_WORKING_DIRECTORY, arg_DEPENDS) into
# `spec` in the caller's scope: a macro, so that it sees them.
macro(_esky_spec_from_args fn)
  set(spec_args COMMAND ${arg_COMMAND} AT "${arg_AT}")
  if(DEFINED arg_HIT)
    list(APPEND spec_args HIT "${arg_HIT}")
  endif()
  if(arg_WORKING_DIRECTORY)
    list(APPEND spec_args WORKING_DIRECTORY "${arg_WORKING_DIRECTORY}")
  endif()
  if(arg_DEPENDS)
    list(APPEND spec_args DEPENDS ${arg_DEPENDS})
  endif()
  _esky_snapshot_spec(${fn} "${arg_NAME}" spec ${spec_args})
endmacro()

function(esky_add_snapshot_fixture)
  set(fn esky_add_snapshot_fixture)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;AT;HIT;WORKING_DIRECTORY"
    "COMMAND;DEPENDS;LABELS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${fn}: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  _esky_check_name(${fn} "${arg_NAME}")
  get_property(known GLOBAL PROPERTY "ESKY_FIXTURE_SPEC_${arg_NAME}" SET)
  if(known)
    message(FATAL_ERROR "${fn}: the fixture ${arg_NAME} is already defined")
  endif()
  _esky_tools(${fn})
  _esky_spec_from_args(${fn})
  set_property(GLOBAL PROPERTY "ESKY_FIXTURE_SPEC_${arg_NAME}" "${spec}")

  add_test(NAME "${arg_NAME}.snapshot"
    COMMAND "${CMAKE_COMMAND}" -DESKY_MODE=take "-DESKY_SPEC=${spec}" -P "${_esky_driver}")
  set_tests_properties("${arg_NAME}.snapshot" PROPERTIES FIXTURES_SETUP "${arg_NAME}")
  if(arg_LABELS)
    set_tests_properties("${arg_NAME}.snapshot" PROPERTIES LABELS "${arg_LABELS}")
  endif()
endfunction()

function(esky_add_resumed_test)
  set(fn esky_add_resumed_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "WILL_FAIL"
    "NAME;FIXTURE;STDIN;EXPECTED_OUTPUT;EXIT_CODE"
    "PASS_REGULAR_EXPRESSION;FAIL_REGULAR_EXPRESSION;LABELS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${fn}: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_NAME)
    message(FATAL_ERROR "${fn}: NAME is missing")
  endif()
  get_property(spec GLOBAL PROPERTY "ESKY_FIXTURE_SPEC_${arg_FIXTURE}")
  if(NOT arg_FIXTURE OR NOT spec)
    message(FATAL_ERROR "${fn}(${arg_NAME}): no fixture '${arg_FIXTURE}': give "
      "FIXTURE, defined by an esky_add_snapshot_fixture() before")
  endif()
  _esky_tools(${fn})
  _esky_resume_options(${fn})
  add_test(NAME "${arg_NAME}"
    COMMAND "${CMAKE_COMMAND}" -DESKY_MODE=resume "-DESKY_SPEC=${spec}" ${_esky_args}
            -P "${_esky_driver}")
  set_tests_properties("${arg_NAME}" PROPERTIES FIXTURES_REQUIRED "${arg_FIXTURE}")
  _esky_resume_properties("${arg_NAME}")
endfunction()

function(esky_add_snapshot_test)
  set(fn esky_add_snapshot_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "WILL_FAIL"
    "NAME;AT;HIT;WORKING_DIRECTORY;STDIN;EXPECTED_OUTPUT;EXIT_CODE"
    "COMMAND;DEPENDS;PASS_REGULAR_EXPRESSION;FAIL_REGULAR_EXPRESSION;LABELS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${fn}: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  _esky_check_name(${fn} "${arg_NAME}")
  _esky_tools(${fn})
  _esky_spec_from_args(${fn})
  _esky_resume_options(${fn})
  add_test(NAME "${arg_NAME}"
    COMMAND "${CMAKE_COMMAND}" -DESKY_MODE=both "-DESKY_SPEC=${spec}" ${_esky_args}
            -P "${_esky_driver}")
  _esky_resume_properties("${arg_NAME}")
endfunction()
