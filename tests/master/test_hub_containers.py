"""Hubs as Docker containers (issue 13), through the master on a real Docker Engine, with
webhooks through a real Caddy: the production path of DEPLOY_BACKEND=docker with the shared
placement.

Caddy runs as compose runs it, in a container on the fleet's network (Debian's binary from
scripts/caddy.sh, mounted read-only into the base image), so it reaches bots by container name:
`botfleet-<fleet>-<tenant_id>:8080` for a dedicated bot, `botfleet-<fleet>-hub-<n>:8080` for a
hub's tenants. The emulator delivers webhooks to 127.0.0.1 only: a relay there forwards to
Caddy. The bots reach PostgreSQL, Redis and the emulator through relays on the network's
gateway (tests/test_docker_backend.Relay). The whole journey is one test (each hub or bot
container costs seconds of start-up on this machine).
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

import aiohttp
import asyncpg
import docker
import pytest

from core.plans import Catalog, parse_plans
from core.secrets import SecretBox, generate_key
from database.redis_tenants import remove_tenant_redis
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
            dedicated, clients, capacity=10, scan_interval=0.3, webhooks=True, stop_timeout=10
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

    async def provision(plan: str, username: str) -> tuple[str, Customer]:
        token = await harness.new_bot(username)
        reply = await harness.api.provision(token, plan=plan, business_name="Салон «Ромашка»")
        assert reply.status == 201, reply.body
        tids.append(reply.body["tenant_id"])
        return reply.body["tenant_id"], Customer(harness.tg, token, 515151, "Анна")

    # Two tenants whose plan is shared: one hub container, both answer by webhook through
    # Caddy to it, and neither ever polls.
    b, boris = await provision("lite", "hub_b_bot")
    a, anna = await provision("lite", "hub_a_bot")
    assert containers_of(api, a) == [] and in_hubs(clients) == {a: "hub-1", b: "hub-1"}
    (hub,) = api.containers.list(
        all=True, filters={"label": [f"{LABEL_HUB}=hub-1", f"{LABEL_FLEET}={fleet}"]}
    )
    assert hub.name == f"botfleet-{fleet}-hub-1"
    for customer in (anna, boris):
        await customer.ask("/start", "Ромашка")
        assert await harness.tg.calls(customer.token, "getUpdates") == []
    print(f"hub: two tenants answering after {time.monotonic() - started:.1f} s")

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

    # The hub killed: its tenants are crashed until the reconciler starts it again.
    hub.kill()
    await eventually(lambda: _state(harness, b, RuntimeState.CRASHED), what="crashed", timeout=20)
    actions = await harness.master.reconciler.run_once()
    assert sorted((x.act, x.tenant_id) for x in actions) == sorted(
        [(Act.RESTART, a), (Act.RESTART, b)]
    ), actions
    await eventually(lambda: _running(clients, {a, b}), what="the hub's tenants up", timeout=30)
    print(f"hub: restarted by the reconciler after {time.monotonic() - started:.1f} s")
    for customer in (anna, boris):
        await customer.ask("/start", "Ромашка")

    # A new master (a restart) adopts the running hub: nothing to do, the same container.
    second = await make_harness(backend=backend())
    second.master.deps.config = deps.config
    found = await second.backend.list()
    assert found[a].state is RuntimeState.RUNNING and found[b].state is RuntimeState.RUNNING
    assert await second.master.reconciler.run_once() == []
    (again,) = api.containers.list(
        filters={"label": [f"{LABEL_HUB}=hub-1", f"{LABEL_FLEET}={fleet}"]}
    )
    assert again.id == hub.id

    # A moves to a container of its own and back into the hub; its webhook follows it, and
    # at no moment do both runtimes serve its token.
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
        before = await anna.seen()  # (a new container: Telegram retries until it listens)
        await anna.send("/start")
        await anna.wait("Ромашка", after=before, timeout=40)
        print(f"hub: moved to {to} and answering after {time.monotonic() - started:.1f} s")
    assert await harness.tg.calls(anna.token, "getUpdates") == []

    # The tenants leave the hub: the last one out removes the hub container.
    await second.backend.remove(a)
    assert in_hubs(clients) == {b: "hub-1"}
    await second.backend.remove(b)
    assert (
        api.containers.list(
            all=True, filters={"label": [f"{LABEL_HUB}=hub-1", f"{LABEL_FLEET}={fleet}"]}
        )
        == []
    )
    print(f"hub journey: {time.monotonic() - started:.1f} s")


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
