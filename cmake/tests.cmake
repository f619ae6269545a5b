# Every suite runs through ctest: cmocka (tests/c), busted (tests/lua),
# integration tests on the real binary (tests/integration), fuzz (clang).
if(NOT CMOCKA_FOUND)
  message(FATAL_ERROR "cmocka not found: run 'make deps' (installs libcmocka-dev)")
endif()

file(GLOB C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/c/test_*.c)
# The store suites run twice, whatever the machine running them has: with
# the rollup builder on a thread of its own (TE_ROLLUP_THREAD=1, the
# default on more than one core) and on the writer's (0, one core).
set(TE_BOTH_BUILDERS test_rollup test_store test_retention)
foreach(src IN LISTS C_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE te_core PkgConfig::CMOCKA te_warnings)
  if(name IN_LIST TE_BOTH_BUILDERS)
    foreach(mode 1 0)
      add_test(NAME c/${name}_thread${mode} COMMAND ${name})
      set_tests_properties(c/${name}_thread${mode} PROPERTIES LABELS unit TIMEOUT 60
        ENVIRONMENT "TE_SOURCE_DIR=${CMAKE_SOURCE_DIR};TE_ROLLUP_THREAD=${mode}")
    endforeach()
  else()
    add_test(NAME c/${name} COMMAND ${name})
    set_tests_properties(c/${name} PROPERTIES LABELS unit TIMEOUT 60
      ENVIRONMENT "TE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  endif()
endforeach()

# Integration tests: a small harness (tests/integration/harness.c) starts
# the real binary on ephemeral loopback ports with a temporary data dir.
file(GLOB IT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/it_*.c)
file(GLOB IT_HARNESS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/harness*.c)
foreach(src IN LISTS IT_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} ${IT_HARNESS})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/integration)
  target_link_libraries(${name} PRIVATE te_core PkgConfig::CMOCKA te_warnings)
  add_test(NAME integration/${name} COMMAND ${name})
  set_tests_properties(integration/${name} PROPERTIES LABELS integration TIMEOUT 180
    ENVIRONMENT "TE_BIN=$<TARGET_FILE:telemetry-engine>;TE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endforeach()

find_program(BUSTED busted)
if(CMAKE_BUILD_TYPE STREQUAL "Asan")
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
    OUTPUT_VARIABLE ASAN_RT OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()
file(GLOB LUA_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/lua/*_spec.lua)
foreach(spec IN LISTS LUA_SPECS)
  get_filename_component(name ${spec} NAME_WE)
  if(NOT BUSTED)
    message(FATAL_ERROR "busted not found: run 'make deps' (installs lua-busted)")
  endif()
  add_test(NAME lua/${name} COMMAND ${BUSTED} --lua=lua5.4 --cpath=${CMAKE_BINARY_DIR}/lua/?.so
    --lpath=${CMAKE_SOURCE_DIR}/lua/lib/?.lua ${spec}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(lua/${name} PROPERTIES LABELS lua TIMEOUT 60
    ENVIRONMENT "TE_BIN=$<TARGET_FILE:telemetry-engine>;TE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  if(CMAKE_BUILD_TYPE STREQUAL "Asan")  # te.so is instrumented, lua5.4 is not
    set_property(TEST lua/${name} APPEND PROPERTY ENVIRONMENT
      LD_PRELOAD=${ASAN_RT} ASAN_OPTIONS=detect_leaks=0)
  endif()
endforeach()

# libFuzzer targets run for a bounded time when clang is present.
find_program(CLANG_BIN clang)
file(GLOB FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
if(CLANG_BIN)
  foreach(src IN LISTS FUZZ_TARGETS)
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME fuzz/${name}
      COMMAND ${CMAKE_SOURCE_DIR}/cmake/run_fuzz.sh ${CLANG_BIN} ${src}
              ${CMAKE_BINARY_DIR}/fuzz ${CMAKE_SOURCE_DIR})
    set_tests_properties(fuzz/${name} PROPERTIES LABELS fuzz TIMEOUT 120)
  endforeach()
endif()
