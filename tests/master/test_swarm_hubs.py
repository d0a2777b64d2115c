"""Hubs as Swarm services and a fleet-wide upgrade on Swarm (issue 16), through the master on a
real one-node Swarm (the dockerd of its own that tests/test_swarm_backend.py starts): the
production path of DEPLOY_BACKEND=swarm with the shared placement.

20 tenants in two hub services and two dedicated ones, all real client bots answering /start
through the Telegram emulator; a rolling upgrade to an image whose bot never comes up halts at
its first batch (both dedicated services and a hub), the hub not reached keeps answering, and
the rollback brings that batch back to the previous image. The services use the host's
network (one node; PostgreSQL, Redis and the emulator on 127.0.0.1), so hubs poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import docker
import pytest

from core.plans import Catalog, parse_plans
from database.redis_tenants import remove_tenant_redis
from database.tenants import drop_tenant_database
from master_bot.deploy.base import RuntimeState
from master_bot.deploy.docker import (
    HUB_UID_BASE,
    LABEL_FLEET,
    LABEL_HUB,
    LABEL_MANAGED,
    LABEL_TENANT,
    docker_client_factory,
)
from master_bot.deploy.hub import PlacedBackend, with_docker_hubs
from master_bot.deploy.process import PLATFORM_ONLY
from master_bot.deploy.swarm import SwarmBackend, SwarmHubs
from master_bot.rollout import RolloutPolicy
from tests.client.conftest import Customer
from tests.docker_support import (  # noqa: F401 - pytest fixtures
    RUN_ID,
    RUN_LABEL,
    DockerEnv,
    eventually,
    fixture_docker_env,
)
from tests.master.conftest import Harness
from tests.master.test_upgrades import until
from tests.test_swarm_backend import swarm_host  # noqa: F401 - a fixture

# The one-node swarm's own dockerd: one worker runs these in turn.
pytestmark = pytest.mark.engine(dockerd="swarm")

PLANS = """{"plans": [
  {"id": "basic", "title": "Basic", "price_rub": "990.00", "period_days": 30},
  {"id": "lite", "title": "Lite", "price_rub": "490.00", "period_days": 30, "placement": "shared"}
]}"""
BROKEN_IMAGE = "botfleet-client:test-broken"
# The broken release: the client image whose every process exits at once, bots and hubs alike.
BROKEN = (
    'ENTRYPOINT ["python", "-c", '
    "\"import sys; print('this release is broken', flush=True); sys.exit(3)\"]\n"
)
SHARED, DEDICATED, CAPACITY = 20, 2, 10  # two hubs of 10


def _fleet() -> str:
    return f"s{RUN_ID}{secrets.token_hex(2)}"


@pytest.fixture
def swarm_api(swarm_host: str) -> Iterator[docker.DockerClient]:  # noqa: F811
    client = docker.DockerClient(base_url=swarm_host, timeout=60)
    yield client
    client.close()


def _services(api: docker.DockerClient, fleet: str) -> list[Any]:
    return list(api.services.list(filters={"label": f"{LABEL_FLEET}={fleet}"}))


async def _cleanup(harness: Harness, api: docker.DockerClient, fleet: str, tids: list[str]) -> None:
    for service in _services(api, fleet):
        with contextlib.suppress(docker.errors.NotFound):
            service.remove()
    for secret in api.secrets.list(filters={"label": f"{LABEL_FLEET}={fleet}"}):
        with contextlib.suppress(docker.errors.APIError):
            secret.remove()
    conn = await asyncpg.connect(harness.pg_dsn)
    try:
        for tid in tids:
            await drop_tenant_database(conn, tid, drop_data=True, fleet=fleet)
            await remove_tenant_redis(harness.redis, tid, drop_data=True, fleet=fleet)
    finally:
        await conn.close()


@pytest.mark.timeout(300)
async def test_hub_services_and_a_broken_upgrade_halted_and_rolled_back(
    make_harness: Callable[..., Awaitable[Harness]],
    swarm_host: str,  # noqa: F811
    swarm_api: docker.DockerClient,
    docker_env: DockerEnv,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    fleet = _fleet()
    clients = tmp_path / "clients"  # the harness's CLIENTS_DIR
    factory = docker_client_factory(swarm_host, timeout=60)
    # The broken release, built on the swarm's engine from the client image (no registry).
    dockerfile = f"FROM {docker_env.image}\nLABEL {RUN_LABEL}-image=broken\n{BROKEN}"
    await asyncio.to_thread(
        swarm_api.images.build, fileobj=io.BytesIO(dockerfile.encode()), tag=BROKEN_IMAGE, rm=True
    )

    def backend() -> PlacedBackend:
        dedicated = SwarmBackend(
            docker_env.image, network="host", fleet=fleet, stop_timeout=5, client_factory=factory
        )
        return with_docker_hubs(
            dedicated,
            clients,
            capacity=CAPACITY,
            scan_interval=0.3,
            webhooks=False,
            stop_timeout=10,
        )

    placed = backend()
    harness = await make_harness(backend=placed)
    deps = harness.master.deps
    deps.config = replace(deps.config, fleet_name=fleet, plans=Catalog(parse_plans(PLANS)))
    tids: list[str] = []
    try:
        await _journey(harness, make_harness, backend, swarm_api, fleet, tids, started)
    finally:
        await harness.master.upgrades.close()
        await _cleanup(harness, swarm_api, fleet, tids)


async def _journey(
    harness: Harness,
    make_harness: Callable[..., Awaitable[Harness]],
    backend: Callable[[], PlacedBackend],
    api: docker.DockerClient,
    fleet: str,
    tids: list[str],
    started: float,
) -> None:
    customers: dict[str, Customer] = {}

    async def provision(plan: str) -> str:
        token = await harness.new_bot()
        reply = await harness.api.provision(token, plan=plan, business_name="Салон «Ромашка»")
        assert reply.status == 201, reply.body
        tid = reply.body["tenant_id"]
        tids.append(tid)
        customers[tid] = Customer(harness.tg, token, 616161, "Анна")
        return str(tid)

    # All at once: a hub takes tenants up to its capacity, then the next one starts; the hubs
    # and the dedicated bots start side by side (each imports aiogram: seconds of CPU).
    placed = harness.backend
    assert isinstance(placed, PlacedBackend) and isinstance(placed.hubs.processes, SwarmHubs)
    placed.hubs.confirm_timeout = 120  # a loaded machine: the hubs start with everything else
    dedicated = await asyncio.gather(*(provision("basic") for _ in range(DEDICATED)))
    shared = await asyncio.gather(*(provision("lite") for _ in range(SHARED)))
    print(f"swarm: {len(tids)} tenants provisioned after {time.monotonic() - started:.1f} s")

    async def all_answer(who: list[str]) -> None:
        await asyncio.gather(*(customers[t].ask("/start", "Ромашка") for t in who))

    await all_answer(tids)
    print(f"swarm: all answered /start after {time.monotonic() - started:.1f} s")

    # Two hub services, each a tenant of no one; dedicated tenants as services of their own.
    hubs = {
        s.attrs["Spec"]["Labels"][LABEL_HUB]: s
        for s in _services(api, fleet)
        if LABEL_HUB in s.attrs["Spec"]["Labels"]
    }
    assert sorted(hubs) == ["hub-1", "hub-2"]
    assert {
        s.attrs["Spec"]["Labels"][LABEL_TENANT]
        for s in _services(api, fleet)
        if LABEL_TENANT in s.attrs["Spec"]["Labels"]
    } == set(dedicated)
    members = {h: placed.hubs._tenants_of(h) for h in hubs}
    assert sorted(len(m) for m in members.values()) == [10, 10]
    assert set().union(*members.values()) == set(shared)

    # A hub service: the client services' hardening, its folder its one bind mount, the
    # hub's own uid, pinned to this node, restarted on failure, and no secret in what
    # `docker service inspect` shows (its tenants' contracts are files in its folder).
    hub = hubs["hub-1"]
    spec = hub.attrs["Spec"]
    task = spec["TaskTemplate"]
    container = task["ContainerSpec"]
    assert spec["Name"] == f"botfleet-{fleet}-hub-1"
    assert spec["Labels"][LABEL_MANAGED] == "true" and spec["Labels"][LABEL_FLEET] == fleet
    assert LABEL_TENANT not in spec["Labels"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 1
    assert container["Args"] == ["python", "-m", "client_bot.hub"]
    assert container["ReadOnly"] is True and container["CapabilityDrop"] == ["ALL"]
    assert container["Init"] is True and "Secrets" not in container
    uid = HUB_UID_BASE + 1
    assert container["User"] == f"{uid}:{uid}"
    folder = (harness.clients_dir / "hubs" / "hub-1").resolve()
    mounts = sorted((m["Type"], m.get("Source"), m["Target"]) for m in container["Mounts"])
    assert mounts == [("bind", str(folder), "/hub"), ("tmpfs", None, "/tmp")]  # noqa: S108
    limits = task["Resources"]["Limits"]
    assert limits["MemoryBytes"] == 2**30 and limits["NanoCPUs"] == 2 * 10**9
    assert limits["Pids"] == 256
    assert task["RestartPolicy"]["Condition"] == "on-failure"
    node = api.info()["Swarm"]["NodeID"]
    assert task["Placement"]["Constraints"] == [f"node.id=={node}"]
    env = dict(e.split("=", 1) for e in container["Env"])
    assert set(env) == {"HUB_DIR", "HUB_CAPACITY", "HUB_SCAN_INTERVAL"}
    assert env["HUB_DIR"] == "/hub" and not PLATFORM_ONLY & set(env)
    inspected = json.dumps([s.attrs for s in _services(api, fleet)])
    for tid in tids:
        token = customers[tid].token
        assert token not in inspected and token.split(":", 1)[1] not in inspected, tid
    for path in (folder / "tenants").iterdir():
        assert (path.stat().st_uid, path.stat().st_mode & 0o777) == (uid, 0o600), path

    # A master restart: the services are adopted by label, the tenants by folder; nothing
    # to do and nothing re-created.
    ids = sorted(s.id for s in _services(api, fleet))
    second = await make_harness(backend=backend())
    second.master.deps.config = harness.master.deps.config
    found = await second.backend.list()
    assert {t: found[t].state for t in tids} == dict.fromkeys(tids, RuntimeState.RUNNING)
    assert await second.master.reconciler.run_once() == []
    assert sorted(s.id for s in _services(api, fleet)) == ids

    # The rolling upgrade to the broken image: batch 1 is both dedicated services and hub-1
    # (units: dedicated first, then hubs); none comes up, the upgrade halts there, hub-2 is
    # never touched and its 10 tenants keep answering.
    upgrades = harness.master.upgrades
    upgrades.policy = RolloutPolicy(first_batch=3, batch_size=3, max_batch=3, settle=1, timeout=4)
    upgrades.poll = 0.1
    reply = await harness.api.call(
        "POST", "/api/v1/upgrades", json={"image": BROKEN_IMAGE, "migrate": False}
    )
    assert reply.status == 202, reply.body
    halted = await until(harness, "halted", timeout=60)
    first_batch = {*dedicated, "hub-1"}
    assert set(halted["failed"]) == first_batch, halted
    assert halted["total"] == 4 and halted["done"] == 0 and halted["batches"] == 1, halted
    assert "batch 1: 3 bot(s) did not come up healthy" in halted["halted"], halted
    assert "1 bot(s) left on their current version" in halted["halted"], halted
    print(f"swarm: upgrade halted after {time.monotonic() - started:.1f} s")
    await all_answer(sorted(members["hub-2"]))
    hub_2 = api.services.get(hubs["hub-2"].id)  # the same service, never replaced
    assert hub_2.attrs["Spec"]["Labels"] == hubs["hub-2"].attrs["Spec"]["Labels"]
    image_of = {  # the image each service of the batch runs now: the broken one
        s.attrs["Spec"]["Labels"].get(LABEL_TENANT)
        or s.attrs["Spec"]["Labels"][LABEL_HUB]: s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"][
            "Image"
        ]
        for s in _services(api, fleet)
    }
    assert {u for u, i in image_of.items() if i.startswith(BROKEN_IMAGE)} == first_batch

    # Rolled back: the batch on the previous image again (a longer gate: real bots start).
    upgrades.policy = RolloutPolicy(first_batch=3, batch_size=3, max_batch=3, settle=1, timeout=60)
    reply = await harness.api.call("POST", "/api/v1/upgrades/current/rollback")
    assert reply.status == 200 and reply.body["state"] == "rolling_back", reply.body
    done = await until(harness, "rolled_back", timeout=90)
    assert done["rollback"] == {"total": 3, "done": 3}, done
    for s in _services(api, fleet):
        image = s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert not image.startswith(BROKEN_IMAGE), s.name
    print(f"swarm: rolled back after {time.monotonic() - started:.1f} s")
    await all_answer(tids)
    print(f"swarm: every tenant answering again after {time.monotonic() - started:.1f} s")


async def test_the_overlay_network_is_created_sized_for_the_fleet(
    swarm_host: str,  # noqa: F811
    swarm_api: docker.DockerClient,
    docker_env: DockerEnv,
) -> None:
    """A missing client network is created as an attachable overlay network with the subnet
    given (a /20 by default: Swarm's default /24 holds ~250 tasks), and services join it."""
    fleet = _fleet()
    name = f"bf-test-{fleet}"
    subnet = f"10.{200 + secrets.randbelow(50)}.{16 * secrets.randbelow(16)}.0/20"
    backend = SwarmBackend(
        docker_env.idle_image,
        network=name,
        fleet=fleet,
        subnet=subnet,
        stop_timeout=2,
        client_factory=docker_client_factory(swarm_host, timeout=60),
    )
    tid = f"client_{secrets.randbelow(10**9):09d}"
    try:
        from tests.docker_support import spec_for

        await backend.deploy(spec_for(tid))
        network = swarm_api.networks.get(name)
        assert network.attrs["Driver"] == "overlay" and network.attrs["Attachable"] is True
        assert [c["Subnet"] for c in network.attrs["IPAM"]["Config"]] == [subnet]
        assert network.attrs["Labels"][LABEL_FLEET] == fleet
        service = swarm_api.services.get(f"botfleet-{fleet}-{tid}")
        attached = service.attrs["Spec"]["TaskTemplate"]["Networks"]
        assert [n["Target"] for n in attached] == [network.id]
    finally:
        with contextlib.suppress(Exception):
            await backend.remove(tid)
        await backend.close()
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            swarm_api.networks.get(name).remove()


def test_deploy_backend_swarm_runs_hubs_as_services_on_the_subnet_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DEPLOY_BACKEND=swarm: dedicated services and hub services on one engine, image, network,
    fleet and overlay subnet (SWARM_SUBNET); a subnet that is not one stops the master."""
    from core.settings import SettingsError
    from master_bot.config import config_from, make_backend
    from tests.master.test_spec import master_settings

    settings = master_settings(
        monkeypatch,
        DEPLOY_BACKEND="swarm",
        CLIENT_IMAGE="botfleet-client:v7",
        SWARM_SUBNET="10.44.0.0/18",
        SWARM_SPREAD="node.labels.zone",
        CLIENTS_DIR=str(tmp_path / "clients"),
    )
    placed = make_backend(settings, config_from(settings))
    assert isinstance(placed, PlacedBackend) and placed.name == "swarm"
    dedicated, hubs = placed.dedicated, placed.hubs.processes
    assert isinstance(dedicated, SwarmBackend) and isinstance(hubs, SwarmHubs)
    assert (dedicated.image, hubs.image) == ("botfleet-client:v7", "botfleet-client:v7")
    assert dedicated.subnet == hubs.subnet == "10.44.0.0/18"
    assert hubs.network == dedicated.network and hubs.fleet == dedicated.fleet
    assert hubs.preferences == ["node.labels.zone"] and hubs.constraints == []  # pinned later
    assert hubs.webhooks  # an overlay network: hubs serve webhooks on 8080
    with pytest.raises(SettingsError, match="SWARM_SUBNET"):
        master_settings(monkeypatch, DEPLOY_BACKEND="swarm", SWARM_SUBNET="10.44.0.0/33")


async def test_a_killed_hub_task_is_restarted_by_swarm_and_its_tenants_see_it(
    swarm_host: str,  # noqa: F811
    swarm_api: docker.DockerClient,
    docker_env: DockerEnv,
    tmp_path: Path,
) -> None:
    """A hub service's task killed: its tenants report crashed (what the reconciler acts on)
    until Swarm's restart policy has started a new task, then running with the restart
    counted; a new master adopts the hub by label, and the client services' backend never
    lists it. The idle stand-in runs as the hub: a process without aiogram's start-up."""
    fleet = _fleet()
    factory = docker_client_factory(swarm_host, timeout=60)

    def placed() -> PlacedBackend:
        clients = SwarmBackend(
            docker_env.idle_image,
            network="host",
            fleet=fleet,
            stop_timeout=2,
            client_factory=factory,
        )
        backend = with_docker_hubs(clients, tmp_path / "clients", webhooks=False, stop_timeout=2)
        assert isinstance(backend.hubs.processes, SwarmHubs)
        backend.hubs.processes.command = None  # the image's CMD: the idle stand-in
        return backend

    first, second = placed(), placed()
    hubs = first.hubs
    tid = f"client_{secrets.randbelow(10**9):09d}"
    uid = await hubs._prepare("hub-1")
    assert uid == HUB_UID_BASE + 1
    hubs._write(hubs.root / "hub-1" / "tenants" / f"{tid}.env", f"TENANT_ID='{tid}'\n", uid)
    service = f"botfleet-{fleet}-hub-1"
    try:
        await hubs._start_hub("hub-1")
        status = await hubs.status(tid)
        assert (status.state, status.restarts) == (RuntimeState.RUNNING, 0), status
        (container,) = swarm_api.containers.list(
            filters={"label": f"com.docker.swarm.service.name={service}"}
        )
        container.kill()

        async def tenant_is(state: RuntimeState, restarts: int) -> bool:
            now = await hubs.status(tid)
            return (now.state, now.restarts) == (state, restarts)

        await eventually(lambda: tenant_is(RuntimeState.CRASHED, 1), what="crashed", timeout=20)
        await eventually(lambda: tenant_is(RuntimeState.RUNNING, 1), what="restarted", timeout=30)
        (again,) = swarm_api.containers.list(
            filters={"label": f"com.docker.swarm.service.name={service}"}
        )
        assert again.id != container.id
        found = await second.hubs.list()
        assert (found[tid].state, found[tid].restarts) == (RuntimeState.RUNNING, 1)
        assert await second.dedicated.list() == {}
    finally:
        await first.hubs.processes.remove("hub-1")
        await first.close()
        await second.close()
    assert not swarm_api.services.list(filters={"name": service})
