#!/usr/bin/env bash
# The operator's path of docs/operations.md, for real, on this machine (about 4.5 minutes, image
# builds included). `make test` runs it (tests/ops/test_operator_drill.py, 2 tenants); run it by
# hand too after changing the Makefile, compose files or scripts/stack.sh.
#
#   scripts/operator_drill.sh            # in a scratch worktree of HEAD; removed afterwards
#   DRILL_KEEP=1 scripts/operator_drill.sh          # leave the worktree (and a failed fleet) for a look
#   DRILL_DOCKERD_RESTART=1 scripts/operator_drill.sh   # also restart dockerd (only when this
#                                                   # machine's engine is yours alone; an engine
#                                                   # of its own: tests/ops/test_dockerd_restart.py)
#   DRILL_FRESH_VENV=1 scripts/operator_drill.sh    # make install from nothing (default: from a
#                                                   # copy of this checkout's .venv)
#
# Steps, each followed by "every tenant's bot answers /start" (through the trial stack's
# Telegram emulator, a new customer each time):
#   1. a fresh checkout, `make install`, a .env from .env.example by `make env`'s code;
#   2. `make up OFFLINE=1 TRIAL=1` (waits for health), N tenants provisioned through the API;
#   3. `make down`, `make up OFFLINE=1 TRIAL=1` (compose re-creates its network);
#   4. optional: dockerd restarted;
#   5. an upgrade: a new commit, `make up OFFLINE=1 TRIAL=1`: every bot moves to the new client
#      image (in batches: master_bot/rollout.py);
#   6. `make rollback`: every bot back on the previous client image;
#   7. `make uninstall YES=1`: no container, volume or network of the fleet is left.
#
# Isolation: its own compose project, FLEET_NAME, network, subnet and 127.0.0.1 ports, so a real
# fleet (or a test run) on the same engine is not touched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TENANTS="${DRILL_TENANTS:-3}"
ID="drill$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
DIR="${DRILL_DIR:-${TMPDIR:-/tmp}/botfleet-$ID}"
STARTED="$(date +%s)"

log() { echo "drill [$(($(date +%s) - STARTED)) s]: $*" >&2; }
die() { echo "drill: FAILED: $*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A /24 in 172.31.0.0/16 that overlaps no network of the engine (a wider one, e.g. a /16 a
# benchmark made, counts too: Docker refuses an overlapping pool).
free_subnet() {
  local taken
  taken="$(for n in $(docker network ls -q); do
    docker network inspect "$n" --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null
  done)"
  python3 - "$taken" <<'PY' || die "no free /24 in 172.31.0.0/16"
import ipaddress, random, sys
taken = [ipaddress.ip_network(s, strict=False) for s in sys.argv[1].split() if ":" not in s]
candidates = list(range(100, 250))
random.shuffle(candidates)
for n in candidates:
    net = ipaddress.ip_network(f"172.31.{n}.0/24")
    if not any(net.overlaps(t) for t in taken):
        print(n)
        sys.exit(0)
sys.exit(1)
PY
}

cleanup() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -n "${DRILL_KEEP:-}" ]; then
    log "kept for a look: $DIR (project $ID; make -C $DIR uninstall YES=1 PROJECT=$ID TRIAL=1)"
    return
  fi
  if [ -d "$DIR" ]; then
    make -C "$DIR" --no-print-directory uninstall YES=1 PROJECT="$ID" TRIAL=1 >/dev/null 2>&1 || true
    [ -n "${DRILL_KEEP:-}" ] || { git -C "$ROOT" worktree remove --force "$DIR" 2>/dev/null || rm -rf "$DIR"; }
  fi
  [ "$rc" = 0 ] && log "passed" || log "failed (exit $rc)"
}
trap cleanup EXIT

m() { make -C "$DIR" --no-print-directory PROJECT="$ID" TRIAL=1 "$@"; }

