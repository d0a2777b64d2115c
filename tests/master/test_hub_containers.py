"""Hubs as Docker containers (issue 13), through the master on a real Docker Engine, with
webhooks through a real Caddy: the production path of DEPLOY_BACKEND=docker with the shared
placement.

Caddy runs as compose runs it, in a container on the fleet's network (Debian's binary from
scripts/caddy.sh, mounted read-only into the base image), so it reaches bots by container name:
`botfleet-<fleet>-<tenant_id>:8080` for a dedicated bot, `botfleet-<fleet>-hub-<n>:8080` for a
hub's tenants. The emulator delivers webhooks to 127.0.0.1 only: a relay there forwards to
Caddy. The bots reach PostgreSQL, Redis and the emulator through relays on the network's
gateway (tests/test_docker_backend.Relay). The whole journey is one test (each hub or bot
container costs seconds of start-up on this machine): hubs of capacity 2, so a third shared
tenant gets a second hub container and the last tenant out of a hub removes it; from inside a
hub, a tenant's own credentials reach nothing of a neighbour's; a neighbour whose handler raises,
who is flooded with 2,000 updates, whose token is revoked or who is deleted leaves the others
answering (a /start within 1 s through the flood); a move in the middle of a booking dialog
continues it, and a move cut short by the master's death is finished by the next master with
exactly one runtime serving the tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import docker
import pytest

from core.plans import Catalog, parse_plans
from core.secrets import SecretBox, generate_key
from database.redis_tenants import key_prefix, remove_tenant_redis
from database.roles import login_role
from database.tenants import drop_tenant_database
from master_bot.deploy.base import RuntimeState
from master_bot.deploy.docker import (
    HUB_UID_BASE,
    LABEL_FLEET,
    LABEL_HUB,
    LABEL_MANAGED,
    LABEL_TENANT,
    DockerBackend,
    docker_client_factory,
)
from master_bot.deploy.hub import PlacedBackend, with_docker_hubs
from master_bot.deploy.process import PLATFORM_ONLY
from master_bot.deps import Deps
from master_bot.ingress import render_caddyfile, sync_routes
from master_bot.reconciler import Act
from tests.client.conftest import Customer
from tests.client.test_errors import RU, rename
from tests.client.test_webhook import (  # noqa: F401 - caddy: a fixture
    Routes,
    caddy,
    caddy_binary,
    caddy_config,
    post,
    start_update,
)
from tests.docker_support import (  # noqa: F401 - pytest fixtures
    RUN_ID,
    RUN_LABEL,
    DockerEnv,
    eventually,
    fixture_docker_api,
    fixture_docker_env,
)
from tests.master.conftest import Harness
from tests.master.test_docker_master import containers_of, fleet_name, on_network
from tests.master.test_placement import seed
from tests.master.test_provision_crash import SimulatedCrashError
from tests.master.test_spec import config as spec_config
from tests.master.test_spec import tenant as spec_tenant
from tests.test_docker_backend import Relay

pytestmark = pytest.mark.engine  # shares the Docker Engine: one worker runs these in turn

PLANS = """{"plans": [
  {"id": "basic", "title": "Basic", "price_rub": "990.00", "period_days": 30},
  {"id": "lite", "title": "Lite", "price_rub": "490.00", "period_days": 30, "placement": "shared"}
]}"""
CADDY_IMAGE = "botfleet-base:bookworm"  # Debian's caddy binary is mounted into it


def caddy_container(api: docker.DockerClient, network: str, folder: Path) -> tuple[Any, str]:
    """Caddy on the fleet's network (as the compose service): admin API and site on its own
    address; returns the container and that address."""
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    (folder / "Caddyfile").write_text("{\n\tadmin 0.0.0.0:2019\n}\n:8443 {\n\trespond 404\n}\n")
    (folder / "Caddyfile").chmod(0o644)
    container = api.containers.run(
        CADDY_IMAGE,
        ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"],
        detach=True,
        name=f"bf-test-caddy-{RUN_ID}-{secrets.token_hex(3)}",
        network=network,
        user="10001:10001",
        read_only=True,
        tmpfs={"/tmp": ""},  # noqa: S108 - the container's own
        environment={"HOME": "/tmp", "XDG_DATA_HOME": "/tmp/d", "XDG_CONFIG_HOME": "/tmp/c"},  # noqa: S108
        volumes={
            caddy_binary(): {"bind": "/usr/bin/caddy", "mode": "ro"},
            str(folder): {"bind": "/etc/caddy", "mode": "ro"},
        },
        labels={RUN_LABEL: RUN_ID},
    )
    container.reload()
    address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    return container, address


def in_hubs(clients: Path) -> dict[str, str]:
    """tenant id -> hub, as every hub reports it in its status.json."""
    found: dict[str, str] = {}
    for status in (clients / "hubs").glob("hub-*/status.json"):
        with contextlib.suppress(OSError, ValueError):
            for tid in json.loads(status.read_text())["tenants"]:
                found[tid] = status.parent.name
    return found


class OneRuntime:
    """Samples, while a move runs, whether the tenant's dedicated container runs and whether a
    hub has it; both at once is the fault a move must never make."""

    def __init__(self, api: docker.DockerClient, clients: Path, fleet: str, tid: str) -> None:
        self.api, self.clients, self.name, self.tid = api, clients, f"botfleet-{fleet}-{tid}", tid
        self.samples: list[tuple[bool, bool]] = []
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> tuple[bool, bool]:
        running = bool(self.api.containers.list(filters={"name": self.name, "status": "running"}))
        return running, self.tid in in_hubs(self.clients)

    async def _run(self) -> None:
        while True:
            self.samples.append(await asyncio.to_thread(self._sample))
            await asyncio.sleep(0.05)

    def __enter__(self) -> OneRuntime:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def check(self) -> None:
        assert len(self.samples) >= 5, self.samples
        assert (True, True) not in self.samples, "two runtimes served one token at once"


@pytest.mark.timeout(300)
async def test_hub_containers_with_webhooks_moves_crashes_and_adoption(
    make_harness: Callable[..., Awaitable[Harness]],
    docker_env: DockerEnv,
    docker_api: docker.DockerClient,
    tmp_path: Path,
) -> None:
    fleet = fleet_name()
    clients = tmp_path / "clients"
    factory = docker_client_factory(docker_env.docker_host or None, timeout=60)

    def backend() -> PlacedBackend:
        dedicated = DockerBackend(
            docker_env.image, fleet=fleet, stop_timeout=5, client_factory=factory
        )
        return with_docker_hubs(
            dedicated, clients, capacity=2, scan_interval=0.3, webhooks=True, stop_timeout=10
        )

    placed = backend()
    assert isinstance(placed.dedicated, DockerBackend)
    harness = await make_harness(backend=placed)
    relay = await on_network(harness, placed.dedicated)
    proxy, caddy_ip = caddy_container(docker_api, placed.dedicated.network, tmp_path / "caddy")
    outside = Relay("127.0.0.1")  # where the emulator delivers: to Caddy
    # Telegram retries a webhook it could not deliver for a long while; the emulator gives up
    # after 1 s by default, shorter than a hub container's start-up.
    harness.emulator.webhook_max_attempts = 100
    deps = harness.master.deps
    deps.config = replace(
        deps.config,
        fleet_name=fleet,
        plans=Catalog(parse_plans(PLANS)),
        webhook_base_url=await outside.expose(f"http://{caddy_ip}:8443"),
        caddy_admin_url=f"http://{caddy_ip}:2019",
        webhook_proxy_listen=":8443",
    )
    tids: list[str] = []
    try:
        await eventually(
            lambda: _answers(f"http://{caddy_ip}:8443/", 404), what="caddy", timeout=20
        )
        await _journey(harness, make_harness, backend, docker_api, clients, fleet, tids)
    finally:
        await relay.close()
        await outside.close()
        proxy.remove(force=True)
        for container in docker_api.containers.list(
            all=True, filters={"label": f"{LABEL_FLEET}={fleet}"}
        ):
            container.remove(force=True)
        conn = await asyncpg.connect(harness.pg_dsn)
        try:
            for tid in tids:
                await drop_tenant_database(conn, tid, drop_data=True, fleet=fleet)
                await remove_tenant_redis(harness.redis, tid, drop_data=True, fleet=fleet)
        finally:
            await conn.close()


async def _answers(url: str, status: int) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            return r.status == status
    except aiohttp.ClientError:
        return False


async def _journey(
    harness: Harness,
    make_harness: Callable[..., Awaitable[Harness]],
    backend: Callable[[], PlacedBackend],
    api: docker.DockerClient,
    clients: Path,
    fleet: str,
    tids: list[str],
) -> None:
    started = time.monotonic()
    deps = harness.master.deps

    def lap(what: str) -> None:
        print(f"hub: {what} after {time.monotonic() - started:.1f} s")

    async def provision(plan: str, username: str) -> tuple[str, Customer]:
        token = await harness.new_bot(username)
        reply = await harness.api.provision(token, plan=plan, business_name="Салон «Ромашка»")
        assert reply.status == 201, reply.body
        tids.append(reply.body["tenant_id"])
        return reply.body["tenant_id"], Customer(harness.tg, token, 515151, "Анна")

    # Two tenants whose plan is shared: one hub container (full: its capacity is 2), both
    # answer by webhook through Caddy to it, and neither ever polls.
    b, boris = await provision("lite", "hub_b_bot")
    a, anna = await provision("lite", "hub_a_bot")
    await seed(harness.pg_dsn, a)  # its services and hours (A books later), before any update
    assert containers_of(api, a) == [] and in_hubs(clients) == {a: "hub-1", b: "hub-1"}
    (hub,) = hub_containers(api, fleet, "hub-1")
    assert hub.name == f"botfleet-{fleet}-hub-1"
    for customer in (anna, boris):
        await customer.ask("/start", "Ромашка")
        assert await harness.tg.calls(customer.token, "getUpdates") == []
    lap("two tenants answering")

    # The hub container: the client containers' hardening, its folder its only mount, and no
    # platform credential or tenant secret in its environment.
    attrs = hub.attrs
    host, config = attrs["HostConfig"], attrs["Config"]
    assert config["Labels"][LABEL_MANAGED] == "true" and config["Labels"][LABEL_FLEET] == fleet
    assert LABEL_TENANT not in config["Labels"]
    assert config["Cmd"] == ["python", "-m", "client_bot.hub"]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"] and host["Privileged"] is False
    assert host["Memory"] > 0 and host["PidsLimit"] > 0 and host["NanoCpus"] > 0
    assert host["NetworkMode"] == placed_network(harness)
    uid = HUB_UID_BASE + 1
    assert config["User"] == f"{uid}:{uid}"
    folder = clients / "hubs" / "hub-1"
    assert [(m["Type"], m["Source"], m["Destination"]) for m in attrs["Mounts"]] == [
        ("bind", str(folder.resolve()), "/hub")
    ]
    assert "docker.sock" not in json.dumps(attrs)
    env = dict(e.split("=", 1) for e in config["Env"])
    image_env = {e.split("=", 1)[0] for e in api.images.get(hub.image.id).attrs["Config"]["Env"]}
    # The hub's environment names its folder and its limits, nothing else (no tenant's own).
    assert set(env) - image_env == {
        "HUB_DIR",
        "HUB_CAPACITY",
        "HUB_SCAN_INTERVAL",
        "HUB_WEBHOOK_LISTEN",
    }
    leaked = (PLATFORM_ONLY | {"BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "WEBHOOK_SECRET"}) & set(
        env
    )
    assert not leaked, leaked
    assert env["HUB_DIR"] == "/hub" and env["HUB_WEBHOOK_LISTEN"] == "0.0.0.0:8080"
    for path in (folder, folder / "tenants"):
        assert (path.stat().st_uid, path.stat().st_mode & 0o777) == (uid, 0o700)
    for path in (folder / "tenants").iterdir():
        assert (path.stat().st_uid, path.stat().st_mode & 0o777) == (uid, 0o600), path
    assert hub.exec_run(["ls", "/var/run/docker.sock"]).exit_code != 0
    assert hub.exec_run(["sh", "-c", "echo x > /x"]).exit_code != 0  # read-only root

    # A forged update with a wrong secret, through Caddy: 401 and nothing handled; the same
    # with B's own secret is handled (the refusal was the secret's).
    base = deps.config.webhook_base_url
    row = await deps.store.get(b)
    assert row is not None and row.webhook_secret_enc
    secret_b = deps.box.decrypt(b, row.webhook_secret_enc)
    seen = await boris.seen()
    forged = start_update(boris.id, 930001)
    assert await post(f"{base}/tg/{b}", forged, "wrong-secret-0123456789abcdef") == 401
    row_a = await deps.store.get(a)
    assert row_a is not None and row_a.webhook_secret_enc
    assert (
        await post(f"{base}/tg/{b}", forged, deps.box.decrypt(a, row_a.webhook_secret_enc)) == 401
    )
    assert await boris.seen() == seen
    assert await post(f"{base}/tg/{b}", forged, secret_b) == 200
    assert await boris.seen() == seen + 1

    # A full hub means a new hub: the third shared tenant gets a second hub container (its
    # own name, uid and folder), which Caddy routes to and which answers.
    c, carl = await provision("lite", "hub_c_bot")
    assert in_hubs(clients) == {a: "hub-1", b: "hub-1", c: "hub-2"}
    (hub_2,) = hub_containers(api, fleet, "hub-2")
    assert hub_2.name == f"botfleet-{fleet}-hub-2"
    assert hub_2.attrs["Config"]["User"] == f"{HUB_UID_BASE + 2}:{HUB_UID_BASE + 2}"
    await carl.ask("/start", "Ромашка")
    assert await harness.tg.calls(carl.token, "getUpdates") == []
    lap("a full hub, a new hub: the third tenant answering")

    # The foundation's isolation attacks, from inside a hub container: with C's own
    # credentials (its file in the hub's folder), A's rows, role and Redis keys are refused.
    await anna.ask("/start", "Ромашка")  # A's keys (throttling: 10 s) are there to attack
    await attack_from_inside(harness, hub_2, me=c, victim=a, fleet=fleet)

    # Neighbours in one hub: B's handler raises (its table gone), B's user is told and A
    # answers; B flooded with 2,000 updates, A's /start is answered within a second.
    await rename(harness.pg_dsn, b, "customers", "customers_gone")
    try:
        told = await boris.ask("/start", RU)
        assert "попробуйте ещё раз" in told.plain_text
        await anna.ask("/start", "Ромашка")
    finally:
        await rename(harness.pg_dsn, b, "customers_gone", "customers")
    await boris.ask("/start", "Ромашка")
    flooder = Customer(harness.tg, boris.token, 717171, "Флуд")
    await flooder.ask("/start", "Ромашка")  # Telegram sends only to chats that exist
    proxy = urlsplit(deps.config.caddy_admin_url).hostname  # straight to Caddy (no relay)
    url = f"http://{proxy}:8443/tg/{b}"
    took, left = await flood_one_answer_another(url, secret_b, flooder.id, anna)
    print(f"hub: a neighbour answered in {took * 1000:.0f} ms, {left} flood updates to go")
    assert left > 0, "the flood was over before the neighbour asked: no flood"
    assert took < 1.0, f"/start of a flooded tenant's neighbour took {took:.2f} s"
    await boris.ask("/start", "Ромашка")  # B itself is through its flood and answers
    lap("a raising handler and a flood, the neighbour answering")

    # The hub killed: its tenants are crashed until the reconciler starts it again.
    hub.kill()
    await eventually(lambda: _state(harness, b, RuntimeState.CRASHED), what="crashed", timeout=20)
    actions = await harness.master.reconciler.run_once()
    assert sorted((x.act, x.tenant_id) for x in actions) == sorted(
        [(Act.RESTART, a), (Act.RESTART, b)]
    ), actions
    await eventually(lambda: _running(clients, {a, b}), what="the hub's tenants up", timeout=30)
    lap("restarted by the reconciler")
    for customer in (anna, boris):
        await customer.ask("/start", "Ромашка")

    # A new master (a restart) adopts the running hub: nothing to do, the same container.
    second = await make_harness(backend=backend())
    second.master.deps.config = deps.config
    found = await second.backend.list()
    assert {t: found[t].state for t in (a, b, c)} == dict.fromkeys((a, b, c), RuntimeState.RUNNING)
    assert await second.master.reconciler.run_once() == []
    (again,) = api.containers.list(
        filters={"label": [f"{LABEL_HUB}=hub-1", f"{LABEL_FLEET}={fleet}"]}
    )
    assert again.id == hub.id

    # A moves to a container of its own and back into the hub in the middle of a booking
    # dialog, which continues where it was; its webhook follows it, at no moment do both
    # runtimes serve its token, and B, in the hub A leaves and comes back to, answers on.
    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    button = next(x for row in services.buttons() for x in row if x.startswith("Стрижка"))
    calendar = await anna.press(services, button, "Выберите день")
    day = [x for row in calendar.buttons() for x in row if x.isdigit()][-1]
    slots = await anna.press(calendar, day, "Выберите время")
    slot = next(x for row in slots.buttons() for x in row if ":" in x)
    await anna.press(slots, slot, "Поделитесь номером телефона")  # FSM: waiting for a phone
    summary = None
    for to in ("dedicated", "shared"):
        with OneRuntime(api, clients, fleet, a) as watch:
            reply = await second.api.call(
                "POST", f"/api/v1/tenants/{a}/placement", json={"placement": to}
            )
            assert reply.status == 200, reply.body
            assert reply.body["runtime"]["state"] == "running", reply.body
        watch.check()
        dedicated = to == "dedicated"
        assert (len(containers_of(api, a)), a in in_hubs(clients)) == (
            int(dedicated),
            not dedicated,
        )
        await boris.ask("/start", "Ромашка")
        before = await anna.seen()  # (a new container: Telegram retries until it listens)
        if summary is None:
            await anna.send("+7 900 123-45-67")
            summary = await anna.wait("Проверьте запись", after=before, timeout=40)
            assert "Стрижка" in summary.plain_text and "+79001234567" in summary.plain_text
        else:
            assert in_hubs(clients)[a] == "hub-1"  # the hub with room, next to B
            await anna.click(summary, "✅ Подтвердить")
            await anna.wait("Вы записаны", after=before, timeout=40)
        lap(f"moved to {to} and answering")
    assert await harness.tg.calls(anna.token, "getUpdates") == []
    assert await bookings(harness, a) == ["confirmed"]

    # B's token revoked at @BotFather: when its runtime next asks Telegram (a restart, as the
    # reconciler's), the hub marks it and the master reports it; A, in the same hub
    # container, answers on. Then B is deleted through the API: A still answers.
    hub_1 = hub_containers(api, fleet, "hub-1")[0].id
    await harness.tg.revoke_bot(boris.token)
    await second.backend.restart(b)
    await eventually(lambda: _token_refused(second, b), what="B's token refused", timeout=20)
    shown = await second.api.call("GET", f"/api/v1/tenants/{b}")
    assert shown.body["runtime"]["state"] == "crashed", shown.body
    assert "token_refused" in shown.body["runtime"]["detail"], shown.body
    await anna.ask("/start", "Ромашка")
    deleted = await second.api.call("DELETE", f"/api/v1/tenants/{b}", params={"backup": "false"})
    assert deleted.status == 200, deleted.body
    assert in_hubs(clients) == {a: "hub-1", c: "hub-2"}
    await anna.ask("/start", "Ромашка")
    assert [h.id for h in hub_containers(api, fleet, "hub-1")] == [hub_1]  # never restarted
    lap("a revoked token, a deleted neighbour")

    # The master killed in the middle of a move to dedicated: after the hub let A go (the hub,
    # empty now, is removed) and before A's container was created. A new master's reconciler
    # finishes the move: exactly one runtime serves A, its route follows, its booking is there.
    placed = second.backend
    assert isinstance(placed, PlacedBackend)

    async def killed(spec: object) -> None:
        raise SimulatedCrashError("the master was killed here")

    placed.dedicated.deploy = killed  # type: ignore[method-assign,assignment]
    with OneRuntime(api, clients, fleet, a) as watch:
        reply = await second.api.call(
            "POST", f"/api/v1/tenants/{a}/placement", json={"placement": "dedicated"}
        )
        assert reply.status == 500, reply.body
        assert containers_of(api, a) == [] and a not in in_hubs(clients)
        assert hub_containers(api, fleet, "hub-1") == []  # an empty hub is removed
        third = await make_harness(backend=backend())
        third.master.deps.config = deps.config
        actions = await third.master.reconciler.run_once()
        assert [(x.act, x.tenant_id) for x in actions] == [(Act.DEPLOY, a)], actions
    watch.check()
    assert len(containers_of(api, a)) == 1 and a not in in_hubs(clients)
    before = await anna.seen()
    await anna.send("/start")
    await anna.wait("Ромашка", after=before, timeout=40)
    assert await bookings(harness, a) == ["confirmed"]
    assert await third.master.reconciler.run_once() == []  # settled
    lap("a move cut short by the master's death, finished")

    # The last tenant leaves the second hub: its container is removed too.
    await third.backend.remove(c)
    assert hub_containers(api, fleet, "hub-2") == [] and in_hubs(clients) == {}
    lap("hub journey")


def hub_containers(api: docker.DockerClient, fleet: str, hub: str) -> list[Any]:
    """The fleet's container of that hub, running or not (another fleet may have a hub-1)."""
    return list(
        api.containers.list(
            all=True, filters={"label": [f"{LABEL_HUB}={hub}", f"{LABEL_FLEET}={fleet}"]}
        )
    )


