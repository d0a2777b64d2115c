#!/usr/bin/env bash
# Make a headless Chromium available for the browser tests (Playwright drives the system
# browser; nothing is ever downloaded by `playwright install`). Prints `export` lines:
#
#   eval "$(scripts/browser.sh up)"     # BOTFLEET_CHROMIUM=/usr/bin/chromium
#
# Debian's `chromium` package is installed when missing (as root, or with sudo -n), after an
# `apt-get update`. Anything that cannot be had fails loudly: the browser tests never skip.
# With it come the fonts the pages need (the dashboard and the widget show emoji: without a colour
# emoji font the screenshots in docs/screenshots/ would show empty boxes).
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

EMOJI_FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf

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
        chromium fonts-dejavu-core fonts-noto-color-emoji >&2
}

# A machine whose chromium came before the emoji font: add it (best effort: only pictures need it).
install_emoji_font() {
    [ -e "$EMOJI_FONT" ] && return 0
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        sudo -n true 2>/dev/null || { log "no colour emoji font (apt-get install fonts-noto-color-emoji)"; return 0; }
        sudo=(sudo -n)
    fi
    log "installing Debian's fonts-noto-color-emoji (emoji in the browser tests' screenshots)"
    { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        fonts-noto-color-emoji >&2 2>/dev/null \
      || { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
           && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
              --no-install-recommends fonts-noto-color-emoji >&2; }; } \
      || log "could not install fonts-noto-color-emoji: screenshots show boxes for emoji"
}

case "${1:-up}" in
    up)
        path="$(find_chromium)" || { install_chromium; path="$(find_chromium)" || die "chromium is still missing after apt-get install"; }
        command -v apt-get >/dev/null && install_emoji_font
        echo "export BOTFLEET_CHROMIUM=$path"
        ;;
    *)
        die "usage: scripts/browser.sh up"
        ;;
esac
