#!/usr/bin/env bash
# What the Makefile does around docker compose on one host: waiting for health, versioned image
# tags and the releases they belong to (rollback), and removing one fleet.
#
#   scripts/stack.sh wait [SECONDS]      # until every service of the project is ready (300 s)
#   scripts/stack.sh tag                 # <version>-<commit>[-dirty], e.g. 0.1.0-1a2b3c4d5e6f
#   scripts/stack.sh record TAG          # TAG is now deployed (with $PLATFORM_IMAGE etc.): appended
#                                        # to .botfleet/releases, images of older releases removed
#   scripts/stack.sh previous            # the release deployed before the current one (rollback)
#   scripts/stack.sh keep-images         # remove images of releases older than the last 2
#   scripts/stack.sh uninstall           # this fleet's client containers, then `compose down`
#                                        # (YES=1: volumes and release images too)
#   scripts/stack.sh redis-restore FILE  # Redis from an RDB of make db-backup (YES=1)
#   scripts/stack.sh trial-help          # how to chat with the trial stack's bots
#
# The Makefile passes STACK_COMPOSE (the compose command with -p and -f options) and
# STACK_PROJECT (the compose project). `wait` reads the project's containers with `docker
# inspect` (the same with compose v1 and v2): a service with a healthcheck is ready when
# healthy, one without when running, a one-shot (restart "no", e.g. migrate) when it exited 0.
# A one-shot that failed ends the wait at once with its logs; otherwise it says which services
# are still starting and, after SECONDS, fails naming them.
set -euo pipefail

ROOT="${STACK_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PROJECT="${STACK_PROJECT:-botfleet}"
read -r -a COMPOSE <<<"${STACK_COMPOSE:-docker compose -p $PROJECT}"
RELEASES="${STACK_RELEASES:-$ROOT/.botfleet/releases}"
KEEP_RELEASES="${STACK_KEEP_RELEASES:-2}"

log() { echo "stack: $*" >&2; }
die() { echo "stack: ERROR: $*" >&2; exit 1; }

# service -> "ready" | "failed: ..." | "<what it is doing>"
service_state() {
  local service="$1" ids id line status health code policy
  ids="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$service")"
  [ -n "$ids" ] || { echo "not created"; return 0; }
  id="$(head -n 1 <<<"$ids")"
  line="$(docker inspect --format \
    '{{.State.Status}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{.State.ExitCode}}|{{.HostConfig.RestartPolicy.Name}}' \
    "$id" 2>/dev/null)" || { echo "not created"; return 0; }
  IFS='|' read -r status health code policy <<<"$line"
  if [ "$policy" = no ] || [ -z "$policy" ]; then
    case "$status" in
      exited) if [ "$code" = 0 ]; then echo ready; else echo "failed: exited with $code"; fi ;;
      *) echo "$status" ;;
    esac
    return 0
  fi
  if [ -n "$health" ]; then
    if [ "$status" = running ] && [ "$health" = healthy ]; then echo ready
    elif [ "$status" = running ]; then echo "$health"
    else echo "$status (exit code $code)"; fi
  elif [ "$status" = running ]; then echo ready
  else echo "$status (exit code $code)"; fi
}

# Services of profiles that are not enabled (COMPOSE_PROFILES, comma-separated), one a line:
# compose v1's `config --services` lists them too, though `up` never creates them.
inactive_services() {
  "${COMPOSE[@]}" config | awk -v active=",${COMPOSE_PROFILES:-}," '
    function flush() { if (name != "" && profiled && !enabled) print name; name = "" }
    /^[^ ]/ { flush(); in_services = ($0 == "services:"); next }
    !in_services { next }
    /^  [^ ]/ { flush(); name = $1; sub(/:$/, "", name); profiled = 0; enabled = 0; listing = 0; next }
    /^    profiles:/ { profiled = 1; listing = 1; next }
    listing && /^ *- / { if (index(active, "," $2 ",")) enabled = 1; next }
    /^    [^ ]/ { listing = 0 }
    END { flush() }'
}

wait_ready() {
  local timeout="${1:-300}" started now services service state waiting shown="" failed
  started="$(date +%s)"
  mapfile -t services < <("${COMPOSE[@]}" config --services | grep -vxF -f <(inactive_services; echo))
  [ "${#services[@]}" -gt 0 ] || die "no services in the compose project $PROJECT"
  while true; do
    waiting=()
    for service in "${services[@]}"; do
      state="$(service_state "$service")"
      case "$state" in
        ready) ;;
        failed:*)
          failed="$service ${state#failed: }"
          log "$failed; its last lines:"
          "${COMPOSE[@]}" logs --no-color --tail 30 "$service" >&2 || true
          die "$failed"
          ;;
        *) waiting+=("$service ($state)") ;;
      esac
    done
    now="$(date +%s)"
    if [ "${#waiting[@]}" = 0 ]; then
      log "all ${#services[@]} services ready after $((now - started)) s"
      return 0
    fi
    if [ "$((now - started))" -ge "$timeout" ]; then
      die "still not ready after ${timeout} s: ${waiting[*]} (make logs; docker inspect <container>)"
    fi
    if [ "${waiting[*]}" != "$shown" ]; then
      log "still starting: ${waiting[*]}"
      shown="${waiting[*]}"
    fi
    sleep 2
  done
}

