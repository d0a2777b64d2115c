"""The `shared` placement: tenants' bots in hubs (`python -m client_bot.hub`), up to
`capacity` tenants per hub; and `PlacedBackend`, which routes each tenant to the dedicated
backend or to the hubs by its spec's placement label, and moves it between them.

A hub runs as a process with every hardening of ProcessBackend (not a child of the master, none
of its environment, a uid of its own when the master is root), or as a container with every
hardening of a client container (`DockerHubs`, master_bot/deploy/docker.py: its folder is its
one mount, at /hub), or as a Swarm service made the same way (`SwarmHubs`,
master_bot/deploy/swarm.py). A hub's environment names only its folder (`<clients>/hubs/hub-<n>`,
owned by the hub's uid, 0700) and, for a container with webhooks, its webhook server's address. The master assigns a tenant by writing
its contract, only its own, to `tenants/<tenant_id>.env` there (0600, owned by the hub's uid);
`tenants/<tenant_id>.env.stopped` is a tenant stopped on purpose (kept for `start`). The hub
reports what it runs in `status.json`; a tenant leaves it only once its runtime has stopped, so
the master can confirm a stop before it starts the tenant elsewhere: never two runtimes polling
one token.

Hubs are owned like client runtimes: a tenant whose hub died reports CRASHED (with the hub's
restart count, so Docker's own restarts count as crashes), and the reconciler's deploy of it
starts the hub again (the runtime backend's deploy, idempotent), with the reconciler's backoff;
a hub without tenants is removed. A full hub (capacity reached) means a new hub. After a master
restart the hubs are adopted: the tenants are in the folders, the hubs found by name (a pid
file, or a container's `botfleet.hub` label).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.tenant_id import TENANT_ID_RE, validate_tenant_id
from master_bot.deploy.base import (
    ClientSpec,
    DeployBackend,
    DeployError,
    RuntimeState,
    RuntimeStatus,
)
from master_bot.deploy.docker import DockerBackend, DockerHubs
from master_bot.deploy.process import PLATFORM_ONLY, ProcessBackend
from master_bot.deploy.swarm import SwarmBackend, SwarmHubs

log = logging.getLogger(__name__)

LABEL_PLACEMENT = "botfleet.placement"  # "shared" on a shared tenant's spec; absent: dedicated
HUB_RE = re.compile(r"hub-[0-9]{1,6}\Z")
TENANTS = "tenants"  # as client_bot.hub (not imported: the master does not import aiogram's bot)
STATUS = "status.json"
ENV, STOPPED = ".env", ".env.stopped"
_KEY_RE = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
ENGINE_POLL = 1.0  # seconds between questions to the engine while a stop or start is confirmed


def placement_of(spec: ClientSpec) -> str:
    return spec.labels.get(LABEL_PLACEMENT, "dedicated")


def render_env(env: Mapping[str, str]) -> str:
    """A dotenv file python-dotenv reads back exactly (single quotes, \\ and ' escaped)."""
    lines = []
    for key, value in sorted(env.items()):
        if not _KEY_RE.match(key):
            raise DeployError(f"not an environment variable name: {key[:40]!r}")
        escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
        lines.append(f"{key}='{escaped}'\n")
    return "".join(lines)


class HubBackend(DeployBackend):
    name = "hub"

    def __init__(
        self,
        clients_dir: Path | str,
        *,
        capacity: int = 200,
        scan_interval: float = 2.0,
        confirm_timeout: float = 30.0,
        hub_env: Mapping[str, str] | None = None,
        processes: ProcessBackend | DockerHubs | None = None,
    ) -> None:
        """`processes`: what runs the hubs, a ProcessBackend made with names=HUB_RE (the
        default) or DockerHubs with root=<clients_dir>/hubs."""
        if capacity < 1:
            raise ValueError("capacity: at least 1")
        self.root = Path(clients_dir) / "hubs"
        self.capacity = capacity
        self.scan_interval = scan_interval
        self.confirm_timeout = confirm_timeout
        self.hub_env = dict(hub_env or {})  # LOG_LEVEL, LOG_FORMAT: nothing secret
        self.processes = processes or ProcessBackend(clients_dir, names=HUB_RE)
        if isinstance(self.processes, DockerHubs):
            if self.processes.root.resolve() != self.root.resolve():
                raise ValueError(f"the hubs' DockerHubs must be made with root={self.root}")
        else:
            if self.processes.names is not HUB_RE:
                raise ValueError("the hubs' ProcessBackend must be made with names=HUB_RE")
            self.processes.module = "client_bot.hub"
        self.name = f"hubs ({self.processes.name})"
        self._lock = asyncio.Lock()  # assignments: two tenants never overfill a hub

    # ------------------------------------------------------------------ the folders
    def _hubs(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return sorted(
                (p.name for p in self.root.iterdir() if HUB_RE.match(p.name)),
                key=lambda n: int(n.split("-")[1]),
            )
        return []

    def _tenants_of(self, hub: str) -> dict[str, bool]:
        """tenant id -> True (assigned) / False (stopped on purpose), from the hub's folder."""
        found: dict[str, bool] = {}
        with contextlib.suppress(FileNotFoundError):
            for path in (self.root / hub / TENANTS).iterdir():
                for suffix, running in ((STOPPED, False), (ENV, True)):
                    tid = path.name.removesuffix(suffix)
                    if path.name.endswith(suffix) and TENANT_ID_RE.match(tid):
                        found[tid] = running
                        break
        return found

    def _find(self, tenant_id: str) -> tuple[str, bool] | None:
        for hub in self._hubs():
            folder = self.root / hub / TENANTS
            if (folder / f"{tenant_id}{ENV}").exists():
                return hub, True
            if (folder / f"{tenant_id}{STOPPED}").exists():
                return hub, False
        return None

    def knows(self, tenant_id: str) -> bool:
        return self._find(validate_tenant_id(tenant_id)) is not None

    def _reported(self, hub: str) -> dict[str, Any] | None:
        """The hub's status.json tenants, or None when unreadable (not started yet)."""
        try:
            data = json.loads((self.root / hub / STATUS).read_text())
        except (OSError, ValueError):
            return None
        tenants = data.get("tenants") if isinstance(data, dict) else None
        return tenants if isinstance(tenants, dict) else None

    def _hub_spec(self, hub: str) -> ClientSpec:
        env = {
            **self.hub_env,
            "HUB_DIR": str((self.root / hub).resolve()),
            "HUB_CAPACITY": str(self.capacity),
            "HUB_SCAN_INTERVAL": str(self.scan_interval),
        }
        if isinstance(self.processes, DockerHubs):  # its folder at /hub, its webhook server
            env.update(self.processes.hub_env(hub))
        return ClientSpec(hub, env, {"botfleet.role": "hub"})

    async def _hub_state(self, hub: str) -> RuntimeStatus:
        return await self.processes.status(hub)  # no Docker stats: polled while confirming

    async def _start_hub(self, hub: str) -> None:
        """Make the hub's runtime run (idempotent). A hub that was not running left its last
        report behind: it is removed first, so that only the new run's report confirms a
        tenant (a killed hub never wrote that its tenants stopped)."""
        if (await self._hub_state(hub)).state is not RuntimeState.RUNNING:
            with contextlib.suppress(FileNotFoundError):
                (self.root / hub / STATUS).unlink()
        await self.processes.deploy(self._hub_spec(hub))

    async def _hub_states(self, hubs: list[str]) -> dict[str, RuntimeStatus]:
        """Every hub's runtime, in one listing (one Docker Engine call for containers)."""
        if isinstance(self.processes, ProcessBackend):
            return {hub: self.processes._status(hub) for hub in hubs}
        found = await self.processes.list()
        return {hub: found.get(hub) or RuntimeStatus(hub, RuntimeState.MISSING) for hub in hubs}

    async def _prepare(self, hub: str) -> int | None:
        """The hub's folder, owned by the uid its process runs as (None: the master's own)."""
        uid = await self.processes.uid_for(hub)

        def make() -> None:
            for folder in (self.root / hub, self.root / hub / TENANTS):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                folder.chmod(0o700)
                if uid is not None:
                    os.chown(folder, uid, uid)

        self.root.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(make)
        return uid

    def _check(self, spec: ClientSpec) -> None:
        forbidden = sorted(PLATFORM_ONLY & set(spec.env))
        for name in ("DATABASE_URL", "REDIS_URL"):
            own = os.environ.get(name)
            if own and spec.env.get(name) == own:
                forbidden.append(f"{name} (the master's own)")
        if forbidden:
            raise DeployError(
                f"refusing to assign {spec.tenant_id}: its environment has platform-wide "
                f"settings: {', '.join(forbidden)}"
            )

    @staticmethod
    def _write(path: Path, text: str, uid: int | None) -> bool:
        """Write `text` to `path` (0600, the hub's) unless it holds it already."""
        with contextlib.suppress(FileNotFoundError):
            if path.read_text(encoding="utf-8") == text:
                return False
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if uid is not None:
            os.chown(tmp, uid, uid)
        os.replace(tmp, path)
        return True

    async def _confirm(self, hub: str, tenant_id: str, *, gone: bool) -> dict[str, Any] | None:
        """Wait until the hub reports the tenant gone (`gone`) or past starting; its entry.
        The report (a file) is read every 0.1 s, the hub's runtime asked about at most once a
        second: many tenants confirmed at once (a hub starting with them) would otherwise ask
        the Docker Engine tens of times a second each while the hub needs the CPU to start."""
        deadline = time.monotonic() + self.confirm_timeout
        asked = -ENGINE_POLL
        while True:
            if time.monotonic() - asked >= ENGINE_POLL:
                asked = time.monotonic()
                if (await self._hub_state(hub)).state is not RuntimeState.RUNNING:
                    if gone:  # no hub process: nothing of the tenant runs
                        return None
                    raise DeployError(f"hub {hub} is not running; see its log")
            reported = self._reported(hub)
            entry = None if reported is None else reported.get(tenant_id)
            if gone and reported is not None and entry is None:
                return None
            if not gone and isinstance(entry, dict) and entry.get("state") != "starting":
                return entry
            if time.monotonic() > deadline:
                what = "stopped" if gone else "started"
                raise DeployError(f"hub {hub} did not confirm that {tenant_id} {what}")
            await asyncio.sleep(0.1)

    def _tenant_status(
        self, tenant_id: str, found: tuple[str, bool] | None, proc: RuntimeStatus | None
    ) -> RuntimeStatus:
        """The tenant's status from where it is (`_find`) and its hub's runtime."""
        if found is None:
            return RuntimeStatus(tenant_id, RuntimeState.MISSING)
        hub, assigned = found
        if not assigned:
            return RuntimeStatus(tenant_id, RuntimeState.STOPPED, detail=f"in {hub}")
        restarts = proc.restarts if proc is not None else 0
        if proc is None or proc.state is not RuntimeState.RUNNING:
            what = proc.state.value if proc is not None else "missing"
            return RuntimeStatus(
                tenant_id, RuntimeState.CRASHED, restarts=restarts, detail=f"hub {hub} is {what}"
            )
        entry = (self._reported(hub) or {}).get(tenant_id)
        state = entry.get("state") if isinstance(entry, dict) else "starting"
        if state in ("running", "starting"):
            return RuntimeStatus(
                tenant_id, RuntimeState.RUNNING, restarts=restarts, detail=f"{hub} ({state})"
            )
        detail = entry.get("detail", "") if isinstance(entry, dict) else ""
        return RuntimeStatus(
            tenant_id, RuntimeState.CRASHED, restarts=restarts, detail=f"{hub}: {state}: {detail}"
        )

    async def _status_of(self, tenant_id: str) -> RuntimeStatus:
        found = await asyncio.to_thread(self._find, tenant_id)
        proc = None if found is None or not found[1] else await self._hub_state(found[0])
        return await asyncio.to_thread(self._tenant_status, tenant_id, found, proc)

    # ------------------------------------------------------------------ interface
    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        tid = validate_tenant_id(spec.tenant_id)
        self._check(spec)
        text = render_env(spec.env)
        async with self._lock:
            found = await asyncio.to_thread(self._find, tid)
            if found is not None:
                hub = found[0]
            else:
                hubs = await asyncio.to_thread(self._hubs)
                counts = {h: len(await asyncio.to_thread(self._tenants_of, h)) for h in hubs}
                free = [h for h in hubs if counts[h] < self.capacity]
                hub = free[0] if free else self._new_name(hubs)
            uid = await self._prepare(hub)
            folder = self.root / hub / TENANTS
            with contextlib.suppress(FileNotFoundError):
                (folder / f"{tid}{STOPPED}").unlink()
            await asyncio.to_thread(self._write, folder / f"{tid}{ENV}", text, uid)
        await self._start_hub(hub)  # a new or crashed hub
        await self._confirm(hub, tid, gone=False)
        return await self._status_of(tid)

    @staticmethod
    def _new_name(hubs: list[str]) -> str:
        taken = {int(h.split("-")[1]) for h in hubs}
        n = 1
        while n in taken:
            n += 1
        return f"hub-{n}"

    async def start(self, tenant_id: str) -> RuntimeStatus:
        found = self._find(validate_tenant_id(tenant_id))
        if found is None:
            raise DeployError(f"{tenant_id} is in no hub: deploy it")
        hub, assigned = found
        if not assigned:
            folder = self.root / hub / TENANTS
            os.replace(folder / f"{tenant_id}{STOPPED}", folder / f"{tenant_id}{ENV}")
        await self._start_hub(hub)
        await self._confirm(hub, tenant_id, gone=False)
        return await self._status_of(tenant_id)

    async def stop(self, tenant_id: str) -> RuntimeStatus:
        found = self._find(validate_tenant_id(tenant_id))
        if found is not None and found[1]:
            hub = found[0]
            folder = self.root / hub / TENANTS
            os.replace(folder / f"{tenant_id}{ENV}", folder / f"{tenant_id}{STOPPED}")
            await self._confirm(hub, tenant_id, gone=True)
        return await self._status_of(tenant_id)

    async def restart(self, tenant_id: str) -> RuntimeStatus:
        found = self._find(validate_tenant_id(tenant_id))
        if found is None or not found[1]:
            return await self.start(tenant_id)
        hub = found[0]
        path = self.root / hub / TENANTS / f"{tenant_id}{ENV}"
        os.utime(path)  # a new mtime: the hub stops the tenant and starts it again
        if (await self._hub_state(hub)).state is not RuntimeState.RUNNING:
            await self._start_hub(hub)
        await self._confirm(hub, tenant_id, gone=False)
        return await self._status_of(tenant_id)

    async def remove(self, tenant_id: str) -> None:
        tid = validate_tenant_id(tenant_id)
        async with self._lock:
            found = await asyncio.to_thread(self._find, tid)
            if found is None:
                return
            hub = found[0]
            for suffix in (ENV, STOPPED):
                with contextlib.suppress(FileNotFoundError):
                    (self.root / hub / TENANTS / f"{tid}{suffix}").unlink()
            await self._confirm(hub, tid, gone=True)
            if not await asyncio.to_thread(self._tenants_of, hub):
                await self.processes.remove(hub)  # an empty hub: nothing to run

    async def status(self, tenant_id: str) -> RuntimeStatus:
        return await self._status_of(validate_tenant_id(tenant_id))

    async def list(self) -> dict[str, RuntimeStatus]:
        def assigned() -> dict[str, tuple[str, bool]]:
            found: dict[str, tuple[str, bool]] = {}
            for hub in self._hubs():
                for tid, running in self._tenants_of(hub).items():
                    found.setdefault(tid, (hub, running))
            return found

        where = await asyncio.to_thread(assigned)
        states = await self._hub_states(sorted({hub for hub, _ in where.values()}))

        def scan() -> dict[str, RuntimeStatus]:
            return {
                tid: self._tenant_status(tid, found, states.get(found[0]))
                for tid, found in where.items()
            }

        return await asyncio.to_thread(scan)

    def webhook_upstreams(self) -> dict[str, str]:
        """tenant id -> its hub's webhook server (for the proxy's routes), for every tenant
        assigned to a hub that serves webhooks (hub processes poll: none)."""
        if not isinstance(self.processes, DockerHubs):
            return {}
        routes: dict[str, str] = {}
        for hub in self._hubs():
            address = self.processes.webhook_address(hub)
            if address is None:
                continue
            for tid, assigned in self._tenants_of(hub).items():
                if assigned:
                    routes.setdefault(tid, address)
        return routes

    async def drifted(self, specs: Mapping[str, ClientSpec]) -> set[str]:
        """Tenants whose file is not their spec, and every tenant of a hub whose runtime was
        made from another hub spec (a new client image: a re-deploy of one of them replaces
        the hub)."""
        hubs_of: dict[str, list[str]] = {}

        def check() -> set[str]:
            found = set()
            for tid, spec in specs.items():
                where = self._find(tid)
                if where is None or not where[1]:
                    continue
                hubs_of.setdefault(where[0], []).append(tid)
                path = self.root / where[0] / TENANTS / f"{tid}{ENV}"
                with contextlib.suppress(OSError):
                    if path.read_text(encoding="utf-8") != render_env(spec.env):
                        found.add(tid)
            return found

        found = await asyncio.to_thread(check)
        stale = await self.processes.drifted({hub: self._hub_spec(hub) for hub in hubs_of})
        return found | {tid for hub in stale for tid in hubs_of.get(hub, [])}

    async def logs(self, tenant_id: str, lines: int = 100) -> str:
        found = self._find(validate_tenant_id(tenant_id))
        if found is None:
            return ""
        text = await self.processes.logs(found[0], lines * 20)
        mine = [line for line in text.splitlines(keepends=True) if tenant_id in line]
        return "".join(mine[-lines:])

    async def ping(self) -> None:
        await self.processes.ping()

    async def close(self) -> None:
        await self.processes.close()

    async def hub_status(self) -> dict[str, dict[str, Any]]:
        """Each hub: its process and what it reports (for operators and the bench)."""
        out: dict[str, dict[str, Any]] = {}
        for hub in self._hubs():
            if isinstance(self.processes, DockerHubs):
                proc = await self.processes.usage(hub)
            else:
                proc = await self.processes.status(hub)
            out[hub] = {
                "state": proc.state.value,
                "memory_bytes": proc.memory_bytes,
                "tenants": len(self._tenants_of(hub)),
                "reported": self._reported(hub) or {},
            }
        return out


class PlacedBackend(DeployBackend):
    """Dedicated runtimes and hubs behind one interface. A tenant's spec says where it goes
    (`LABEL_PLACEMENT`); a deploy to one side first removes it from the other and waits until
    that runtime is confirmed stopped, so a move never has two runtimes polling one token, and
    a move interrupted by a master restart is finished by the reconciler (the runtime on the
    wrong side counts as drift)."""

    def __init__(self, dedicated: DeployBackend, hubs: HubBackend) -> None:
        self.dedicated = dedicated
        self.hubs = hubs
        # The engine's name ("docker", "process"): /health's deploy_backend:<name> check and
        # make stats name the engine; hubs are a placement on it, not another engine.
        self.name = dedicated.name

    def _side(self, tenant_id: str) -> DeployBackend:
        return self.hubs if self.hubs.knows(tenant_id) else self.dedicated

    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        tid = validate_tenant_id(spec.tenant_id)
        shared = placement_of(spec) == "shared"
        target, other = (self.hubs, self.dedicated) if shared else (self.dedicated, self.hubs)
        if (await other.status(tid)).state is not RuntimeState.MISSING:
            log.info("moving %s to the %s placement", tid, placement_of(spec))
            await other.remove(tid)  # returns once that runtime has stopped
            if (await other.status(tid)).state is RuntimeState.RUNNING:
                raise DeployError(f"{tid} still runs in {other.name}: not started elsewhere")
        return await target.deploy(spec)

    async def start(self, tenant_id: str) -> RuntimeStatus:
        return await self._side(tenant_id).start(tenant_id)

    async def stop(self, tenant_id: str) -> RuntimeStatus:
        return await self._side(tenant_id).stop(tenant_id)

    async def restart(self, tenant_id: str) -> RuntimeStatus:
        return await self._side(tenant_id).restart(tenant_id)

    async def remove(self, tenant_id: str) -> None:
        await self.hubs.remove(tenant_id)
        await self.dedicated.remove(tenant_id)

    async def status(self, tenant_id: str) -> RuntimeStatus:
        return await self._side(tenant_id).status(tenant_id)

    async def list(self) -> dict[str, RuntimeStatus]:
        return {**await self.dedicated.list(), **await self.hubs.list()}

    async def drifted(self, specs: Mapping[str, ClientSpec]) -> set[str]:
        shared = {t: s for t, s in specs.items() if placement_of(s) == "shared"}
        dedicated = {t: s for t, s in specs.items() if t not in shared}
        found = set(await self.hubs.drifted(shared)) | set(await self.dedicated.drifted(dedicated))
        # On the wrong side (moved while the master was away, or a move cut short).
        found |= {t for t in shared if not self.hubs.knows(t)}
        found |= {t for t in dedicated if self.hubs.knows(t)}
        return found

    async def logs(self, tenant_id: str, lines: int = 100) -> str:
        return await self._side(tenant_id).logs(tenant_id, lines)

    def webhook_upstreams(self) -> dict[str, str]:
        return {**self.dedicated.webhook_upstreams(), **self.hubs.webhook_upstreams()}

    async def ping(self) -> None:
        await self.dedicated.ping()
        await self.hubs.ping()

    async def close(self) -> None:
        await self.dedicated.close()
        await self.hubs.close()


def with_docker_hubs(
    clients: DockerBackend,
    clients_dir: Path | str,
    *,
    capacity: int = 200,
    scan_interval: float = 2.0,
    hub_env: Mapping[str, str] | None = None,
    webhooks: bool = True,
    **hub_limits: Any,
) -> PlacedBackend:
    """DEPLOY_BACKEND=docker (or swarm) with the shared placement: the client containers (Swarm
    services) of `clients`, and hub containers (hub services: SwarmHubs) on the same engine,
    image, network and fleet, in `<clients_dir>/hubs`. `webhooks`: hubs serve their tenants'
    webhooks (those with WEBHOOK_BASE_URL in their contract) on port 8080 of the fleet's
    network."""
    kind = SwarmHubs if isinstance(clients, SwarmBackend) else DockerHubs
    hubs = HubBackend(
        clients_dir,
        capacity=capacity,
        scan_interval=scan_interval,
        hub_env=hub_env,
        processes=kind.like(clients, Path(clients_dir) / "hubs", webhooks=webhooks, **hub_limits),
    )
    return PlacedBackend(clients, hubs)
