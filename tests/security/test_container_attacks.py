"""A hostile client bot, run by the master's own deploy backends: what it can reach must stay
its own.

- Docker: a tenant container on the default network tries the host's loopback services (a
  PostgreSQL or Redis that trusts 127.0.0.1 would make it a superuser) and the same ports on the
  network's gateway. All refused, and its bot still answers /start (through the addresses an
  operator configures for the network: here relays on the gateway, see tests/test_docker_backend).
- Processes: a bot of the process backend reads every /proc/<pid>/environ it can, looking for
  the master's secrets (ENCRYPTION_KEYS, the admin DSN) and other tenants' environments.

The hostile bot of the process backend is tests/security/hostile_bot.py (standard library only:
it also runs on an interpreter without this project's packages).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import pytest

from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from master_bot.deploy.base import ClientSpec, DeployError, RuntimeState
from master_bot.deploy.process import ProcessBackend
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.conftest import new_tenant_id
from tests.docker_support import (  # noqa: F401 - fixtures, used by name
    RUN_ID,
    RUN_LABEL,
    DockerEnv,
    fixture_docker_api,
    fixture_docker_env,
    fixture_make_backend,
)
from tests.test_docker_backend import Relay

pytestmark = pytest.mark.engine  # shares the Docker Engine: one worker runs these in turn

PROBE_MODULE = "tests.security.hostile_bot"
# Python's own additions (C-locale coercion) beside what the process backend adds.
PROCESS_EXTRAS = {"PATH", "PYTHONPATH", "PYTHONUNBUFFERED", "LC_CTYPE"}

_CONNECT = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        print("OPEN", target)
    except OSError as exc:
        print("CLOSED", target, type(exc).__name__)
    finally:
        s.close()
"""


async def _until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout} s")


@pytest.mark.timeout(240)
async def test_a_tenant_container_cannot_reach_the_hosts_loopback_services(
    make_backend: Any,
    docker_env: DockerEnv,
    docker_api: docker.DockerClient,
    make_tenant: Any,
    redis_admin: Any,
    redis_url: str,
    pg_server_dsn: str,
) -> None:
    server = EmulatorServer()
    await server.start(host="127.0.0.1", port=0)
    tg = EmulatorClient(server.base_url)
    tenant = await make_tenant()
    tid = tenant.tenant_id
    redis_user = await create_tenant_redis_user(redis_admin, tid, server_url=redis_url)
    token = f"8{tid[-6:]}:attack-token-{secrets.token_hex(8)}"
    await tg.register_bot(token, f"attack{tid[-4:]}_bot", "Attack")
    backend = make_backend(image=docker_env.image)  # the default: nothing says which network
    gateway = await backend.network_gateway()
    assert gateway, "the default network must be a bridge with a gateway, not the host's"
    relay = Relay(gateway)
    env = {
        "TENANT_ID": tid,
        "BOT_TOKEN": token,
        "DATABASE_URL": await relay.expose(tenant.dsn),
        "REDIS_URL": await relay.expose(redis_user.url),
        "REDIS_KEY_PREFIX": redis_user.key_prefix,
        "TELEGRAM_API_URL": await relay.expose(server.base_url),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "ADMIN_IDS": "7001",
        "LOCALE": "ru",
        "TIMEZONE": "Europe/Moscow",
    }
    try:
        await backend.deploy(ClientSpec(tid, env, {RUN_LABEL: RUN_ID}))
        (container,) = docker_api.containers.list(
            all=True, filters={"label": f"botfleet.tenant={tid}"}
        )
        assert container.attrs["HostConfig"]["NetworkMode"] != "host"

        # The bot works: it answers /start through the network's addresses.
        await tg.send_message(token, 9101, "/start", first_name="Анна")
        try:
            reply = await tg.wait_for_message(token, 9101, timeout=60)
        except TimeoutError as exc:
            logs = await backend.logs(tid, lines=40)
            raise AssertionError(f"the bot did not answer /start:\n{logs}") from exc
        assert reply.plain_text.strip()

        # The attack: the host's loopback services, and the same ports on the gateway.
        pg_port = urlsplit(pg_server_dsn).port
        redis_port = urlsplit(redis_url).port
        targets = [
            f"127.0.0.1:{pg_port}",
            f"127.0.0.1:{redis_port}",
            f"{gateway}:{pg_port}",
            f"{gateway}:{redis_port}",
        ]
        result = container.exec_run(["python", "-c", _CONNECT, *targets])
        lines = result.output.decode().splitlines()
        assert len(lines) == len(targets), lines
        assert all(line.startswith("CLOSED ") for line in lines), lines
        # ... while the relay the operator set up answers (the probe itself is not blind).
        relayed = urlsplit(env["DATABASE_URL"])
        result = container.exec_run(
            ["python", "-c", _CONNECT, f"{relayed.hostname}:{relayed.port}"]
        )
        assert result.output.decode().startswith("OPEN "), result.output
    finally:
        await backend.remove(tid)
        await relay.close()
        await remove_tenant_redis(redis_admin, tid, drop_data=True)
        await tg.close()
        await server.stop()


def _spec(tid: str, **extra: str) -> ClientSpec:
    env = {
        "TENANT_ID": tid,
        "BOT_TOKEN": f"4242424:probe-{secrets.token_hex(10)}",
        "DATABASE_URL": f"postgresql://{tid}:pw-{secrets.token_hex(8)}@127.0.0.1:1/botfleet",
        "REDIS_URL": f"redis://{tid}:pw-{secrets.token_hex(8)}@127.0.0.1:1/0",
        "REDIS_KEY_PREFIX": f"{tid}:",
        "TELEGRAM_API_URL": "http://127.0.0.1:9",
        "LOCALE": "ru",
        **extra,
    }
    return ClientSpec(tid, env, {})