# ---------------------------------------------------------------- releases and their images
# The tag of this checkout's images: <version of pyproject.toml>-<commit>, "-dirty" when tracked
# files differ from the commit (the same tag is then rebuilt in place).
image_tag() {
  local version sha
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -n 1)"
  [ -n "$version" ] || die "no version in $ROOT/pyproject.toml"
  if sha="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null)"; then
    if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
      sha="$sha-dirty"
    fi
  else
    sha="nogit"
  fi
  echo "$version-$sha"
}

# One line per deployment, newest last: "<tag> <platform> <client> <postgres> <redis>" ("-" for
# an image compose takes by default). PLATFORM_IMAGE etc. come from the environment of `make up`.
record_release() {
  local tag="$1" line last
  [ -n "$tag" ] || die "usage: $0 record TAG"
  line="$tag ${PLATFORM_IMAGE:--} ${CLIENT_IMAGE:--} ${POSTGRES_IMAGE:--} ${REDIS_IMAGE:--}"
  mkdir -p "$(dirname "$RELEASES")"
  last="$(tail -n 1 "$RELEASES" 2>/dev/null || true)"
  if [ "$line" != "$last" ]; then echo "$line" >>"$RELEASES"; log "release $tag recorded in $RELEASES"; fi
  keep_images
}

# The release before the current one (the last line whose tag differs from the last line's),
# when its platform and client images are still on the engine.
previous_release() {
  local current line tag platform client
  [ -s "$RELEASES" ] || die "no release recorded yet ($RELEASES): nothing to roll back to"
  current="$(tail -n 1 "$RELEASES" | cut -d' ' -f1)"
  line="$(awk -v cur="$current" '$1 != cur { found = $0 } END { print found }' "$RELEASES")"
  [ -n "$line" ] || die "only release $current was deployed here: nothing to roll back to"
  read -r tag platform client _ <<<"$line"
  for image in "$platform" "$client"; do
    docker image inspect "$image" >/dev/null 2>&1 \
      || die "image $image of release $tag is no longer on this engine: cannot roll back to it"
  done
  echo "$line"
}

# Remove the platform and client images of releases older than the last KEEP_RELEASES distinct
# tags (images still used by a container stay: docker refuses, quietly).
keep_images() {
  local keep old image
  [ -s "$RELEASES" ] || return 0
  keep="$(awk '{ print $1 }' "$RELEASES" | tac | awk '!seen[$0]++' | head -n "$KEEP_RELEASES")"
  while read -r old; do
    grep -qxF "$old" <<<"$keep" && continue
    for image in $(awk -v t="$old" '$1 == t { print $2; print $3 }' "$RELEASES" | sort -u); do
      [ "$image" = - ] && continue
      awk -v t="$old" '$1 != t { print $2; print $3 }' "$RELEASES" | grep -qxF "$image" && continue
      docker image inspect "$image" >/dev/null 2>&1 || continue
      docker rmi "$image" >/dev/null 2>&1 && log "removed $image (release $old)"
    done
  done < <(awk '{ print $1 }' "$RELEASES" | awk '!seen[$0]++')
  return 0
}

# ---------------------------------------------------------------- removing a fleet, Redis restore
# `make uninstall`: the master first (it would restart bots), then every container of this
# fleet (label botfleet.fleet=FLEET_NAME; another fleet's are not touched), then the compose
# project. Volumes (database, Redis, the master's backups) only with YES=1, and then the
# release list and this fleet's release images too. .env and ./backups are never touched.
uninstall() {
  local fleet ids volumes=()
  fleet="$(setting FLEET_NAME botfleet)"
  "${COMPOSE[@]}" stop master >&2 || true
  ids="$(docker ps -aq --filter label=botfleet.managed=true --filter "label=botfleet.fleet=$fleet")"
  if [ -n "$ids" ]; then
    log "removing the $(wc -w <<<"$ids") client-bot container(s) of fleet $fleet"
    # shellcheck disable=SC2086 # container ids
    docker rm -f $ids >/dev/null
  fi
  [ "${YES:-}" = 1 ] && volumes=(--volumes)
  "${COMPOSE[@]}" down --remove-orphans "${volumes[@]}" >&2
  if [ "${YES:-}" = 1 ]; then
    if [ -s "$RELEASES" ]; then
      for image in $(awk '{ print $2; print $3 }' "$RELEASES" | sort -u); do
        [ "$image" = - ] || docker rmi "$image" >/dev/null 2>&1 || true
      done
      rm -f "$RELEASES"
    fi
    log "fleet $fleet removed, with its volumes (database, Redis, the master's backups) and images;"
    log ".env and $ROOT/backups are still here: delete them yourself when you are sure"
  else
    log "fleet $fleet stopped and removed; its volumes are kept (make up brings it back):"
    docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | sed 's/^/  /' >&2
    log "make uninstall YES=1 deletes them too (the database and every tenant's data)"
  fi
}

