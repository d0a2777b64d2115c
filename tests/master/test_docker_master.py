"""The master with the DockerBackend on a real Docker Engine: provisioning through the API
starts a hardened container running the real client bot; lifecycle calls, a killed bot, and a
crash during provisioning followed by a master restart all end with exactly one container.
`compose down` + `up` (the network re-created under a new id, the master restarted) ends with the
reconciler re-creating the container and the bot answering; and a master never touches the
containers of another fleet on the same engine.

Client containers are on a bridge network: the master's TENANT_DATABASE_URL, TENANT_REDIS_URL and
TELEGRAM_API_URL point at relays on its gateway (tests/test_docker_backend.Relay), as an
operator points them at addresses of that network. Every master here has a fleet name of its own,
so that its reconciler and the harness's cleanup see only this test's containers.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace

import docker
import pytest

from master_bot.deploy.base import RuntimeState
from master_bot.deploy.docker import LABEL_FLEET, DockerBackend
from master_bot.reconciler import Act
from master_bot.store import STEPS, Step
from tests.conftest import new_tenant_id
from tests.docker_support import (  # noqa: F401 - pytest fixtures
    RUN_ID,
    DockerEnv,
    fixture_docker_api,
    fixture_docker_env,
    fixture_make_backend,
    spec_for,
)
from tests.master.conftest import Harness
from tests.master.test_provision_crash import crash_once
from tests.test_docker_backend import Relay

pytestmark = pytest.mark.engine  # shares the Docker Engine: one worker runs these in turn

CUSTOMER = 515151


def fleet_name() -> str:
    return f"t{RUN_ID}{secrets.token_hex(2)}"


async def on_network(harness: Harness, backend: DockerBackend) -> Relay:
    """Point the master's client-facing URLs at relays on the gateway of the backend's network."""
    relay = Relay(await backend.network_gateway() or "")
    deps = harness.master.deps
    deps.config = replace(
        deps.config,
        tenant_database_url=await relay.expose(deps.config.tenant_database_url),
        tenant_redis_url=await relay.expose(deps.config.tenant_redis_url),
        telegram_api_url=await relay.expose(deps.config.telegram_api_url),
    )
    return relay


def containers_of(
    api: docker.DockerClient, tenant_id: str
) -> list[docker.models.containers.Container]:
    return api.containers.list(all=True, filters={"label": f"botfleet.tenant={tenant_id}"})


@pytest.mark.timeout(900)
async def test_provision_a_real_bot_in_docker_and_steer_it(
    make_harness, make_backend, docker_env: DockerEnv, docker_api: docker.DockerClient
) -> None:
    fleet = fleet_name()
    # A network of this test's own (it is removed and re-created below), with a fixed subnet
    # like compose's `botfleet` network.
    network = f"bf-test-{RUN_ID}-{secrets.token_hex(3)}"
    probe = docker_api.networks.create(network, driver="bridge")
    ipam_config = probe.attrs["IPAM"]["Config"][0]
    probe.remove()
    ipam = docker.types.IPAMConfig(
        pool_configs=[
            docker.types.IPAMPool(subnet=ipam_config["Subnet"], gateway=ipam_config["Gateway"])
        ]
    )
    docker_api.networks.create(network, driver="bridge", ipam=ipam)
    backend = make_backend(image=docker_env.image, network=network, fleet=fleet)
    harness: Harness = await make_harness(backend=backend)
    relay = await on_network(harness, backend)
    try:
        await _provision_steer_and_survive_compose_down_up(
            make_harness, make_backend, docker_env, docker_api, harness, network, ipam, fleet
        )
    finally:
        await relay.close()
        for container in docker_api.containers.list(
            all=True, filters={"label": f"{LABEL_FLEET}={fleet}"}
        ):
            container.remove(force=True)
        for found in docker_api.networks.list(names=[network]):
            found.remove()


async def _provision_steer_and_survive_compose_down_up(
    make_harness, make_backend, docker_env, docker_api, harness, network, ipam, fleet
) -> None:
    token = await harness.new_bot("docker_salon_bot")
    started = time.perf_counter()
    reply = await harness.api.provision(token, business_name="Салон в контейнере")
    assert reply.status == 201, reply.body
    tid = reply.body["tenant_id"]
    await harness.tg.send_message(token, CUSTOMER, "/start", first_name="Анна")
    answer = await harness.tg.wait_for_message(token, CUSTOMER, timeout=120)
    print(f"docker: provisioning -> /start answered in {time.perf_counter() - started:.2f}s")
    assert answer.plain_text

    (container,) = containers_of(docker_api, tid)
    attrs = container.attrs
    assert container.name == f"botfleet-{fleet}-{tid}"
    assert container.labels[LABEL_FLEET] == fleet
    assert container.attrs["HostConfig"]["NetworkMode"] == network
    assert attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert not any("docker.sock" in (m.get("Source") or "") for m in attrs["Mounts"])
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"] if "=" in e)
    assert env["TENANT_ID"] == tid and env["REDIS_KEY_PREFIX"] == f"{{{tid}}}:"
    assert env["DATABASE_URL"].startswith(f"postgresql://{tid}:")  # the tenant role, not admin

    # The bot is killed: the reconciler (Docker's own restart policy first) brings it back.
    container.kill()

    async def running_again() -> bool:
        status = await harness.backend.status(tid)
        return status.state is RuntimeState.RUNNING

    await harness.master.reconciler.run_once()
    await harness.wait_for(running_again, timeout=120)
    seen = len(await harness.tg.messages(token, CUSTOMER))
    await harness.tg.send_message(token, CUSTOMER, "/start", first_name="Анна")
    await harness.tg.wait_for_message(token, CUSTOMER, count=seen + 1, timeout=120)

    stop = await harness.api.call("POST", f"/api/v1/tenants/{tid}/stop")
    assert stop.status == 200, stop.body
    assert not containers_of(docker_api, tid)[0].attrs["State"]["Running"]
    start = await harness.api.call("POST", f"/api/v1/tenants/{tid}/start")
    assert start.status == 200, start.body
    await harness.wait_for(running_again, timeout=120)

    # `make down` + `make up`: the bot is stopped (the tenant stays active), compose removes the
    # network and creates it again (same name and subnet, a new id), a new master starts.
    old = containers_of(docker_api, tid)[0]
    old.stop(timeout=10)
    docker_api.networks.get(network).remove()
    docker_api.networks.create(network, driver="bridge", ipam=ipam)
    restarted = await make_harness(
        backend=make_backend(image=docker_env.image, network=network, fleet=fleet)
    )
    relay = await on_network(restarted, restarted.backend)  # the same gateway, relays again
    try:
        actions = await restarted.master.reconciler.run_once()
        assert (Act.RESTART, tid) in {(a.act, a.tenant_id) for a in actions}, actions
        (container,) = containers_of(docker_api, tid)
        assert container.id != old.id  # re-created: the old one pointed at the removed network
        assert container.attrs["State"]["Running"], container.attrs["State"]
        seen = len(await harness.tg.messages(token, CUSTOMER))
        await harness.tg.send_message(token, CUSTOMER, "/start", first_name="Анна")
        await harness.tg.wait_for_message(token, CUSTOMER, count=seen + 1, timeout=120)
    finally:
        await relay.close()

    removed = await harness.api.call("DELETE", f"/api/v1/tenants/{tid}?backup=false")
    assert removed.status in (200, 204), removed.body
    assert containers_of(docker_api, tid) == []


CRASH_STEPS = [s for s in STEPS if s is not Step.ALLOCATED]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("step", CRASH_STEPS, ids=[s.value for s in CRASH_STEPS])
async def test_master_dies_mid_provisioning_then_restarts_exactly_one_container(
    make_harness, make_backend, docker_env: DockerEnv, docker_api: docker.DockerClient, step: Step
) -> None:
    fleet = fleet_name()
    first = await make_harness(backend=make_backend(image=docker_env.idle_image, fleet=fleet))
    fault, fired = crash_once(step)
    first.master.provisioner.fault = fault
    token = await first.new_bot()
    failed = await first.api.provision(token, key=f"order-docker-{step.value}")
    assert fired == [step] and failed.status == 503
    tid = failed.body["error"]["details"]["tenant_id"]

    second = await make_harness(backend=make_backend(image=docker_env.idle_image, fleet=fleet))
    await second.master.reconciler.run_once()

    async def one_container() -> bool:
        return len(containers_of(docker_api, tid)) == 1

    await second.wait_for(one_container, timeout=30)
    assert (await second.backend.status(tid)).state is RuntimeState.RUNNING
    schemas = await second.fetch("SELECT 1 FROM pg_namespace WHERE nspname = $1", tid)
    assert len(schemas) == 1
    assert await second.master.reconciler.run_once() == []  # nothing left to do


@pytest.mark.timeout(300)
async def test_a_master_never_removes_another_fleets_containers(
    make_harness, make_backend, docker_env: DockerEnv, docker_api: docker.DockerClient
) -> None:
    ours, theirs = fleet_name(), fleet_name()
    harness: Harness = await make_harness(
        backend=make_backend(image=docker_env.idle_image, fleet=ours)
    )
    other_fleet = make_backend(image=docker_env.idle_image, fleet=theirs)
    orphan, foreign = new_tenant_id(), new_tenant_id()
    # A container of our fleet with no tenant row (an orphan: removed), and one of the other
    # fleet, whose tenant lives in the other master's database (not ours).
    await harness.backend.deploy(spec_for(orphan))
    await other_fleet.deploy(spec_for(foreign))
    await other_fleet.deploy(spec_for(orphan))  # the same tenant id exists in both fleets

    actions = await harness.master.reconciler.run_once()
    assert {(a.act, a.tenant_id) for a in actions if a.act is Act.REMOVE} == {(Act.REMOVE, orphan)}
    assert (await harness.backend.status(orphan)).state is RuntimeState.MISSING
    assert (await other_fleet.status(foreign)).state is RuntimeState.RUNNING
    assert (await other_fleet.status(orphan)).state is RuntimeState.RUNNING
    for container in docker_api.containers.list(filters={"label": f"{LABEL_FLEET}={theirs}"}):
        assert container.labels[LABEL_FLEET] == theirs
    assert await harness.master.reconciler.run_once() == []
    await other_fleet.remove(foreign)
    await other_fleet.remove(orphan)


@pytest.mark.timeout(300)
async def test_a_new_client_image_reaches_running_bots_through_the_reconciler(
    make_harness, make_backend, docker_env: DockerEnv, docker_api: docker.DockerClient
) -> None:
    fleet = fleet_name()
    first = await make_harness(backend=make_backend(image=docker_env.idle_image, fleet=fleet))
    token = await first.new_bot()
    reply = await first.api.provision(token)
    assert reply.status == 201, reply.body
    tid = reply.body["tenant_id"]
    (before,) = containers_of(docker_api, tid)

    # `make up` after an upgrade: the master comes back with another CLIENT_IMAGE.
    tag = f"botfleet-client:test-idle-{RUN_ID}"
    docker_api.images.get(docker_env.idle_image).tag(tag)
    try:
        second = await make_harness(backend=make_backend(image=tag, fleet=fleet))
        actions = await second.master.reconciler.run_once()
        assert [(a.act, a.tenant_id, a.detail) for a in actions] == [
            (Act.DEPLOY, tid, "spec changed")
        ]
        (after,) = containers_of(docker_api, tid)
        assert after.id != before.id and after.attrs["Config"]["Image"] == tag
        assert (await second.backend.status(tid)).state is RuntimeState.RUNNING
        assert await second.master.reconciler.run_once() == []
    finally:
        for container in containers_of(docker_api, tid):
            container.remove(force=True)
        docker_api.images.remove(tag, noprune=True)
