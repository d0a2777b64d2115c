#!/bin/sh
# Entrypoint of the redis:7 stand-in (see Dockerfile), after the official image's:
#   - `docker-entrypoint.sh --port 7000` or `docker-entrypoint.sh x.conf` means redis-server ...;
#   - started as root: /data (and what is in it) goes to the user `redis`, then run as `redis`;
#   - protected mode off unless the arguments set it (the official binary is built that way;
#     Debian's is not), files private to the user (umask 0077).
set -eu

case "$1" in -* | *.conf) set -- redis-server "$@" ;; esac
[ "$1" = redis-server ] || exec "$@"

if [ "$(id -u)" = 0 ]; then
  find /data ! -user redis -exec chown redis:redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$(umask)" = 0022 ]; then umask 0077; fi
case " $* " in *" --protected-mode "*) ;; *) set -- "$@" --protected-mode no ;; esac
exec "$@"
