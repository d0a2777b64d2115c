#!/usr/bin/env bash
# Make PostgreSQL and Redis available for tests and `make run`, then print `export` lines.
#
#   eval "$(scripts/services.sh up)"      # DATABASE_URL / REDIS_URL of servers that answer
#   scripts/services.sh down              # stop the throwaway servers this script started
#   scripts/services.sh purge             # down, then delete their data and passwords
#
# Order of preference: the DATABASE_URL / REDIS_URL already set (when they answer), otherwise
# throwaway local servers from installed binaries under $BOTFLEET_RUN_DIR, otherwise the OS
# packages `postgresql` / `redis-server` are installed first (as root, or with sudo -n).
# Anything that cannot be had fails loudly with the reason: tests never skip silently.
#
# The throwaway servers authenticate like production ones: the PostgreSQL superuser `postgres`
# and the Redis `default` user have generated passwords (scram-sha-256 over TCP; Redis
# requirepass), kept in $RUN_DIR/pg.password and $RUN_DIR/redis.password (mode 0600) and
# URL-encoded in the printed URLs. Redis is capped at REDIS_MAXMEMORY (default 512mb) with
# `noeviction`: when full it refuses writes rather than evict a tenant's dialog state.
# A cluster made by an older version of this script (no password file: `trust` on 127.0.0.1) is
# still used as it is, with a log line; `purge` then `up` replaces it.
set -euo pipefail

RUN_DIR="${BOTFLEET_RUN_DIR:-/tmp/botfleet-run-$(id -u)}"
PG_PORT="${BOTFLEET_PG_PORT:-55432}"
REDIS_PORT="${BOTFLEET_REDIS_PORT:-56379}"
REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-512mb}"
PG_PASSWORD_FILE="$RUN_DIR/pg.password"
REDIS_PASSWORD_FILE="$RUN_DIR/redis.password"
log() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

# A new secret in $1 (mode 0600) unless it already holds one. Hex: nothing to escape anywhere.
ensure_secret() {
  [ -s "$1" ] && return 0
  (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1.tmp") && mv "$1.tmp" "$1"
  chmod 600 "$1"
}

urlencode() {
  local s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in [A-Za-z0-9._~-]) out+="$c" ;; *) out+="$(printf '%%%02X' "'$c")" ;; esac
  done
  printf '%s' "$out"
}

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

pg_answers() { [ -n "${1:-}" ] && command -v psql >/dev/null && psql "$1" -w -Atqc 'select 1' >/dev/null 2>&1; }
redis_answers() { [ -n "${1:-}" ] && command -v redis-cli >/dev/null && [ "$(redis-cli -u "$1" --no-auth-warning ping 2>/dev/null)" = PONG ]; }
# psql as `postgres` on our own server; the password (if any) through PGPASSWORD, never argv.
pg_admin() {
  local password="$1"; shift
  if [ -n "$password" ]; then PGPASSWORD="$password" psql -w "$@"; else env -u PGPASSWORD psql -w "$@"; fi
}
# PING our own Redis as `default`; the password (if any) through REDISCLI_AUTH, never argv.
redis_pong() {
  local out
  if [ -n "${1:-}" ]; then out="$(REDISCLI_AUTH="$1" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning ping 2>/dev/null)" || true
  else out="$(env -u REDISCLI_AUTH redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" || true; fi
  [ "$out" = PONG ]
}

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
  local password=""
  if [ ! -s "$data/PG_VERSION" ]; then
    log "initdb throwaway cluster in $data (superuser postgres, password in $PG_PASSWORD_FILE)"
    mkdir -p "$data"; chown "$owner" "$data"
    rm -f "$PG_PASSWORD_FILE"; ensure_secret "$PG_PASSWORD_FILE"
    # initdb runs as the cluster owner: it reads the password from a copy only that user can read.
    local pwfile="$RUN_DIR/.initdb-password"
    (umask 077 && cp "$PG_PASSWORD_FILE" "$pwfile"); chown "$owner" "$pwfile"
    run "$bindir/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth-host=scram-sha-256 \
      --auth-local=peer -E UTF8 --locale=C.UTF-8 >&2 || { rm -f "$pwfile"; die "initdb failed"; }
    rm -f "$pwfile"
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
password_encryption = 'scram-sha-256'
CONF
    # Passwords for everyone over TCP, the superuser too. The unix socket admits only the OS
    # user `postgres` as itself (peer; a way in when the password file is lost, running as root).
    cat >"$data/pg_hba.conf" <<HBA
