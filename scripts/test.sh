#!/usr/bin/env bash
# Installs what is missing, builds (dev preset: debug, warnings as errors) and runs every
# test: the CTest suites (unit, integration against real servers on loopback, end-to-end
# with real processes) and then each libFuzzer target briefly.
#   scripts/test.sh            everything
#   FUZZ_SECONDS=0 scripts/test.sh   skip fuzzing
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
fuzz_seconds=${FUZZ_SECONDS:-20}
if [[ "$fuzz_seconds" != 0 ]]; then
  scripts/fuzz.sh "$fuzz_seconds"
fi
echo "test.sh: all tests passed"
