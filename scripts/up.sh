#!/usr/bin/env bash
# Installs what is missing, builds (release preset) and runs the system on loopback.
# Today the system is the sample service; Ctrl-C stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
port=${PORT:-8000}
echo
echo "hello-service: http://127.0.0.1:${port}"
echo "  try: curl http://127.0.0.1:${port}/hello/Ana"
echo "       curl http://127.0.0.1:${port}/health   /ready   /metrics"
echo
exec ./build/release/samples/hello-service/hello-service --port "$port" "$@"
