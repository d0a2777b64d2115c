"""Operator-driven fleet upgrades: a new client image over every dedicated bot and every hub,
in batches gated on health (master_bot/rollout.py), with pause, resume and rollback; pending
tenant schema migrations first, in the same progress view (docs/operations.md, "Upgrades").

The units of an upgrade are the runtimes an image runs in: each dedicated tenant's bot, and each
hub (every tenant of a hub moves with it). Where the image is set depends on the engine:

- Docker (and Swarm services, which build on it): the backend's `image`; a unit is re-created by
  `deploy`, whose spec hash holds the image id, so the container (service) is replaced. An image
  the engine does not have is refused before anything is touched.
- processes: the image is the Python interpreter of a release (e.g. `/opt/botfleet/<release>/
  .venv/bin/python`); a unit is stopped and started again under it. A path that is not an
  executable file is refused.

The health gate of a re-created unit (what `Rollout` waits `settle` seconds for):
- a dedicated bot: its runtime RUNNING with the same restart count for `settle` seconds (a
  client bot whose token Telegram refuses exits non-zero, which Docker and the reconciler count
  as a restart);
- a hub: its runtime RUNNING with the same restart count, and every tenant that was `running`
  in the hub's status.json before the upgrade reported `running` again by the new run (a hub
  marks a tenant running only once its getMe answered); a tenant `failed`/`token_refused` is
  unhealthy at once.

While an upgrade is current (running, paused, halted or rolling back) the reconciler's own
drift rollout is held (it would otherwise roll the same bots), and a new upgrade is refused.
The chosen image lives in the master's memory: after a restart the master runs CLIENT_IMAGE
again, so put the new image in `.env` (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from database.migrator import MigrationError, load_migrations, migrate_tenant
from master_bot.dbservers import DEFAULT_SERVER, admin_pool
from master_bot.deploy.base import DeployBackend, DeployError, RuntimeState, RuntimeStatus
from master_bot.deploy.docker import DockerBackend
from master_bot.deploy.hub import STATUS, HubBackend, PlacedBackend
from master_bot.deploy.process import ProcessBackend
from master_bot.deps import Deps
from master_bot.errors import ConflictError, MasterError, NotFoundError, RejectedError
from master_bot.reconciler import Reconciler
from master_bot.rollout import Rollout, RolloutPolicy
from master_bot.spec import build_spec
from master_bot.store import TenantStatus

log = logging.getLogger(__name__)
ACTOR = "upgrade"
RECORD = (
    "upgrade.json"  # in CLIENTS_DIR: the image of the last finished upgrade, kept over restarts
)


class UpgradeState(enum.StrEnum):
    MIGRATING = "migrating"  # tenant schema migrations, before any bot is touched
    RUNNING = "running"
    PAUSED = "paused"  # the batch in flight settles, no new one starts
    HALTED = "halted"  # a batch did not come up healthy (or a migration failed)
    ROLLING_BACK = "rolling_back"
    FINISHED = "finished"
    ROLLED_BACK = "rolled_back"


CURRENT = frozenset(
    {
        UpgradeState.MIGRATING,
        UpgradeState.RUNNING,
        UpgradeState.PAUSED,
        UpgradeState.HALTED,
        UpgradeState.ROLLING_BACK,
    }
)


class UpgradeConflictError(ConflictError):
    def __init__(self, message: str) -> None:
        super().__init__("upgrade_conflict", message)


class NoUpgradeError(NotFoundError):
    code = "no_upgrade"


@dataclass(slots=True)
class Migrations:
    """Tenant schema migrations of one PostgreSQL server (the platform's: host:port/database;
    another: its name in control.db_servers)."""

    server: str
    total: int = 0
    done: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    applied: int = 0  # migrations applied, over every schema


@dataclass(slots=True)
class Progress:
    """What `GET /api/v1/upgrades/current` shows (and the operators' bot)."""

    id: int
    image: str
    previous_image: str
    state: UpgradeState
    total: int
    done: int
    in_flight: list[str]
    failed: dict[str, str]
    batches: int
    halted: str | None
    started_at: datetime
    finished_at: datetime | None
    migrations: list[Migrations]
    rollback_total: int = 0
    rollback_done: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "image": self.image,
            "previous_image": self.previous_image,
            "state": self.state.value,
            "total": self.total,
            "done": self.done,
            "in_flight": self.in_flight,
            "failed": self.failed,
            "batches": self.batches,
            "halted": self.halted,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "rollback": {"total": self.rollback_total, "done": self.rollback_done},
            "migrations": [
                {
                    "server": m.server,
                    "total": m.total,
                    "done": m.done,
                    "failed": m.failed,
                    "applied": m.applied,
                }
                for m in self.migrations
            ],
        }


