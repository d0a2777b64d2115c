"""Fixtures and helpers for tests against a real Docker Engine.

`docker_env` runs `scripts/docker_engine.sh up`, which installs and starts dockerd when needed and
builds the base and client images once per machine (cached by a content hash). When Docker
cannot be had, the tests FAIL with the script's reason: they never skip.

Every container a test creates carries the label `botfleet.test-run=<this session>`; each test
removes its containers afterwards, and the session removes any that are left.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import NotFound

from master_bot.deploy.base import ClientSpec
from master_bot.deploy.docker import DockerBackend, docker_client_factory
from telegram_emulator import EmulatorClient, EmulatorServer

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINE_SCRIPT = REPO_ROOT / "scripts" / "docker_engine.sh"
ENGINE_TIMEOUT = 900  # the first run on a machine installs packages and builds two images
RUN_LABEL = "botfleet.test-run"
RUN_ID = secrets.token_hex(6)
IDLE_IMAGE = "botfleet-client:test-idle"

# A stand-in for the bot with the client image's Python, user and limits: prints a line, then
# sleeps until SIGTERM (exit 0); with TEST_EXIT_CODE set it exits at once with that code.
IDLE_PROGRAM = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"idle test bot for {os.environ.get('TENANT_ID')} is up", flush=True)
code = os.environ.get("TEST_EXIT_CODE")
if code:
    sys.exit(int(code))
while True:
    time.sleep(3600)
"""


@dataclass(frozen=True)
class DockerEnv:
    docker_host: str
    image: str  # the real client image, built from the project's Dockerfile
    idle_image: str  # the client image with IDLE_PROGRAM as its command


def _exports(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, value = line.removeprefix("export ").split("=", 1)
            found[name] = value.strip("'\"")
    return found


def run_engine_script(command: str, timeout: float, cannot: str) -> dict[str, str]:
    """`scripts/docker_engine.sh <command>`: its export lines, or the test fails with `cannot`
    and the script's last lines (the reason)."""
    try:
        result = subprocess.run(
            ["bash", str(ENGINE_SCRIPT), command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=REPO_ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{ENGINE_SCRIPT} {command} did not finish in {timeout:.0f} s", pytrace=False)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-30:])
        pytest.fail(
            f"{cannot} ({ENGINE_SCRIPT} {command} exited {result.returncode}):\n{tail}",
            pytrace=False,
        )
    return _exports(result.stdout)


def prepare_docker() -> DockerEnv:
    """Engine + images via scripts/docker_engine.sh; fails the test with its reason."""
    started = time.monotonic()
    exports = run_engine_script(
        "up", ENGINE_TIMEOUT, "a Docker Engine with the client image cannot be had here"
    )
    env = DockerEnv(
        docker_host=exports.get("DOCKER_HOST") or os.environ.get("DOCKER_HOST", ""),
        image=exports.get("BOTFLEET_CLIENT_IMAGE", "botfleet-client:test"),
        idle_image=IDLE_IMAGE,
    )
    client = docker.DockerClient(base_url=env.docker_host or None, timeout=120)
    try:
        dockerfile = (
            f"FROM {env.image}\n"
            f"LABEL {RUN_LABEL}-image=idle\n"
            f"CMD {json.dumps(['python', '-c', IDLE_PROGRAM])}\n"
        )
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=env.idle_image, rm=True)
    finally:
        client.close()
    print(f"docker ready in {time.monotonic() - started:.1f} s")  # shown with -s
    return env


# Fixtures are named with `name=` so that a test module imports them as `fixture_*`
# (`from tests.docker_support import fixture_docker_env`) without shadowing the parameter.
@pytest.fixture(name="docker_env", scope="session")
def fixture_docker_env() -> DockerEnv:
    return prepare_docker()


@pytest.fixture(name="docker_api", scope="session")
def fixture_docker_api(docker_env: DockerEnv) -> Iterator[docker.DockerClient]:
    """A plain SDK client for inspecting what the backend did (not the backend's own)."""
    client = docker.DockerClient(base_url=docker_env.docker_host or None, timeout=60)
    yield client
    remove_test_containers(client)
    client.close()


def remove_test_containers(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={RUN_ID}"}):
        with contextlib.suppress(NotFound):
            container.remove(force=True)


def spec_for(tenant_id: str, env: Mapping[str, str] | None = None) -> ClientSpec:
    """A spec with this session's label; `env` defaults to a made-up but well-formed one."""
    base = {
        "TENANT_ID": tenant_id,
        "BOT_TOKEN": f"4242424:secret-token-{secrets.token_hex(12)}",
        "DATABASE_URL": f"postgresql://{tenant_id}:pw-{secrets.token_hex(8)}@127.0.0.1:1/botfleet",
        "REDIS_URL": f"redis://{tenant_id}:pw-{secrets.token_hex(8)}@127.0.0.1:1/0",
        "REDIS_KEY_PREFIX": f"{tenant_id}:",
    }
    return ClientSpec(
        tenant_id=tenant_id,
        env={**base, **(env or {})},
        labels={RUN_LABEL: RUN_ID, "botfleet.role": "client-bot"},
    )


@pytest.fixture(name="make_backend")
async def fixture_make_backend(
    docker_env: DockerEnv, docker_api: docker.DockerClient
) -> AsyncIterator[Callable[..., DockerBackend]]:
    """DockerBackend(s) on the test engine (idle image unless told); containers removed after."""
    made: list[DockerBackend] = []

    def make(**kwargs: Any) -> DockerBackend:
        kwargs.setdefault("image", docker_env.idle_image)
        kwargs.setdefault("stop_timeout", 5)
        kwargs.setdefault(
            "client_factory", docker_client_factory(docker_env.docker_host or None, timeout=60)
        )
        backend = DockerBackend(**kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()
    remove_test_containers(docker_api)


def compose_cli() -> list[str]:
    """`docker compose` (v2) when installed, else Debian's `docker-compose` (v1); the test fails
    with the reason when there is neither."""
    docker_cli = shutil.which("docker")
    if docker_cli and (
        subprocess.run(
            [docker_cli, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return [docker_cli, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail(
            "no `docker compose` or `docker-compose`: `scripts/docker_engine.sh up` (run by "
            "`make test`) installs docker-compose from the OS packages",
            pytrace=False,
        )
    return [legacy]


async def eventually(
    check: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")


@pytest.fixture(name="emulator")
async def fixture_emulator() -> AsyncIterator[tuple[EmulatorServer, EmulatorClient]]:
    """The Telegram emulator on a free port of 127.0.0.1, and a client of its control API."""
    server = EmulatorServer()
    await server.start(host="127.0.0.1", port=0)
    client = EmulatorClient(server.base_url)
    yield server, client
    await client.close()
    await server.stop()
