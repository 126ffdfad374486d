#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, `fuzz` preset) and runs each for a while.
#   scripts/fuzz.sh [seconds-per-target]   (default 30)
# Seeds come from fuzz/corpus/<target>; new findings stay in build/fuzz/corpus-work.
# A crash fails the script and leaves the reproducer in build/fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
targets=(http_request_fuzz)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${targets[@]}"
mkdir -p build/fuzz/artifacts
for t in "${targets[@]}"; do
  name=${t%_fuzz}
  work=build/fuzz/corpus-work/$name
  mkdir -p "$work"
  echo "fuzz: $t for ${seconds}s"
  ./build/fuzz/fuzz/$t -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix=build/fuzz/artifacts/ "$work" "fuzz/corpus/$name" 2>&1 | tail -n 12
done
