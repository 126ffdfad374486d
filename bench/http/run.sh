#!/usr/bin/env bash
# HTTP server benchmark: Mercado's sample service against nginx on loopback.
#   bench/http/run.sh [rounds=3] [duration=10s]
# Builds the release preset, starts nginx (2 workers, `return 200` with the same JSON
# body) and hello-service (access log off, like nginx), runs `wrk -t2 -c64 -d10s --latency`
# against each, interleaved, and prints req/s, p50/p99 and the Mercado/nginx ratios; then
# the service's idle RSS and exec->/ready time (bench/http/startup_probe).
#   IO_BACKEND=io_uring bench/http/run.sh ...   the same with Mercado built on Asio's io_uring
#   backend (build/release-io_uring; docs/http.md, "The io backend")
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
duration=${2:-10s}
scripts/setup.sh bench
backend=${IO_BACKEND:-epoll}
case "$backend" in
  epoll) build=build/release; cmake --preset release -DMERCADO_IO_BACKEND=epoll >/dev/null ;;
  io_uring) build=build/release-io_uring
    cmake --preset release -B "$build" -DMERCADO_IO_BACKEND=io_uring >/dev/null ;;
  *) echo "IO_BACKEND must be epoll or io_uring" >&2; exit 2 ;;
esac
cmake --build "$build" --target hello-service startup_probe >"$(mktemp)" || { echo "build failed"; exit 1; }
# The build leaves hundreds of MB of dirty pages that the kernel writes back ~30 s later, in
# the middle of the run: the services' fsyncs then queue behind it (stalls of 250-300 ms in
# the first run after a rebuild). Write them now, before anything is measured.
sync

work=$(mktemp -d)
cleanup() {
  [[ -n "${svc_pid:-}" ]] && kill "$svc_pid" 2>/dev/null || true
  [[ -f "$work/nginx.pid" ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
nginx_port=$(free_port)
svc_port=$(free_port)
mkdir -p "$work"/{body,proxy,fastcgi,uwsgi,scgi}
sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$nginx_port|g" bench/http/nginx.conf.in > "$work/nginx.conf"
nginx -p "$work" -c "$work/nginx.conf" &
io_threads=${IO_THREADS:-2}
# wrk shares the two cores with the service: io threads give way after 1024 handlers without
# blocking (--io-yield-every; see libs/core/src/io_runtime.cpp), so that a wrk thread waiting
# for the CPU does not wait for a timer tick. IO_YIELD_EVERY=0 to compare; 256 (the setting
# until 2026-11-27) kept p99 lower and gave 2-7 % less throughput (bench/RESULTS.md).
io_yield=${IO_YIELD_EVERY:-1024}
echo "hello-service: IO_THREADS=$io_threads IO_YIELD_EVERY=$io_yield, $backend"
PORT=$svc_port ACCESS_LOG=0 LOG_LEVEL=warn IO_THREADS=$io_threads IO_YIELD_EVERY=$io_yield \
  ./$build/samples/hello-service/hello-service &
svc_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$svc_port/ready" >/dev/null && curl -sf "http://127.0.0.1:$nginx_port/" >/dev/null && break
  sleep 0.1
done
echo "bodies: nginx=$(curl -s http://127.0.0.1:$nginx_port/hello/bench)  mercado=$(curl -s http://127.0.0.1:$svc_port/hello/bench)"

# Prints "req/s p50_ms p99_ms" for one wrk run.
run_wrk() {
  wrk -t2 -c64 -d"$duration" --latency "$1" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    END { printf "%.0f %.3f %.3f\n", rps, p50, p99 }'
}

printf "%-6s %-8s %12s %9s %9s\n" round server "req/s" "p50 ms" "p99 ms"
declare -a n_rps m_rps n_p99 m_p99 n_p50 m_p50
for r in $(seq "$rounds"); do
  read -r rps p50 p99 < <(run_wrk "http://127.0.0.1:$nginx_port/hello/bench")
  n_rps+=("$rps"); n_p50+=("$p50"); n_p99+=("$p99")
  printf "%-6s %-8s %12s %9s %9s\n" "$r" nginx "$rps" "$p50" "$p99"
  read -r rps p50 p99 < <(run_wrk "http://127.0.0.1:$svc_port/hello/bench")
  m_rps+=("$rps"); m_p50+=("$p50"); m_p99+=("$p99")
  printf "%-6s %-8s %12s %9s %9s\n" "$r" mercado "$rps" "$p50" "$p99"
done
svc_rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$svc_pid/status")
python3 - "${n_rps[*]}" "${m_rps[*]}" "${n_p50[*]}" "${m_p50[*]}" "${n_p99[*]}" "${m_p99[*]}" <<'PY'
import sys, statistics as st
n, m, n50, m50, n99, m99 = ([float(x) for x in a.split()] for a in sys.argv[1:7])
print(f"mean   nginx   {st.mean(n):12.0f} {st.mean(n50):9.3f} {st.mean(n99):9.3f}")
print(f"mean   mercado {st.mean(m):12.0f} {st.mean(m50):9.3f} {st.mean(m99):9.3f}")
print(f"ratio mercado/nginx: req/s {st.mean(m)/st.mean(n):.2f}x   p99 {st.mean(m99)/st.mean(n99):.2f}x   (goal: >= 1.0x req/s, p99 <= 1.5x)")
PY
echo "mercado RSS after load: ${svc_rss} MiB"
kill "$svc_pid"; wait "$svc_pid" 2>/dev/null || true; svc_pid=
./$build/bench/http/startup_probe 9 ./$build/samples/hello-service/hello-service | tail -n 1
