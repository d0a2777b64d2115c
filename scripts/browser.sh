#!/usr/bin/env bash
# Make a headless Chromium available for the browser tests (Playwright drives the system
# browser; nothing is ever downloaded by `playwright install`). Prints `export` lines:
#
#   eval "$(scripts/browser.sh up)"     # BOTFLEET_CHROMIUM=/usr/bin/chromium
#
# Debian's `chromium` package is installed when missing (as root, or with sudo -n), after an
# `apt-get update`. Anything that cannot be had fails loudly: the browser tests never skip.
set -euo pipefail

log() { echo "browser: $*" >&2; }
die() { echo "browser: ERROR: $*" >&2; exit 1; }

find_chromium() {
    local candidate
    for candidate in "${BOTFLEET_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_chromium() {
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        sudo -n true 2>/dev/null || die "chromium is missing and installing it needs root (or sudo -n): apt-get install chromium"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null || die "chromium is missing and this is not a Debian-like system: install chromium and set BOTFLEET_CHROMIUM"
    log "installing Debian's chromium (for the browser tests)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >&2
}

case "${1:-up}" in
    up)
        path="$(find_chromium)" || { install_chromium; path="$(find_chromium)" || die "chromium is still missing after apt-get install"; }
        echo "export BOTFLEET_CHROMIUM=$path"
        ;;
    *)
        die "usage: scripts/browser.sh up"
        ;;
esac
