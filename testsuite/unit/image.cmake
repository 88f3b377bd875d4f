# image: the image reader and writer alone (round trip, every kind of
# damage and its message). Included from testsuite/unit/CMakeLists.txt.
add_executable(image_test ${CMAKE_CURRENT_LIST_DIR}/image_test.c)
target_link_libraries(image_test PRIVATE esky_core)
target_compile_options(image_test PRIVATE ${ESKY_WARNINGS})
esky_sanitize(image_test)
add_test(NAME unit.image COMMAND image_test)
set_tests_properties(unit.image PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 60 LABELS unit)
# Under ESKY_SANITIZE each of its ~4200 forks (one per damaged image) copies
# ASan's shadow mappings: 1.7 ms a fork, ~20 s alone, more than 60 s beside
# other tests on 2 cores.
if(ESKY_SANITIZE)
  set_tests_properties(unit.image PROPERTIES TIMEOUT 240)
endif()
if(ESKY_VALGRIND)
  add_test(NAME unit.image.valgrind
    COMMAND ${ESKY_VALGRIND} ${ESKY_VALGRIND_ARGS} $<TARGET_FILE:image_test> --quick)
  set_tests_properties(unit.image.valgrind PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "unit;valgrind")
endif()
