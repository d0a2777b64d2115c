"""The master with the DockerBackend on a real Docker Engine: provisioning through the API
starts a hardened container running the real client bot; lifecycle calls, a killed bot, and a
crash during provisioning followed by a master restart all end with exactly one container."""

from __future__ import annotations

import time

import docker
import pytest

from master_bot.deploy.base import RuntimeState
from master_bot.store import STEPS, Step
from tests.docker_support import (  # noqa: F401 - pytest fixtures
    DockerEnv,
    fixture_docker_api,
    fixture_docker_env,
    fixture_make_backend,
)
from tests.master.conftest import Harness
from tests.master.test_provision_crash import crash_once

CUSTOMER = 515151


def containers_of(
    api: docker.DockerClient, tenant_id: str
) -> list[docker.models.containers.Container]:
    return api.containers.list(all=True, filters={"label": f"botfleet.tenant={tenant_id}"})


@pytest.mark.timeout(900)
async def test_provision_a_real_bot_in_docker_and_steer_it(
    make_harness, make_backend, docker_env: DockerEnv, docker_api: docker.DockerClient
) -> None:
    harness: Harness = await make_harness(backend=make_backend(image=docker_env.image))
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
    assert container.name == f"botfleet-{tid}"
    assert attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert not any("docker.sock" in (m.get("Source") or "") for m in attrs["Mounts"])
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"] if "=" in e)
    assert env["TENANT_ID"] == tid and env["REDIS_KEY_PREFIX"] == f"{tid}:"
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
    removed = await harness.api.call("DELETE", f"/api/v1/tenants/{tid}?backup=false")
    assert removed.status in (200, 204), removed.body
    assert containers_of(docker_api, tid) == []


CRASH_STEPS = [s for s in STEPS if s is not Step.ALLOCATED]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("step", CRASH_STEPS, ids=[s.value for s in CRASH_STEPS])
async def test_master_dies_mid_provisioning_then_restarts_exactly_one_container(
    make_harness, make_backend, docker_env: DockerEnv, docker_api: docker.DockerClient, step: Step
) -> None:
    first = await make_harness(backend=make_backend(image=docker_env.idle_image))
    fault, fired = crash_once(step)
    first.master.provisioner.fault = fault
    token = await first.new_bot()
    failed = await first.api.provision(token, key=f"order-docker-{step.value}")
    assert fired == [step] and failed.status == 503
    tid = failed.body["error"]["details"]["tenant_id"]

    second = await make_harness(backend=make_backend(image=docker_env.idle_image))
    await second.master.reconciler.run_once()

    async def one_container() -> bool:
        return len(containers_of(docker_api, tid)) == 1

    await second.wait_for(one_container, timeout=30)
    assert (await second.backend.status(tid)).state is RuntimeState.RUNNING
    schemas = await second.fetch("SELECT 1 FROM pg_namespace WHERE nspname = $1", tid)
    assert len(schemas) == 1
    assert await second.master.reconciler.run_once() == []  # nothing left to do