# The redis volume from an RDB of `make db-backup`: Redis 7 with appendonly on ignores a
# dump.rdb when it has no AOF, so the RDB is loaded with AOF off, then AOF is switched on
# (rewritten from memory) before the server stops. Runs in a container of the Redis image.
restore_redis_volume() {
  local image="$1" volume="$2" file="$3"
  docker run --rm --network none --entrypoint sh -v "$volume:/data" \
    -v "$(realpath "$file"):/restore.rdb:ro" "$image" -c '
      set -e
      rm -rf /data/appendonlydir /data/appendonly.aof /data/dump.rdb
      cp /restore.rdb /data/dump.rdb
      redis-server --port 6390 --dir /data --appendonly no --save "" --daemonize yes \
        --logfile /data/restore.log
      for i in $(seq 100); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
      echo "keys loaded: $(redis-cli -p 6390 dbsize)"
      redis-cli -p 6390 config set appendonly yes >/dev/null
      while redis-cli -p 6390 info persistence | grep -Eq "aof_rewrite_(in_progress|scheduled):1"; do
        sleep 0.2
      done
      redis-cli -p 6390 shutdown
      rm -f /data/restore.log
      chown -R redis:redis /data 2>/dev/null || true' >&2
}

redis_restore() {
  local file="${1:-}" id image volume
  [ -f "$file" ] || die "usage: make redis-restore FILE=backups/redis-<stamp>.rdb YES=1"
  [ "${YES:-}" = 1 ] || die "this replaces every key in Redis with $file: run with YES=1"
  id="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter label=com.docker.compose.service=redis | head -n 1)"
  [ -n "$id" ] || die "no redis container in the compose project $PROJECT (make up first)"
  image="$(docker inspect --format '{{.Config.Image}}' "$id")"
  volume="$(docker inspect --format '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}' "$id")"
  [ -n "$volume" ] || die "the redis container has no /data volume"
  "${COMPOSE[@]}" stop master sales redis >&2
  restore_redis_volume "$image" "$volume" "$file"
  "${COMPOSE[@]}" start redis master sales >&2
  log "Redis restored from $file; the master re-creates the tenants' ACL users on its next pass"
}

# How to play the trial stack (docker-compose.trial.yml): the bot tokens as compose resolves
# them (the emulator's --bot arguments), ports and operator as compose would read them.
setting() {  # NAME DEFAULT: the shell's value, else the last NAME= line of ./.env, else DEFAULT
  local value="${!1:-}"
  [ -n "$value" ] || value="$(sed -n "s/^$1=//p" .env 2>/dev/null | tail -n 1)"
  echo "${value:-$2}"
}

trial_help() {
  local config sales master operator telegram yookassa chat
  config="$("${COMPOSE[@]}" config)"
  sales="$(sed -n "s/^ *- *['\"]\{0,1\}\(.*\)=botfleet_trial_sales_bot.*/\1/p" <<<"$config" | head -n 1)"
  master="$(sed -n "s/^ *- *['\"]\{0,1\}\(.*\)=botfleet_trial_master_bot.*/\1/p" <<<"$config" | head -n 1)"
  operator="$(setting TRIAL_OPERATOR_ID 1001)"
  telegram="$(setting TELEGRAM_PORT 8081)"
  yookassa="$(setting YOOKASSA_PORT 8090)"
  chat=".venv/bin/python -m telegram_emulator.chat --url http://127.0.0.1:$telegram"
  cat <<EOF
trial stack up: Telegram emulator on 127.0.0.1:$telegram, YooKassa fake on 127.0.0.1:$yookassa.
Play the journey from this host (make install first; docs/operations.md, "Trial"):
  1. the sales bot:  $chat --token $sales
     /start, pick a plan, name the business; as your bot's token paste a made-up one,
     e.g. 1234567:my-trial-bot-token-abcdefghij (the emulator creates that bot)
  2. pay: the "Pay" button's link is the fake's checkout page: curl -X POST '<that link>'
  3. your new bot:   $chat --token <the token you pasted>    (/start, /admin)
  operators' bot:    $chat --token $master --user $operator   (/clients, /stats)
Leave trial mode: make down, then make up with the real tokens in .env.
EOF
}

case "${1:-}" in
  wait) wait_ready "${2:-300}" ;;
  trial-help) trial_help ;;
  tag) image_tag ;;
  record) record_release "${2:-}" ;;
  previous) previous_release ;;
  keep-images) keep_images ;;
  uninstall) uninstall ;;
  redis-restore) redis_restore "${2:-}" ;;
  restore-redis-volume) restore_redis_volume "$2" "$3" "$4" ;;
  *) die "usage: $0 wait|tag|record|previous|keep-images|uninstall|redis-restore|trial-help" ;;
esac