# Every tenant's bot answers /start from a new customer within $1 seconds; with $2, every
# tenant's container runs that image.
all_answer() {
  local timeout="$1" image="${2:-}"
  "$DIR/.venv/bin/python" - "$timeout" "$image" "$ID" "$TELEGRAM_PORT" "$DIR/.drill-tokens" <<'PY'
import asyncio, secrets, subprocess, sys, time
from telegram_emulator.driver import EmulatorClient

timeout, image, fleet, port, tokens_file = sys.argv[1:]
tokens = dict(line.split(" ", 1) for line in open(tokens_file).read().split("\n") if line)

def images() -> dict[str, str]:
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=botfleet.fleet={fleet}", "--format",
         '{{.Label "botfleet.tenant"}} {{.Image}}'],
        capture_output=True, text=True, check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line)

async def main() -> None:
    deadline = time.monotonic() + float(timeout)
    if image:
        while True:
            running = images()
            wrong = {t: i for t, i in running.items() if i != image}
            if set(running) >= set(tokens) and not wrong:
                break
            if time.monotonic() > deadline:
                sys.exit(f"not every bot runs {image} after {timeout} s: {running}")
            await asyncio.sleep(2)
    async with EmulatorClient(f"http://127.0.0.1:{port}") as tg:
        async def one(tenant: str, token: str) -> None:
            user = 600_000 + secrets.randbelow(300_000)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    sys.exit(f"{tenant} did not answer /start within {timeout} s")
                await tg.send_message(token, user, "/start", first_name="Drill")
                try:
                    await tg.wait_for_message(token, user, timeout=min(20.0, left))
                    return
                except (TimeoutError, AssertionError):
                    user += 1  # a bot that was down missed it: ask again as someone new
        await asyncio.gather(*(one(t, tok) for t, tok in tokens.items()))
    print(f"all {len(tokens)} bots answered /start", file=sys.stderr)

asyncio.run(main())
PY
}

provision() {
  "$DIR/.venv/bin/python" - "$TENANTS" "$MASTER_API_PORT" "$DIR/.env" "$DIR/.drill-tokens" <<'PY'
import json, secrets, sys, urllib.request
from dotenv import dotenv_values

count, port, env_file, tokens_file = sys.argv[1:]
api = dotenv_values(env_file)["MASTER_API_TOKEN"]
lines = []
for i in range(int(count)):
    token = f"{7000 + i}:drill-bot-{secrets.token_hex(12)}"
    body = {"plan": "basic", "period_days": 30, "business_name": f"Drill {i}",
            "bot_token": token, "owner_telegram_id": 7000 + i, "locale": "ru",
            "timezone": "Europe/Moscow"}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/tenants", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {api}", "Content-Type": "application/json",
                 "Idempotency-Key": f"drill-{secrets.token_hex(6)}"})
    with urllib.request.urlopen(request, timeout=180) as response:
        tenant = json.load(response)["tenant_id"]
    lines.append(f"{tenant} {token}")
    print(f"provisioned {tenant}", file=sys.stderr)
open(tokens_file, "w").write("\n".join(lines) + "\n")
PY
}

client_image() { docker inspect --format '{{.Config.Image}}' "$(docker ps -q --filter "label=botfleet.fleet=$ID" | head -n 1)"; }

