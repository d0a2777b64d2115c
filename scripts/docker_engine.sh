#!/usr/bin/env bash
# Make a Docker Engine and the client-bot image available on this machine (idempotent).
#
#   scripts/docker_engine.sh up        # engine + base image + client image (the default)
#   scripts/docker_engine.sh stack     # up + the images of docker-compose.yml (see step 5)
#   scripts/docker_engine.sh engine    # only the engine
#   scripts/docker_engine.sh down      # stop the dockerd this script started
#   eval "$(scripts/docker_engine.sh up)"   # exports DOCKER_HOST and BOTFLEET_CLIENT_IMAGE
#   eval "$(scripts/docker_engine.sh stack)"  # ... and BOTFLEET_{PLATFORM,POSTGRES,REDIS}_IMAGE
#
# Steps, each skipped when its result is already there:
#   1. the OS packages docker.io (engine + a BuildKit-capable CLI) and debootstrap (root or sudo -n);
#   2. dockerd --bridge=none --iptables=false (client containers use the host network), logging to
#      $BOTFLEET_RUN_DIR/dockerd.log, unless an engine already answers at DOCKER_HOST / the socket;
#   3. the base image $BOTFLEET_BASE_IMAGE (default botfleet-base:bookworm): no registry is reachable
#      here, so it is a Debian root filesystem made with debootstrap (python3, python3-venv,
#      ca-certificates, tzdata) from this machine's own Debian mirror, loaded with `docker import`;
#   4. the client image $BOTFLEET_CLIENT_IMAGE (default botfleet-client:test) from ./Dockerfile with
#      BASE_IMAGE set to the base image. It is rebuilt only when the label botfleet.source-hash
#      (Dockerfile, .dockerignore and every file it lets in, plus the base image id) changed; an
#      image of the same repository with the same hash under another tag is tagged instead
#      (`make up OFFLINE=1` names images by release: botfleet-client:<version>-<commit>).
#      pip inside the build uses this machine's index and CA bundle, passed as BuildKit secrets
#      (never stored in an image layer), over the host network.
#   5. `stack` only: what docker-compose.yml runs, for `make up OFFLINE=1` and
#      tests/ops/test_compose_stack.py: the platform image $BOTFLEET_PLATFORM_IMAGE (default
#      botfleet-platform:test) from platform.Dockerfile, and stand-ins for the official postgres:15
#      and redis:7 images: $BOTFLEET_POSTGRES_IMAGE (botfleet-postgres:15) from
#      docker-images/postgres/ and $BOTFLEET_REDIS_IMAGE (botfleet-redis:7) from
#      docker-images/redis/, Debian's packages behind the official images' entrypoint interface. All on the base image, each rebuilt only when
#      its botfleet.source-hash label changed, like the client image.
#
# Progress goes to stderr, the export lines to stdout. Anything that cannot be had fails loudly.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${BOTFLEET_RUN_DIR:-/tmp/botfleet-run-$(id -u)}"
BASE_IMAGE="${BOTFLEET_BASE_IMAGE:-botfleet-base:bookworm}"
BASE_SUITE="${BOTFLEET_BASE_SUITE:-bookworm}"
CLIENT_IMAGE="${BOTFLEET_CLIENT_IMAGE:-botfleet-client:test}"
PLATFORM_IMAGE="${BOTFLEET_PLATFORM_IMAGE:-botfleet-platform:test}"
POSTGRES_IMAGE="${BOTFLEET_POSTGRES_IMAGE:-botfleet-postgres:15}"
REDIS_IMAGE="${BOTFLEET_REDIS_IMAGE:-botfleet-redis:7}"
DOCKER_SOCKET="/var/run/docker.sock"
export DOCKER_HOST="${DOCKER_HOST:-unix://$DOCKER_SOCKET}"

log() { echo "docker_engine: $*" >&2; }
die() { echo "docker_engine: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
took() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f s", e - s }'; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1; fi
}

