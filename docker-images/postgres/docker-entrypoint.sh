#!/bin/sh
# Entrypoint of the postgres:15 stand-in (see Dockerfile): the official image's behaviour that
# docker-compose.yml needs, in a few lines.
#   - `docker-entrypoint.sh -c x=y` means `postgres -c x=y`;
#   - started as root: fix the ownership of PGDATA and the socket folder, go on as `postgres`;
#   - empty PGDATA: initdb with POSTGRES_USER/POSTGRES_PASSWORD (required), allow password
#     logins from anywhere, create POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql|*.sh on a
#     server that listens on the socket only, stop it;
#   - then exec the server, listening on every interface.
set -eu

if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
[ "$1" = postgres ] || exec "$@"

: "${PGDATA:=/var/lib/postgresql/data}"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 3777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || {
    echo "postgres: POSTGRES_PASSWORD is not set (the database would accept no password)" >&2
    exit 1
  }
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS holds several arguments, as in the official image
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  # A first start on the socket only, for the database and the init scripts.
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
      -c "CREATE DATABASE \"$db\""
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    # shellcheck disable=SC1090 # the operator's own scripts
    case "$f" in
      *.sql) psql -v ON_ERROR_STOP=1 --username="$user" --dbname="$db" -f "$f" ;;
      *.sh) . "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "postgres: database $db initialised in $PGDATA"
fi

exec "$@"
