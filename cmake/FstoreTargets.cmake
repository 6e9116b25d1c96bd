# cmake/FstoreTargets.cmake - warning flags and test registration shared by every module.

# fstore_warnings(TARGET): the house warning set, on our own targets only (never generated code).
function(fstore_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
    -Wno-missing-field-initializers)
  if(FSTORE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

# Sanitizer and Criterion failure lines. Criterion 2.4.1 reports a test as passing even when
# LeakSanitizer or UBSan complained in its worker, so ctest scans the output instead.
set(FSTORE_FAIL_REGEX
  "ERROR: AddressSanitizer;ERROR: LeakSanitizer;runtime error:;SUMMARY: UndefinedBehaviorSanitizer"
  CACHE INTERNAL "")

# fstore_test_suite(NAME SOURCES... LIBS ...): one Criterion executable per module.
function(fstore_test_suite name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  fstore_warnings(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CRITERION Threads::Threads)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  # -j2: the CI machine has two cores. No --full-stats: it sends every passing assertion to the
  # runner over Criterion's pipe, and the suites that check millions of parsed values against
  # libc took 50x longer with it (test_server 210 s instead of 4 s under ASan).
  add_test(NAME ${name} COMMAND ${name} -j2)
  set_tests_properties(${name} PROPERTIES
    FAIL_REGULAR_EXPRESSION "${FSTORE_FAIL_REGEX}"
    TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1;FSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};FSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# fstore_fuzz_test(NAME SCRIPT): a libFuzzer runner script (it builds its own target with clang,
# no build tree needed) as a ctest entry, where clang is installed.
find_program(FSTORE_CLANG NAMES clang clang-14)
function(fstore_fuzz_test name script)
  if(NOT FSTORE_CLANG)
    return()
  endif()
  add_test(NAME ${name} COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/${script}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES
    FAIL_REGULAR_EXPRESSION "${FSTORE_FAIL_REGEX}"
    TIMEOUT 600
    ENVIRONMENT "CC=${FSTORE_CLANG};FSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};FSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
