# Helpers that give every Mercado target the same warnings, sanitizers and layout.

add_library(mercado_build_flags INTERFACE)
target_compile_options(mercado_build_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough
  -Wno-missing-field-initializers  # designated initializers for option structs are idiomatic here
  -Wno-mismatched-new-delete       # GCC 12 false positive on Asio coroutine frames (operator new/delete pair)
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>  # GCC 12 false positives at -O2 on std::variant/std::optional moves
  $<$<BOOL:${MERCADO_WERROR}>:-Werror>)
# Asio: no deprecated APIs, no Boost.System exceptions in headers.
target_compile_definitions(mercado_build_flags INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_BOOST_COROUTINE
  BOOST_ENABLE_ASSERT_HANDLER  # see libs/core/src/boost_assert.cpp
  # Asio keeps freed coroutine frames per thread for reuse; 2 (the default) is too few for a
  # handler that awaits a ServiceClient call (pipeline + client frames), so those allocated.
  BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE=8)
# Asio's backend (MERCADO_IO_BACKEND): every translation unit that includes Asio must agree,
# so it is set here, on the flags every Mercado target links.
if(MERCADO_IO_BACKEND STREQUAL "io_uring")
  target_compile_definitions(mercado_build_flags INTERFACE BOOST_ASIO_HAS_IO_URING BOOST_ASIO_DISABLE_EPOLL)
  target_link_libraries(mercado_build_flags INTERFACE PkgConfig::URING)
  # Asio's ring size, overridden (libs/core/src/io_uring_ring.cpp).
  target_link_options(mercado_build_flags INTERFACE "-Wl,--wrap=io_uring_queue_init")
endif()
# jemalloc replaces malloc by being linked (no symbol of it is referenced): keep it even
# where the linker drops unreferenced libraries. An executable with the property
# MERCADO_SYSTEM_ALLOCATOR keeps glibc's (bench/resilience counts allocations by
# interposing glibc's malloc, which jemalloc's own operator new would bypass).
if(MERCADO_ALLOCATOR STREQUAL "jemalloc")
  set(_jemalloc "$<NOT:$<BOOL:$<TARGET_PROPERTY:MERCADO_SYSTEM_ALLOCATOR>>>")
  target_link_libraries(mercado_build_flags INTERFACE "$<${_jemalloc}:-Wl,--push-state,--no-as-needed>"
                        "$<${_jemalloc}:PkgConfig::JEMALLOC>" "$<${_jemalloc}:-Wl,--pop-state>")
endif()
if(MERCADO_SANITIZE)
  list(JOIN MERCADO_SANITIZE "," _san)
  target_compile_options(mercado_build_flags INTERFACE -fsanitize=${_san} -fno-omit-frame-pointer
    -fno-sanitize-recover=all)
  target_link_options(mercado_build_flags INTERFACE -fsanitize=${_san})
endif()

# mercado_library(<name> SOURCES ... DEPS ...)
#   libs/<name>/include is public; the target is mercado_<name>, alias mercado::<name>.
function(mercado_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target mercado_${name})
  if(ARG_SOURCES)
    add_library(${target} STATIC ${ARG_SOURCES})
    target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                         PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_link_libraries(${target} PUBLIC ${ARG_DEPS} mercado_build_flags PRIVATE ${ARG_PRIVATE_DEPS})
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(${target} INTERFACE ${ARG_DEPS} mercado_build_flags)
  endif()
  add_library(mercado::${name} ALIAS ${target})
endfunction()

# mercado_test(<name> SOURCES ... DEPS ... [LABELS ...] [SERIAL])
#   One GoogleTest executable; every TEST becomes a CTest test.
function(mercado_test name)
  if(NOT MERCADO_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "SERIAL" "TIMEOUT" "SOURCES;DEPS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main
                                        mercado_build_flags)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  set(props TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}" ${ARG_PROPERTIES})
  if(ARG_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST TEST_PREFIX "${name}."
                       PROPERTIES ${props})
endfunction()
