"""ProcessBackend: client bots as local processes (development, machines without Docker).

Each bot runs as `python -m client_bot` in its own session (process group), with exactly the
`ClientSpec` environment plus PATH/PYTHONPATH/PYTHONUNBUFFERED: nothing of the master's own
environment (ENCRYPTION_KEYS, MASTER_API_TOKEN, the admin DATABASE_URL/REDIS_URL...), and a spec
that carries a platform-wide name or the master's own DSNs is refused. It is started through a
tiny launcher that exits at once, so the bot is not a child of the master: it survives a master
restart and is adopted through its pid file (`<runtime_dir>/<tenant_id>/bot.pid`: pid, kernel
start time, spec hash). Output goes to `<runtime_dir>/<tenant_id>/bot.log`, which `logs()` tails.

Users: when the master runs as root, every bot runs under a uid (and gid) of its own, allocated
from `uid_base` upwards and kept in `<runtime_dir>/<tenant_id>/bot.uid`, without supplementary
groups. So a bot can neither read the master's memory or `/proc/<pid>/environ` (the master's
secrets) nor another tenant's bot's (its token and passwords), nor signal them. The project and
the Python environment must then be readable by others (`o+rx`, the default of a checkout and a
venv); `ping()` says when they are not. A master that is not root cannot switch users: its bots
run as its own user (develop like that, but do not run a fleet of strangers' bots that way).

State on disk per tenant: `bot.pid` = should be running; `bot.stopped` = stopped on purpose;
neither = missing. A pid file whose process is gone means the bot crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.tenant_id import TENANT_ID_RE, validate_tenant_id
from master_bot.deploy.base import (
    ClientSpec,
    DeployBackend,
    DeployError,
    RuntimeState,
    RuntimeStatus,
)

log = logging.getLogger(__name__)

PID_FILE = "bot.pid"
STOPPED_FILE = "bot.stopped"
LOG_FILE = "bot.log"
UID_FILE = "bot.uid"
DEFAULT_UID_BASE = 1_900_000_000  # far from system users and the usual subuid ranges
# Never in a client bot's environment: the platform's own secrets and settings (docs/architecture.md).
PLATFORM_ONLY = frozenset(
    {
        "ENCRYPTION_KEYS",
        "MASTER_API_TOKEN",
        "MASTER_BOT_TOKEN",
        "SALES_BOT_TOKEN",
        "YOOKASSA_SECRET_KEY",
        "TENANT_DATABASE_URL",
        "TENANT_REDIS_URL",
        "DOCKER_HOST",
    }
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Runs in a short-lived process: starts the bot in a new session (as uid argv[3] when given)
# and prints its pid. The log file is opened here, by the master's user: the bot only writes to
# the descriptor it inherits.
_LAUNCHER = """
import subprocess, sys
user = {}
if sys.argv[3]:
    uid = int(sys.argv[3])
    user = {"user": uid, "group": uid, "extra_groups": [], "umask": 0o077}
with open(sys.argv[1], "ab") as log:
    bot = subprocess.Popen(
        [sys.executable, "-m", sys.argv[2]],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, close_fds=True, **user,
    )