@pytest.mark.timeout(120)
async def test_a_process_bot_finds_no_master_secret_and_no_other_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    # The master's environment holds its secrets: this process's (os.environ), and a stand-in
    # master process started with them (/proc/<pid>/environ shows the environment at exec).
    marker = secrets.token_hex(16)
    admin_dsn = f"postgresql://botfleet:admin-{marker}@127.0.0.1:1/botfleet"
    monkeypatch.setenv("ENCRYPTION_KEYS", f"attack-marker-{marker}")
    monkeypatch.setenv("DATABASE_URL", admin_dsn)
    master = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(120)",
        env={"ENCRYPTION_KEYS": f"attack-marker-{marker}", "DATABASE_URL": admin_dsn},
    )  # fmt: skip
    root = os.geteuid() == 0
    python = _python_other_users_can_run(monkeypatch) if root else sys.executable
    # A uid range of its own: other masters (tests) on this machine allocate from the default.
    uid_base = 1_500_000_000 + secrets.randbelow(100_000) * 1000
    backend = ProcessBackend(
        tmp_path / "clients",
        python=python,
        module=PROBE_MODULE,
        cwd=_probe_root(request) if root else None,
        stop_timeout=5,
        uid_base=uid_base,
        separate_users=root or None,  # required when root: no silent fallback in this test
    )
    assert backend.separate_users is root

    # A spec carrying platform-wide settings is refused outright.
    with pytest.raises(DeployError, match="ENCRYPTION_KEYS") as refused:
        await backend.deploy(_spec(new_tenant_id(), ENCRYPTION_KEYS=f"x-{marker}"))
    assert marker not in str(refused.value)
    with pytest.raises(DeployError, match="DATABASE_URL \\(the master's own\\)"):
        await backend.deploy(_spec(new_tenant_id(), DATABASE_URL=admin_dsn))

    tenants = [new_tenant_id(), new_tenant_id()]
    specs = {tid: _spec(tid) for tid in tenants}
    try:
        for tid in tenants:
            assert (await backend.deploy(specs[tid])).state is RuntimeState.RUNNING

        async def scanned_twice_each() -> bool:
            logs = [await backend.logs(tid, lines=100_000) for tid in tenants]
            return all(log.count("scan done") >= 2 for log in logs)

        # Both bots are up, so each has had the other to look at (and the master).
        await _until(scanned_twice_each, 60, "two /proc scans by each probe")
        uids = set()
        for tid in tenants:
            log = await backend.logs(tid, lines=100_000)
            lines = log.splitlines()
            (who,) = [line for line in lines if line.startswith("probe uid=")]
            (names,) = [line for line in lines if line.startswith("own env: ")]
            own = set(names.removeprefix("own env: ").split(","))
            assert own - set(specs[tid].env) <= PROCESS_EXTRAS, own - set(specs[tid].env)
            assert "ENCRYPTION_KEYS" not in own and "MASTER_API_TOKEN" not in own
            assert marker not in log
            leaks = [line for line in lines if line.startswith("LEAK")]
            if root:
                uid, gid, groups = (int(part.split("=")[1]) for part in who.split()[1:4])
                assert uid != 0 and gid != 0 and groups == 0, who
                uids.add(uid)
                assert leaks == [], leaks  # not the master's environ, not the other tenant's
        if root:
            assert len(uids) == len(tenants)  # a uid per tenant
            pid = int((await backend.status(tenants[0])).detail.split()[1])
            assert os.stat(f"/proc/{pid}").st_uid in uids  # the bot process itself, not root
    finally:
        for tid in tenants:
            await backend.remove(tid)
        await backend.close()
        master.kill()
        await master.wait()


def _probe_root(request: pytest.FixtureRequest) -> Path:
    """A folder other users can reach with the probe (standard library only) as
    `tests.security.hostile_bot`: the checkout itself may sit in a folder only root can enter
    (a `mktemp -d` clone), and a bot under a uid of its own must import the probe."""
    root = Path(tempfile.mkdtemp(prefix="botfleet-probe-"))
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    package = root / "tests" / "security"
    package.mkdir(parents=True)
    for folder in (root, root / "tests", package):
        folder.chmod(0o755)
        if folder is not root:
            (folder / "__init__.py").write_text("")
    shutil.copy(Path(__file__).with_name("hostile_bot.py"), package / "hostile_bot.py")
    for file in root.rglob("*.py"):
        file.chmod(0o644)
    return root


def _python_other_users_can_run(monkeypatch: pytest.MonkeyPatch) -> str:
    """This interpreter when a bot under another uid can run it; else (a pyenv Python under
    /root, as on this machine) the system's python3 of the same minor version: the hostile bot
    needs only the standard library."""
    if ProcessBackend(Path("/nonexistent"))._unreachable_by_others() is None:
        return sys.executable
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    assert system.exists(), (
        f"{sys.executable} is not reachable by other users and there is no {system}: "
        "a process bot cannot run under a uid of its own on this machine"
    )
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return str(system)


def test_the_default_interpreter_falls_back_loudly_when_others_cannot_run_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = ProcessBackend(Path("/nonexistent"))
    problem = backend._unreachable_by_others()
    if os.geteuid() != 0:
        assert backend.separate_users is False
    elif problem:
        assert backend.separate_users is False
        assert "client bots run as root" in caplog.text and problem in caplog.text
        with pytest.raises(ValueError, match="separate_users needs"):
            ProcessBackend(Path("/nonexistent"), separate_users=True)
    else:
        assert backend.separate_users is True
