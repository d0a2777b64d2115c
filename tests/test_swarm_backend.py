"""SwarmBackend against a real one-node Docker Swarm: the same contract as DockerBackend
(lifecycle, adoption by label, fleets, hardening) and a real client bot as a Swarm service
answering /start, its secrets as Swarm secrets that `docker service inspect` never shows.

The swarm runs in a dockerd of its own (its own data root and socket under the run folder of
scripts/services.sh), so `docker swarm init` never changes the engine the other tests use; the
client images are copied into it from that engine. The service uses the `host` network: one
node, and the throwaway PostgreSQL/Redis/emulator listen on the host's 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from master_bot.deploy.base import ClientSpec, DeployError, RuntimeState
from master_bot.deploy.docker import LABEL_FLEET, LABEL_SPEC, LABEL_TENANT, docker_client_factory
from master_bot.deploy.swarm import SwarmBackend
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.conftest import new_tenant_id
from tests.docker_support import (
    DockerEnv,
    eventually,
    fixture_docker_env,  # noqa: F401
    fixture_emulator,  # noqa: F401 - fixtures, used by name
    spec_for,
)
from tests.support import free_port

# The one-node swarm's own dockerd: one worker runs these in turn.
pytestmark = pytest.mark.engine(dockerd="swarm")

RUN_DIR = Path(os.environ.get("BOTFLEET_RUN_DIR", f"/tmp/botfleet-run-{os.getuid()}"))  # noqa: S108
MakeSwarm = Callable[..., SwarmBackend]


def _answers(url: str) -> bool:
    """Whether the dockerd at `url` (unix://) answers `/_ping`. A raw socket: the SDK leaks
    its socket when the daemon is not up yet."""
    path = url.removeprefix("unix://")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return sock.recv(4096).startswith(b"HTTP/1.0 200")
    except OSError:
        return False


@pytest.fixture(scope="session")
def swarm_host(docker_env: DockerEnv) -> Iterator[str]:
    """A dockerd of its own, a one-node Swarm manager, with the client images in it."""
    home = RUN_DIR / "swarmd"
    sock = home / "docker.sock"
    url = f"unix://{sock}"
    started: subprocess.Popen[bytes] | None = None
    if not _answers(url):
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            pytest.fail(
                "dockerd is missing: `make test` installs docker.io (scripts/docker_engine.sh)"
            )
        home.mkdir(parents=True, exist_ok=True)
        with (home / "dockerd.log").open("ab") as log:  # the daemon keeps its own descriptor
            started = subprocess.Popen(
                [
                    dockerd,
                    f"--data-root={home / 'data'}",
                    f"--exec-root={home / 'x'}",
                    f"--host={url}",
                    f"--pidfile={home / 'docker.pid'}",
                    "--bridge=none",
                    "--iptables=false",
                ],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while not _answers(url):
            if started.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the swarm's dockerd did not start; see {home / 'dockerd.log'}")
            time.sleep(0.3)
    client = docker.DockerClient(base_url=url, timeout=120)
    try:
        if client.info()["Swarm"]["LocalNodeState"] != "active":
            # A free port, not Swarm's 2377: another checkout's test run may hold a swarm too.
            port = free_port()
            client.swarm.init(advertise_addr=f"127.0.0.1:{port}", listen_addr=f"127.0.0.1:{port}")
        main = docker.DockerClient(base_url=docker_env.docker_host or None, timeout=120)
        try:
            stale = []
            for image in (docker_env.image, docker_env.idle_image):
                wanted = main.images.get(image).id
                try:
                    have = client.images.get(image).id
                except docker.errors.ImageNotFound:
                    have = None
                if have != wanted:
                    stale.append(image)
            if stale:  # copy them over in one archive: the idle image's layers are the client's
                save = subprocess.Popen(
                    ["docker", "-H", docker_env.docker_host, "save", *stale],
                    stdout=subprocess.PIPE,
                )
                assert save.stdout is not None
                with save.stdout:
                    subprocess.run(
                        ["docker", "-H", url, "load", "-q"], stdin=save.stdout, check=True
                    )
                assert save.wait(timeout=120) == 0
                for image in stale:  # the engine has them now, under the same ids
                    assert client.images.get(image).id == main.images.get(image).id, image
        finally:
            main.close()
    finally:
        client.close()
    yield url
    if started is not None:
        started.send_signal(signal.SIGTERM)
        try:
            started.wait(timeout=30)
        except subprocess.TimeoutExpired:
            started.kill()


@pytest.fixture
async def make_swarm(swarm_host: str, docker_env: DockerEnv) -> AsyncIterator[MakeSwarm]:
    made: list[SwarmBackend] = []

    def make(**kwargs: Any) -> SwarmBackend:
        kwargs.setdefault("image", docker_env.idle_image)
        kwargs.setdefault("network", "host")
        kwargs.setdefault("stop_timeout", 3)
        kwargs.setdefault("client_factory", docker_client_factory(swarm_host, timeout=60))
        backend = SwarmBackend(**kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        with contextlib.suppress(DeployError):  # a backend on a non-manager has nothing to list
            for tenant_id in list(await backend.list()):
                await backend.remove(tenant_id)
        await backend.close()


@pytest.fixture
def swarm_api(swarm_host: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=swarm_host, timeout=60)
    yield client
    client.close()


async def _state(backend: SwarmBackend, tenant_id: str, state: RuntimeState) -> bool:
    return (await backend.status(tenant_id)).state is state


async def test_lifecycle_hardening_secrets_and_adoption(
    make_swarm: MakeSwarm, swarm_api: docker.DockerClient
) -> None:
    backend = make_swarm()
    await backend.ping()
    tenant_id = new_tenant_id()
    spec = spec_for(tenant_id)
    token = spec.env["BOT_TOKEN"]
    assert (await backend.status(tenant_id)).state is RuntimeState.MISSING
    await backend.deploy(spec)
    await eventually(
        lambda: _state(backend, tenant_id, RuntimeState.RUNNING), timeout=60, what="running"
    )

    service = swarm_api.services.get(f"botfleet-{tenant_id}")
    inspected = json.dumps(service.attrs)
    # Secrets are Swarm secrets, never in what `docker service inspect` shows.
    assert token not in inspected and spec.env["DATABASE_URL"] not in inspected
    container = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert {s["File"]["Name"] for s in container["Secrets"]} == {
        "bot_token",
        "database_url",
        "redis_url",
    }
    assert "SECRETS_DIR=/run/secrets" in container["Env"]
    assert container["ReadOnly"] is True and container["CapabilityDrop"] == ["ALL"]
    assert container["User"] not in {"", "0", "root"}
    limits = service.attrs["Spec"]["TaskTemplate"]["Resources"]["Limits"]
    assert limits["MemoryBytes"] == 384 * 2**20 and limits["NanoCPUs"] == 10**9
    labels = service.attrs["Spec"]["Labels"]
    assert labels[LABEL_TENANT] == tenant_id and labels[LABEL_FLEET] == "botfleet"
    # (That the bot reads its token from the secret file, not the environment, is what the real
    # bot below proves: BOT_TOKEN is not in its environment, and it answers /start.)

    # Idempotent; a changed spec is a new service with new secrets, the old ones removed.
    first_hash = labels[LABEL_SPEC]
    await backend.deploy(spec)
    assert (
        swarm_api.services.get(f"botfleet-{tenant_id}").attrs["Spec"]["Labels"][LABEL_SPEC]
        == first_hash
    )
    changed = ClientSpec(tenant_id, {**spec.env, "BOT_TOKEN": token + "x"}, spec.labels)
    assert await backend.drifted({tenant_id: changed}) == {tenant_id}
    await backend.deploy(changed)
    names = [
        s.name for s in swarm_api.secrets.list(filters={"label": f"{LABEL_TENANT}={tenant_id}"})
    ]
    assert len(names) == 3, names  # only the current ones

    # Stop (scaled to 0), start, restart; a new backend (a master restart) adopts it by label,
    # another fleet's backend does not see it.
    assert (await backend.stop(tenant_id)).state is RuntimeState.STOPPED
    await backend.start(tenant_id)
    await eventually(
        lambda: _state(backend, tenant_id, RuntimeState.RUNNING), timeout=60, what="restarted"
    )
    await backend.restart(tenant_id)
    assert tenant_id in await make_swarm().list()
    assert tenant_id not in await make_swarm(fleet="staging").list()
    await backend.remove(tenant_id)
    assert (await backend.status(tenant_id)).state is RuntimeState.MISSING
    await eventually(
        lambda: not swarm_api.secrets.list(filters={"label": f"{LABEL_TENANT}={tenant_id}"}),
        what="the secrets removed with the service",
        timeout=30,
    )


async def test_a_manager_is_required(make_swarm: MakeSwarm, docker_env: DockerEnv) -> None:
    plain = make_swarm(client_factory=docker_client_factory(docker_env.docker_host, timeout=30))
    with pytest.raises(DeployError, match="not a Swarm manager"):
        await plain.ping()


@pytest.mark.timeout(240)
async def test_a_real_client_bot_as_a_swarm_service_answers_start(
    make_swarm: MakeSwarm,
    docker_env: DockerEnv,
    emulator: tuple[EmulatorServer, EmulatorClient],
    make_tenant: Any,
    redis_admin: Any,
    redis_url: str,
) -> None:
    server, tg = emulator
    tenant = await make_tenant()
    tenant_id = tenant.tenant_id
    redis_user = await create_tenant_redis_user(redis_admin, tenant_id, server_url=redis_url)
    token = f"8{tenant_id[-6:]}:swarm-e2e-token-{tenant_id}"
    await tg.register_bot(token, f"swarm{tenant_id[-4:]}_bot", "Salon")
    backend = make_swarm(image=docker_env.image)
    env = {
        "TENANT_ID": tenant_id,
        "BOT_TOKEN": token,
        "DATABASE_URL": tenant.dsn,
        "REDIS_URL": redis_user.url,
        "REDIS_KEY_PREFIX": redis_user.key_prefix,
        "TELEGRAM_API_URL": server.base_url,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "ADMIN_IDS": "7001",
    }
    user = 9101
    try:
        await backend.deploy(ClientSpec(tenant_id, env, {}))
        await tg.send_message(token, user, "/start", first_name="Анна")
        try:
            reply = await tg.wait_for_message(token, user, timeout=90)
        except TimeoutError as exc:
            raise AssertionError(
                f"no answer ({await backend.status(tenant_id)}):\n{await backend.logs(tenant_id)}"
            ) from exc
        assert reply.plain_text.strip()
        logs = await backend.logs(tenant_id, lines=200)
        assert token not in logs and tenant.password not in logs
    finally:
        await backend.remove(tenant_id)
        await remove_tenant_redis(redis_admin, tenant_id, drop_data=True)
