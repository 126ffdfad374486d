#!/usr/bin/env bash
# Real servers for the integration tests: PostgreSQL 15 and RabbitMQ 3.10 on loopback, with
# throwaway data directories and free ports. Installs nothing (scripts/setup.sh test does).
#
#   eval "$(scripts/test-servers.sh start)"   start both, wait until ready, print exports:
#       MERCADO_TEST_SERVERS_DIR      state directory (what stop / restart-rabbitmq need)
#       MERCADO_TEST_SERVERS_SCRIPT   absolute path of this script (tests call restart-rabbitmq)
#       MERCADO_TEST_POSTGRES_URL     postgres://postgres@127.0.0.1:PORT/postgres (trust auth)
#       MERCADO_TEST_AMQP_URL         amqp://guest:guest@127.0.0.1:PORT/%2f
#       MERCADO_REQUIRE_SERVERS=1     server-backed tests fail (not skip) without a URL
#   scripts/test-servers.sh stop [DIR]             SIGKILL everything, remove DIR
#   scripts/test-servers.sh restart-rabbitmq [DIR] SIGKILL the broker node and start it again
#       on the same port and data (durable queues and confirmed messages survive); returns
#       once it accepts connections again.
#   scripts/test-servers.sh stop-rabbitmq [DIR]   only the SIGKILL half (returns once the port
#       is closed); start-rabbitmq [DIR] the other half. The "broker restart mid-stream" test
#       uses them to keep publishing while the broker is down.
#   scripts/test-servers.sh status [DIR]
# DIR defaults to $MERCADO_TEST_SERVERS_DIR. Everything runs as documented in
# ../shared/design/machine-notes.md, plus a private epmd port and node name per instance so
# that several runs on one machine (parallel CI jobs, two engineers) never share an epmd or
# a node name, and `epmd -kill` only stops our own epmd.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
RABBIT_BIN=/usr/lib/rabbitmq/bin
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

log() { echo "test-servers: $*" >&2; }
die() { log "$*"; exit 1; }

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# A random free TCP port below the kernel's ephemeral range (net.ipv4.ip_local_port_range,
# 32768 by default) and not in $taken (space separated). The broker is restarted on its
# port: a port in the ephemeral range could meanwhile become the local port of some outgoing
# connection (or of a client's connection to itself, which Linux allows when it connects
# to a closed local port), and the restarted broker could not listen on it.
free_port() {
  local p low
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
  ((low > 12000)) || die "the ephemeral port range starts at $low: no room below it"
  for _ in $(seq 1 200); do
    p=$((low - 10000 + RANDOM % 10000))
    [[ " ${taken:-} " == *" $p "* ]] && continue
    port_in_use "$p" && continue
    taken="${taken:-} $p"
    echo "$p"
    return 0
  done
  die "no free port found"
}

state_dir() {
  local d=${1:-${MERCADO_TEST_SERVERS_DIR:-}}
  [[ -n "$d" ]] || die "no state directory (pass DIR or set MERCADO_TEST_SERVERS_DIR)"
  [[ -f "$d/state" ]] || die "$d is not a test-servers directory"
  echo "$d"
}

rabbit_env() {
  local d=$1
  # shellcheck disable=SC1091
  source "$d/state"
  export RABBITMQ_NODENAME="$RABBIT_NODE" RABBITMQ_CONFIG_FILE="$d/rabbitmq/rabbitmq.conf"
  export RABBITMQ_MNESIA_BASE="$d/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$d/rabbitmq/log"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$d/rabbitmq/enabled_plugins"
  export RABBITMQ_PID_FILE="$d/rabbitmq/rabbit.pid" ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT="$EPMD_PORT" RABBITMQ_DIST_PORT="$DIST_PORT" HOME="$d/rabbitmq"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

rabbit_start() {
  local d=$1
  (
    rabbit_env "$d"
    cd "$d/rabbitmq"
    setsid nohup "$RABBIT_BIN/rabbitmq-server" >>"$d/rabbitmq/out" 2>&1 </dev/null &
    echo $! >"$d/rabbitmq/launcher.pid"
    local deadline=$((SECONDS + 90))
    until "$RABBIT_BIN/rabbitmqctl" -q -n "$RABBIT_NODE" await_startup --timeout 60 >/dev/null 2>&1; do
      ((SECONDS < deadline)) || { tail -20 "$d/rabbitmq/out" >&2; exit 1; }
      sleep 0.2
    done
  ) || die "RabbitMQ did not start (see $d/rabbitmq/out)"
}

# SIGKILLs every process of our broker node (the launcher's session: the shell wrapper, the
# Erlang VM and its port programs) and our private epmd.
rabbit_kill() {
  local d=$1
  (
    rabbit_env "$d"
    if [[ -f "$d/rabbitmq/launcher.pid" ]]; then
      local sid
      sid=$(cat "$d/rabbitmq/launcher.pid")
      # setsid made the launcher a session leader: its pid is the session id, and the
      # Erlang VM and its port programs are in that session. Kill them by pid.
      local pids
      pids=$(ps -e -o pid=,sid= | awk -v s="$sid" '$2 == s {print $1}')
      [[ -z "$pids" ]] || kill -KILL $pids 2>/dev/null || true
      local deadline=$((SECONDS + 10))
      while ps -e -o sid= | grep -qx " *$sid" && ((SECONDS < deadline)); do sleep 0.05; done
      rm -f "$d/rabbitmq/launcher.pid"
    fi
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 10))
    while port_in_use "$AMQP_PORT" && ((SECONDS < deadline)); do sleep 0.05; done
  )
}

