"""DockerBackend against a real Docker Engine: hardening, lifecycle, adoption, crashes, and a
real client bot in a container answering /start through the local Telegram emulator.

The engine and images come from scripts/docker_engine.sh (see tests/docker_support.py); when
Docker cannot be had here, these tests fail with the reason.

Client containers run on the backend's default network, a user-defined bridge: their 127.0.0.1
is their own, so the throwaway PostgreSQL/Redis/emulator (which listen on the host's 127.0.0.1
only) are reached through `Relay`s listening on the network's gateway address, i.e. inside that
network and nowhere else, as an operator points TENANT_DATABASE_URL & co. at an address of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import docker
import pytest

from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from master_bot.deploy.base import ClientSpec, DeployError, RuntimeState
from master_bot.deploy.docker import (
    DEFAULT_NETWORK,
    LABEL_FLEET,
    LABEL_MANAGED,
    LABEL_NETWORK,
    LABEL_SPEC,
    LABEL_TENANT,
    DockerBackend,
    docker_client_factory,
)
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.conftest import new_tenant_id
from tests.docker_support import (
    RUN_ID,
    RUN_LABEL,
    DockerEnv,
    eventually,
    fixture_docker_api,  # noqa: F401 - fixtures, used by name
    fixture_docker_env,  # noqa: F401
    fixture_emulator,  # noqa: F401
    fixture_make_backend,  # noqa: F401
    spec_for,
)

pytestmark = pytest.mark.engine  # shares the Docker Engine: one worker runs these in turn

MakeBackend = Callable[..., DockerBackend]


class Relay:
    """TCP relays from a Docker network's gateway address to servers on the host's 127.0.0.1.

    `expose(url)` starts one (listening on the gateway address only, a free port) and returns
    the URL with that address and port: what a client container on the network can reach."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def expose(self, url: str) -> str:
        parts = urlsplit(url)
        target_host, target_port = parts.hostname or "127.0.0.1", parts.port
        assert target_port, f"no port in {parts.scheme}://{parts.hostname}"

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
            except OSError:
                writer.close()
                return
            for coro in (pipe(reader, up_writer), pipe(up_reader, writer)):
                task = asyncio.create_task(coro)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        server = await asyncio.start_server(handle, self.gateway, 0)
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{self.gateway}:{port}" if userinfo else f"{self.gateway}:{port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()


@contextlib.asynccontextmanager
async def relay_for(backend: DockerBackend) -> AsyncIterator[Relay]:
    """Relays on the gateway of `backend`'s network (created by the backend when missing)."""
    gateway = await backend.network_gateway()
    assert gateway, f"the network {backend.network} has no gateway address"
    relay = Relay(gateway)
    try:
        yield relay
    finally:
        await relay.close()


def inspect(api: docker.DockerClient, tenant_id: str) -> dict[str, Any]:
    attrs: dict[str, Any] = api.api.inspect_container(f"botfleet-{tenant_id}")
    return attrs


@pytest.mark.timeout(900)  # the first run on a machine builds the images (about two minutes)
async def test_engine_and_images_are_ready(
    docker_env: DockerEnv, docker_api: docker.DockerClient, make_backend: MakeBackend
) -> None:
    await make_backend().ping()
    image = docker_api.images.get(docker_env.image)
    assert image.attrs["Config"]["User"] == "10001:10001"
    assert image.attrs["Config"]["Cmd"] == ["python", "-m", "client_bot"]
    assert image.labels.get("botfleet.source-hash")


async def test_deploy_applies_the_hardening(
    make_backend: MakeBackend, docker_api: docker.DockerClient
) -> None:
    tenant_id = new_tenant_id()
    spec = spec_for(tenant_id)
    status = await make_backend().deploy(spec)
    assert status.state is RuntimeState.RUNNING, status

    info = inspect(docker_api, tenant_id)
    host = info["HostConfig"]
    config = info["Config"]
    assert info["Name"] == f"/botfleet-{tenant_id}"
    assert config["Labels"][LABEL_TENANT] == tenant_id
    assert config["Labels"][LABEL_MANAGED] == "true"
    assert config["Labels"][LABEL_FLEET] == "botfleet"
    assert len(config["Labels"][LABEL_SPEC]) == 32
    assert config["Labels"]["botfleet.role"] == "client-bot"  # the spec's own labels
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Privileged"] is False
    assert host["Memory"] == 384 * 1024 * 1024
    assert host["MemorySwap"] == 384 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 128
    assert set(host["Tmpfs"]) == {"/tmp"}  # noqa: S108 - the container's own /tmp
    assert host["NetworkMode"] == DEFAULT_NETWORK  # a bridge of its own, not the host's stack
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Init"] is True
    assert not host.get("Binds") and not info["Mounts"] and not host.get("VolumesFrom")
    assert "docker.sock" not in str(info)
    assert config["User"] == "10001:10001"
    assert f"BOT_TOKEN={spec.env['BOT_TOKEN']}" in config["Env"]  # the contract, exactly
    assert {e.split("=", 1)[0] for e in config["Env"]} >= set(spec.env)

    container = docker_api.containers.get(f"botfleet-{tenant_id}")
    assert container.exec_run(["id", "-u"]).output.strip() == b"10001"
    assert container.exec_run(["sh", "-c", "echo x > /x"]).exit_code != 0  # read-only root
    assert container.exec_run(["sh", "-c", "echo x > /tmp/x"]).exit_code == 0
    assert container.exec_run(["ls", "/var/run/docker.sock"]).exit_code != 0


async def test_deploy_is_idempotent_and_replaces_on_change(
    make_backend: MakeBackend, docker_api: docker.DockerClient
) -> None:
    backend = make_backend()
    tenant_id = new_tenant_id()
    spec = spec_for(tenant_id)
    await backend.deploy(spec)
    first = inspect(docker_api, tenant_id)["Id"]

    assert (await backend.deploy(spec)).state is RuntimeState.RUNNING
    assert inspect(docker_api, tenant_id)["Id"] == first  # same spec: nothing done

    await backend.stop(tenant_id)
    assert (await backend.deploy(spec)).state is RuntimeState.RUNNING  # started again, not replaced
    assert inspect(docker_api, tenant_id)["Id"] == first

    changed = ClientSpec(tenant_id, {**spec.env, "LOCALE": "en"}, spec.labels)
    assert (await backend.deploy(changed)).state is RuntimeState.RUNNING
    second = inspect(docker_api, tenant_id)
    assert second["Id"] != first
    assert "LOCALE=en" in second["Config"]["Env"]
    assert len(docker_api.containers.list(all=True, filters={"name": tenant_id})) == 1

    # A backend with other limits replaces it too (the limits are part of the spec hash).
    await make_backend(pids_limit=64).deploy(changed)
    third = inspect(docker_api, tenant_id)
    assert third["Id"] != second["Id"] and third["HostConfig"]["PidsLimit"] == 64


async def test_lifecycle_status_and_logs(
    make_backend: MakeBackend, docker_api: docker.DockerClient
) -> None:
    backend = make_backend()
    tenant_id = new_tenant_id()
    assert (await backend.status(tenant_id)).state is RuntimeState.MISSING
    assert (await backend.stop(tenant_id)).state is RuntimeState.MISSING  # idempotent
    await backend.remove(tenant_id)  # idempotent
    with pytest.raises(DeployError, match=r"has no container.*deploy it first"):
        await backend.start(tenant_id)
    with pytest.raises(DeployError, match="has no container"):
        await backend.logs(tenant_id)

    await backend.deploy(spec_for(tenant_id))
    running = await eventually(
        lambda: _with_memory(backend, tenant_id), what="a memory figure of the running bot"
    )
    assert running.state is RuntimeState.RUNNING and running.restarts == 0
    assert 0 < running.memory_bytes < 384 * 1024 * 1024
    logs = await eventually(lambda: backend.logs(tenant_id, lines=10), what="log output")
    assert f"idle test bot for {tenant_id} is up" in logs

    stopped = await backend.stop(tenant_id)
    assert stopped.state is RuntimeState.STOPPED and stopped.exit_code == 0, stopped
    assert (await backend.stop(tenant_id)).state is RuntimeState.STOPPED

    assert (await backend.start(tenant_id)).state is RuntimeState.RUNNING
    started_at = inspect(docker_api, tenant_id)["State"]["StartedAt"]
    assert (await backend.restart(tenant_id)).state is RuntimeState.RUNNING
    assert inspect(docker_api, tenant_id)["State"]["StartedAt"] != started_at

    assert tenant_id in await backend.list()
    await backend.remove(tenant_id)
    assert (await backend.status(tenant_id)).state is RuntimeState.MISSING
    assert tenant_id not in await backend.list()


async def test_the_default_network_is_a_bridge_and_host_only_when_asked(
    make_backend: MakeBackend, docker_api: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="master_bot.deploy.docker"):
        backend = make_backend()
    assert backend.network == DEFAULT_NETWORK
    assert not [r for r in caplog.records if "host's network" in r.getMessage()]
    tenant_id = new_tenant_id()
    await backend.deploy(spec_for(tenant_id))
    network = docker_api.networks.get(DEFAULT_NETWORK)
    assert network.attrs["Driver"] == "bridge" and network.attrs["Scope"] == "local"
    assert network.attrs["Labels"][LABEL_NETWORK] == "clients"  # created by a master
    attached = inspect(docker_api, tenant_id)["NetworkSettings"]["Networks"]
    assert set(attached) == {DEFAULT_NETWORK}
    assert attached[DEFAULT_NETWORK]["NetworkID"] == network.id
    assert await backend.network_gateway() == network.attrs["IPAM"]["Config"][0]["Gateway"]

    # `host` only when an operator sets it, and then with a warning.
    with caplog.at_level(logging.WARNING, logger="master_bot.deploy.docker"):
        on_host = make_backend(network="host")
    assert [r for r in caplog.records if "host's network" in r.getMessage()]
    other = new_tenant_id()
    await on_host.deploy(spec_for(other))
    assert inspect(docker_api, other)["HostConfig"]["NetworkMode"] == "host"
    assert await on_host.network_gateway() is None


async def test_a_removed_or_recreated_network_gets_a_new_container(
    make_backend: MakeBackend, docker_api: docker.DockerClient
) -> None:
    """`compose down` removes the network, `compose up` re-creates it (same name, new id): a
    stopped client container points at the old id and can never start again, so `deploy()`
    (what the reconciler calls) replaces it."""
    name = f"bf-test-{RUN_ID}-{new_tenant_id()[-6:]}"
    backend = make_backend(network=name)
    tenant_id = new_tenant_id()
    spec = spec_for(tenant_id)
    try:
        await backend.deploy(spec)
        first = inspect(docker_api, tenant_id)
        subnet = docker_api.networks.get(name).attrs["IPAM"]["Config"][0]

        # 1. The network is removed (nothing re-creates it): the backend creates it again.
        await backend.stop(tenant_id)
        docker_api.networks.get(name).remove()
        with pytest.raises(DeployError, match=r"its network no longer exists; deploy it again"):
            await backend.start(tenant_id)
        assert (await backend.deploy(spec)).state is RuntimeState.RUNNING
        second = inspect(docker_api, tenant_id)
        network = docker_api.networks.get(name)
        assert second["Id"] != first["Id"]
        assert second["NetworkSettings"]["Networks"][name]["NetworkID"] == network.id

        # 2. Re-created by someone else under the same name and subnet, as compose does.
        await backend.stop(tenant_id)
        network.remove()
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=subnet["Subnet"], gateway=subnet["Gateway"])]
        )
        recreated = docker_api.networks.create(name, driver="bridge", ipam=ipam)
        assert (await backend.deploy(spec)).state is RuntimeState.RUNNING
        third = inspect(docker_api, tenant_id)
        assert third["Id"] != second["Id"]
        assert third["NetworkSettings"]["Networks"][name]["NetworkID"] == recreated.id
        assert len(docker_api.containers.list(all=True, filters={"name": tenant_id})) == 1

        # Unchanged network and spec: the container stays (nothing to heal).
        await backend.stop(tenant_id)
        await backend.deploy(spec)
        assert inspect(docker_api, tenant_id)["Id"] == third["Id"]
    finally:
        await backend.remove(tenant_id)
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.networks.get(name).remove()