local all postgres peer
host  all all 127.0.0.1/32 scram-sha-256
HBA
  fi
  if [ -s "$PG_PASSWORD_FILE" ]; then
    password="$(cat "$PG_PASSWORD_FILE")"
  else
    log "PostgreSQL in $data is a password-less cluster of an older services.sh (trust on 127.0.0.1), used as it is; for one with a password: scripts/services.sh purge && scripts/services.sh up"
  fi
  if ! run "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    run "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >&2 || die "PostgreSQL did not start; see $data/server.log"
  fi
  local url="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  pg_admin "$password" "$url" -Atqc "select 1 from pg_database where datname='botfleet'" | grep -q 1 \
    || pg_admin "$password" "$url" -qc "create database botfleet" >&2 \
    || die "cannot log in to PostgreSQL on 127.0.0.1:$PG_PORT as postgres (password file $PG_PASSWORD_FILE)"
  local userinfo=postgres
  [ -z "$password" ] || userinfo="postgres:$(urlencode "$password")"
  DATABASE_URL="postgresql://$userinfo@127.0.0.1:$PG_PORT/botfleet"
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  command -v redis-server >/dev/null || die "redis-server not found after install"
  mkdir -p "$RUN_DIR/redis"
  if redis_pong ""; then
    log "Redis on 127.0.0.1:$REDIS_PORT has no password (started by an older services.sh), used as it is; for one with a password: scripts/services.sh down && scripts/services.sh up"
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    return 0
  fi
  local password
  if ! { [ -s "$REDIS_PASSWORD_FILE" ] && redis_pong "$(cat "$REDIS_PASSWORD_FILE")"; }; then
    ensure_secret "$REDIS_PASSWORD_FILE"
    local conf="$RUN_DIR/redis/redis.conf"
    log "starting Redis on 127.0.0.1:$REDIS_PORT (user default, password in $REDIS_PASSWORD_FILE; maxmemory $REDIS_MAXMEMORY, noeviction)"
    # A config file (0600), not arguments: `ps` shows arguments to every local user.
    (umask 077 && cat >"$conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
save ""
appendonly no
dir $RUN_DIR/redis
pidfile $RUN_DIR/redis.pid
logfile $RUN_DIR/redis.log
requirepass $(cat "$REDIS_PASSWORD_FILE")
maxmemory $REDIS_MAXMEMORY
maxmemory-policy noeviction
CONF
    )
    redis-server "$conf" >&2 || die "redis-server refused $conf; see $RUN_DIR/redis.log"
    for _ in $(seq 50); do redis_pong "$(cat "$REDIS_PASSWORD_FILE")" && break; sleep 0.1; done
    redis_pong "$(cat "$REDIS_PASSWORD_FILE")" || die "Redis did not start; see $RUN_DIR/redis.log"
  fi
  password="$(cat "$REDIS_PASSWORD_FILE")"
  REDIS_URL="redis://default:$(urlencode "$password")@127.0.0.1:$REDIS_PORT/0"
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
  down | purge)
    bindir="$(pg_bindir || true)"
    if [ -n "$bindir" ] && [ -s "$RUN_DIR/pg/PG_VERSION" ]; then
      if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bindir/pg_ctl" -D "$RUN_DIR/pg" -m fast stop >&2 || true
      else "$bindir/pg_ctl" -D "$RUN_DIR/pg" -m fast stop >&2 || true; fi
    fi
    if [ -s "$RUN_DIR/redis.pid" ]; then
      pid="$(cat "$RUN_DIR/redis.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ "${1:-}" = purge ]; then
      log "deleting the throwaway data and passwords in $RUN_DIR"
      rm -rf "$RUN_DIR/pg" "$RUN_DIR/pgsock" "$RUN_DIR/redis" "$RUN_DIR/redis.pid" \
        "$PG_PASSWORD_FILE" "$REDIS_PASSWORD_FILE"
    fi
    ;;
  *) die "usage: $0 up|down|purge" ;;
esac
