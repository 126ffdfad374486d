# Every dependency comes from a Debian package, found through its CMake config
# or pkg-config. Nothing is downloaded or vendored. scripts/setup.sh installs them.
# mercado_choice(<var> <default> <doc> <choice>...): a cache string that must be one of the
# choices (cmake-gui lists them); any other value stops the configure step.
function(mercado_choice var default doc)
  list(JOIN ARGN " or " _choices)
  set(${var} ${default} CACHE STRING "${doc}: ${_choices}")
  set_property(CACHE ${var} PROPERTY STRINGS ${ARGN})
  if(NOT ${var} IN_LIST ARGN)
    message(FATAL_ERROR "${var} must be ${_choices}, not '${${var}}'")
  endif()
endfunction()

find_package(Threads REQUIRED)
find_package(Boost 1.81.0 EXACT REQUIRED CONFIG COMPONENTS json url)
find_package(fmt REQUIRED CONFIG)
find_package(spdlog REQUIRED CONFIG)
find_package(CLI11 REQUIRED CONFIG)
find_package(PkgConfig REQUIRED)

if(MERCADO_BUILD_TESTS AND NOT MERCADO_FUZZ)
  find_package(GTest REQUIRED CONFIG)
endif()
if(MERCADO_BUILD_BENCH AND NOT MERCADO_FUZZ)
  find_package(benchmark REQUIRED CONFIG)
endif()

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

# The allocator of every Mercado executable: jemalloc (Debian's libjemalloc-dev) unless a
# sanitizer build needs the system's (ASan, TSan and libFuzzer replace malloc themselves).
# In the shop it halves the CPU spent in malloc/free (glibc's was 7-8 % of all samples);
# bench/RESULTS.md has the A/B runs.
if(MERCADO_SANITIZE OR MERCADO_FUZZ)
  set(_default_allocator system)
else()
  set(_default_allocator jemalloc)
endif()
mercado_choice(MERCADO_ALLOCATOR ${_default_allocator} "Allocator of the executables" jemalloc system)
if(MERCADO_ALLOCATOR STREQUAL "jemalloc")
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
endif()

# The io backend of Asio in every Mercado target: epoll (the default) or io_uring (Debian's
# liburing-dev). With io_uring a keep-alive request costs 0.2-0.3 system calls instead of 2.7
# (reads that would find nothing and every send become ring entries submitted in batches;
# each ring is cut from Asio's 16 384 entries to 1 024, libs/core/src/io_uring_ring.cpp, so
# it costs ~0.1 MiB instead of 1.6). epoll stays the default: io_uring's throughput gain
# in bench/http was 0-10 % from run to run, and container runtimes' default seccomp
# profiles block io_uring (bench/RESULTS.md, "io_uring"). Where io_uring is disabled or
# blocked, an io_uring build stops at start with an error that says so (core::IoRuntime).
mercado_choice(MERCADO_IO_BACKEND epoll "Asio's io backend" epoll io_uring)
if(MERCADO_IO_BACKEND STREQUAL "io_uring")
  pkg_check_modules(URING REQUIRED IMPORTED_TARGET liburing)
endif()

# Storage and messaging (libs/storage, libs/messaging): SQLite, libpq, rabbitmq-c.
find_package(SQLite3 REQUIRED)
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
find_package(rabbitmq-c REQUIRED CONFIG)

# libpq and rabbitmq-c are loaded at run time, when a PostgreSQL database or a RabbitMQ broker
# is first used (core::SharedLibrary; see libs/storage/src/libpq.hpp): services on the
# embedded SQLite defaults never map them nor OpenSSL, GnuTLS, Kerberos and LDAP behind them.
# The libraries compile against the headers only; the sonames come from the files found here.
# (Tests and benchmarks that talk to the servers directly still link them.)
file(REAL_PATH "${PQ_LINK_LIBRARIES}" _mercado_libpq_file)
get_filename_component(_mercado_libpq_name "${_mercado_libpq_file}" NAME)
string(REGEX MATCH "^libpq\\.so\\.[0-9]+" MERCADO_LIBPQ_SONAME "${_mercado_libpq_name}")
if(NOT MERCADO_LIBPQ_SONAME)
  message(FATAL_ERROR "cannot tell libpq's soname from ${_mercado_libpq_file}")
endif()
add_library(mercado_libpq_runtime INTERFACE)
target_include_directories(mercado_libpq_runtime SYSTEM INTERFACE ${PQ_INCLUDE_DIRS})
target_compile_definitions(mercado_libpq_runtime INTERFACE MERCADO_LIBPQ_SONAME="${MERCADO_LIBPQ_SONAME}")

get_target_property(MERCADO_RABBITMQ_SONAME rabbitmq::rabbitmq IMPORTED_SONAME_NONE)
if(NOT MERCADO_RABBITMQ_SONAME)
  get_target_property(_mercado_rabbitmq_file rabbitmq::rabbitmq LOCATION)
  file(REAL_PATH "${_mercado_rabbitmq_file}" _mercado_rabbitmq_file)
  get_filename_component(_mercado_rabbitmq_name "${_mercado_rabbitmq_file}" NAME)
  string(REGEX MATCH "^librabbitmq\\.so\\.[0-9]+" MERCADO_RABBITMQ_SONAME "${_mercado_rabbitmq_name}")
endif()
if(NOT MERCADO_RABBITMQ_SONAME)
  message(FATAL_ERROR "cannot tell rabbitmq-c's soname from the rabbitmq::rabbitmq target")
endif()
get_target_property(_mercado_rabbitmq_includes rabbitmq::rabbitmq INTERFACE_INCLUDE_DIRECTORIES)
add_library(mercado_rabbitmq_runtime INTERFACE)
target_include_directories(mercado_rabbitmq_runtime SYSTEM INTERFACE ${_mercado_rabbitmq_includes})
target_compile_definitions(mercado_rabbitmq_runtime INTERFACE MERCADO_RABBITMQ_SONAME="${MERCADO_RABBITMQ_SONAME}")
message(STATUS "Loaded at run time: ${MERCADO_LIBPQ_SONAME}, ${MERCADO_RABBITMQ_SONAME}")
