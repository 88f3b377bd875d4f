# One test case of regress run plainly, set-up included:
#   cmake -DPROGRAM=... -DARGS=... -DSTDIN=... -DEXPECTED_OUTPUT=...
#         -DEXIT_CODE=... -DOUTPUT_FILE=... -P run-plain.cmake
# Passes when the exit status is EXIT_CODE and the standard output is
# EXPECTED_OUTPUT's contents.
cmake_minimum_required(VERSION 3.20)
get_filename_component(dir "${OUTPUT_FILE}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
execute_process(COMMAND "${PROGRAM}" ${ARGS}
  INPUT_FILE "${STDIN}" OUTPUT_FILE "${OUTPUT_FILE}" RESULT_VARIABLE rc)
execute_process(COMMAND "${CMAKE_COMMAND}" -E cat "${OUTPUT_FILE}")
if(NOT rc STREQUAL EXIT_CODE)
  message(FATAL_ERROR "exit status ${rc}, expected ${EXIT_CODE}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${EXPECTED_OUTPUT}" "${OUTPUT_FILE}"
  RESULT_VARIABLE same)
if(NOT same STREQUAL "0")
  message(FATAL_ERROR "the output (${OUTPUT_FILE}) differs from ${EXPECTED_OUTPUT}")
endif()
