# The tests of EskySnapshotTest.cmake run this script:
#
#   cmake -DESKY_MODE=take -DESKY_SPEC=<CMakeFiles/esky/NAME-CONFIG.cmake> -P esky-snapshot-driver.cmake
#   cmake -DESKY_MODE=resume|both -DESKY_SPEC=... -DESKY_TEST=<name>
#         -DESKY_STDIN=<file or empty> -DESKY_EXPECTED_OUTPUT=<file or empty>
#         -DESKY_EXIT_CODE=<n> -DESKY_OUTPUT_FILE=<file> -P esky-snapshot-driver.cmake
#
# take: make sure ESKY_SNAPSHOT_DIR/snapshot.ckpt is a checkpoint that would
# resume, of ESKY_COMMAND at ESKY_AT: reuse it when `esky check` passes and
# snapshot.stamp records the same command, location, hit and directory;
# otherwise say why and take it again with `esky snap` into a new directory,
# then rename it into place (an interrupted run leaves the old snapshot or
# none, never half of one). resume: run `esky resume` on it with ESKY_STDIN
# and check the exit status and the output. both: take, then resume.
#
# It exits 0 when all is well and 1 otherwise, after one line that says why.
cmake_minimum_required(VERSION 3.20)

# One line, unwrapped (message(FATAL_ERROR) wraps and adds a call stack),
# then exit 1.
function(_esky_fail text)
  message("${text}")
  if(CMAKE_VERSION VERSION_LESS 3.29)
    message(FATAL_ERROR "esky-snapshot: FAILED (the reason is above)")
  endif()
  cmake_language(EXIT 1)
endfunction()

if(NOT ESKY_SPEC OR NOT EXISTS "${ESKY_SPEC}")
  _esky_fail("esky-snapshot: no snapshot description '${ESKY_SPEC}': run cmake again on the project (its generate step writes it)")
endif()
include("${ESKY_SPEC}")
set(snapshot "${ESKY_SNAPSHOT_DIR}/snapshot.ckpt")
set(stamp "${ESKY_SNAPSHOT_DIR}/snapshot.stamp")

# Milliseconds since the epoch (%f, microseconds, is CMake 3.23's).
function(_now_ms out)
  if(CMAKE_VERSION VERSION_LESS 3.23)
    string(TIMESTAMP s "%s" UTC)
    math(EXPR ms "${s} * 1000")
  else()
    string(TIMESTAMP t "%s %f" UTC)
    string(REPLACE " " ";" t "${t}")
    list(GET t 0 s)
    list(GET t 1 us)
    string(REGEX REPLACE "^0+([0-9])" "\\1" us "${us}")
    math(EXPR ms "${s} * 1000 + ${us} / 1000")
  endif()
  set(${out} ${ms} PARENT_SCOPE)
endfunction()

# What the snapshot was taken of; a change in it makes the snapshot stale
# even when the program did not change (another argument, another line).
string(JOIN " " command ${ESKY_COMMAND})
set(want "at ${ESKY_AT}\nhit ${ESKY_HIT}\ndirectory ${ESKY_WORKING_DIRECTORY}\ncommand ${command}\n")