async def test_fleets_on_one_engine_see_only_their_own_containers(
    make_backend: MakeBackend, docker_api: docker.DockerClient
) -> None:
    ours = make_backend(fleet=f"a{RUN_ID}")
    theirs = make_backend(fleet=f"b{RUN_ID}")
    tenant_id, only_theirs = new_tenant_id(), new_tenant_id()
    await ours.deploy(spec_for(tenant_id))
    await theirs.deploy(spec_for(tenant_id))  # the same tenant id in another fleet's database
    await theirs.deploy(spec_for(only_theirs))
    names = {c.name for c in docker_api.containers.list(filters={"name": tenant_id})}
    assert names == {f"botfleet-a{RUN_ID}-{tenant_id}", f"botfleet-b{RUN_ID}-{tenant_id}"}
    theirs_container = docker_api.containers.get(f"botfleet-b{RUN_ID}-{only_theirs}")
    assert theirs_container.labels[LABEL_FLEET] == f"b{RUN_ID}"

    assert set(await ours.list()) == {tenant_id}  # never the other fleet's
    assert set(await theirs.list()) == {tenant_id, only_theirs}
    assert (await ours.status(only_theirs)).state is RuntimeState.MISSING
    await ours.remove(only_theirs)
    await ours.remove(tenant_id)
    assert (await theirs.status(tenant_id)).state is RuntimeState.RUNNING
    assert (await theirs.status(only_theirs)).state is RuntimeState.RUNNING
    assert await ours.list() == {}


