#!/usr/bin/env bash
# Installs what is missing, builds (dev preset: debug, warnings as errors) and runs every
# test: the CTest suites (unit, integration against real servers on loopback, end-to-end
# with real processes) and then each libFuzzer target briefly.
#   scripts/test.sh            everything
#   FUZZ_SECONDS=0 scripts/test.sh   skip fuzzing
#   IO_URING_LEG=0 scripts/test.sh   skip the io_uring build's tests
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cmake --preset dev
cmake --build --preset dev
# Test servers (PostgreSQL, RabbitMQ) on loopback with throwaway data directories; their
# URLs are exported for the tests and they are stopped on exit.
if [[ -x scripts/test-servers.sh ]]; then
  eval "$(scripts/test-servers.sh start)"
  trap 'scripts/test-servers.sh stop' EXIT
fi
ctest --preset dev
# The io_uring backend (an option; the default build is on epoll): a second build of the
# io runtime's tests (among them a host where io_uring is blocked, by a seccomp filter), the
# HTTP tests and the `mercado` command's refusal on such a host. Skipped, with a notice,
# where this host itself blocks io_uring (e.g. a container's default seccomp profile).
if [[ "${IO_URING_LEG:-1}" != 0 ]]; then
  cmake --preset io_uring
  cmake --build --preset io_uring --target core_test http_test mercado_io_uring_test
  probe=$(build/io_uring/libs/core/core_test --gtest_filter='IoRuntime.EachContextRunsOnItsOwnThread' 2>&1 || true)
  if grep -q 'io_uring is not available here' <<<"$probe"; then
    echo "test.sh: io_uring is blocked on this host; the io_uring leg is skipped"
  else
    ctest --preset io_uring -R '^(core_test|http_test|mercado_io_uring_test)\.'
  fi
fi
fuzz_seconds=${FUZZ_SECONDS:-20}
if [[ "$fuzz_seconds" != 0 ]]; then
  scripts/fuzz.sh "$fuzz_seconds"
fi
echo "test.sh: all tests passed"