apt_install() {
  log "installing OS packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
    || die "apt-get update failed (installing $* needs root or passwordless sudo)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
    || die "could not install $* (needs root or passwordless sudo and the Debian mirror)"
}

engine_answers() { docker info >/dev/null 2>&1; }

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -s /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  # A compose CLI, to validate (and run) docker-compose.yml: the v2 plugin or Debian's v1.
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || missing+=(docker-compose)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
  command -v docker >/dev/null || die "no docker CLI after installing docker.io"
}

start_engine() {
  if engine_answers; then log "Docker Engine answers at $DOCKER_HOST"; return 0; fi
  command -v dockerd >/dev/null || apt_install docker.io
  [ "$DOCKER_HOST" = "unix://$DOCKER_SOCKET" ] \
    || die "DOCKER_HOST=$DOCKER_HOST does not answer (this script only starts a local dockerd on $DOCKER_SOCKET)"
  [ "$(id -u)" = 0 ] || die "dockerd must be started as root (run this script as root, or start Docker yourself)"
  mkdir -p "$RUN_DIR"
  local started; started="$(now)"
  log "starting dockerd (--bridge=none --iptables=false), log: $RUN_DIR/dockerd.log"
  # setsid: the daemon outlives the shell (or pytest fixture) that started it.
  setsid dockerd --bridge=none --iptables=false --ip6tables=false \
    --host "unix://$DOCKER_SOCKET" --pidfile "$RUN_DIR/dockerd.pid" \
    >>"$RUN_DIR/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 120); do
    engine_answers && { log "Docker Engine up after $(took "$started")"; return 0; }
    kill -0 "$!" 2>/dev/null || break
    sleep 0.5
  done
  tail -n 20 "$RUN_DIR/dockerd.log" >&2 || true
  die "dockerd did not come up (see $RUN_DIR/dockerd.log above)"
}

stop_engine() {
  local pid
  [ -s "$RUN_DIR/dockerd.pid" ] || { log "no dockerd started by this script"; return 0; }
  pid="$(cat "$RUN_DIR/dockerd.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    die "dockerd (pid $pid) did not stop"
  fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror this machine's apt uses (deb822 .sources or one-line lists), for BASE_SUITE.
debian_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri="$(awk -v suite="$BASE_SUITE" '
      BEGIN { RS = ""; FS = "\n" }
      {
        uris = ""; ok = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); uris = $i }
          if ($i ~ /^Suites:/ && $i ~ ("[ \t]" suite "([ \t]|$)")) ok = 1
          if ($i ~ /^Enabled:[ \t]*no/) ok = 0
        }
        if (ok && uris != "") { split(uris, u, " "); print u[1]; exit }
      }' "$f")"
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri="$(awk -v suite="$BASE_SUITE" '
      $1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) { print $i; exit }
      }' "$f")"
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  echo "http://deb.debian.org/debian"
}

build_base() {
  if image_exists "$BASE_IMAGE"; then log "base image $BASE_IMAGE present"; return 0; fi
  command -v debootstrap >/dev/null || apt_install debootstrap
  [ -s /usr/share/keyrings/debian-archive-keyring.gpg ] || apt_install debian-archive-keyring
  [ "$(id -u)" = 0 ] || die "debootstrap needs root to build the base image $BASE_IMAGE"
  local mirror dir started
  mirror="$(debian_mirror)"
  started="$(now)"
  dir="$(mktemp -d "${TMPDIR:-/tmp}/botfleet-rootfs.XXXXXX")"
  # shellcheck disable=SC2064 # expand $dir now: it is local
  trap "rm -rf '$dir'" EXIT
  log "debootstrap $BASE_SUITE from $mirror into $dir (a few minutes, once per machine)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,tzdata,passwd \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$BASE_SUITE" "$dir" "$mirror" >"$RUN_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$RUN_DIR/debootstrap.log" >&2; die "debootstrap failed (full log: $RUN_DIR/debootstrap.log)"; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log
  log "importing the root filesystem as $BASE_IMAGE"
  tar -C "$dir" --numeric-owner -c . \
    | docker import --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' \
        --message "debootstrap --variant=minbase $BASE_SUITE" - "$BASE_IMAGE" >/dev/null \
    || die "docker import of $BASE_IMAGE failed"
  rm -rf "$dir"; trap - EXIT
  log "base image $BASE_IMAGE built in $(took "$started")"
}

