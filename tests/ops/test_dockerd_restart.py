"""A Docker Engine restart under a running fleet: every tenant's bot answers /start again.

The operator's path of docs/operations.md includes restarting the Docker Engine (an upgrade of
docker.io, a host reboot). The engine the other tests share must never be restarted, so this
test runs a dockerd of its own (its own socket, data root and exec root under the run folder of
scripts/services.sh, like tests/test_swarm_backend.py), held by one test session at a time (a
lock file), with the client image copied into it from the shared engine (`docker save | docker
load`: about 10 s for the 350 MB image, and only when the image changed; building it in the new
engine instead took 34 s here). Its data root is kept between runs for that cache.

A master (the real API, provisioning and reconciler loop, tests/master/conftest.py's harness)
runs a DockerBackend against that engine with three real client bots, which answer /start
through the project's Telegram emulator. Then dockerd gets SIGTERM (what `systemctl restart
docker` sends) and is started again on the same data root, the master running all along: while
the engine is away /health says degraded (the deploy backend does not answer); dockerd stops the
bots (each exits 0 on SIGTERM, so Docker's `on-failure` policy leaves it stopped); after the
restart the reconciler sees active tenants whose bot is not running and starts them again, and
every bot answers /start within ANSWER_WITHIN seconds. (A bot the reconciler started while
dockerd was shutting down, or that exited non-zero, may come back through Docker instead; the
test prints which.)

Not here: `kill -9` of dockerd. A dockerd started by hand runs its own containerd, which dies
with it, and the next dockerd found the dead containerd's pid file and gave up ("timeout waiting
for containerd to start") once in three tries; Debian's docker.io runs containerd as a service of
its own, which this test cannot reproduce without the shared engine.

Client containers use the host's network here (CLIENT_NETWORK=host: PostgreSQL, Redis and the
emulator listen on the host's 127.0.0.1); the network's own recovery (compose down/up) is
tests/master/test_docker_master.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import ImageNotFound, NotFound

from master_bot.deploy.base import RuntimeState
from master_bot.deploy.docker import DockerBackend, docker_client_factory
from tests.docker_support import DockerEnv, fixture_docker_env  # noqa: F401 - fixture
from tests.master.conftest import Harness, emulator, make_harness  # noqa: F401 - fixtures

# A dockerd of its own, restarted: one worker runs these in turn.
pytestmark = pytest.mark.engine(dockerd="restart")

RUN_DIR = Path(os.environ.get("BOTFLEET_RUN_DIR", f"/tmp/botfleet-run-{os.getuid()}"))  # noqa: S108
HOME = RUN_DIR / "restartd"
TENANTS = 3
ANSWER_WITHIN = 60.0  # seconds from the engine answering again to every bot's reply


def _answers(url: str) -> bool:
    """Whether the dockerd at `url` (unix://) answers `/_ping` (a raw socket: the SDK leaks its
    socket while the daemon is not up)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(url.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return sock.recv(4096).startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class OwnEngine:
    """A dockerd of this test's own, stopped and started again on the same data root."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.url = f"unix://{home / 'docker.sock'}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def containerd_pidfile(self) -> Path:
        return self.home / "x" / "containerd" / "containerd.pid"

    def start(self) -> float:
        """Start dockerd; the seconds until it answered."""
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            pytest.fail("dockerd is missing: `make test` installs docker.io (docker_engine.sh)")
        started = time.monotonic()
        with (self.home / "dockerd.log").open("ab") as log:  # the daemon keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    dockerd,
                    f"--data-root={self.home / 'data'}",
                    f"--exec-root={self.home / 'x'}",
                    f"--host={self.url}",
                    f"--pidfile={self.home / 'docker.pid'}",
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                ],
                stdout=log,
                stderr=log,
            )
        while not _answers(self.url):
            if self.process.poll() is not None or time.monotonic() - started > 60:
                pytest.fail(f"the test's dockerd did not start; see {self.home / 'dockerd.log'}")
            time.sleep(0.1)
        return time.monotonic() - started

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> float:
        """Send `sig` to dockerd and wait for it to end; the seconds that took."""
        started = time.monotonic()
        if self.process is not None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                pytest.fail(f"dockerd did not end within 60 s of {sig.name}")
            self.process = None
        return time.monotonic() - started

    def stop_leftovers(self) -> None:
        """A dockerd (and its containerd) left running by an earlier session that died, and
        container shims left behind: ours, by the pids they wrote or the socket under this home."""
        for pidfile in (self.home / "docker.pid", self.containerd_pidfile):
            pid = _pid_in(pidfile)
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGTERM)
                if not _wait_gone(pid, 60):
                    os.kill(pid, signal.SIGKILL)
                    _wait_gone(pid, 10)
        address = f"-address\0{self.home / 'x' / 'containerd' / 'containerd.sock'}\0".encode()
        shims = [p for p, args in _processes().items() if address in args]
        for pid in [c for c, parent in _parents().items() if parent in shims] + shims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _processes() -> dict[int, bytes]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
    return found


def _parents() -> dict[int, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def _copy_image(image: str, source: str, target: str) -> float:
    """Copy `image` from the engine at `source` to the one at `target` unless it is there;
    the seconds it took (0 when it was there)."""
    started = time.monotonic()
    main = docker.DockerClient(base_url=source or None, timeout=120)
    own = docker.DockerClient(base_url=target, timeout=120)
    try:
        wanted = main.images.get(image).id
        try:
            have = own.images.get(image).id
        except ImageNotFound:
            have = None
        if have == wanted:
            return 0.0
        save = subprocess.Popen(["docker", "-H", source, "save", image], stdout=subprocess.PIPE)
        assert save.stdout is not None
        with save.stdout:
            subprocess.run(["docker", "-H", target, "load", "-q"], stdin=save.stdout, check=True)
        assert save.wait(timeout=120) == 0
        own.images.prune(filters={"dangling": True})  # the image this tag named before
        return time.monotonic() - started
    finally:
        main.close()
        own.close()


@pytest.fixture(scope="module")
def own_engine(docker_env: DockerEnv) -> Iterator[OwnEngine]:
    HOME.mkdir(parents=True, exist_ok=True)
    with (HOME / "lock").open("w") as lock:
        deadline = time.monotonic() + 600
        while True:  # another session restarting it would pull it from under this one
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{HOME} stayed locked by another test session for 600 s")
                time.sleep(1)
        engine = OwnEngine(HOME)
        engine.stop_leftovers()
        took = engine.start()
        try:
            client = docker.DockerClient(base_url=engine.url, timeout=60)
            try:
                for container in client.containers.list(all=True):  # an earlier run's
                    with contextlib.suppress(NotFound):
                        container.remove(force=True)
            finally:
                client.close()
            copied = _copy_image(docker_env.image, docker_env.docker_host, engine.url)
            print(f"own dockerd up in {took:.1f} s, {docker_env.image} copied in {copied:.1f} s")
            yield engine
        finally:
            engine.stop()
            engine.stop_leftovers()


async def _all_answer(harness: Harness, bots: dict[str, str], user: int) -> dict[str, float]:
    """Each bot answers /start from a new customer; the seconds each took."""
    started = time.monotonic()

    async def one(tenant_id: str, token: str) -> tuple[str, float]:
        seen = len(await harness.tg.messages(token, user))
        await harness.tg.send_message(token, user, "/start", first_name="Анна")
        try:
            reply = await harness.tg.wait_for_message(
                token, user, count=seen + 1, timeout=ANSWER_WITHIN
            )
        except TimeoutError as exc:
            status = await harness.backend.status(tenant_id)
            raise AssertionError(
                f"{tenant_id} did not answer /start within {ANSWER_WITHIN} s ({status})"
            ) from exc
        assert reply.plain_text.strip()
        return tenant_id, time.monotonic() - started

    return dict(await asyncio.gather(*(one(t, tok) for t, tok in bots.items())))


def _drop_leaked_sockets() -> None:
    """docker-py leaks the socket of a connection that fails (docker/transport/unixconn.py:
    `connect` makes it, `sock.connect` raises, nothing closes it): collect those now, quietly,
    rather than have them raise ResourceWarning into a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _backend(engine: OwnEngine, docker_env: DockerEnv) -> DockerBackend:
    """The master's DockerBackend as compose configures it, but on the test's engine and the
    host's network."""
    return DockerBackend(
        image=docker_env.image,
        network="host",
        stop_timeout=5,
        client_factory=docker_client_factory(engine.url, timeout=30),
    )


def _running(url: str) -> dict[str, dict[str, Any]]:
    """tenant -> the inspected attributes of its running container (a client per call: the
    engine restarts in between)."""
    client = docker.DockerClient(base_url=url, timeout=30)
    try:
        return {c.labels["botfleet.tenant"]: c.attrs for c in client.containers.list()}
    finally:
        client.close()


async def _reconciler_starts(harness: Harness, since: object) -> dict[str, int]:
    rows = await harness.fetch(
        "SELECT tenant_id, count(*) AS n FROM control.audit_log WHERE actor = 'reconciler'"
        " AND action IN ('runtime.restart', 'runtime.deploy') AND at > $1 GROUP BY tenant_id",
        since,
    )
    return {r["tenant_id"]: r["n"] for r in rows}


@pytest.mark.timeout(300)
async def test_every_bot_answers_again_after_a_dockerd_restart(
    own_engine: OwnEngine,
    docker_env: DockerEnv,
    make_harness: Callable[..., Awaitable[Harness]],  # noqa: F811 - the imported fixture
) -> None:
    t0 = time.monotonic()
    harness = await make_harness(backend=_backend(own_engine, docker_env))
    tokens = [await harness.new_bot(f"restart{i}_bot") for i in range(TENANTS)]
    replies = await asyncio.gather(
        *(harness.api.provision(t, business_name=f"Салон {i}") for i, t in enumerate(tokens))
    )
    assert [r.status for r in replies] == [201] * TENANTS, [r.body for r in replies]
    bots = {r.body["tenant_id"]: token for r, token in zip(replies, tokens, strict=True)}
    first = await _all_answer(harness, bots, user=7101)
    print(f"{TENANTS} bots provisioned and answering in {time.monotonic() - t0:.1f} s")

    # The master runs its reconciler loop until the engine stops: a master in compose is a
    # container of that engine, stopped with it and started again by its restart policy.
    loop = asyncio.create_task(harness.master.reconciler.run())
    await asyncio.sleep(1)
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    before = _running(own_engine.url)
    assert set(before) == set(bots)
    (now,) = await harness.fetch("SELECT now() AS t")
    stopped = await asyncio.to_thread(own_engine.stop, signal.SIGTERM)
    health = await harness.api.call("GET", "/health", auth=False)
    assert health.status == 503, health.body
    assert health.body["status"] == "degraded"
    assert not health.body["checks"]["deploy_backend:docker"]["ok"]
    _drop_leaked_sockets()
    started = await asyncio.to_thread(own_engine.start)
    restarted = await make_harness(backend=_backend(own_engine, docker_env))
    loop = asyncio.create_task(restarted.master.reconciler.run())
    try:
        answered = await _all_answer(restarted, bots, user=7102)
        after = _running(own_engine.url)
        assert set(after) == set(bots)  # one running container per tenant, none left over
        by_reconciler = await _reconciler_starts(harness, now["t"])
        by_docker = {t: c["RestartCount"] for t, c in after.items() if c["RestartCount"]}
        # Each came back through the reconciler or Docker's restart policy (a bot that exited
        # non-zero while dockerd stopped it); a bot nobody started would not have answered.
        assert set(by_reconciler) | set(by_docker) == set(bots), (by_reconciler, by_docker)
        for tenant_id in bots:
            assert (await restarted.backend.status(tenant_id)).state is RuntimeState.RUNNING
        print(
            f"SIGTERM: dockerd stopped in {stopped:.1f} s, up again in {started:.1f} s; every "
            f"bot answered within {max(answered.values()):.1f} s of that; started again by the "
            f"reconciler: {len(by_reconciler)}, by Docker's restart policy: {len(by_docker)}; "
            f"same containers: {sum(after[t]['Id'] == before[t]['Id'] for t in bots)}"
        )
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    print(f"first answers in {max(first.values()):.1f} s; whole test {time.monotonic() - t0:.1f} s")