# 1. a fresh checkout and its .env
log "scratch worktree of HEAD in $DIR (project and fleet $ID)"
git -C "$ROOT" worktree add --quiet --detach "$DIR" HEAD
# `make install` starts from a copy of this checkout's venv when there is one (a cache, as CI
# keeps one): it then only re-installs botfleet itself, editable from the worktree, and checks
# the pinned dependencies are there. DRILL_FRESH_VENV=1 makes the venv from nothing.
if [ -z "${DRILL_FRESH_VENV:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
  cp -a "$ROOT/.venv" "$DIR/.venv"
fi
m install >/dev/null
# (from /, so that only the venv's own idea of where botfleet is counts)
(cd / && "$DIR/.venv/bin/python" -c 'import pathlib, sys, master_bot
sys.exit(not pathlib.Path(master_bot.__file__).resolve().is_relative_to(sys.argv[1]))' "$DIR") \
  || die "the drill's venv does not import botfleet from the worktree"
log "make install done"
subnet="$(free_subnet)"
TELEGRAM_PORT="$(free_port)"
MASTER_API_PORT="$(free_port)"
{
  cat "$DIR/.env.example"
  echo "POSTGRES_PORT=$(free_port)"
  echo "REDIS_PORT=$(free_port)"
  echo "MASTER_API_PORT=$MASTER_API_PORT"
  echo "WEBHOOK_PORT=$(free_port)"
  echo "TELEGRAM_PORT=$TELEGRAM_PORT"
  echo "YOOKASSA_PORT=$(free_port)"
  echo "WEB_PORT=$(free_port)"
  echo "BOTFLEET_NETWORK=$ID-net"
  echo "CLIENT_NETWORK=$ID-net"
  echo "BOTFLEET_SUBNET=172.31.$subnet.0/24"
  echo "BOTFLEET_GATEWAY=172.31.$subnet.1"
  echo "WEBHOOK_TRUSTED_PROXIES=172.31.$subnet.1/32"
  echo "HEALTH_INTERVAL=${DRILL_HEALTH_INTERVAL:-2s}"  # make up waits for these checks
} | sed "s/^FLEET_NAME=.*/FLEET_NAME=$ID/" >"$DIR/.env.drill-template"
(cd "$DIR" && .venv/bin/python -m scripts.init_env --template .env.drill-template >/dev/null)

# 2. up, provision, /start
log "make up OFFLINE=1 TRIAL=1"
m up OFFLINE=1 >"$DIR/.drill-up1.log" 2>&1 || { tail -n 30 "$DIR/.drill-up1.log" >&2; die "make up"; }
provision
all_answer 180
first_image="$(client_image)"
log "running $first_image"

# 3. down and up
log "make down, make up"
m down >/dev/null 2>&1 || die "make down"
[ -z "$(docker ps -q --filter "label=botfleet.fleet=$ID")" ] || die "bots still running after make down"
m up OFFLINE=1 >"$DIR/.drill-up2.log" 2>&1 || { tail -n 30 "$DIR/.drill-up2.log" >&2; die "make up after make down"; }
all_answer 240

# 4. dockerd restart (opt-in)
if [ -n "${DRILL_DOCKERD_RESTART:-}" ]; then
  log "restarting dockerd"
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker; then
    systemctl restart docker
  else
    bash "$ROOT/scripts/docker_engine.sh" down && bash "$ROOT/scripts/docker_engine.sh" engine >/dev/null
  fi
  m up OFFLINE=1 >"$DIR/.drill-up3.log" 2>&1 || die "make up after the dockerd restart"
  all_answer 300
fi

# 5. an upgrade: a new commit, make up
log "upgrade: a new commit, make up OFFLINE=1 TRIAL=1"
echo "# drill $ID" >>"$DIR/client_bot/__init__.py"
git -C "$DIR" -c user.name=drill -c user.email=drill@localhost commit --quiet -am "drill upgrade"
new_tag="$(STACK_ROOT="$DIR" bash "$DIR/scripts/stack.sh" tag)"
m up OFFLINE=1 >"$DIR/.drill-up4.log" 2>&1 || { tail -n 30 "$DIR/.drill-up4.log" >&2; die "make up of the upgrade"; }
all_answer 420 "botfleet-client:$new_tag"
log "every bot on botfleet-client:$new_tag"

# 6. rollback
log "make rollback"
m rollback >"$DIR/.drill-rollback.log" 2>&1 || { tail -n 30 "$DIR/.drill-rollback.log" >&2; die "make rollback"; }
all_answer 420 "$first_image"
log "every bot back on $first_image"

# 7. uninstall
log "make uninstall YES=1"
m uninstall YES=1 >/dev/null 2>&1 || die "make uninstall"
[ -z "$(docker ps -aq --filter "label=botfleet.fleet=$ID")" ] || die "containers of the fleet left"
[ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$ID")" ] || die "stack containers left"
[ -z "$(docker volume ls -q --filter "label=com.docker.compose.project=$ID")" ] || die "volumes left"
! docker network inspect "$ID-net" >/dev/null 2>&1 || die "network $ID-net left"
