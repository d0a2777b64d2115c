"""A local 3-master Redis Cluster from Debian's `redis-server`, for tests (a few seconds).

Three processes on free 127.0.0.1 ports (each with its cluster bus port, +10000), `cluster-enabled
yes`, no persistence, and the same ACL file on every node: the default user off, an `admin` user
with a password (what the master's REDIS_URL logs in as). Joined with `redis-cli --cluster create
... --cluster-replicas 0 --cluster-yes`; stopped and removed by the context manager.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path


@dataclass(frozen=True)
class LocalCluster:
    ports: tuple[int, ...]
    password: str
    dirs: tuple[Path, ...]

    @property
    def admin_url(self) -> str:
        """The master's REDIS_URL for this cluster (any node; the client finds the others)."""
        return f"redis+cluster://admin:{self.password}@127.0.0.1:{self.ports[0]}/0"

    def node_url(self, port: int) -> str:
        """One node alone, as a plain client (ACL users are per node)."""
        return f"redis://admin:{self.password}@127.0.0.1:{port}/0"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ports(n: int) -> list[int]:
    """`n` ports free together with their cluster bus ports (port + 10000)."""
    found: list[int] = []
    while len(found) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536 and port not in found and _free(port + 10000):
            found.append(port)
    return found


def _cli(password: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["redis-cli", "--user", "admin", "--pass", password, "--no-auth-warning", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _answers(password: str, port: int, *command: str, expect: str) -> bool:
    return expect in _cli(password, "-p", str(port), *command).stdout


def _wait(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"local Redis Cluster: {what} not reached in {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def local_cluster(base: Path, masters: int = 3) -> Iterator[LocalCluster]:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (Debian's redis-server package)")
    password = secrets.token_urlsafe(16)
    ports = _ports(masters)
    dirs = tuple(base / str(p) for p in ports)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port, folder in zip(ports, dirs, strict=True):
            folder.mkdir(parents=True)
            acl = folder / "users.acl"
            acl.write_text(f"user default off\nuser admin on >{password} ~* &* +@all\n")
            conf = folder / "redis.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\nlogfile {folder / 'redis.log'}\n"
                f"aclfile {acl}\ncluster-enabled yes\ncluster-config-file nodes.conf\n"
                'cluster-node-timeout 2000\nsave ""\nappendonly no\n'
            )
            procs.append(
                subprocess.Popen(
                    ["redis-server", str(conf)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            _wait(f"node {port} up", partial(_answers, password, port, "ping", expect="PONG"))
        nodes = [f"127.0.0.1:{p}" for p in ports]
        made = _cli(
            password, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"
        )
        if made.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {made.stdout}{made.stderr}")
        for port in ports:
            ok = partial(_answers, password, port, "cluster", "info", expect="cluster_state:ok")
            _wait(f"cluster_state:ok on {port}", ok)
        yield LocalCluster(tuple(ports), password, dirs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(base, ignore_errors=True)