async def bookings(harness: Harness, tenant_id: str) -> list[str]:
    rows = await harness.fetch(f'SELECT status FROM "{tenant_id}".bookings')
    return [r["status"] for r in rows]


# Run inside a hub container as the hub's uid, with one tenant's own credentials (its file in
# the hub's folder): the attacks of tests/test_tenant_isolation.py on a neighbour, and the same
# reads of its own data, which must work (the attacks could succeed if isolation failed).
ATTACK = r"""
import asyncio, json, os, sys
import asyncpg
from dotenv import dotenv_values
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

me, victim, role, key, own = sys.argv[1:6]
env = dotenv_values(f"/hub/tenants/{me}.env")


async def main():
    out = {"files": sorted(os.listdir("/hub/tenants"))}
    conn = await asyncpg.connect(env["DATABASE_URL"])
    for name, sql in (
        ("own_select", f'SELECT first_name FROM "{me}".customers'),
        ("select", f'SELECT first_name FROM "{victim}".customers'),
        ("insert", f'INSERT INTO "{victim}".customers (telegram_id, first_name) VALUES (1, $$x$$)'),
        ("set_role", f'SET ROLE "{role}"'),
    ):
        try:
            await conn.execute(sql)
            out[name] = "done"
        except asyncpg.InsufficientPrivilegeError:
            out[name] = "refused"
    await conn.close()
    redis = Redis.from_url(env["REDIS_URL"])
    for name, command in (("own_get", ("GET", own)), ("get", ("GET", key)), ("del", ("DEL", key))):
        try:
            await redis.execute_command(*command)
            out[name] = "done"
        except NoPermissionError:
            out[name] = "refused"
    await redis.aclose()
    print(json.dumps(out))


asyncio.run(main())
"""


