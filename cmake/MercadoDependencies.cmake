# Every dependency comes from a Debian package, found through its CMake config
# or pkg-config. Nothing is downloaded or vendored. scripts/setup.sh installs them.
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

# Storage and messaging (libs/storage, libs/messaging): SQLite, libpq, rabbitmq-c.
find_package(SQLite3 REQUIRED)
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
find_package(rabbitmq-c REQUIRED CONFIG)
