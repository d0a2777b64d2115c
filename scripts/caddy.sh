#!/usr/bin/env bash
# Make Debian's Caddy (the webhook reverse proxy, docs/scaling.md) available. Prints `export`
# lines:
#
#   eval "$(scripts/caddy.sh up)"     # BOTFLEET_CADDY=/usr/bin/caddy
#
# Debian's `caddy` package is installed when missing (as root, or with sudo -n), after an
# `apt-get update`. Anything that cannot be had fails loudly: the webhook tests never skip.
# The package's own systemd unit is not used: the tests start caddy on free ports, and the
# compose service (docker-compose.yml, `caddy`) runs it in production.
set -euo pipefail

log() { echo "caddy: $*" >&2; }
die() { echo "caddy: ERROR: $*" >&2; exit 1; }

find_caddy() {
    local candidate
    for candidate in "${BOTFLEET_CADDY:-}" /usr/bin/caddy; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_caddy() {
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        sudo -n true 2>/dev/null || die "caddy is missing and installing it needs root (or sudo -n): apt-get install caddy"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null || die "caddy is missing and this is not a Debian-like system: install caddy and set BOTFLEET_CADDY"
    log "installing Debian's caddy (the webhook reverse proxy)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        caddy >&2
}

case "${1:-up}" in
    up)
        path="$(find_caddy)" || { install_caddy; path="$(find_caddy)" || die "caddy is still missing after apt-get install"; }
        echo "export BOTFLEET_CADDY=$path"
        ;;
    *)
        die "usage: scripts/caddy.sh up"
        ;;
esac