Listener = Callable[[str, Progress], Awaitable[None]]


# ---------------------------------------------------------------------------------- engines
class _Slot:
    """One place a client image is set: a backend that runs dedicated bots or hubs."""

    def __init__(self, backend: DockerBackend | ProcessBackend) -> None:
        self.backend = backend

    @property
    def image(self) -> str:
        b = self.backend
        return b.image if isinstance(b, DockerBackend) else b.python

    def set(self, image: str) -> None:
        if isinstance(self.backend, DockerBackend):
            self.backend.image = image
        else:
            self.backend.python = image

    async def check(self, image: str) -> str | None:
        """Why the engine cannot run `image` (None: it can)."""
        b = self.backend
        if isinstance(b, ProcessBackend):
            path = Path(image)
            usable = await asyncio.to_thread(
                lambda: path.is_absolute() and path.is_file() and os.access(path, os.X_OK)
            )
            if not usable:
                return f"{image}: not an executable interpreter on this host"
            return None
        try:
            client = await b._docker()
            await asyncio.to_thread(client.images.get, image)
        except Exception as exc:
            return f"image {image} is not on the Docker Engine ({type(exc).__name__})"
        return None


def _sides(backend: DeployBackend) -> tuple[DockerBackend | ProcessBackend, HubBackend | None]:
    if isinstance(backend, PlacedBackend):
        dedicated, hubs = backend.dedicated, backend.hubs
    else:
        dedicated, hubs = backend, None
    if not isinstance(dedicated, DockerBackend | ProcessBackend):
        raise RejectedError(
            "upgrade_unsupported", f"upgrades are not supported on the {backend.name} backend"
        )
    return dedicated, hubs


