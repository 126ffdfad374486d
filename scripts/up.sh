#!/usr/bin/env bash
# Installs what is missing, builds (release preset) and runs the shop: the five services on
# loopback (ports 8001-8005), one SQLite file each and the SQLite event bus under
# ./mercado-data, supervised by `mercado up`. Ctrl-C stops everything gracefully.
# Extra arguments go to `mercado up` (see --help), e.g. scripts/up.sh --base-port 9001.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
exec ./build/release/bin/mercado up --data-dir "${MERCADO_DATA_DIR:-mercado-data}" "$@"
