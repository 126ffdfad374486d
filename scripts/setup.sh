#!/usr/bin/env bash
# Installs the Debian packages Mercado needs, idempotently: when every package is
# already installed it does nothing (no apt-get update, no network).
#   scripts/setup.sh            build + run dependencies
#   scripts/setup.sh test       + what the tests need (promtool, clang/libFuzzer)
#   scripts/setup.sh bench      + what the benchmarks need (nginx, wrk, perf)
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-all-dev libboost-json1.81-dev libboost-url1.81-dev
  libspdlog-dev libfmt-dev libcli11-dev libssl-dev
  libsqlite3-dev libpq-dev librabbitmq-dev libyaml-cpp-dev libsodium-dev libjemalloc-dev liburing-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl
)
test_pkgs=(prometheus clang-16 libclang-rt-16-dev postgresql-15 rabbitmq-server)
bench_pkgs=(nginx wrk linux-perf valgrind)

want=("${build_pkgs[@]}")
for extra in "$@"; do
  case "$extra" in
    test) want+=("${test_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    *) echo "setup.sh: unknown set '$extra' (use: test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup.sh: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