async def attack_from_inside(
    harness: Harness, hub: Any, *, me: str, victim: str, fleet: str
) -> None:
    keys = await harness.redis.keys(f"{key_prefix(victim, fleet)}*")
    assert keys, "the victim has Redis keys to attack"
    key = keys[0].decode() if isinstance(keys[0], bytes) else str(keys[0])
    argv = [me, victim, login_role(victim, fleet), key, f"{key_prefix(me, fleet)}x"]
    result = await asyncio.to_thread(hub.exec_run, ["python", "-c", ATTACK, *argv])
    output = result.output.decode(errors="replace")
    assert result.exit_code == 0, output[-2000:]
    assert json.loads(output.strip().splitlines()[-1]) == {
        "files": [f"{me}.env"],  # its hub's folder: no other hub's tenants in reach
        "own_select": "done",
        "select": "refused",
        "insert": "refused",
        "set_role": "refused",
        "own_get": "done",
        "get": "refused",
        "del": "refused",
    }, output[-2000:]
    rows = await harness.fetch(f'SELECT first_name FROM "{victim}".customers')
    assert [r["first_name"] for r in rows] == ["Анна"]


FLOOD = 2_000


async def flood_one_answer_another(
    url: str, secret: str, user_id: int, neighbour: Customer
) -> tuple[float, int]:
    """FLOOD updates to one tenant's webhook through the proxy, 40 at a time (as Telegram's
    max_connections), every one answered 200; meanwhile, once the flood is under way, the
    neighbour's /start: how long it took, and how many flood updates were still unanswered."""
    answered = 0

    async def flood() -> list[int]:
        nonlocal answered
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=40)) as http:

            async def one(n: int) -> int:
                nonlocal answered
                async with http.post(
                    url, json=start_update(user_id, 960_000 + n), headers=headers
                ) as r:
                    answered += 1
                    return r.status

            return await asyncio.gather(*(one(n) for n in range(FLOOD)))

    flooding = asyncio.create_task(flood())
    try:
        await eventually(lambda: answered >= 100 or flooding.done(), what="the flood under way")
        started = time.monotonic()
        before = await neighbour.seen()
        await neighbour.send("/start")
        await neighbour.wait("Ромашка", after=before, timeout=10)
        took, left = time.monotonic() - started, FLOOD - answered
        statuses = await asyncio.wait_for(asyncio.shield(flooding), 120)
    finally:
        flooding.cancel()
    assert statuses == [200] * FLOOD, sorted(set(statuses))  # all handled: none to retry
    return took, left


