# tree: process tree files (one image per process behind a table) alone:
# writing, reading the root and each member, every kind of damage and its
# message. Included from testsuite/unit/CMakeLists.txt.
add_executable(tree_test ${CMAKE_CURRENT_LIST_DIR}/tree_test.c)
target_link_libraries(tree_test PRIVATE esky_core)
target_compile_options(tree_test PRIVATE ${ESKY_WARNINGS})
esky_sanitize(tree_test)
add_test(NAME unit.tree COMMAND tree_test)
set_tests_properties(unit.tree PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS unit)
if(ESKY_VALGRIND)
  add_test(NAME unit.tree.valgrind
    COMMAND ${ESKY_VALGRIND} ${ESKY_VALGRIND_ARGS} $<TARGET_FILE:tree_test>)
  set_tests_properties(unit.tree.valgrind PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 180 LABELS "unit;valgrind")
endif()
