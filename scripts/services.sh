#!/usr/bin/env bash
# Make PostgreSQL and Redis available for tests and `make run`, then print `export` lines.
#
#   eval "$(scripts/services.sh up)"      # DATABASE_URL / REDIS_URL of servers that answer
#   scripts/services.sh down              # stop the throwaway servers this script started
#
# Order of preference: the DATABASE_URL / REDIS_URL already set (when they answer), otherwise
# throwaway local servers from installed binaries under $BOTFLEET_RUN_DIR, otherwise the OS
# packages `postgresql` / `redis-server` are installed first (as root, or with sudo -n).
# Anything that cannot be had fails loudly with the reason: tests never skip silently.
set -euo pipefail

RUN_DIR="${BOTFLEET_RUN_DIR:-/tmp/botfleet-run-$(id -u)}"
PG_PORT="${BOTFLEET_PG_PORT:-55432}"
REDIS_PORT="${BOTFLEET_REDIS_PORT:-56379}"
log() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  log "installing OS packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed (need root or passwordless sudo to install $*)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || die "could not install $* (need root or passwordless sudo)"
}

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return 0; }; done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

pg_answers() { [ -n "${1:-}" ] && command -v psql >/dev/null && psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
redis_answers() { [ -n "${1:-}" ] && command -v redis-cli >/dev/null && [ "$(redis-cli -u "$1" ping 2>/dev/null)" = PONG ]; }

start_postgres() {
  local bindir data sock owner
  bindir="$(pg_bindir)" || { apt_install postgresql; bindir="$(pg_bindir)" || die "PostgreSQL binaries not found after install"; }
  command -v psql >/dev/null || apt_install postgresql-client
  data="$RUN_DIR/pg"; sock="$RUN_DIR/pgsock"
  owner="$(id -un)"
  mkdir -p "$RUN_DIR"; chmod 755 "$RUN_DIR"
  if [ "$(id -u)" = 0 ]; then owner=postgres; id postgres >/dev/null 2>&1 || die "PostgreSQL refuses to run as root and there is no 'postgres' user"; fi
  run() { if [ "$owner" = "$(id -un)" ]; then "$@"; else runuser -u "$owner" -- "$@"; fi; }
  mkdir -p "$sock"; chown "$owner" "$sock"
  if [ ! -s "$data/PG_VERSION" ]; then
    log "initdb throwaway cluster in $data"
    mkdir -p "$data"; chown "$owner" "$data"
    run "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2 \
      || die "initdb failed"
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
max_connections = 400
max_locks_per_transaction = 1024
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    # Passwords for everyone over TCP (tenant roles log in with theirs), trust for the local admin socket.
    cat >"$data/pg_hba.conf" <<HBA
local all postgres trust
host  all postgres 127.0.0.1/32 trust
host  all all 127.0.0.1/32 scram-sha-256
HBA
  fi
  if ! run "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    run "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >&2 || die "PostgreSQL did not start; see $data/server.log"
  fi
  local url="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  psql "$url" -Atqc "select 1 from pg_database where datname='botfleet'" | grep -q 1 \
    || psql "$url" -qc "create database botfleet" >&2
  DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/botfleet"
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  command -v redis-server >/dev/null || die "redis-server not found after install"
  mkdir -p "$RUN_DIR/redis"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  if ! redis_answers "$REDIS_URL"; then
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
      --dir "$RUN_DIR/redis" --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log" >&2
    for _ in $(seq 50); do redis_answers "$REDIS_URL" && break; sleep 0.1; done
    redis_answers "$REDIS_URL" || die "Redis did not start; see $RUN_DIR/redis.log"
  fi
}

case "${1:-up}" in
  up)
    command -v psql >/dev/null || apt_install postgresql-client
    command -v redis-cli >/dev/null || apt_install redis-tools
    if pg_answers "${DATABASE_URL:-}"; then log "using PostgreSQL from DATABASE_URL"; else start_postgres; fi
    if redis_answers "${REDIS_URL:-}"; then log "using Redis from REDIS_URL"; else start_redis; fi
    echo "export DATABASE_URL='$DATABASE_URL'"
    echo "export REDIS_URL='$REDIS_URL'"
    ;;
  down)
    bindir="$(pg_bindir || true)"
    if [ -n "$bindir" ] && [ -s "$RUN_DIR/pg/PG_VERSION" ]; then
      if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bindir/pg_ctl" -D "$RUN_DIR/pg" -m fast stop >&2 || true
      else "$bindir/pg_ctl" -D "$RUN_DIR/pg" -m fast stop >&2 || true; fi
    fi
    [ -s "$RUN_DIR/redis.pid" ] && kill "$(cat "$RUN_DIR/redis.pid")" 2>/dev/null || true
    ;;
  *) die "usage: $0 up|down" ;;
esac