class Upgrades:
    """At most one upgrade at a time, driven by one task of the master."""

    def __init__(
        self,
        deps: Deps,
        reconciler: Reconciler | None = None,
        *,
        policy: RolloutPolicy | None = None,
        poll: float = 2.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deps = deps
        self.reconciler = reconciler
        self.policy = policy or RolloutPolicy()
        self.poll = poll
        self.concurrency = concurrency
        self.clock = clock
        self.listeners: list[Listener] = []
        self.current: Progress | None = None
        self._rollout = Rollout(self.policy)
        self._units: list[str] = []  # in rollout order
        self._upgraded: list[str] = []  # re-created on the new image (what a rollback redoes)
        self._images: dict[int, str] = {}  # id(slot backend) -> its image before the upgrade
        self._slots: list[_Slot] = []
        self._hub_before: dict[str, set[str]] = {}  # hub -> tenants running before
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._ids = 0

    def watch(self, listener: Listener) -> None:
        self.listeners.append(listener)

    # ------------------------------------------------------------------ operator commands
    async def start(self, image: str, *, migrate: bool = True, actor: str = ACTOR) -> Progress:
        image = image.strip()
        if not image or len(image) > 300 or any(c.isspace() for c in image):
            raise RejectedError("invalid_image", "image: a non-empty name without spaces")
        if self.current is not None and self.current.state in CURRENT:
            raise UpgradeConflictError(
                f"upgrade {self.current.id} to {self.current.image} is {self.current.state.value}:"
                " resume, roll it back or wait for it to finish"
            )
        reconciling = self.reconciler.rollout if self.reconciler is not None else None
        if reconciling is not None and reconciling.halted:
            raise UpgradeConflictError(
                "the reconciler's rollout after make up is halted: make rollback, or fix and"
                " make up (a master restart clears it)"
            )
        if reconciling is not None and reconciling.active:
            raise UpgradeConflictError(
                "the reconciler is rolling out a changed spec (after make up): wait for it"
            )
        dedicated, hubs = _sides(self.deps.backend)
        slots = [_Slot(dedicated)]
        if hubs is not None and isinstance(hubs.processes, DockerBackend | ProcessBackend):
            slots.append(_Slot(hubs.processes))
        for slot in slots:  # every engine must have it before anything is touched
            problem = await slot.check(image)
            if problem is not None:
                raise RejectedError("unknown_image", problem)
        if reconciling is not None:
            reconciling.hold(ACTOR)
        self._ids += 1
        self._slots = slots
        self._images = {id(s.backend): s.image for s in slots}
        self._rollout = Rollout(self.policy)
        self._upgraded, self._units, self._hub_before = [], [], {}
        self.current = Progress(
            id=self._ids,
            image=image,
            previous_image=slots[0].image,
            state=UpgradeState.MIGRATING if migrate else UpgradeState.RUNNING,
            total=0,
            done=0,
            in_flight=[],
            failed={},
            batches=0,
            halted=None,
            started_at=datetime.now(UTC),
            finished_at=None,
            migrations=[],
        )
        await self.deps.store.audit(
            actor,
            None,
            "upgrade.started",
            {"image": image, "previous": self.current.previous_image},
        )
        log.info("upgrade %d: %s -> %s", self._ids, self.current.previous_image, image)
        self._task = asyncio.create_task(self._drive(migrate), name="upgrade")
        return self.current

    def _need(self, *states: UpgradeState) -> Progress:
        if self.current is None:
            raise NoUpgradeError("no upgrade has been started since the master started")
        if self.current.state not in states:
            raise UpgradeConflictError(
                f"upgrade {self.current.id} is {self.current.state.value}: not possible now"
            )
        return self.current

    async def pause(self, actor: str = ACTOR) -> Progress:
        cur = self._need(UpgradeState.MIGRATING, UpgradeState.RUNNING, UpgradeState.PAUSED)
        if cur.state is not UpgradeState.PAUSED:
            self._rollout.paused = True
            cur.state = UpgradeState.PAUSED
            await self.deps.store.audit(actor, None, "upgrade.paused", {"id": cur.id})
            await self._emit("progress")
        return self._snapshot()

    async def resume(self, actor: str = ACTOR) -> Progress:
        cur = self._need(UpgradeState.PAUSED, UpgradeState.HALTED)
        rolling_back = cur.halted is not None and cur.halted.startswith("rollback")
        self._rollout.resume()
        if self.reconciler is not None:
            self.reconciler.rollout.hold(ACTOR)
        cur.halted = None
        cur.state = UpgradeState.ROLLING_BACK if rolling_back else UpgradeState.RUNNING
        await self.deps.store.audit(actor, None, "upgrade.resumed", {"id": cur.id})
        if self._task is None or self._task.done():  # halted while migrating: start over
            self._task = asyncio.create_task(self._drive(False), name="upgrade")
        self._wake.set()
        await self._emit("progress")
        return self._snapshot()

    async def rollback(self, actor: str = ACTOR) -> Progress:
        cur = self._need(UpgradeState.RUNNING, UpgradeState.PAUSED, UpgradeState.HALTED)
        if self.reconciler is not None:
            self.reconciler.rollout.hold(ACTOR)
        for slot in self._slots:
            slot.set(self._images[id(slot.backend)])
        redo = list(dict.fromkeys([*self._upgraded, *self._rollout.batch]))
        self._rollout = Rollout(self.policy)
        self._rollout.offer(redo)
        cur.state, cur.halted = UpgradeState.ROLLING_BACK, None
        cur.rollback_total, cur.rollback_done = len(redo), 0
        await self.deps.store.audit(
            actor, None, "upgrade.rollback", {"id": cur.id, "bots": len(redo)}
        )
        log.warning(
            "upgrade %d: rolling back %d unit(s) to %s", cur.id, len(redo), cur.previous_image
        )
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drive(False), name="upgrade")
        self._wake.set()
        await self._emit("progress")
        return self._snapshot()

    def snapshot(self) -> Progress:
        if self.current is None:
            raise NoUpgradeError("no upgrade has been started since the master started")
        return self._snapshot()

    def _snapshot(self) -> Progress:
        cur = self.current
        assert cur is not None
        r = self._rollout
        if cur.state in (UpgradeState.ROLLING_BACK, UpgradeState.ROLLED_BACK) or (
            cur.rollback_total and cur.state is not UpgradeState.FINISHED
        ):
            cur.rollback_done = len(r.done)
        else:
            cur.done = len(r.done)
            cur.failed = dict(r.failed)
        cur.in_flight = sorted(r.batch)
        cur.batches = r.batches
        return cur

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.reconciler is not None and self.reconciler.rollout.held_by == ACTOR:
            self.reconciler.rollout.release()

    # ------------------------------------------------------------------ the driver
    async def _emit(self, event: str) -> None:
        progress = self._snapshot()
        for listener in list(self.listeners):
            try:
                await listener(event, progress)
            except Exception:
                log.exception("upgrade listener failed")

    async def _drive(self, migrate: bool) -> None:
        cur = self.current
        assert cur is not None
        try:
            if migrate:
                await self._emit("started")
                if not await self._migrate(cur):
                    return
                cur.state = UpgradeState.RUNNING
                if self._rollout.paused:
                    cur.state = UpgradeState.PAUSED
                for slot in self._slots:
                    slot.set(cur.image)
                await self._plan(cur)
                await self._emit("progress")
            elif cur.state is UpgradeState.RUNNING and not self._units:
                await self._emit("started")
                for slot in self._slots:
                    slot.set(cur.image)
                await self._plan(cur)
                await self._emit("progress")
            await self._loop(cur)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("upgrade %d failed", cur.id)
            cur.state, cur.halted = UpgradeState.HALTED, f"the upgrade itself failed: {exc}"
            await self._emit("halted")

    async def _plan(self, cur: Progress) -> None:
        hubs = _sides(self.deps.backend)[1]
        tenants = await self.deps.store.live()
        active = [t.tenant_id for t in tenants if t.status is TenantStatus.ACTIVE]
        units: list[str] = []
        self._hub_before = {}
        if hubs is not None:
            for hub, info in (await hubs.hub_status()).items():
                if not info["tenants"]:
                    continue
                units.append(hub)
                reported = info.get("reported") or {}
                self._hub_before[hub] = {
                    tid
                    for tid, entry in reported.items()
                    if isinstance(entry, dict) and entry.get("state") == "running"
                }
        shared = set() if hubs is None else {t for t in active if hubs.knows(t)}
        units = [t for t in active if t not in shared] + units
        self._units = units
        cur.total = len(units)
        self._rollout.offer(units)
        log.info("upgrade %d: %d unit(s) (%d hub(s))", cur.id, len(units), len(self._hub_before))

    async def _loop(self, cur: Progress) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)
        last = ""
        while True:
            statuses = await self._statuses()
            step = self._rollout.step(statuses, self.clock())
            for tid, why in step.unhealthy.items():
                log.warning("upgrade %d: %s did not come up: %s", cur.id, tid, why)

            async def one(unit: str) -> None:
                async with semaphore:
                    error = None
                    try:
                        await self._recreate(unit)
                    except Exception as exc:
                        error = str(exc) or type(exc).__name__
                    if cur.state is not UpgradeState.ROLLING_BACK:
                        self._upgraded.append(unit)  # even half-made: a rollback redoes it
                    self._rollout.deployed(unit, self.clock(), error)

            if step.deploy:
                log.info(
                    "upgrade %d: batch %d, %d unit(s)",
                    cur.id,
                    self._rollout.batches,
                    len(step.deploy),
                )
                self._snapshot().in_flight = sorted(self._rollout.batch)
                await self._emit("progress")
                await asyncio.gather(*(one(u) for u in step.deploy))
            if step.halted:
                rolling_back = cur.state is UpgradeState.ROLLING_BACK
                cur.state = UpgradeState.HALTED
                cur.halted = ("rollback: " if rolling_back else "") + step.halted
                log.error("upgrade %d halted: %s", cur.id, cur.halted)
                await self.deps.store.audit(ACTOR, None, "upgrade.halted", {"why": cur.halted})
                await self._emit("halted")
                await self._wait(None)
                continue
            if step.finished or (not self._rollout.active and not self._rollout.halted):
                await self._finish(cur)
                return
            text = repr(self._snapshot().as_dict())
            if text != last:
                last = text
                await self._emit("progress")
            await self._wait(self._rollout.next_check(self.clock()))

    async def _wait(self, due: float | None) -> None:
        self._wake.clear()
        timeout = self.poll if due is None else max(0.05, min(self.poll, due - self.clock()))
        if self.current is not None and self.current.state is UpgradeState.HALTED:
            timeout = 3600.0  # until an operator resumes or rolls back
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _finish(self, cur: Progress) -> None:
        self._snapshot()
        cur.in_flight = []
        cur.finished_at = datetime.now(UTC)
        if cur.state is UpgradeState.ROLLING_BACK:
            cur.state = UpgradeState.ROLLED_BACK
        else:
            cur.state = UpgradeState.FINISHED
            await asyncio.to_thread(self._record, cur)
        if self.reconciler is not None:
            self.reconciler.rollout.release()
        seconds = (cur.finished_at - cur.started_at).total_seconds()
        await self.deps.store.audit(
            ACTOR, None, f"upgrade.{cur.state.value}", {"id": cur.id, "seconds": round(seconds, 1)}
        )
        log.info("upgrade %d %s in %.1f s", cur.id, cur.state.value, seconds)
        await self._emit(cur.state.value)

    # ------------------------------------------------------------------ over restarts
    def _record(self, cur: Progress) -> None:
        """Remember the finished upgrade's image and the configured one it replaced (the
        first of a chain of upgrades), so that the next master start runs it again."""
        path = self.deps.config.clients_dir / RECORD
        base = cur.previous_image
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            old = json.loads(path.read_text())
            if old["image"] == cur.previous_image:
                base = str(old["base"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{RECORD}.tmp")
        tmp.write_text(json.dumps({"base": base, "image": cur.image, "id": cur.id}))
        os.replace(tmp, path)

    def restore(self) -> str | None:
        """At the master's start: the image of the last finished upgrade, set on the backend
        when the configured image is still the one that upgrade replaced (a new CLIENT_IMAGE
        from `make up` wins). Returns the image set, or None."""
        try:
            record = json.loads((self.deps.config.clients_dir / RECORD).read_text())
            base, image = str(record["base"]), str(record["image"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            dedicated, hubs = _sides(self.deps.backend)
        except RejectedError:
            return None
        slots = [_Slot(dedicated)]
        if hubs is not None and isinstance(hubs.processes, DockerBackend | ProcessBackend):
            slots.append(_Slot(hubs.processes))
        if slots[0].image != base:
            log.info(
                "upgrade record of %s ignored: the configured image is %s", image, slots[0].image
            )
            return None
        for slot in slots:
            slot.set(image)
        log.info("client image %s (the last finished upgrade, over the configured %s)", image, base)
        return image

    # ------------------------------------------------------------------ units
    async def _recreate(self, unit: str) -> None:
        deps = self.deps
        dedicated, hubs = _sides(deps.backend)
        if hubs is not None and unit in self._hub_before:
            async with contextlib.AsyncExitStack() as stack:
                # The hub's tenants are held: the reconciler does not restart them meanwhile.
                for tid in sorted(hubs._tenants_of(unit)):
                    await stack.enter_async_context(deps.locks(tid))
                await hubs.processes.stop(unit)
                with contextlib.suppress(FileNotFoundError):  # only the new run's report counts
                    (hubs.root / unit / STATUS).unlink()
                await hubs._start_hub(unit)
            return
        async with deps.locks(unit):
            tenant = await deps.store.get(unit)
            if tenant is None or tenant.status is not TenantStatus.ACTIVE:
                return  # deleted or stopped meanwhile: nothing to run
            spec = build_spec(deps.config, deps.box, tenant)
            if isinstance(dedicated, ProcessBackend):
                await dedicated.stop(
                    unit
                )  # the spec is the same: a new interpreter needs a new process
            await dedicated.deploy(spec)

    async def _statuses(self) -> dict[str, RuntimeStatus]:
        dedicated, hubs = _sides(self.deps.backend)
        watched = list(self._rollout.batch)
        out: dict[str, RuntimeStatus] = {}
        for unit in watched:
            try:
                if hubs is not None and unit in self._hub_before:
                    out[unit] = await self._hub_health(hubs, unit)
                else:
                    out[unit] = await dedicated.status(unit)
            except DeployError as exc:
                out[unit] = RuntimeStatus(unit, RuntimeState.MISSING, detail=str(exc))
        return out

    async def _hub_health(self, hubs: HubBackend, hub: str) -> RuntimeStatus:
        proc = await hubs.processes.status(hub)
        if proc.state is not RuntimeState.RUNNING:
            return proc
        reported = hubs._reported(hub)
        want = self._hub_before.get(hub, set())
        if reported is None:
            return RuntimeStatus(
                hub, RuntimeState.STOPPED, detail="no status.json from the new run yet"
            )
        bad = {
            t: f"{e.get('state')}: {e.get('detail', '')}"
            for t, e in reported.items()
            if t in want and isinstance(e, dict) and e.get("state") in ("failed", "token_refused")
        }
        if bad:
            first = next(iter(bad.items()))
            return RuntimeStatus(
                hub, RuntimeState.CRASHED, restarts=proc.restarts, detail=f"{first[0]} {first[1]}"
            )
        waiting = [
            t
            for t in want
            if not (isinstance(reported.get(t), dict) and reported[t].get("state") == "running")
        ]
        if waiting:
            return RuntimeStatus(
                hub,
                RuntimeState.STOPPED,
                restarts=proc.restarts,
                detail=f"{len(want) - len(waiting)} of {len(want)} tenants answered getMe",
            )
        return proc

    # ------------------------------------------------------------------ migrations
    async def _migrate(self, cur: Progress) -> bool:
        """Pending tenant migrations on every schema, on the PostgreSQL server that holds it (one
        progress line per server), as that server's admin; a failure (or a server that does not
        answer) halts the upgrade before any bot is touched."""
        deps = self.deps
        async with deps.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT tenant_id, db_server FROM control.tenants WHERE status <> 'deleted'"
                " ORDER BY number"
            )
        by_server: dict[str, list[str]] = {}
        for row in rows:
            by_server.setdefault(row["db_server"], []).append(row["tenant_id"])
        names = sorted(by_server, key=lambda n: (n != DEFAULT_SERVER, n))
        platform = _server_name(deps.config.admin_database_url or deps.config.tenant_database_url)
        reports = {n: Migrations(platform if n == DEFAULT_SERVER else n) for n in names}
        cur.migrations = list(reports.values())
        migrations = load_migrations("tenant")
        semaphore = asyncio.Semaphore(self.concurrency)
        last = [0.0]

        async def progressed(report: Migrations) -> None:
            report.done += 1
            if self.clock() - last[0] >= 1.0:  # the progress view, at most once a second
                last[0] = self.clock()
                await self._emit("progress")

        async def one(report: Migrations, pool: asyncpg.Pool, tenant_id: str) -> None:
            async with semaphore:
                try:
                    async with pool.acquire() as conn:
                        done = await migrate_tenant(
                            conn,
                            tenant_id,
                            migrations=migrations,
                            fleet=deps.config.fleet_name,
                        )
                    report.applied += len(done.applied)
                except (MigrationError, asyncpg.PostgresError, ValueError) as exc:
                    report.failed[tenant_id] = str(exc)[:300]
                await progressed(report)

        async def server(name: str, report: Migrations) -> None:
            tenants = by_server[name]
            try:
                pool = await admin_pool(deps, name)
                async with pool.acquire() as conn:  # a schema not made yet: nothing to migrate
                    made = set(
                        await conn.fetchval(
                            "SELECT coalesce(array_agg(nspname::text), '{}') FROM pg_namespace"
                            " WHERE nspname = ANY($1::text[])",
                            tenants,
                        )
                    )
            except (MasterError, asyncpg.PostgresError, OSError) as exc:
                report.total = len(tenants)
                for tenant_id in tenants:
                    report.failed[tenant_id] = str(exc)[:300]
                    await progressed(report)
                return
            here = [t for t in tenants if t in made]
            report.total = len(here)
            await asyncio.gather(*(one(report, pool, t) for t in here))

        await asyncio.gather(*(server(n, reports[n]) for n in names))
        for report in reports.values():
            log.info(
                "upgrade %d: migrations on %s: %d schema(s), %d applied, %d failed",
                cur.id,
                report.server,
                report.total,
                report.applied,
                len(report.failed),
            )
        failed = {t: why for r in reports.values() for t, why in r.failed.items()}
        if failed:
            cur.state = UpgradeState.HALTED
            first = next(iter(failed.items()))
            cur.halted = (
                f"migrations failed on {len(failed)} schema(s) ({first[0]}: {first[1]});"
                " no bot was touched"
            )
            if self.reconciler is not None:
                self.reconciler.rollout.release()
            await self.deps.store.audit(ACTOR, None, "upgrade.halted", {"why": cur.halted})
            await self._emit("halted")
            return False
        return True


def _server_name(dsn: str) -> str:
    """host:port/database of a DSN, without credentials."""
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or ''}"


def progress_of(mapping: Mapping[str, Any]) -> str:
    """A one-line summary of a progress dict (logs, the terminal)."""
    return (
        f"{mapping['state']}: {mapping['done']}/{mapping['total']} done, "
        f"{len(mapping['in_flight'])} in flight, {len(mapping['failed'])} failed"
    )