async def _token_refused(harness: Harness, tid: str) -> bool:
    status = await harness.backend.status(tid)
    return status.state is RuntimeState.CRASHED and "token_refused" in status.detail


def placed_network(harness: Harness) -> str:
    backend = harness.backend
    assert isinstance(backend, PlacedBackend) and isinstance(backend.dedicated, DockerBackend)
    return backend.dedicated.network


def _running(clients: Path, tids: set[str]) -> bool:
    with contextlib.suppress(OSError, ValueError):
        report = json.loads((clients / "hubs" / "hub-1" / "status.json").read_text())["tenants"]
        return all(report.get(t, {}).get("state") == "running" for t in tids)
    return False


async def _state(harness: Harness, tid: str, state: RuntimeState) -> bool:
    return (await harness.backend.status(tid)).state is state


class _Hubs:
    """A backend as ingress.py asks it: which hub's webhook server each shared tenant is at."""

    def __init__(self) -> None:
        self.routes: dict[str, str] = {}

    def webhook_upstreams(self) -> dict[str, str]:
        return dict(self.routes)


async def test_the_reconciler_reroutes_a_tenant_that_landed_in_another_hub(
    caddy: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """sync_routes (run after the reconciler's deploys): a shared tenant's route follows it to
    another hub, a dedicated neighbour keeps its own, and nothing is routed to a tenant in no
    hub; the routes go to Caddy only when they changed."""
    box = SecretBox(generate_key())
    secret = box.encrypt("client_0000000042", "x" * 40)
    shared = spec_tenant(box, "basic", placement="shared", webhook_secret_enc=secret)
    dedicated = spec_tenant(
        box,
        "basic",
        tenant_id="client_0000000043",
        number=43,
        webhook_secret_enc=box.encrypt("client_0000000043", "y" * 40),
    )
    config = spec_config(
        clients_dir=tmp_path / "clients",
        webhook_base_url=caddy.url,
        caddy_admin_url=f"http://127.0.0.1:{caddy.admin}",
        webhook_proxy_listen=f":{caddy.port}",
        fleet_name="blue",
    )
    hubs = _Hubs()
    deps = cast(Deps, SimpleNamespace(config=config, store=Routes(shared, dedicated), backend=hubs))

    await sync_routes(deps)  # the shared tenant is in no hub (yet): no route to it
    loaded = await caddy_config(caddy)
    assert "/tg/client_0000000042" not in loaded
    assert "botfleet-blue-client_0000000043:8080" in loaded
    for hub in ("hub-1", "hub-2"):
        hubs.routes = {shared.tenant_id: f"botfleet-blue-{hub}:8080"}
        await sync_routes(deps)
        loaded = await caddy_config(caddy)
        assert f"botfleet-blue-{hub}:8080" in loaded and "/tg/client_0000000042" in loaded
        assert "botfleet-blue-client_0000000043:8080" in loaded
    assert "botfleet-blue-hub-1:8080" not in loaded
    # Unchanged: not loaded again (a route put into Caddy by hand meanwhile stays).
    by_hand = {
        shared.tenant_id: "botfleet-blue-hub-2:8080",
        dedicated.tenant_id: "botfleet-blue-client_0000000043:8080",
        "client_0000000099": "127.0.0.1:9",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{config.caddy_admin_url}/load",
            data=render_caddyfile(config, by_hand).encode(),
            headers={"Content-Type": "text/caddyfile"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
    await sync_routes(deps)
    assert "/tg/client_0000000099" in await caddy_config(caddy)
