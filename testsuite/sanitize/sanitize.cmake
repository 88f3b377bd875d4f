# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer
# (-DESKY_SANITIZE=ON; included last by the top CMakeLists.txt, once every
# test exists). Two pieces:
#
# - env.cmake.in, read by ctest before it runs any test (TEST_INCLUDE_FILES
#   of the top directory), empties the report folder and puts the
#   sanitizers' options in ctest's own environment, which every test and
#   every process of it inherits: esky started by a shell script, esky-shell
#   started by tmux, the esky under esky-testrun --user. (CMake 3.25 cannot
#   set a property on the tests of another directory, and a test's
#   ENVIRONMENT would have to be repeated in each of them.)
# - sanitize.reports, run after every other test (DEPENDS on all of them),
#   fails when a sanitized process wrote a report, and prints it. Reports go
#   to files, not to stderr, because a report must not get lost where a
#   test throws stderr away or does not look at an exit status (a
#   background monitor killed at the end, a child process of esky-shell).
if(NOT ESKY_SANITIZE)
  return()
endif()

set(ESKY_SANITIZE_REPORTS ${CMAKE_BINARY_DIR}/sanitizer-reports)
configure_file(${CMAKE_CURRENT_LIST_DIR}/env.cmake.in
  ${CMAKE_BINARY_DIR}/sanitize-env.cmake @ONLY)
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY
  TEST_INCLUDE_FILES ${CMAKE_BINARY_DIR}/sanitize-env.cmake)

# _esky_tests_under(DIR OUT): the names of the tests of DIR and of every
# directory below it.
function(_esky_tests_under dir out)
  get_property(_tests DIRECTORY ${dir} PROPERTY TESTS)
  get_property(_subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(_d ${_subdirs})
    _esky_tests_under(${_d} _sub)
    list(APPEND _tests ${_sub})
  endforeach()
  set(${out} ${_tests} PARENT_SCOPE)
endfunction()
_esky_tests_under(${PROJECT_SOURCE_DIR} _esky_all_tests)

add_test(NAME sanitize.reports
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/reports.sh ${ESKY_SANITIZE_REPORTS})
set_tests_properties(sanitize.reports PROPERTIES
  DEPENDS "${_esky_all_tests}" LABELS sanitize TIMEOUT 30)