function(esky_take)
  set(who "esky-snapshot: ${ESKY_NAME}")
  set(why "")
  if(NOT EXISTS "${snapshot}")
    set(why "taking the snapshot: there is none yet")
  elseif(NOT EXISTS "${stamp}")
    set(why "taking the snapshot again: ${stamp} is missing")
  else()
    file(READ "${stamp}" had)
    if(NOT had STREQUAL want)
      string(REPLACE "\n" "; " had_line "${had}")
      string(REPLACE "\n" "; " want_line "${want}")
      string(CONCAT why "taking the snapshot again: it was taken with another command or "
        "location\n  was: ${had_line}\n  now: ${want_line}")
    else()
      execute_process(COMMAND "${ESKY_EXECUTABLE}" check -q "${snapshot}"
        RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
      if(rc STREQUAL "0")
        message("${who}: reusing ${snapshot} (esky check: it would resume)")
        return()
      endif()
      string(STRIP "${err}" err)
      if(err STREQUAL "")
        set(err "esky check exited with status ${rc}")
      endif()
      set(why "taking the snapshot again: ${err}")
    endif()
  endif()
  message("${who}: ${why}")

  # A directory of its own, so that esky snap finds no earlier checkpoints
  # and a run killed half-way leaves nothing under the snapshot's name.
  file(GLOB leftovers LIST_DIRECTORIES true "${ESKY_SNAPSHOT_DIR}/.take-*")
  if(leftovers)
    file(REMOVE_RECURSE ${leftovers})
  endif()
  string(RANDOM LENGTH 8 r)
  set(tmp "${ESKY_SNAPSHOT_DIR}/.take-${r}")
  file(MAKE_DIRECTORY "${tmp}")
  _now_ms(t0)
  # The program's output goes to the test's log; its stdin is empty: a
  # set-up that reads input before the snapshot point would freeze it.
  execute_process(
    COMMAND "${ESKY_EXECUTABLE}" snap -q --at "${ESKY_AT}" --count "${ESKY_HIT}" -o "${tmp}"
            -- ${ESKY_COMMAND}
    WORKING_DIRECTORY "${ESKY_WORKING_DIRECTORY}"
    INPUT_FILE /dev/null
    RESULT_VARIABLE rc)
  _now_ms(t1)
  file(GLOB taken LIST_DIRECTORIES false "${tmp}/*.ckpt")
  list(SORT taken)
  list(LENGTH taken n)
  if(n LESS ESKY_HIT)
    file(REMOVE_RECURSE "${tmp}")
    if(n EQUAL 0)
      set(what "no snapshot taken")
    else()
      set(what "${ESKY_AT} was reached ${n} time(s), not ${ESKY_HIT}")
    endif()
    if(NOT rc STREQUAL "0")
      string(APPEND what " (esky snap exited with status ${rc}: see its message above)")
    endif()
    _esky_fail("${who}: ${what}. Command: esky snap --at ${ESKY_AT} --count ${ESKY_HIT} -- ${command}")
  endif()
  list(GET taken -1 last)
  get_filename_component(esky_name "${last}" NAME)
  # The stamp goes first and comes back last: a snapshot without its stamp
  # is taken again.
  file(REMOVE "${stamp}")
  file(RENAME "${last}" "${snapshot}")
  file(WRITE "${stamp}.tmp" "${want}")
  file(RENAME "${stamp}.tmp" "${stamp}")
  file(REMOVE_RECURSE "${tmp}")
  math(EXPR ms "${t1} - ${t0}")
  math(EXPR s "${ms} / 1000")
  math(EXPR cs "${ms} % 1000 / 10")
  string(LENGTH "${cs}" l)
  if(l EQUAL 1)
    set(cs "0${cs}")
  endif()
  message("${who}: snapshot taken at ${ESKY_AT} (${esky_name}) in ${s}.${cs} s: ${snapshot}")
  if(NOT rc STREQUAL "0")
    message("${who}: note: after the snapshot, the program exited with status ${rc} "
      "(its stdin was /dev/null)")
  endif()
endfunction()

function(esky_resume)
  set(who "esky-snapshot: ${ESKY_TEST}")
  if(NOT EXISTS "${snapshot}")
    _esky_fail("${who}: no snapshot ${snapshot}: the test ${ESKY_NAME}.snapshot takes it (ctest runs it first, unless told not to with -FS or -FA)")
  endif()
  set(in "${ESKY_STDIN}")
  if(in STREQUAL "")
    set(in /dev/null)
  endif()
  get_filename_component(outdir "${ESKY_OUTPUT_FILE}" DIRECTORY)
  file(MAKE_DIRECTORY "${outdir}")
  execute_process(COMMAND "${ESKY_EXECUTABLE}" resume -q -f "${snapshot}"
    INPUT_FILE "${in}" OUTPUT_FILE "${ESKY_OUTPUT_FILE}" RESULT_VARIABLE rc)
  # The output in the test's log, for the eye and for PASS_REGULAR_EXPRESSION.
  execute_process(COMMAND "${CMAKE_COMMAND}" -E cat "${ESKY_OUTPUT_FILE}")

  set(failed "")
  if(NOT rc STREQUAL ESKY_EXIT_CODE)
    list(APPEND failed "exit status ${rc}, expected ${ESKY_EXIT_CODE}")
  endif()
  if(NOT ESKY_EXPECTED_OUTPUT STREQUAL "")
    execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files
      "${ESKY_EXPECTED_OUTPUT}" "${ESKY_OUTPUT_FILE}" RESULT_VARIABLE same)
    if(NOT same STREQUAL "0")
      list(APPEND failed
        "the output differs from ${ESKY_EXPECTED_OUTPUT} (the output is in ${ESKY_OUTPUT_FILE})")
      find_program(diff NAMES diff)
      if(diff)
        message("${who}: diff -u expected output:")
        execute_process(COMMAND "${diff}" -u "${ESKY_EXPECTED_OUTPUT}" "${ESKY_OUTPUT_FILE}")
      endif()
    endif()
  endif()
  if(failed)
    string(JOIN "; " failed ${failed})
    _esky_fail("${who}: resumed from ${snapshot}: ${failed}")
  endif()
endfunction()

if(ESKY_MODE STREQUAL "take")
  esky_take()
elseif(ESKY_MODE STREQUAL "resume")
  esky_resume()
elseif(ESKY_MODE STREQUAL "both")
  esky_take()
  esky_resume()
else()
  _esky_fail("esky-snapshot: ESKY_MODE '${ESKY_MODE}': take, resume or both")
endif()