# Hash of everything a build sees, plus the base image id. `source_hash DOCKERFILE IGNOREFILE`: the
# Dockerfile, its ignore file and the paths that lets in (its `!path` lines), from the repository
# root; `source_hash DIR`: every file of DIR (a build context of its own: docker-images/postgres).
source_hash() {
  local paths=()
  local path
  if [ "$#" = 2 ]; then
    mapfile -t paths < <(sed -n 's/^!\([^*]*\)$/\1/p' "$ROOT/$2" | sed 's:/$::')
    for path in "${paths[@]}"; do
      [ -e "$ROOT/$path" ] || die "$2 lets in $path, which does not exist"
    done
    paths=("$1" "$2" "${paths[@]}")
  else
    paths=("$1")
  fi
  (
    cd "$ROOT"
    docker image inspect --format '{{.Id}}' "$BASE_IMAGE"
    find "${paths[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-16
}

# A docker CLI whose `build` speaks BuildKit (needed for the secret mounts).
buildkit_cli() {
  if docker buildx version >/dev/null 2>&1; then echo "docker buildx build --load"; return 0; fi
  local cli major
  for cli in docker /usr/bin/docker; do
    command -v "$cli" >/dev/null || continue
    major="$("$cli" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)" || continue
    # Until 23.x the CLI had BuildKit built in (DOCKER_BUILDKIT=1); later ones need buildx.
    if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then echo "$cli build"; return 0; fi
  done
  return 1
}

# build_image WHAT IMAGE DOCKERFILE CONTEXT HASH: build IMAGE unless its label
# botfleet.source-hash already is HASH.
build_image() {
  local what="$1" image="$2" dockerfile="$3" context="$4" want="$5"
  local have started cli pipconf index extra logfile
  have="$(docker image inspect --format '{{ index .Config.Labels "botfleet.source-hash" }}' "$image" 2>/dev/null || true)"
  if [ "$want" = "$have" ]; then log "$what image $image up to date ($want)"; return 0; fi
  # The same sources under another tag (a release tag of the same commit, :test): tag it.
  local candidate
  for candidate in $(docker images "${image%:*}" --filter "label=botfleet.source-hash=$want" \
      --format '{{.ID}}' 2>/dev/null | sort -u); do
    # Not an image made FROM it (the tests' idle image inherits the label, not the program).
    [ -z "$(docker image inspect --format '{{ index .Config.Labels "botfleet.test-run-image" }}' \
      "$candidate" 2>/dev/null)" ] || continue
    docker tag "$candidate" "$image" && { log "$what image $image: same sources as $candidate, tagged"; return 0; }
  done
  cli="$(buildkit_cli)" || die "no BuildKit-capable docker CLI: install the docker-buildx plugin (or docker.io's CLI)"
  log "building $image from ${dockerfile#"$ROOT"/} on $BASE_IMAGE (source hash $want, was ${have:-none})"
  started="$(now)"
  logfile="$RUN_DIR/docker-build-${image//[^a-zA-Z0-9_.-]/_}.log"
  # pip settings of this machine for the build: the index (and http(s) extra indexes), the CA
  # bundle. Both travel as BuildKit secrets: an index URL may carry credentials. apt inside the
  # builds uses the base image's sources (this machine's Debian mirror) over the host network.
  pipconf="$(mktemp "${TMPDIR:-/tmp}/botfleet-pip.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -f '$pipconf'" EXIT
  index="${PIP_INDEX_URL:-$(pip3 config get global.index-url 2>/dev/null || true)}"
  extra="${PIP_EXTRA_INDEX_URL:-$(pip3 config get global.extra-index-url 2>/dev/null || true)}"
  {
    echo "[global]"
    [ -n "$index" ] && echo "index-url = $index"
    extra="$(tr ' ' '\n' <<<"$extra" | grep -E '^https?://' | tr '\n' ' ' || true)"
    [ -n "${extra// /}" ] && echo "extra-index-url = $extra"
    [ -n "${PIP_TRUSTED_HOST:-}" ] && echo "trusted-host = $PIP_TRUSTED_HOST"
    echo "cert = /run/secrets/pip_cert"
    echo "default-timeout = 120"
  } >"$pipconf"
  local cert="${PIP_CERT:-$(pip3 config get global.cert 2>/dev/null || true)}"
  [ -r "$cert" ] || cert="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
  [ -r "$cert" ] || die "no CA bundle for pip inside the build (set PIP_CERT)"
  # shellcheck disable=SC2086 # $cli is a command with its words
  DOCKER_BUILDKIT=1 $cli --network host --progress plain \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "SOURCE_HASH=$want" \
    --secret "id=pip_conf,src=$pipconf" --secret "id=pip_cert,src=$cert" \
    -t "$image" -f "$dockerfile" "$context" >"$logfile" 2>&1 \
    || { tail -n 30 "$logfile" >&2; die "docker build of $image failed (full log: $logfile)"; }
  rm -f "$pipconf"; trap - EXIT
  log "$what image $image built in $(took "$started")"
  # Earlier builds of it, now untagged (and unused), and build cache beyond a few GB.
  docker image prune -f --filter "label=botfleet.source-hash" >/dev/null || true
  docker builder prune -f --keep-storage 4GB >/dev/null 2>&1 || true
}

build_client() {
  build_image client "$CLIENT_IMAGE" "$ROOT/Dockerfile" "$ROOT" "$(source_hash Dockerfile .dockerignore)"
}

# The images docker-compose.yml runs: the platform's, and the stand-ins of postgres:15 / redis:7.
build_stack() {
  build_image platform "$PLATFORM_IMAGE" "$ROOT/platform.Dockerfile" "$ROOT" \
    "$(source_hash platform.Dockerfile platform.Dockerfile.dockerignore)"
  build_image postgres "$POSTGRES_IMAGE" "$ROOT/docker-images/postgres/Dockerfile" "$ROOT/docker-images/postgres" \
    "$(source_hash docker-images/postgres)"
  build_image redis "$REDIS_IMAGE" "$ROOT/docker-images/redis/Dockerfile" "$ROOT/docker-images/redis" \
    "$(source_hash docker-images/redis)"
}

case "${1:-up}" in
  up | engine | stack)
    total="$(now)"
    mkdir -p "$RUN_DIR"
    ensure_packages
    start_engine
    if [ "${1:-up}" != engine ]; then build_base; build_client; fi
    if [ "${1:-up}" = stack ]; then build_stack; fi
    log "ready in $(took "$total")"
    echo "export DOCKER_HOST='$DOCKER_HOST'"
    echo "export BOTFLEET_CLIENT_IMAGE='$CLIENT_IMAGE'"
    if [ "${1:-up}" = stack ]; then
      echo "export BOTFLEET_PLATFORM_IMAGE='$PLATFORM_IMAGE'"
      echo "export BOTFLEET_POSTGRES_IMAGE='$POSTGRES_IMAGE'"
      echo "export BOTFLEET_REDIS_IMAGE='$REDIS_IMAGE'"
    fi
    ;;
  down) stop_engine ;;
  *) die "usage: $0 up|stack|engine|down" ;;
esac