print(bot.pid, flush=True)
"""


@dataclass(frozen=True, slots=True)
class PidInfo:
    pid: int
    start_ticks: int | None
    spec_sha256: str
    started_at: float


def spec_fingerprint(spec: ClientSpec) -> str:
    payload = json.dumps(
        {"env": dict(sorted(spec.env.items())), "labels": dict(sorted(spec.labels.items()))}
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live pid, None when there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])


def _alive(info: PidInfo) -> bool:
    stat = _proc_stat(info.pid)
    if stat is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no procfs: fall back to signal 0
            os.kill(info.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state, ticks = stat
    if state in {"Z", "X"}:
        return False
    return info.start_ticks is None or ticks == info.start_ticks


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class ProcessBackend(DeployBackend):
    name = "process"

    def __init__(
        self,
        runtime_dir: Path | str,
        *,
        python: str = sys.executable,
        module: str = "client_bot",
        stop_timeout: float = 10.0,
        launch_timeout: float = 15.0,
        cwd: Path | None = None,
        separate_users: bool | None = None,
        uid_base: int = DEFAULT_UID_BASE,
        names: re.Pattern[str] = TENANT_ID_RE,
    ) -> None:
        """`names`: what a runtime may be called (tenant ids; the hub backend's hubs: hub_<n>).
        `separate_users`: a uid per bot. None (the default): whenever possible, i.e. the master
        is root and other users can reach the interpreter and the project; True: required."""
        if not 1000 <= uid_base <= 2**31 - 2**20:
            raise ValueError("uid_base: between 1000 and 2**31 - 2**20")
        self.runtime_dir = Path(runtime_dir)
        self.python = python
        self.cwd = cwd or PROJECT_ROOT
        root = os.geteuid() == 0
        problem = None if not root else self._unreachable_by_others()
        if separate_users and (not root or problem):
            raise ValueError(
                "separate_users needs a master running as root, and "
                + (problem or "other users able to run the interpreter")
            )
        if separate_users is None and root and problem:
            log.warning(
                "client bots run as root, like the master, and can read its environment: %s. "
                "Use an interpreter and a checkout other users can reach (docs/operations.md)",
                problem,
            )
        self.separate_users = root and not problem if separate_users is None else separate_users
        self.uid_base = uid_base
        self._uid_lock = asyncio.Lock()
        self.module = module
        self.names = names
        self.stop_timeout = stop_timeout
        self.launch_timeout = launch_timeout
        self._specs: dict[str, ClientSpec] = {}
        self._restarts: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ files
    def _dir(self, tenant_id: str) -> Path:
        return self.runtime_dir / self._name(tenant_id)

    def _name(self, name: str) -> str:
        if self.names is TENANT_ID_RE:
            return validate_tenant_id(name)
        if not isinstance(name, str) or not self.names.fullmatch(name):
            raise DeployError(f"invalid runtime name {name!r}")
        return name

    def _read_pid(self, tenant_id: str) -> PidInfo | None:
        try:
            data = json.loads((self._dir(tenant_id) / PID_FILE).read_text())
            return PidInfo(
                int(data["pid"]),
                data.get("start_ticks"),
                str(data.get("spec_sha256", "")),
                float(data.get("started_at", 0.0)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_pid(self, tenant_id: str, info: PidInfo) -> None:
        path = self._dir(tenant_id) / PID_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "pid": info.pid,
                    "start_ticks": info.start_ticks,
                    "spec_sha256": info.spec_sha256,
                    "started_at": info.started_at,
                }
            )
        )
        os.replace(tmp, path)

    def _lock(self, tenant_id: str) -> asyncio.Lock:
        lock = self._locks.get(tenant_id)
        if lock is None:
            lock = self._locks[tenant_id] = asyncio.Lock()
        return lock

    def _status(self, tenant_id: str) -> RuntimeStatus:
        folder = self._dir(tenant_id)
        info = self._read_pid(tenant_id)
        restarts = self._restarts.get(tenant_id, 0)
        if info is not None:
            if _alive(info):
                return RuntimeStatus(
                    tenant_id,
                    RuntimeState.RUNNING,
                    restarts=restarts,
                    memory_bytes=_rss_bytes(info.pid),
                    detail=f"pid {info.pid}",
                )
            return RuntimeStatus(
                tenant_id,
                RuntimeState.CRASHED,
                restarts=restarts,
                detail=f"process {info.pid} exited without being stopped; see {LOG_FILE}",
            )
        if (folder / STOPPED_FILE).exists():
            return RuntimeStatus(tenant_id, RuntimeState.STOPPED, restarts=restarts)
        return RuntimeStatus(tenant_id, RuntimeState.MISSING)

    def _uid(self, tenant_id: str) -> int:
        """The tenant's own uid: the one in its bot.uid, else the lowest one no tenant has."""
        path = self._dir(tenant_id) / UID_FILE
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        taken: set[int] = set()
        if self.runtime_dir.is_dir():
            for other in self.runtime_dir.glob(f"*/{UID_FILE}"):
                with contextlib.suppress(OSError, ValueError):
                    taken.add(int(other.read_text().strip()))
        uid = self.uid_base
        while uid in taken:
            uid += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{uid}\n")
        os.replace(tmp, path)
        return uid

    async def uid_for(self, name: str) -> int | None:
        """The uid `name`'s process runs as (allocated now when new); None when bots run as the
        master's own user. For files the runtime must own (the hub backend's folders)."""
        if not self.separate_users:
            return None
        async with self._uid_lock:
            return await asyncio.to_thread(self._uid, self._name(name))

    def _unreachable_by_others(self) -> str | None:
        """Why a bot under a uid of its own could not run the interpreter (its venv and its
        standard library) or import the project; None when it could."""
        python = Path(self.python)
        targets = [python, python.resolve(), self.cwd.resolve()]
        try:
            for target in targets:
                folders = [target, *target.parents] if target.is_dir() else list(target.parents)
                for folder in folders:
                    if not folder.stat().st_mode & 0o001:
                        return f"{folder} is not searchable by other users (o+x)"
                if not target.stat().st_mode & (0o001 if target.is_file() else 0o005):
                    return f"{target} is not readable by other users"
        except OSError as exc:
            return f"{exc.filename}: {exc.strerror}"
        return None

    # ------------------------------------------------------------------ process control
    def _environment(self, spec: ClientSpec) -> dict[str, str]:
        forbidden = sorted(PLATFORM_ONLY & set(spec.env))
        for name in ("DATABASE_URL", "REDIS_URL"):
            own = os.environ.get(name)
            if own and spec.env.get(name) == own:
                forbidden.append(f"{name} (the master's own)")
        if forbidden:
            raise DeployError(
                f"refusing to start {spec.tenant_id}: its environment has platform-wide "
                f"settings: {', '.join(forbidden)}"
            )
        env = {k: str(v) for k, v in spec.env.items()}
        env["PATH"] = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        pythonpath = [str(self.cwd)]
        if os.environ.get("PYTHONPATH"):
            pythonpath.append(os.environ["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    async def _spawn(self, spec: ClientSpec) -> RuntimeStatus:
        # Shielded: a cancelled caller must not leave a bot running without its pid file.
        return await asyncio.shield(self._launch(spec))

    async def _launch(self, spec: ClientSpec) -> RuntimeStatus:
        tid = spec.tenant_id
        folder = self._dir(tid)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        if self.separate_users:  # its log, pid and uid files: none of the bots' business
            await asyncio.to_thread(folder.chmod, 0o700)
        log_path = folder / LOG_FILE
        env = self._environment(spec)
        uid = ""
        if self.separate_users:
            async with self._uid_lock:  # two tenants never get the same uid
                uid = str(await asyncio.to_thread(self._uid, tid))
        try:
            launcher = await asyncio.create_subprocess_exec(
                self.python,
                "-c",
                _LAUNCHER,
                str(log_path),
                self.module,
                uid,
                env=env,
                cwd=str(self.cwd),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise DeployError(f"cannot start {self.python} for {tid}: {exc.strerror}") from None
        try:
            out, err = await asyncio.wait_for(launcher.communicate(), self.launch_timeout)
        except TimeoutError:
            launcher.kill()
            await launcher.wait()
            raise DeployError(f"the launcher of {tid} did not answer in time") from None
        if launcher.returncode != 0 or not out.strip().isdigit():
            reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise DeployError(f"could not start the bot of {tid}: {reason[0][:300]}")
        pid = int(out.strip())
        stat = _proc_stat(pid)
        info = PidInfo(pid, stat[1] if stat else None, spec_fingerprint(spec), time.time())
        await asyncio.to_thread(self._write_pid, tid, info)
        with contextlib.suppress(FileNotFoundError):
            (folder / STOPPED_FILE).unlink()
        self._specs[tid] = spec
        return self._status(tid)

    async def _terminate(self, tenant_id: str, *, mark_stopped: bool) -> None:
        folder = self._dir(tenant_id)
        info = self._read_pid(tenant_id)
        if mark_stopped and folder.exists():
            (folder / STOPPED_FILE).touch()
        with contextlib.suppress(FileNotFoundError):
            (folder / PID_FILE).unlink()
        if info is None or not _alive(info):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info.pid, signal.SIGTERM)  # the bot leads its own process group
        deadline = time.monotonic() + self.stop_timeout
        # The bot is not our child (nothing to await): poll until it is gone.
        while _alive(info) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if _alive(info):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info.pid, signal.SIGKILL)
            while _alive(info) and time.monotonic() < deadline + 5:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ interface
    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        tid = self._name(spec.tenant_id)
        async with self._lock(tid):
            info = self._read_pid(tid)
            if info is not None and _alive(info):
                if info.spec_sha256 == spec_fingerprint(spec):
                    self._specs[tid] = spec
                    return self._status(tid)
                await self._terminate(tid, mark_stopped=False)
            elif info is not None:  # crashed: starting again counts as a restart
                self._restarts[tid] = self._restarts.get(tid, 0) + 1
            return await self._spawn(spec)

    async def start(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(tenant_id):
            current = self._status(tenant_id)
            if current.state is RuntimeState.RUNNING:
                return current
            spec = self._specs.get(tenant_id)
            if spec is None:
                raise DeployError(
                    f"no specification known for {tenant_id} in this master: deploy it again"
                )
            return await self._spawn(spec)

    async def stop(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(tenant_id):
            if self._status(tenant_id).state is not RuntimeState.MISSING:
                await self._terminate(tenant_id, mark_stopped=True)
            return self._status(tenant_id)

    async def restart(self, tenant_id: str) -> RuntimeStatus:
        async with self._lock(tenant_id):
            spec = self._specs.get(tenant_id)
            if spec is None:
                raise DeployError(
                    f"no specification known for {tenant_id} in this master: deploy it again"
                )
            await self._terminate(tenant_id, mark_stopped=False)
            self._restarts[tenant_id] = self._restarts.get(tenant_id, 0) + 1
            return await self._spawn(spec)

    async def remove(self, tenant_id: str) -> None:
        async with self._lock(tenant_id):
            await self._terminate(tenant_id, mark_stopped=False)
            folder = self._dir(tenant_id)
            for name in (PID_FILE, STOPPED_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
            self._specs.pop(tenant_id, None)
            self._restarts.pop(tenant_id, None)

    async def status(self, tenant_id: str) -> RuntimeStatus:
        return self._status(self._name(tenant_id))

    async def drifted(self, specs: Mapping[str, ClientSpec]) -> set[str]:
        def check() -> set[str]:
            found = set()
            for tid, spec in specs.items():
                info = self._read_pid(tid)
                if info is not None and info.spec_sha256 != spec_fingerprint(spec):
                    found.add(tid)
            return found

        return await asyncio.to_thread(check)

    async def list(self) -> dict[str, RuntimeStatus]:
        def scan() -> dict[str, RuntimeStatus]:
            found: dict[str, RuntimeStatus] = {}
            if not self.runtime_dir.is_dir():
                return found
            for entry in self.runtime_dir.iterdir():
                if self.names.match(entry.name) and (
                    (entry / PID_FILE).exists() or (entry / STOPPED_FILE).exists()
                ):
                    found[entry.name] = self._status(entry.name)
            return found

        return await asyncio.to_thread(scan)

    async def logs(self, tenant_id: str, lines: int = 100) -> str:
        path = self._dir(tenant_id) / LOG_FILE

        def tail() -> str:
            try:
                with path.open(encoding="utf-8", errors="replace") as fh:
                    return "".join(deque(fh, maxlen=max(1, lines)))
            except FileNotFoundError:
                return ""

        return await asyncio.to_thread(tail)

    async def ping(self) -> None:
        def check() -> None:
            self.runtime_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(self.runtime_dir, os.W_OK):
                raise DeployError(f"runtime folder {self.runtime_dir} is not writable")
            if not os.access(self.python, os.X_OK):
                raise DeployError(f"python interpreter {self.python} is not executable")
            problem = self._unreachable_by_others() if self.separate_users else None
            if problem:
                raise DeployError(f"bots run under their own uids, but {problem}")

        try:
            await asyncio.to_thread(check)
        except OSError as exc:
            raise DeployError(f"runtime folder {self.runtime_dir}: {exc.strerror}") from None