cmd_start() {
  [[ -x "$PGBIN/initdb" ]] || die "PostgreSQL 15 is not installed (run scripts/setup.sh test)"
  [[ -x "$RABBIT_BIN/rabbitmq-server" ]] || die "rabbitmq-server is not installed (run scripts/setup.sh test)"
  [[ $(id -u) -eq 0 ]] || die "must run as root (initdb runs as user postgres, see machine-notes)"

  local d pg_port amqp_port epmd_port dist_port node
  d=$(mktemp -d /tmp/mercado-test-servers.XXXXXX)
  chmod 755 "$d"
  trap 'cmd_stop "$d" >/dev/null 2>&1 || rm -rf "$d"' ERR
  taken=""
  pg_port=$(free_port); taken="$taken $pg_port"
  amqp_port=$(free_port); taken="$taken $amqp_port"
  epmd_port=$(free_port); taken="$taken $epmd_port"
  dist_port=$(free_port)
  node="rabbit-$(basename "$d" | cut -d. -f2 | tr 'A-Z' 'a-z')@localhost"
  cat >"$d/state" <<EOF
PG_PORT=$pg_port
AMQP_PORT=$amqp_port
EPMD_PORT=$epmd_port
DIST_PORT=$dist_port
RABBIT_NODE=$node
EOF

  # PostgreSQL 15 (machine-notes: initdb refuses root, so run it as postgres).
  mkdir -p "$d/pg"
  chown postgres "$d/pg"
  su postgres -c "$PGBIN/initdb -D $d/pg/data -U postgres --auth=trust -E UTF8 --no-locale" \
    >"$d/pg/initdb.log" 2>&1 || { cat "$d/pg/initdb.log" >&2; die "initdb failed"; }
  su postgres -c "$PGBIN/pg_ctl -D $d/pg/data -l $d/pg/log -o '-c listen_addresses=127.0.0.1 -p $pg_port -k $d/pg -c max_connections=200' -w start" \
    >/dev/null 2>&1 || { cat "$d/pg/log" >&2; die "PostgreSQL did not start"; }
  local deadline=$((SECONDS + 30))
  until pg_isready -q -h 127.0.0.1 -p "$pg_port"; do
    ((SECONDS < deadline)) || die "PostgreSQL is not ready"
    sleep 0.05
  done

  # RabbitMQ 3.10.
  mkdir -p "$d/rabbitmq/mnesia" "$d/rabbitmq/log"
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users.guest = true\n' "$amqp_port" \
    >"$d/rabbitmq/rabbitmq.conf"
  echo '[].' >"$d/rabbitmq/enabled_plugins"
  rabbit_start "$d"

  trap - ERR
  log "PostgreSQL on 127.0.0.1:$pg_port, RabbitMQ on 127.0.0.1:$amqp_port ($d)"
  cat <<EOF
export MERCADO_TEST_SERVERS_DIR='$d'
export MERCADO_TEST_SERVERS_SCRIPT='$self'
export MERCADO_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$pg_port/postgres'
export MERCADO_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:$amqp_port/%2f'
export MERCADO_REQUIRE_SERVERS=1
EOF
}

cmd_stop() {
  local d
  d=$(state_dir "${1:-}")
  # shellcheck disable=SC1091
  source "$d/state"
  rabbit_kill "$d"
  if [[ -f "$d/pg/data/postmaster.pid" ]]; then
    local pid
    pid=$(head -1 "$d/pg/data/postmaster.pid")
    # Throwaway data: an immediate stop is enough (no checkpoint).
    su postgres -c "$PGBIN/pg_ctl -D $d/pg/data -m immediate -w stop" >/dev/null 2>&1 ||
      kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$d"
  log "stopped and removed $d"
}

cmd_restart_rabbitmq() {
  local d
  d=$(state_dir "${1:-}")
  rabbit_kill "$d"
  rabbit_start "$d"
  log "RabbitMQ restarted"
}

cmd_stop_rabbitmq() {
  local d
  d=$(state_dir "${1:-}")
  rabbit_kill "$d"
  log "RabbitMQ killed"
}

cmd_start_rabbitmq() {
  local d
  d=$(state_dir "${1:-}")
  rabbit_start "$d"
  log "RabbitMQ started"
}

cmd_status() {
  local d
  d=$(state_dir "${1:-}")
  # shellcheck disable=SC1091
  source "$d/state"
  pg_isready -h 127.0.0.1 -p "$PG_PORT" || true
  (rabbit_env "$d"; "$RABBIT_BIN/rabbitmqctl" -q -n "$RABBIT_NODE" status >/dev/null && echo "rabbitmq: running") ||
    echo "rabbitmq: not running"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  restart-rabbitmq) cmd_restart_rabbitmq "${2:-}" ;;
  stop-rabbitmq) cmd_stop_rabbitmq "${2:-}" ;;
  start-rabbitmq) cmd_start_rabbitmq "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  *) echo "usage: $0 start | stop [DIR] | restart-rabbitmq | stop-rabbitmq | start-rabbitmq | status [DIR]" >&2; exit 2 ;;
esac