async def _with_memory(backend: DockerBackend, tenant_id: str) -> Any:
    status = await backend.status(tenant_id)
    return status if status.memory_bytes else None


async def test_list_adopts_containers_after_a_master_restart(make_backend: MakeBackend) -> None:
    tenants = [new_tenant_id(), new_tenant_id()]
    first = make_backend()
    for tenant_id in tenants:
        await first.deploy(spec_for(tenant_id))
    await first.stop(tenants[1])
    await first.close()

    second = make_backend()  # a new master process: knows nothing but the engine
    found = await second.list()
    assert found[tenants[0]].state is RuntimeState.RUNNING, found[tenants[0]]
    assert found[tenants[1]].state is RuntimeState.STOPPED, found[tenants[1]]
    assert (await second.start(tenants[1])).state is RuntimeState.RUNNING
    await second.remove(tenants[0])
    assert tenants[0] not in await second.list()


async def test_crashes_are_absorbed_then_reported(
    make_backend: MakeBackend, docker_api: docker.DockerClient
) -> None:
    backend = make_backend()
    tenant_id = new_tenant_id()
    await backend.deploy(spec_for(tenant_id))
    container = docker_api.containers.get(f"botfleet-{tenant_id}")

    # The bot process dies inside its container: Docker's on-failure policy brings it back,
    # and the restart count tells the reconciler there was a crash.
    container.exec_run(["python", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"])
    status = await eventually(
        lambda: _running_after_restarts(backend, tenant_id, 1), what="a restart by Docker"
    )
    assert status.restarts == 1

    # Killed from outside (as an OOM kill or an operator would): Docker leaves it to the master.
    container.kill(signal="SIGKILL")
    crashed = await eventually(
        lambda: _in_state(backend, tenant_id, RuntimeState.CRASHED), what="crashed"
    )
    assert crashed.exit_code == 137 and "exit code 137" in crashed.detail
    assert (await backend.restart(tenant_id)).state is RuntimeState.RUNNING  # the reconciler's act

    # A bot that keeps failing: a few quick retries by Docker, then CRASHED for good.
    looping = make_backend(restart_retries=2)
    other = new_tenant_id()
    await looping.deploy(spec_for(other, {"TEST_EXIT_CODE": "3"}))
    final = await eventually(
        lambda: _exited(docker_api, other), what="Docker to give up after 2 retries"
    )
    assert final["RestartCount"] == 2
    status = await looping.status(other)
    assert status.state is RuntimeState.CRASHED
    assert status.exit_code == 3 and status.restarts == 2


async def _running_after_restarts(backend: DockerBackend, tenant_id: str, restarts: int) -> Any:
    status = await backend.status(tenant_id)
    return status if status.state is RuntimeState.RUNNING and status.restarts >= restarts else None


async def _in_state(backend: DockerBackend, tenant_id: str, state: RuntimeState) -> Any:
    status = await backend.status(tenant_id)
    return status if status.state is state else None


def _exited(api: docker.DockerClient, tenant_id: str) -> Any:
    info = inspect(api, tenant_id)
    return info if info["State"]["Status"] == "exited" else None


async def test_errors_name_the_problem_and_no_secret(
    make_backend: MakeBackend, docker_env: DockerEnv
) -> None:
    tenant_id = new_tenant_id()
    spec = spec_for(tenant_id)
    token = spec.env["BOT_TOKEN"]

    with pytest.raises(DeployError, match="image botfleet-client:no-such-tag is not on") as missing:
        await make_backend(image="botfleet-client:no-such-tag").deploy(spec)
    assert token not in str(missing.value)

    # The engine rejects a malformed variable and quotes it back: the value must not leak.
    bad = ClientSpec(tenant_id, {**spec.env, "": token}, spec.labels)
    with pytest.raises(DeployError, match="create container") as refused:
        await make_backend().deploy(bad)
    assert token not in str(refused.value)
    assert token.split(":")[1] not in str(refused.value)

    with pytest.raises(DeployError, match="would run as root"):
        await make_backend(image="botfleet-base:bookworm").deploy(spec)

    unreachable = make_backend(
        client_factory=docker_client_factory("unix:///nonexistent/docker.sock", timeout=5)
    )
    with pytest.raises(DeployError, match=r"cannot reach the Docker Engine.*DOCKER_HOST"):
        await unreachable.ping()

    released = threading.Event()

    def hanging() -> docker.DockerClient:
        released.wait(10)  # an engine that does not answer until the test has seen the timeout
        raise AssertionError("not reached")

    slow = make_backend(client_factory=hanging, call_timeout=0.3)
    with pytest.raises(DeployError, match="the Docker Engine did not answer within"):
        await slow.status(tenant_id)
    released.set()  # the abandoned worker thread ends now, not seconds later
    await asyncio.sleep(0.1)


# ---------------------------------------------------------------------- the real client bot
@pytest.mark.timeout(180)
async def test_real_client_bot_in_a_container_answers_start(
    make_backend: MakeBackend,
    docker_env: DockerEnv,
    docker_api: docker.DockerClient,
    emulator: tuple[EmulatorServer, EmulatorClient],
    make_tenant: Any,
    redis_admin: Any,
    redis_url: str,
) -> None:
    server, tg = emulator
    tenant = await make_tenant()
    tenant_id = tenant.tenant_id
    redis_user = await create_tenant_redis_user(redis_admin, tenant_id, server_url=redis_url)
    token = f"7{tenant_id[-6:]}:docker-e2e-token-{tenant_id}"
    await tg.register_bot(token, f"salon{tenant_id[-4:]}_bot", "Salon")
    backend = make_backend(image=docker_env.image)  # on the default (bridge) network
    relay = Relay(await backend.network_gateway() or "")
    env = {  # the docs/architecture.md contract; every endpoint through a relay on the network's gateway
        "TENANT_ID": tenant_id,
        "BOT_TOKEN": token,
        "DATABASE_URL": await relay.expose(tenant.dsn),
        "REDIS_URL": await relay.expose(redis_user.url),
        "REDIS_KEY_PREFIX": redis_user.key_prefix,
        "TELEGRAM_API_URL": await relay.expose(server.base_url),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_MODEL": "test-model",
        "ADMIN_IDS": "7001",
        "LOCALE": "ru",
        "TIMEZONE": "Europe/Moscow",
    }
    spec = ClientSpec(tenant_id, env, {RUN_LABEL: RUN_ID})
    user = 9001
    try:
        started = time.monotonic()
        await backend.deploy(spec)
        await _answers_start(backend, tg, token, user, tenant_id)
        first_answer = time.monotonic() - started
        print(f"deploy -> first answer to /start: {first_answer:.1f} s")
        running = await backend.status(tenant_id)
        assert running.state is RuntimeState.RUNNING and running.memory_bytes
        print(f"client bot memory: {running.memory_bytes / 2**20:.0f} MiB")

        # The bot process dies inside the container: Docker restarts it, it answers again.
        container = docker_api.containers.get(f"botfleet-{tenant_id}")
        container.exec_run(["python", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"])
        await eventually(
            lambda: _running_after_restarts(backend, tenant_id, 1), what="a restart by Docker"
        )
        await _answers_start(backend, tg, token, user, tenant_id)

        # Killed from outside: CRASHED until the reconciler restarts it through the backend.
        container.kill(signal="SIGKILL")
        await eventually(lambda: _in_state(backend, tenant_id, RuntimeState.CRASHED), what="crash")
        await backend.restart(tenant_id)
        await _answers_start(backend, tg, token, user, tenant_id)

        logs = await backend.logs(tenant_id, lines=200)
        assert token not in logs and tenant.password not in logs and redis_user.password not in logs
    finally:
        await backend.remove(tenant_id)  # before the fixtures drop the role and the ACL user
        await relay.close()
        await remove_tenant_redis(redis_admin, tenant_id, drop_data=True)


async def _answers_start(
    backend: DockerBackend, tg: EmulatorClient, token: str, user: int, tenant_id: str
) -> None:
    last = max((m.message_id for m in await tg.messages(token, user)), default=0)
    await tg.send_message(token, user, "/start", first_name="Анна")
    try:
        reply = await tg.wait_for_message(token, user, after_message_id=last, timeout=45)
    except TimeoutError as exc:
        status = await backend.status(tenant_id)
        logs = await backend.logs(tenant_id, lines=40)
        raise AssertionError(
            f"the client bot in its container did not answer /start ({status}):\n{logs}"
        ) from exc
    assert reply.plain_text.strip()


def test_a_container_the_engine_cannot_start_is_re_created_not_retried_forever() -> None:
    """After a Docker Engine restart mid-start, starting a container may fail the same way
    forever ("failed to start shim: ... file exists", a 500): the reconciler's deploy then
    re-creates it. A refusal of the request itself (4xx) is reported, not papered over."""
    from docker.errors import APIError
    from requests import Response

    from master_bot.deploy.docker import recreate_reason

    def api_error(status: int, explanation: str) -> APIError:
        response = Response()
        response.status_code = status
        return APIError("start", response=response, explanation=explanation)

    shim = api_error(500, "failed to start shim: mkdir /run/containerd/x: file exists")
    assert recreate_reason(shim) is not None and "file exists" in str(recreate_reason(shim))
    gone = api_error(404, "network 4f2a not found")
    assert recreate_reason(gone) == "its network no longer exists"
    assert recreate_reason(api_error(400, "invalid mount config")) is None
