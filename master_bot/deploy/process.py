"""ProcessBackend: client bots as local processes (development, machines without Docker).

Each bot runs as `python -m client_bot` in its own session (process group), with exactly the
`ClientSpec` environment plus PATH/PYTHONPATH. It is started through a tiny launcher that exits
at once, so the bot is not a child of the master: it survives a master restart and is adopted
through its pid file (`<runtime_dir>/<tenant_id>/bot.pid`: pid, kernel start time, spec hash).
Output goes to `<runtime_dir>/<tenant_id>/bot.log`, which `logs()` tails.

State on disk per tenant: `bot.pid` = should be running; `bot.stopped` = stopped on purpose;
neither = missing. A pid file whose process is gone means the bot crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from collections import deque
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

PID_FILE = "bot.pid"
STOPPED_FILE = "bot.stopped"
LOG_FILE = "bot.log"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Runs in a short-lived process: starts the bot in a new session and prints its pid.
_LAUNCHER = """
import subprocess, sys
with open(sys.argv[1], "ab") as log:
    bot = subprocess.Popen(
        [sys.executable, "-m", sys.argv[2]],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, close_fds=True,
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
    ) -> None:
        self.runtime_dir = Path(runtime_dir)
        self.python = python
        self.module = module
        self.stop_timeout = stop_timeout
        self.launch_timeout = launch_timeout
        self.cwd = cwd or PROJECT_ROOT
        self._specs: dict[str, ClientSpec] = {}
        self._restarts: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ files
    def _dir(self, tenant_id: str) -> Path:
        return self.runtime_dir / validate_tenant_id(tenant_id)

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

    # ------------------------------------------------------------------ process control
    def _environment(self, spec: ClientSpec) -> dict[str, str]:
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
        log_path = folder / LOG_FILE
        try:
            launcher = await asyncio.create_subprocess_exec(
                self.python,
                "-c",
                _LAUNCHER,
                str(log_path),
                self.module,
                env=self._environment(spec),
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
        tid = validate_tenant_id(spec.tenant_id)
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
        return self._status(validate_tenant_id(tenant_id))

    async def list(self) -> dict[str, RuntimeStatus]:
        def scan() -> dict[str, RuntimeStatus]:
            found: dict[str, RuntimeStatus] = {}
            if not self.runtime_dir.is_dir():
                return found
            for entry in self.runtime_dir.iterdir():
                if TENANT_ID_RE.match(entry.name) and (
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

        try:
            await asyncio.to_thread(check)
        except OSError as exc:
            raise DeployError(f"runtime folder {self.runtime_dir}: {exc.strerror}") from None
